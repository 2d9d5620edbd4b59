// The HTTP API that every peer serves: /healthz, /version and /readyz (no
// auth); the Kubernetes layout (./k8s.ts); and Shoal's own paths under
// /shoal/v1 (routeShoal): who the caller is, the member list, the Raft
// status, backups, the state hash (admin only, rate-limited: ./debug.ts) and
// the cluster KV (./kv.ts). Every path but the public ones needs a bearer
// token; a viewer's token only reads, and sees Secrets' metadata only, never
// their data (./redact.ts). Watches are capped per token and per
// client address (./watch.ts). Handlers may be
// async: whatever they throw or reject with becomes a Status answer here
// (replicator errors as 503/504), and a bad request or a vanished client
// never reaches the process.
// The UI's static files under /ui are served without a token, by the handler
// main.ts hands in (daemon/ui's serveUi): the API does not import the UI.
// May import: protocol/, daemon/membership (read only), daemon/log,
// daemon/raft/replicator.ts (the interface and its errors), daemon/kv.
import { createServer, STATUS_CODES } from 'node:http'
import type { IncomingMessage, Server, ServerResponse } from 'node:http'
import type { Duplex } from 'node:stream'
import { API_PREFIX } from '../../protocol/api.ts'
import type { WhoAmI } from '../../protocol/api.ts'
import type { MemberList, MemberView, RaftStatusView } from '../../protocol/api.ts'
import { DEFAULT_KV_MAX_VALUE_BYTES } from '../../protocol/kv.ts'
import type { KvStore } from '../kv/store.ts'
import type { Logger } from '../log/log.ts'
import type { Member } from '../membership/table.ts'
import type { Replicator } from '../raft/replicator.ts'
import type { Role, TokenStore } from './auth.ts'
import { allow, ClientGoneError, discard, HttpError, replicatorHttpError, send, status } from './http.ts'
import { handleK8s, isK8sPath } from './k8s.ts'
import type { PodAccessFn } from './k8s.ts'
import { handleKv, isKvTarget } from './kv.ts'
import type { KvRouteDeps } from './kv.ts'
import type { StoreReader } from '../store/types.ts'
import { replicatedWriter } from '../store/writer.ts'
import { BACKUP_PATH, handleBackup } from './backup.ts'
import { handleStateHash, STATE_HASH_INTERVAL_MS, STATE_HASH_PATH, StateHashRate } from './debug.ts'
import { secretsAsMetadata } from './redact.ts'
import { DEFAULT_WATCH_LIMITS, OpenWatches } from './watch.ts'
import type { WatchLimits } from './watch.ts'
import type { TakeBackup } from '../backup/source.ts'

export interface ApiDeps {
  tokens: TokenStore
  members: () => Member[]
  selfPeerId: string
  log: Logger
  /** the replicated log; without it /shoal/v1/raft and KV writes answer 503 */
  raft?: Replicator
  /** the leader's view of the log (GET /shoal/v1/raft?view=leader), fetched from the leader when this peer follows */
  leaderRaftStatus?: () => Promise<RaftStatusView | undefined>
  /** the KV state machine; without it every KV route answers 503 */
  kv?: KvStore
  /** the largest value a PUT may carry (default DEFAULT_KV_MAX_VALUE_BYTES) */
  kvMaxValueBytes?: number
  /** the resource store's local replica; without it the Kubernetes-layout API answers 503 */
  store?: StoreReader
  /** pods' logs and exec, wherever they run */
  podAccess?: PodAccessFn
  /** takes a backup of the whole state (GET /shoal/v1/backup); without it that answers 503 */
  backup?: TakeBackup
  /** serves the web UI's static files, before auth (the page signs in itself); true when it answered the request */
  ui?: (req: IncomingMessage, res: ServerResponse) => boolean
  /** caps on watches (default DEFAULT_WATCH_LIMITS, each field on its own) */
  watchLimits?: Partial<WatchLimits>
  /** the open watches, to count them from outside (tests); default a new OpenWatches with watchLimits */
  watches?: OpenWatches
  /** the clock of the rate limits, in ms (default Date.now) */
  now?: () => number
}

export function memberView (m: Member, selfPeerId: string): MemberView {
  const r = m.record
  return {
    name: r.name,
    peerId: r.peerId,
    addrs: r.addrs,
    api: r.api,
    state: m.state,
    lastSeen: new Date(m.lastSeen).toISOString(),
    startedAt: new Date(r.startedAt).toISOString(),
    version: r.version,
    capacity: r.capacity,
    incarnation: r.incarnation,
    ...(r.apiFingerprint !== undefined ? { apiFingerprint: r.apiFingerprint } : {}),
    self: r.peerId === selfPeerId
  }
}

export function createApiServer (deps: ApiDeps): Server {
  const kvDeps = { raft: deps.raft, kv: deps.kv, kvMaxValueBytes: deps.kvMaxValueBytes ?? DEFAULT_KV_MAX_VALUE_BYTES }
  const k8sDeps = {
    ...(deps.raft !== undefined ? { raft: deps.raft, writer: replicatedWriter(deps.raft) } : {}),
    ...(deps.store !== undefined ? { store: deps.store } : {}),
    ...(deps.podAccess !== undefined ? { podAccess: deps.podAccess } : {})
  }
  // The viewer token reads Secrets' metadata only (./redact.ts).
  const viewerK8sDeps = { ...k8sDeps, ...(deps.store !== undefined ? { store: secretsAsMetadata(deps.store) } : {}) }

  const watches = deps.watches ?? new OpenWatches({ ...DEFAULT_WATCH_LIMITS, ...deps.watchLimits }, deps.log)
  const stateHashRate = new StateHashRate(STATE_HASH_INTERVAL_MS, deps.now ?? Date.now)

  const route = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const url = requestUrl(req)
    // The UI's static files need no token: the page signs in itself.
    if (deps.ui?.(req, res) === true) return
    if (url.pathname === '/healthz') {
      allow(req, url.pathname, ['GET'])
      send(res, 200, { status: 'ok' })
      return
    }
    // Public, as in Kubernetes: what the server is and whether it is ready.
    if (url.pathname === '/version' || url.pathname === '/readyz') {
      await handleK8s(req, res, url, { ...k8sDeps, canWrite: false })
      return
    }
    const role = deps.tokens.role(req.headers.authorization)
    if (role === undefined) {
      throw new HttpError(401, 'Unauthorized', deps.tokens.get() === undefined
        ? 'this peer has not received the cluster token yet'
        : 'missing or wrong bearer token (send Authorization: Bearer <token>)')
    }
    if (isK8sPath(url.pathname)) {
      await handleK8s(req, res, url, { ...(role === 'admin' ? k8sDeps : viewerK8sDeps), canWrite: role === 'admin', watches, caller: { token: role, client: clientAddress(req) } })
      return
    }
    await routeShoal(req, res, url, role, { ...deps, kvDeps, stateHashRate })
  }

  const server = createServer({ requestTimeout: 30_000, headersTimeout: 10_000, noDelay: true }, (req, res) => {
    route(req, res).catch((err: unknown) => {
      try {
        fail(req, res, err, deps.log)
      } catch (again) {
        deps.log.error({ event: 'api.error', err: (again as Error)?.stack ?? String(again) }, 'could not answer an API error')
        res.destroy()
      }
    })
  })
  // What Node answers itself (a request its parser cannot read, an Expect it does not know) is a Status too.
  server.on('clientError', answerUnparsable)
  server.on('checkExpectation', (req: IncomingMessage, res: ServerResponse) => {
    discard(req)
    send(res, 417, status(417, 'ExpectationFailed', `this server does not support "Expect: ${String(req.headers.expect).slice(0, 100)}"`), { connection: 'close' })
  })
  return server
}

/**
 * A request Node's HTTP parser could not read (an unknown method, a
 * malformed request line or header, headers past the size limit, a request
 * that did not arrive in time): a Status, and the connection closes, as
 * Node's own bare answer would.
 */
function answerUnparsable (err: NodeJS.ErrnoException, socket: Duplex): void {
  if (err.code === 'ECONNRESET' || !socket.writable) {
    socket.destroy()
    return
  }
  const code = err.code === 'HPE_HEADER_OVERFLOW' ? 431 : err.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? 408 : 400
  const body = JSON.stringify(code === 431
    ? status(431, 'RequestHeaderFieldsTooLarge', 'the request line and headers are larger than this server reads')
    : code === 408
      ? status(408, 'Timeout', 'the request did not arrive in time')
      : status(400, 'BadRequest', `the request is not well-formed HTTP (${err.code ?? 'unparsable'})`)) + '\n'
  socket.end(`HTTP/1.1 ${code} ${STATUS_CODES[code] ?? ''}\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`)
}

/**
 * Shoal's own paths, under /shoal/v1, for a caller with a token: who it is,
 * the KV, backups, the state hash, the members and the Raft status. A
 * viewer's token may only read them.
 */
async function routeShoal (req: IncomingMessage, res: ServerResponse, url: URL, role: Role, deps: ApiDeps & { kvDeps: KvRouteDeps, stateHashRate: StateHashRate }): Promise<void> {
  const { kvDeps } = deps
  const target = req.url ?? '/'
  const q = target.indexOf('?')
  const rawPath = q < 0 ? target : target.slice(0, q)
  const rawQuery = q < 0 ? '' : target.slice(q + 1)
  if (url.pathname === `${API_PREFIX}/whoami`) {
    allow(req, url.pathname, ['GET'])
    send(res, 200, { kind: 'WhoAmI', role } satisfies WhoAmI)
    return
  }
  if (role === 'viewer' && req.method !== 'GET' && req.method !== 'HEAD') {
    throw new HttpError(403, 'Forbidden', 'this token is read-only: it may not change anything')
  }
  if (isKvTarget(rawPath)) {
    await handleKv(req, res, rawPath, rawQuery, kvDeps)
    return
  }
  if (url.pathname === BACKUP_PATH) {
    await handleBackup(req, res, deps.backup, role === 'admin')
    return
  }
  if (url.pathname === STATE_HASH_PATH) {
    // It encodes the whole state, Secrets included: the admin's alone.
    if (role !== 'admin') throw new HttpError(403, 'Forbidden', 'the state hash is for the admin token only')
    await handleStateHash(req, res, deps.backup, deps.stateHashRate, clientAddress(req))
    return
  }
  if (url.pathname === `${API_PREFIX}/members`) {
    allow(req, url.pathname, ['GET'])
    const body: MemberList = { kind: 'MemberList', items: deps.members().map(m => memberView(m, deps.selfPeerId)) }
    send(res, 200, body)
    return
  }
  if (url.pathname === `${API_PREFIX}/raft`) {
    await serveRaftStatus(req, res, url, deps)
    return
  }
  throw new HttpError(404, 'NotFound', `no such path: ${url.pathname}`)
}

/** GET /shoal/v1/raft: this peer's view of the log, or with ?view=leader the leader's (with every peer's match index and lag). */
async function serveRaftStatus (req: IncomingMessage, res: ServerResponse, url: URL, deps: ApiDeps): Promise<void> {
  allow(req, url.pathname, ['GET'])
  if (deps.raft === undefined) throw new HttpError(503, 'ServiceUnavailable', 'the replicated log is not running on this peer yet', { 'retry-after': '1' })
  // ?view=leader: the leader's view (with every peer's match index and lag), from whichever peer is asked.
  if (url.searchParams.get('view') === 'leader' && deps.leaderRaftStatus !== undefined) {
    const view = await deps.leaderRaftStatus().catch(() => undefined)
    if (view === undefined) throw new HttpError(503, 'ServiceUnavailable', 'no leader can be reached right now', { 'retry-after': '1' })
    send(res, 200, view)
    return
  }
  send(res, 200, deps.raft.status())
}

/**
 * The request target as a URL; one that no URL parser takes (`//[`,
 * `http://a:99999/`) is a 400. An origin-form target is read as a path
 * (`//x/y` is the path //x/y, not the host x).
 */
function requestUrl (req: IncomingMessage): URL {
  const target = req.url ?? '/'
  try {
    return target.startsWith('/') ? new URL(`http://shoal${target}`) : new URL(target, 'http://shoal')
  } catch {
    throw new HttpError(400, 'BadRequest', 'the request target is not a valid URL')
  }
}

/** The client's address, as the caps on watches and rate limits count it. */
function clientAddress (req: IncomingMessage): string {
  return req.socket.remoteAddress ?? 'unknown'
}

/** The answer to whatever a handler threw: a Status (401s with WWW-Authenticate), a 500 that is logged, or a dropped connection. */
function fail (req: IncomingMessage, res: ServerResponse, err: unknown, log: Logger): void {
  // Nobody to answer, or the answer is already half sent: only the connection can go.
  if (err instanceof ClientGoneError || res.headersSent || res.destroyed || req.socket.destroyed) {
    res.destroy()
    return
  }
  // An unread body must not hold the connection (or be read without bound).
  if (!req.complete && req.readableFlowing !== true) discard(req)
  const mapped = err instanceof HttpError ? err : replicatorHttpError(err, req.method === 'PUT' || req.method === 'DELETE')
  if (mapped !== undefined) {
    const headers = mapped.code === 401 ? { ...mapped.headers, 'www-authenticate': 'Bearer' } : mapped.headers
    send(res, mapped.code, status(mapped.code, mapped.reason, mapped.message), headers)
  } else {
    log.error({ event: 'api.error', method: req.method, path: req.url?.split('?')[0], err: (err as Error)?.stack ?? String(err) }, 'internal error in the API')
    send(res, 500, status(500, 'InternalError', 'internal error; see the peer\'s log'))
  }
}
