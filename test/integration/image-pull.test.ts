// Pulling from a real registry (Debian's docker-registry) with the image
// client (daemon/image/): images built here from the host's busybox, pushed
// to an open registry on 127.0.160.2 and an htpasswd one on 127.0.160.3;
// pulls by tag, by digest and through an index, the unpacked root, auth
// failures carrying the registry's words, the cache and its gc. A Bearer
// token server in front of the open registry covers the token flow.
import test from 'ava'
import { execFileSync } from 'node:child_process'
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs'
import { mkdtemp, readdir, rm } from 'node:fs/promises'
import { createServer } from 'node:http'
import type { Server } from 'node:http'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { ImagePuller } from '../../daemon/image/puller.ts'
import { credentialsFor, PullError } from '../../daemon/image/registry.ts'
import { arm64Image, BUSYBOX, busyboxImage, indexOf, pushImage, pushIndex } from '../helpers/oci-build.ts'
import type { BuiltImage, BuiltIndex } from '../helpers/oci-build.ts'
import { registryMissing, registryTests, startRegistry } from '../helpers/oci-registry.ts'
import type { Registry } from '../helpers/oci-registry.ts'

const rtest = registryTests(test)
const USER = { username: 'shoal', password: 'right-password' }
const REPO = 'test/busybox'

let open: Registry
let locked: Registry
let bb: BuiltImage
let arm: BuiltImage
let multi: BuiltIndex
let scratch: string

test.before(async () => {
  if (registryMissing() !== undefined) return
  scratch = await mkdtemp(join(tmpdir(), 'shoal-image-pull-'))
  ;[open, locked] = await Promise.all([startRegistry({ ip: '127.0.160.2' }), startRegistry({ ip: '127.0.160.3', htpasswd: USER })])
  bb = await busyboxImage()
  arm = await arm64Image()
  multi = indexOf([{ image: bb, architecture: 'amd64' }, { image: arm, architecture: 'arm64' }])
  await pushImage({ url: open.url }, REPO, '1.0', bb)
  await pushImage({ url: open.url }, 'test/arm', '1.0', arm)
  await pushIndex({ url: open.url }, REPO, 'multi', multi)
  await pushImage({ url: locked.url, auth: USER }, REPO, '1.0', bb)
})

test.after.always(async () => {
  await open?.stop()
  await locked?.stop()
  if (scratch !== undefined) await rm(scratch, { recursive: true, force: true })
})


let n = 0
async function puller (opts: { fetch?: typeof fetch, cacheDir?: string } = {}): Promise<ImagePuller> {
  const cacheDir = opts.cacheDir ?? await mkdtemp(join(scratch, `cache-${n++}-`))
  return new ImagePuller({ cacheDir, platform: { os: 'linux', architecture: 'amd64' }, ...(opts.fetch !== undefined ? { fetch: opts.fetch } : {}) })
}

/** A fetch that records every URL it is asked for. */
function countingFetch (): { fetch: typeof fetch, urls: string[] } {
  const urls: string[] = []
  const counted: typeof fetch = async (input, init) => {
    urls.push(input instanceof Request ? input.url : String(input))
    return await fetch(input, init)
  }
  return { fetch: counted, urls }
}

function checkBusyboxRoot (t: import('ava').ExecutionContext, root: string): void {
  t.true(readFileSync(join(root, 'bin/busybox')).equals(readFileSync(BUSYBOX)), 'the busybox binary arrived intact')
  t.is(statSync(join(root, 'bin/busybox')).mode & 0o777, 0o755)
  t.is(execFileSync(join(root, 'bin/busybox'), ['echo', 'it runs'], { timeout: 10_000 }).toString(), 'it runs\n')
  t.is(statSync(join(root, 'bin/busybox-hard')).ino, statSync(join(root, 'bin/busybox')).ino)
  t.false(existsSync(join(root, 'etc/removed-later')), 'the whiteout removed the lower file')
  t.true(existsSync(join(root, 'etc/passwd')))
  t.deepEqual(readdirSync(join(root, 'cache')), ['new'], 'the opaque directory holds only the upper layer\'s file')
  t.is(readFileSync(join(root, 'app/hello.txt'), 'utf8'), 'hello from layer 2\n')
  t.is(statSync(join(root, 'app/layer-3')).mode & 0o777, 0o600, 'the plain tar layer was applied')
  t.is(statSync(join(root, 'tmp')).mode & 0o7777, 0o1777)
  if (process.getuid?.() === 0) t.is(statSync(join(root, 'app/hello.txt')).uid, 1000)
}

rtest('pull by tag: the config\'s run settings, and the unpacked root has busybox, the whiteout and the opaque directory', async t => {
  const p = await puller()
  const image = await p.pull(`${open.host}/${REPO}:1.0`)
  t.is(image.manifestDigest, bb.manifest.digest)
  t.is(image.reference, `${open.host}/${REPO}:1.0`)
  t.deepEqual(image.config, { entrypoint: ['/bin/sh', '-c'], cmd: ['echo hello'], env: ['PATH=/bin', 'GREETING=hello'], user: '1000:1000', workingDir: '/app' })
  t.is(image.layers.length, 3)
  t.deepEqual(image.layerPaths.map(f => readFileSync(f).length), image.layers.map(l => l.size))
  const root = join(scratch, 'root-by-tag')
  const report = await p.unpackTo(image, root)
  checkBusyboxRoot(t, root)
  t.deepEqual(report.owners.get('app/hello.txt'), { uid: 1000, gid: 1000 })
})

rtest('pull by digest', async t => {
  const p = await puller()
  const image = await p.pull(`${open.host}/${REPO}@${bb.manifest.digest}`)
  t.is(image.manifestDigest, bb.manifest.digest)
  t.is(image.indexDigest, undefined)
  const root = join(scratch, 'root-by-digest')
  await p.unpackTo(image, root)
  checkBusyboxRoot(t, root)
})

rtest('an index resolves to the platform asked for, and names what it offers when it has none', async t => {
  const p = await puller()
  const amd = await p.pull(`${open.host}/${REPO}:multi`)
  t.is(amd.manifestDigest, bb.manifest.digest)
  t.is(amd.indexDigest, multi.index.digest)
  t.is(amd.config.user, '1000:1000')
  const armImage = await p.pull(`${open.host}/${REPO}:multi`, { platform: { os: 'linux', architecture: 'arm64' } })
  t.is(armImage.manifestDigest, arm.manifest.digest)
  const root = join(scratch, 'root-arm64')
  await p.unpackTo(armImage, root)
  t.deepEqual(readdirSync(root), ['arch.txt'])
  const err = await t.throwsAsync(p.pull(`${open.host}/${REPO}:multi`, { platform: { os: 'linux', architecture: 's390x' } }), { instanceOf: PullError })
  t.regex(err?.message ?? '', /no image for linux\/s390x; it offers linux\/amd64, linux\/arm64/)
  if (process.arch === 'x64') {
    const host = new ImagePuller({ cacheDir: join(scratch, 'cache-host-platform') })
    t.is((await host.pull(`${open.host}/${REPO}:multi`)).manifestDigest, bb.manifest.digest, 'this machine\'s platform is linux/amd64')
  }
})

rtest('an htpasswd registry: a pull secret\'s credentials pull; a wrong password or none is a PullError with the registry\'s message', async t => {
  const p = await puller()
  const secret = (password: string): string => JSON.stringify({ auths: { [`http://${locked.host}`]: { auth: Buffer.from(`${USER.username}:${password}`).toString('base64') } } })
  const good = await p.pull(`${locked.host}/${REPO}:1.0`, { credentials: registry => credentialsFor(secret(USER.password), registry) })
  t.is(good.manifestDigest, bb.manifest.digest)

  const wrong = await t.throwsAsync(p.pull(`${locked.host}/${REPO}:1.0`, { policy: 'Always', credentials: registry => credentialsFor(secret('wrong'), registry) }), { instanceOf: PullError })
  t.is(wrong?.status, 401)
  t.is(wrong?.code, 'UNAUTHORIZED')
  t.is(wrong?.reason, 'ErrImagePull')
  t.regex(wrong?.message ?? '', /authentication required/, 'the registry\'s own message')
  const none = await t.throwsAsync((await puller()).pull(`${locked.host}/${REPO}:1.0`), { instanceOf: PullError })
  t.regex(none?.message ?? '', /401 UNAUTHORIZED: authentication required/)
})

rtest('an unknown tag or repository is a PullError with the registry\'s code and message', async t => {
  const p = await puller()
  const err = await t.throwsAsync(p.pull(`${open.host}/${REPO}:nope`), { instanceOf: PullError })
  t.is(err?.status, 404)
  t.is(err?.code, 'MANIFEST_UNKNOWN')
  t.regex(err?.message ?? '', /manifest unknown/)
  const refused = await t.throwsAsync(p.pull('127.0.160.2:1/x:1'), { instanceOf: PullError })
  t.regex(refused?.message ?? '', /cannot reach 127\.0\.160\.2:1/)
})

rtest('a second pull fetches no blob; IfNotPresent makes no request at all; Never refuses what is not cached', async t => {
  const counter = countingFetch()
  const p = await puller({ fetch: counter.fetch })
  const ref = `${open.host}/${REPO}:1.0`
  const first = await p.pull(ref)
  t.is(counter.urls.filter(u => u.includes('/blobs/')).length, 4, 'config and three layers')
  const mtimes = first.layerPaths.map(f => statSync(f).mtimeMs)

  counter.urls.length = 0
  const again = await p.pull(ref, { policy: 'Always' })
  t.deepEqual(counter.urls.filter(u => u.includes('/blobs/')), [], 'no blob refetched')
  t.true(counter.urls.some(u => u.includes('/manifests/1.0')), 'Always still asks for the manifest')
  t.false(again.fromCache)
  t.deepEqual(again.layerPaths.map(f => statSync(f).mtimeMs), mtimes)

  counter.urls.length = 0
  const cached = await p.pull(ref, { policy: 'IfNotPresent' })
  t.deepEqual(counter.urls, [])
  t.true(cached.fromCache)
  t.deepEqual(cached.config, first.config)

  const never = await t.throwsAsync(p.pull(`${open.host}/test/arm:1.0`, { policy: 'Never' }), { instanceOf: PullError })
  t.is(never?.reason, 'ErrImageNeverPull')
  t.deepEqual(counter.urls, [])
})

rtest('a blob whose bytes do not match its digest is refused and leaves nothing in the cache', async t => {
  const corrupting: typeof fetch = async (input, init) => {
    const url = input instanceof Request ? input.url : String(input)
    const res = await fetch(input, init)
    if (!url.includes('/blobs/')) return res
    const bytes = Buffer.from(await res.arrayBuffer())
    bytes[bytes.length - 1] = (bytes[bytes.length - 1] ?? 0) ^ 0xff
    return new Response(bytes, { status: res.status, headers: res.headers })
  }
  const cacheDir = join(scratch, 'cache-corrupt')
  const p = await puller({ fetch: corrupting, cacheDir })
  const err = await t.throwsAsync(p.pull(`${open.host}/test/arm:1.0`), { instanceOf: PullError })
  t.regex(err?.message ?? '', /arrived with digest sha256:/)
  const blobs = await readdir(join(cacheDir, 'blobs/sha256'))
  t.deepEqual(blobs, [arm.manifest.digest.slice(7)], 'only the (verified) manifest is stored')
  t.deepEqual(await readdir(join(cacheDir, 'tmp')), [], 'no partial blob is left behind')
  t.deepEqual(await p.content.images(), [])
})

rtest('gc removes the blobs of images not in use and keeps the others', async t => {
  const cacheDir = join(scratch, 'cache-gc')
  const p = await puller({ cacheDir })
  const kept = await p.pull(`${open.host}/${REPO}:1.0`)
  const dropped = await p.pull(`${open.host}/test/arm:1.0`)
  const armBlobs = [dropped.manifestDigest, dropped.configDigest, ...dropped.layers.map(l => l.digest)].sort()
  const result = await p.gc(new Set([kept.manifestDigest]))
  t.deepEqual(result.removedImages, [`${open.host}/test/arm:1.0`])
  t.deepEqual(result.removedBlobs, armBlobs)
  for (const d of armBlobs) t.false(await p.content.has(d))
  for (const d of [kept.manifestDigest, kept.configDigest, ...kept.layers.map(l => l.digest)]) t.true(await p.content.has(d))
  t.deepEqual((await p.content.images()).map(i => i.reference), [`${open.host}/${REPO}:1.0`])
  t.true((await p.pull(`${open.host}/${REPO}:1.0`, { policy: 'IfNotPresent' })).fromCache)
  t.deepEqual((await p.gc(new Set())).removedImages, [`${open.host}/${REPO}:1.0`])
  t.deepEqual(await readdir(join(cacheDir, 'blobs/sha256')), [])
})

rtest('rootOf unpacks an image once, for every container that starts from it; gc removes the roots of images forgotten and unpackings left half-done', async t => {
  const cacheDir = join(scratch, 'cache-roots')
  const p = await puller({ cacheDir })
  const image = await p.pull(`${open.host}/${REPO}:1.0`)
  const roots = await Promise.all([p.rootOf(image), p.rootOf(image), p.rootOf(image)])
  t.is(new Set(roots).size, 1, 'callers at once share one unpacking')
  const root = roots[0] as string
  t.is(root, join(cacheDir, 'roots', image.manifestDigest.slice('sha256:'.length)))
  checkBusyboxRoot(t, root)
  t.deepEqual(await readdir(join(cacheDir, 'roots')), [image.manifestDigest.slice(7)], 'no temporary directory is left')
  const inode = statSync(join(root, 'bin/busybox')).ino
  t.is(await (await puller({ cacheDir })).rootOf(image), root, 'another puller of the cache finds it made')
  t.is(statSync(join(root, 'bin/busybox')).ino, inode, 'and does not unpack it again')
  await mkdtemp(join(cacheDir, 'roots', 'tmp-'))
  const dropped = await p.pull(`${open.host}/test/arm:1.0`)
  const armRoot = await p.rootOf(dropped)
  await p.gc(new Set([image.manifestDigest]))
  t.false(existsSync(armRoot), 'the root of an image forgotten is removed')
  t.deepEqual(await readdir(join(cacheDir, 'roots')), [image.manifestDigest.slice(7)], 'and so is an unpacking left half-done')
})

rtest('a Bearer challenge: the token comes from the realm, with the service, the scope and the basic credentials', async t => {
  // A token server and a registry front on 127.0.160.2 that demand the token, passing GETs on to the real registry.
  const seen: Array<{ service: string | null, scope: string | null, authorization: string | undefined }> = []
  const server: Server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://x')
    if (url.pathname === '/token') {
      seen.push({ service: url.searchParams.get('service'), scope: url.searchParams.get('scope'), authorization: req.headers.authorization })
      res.setHeader('content-type', 'application/json')
      res.end(JSON.stringify(req.headers.authorization === `Basic ${Buffer.from('tok:en').toString('base64')}` ? { access_token: 'tkn-1' } : { token: '' }))
      return
    }
    if (req.headers.authorization !== 'Bearer tkn-1') {
      const { port } = server.address() as { port: number }
      res.statusCode = 401
      res.setHeader('www-authenticate', `Bearer realm="http://127.0.160.2:${port}/token",service="shoal-test",scope="repository:${REPO}:pull"`)
      res.end(JSON.stringify({ errors: [{ code: 'UNAUTHORIZED', message: 'token required' }] }))
      return
    }
    fetch(`${open.url}${req.url ?? '/'}`, { headers: { accept: req.headers.accept ?? '*/*' } }).then(async upstream => {
      res.statusCode = upstream.status
      for (const h of ['content-type', 'docker-content-digest']) { const v = upstream.headers.get(h); if (v !== null) res.setHeader(h, v) }
      res.end(Buffer.from(await upstream.arrayBuffer()))
    }, () => { res.statusCode = 502; res.end() })
  })
  await new Promise<void>(resolve => server.listen(0, '127.0.160.2', resolve))
  t.teardown(() => { server.close() })
  const { port } = server.address() as { port: number }
  const p = await puller()
  const image = await p.pull(`127.0.160.2:${port}/${REPO}:1.0`, { credentials: { username: 'tok', password: 'en' } })
  t.is(image.manifestDigest, bb.manifest.digest)
  t.deepEqual(seen[0], { service: 'shoal-test', scope: `repository:${REPO}:pull`, authorization: `Basic ${Buffer.from('tok:en').toString('base64')}` })
  const err = await t.throwsAsync((await puller()).pull(`127.0.160.2:${port}/${REPO}:1.0`), { instanceOf: PullError })
  t.regex(err?.message ?? '', /answered without a token/)
})

test('blobs that would take the disk below 5 % free are not fetched: the pull fails with how much they need', async t => {
  const manifest = Buffer.from(JSON.stringify({
    schemaVersion: 2,
    mediaType: 'application/vnd.oci.image.manifest.v1+json',
    config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: `sha256:${'a'.repeat(64)}`, size: 2 },
    layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: `sha256:${'b'.repeat(64)}`, size: 2 ** 50 }]
  }))
  const asked: string[] = []
  const fake: typeof fetch = async input => {
    const url = input instanceof Request ? input.url : String(input)
    asked.push(url)
    if (url.includes('/manifests/')) return new Response(manifest, { headers: { 'content-type': 'application/vnd.oci.image.manifest.v1+json' } })
    return new Response('{}', { status: 404 })
  }
  const cacheDir = await mkdtemp(join(tmpdir(), 'shoal-image-space-'))
  t.teardown(async () => { await rm(cacheDir, { recursive: true, force: true }) })
  const p = new ImagePuller({ cacheDir, platform: { os: 'linux', architecture: 'amd64' }, fetch: fake })
  const err = await t.throwsAsync(p.pull('127.0.160.9:5000/huge:1'), { instanceOf: PullError })
  t.regex(err?.message ?? '', /its 2 missing blobs \(\d+ MiB\) would leave less than \d+ MiB free on the disk/)
  t.false(asked.some(u => u.includes('/blobs/')), 'no blob was asked for')
})
