// The eviction subresource inside the store's apply (`POST
// …/pods/{name}/eviction`), as kube-apiserver's EvictionREST decides it,
// but as one log entry: the pod's budgets are found, the eviction refused
// (429 when the budget allows no disruption, 500 when more than one budget
// covers the pod) or the budget's status.disruptionsAllowed decremented,
// the pod recorded in its status.disruptedPods and the pod deleted, all in
// one transaction. Two peers evicting at once so cannot both spend the last
// allowed disruption: the second entry sees the first one's decrement.
// A pod that is Pending, finished or already terminating is deleted without
// a budget check; an unready one under a budget that is met (or with
// unhealthyPodEvictionPolicy AlwaysAllow) is deleted without spending one.
// May import: protocol/, ./tx.ts, ./types.ts.
import type { StatusBody } from '../../protocol/api.ts'
import type { Pod } from '../../protocol/core-v1.ts'
import type { KObject } from '../../protocol/k8s.ts'
import { POD, POD_DISRUPTION_BUDGET } from '../../protocol/kinds.ts'
import {
  budgetSelects, disruptionAllowedCondition, DISRUPTION_BUDGET_CAUSE, MAX_DISRUPTED_PODS
} from '../../protocol/policy-v1.ts'
import type { PodDisruptionBudget, PodDisruptionBudgetStatus } from '../../protocol/policy-v1.ts'
import { badRequest, conflict, forbidden, notFound, statusOf } from '../../protocol/status.ts'
import { objectKey } from './tx.ts'
import type { Tx } from './tx.ts'
import type { StoreCommand, StoreResult } from './types.ts'

export type EvictCommand = Extract<StoreCommand, { op: 'evict' }>

/** What the store lends the eviction: its own delete and status update, so that they stay the only ways objects change. */
export interface EvictOps {
  /** deletes the pod as the delete command does (Background), answering it as the delete left it */
  deletePod: (key: string, pod: Pod) => KObject
  /** replaces a budget's status as an update of its status subresource does */
  writeStatus: (key: string, cur: PodDisruptionBudget, next: PodDisruptionBudget) => StoreResult
}

/** A refused eviction's Status: Kubernetes' body, with details (causes, retryAfterSeconds) where it has them. */
export type EvictionStatus = StatusBody & { details?: { causes?: Array<{ reason: string, message: string }>, retryAfterSeconds?: number } }

export const EVICTION_REFUSED = "Cannot evict pod as it would violate the pod's disruption budget."
export const MORE_THAN_ONE_BUDGET = 'This pod has more than one PodDisruptionBudget, which the eviction subresource does not support.'

const fail = (status: EvictionStatus): StoreResult => ({ ok: false, status })

function num (v: unknown): number {
  return typeof v === 'number' && Number.isFinite(v) ? v : 0
}

function isReady (pod: Pod): boolean {
  const conditions = pod.status?.conditions
  return Array.isArray(conditions) && conditions.some(c => c?.type === 'Ready' && c.status === 'True')
}

/** Pods whose eviction need not ask a budget: finished, not yet running, or already going. */
function canIgnoreBudget (pod: Pod): boolean {
  const phase = pod.status?.phase
  return phase === 'Succeeded' || phase === 'Failed' || phase === 'Pending' || pod.metadata.deletionTimestamp !== undefined
}

function tooManyRequests (cause: string, retryAfterSeconds: number): EvictionStatus {
  return {
    ...statusOf(429, 'TooManyRequests', EVICTION_REFUSED),
    details: { causes: [{ reason: DISRUPTION_BUDGET_CAUSE, message: cause }], ...(retryAfterSeconds > 0 ? { retryAfterSeconds } : {}) }
  }
}

/** Applies an evict command to `tx`; total, like every command. */
export function evict (tx: Tx, cmd: EvictCommand, ops: EvictOps): StoreResult {
  const { ref } = cmd
  if (ref.group !== '' || ref.resource !== 'pods') return fail(badRequest(`only pods can be evicted, not ${ref.resource}`))
  const namespace = ref.namespace ?? 'default'
  const key = objectKey(namespace, ref.name)
  const pod = tx.get(POD, key)
  if (pod === undefined) return fail(notFound(POD, ref.name))
  const pre = cmd.preconditions ?? {}
  if (typeof pre.uid === 'string' && pre.uid !== pod.metadata.uid) {
    return fail(conflict(POD, ref.name, `Precondition failed: UID in precondition: ${pre.uid}, UID in object meta: ${pod.metadata.uid ?? ''}`))
  }
  if (typeof pre.resourceVersion === 'string' && pre.resourceVersion !== pod.metadata.resourceVersion) {
    return fail(conflict(POD, ref.name, `Precondition failed: ResourceVersion in precondition: ${pre.resourceVersion}, ResourceVersion in object meta: ${pod.metadata.resourceVersion ?? ''}`))
  }
  // The grace period asked for travels on the deleted pod (its DELETED event, or the pod a finalizer holds).
  const grace = cmd.gracePeriodSeconds
  const going: Pod = grace === undefined || grace === null ? pod : { ...pod, metadata: { ...pod.metadata, deletionGracePeriodSeconds: grace } }
  const remove = (): StoreResult => ({ ok: true, object: ops.deletePod(key, going) })
  if (canIgnoreBudget(pod)) return remove()

  const budgets = tx.all([POD_DISRUPTION_BUDGET])
    .filter(s => s.object.metadata.namespace === namespace && budgetSelects(s.object as PodDisruptionBudget, pod.metadata.labels))
  if (budgets.length > 1) return fail(statusOf(500, 'InternalError', MORE_THAN_ONE_BUDGET))
  const [found] = budgets
  if (found === undefined) return remove()
  const pdb = found.object as PodDisruptionBudget
  const name = pdb.metadata.name ?? ''
  const status: Partial<PodDisruptionBudgetStatus> = typeof pdb.status === 'object' && pdb.status !== null ? pdb.status : {}
  const allowed = num(status.disruptionsAllowed)
  const current = num(status.currentHealthy)
  const desired = num(status.desiredHealthy)

  // An unready pod does not count as healthy: deleting it spends nothing when the budget is met anyway.
  if (!isReady(pod)) {
    if (pdb.spec?.unhealthyPodEvictionPolicy === 'AlwaysAllow') return remove()
    if (current >= desired && desired > 0) return remove()
  }
  if (num(status.observedGeneration) < (pdb.metadata.generation ?? 1)) {
    return fail(tooManyRequests(`The disruption budget ${name} is still being processed by the server.`, 10))
  }
  if (allowed < 0) return fail(forbidden(`poddisruptionbudgets.policy "${name}" is forbidden: pdb disruptions allowed is negative`))
  const disrupted = typeof status.disruptedPods === 'object' && status.disruptedPods !== null ? status.disruptedPods : {}
  if (Object.keys(disrupted).length > MAX_DISRUPTED_PODS) {
    return fail(forbidden(`poddisruptionbudgets.policy "${name}" is forbidden: DisruptedPods map too big - too many evictions not confirmed by PDB controller`))
  }
  if (allowed === 0) return fail(tooManyRequests(`The disruption budget ${name} needs ${desired} healthy pods and has ${current} currently`, 0))

  const next: PodDisruptionBudgetStatus = {
    ...status,
    disruptionsAllowed: allowed - 1,
    currentHealthy: current,
    desiredHealthy: desired,
    expectedPods: num(status.expectedPods),
    disruptedPods: { ...disrupted, [ref.name]: cmd.now }
  }
  if (next.disruptionsAllowed === 0) next.conditions = disruptionAllowedCondition(next, cmd.now)
  const written = ops.writeStatus(found.key, pdb, { ...pdb, status: next })
  if (!written.ok) return written
  return remove()
}
