// The counts behind the inter-pod plugins (./interpod.ts, ./spread.ts),
// kept up to date as the scheduler counts pods onto nodes and off them, so
// that a pod with affinity terms or spread constraints costs O(nodes) and
// not a scan of every pod: per term (by signature), how many counted pods
// it selects on each node, built on first use and then maintained; and per
// term that counted pods carry (required anti-affinity, required affinity,
// preferred terms), how many pods carry it on each node. Per node rather
// than per topology domain, so that a node's labels can change freely: a
// plugin sums them per domain with perDomain.
// May import: ./model.ts, ./terms.ts.
import type { NodeInfo, PodInfo } from './model.ts'
import type { AffinityTerm, NamespaceLabels } from './terms.ts'

/** node name → count */
export type PerNode = Map<string, number>

/** Pods on each node that carry one term, and what each counts for. */
export interface CarriedGroup {
  term: AffinityTerm
  /** per carrying pod, for scoring: the term's weight, negative for anti-affinity, 1 for required affinity (Kubernetes' hardPodAffinityWeight) */
  weight: number
  perNode: PerNode
}

interface MatchEntry { test: (p: PodInfo) => boolean, perNode: PerNode }

/** Signatures kept at most; past that, all are dropped and rebuilt on use. */
const MAX_MATCH_ENTRIES = 1024

function bump (m: PerNode, k: string, d: number): void {
  const v = (m.get(k) ?? 0) + d
  if (v <= 0) m.delete(k)
  else m.set(k, v)
}

export class PodIndex {
  private readonly matches = new Map<string, MatchEntry>()
  /** existing pods' required anti-affinity terms, by signature: they block the pods they select */
  readonly anti = new Map<string, CarriedGroup>()
  /** existing pods' required affinity and preferred terms, by weight and signature: they score the pods they select */
  readonly scoring = new Map<string, CarriedGroup>()

  /**
   * `pods` are the scheduler's pods (those with countedOn set are on a node),
   * `nodes` its nodes by name, `nsLabels` the labels of a namespace.
   */
  private readonly pods: Map<string, PodInfo>
  private readonly nodes: Map<string, NodeInfo>
  readonly nsLabels: NamespaceLabels

  constructor (pods: Map<string, PodInfo>, nodes: Map<string, NodeInfo>, nsLabels: NamespaceLabels) {
    this.pods = pods
    this.nodes = nodes
    this.nsLabels = nsLabels
  }

  /** Counts (1) or uncounts (-1) pod `p` on node `node`: called wherever model.ts's account is. */
  count (node: string, p: PodInfo, sign: 1 | -1): void {
    for (const e of this.matches.values()) if (e.test(p)) bump(e.perNode, node, sign)
    const a = p.podAffinity
    if (a === undefined) return
    for (const t of a.requiredAnti) this.carry(this.anti, t.sig, t, 0, node, sign)
    for (const t of a.requiredAffinity) this.carry(this.scoring, `1|${t.sig}`, t, 1, node, sign)
    for (const w of a.preferredAffinity) this.carry(this.scoring, `${w.weight}|${w.term.sig}`, w.term, w.weight, node, sign)
    for (const w of a.preferredAnti) this.carry(this.scoring, `${-w.weight}|${w.term.sig}`, w.term, -w.weight, node, sign)
  }

  private carry (groups: Map<string, CarriedGroup>, key: string, term: AffinityTerm, weight: number, node: string, sign: 1 | -1): void {
    let g = groups.get(key)
    if (g === undefined) {
      if (sign < 0) return
      groups.set(key, g = { term, weight, perNode: new Map() })
    }
    bump(g.perNode, node, sign)
    if (g.perNode.size === 0) groups.delete(key)
  }

  /**
   * How many counted pods pass `test` on each node, kept under `key` from
   * now on; `key` must name the test (a term's or constraint's signature).
   */
  perNode (key: string, test: (p: PodInfo) => boolean): PerNode {
    let e = this.matches.get(key)
    if (e === undefined) {
      if (this.matches.size >= MAX_MATCH_ENTRIES) this.matches.clear()
      e = { test, perNode: new Map() }
      for (const p of this.pods.values()) if (p.countedOn !== '' && test(p)) bump(e.perNode, p.countedOn, 1)
      this.matches.set(key, e)
    }
    return e.perNode
  }

  /** Drops the built counts (a namespace's labels changed: namespaceSelectors may select other pods). */
  forgetMatches (): void {
    this.matches.clear()
  }

  /** Clears everything (the scheduler stops). */
  clear (): void {
    this.matches.clear()
    this.anti.clear()
    this.scoring.clear()
  }

  /** The counts of `perNode` summed per value of the node label `key`; nodes without it are left out. */
  perDomain (perNode: PerNode, key: string): Map<string, number> {
    const out = new Map<string, number>()
    for (const [name, c] of perNode) {
      const v = this.nodes.get(name)?.labels[key]
      if (v !== undefined) out.set(v, (out.get(v) ?? 0) + c)
    }
    return out
  }
}
