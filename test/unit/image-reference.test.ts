// Image references parsed with Docker's rules (daemon/image/reference.ts),
// and the registry client's pure parts: challenges, error bodies, schemes,
// pull secrets and the default pull policy.
import test from 'ava'
import { defaultPullPolicy, imageConfig } from '../../daemon/image/puller.ts'
import { formatReference, InvalidReferenceError, manifestSelector, parseReference } from '../../daemon/image/reference.ts'
import { credentialsFor, hostPlatform, parseChallenge, registryMessage, schemeFor } from '../../daemon/image/registry.ts'

const D = `sha256:${'ab'.repeat(32)}`

test('a bare name is Docker Hub\'s library image at latest', t => {
  t.deepEqual(parseReference('busybox'), { registry: 'docker.io', apiHost: 'registry-1.docker.io', repository: 'library/busybox', tag: 'latest' })
  t.is(formatReference(parseReference('busybox')), 'docker.io/library/busybox:latest')
  t.is(manifestSelector(parseReference('busybox')), 'latest')
})

test('user/app:tag stays on Docker Hub, under the user', t => {
  t.deepEqual(parseReference('user/app:1.0'), { registry: 'docker.io', apiHost: 'registry-1.docker.io', repository: 'user/app', tag: '1.0' })
  t.deepEqual(parseReference('docker.io/busybox:1'), { registry: 'docker.io', apiHost: 'registry-1.docker.io', repository: 'library/busybox', tag: '1' })
  t.is(parseReference('index.docker.io/user/app').registry, 'docker.io')
})

test('a first component with a dot, a colon or localhost is a registry', t => {
  t.deepEqual(parseReference(`registry.example.com:5000/path/app@${D}`), { registry: 'registry.example.com:5000', apiHost: 'registry.example.com:5000', repository: 'path/app', digest: D })
  t.deepEqual(parseReference('localhost/app'), { registry: 'localhost', apiHost: 'localhost', repository: 'app', tag: 'latest' })
  t.deepEqual(parseReference('localhost:5000/app:v2'), { registry: 'localhost:5000', apiHost: 'localhost:5000', repository: 'app', tag: 'v2' })
  t.deepEqual(parseReference('127.0.160.2:41234/test/busybox:1.0').registry, '127.0.160.2:41234')
  t.deepEqual(parseReference('quay.io/a/b/c').repository, 'a/b/c')
  // no dot, colon or localhost: a Docker Hub user named like a host
  t.is(parseReference('myhost/app').registry, 'docker.io')
  t.is(parseReference('myhost/app').repository, 'myhost/app')
})

test('a tag and a digest together keep both; the digest is what is fetched', t => {
  const ref = parseReference(`app:1.0@${D}`)
  t.is(ref.tag, '1.0')
  t.is(ref.digest, D)
  t.is(manifestSelector(ref), D)
  t.is(formatReference(ref), `docker.io/library/app:1.0@${D}`)
})

test('malformed references are refused with a reason', t => {
  const cases: Array<[string, RegExp]> = [
    ['', /empty/],
    [' busybox', /spaces/],
    ['Busybox', /lowercase/],
    ['user/App', /lowercase/],
    ['app:', /tag/],
    ['app:-x', /tag/],
    [`app:${'x'.repeat(129)}`, /tag/],
    ['app@sha256:abc', /digest/],
    [`app@md5:${'a'.repeat(32)}`, /digest/],
    [`app@sha256:${'A'.repeat(64)}`, /digest/],
    ['a//b', /empty component/],
    ['app/', /empty component/],
    ['/app', /empty component/],
    ['a..b/c/d', /registry|component/],
    ['-bad.host/app', /registry/],
    ['host:port/app', /registry/],
    ['ap--p_', /component/],
    ['my_host.com/app', /registry/],
    [':tag', /no repository/],
    [`x/${'a'.repeat(256)}`, /longer/]
  ]
  for (const [text, why] of cases) {
    const err = t.throws(() => parseReference(text), { instanceOf: InvalidReferenceError }, text)
    t.regex(err?.message ?? '', why, text)
  }
  // separators the grammar allows
  t.is(parseReference('a__b-c---d/e.f_g').repository, 'a__b-c---d/e.f_g')
})

test('WWW-Authenticate challenges are parsed: Basic, and Bearer with quoted params', t => {
  t.deepEqual(parseChallenge('Basic realm="shoal-test"'), { scheme: 'basic', params: { realm: 'shoal-test' } })
  t.deepEqual(parseChallenge('Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/busybox:pull"'), {
    scheme: 'bearer',
    params: { realm: 'https://auth.docker.io/token', service: 'registry.docker.io', scope: 'repository:library/busybox:pull' }
  })
  t.deepEqual(parseChallenge('Bearer realm=https://a/t, service=reg , error="insufficient_scope"'), {
    scheme: 'bearer', params: { realm: 'https://a/t', service: 'reg', error: 'insufficient_scope' }
  })
  t.is(parseChallenge(''), undefined)
})

test('the registry\'s own error message is read from its errors body', t => {
  t.deepEqual(registryMessage('{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown","detail":{}}]}'), { code: 'MANIFEST_UNKNOWN', message: 'manifest unknown' })
  t.deepEqual(registryMessage('<html>502</html>'), {})
  t.deepEqual(registryMessage('{"errors":[]}'), {})
})

test('loopback and listed registries are plain http, others https', t => {
  t.is(schemeFor('127.0.160.2:5000'), 'http')
  t.is(schemeFor('localhost'), 'http')
  t.is(schemeFor('localhost:5000'), 'http')
  t.is(schemeFor('[::1]:5000'), 'http')
  t.is(schemeFor('registry-1.docker.io'), 'https')
  t.is(schemeFor('127.example.com'), 'https')
  t.is(schemeFor('10.0.0.5:5000'), 'https')
  t.is(schemeFor('10.0.0.5:5000', ['10.0.0.5:5000']), 'http')
})

test('pull secrets: auth or username/password, by host, with Docker Hub\'s aliases', t => {
  const auth = (u: string, p: string): string => Buffer.from(`${u}:${p}`).toString('base64')
  const secret = JSON.stringify({
    auths: {
      'https://index.docker.io/v1/': { auth: auth('hub', 'pw:with:colons') },
      'quay.io': { username: 'q', password: 'qp' },
      'http://127.0.160.3:5000': { auth: auth('local', 'lp') }
    }
  })
  t.deepEqual(credentialsFor(secret, 'docker.io'), { username: 'hub', password: 'pw:with:colons' })
  t.deepEqual(credentialsFor(secret, 'quay.io'), { username: 'q', password: 'qp' })
  t.deepEqual(credentialsFor(secret, '127.0.160.3:5000'), { username: 'local', password: 'lp' })
  t.is(credentialsFor(secret, 'ghcr.io'), undefined)
  t.deepEqual(credentialsFor({ auths: { 'index.docker.io': { auth: auth('a', 'b') } } }, 'docker.io'), { username: 'a', password: 'b' })
  t.deepEqual(credentialsFor({ auths: { 'docker.io': { username: 'c', password: 'd' } } }, 'docker.io'), { username: 'c', password: 'd' })
  t.is(credentialsFor({}, 'docker.io'), undefined)
  t.throws(() => credentialsFor('{not json', 'docker.io'), { name: 'PullError' })
})

test('the default pull policy is Kubernetes\': Always for latest, IfNotPresent for a tag or digest', t => {
  t.is(defaultPullPolicy(parseReference('busybox')), 'Always')
  t.is(defaultPullPolicy(parseReference('busybox:latest')), 'Always')
  t.is(defaultPullPolicy(parseReference('busybox:1.36')), 'IfNotPresent')
  t.is(defaultPullPolicy(parseReference(`busybox@${D}`)), 'IfNotPresent')
})

test('the image config\'s run settings, with wrong types read as empty', t => {
  t.deepEqual(imageConfig({ config: { User: '1000:1000', Entrypoint: ['/bin/sh'], Cmd: ['-c', 'x'], Env: ['A=1', 2], WorkingDir: '/w' } }),
    { entrypoint: ['/bin/sh'], cmd: ['-c', 'x'], env: ['A=1'], user: '1000:1000', workingDir: '/w' })
  t.deepEqual(imageConfig({ config: { Cmd: null } }), { entrypoint: [], cmd: [], env: [], user: '', workingDir: '' })
  t.deepEqual(imageConfig(null), { entrypoint: [], cmd: [], env: [], user: '', workingDir: '' })
})

test('this machine\'s platform is linux and process.arch in OCI\'s names', t => {
  const p = hostPlatform()
  t.is(p.os, 'linux')
  t.is(p.architecture, ({ x64: 'amd64', arm64: 'arm64' } as Record<string, string>)[process.arch] ?? p.architecture)
})
