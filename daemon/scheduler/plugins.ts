// The scheduler's filter and score plugins, as Kubernetes' default profile
// has them: a filter answers why a node cannot take a pod (a reason string,
// counted into the FailedScheduling message) or undefined; a score ranks
// the nodes that pass (0..100, higher is better). Pure functions over
// model.ts's PodInfo and NodeInfo. The inter-pod plugins, which need
// counts over other pods, are ./interpod.ts and ./spread.ts.
// May import: protocol/ (types; and ./scheduling.ts, the matchers it shares with the DaemonSet controller), ./model.ts.
import type { Taint } from '../../protocol/core-v1.ts'
import { matchTerm, tolerates, untolerated } from '../../protocol/scheduling.ts'
import type { NodeInfo, PodInfo } from './model.ts'

export const REASON_NOT_READY = 'node(s) were not ready'
export const REASON_UNSCHEDULABLE = 'node(s) were unschedulable'
export const REASON_AFFINITY = "node(s) didn't match Pod's node affinity/selector"
export const REASON_PORTS = "node(s) didn't have free ports for the requested pod ports"
export const REASON_CPU = 'Insufficient cpu'
export const REASON_MEMORY = 'Insufficient memory'
export const REASON_PODS = 'Too many pods'


/** The taint Kubernetes puts on a cordoned node. */
export const UNSCHEDULABLE_TAINT: Taint = { key: 'node.kubernetes.io/unschedulable', effect: 'NoSchedule' }

export function matchesNodeSelectorAndAffinity (p: PodInfo, n: NodeInfo): boolean {
  for (const [k, v] of p.nodeSelector) if (n.labels[k] !== v) return false
  if (p.requiredTerms !== undefined && !p.requiredTerms.some(t => matchTerm(t, n))) return false
  return true
}

/**
 * Why `n` cannot take `p`, or undefined when it can. `add` receives each
 * reason (resource fit can give several at once); the first filter that
 * fails ends the check, as in Kubernetes.
 */
export function filterNode (p: PodInfo, n: NodeInfo, add: (reason: string) => void): boolean {
  if (!n.ready) { add(REASON_NOT_READY); return false }
  if (n.unschedulable && untolerated([UNSCHEDULABLE_TAINT], p.tolerations) !== undefined) { add(REASON_UNSCHEDULABLE); return false }
  if (n.hardTaints.length > 0) {
    const taint = untolerated(n.hardTaints, p.tolerations)
    if (taint !== undefined) { add(`node(s) had untolerated taint {${taint.key}: ${taint.value ?? ''}}`); return false }
  }
  if (!matchesNodeSelectorAndAffinity(p, n)) { add(REASON_AFFINITY); return false }
  if (p.hostPorts.length > 0 && n.hostPorts.size > 0) {
    for (const hp of p.hostPorts) if (n.hostPorts.has(hp)) { add(REASON_PORTS); return false }
  }
  let fits = true
  if (n.podCount + 1 > n.allocPods) { add(REASON_PODS); fits = false }
  if (p.cpu > 0 && n.cpu + p.cpu > n.allocCpu) { add(REASON_CPU); fits = false }
  if (p.memory > 0 && n.memory + p.memory > n.allocMemory) { add(REASON_MEMORY); fits = false }
  return fits
}

/** NodeResourcesLeastAllocated: the mean free fraction of cpu and memory after placing `p`, 0..100. */
export function leastAllocatedScore (p: PodInfo, n: NodeInfo): number {
  const free = (alloc: number, used: number): number => alloc <= 0 ? 0 : Math.max(0, (alloc - used) / alloc)
  return 50 * (free(n.allocCpu, n.scoreCpu + p.scoreCpu) + free(n.allocMemory, n.scoreMemory + p.scoreMemory))
}

/**
 * NodeAffinity's score: the weights of the preferred terms each feasible
 * node matches, scaled so that the best scores 100 (Kubernetes'
 * DefaultNormalizeScore), or undefined when the pod prefers nothing.
 */
export function nodeAffinityScores (p: PodInfo, feasible: NodeInfo[]): Float64Array | undefined {
  if (p.preferredTerms.length === 0) return undefined
  let max = 0
  const raw = Float64Array.from(feasible, n => {
    let s = 0
    for (const w of p.preferredTerms) if (matchTerm(w.term, n)) s += w.weight
    if (s > max) max = s
    return s
  })
  return max === 0 ? undefined : raw.map(s => Math.floor(100 * s / max))
}

/** Spreading: 100 for a node with none of the pod's siblings, down to 0 for the most crowded feasible node. */
export function spreadScore (p: PodInfo, n: NodeInfo, maxSiblings: number): number {
  if (maxSiblings <= 0) return 100
  return 100 * (maxSiblings - (n.owners.get(p.owner) ?? 0)) / maxSiblings
}

/** The FailedScheduling message, as Kubernetes writes it: "0/3 nodes are available: 2 Insufficient cpu, 1 node(s) were unschedulable." */
export function unschedulableMessage (nodeCount: number, reasons: Map<string, number>): string {
  const parts = [...reasons.keys()].sort().map(r => `${reasons.get(r) ?? 0} ${r}`)
  return `0/${nodeCount} nodes are available${parts.length === 0 ? '' : ': ' + parts.join(', ')}.`
}

/**
 * When the pod must leave node `n` because of its NoExecute taints: now for
 * one it does not tolerate, the taint's timeAdded (or first sight, kept in
 * `seen`) plus the shortest tolerationSeconds for one tolerated for a while,
 * Infinity when every such taint is tolerated for good.
 */
export function noExecuteDeadline (p: PodInfo, n: NodeInfo, now: number, seen: Map<string, number>): { deadline: number, taint: Taint | undefined } {
  let deadline = Infinity
  let culprit: Taint | undefined
  for (const taint of n.hardTaints) {
    if (taint.effect !== 'NoExecute') continue
    const tols = p.tolerations.filter(t => tolerates(t, taint))
    let at: number
    if (tols.length === 0) {
      at = now
    } else {
      const secs = tols.map(t => t.tolerationSeconds).filter((s): s is number => typeof s === 'number')
      if (secs.length < tols.length) continue // a toleration without tolerationSeconds holds forever
      const seenKey = `${n.name}/${taint.key}=${taint.value ?? ''}`
      const added = taint.timeAdded !== undefined ? Date.parse(taint.timeAdded) : NaN
      let since = Number.isFinite(added) ? added : seen.get(seenKey)
      if (since === undefined) seen.set(seenKey, since = now)
      at = since + Math.max(0, Math.min(...secs)) * 1000
    }
    if (at < deadline) {
      deadline = at
      culprit = taint
    }
  }
  return { deadline, taint: culprit }
}
