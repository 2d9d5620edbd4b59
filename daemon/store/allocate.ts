// Service addresses, NodePorts and Nodes' pod ranges, allocated inside the state machine's
// apply: every peer applies the same log, so every peer makes the same
// choice, and two Services never get one address or one NodePort, even
// across a failover. The ranges come from the cluster's network ConfigMap
// (kube-system/shoal-cluster, written once by the first leader from its
// flags); without it, the defaults. A free address is searched from a
// point picked by a hash of the new object's uid (as random as Kubernetes'
// choice, but the same on every peer); the service range's first ten
// addresses are kept back (the tenth is the cluster DNS).
// May import: protocol/, ./tx.ts, ./status.ts.
import type { KObject } from '../../protocol/k8s.ts'
import { fieldError } from './status.ts'

type Obj = Record<string, unknown>

export const CLUSTER_CONFIG = { namespace: 'kube-system', name: 'shoal-cluster' } as const
export const DEFAULT_SERVICE_CIDR = '127.96.0.0/16'

/**
 * The cluster's default ranges, by the first leader's runtime: loopback for
 * host processes (no privilege needed); with Docker a container has its own
 * loopback, so routable private ranges (shoald routes the service range to
 * its host, and the pod ranges are the bridges' subnets).
 */
export const DEFAULT_RANGES = {
  process: { serviceCidr: DEFAULT_SERVICE_CIDR, podCidr: '127.64.0.0/10' },
  docker: { serviceCidr: '10.96.0.0/16', podCidr: '10.128.0.0/10' }
} as const
export const NODE_PORT_MIN = 30000
export const NODE_PORT_MAX = 32767
/** Addresses at the start of the service range that are never handed out (the 10th is the DNS service's). */
const RESERVED = 10

export interface ServiceRange { base: number, size: number, cidr: string }

export function ipToInt (ip: string): number | undefined {
  const parts = ip.split('.')
  if (parts.length !== 4 || parts.some(p => !/^\d{1,3}$/.test(p) || Number(p) > 255)) return undefined
  return parts.reduce((a, p) => a * 256 + Number(p), 0)
}

export function intToIp (n: number): string {
  return [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join('.')
}

/** An IPv4 CIDR's network and size; undefined if it is not one (or is smaller than a /28). */
export function parseCidr (cidr: string): ServiceRange | undefined {
  const m = /^([0-9.]+)\/(\d{1,2})$/.exec(cidr)
  const ip = m === null ? undefined : ipToInt(m[1] as string)
  const bits = Number(m?.[2])
  if (ip === undefined || bits > 28 || bits < 8) return undefined
  const size = 2 ** (32 - bits)
  return { base: Math.floor(ip / size) * size, size, cidr }
}

/** The cluster DNS service's address: the 10th of the service range. */
export function dnsServiceIp (serviceCidr: string): string {
  const r = parseCidr(serviceCidr) ?? parseCidr(DEFAULT_SERVICE_CIDR) as ServiceRange
  return intToIp(r.base + RESERVED)
}

/** The service range from the cluster's network ConfigMap (if it holds a valid one), else the default. */
export function serviceRange (config: KObject | undefined): ServiceRange {
  const cidr = ((config as { data?: Record<string, string> } | undefined)?.data ?? {}).serviceCIDR
  return (cidr !== undefined ? parseCidr(cidr) : undefined) ?? parseCidr(DEFAULT_SERVICE_CIDR) as ServiceRange
}

function hash (s: string): number {
  let h = 0x811c9dc5
  for (const ch of Buffer.from(s)) h = Math.imul(h ^ ch, 0x01000193) >>> 0
  return h
}

interface Port { port?: number, protocol?: string, nodePort?: number }

/**
 * Fills in `next.spec.clusterIP`/`clusterIPs` and the NodePorts of a Service
 * being created (cur undefined) or updated, in place, against the other
 * Services. Returns field errors (as validate.ts makes them), empty if fine.
 */
export function allocateService (next: KObject, cur: KObject | undefined, others: KObject[], range: ServiceRange, uid: string): string[] {
  const spec = next.spec as Obj | undefined
  if (spec === undefined) return []
  const curSpec = (cur?.spec ?? {}) as Obj
  const errors: string[] = []
  const usedIps = new Set<string>()
  const usedPorts = new Set<number>()
  for (const o of others) {
    const s = (o.spec ?? {}) as Obj
    if (typeof s.clusterIP === 'string') usedIps.add(s.clusterIP)
    for (const p of (s.ports ?? []) as Port[]) if (typeof p.nodePort === 'number') usedPorts.add(p.nodePort)
  }

  // The address: kept on update (it is immutable), given, or picked.
  const given = spec.clusterIP
  if (cur !== undefined && typeof curSpec.clusterIP === 'string' && curSpec.clusterIP !== '') {
    if (given !== undefined && given !== '' && given !== curSpec.clusterIP) errors.push(fieldError('spec.clusterIP', 'Invalid', given, 'field is immutable'))
    spec.clusterIP = curSpec.clusterIP
  } else if (given === 'None') {
    // Headless: no address.
  } else if (typeof given === 'string' && given !== '') {
    const n = ipToInt(given)
    if (n === undefined) errors.push(fieldError('spec.clusterIP', 'Invalid', given, 'must be a valid IPv4 address'))
    else if (n < range.base || n >= range.base + range.size) errors.push(fieldError('spec.clusterIP', 'Invalid', given, `provided IP is not in the valid range. The range of valid IPs is ${range.cidr}`))
    else if (usedIps.has(given)) errors.push(fieldError('spec.clusterIP', 'Invalid', given, 'provided IP is already allocated'))
  } else if (given !== undefined && typeof given !== 'string') {
    errors.push(fieldError('spec.clusterIP', 'Invalid', given, 'must be a string'))
  } else {
    const first = RESERVED + 1
    const count = range.size - first - 1
    const start = hash(uid) % count
    let picked: string | undefined
    for (let i = 0; i < count && picked === undefined; i++) {
      const ip = intToIp(range.base + first + (start + i) % count)
      if (!usedIps.has(ip)) picked = ip
    }
    if (picked === undefined) errors.push(fieldError('spec.clusterIP', 'Invalid', '', `no free address is left in ${range.cidr}`))
    else spec.clusterIP = picked
  }
  if (typeof spec.clusterIP === 'string' && spec.clusterIP !== '') spec.clusterIPs = [spec.clusterIP]

  // NodePorts: for NodePort and LoadBalancer services only; a port keeps its NodePort across updates.
  const ports = (spec.ports ?? []) as Port[]
  if (spec.type !== 'NodePort' && spec.type !== 'LoadBalancer') return errors
  const curPorts = (curSpec.ports ?? []) as Port[]
  const mine = new Set<number>()
  for (const [i, p] of ports.entries()) {
    if (typeof p.nodePort === 'number') {
      const had = curPorts.some(c => c.nodePort === p.nodePort)
      if ((usedPorts.has(p.nodePort) && !had) || mine.has(p.nodePort)) errors.push(fieldError(`spec.ports[${i}].nodePort`, 'Invalid', p.nodePort, 'provided port is already allocated'))
      mine.add(p.nodePort)
      continue
    }
    const kept = curPorts.find(c => c.port === p.port && (c.protocol ?? 'TCP') === (p.protocol ?? 'TCP'))?.nodePort
    if (kept !== undefined && !mine.has(kept)) {
      p.nodePort = kept
      mine.add(kept)
      continue
    }
    const count = NODE_PORT_MAX - NODE_PORT_MIN + 1
    const start = hash(`${uid}/${i}`) % count
    for (let j = 0; j < count; j++) {
      const candidate = NODE_PORT_MIN + (start + j) % count
      if (usedPorts.has(candidate) || mine.has(candidate)) continue
      p.nodePort = candidate
      mine.add(candidate)
      break
    }
    if (p.nodePort === undefined) errors.push(fieldError(`spec.ports[${i}].nodePort`, 'Invalid', '', 'no free NodePort is left'))
  }
  return errors
}

/** A pod range: an IPv4 CIDR from /8 to /24 (it is split into a /24 per node). */
export function parsePodCidr (cidr: string): ServiceRange | undefined {
  const r = parseCidr(cidr)
  return r !== undefined && r.size >= 256 ? r : undefined
}

/** The cluster's pod range from its network ConfigMap, if it holds a valid one. */
export function podRange (config: KObject | undefined): ServiceRange | undefined {
  const cidr = ((config as { data?: Record<string, string> } | undefined)?.data ?? {}).podCIDR
  return cidr === undefined ? undefined : parsePodCidr(cidr)
}

/**
 * A Node's pod range (`spec.podCIDR`, a /24 of the cluster's pod range),
 * given once and then kept: from a point picked by a hash of `seed` (the
 * network ConfigMap's uid, so that two clusters on one host pick apart) and
 * the node's name, the first /24 no other Node holds. Nothing without a
 * cluster range.
 */
export function allocateNodeCidr (next: KObject, cur: KObject | undefined, others: KObject[], range: ServiceRange | undefined, seed = ''): string[] {
  const spec = (next.spec ?? (next.spec = {})) as Obj
  const had = ((cur?.spec ?? {}) as Obj).podCIDR
  if (typeof had === 'string' && had !== '') {
    if (spec.podCIDR !== undefined && spec.podCIDR !== had) return [fieldError('spec.podCIDR', 'Forbidden', spec.podCIDR, 'may not be changed once set')]
    spec.podCIDR = had
    spec.podCIDRs = [had]
    return []
  }
  if (typeof spec.podCIDR === 'string' && spec.podCIDR !== '') {
    spec.podCIDRs = [spec.podCIDR]
    return []
  }
  if (range === undefined) return []
  const used = new Set(others.map(o => ((o.spec ?? {}) as Obj).podCIDR))
  const count = range.size / 256
  const start = hash(`${seed}/${next.metadata.name ?? ''}`) % count
  for (let i = 0; i < count; i++) {
    const cidr = `${intToIp(range.base + ((start + i) % count) * 256)}/24`
    if (used.has(cidr)) continue
    spec.podCIDR = cidr
    spec.podCIDRs = [cidr]
    return []
  }
  return [fieldError('spec.podCIDR', 'Invalid', '', `no free /24 is left in ${range.cidr}`)]
}
