// The UDP side of the service proxy: one socket on a frontend address, and
// per client address a socket of its own towards the endpoint chosen for
// it, so that the endpoint's replies find their way back. A client's
// session ends after `idleMs` without a datagram either way. An endpoint on
// another node is reached through a UDP tunnel (tunnel.ts): datagrams
// framed on a libp2p stream to that node's peer, which sends them on.
// May import: protocol/network.ts, daemon/clock, daemon/log, ./routes.ts.
import { createSocket } from 'node:dgram'
import type { RemoteInfo, Socket } from 'node:dgram'
import { isIPv6 } from 'node:net'
import type { Clock, TimerHandle } from '../clock/clock.ts'
import type { Logger } from '../log/log.ts'
import type { Duplex } from 'node:stream'
import { datagramFrame, datagramReader } from '../../protocol/network.ts'
import type { Backend } from './routes.ts'

export interface UdpRelayInit {
  ip: string
  port: number
  clock: Clock
  idleMs: number
  log: Logger
  /** the endpoint for a new client, or undefined to drop its datagrams */
  pick: (clientIp: string) => Backend | undefined
  /** whether an endpoint is on this node (else it is reached through `tunnel`) */
  isLocal: (b: Backend) => boolean
  /** opens a UDP tunnel to an endpoint on another node */
  tunnel: (b: Backend) => Promise<Duplex>
}

/** Where a session's datagrams go: a local socket, or a tunnel (datagrams queued while it opens). */
interface Upstream {
  send: (msg: Buffer) => void
  close: () => void
}

/** Datagrams kept for a tunnel that is still opening; beyond it they are dropped, as UDP may. */
const MAX_QUEUED = 64

interface Session {
  upstream: Upstream
  backend: Backend
  lastActive: number
  timer: TimerHandle
}

/** Client sessions kept per frontend; a new client beyond it is dropped until one expires. */
const MAX_SESSIONS = 4096

export class UdpRelay {
  private readonly init: UdpRelayInit
  private readonly socket: Socket
  private readonly sessions = new Map<string, Session>()
  private closed = false

  constructor (init: UdpRelayInit) {
    this.init = init
    // reusePort: several peers on one host serve the same service address.
    this.socket = createSocket({ type: isIPv6(init.ip) ? 'udp6' : 'udp4', reuseAddr: true, reusePort: true })
    this.socket.on('message', (msg, rinfo) => { this.onDatagram(msg, rinfo) })
  }

  /** Binds the frontend address; rejects with the bind error (EADDRNOTAVAIL, EADDRINUSE...). */
  async bind (): Promise<void> {
    await new Promise<void>((resolve, reject) => {
      const onError = (err: Error): void => { reject(err) }
      this.socket.once('error', onError)
      this.socket.bind({ address: this.init.ip, port: this.init.port }, () => {
        this.socket.removeListener('error', onError)
        this.socket.on('error', err => { this.init.log.debug({ event: 'proxy.udp-error', ip: this.init.ip, port: this.init.port, err: err.message }, 'a UDP frontend socket failed') })
        resolve()
      })
    })
  }

  close (): void {
    if (this.closed) return
    this.closed = true
    for (const key of [...this.sessions.keys()]) this.endSession(key)
    try { this.socket.close() } catch {}
  }

  private onDatagram (msg: Buffer, rinfo: RemoteInfo): void {
    const key = `${rinfo.address}|${rinfo.port}`
    const now = this.init.clock.now()
    let session = this.sessions.get(key)
    if (session === undefined) {
      if (this.sessions.size >= MAX_SESSIONS) return
      const backend = this.init.pick(rinfo.address)
      if (backend === undefined) {
        this.init.log.debug({ event: 'proxy.udp-dropped', ip: this.init.ip, port: this.init.port, client: rinfo.address }, 'a datagram for a service with no ready endpoint was dropped')
        return
      }
      session = this.openSession(key, backend, rinfo)
    }
    session.lastActive = now
    session.upstream.send(msg)
  }

  /** Answers from the endpoint go back to the client from the frontend socket. */
  private reply (session: Session, client: RemoteInfo, msg: Buffer): void {
    if (this.closed) return
    session.lastActive = this.init.clock.now()
    this.socket.send(msg, client.port, client.address)
  }

  private localUpstream (key: string, session: Session, client: RemoteInfo): Upstream {
    const { backend } = session
    const socket = createSocket(isIPv6(backend.ip) ? 'udp6' : 'udp4')
    socket.on('message', (msg, from) => {
      if (from.address === backend.ip && from.port === backend.port) this.reply(session, client, msg)
    })
    socket.on('error', () => { this.endSession(key) })
    return { send: msg => { socket.send(msg, backend.port, backend.ip) }, close: () => { try { socket.close() } catch {} } }
  }

  private tunnelUpstream (key: string, session: Session, client: RemoteInfo): Upstream {
    let stream: Duplex | undefined
    let queue: Buffer[] | undefined = []
    let closed = false
    this.init.tunnel(session.backend).then(s => {
      if (closed) {
        s.destroy()
        return
      }
      stream = s
      s.on('data', datagramReader(payload => { this.reply(session, client, payload) }))
      s.on('error', () => { this.endSession(key) })
      s.on('close', () => { this.endSession(key) })
      for (const m of queue ?? []) s.write(datagramFrame(m))
      queue = undefined
    }, (err: Error) => {
      this.init.log.debug({ event: 'proxy.udp-tunnel-failed', ip: session.backend.ip, port: session.backend.port, node: session.backend.nodeName, err: err.message }, 'a UDP tunnel could not be opened')
      this.endSession(key)
    })
    return {
      send: msg => {
        if (stream !== undefined) stream.write(datagramFrame(msg))
        else if (queue !== undefined && queue.length < MAX_QUEUED) queue.push(msg)
      },
      close: () => {
        closed = true
        stream?.destroy()
      }
    }
  }

  private openSession (key: string, backend: Backend, client: RemoteInfo): Session {
    const check = (): void => {
      const idle = this.init.clock.now() - session.lastActive
      if (idle >= this.init.idleMs) this.endSession(key)
      else session.timer = this.init.clock.setTimeout(check, this.init.idleMs - idle)
    }
    // The timer fires later, never during this call: `session` is set by then.
    const session: Session = { upstream: { send: () => {}, close: () => {} }, backend, lastActive: this.init.clock.now(), timer: this.init.clock.setTimeout(check, this.init.idleMs) }
    session.upstream = this.init.isLocal(backend) ? this.localUpstream(key, session, client) : this.tunnelUpstream(key, session, client)
    this.sessions.set(key, session)
    return session
  }

  private endSession (key: string): void {
    const session = this.sessions.get(key)
    if (session === undefined) return
    this.sessions.delete(key)
    this.init.clock.clearTimeout(session.timer)
    session.upstream.close()
  }
}
