// Kubernetes' PodTopologySpread plugin for explicit
// topologySpreadConstraints, over ./index.ts's per-node counts of the pods
// each constraint selects (in the pod's namespace, not terminating).
// Filter (DoNotSchedule): the pods counted per domain over the eligible
// nodes (those with every constraint's key, matching the pod's node
// affinity unless nodeAffinityPolicy is Ignore, and with no untolerated
// taint when nodeTaintsPolicy is Honor); a node passes when its domain's
// count, plus one if the pod matches, less the smallest domain's count (0
// while there are fewer than minDomains domains) is at most maxSkew.
// Score (ScheduleAnyway): fewer matching pods in the node's domains scores
// higher, weighted by the log of the number of domains, as Kubernetes.
// May import: ./index.ts, ./model.ts, ./plugins.ts, ./terms.ts, protocol/.
import { matchLabelSelector } from '../../protocol/selector.ts'
import type { PodIndex, PerNode } from './index.ts'
import type { NodeInfo, PodInfo } from './model.ts'
import { matchesNodeSelectorAndAffinity, UNSCHEDULABLE_TAINT } from './plugins.ts'
import { untolerated } from '../../protocol/scheduling.ts'
import type { SpreadConstraint } from './terms.ts'

export const REASON_SPREAD = "node(s) didn't match pod topology spread constraints"
export const REASON_SPREAD_LABEL = `${REASON_SPREAD} (missing required label)`
export const HOSTNAME = 'kubernetes.io/hostname'

/** One DoNotSchedule constraint with the matching pods per domain and the smallest count that counts. */
export interface SpreadState { c: SpreadConstraint, counts: Map<string, number>, min: number }

/** Kubernetes' countPodsMatchSelector: same namespace, not terminating, selected. */
function counted (c: SpreadConstraint): (q: PodInfo) => boolean {
  return q => c.selector !== undefined && q.namespace === c.namespace && q.object.metadata.deletionTimestamp == null && matchLabelSelector(c.selector, q.labels)
}

function perNodeOf (c: SpreadConstraint, index: PodIndex): PerNode {
  return index.matching(`s:${c.sig}`, counted(c)).perNode
}

function hasKeys (n: NodeInfo, cs: SpreadConstraint[]): boolean {
  for (const c of cs) if (n.labels[c.topologyKey] === undefined) return false
  return true
}

/** Kubernetes' matchNodeInclusionPolicies: whether node `n` counts for constraint `c` of pod `p`. */
function includes (c: SpreadConstraint, p: PodInfo, n: NodeInfo): boolean {
  if (c.honorAffinity && !matchesNodeSelectorAndAffinity(p, n)) return false
  if (c.honorTaints) {
    if (untolerated(n.hardTaints, p.tolerations) !== undefined) return false
    if (n.unschedulable && untolerated([UNSCHEDULABLE_TAINT], p.tolerations) !== undefined) return false
  }
  return true
}

/** The state Filter reads, or undefined when `p` has no DoNotSchedule constraint. */
export function preFilterSpread (p: PodInfo, nodes: NodeInfo[], index: PodIndex): SpreadState[] | undefined {
  const hard = (p.spread ?? []).filter(c => c.hard)
  if (hard.length === 0) return undefined
  const perNode = hard.map(c => perNodeOf(c, index))
  const counts = hard.map(() => new Map<string, number>())
  for (const n of nodes) {
    if (!hasKeys(n, hard)) continue
    hard.forEach((c, i) => {
      if (!includes(c, p, n)) return
      const v = n.labels[c.topologyKey] as string
      const m = counts[i] as Map<string, number>
      m.set(v, (m.get(v) ?? 0) + ((perNode[i] as PerNode).get(n.name) ?? 0))
    })
  }
  return hard.map((c, i) => {
    const m = counts[i] as Map<string, number>
    // fewer domains than minDomains: the global minimum is taken as 0
    let min = Infinity
    for (const v of m.values()) if (v < min) min = v
    if (m.size < c.minDomains) min = 0
    return { c, counts: m, min }
  })
}

/** Why `n` cannot take the pod under its DoNotSchedule constraints, or undefined. */
export function filterSpread (states: SpreadState[], n: NodeInfo): string | undefined {
  for (const { c, counts, min } of states) {
    const v = n.labels[c.topologyKey]
    if (v === undefined) return REASON_SPREAD_LABEL
    const skew = (counts.get(v) ?? 0) + (c.selfMatch ? 1 : 0) - min
    if (skew > c.maxSkew) return REASON_SPREAD
  }
  return undefined
}

/** The matching pods per domain of each soft constraint, over the domains of the scored nodes (Kubernetes' PreScore). */
function softCounts (p: PodInfo, soft: SpreadConstraint[], scored: NodeInfo[], all: NodeInfo[], index: PodIndex): Array<Map<string, number>> {
  const pairs = soft.map(() => new Map<string, number>())
  for (const n of scored) soft.forEach((c, i) => { if (c.topologyKey !== HOSTNAME) pairs[i]?.set(n.labels[c.topologyKey] as string, 0) })
  const perNode = soft.map(c => perNodeOf(c, index))
  for (const n of all) {
    if (!hasKeys(n, soft)) continue
    soft.forEach((c, i) => {
      const m = pairs[i] as Map<string, number>
      const v = n.labels[c.topologyKey] as string
      const have = m.get(v)
      if (have !== undefined && includes(c, p, n)) m.set(v, have + ((perNode[i] as PerNode).get(n.name) ?? 0))
    })
  }
  return pairs
}

/**
 * PodTopologySpread's normalized score (0..100) per feasible node for the
 * pod's ScheduleAnyway constraints, or undefined when it has none.
 */
export function scoreSpread (p: PodInfo, feasible: NodeInfo[], all: NodeInfo[], index: PodIndex): Float64Array | undefined {
  const soft = (p.spread ?? []).filter(c => !c.hard)
  if (soft.length === 0) return undefined
  // nodes without every key are not scored (0)
  const scored = feasible.filter(n => hasKeys(n, soft))
  const pairs = softCounts(p, soft, scored, all, index)
  const weights = soft.map((c, i) => Math.log((c.topologyKey === HOSTNAME ? scored.length : (pairs[i] as Map<string, number>).size) + 2))
  const raw = feasible.map(n => {
    if (!hasKeys(n, soft)) return -1
    let s = 0
    soft.forEach((c, i) => {
      const cnt = c.topologyKey === HOSTNAME ? perNodeOf(c, index).get(n.name) ?? 0 : (pairs[i] as Map<string, number>).get(n.labels[c.topologyKey] as string) ?? 0
      s += cnt * (weights[i] as number) + (c.maxSkew - 1)
    })
    return Math.round(s)
  })
  let min = Infinity
  let max = 0
  for (const s of raw) if (s >= 0) { min = Math.min(min, s); max = Math.max(max, s) }
  // Kubernetes' NormalizeScore: the fewest matching pods score 100
  return Float64Array.from(raw, s => s < 0 ? 0 : max === 0 ? 100 : Math.floor(100 * (max + min - s) / max))
}
