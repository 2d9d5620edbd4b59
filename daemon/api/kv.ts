// The cluster KV's HTTP routes under /shoal/v1/kv: reading a key or a prefix
// from the local KvStore (after a ReadIndex barrier with ?consistent), and
// writing through the Replicator. Owns the key and query parsing (strict:
// invalid percent-encoding or UTF-8 is a 400) and the bounded body reader.
// Replicator errors are thrown on to server.ts, which maps them to 503/504.
// May import: protocol/, daemon/kv, daemon/raft/replicator.ts (the interface), ./http.ts.
import type { IncomingMessage, ServerResponse } from 'node:http'
import { Buffer } from 'node:buffer'
import { API_PREFIX } from '../../protocol/api.ts'
import { isPlainObject } from '../../protocol/json.ts'
import type { KvListView, KvPairView, KvWriteView, KvEntry } from '../../protocol/kv.ts'
import { KV_MAX_KEY_BYTES } from '../../protocol/kv.ts'
import { encodeKvCommand, KvStore } from '../kv/store.ts'
import type { KvApplyResult } from '../kv/store.ts'
import type { Replicator } from '../raft/replicator.ts'
import { HttpError, readBody, send } from './http.ts'

export const KV_PATH = `${API_PREFIX}/kv`

export interface KvRouteDeps {
  raft?: Replicator
  kv?: KvStore
  kvMaxValueBytes: number
}

/** Whether the raw request target is a KV path. The raw one: a URL parser would fold `.`/`..` segments and `%2F` inside keys. */
export function isKvTarget (rawPath: string): boolean {
  return rawPath === KV_PATH || rawPath.startsWith(`${KV_PATH}/`)
}

function unavailable (what: string): HttpError {
  return new HttpError(503, 'ServiceUnavailable', `the ${what} is not running on this peer yet`, { 'retry-after': '1' })
}

function badRequest (message: string): HttpError {
  return new HttpError(400, 'BadRequest', message)
}

function decodeComponent (raw: string, what: string): string {
  let text: string
  try {
    text = decodeURIComponent(raw)
  } catch {
    throw badRequest(`${what} is not valid percent-encoded UTF-8`)
  }
  // Defensive: decodeURIComponent already throws on bad UTF-8, encoded surrogates (%ED%A0%80) included.
  if (!text.isWellFormed()) throw badRequest(`${what} is not valid UTF-8`)
  return text
}

/** The query's parameters, strictly decoded; a name that is not in `known` is a 400 (a typo should not silently change a read or a write). */
function parseQuery (rawQuery: string, known: readonly string[]): Map<string, string> {
  const params = new Map<string, string>()
  for (const part of rawQuery.split('&')) {
    if (part === '') continue
    const eq = part.indexOf('=')
    const name = decodeComponent((eq < 0 ? part : part.slice(0, eq)).replaceAll('+', ' '), 'a query parameter name')
    const value = eq < 0 ? '' : decodeComponent(part.slice(eq + 1).replaceAll('+', ' '), `the value of ?${name}`)
    if (!known.includes(name)) throw badRequest(`unknown query parameter "${name}"${known.length > 0 ? ` (this request takes ${known.map(k => `?${k}`).join(', ')})` : ''}`)
    params.set(name, value)
  }
  return params
}

/** `?flag`, `?flag=`, `?flag=true` and `?flag=1` are true; `false` and `0` are false. */
function flag (params: Map<string, string>, name: string): boolean {
  const v = params.get(name)
  if (v === undefined) return false
  if (v === '' || v === 'true' || v === '1') return true
  if (v === 'false' || v === '0') return false
  throw badRequest(`?${name} takes no value, or true or false, not "${v}"`)
}

function casParam (params: Map<string, string>): number | undefined {
  const v = params.get('cas')
  if (v === undefined) return undefined
  const n = /^\d{1,16}$/.test(v) ? Number(v) : NaN
  if (!Number.isSafeInteger(n)) throw badRequest(`?cas must be a non-negative integer (a modifyIndex, or 0 for "only if absent"), not "${v}"`)
  return n
}

function checkKey (key: string): string {
  const bad = KvStore.validateKey(key)
  if (bad !== undefined) throw badRequest(bad)
  return key
}

const utf8 = new TextDecoder('utf-8', { fatal: true })

export function pairView (e: KvEntry): KvPairView {
  try {
    return { key: e.key, value: utf8.decode(e.value), createIndex: e.createIndex, modifyIndex: e.modifyIndex }
  } catch {
    return { key: e.key, value: Buffer.from(e.value.buffer, e.value.byteOffset, e.value.byteLength).toString('base64'), encoding: 'base64', createIndex: e.createIndex, modifyIndex: e.modifyIndex }
  }
}

function isApplyResult (v: unknown): v is KvApplyResult {
  return isPlainObject(v) && typeof v.ok === 'boolean'
}

async function write (deps: KvRouteDeps, res: ServerResponse, key: string, cas: number | undefined, command: Uint8Array): Promise<void> {
  if (deps.raft === undefined) throw unavailable('replicated log')
  const proposed = await deps.raft.propose(command)
  const result = proposed.result
  if (!isApplyResult(result)) throw new Error(`the KV state machine returned ${JSON.stringify(result)}`)
  if (result.ok) {
    const body: KvWriteView = { index: proposed.index }
    send(res, 200, body)
    return
  }
  if (result.reason === 'cas') {
    const now = result.modifyIndex === 0 ? 'does not exist (modifyIndex 0)' : `has modifyIndex ${result.modifyIndex}`
    throw new HttpError(409, 'Conflict', `compare-and-set failed: key ${JSON.stringify(key)} ${now}, not ${cas ?? '?'}`)
  }
  throw badRequest(result.message)
}

/**
 * Serves one KV request. `rawPath` and `rawQuery` are the request target as
 * sent (still percent-encoded). Replicator errors propagate to the caller.
 */
export async function handleKv (req: IncomingMessage, res: ServerResponse, rawPath: string, rawQuery: string, deps: KvRouteDeps): Promise<void> {
  const method = req.method === 'HEAD' ? 'GET' : req.method
  const rest = rawPath.slice(KV_PATH.length + 1)
  const isList = rest === ''
  if (method !== 'GET' && method !== 'PUT' && method !== 'DELETE') {
    throw new HttpError(405, 'MethodNotAllowed', `${req.method ?? ''} is not allowed on ${KV_PATH}/{key}`, { allow: 'GET, HEAD, PUT, DELETE' })
  }
  if (deps.kv === undefined) throw unavailable('KV store')
  const kv = deps.kv

  if (method === 'GET') {
    const params = parseQuery(rawQuery, isList ? ['prefix', 'consistent'] : ['consistent', 'raw', 'prefix'])
    const consistent = flag(params, 'consistent')
    let prefix: string | undefined
    if (isList) {
      prefix = params.get('prefix') ?? ''
      if (Buffer.byteLength(prefix, 'utf8') > KV_MAX_KEY_BYTES) throw badRequest(`the prefix is longer than ${KV_MAX_KEY_BYTES} bytes`)
    } else {
      const key = checkKey(decodeComponent(rest, 'the key'))
      if (params.has('prefix')) {
        if (!flag(params, 'prefix')) prefix = undefined
        else prefix = key
        if (prefix !== undefined && flag(params, 'raw')) throw badRequest('?raw reads one key; it does not go with ?prefix')
      }
      if (prefix === undefined) {
        if (consistent) {
          if (deps.raft === undefined) throw unavailable('replicated log')
          await deps.raft.readBarrier()
        }
        const entry = kv.get(key)
        if (entry === undefined) throw new HttpError(404, 'NotFound', `no such key: ${JSON.stringify(key)}`)
        if (flag(params, 'raw')) {
          res.writeHead(200, {
            'content-type': 'application/octet-stream',
            'content-length': entry.value.byteLength,
            'x-shoal-create-index': String(entry.createIndex),
            'x-shoal-modify-index': String(entry.modifyIndex)
          })
          res.end(entry.value)
          return
        }
        send(res, 200, pairView(entry))
        return
      }
    }
    if (consistent) {
      if (deps.raft === undefined) throw unavailable('replicated log')
      await deps.raft.readBarrier()
    }
    const body: KvListView = { kind: 'KvList', index: kv.appliedIndex, items: kv.list(prefix).map(pairView) }
    send(res, 200, body)
    return
  }

  // PUT and DELETE. The key is checked before the body is read: a bad key costs nothing.
  const params = parseQuery(rawQuery, ['cas'])
  const cas = casParam(params)
  const key = checkKey(decodeComponent(rest, 'the key'))
  if (method === 'PUT') {
    if (deps.raft === undefined) throw unavailable('replicated log')
    const value = await readBody(req, deps.kvMaxValueBytes)
    await write(deps, res, key, cas, encodeKvCommand({ op: 'put', key, value, ...(cas !== undefined ? { cas } : {}) }))
    return
  }
  await write(deps, res, key, cas, encodeKvCommand({ op: 'del', key, ...(cas !== undefined ? { cas } : {}) }))
}
