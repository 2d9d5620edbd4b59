// What every controller (and the scheduler) is built on: a work queue of
// object keys with deduplication and rate-limited retries, the context a
// controller gets (the local replica, a way to write through the log, the
// clock, the members), an Event recorder, and the manager that starts every
// controller when this peer becomes leader and stops them when it stops
// leading. Level-triggered: a controller reconciles one key at a time from
// the current state of the replica, whatever event woke it.
// May import: protocol/, daemon/store/types.ts and command.ts, daemon/raft/replicator.ts, daemon/clock, daemon/log.
import { randomUUID } from 'node:crypto'
import type { MemberState } from '../../protocol/membership.ts'
import { rfc3339 } from '../../protocol/k8s.ts'
import type { KObject } from '../../protocol/k8s.ts'
import { every } from '../clock/clock.ts'
import type { Clock, TimerHandle } from '../clock/clock.ts'
import type { Logger } from '../log/log.ts'
import type { Replicator } from '../raft/replicator.ts'
import { encodeStoreCommand } from '../store/command.ts'
import type { StoreCommand, StoreReader, StoreResult } from '../store/types.ts'

export interface MemberHealthView {
  name: string
  peerId: string
  state: MemberState
  /** ms time the state began */
  since: number
}

/** Everything a controller may use. */
export interface ControllerContext {
  store: StoreReader
  /** writes through the log (forwarded to the leader); resolves with the store's answer once applied here */
  write: (cmd: StoreCommand) => Promise<StoreResult>
  clock: Clock
  log: Logger
  /** membership's view, for node lifecycle and scheduling */
  members: () => MemberHealthView[]
  events: EventRecorder
  /** a fresh uid for a created object */
  uid: () => string
  /** now as Kubernetes writes it (RFC 3339, seconds) */
  now: () => string
}

export interface Controller {
  readonly name: string
  /** called when this peer becomes leader: set up watches and queues */
  start: (ctx: ControllerContext) => void
  /** called when it stops leading (or shuts down): drop watches, timers and queues */
  stop: () => void
}

export { rfc3339 }

export interface WorkQueueOptions {
  clock: Clock
  log: Logger
  name: string
  /** reconciles one key; throw (or return false) to retry it later with back-off */
  reconcile: (key: string) => Promise<boolean | undefined> | boolean | undefined
  /** first retry delay (default 50 ms), doubling up to maxDelayMs (default 10 s) */
  baseDelayMs?: number
  maxDelayMs?: number
  /** distinct keys reconciled at once (default 1); one key is never reconciled twice at once */
  workers?: number
}

/**
 * Keys to reconcile, each at most once in the queue and never two at once.
 * A key added while it is being reconciled is reconciled again afterwards.
 * Failures are retried with exponential back-off per key.
 */
export class WorkQueue {
  private readonly opts: Required<WorkQueueOptions>
  private readonly queued = new Set<string>()
  private readonly order: string[] = []
  private readonly active = new Set<string>()
  private readonly dirty = new Set<string>()
  private readonly failures = new Map<string, number>()
  private readonly timers = new Map<string, TimerHandle>()
  private workers = 0
  private stopped = false

  constructor (opts: WorkQueueOptions) {
    this.opts = { baseDelayMs: 50, maxDelayMs: 10_000, workers: 1, ...opts }
  }

  add (key: string): void {
    if (this.stopped) return
    if (this.active.has(key)) {
      this.dirty.add(key)
      return
    }
    if (this.queued.has(key)) return
    this.queued.add(key)
    this.order.push(key)
    this.kick()
  }

  /** Adds `key` after `ms` (e.g. to re-check a grace period). */
  addAfter (key: string, ms: number): void {
    if (this.stopped || this.timers.has(key)) return
    this.timers.set(key, this.opts.clock.setTimeout(() => {
      this.timers.delete(key)
      this.add(key)
    }, ms))
  }

  get length (): number { return this.order.length }

  stop (): void {
    this.stopped = true
    for (const t of this.timers.values()) this.opts.clock.clearTimeout(t)
    this.timers.clear()
    this.order.length = 0
    this.queued.clear()
  }

  private kick (): void {
    while (!this.stopped && this.workers < this.opts.workers && this.order.length > this.workers - this.active.size) {
      this.workers++
      void this.drain().finally(() => {
        this.workers--
        if (this.order.length > 0) this.kick()
      })
    }
  }

  private async drain (): Promise<void> {
    while (!this.stopped && this.order.length > 0) {
      const key = this.order.shift() as string
      this.queued.delete(key)
      this.active.add(key)
      let ok: boolean
      try {
        ok = (await this.opts.reconcile(key)) !== false
      } catch (err) {
        ok = false
        this.opts.log.debug({ event: 'controller.retry', controller: this.opts.name, key, err: (err as Error).message }, `${this.opts.name}: ${key}: ${(err as Error).message}`)
      }
      this.active.delete(key)
      if (ok) {
        this.failures.delete(key)
      } else {
        const n = (this.failures.get(key) ?? 0) + 1
        this.failures.set(key, n)
        this.addAfter(key, Math.min(this.opts.maxDelayMs, this.opts.baseDelayMs * 2 ** (n - 1)))
      }
      if (this.dirty.delete(key)) this.add(key)
    }
  }
}

/** `namespace/name`, or `name` for a cluster-scoped object. */
export function keyOf (obj: { metadata: { namespace?: string, name?: string } }): string {
  return obj.metadata.namespace !== undefined && obj.metadata.namespace !== '' ? `${obj.metadata.namespace}/${obj.metadata.name ?? ''}` : obj.metadata.name ?? ''
}

export function splitKey (key: string): { namespace?: string, name: string } {
  const i = key.indexOf('/')
  return i < 0 ? { name: key } : { namespace: key.slice(0, i), name: key.slice(i + 1) }
}

export interface EventInput {
  /** the object the event is about */
  object: KObject
  type: 'Normal' | 'Warning'
  reason: string
  message: string
  /** who reports it, e.g. 'default-scheduler', 'deployment-controller' */
  component: string
}

/**
 * Records Kubernetes Events. The same reason and message about the same
 * object within the window updates one Event (count, lastTimestamp) rather
 * than writing a new one each time. Events are written best-effort: a lost
 * one is not retried.
 */
export class EventRecorder {
  private readonly write: (cmd: StoreCommand) => Promise<StoreResult>
  private readonly clock: Clock
  private readonly recent = new Map<string, { name: string, namespace: string, count: number, first: string }>()

  constructor (write: (cmd: StoreCommand) => Promise<StoreResult>, clock: Clock) {
    this.write = write
    this.clock = clock
  }

  async record (e: EventInput): Promise<void> {
    const now = rfc3339(this.clock.now())
    const meta = e.object.metadata
    const namespace = meta.namespace ?? 'default'
    const key = `${e.object.kind}/${namespace}/${meta.name ?? ''}/${e.reason}/${e.message}`
    const seen = this.recent.get(key)
    const involvedObject = { apiVersion: e.object.apiVersion, kind: e.object.kind, name: meta.name, namespace: meta.namespace, uid: meta.uid, resourceVersion: meta.resourceVersion }
    if (seen !== undefined) {
      seen.count++
      await this.write({
        op: 'patch',
        ref: { group: '', resource: 'events', namespace, name: seen.name },
        patchType: 'merge',
        patch: { count: seen.count, lastTimestamp: now },
        now
      }).catch(() => undefined)
      return
    }
    const name = `${meta.name ?? 'object'}.${randomUUID().replace(/-/g, '').slice(0, 16)}`
    this.recent.set(key, { name, namespace, count: 1, first: now })
    if (this.recent.size > 5000) this.recent.delete(this.recent.keys().next().value as string)
    await this.write({
      op: 'create',
      object: {
        apiVersion: 'v1',
        kind: 'Event',
        metadata: { name, namespace },
        involvedObject,
        reason: e.reason,
        message: e.message,
        type: e.type,
        count: 1,
        firstTimestamp: now,
        lastTimestamp: now,
        source: { component: e.component }
      },
      uid: randomUUID(),
      now
    }).catch(() => undefined)
  }
}

export interface ManagerInit {
  store: StoreReader
  raft: Replicator
  isLeader: () => boolean
  members: () => MemberHealthView[]
  clock: Clock
  log: Logger
  controllers: Controller[]
  /** how often leadership is checked (default 200 ms) */
  pollMs?: number
}

/** Starts every controller when this peer becomes leader; stops them when it stops leading. */
export class ControllerManager {
  private readonly init: ManagerInit
  private running = false
  private stopPolling: (() => void) | undefined
  readonly ctx: ControllerContext

  constructor (init: ManagerInit) {
    this.init = init
    const write = async (cmd: StoreCommand): Promise<StoreResult> => (await init.raft.propose(encodeStoreCommand(cmd))).result as StoreResult
    this.ctx = {
      store: init.store,
      write,
      clock: init.clock,
      log: init.log,
      members: init.members,
      events: new EventRecorder(write, init.clock),
      uid: () => randomUUID(),
      now: () => rfc3339(init.clock.now())
    }
  }

  start (): void {
    const check = (): void => { this.setRunning(this.init.isLeader()) }
    check()
    this.stopPolling = every(this.init.clock, this.init.pollMs ?? 200, check)
  }

  stop (): void {
    this.stopPolling?.()
    this.setRunning(false)
  }

  private setRunning (on: boolean): void {
    if (on === this.running) return
    this.running = on
    for (const c of this.init.controllers) {
      try {
        if (on) c.start(this.ctx)
        else c.stop()
      } catch (err) {
        this.init.log.error({ event: 'controller.failed', controller: c.name, err: (err as Error).stack }, `controller ${c.name} failed to ${on ? 'start' : 'stop'}`)
      }
    }
    this.init.log.info({ event: on ? 'controllers.started' : 'controllers.stopped', count: this.init.controllers.length }, on ? 'leading: controllers started' : 'controllers stopped')
  }
}
