// The policy group's kinds (`/apis/policy/v1`): PodDisruptionBudget, and the
// Eviction that `POST …/pods/<name>/eviction` takes, in the shapes of
// k8s.io/api/policy/v1.
// May import: ./k8s.ts, ./core-v1.ts.
import type { IntOrString } from './core-v1.ts'
import type { LabelSelector, ObjectMeta, TypedObject } from './k8s.ts'
import type { WorkloadCondition } from './apps-v1.ts'

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
  conditions?: WorkloadCondition[]
}

export type PodDisruptionBudget = TypedObject<'policy/v1', 'PodDisruptionBudget'> & { spec?: PodDisruptionBudgetSpec, status?: PodDisruptionBudgetStatus }

/** What an eviction request carries. */
export type Eviction = TypedObject<'policy/v1', 'Eviction'> & {
  deleteOptions?: { gracePeriodSeconds?: number, preconditions?: { uid?: string, resourceVersion?: string }, dryRun?: string[] }
} & { metadata: ObjectMeta }
