// The HTTP API that every peer serves. So far: /healthz (no auth) and the
// member list. Every other path needs the admin bearer token.
// May import: protocol/, daemon/membership (read only), daemon/log.
import { createServer } from 'node:http'
import type { IncomingMessage, Server, ServerResponse } from 'node:http'
import { API_PREFIX } from '../../protocol/api.ts'
import type { MemberList, MemberView, StatusBody } from '../../protocol/api.ts'
import type { Logger } from '../log/log.ts'
import type { Member } from '../membership/table.ts'
import type { TokenStore } from './auth.ts'

export interface ApiDeps {
  tokens: TokenStore
  members: () => Member[]
  selfPeerId: string
  log: Logger
}

export class HttpError extends Error {
  override name = 'HttpError'
  readonly code: number
  readonly reason: string
  constructor (code: number, reason: string, message: string) {
    super(message)
    this.code = code
    this.reason = reason
  }
}

function send (res: ServerResponse, code: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body, null, 2) + '\n'
  res.writeHead(code, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), ...headers })
  res.end(text)
}

function status (code: number, reason: string, message: string): StatusBody {
  return { kind: 'Status', apiVersion: 'v1', status: 'Failure', message, reason, code }
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
    self: r.peerId === selfPeerId
  }
}

export function createApiServer (deps: ApiDeps): Server {
  const route = (req: IncomingMessage, res: ServerResponse): void => {
    const url = new URL(req.url ?? '/', 'http://shoal')
    if (url.pathname === '/healthz') {
      if (req.method !== 'GET' && req.method !== 'HEAD') throw new HttpError(405, 'MethodNotAllowed', `${req.method} is not allowed on /healthz`)
      send(res, 200, { status: 'ok' })
      return
    }
    if (!deps.tokens.check(req.headers.authorization)) {
      throw new HttpError(401, 'Unauthorized', deps.tokens.get() === undefined
        ? 'this peer has not received the cluster token yet'
        : 'missing or wrong bearer token (send Authorization: Bearer <token>)')
    }
    if (url.pathname === `${API_PREFIX}/members`) {
      if (req.method !== 'GET') throw new HttpError(405, 'MethodNotAllowed', `${req.method} is not allowed on ${url.pathname}`)
      const body: MemberList = { kind: 'MemberList', items: deps.members().map(m => memberView(m, deps.selfPeerId)) }
      send(res, 200, body)
      return
    }
    throw new HttpError(404, 'NotFound', `no such path: ${url.pathname}`)
  }

  return createServer({ requestTimeout: 30_000, headersTimeout: 10_000 }, (req, res) => {
    try {
      route(req, res)
    } catch (err) {
      if (err instanceof HttpError) {
        send(res, err.code, status(err.code, err.reason, err.message), err.code === 401 ? { 'www-authenticate': 'Bearer' } : {})
      } else {
        deps.log.error({ event: 'api.error', err: (err as Error).stack }, 'internal error in the API')
        send(res, 500, status(500, 'InternalError', 'internal error; see the peer\'s log'))
      }
    }
  })
}
