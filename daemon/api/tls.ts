// HTTPS on the API's own port, next to plain HTTP. kubectl (client-go) sends
// a bearer token only over TLS, so a peer must speak it for kubectl to work.
// Each peer makes its own self-signed certificate at first start
// (<data-dir>/api.crt and api.key, 0600; ECDSA P-256, valid ten years) for
// its API host, loopback and its interface addresses, and gossips its SHA-256
// fingerprint with its heartbeat: `shoal kubeconfig` pins the certificate
// whose fingerprint the members gossip, and the CLI trusts the fingerprints
// in its config file. One listener serves both protocols: a connection whose
// first byte is a TLS handshake record goes through TLS; any other is plain
// HTTP, which `--api-tls required` (the default off loopback) answers with a
// 400 and closes, since a bearer token sent in the clear is already lost.
// May import: protocol/, daemon/p2p/keys.ts (writing a secret file), @peculiar/x509.
import { webcrypto, X509Certificate } from 'node:crypto'
import { readFile } from 'node:fs/promises'
import { createServer } from 'node:http'
import type { Server } from 'node:http'
import type { Socket } from 'node:net'
import { isIP } from 'node:net'
import { hostname, networkInterfaces } from 'node:os'
import { join } from 'node:path'
import { createSecureContext, TLSSocket } from 'node:tls'
import * as x509 from '@peculiar/x509'
import { writeSecret } from '../p2p/keys.ts'
import { statusOf } from '../../protocol/status.ts'

export const API_CERT_FILE = 'api.crt'
export const API_KEY_FILE = 'api.key'

/** PEM texts of a certificate and its private key. */
export interface ApiCert { cert: string, key: string }

const ALGORITHM = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' }
const VALID_MS = 10 * 365 * 24 * 3600 * 1000
/** The first byte of a TLS record carrying a handshake (a ClientHello, here). */
const TLS_HANDSHAKE = 0x16

x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0])

/** The names a peer's certificate covers: the API host, loopback, this host's name and interface addresses. */
export function certificateHosts (apiHost: string): string[] {
  const hosts = new Set<string>(['127.0.0.1', '::1', 'localhost', hostname()])
  if (apiHost !== '' && apiHost !== '0.0.0.0' && apiHost !== '::') hosts.add(apiHost.replace(/^\[|\]$/g, ''))
  for (const list of Object.values(networkInterfaces())) for (const i of list ?? []) hosts.add(i.address.replace(/%.*$/, ''))
  return [...hosts]
}

/** A new self-signed certificate for `hosts` (IP addresses and DNS names). */
export async function createApiCert (hosts: string[], now = Date.now()): Promise<ApiCert> {
  const keys = await webcrypto.subtle.generateKey(ALGORITHM, true, ['sign', 'verify']) as webcrypto.CryptoKeyPair
  const serial = Buffer.from(webcrypto.getRandomValues(new Uint8Array(16)))
  serial[0] = (serial[0] as number) & 0x7f // a positive serial number, as RFC 5280 asks
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: serial.toString('hex'),
    name: `CN=shoal-api ${hosts.find(h => isIP(h) === 0 && h !== 'localhost') ?? hosts[0] ?? ''}`.trim(),
    notBefore: new Date(now - 60_000),
    notAfter: new Date(now + VALID_MS),
    keys,
    signingAlgorithm: ALGORITHM,
    extensions: [
      // Also a CA: clients pin this very certificate as the root of trust.
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyCertSign, true),
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth]),
      new x509.SubjectAlternativeNameExtension(hosts.map(h => isIP(h) !== 0 ? { type: 'ip' as const, value: h } : { type: 'dns' as const, value: h }))
    ]
  })
  const pkcs8 = Buffer.from(await webcrypto.subtle.exportKey('pkcs8', keys.privateKey))
  const key = `-----BEGIN PRIVATE KEY-----\n${pkcs8.toString('base64').replace(/.{64}/g, '$&\n').replace(/\n?$/, '\n')}-----END PRIVATE KEY-----\n`
  return { cert: cert.toString('pem') + '\n', key }
}

async function readIfThere (path: string): Promise<string | undefined> {
  try {
    return await readFile(path, 'utf8')
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined
    throw err
  }
}

/**
 * This peer's API certificate from the data directory; a new one when there
 * is none, when it has expired, or when it does not cover the API host.
 */
export async function loadOrCreateApiCert (dataDir: string, apiHost: string): Promise<ApiCert> {
  const certPath = join(dataDir, API_CERT_FILE)
  const keyPath = join(dataDir, API_KEY_FILE)
  const [cert, key] = await Promise.all([readIfThere(certPath), readIfThere(keyPath)])
  if (cert !== undefined && key !== undefined) {
    const x = new X509Certificate(cert)
    const host = apiHost.replace(/^\[|\]$/g, '')
    const covers = host === '' || host === '0.0.0.0' || host === '::' || (isIP(host) !== 0 ? x.checkIP(host) : x.checkHost(host)) !== undefined
    if (covers && Date.parse(x.validTo) > Date.now() + 24 * 3600 * 1000) return { cert, key }
  }
  const made = await createApiCert(certificateHosts(apiHost))
  await writeSecret(keyPath, made.key)
  await writeSecret(certPath, made.cert)
  return made
}

/** How the API port treats plain HTTP: `optional` serves it next to TLS; `required` refuses it. */
export type ApiTlsMode = 'required' | 'optional'
export const API_TLS_MODES: readonly ApiTlsMode[] = ['required', 'optional']

/** How long a connection may stay silent before its first byte, or a refused one before it is answered. */
const SILENT_MS = 10_000

/**
 * Makes `server` (a plain node:http server, listening or not) also accept
 * TLS connections on the same port, answered by the same request handler.
 * `req.socket.encrypted` tells which one a request came over. With
 * `mode: 'required'` a plain-HTTP request never reaches `server`: it is
 * answered 400 with a Status saying to use https (what Go's TLS server,
 * and so the Kubernetes API server, answers), and the connection closes.
 */
export function acceptTls (server: Server, creds: ApiCert, opts: { mode?: ApiTlsMode } = {}): void {
  const context = createSecureContext({ cert: creds.cert, key: creds.key, minVersion: 'TLSv1.2' })
  const handlers = server.listeners('connection') as Array<(socket: Socket) => void>
  server.removeAllListeners('connection')
  const hand = (socket: Socket): void => { for (const h of handlers) h.call(server, socket) }
  const refuse = opts.mode === 'required' ? plainHttpRefuser() : undefined
  server.on('connection', (socket: Socket) => {
    // Until the first byte, the socket belongs to nobody: its errors (a reset) must not throw.
    const early = (): void => { socket.destroy() }
    socket.on('error', early)
    // A connection that never says anything is not kept (the HTTP server's own timeouts start after the first byte).
    socket.setTimeout(SILENT_MS, early)
    socket.once('readable', function sniff () {
      const first = socket.read(1) as Buffer | null
      if (first === null) {
        if (!socket.readableEnded && !socket.destroyed) socket.once('readable', sniff)
        return
      }
      socket.unshift(first)
      if (first[0] !== TLS_HANDSHAKE && refuse !== undefined) {
        // Still under the early error handler and the silence timeout: this socket gets one answer and goes.
        refuse(socket)
        return
      }
      socket.removeListener('error', early)
      socket.setTimeout(0)
      socket.removeListener('timeout', early)
      if (first[0] !== TLS_HANDSHAKE) {
        hand(socket)
        return
      }
      const secure = new TLSSocket(socket, { isServer: true, secureContext: context })
      secure.on('error', () => { secure.destroy() })
      hand(secure as unknown as Socket)
    })
  })
}

/**
 * A request handler of its own (never listening) for plain-HTTP connections
 * when TLS is required: it parses the request, so that the client reads a
 * proper answer, gives a 400 Status naming the fix, and closes.
 */
function plainHttpRefuser (): (socket: Socket) => void {
  const refuser = createServer((req, res) => {
    const port = req.socket.localPort ?? 0
    const host = (req.socket.localAddress ?? '').replace(/^::ffff:/, '')
    const url = `https://${host.includes(':') ? `[${host}]` : host}:${port}`
    const body = JSON.stringify(statusOf(400, 'BadRequest', `Client sent an HTTP request to an HTTPS server: this API requires TLS (shoald --api-tls required); use ${url}`)) + '\n'
    req.resume()
    res.writeHead(400, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), connection: 'close' })
    res.end(body)
  })
  refuser.on('clientError', (_err, socket) => { socket.destroy() })
  return socket => {
    // A bound on the whole exchange, however slowly the request trickles in.
    const deadline = setTimeout(() => { socket.destroy() }, SILENT_MS)
    socket.once('close', () => { clearTimeout(deadline) })
    refuser.emit('connection', socket)
  }
}
