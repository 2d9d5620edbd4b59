// Service addresses, NodePorts and Nodes' pod ranges, allocated inside the state machine's
// apply: every peer applies the same log, so every peer makes the same
// choice, and two Services never get one address or one NodePort, even
// across a failover. The ranges come from the cluster's network ConfigMap
// (kube-system/shoal-cluster, written once by the first leader from its
// flags); without it, the defaults. A free address is searched from a
// point picked by a hash of the new object's uid (as random as Kubernetes'
// choice, but the same on every peer); the service range's first ten
// addresses are kept back (the first is the kubernetes Service's, the
// tenth the cluster DNS's: controllers/nodes.ts makes both).
// The network ConfigMap's name and the DNS service's address are protocol/network.ts's.
// May import: protocol/, ./tx.ts.
import { intToIp, ipToInt, parseCidr, parsePodCidr } from '../../protocol/cidr.ts'
import type { CidrRange } from '../../protocol/cidr.ts'
import type { ConfigMap, Node, Service, ServicePort } from '../../protocol/core-v1.ts'
import { DEFAULT_SERVICE_CIDR, RESERVED_SERVICE_IPS } from '../../protocol/network.ts'
import { fieldError } from '../../protocol/status.ts'

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
/** The service range from the cluster's network ConfigMap (if it holds a valid one), else the default. */
export function serviceRange (config: ConfigMap | undefined): CidrRange {
  const cidr = config?.data?.serviceCIDR
  return (cidr !== undefined ? parseCidr(cidr) : undefined) ?? parseCidr(DEFAULT_SERVICE_CIDR) as CidrRange
}

function hash (s: string): number {
  let h = 0x811c9dc5
  for (const ch of Buffer.from(s)) h = Math.imul(h ^ ch, 0x01000193) >>> 0
  return h
}

/**
 * Fills in `next.spec.clusterIP`/`clusterIPs` and the NodePorts of a Service
 * being created (cur undefined) or updated, in place, against the other
 * Services. Returns field errors (as protocol/validation.ts makes them),
 * empty if fine. Runs after validation: the objects are well-shaped.
 */
export function allocateService (next: Service, cur: Service | undefined, others: Service[], range: CidrRange, uid: string): string[] {
  const spec = next.spec
  if (spec === undefined) return []
  const curSpec = cur?.spec ?? {}
  const errors: string[] = []
  const usedIps = new Set<string>()
  const usedPorts = new Set<number>()
  for (const o of others) {
    const s = o.spec ?? {}
    if (typeof s.clusterIP === 'string') usedIps.add(s.clusterIP)
    for (const p of s.ports ?? []) if (typeof p.nodePort === 'number') usedPorts.add(p.nodePort)
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
  } else {
    const first = RESERVED_SERVICE_IPS + 1
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
  const ports: ServicePort[] = spec.ports ?? []
  if (spec.type !== 'NodePort' && spec.type !== 'LoadBalancer') return errors
  const curPorts = curSpec.ports ?? []
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

/** The cluster's pod range from its network ConfigMap, if it holds a valid one. */
export function podRange (config: ConfigMap | undefined): CidrRange | undefined {
  const cidr = config?.data?.podCIDR
  return cidr === undefined ? undefined : parsePodCidr(cidr)
}

/**
 * A Node's pod range (`spec.podCIDR`, a /24 of the cluster's pod range),
 * given once and then kept: from a point picked by a hash of `seed` (the
 * network ConfigMap's uid, so that two clusters on one host pick apart) and
 * the node's name, the first /24 no other Node holds. Nothing without a
 * cluster range.
 */
export function allocateNodeCidr (next: Node, cur: Node | undefined, others: Node[], range: CidrRange | undefined, seed = ''): string[] {
  const spec = next.spec ?? (next.spec = {})
  const had = cur?.spec?.podCIDR
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
  const used = new Set(others.map(o => o.spec?.podCIDR))
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
