// HTTPS next to HTTP on the API port: the peer's certificate is made once
// (0600), kept, and made again when it does not cover the API host; one
// listener answers both protocols, or only TLS with --api-tls required (the
// default off loopback); the CLI's config file carries the certificate's
// fingerprint; members gossip it; `shoal kubeconfig` pins a certificate only
// when its fingerprint is the gossiped one, and builds one cluster and
// context per peer.
import test from 'ava'
import { X509Certificate } from 'node:crypto'
import { mkdir, mkdtemp, readFile, rm, stat } from 'node:fs/promises'
import { createServer } from 'node:http'
import { request } from 'node:https'
import { connect } from 'node:net'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { acceptTls, API_CERT_FILE, API_KEY_FILE, loadOrCreateApiCert } from '../../daemon/api/tls.ts'
import { parseDaemonArgs, UsageError } from '../../daemon/config/flags.ts'
import { writeClientConfig } from '../../daemon/config/client-config.ts'
import { apiHostPort, FingerprintMismatchError, fetchCertificate, kubeconfigDocument, pinnedCertificate } from '../../cli/kubeconfig.ts'
import { isMemberRecord } from '../../protocol/membership.ts'
import { certificateFingerprint, isLoopbackHost, normalizeFingerprint } from '../../protocol/tls.ts'

test('the certificate is made once, 0600, and again when it does not cover the API host', async t => {
  const dir = await mkdtemp(join(tmpdir(), 'shoal-tls-'))
  t.teardown(async () => { await rm(dir, { recursive: true, force: true }) })
  const first = await loadOrCreateApiCert(dir, '127.0.0.1')
  t.is((await stat(join(dir, API_KEY_FILE))).mode & 0o777, 0o600)
  t.is((await stat(join(dir, API_CERT_FILE))).mode & 0o777, 0o600)
  const x = new X509Certificate(first.cert)
  t.is(x.checkIP('127.0.0.1'), '127.0.0.1')
  t.is(x.checkHost('localhost'), 'localhost')
  t.true(x.ca, 'clients pin it as their CA')
  t.deepEqual(await loadOrCreateApiCert(dir, '127.0.0.1'), first, 'kept across restarts')
  const moved = await loadOrCreateApiCert(dir, '127.0.99.7')
  t.not(moved.cert, first.cert)
  t.is(new X509Certificate(moved.cert).checkIP('127.0.99.7'), '127.0.99.7')
})

test('one port answers HTTP and HTTPS; the pinned certificate verifies', async t => {
  const dir = await mkdtemp(join(tmpdir(), 'shoal-tls-'))
  const creds = await loadOrCreateApiCert(dir, '127.0.0.1')
  const server = createServer((req, res) => { res.end(`${(req.socket as { encrypted?: boolean }).encrypted === true ? 'https' : 'http'} ${req.url ?? ''}`) })
  acceptTls(server, creds)
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  t.teardown(async () => {
    server.closeAllConnections()
    await new Promise(resolve => server.close(resolve))
    await rm(dir, { recursive: true, force: true })
  })
  const { port } = server.address() as AddressInfo
  t.is(await (await fetch(`http://127.0.0.1:${port}/plain`)).text(), 'http /plain')
  const pinned = await fetchCertificate('127.0.0.1', port)
  t.is(new X509Certificate(pinned).fingerprint256, new X509Certificate(creds.cert).fingerprint256)
  const body = await new Promise<string>((resolve, reject) => {
    request({ host: '127.0.0.1', port, path: '/secure', ca: pinned }, res => {
      let text = ''
      res.setEncoding('utf8').on('data', (s: string) => { text += s }).on('end', () => { resolve(text) })
    }).on('error', reject).end()
  })
  t.is(body, 'https /secure')
  // Another certificate is refused: the pin is what makes the connection trusted.
  const otherDir = await mkdtemp(join(tmpdir(), 'shoal-tls-'))
  t.teardown(async () => { await rm(otherDir, { recursive: true, force: true }) })
  const other = await loadOrCreateApiCert(otherDir, '127.0.0.1')
  await t.throwsAsync(new Promise((resolve, reject) => {
    request({ host: '127.0.0.1', port, path: '/', ca: other.cert }, resolve).on('error', reject).end()
  }))
})

test('kubeconfig: a cluster and a context per peer, one user, the current context', t => {
  t.deepEqual(apiHostPort({ api: '127.0.0.3:7070', addrs: [] }), { host: '127.0.0.3', port: 7070 })
  t.deepEqual(apiHostPort({ api: '0.0.0.0:7070', addrs: ['/ip4/10.1.2.3/tcp/7946'] }), { host: '10.1.2.3', port: 7070 })
  t.is(apiHostPort({ api: 'nonsense', addrs: [] }), undefined)
  const doc = kubeconfigDocument([{ name: 'p1', server: 'https://127.0.0.2:7070', ca: 'PEM1' }, { name: 'p2', server: 'https://127.0.0.3:7070', ca: 'PEM2' }], 'p2', 'tok', 'shoal-') as any
  t.is(doc.kind, 'Config')
  t.deepEqual(doc.clusters.map((c: any) => [c.name, c.cluster.server, Buffer.from(c.cluster['certificate-authority-data'], 'base64').toString()]), [
    ['shoal-p1', 'https://127.0.0.2:7070', 'PEM1'], ['shoal-p2', 'https://127.0.0.3:7070', 'PEM2']
  ])
  t.deepEqual(doc.users, [{ name: 'shoal-admin', user: { token: 'tok' } }])
  t.deepEqual(doc.contexts.map((c: any) => [c.name, c.context.cluster, c.context.user]), [['shoal-p1', 'shoal-p1', 'shoal-admin'], ['shoal-p2', 'shoal-p2', 'shoal-admin']])
  t.is(doc['current-context'], 'shoal-p2')
})

/** Sends `raw` on a plain TCP connection and reads until the server closes it. */
async function rawExchange (port: number, raw: string): Promise<string> {
  return await new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1', () => { socket.write(raw) })
    let answer = ''
    socket.setEncoding('utf8').on('data', (s: string) => { answer += s })
    socket.on('close', () => { resolve(answer) })
    socket.on('error', reject)
    socket.setTimeout(5000, () => { socket.destroy(new Error('the server kept the connection open')) })
  })
}

test('--api-tls required: plain HTTP gets a 400 Status and a closed connection, never the handler; TLS is served', async t => {
  const dir = await mkdtemp(join(tmpdir(), 'shoal-tls-'))
  const creds = await loadOrCreateApiCert(dir, '127.0.0.1')
  let handled = 0
  const server = createServer((_req, res) => { handled++; res.end('served') })
  acceptTls(server, creds, { mode: 'required' })
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  t.teardown(async () => {
    server.closeAllConnections()
    await new Promise(resolve => server.close(resolve))
    await rm(dir, { recursive: true, force: true })
  })
  const { port } = server.address() as AddressInfo
  const res = await fetch(`http://127.0.0.1:${port}/api/v1/pods`, { headers: { authorization: 'Bearer leaked' } })
  t.is(res.status, 400)
  t.is(res.headers.get('connection'), 'close')
  t.deepEqual(await res.json(), {
    kind: 'Status', apiVersion: 'v1', status: 'Failure', reason: 'BadRequest', code: 400,
    message: `Client sent an HTTP request to an HTTPS server: this API requires TLS (shoald --api-tls required); use https://127.0.0.1:${port}`
  })
  // A request with a body, and one that is not even HTTP: each gets one answer (or none) and the connection closes.
  const withBody = await rawExchange(port, 'POST /api/v1/namespaces/default/pods HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello')
  t.regex(withBody, /^HTTP\/1\.1 400 Bad Request\r\n/)
  t.regex(await rawExchange(port, 'garbage\r\n\r\n'), /^(HTTP\/1\.1 400 |$)/)
  const body = await new Promise<string>((resolve, reject) => {
    request({ host: '127.0.0.1', port, path: '/secure', ca: creds.cert }, r => {
      let text = ''
      r.setEncoding('utf8').on('data', (s: string) => { text += s }).on('end', () => { resolve(text) })
    }).on('error', reject).end()
  })
  t.is(body, 'served')
  t.is(handled, 1, 'only the TLS request reached the API')
})

test('--api-tls: required by default unless --api is loopback; optional or required when given; anything else is a usage error', t => {
  const tls = (...argv: string[]): string => parseDaemonArgs(['--client-config', 'none', ...argv]).apiTls
  t.is(tls('--api', '127.0.0.2:7070'), 'optional')
  t.is(tls('--api', 'localhost:7070'), 'optional')
  t.is(tls('--api', '[::1]:7070'), 'optional')
  t.is(tls(), 'optional', 'the default --api is 127.0.0.1:7070')
  t.is(tls('--api', '0.0.0.0:7070'), 'required')
  t.is(tls('--api', '10.1.2.3:7070'), 'required')
  t.is(tls('--api', 'node1.lan:7070'), 'required')
  t.is(tls('--api', '0.0.0.0:7070', '--api-tls', 'optional'), 'optional')
  t.is(tls('--api', '127.0.0.2:7070', '--api-tls', 'required'), 'required')
  const err = t.throws(() => tls('--api-tls', 'yes'), { instanceOf: UsageError })
  t.is(err?.message, '--api-tls: "yes" is not required or optional')
})

test('fingerprints: one canonical form; loopback hosts', t => {
  const hex = 'ab'.repeat(32)
  const canonical = Array(32).fill('AB').join(':')
  t.is(normalizeFingerprint(hex), canonical)
  t.is(normalizeFingerprint(`SHA256:${canonical.toLowerCase()}`), canonical)
  t.is(normalizeFingerprint('ab'.repeat(31)), undefined)
  t.is(normalizeFingerprint('zz'.repeat(32)), undefined)
  for (const h of ['127.0.0.1', '127.0.17.2', '::1', '[::1]', 'localhost', '::ffff:127.0.0.1']) t.true(isLoopbackHost(h), h)
  for (const h of ['0.0.0.0', '::', '10.0.0.1', '192.0.2.2', 'example.com', '::2']) t.false(isLoopbackHost(h), h)
})

test('the CLI\'s config file carries the certificate\'s fingerprint; peers of one cluster add theirs, another cluster replaces them', async t => {
  const dir = await mkdtemp(join(tmpdir(), 'shoal-tls-'))
  t.teardown(async () => { await rm(dir, { recursive: true, force: true }) })
  await mkdir(join(dir, 'a'))
  await mkdir(join(dir, 'b'))
  const a = await loadOrCreateApiCert(join(dir, 'a'), '127.0.0.2')
  const b = await loadOrCreateApiCert(join(dir, 'b'), '127.0.0.3')
  const path = join(dir, 'config', 'config.json')
  const read = async (): Promise<unknown> => JSON.parse(await readFile(path, 'utf8'))
  await writeClientConfig(path, 'http://127.0.0.2:7070', 'tok', join(dir, 'a', API_CERT_FILE))
  t.deepEqual(await read(), { servers: ['http://127.0.0.2:7070'], token: 'tok', fingerprints: [certificateFingerprint(a.cert)] })
  t.is((await stat(path)).mode & 0o777, 0o600)
  await writeClientConfig(path, 'https://127.0.0.3:7070', 'tok', join(dir, 'b', API_CERT_FILE))
  t.deepEqual(await read(), { servers: ['http://127.0.0.2:7070', 'https://127.0.0.3:7070'], token: 'tok', fingerprints: [certificateFingerprint(a.cert), certificateFingerprint(b.cert)] })
  await writeClientConfig(path, 'http://127.0.0.9:7070', 'other', join(dir, 'missing', API_CERT_FILE))
  t.deepEqual(await read(), { servers: ['http://127.0.0.9:7070'], token: 'other' })
})

test('members gossip a well-formed fingerprint or none', t => {
  const record = { name: 'p1', peerId: 'id', addrs: [], api: '127.0.0.2:7070', version: '0', capacity: { cpu: 1, memory: 1 }, startedAt: 0, incarnation: 1, seq: 1, heartbeatMs: 1000 }
  t.true(isMemberRecord(record), 'a peer older than the field')
  t.true(isMemberRecord({ ...record, apiFingerprint: Array(32).fill('0F').join(':') }))
  t.false(isMemberRecord({ ...record, apiFingerprint: 'AB:CD' }))
  t.false(isMemberRecord({ ...record, apiFingerprint: 42 }))
})

test('kubeconfig pins a peer\'s certificate only when its fingerprint is the gossiped one', async t => {
  const dir = await mkdtemp(join(tmpdir(), 'shoal-tls-'))
  const creds = await loadOrCreateApiCert(dir, '127.0.0.1')
  await mkdir(join(dir, 'impostor'))
  const impostor = await loadOrCreateApiCert(join(dir, 'impostor'), '127.0.0.1')
  const server = createServer((_req, res) => { res.end() })
  acceptTls(server, creds)
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  t.teardown(async () => {
    server.closeAllConnections()
    await new Promise(resolve => server.close(resolve))
    await rm(dir, { recursive: true, force: true })
  })
  const { port } = server.address() as AddressInfo
  const pem = await pinnedCertificate('127.0.0.1', port, certificateFingerprint(creds.cert))
  t.is(certificateFingerprint(pem), certificateFingerprint(creds.cert))
  const err = await t.throwsAsync(pinnedCertificate('127.0.0.1', port, certificateFingerprint(impostor.cert)), { instanceOf: FingerprintMismatchError })
  t.is(err?.message, `127.0.0.1:${port} presented a certificate with SHA-256 ${certificateFingerprint(creds.cert)}, not the ${certificateFingerprint(impostor.cert)} the member gossips`)
})
