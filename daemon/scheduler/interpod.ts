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
import type { PodIndex, Table } from './index.ts'
import type { NodeInfo, PodInfo } from './model.ts'
import { matchesAllTerms, termMatches } from './terms.ts'
import type { AffinityTerm } from './terms.ts'

export const REASON_POD_AFFINITY = "node(s) didn't match pod affinity rules"
export const REASON_POD_ANTI_AFFINITY = "node(s) didn't match pod anti-affinity rules"
export const REASON_EXISTING_ANTI_AFFINITY = "node(s) didn't satisfy existing pods anti-affinity rules"

/** What Filter needs for one pod, computed once per attempt (Kubernetes' preFilterState), as tables by node position. */
export interface InterPodState {
  /** per required affinity term: the domains where pods matching every term run */
  affinity: Table[]
  /** no pod matches the terms anywhere and the pod matches them itself */
  firstOfGroup: boolean
  /** per required anti-affinity term: the domains where pods it selects run */
  anti: Table[]
  /** the domains where counted pods' required anti-affinity selects this pod */
  existing: Table[]
}

function podTest (terms: AffinityTerm[], index: PodIndex): (q: PodInfo) => boolean {
  return q => matchesAllTerms(terms, q.namespace, q.labels, index.nsLabels)
}

/** Where counted pods' required anti-affinity terms select `p` (Kubernetes' existingAntiAffinityCounts). */
function blockedBy (p: PodInfo, index: PodIndex): Table[] {
  const out: Table[] = []
  for (const g of index.anti.values()) {
    const key = g.term.topologyKey
    if (termMatches(g.term, p.namespace, p.labels, index.nsLabels)) out.push(index.table(index.domains(g, key), key))
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
    const counts = index.matching(`all:${a.requiredAffinity.map(t => t.sig).join('\n')}`, podTest(a.requiredAffinity, index))
    const domains = a.requiredAffinity.map(t => index.domains(counts, t.topologyKey))
    state.affinity = a.requiredAffinity.map((t, i) => index.table(domains[i] as Map<string, number>, t.topologyKey))
    state.firstOfGroup = domains.every(d => d.size === 0) && matchesAllTerms(a.requiredAffinity, p.namespace, p.labels, index.nsLabels)
  }
  state.anti = a.requiredAnti.map(t => index.table(index.domains(index.matching(`t:${t.sig}`, podTest([t], index)), t.topologyKey), t.topologyKey))
  return state
}

/** Whether the domain of node position `i` holds pods (false for a node without the key). */
function hit (t: Table, i: number): boolean {
  const id = t.ids[i] as number
  return id >= 0 && t.hit[id] === 1
}

/** Why node `n` (one of the candidates the state was computed over) cannot take the pod, or undefined. */
export function filterInterPod (s: InterPodState, n: NodeInfo): string | undefined {
  const i = n.idx
  let satisfied = true
  for (const t of s.affinity) {
    if ((t.ids[i] as number) < 0) return REASON_POD_AFFINITY
    if (!hit(t, i)) satisfied = false
  }
  if (!satisfied && !s.firstOfGroup) return REASON_POD_AFFINITY
  for (const t of s.anti) if (hit(t, i)) return REASON_POD_ANTI_AFFINITY
  for (const t of s.existing) if (hit(t, i)) return REASON_EXISTING_ANTI_AFFINITY
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
    const counts = index.matching(`t:${w.term.sig}`, podTest([w.term], index))
    addScore(score, index.domains(counts, w.term.topologyKey), w.term.topologyKey, sign * w.weight)
  }
  for (const w of a?.preferredAffinity ?? []) own(w, 1)
  for (const w of a?.preferredAnti ?? []) own(w, -1)
  for (const g of index.scoring.values()) {
    if (termMatches(g.term, p.namespace, p.labels, index.nsLabels)) addScore(score, index.domains(g, g.term.topologyKey), g.term.topologyKey, g.weight)
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
