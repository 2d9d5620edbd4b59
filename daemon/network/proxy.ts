// The service proxy: every peer gives every Service one stable address.
// It watches Services and Endpoints on the local replica and, a microtask
// after any change, listens on each proxied Service's clusterIP:port (and
// on this peer's own address at the nodePort for NodePort and LoadBalancer
// services), closing the listeners of ports and services that went away.
// Listeners use SO_REUSEPORT, so several peers on one host share a service
// address and the kernel spreads connections among them.
//
// A TCP connection goes to the service port's ready endpoints in
// round-robin order (or to the client's sticky endpoint with
// `sessionAffinity: ClientIP`); a dial that fails (refused, 2 s without an
// answer, a tunnel error) moves on to the next, and only when all fail is
// the client reset. An endpoint on this node is dialled directly; one on
// another node through `dialRemote` (tunnel.ts). Bytes are then spliced
// both ways with back-pressure and half-close (pipe.ts). With no endpoint,
// the connection is reset at once, as kube-proxy rejects it.
// UDP ports relay datagrams to local endpoints (udp.ts).
//
// An address that cannot be bound (EADDRNOTAVAIL: a service CIDR with no
// local route; EADDRINUSE) is logged once as a warning and retried when
// the Service changes.
// May import: protocol/, daemon/store/types.ts, daemon/clock, daemon/log, this folder.
import { ENDPOINTS, SERVICE } from '../../protocol/kinds.ts'
import { createServer } from 'node:net'
import type { Server, Socket } from 'node:net'
import type { Duplex } from 'node:stream'
import type { Endpoints, Service } from '../../protocol/core-v1.ts'
import type { KObject, WatchEvent } from '../../protocol/k8s.ts'
import { systemClock } from '../clock/clock.ts'
import type { Clock } from '../clock/clock.ts'
import type { Logger } from '../log/log.ts'
import type { StoreReader, Watch } from '../store/types.ts'
import { connectTcp, reset, splice } from './pipe.ts'
import { affinityMsOf, backendsOf, frontendsOf, isProxied, routeKey, RouteBalancer, serviceKey } from './routes.ts'
import type { Backend, Frontend } from './routes.ts'
import type { DialRemote } from './tunnel.ts'
import { UdpRelay } from './udp.ts'

export type { DialRemote } from './tunnel.ts'


export interface ServiceProxyInit {
  store: StoreReader
  /** this peer's member name: endpoints with this nodeName are dialled directly */
  nodeName: string
  /** this peer's own IP, where NodePorts listen */
  nodeAddress: string
  /** opens a connection to an endpoint on another node (tunnelDialer in tunnel.ts) */
  dialRemote: DialRemote
  log: Logger
  clock?: Clock
  /** a dial to one endpoint fails after this long; default 2 s */
  dialTimeoutMs?: number
  /** a UDP client's session ends after this long without a datagram; default 30 s */
  udpIdleMs?: number
}

export const PROXY_DEFAULTS = { dialTimeoutMs: 2000, udpIdleMs: 30_000 }

interface Listener {
  key: string
  frontend: Frontend
  /** the Service that owns it, and its resourceVersion (a failed bind is retried when it changes) */
  service: string
  version: string
  state: 'binding' | 'listening' | 'failed' | 'closed'
  tcp?: Server
  udp?: UdpRelay
  /** settles when the bind has succeeded or failed */
  bound: Promise<void>
}

function frontendKey (f: Frontend): string {
  return `${f.protocol}/${f.ip}:${f.port}`
}

export class ServiceProxy {
  private readonly init: ServiceProxyInit
  private readonly clock: Clock
  private readonly log: Logger
  private readonly dialTimeoutMs: number
  private readonly udpIdleMs: number
  private readonly services = new Map<string, Service>()
  private readonly endpoints = new Map<string, Endpoints>()
  private readonly balancers = new Map<string, RouteBalancer>()
  private readonly listeners = new Map<string, Listener>()
  private readonly connections = new Set<Duplex>()
  private watches: Watch[] = []
  private scheduled = false
  private running = false

  constructor (init: ServiceProxyInit) {
    this.init = init
    this.clock = init.clock ?? systemClock
    this.log = init.log
    this.dialTimeoutMs = init.dialTimeoutMs ?? PROXY_DEFAULTS.dialTimeoutMs
    this.udpIdleMs = init.udpIdleMs ?? PROXY_DEFAULTS.udpIdleMs
  }

  /** Starts watching; resolves once the listeners of the current Services are bound (or have failed). */
  async start (): Promise<void> {
    if (this.running) return
    this.running = true
    this.watches.push(this.init.store.watch(SERVICE, {}, e => { this.onEvent(this.services, e) }))
    this.watches.push(this.init.store.watch(ENDPOINTS, {}, e => { this.onEvent(this.endpoints, e) }))
    this.sync()
    await this.settled()
  }

  /** Closes every listener and resets every proxied connection. */
  async stop (): Promise<void> {
    this.running = false
    for (const w of this.watches) w.stop()
    this.watches = []
    const closing = [...this.listeners.values()].map(async l => { await this.close(l) })
    this.listeners.clear()
    for (const c of this.connections) reset(c)
    this.connections.clear()
    await Promise.all(closing)
  }

  /** Resolves when no listener is still binding (for tests and start-up). */
  async settled (): Promise<void> {
    await Promise.all([...this.listeners.values()].map(async l => { await l.bound }))
  }

  /**
   * Tries again every address that failed to bind, e.g. once a local route
   * for the service range exists (network.ts adds it).
   */
  retryFailed (): void {
    if (!this.running) return
    for (const [key, l] of this.listeners) if (l.state === 'failed') this.listeners.delete(key)
    this.sync()
  }

  /** What the proxy listens on now: `TCP/ip:port` keys, for status and tests. */
  listening (): string[] {
    return [...this.listeners.values()].filter(l => l.state === 'listening').map(l => l.key).sort()
  }

  private onEvent<T extends KObject> (into: Map<string, T>, e: WatchEvent<T>): void {
    if (e.type !== 'ADDED' && e.type !== 'MODIFIED' && e.type !== 'DELETED') return
    const obj = e.object
    if (e.type === 'DELETED') into.delete(serviceKey(obj))
    else into.set(serviceKey(obj), obj)
    if (this.scheduled || !this.running) return
    // One sync for everything a log batch changed.
    this.scheduled = true
    queueMicrotask(() => {
      this.scheduled = false
      if (this.running) this.sync()
    })
  }

  /** Makes the listeners and routes match the Services and Endpoints. */
  private sync (): void {
    const wanted = new Map<string, { frontend: Frontend, service: string, version: string }>()
    const routes = new Set<string>()
    for (const [key, svc] of this.services) {
      if (!isProxied(svc)) continue
      const ports = svc.spec?.ports ?? []
      const affinityMs = affinityMsOf(svc)
      for (const p of ports) {
        const route = routeKey(key, p.name)
        routes.add(route)
        let balancer = this.balancers.get(route)
        if (balancer === undefined) {
          balancer = new RouteBalancer()
          this.balancers.set(route, balancer)
        }
        balancer.update(backendsOf(this.endpoints.get(key), p.name, p.protocol === 'UDP' ? 'UDP' : 'TCP', ports.length), affinityMs)
      }
      for (const frontend of frontendsOf(svc, this.init.nodeAddress)) {
        const fk = frontendKey(frontend)
        // Two services claiming one address (a duplicate nodePort): the first keeps it.
        if (!wanted.has(fk)) wanted.set(fk, { frontend, service: key, version: svc.metadata.resourceVersion ?? '' })
      }
    }
    for (const route of this.balancers.keys()) if (!routes.has(route)) this.balancers.delete(route)

    for (const [key, l] of this.listeners) {
      const w = wanted.get(key)
      const retry = l.state === 'failed' && w !== undefined && (w.service !== l.service || w.version !== l.version)
      if (w === undefined || retry) {
        this.listeners.delete(key)
        void this.close(l)
        if (w === undefined) this.log.debug({ event: 'proxy.unlisten', address: key }, 'a service address is no longer proxied')
      } else {
        // Same address, maybe another port name or service: connections look the route up when they arrive.
        l.frontend = w.frontend
        l.service = w.service
        l.version = w.version
      }
    }
    for (const [key, w] of wanted) {
      if (!this.listeners.has(key)) this.listen(key, w.frontend, w.service, w.version)
    }
  }

  private listen (key: string, frontend: Frontend, service: string, version: string): void {
    const l: Listener = { key, frontend, service, version, state: 'binding', bound: Promise.resolve() }
    this.listeners.set(key, l)
    const failed = (err: NodeJS.ErrnoException): void => {
      l.state = 'failed'
      this.log.warn({ event: 'proxy.bind-failed', address: key, service, code: err.code, err: err.message },
        `cannot listen on ${frontend.ip}:${frontend.port} (${frontend.protocol}) for service ${service}: ${err.message}; retried when the service changes`)
    }
    if (frontend.protocol === 'UDP') {
      const relay = new UdpRelay({
        ip: frontend.ip,
        port: frontend.port,
        clock: this.clock,
        idleMs: this.udpIdleMs,
        log: this.log,
        pick: clientIp => this.pickUdp(l, clientIp),
        isLocal: b => this.isLocal(b),
        tunnel: async b => await this.init.dialRemote(b.nodeName ?? '', b.ip, b.port, AbortSignal.timeout(this.dialTimeoutMs), true)
      })
      l.udp = relay
      l.bound = relay.bind().then(() => {
        if (l.state === 'closed') relay.close()
        else l.state = 'listening'
      }, (err: Error) => {
        relay.close()
        if (l.state !== 'closed') failed(err)
      })
      return
    }
    const server = createServer({ allowHalfOpen: true, noDelay: true }, socket => { this.onConnection(l, socket) })
    l.tcp = server
    l.bound = new Promise<void>(resolve => {
      server.once('error', err => {
        if (l.state !== 'closed') failed(err)
        resolve()
      })
      server.listen({ host: frontend.ip, port: frontend.port, reusePort: true }, () => {
        if (l.state === 'closed') server.close()
        else l.state = 'listening'
        server.removeAllListeners('error')
        server.on('error', err => { this.log.warn({ event: 'proxy.listener-error', address: key, err: err.message }, 'a service listener failed') })
        resolve()
      })
    })
  }

  private async close (l: Listener): Promise<void> {
    const wasListening = l.state === 'listening'
    l.state = 'closed'
    l.udp?.close()
    // A listener still binding closes itself when the bind completes.
    if (l.tcp !== undefined && wasListening) await new Promise<void>(resolve => { l.tcp?.close(() => { resolve() }) })
  }

  /** For UDP (no dial to fail over on): the first candidate endpoint. */
  private pickUdp (l: Listener, clientIp: string): Backend | undefined {
    const balancer = this.balancers.get(l.frontend.route)
    const backend = balancer?.candidates(clientIp, this.clock.now())[0]
    if (balancer !== undefined && backend !== undefined) balancer.chose(clientIp, backend, this.clock.now())
    return backend
  }

  private isLocal (b: Backend): boolean {
    return b.nodeName === undefined || b.nodeName === this.init.nodeName
  }

  private onConnection (l: Listener, client: Socket): void {
    client.on('error', () => {}) // a client that resets while we dial
    this.connections.add(client)
    client.once('close', () => { this.connections.delete(client) })
    const clientIp = client.remoteAddress ?? ''
    const balancer = this.balancers.get(l.frontend.route)
    const candidates = balancer?.candidates(clientIp, this.clock.now()) ?? []
    if (balancer === undefined || candidates.length === 0) {
      this.log.debug({ event: 'proxy.no-endpoints', address: l.key, service: l.service, client: clientIp }, 'a connection to a service with no ready endpoint was reset')
      reset(client)
      return
    }
    void this.forward(l, client, clientIp, balancer, candidates)
  }

  private async forward (l: Listener, client: Socket, clientIp: string, balancer: RouteBalancer, candidates: Backend[]): Promise<void> {
    for (const backend of candidates) {
      if (client.destroyed) return
      let upstream: Duplex
      try {
        upstream = await this.dial(backend)
      } catch (err) {
        this.log.debug({ event: 'proxy.dial-failed', address: l.key, backend: `${backend.ip}:${backend.port}`, node: backend.nodeName, err: (err as Error).message }, 'an endpoint could not be reached; trying the next')
        continue
      }
      if (client.destroyed || !this.running) {
        reset(upstream)
        return
      }
      balancer.chose(clientIp, backend, this.clock.now())
      this.connections.add(upstream)
      upstream.once('close', () => { this.connections.delete(upstream) })
      splice(client, upstream)
      return
    }
    this.log.debug({ event: 'proxy.all-failed', address: l.key, service: l.service, tried: candidates.length }, 'no endpoint of the service could be reached; the connection was reset')
    reset(client)
  }

  private async dial (b: Backend): Promise<Duplex> {
    const nodeName = b.nodeName
    if (nodeName === undefined || this.isLocal(b)) return await connectTcp(b.ip, b.port, this.dialTimeoutMs, this.clock)
    const abort = new AbortController()
    let timer
    const timedOut = new Promise<never>((_resolve, reject) => {
      timer = this.clock.setTimeout(() => {
        const err = new Error(`no tunnel to ${b.ip}:${b.port} on node ${nodeName} in ${this.dialTimeoutMs} ms`)
        abort.abort(err)
        reject(err)
      }, this.dialTimeoutMs)
    })
    const dialing = this.init.dialRemote(nodeName, b.ip, b.port, abort.signal)
    // A dial that answers after the time limit is closed at once.
    dialing.then(d => { if (abort.signal.aborted) reset(d) }, () => {})
    try {
      return await Promise.race([dialing, timedOut])
    } finally {
      if (timer !== undefined) this.clock.clearTimeout(timer)
    }
  }
}
