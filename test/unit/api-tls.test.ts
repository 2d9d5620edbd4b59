// HTTPS next to HTTP on the API port: the peer's certificate is made once
// (0600), kept, and made again when it does not cover the API host; one
// listener answers both protocols; `shoal kubeconfig` fetches and pins the
// certificate and builds one cluster and context per peer.
import test from 'ava'
import { X509Certificate } from 'node:crypto'
import { mkdtemp, rm, stat } from 'node:fs/promises'
import { createServer } from 'node:http'
import { request } from 'node:https'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { acceptTls, API_CERT_FILE, API_KEY_FILE, loadOrCreateApiCert } from '../../daemon/api/tls.ts'
import { apiHostPort, fetchCertificate, kubeconfigDocument } from '../../cli/kubeconfig.ts'

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
