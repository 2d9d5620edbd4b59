// What every controller (and the scheduler) is given: the context a
// controller gets (the local replica, a way to write through the log, the
// clock, the members, the Event recorder), and the manager that starts every
// controller when this peer becomes leader and stops them when it stops
// leading. Level-triggered: a controller reconciles one key at a time from
// the current state of the replica, whatever event woke it; the work queue
// is daemon/workqueue's, the recorder daemon/record's. A new leader's
// controllers start once its replica has applied everything committed
// before its term (the `ready` round main.ts hands in).
// May import: protocol/, daemon/store/types.ts, daemon/record, daemon/clock, daemon/log.
import { randomUUID } from 'node:crypto'
import type { MemberState } from '../../protocol/membership.ts'
import { rfc3339 } from '../../protocol/k8s.ts'
import { every } from '../clock/clock.ts'
import type { Clock } from '../clock/clock.ts'
import type { Logger } from '../log/log.ts'
import { EventRecorder } from '../record/recorder.ts'
import type { StoreReader, StoreWriter } from '../store/types.ts'

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
  /**
   * Writes through the log (forwarded to the leader); resolves with the
   * store's answer once applied here, typed by the kind written:
   * `ctx.write<Pod>(cmd)`.
   */
  write: StoreWriter['write']
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

export interface ManagerInit {
  store: StoreReader
  writer: StoreWriter
  isLeader: () => boolean
  members: () => MemberHealthView[]
  clock: Clock
  log: Logger
  controllers: Controller[]
  /** how often leadership is checked (default 200 ms) */
  pollMs?: number
  /**
   * Awaited, once this peer leads, before the controllers start (main.ts
   * passes a ReadIndex round): a new leader holds every committed entry but
   * may not have applied them all, and controllers that acted on an older
   * replica could, say, create pods that already exist. A failure is
   * retried at the next poll.
   */
  ready?: () => Promise<unknown>
}

/** Starts every controller when this peer becomes leader; stops them when it stops leading. */
export class ControllerManager {
  private readonly init: ManagerInit
  private running = false
  private waiting = false
  private stopped = false
  private stopPolling: (() => void) | undefined
  readonly ctx: ControllerContext

  constructor (init: ManagerInit) {
    this.init = init
    const write = init.writer.write
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
    this.stopped = false
    const check = (): void => { this.check() }
    check()
    this.stopPolling = every(this.init.clock, this.init.pollMs ?? 200, check)
  }

  /** The controllers stop before the Raft node hands leadership over, so that none writes on behalf of a past leader. */
  beforeStop (): void {
    this.stop()
  }

  stop (): void {
    this.stopped = true
    this.stopPolling?.()
    this.setRunning(false)
  }

  private check (): void {
    const leader = this.init.isLeader()
    const ready = this.init.ready
    if (!leader || this.running || ready === undefined) {
      this.setRunning(leader)
      return
    }
    if (this.waiting) return
    this.waiting = true
    ready().then(() => {
      this.waiting = false
      if (!this.stopped && this.init.isLeader()) this.setRunning(true)
    }, (err: unknown) => {
      this.waiting = false
      this.init.log.warn({ event: 'controllers.not-ready', err: (err as Error).message }, `leading, but the replica has not caught up yet: ${(err as Error).message}`)
    })
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
