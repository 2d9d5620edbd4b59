// The batch group's kinds (`/apis/batch/v1`) as Shoal stores and serves
// them, in the shapes of k8s.io/api/batch/v1: Job and CronJob. Only the
// fields Shoal reads or writes are typed; the store keeps every other valid
// field as it came.
// May import: ./k8s.ts, ./core-v1.ts.
import type { ObjectReference, PodTemplateSpec } from './core-v1.ts'
import type { LabelSelector, ObjectMeta, TypedObject } from './k8s.ts'

export interface PodFailurePolicyOnExitCodes {
  containerName?: string
  operator: 'In' | 'NotIn'
  values: number[]
}

export interface PodFailurePolicyOnPodCondition { type: string, status?: 'True' | 'False' | 'Unknown' }

export interface PodFailurePolicyRule {
  action: 'FailJob' | 'FailIndex' | 'Ignore' | 'Count'
  onExitCodes?: PodFailurePolicyOnExitCodes
  onPodConditions?: PodFailurePolicyOnPodCondition[]
}

export interface SuccessPolicyRule {
  /** an interval list such as `0,2-4` (Indexed Jobs only) */
  succeededIndexes?: string
  succeededCount?: number
}

export interface JobSpec {
  parallelism?: number
  completions?: number
  activeDeadlineSeconds?: number
  podFailurePolicy?: { rules: PodFailurePolicyRule[] }
  successPolicy?: { rules: SuccessPolicyRule[] }
  backoffLimit?: number
  backoffLimitPerIndex?: number
  maxFailedIndexes?: number
  selector?: LabelSelector
  manualSelector?: boolean
  template: PodTemplateSpec
  ttlSecondsAfterFinished?: number
  completionMode?: 'NonIndexed' | 'Indexed'
  suspend?: boolean
  podReplacementPolicy?: 'TerminatingOrFailed' | 'Failed'
  managedBy?: string
}

export type JobConditionType = 'Complete' | 'Failed' | 'Suspended' | 'FailureTarget' | 'SuccessCriteriaMet'

export interface JobCondition {
  type: JobConditionType
  status: 'True' | 'False' | 'Unknown'
  reason?: string
  message?: string
  lastProbeTime?: string
  lastTransitionTime?: string
}

export interface JobStatus {
  conditions?: JobCondition[]
  startTime?: string
  completionTime?: string
  active?: number
  succeeded?: number
  failed?: number
  terminating?: number
  ready?: number
  /** interval lists, `1,3-5` (Indexed Jobs) */
  completedIndexes?: string
  failedIndexes?: string
  /** uids of finished pods counted in no total yet: the job-tracking finalizer's bookkeeping */
  uncountedTerminatedPods?: { succeeded?: string[], failed?: string[] }
}

export type Job = TypedObject<'batch/v1', 'Job'> & { spec?: JobSpec, status?: JobStatus }

export interface JobTemplateSpec { metadata?: ObjectMeta, spec?: JobSpec }

export interface CronJobSpec {
  schedule: string
  timeZone?: string
  startingDeadlineSeconds?: number
  concurrencyPolicy?: 'Allow' | 'Forbid' | 'Replace'
  suspend?: boolean
  jobTemplate: JobTemplateSpec
  successfulJobsHistoryLimit?: number
  failedJobsHistoryLimit?: number
}

export interface CronJobStatus {
  active?: ObjectReference[]
  lastScheduleTime?: string
  lastSuccessfulTime?: string
}

export type CronJob = TypedObject<'batch/v1', 'CronJob'> & { spec?: CronJobSpec, status?: CronJobStatus }

/** The finalizer that keeps a Job's finished pods until the Job controller has counted them. */
export const JOB_TRACKING_FINALIZER = 'batch.kubernetes.io/job-tracking'
/** The annotation (and label) with an Indexed Job pod's index. */
export const JOB_COMPLETION_INDEX = 'batch.kubernetes.io/job-completion-index'
/** The annotation on a Job made by a CronJob: the scheduled time it was made for. */
export const CRONJOB_SCHEDULED_TIMESTAMP = 'batch.kubernetes.io/cronjob-scheduled-timestamp'
