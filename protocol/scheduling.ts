// Where a pod may run, as Kubernetes' shared scheduling helpers
// (k8s.io/component-helpers/scheduling/corev1) answer it for the scheduler
// and the DaemonSet controller alike: whether a toleration tolerates a
// taint, the first taint a pod does not tolerate, and whether a node
// passes a pod's nodeSelector and required node affinity (matchExpressions
// on labels, matchFields on metadata.name). Also the taints Kubernetes
// puts on a node from its conditions and cordon (TaintNodesByCondition),
// which Shoal derives instead of writing. Pure, over untrusted JSON: a
// stored list may hold nulls.
// May import: ./core-v1.ts (types).
import type { Node, NodeSelectorRequirement, NodeSelectorTerm, PodSpec, Taint, Toleration } from './core-v1.ts'

/** What node affinity looks at: the node's name (matchFields) and labels (matchExpressions, nodeSelector). */
export interface NodeIdentity { name: string, labels: Record<string, string> }

export const TAINT_NOT_READY = 'node.kubernetes.io/not-ready'
export const TAINT_UNREACHABLE = 'node.kubernetes.io/unreachable'
export const TAINT_UNSCHEDULABLE = 'node.kubernetes.io/unschedulable'
export const TAINT_DISK_PRESSURE = 'node.kubernetes.io/disk-pressure'
export const TAINT_MEMORY_PRESSURE = 'node.kubernetes.io/memory-pressure'
export const TAINT_PID_PRESSURE = 'node.kubernetes.io/pid-pressure'
export const TAINT_NETWORK_UNAVAILABLE = 'node.kubernetes.io/network-unavailable'

function objects<T extends object> (v: T[] | null | undefined): T[] {
  return Array.isArray(v) ? v.filter(x => typeof x === 'object' && x !== null) : []
}

/** Kubernetes' ToleratesTaint. */
export function tolerates (t: Toleration, taint: Taint): boolean {
  if (t.effect !== undefined && t.effect !== '' && t.effect !== taint.effect) return false
  if (t.key !== undefined && t.key !== '' && t.key !== taint.key) return false
  // Widened to string: the switch says what any other value means.
  const operator: string = t.operator ?? 'Equal'
  switch (operator) {
    case 'Exists': return true
    case 'Equal': case '': return (t.value ?? '') === (taint.value ?? '')
    default: return false
  }
}

/** The first of `taints` (those `only` selects, if given) that none of `tolerations` tolerates: Kubernetes' FindMatchingUntoleratedTaint. */
export function untolerated (taints: Taint[], tolerations: Toleration[], only?: (taint: Taint) => boolean): Taint | undefined {
  for (const taint of taints) {
    if (only !== undefined && !only(taint)) continue
    if (!tolerations.some(t => tolerates(t, taint))) return taint
  }
  return undefined
}

function matchRequirement (r: NodeSelectorRequirement, value: string | undefined): boolean {
  const values = Array.isArray(r.values) ? r.values : []
  switch (r.operator) {
    case 'In': return value !== undefined && values.includes(value)
    case 'NotIn': return value === undefined || !values.includes(value)
    case 'Exists': return value !== undefined
    case 'DoesNotExist': return value === undefined
    case 'Gt': case 'Lt': {
      const bound = values[0]
      if (value === undefined || values.length !== 1 || bound === undefined || !/^-?[0-9]+$/.test(value) || !/^-?[0-9]+$/.test(bound)) return false
      const have = Number(value)
      const want = Number(bound)
      return r.operator === 'Gt' ? have > want : have < want
    }
    default: return false
  }
}

/** One node selector term: its expressions (and fields) ANDed; an empty term matches nothing, as in Kubernetes. */
export function matchTerm (term: NodeSelectorTerm, n: NodeIdentity): boolean {
  const exprs = objects(term.matchExpressions)
  const fields = objects(term.matchFields)
  if (exprs.length === 0 && fields.length === 0) return false
  for (const r of exprs) if (!matchRequirement(r, n.labels[r.key])) return false
  for (const r of fields) if (!matchRequirement(r, r.key === 'metadata.name' ? n.name : undefined)) return false
  return true
}

/** Whether `n` passes the pod's nodeSelector and its required node affinity (any term): Kubernetes' GetRequiredNodeAffinity(pod).Match(node). */
export function matchesRequiredNodeAffinity (spec: PodSpec | undefined, n: NodeIdentity): boolean {
  const selector = spec?.nodeSelector
  if (typeof selector === 'object' && selector !== null) {
    for (const [k, v] of Object.entries(selector)) if (n.labels[k] !== v) return false
  }
  const required = spec?.affinity?.nodeAffinity?.requiredDuringSchedulingIgnoredDuringExecution
  // a null (the store keeps one) is no requirement
  if (typeof required !== 'object' || required === null || !Array.isArray(required.nodeSelectorTerms)) return true
  return objects(required.nodeSelectorTerms).some(t => matchTerm(t, n))
}

/** A Node's name and labels, for matching. */
export function nodeIdentity (node: Node): NodeIdentity {
  const labels = node.metadata.labels
  return { name: node.metadata.name ?? '', labels: typeof labels === 'object' && labels !== null ? labels : {} }
}

/**
 * The node's NoSchedule and NoExecute taints with those Kubernetes' node
 * lifecycle controller would add (TaintNodesByCondition, taint-based
 * eviction): not-ready when Ready is False or missing, unreachable when it
 * is Unknown, unschedulable when cordoned. Shoal writes none of these, so
 * whoever decides placement derives them here.
 */
export function effectiveTaints (node: Node): Taint[] {
  const taints = objects(node.spec?.taints).filter(t => t.effect === 'NoSchedule' || t.effect === 'NoExecute')
  const has = (key: string, effect: Taint['effect']): boolean => taints.some(t => t.key === key && t.effect === effect)
  const add = (key: string, effect: Taint['effect']): void => { if (!has(key, effect)) taints.push({ key, effect }) }
  const ready = objects(node.status?.conditions).find(c => c.type === 'Ready')?.status
  if (ready === 'Unknown') {
    add(TAINT_UNREACHABLE, 'NoSchedule')
    add(TAINT_UNREACHABLE, 'NoExecute')
  } else if (ready !== 'True') {
    add(TAINT_NOT_READY, 'NoSchedule')
    add(TAINT_NOT_READY, 'NoExecute')
  }
  if (node.spec?.unschedulable === true) add(TAINT_UNSCHEDULABLE, 'NoSchedule')
  return taints
}
