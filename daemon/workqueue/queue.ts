// The work queue every level-triggered loop is built on (the controllers,
// the scheduler, the kubelet), as client-go's workqueue is: object keys,
// each queued at most once and never reconciled twice at once, retried
// with exponential back-off per key on failure. Also the keys themselves
// (`namespace/name`). A leaf: anyone may import it.
// May import: daemon/clock, daemon/log.
import type { Clock, TimerHandle } from '../clock/clock.ts'
import type { Logger } from '../log/log.ts'

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
