// The CLI's HTTP client: what a server URL may look like, and sending one
// request to the first server that answers. For a read (GET), a server that
// cannot be reached or answers 5xx is skipped for the next; a write (PUT,
// DELETE, POST, PATCH) moves on only when it surely was not applied: the connection was
// refused (or never made), or the answer was 503 (no leader, not the leader).
// A 503 naming the leader (X-Shoal-Leader) adds the leader to the servers to
// try; when every server said 503 with Retry-After, the whole list is tried
// again after that delay, a few times within an overall budget. A 4xx is
// the cluster's answer and final. Every failure becomes an error whose
// message fits on one line. An https:// server's certificate is checked as
// ./tls.ts says (pinned fingerprints); a failed check is never retried over
// plain HTTP.
// May import: protocol/json.ts, protocol/tls.ts, ./tls.ts.
import { isPlainObject } from '../protocol/json.ts'
import { isLoopbackHost } from '../protocol/tls.ts'
import { trustedFetch } from './tls.ts'
import type { Fetch, Trust } from './tls.ts'

/** How long one server may take to answer, body included, before the next is tried. */
export const DEFAULT_TIMEOUT_MS = 3000
/** No new round of retries starts after this long (a round may still take DEFAULT_TIMEOUT_MS per server). */
export const DEFAULT_BUDGET_MS = 10_000
/** At most this many passes over the servers, when they answer 503 with Retry-After. */
export const DEFAULT_MAX_ROUNDS = 3
/** A Retry-After longer than this is waited as this. */
const MAX_RETRY_AFTER_MS = 5000

export type Method = 'GET' | 'PUT' | 'POST' | 'PATCH' | 'DELETE'

/** Errors that mean the request never reached the server, so a write can safely go elsewhere. */
const NEVER_SENT = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'EAI_NONAME', 'EHOSTUNREACH', 'ENETUNREACH', 'EADDRNOTAVAIL', 'UND_ERR_CONNECT_TIMEOUT',
  'DEPTH_ZERO_SELF_SIGNED_CERT', 'SELF_SIGNED_CERT_IN_CHAIN', 'UNABLE_TO_VERIFY_LEAF_SIGNATURE', 'CERT_HAS_EXPIRED', 'ERR_TLS_CERT_ALTNAME_INVALID', 'ERR_SSL_WRONG_VERSION_NUMBER',
  'SHOAL_CERT_UNTRUSTED'])

/**
 * `host:port` or an http(s) URL, as a base URL without a trailing slash.
 * `host:port` is http:// on a loopback host (shoald's default there serves
 * plain HTTP) and https:// anywhere else, where a token must not travel in
 * the clear. Throws an Error saying what is wrong otherwise.
 */
export function parseServerUrl (value: string): string {
  const v = value.trim()
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(v)) {
    let url: URL
    try {
      url = new URL(v)
    } catch {
      throw new Error(`"${value}" is not a valid URL`)
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new Error(`"${value}": only http:// and https:// are supported`)
    if (url.username !== '' || url.password !== '' || url.search !== '' || url.hash !== '') throw new Error(`"${value}": a server URL takes no user, query or fragment`)
    return url.toString().replace(/\/+$/, '')
  }
  const m = /^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):(\d{1,5})$/.exec(v)
  const port = m === null ? NaN : Number(m[2])
  if (m === null || port < 1 || port > 65535) throw new Error(`"${value}" is not host:port or an http(s) URL`)
  const host = m[1] ?? ''
  return `${isLoopbackHost(host) ? 'http' : 'https'}://${host}:${port}`
}

/** One server that did not give the final answer, and why. */
export interface Attempt {
  server: string
  /** short, for the one-line error: "connection refused" */
  reason: string
  /** the underlying error, for --verbose */
  detail: string
  elapsedMs: number
}

/** No server gave an answer: each was unreachable, timed out, or failed with 5xx. */
export class UnreachableError extends Error {
  override name = 'UnreachableError'
  readonly attempts: Attempt[]
  constructor (attempts: Attempt[]) {
    // Retried rounds repeat the same reasons: each distinct one once.
    const reasons = [...new Set(attempts.map(a => `${a.server}: ${a.reason}`))]
    super(`cannot reach any server (${reasons.join(', ')})`)
    this.attempts = attempts
  }
}

/** A write failed in a way that leaves its outcome unknown (a timeout, a reset, a 500 or 504): it was not retried elsewhere. */
export class OutcomeUnknownError extends Error {
  override name = 'OutcomeUnknownError'
  readonly server: string
  readonly attempts: Attempt[]
  constructor (server: string, reason: string, attempts: Attempt[]) {
    super(`${server}: ${reason}; the write may or may not have been applied`)
    this.server = server
    this.attempts = attempts
  }
}

/** A 4xx answer, which no other server would answer differently. */
export class HttpStatusError extends Error {
  override name = 'HttpStatusError'
  readonly server: string
  readonly code: number
  /** the Status body's reason, e.g. "Unauthorized", or the HTTP status text */
  readonly reason: string
  constructor (server: string, code: number, reason: string, message: string) {
    super(message)
    this.server = server
    this.code = code
    this.reason = reason
  }
}

export interface ApiResponse {
  /** the base URL of the server that answered */
  server: string
  code: number
  body: unknown
}

export interface ClientOptions {
  /** base URLs as parseServerUrl returns them, tried in order */
  servers: string[]
  token: string
  timeoutMs?: number
  /** told about each server skipped, as it happens */
  onSkip?: (attempt: Attempt) => void
  budgetMs?: number
  maxRounds?: number
  /** the certificates trusted for https:// servers (default: the system's CAs) */
  trust?: Trust
}

export class ApiClient {
  readonly servers: string[]
  readonly token: string
  readonly timeoutMs: number
  readonly budgetMs: number
  readonly maxRounds: number
  readonly onSkip: (attempt: Attempt) => void
  /** fetch with the client's trust: every request to a server goes through it (logs and backups too) */
  readonly fetch: Fetch

  constructor (opts: ClientOptions) {
    this.servers = opts.servers
    this.token = opts.token
    this.timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS
    this.budgetMs = opts.budgetMs ?? DEFAULT_BUDGET_MS
    this.maxRounds = opts.maxRounds ?? DEFAULT_MAX_ROUNDS
    this.onSkip = opts.onSkip ?? (() => {})
    this.fetch = trustedFetch(opts.trust)
  }

  /** GETs `path` (e.g. /shoal/v1/members); throws UnreachableError or HttpStatusError. */
  async get (path: string): Promise<ApiResponse> {
    return await this.request('GET', path)
  }

  /**
   * Sends one request; throws UnreachableError, HttpStatusError, or (for a
   * write only) OutcomeUnknownError.
   */
  /** `text`: a successful answer is plain text (pod logs), returned as a string. */
  async request (method: Method, path: string, body?: Uint8Array, contentType?: string, opts: { text?: boolean } = {}): Promise<ApiResponse> {
    const started = Date.now()
    const attempts: Attempt[] = []
    const skip = (attempt: Attempt): void => {
      attempts.push(attempt)
      this.onSkip(attempt)
    }
    const write = method !== 'GET'
    const servers = [...this.servers]
    for (let round = 1; ; round++) {
      let retryAfterMs: number | undefined
      for (let i = 0; i < servers.length; i++) {
        const server = servers[i] ?? ''
        const tried = Date.now()
        let res: Response
        let text: string
        try {
          res = await this.fetch(server + path, {
            method,
            headers: { authorization: `Bearer ${this.token}`, accept: 'application/json', ...(contentType !== undefined ? { 'content-type': contentType } : {}) },
            ...(body !== undefined ? { body } : {}),
            // One signal for headers and body: a server that stalls mid-body is as dead as one that never answers.
            signal: AbortSignal.timeout(this.timeoutMs)
          })
          text = await res.text()
        } catch (err) {
          const described = describeFetchError(err, this.timeoutMs)
          const attempt = { server, ...described, elapsedMs: Date.now() - tried }
          if (write && !neverSent(err)) throw new OutcomeUnknownError(server, described.reason, [...attempts, attempt])
          skip(attempt)
          continue
        }
        const elapsedMs = Date.now() - tried
        const parsed = parseJson(text)
        if (res.status >= 500) {
          const message = statusMessage(parsed, text, res.statusText)
          const attempt = { server, reason: `${res.status} ${message}`, detail: `HTTP ${res.status} ${res.statusText}: ${message}`, elapsedMs }
          if (res.status === 503) {
            const after = parseRetryAfter(res.headers.get('retry-after'))
            if (after !== undefined) retryAfterMs = Math.min(retryAfterMs ?? after, after)
            const leader = leaderUrl(server, res.headers.get('x-shoal-leader'))
            if (leader !== undefined && !servers.includes(leader)) servers.splice(i + 1, 0, leader)
          } else if (write) {
            throw new OutcomeUnknownError(server, attempt.reason, [...attempts, attempt])
          }
          skip(attempt)
          continue
        }
        if (res.status >= 400) {
          const reason = isPlainObject(parsed) && typeof parsed.reason === 'string' ? parsed.reason : res.statusText
          throw new HttpStatusError(server, res.status, reason, statusMessage(parsed, text, res.statusText))
        }
        if (opts.text === true) return { server, code: res.status, body: text }
        if (parsed === undefined) {
          // Something else listens there (a port reused after shoald moved): another server may be the real one.
          skip({ server, reason: `answered ${res.status} without JSON (not a shoald API?)`, detail: `content-type ${res.headers.get('content-type') ?? 'none'}, ${text.length} bytes`, elapsedMs })
          continue
        }
        return { server, code: res.status, body: parsed }
      }
      if (retryAfterMs === undefined || round >= this.maxRounds || Date.now() - started + retryAfterMs > this.budgetMs) throw new UnreachableError(attempts)
      await new Promise(resolve => setTimeout(resolve, retryAfterMs))
    }
  }

  /**
   * GETs a stream of newline-delimited JSON (`?watch=1`) from the first
   * server that answers, calling `onValue` with each line parsed, until the
   * server ends the stream (resolves) or `signal` aborts (resolves too).
   * Only the headers are under the timeout: a watch may be quiet for long.
   * Throws UnreachableError, or HttpStatusError for a 4xx.
   */
  async stream (path: string, onValue: (value: unknown) => void, signal: AbortSignal): Promise<void> {
    const attempts: Attempt[] = []
    for (const server of this.servers) {
      if (signal.aborted) return
      const tried = Date.now()
      const headers = new AbortController()
      const timer = setTimeout(() => { headers.abort(new DOMException('timed out', 'TimeoutError')) }, this.timeoutMs)
      let res: Response
      try {
        res = await this.fetch(server + path, {
          headers: { authorization: `Bearer ${this.token}`, accept: 'application/json' },
          signal: AbortSignal.any([signal, headers.signal])
        })
      } catch (err) {
        if (signal.aborted) return
        const attempt = { server, ...describeFetchError(err, this.timeoutMs), elapsedMs: Date.now() - tried }
        attempts.push(attempt)
        this.onSkip(attempt)
        continue
      } finally {
        clearTimeout(timer)
      }
      if (res.status >= 400) {
        const text = await res.text().catch(() => '')
        const parsed = parseJson(text)
        const message = statusMessage(parsed, text, res.statusText)
        if (res.status >= 500) {
          const attempt = { server, reason: `${res.status} ${message}`, detail: `HTTP ${res.status} ${res.statusText}: ${message}`, elapsedMs: Date.now() - tried }
          attempts.push(attempt)
          this.onSkip(attempt)
          continue
        }
        const reason = isPlainObject(parsed) && typeof parsed.reason === 'string' ? parsed.reason : res.statusText
        throw new HttpStatusError(server, res.status, reason, message)
      }
      if (res.body === null) return
      const decoder = new TextDecoder()
      let pending = ''
      try {
        for await (const chunk of res.body) {
          pending += decoder.decode(chunk, { stream: true })
          let nl: number
          while ((nl = pending.indexOf('\n')) >= 0) {
            const line = pending.slice(0, nl).trim()
            pending = pending.slice(nl + 1)
            if (line === '') continue
            const value = parseJson(line)
            if (value !== undefined) onValue(value)
          }
        }
      } catch (err) {
        if (signal.aborted) return
        throw err
      }
      return
    }
    throw new UnreachableError(attempts)
  }
}

function neverSent (err: unknown): boolean {
  const cause: unknown = err instanceof Error && err.cause !== undefined ? err.cause : err
  const first = cause instanceof AggregateError && errorField(cause, 'code') === undefined ? cause.errors[0] : cause
  const code = errorField(first, 'code')
  return (code !== undefined && NEVER_SENT.has(code)) || errorField(first, 'message') === 'bad port'
}

/** Retry-After in whole seconds (the HTTP-date form is not used by shoald), as ms. */
function parseRetryAfter (value: string | null): number | undefined {
  if (value === null || !/^\d{1,6}$/.test(value.trim())) return undefined
  return Math.min(Number(value.trim()) * 1000, MAX_RETRY_AFTER_MS)
}

/** The leader's API from X-Shoal-Leader (host:port), with the scheme of the server that named it. */
function leaderUrl (server: string, header: string | null): string | undefined {
  if (header === null || header.trim() === '') return undefined
  try {
    const url = parseServerUrl(header)
    return server.startsWith('https://') ? url.replace(/^http:/, 'https:') : url
  } catch {
    return undefined
  }
}

function parseJson (text: string): unknown {
  try {
    return JSON.parse(text)
  } catch {
    return undefined
  }
}

/** The Status body's message, else the first line of a plain body, else the HTTP status text. */
function statusMessage (body: unknown, text: string, statusText: string): string {
  if (isPlainObject(body) && typeof body.message === 'string' && body.message.trim() !== '') return oneLine(body.message)
  if (body === undefined && text.trim() !== '') return oneLine(text).slice(0, 200)
  return statusText !== '' ? statusText : 'no message'
}

function oneLine (s: string): string {
  return s.trim().replace(/\s*\n\s*/g, ' ')
}

const REASONS: Record<string, string> = {
  ECONNREFUSED: 'connection refused',
  ENOTFOUND: 'host not found',
  EAI_AGAIN: 'host not found (DNS lookup failed)',
  EAI_NONAME: 'host not found',
  ECONNRESET: 'connection reset',
  EPIPE: 'connection reset',
  UND_ERR_SOCKET: 'connection closed by the server',
  EHOSTUNREACH: 'no route to host',
  ENETUNREACH: 'network unreachable',
  EADDRNOTAVAIL: 'address not available',
  ETIMEDOUT: 'connection timed out',
  UND_ERR_CONNECT_TIMEOUT: 'connection timed out',
  UND_ERR_HEADERS_TIMEOUT: 'timed out waiting for the answer',
  UND_ERR_BODY_TIMEOUT: 'timed out reading the answer',
  DEPTH_ZERO_SELF_SIGNED_CERT: 'TLS: self-signed certificate, not trusted (pin its fingerprint in the config file, or pass --api-cert <data-dir>/api.crt)',
  SELF_SIGNED_CERT_IN_CHAIN: 'TLS: self-signed certificate in chain, not trusted',
  UNABLE_TO_VERIFY_LEAF_SIGNATURE: 'TLS: cannot verify the certificate',
  CERT_HAS_EXPIRED: 'TLS: certificate expired',
  ERR_TLS_CERT_ALTNAME_INVALID: 'TLS: certificate does not match the host name',
  ERR_SSL_WRONG_VERSION_NUMBER: 'TLS: the server does not speak TLS (try http://)'
}

/** fetch hides the useful part in `cause` (sometimes an AggregateError of one error per address). */
export function describeFetchError (err: unknown, timeoutMs: number): { reason: string, detail: string } {
  const name = errorField(err, 'name')
  if (name === 'TimeoutError' || name === 'AbortError') {
    return { reason: `timed out after ${timeoutMs / 1000}s`, detail: errorField(err, 'message') ?? 'timed out' }
  }
  let cause: unknown = err instanceof Error && err.cause !== undefined ? err.cause : err
  if (cause instanceof AggregateError && errorField(cause, 'code') === undefined && cause.errors.length > 0) cause = cause.errors[0]
  const code = errorField(cause, 'code')
  const message = errorField(cause, 'message') ?? String(cause)
  const detail = cause instanceof AggregateError
    ? cause.errors.map(e => errorField(e, 'message') ?? String(e)).join('; ')
    : message
  // fetch refuses the WHATWG "bad ports" (6000, 6667, 10080, ...) before dialling.
  const known = code !== undefined ? REASONS[code] : message === 'bad port' ? 'port blocked by fetch (give shoald another --api port)' : undefined
  return { reason: known ?? oneLine(message), detail: code !== undefined ? `${code}: ${oneLine(detail)}` : oneLine(detail) }
}

function errorField (err: unknown, field: 'name' | 'code' | 'message'): string | undefined {
  if (typeof err !== 'object' || err === null) return undefined
  // an own field or an inherited one (an Error's name is on its prototype)
  const v: unknown = Reflect.get(err, field)
  return typeof v === 'string' && v !== '' ? v : undefined
}
