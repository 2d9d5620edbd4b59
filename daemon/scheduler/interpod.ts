// Kubernetes' InterPodAffinity plugin over ./index.ts's counts. Filter: a
// node passes when every required podAffinity term has a matching pod in
// the node's domain of its topologyKey (or no pod anywhere matches the
// terms and the pod matches them itself: the first of a group), no
// required podAntiAffinity term has one, and no counted pod's required
// anti-affinity selects this pod in the node's domain. A node without a
// term's topologyKey satisfies no affinity term. Score: the weights of
// preferred terms, both ways, and existing pods' required affinity, summed
// per domain and scaled 0..100 over the feasible nodes.
// May import: ./index.ts, ./model.ts, ./terms.ts.
import type { PodIndex } from './index.ts'
import type { NodeInfo, PodInfo } from './model.ts'
import { matchesAllTerms, termMatches } from './terms.ts'
import type { AffinityTerm } from './terms.ts'

export const REASON_POD_AFFINITY = "node(s) didn't match pod affinity rules"
export const REASON_POD_ANTI_AFFINITY = "node(s) didn't match pod anti-affinity rules"
export const REASON_EXISTING_ANTI_AFFINITY = "node(s) didn't satisfy existing pods anti-affinity rules"

/** A topology key and the domains (its values) holding matching pods, with how many. */
export interface Domains { key: string, counts: Map<string, number> }

/** What Filter needs for one pod, computed once per attempt (Kubernetes' preFilterState). */
export interface InterPodState {
  /** per required affinity term: where pods matching every term run */
  affinity: Domains[]
  /** no pod matches the terms anywhere and the pod matches them itself */
  firstOfGroup: boolean
  /** per required anti-affinity term: where pods it selects run */
  anti: Domains[]
  /** domains where counted pods' required anti-affinity selects this pod */
  existing: Domains[]
}

function podTest (terms: AffinityTerm[], index: PodIndex): (q: PodInfo) => boolean {
  return q => matchesAllTerms(terms, q.namespace, q.labels, index.nsLabels)
}

/** The domains where counted pods' required anti-affinity terms select `p` (Kubernetes' existingAntiAffinityCounts). */
function blockedBy (p: PodInfo, index: PodIndex): Domains[] {
  const out: Domains[] = []
  for (const g of index.anti.values()) {
    if (termMatches(g.term, p.namespace, p.labels, index.nsLabels)) out.push({ key: g.term.topologyKey, counts: index.perDomain(g.perNode, g.term.topologyKey) })
  }
  return out
}

/** The state Filter reads, or undefined when no inter-pod rule concerns `p`. */
export function preFilterInterPod (p: PodInfo, index: PodIndex): InterPodState | undefined {
  const existing = index.anti.size === 0 ? [] : blockedBy(p, index)
  const a = p.podAffinity
  if (existing.length === 0 && (a === undefined || a.requiredAffinity.length + a.requiredAnti.length === 0)) return undefined
  const state: InterPodState = { affinity: [], firstOfGroup: false, anti: [], existing }
  if (a === undefined) return state
  if (a.requiredAffinity.length > 0) {
    // pods that match every term, as Kubernetes counts them
    const perNode = index.perNode(`all:${a.requiredAffinity.map(t => t.sig).join('\n')}`, podTest(a.requiredAffinity, index))
    state.affinity = a.requiredAffinity.map(t => ({ key: t.topologyKey, counts: index.perDomain(perNode, t.topologyKey) }))
    state.firstOfGroup = state.affinity.every(d => d.counts.size === 0) && matchesAllTerms(a.requiredAffinity, p.namespace, p.labels, index.nsLabels)
  }
  state.anti = a.requiredAnti.map(t => ({ key: t.topologyKey, counts: index.perDomain(index.perNode(`t:${t.sig}`, podTest([t], index)), t.topologyKey) }))
  return state
}

function occupied (d: Domains, n: NodeInfo): boolean {
  const v = n.labels[d.key]
  return v !== undefined && (d.counts.get(v) ?? 0) > 0
}

/** Why `n` cannot take the pod under the inter-pod rules, or undefined. */
export function filterInterPod (s: InterPodState, n: NodeInfo): string | undefined {
  let satisfied = true
  for (const d of s.affinity) {
    if (n.labels[d.key] === undefined) return REASON_POD_AFFINITY
    if (!occupied(d, n)) satisfied = false
  }
  if (!satisfied && !s.firstOfGroup) return REASON_POD_AFFINITY
  for (const d of s.anti) if (occupied(d, n)) return REASON_POD_ANTI_AFFINITY
  for (const d of s.existing) if (occupied(d, n)) return REASON_EXISTING_ANTI_AFFINITY
  return undefined
}

/** topologyKey → value → score */
type TopologyScore = Map<string, Map<string, number>>

function addScore (score: TopologyScore, domains: Map<string, number>, key: string, weight: number): void {
  if (domains.size === 0) return
  let m = score.get(key)
  if (m === undefined) score.set(key, m = new Map())
  for (const [v, c] of domains) m.set(v, (m.get(v) ?? 0) + weight * c)
}

/** Kubernetes' PreScore: every term's weight per domain of its key. */
function topologyScore (p: PodInfo, index: PodIndex): TopologyScore {
  const score: TopologyScore = new Map()
  const a = p.podAffinity
  const own = (w: { weight: number, term: AffinityTerm }, sign: number): void => {
    const perNode = index.perNode(`t:${w.term.sig}`, podTest([w.term], index))
    addScore(score, index.perDomain(perNode, w.term.topologyKey), w.term.topologyKey, sign * w.weight)
  }
  for (const w of a?.preferredAffinity ?? []) own(w, 1)
  for (const w of a?.preferredAnti ?? []) own(w, -1)
  for (const g of index.scoring.values()) {
    if (termMatches(g.term, p.namespace, p.labels, index.nsLabels)) addScore(score, index.perDomain(g.perNode, g.term.topologyKey), g.term.topologyKey, g.weight)
  }
  return score
}

/** InterPodAffinity's normalized score (0..100) per feasible node, or undefined when it would be 0 for all. */
export function scoreInterPod (p: PodInfo, feasible: NodeInfo[], index: PodIndex): Float64Array | undefined {
  const a = p.podAffinity
  if (index.scoring.size === 0 && (a === undefined || a.preferredAffinity.length + a.preferredAnti.length === 0)) return undefined
  const score = topologyScore(p, index)
  if (score.size === 0) return undefined
  const raw = new Float64Array(feasible.length)
  let min = Infinity
  let max = -Infinity
  feasible.forEach((n, i) => {
    let s = 0
    for (const [key, values] of score) {
      const v = n.labels[key]
      if (v !== undefined) s += values.get(v) ?? 0
    }
    raw[i] = s
    if (s < min) min = s
    if (s > max) max = s
  })
  if (!(max > min)) return undefined
  // truncated, as Kubernetes' int64 scores
  return raw.map(s => Math.floor(100 * (s - min) / (max - min)))
}
