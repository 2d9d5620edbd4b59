// The TTL-after-finished controller (leader only), as Kubernetes'
// pkg/controller/ttlafterfinished: a Job with spec.ttlSecondsAfterFinished is
// deleted (propagationPolicy Background: the store takes its pods with it)
// that long after it finished, counted from its Complete or Failed
// condition's lastTransitionTime. The delete carries the Job's uid and
// resourceVersion, so that a Job changed meanwhile (its TTL, say) is looked
// at again rather than deleted.
// May import: protocol/, daemon/store/types.ts, daemon/workqueue, ./framework.ts, ./job-model.ts.
import type { Job } from '../../protocol/batch-v1.ts'
import { JOB } from '../../protocol/kinds.ts'
import type { Watch } from '../store/types.ts'
import { keyOf, splitKey, WorkQueue } from '../workqueue/queue.ts'
import type { Controller, ControllerContext } from './framework.ts'
import { jobFinishedAt, Wakeups } from './job-model.ts'

export class TtlAfterFinishedController implements Controller {
  readonly name = 'ttl-after-finished-controller'
  private queue: WorkQueue | undefined
  private wakeups: Wakeups | undefined
  private watch: Watch | undefined

  start (ctx: ControllerContext): void {
    this.stop()
    const queue: WorkQueue = this.queue = new WorkQueue({ clock: ctx.clock, log: ctx.log, name: this.name, reconcile: async key => await this.reconcile(ctx, key) })
    this.wakeups = new Wakeups(ctx.clock, key => { queue.add(key) })
    this.watch = ctx.store.watch(JOB, {}, e => {
      if (e.type !== 'ADDED' && e.type !== 'MODIFIED') return
      if (needsCleanup(e.object)) queue.add(keyOf(e.object))
    })
  }

  stop (): void {
    this.watch?.stop()
    this.queue?.stop()
    this.wakeups?.clear()
    this.watch = this.queue = this.wakeups = undefined
  }

  private async reconcile (ctx: ControllerContext, key: string): Promise<boolean> {
    const { namespace, name } = splitKey(key)
    const job = ctx.store.get(JOB, namespace, name)
    if (job === undefined || !needsCleanup(job)) return true
    const finished = jobFinishedAt(job)
    if (finished === undefined) return true
    const left = finished + (job.spec?.ttlSecondsAfterFinished ?? 0) * 1000 - ctx.clock.now()
    if (left > 0) {
      this.wakeups?.after(key, left)
      return true
    }
    const r = await ctx.write({
      op: 'delete',
      ref: { group: 'batch', resource: 'jobs', namespace: job.metadata.namespace ?? 'default', name },
      now: ctx.now(),
      preconditions: { uid: job.metadata.uid ?? '', resourceVersion: job.metadata.resourceVersion ?? '' },
      propagationPolicy: 'Background'
    })
    if (r.ok) ctx.log.info({ event: 'job.ttl-expired', job: key }, `job ${key} deleted: its ttlSecondsAfterFinished has passed`)
    // A conflict: the Job changed since it was read; its MODIFIED event brings it back.
    return r.ok || r.status.code === 404 || r.status.code === 409
  }
}

/** A finished Job with a TTL that is not being deleted yet. */
function needsCleanup (job: Job): boolean {
  return typeof job.spec?.ttlSecondsAfterFinished === 'number' && job.metadata.deletionTimestamp === undefined && jobFinishedAt(job) !== undefined
}
