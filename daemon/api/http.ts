// HTTP plumbing shared by the API's routes: the error a handler throws
// (HttpError, answered as a Kubernetes-style Status), the mapping of the
// replicator's errors to 503/504/413, JSON answers, method checks, a
// size-bounded body reader, the bounds of a parsed body (depth, expanded
// size), and the check that a body is an object.
// May import: protocol/, daemon/raft/replicator.ts (its errors).
import { Buffer } from 'node:buffer'
import type { IncomingMessage, ServerResponse } from 'node:http'
import type { StatusBody } from '../../protocol/api.ts'
import { isPlainObject, jsonBoundPassed, MAX_JSON_DEPTH } from '../../protocol/json.ts'
import type { JsonObject } from '../../protocol/json.ts'
import type { ObjectMeta } from '../../protocol/k8s.ts'
import { CommandTooLargeError, MAX_COMMAND_BYTES, NoLeaderError, NotLeaderError, ProposalTimeoutError } from '../raft/replicator.ts'

/** After a 413, at most this much more of the body is read and dropped (so the client can read the answer) before the connection is cut. */
const DISCARD_BYTES = 1024 * 1024
const DISCARD_MS = 5000

export class HttpError extends Error {
  override name = 'HttpError'
  readonly code: number
  readonly reason: string
  readonly headers: Record<string, string>
  constructor (code: number, reason: string, message: string, headers: Record<string, string> = {}) {
    super(message)
    this.code = code
    this.reason = reason
    this.headers = headers
  }
}

/** The answer a replicator's error deserves, or undefined for an error that is not one of its. `write`: the request was a write. */
export function replicatorHttpError (err: unknown, write: boolean): HttpError | undefined {
  if (err instanceof NoLeaderError) {
    return new HttpError(503, 'ServiceUnavailable', err.message, { 'retry-after': String(Math.max(1, Math.ceil(err.retryAfterSeconds))) })
  }
  if (err instanceof NotLeaderError) {
    return new HttpError(503, 'ServiceUnavailable', err.message, { 'retry-after': '1', ...(err.leaderApi !== undefined ? { 'x-shoal-leader': err.leaderApi } : {}) })
  }
  if (err instanceof ProposalTimeoutError) {
    return new HttpError(504, 'Timeout', write ? `${err.message} (the outcome is unknown: the write may or may not have been applied)` : err.message)
  }
  if (err instanceof CommandTooLargeError) return new HttpError(413, 'RequestEntityTooLarge', err.message)
  return undefined
}

/** The 400 for a body nested too deeply. */
export function tooDeep (): HttpError {
  return new HttpError(400, 'BadRequest', `the body nests objects and lists more than ${MAX_JSON_DEPTH} levels deep; at most ${MAX_JSON_DEPTH} are allowed`)
}

/**
 * Whether JSON text nests objects and arrays more than `max` deep: a linear
 * scan that skips strings, so that a deep body is refused before JSON.parse
 * spends seconds building it (3 MiB of `[` is 1.5 million levels).
 */
export function jsonTextTooDeep (text: string, max: number): boolean {
  let depth = 0
  let inString = false
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i)
    if (inString) {
      if (c === 0x5c) i++ // a backslash escapes the next character
      else if (c === 0x22) inString = false
    } else if (c === 0x22) {
      inString = true
    } else if (c === 0x5b || c === 0x7b) {
      if (++depth > max) return true
    } else if (c === 0x5d || c === 0x7d) {
      depth--
    }
  }
  return false
}

/**
 * A parsed body's bounds: nested at most MAX_JSON_DEPTH levels (else 400),
 * and no larger once expanded than MAX_COMMAND_BYTES (else 413: YAML aliases
 * can make a small body a huge object, which no write could carry). Checked
 * without recursion before anything walks the value.
 */
export function checkBodyBounds (value: unknown): void {
  const passed = jsonBoundPassed(value, MAX_JSON_DEPTH, MAX_COMMAND_BYTES)
  if (passed === 'depth') throw tooDeep()
  if (passed === 'size') throw new HttpError(413, 'RequestEntityTooLarge', `the body expands to more than ${MAX_COMMAND_BYTES} bytes once parsed (YAML aliases?), more than one write may be`)
}

/** Methods a path allows; HEAD goes wherever GET does (Node sends no body for it). */
export function allow (req: IncomingMessage, path: string, methods: string[]): void {
  const method = req.method === 'HEAD' ? 'GET' : req.method ?? ''
  if (!methods.includes(method)) {
    const allowed = methods.flatMap(m => m === 'GET' ? ['GET', 'HEAD'] : [m])
    throw new HttpError(405, 'MethodNotAllowed', `${req.method ?? ''} is not allowed on ${path}`, { allow: allowed.join(', ') })
  }
}

/**
 * A request body that is a JSON object with an object for metadata. Nothing
 * else about it is checked here, not even apiVersion and kind: the route
 * checks those against its path, and the store validates every field.
 */
export type BodyObject = JsonObject & { metadata: ObjectMeta }

/** `v` as a BodyObject (metadata `{}` when it is missing or not an object); a 400 when it is not an object. */
export function asObject (v: unknown, what: string): BodyObject {
  if (!isPlainObject(v)) throw new HttpError(400, 'BadRequest', `${what} must be an object`)
  // Its fields are unchecked until the store validates them.
  const metadata: ObjectMeta = isPlainObject(v.metadata) ? v.metadata : {}
  return Object.assign(v, { metadata })
}

export function send (res: ServerResponse, code: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body, null, 2) + '\n'
  res.writeHead(code, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), ...headers })
  res.end(text)
}

export function status (code: number, reason: string, message: string): StatusBody {
  return { kind: 'Status', apiVersion: 'v1', status: 'Failure', message, reason, code }
}

/** The body, at most `limit` bytes; a larger one is a 413 (the rest is read and dropped, up to a bound, so that the client sees the answer). */
export async function readBody (req: IncomingMessage, limit: number): Promise<Buffer> {
  const tooLarge = (): HttpError => new HttpError(413, 'RequestEntityTooLarge', `the value is larger than this peer's limit of ${limit} bytes`)
  const declared = Number(req.headers['content-length'])
  if (Number.isFinite(declared) && declared > limit) {
    discard(req)
    throw tooLarge()
  }
  return await new Promise<Buffer>((resolve, reject) => {
    const chunks: Buffer[] = []
    let size = 0
    const done = (): void => {
      req.off('data', onData)
      req.off('end', onEnd)
      req.off('error', onGone)
      req.off('close', onGone)
    }
    const onData = (chunk: Buffer): void => {
      size += chunk.length
      if (size > limit) {
        done()
        discard(req)
        reject(tooLarge())
      } else {
        chunks.push(chunk)
      }
    }
    const onEnd = (): void => { done(); resolve(Buffer.concat(chunks, size)) }
    const onGone = (): void => { done(); reject(new ClientGoneError()) }
    req.on('data', onData)
    req.on('end', onEnd)
    req.on('error', onGone)
    req.on('close', onGone)
  })
}

/** The client went away before its request was read; there is no one to answer. */
export class ClientGoneError extends Error {
  override name = 'ClientGoneError'
  constructor () { super('the client closed the connection before sending the whole body') }
}

/** Reads and drops the rest of a body that will not be used; cuts the connection if it is long or slow. */
export function discard (req: IncomingMessage): void {
  if (req.complete) return
  let dropped = 0
  const cut = (): void => { req.socket.destroy() }
  const timer = setTimeout(cut, DISCARD_MS)
  timer.unref()
  req.on('data', (chunk: Buffer) => {
    dropped += chunk.length
    if (dropped > DISCARD_BYTES) { clearTimeout(timer); cut() }
  })
  req.on('close', () => { clearTimeout(timer) })
  req.on('error', () => {})
  req.resume()
}
