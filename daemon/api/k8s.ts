// The Kubernetes-layout REST API: /api/v1/... and /apis/{group}/{version}/...
// for the kinds in protocol/kinds.ts, namespaced and cluster-wide; GET (one,
// list, ?watch=1 as newline-delimited events), POST, PUT, PATCH (merge,
// strategic merge, JSON patch), DELETE, the status and scale subresources
// and a pod's eviction (a policy/v1 Eviction, decided by the store's evict
// command, so one log entry checks the disruption budget and deletes the
// pod); server-side apply (./apply.ts); discovery documents and a
// minimal OpenAPI v3 (./discovery.ts), /version; Table answers for kubectl
// (./table.ts). Reads come from the local replica (through ReadIndex with
// ?consistent or resourceVersion=""); writes are StoreCommands proposed
// through the Replicator, which forwards them to the leader.
// May import: protocol/, daemon/store/types.ts and command.ts (the interface and the command encoder), daemon/raft/replicator.ts, ./http.ts, ./apply.ts, ./discovery.ts, ./table.ts, ./watch.ts.
import { kindOfResource } from '../../protocol/kinds.ts'
import { randomUUID } from 'node:crypto'
import type { IncomingMessage, ServerResponse } from 'node:http'
import type { Readable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { parse as parseYaml, YAMLParseError } from 'yaml'
import { apiVersionOf, rfc3339 } from '../../protocol/k8s.ts'
import { isScalable, scaleOf } from '../../protocol/apps-v1.ts'
import { isPlainObject, MAX_JSON_DEPTH } from '../../protocol/json.ts'
import type { JsonObject } from '../../protocol/json.ts'
import type { Kind } from '../../protocol/kinds.ts'
import { VERSION } from '../../protocol/version.ts'
import type { Replicator } from '../raft/replicator.ts'
import { GoneError } from '../store/types.ts'
import { BadSelectorError } from '../../protocol/selector.ts'
import type { ObjectRef, PatchType, StoreCommand, StoreReader, StoreResult, StoreWriter, WatchOptions } from '../store/types.ts'
import { serverSideApply } from './apply.ts'
import { discovery, isOpenApiPath, openApi } from './discovery.ts'
import type { DiscoveryAnswer } from './discovery.ts'
import { asObject, checkBodyBounds, HttpError, jsonTextTooDeep, readBody, send, tooDeep } from './http.ts'
import type { BodyObject } from './http.ts'
import { includeObjectOf, tableAccept, toTable } from './table.ts'
import { streamWatch } from './watch.ts'
import type { OpenWatches, WatchCaller, WatchStreamOptions } from './watch.ts'

/** Request bodies above this are refused with 413 (Kubernetes allows about 3 MiB). */
export const MAX_OBJECT_BYTES = 3 * 1024 * 1024
/**
 * Aliases a YAML body may resolve (the yaml library's own guard against
 * "billion laughs"); what they expand to is bounded by checkBodyBounds.
 */
const YAML_MAX_ALIASES = 100

/** Logs and exec of a pod's container, wherever it runs (daemon/kubelet/access.ts); `follow` answers with `stream`. */
export type PodAccessFn = (req:
  | { type: 'logs', namespace: string, name: string, container?: string, previous?: boolean, tailLines?: number, follow?: boolean }
  | { type: 'exec', namespace: string, name: string, container?: string, command: string[], timeoutMs?: number }
) => Promise<{ ok: true, logs?: string, stream?: Readable, exitCode?: number, stdout?: string, stderr?: string } | { ok: false, code: number, message: string }>

export interface K8sDeps {
  store?: StoreReader
  raft?: Replicator
  writer?: StoreWriter
  podAccess?: PodAccessFn
  /** false for a read-only (viewer) caller: every write gets 403 */
  canWrite: boolean
  /** the server's open watches and their limits; without it a watch is a 503 */
  watches?: OpenWatches
  /** who is asking (their token's role and address), for the caps on watches */
  caller?: WatchCaller
}

/** Whether a path belongs to this handler. */
export function isK8sPath (path: string): boolean {
  return path === '/api' || path.startsWith('/api/') || path === '/apis' || path.startsWith('/apis/') || path === '/version' || path === '/readyz' || isOpenApiPath(path)
}

/** The content type of server-side apply (`kubectl apply --server-side`). */
const APPLY_PATCH = 'application/apply-patch+yaml'

type Subresource = 'status' | 'scale' | 'log' | 'exec' | 'eviction'

interface Target {
  type: Kind
  namespace?: string
  name?: string
  subresource?: Subresource
}

/** A collection, an object, or an object's status or scale: what the store serves (a pod's log, exec and eviction are not). */
type ObjectTarget = Target & { subresource?: 'status' | 'scale' }

function isObjectTarget (t: Target): t is ObjectTarget {
  return t.subresource === undefined || t.subresource === 'status' || t.subresource === 'scale'
}

const PATCH_TYPES: Record<string, PatchType> = {
  'application/merge-patch+json': 'merge',
  'application/strategic-merge-patch+json': 'strategic',
  'application/json-patch+json': 'json'
}

function notFound (message: string): HttpError { return new HttpError(404, 'NotFound', message) }

/** Splits /api/v1/namespaces/ns/pods/name/status (and the /apis/... form) into its parts. */
function parseTarget (segments: string[]): Target | 'discovery' {
  let group: string
  let version: string
  let rest: string[]
  if (segments[0] === 'api') {
    if (segments.length === 1) return 'discovery'
    group = ''
    version = segments[1] ?? ''
    rest = segments.slice(2)
  } else {
    if (segments.length <= 3) return 'discovery'
    group = segments[1] ?? ''
    version = segments[2] ?? ''
    rest = segments.slice(3)
  }
  if (rest.length === 0) return 'discovery'
  let namespace: string | undefined
  if (rest[0] === 'namespaces' && rest.length >= 3) {
    namespace = rest[1]
    rest = rest.slice(2)
  }
  const [plural, name, sub, ...extra] = rest
  const type = kindOfResource(group, plural ?? '')
  if (type === undefined || type.version !== version) {
    throw notFound(`the server could not find the requested resource (${group === '' ? '' : group + '/'}${version} ${plural ?? ''})`)
  }
  if (namespace !== undefined && !type.namespaced) throw notFound(`${type.plural} are not namespaced`)
  if (extra.length > 0) throw notFound('the server could not find the requested resource')
  return {
    type,
    ...(namespace !== undefined ? { namespace } : {}),
    ...(name !== undefined ? { name } : {}),
    ...(sub !== undefined ? { subresource: subresourceOf(type, sub) } : {})
  }
}

/** The subresource named `sub`, if `type` has it: a pod's log and exec, and the status, scale and eviction that the kind lists. */
function subresourceOf (type: Kind, sub: string): Subresource {
  if (type.kind === 'Pod' && (sub === 'log' || sub === 'exec')) return sub
  if ((sub === 'status' || sub === 'scale' || sub === 'eviction') && type.subresources.includes(sub)) return sub
  throw notFound(`${type.plural} have no ${sub} subresource`)
}

/**
 * Parses a JSON or YAML body; a syntax error is a 400 that says where. What
 * it parses to is bounded (checkBodyBounds): nested at most MAX_JSON_DEPTH
 * levels (400), and no larger once expanded than a write may be (413; YAML
 * aliases can make a small body a large object).
 */
function parseBody (body: Buffer, contentType: string): unknown {
  const text = body.toString('utf8')
  if (text.trim() === '') throw new HttpError(400, 'BadRequest', 'the request body is empty')
  let value: unknown
  if (/yaml/.test(contentType)) {
    try {
      value = parseYaml(text, { maxAliasCount: YAML_MAX_ALIASES })
    } catch (err) {
      const at = err instanceof YAMLParseError ? err.linePos?.[0] : undefined
      throw new HttpError(400, 'BadRequest', `the body is not valid YAML${at !== undefined ? ` (line ${at.line}, column ${at.col})` : ''}: ${messageOf(err).split('\n')[0]}`)
    }
  } else {
    if (jsonTextTooDeep(text, MAX_JSON_DEPTH)) throw tooDeep()
    try {
      value = JSON.parse(text)
    } catch (err) {
      throw new HttpError(400, 'BadRequest', `the body is not valid JSON: ${messageOf(err)}`)
    }
  }
  checkBodyBounds(value)
  return value
}

function messageOf (err: unknown): string {
  return err instanceof Error ? err.message : String(err)
}

function flag (params: URLSearchParams, name: string): boolean {
  const v = params.get(name)
  return v !== null && v !== 'false' && v !== '0'
}

/** The answer for a store result: the object, or its Status with the store's code. */
function answer (res: ServerResponse, r: StoreResult, okCode: number): void {
  // The replicator hands back what applying the command returned: check it is one.
  if (typeof r !== 'object' || r === null || typeof r.ok !== 'boolean') throw new Error(`the store returned ${JSON.stringify(r)}`)
  if (r.ok) {
    send(res, okCode, r.object)
    return
  }
  const s = r.status
  throw new HttpError(s.code, s.reason, s.message)
}

export async function handleK8s (req: IncomingMessage, res: ServerResponse, url: URL, deps: K8sDeps): Promise<void> {
  const path = url.pathname
  const method = req.method === 'HEAD' ? 'GET' : req.method ?? ''
  if (path === '/version') {
    if (method !== 'GET') throw new HttpError(405, 'MethodNotAllowed', `${req.method ?? ''} is not allowed on ${path}`)
    send(res, 200, { major: '1', minor: '30', gitVersion: `v1.30.0-shoal.${VERSION}`, platform: `${process.platform}/${process.arch}`, goVersion: 'n/a' })
    return
  }
  if (path === '/readyz') {
    if (deps.store === undefined || deps.raft === undefined) throw new HttpError(503, 'ServiceUnavailable', 'the store is not running on this peer yet', { 'retry-after': '1' })
    const status = deps.raft.status()
    if (status.leader === undefined) throw new HttpError(503, 'ServiceUnavailable', 'no leader is elected yet', { 'retry-after': '1' })
    send(res, 200, { status: 'ok' })
    return
  }
  if (isOpenApiPath(path)) {
    serveDiscovery(req, res, method, path, openApi(path, req.headers.accept))
    return
  }
  const segments = pathSegments(path)
  const target = parseTarget(segments)
  if (target === 'discovery') {
    serveDiscovery(req, res, method, path, discovery(segments))
    return
  }
  const store = deps.store
  const raft = deps.raft
  const writer = deps.writer
  if (store === undefined || raft === undefined || writer === undefined) throw new HttpError(503, 'ServiceUnavailable', 'the store is not running on this peer yet', { 'retry-after': '1' })
  const params = url.searchParams
  if (target.subresource === 'eviction') {
    await serveEviction(req, res, method, target, params, writer, deps.canWrite)
    return
  }
  if (!isObjectTarget(target)) {
    await podAccess(req, res, method, target, params, deps)
    return
  }

  if (method === 'GET') {
    await serveGet(req, res, target, params, deps, store, raft)
    return
  }

  if (!['POST', 'PUT', 'PATCH', 'DELETE'].includes(method)) throw new HttpError(405, 'MethodNotAllowed', `${req.method ?? ''} is not allowed on ${path}`)
  await serveWrite(req, res, method, target, params, store, writer, deps.canWrite)
}

/** The path's segments, percent-decoded; a malformed escape (%E0%A4%A, %zz) is a 400, never a 500. */
function pathSegments (path: string): string[] {
  return path.split('/').filter(s => s !== '').map(s => {
    try {
      return decodeURIComponent(s)
    } catch {
      throw new HttpError(400, 'BadRequest', `the path segment "${s.length > 64 ? s.slice(0, 64) + '…' : s}" is not valid percent-encoded UTF-8`)
    }
  })
}

/** A discovery or OpenAPI document: as bytes when it is one (protobuf), else as JSON; GET only. */
function serveDiscovery (req: IncomingMessage, res: ServerResponse, method: string, path: string, discovered: DiscoveryAnswer): void {
  if (method !== 'GET') throw new HttpError(405, 'MethodNotAllowed', `${req.method ?? ''} is not allowed on ${path}`)
  if ('notFound' in discovered) throw notFound(discovered.notFound)
  if ('bytes' in discovered) {
    res.writeHead(200, { 'content-type': discovered.contentType, 'content-length': discovered.bytes.length })
    res.end(discovered.bytes)
    return
  }
  // Plain application/json also to an aggregated-discovery Accept: kubectl then falls back to these documents.
  send(res, 200, discovered.body)
}

/** What every write works from: the path's target, the query, and what the request says of its body. */
interface WriteRequest {
  target: ObjectTarget
  params: URLSearchParams
  /** ?dryRun=All: validate and answer, but change nothing */
  dryRun: boolean
  now: string
  /** the body's media type, lower case, without parameters */
  contentType: string
  writer: StoreWriter
}

/**
 * POST, PUT, PATCH or DELETE (the caller lets no other method through): a
 * read-only token gets 403 (its body read and dropped), the others a
 * StoreCommand through the writer, or server-side apply.
 */
async function serveWrite (req: IncomingMessage, res: ServerResponse, method: string, target: ObjectTarget, params: URLSearchParams, store: StoreReader, writer: StoreWriter, canWrite: boolean): Promise<void> {
  if (!canWrite) {
    await readBody(req, MAX_OBJECT_BYTES).catch(() => {})
    throw new HttpError(403, 'Forbidden', `this token is read-only: it may not ${method === 'POST' ? 'create' : method === 'DELETE' ? 'delete' : 'change'} ${target.type.plural}`)
  }
  const request: WriteRequest = {
    target,
    params,
    dryRun: params.get('dryRun') === 'All',
    now: rfc3339(Date.now()),
    contentType: String(req.headers['content-type'] ?? 'application/json').split(';')[0]?.trim().toLowerCase() ?? 'application/json',
    writer
  }
  if (method === 'DELETE') {
    await serveDelete(req, res, request)
    return
  }
  const body = await readBody(req, MAX_OBJECT_BYTES).catch((err: unknown) => {
    if (err instanceof HttpError && err.code === 413) throw new HttpError(413, 'RequestEntityTooLarge', `the request body is larger than ${MAX_OBJECT_BYTES} bytes`)
    throw err
  })
  if (method === 'PATCH') await servePatch(res, request, body, store)
  else if (method === 'POST') await serveCreate(res, request, body)
  else await serveUpdate(res, request, body)
}

/** DELETE of one object, with DeleteOptions (propagationPolicy, preconditions) from the body and the query. */
async function serveDelete (req: IncomingMessage, res: ServerResponse, request: WriteRequest): Promise<void> {
  const { target, params, dryRun, now, contentType, writer } = request
  if (target.name === undefined) throw new HttpError(405, 'MethodNotAllowed', 'deleting a whole collection is not supported; name the object')
  const body = await readBody(req, MAX_OBJECT_BYTES)
  const options: JsonObject = body.length > 0 ? asObject(parseBody(body, contentType), 'DeleteOptions') : {}
  const policy = params.get('propagationPolicy') ?? (typeof options.propagationPolicy === 'string' ? options.propagationPolicy : undefined)
  if (policy !== undefined && !isPropagationPolicy(policy)) throw new HttpError(400, 'BadRequest', `propagationPolicy must be Background, Foreground or Orphan, not "${policy}"`)
  const pre = preconditionsOf(options.preconditions)
  const cmd: StoreCommand = {
    op: 'delete',
    ref: refOf(target),
    now,
    ...(policy !== undefined ? { propagationPolicy: policy } : {}),
    ...(pre !== undefined ? { preconditions: pre } : {}),
    ...(dryRun ? { dryRun } : {})
  }
  answer(res, await writer.write(cmd), 200)
}

/** PATCH of one object, its status or its scale: a merge, strategic merge or JSON patch, or server-side apply. */
async function servePatch (res: ServerResponse, request: WriteRequest, body: Buffer, store: StoreReader): Promise<void> {
  const { target, dryRun, now, contentType, writer } = request
  if (target.name === undefined) throw new HttpError(405, 'MethodNotAllowed', 'PATCH needs an object name')
  if (contentType === APPLY_PATCH) {
    await serveApply(res, request, body, store)
    return
  }
  const patchType = PATCH_TYPES[contentType]
  if (patchType === undefined) {
    throw new HttpError(415, 'UnsupportedMediaType', `PATCH takes ${[...Object.keys(PATCH_TYPES), APPLY_PATCH].join(', ')}; not ${contentType}`)
  }
  const patch = parseBody(body, 'application/json')
  const cmd: StoreCommand = {
    op: 'patch',
    ref: refOf(target),
    patchType,
    patch,
    now,
    ...(target.subresource !== undefined ? { subresource: target.subresource } : {}),
    ...(dryRun ? { dryRun } : {})
  }
  answer(res, await writer.write(cmd), 200)
}

/** Server-side apply of a named object (`kubectl apply --server-side`), worked out by ./apply.ts; not on a subresource. */
async function serveApply (res: ServerResponse, request: WriteRequest, body: Buffer, store: StoreReader): Promise<void> {
  const { target, params, dryRun, now, writer } = request
  if (target.subresource !== undefined) throw new HttpError(415, 'UnsupportedMediaType', `server-side apply is not supported on the ${target.subresource} subresource`)
  const applied = asObject(parseBody(body, 'application/yaml'), 'the applied object')
  const force = params.get('force')
  if (force !== null && force !== 'true' && force !== 'false') throw new HttpError(400, 'BadRequest', `force must be true or false, not "${force}"`)
  const outcome = await serverSideApply({
    store,
    writer,
    type: target.type,
    ref: refOf(target),
    applied,
    manager: params.get('fieldManager') ?? '',
    force: force === 'true',
    dryRun,
    now,
    uid: randomUUID
  })
  send(res, outcome.code, outcome.body)
}

/**
 * The body of a POST or PUT: a Scale for the scale subresource, else an
 * object of the path's kind (apiVersion and kind filled in when missing);
 * either way placed in the path's namespace when the kind is namespaced.
 */
function objectOfBody (request: WriteRequest, body: Buffer): BodyObject {
  const { target, contentType } = request
  const { type } = target
  const object = asObject(parseBody(body, contentType), 'the object')
  const expected = apiVersionOf(type)
  if (target.subresource !== 'scale') {
    if (object.apiVersion === undefined) object.apiVersion = expected
    if (object.kind === undefined) object.kind = type.kind
    if (object.apiVersion !== expected || object.kind !== type.kind) {
      throw new HttpError(400, 'BadRequest', `the object is a ${String(object.kind)} (${String(object.apiVersion)}) but the path is for ${type.kind} (${expected})`)
    }
  }
  if (type.namespaced) {
    const ns = object.metadata.namespace
    if (ns !== undefined && target.namespace !== undefined && ns !== target.namespace) {
      throw new HttpError(400, 'BadRequest', `the namespace of the object (${ns}) does not match the namespace of the request (${target.namespace})`)
    }
    if (target.namespace !== undefined) object.metadata.namespace = target.namespace
    if (object.metadata.namespace === undefined) throw new HttpError(400, 'BadRequest', `${type.plural} are namespaced: use /namespaces/{namespace}/${type.plural}`)
  }
  return object
}

/** POST to a collection: create the object. */
async function serveCreate (res: ServerResponse, request: WriteRequest, body: Buffer): Promise<void> {
  const { target, dryRun, now, writer } = request
  const { type } = target
  const object = objectOfBody(request, body)
  if (target.name !== undefined) throw new HttpError(405, 'MethodNotAllowed', 'POST goes to the collection, not to a named object')
  const cmd: StoreCommand = { op: 'create', object: { ...object, apiVersion: apiVersionOf(type), kind: type.kind }, uid: randomUUID(), now, ...(dryRun ? { dryRun } : {}) }
  answer(res, await writer.write(cmd), 201)
}

/** PUT of one object (an update), of its status, or of its scale (a merge patch of spec.replicas). */
async function serveUpdate (res: ServerResponse, request: WriteRequest, body: Buffer): Promise<void> {
  const { target, dryRun, now, writer } = request
  const { type } = target
  const object = objectOfBody(request, body)
  if (target.name === undefined) throw new HttpError(405, 'MethodNotAllowed', 'PUT needs an object name')
  if (target.subresource === 'scale') {
    const replicas = isPlainObject(object.spec) ? object.spec.replicas : undefined
    if (typeof replicas !== 'number' || !Number.isSafeInteger(replicas) || replicas < 0) throw new HttpError(422, 'Invalid', 'Scale.spec.replicas must be a non-negative integer')
    const cmd: StoreCommand = { op: 'patch', ref: refOf(target), patchType: 'merge', patch: { spec: { replicas } }, now, subresource: 'scale', ...(dryRun ? { dryRun } : {}) }
    answer(res, await writer.write(cmd), 200)
    return
  }
  if (object.metadata.name !== undefined && object.metadata.name !== target.name) {
    throw new HttpError(400, 'BadRequest', `the name of the object (${object.metadata.name}) does not match the name in the path (${target.name})`)
  }
  object.metadata.name = target.name
  const cmd: StoreCommand = {
    op: 'update',
    object: { ...object, apiVersion: apiVersionOf(type), kind: type.kind },
    now,
    ...(target.subresource === 'status' ? { subresource: 'status' as const } : {}),
    ...(dryRun ? { dryRun } : {})
  }
  answer(res, await writer.write(cmd), 200)
}

/** GET of a collection (a list, or with ?watch a stream of changes) or of one object, its status or its scale; as a Table when asked. */
async function serveGet (req: IncomingMessage, res: ServerResponse, target: Target, params: URLSearchParams, deps: K8sDeps, store: StoreReader, raft: Replicator): Promise<void> {
  const { type } = target
  const consistent = flag(params, 'consistent') || params.get('resourceVersion') === ''
  const tableVersion = target.subresource === undefined ? tableAccept(req.headers.accept) : undefined
  const includeObject = includeObjectOf(params.get('includeObject'))
  if (includeObject === undefined) throw new HttpError(400, 'BadRequest', `includeObject must be Object, Metadata or None, not "${params.get('includeObject') ?? ''}"`)
  const table = tableVersion === undefined ? undefined : { version: tableVersion, includeObject }
  if (target.name === undefined) {
    const labelSelector = params.get('labelSelector')
    const fieldSelector = params.get('fieldSelector')
    const resourceVersion = params.get('resourceVersion')
    const opts = {
      ...(target.namespace !== undefined ? { namespace: target.namespace } : {}),
      ...(labelSelector !== null ? { labelSelector } : {}),
      ...(fieldSelector !== null ? { fieldSelector } : {})
    }
    try {
      // HEAD has no body, so a watch's would never end: the client reads the head, reuses the connection, and its next request waits behind the watch.
      if (flag(params, 'watch') && req.method !== 'HEAD') {
        await serveWatch(req, res, target, params, deps, store, { ...opts, ...(resourceVersion !== null && resourceVersion !== '' ? { resourceVersion } : {}) }, table)
        return
      }
      if (consistent) await raft.readBarrier()
      const list = store.list(type, opts)
      if (table !== undefined) {
        send(res, 200, toTable(type, list.items, { ...table, now: Date.now(), resourceVersion: list.resourceVersion }))
        return
      }
      send(res, 200, { apiVersion: apiVersionOf(type), kind: `${type.kind}List`, metadata: { resourceVersion: list.resourceVersion }, items: list.items })
    } catch (err) {
      if (err instanceof BadSelectorError) throw new HttpError(400, 'BadRequest', err.message)
      if (err instanceof GoneError) throw new HttpError(410, 'Expired', err.message)
      throw err
    }
    return
  }
  if (consistent) await raft.readBarrier()
  const obj = store.get(type, target.namespace, target.name)
  if (obj === undefined) throw notFound(`${type.plural}${type.group !== '' ? '.' + type.group : ''} "${target.name}" not found`)
  if (table !== undefined) {
    send(res, 200, toTable(type, [obj], { ...table, now: Date.now(), ...(obj.metadata.resourceVersion !== undefined ? { resourceVersion: obj.metadata.resourceVersion } : {}) }))
    return
  }
  if (target.subresource === 'scale') {
    // parseTarget let only the kinds with a scale subresource through
    if (!isScalable(obj)) throw notFound(`${type.plural} have no scale subresource`)
    send(res, 200, scaleOf(obj))
    return
  }
  send(res, 200, obj)
}

/**
 * GET .../pods/{name}/log (text; `container`, `previous`, `tailLines`;
 * `follow` streams it, chunked, until the container ends or the client goes) and
 * POST .../pods/{name}/exec?command=a&command=b (JSON: exitCode, stdout,
 * stderr; Shoal's own answer, where Kubernetes streams over SPDY).
 */
async function podAccess (req: IncomingMessage, res: ServerResponse, method: string, target: Target, params: URLSearchParams, deps: K8sDeps): Promise<void> {
  if (deps.podAccess === undefined) throw new HttpError(503, 'ServiceUnavailable', 'the node agent is not running on this peer yet', { 'retry-after': '1' })
  const namespace = target.namespace ?? 'default'
  const name = target.name ?? ''
  const container = params.get('container') ?? undefined
  if (target.subresource === 'log') {
    if (method !== 'GET') throw new HttpError(405, 'MethodNotAllowed', 'logs are read with GET')
    const tail = params.get('tailLines')
    const tailLines = tail === null ? undefined : Number(tail)
    if (tailLines !== undefined && (!Number.isSafeInteger(tailLines) || tailLines < 0)) throw new HttpError(400, 'BadRequest', `tailLines must be a non-negative integer, not "${tail ?? ''}"`)
    // As with watches: a HEAD must not leave a stream open behind its head.
    const follow = flag(params, 'follow') && req.method !== 'HEAD'
    const r = await deps.podAccess({ type: 'logs', namespace, name, ...(container !== undefined ? { container } : {}), previous: flag(params, 'previous'), ...(tailLines !== undefined ? { tailLines } : {}), ...(follow ? { follow } : {}) })
    if (!r.ok) throw podAccessError(r)
    if (r.stream !== undefined) {
      if (res.destroyed || req.socket.destroyed) {
        r.stream.destroy()
        return
      }
      res.writeHead(200, { 'content-type': 'text/plain; charset=utf-8', 'cache-control': 'no-cache', 'x-content-type-options': 'nosniff' })
      res.flushHeaders()
      // A client that goes away ends the pipeline, which destroys the log stream (and whatever feeds it).
      await pipeline(r.stream, res).catch(() => { res.destroy() })
      return
    }
    const text = r.logs ?? ''
    res.writeHead(200, { 'content-type': 'text/plain; charset=utf-8', 'content-length': Buffer.byteLength(text) })
    res.end(text)
    return
  }
  if (method !== 'POST' && method !== 'GET') throw new HttpError(405, 'MethodNotAllowed', 'exec is a POST')
  if (!deps.canWrite) throw new HttpError(403, 'Forbidden', 'this token is read-only: it may not exec in pods')
  await readBody(req, MAX_OBJECT_BYTES).catch(() => {})
  const command = params.getAll('command')
  if (command.length === 0) throw new HttpError(400, 'BadRequest', 'exec needs a command: ?command=ls&command=-l')
  const r = await deps.podAccess({ type: 'exec', namespace, name, ...(container !== undefined ? { container } : {}), command })
  if (!r.ok) throw podAccessError(r)
  send(res, 200, { exitCode: r.exitCode ?? 0, stdout: r.stdout ?? '', stderr: r.stderr ?? '' })
}

/** The Eviction versions kube-apiserver accepts on the subresource: policy/v1, and the v1beta1 that older clients send. */
const EVICTION_VERSIONS = ['policy/v1', 'policy/v1beta1']

/**
 * POST .../pods/{name}/eviction with an Eviction: 201 and a Success Status
 * when the pod is evicted (deleted), else the store's Status as it stands
 * (429 TooManyRequests with a DisruptionBudget cause, 500 for several
 * budgets, 404, 409 for failed preconditions), with Retry-After when it
 * names one. DeleteOptions: gracePeriodSeconds, preconditions, dryRun.
 */
async function serveEviction (req: IncomingMessage, res: ServerResponse, method: string, target: Target, params: URLSearchParams, writer: StoreWriter, canWrite: boolean): Promise<void> {
  if (method !== 'POST') {
    throw new HttpError(405, 'MethodNotAllowed', `${req.method ?? ''} is not allowed on the eviction subresource; POST an Eviction`, { allow: 'POST' })
  }
  if (!canWrite) {
    await readBody(req, MAX_OBJECT_BYTES).catch(() => {})
    throw new HttpError(403, 'Forbidden', 'this token is read-only: it may not evict pods')
  }
  const contentType = String(req.headers['content-type'] ?? 'application/json').split(';')[0]?.trim().toLowerCase() ?? 'application/json'
  if (contentType.includes('protobuf')) throw new HttpError(415, 'UnsupportedMediaType', 'the eviction subresource takes JSON or YAML, not protobuf')
  const eviction = asObject(parseBody(await readBody(req, MAX_OBJECT_BYTES), contentType), 'the Eviction')
  const apiVersion = eviction.apiVersion ?? 'policy/v1'
  const kind = eviction.kind ?? 'Eviction'
  if (typeof apiVersion !== 'string' || !EVICTION_VERSIONS.includes(apiVersion) || kind !== 'Eviction') {
    throw new HttpError(400, 'BadRequest', `the eviction subresource takes an Eviction (${EVICTION_VERSIONS.join(' or ')}), not a ${String(kind)} (${String(apiVersion)})`)
  }
  const name = target.name ?? ''
  if (eviction.metadata.name !== name) throw new HttpError(400, 'BadRequest', 'name in URL does not match name in Eviction object')
  const ns = eviction.metadata.namespace
  if (ns !== undefined && ns !== '' && ns !== target.namespace) throw new HttpError(400, 'BadRequest', 'the namespace of the provided object does not match the namespace sent on the request')
  const options: JsonObject = isPlainObject(eviction.deleteOptions) ? eviction.deleteOptions : {}
  const grace = options.gracePeriodSeconds
  if (grace !== undefined && grace !== null && (typeof grace !== 'number' || !Number.isSafeInteger(grace) || grace < 0)) {
    throw new HttpError(400, 'BadRequest', 'deleteOptions.gracePeriodSeconds must be a non-negative whole number of seconds')
  }
  const pre = preconditionsOf(options.preconditions)
  const dryRun = dryRunOf(params.getAll('dryRun'), options.dryRun)
  const cmd: StoreCommand = {
    op: 'evict',
    ref: refOf(target),
    now: rfc3339(Date.now()),
    ...(typeof grace === 'number' ? { gracePeriodSeconds: grace } : {}),
    ...(pre !== undefined ? { preconditions: pre } : {}),
    ...(dryRun ? { dryRun } : {})
  }
  const r = await writer.write(cmd)
  if (typeof r !== 'object' || r === null || typeof r.ok !== 'boolean') throw new Error(`the store returned ${JSON.stringify(r)}`)
  if (r.ok) {
    send(res, 201, { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Success' })
    return
  }
  // As the store made it: a refusal keeps its details (the budget's cause, when to retry).
  const status: unknown = r.status
  const retry = isPlainObject(status) && isPlainObject(status.details) ? status.details.retryAfterSeconds : undefined
  send(res, r.status.code, status, typeof retry === 'number' && retry > 0 ? { 'retry-after': String(retry) } : {})
}

/** ?dryRun=All or deleteOptions.dryRun: ["All"] (the only value either may have, so the two cannot disagree). */
function dryRunOf (query: string[], body: unknown): boolean {
  if (body !== undefined && body !== null && (!Array.isArray(body) || !body.every(v => v === 'All'))) throw new HttpError(400, 'BadRequest', 'deleteOptions.dryRun may only be ["All"]')
  if (!query.every(v => v === 'All')) throw new HttpError(400, 'BadRequest', 'dryRun may only be All')
  return query.length > 0 || (Array.isArray(body) && body.length > 0)
}

/** A failed log or exec as the API answers it: a node out of reach is a 503 that a client may retry. */
function podAccessError (r: { code: number, message: string }): HttpError {
  const reason = r.code === 404 ? 'NotFound' : r.code === 503 ? 'ServiceUnavailable' : r.code === 403 ? 'Forbidden' : 'BadRequest'
  return new HttpError(r.code, reason, r.message, r.code === 503 ? { 'retry-after': '5' } : {})
}

function refOf (t: Target): ObjectRef {
  return { group: t.type.group, resource: t.type.plural, ...(t.namespace !== undefined ? { namespace: t.namespace } : {}), name: t.name ?? '' }
}

function isPropagationPolicy (p: string): p is 'Background' | 'Foreground' | 'Orphan' {
  return p === 'Background' || p === 'Foreground' || p === 'Orphan'
}

/** DeleteOptions.preconditions: ignored unless an object; a 400 if its uid or resourceVersion is not a string. */
function preconditionsOf (v: unknown): { uid?: string, resourceVersion?: string } | undefined {
  if (!isPlainObject(v)) return undefined
  const { uid, resourceVersion } = v
  if (uid !== undefined && typeof uid !== 'string') throw new HttpError(400, 'BadRequest', 'preconditions.uid must be a string')
  if (resourceVersion !== undefined && typeof resourceVersion !== 'string') throw new HttpError(400, 'BadRequest', 'preconditions.resourceVersion must be a string')
  return { ...(uid !== undefined ? { uid } : {}), ...(resourceVersion !== undefined ? { resourceVersion } : {}) }
}

/**
 * GET of a collection with ?watch: the stream of ./watch.ts, with
 * ?timeoutSeconds (a whole number; 0 or none for no limit) and
 * ?allowWatchBookmarks.
 */
async function serveWatch (req: IncomingMessage, res: ServerResponse, target: Target, params: URLSearchParams, deps: K8sDeps, store: StoreReader, opts: WatchOptions, table: WatchStreamOptions['table']): Promise<void> {
  if (deps.watches === undefined || deps.caller === undefined) throw new HttpError(503, 'ServiceUnavailable', 'watches are not served on this peer', { 'retry-after': '1' })
  const timeout = params.get('timeoutSeconds')
  const seconds = timeout === null || timeout === '' ? 0 : /^\d{1,9}$/.test(timeout) ? Number(timeout) : NaN
  if (Number.isNaN(seconds)) throw new HttpError(400, 'BadRequest', `timeoutSeconds must be a whole number of seconds, not "${timeout ?? ''}"`)
  await streamWatch(req, res, store, target.type, opts, {
    watches: deps.watches,
    caller: deps.caller,
    ...(table !== undefined ? { table } : {}),
    ...(seconds > 0 ? { timeoutMs: seconds * 1000 } : {}),
    bookmarks: flag(params, 'allowWatchBookmarks')
  })
}
