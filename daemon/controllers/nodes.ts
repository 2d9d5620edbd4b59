// Leader-only upkeep of the objects that mirror the cluster itself: the
// system namespaces and the cluster's network settings (the ConfigMap
// kube-system/shoal-cluster, from the first leader's flags, and the
// kube-dns Service at the 10th address of the service range; each made
// once, at the first leadership), the API's Service default/kubernetes (at
// the range's first address, port 443 named https, as Kubernetes') and its
// Endpoints (every alive member's API address, no selector: written here
// when membership changes), and one Node per
// member, with its capacity, addresses and a Ready condition that follows
// membership (alive: True, suspect: Unknown, dead or left: False). Nodes are
// written only when something changes, so a quiet cluster writes nothing.
// May import: protocol/, daemon/store/types.ts, daemon/clock, daemon/log.
import { CONFIG_MAP, ENDPOINTS, NAMESPACE, NODE, SERVICE } from '../../protocol/kinds.ts'
import { randomUUID } from 'node:crypto'
import { isIP } from 'node:net'
import type { ConditionStatus, Endpoints, EndpointSubset, Node, NodeStatus, Service } from '../../protocol/core-v1.ts'
import { intToIp, parseCidr } from '../../protocol/cidr.ts'
import { jsonEqual } from '../../protocol/json.ts'
import type { MemberState } from '../../protocol/membership.ts'
import { rfc3339, SYSTEM_NAMESPACES } from '../../protocol/k8s.ts'
import type { KObject } from '../../protocol/k8s.ts'
import { VERSION } from '../../protocol/version.ts'
import { CLUSTER_CONFIG, dnsServiceIp } from '../../protocol/network.ts'
import type { Clock } from '../clock/clock.ts'
import { every } from '../clock/clock.ts'
import type { Logger } from '../log/log.ts'
import type { StoreCommand, StoreReader, StoreResult, StoreWriter } from '../store/types.ts'

export interface MemberInfo {
  name: string
  peerId: string
  /** host:port of its API; its host is the node's InternalIP */
  api: string
  state: MemberState
  cpu: number
  memoryBytes: number
  version: string
}

export interface NodeKeeperInit {
  store: StoreReader
  writer: StoreWriter
  isLeader: () => boolean
  members: () => MemberInfo[]
  clock: Clock
  log: Logger
  intervalMs?: number
  /** written once into kube-system/shoal-cluster; later leaders keep what is there */
  network?: { serviceCidr: string, podCidr: string, clusterDomain: string }
}


function readyOf (state: MemberState): { status: ConditionStatus, reason: string, message: string } {
  switch (state) {
    case 'alive': return { status: 'True', reason: 'ShoalReady', message: 'the peer is alive' }
    case 'suspect': return { status: 'Unknown', reason: 'NodeStatusUnknown', message: 'the peer missed its heartbeats and is being probed' }
    case 'dead': return { status: 'False', reason: 'NodeDead', message: 'membership reports the peer dead' }
    case 'left': return { status: 'False', reason: 'NodeLeft', message: 'the peer left the cluster' }
  }
}

/** The Node a member should have (status included), keeping what others wrote (labels, spec). */
export function desiredNode (m: MemberInfo, current: Node | undefined, now: string): Node {
  const ip = m.api.replace(/:\d+$/, '').replace(/^\[|\]$/g, '')
  const memoryKi = `${Math.floor(m.memoryBytes / 1024)}Ki`
  const capacity = { cpu: String(m.cpu), memory: memoryKi, pods: '110' }
  const ready = readyOf(m.state)
  const old = (current?.status?.conditions ?? []).find(c => c.type === 'Ready')
  return {
    apiVersion: 'v1',
    kind: 'Node',
    metadata: {
      ...(current?.metadata ?? {}),
      name: m.name,
      // kubernetes.io/arch in Go's GOARCH names (Node's x64 is amd64, ia32 386, ppc64 on Linux ppc64le)
      labels: { ...(current?.metadata.labels ?? {}), 'kubernetes.io/hostname': m.name, 'kubernetes.io/os': 'linux', 'kubernetes.io/arch': ({ x64: 'amd64', ia32: '386', mipsel: 'mipsle', ppc64: 'ppc64le' } as Record<string, string>)[process.arch] ?? process.arch, 'shoal.dev/peer-id': m.peerId }
    },
    spec: current?.spec ?? {},
    status: {
      capacity,
      allocatable: capacity,
      addresses: [{ type: 'InternalIP', address: ip }, { type: 'Hostname', address: m.name }],
      conditions: [{
        type: 'Ready',
        ...ready,
        lastHeartbeatTime: now,
        lastTransitionTime: old?.status === ready.status && old.lastTransitionTime !== undefined ? old.lastTransitionTime : now
      }],
      nodeInfo: { kubeletVersion: `shoal-${m.version}`, operatingSystem: 'linux', architecture: process.arch, containerRuntimeVersion: 'shoal', kubeProxyVersion: `shoal-${VERSION}` }
    }
  }
}

/**
 * The API's Service, default/kubernetes, as Kubernetes makes it: at the
 * first address of the service range (one of those the allocator keeps
 * back), port 443 named https to the API's port. Undefined for a bad range.
 */
export function apiService (serviceCidr: string, apiPort: number): Service | undefined {
  const range = parseCidr(serviceCidr)
  if (range === undefined) return undefined
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name: 'kubernetes', namespace: 'default', labels: { component: 'apiserver', provider: 'kubernetes' } },
    spec: { type: 'ClusterIP', clusterIP: intToIp(range.base + 1), ports: [{ name: 'https', port: 443, protocol: 'TCP', targetPort: apiPort }], sessionAffinity: 'None' }
  }
}

/** A member's API address (host:port) as an IP and a port; undefined unless its host is one address. */
function apiAddress (api: string): { ip: string, port: number } | undefined {
  const m = /^\[?([^\]]+?)\]?:(\d+)$/.exec(api)
  const ip = m?.[1] ?? ''
  if (isIP(ip) === 0 || ip === '0.0.0.0' || ip === '::') return undefined
  return { ip, port: Number(m?.[2]) }
}

/** The API's Endpoints: every alive member's API address, one subset per port, the most used port first. */
export function apiSubsets (members: MemberInfo[]): EndpointSubset[] {
  const byPort = new Map<number, Set<string>>()
  for (const m of members) {
    const a = m.state === 'alive' ? apiAddress(m.api) : undefined
    if (a !== undefined) byPort.set(a.port, (byPort.get(a.port) ?? new Set()).add(a.ip))
  }
  return [...byPort].sort(([p, a], [q, b]) => b.size - a.size || p - q)
    .map(([port, ips]) => ({ addresses: [...ips].sort().map(ip => ({ ip })), ports: [{ name: 'https', port, protocol: 'TCP' }] }))
}

/** Whether a stored Node already says what the member's state and capacity say (heartbeat times aside). */
function sameNode (a: Node, b: Node): boolean {
  const strip = (o: Node): { labels?: Record<string, string>, status: NodeStatus } => {
    const s = structuredClone(o.status ?? {})
    for (const c of s.conditions ?? []) delete c.lastHeartbeatTime
    return { labels: o.metadata.labels, status: s }
  }
  return JSON.stringify(strip(a)) === JSON.stringify(strip(b))
}

export class NodeKeeper {
  private readonly init: NodeKeeperInit
  private stopTimer: (() => void) | undefined
  private busy = false

  constructor (init: NodeKeeperInit) { this.init = init }

  start (): void {
    this.stopTimer = every(this.init.clock, this.init.intervalMs ?? 500, () => { void this.run() })
  }

  stop (): void { this.stopTimer?.() }

  private async propose<T extends KObject = KObject> (cmd: StoreCommand): Promise<StoreResult<T>> {
    return await this.init.writer.write<T>(cmd)
  }

  private async run (): Promise<void> {
    if (this.busy || !this.init.isLeader()) return
    this.busy = true
    try {
      await this.reconcile()
    } catch (err) {
      this.init.log.debug({ event: 'nodes.deferred', err: (err as Error).message }, `node upkeep deferred: ${(err as Error).message}`)
    } finally {
      this.busy = false
    }
  }

  /** The cluster network ConfigMap, then the DNS Service at its address. */
  private async ensureNetwork (now: string): Promise<void> {
    const { store, log, network } = this.init
    if (network === undefined) return
    let cm = store.get(CONFIG_MAP, CLUSTER_CONFIG.namespace, CLUSTER_CONFIG.name)
    if (cm === undefined) {
      const data = { serviceCIDR: network.serviceCidr, podCIDR: network.podCidr, clusterDomain: network.clusterDomain, dnsIP: dnsServiceIp(network.serviceCidr) }
      const r = await this.propose({ op: 'create', object: { apiVersion: 'v1', kind: 'ConfigMap', metadata: { ...CLUSTER_CONFIG }, data }, uid: randomUUID(), now })
      if (!r.ok && r.status.code !== 409) {
        log.warn({ event: 'network.config-failed', err: r.status.message }, `could not record the cluster network: ${r.status.message}`)
        return
      }
      cm = store.get(CONFIG_MAP, CLUSTER_CONFIG.namespace, CLUSTER_CONFIG.name)
    }
    const data = cm?.data ?? {}
    if (data.dnsIP === undefined || store.get(SERVICE, 'kube-system', 'kube-dns') !== undefined) return
    const dns: Service = {
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name: 'kube-dns', namespace: 'kube-system', labels: { 'k8s-app': 'kube-dns' }, annotations: { 'shoal.io/proxy': 'false', 'shoal.io/served-by': 'every peer\'s DNS server' } },
      spec: { clusterIP: data.dnsIP, ports: [{ name: 'dns', port: 53, protocol: 'UDP' }, { name: 'dns-tcp', port: 53, protocol: 'TCP' }] }
    }
    const r = await this.propose({ op: 'create', object: dns, uid: randomUUID(), now })
    if (!r.ok && r.status.code !== 409) log.warn({ event: 'network.dns-service-failed', err: r.status.message }, `could not create the kube-dns service: ${r.status.message}`)
  }

  /** Once the cluster network is known: the API's Service (if missing), then its Endpoints, written when they change. */
  private async ensureApiService (now: string): Promise<void> {
    const { store, log } = this.init
    const cidr = store.get(CONFIG_MAP, CLUSTER_CONFIG.namespace, CLUSTER_CONFIG.name)?.data?.serviceCIDR
    if (cidr === undefined) return
    const subsets = apiSubsets(this.init.members())
    if (store.get(SERVICE, 'default', 'kubernetes') === undefined) {
      const svc = apiService(cidr, subsets[0]?.ports?.[0]?.port ?? 6443)
      const r = svc === undefined ? undefined : await this.propose({ op: 'create', object: svc, uid: randomUUID(), now })
      if (r === undefined || (!r.ok && r.status.code !== 409)) {
        log.warn({ event: 'network.api-service-failed', err: r?.status.message }, `could not create the kubernetes service: ${r?.status.message ?? `bad service range ${cidr}`}`)
        return
      }
    }
    const current = store.get(ENDPOINTS, 'default', 'kubernetes')
    if (current !== undefined && jsonEqual(current.subsets ?? [], subsets)) return
    const object: Endpoints = current !== undefined
      ? { ...current, subsets }
      : { apiVersion: 'v1', kind: 'Endpoints', metadata: { name: 'kubernetes', namespace: 'default', labels: { 'endpointslice.kubernetes.io/skip-mirror': 'true' } }, subsets }
    const r = await this.propose(current === undefined ? { op: 'create', object, uid: randomUUID(), now } : { op: 'update', object, now })
    if (!r.ok) log.debug({ event: 'network.api-endpoints-failed', err: r.status.message }, `could not write the kubernetes endpoints: ${r.status.message}`)
    else log.info({ event: 'network.api-endpoints', addresses: subsets.flatMap(s => (s.addresses ?? []).map(a => `${a.ip}:${s.ports?.[0]?.port ?? ''}`)) }, 'the kubernetes service\'s endpoints changed')
  }

  async reconcile (): Promise<void> {
    const { store, log } = this.init
    const now = rfc3339(this.init.clock.now())
    for (const ns of SYSTEM_NAMESPACES) {
      if (store.get(NAMESPACE, undefined, ns) !== undefined) continue
      const r = await this.propose({ op: 'create', object: { apiVersion: 'v1', kind: 'Namespace', metadata: { name: ns } }, uid: randomUUID(), now })
      if (!r.ok && r.status.code !== 409) log.warn({ event: 'namespace.create-failed', namespace: ns, err: r.status.message }, `could not create namespace ${ns}: ${r.status.message}`)
    }
    await this.ensureNetwork(now)
    await this.ensureApiService(now)
    for (const m of this.init.members()) {
      const current = store.get(NODE, undefined, m.name)
      const want = desiredNode(m, current, now)
      if (current !== undefined && sameNode(current, want)) continue
      if (current === undefined) {
        const created = await this.propose<Node>({ op: 'create', object: want, uid: randomUUID(), now })
        if (!created.ok) {
          if (created.status.code !== 409) log.warn({ event: 'node.create-failed', node: m.name, err: created.status.message }, `could not create node ${m.name}: ${created.status.message}`)
          continue
        }
        // a create answers with the object created: a Node
        if (created.object.status !== undefined && sameNode(created.object, want)) continue
      }
      const latest = store.get(NODE, undefined, m.name) ?? want
      const { resourceVersion: _rv, ...meta } = latest.metadata
      const r = await this.propose({ op: 'update', object: { ...want, metadata: { ...meta, labels: want.metadata.labels ?? {} } }, now })
      const r2 = r.ok ? await this.propose({ op: 'update', object: { ...want, metadata: { ...meta, labels: want.metadata.labels ?? {} } }, now, subresource: 'status' }) : r
      if (!r2.ok) log.debug({ event: 'node.update-failed', node: m.name, err: r2.status.message }, `could not update node ${m.name}: ${r2.status.message}`)
      else log.info({ event: 'node.ready', node: m.name, ready: readyOf(m.state).status }, `node ${m.name} Ready=${readyOf(m.state).status}`)
    }
    // A Node no member stands behind (a machine that is not in a cluster
    // restored from a backup, or one reaped from membership) is not Ready.
    const names = new Set(this.init.members().map(m => m.name))
    for (const node of store.list(NODE, {}).items) {
      const name = node.metadata.name ?? ''
      if (names.has(name)) continue
      const conditions = node.status?.conditions ?? []
      if (conditions.find(c => c.type === 'Ready')?.status === 'Unknown') continue
      const { resourceVersion: _rv, ...meta } = node.metadata
      const status: NodeStatus = { ...(node.status ?? {}), conditions: [{ type: 'Ready', status: 'Unknown', reason: 'NodeStatusUnknown', message: 'no member of this name is in the cluster', lastHeartbeatTime: now, lastTransitionTime: now }] }
      const r = await this.propose({ op: 'update', object: { ...node, metadata: meta, status }, now, subresource: 'status' })
      if (!r.ok) log.debug({ event: 'node.update-failed', node: name, err: r.status.message }, `could not update node ${name}: ${r.status.message}`)
      else log.info({ event: 'node.ready', node: name, ready: 'Unknown' }, `node ${name} Ready=Unknown: no member of this name`)
    }
  }
}
