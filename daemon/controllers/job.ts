// The Job controller (leader only), as Kubernetes' pkg/controller/job: runs
// a Job's pods until enough succeed (completions; parallelism at once, never
// more than the completions left), or until it fails (backoffLimit,
// backoffLimitPerIndex and maxFailedIndexes, activeDeadlineSeconds, a
// podFailurePolicy FailJob rule). Indexed Jobs run each index 0..completions-1
// until one pod of it succeeds: the pod carries the index as an annotation
// and a label, JOB_COMPLETION_INDEX from a fieldRef to the annotation, and the
// hostname `<job>-<index>`. A suspended Job has its active pods deleted.
// Failed pods are replaced after an exponential back-off (10 s doubling,
// capped at 6 min; per index with backoffLimitPerIndex).
//
// Counting is exact across leader changes, with Kubernetes' finalizer
// tracking: every pod is created with the batch.kubernetes.io/job-tracking
// finalizer; a finished pod's uid is first written to
// status.uncountedTerminatedPods (an Indexed Job's succeeded index to
// status.completedIndexes), then its finalizer is removed, then the uid moves
// into status.succeeded or status.failed. Each step is one write (status
// writes carry the Job's resourceVersion), and each is level-triggered from
// the replica: a pod without the finalizer is never counted again, a uid in
// the uncounted lists never added twice, and a uid whose pod has lost its
// finalizer (or is gone) is counted by whoever leads next. The finished
// condition (Complete, or Failed after FailureTarget; Complete after
// SuccessCriteriaMet) is written only once nothing is uncounted and no pod
// is terminating. Pods left with the finalizer by a deleted or finished Job
// (or owned by none) have it removed, so that the store can let them go.
// May import: protocol/, daemon/store/types.ts, daemon/workqueue, daemon/clock, ./framework.ts, ./replicaset.ts, ./hash.ts, ./job-model.ts.
import type { Job, JobCondition, JobStatus } from '../../protocol/batch-v1.ts'
import { JOB_COMPLETION_INDEX, JOB_TRACKING_FINALIZER } from '../../protocol/batch-v1.ts'
import type { Container, ContainerStatus, Pod } from '../../protocol/core-v1.ts'
import { JOB, POD } from '../../protocol/kinds.ts'
import type { ObjectMeta, WatchEvent } from '../../protocol/k8s.ts'
import { matchLabelSelector } from '../../protocol/selector.ts'
import type { Watch } from '../store/types.ts'
import { keyOf, splitKey, WorkQueue } from '../workqueue/queue.ts'
import type { Controller, ControllerContext } from './framework.ts'
import { canonicalJson } from './hash.ts'
import { controllerRefOf, deletionOrder, isPodActive, isPodReady, mustWrite, numberOr, ownerRefTo, podRef } from './replicaset.ts'
import { EVENT_BURST, EVENT_REFILL_MS, INT32_MAX, Indexes, JOB_INDEX_FAILURE_COUNT, JOB_INDEX_IGNORED_FAILURE_COUNT, MAX_GENERATED_NAME, Wakeups, annotationCount, backoffRemaining, completionIndex, conditionTrue, ensureCondition, finishedAt, hasTracking, isJobFinished, isManagedElsewhere, isPodFailed, isTerminating, listOf, matchPodFailurePolicy, newCondition, nextBackoff, parseTime, shapeOf } from './job-model.ts'
import type { BackoffRecord, JobShape, PolicyMatch } from './job-model.ts'

// ---- the controller ------------------------------------------------------------------------

export interface JobControllerOptions {
  /** most pods created or deleted per sync of one Job (default 500, Kubernetes' MaxPodCreateDeletePerSync) */
  burst?: number
  /** most uids in status.uncountedTerminatedPods (default 500, Kubernetes' MaxUncountedPods) */
  maxUncounted?: number
  /** first back-off before a failed pod is replaced (default 10 s), doubling up to maxBackoffMs (default 6 min) */
  backoffMs?: number
  maxBackoffMs?: number
  /** Jobs synced at once (default 5, Kubernetes' --concurrent-job-syncs) */
  workers?: number
  /** first retry delay of the work queue after a failed sync (default 50 ms) */
  retryMs?: number
}

/** What one sync has found and decided so far (Kubernetes' syncJobCtx). */
interface SyncState {
  key: string
  job: Job
  shape: JobShape
  /** the status being built, written as a whole */
  st: JobStatus
  pods: Pod[]
  active: Pod[]
  terminating: number
  ready: number
  uncounted: { succeeded: Set<string>, failed: Set<string> }
  succeeded: number
  failed: number
  prevSucceededIndexes: Indexes
  succeededIndexes: Indexes
  failedIndexes: Indexes | undefined
  /** per index, the last failed pod kept (its finalizer not removed) until its replacement exists */
  delayed: Map<number, Pod>
  /** the condition this sync is heading for: an interim one (FailureTarget, SuccessCriteriaMet) or a final one */
  finished: JobCondition | undefined
  backoff: BackoffRecord
  /** a write failed: retry the sync */
  failedWrite: boolean
}

class Aborted extends Error {}

export class JobController implements Controller {
  readonly name = 'job-controller'
  private readonly burst: number
  private readonly maxUncounted: number
  private readonly backoffMs: number
  private readonly maxBackoffMs: number
  private readonly workers: number
  private readonly retryMs: number
  private queue: WorkQueue | undefined
  private orphans: WorkQueue | undefined
  private wakeups: Wakeups | undefined
  private watches: Watch[] = []
  /** back-off records per Job key, kept while leading (seeded from the Job's pods after a leader change) */
  private readonly backoffs = new Map<string, BackoffRecord>()
  /** the spam filter's token buckets of pod Events, per Job and reason */
  private readonly eventTokens = new Map<string, { tokens: number, at: number }>()
  /** Jobs whose last pod creation failed: their next creations start slowly */
  private readonly failedCreates = new Set<string>()
  /** bumped by stop(): a sync still running from before stops at its next write */
  private epoch = 0

  constructor (opts: JobControllerOptions = {}) {
    this.burst = Math.max(1, opts.burst ?? 500)
    this.maxUncounted = Math.max(1, opts.maxUncounted ?? 500)
    this.backoffMs = opts.backoffMs ?? 10_000
    this.maxBackoffMs = opts.maxBackoffMs ?? 360_000
    this.workers = Math.max(1, opts.workers ?? 5)
    this.retryMs = opts.retryMs ?? 50
  }

  start (ctx: ControllerContext): void {
    this.stop()
    const epoch = this.epoch
    const queue: WorkQueue = this.queue = new WorkQueue({
      clock: ctx.clock,
      log: ctx.log,
      name: this.name,
      workers: this.workers,
      baseDelayMs: this.retryMs,
      maxDelayMs: 60_000,
      reconcile: async key => await this.sync(ctx, key, epoch)
    })
    const orphans: WorkQueue = this.orphans = new WorkQueue({
      clock: ctx.clock, log: ctx.log, name: `${this.name}-orphans`, baseDelayMs: this.retryMs, reconcile: async key => await this.syncOrphan(ctx, key)
    })
    this.wakeups = new Wakeups(ctx.clock, key => { queue.add(key) })
    this.watches.push(ctx.store.watch(JOB, {}, e => {
      if (e.type === 'ERROR' || e.type === 'BOOKMARK') return
      queue.add(keyOf(e.object))
      // A deleted or finished Job's pods keep no finalizer of ours.
      if (e.type === 'DELETED' || isJobFinished(e.object)) this.cleanupFinalizers(ctx, orphans, e.object)
    }))
    this.watches.push(ctx.store.watch(POD, {}, e => { this.onPod(ctx, queue, orphans, e) }))
  }

  stop (): void {
    this.epoch++
    for (const w of this.watches) w.stop()
    this.watches = []
    this.queue?.stop()
    this.orphans?.stop()
    this.wakeups?.clear()
    this.queue = this.orphans = this.wakeups = undefined
    this.backoffs.clear()
    this.failedCreates.clear()
  }

  /** A pod wakes the Job that controls it; an orphan (or a pod of a Job gone or finished) with our finalizer has it removed. */
  private onPod (ctx: ControllerContext, queue: WorkQueue, orphans: WorkQueue, e: WatchEvent<Pod>): void {
    if (e.type === 'ERROR' || e.type === 'BOOKMARK') return
    const pod = e.object
    const ns = pod.metadata.namespace ?? 'default'
    const owner = controllerRefOf(pod)
    const tracked = e.type !== 'DELETED' && hasTracking(pod)
    if (owner !== undefined) {
      if (owner.kind !== 'Job' || owner.apiVersion !== 'batch/v1') return
      const job = ctx.store.get(JOB, ns, owner.name)
      if (job === undefined || job.metadata.uid !== owner.uid || isJobFinished(job)) {
        if (tracked) orphans.add(keyOf(pod))
        return
      }
      queue.add(`${ns}/${owner.name}`)
      return
    }
    if (tracked) orphans.add(keyOf(pod))
    if (e.type === 'DELETED' || pod.metadata.deletionTimestamp !== undefined) return
    // An orphan: any Job whose selector takes it may adopt it.
    for (const job of ctx.store.list(JOB, { namespace: ns }).items) {
      if (job.spec?.selector !== undefined && matchLabelSelector(job.spec.selector, pod.metadata.labels)) queue.add(keyOf(job))
    }
  }

  private cleanupFinalizers (ctx: ControllerContext, orphans: WorkQueue, job: Job): void {
    const uid = job.metadata.uid
    for (const p of ctx.store.list(POD, { namespace: job.metadata.namespace ?? 'default' }).items) {
      if (hasTracking(p) && controllerRefOf(p)?.uid === uid) orphans.add(keyOf(p))
    }
  }

  /** Removes our finalizer from a pod no unfinished Job of ours controls. */
  private async syncOrphan (ctx: ControllerContext, key: string): Promise<boolean> {
    const { namespace, name } = splitKey(key)
    const pod = ctx.store.get(POD, namespace, name)
    if (pod === undefined || !hasTracking(pod)) return true
    const owner = controllerRefOf(pod)
    if (owner !== undefined) {
      if (owner.kind !== 'Job' || owner.apiVersion !== 'batch/v1') return true
      const job = ctx.store.get(JOB, namespace, owner.name)
      if (job !== undefined && job.metadata.uid === owner.uid && (isManagedElsewhere(job) || !isJobFinished(job))) return true
    }
    return await this.removeFinalizer(ctx, pod)
  }

  private async removeFinalizer (ctx: ControllerContext, pod: Pod): Promise<boolean> {
    const r = await ctx.write({
      op: 'patch',
      ref: podRef(pod),
      patchType: 'strategic',
      patch: { metadata: { uid: pod.metadata.uid, [`$deleteFromPrimitiveList/finalizers`]: [JOB_TRACKING_FINALIZER] } },
      now: ctx.now()
    })
    return r.ok || r.status.code === 404 || r.status.code === 409
  }

  private check (epoch: number): void {
    if (epoch !== this.epoch) throw new Aborted('the controller stopped')
  }

  // ---- one sync: Kubernetes' syncJob ----

  private async sync (ctx: ControllerContext, key: string, epoch: number): Promise<boolean> {
    const { namespace, name } = splitKey(key)
    const job = ctx.store.get(JOB, namespace, name)
    if (job === undefined) {
      this.backoffs.delete(key)
      return true
    }
    if (isManagedElsewhere(job)) return true
    if (isJobFinished(job)) {
      this.backoffs.delete(key)
      return true
    }
    try {
      const s = await this.prepare(ctx, key, job, epoch)
      this.decideFailure(ctx, s)
      if (s.shape.indexed) this.evaluateIndexes(ctx, s)
      if (s.finished !== undefined) {
        await this.deleteActivePods(ctx, s, epoch)
      } else {
        const managed = job.metadata.deletionTimestamp === undefined
        if (managed) await this.manageJob(ctx, s, epoch)
        const { completions } = s.shape
        const done = s.active.length === 0 && (completions === undefined ? s.succeeded > 0 : s.succeeded >= completions)
        if (done) s.finished = newCondition('SuccessCriteriaMet', 'True', 'CompletionsReached', 'Reached expected number of succeeded pods', ctx.now())
        else if (managed) this.suspendCondition(ctx, s)
      }
      s.st.active = s.active.length
      s.st.ready = s.ready
      s.st.terminating = s.terminating
      await this.trackStatus(ctx, s, epoch)
      return !s.failedWrite
    } catch (err) {
      if (err instanceof Aborted) return true
      throw err
    }
  }

  /** The Job's pods (adopting orphans its selector takes) and what they count for. */
  private async prepare (ctx: ControllerContext, key: string, job: Job, epoch: number): Promise<SyncState> {
    const shape = shapeOf(job)
    const st: JobStatus = structuredClone(job.status ?? {}) as JobStatus
    const unc = st.uncountedTerminatedPods ?? {}
    const uncounted = { succeeded: new Set(listOfStrings(unc.succeeded)), failed: new Set(listOfStrings(unc.failed)) }
    st.uncountedTerminatedPods = { succeeded: [...uncounted.succeeded], failed: [...uncounted.failed] }
    const pods = await this.claimPods(ctx, job, epoch)
    const active = pods.filter(isPodActive)
    const s: SyncState = {
      key,
      job,
      shape,
      st,
      pods,
      active,
      terminating: pods.filter(isTerminating).length,
      ready: active.filter(isPodReady).length,
      uncounted,
      succeeded: 0,
      failed: 0,
      prevSucceededIndexes: new Indexes(),
      succeededIndexes: new Indexes(),
      failedIndexes: undefined,
      delayed: new Map(),
      finished: undefined,
      backoff: { failures: 0 },
      failedWrite: false
    }
    const { newSucceeded, newFailed } = this.newFinishedPods(s)
    s.succeeded = numberOr(st.succeeded) + newSucceeded.length + uncounted.succeeded.size
    s.failed = numberOr(st.failed) + newFailed.filter(p => this.policyOf(s, p).count).length + uncounted.failed.size
    if (st.startTime === undefined && !shape.suspended) st.startTime = ctx.now()
    const prev = this.backoffs.get(key)
    // After a leader change the record is rebuilt from the pods still there.
    s.backoff = prev !== undefined
      ? nextBackoff(prev, newSucceeded, newFailed)
      : nextBackoff({ failures: 0 }, pods.filter(p => p.status?.phase === 'Succeeded'), pods.filter(p => isPodFailed(p, shape)))
    return s
  }

  private policyOf (s: SyncState, p: Pod): PolicyMatch {
    return s.job.spec?.podFailurePolicy === undefined ? { count: true } : matchPodFailurePolicy(s.job, p)
  }

  /** Pods that finished and are counted nowhere yet: they still hold the finalizer and are in no uncounted list. */
  private newFinishedPods (s: SyncState): { newSucceeded: Pod[], newFailed: Pod[] } {
    const newSucceeded: Pod[] = []
    const newFailed: Pod[] = []
    for (const p of s.pods) {
      if (!hasTracking(p) || !this.validIndex(s, p)) continue
      const uid = p.metadata.uid ?? ''
      if (p.status?.phase === 'Succeeded') {
        if (!s.uncounted.succeeded.has(uid)) newSucceeded.push(p)
      } else if (isPodFailed(p, s.shape) && !s.uncounted.failed.has(uid)) {
        newFailed.push(p)
      }
    }
    return { newSucceeded, newFailed }
  }

  /** For an Indexed Job, whether the pod has an index in range; any pod of a NonIndexed one. */
  private validIndex (s: SyncState, p: Pod): boolean {
    if (!s.shape.indexed) return true
    const ix = completionIndex(p)
    return ix >= 0 && ix < (s.shape.completions ?? 0)
  }

  /** FailureTarget: from a podFailurePolicy FailJob rule, the back-off limit or the deadline (in that order, as Kubernetes). */
  private decideFailure (ctx: ControllerContext, s: SyncState): void {
    const { st, shape } = s
    const met = conditionTrue(st, 'SuccessCriteriaMet')
    if (met !== undefined) {
      s.finished = met
      return
    }
    const target = conditionTrue(st, 'FailureTarget')
    if (target !== undefined) {
      s.finished = newCondition('Failed', 'True', target.reason ?? '', target.message ?? '', ctx.now())
      return
    }
    if (s.job.spec?.podFailurePolicy !== undefined) {
      for (const p of s.pods) {
        const message = isPodFailed(p, shape) ? matchPodFailurePolicy(s.job, p).failJob : undefined
        if (message !== undefined) {
          s.finished = newCondition('FailureTarget', 'True', 'PodFailurePolicy', message, ctx.now())
          return
        }
      }
    }
    if (s.failed > shape.backoffLimit || this.pastBackoffLimitOnFailure(s)) {
      s.finished = newCondition('FailureTarget', 'True', 'BackoffLimitExceeded', 'Job has reached the specified backoff limit', ctx.now())
      return
    }
    const start = parseTime(st.startTime)
    if (shape.deadlineSeconds === undefined || start === undefined || shape.suspended) return
    const left = start + shape.deadlineSeconds * 1000 - ctx.clock.now()
    if (left <= 0) s.finished = newCondition('FailureTarget', 'True', 'DeadlineExceeded', 'Job was active longer than specified deadline', ctx.now())
    else this.wakeups?.after(s.key, left)
  }

  /** With restartPolicy OnFailure, the containers' restarts count against backoffLimit. */
  private pastBackoffLimitOnFailure (s: SyncState): boolean {
    if (s.shape.restartPolicy !== 'OnFailure') return false
    let restarts = 0
    for (const p of s.pods) {
      if (p.status?.phase !== 'Running' && p.status?.phase !== 'Pending') continue
      for (const c of [...listOf<ContainerStatus>(p.status.initContainerStatuses), ...listOf<ContainerStatus>(p.status.containerStatuses)]) restarts += numberOr(c.restartCount)
    }
    return s.shape.backoffLimit === 0 ? restarts > 0 : restarts >= s.shape.backoffLimit
  }

  /** Indexed Jobs: succeeded and failed indexes, maxFailedIndexes, the success policy. */
  private evaluateIndexes (ctx: ControllerContext, s: SyncState): void {
    const completions = s.shape.completions ?? 0
    s.prevSucceededIndexes = Indexes.parse(s.st.completedIndexes, completions)
    const fresh = s.pods.filter(p => p.status?.phase === 'Succeeded' && hasTracking(p) && this.validIndex(s, p)).map(completionIndex)
    s.succeededIndexes = s.prevSucceededIndexes.with(fresh)
    s.succeeded = s.succeededIndexes.total()
    if (s.shape.perIndex !== undefined) {
      const failed = s.pods.filter(p => hasTracking(p) && this.validIndex(s, p) && this.isIndexFailed(s, p)).map(completionIndex)
      s.failedIndexes = Indexes.parse(s.st.failedIndexes, completions).with(failed)
      const nFailed = s.failedIndexes.total()
      if (s.finished === undefined) {
        if (s.shape.maxFailedIndexes !== undefined && nFailed > s.shape.maxFailedIndexes) {
          s.finished = newCondition('FailureTarget', 'True', 'MaxFailedIndexesExceeded', 'Job has exceeded the specified maximal number of failed indexes', ctx.now())
        } else if (nFailed > 0 && nFailed + s.succeededIndexes.total() >= completions) {
          s.finished = newCondition('FailureTarget', 'True', 'FailedIndexes', 'Job has failed indexes', ctx.now())
        }
      }
      s.delayed = this.delayedDeletions(s)
    }
    if (s.finished === undefined) {
      const msg = this.matchSuccessPolicy(s)
      if (msg !== undefined) s.finished = newCondition('SuccessCriteriaMet', 'True', 'SuccessPolicy', msg, ctx.now())
    }
  }

  /** Whether this failed pod fails its index: a FailIndex rule, or as many counted failures as backoffLimitPerIndex before it. */
  private isIndexFailed (s: SyncState, p: Pod): boolean {
    if (!isPodFailed(p, s.shape)) return false
    const m = this.policyOf(s, p)
    if (m.action === 'FailIndex') return true
    return m.count && annotationCount(p, JOB_INDEX_FAILURE_COUNT) >= (s.shape.perIndex ?? INT32_MAX)
  }

  /**
   * Per index with no active pod and not yet decided, the last failed pod:
   * its finalizer stays until its replacement is made, which takes its
   * failure counts from it (Kubernetes' podsWithDelayedDeletionPerIndex).
   */
  private delayedDeletions (s: SyncState): Map<number, Pod> {
    const activeIx = new Set(s.active.map(completionIndex))
    const out = new Map<number, Pod>()
    for (const p of s.pods) {
      if (!hasTracking(p) || !this.validIndex(s, p) || !isPodFailed(p, s.shape)) continue
      const ix = completionIndex(p)
      if (s.succeededIndexes.has(ix) || s.failedIndexes?.has(ix) === true || activeIx.has(ix)) continue
      const cur = out.get(ix)
      const total = (q: Pod): number => annotationCount(q, JOB_INDEX_FAILURE_COUNT) + annotationCount(q, JOB_INDEX_IGNORED_FAILURE_COUNT)
      if (cur === undefined || (total(cur) <= total(p) && finishedAt(p) >= finishedAt(cur))) out.set(ix, p)
    }
    return out
  }

  /** The message of the first successPolicy rule the succeeded indexes meet, if any. */
  private matchSuccessPolicy (s: SyncState): string | undefined {
    const rules = listOf<{ succeededIndexes?: string, succeededCount?: number }>(s.job.spec?.successPolicy?.rules)
    if (rules.length === 0 || s.succeededIndexes.total() === 0) return undefined
    const completions = s.shape.completions ?? 0
    for (const [i, rule] of rules.entries()) {
      const count = typeof rule.succeededCount === 'number' ? rule.succeededCount : undefined
      if (typeof rule.succeededIndexes === 'string') {
        const required = Indexes.parse(rule.succeededIndexes, completions)
        if (required.total() === 0) continue
        let contains = 0
        for (const [a, b] of required.list) for (let ix = a; ix <= b; ix++) if (s.succeededIndexes.has(ix)) contains++
        if (contains === required.total() || (count !== undefined && contains >= count)) return `Matched rules at index ${i}`
      } else if (count !== undefined && s.succeededIndexes.total() >= count) {
        return `Matched rules at index ${i}`
      }
    }
    return undefined
  }

  /** Suspended True while suspended, False once resumed (and then startTime starts again). */
  private suspendCondition (ctx: ControllerContext, s: SyncState): void {
    const now = ctx.now()
    if (s.shape.suspended) {
      const changed = ensureCondition(s.st, newCondition('Suspended', 'True', 'JobSuspended', 'Job suspended', now))
      if (changed) void ctx.events.record({ object: s.job, type: 'Normal', reason: 'Suspended', message: 'Job suspended', component: this.name })
      return
    }
    const changed = ensureCondition(s.st, newCondition('Suspended', 'False', 'JobResumed', 'Job resumed', now))
    if (changed) {
      // activeDeadlineSeconds counts the time the Job runs without a break.
      s.st.startTime = now
      void ctx.events.record({ object: s.job, type: 'Normal', reason: 'Resumed', message: 'Job resumed', component: this.name })
    }
  }

  // ---- pods: claim, create, delete ----

  /** Pods this Job controls; orphans its selector takes are adopted (an owner reference and our finalizer added). */
  private async claimPods (ctx: ControllerContext, job: Job, epoch: number): Promise<Pod[]> {
    const uid = job.metadata.uid
    const out: Pod[] = []
    const selector = job.spec?.selector
    for (const p of ctx.store.list(POD, { namespace: job.metadata.namespace ?? 'default' }).items) {
      const owner = controllerRefOf(p)
      if (owner?.uid === uid) {
        out.push(p)
        continue
      }
      if (owner !== undefined || selector === undefined || p.metadata.deletionTimestamp !== undefined || job.metadata.deletionTimestamp !== undefined) continue
      if (!matchLabelSelector(selector, p.metadata.labels)) continue
      this.check(epoch)
      const finalizers = [...(p.metadata.finalizers ?? []).filter(f => f !== JOB_TRACKING_FINALIZER), JOB_TRACKING_FINALIZER]
      const r = await ctx.write<Pod>({
        op: 'patch',
        ref: podRef(p),
        patchType: 'merge',
        patch: { metadata: { resourceVersion: p.metadata.resourceVersion, ownerReferences: [...(p.metadata.ownerReferences ?? []), ownerRefTo(job)], finalizers } },
        now: ctx.now()
      })
      if (r.ok) out.push(r.object)
    }
    return out
  }

  /** Kubernetes' manageJob: deletes surplus (or, suspended, all) active pods, or creates what is missing. */
  private async manageJob (ctx: ControllerContext, s: SyncState, epoch: number): Promise<void> {
    const { shape } = s
    const active = s.active.length
    if (shape.suspended) {
      await this.deleteJobPods(ctx, s, this.forRemoval(s, active), epoch)
      return
    }
    const want = shape.completions === undefined
      ? (s.succeeded > 0 ? active : shape.parallelism)
      : Math.max(0, Math.min(shape.parallelism, shape.completions - s.succeeded))
    const surplus = this.forRemoval(s, Math.max(0, active - want)).slice(0, this.burst)
    if (surplus.length > 0) {
      // Deleting and creating in one sync are never both done (duplicate indexes): deletion first.
      await this.deleteJobPods(ctx, s, surplus, epoch)
      return
    }
    let diff = want - (shape.onlyReplaceFailed ? s.terminating : 0) - active
    if (diff <= 0) return
    if (shape.perIndex === undefined) {
      const left = backoffRemaining(s.backoff.failures, s.backoff.lastFailureMs, ctx.clock.now(), this.backoffMs, this.maxBackoffMs)
      if (left > 0) {
        this.wakeups?.after(s.key, Math.max(left, 1))
        return
      }
    }
    diff = Math.min(diff, this.burst)
    let indexes: Array<number | undefined> = Array.from({ length: diff }, () => undefined)
    if (shape.indexed) {
      indexes = this.pendingIndexes(s, diff)
      if (shape.perIndex !== undefined) {
        const ready = this.indexesPastBackoff(ctx, s, indexes as number[])
        if (ready.length === 0) return
        indexes = ready
      }
    }
    await this.createPods(ctx, s, indexes, epoch)
  }

  /** Active pods to delete: for an Indexed Job those without a valid index and repeats first, then the least useful. */
  private forRemoval (s: SyncState, atLeast: number): Pod[] {
    const rm: Pod[] = []
    let left = s.active
    if (s.shape.indexed) {
      left = []
      const byIndex = new Map<number, Pod[]>()
      for (const p of s.active) {
        const ix = completionIndex(p)
        if (ix < 0 || ix >= (s.shape.completions ?? 0)) rm.push(p)
        else byIndex.set(ix, [...(byIndex.get(ix) ?? []), p])
      }
      for (const group of byIndex.values()) {
        const sorted = [...group].sort(deletionOrder)
        rm.push(...sorted.slice(0, -1))
        left.push(sorted.at(-1) as Pod)
      }
    }
    if (rm.length < atLeast) rm.push(...[...left].sort(deletionOrder).slice(0, atLeast - rm.length))
    return rm
  }

  /** The lowest `count` indexes that have not succeeded, failed or an active pod (nor, replacing only failed pods, a terminating one). */
  private pendingIndexes (s: SyncState, count: number): number[] {
    const busy = s.active.map(completionIndex).filter(ix => ix >= 0)
    if (s.shape.onlyReplaceFailed) busy.push(...s.pods.filter(isTerminating).map(completionIndex).filter(ix => ix >= 0))
    let taken = s.succeededIndexes.with(busy)
    if (s.failedIndexes !== undefined) taken = taken.merge(s.failedIndexes)
    const out: number[] = []
    for (let ix = 0; ix < (s.shape.completions ?? 0) && out.length < count; ix++) if (!taken.has(ix)) out.push(ix)
    return out
  }

  /** With backoffLimitPerIndex: the indexes whose own back-off has passed (a wake-up for the soonest other). */
  private indexesPastBackoff (ctx: ControllerContext, s: SyncState, indexes: number[]): number[] {
    const now = ctx.clock.now()
    const ready: number[] = []
    let soonest: number | undefined
    for (const ix of indexes) {
      const last = s.delayed.get(ix)
      const left = last === undefined
        ? 0
        : backoffRemaining(annotationCount(last, JOB_INDEX_FAILURE_COUNT) + annotationCount(last, JOB_INDEX_IGNORED_FAILURE_COUNT) + 1, finishedAt(last), now, this.backoffMs, this.maxBackoffMs)
      if (left === 0) ready.push(ix)
      else soonest = Math.min(soonest ?? left, left)
    }
    if (ready.length === 0 && soonest !== undefined) this.wakeups?.after(s.key, soonest)
    return ready
  }

  /**
   * Creates a pod per entry (an index, or undefined), all at once; after a
   * failed create, in slow-start batches of 1, 2, 4, … as Kubernetes always
   * does (each batch is a Raft round here, too dear while nothing fails);
   * stops at the first failing batch.
   */
  private async createPods (ctx: ControllerContext, s: SyncState, indexes: Array<number | undefined>, epoch: number): Promise<void> {
    let next = 0
    const slow = this.failedCreates.has(s.key)
    for (let batch = slow ? 1 : indexes.length; next < indexes.length; batch *= 2) {
      this.check(epoch)
      const chunk = indexes.slice(next, next + batch)
      next += chunk.length
      const made = await Promise.all(chunk.map(async ix => {
        try {
          const pod = await mustWrite<Pod>(ctx, { op: 'create', object: this.podFor(s, ix), uid: ctx.uid(), now: ctx.now() })
          this.podEvent(ctx, s, 'Normal', 'SuccessfulCreate', `Created pod: ${pod.metadata.name ?? ''}`)
          return pod
        } catch (err) {
          this.podEvent(ctx, s, 'Warning', 'FailedCreate', `Error creating: ${(err as Error).message}`)
          return undefined
        }
      }))
      for (const p of made) if (p !== undefined) s.active.push(p)
      if (made.includes(undefined)) {
        s.failedWrite = true
        this.failedCreates.add(s.key)
        return
      }
    }
    this.failedCreates.delete(s.key)
  }

  /** A new pod from the Job's template: our finalizer, owned by the Job; for an index, its annotation, label, env and hostname. */
  private podFor (s: SyncState, ix: number | undefined): Pod {
    const { job } = s
    const template = structuredClone(job.spec?.template ?? {})
    const tmeta: ObjectMeta = template.metadata ?? {}
    const jobName = job.metadata.name ?? 'job'
    const spec = template.spec ?? { containers: [] }
    const metadata: ObjectMeta = {
      generateName: `${jobName}-`,
      namespace: job.metadata.namespace ?? 'default',
      ownerReferences: [ownerRefTo(job)],
      finalizers: [...(tmeta.finalizers ?? []).filter(f => f !== JOB_TRACKING_FINALIZER), JOB_TRACKING_FINALIZER]
    }
    if (tmeta.labels !== undefined) metadata.labels = tmeta.labels
    if (tmeta.annotations !== undefined) metadata.annotations = tmeta.annotations
    if (ix !== undefined) {
      metadata.annotations = { ...metadata.annotations, [JOB_COMPLETION_INDEX]: String(ix) }
      metadata.labels = { ...metadata.labels, [JOB_COMPLETION_INDEX]: String(ix) }
      const suffix = `-${ix}-`
      metadata.generateName = `${jobName}${suffix}`.length > MAX_GENERATED_NAME ? jobName.slice(0, MAX_GENERATED_NAME - suffix.length) + suffix : `${jobName}${suffix}`
      spec.hostname = `${jobName}-${ix}`
      for (const c of [...(spec.initContainers ?? []), ...(spec.containers ?? [])]) addIndexEnv(c)
      if (s.shape.perIndex !== undefined) Object.assign(metadata.annotations, this.failureCounts(s, s.delayed.get(ix)))
    }
    return { apiVersion: 'v1', kind: 'Pod', metadata, spec }
  }

  /** The failure-count annotations of a replacement for `replaced` (the index's last failed pod), as Kubernetes'. */
  private failureCounts (s: SyncState, replaced: Pod | undefined): Record<string, string> {
    let failures = 0
    let ignored = 0
    if (replaced !== undefined) {
      failures = annotationCount(replaced, JOB_INDEX_FAILURE_COUNT)
      ignored = annotationCount(replaced, JOB_INDEX_IGNORED_FAILURE_COUNT)
      if (this.policyOf(s, replaced).count) failures++
      else ignored++
    }
    return { [JOB_INDEX_FAILURE_COUNT]: String(failures), ...(ignored > 0 ? { [JOB_INDEX_IGNORED_FAILURE_COUNT]: String(ignored) } : {}) }
  }

  /** Deletes pods for suspension or surplus: their finalizer goes first, so that they count as no failure. */
  private async deleteJobPods (ctx: ControllerContext, s: SyncState, pods: Pod[], epoch: number): Promise<void> {
    if (pods.length === 0) return
    this.check(epoch)
    const done = await Promise.all(pods.map(async p => {
      if (hasTracking(p) && !(await this.removeFinalizer(ctx, p))) {
        s.failedWrite = true
        return false
      }
      return await this.deletePod(ctx, s, p)
    }))
    this.dropActive(s, pods.filter((_, i) => done[i] === true), false)
  }

  /** Deletes every active pod of a Job that is finishing; they keep the finalizer and are counted (as failed, unless it succeeds). */
  private async deleteActivePods (ctx: ControllerContext, s: SyncState, epoch: number): Promise<void> {
    const pods = [...s.active]
    if (pods.length === 0) return
    this.check(epoch)
    const done = await Promise.all(pods.map(async p => await this.deletePod(ctx, s, p)))
    this.dropActive(s, pods.filter((_, i) => done[i] === true), true)
    // Not all gone: the Job cannot be declared finished yet.
    if (done.includes(false)) s.finished = undefined
  }

  private async deletePod (ctx: ControllerContext, s: SyncState, p: Pod): Promise<boolean> {
    const r = await ctx.write({ op: 'delete', ref: podRef(p), now: ctx.now(), preconditions: { uid: p.metadata.uid ?? '' } })
    if (r.ok || r.status.code === 404) {
      if (r.ok) this.podEvent(ctx, s, 'Normal', 'SuccessfulDelete', `Deleted pod: ${p.metadata.name ?? ''}`)
      return true
    }
    s.failedWrite = true
    this.podEvent(ctx, s, 'Warning', 'FailedDelete', `Error deleting: ${r.status.message ?? ''}`)
    return false
  }

  /**
   * An Event about one of the Job's pods, through client-go's spam filter
   * (per Job and reason, a burst of 25, then one per 5 minutes): a Job of
   * a thousand pods records a few dozen, not a thousand writes.
   */
  private podEvent (ctx: ControllerContext, s: SyncState, type: 'Normal' | 'Warning', reason: string, message: string): void {
    const key = `${s.job.metadata.uid ?? ''}/${reason}`
    const now = ctx.clock.now()
    const b = this.eventTokens.get(key) ?? { tokens: EVENT_BURST, at: now }
    b.tokens = Math.min(EVENT_BURST, b.tokens + (now - b.at) / EVENT_REFILL_MS)
    b.at = now
    this.eventTokens.set(key, b)
    if (this.eventTokens.size > 10_000) this.eventTokens.delete(this.eventTokens.keys().next().value as string)
    if (b.tokens < 1) return
    b.tokens--
    void ctx.events.record({ object: s.job, type, reason, message, component: this.name })
  }

  private dropActive (s: SyncState, gone: Pod[], terminating: boolean): void {
    const uids = new Set(gone.map(p => p.metadata.uid))
    s.active = s.active.filter(p => !uids.has(p.metadata.uid))
    s.ready -= gone.filter(isPodReady).length
    if (terminating) s.terminating += gone.length
  }

  // ---- counting: Kubernetes' trackJobStatusAndRemoveFinalizers ----

  /**
   * Adds newly finished pods to the uncounted lists (and succeeded indexes
   * to completedIndexes) and writes that; then removes their finalizers;
   * then moves every uncounted uid whose pod holds the finalizer no more
   * into the counts, adds the final condition when it is due, and writes.
   */
  private async trackStatus (ctx: ControllerContext, s: SyncState, epoch: number): Promise<void> {
    const withFinalizer = new Set(s.pods.filter(hasTracking).map(p => p.metadata.uid ?? ''))
    countUncounted(s.st, withFinalizer)
    const { toRemove, reachedMax } = this.listFinished(s)
    this.interimCondition(ctx, s)
    // Step 1: the uncounted uids (and the interim condition) are stored before any finalizer goes.
    this.check(epoch)
    if (await this.flush(ctx, s)) this.backoffs.set(s.key, s.backoff)
    // Step 2: the finalizers.
    const removed = await Promise.all(toRemove.map(async p => await this.removeFinalizer(ctx, p)))
    toRemove.forEach((p, i) => { if (removed[i] === true) withFinalizer.delete(p.metadata.uid ?? '') })
    if (removed.includes(false)) s.failedWrite = true
    // Step 3: the counts, and the final condition once nothing is left uncounted or terminating.
    // The counts alone wait for the next sync's first write (the finalizers'
    // removal wakes one): one Raft round less per sync, and as exact.
    countUncounted(s.st, withFinalizer)
    if (reachedMax || s.failedWrite || !this.enactFinished(ctx, s)) return
    await this.flush(ctx, s)
  }

  /**
   * The pods whose finalizer may go, each finished one added to the
   * uncounted lists (or, succeeded in an Indexed Job, to completedIndexes),
   * at most maxUncounted at a time (reachedMax: more are left for the next sync).
   */
  private listFinished (s: SyncState): { toRemove: Pod[], reachedMax: boolean } {
    const { st, shape } = s
    const unc = st.uncountedTerminatedPods as { succeeded: string[], failed: string[] }
    const toRemove: Pod[] = []
    const newIndexes: number[] = []
    let reachedMax = false
    const pods = shape.indexed ? [...s.pods].sort((a, b) => completionIndex(a) - completionIndex(b)) : s.pods
    for (const p of pods) {
      if (!hasTracking(p)) continue
      const failed = isPodFailed(p, shape)
      if (!this.canRemoveFinalizer(s, p, failed)) continue
      toRemove.push(p)
      const uid = p.metadata.uid ?? ''
      if (p.status?.phase === 'Succeeded' && !s.uncounted.failed.has(uid)) {
        if (shape.indexed) {
          const ix = completionIndex(p)
          if (this.validIndex(s, p) && !s.prevSucceededIndexes.has(ix)) newIndexes.push(ix)
        } else if (!s.uncounted.succeeded.has(uid)) {
          unc.succeeded.push(uid)
        }
      } else if (failed || (s.finished !== undefined && s.finished.type !== 'SuccessCriteriaMet')) {
        // Once the Job is finishing, every pod not terminated counts as failed.
        if (!s.uncounted.failed.has(uid) && this.validIndex(s, p) && this.policyOf(s, p).count) unc.failed.push(uid)
        if (shape.perIndex !== undefined && this.validIndex(s, p) && this.isIndexFailed(s, p)) {
          s.failedIndexes = (s.failedIndexes ?? new Indexes()).with([completionIndex(p)])
        }
      }
      if (newIndexes.length + unc.succeeded.length + unc.failed.length >= this.maxUncounted) {
        reachedMax = true
        break
      }
    }
    if (shape.indexed) {
      s.succeededIndexes = s.succeededIndexes.with(newIndexes)
      st.completedIndexes = s.succeededIndexes.toString()
      st.succeeded = s.succeededIndexes.total()
      if (s.failedIndexes !== undefined) st.failedIndexes = s.failedIndexes.toString()
    }
    return { toRemove, reachedMax }
  }

  /** Kubernetes' canRemoveFinalizer. */
  private canRemoveFinalizer (s: SyncState, p: Pod, failed: boolean): boolean {
    if (s.job.metadata.deletionTimestamp !== undefined || s.finished !== undefined || p.status?.phase === 'Succeeded') return true
    if (!failed) return false
    if (s.shape.perIndex !== undefined && s.delayed.get(completionIndex(p))?.metadata.uid === p.metadata.uid) return false
    return true
  }

  /** FailureTarget and SuccessCriteriaMet are written first; the final Failed or Complete follows them. */
  private interimCondition (ctx: ControllerContext, s: SyncState): void {
    const f = s.finished
    if (f === undefined) return
    if (f.type === 'FailureTarget') {
      ensureCondition(s.st, f)
      s.finished = newCondition('Failed', 'True', f.reason ?? '', f.message ?? '', ctx.now())
    } else if (f.type === 'SuccessCriteriaMet') {
      if (conditionTrue(s.st, 'SuccessCriteriaMet') === undefined) ensureCondition(s.st, f)
      s.finished = newCondition('Complete', 'True', f.reason ?? '', f.message ?? '', ctx.now())
    }
  }

  /** Adds the final condition (and completionTime) once no pod is uncounted or terminating; true if it did. */
  private enactFinished (ctx: ControllerContext, s: SyncState): boolean {
    const f = s.finished
    const unc = s.st.uncountedTerminatedPods
    if (f === undefined || (unc?.succeeded?.length ?? 0) + (unc?.failed?.length ?? 0) > 0 || s.terminating > 0) return false
    ensureCondition(s.st, f)
    if (f.type === 'Complete') s.st.completionTime = f.lastTransitionTime
    const { completions } = s.shape
    if (f.type === 'Complete') {
      if (completions !== undefined && numberOr(s.st.succeeded) > completions) {
        void ctx.events.record({ object: s.job, type: 'Warning', reason: 'TooManySucceededPods', message: 'Too many succeeded pods running after completion count reached', component: this.name })
      }
      void ctx.events.record({ object: s.job, type: 'Normal', reason: 'Completed', message: 'Job completed', component: this.name })
    } else {
      void ctx.events.record({ object: s.job, type: 'Warning', reason: f.reason ?? 'Failed', message: f.message ?? '', component: this.name })
    }
    this.backoffs.delete(s.key)
    return true
  }

  /** Writes the status if it changed (with the Job's resourceVersion: a conflict fails the sync); true if written. */
  private async flush (ctx: ControllerContext, s: SyncState): Promise<boolean> {
    const status = compactStatus(s.st)
    if (canonicalJson(status) === canonicalJson(s.job.status ?? {})) return false
    s.job = await mustWrite<Job>(ctx, { op: 'update', subresource: 'status', object: { ...s.job, status }, now: ctx.now() })
    return true
  }
}

function listOfStrings (v: unknown): string[] {
  return Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : []
}

/** Moves the uncounted uids whose pods hold the finalizer no more into succeeded and failed. */
function countUncounted (st: JobStatus, withFinalizer: Set<string>): void {
  const unc = st.uncountedTerminatedPods as { succeeded: string[], failed: string[] }
  const keepS = unc.succeeded.filter(u => withFinalizer.has(u))
  const keepF = unc.failed.filter(u => withFinalizer.has(u))
  st.succeeded = numberOr(st.succeeded) + unc.succeeded.length - keepS.length
  st.failed = numberOr(st.failed) + unc.failed.length - keepF.length
  unc.succeeded = keepS
  unc.failed = keepF
}

/** The status as Kubernetes serializes it: zero counts and empty lists left out. */
function compactStatus (st: JobStatus): JobStatus {
  const out: JobStatus = { ...st }
  for (const f of ['active', 'succeeded', 'failed'] as const) if (numberOr(out[f]) === 0) delete out[f]
  const unc = st.uncountedTerminatedPods ?? {}
  out.uncountedTerminatedPods = {
    ...((unc.succeeded?.length ?? 0) > 0 ? { succeeded: [...(unc.succeeded ?? [])] } : {}),
    ...((unc.failed?.length ?? 0) > 0 ? { failed: [...(unc.failed ?? [])] } : {})
  }
  if ((out.conditions ?? []).length === 0) delete out.conditions
  if (out.completedIndexes === '') delete out.completedIndexes
  return out
}

/** JOB_COMPLETION_INDEX from the pod's index annotation, unless the container sets it itself. */
function addIndexEnv (c: Container): void {
  const env = c.env ?? (c.env = [])
  if (env.some(v => v.name === 'JOB_COMPLETION_INDEX')) return
  env.push({ name: 'JOB_COMPLETION_INDEX', valueFrom: { fieldRef: { fieldPath: `metadata.annotations['${JOB_COMPLETION_INDEX}']` } } })
}
