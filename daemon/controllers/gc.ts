// Garbage collection on the leader, for what the store does not do inside
// one apply: foreground deletion (an owner marked with the
// `foregroundDeletion` finalizer waits until its dependents are gone: they
// are deleted, foreground too, and then the finalizer is removed, which
// lets the store delete the owner), and old Events (kept one hour, as in
// Kubernetes). Background and orphan cascades happen in the store itself.
// May import: protocol/, daemon/clock, daemon/store/types.ts, ./framework.ts, daemon/workqueue.
import { CONTROLLER_REVISION, CRON_JOB, DAEMON_SET, DEPLOYMENT, EVENT, JOB, POD, REPLICA_SET, REPLICATION_CONTROLLER, STATEFUL_SET } from '../../protocol/kinds.ts'
import type { Kind } from '../../protocol/kinds.ts'
import { every } from '../clock/clock.ts'
import type { Watch } from '../store/types.ts'
import type { Controller, ControllerContext } from './framework.ts'
import { keyOf, splitKey, WorkQueue } from '../workqueue/queue.ts'

const FOREGROUND = 'foregroundDeletion'
/** Kinds that own others here (generic code: any kind's metadata). */
const OWNERS: readonly Kind[] = [DEPLOYMENT, REPLICA_SET, REPLICATION_CONTROLLER, DAEMON_SET, STATEFUL_SET, JOB, CRON_JOB]
/** Kinds that may be owned. */
const DEPENDENTS: readonly Kind[] = [POD, REPLICA_SET, CONTROLLER_REVISION, JOB]

export interface GcOptions {
  eventTtlMs?: number
  sweepMs?: number
}

export class GarbageCollector implements Controller {
  readonly name = 'garbage-collector'
  private readonly eventTtlMs: number
  private readonly sweepMs: number
  private ctx: ControllerContext | undefined
  private queue: WorkQueue | undefined
  private watches: Watch[] = []
  private stopTimer: (() => void) | undefined

  constructor (opts: GcOptions = {}) {
    this.eventTtlMs = opts.eventTtlMs ?? 3_600_000
    this.sweepMs = opts.sweepMs ?? 60_000
  }

  start (ctx: ControllerContext): void {
    this.ctx = ctx
    const queue = new WorkQueue({ clock: ctx.clock, log: ctx.log, name: this.name, reconcile: async key => await this.reconcile(key) })
    this.queue = queue
    for (const t of OWNERS) {
      this.watches.push(ctx.store.watch(t, {}, e => {
        if (e.type === 'ERROR') return
        const o = e.object
        if (o.metadata.deletionTimestamp !== undefined && (o.metadata.finalizers ?? []).includes(FOREGROUND)) queue.add(`${t.plural}:${keyOf(o)}`)
      }))
    }
    for (const t of DEPENDENTS) {
      this.watches.push(ctx.store.watch(t, {}, e => {
        if (e.type !== 'DELETED') return
        // A dependent went: its owners may now be free to go.
        const dependent = e.object
        for (const ref of dependent.metadata.ownerReferences ?? []) {
          const ownerType = OWNERS.find(o => o.kind === ref.kind)
          if (ownerType !== undefined) queue.add(`${ownerType.plural}:${dependent.metadata.namespace ?? 'default'}/${ref.name}`)
        }
      }))
    }
    this.stopTimer = every(ctx.clock, this.sweepMs, () => { void this.sweepEvents() })
  }

  stop (): void {
    this.stopTimer?.()
    for (const w of this.watches) w.stop()
    this.watches = []
    this.queue?.stop()
    this.ctx = undefined
  }

  private async reconcile (key: string): Promise<boolean> {
    const ctx = this.ctx
    if (ctx === undefined) return true
    // `plural:namespace/name`, the key the watches queue
    const colon = key.indexOf(':')
    const plural = key.slice(0, colon)
    const { namespace = 'default', name } = splitKey(key.slice(colon + 1))
    const type = OWNERS.find(t => t.plural === plural)
    if (type === undefined) return true
    const owner = ctx.store.get(type, namespace, name)
    if (owner === undefined || owner.metadata.deletionTimestamp === undefined || !(owner.metadata.finalizers ?? []).includes(FOREGROUND)) return true
    const uid = owner.metadata.uid
    const dependents = DEPENDENTS.flatMap(t => ctx.store.list(t, { namespace }).items
      .filter(o => (o.metadata.ownerReferences ?? []).some(r => r.uid === uid))
      .map(o => ({ t, o })))
    if (dependents.length > 0) {
      const results = await Promise.all(dependents
        .filter(({ o }) => o.metadata.deletionTimestamp === undefined)
        .map(async ({ t, o }) => await ctx.write({
          op: 'delete',
          ref: { group: t.group, resource: t.plural, namespace, name: o.metadata.name ?? '' },
          now: ctx.now(),
          // An owner among them waits for its own dependents; a leaf just goes.
          propagationPolicy: OWNERS.includes(t) ? 'Foreground' : 'Background'
        })))
      // Come back when the dependents are gone (their DELETED events re-queue this key).
      return results.every(r => r.ok || r.status.code === 404)
    }
    const finalizers = (owner.metadata.finalizers ?? []).filter(f => f !== FOREGROUND)
    const r = await ctx.write({
      op: 'patch', ref: { group: type.group, resource: type.plural, namespace, name }, patchType: 'merge', patch: { metadata: { finalizers } }, now: ctx.now()
    })
    return r.ok || r.status.code === 404
  }

  /** Deletes Events whose last occurrence is older than the TTL. */
  private async sweepEvents (): Promise<void> {
    const ctx = this.ctx
    if (ctx === undefined) return
    const cutoff = ctx.clock.now() - this.eventTtlMs
    const old = ctx.store.list(EVENT, {}).items.filter(e => {
      const last = Date.parse(e.lastTimestamp ?? e.metadata.creationTimestamp ?? '')
      return Number.isFinite(last) && last < cutoff
    })
    for (const e of old.slice(0, 500)) {
      await ctx.write({ op: 'delete', ref: { group: '', resource: 'events', namespace: e.metadata.namespace ?? 'default', name: e.metadata.name ?? '' }, now: ctx.now() }).catch(() => undefined)
    }
  }
}
