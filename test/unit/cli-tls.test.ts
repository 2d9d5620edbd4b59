// The CLI's trust in a peer's certificate, against real API ports (node:http
// with the daemon's acceptTls and certificates): https:// is pinned to the
// fingerprints in the config file or to --api-cert, a wrong certificate is
// one line and exit 1 with no request sent (and never a retry over plain
// HTTP), a write moves on from an untrusted server, and a peer that requires
// TLS answers plain HTTP with a 400 the CLI prints as one line.
import { createServer } from 'node:http'
import type { IncomingMessage, ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import test from 'ava'
import type { ExecutionContext } from 'ava'
import { acceptTls, API_CERT_FILE, loadOrCreateApiCert } from '../../daemon/api/tls.ts'
import type { ApiCert, ApiTlsMode } from '../../daemon/api/tls.ts'
import { ApiClient, UnreachableError } from '../../cli/client.ts'
import { main } from '../../cli/main.ts'
import { certificateFingerprint } from '../../protocol/tls.ts'

const TOKEN = 'tls-test-token'

async function tempDir (t: ExecutionContext): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'shoal-cli-tls-'))
  t.teardown(async () => { await rm(dir, { recursive: true, force: true }) })
  return dir
}

interface Peer {
  /** https://127.0.0.1:port */
  https: string
  http: string
  cert: ApiCert
  certFile: string
  fingerprint: string
  /** every request that reached the API handler, and whether it came over TLS */
  requests: Array<{ method: string, path: string, tls: boolean }>
}

/** An API port as shoald serves it: acceptTls in `mode`, a handler for members, a KV write, a watch and a silent path. */
async function peer (t: ExecutionContext, mode: ApiTlsMode = 'optional'): Promise<Peer> {
  const dir = await tempDir(t)
  const cert = await loadOrCreateApiCert(dir, '127.0.0.1')
  const requests: Peer['requests'] = []
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    requests.push({ method: req.method ?? '', path: req.url ?? '', tls: (req.socket as { encrypted?: boolean }).encrypted === true })
    if (req.headers.authorization !== `Bearer ${TOKEN}`) {
      res.writeHead(401, { 'content-type': 'application/json' }).end(JSON.stringify({ kind: 'Status', code: 401, reason: 'Unauthorized', message: 'bad token' }))
    } else if (req.url === '/shoal/v1/members') {
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ kind: 'MemberList', items: [] }))
    } else if (req.url === '/shoal/v1/kv/k' && req.method === 'PUT') {
      req.resume()
      req.on('end', () => { res.writeHead(200, { 'content-type': 'application/json' }).end('{"index": 7}') })
    } else if (req.url === '/watch') {
      res.writeHead(200, { 'content-type': 'application/json' })
      res.write('{"n":1}\n')
      setTimeout(() => { res.end('{"n":2}\n') }, 20)
    } else if (req.url === '/silent') {
      // never answers
    } else {
      res.writeHead(404, { 'content-type': 'application/json' }).end(JSON.stringify({ kind: 'Status', code: 404, reason: 'NotFound', message: 'no such path' }))
    }
  })
  acceptTls(server, cert, { mode })
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  t.teardown(async () => {
    server.closeAllConnections()
    await new Promise(resolve => server.close(resolve))
  })
  const { port } = server.address() as AddressInfo
  return { https: `https://127.0.0.1:${port}`, http: `http://127.0.0.1:${port}`, cert, certFile: join(dir, API_CERT_FILE), fingerprint: certificateFingerprint(cert.cert), requests }
}

interface Run { code: number, stdout: string, stderr: string }

async function shoal (t: ExecutionContext, argv: string[], config?: unknown): Promise<Run> {
  const path = join(await tempDir(t), 'config.json')
  if (config !== undefined) await writeFile(path, JSON.stringify(config))
  let stdout = ''
  let stderr = ''
  const code = await main(argv, {
    stdout: { write: (s: string) => { stdout += s } },
    stderr: { write: (s: string) => { stderr += s } },
    env: { SHOAL_CONFIG: path },
    now: () => Date.now()
  })
  return { code, stdout, stderr }
}

/** Exactly one `shoal: ` line on stderr, nothing on stdout, exit 1; the line. */
function errorLine (t: ExecutionContext, r: Run): string {
  t.is(r.code, 1)
  t.is(r.stdout, '')
  t.regex(r.stderr, /^shoal: [^\n]+\n$/)
  return r.stderr.trimEnd()
}

test('https:// with the fingerprint from the config file: the request goes over TLS', async t => {
  const p = await peer(t)
  const r = await shoal(t, ['members', '-o', 'json'], { servers: [p.https], token: TOKEN, fingerprints: [p.fingerprint.toLowerCase().replaceAll(':', '')] })
  t.is(r.code, 0, r.stderr)
  t.deepEqual(JSON.parse(r.stdout), { kind: 'MemberList', items: [] })
  t.deepEqual(p.requests, [{ method: 'GET', path: '/shoal/v1/members', tls: true }])
})

test('a wrong fingerprint is refused: one line, exit 1, nothing sent, no retry over plain HTTP', async t => {
  const p = await peer(t)
  const other = await peer(t)
  const r = await shoal(t, ['members'], { servers: [p.https], token: TOKEN, fingerprints: [other.fingerprint] })
  const line = errorLine(t, r)
  t.is(line, `shoal: cannot reach any server (${p.https}: TLS: the server's certificate (SHA-256 ${p.fingerprint}) is not a trusted one: pin its fingerprint in the config file or pass --api-cert <data-dir>/api.crt)`)
  t.deepEqual(p.requests, [], 'neither the token nor a request reached the server, over TLS or plain HTTP')
})

test('--api-cert trusts that certificate file only, and wins over the config file', async t => {
  const p = await peer(t)
  const other = await peer(t)
  const ok = await shoal(t, ['--api-cert', p.certFile, 'members', '-o', 'json'], { servers: [p.https], token: TOKEN, fingerprints: [other.fingerprint] })
  t.is(ok.code, 0, ok.stderr)
  const wrong = await shoal(t, ['--server', p.https, '--token', TOKEN, '--api-cert', other.certFile, 'members'], { servers: [], token: '', fingerprints: [p.fingerprint] })
  t.regex(errorLine(t, wrong), /TLS: the server's certificate \(SHA-256 [0-9A-F:]{95}\) is not a trusted one/)
  const missing = await shoal(t, ['--server', p.https, '--token', TOKEN, '--api-cert', join(tmpdir(), 'no-such-shoal-cert.crt'), 'members'])
  t.regex(errorLine(t, missing), /^shoal: --api-cert: cannot read \S+no-such-shoal-cert\.crt: ENOENT$/)
  t.deepEqual(p.requests.map(x => x.tls), [true])
})

test('https:// with no fingerprint checks the system CAs: a self-signed peer is one line saying how to trust it', async t => {
  const p = await peer(t)
  const r = await shoal(t, ['--server', p.https, '--token', TOKEN, 'members'])
  t.is(errorLine(t, r), `shoal: cannot reach any server (${p.https}: TLS: self-signed certificate, not trusted (pin its fingerprint in the config file, or pass --api-cert <data-dir>/api.crt))`)
  t.deepEqual(p.requests, [])
})

test('a malformed fingerprint in the config file is one line naming the file', async t => {
  const p = await peer(t)
  const r = await shoal(t, ['members'], { servers: [p.https], token: TOKEN, fingerprints: ['not-a-fingerprint'] })
  t.regex(errorLine(t, r), /^shoal: the config file \S+config\.json: "not-a-fingerprint" is not a SHA-256 fingerprint \(64 hex digits, colons optional\)$/)
})

test('a write moves on from a server whose certificate is untrusted (nothing was sent) to a trusted one', async t => {
  const untrusted = await peer(t)
  const trusted = await peer(t)
  const client = new ApiClient({ servers: [untrusted.https, trusted.https], token: TOKEN, trust: { fingerprints: [trusted.fingerprint] } })
  const res = await client.request('PUT', '/shoal/v1/kv/k', Buffer.from('v'))
  t.deepEqual(res, { server: trusted.https, code: 200, body: { index: 7 } })
  t.deepEqual(untrusted.requests, [])
  t.deepEqual(trusted.requests, [{ method: 'PUT', path: '/shoal/v1/kv/k', tls: true }])
})

test('a pinned connection streams (watch) and gives up on a silent server after the timeout', async t => {
  const p = await peer(t)
  const client = new ApiClient({ servers: [p.https], token: TOKEN, trust: { fingerprints: [p.fingerprint] }, timeoutMs: 300, maxRounds: 1 })
  const values: unknown[] = []
  await client.stream('/watch', v => { values.push(v) }, new AbortController().signal)
  t.deepEqual(values, [{ n: 1 }, { n: 2 }])
  const err = await t.throwsAsync(client.get('/silent'), { instanceOf: UnreachableError })
  t.is(err?.message, `cannot reach any server (${p.https}: timed out after 0.3s)`)
})

test('a peer that requires TLS answers plain HTTP with a 400 the CLI prints as one line; its handler never sees it', async t => {
  const p = await peer(t, 'required')
  const port = new URL(p.https).port
  const r = await shoal(t, ['--server', p.http, '--token', TOKEN, 'members'])
  t.is(errorLine(t, r), `shoal: 400 Client sent an HTTP request to an HTTPS server: this API requires TLS (shoald --api-tls required); use https://127.0.0.1:${port}`)
  t.deepEqual(p.requests, [])
  const ok = await shoal(t, ['--server', p.https, '--token', TOKEN, '--api-cert', p.certFile, 'members', '-o', 'json'])
  t.is(ok.code, 0, ok.stderr)
  t.deepEqual(p.requests, [{ method: 'GET', path: '/shoal/v1/members', tls: true }])
})
