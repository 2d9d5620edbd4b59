// The service proxy's tables, without I/O: which addresses a Service is
// reached at (its frontends: clusterIP:port, and nodeAddress:nodePort for
// NodePort and LoadBalancer services), which endpoint addresses serve each
// of its ports (its backends, from the Endpoints object of the same name),
// and the order in which to try them (round-robin, or sticky per client IP).
// May import: protocol/.
import type { Endpoints, Service } from '../../protocol/core-v1.ts'
import type { KObject } from '../../protocol/k8s.ts'

export type L4Protocol = 'TCP' | 'UDP'

/** An address the proxy listens on for one port of one Service. */
export interface Frontend {
  protocol: L4Protocol
  ip: string
  port: number
  /** which route serves it: `namespace/name/portName` */
  route: string
}

/** One endpoint address for one port. `nodeName` is where it runs, if known. */
export interface Backend {
  ip: string
  port: number
  nodeName?: string
}

/** The annotation that keeps a Service out of the proxy (the cluster DNS service carries it). */
export const PROXY_ANNOTATION = 'shoal.io/proxy'
/** Kubernetes' default for `sessionAffinityConfig.clientIP.timeoutSeconds`: 3 hours. */
export const DEFAULT_AFFINITY_SECONDS = 10_800

export function serviceKey (obj: KObject): string {
  return `${obj.metadata.namespace ?? 'default'}/${obj.metadata.name}`
}

export function routeKey (svcKey: string, portName: string | undefined): string {
  return `${svcKey}/${portName ?? ''}`
}

function protocolOf (p: string | undefined): L4Protocol | undefined {
  if (p === undefined || p === 'TCP') return 'TCP'
  return p === 'UDP' ? 'UDP' : undefined // SCTP is not proxied
}

/** The clusterIP the proxy serves this Service at, if it does at all: not headless, not opted out, with a clusterIP. */
export function proxiedIP (service: Service): string | undefined {
  const ip = service.spec?.clusterIP
  if (ip === undefined || ip === '' || ip === 'None') return undefined
  return service.metadata.annotations?.[PROXY_ANNOTATION] !== 'false' ? ip : undefined
}

/** Whether the proxy serves this Service at all. */
export function isProxied (service: Service): boolean {
  return proxiedIP(service) !== undefined
}

/** Every address the proxy should listen on for `service` on a peer whose own address is `nodeAddress`. */
export function frontendsOf (service: Service, nodeAddress: string): Frontend[] {
  const clusterIP = proxiedIP(service)
  const spec = service.spec
  if (clusterIP === undefined || spec === undefined) return []
  const svc = serviceKey(service)
  const out: Frontend[] = []
  const withNodePorts = spec.type === 'NodePort' || spec.type === 'LoadBalancer'
  for (const p of spec.ports ?? []) {
    const protocol = protocolOf(p.protocol)
    if (protocol === undefined || typeof p.port !== 'number') continue
    const route = routeKey(svc, p.name)
    out.push({ protocol, ip: clusterIP, port: p.port, route })
    if (withNodePorts && typeof p.nodePort === 'number' && p.nodePort > 0) out.push({ protocol, ip: nodeAddress, port: p.nodePort, route })
  }
  return out
}

/** The client-IP affinity timeout in ms, or undefined without affinity. */
export function affinityMsOf (service: Service): number | undefined {
  const spec = service.spec
  if (spec?.sessionAffinity !== 'ClientIP') return undefined
  const seconds = spec.sessionAffinityConfig?.clientIP?.timeoutSeconds
  return (typeof seconds === 'number' && seconds > 0 ? seconds : DEFAULT_AFFINITY_SECONDS) * 1000
}

/**
 * The ready backends of the service port named `portName` (undefined or ''
 * for an unnamed port) with `protocol`, from an Endpoints object. Ports
 * match by name; a subset with one port serves a service's only port.
 */
export function backendsOf (endpoints: Endpoints | undefined, portName: string | undefined, protocol: L4Protocol, servicePortCount: number): Backend[] {
  const name = portName ?? ''
  const out: Backend[] = []
  for (const subset of endpoints?.subsets ?? []) {
    const ports = subset.ports ?? []
    let port = ports.find(p => (p.name ?? '') === name && (protocolOf(p.protocol) === protocol))
    if (port === undefined && servicePortCount === 1 && ports.length === 1 && protocolOf(ports[0]?.protocol) === protocol) port = ports[0]
    if (port === undefined || typeof port.port !== 'number') continue
    for (const a of subset.addresses ?? []) {
      if (typeof a.ip !== 'string' || a.ip === '') continue
      out.push({ ip: a.ip, port: port.port, ...(typeof a.nodeName === 'string' ? { nodeName: a.nodeName } : {}) })
    }
  }
  return out
}

/** Sticky clients kept per service port; beyond it the least recently seen are forgotten. */
const MAX_STICKY_CLIENTS = 65_536

export function backendKey (b: Backend): string {
  return `${b.ip}:${b.port}`
}

/**
 * The balancing state of one service port: round-robin over its backends,
 * and with client-IP affinity, each client's last backend until it has been
 * idle for the timeout. Survives backend updates (the cursor and the sticky
 * clients whose backend is still there are kept).
 */
export class RouteBalancer {
  backends: Backend[] = []
  affinityMs: number | undefined
  private cursor = 0
  private readonly sticky = new Map<string, { backend: string, expiresAt: number }>()

  update (backends: Backend[], affinityMs: number | undefined): void {
    this.backends = backends
    this.affinityMs = affinityMs
    if (affinityMs === undefined) this.sticky.clear()
    else {
      const present = new Set(backends.map(backendKey))
      for (const [client, s] of this.sticky) if (!present.has(s.backend)) this.sticky.delete(client)
    }
  }

  /** The backends to try for a new connection from `clientIp`, best first: every one, once. */
  candidates (clientIp: string, now: number): Backend[] {
    const n = this.backends.length
    if (n === 0) return []
    const start = this.cursor % n
    this.cursor = (start + 1) % n
    const order = [...this.backends.slice(start), ...this.backends.slice(0, start)]
    if (this.affinityMs === undefined) return order
    const s = this.sticky.get(clientIp)
    if (s === undefined || s.expiresAt <= now) return order
    const i = order.findIndex(b => backendKey(b) === s.backend)
    if (i <= 0) return order
    const [stuck] = order.splice(i, 1)
    return stuck === undefined ? order : [stuck, ...order]
  }

  /** A connection from `clientIp` reached `backend`: with affinity, the client sticks to it. */
  chose (clientIp: string, backend: Backend, now: number): void {
    if (this.affinityMs === undefined) return
    this.sticky.delete(clientIp) // the Map's order is then the order of last use
    this.sticky.set(clientIp, { backend: backendKey(backend), expiresAt: now + this.affinityMs })
    if (this.sticky.size > MAX_STICKY_CLIENTS) {
      for (const [client, s] of this.sticky) if (s.expiresAt <= now) this.sticky.delete(client)
      for (const client of this.sticky.keys()) {
        if (this.sticky.size <= MAX_STICKY_CLIENTS * 0.9) break
        this.sticky.delete(client)
      }
    }
  }
}
