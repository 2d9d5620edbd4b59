// The Job controller's pure parts (./job.ts runs them): indexes as
// Kubernetes' interval lists, what a pod says about itself (its index,
// whether it is tracked, finished, terminating), the Job's shape and
// conditions, the pod failure policy, the back-off before a failed pod is
// replaced, and the per-Job wake-up timers on the injected clock.
// May import: protocol/, daemon/clock, ./replicaset.ts.
import type { Job, JobCondition, JobConditionType, JobStatus, PodFailurePolicyOnExitCodes, PodFailurePolicyOnPodCondition } from '../../protocol/batch-v1.ts'
import { JOB_COMPLETION_INDEX, JOB_TRACKING_FINALIZER } from '../../protocol/batch-v1.ts'
import type { Container, ContainerStatus, Pod, PodCondition } from '../../protocol/core-v1.ts'
import type { Clock, TimerHandle } from '../clock/clock.ts'
import { numberOr } from './replicaset.ts'

/** How many times an index's pods failed (counted), and were ignored by the podFailurePolicy, before this pod. */
export const JOB_INDEX_FAILURE_COUNT = 'batch.kubernetes.io/job-index-failure-count'
export const JOB_INDEX_IGNORED_FAILURE_COUNT = 'batch.kubernetes.io/job-index-ignored-failure-count'
/** The value of spec.managedBy this controller serves (or none). */
export const MANAGED_BY = 'kubernetes.io/job-controller'
/** apiserver's MaxGeneratedNameLength: a generateName is cut to this before its 5-character suffix. */
export const MAX_GENERATED_NAME = 58
export const INT32_MAX = 2147483647
/** client-go's EventSourceObjectSpamFilter: a burst of 25 Events per object, refilled one per 5 minutes */
export const EVENT_BURST = 25
export const EVENT_REFILL_MS = 300_000

// ---- indexes as interval lists ---------------------------------------------------

type Interval = [number, number]

/** Sorted, disjoint, non-adjacent intervals of indexes, as Kubernetes' orderedIntervals; printed as `1,3-5,7`. */
export class Indexes {
  readonly list: readonly Interval[]

  constructor (list: readonly Interval[] = []) {
    this.list = list
  }

  /** Leniently, as Kubernetes reads a status: malformed parts are skipped, indexes ≥ completions dropped. */
  static parse (s: unknown, completions: number): Indexes {
    if (typeof s !== 'string' || s === '') return new Indexes()
    const found: Interval[] = []
    for (const part of s.split(',')) {
      const m = /^(\d+)(?:-(\d+))?$/.exec(part.trim())
      if (m === null) continue
      const first = Number(m[1])
      const last = Math.min(m[2] === undefined ? first : Number(m[2]), completions - 1)
      if (first < completions && last >= first) found.push([first, last])
    }
    return new Indexes().merge(new Indexes(found))
  }

  static of (indexes: Iterable<number>): Indexes {
    return new Indexes().merge(new Indexes([...indexes].map((i): Interval => [i, i])))
  }

  total (): number {
    return this.list.reduce((n, [a, b]) => n + b - a + 1, 0)
  }

  has (ix: number): boolean {
    let lo = 0
    let hi = this.list.length
    while (hi > lo) {
      const mid = (lo + hi) >> 1
      if ((this.list[mid] as Interval)[1] >= ix) hi = mid
      else lo = mid + 1
    }
    return hi < this.list.length && (this.list[hi] as Interval)[0] <= ix
  }

  merge (other: Indexes): Indexes {
    const all = [...this.list, ...other.list].sort((a, b) => a[0] - b[0])
    const out: Interval[] = []
    for (const [a, b] of all) {
      const last = out.at(-1)
      if (last !== undefined && a <= last[1] + 1) last[1] = Math.max(last[1], b)
      else out.push([a, b])
    }
    return new Indexes(out)
  }

  with (indexes: Iterable<number>): Indexes {
    return this.merge(Indexes.of(indexes))
  }

  toString (): string {
    return this.list.map(([a, b]) => a === b ? `${a}` : b === a + 1 ? `${a},${b}` : `${a}-${b}`).join(',')
  }
}

// ---- pods ----------------------------------------------------------------------------

export function hasTracking (p: Pod): boolean {
  return (p.metadata.finalizers ?? []).includes(JOB_TRACKING_FINALIZER)
}

/** The pod's completion index, or -1. */
export function completionIndex (p: Pod): number {
  const v = p.metadata.annotations?.[JOB_COMPLETION_INDEX]
  return typeof v === 'string' && /^\d{1,9}$/.test(v) ? Number(v) : -1
}

export function annotationCount (p: Pod, key: string): number {
  const v = p.metadata.annotations?.[key]
  return typeof v === 'string' && /^\d{1,10}$/.test(v) && Number(v) <= INT32_MAX ? Number(v) : 0
}

/** A status is only checked to be an object: its lists may be anything. */
export function listOf<T> (v: unknown): T[] {
  return Array.isArray(v) ? v.filter(x => typeof x === 'object' && x !== null) as T[] : []
}

export function isTerminating (p: Pod): boolean {
  const phase = p.status?.phase
  return p.metadata.deletionTimestamp !== undefined && phase !== 'Succeeded' && phase !== 'Failed'
}

export function parseTime (s: unknown): number | undefined {
  const t = typeof s === 'string' ? Date.parse(s) : NaN
  return Number.isNaN(t) ? undefined : t
}

/**
 * When the pod finished, as Kubernetes' getFinishedTime: the last container
 * to terminate, else when Ready turned False, else its deletion, else its
 * creation.
 */
export function finishedAt (p: Pod): number {
  const statuses = listOf<ContainerStatus>(p.status?.containerStatuses)
  let latest: number | undefined
  let all = statuses.length > 0
  for (const s of statuses) {
    const t = parseTime(s.state?.terminated?.finishedAt)
    if (t === undefined) { all = false; break }
    latest = Math.max(latest ?? t, t)
  }
  if (all && latest !== undefined) return latest
  const ready = listOf<PodCondition>(p.status?.conditions).find(c => c.type === 'Ready')
  if (ready?.status === 'False') {
    const t = parseTime(ready.lastTransitionTime)
    if (t !== undefined) return t
  }
  const deleted = parseTime(p.metadata.deletionTimestamp)
  if (deleted !== undefined) return deleted - numberOr(p.metadata.deletionGracePeriodSeconds) * 1000
  return parseTime(p.metadata.creationTimestamp) ?? 0
}

// ---- the Job's spec and conditions -----------------------------------------------

/** A Job's spec with Kubernetes' defaults for whatever is left out. */
export interface JobShape {
  completions: number | undefined
  parallelism: number
  backoffLimit: number
  indexed: boolean
  perIndex: number | undefined
  maxFailedIndexes: number | undefined
  suspended: boolean
  onlyReplaceFailed: boolean
  deadlineSeconds: number | undefined
  restartPolicy: string
}

export function shapeOf (job: Job): JobShape {
  const spec = job.spec
  const num = (v: unknown): number | undefined => typeof v === 'number' && Number.isFinite(v) ? v : undefined
  const indexed = spec?.completionMode === 'Indexed'
  const perIndex = indexed ? num(spec?.backoffLimitPerIndex) : undefined
  return {
    completions: num(spec?.completions),
    parallelism: num(spec?.parallelism) ?? 1,
    backoffLimit: num(spec?.backoffLimit) ?? (perIndex !== undefined ? INT32_MAX : 6),
    indexed,
    perIndex,
    maxFailedIndexes: perIndex !== undefined ? num(spec?.maxFailedIndexes) : undefined,
    suspended: spec?.suspend === true,
    onlyReplaceFailed: spec?.podReplacementPolicy === 'Failed' || spec?.podFailurePolicy !== undefined,
    deadlineSeconds: num(spec?.activeDeadlineSeconds),
    restartPolicy: spec?.template?.spec?.restartPolicy ?? 'Never'
  }
}

export function findCondition (status: JobStatus | undefined, type: JobConditionType): JobCondition | undefined {
  return listOf<JobCondition>(status?.conditions).find(c => c.type === type)
}

export function conditionTrue (status: JobStatus | undefined, type: JobConditionType): JobCondition | undefined {
  const c = findCondition(status, type)
  return c?.status === 'True' ? c : undefined
}

/** Complete or Failed: nothing more happens to it. */
export function isJobFinished (job: Job): boolean {
  return conditionTrue(job.status, 'Complete') !== undefined || conditionTrue(job.status, 'Failed') !== undefined
}

/** When it finished (its Complete or Failed condition's transition), in ms, if it did. */
export function jobFinishedAt (job: Job): number | undefined {
  const c = conditionTrue(job.status, 'Complete') ?? conditionTrue(job.status, 'Failed')
  return c === undefined ? undefined : parseTime(c.lastTransitionTime)
}

export function newCondition (type: JobConditionType, status: 'True' | 'False', reason: string, message: string, now: string): JobCondition {
  return { type, status, reason, message, lastProbeTime: now, lastTransitionTime: now }
}

/** Sets the condition of `type` (appending it unless it would be False); true if the list changed. */
export function ensureCondition (st: JobStatus, c: JobCondition): boolean {
  const list = st.conditions ?? (st.conditions = [])
  const i = list.findIndex(x => x.type === c.type)
  const cur = list[i]
  if (cur !== undefined) {
    if (cur.status === c.status && cur.reason === c.reason && cur.message === c.message) return false
    list[i] = c
    return true
  }
  if (c.status === 'False') return false
  list.push(c)
  return true
}

export function isManagedElsewhere (job: Job): boolean {
  const by = job.spec?.managedBy
  return typeof by === 'string' && by !== MANAGED_BY
}

// ---- the pod failure policy -----------------------------------------------------------

export interface PolicyMatch {
  /** set when a FailJob rule matched */
  failJob?: string
  /** whether the failure counts towards the back-off limits (not for Ignore) */
  count: boolean
  action?: 'FailJob' | 'FailIndex' | 'Ignore' | 'Count'
}

export function matchExitCodes (p: Pod, req: PodFailurePolicyOnExitCodes): ContainerStatus | undefined {
  const values = Array.isArray(req.values) ? req.values : []
  for (const s of [...listOf<ContainerStatus>(p.status?.containerStatuses), ...listOf<ContainerStatus>(p.status?.initContainerStatuses)]) {
    const code = s.state?.terminated?.exitCode
    if (typeof code !== 'number' || code === 0) continue
    if (req.containerName !== undefined && req.containerName !== s.name) continue
    if (req.operator === 'In' ? values.includes(code) : req.operator === 'NotIn' && !values.includes(code)) return s
  }
  return undefined
}

export function matchPodConditions (p: Pod, patterns: PodFailurePolicyOnPodCondition[]): PodCondition | undefined {
  return listOf<PodCondition>(p.status?.conditions).find(c => patterns.some(x => x.type === c.type && (x.status ?? 'True') === c.status))
}

/** The first rule of the Job's podFailurePolicy that matches the failed pod, as Kubernetes' matchPodFailurePolicy. */
export function matchPodFailurePolicy (job: Job, p: Pod): PolicyMatch {
  const rules = listOf<NonNullable<NonNullable<Job['spec']>['podFailurePolicy']>['rules'][number]>(job.spec?.podFailurePolicy?.rules)
  const where = `${p.metadata.namespace ?? 'default'}/${p.metadata.name ?? ''}`
  for (const [i, rule] of rules.entries()) {
    let failJob: string | undefined
    if (rule.onExitCodes !== undefined) {
      const s = matchExitCodes(p, rule.onExitCodes)
      if (s === undefined) continue
      failJob = `Container ${s.name} for pod ${where} failed with exit code ${s.state?.terminated?.exitCode ?? ''} matching FailJob rule at index ${i}`
    } else {
      const c = matchPodConditions(p, listOf<PodFailurePolicyOnPodCondition>(rule.onPodConditions))
      if (c === undefined) continue
      failJob = `Pod ${where} has condition ${c.type} matching FailJob rule at index ${i}`
    }
    switch (rule.action) {
      case 'Ignore': return { count: false, action: 'Ignore' }
      case 'Count': return { count: true, action: 'Count' }
      case 'FailIndex': return { count: true, action: 'FailIndex' }
      case 'FailJob': return { failJob, count: true, action: 'FailJob' }
    }
  }
  return { count: true }
}

/** Whether the pod counts as failed: phase Failed, or (unless only failed pods are replaced) being deleted before it succeeded. */
export function isPodFailed (p: Pod, shape: JobShape): boolean {
  const phase = p.status?.phase
  if (phase === 'Failed') return true
  if (p.metadata.deletionTimestamp === undefined || phase === 'Succeeded') return false
  // No kubelet will ever finish a pod deleted before it was bound: Kubernetes' pod GC marks it Failed.
  return !shape.onlyReplaceFailed || (p.spec?.nodeName ?? '') === ''
}

// ---- back-off before a failed pod is replaced -------------------------------------------

/** Failures since the last success, and when the last of them finished: Kubernetes' backoffRecord. */
export interface BackoffRecord { failures: number, lastFailureMs?: number }

/** The record after `succeeded` and `failed` pods finished, as Kubernetes' newBackoffRecord. */
export function nextBackoff (prev: BackoffRecord, succeeded: Pod[], failed: Pod[]): BackoffRecord {
  if (failed.length === 0) return succeeded.length === 0 ? prev : { failures: 0 }
  const times = failed.map(finishedAt).sort((a, b) => a - b)
  if (succeeded.length === 0) return { failures: prev.failures + times.length, lastFailureMs: times.at(-1) as number }
  const lastSuccess = Math.max(...succeeded.map(finishedAt))
  const after = times.filter(t => t > lastSuccess)
  return after.length === 0 ? { failures: 0 } : { failures: after.length, lastFailureMs: after.at(-1) as number }
}

/** How long until a replacement may be created after `failures` failures, the last at `lastMs`. */
export function backoffRemaining (failures: number, lastMs: number | undefined, nowMs: number, baseMs: number, maxMs: number): number {
  if (failures <= 0 || lastMs === undefined) return 0
  const delay = Math.min(maxMs, baseMs * 2 ** Math.min(failures - 1, 30))
  return Math.max(0, delay - (nowMs - lastMs))
}

// ---- wake-ups ----------------------------------------------------------------------------

/** Timers per key that keep the earliest time asked for (WorkQueue.addAfter keeps the first one set). */
export class Wakeups {
  private readonly clock: Clock
  private readonly fire: (key: string) => void
  private readonly timers = new Map<string, { at: number, handle: TimerHandle }>()

  constructor (clock: Clock, fire: (key: string) => void) {
    this.clock = clock
    this.fire = fire
  }

  after (key: string, ms: number): void {
    const at = this.clock.now() + Math.max(0, ms)
    const cur = this.timers.get(key)
    if (cur !== undefined && cur.at <= at) return
    if (cur !== undefined) this.clock.clearTimeout(cur.handle)
    const handle = this.clock.setTimeout(() => {
      this.timers.delete(key)
      this.fire(key)
    }, Math.max(0, ms))
    this.timers.set(key, { at, handle })
  }

  clear (): void {
    for (const t of this.timers.values()) this.clock.clearTimeout(t.handle)
    this.timers.clear()
  }
}
