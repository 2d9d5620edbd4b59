// The CronJob controller (leader only), as Kubernetes' cronjob controller
// v2: at each scheduled time of a CronJob's schedule (5 fields or a macro,
// in spec.timeZone, UTC when unset) it makes a Job from the jobTemplate,
// named `<cronjob>-<scheduled time in minutes since the epoch>` so that a
// run is made at most once whoever leads (AlreadyExists means done), with
// the scheduled time in the batch.kubernetes.io/cronjob-scheduled-timestamp
// annotation and a controller reference to the CronJob. It honours
// concurrencyPolicy (Allow, Forbid, Replace), startingDeadlineSeconds and
// suspend; keeps status.active, lastScheduleTime and lastSuccessfulTime;
// deletes the oldest finished Jobs beyond the history limits. A schedule
// missed while nobody led is caught up once: only the most recent missed
// time runs. Each CronJob is requeued at its next scheduled time (+100 ms)
// on the injected clock.
// May import: protocol/, daemon/store/types.ts, ./framework.ts, ./replicaset.ts, ./hash.ts, daemon/workqueue, daemon/clock.
import type { CronJob, CronJobStatus, Job, JobCondition } from '../../protocol/batch-v1.ts'
import { CRONJOB_SCHEDULED_TIMESTAMP } from '../../protocol/batch-v1.ts'
import type { ObjectReference } from '../../protocol/core-v1.ts'
import { nextScheduledTime, scheduledTimes, timeZoneError } from '../../protocol/cron.ts'
import { CRON_JOB, JOB } from '../../protocol/kinds.ts'
import type { ObjectMeta, WatchEvent } from '../../protocol/k8s.ts'
import type { TimerHandle } from '../clock/clock.ts'
import type { ObjectRef, Watch } from '../store/types.ts'
import { keyOf, splitKey, WorkQueue } from '../workqueue/queue.ts'
import type { Controller, ControllerContext } from './framework.ts'
import { rfc3339 } from './framework.ts'
import { canonicalJson } from './hash.ts'
import { controllerRefOf, mustWrite, ownerRefTo, WriteFailedError } from './replicaset.ts'

const COMPONENT = 'cronjob-controller'
/** Kubernetes' nextScheduleDelta: a requeue lands this long after the scheduled time. */
const NEXT_SCHEDULE_DELTA_MS = 100
/** More unmet times than this are "too many" (a warning Event; still only the latest runs). */
const TOO_MANY_MISSED = 100

export function jobRef (namespace: string | undefined, name: string): ObjectRef {
  return { group: 'batch', resource: 'jobs', namespace: namespace ?? 'default', name }
}

/** The deterministic name of the Job for a scheduled time: `<cronjob>-<minutes since the epoch>`. */
export function jobNameFor (cronJobName: string, scheduledMs: number): string {
  return `${cronJobName}-${Math.floor(scheduledMs / 60_000)}`
}

/** `ms` as RFC 3339 in `timeZone` (UTC when undefined), as Go's time.RFC3339 writes it: `Z` for a zero offset. */
export function rfc3339In (ms: number, timeZone: string | undefined): string {
  if (timeZone === undefined || timeZone === 'UTC') return rfc3339(ms)
  const parts = new Intl.DateTimeFormat('en-US', {
    timeZone, year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit', second: '2-digit', hourCycle: 'h23', timeZoneName: 'longOffset'
  }).formatToParts(new Date(ms))
  const p = (t: string): string => parts.find(x => x.type === t)?.value ?? ''
  const offset = p('timeZoneName').replace(/^GMT/, '')
  return `${p('year')}-${p('month')}-${p('day')}T${p('hour')}:${p('minute')}:${p('second')}${/^([+-]00:00)?$/.test(offset) ? 'Z' : offset}`
}

/** Go's time.RFC1123Z of `ms` in UTC, as Kubernetes' MissSchedule Event writes it. */
function rfc1123z (ms: number): string {
  return new Date(ms).toUTCString().replace(/GMT$/, '+0000')
}

function parseTime (s: string | undefined): number | undefined {
  if (s === undefined) return undefined
  const ms = Date.parse(s)
  return Number.isNaN(ms) ? undefined : ms
}

function conditionOf (job: Job, type: 'Complete' | 'Failed'): JobCondition | undefined {
  const conditions = job.status?.conditions
  // A status is only checked to be an object: conditions may be anything.
  return Array.isArray(conditions) ? conditions.find(c => c.type === type && c.status === 'True') : undefined
}

/** 'Complete' or 'Failed' once the Job has finished (that condition is True), else undefined. */
export function finishedAs (job: Job): 'Complete' | 'Failed' | undefined {
  if (conditionOf(job, 'Complete') !== undefined) return 'Complete'
  if (conditionOf(job, 'Failed') !== undefined) return 'Failed'
  return undefined
}

/** When a completed Job completed: status.completionTime, else its Complete condition's transition. */
function completedAt (job: Job): number | undefined {
  return parseTime(job.status?.completionTime) ?? parseTime(conditionOf(job, 'Complete')?.lastTransitionTime)
}

/** Oldest first, as Kubernetes' byJobStartTime (the creation time standing in for a missing start time), then by name. */
function byStartTime (a: Job, b: Job): number {
  const at = (j: Job): string => j.status?.startTime ?? j.metadata.creationTimestamp ?? ''
  return at(a).localeCompare(at(b)) || (a.metadata.name ?? '').localeCompare(b.metadata.name ?? '')
}

/**
 * The unmet scheduled times in (afterMs, nowMs]: the latest and how many
 * (counted up to TOO_MANY_MISSED + 1). Bounded however long the gap: past
 * 100 times, the latest is found by windows doubling back from now, then
 * bisecting the first window that holds one (a few dozen steps).
 * Throws on an invalid schedule.
 */
export function unmetTimes (schedule: string, timeZone: string | undefined, afterMs: number, nowMs: number): { latest: number | undefined, count: number } {
  const first = scheduledTimes(schedule, timeZone, afterMs, nowMs, TOO_MANY_MISSED + 1)
  if (first.length <= TOO_MANY_MISSED) return { latest: first.at(-1), count: first.length }
  const anyAfter = (ms: number): boolean => scheduledTimes(schedule, timeZone, ms, nowMs, 1).length > 0
  // Times lie after lo; none after hi (up to now).
  let hi = nowMs
  let lo = nowMs
  for (let w = 60_000; ; w *= 2) {
    lo = Math.max(afterMs, nowMs - w)
    // Not empty once the window reaches afterMs: `first` found times there.
    if (anyAfter(lo)) break
    hi = lo
  }
  while (hi - lo > 1000) {
    const mid = lo + Math.floor((hi - lo) / 2)
    if (anyAfter(mid)) lo = mid
    else hi = mid
  }
  return { latest: scheduledTimes(schedule, timeZone, lo, nowMs, TOO_MANY_MISSED).at(-1), count: TOO_MANY_MISSED + 1 }
}

function objectRefOf (job: Job): ObjectReference {
  return { kind: 'Job', namespace: job.metadata.namespace ?? 'default', name: job.metadata.name ?? '', uid: job.metadata.uid ?? '', apiVersion: 'batch/v1', resourceVersion: job.metadata.resourceVersion ?? '' }
}

/** A new Job for `cj`'s run at `scheduledMs`: the template's labels, annotations and spec, the scheduled time, owned by it. */
export function jobFromTemplate (cj: CronJob, scheduledMs: number): Job {
  const template = cj.spec?.jobTemplate ?? {}
  const tmeta = template.metadata ?? {}
  const metadata: ObjectMeta = {
    name: jobNameFor(cj.metadata.name ?? 'cronjob', scheduledMs),
    namespace: cj.metadata.namespace ?? 'default',
    annotations: { ...structuredClone(tmeta.annotations ?? {}), [CRONJOB_SCHEDULED_TIMESTAMP]: rfc3339In(scheduledMs, cj.spec?.timeZone) },
    ownerReferences: [ownerRefTo(cj)]
  }
  if (tmeta.labels !== undefined) metadata.labels = structuredClone(tmeta.labels)
  return { apiVersion: 'batch/v1', kind: 'Job', metadata, ...(template.spec !== undefined ? { spec: structuredClone(template.spec) } : {}) }
}

export interface CronJobControllerOptions {
  /** distinct CronJobs reconciled at once (default 50: CronJobs due at the same time create their Jobs in one round of the log) */
  workers?: number
  /** first retry delay of the work queue (default 50 ms) */
  baseDelayMs?: number
}

/** One pass over a CronJob: its Jobs and the status being rebuilt from them. */
interface Pass {
  ctx: ControllerContext
  cj: CronJob
  key: string
  status: CronJobStatus
  active: ObjectReference[]
}

export class CronJobController implements Controller {
  readonly name = COMPONENT
  private readonly workers: number
  private readonly baseDelayMs: number | undefined
  private ctx: ControllerContext | undefined
  private queue: WorkQueue | undefined
  private watches: Watch[] = []
  /** per CronJob key, the next requeue: the earliest asked for wins (the queue's addAfter keeps the first one set) */
  private readonly timers = new Map<string, { at: number, handle: TimerHandle }>()
  /** Events reported once per leadership: unexpected Jobs by uid, missed times by key */
  private readonly unexpectedSeen = new Set<string>()
  private readonly missReported = new Map<string, number>()

  constructor (opts: CronJobControllerOptions = {}) {
    this.workers = Math.max(1, opts.workers ?? 50)
    this.baseDelayMs = opts.baseDelayMs
  }

  start (ctx: ControllerContext): void {
    this.stop()
    this.ctx = ctx
    const queue: WorkQueue = this.queue = new WorkQueue({
      clock: ctx.clock,
      log: ctx.log,
      name: this.name,
      workers: this.workers,
      reconcile: async (key: string): Promise<boolean> => await this.reconcile(ctx, key),
      ...(this.baseDelayMs === undefined ? {} : { baseDelayMs: this.baseDelayMs })
    })
    this.watches.push(ctx.store.watch(CRON_JOB, {}, e => {
      if (e.type === 'ERROR' || e.type === 'BOOKMARK') return
      if (e.type === 'DELETED') this.clearTimer(keyOf(e.object))
      else queue.add(keyOf(e.object))
    }))
    this.watches.push(ctx.store.watch(JOB, {}, e => { this.onJob(queue, e) }))
  }

  stop (): void {
    for (const w of this.watches) w.stop()
    this.watches = []
    this.queue?.stop()
    this.queue = undefined
    if (this.ctx !== undefined) for (const t of this.timers.values()) this.ctx.clock.clearTimeout(t.handle)
    this.timers.clear()
    this.unexpectedSeen.clear()
    this.missReported.clear()
    this.ctx = undefined
  }

  /** A Job wakes the CronJob that controls it. */
  private onJob (queue: WorkQueue, e: WatchEvent<Job>): void {
    if (e.type === 'ERROR' || e.type === 'BOOKMARK') return
    const owner = controllerRefOf(e.object)
    if (owner?.kind === 'CronJob') queue.add(`${e.object.metadata.namespace ?? 'default'}/${owner.name}`)
  }

  /** Reconciles `key` again at `atMs` (on the clock), unless an earlier requeue is already set. */
  private requeueAt (ctx: ControllerContext, key: string, atMs: number): void {
    const cur = this.timers.get(key)
    if (cur !== undefined && cur.at <= atMs && cur.at >= ctx.clock.now()) return
    if (cur !== undefined) ctx.clock.clearTimeout(cur.handle)
    const handle = ctx.clock.setTimeout(() => {
      this.timers.delete(key)
      this.queue?.add(key)
    }, Math.max(0, atMs - ctx.clock.now()))
    this.timers.set(key, { at: atMs, handle })
  }

  private clearTimer (key: string): void {
    const cur = this.timers.get(key)
    if (cur === undefined) return
    this.ctx?.clock.clearTimeout(cur.handle)
    this.timers.delete(key)
  }

  private async reconcile (ctx: ControllerContext, key: string): Promise<boolean> {
    const { namespace, name } = splitKey(key)
    const cj = ctx.store.get(CRON_JOB, namespace, name)
    if (cj === undefined) {
      this.clearTimer(key)
      return true
    }
    const status: CronJobStatus = structuredClone(cj.status ?? {})
    const pass: Pass = { ctx, cj, key, status, active: Array.isArray(status.active) ? status.active : [] }
    let failure: unknown
    try {
      await this.cleanupFinishedJobs(pass)
      this.trackJobs(pass)
      if (cj.metadata.deletionTimestamp === undefined) await this.schedule(pass)
    } catch (err) {
      failure = err
    }
    // The status is written even after a failure: what was done (a Job made, a Job deleted) is recorded.
    const written = await this.writeStatus(pass)
    if (failure !== undefined) throw failure
    return written
  }

  /** The Jobs this CronJob controls (by uid), oldest first. */
  private ownedJobs (pass: Pass): Job[] {
    const uid = pass.cj.metadata.uid ?? ''
    return pass.ctx.store.list(JOB, { namespace: pass.cj.metadata.namespace ?? 'default' }).items
      .filter(j => { const r = controllerRefOf(j); return r?.kind === 'CronJob' && r.uid === uid })
      .sort(byStartTime)
  }

  /** Deletes the oldest finished Jobs beyond successfulJobsHistoryLimit and failedJobsHistoryLimit. */
  private async cleanupFinishedJobs (pass: Pass): Promise<void> {
    const spec = pass.cj.spec
    const jobs = this.ownedJobs(pass).filter(j => j.metadata.deletionTimestamp === undefined)
    const limits: Array<['Complete' | 'Failed', number | undefined]> = [['Complete', spec?.successfulJobsHistoryLimit], ['Failed', spec?.failedJobsHistoryLimit]]
    for (const [as, limit] of limits) {
      if (typeof limit !== 'number') continue
      const finished = jobs.filter(j => finishedAs(j) === as)
      for (const job of finished.slice(0, Math.max(0, finished.length - limit))) await this.deleteJob(pass, job)
    }
  }

  /** Deletes a Job (its pods in the background) and drops it from status.active. */
  private async deleteJob (pass: Pass, job: Job): Promise<void> {
    const { ctx, cj } = pass
    try {
      await mustWrite(ctx, { op: 'delete', ref: jobRef(job.metadata.namespace, job.metadata.name ?? ''), now: ctx.now(), preconditions: { uid: job.metadata.uid ?? '' }, propagationPolicy: 'Background' }, true)
    } catch (err) {
      void ctx.events.record({ object: cj, type: 'Warning', reason: 'FailedDelete', message: `Deleted job: ${(err as Error).message}`, component: COMPONENT })
      throw err
    }
    pass.active = pass.active.filter(r => r.uid !== job.metadata.uid)
    void ctx.events.record({ object: cj, type: 'Normal', reason: 'SuccessfulDelete', message: `Deleted job ${job.metadata.name ?? ''}`, component: COMPONENT })
  }

  /**
   * status.active and lastSuccessfulTime from the Jobs: finished ones leave
   * the active list, gone ones too; a running Job this controller made (it
   * carries the scheduled-time annotation) but did not record, because a
   * leader stopped between the two writes, is recorded.
   */
  private trackJobs (pass: Pass): void {
    const { ctx, cj, status } = pass
    const jobs = this.ownedJobs(pass)
    const uids = new Set(jobs.map(j => j.metadata.uid))
    for (const job of jobs) {
      const finished = finishedAs(job)
      const found = pass.active.some(r => r.uid === job.metadata.uid)
      const jobName = job.metadata.name ?? ''
      if (!found && finished === undefined) {
        const scheduled = parseTime(job.metadata.annotations?.[CRONJOB_SCHEDULED_TIMESTAMP])
        if (scheduled !== undefined && job.metadata.deletionTimestamp === undefined) {
          pass.active.push(objectRefOf(job))
          if (scheduled > (parseTime(status.lastScheduleTime) ?? -Infinity)) status.lastScheduleTime = rfc3339(scheduled)
        } else if (!this.unexpectedSeen.has(job.metadata.uid ?? '')) {
          this.unexpectedSeen.add(job.metadata.uid ?? '')
          void ctx.events.record({ object: cj, type: 'Warning', reason: 'UnexpectedJob', message: `Saw a job that the controller did not create or forgot: ${jobName}`, component: COMPONENT })
        }
      } else if (found && finished !== undefined) {
        pass.active = pass.active.filter(r => r.uid !== job.metadata.uid)
        void ctx.events.record({ object: cj, type: 'Normal', reason: 'SawCompletedJob', message: `Saw completed job: ${jobName}, condition: ${finished}`, component: COMPONENT })
      }
      if (finished === 'Complete') {
        const at = completedAt(job)
        if (at !== undefined && at > (parseTime(status.lastSuccessfulTime) ?? -Infinity)) status.lastSuccessfulTime = rfc3339(at)
      }
    }
    for (const r of pass.active) {
      if (uids.has(r.uid)) continue
      void ctx.events.record({ object: cj, type: 'Normal', reason: 'MissingJob', message: `Active job went missing: ${r.name ?? ''}`, component: COMPONENT })
    }
    pass.active = pass.active.filter(r => uids.has(r.uid))
  }

  /** Starts the Job for the most recent unmet scheduled time, if there is one to start, by the concurrency policy. */
  private async schedule (pass: Pass): Promise<void> {
    const { ctx, cj, status } = pass
    const scheduled = this.dueTime(pass)
    if (scheduled === undefined) return
    const name = jobNameFor(cj.metadata.name ?? '', scheduled)
    if (pass.active.some(r => r.name === name) || parseTime(status.lastScheduleTime) === scheduled) return
    const policy = cj.spec?.concurrencyPolicy
    if (policy === 'Forbid' && pass.active.length > 0) {
      void ctx.events.record({ object: cj, type: 'Normal', reason: 'JobAlreadyActive', message: 'Not starting job because prior execution is running and concurrency policy is Forbid', component: COMPONENT })
      return
    }
    if (policy === 'Replace') {
      for (const r of [...pass.active]) {
        const job = ctx.store.get(JOB, r.namespace ?? cj.metadata.namespace, r.name ?? '')
        if (job !== undefined) await this.deleteJob(pass, job)
        else pass.active = pass.active.filter(x => x.uid !== r.uid)
      }
    }
    const job = await this.createJob(pass, scheduled)
    if (job === undefined) return
    pass.active.push(objectRefOf(job))
    status.lastScheduleTime = rfc3339(scheduled)
  }

  /**
   * The most recent unmet scheduled time, if one is due and within the
   * starting deadline (else undefined, with the Event that says why);
   * requeues the CronJob at its next scheduled time.
   */
  private dueTime (pass: Pass): number | undefined {
    const { ctx, cj, key, status } = pass
    const spec = cj.spec
    if (spec === undefined) return undefined
    const tz = spec.timeZone
    const tzError = tz === undefined ? undefined : timeZoneError(tz)
    if (tzError !== undefined) {
      void ctx.events.record({ object: cj, type: 'Warning', reason: 'UnknownTimeZone', message: `invalid timeZone: "${tz ?? ''}": ${tzError}`, component: COMPONENT })
      return undefined
    }
    if (spec.suspend === true) return undefined
    const now = ctx.clock.now()
    const last = parseTime(status.lastScheduleTime) ?? parseTime(cj.metadata.creationTimestamp) ?? now
    const deadlineMs = typeof spec.startingDeadlineSeconds === 'number' ? spec.startingDeadlineSeconds * 1000 : undefined
    let unmet: { latest: number | undefined, count: number }
    try {
      unmet = unmetTimes(spec.schedule, tz, last, now)
      const next = nextScheduledTime(spec.schedule, tz, now)
      if (next !== undefined) this.requeueAt(ctx, key, next + NEXT_SCHEDULE_DELTA_MS)
      // Counted as Kubernetes does: only the times inside the starting deadline.
      if (deadlineMs !== undefined && last < now - deadlineMs) unmet.count = unmetTimes(spec.schedule, tz, now - deadlineMs, now).count
    } catch (err) {
      void ctx.events.record({ object: cj, type: 'Warning', reason: 'UnparseableSchedule', message: `unparseable schedule: "${spec.schedule}" : ${(err as Error).message}`, component: COMPONENT })
      return undefined
    }
    const scheduled = unmet.latest
    if (scheduled === undefined) return undefined
    if (unmet.count > TOO_MANY_MISSED) {
      void ctx.events.record({ object: cj, type: 'Warning', reason: 'TooManyMissedTimes', message: 'too many missed start times. Set or decrease .spec.startingDeadlineSeconds or check clock skew', component: COMPONENT })
    }
    if (deadlineMs !== undefined && scheduled + deadlineMs < now) {
      if (this.missReported.get(key) !== scheduled) {
        this.missReported.set(key, scheduled)
        void ctx.events.record({ object: cj, type: 'Warning', reason: 'MissSchedule', message: `Missed scheduled time to start a job: ${rfc1123z(scheduled)}`, component: COMPONENT })
      }
      return undefined
    }
    return scheduled
  }

  /** Creates the Job for `scheduledMs`; an existing one of that name counts as made if this CronJob controls it and has not recorded it yet. */
  private async createJob (pass: Pass, scheduledMs: number): Promise<Job | undefined> {
    const { ctx, cj } = pass
    const want = jobFromTemplate(cj, scheduledMs)
    const r = await ctx.write<Job>({ op: 'create', object: want, uid: ctx.uid(), now: ctx.now() })
    if (r.ok) {
      void ctx.events.record({ object: cj, type: 'Normal', reason: 'SuccessfulCreate', message: `Created job ${r.object.metadata.name ?? ''}`, component: COMPONENT })
      return r.object
    }
    if (r.status.reason === 'AlreadyExists') {
      const existing = ctx.store.get(JOB, want.metadata.namespace, want.metadata.name ?? '')
      if (existing === undefined) throw new WriteFailedError(`create: ${r.status.message}`)
      if (controllerRefOf(existing)?.uid !== cj.metadata.uid) return undefined
      if (pass.active.some(a => a.uid === existing.metadata.uid)) return undefined
      return existing
    }
    void ctx.events.record({ object: cj, type: 'Warning', reason: 'FailedCreate', message: `Error creating job: ${r.status.message}`, component: COMPONENT })
    throw new WriteFailedError(`create: ${r.status.code} ${r.status.message}`)
  }

  /** Writes status.active, lastScheduleTime and lastSuccessfulTime if they changed; false (retry) if the write failed. */
  private async writeStatus (pass: Pass): Promise<boolean> {
    const { ctx, cj } = pass
    const status: CronJobStatus = { ...pass.status }
    if (pass.active.length > 0) status.active = pass.active
    else delete status.active
    if (canonicalJson(status) === canonicalJson(cj.status ?? {})) return true
    try {
      await mustWrite(ctx, { op: 'update', subresource: 'status', object: { ...cj, status }, now: ctx.now() }, true)
      return true
    } catch {
      return false
    }
  }
}
