// The counts behind the inter-pod plugins (./interpod.ts, ./spread.ts),
// kept up to date as the scheduler counts pods onto nodes and off them, so
// that a pod with affinity terms or spread constraints never scans every
// pod: per term (by signature), how many counted pods it selects on each
// node, built on first use and then maintained; and per term that counted
// pods carry (required anti-affinity, required affinity, preferred terms),
// how many pods carry it on each node. Each also keeps its sums per domain
// (value) of the topology keys asked for, maintained the same way and
// dropped when a node's labels change. A filter then reads dense tables
// by node position (Table): the domain id of each candidate node and
// whether a domain holds matching pods, two array reads per node and no
// chasing of labels and maps.
// May import: ./model.ts, ./terms.ts.
import type { NodeInfo, PodInfo } from './model.ts'
import type { AffinityTerm, NamespaceLabels } from './terms.ts'

/** name → count */
export type PerNode = Map<string, number>

/** Pods counted per node, and per value of each topology key asked for so far. */
export interface Counts {
  perNode: PerNode
  /** topology key → value → count; built by domains() */
  perKey: Map<string, Map<string, number>>
}

/** Pods on each node that carry one term, and what each counts for. */
export interface CarriedGroup extends Counts {
  term: AffinityTerm
  /** per carrying pod, for scoring: the term's weight, negative for anti-affinity, 1 for required affinity (Kubernetes' hardPodAffinityWeight) */
  weight: number
}

interface MatchEntry extends Counts { test: (p: PodInfo) => boolean }

/** The values of one topology key over the candidate nodes, numbered. */
interface Topology {
  /** by node position (NodeInfo.idx): the id of its value, -1 without the key */
  ids: Int32Array
  byValue: Map<string, number>
}

/** Which domains of a topology key hold pods, by node position: for filters. */
export interface Table {
  /** by node position: domain id, -1 for a node without the key */
  ids: Int32Array
  /** by domain id: 1 where the domain holds pods */
  hit: Uint8Array
}

/** Signatures kept at most; past that, all are dropped and rebuilt on use. */
const MAX_MATCH_ENTRIES = 1024

function bump (m: Map<string, number>, k: string, d: number): void {
  const v = (m.get(k) ?? 0) + d
  if (v <= 0) m.delete(k)
  else m.set(k, v)
}

/** Counts `n` for one more (or one fewer) pod, per node and per domain. */
function add (c: Counts, n: NodeInfo, sign: 1 | -1): void {
  bump(c.perNode, n.name, sign)
  for (const [key, m] of c.perKey) {
    const v = n.labels[key]
    if (v !== undefined) bump(m, v, sign)
  }
}

export class PodIndex {
  private readonly matches = new Map<string, MatchEntry>()
  /** existing pods' required anti-affinity terms, by signature: they block the pods they select */
  readonly anti = new Map<string, CarriedGroup>()
  /** existing pods' required affinity and preferred terms, by weight and signature: they score the pods they select */
  readonly scoring = new Map<string, CarriedGroup>()
  private readonly pods: Map<string, PodInfo>
  private readonly nodes: Map<string, NodeInfo>
  readonly nsLabels: NamespaceLabels
  /** the candidate nodes, numbered; topologies are over them */
  private list: NodeInfo[] = []
  private readonly topologies = new Map<string, Topology>()

  /**
   * `pods` are the scheduler's pods (those with countedOn set are on a node),
   * `nodes` its nodes by name, `nsLabels` the labels of a namespace.
   */
  constructor (pods: Map<string, PodInfo>, nodes: Map<string, NodeInfo>, nsLabels: NamespaceLabels) {
    this.pods = pods
    this.nodes = nodes
    this.nsLabels = nsLabels
  }

  /** Counts (1) or uncounts (-1) pod `p` on node `n`: called wherever model.ts's account is. */
  count (n: NodeInfo, p: PodInfo, sign: 1 | -1): void {
    for (const e of this.matches.values()) if (e.test(p)) add(e, n, sign)
    const a = p.podAffinity
    if (a === undefined) return
    for (const t of a.requiredAnti) this.carry(this.anti, t.sig, t, 0, n, sign)
    for (const t of a.requiredAffinity) this.carry(this.scoring, `1|${t.sig}`, t, 1, n, sign)
    for (const w of a.preferredAffinity) this.carry(this.scoring, `${w.weight}|${w.term.sig}`, w.term, w.weight, n, sign)
    for (const w of a.preferredAnti) this.carry(this.scoring, `${-w.weight}|${w.term.sig}`, w.term, -w.weight, n, sign)
  }

  private carry (groups: Map<string, CarriedGroup>, key: string, term: AffinityTerm, weight: number, n: NodeInfo, sign: 1 | -1): void {
    let g = groups.get(key)
    if (g === undefined) {
      if (sign < 0) return
      groups.set(key, g = { term, weight, perNode: new Map(), perKey: new Map() })
    }
    add(g, n, sign)
    if (g.perNode.size === 0) groups.delete(key)
  }

  /**
   * The counted pods that pass `test`, kept under `key` from now on; `key`
   * must name the test (a term's or constraint's signature).
   */
  matching (key: string, test: (p: PodInfo) => boolean): Counts {
    let e = this.matches.get(key)
    if (e === undefined) {
      if (this.matches.size >= MAX_MATCH_ENTRIES) this.matches.clear()
      e = { test, perNode: new Map(), perKey: new Map() }
      for (const p of this.pods.values()) if (p.countedOn !== '' && test(p)) bump(e.perNode, p.countedOn, 1)
      this.matches.set(key, e)
    }
    return e
  }

  /** The counts of `c` per value of the node label `key` (nodes without it left out), kept from now on. */
  domains (c: Counts, key: string): Map<string, number> {
    let m = c.perKey.get(key)
    if (m === undefined) {
      c.perKey.set(key, m = new Map())
      for (const [name, k] of c.perNode) {
        const v = this.nodes.get(name)?.labels[key]
        if (v !== undefined) m.set(v, (m.get(v) ?? 0) + k)
      }
    }
    return m
  }

  /** A node's labels changed (or it went): the sums per domain are rebuilt on use. */
  forgetDomains (): void {
    for (const c of [...this.matches.values(), ...this.anti.values(), ...this.scoring.values()]) c.perKey.clear()
    this.topologies.clear()
  }

  /** The scheduler's candidate nodes (in the order it filters them): numbers them (NodeInfo.idx). */
  setCandidates (list: NodeInfo[]): void {
    for (const n of this.list) n.idx = -1
    list.forEach((n, i) => { n.idx = i })
    this.list = list
    this.topologies.clear()
  }

  private topology (key: string): Topology {
    let t = this.topologies.get(key)
    if (t === undefined) {
      const byValue = new Map<string, number>()
      const ids = new Int32Array(this.list.length)
      this.list.forEach((n, i) => {
        const v = n.labels[key]
        let id = v === undefined ? -1 : byValue.get(v)
        if (id === undefined) byValue.set(v as string, id = byValue.size)
        ids[i] = id
      })
      this.topologies.set(key, t = { ids, byValue })
    }
    return t
  }

  /** The domains of `key` where `domains` (value → count, from domains()) has pods, as a Table. */
  table (domains: Map<string, number>, key: string): Table {
    const t = this.topology(key)
    const hit = new Uint8Array(t.byValue.size)
    for (const [v, c] of domains) {
      const id = t.byValue.get(v)
      if (id !== undefined && c > 0) hit[id] = 1
    }
    return { ids: t.ids, hit }
  }

  /** Drops the built counts (a namespace's labels changed: namespaceSelectors may select other pods). */
  forgetMatches (): void {
    this.matches.clear()
  }

  /** Clears everything (the scheduler stops). */
  clear (): void {
    this.setCandidates([])
    this.matches.clear()
    this.anti.clear()
    this.scoring.clear()
  }
}
