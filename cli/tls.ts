// The CLI's trust in a peer's API certificate. A peer's certificate is
// self-signed, so no CA vouches for it: the CLI trusts the certificates whose
// SHA-256 fingerprints it was given (the config file's `fingerprints`, which
// shoald writes; `--api-cert FILE`, a peer's <data-dir>/api.crt) and nothing
// else. The pin is the peer's identity, so the host name is not checked
// against the certificate (a peer may be reached by any of its addresses).
// With no fingerprints, https:// is checked as usual, against the system's
// CAs and the host name. A certificate that fails is an error that says so:
// the CLI never retries the same server over plain HTTP.
// May import: protocol/tls.ts.
import { request as httpRequest } from 'node:http'
import type { IncomingMessage } from 'node:http'
import { isIP } from 'node:net'
import { Readable } from 'node:stream'
import { connect as tlsConnect } from 'node:tls'
import type { TLSSocket } from 'node:tls'
import { certificateFingerprint } from '../protocol/tls.ts'

/** The fingerprints (canonical, protocol/tls.ts) of the certificates trusted for https:// servers; empty: the system's CAs. */
export interface Trust { fingerprints: string[] }

/** The subset of fetch the CLI uses: a method, headers, an optional body and an abort signal. */
export interface FetchInit {
  method?: string
  headers?: Record<string, string>
  body?: Uint8Array | string
  signal?: AbortSignal
}
export type Fetch = (url: string, init?: FetchInit) => Promise<Response>

/** A certificate that is not one of the pinned ones. Nothing was sent: the handshake ended before any request. */
export class UntrustedCertificateError extends Error {
  override name = 'UntrustedCertificateError'
  readonly code = 'SHOAL_CERT_UNTRUSTED'
  readonly fingerprint: string
  constructor (fingerprint: string) {
    super(`TLS: the server's certificate (SHA-256 ${fingerprint}) is not a trusted one: pin its fingerprint in the config file or pass --api-cert <data-dir>/api.crt`)
    this.fingerprint = fingerprint
  }
}

/** fetch, with https:// pinned to `trust` when it names fingerprints; plain fetch for http:// and for https:// with no pins. */
export function trustedFetch (trust: Trust | undefined): Fetch {
  const pins = new Set(trust?.fingerprints ?? [])
  return async (url, init = {}) => {
    if (pins.size === 0 || !url.startsWith('https://')) return await fetch(url, init)
    return await pinnedFetch(new URL(url), init, pins)
  }
}

/** Bodiless statuses: a Response must not be given a body for them. */
const NULL_BODY = new Set([101, 103, 204, 205, 304])

/** One request over a TLS connection whose certificate was checked against `pins` before anything was written. */
async function pinnedFetch (url: URL, init: FetchInit, pins: Set<string>): Promise<Response> {
  const signal = init.signal
  signal?.throwIfAborted()
  const socket = await connectPinned(url, pins, signal)
  return await new Promise<Response>((resolve, reject) => {
    const req = httpRequest({
      method: init.method ?? 'GET',
      path: url.pathname + url.search,
      headers: { host: url.host, ...init.headers },
      createConnection: () => socket
    })
    const abort = (): void => { req.destroy(signal?.reason as Error) }
    signal?.addEventListener('abort', abort, { once: true })
    req.on('error', err => {
      signal?.removeEventListener('abort', abort)
      reject(signal?.aborted === true ? signal.reason : new TypeError('fetch failed', { cause: err }))
    })
    req.on('response', (res: IncomingMessage) => {
      res.on('close', () => { signal?.removeEventListener('abort', abort) })
      const headers = new Headers()
      for (let i = 0; i + 1 < res.rawHeaders.length; i += 2) headers.append(res.rawHeaders[i] ?? '', res.rawHeaders[i + 1] ?? '')
      const status = res.statusCode ?? 0
      const body = NULL_BODY.has(status) || init.method === 'HEAD' ? null : Readable.toWeb(res) as ReadableStream<Uint8Array>
      if (body === null) res.resume()
      resolve(new Response(body, { status, statusText: res.statusMessage ?? '', headers }))
    })
    req.end(init.body)
  })
}

/** A TLS connection to `url`'s host, once its certificate's fingerprint is one of `pins`; errors shaped as fetch's (`cause.code`). */
async function connectPinned (url: URL, pins: Set<string>, signal: AbortSignal | undefined): Promise<TLSSocket> {
  const host = url.hostname.replace(/^\[|\]$/g, '')
  const port = url.port !== '' ? Number(url.port) : 443
  return await new Promise((resolve, reject) => {
    // The chain is not checked (nothing signs a peer's certificate but itself); the fingerprint is, before any byte of the request.
    const socket = tlsConnect({ host, port, rejectUnauthorized: false, ALPNProtocols: ['http/1.1'], ...(isIP(host) === 0 ? { servername: host } : {}) })
    const fail = (err: unknown): void => {
      signal?.removeEventListener('abort', abort)
      socket.destroy()
      reject(err)
    }
    const abort = (): void => { fail(signal?.reason) }
    signal?.addEventListener('abort', abort, { once: true })
    socket.once('error', err => { fail(new TypeError('fetch failed', { cause: err })) })
    socket.once('secureConnect', () => {
      signal?.removeEventListener('abort', abort)
      const raw = socket.getPeerCertificate().raw as Buffer | undefined
      const fingerprint = raw !== undefined ? certificateFingerprint(raw) : 'none'
      if (!pins.has(fingerprint)) {
        fail(new TypeError('fetch failed', { cause: new UntrustedCertificateError(fingerprint) }))
        return
      }
      // The error listener stays: from here on the request's own listener reports errors, and this one only makes sure the socket goes.
      resolve(socket)
    })
  })
}
