// The policy group's kinds (`/apis/policy/v1`): PodDisruptionBudget, and the
// Eviction that `POST …/pods/<name>/eviction` takes, in the shapes of
// k8s.io/api/policy/v1; and the rules the eviction subresource (in the
// store's apply) and the disruption controller share: which pods a budget
// selects, its DisruptionAllowed condition, when an evicted pod stops counting.
// May import: ./k8s.ts, ./core-v1.ts, ./apps-v1.ts (types), ./selector.ts.
import type { IntOrString } from './core-v1.ts'
import type { LabelSelector, ObjectMeta, TypedObject } from './k8s.ts'
import type { WorkloadCondition } from './apps-v1.ts'
import { matchLabelSelector } from './selector.ts'

export interface PodDisruptionBudgetSpec {
  minAvailable?: IntOrString
  maxUnavailable?: IntOrString
  selector?: LabelSelector
  unhealthyPodEvictionPolicy?: 'IfHealthyBudget' | 'AlwaysAllow'
}

export interface PodDisruptionBudgetStatus {
  observedGeneration?: number
  /** pods evicted but not yet gone: name to the time of the eviction */
  disruptedPods?: Record<string, string>
  disruptionsAllowed: number
  currentHealthy: number
  desiredHealthy: number
  expectedPods: number
  conditions?: BudgetCondition[]
}

/** A metav1.Condition, as a budget's status carries it. */
export type BudgetCondition = WorkloadCondition & { observedGeneration?: number }

export type PodDisruptionBudget = TypedObject<'policy/v1', 'PodDisruptionBudget'> & { spec?: PodDisruptionBudgetSpec, status?: PodDisruptionBudgetStatus }

/** What an eviction request carries. */
export type Eviction = TypedObject<'policy/v1', 'Eviction'> & {
  deleteOptions?: { gracePeriodSeconds?: number, preconditions?: { uid?: string, resourceVersion?: string }, dryRun?: string[] }
} & { metadata: ObjectMeta }

/** The condition type and its reasons (k8s.io/api/policy/v1). */
export const DISRUPTION_ALLOWED = 'DisruptionAllowed'
export const SUFFICIENT_PODS = 'SufficientPods'
export const INSUFFICIENT_PODS = 'InsufficientPods'
export const SYNC_FAILED = 'SyncFailed'
/** The cause type of a refused eviction's Status. */
export const DISRUPTION_BUDGET_CAUSE = 'DisruptionBudget'
/** How long an evicted pod is counted as about to go (the disruption controller's DeletionTimeout). */
export const DELETION_TIMEOUT_MS = 2 * 60 * 1000
/** At most this many evictions may wait for the controller to see them (the eviction subresource's MaxDisruptedPodSize). */
export const MAX_DISRUPTED_PODS = 2000

/**
 * Whether the budget covers a pod with these labels (same namespace
 * assumed): a missing selector selects nothing; in policy/v1 an empty one
 * selects every pod of the namespace.
 */
export function budgetSelects (pdb: PodDisruptionBudget, labels: Record<string, string> | undefined): boolean {
  const selector = pdb.spec?.selector
  return selector !== undefined && selector !== null && matchLabelSelector(selector, labels)
}

/**
 * Sets (or adds) the condition of `type` as apimeta.SetStatusCondition
 * does: lastTransitionTime moves to `now` only when the status changes.
 * Answers a new list; `conditions` may be anything (a status is only checked to be an object).
 */
export function withCondition (conditions: unknown, c: BudgetCondition, now: string): BudgetCondition[] {
  const list: BudgetCondition[] = Array.isArray(conditions) ? conditions.filter(x => typeof x === 'object' && x !== null) : []
  const old = list.find(x => x.type === c.type)
  const next: BudgetCondition = { ...c, lastTransitionTime: old !== undefined && old.status === c.status && typeof old.lastTransitionTime === 'string' ? old.lastTransitionTime : now }
  return old === undefined ? [...list, next] : list.map(x => x === old ? next : x)
}

/** The DisruptionAllowed condition for a status (pdbhelper.UpdateDisruptionAllowedCondition). */
export function disruptionAllowedCondition (status: PodDisruptionBudgetStatus, now: string): BudgetCondition[] {
  const allowed = status.disruptionsAllowed > 0
  return withCondition(status.conditions, {
    type: DISRUPTION_ALLOWED,
    status: allowed ? 'True' : 'False',
    reason: allowed ? SUFFICIENT_PODS : INSUFFICIENT_PODS,
    message: '',
    ...(status.observedGeneration !== undefined ? { observedGeneration: status.observedGeneration } : {})
  }, now)
}
