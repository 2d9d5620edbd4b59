// The scheduler's view of pods and nodes: what each pod asks for (requests,
// host ports, owner, placement constraints), read once from the object, and
// per-node aggregates of the pods counted on it (requested cpu and memory,
// pod count, host ports in use, pods per owner), kept up to date from
// watches and from the scheduler's own decisions so that placing one pod
// costs O(nodes) and never a scan of every pod (inter-pod rules are counted
// in ./index.ts).
// May import: protocol/, ./terms.ts.
import type { Node, NodeSelectorTerm, Pod, Taint, Toleration } from '../../protocol/core-v1.ts'
import { bytesOf, cpuMillis } from '../../protocol/quantity.ts'
import { podAffinityOf, spreadOf } from './terms.ts'
import type { PodAffinityInfo, SpreadConstraint } from './terms.ts'

/** Kubernetes' defaults for a container without requests, used for scoring only (as NonZeroRequested). */
export const DEFAULT_CPU_MILLIS = 100
export const DEFAULT_MEMORY_BYTES = 200 * 2 ** 20

export interface PodInfo {
  key: string
  namespace: string
  name: string
  uid: string
  /** order of first sight: creation order */
  seq: number
  object: Pod
  cpu: number
  memory: number
  /** requests with Kubernetes' non-zero defaults, for scoring */
  scoreCpu: number
  scoreMemory: number
  /** `protocol/port` of each container hostPort */
  hostPorts: string[]
  /** controller ownerReference uid, or namespace and labels: pods spread apart by this */
  owner: string
  nodeSelector: Array<[string, string]>
  requiredTerms: NodeSelectorTerm[] | undefined
  /** preferred node affinity, for NodeAffinity's score */
  preferredTerms: Array<{ weight: number, term: NodeSelectorTerm }>
  tolerations: Toleration[]
  labels: Record<string, string>
  /** podAffinity and podAntiAffinity terms, undefined for none */
  podAffinity: PodAffinityInfo | undefined
  /** topologySpreadConstraints, undefined for none */
  spread: SpreadConstraint[] | undefined
  /** spec.schedulingGates is not empty: the pod waits */
  gated: boolean
  /** the node its resources are counted on ('' for none) */
  countedOn: string
}

export interface NodeInfo {
  name: string
  /** position in the scheduler's candidate list (-1 when not a candidate), for the dense tables of ./index.ts */
  idx: number
  object: Node | undefined
  labels: Record<string, string>
  ready: boolean
  unschedulable: boolean
  /** NoSchedule and NoExecute taints */
  hardTaints: Taint[]
  allocCpu: number
  allocMemory: number
  allocPods: number
  cpu: number
  memory: number
  scoreCpu: number
  scoreMemory: number
  podCount: number
  hostPorts: Map<string, number>
  owners: Map<string, number>
  /** keys of the pods counted here */
  pods: Set<string>
}

/**
 * The entries of a list that are objects. Validation counts a null as
 * absent, so a stored list may hold nulls (and a status, only checked to be
 * an object, anything): the scheduler must not trip on one pod's.
 */
function entries<T extends object> (v: T[] | undefined): T[] {
  return Array.isArray(v) ? v.filter(x => typeof x === 'object' && x !== null) : []
}

export function podKey (p: Pod): string {
  return `${p.metadata.namespace ?? 'default'}/${p.metadata.name ?? ''}`
}

/** Whether a pod no longer holds resources on its node. */
export function isTerminated (p: Pod): boolean {
  const phase = p.status?.phase
  return phase === 'Succeeded' || phase === 'Failed'
}

/** The pod's preferred node affinity terms with their weights. */
function preferredOf (p: Pod): Array<{ weight: number, term: NodeSelectorTerm }> {
  return entries(p.spec?.affinity?.nodeAffinity?.preferredDuringSchedulingIgnoredDuringExecution)
    .filter(w => typeof w.weight === 'number' && typeof w.preference === 'object' && w.preference !== null)
    .map(w => ({ weight: w.weight, term: w.preference }))
}

export function podInfoOf (p: Pod, seq: number): PodInfo {
  const spec = p.spec
  let cpu = 0
  let memory = 0
  let scoreCpu = 0
  let scoreMemory = 0
  const hostPorts: string[] = []
  for (const c of entries(spec?.containers)) {
    const req = c.resources?.requests ?? {}
    const cc = cpuMillis(req.cpu)
    const cm = bytesOf(req.memory)
    cpu += cc
    memory += cm
    scoreCpu += req.cpu === undefined ? DEFAULT_CPU_MILLIS : cc
    scoreMemory += req.memory === undefined ? DEFAULT_MEMORY_BYTES : cm
    for (const port of entries(c.ports)) {
      if (typeof port.hostPort === 'number' && port.hostPort > 0) hostPorts.push(`${port.protocol ?? 'TCP'}/${port.hostPort}`)
    }
  }
  // Init containers run one at a time before the others: the pod needs the largest of them.
  for (const c of entries(spec?.initContainers)) {
    const req = c.resources?.requests ?? {}
    cpu = Math.max(cpu, cpuMillis(req.cpu))
    memory = Math.max(memory, bytesOf(req.memory))
  }
  scoreCpu = Math.max(scoreCpu, cpu)
  scoreMemory = Math.max(scoreMemory, memory)
  const meta = p.metadata
  const controller = (meta.ownerReferences ?? []).find(r => r.controller === true)
  const labels = meta.labels ?? {}
  const owner = controller !== undefined
    ? `uid:${controller.uid}`
    : `labels:${meta.namespace ?? 'default'}:${Object.keys(labels).sort().map(k => `${k}=${labels[k] ?? ''}`).join(',')}`
  const required = spec?.affinity?.nodeAffinity?.requiredDuringSchedulingIgnoredDuringExecution
  return {
    key: podKey(p),
    namespace: meta.namespace ?? 'default',
    name: meta.name ?? '',
    uid: meta.uid ?? '',
    seq,
    object: p,
    cpu,
    memory,
    scoreCpu,
    scoreMemory,
    hostPorts,
    owner,
    nodeSelector: Object.entries(spec?.nodeSelector ?? {}),
    // a null list (the store keeps one) is no list
    requiredTerms: required?.nodeSelectorTerms ?? undefined,
    preferredTerms: preferredOf(p),
    tolerations: entries(spec?.tolerations),
    labels,
    podAffinity: podAffinityOf(spec, meta.namespace ?? 'default', labels),
    spread: spreadOf(spec, meta.namespace ?? 'default', labels),
    gated: entries(spec?.schedulingGates).length > 0,
    countedOn: ''
  }
}

export function emptyNode (name: string): NodeInfo {
  return {
    name,
    idx: -1,
    object: undefined,
    labels: {},
    ready: false,
    unschedulable: true,
    hardTaints: [],
    allocCpu: 0,
    allocMemory: 0,
    allocPods: 0,
    cpu: 0,
    memory: 0,
    scoreCpu: 0,
    scoreMemory: 0,
    podCount: 0,
    hostPorts: new Map(),
    owners: new Map(),
    pods: new Set()
  }
}

/** Refreshes the node-derived fields of `n` from its Node object (undefined: the Node is gone). */
export function setNodeObject (n: NodeInfo, node: Node | undefined): void {
  n.object = node
  if (node === undefined) {
    n.labels = {}
    n.ready = false
    n.unschedulable = true
    n.hardTaints = []
    n.allocCpu = n.allocMemory = n.allocPods = 0
    return
  }
  const status = node.status
  const alloc = status?.allocatable ?? status?.capacity ?? {}
  n.labels = node.metadata.labels ?? {}
  n.ready = entries(status?.conditions).some(c => c.type === 'Ready' && c.status === 'True')
  n.unschedulable = node.spec?.unschedulable === true
  n.hardTaints = entries(node.spec?.taints).filter(t => t.effect === 'NoSchedule' || t.effect === 'NoExecute')
  n.allocCpu = cpuMillis(alloc.cpu)
  n.allocMemory = bytesOf(alloc.memory)
  n.allocPods = alloc.pods === undefined ? 110 : bytesOf(alloc.pods)
}

/** Counts (sign 1) or uncounts (sign -1) a pod's requests, ports and owner on a node. */
export function account (n: NodeInfo, p: PodInfo, sign: 1 | -1): void {
  n.cpu += sign * p.cpu
  n.memory += sign * p.memory
  n.scoreCpu += sign * p.scoreCpu
  n.scoreMemory += sign * p.scoreMemory
  n.podCount += sign
  for (const hp of p.hostPorts) bump(n.hostPorts, hp, sign)
  bump(n.owners, p.owner, sign)
  if (sign > 0) n.pods.add(p.key)
  else n.pods.delete(p.key)
}

function bump (m: Map<string, number>, k: string, d: number): void {
  const v = (m.get(k) ?? 0) + d
  if (v <= 0) m.delete(k)
  else m.set(k, v)
}
