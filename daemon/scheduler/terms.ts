// A pod's inter-pod placement rules, read once from its spec into the form
// the plugins match with: podAffinity and podAntiAffinity terms (namespaces
// resolved against the pod's own, matchLabelKeys and mismatchLabelKeys
// merged into the selector from the pod's labels, as Kubernetes' API server
// does) and topologySpreadConstraints (policies defaulted, selector merged
// the same way). Each term and constraint carries a signature: equal ones
// share one count index (./index.ts). Pure.
// May import: protocol/.
import type { PodAffinity, PodAffinityTerm, PodSpec, TopologySpreadConstraint } from '../../protocol/core-v1.ts'
import type { LabelSelector, LabelSelectorRequirement } from '../../protocol/k8s.ts'
import { matchLabelSelector } from '../../protocol/selector.ts'

/** One PodAffinityTerm, compiled. */
export interface AffinityTerm {
  /** what the term selects and over which key: equal terms have equal signatures */
  sig: string
  /** undefined (no labelSelector) selects no pod, as in Kubernetes */
  selector: LabelSelector | undefined
  namespaces: Set<string>
  /** `{}` selects every namespace; undefined none beyond `namespaces` */
  nsSelector: LabelSelector | undefined
  topologyKey: string
}

export interface WeightedTerm { weight: number, term: AffinityTerm }

export interface PodAffinityInfo {
  requiredAffinity: AffinityTerm[]
  requiredAnti: AffinityTerm[]
  preferredAffinity: WeightedTerm[]
  preferredAnti: WeightedTerm[]
}

/** One topologySpreadConstraint, compiled; it counts pods of the pod's own namespace. */
export interface SpreadConstraint {
  /** namespace and selector: equal ones count the same pods */
  sig: string
  namespace: string
  selector: LabelSelector | undefined
  topologyKey: string
  maxSkew: number
  /** DoNotSchedule (a filter) rather than ScheduleAnyway (a score) */
  hard: boolean
  minDomains: number
  honorAffinity: boolean
  honorTaints: boolean
  /** whether the pod itself matches the selector */
  selfMatch: boolean
}

/** The labels of a namespace, for namespaceSelector (undefined: unknown). */
export type NamespaceLabels = (namespace: string) => Record<string, string> | undefined

/** `selector` with `key In (v)` (or NotIn) added for each key of `keys` the pod has a label for. */
function mergeLabelKeys (selector: LabelSelector | undefined, keys: unknown, labels: Record<string, string>, operator: 'In' | 'NotIn'): LabelSelector | undefined {
  if (selector === undefined || !Array.isArray(keys)) return selector
  const extra: LabelSelectorRequirement[] = []
  for (const k of keys) {
    const v = typeof k === 'string' ? labels[k] : undefined
    if (v !== undefined) extra.push({ key: k as string, operator, values: [v] })
  }
  return extra.length === 0 ? selector : { ...selector, matchExpressions: [...(selector.matchExpressions ?? []), ...extra] }
}

function objectOrUndefined<T extends object> (v: T | null | undefined): T | undefined {
  return typeof v === 'object' && v !== null ? v : undefined
}

function compileTerm (t: PodAffinityTerm, namespace: string, labels: Record<string, string>): AffinityTerm {
  let selector = objectOrUndefined(t.labelSelector)
  selector = mergeLabelKeys(selector, t.matchLabelKeys, labels, 'In')
  selector = mergeLabelKeys(selector, t.mismatchLabelKeys, labels, 'NotIn')
  const nsSelector = objectOrUndefined(t.namespaceSelector)
  const listed = Array.isArray(t.namespaces) ? t.namespaces.filter(n => typeof n === 'string' && n !== '') : []
  // neither namespaces nor a namespaceSelector: the pod's own namespace
  const namespaces = new Set(listed.length === 0 && nsSelector === undefined ? [namespace] : listed)
  const topologyKey = typeof t.topologyKey === 'string' ? t.topologyKey : ''
  const sig = JSON.stringify([selector ?? null, [...namespaces].sort(), nsSelector ?? null, topologyKey])
  return { sig, selector, namespaces, nsSelector, topologyKey }
}

function termsOf<T> (v: T[] | null | undefined): T[] {
  return Array.isArray(v) ? v.filter(x => typeof x === 'object' && x !== null) : []
}

function weighted (a: PodAffinity | undefined, namespace: string, labels: Record<string, string>): WeightedTerm[] {
  const out: WeightedTerm[] = []
  for (const w of termsOf(a?.preferredDuringSchedulingIgnoredDuringExecution)) {
    const term = objectOrUndefined(w.podAffinityTerm)
    if (term !== undefined && typeof w.weight === 'number') out.push({ weight: w.weight, term: compileTerm(term, namespace, labels) })
  }
  return out
}

/** The pod's inter-pod affinity, or undefined when it has no term at all. */
export function podAffinityOf (spec: PodSpec | undefined, namespace: string, labels: Record<string, string>): PodAffinityInfo | undefined {
  const aff = objectOrUndefined(spec?.affinity?.podAffinity)
  const anti = objectOrUndefined(spec?.affinity?.podAntiAffinity)
  if (aff === undefined && anti === undefined) return undefined
  const info: PodAffinityInfo = {
    requiredAffinity: termsOf(aff?.requiredDuringSchedulingIgnoredDuringExecution).map(t => compileTerm(t, namespace, labels)),
    requiredAnti: termsOf(anti?.requiredDuringSchedulingIgnoredDuringExecution).map(t => compileTerm(t, namespace, labels)),
    preferredAffinity: weighted(aff, namespace, labels),
    preferredAnti: weighted(anti, namespace, labels)
  }
  const empty = info.requiredAffinity.length + info.requiredAnti.length + info.preferredAffinity.length + info.preferredAnti.length === 0
  return empty ? undefined : info
}

function compileConstraint (c: TopologySpreadConstraint, namespace: string, labels: Record<string, string>): SpreadConstraint {
  const selector = mergeLabelKeys(objectOrUndefined(c.labelSelector), c.matchLabelKeys, labels, 'In')
  return {
    sig: JSON.stringify([namespace, selector ?? null]),
    namespace,
    selector,
    topologyKey: typeof c.topologyKey === 'string' ? c.topologyKey : '',
    maxSkew: typeof c.maxSkew === 'number' ? c.maxSkew : 1,
    hard: c.whenUnsatisfiable !== 'ScheduleAnyway',
    minDomains: typeof c.minDomains === 'number' ? c.minDomains : 1,
    honorAffinity: c.nodeAffinityPolicy !== 'Ignore',
    honorTaints: c.nodeTaintsPolicy === 'Honor',
    selfMatch: selector !== undefined && matchLabelSelector(selector, labels)
  }
}

/** The pod's topology spread constraints, or undefined for none. */
export function spreadOf (spec: PodSpec | undefined, namespace: string, labels: Record<string, string>): SpreadConstraint[] | undefined {
  const list = termsOf(spec?.topologySpreadConstraints).map(c => compileConstraint(c, namespace, labels))
  return list.length === 0 ? undefined : list
}

/** Kubernetes' AffinityTerm.Matches: the pod is in one of the term's namespaces and has the labels it selects. */
export function termMatches (t: AffinityTerm, namespace: string, labels: Record<string, string>, nsLabels: NamespaceLabels): boolean {
  if (t.selector === undefined) return false
  if (!t.namespaces.has(namespace) && (t.nsSelector === undefined || !matchLabelSelector(t.nsSelector, nsLabels(namespace) ?? {}))) return false
  return matchLabelSelector(t.selector, labels)
}

/** Whether a pod matches every one of `terms` (false for none), as Kubernetes' podMatchesAllAffinityTerms. */
export function matchesAllTerms (terms: AffinityTerm[], namespace: string, labels: Record<string, string>, nsLabels: NamespaceLabels): boolean {
  if (terms.length === 0) return false
  for (const t of terms) if (!termMatches(t, namespace, labels, nsLabels)) return false
  return true
}
