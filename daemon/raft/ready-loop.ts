// The host loop, written once. For every Ready of its RaftCore, in the order
// core.ts's header demands: persist (a leader's snapshot first, restoring
// the state machine from it; then the entries with the hard state, synced
// when the Ready says so) → send (attaching the stored snapshot to snapshot
// messages) → apply the committed entries → advance; then hand out confirmed
// reads and, every `snapshotEntries` applied entries, snapshot the state
// machine and compact the log. It settles what callers wait for: proposals
// (by index and term), reads (by ctx) and "applied up to" waiters.
// RaftNode (node.ts) runs it on LevelDB; the simulator (test/sim/host.ts)
// runs the same code on a MemoryStorage. Each step is synchronous when the
// storage is, so the simulator stays deterministic: no clock, no timers, no
// logger here; what a host logs comes out as events.
// May import: protocol/ and this folder.
import type { ClusterConfig, Entry, HardState, RaftMessage, SnapshotMeta } from '../../protocol/raft.ts'
import type { RaftConfig } from './config.ts'
import { decodeClusterConfig, RaftCore } from './core.ts'
import type { Ready, ReadState } from './core.ts'
import type { StateMachine } from './state-machine.ts'
import type { HostStorage, Snapshot } from './storage.ts'

/**
 * How a proposal ended: applied (with the entry and the state machine's
 * result); lost: another term's entry took its index, so it was certainly
 * not applied; unknown: a snapshot covered its index or the loop stopped,
 * so it may or may not have been applied.
 */
export type ProposalOutcome =
  | { status: 'applied', entry: Entry, result: unknown }
  | { status: 'lost' }
  | { status: 'unknown' }

/** Where processReady may stop part-way, as a crash would: after persisting, or after sending too. For the simulator. */
export type ReadyPhase = 'persist' | 'send'

/** What a host may want to log or check; each is called synchronously from within the loop. */
export interface ReadyLoopEvents {
  /** the state machine was replaced by a snapshot: the disk's, at construction, or a leader's, just stored */
  restored?: (snap: Snapshot, from: 'disk' | 'leader') => void
  /** a committed entry was applied; `result` is the state machine's, for a normal entry */
  applied?: (e: Entry, result: unknown) => void
  /** every Ready's confirmed and dropped reads, tracked or not */
  reads?: (confirmed: readonly ReadState[], dropped: readonly number[]) => void
  /** a snapshot of the state machine is stored and the log compacted behind it */
  snapshotTaken?: (meta: SnapshotMeta, bytes: number) => void
  /** a background snapshot write failed; the log is as it was and the next one tries again */
  snapshotFailed?: (index: number, err: Error) => void
}

export interface ReadyLoopInit {
  /** the core's settings; the loop hands it the storage and the applied index */
  raft: Omit<RaftConfig, 'storage' | 'applied'>
  storage: HostStorage
  stateMachine: StateMachine
  /** hands a message to the network; never blocks */
  send: (m: RaftMessage) => void
  /** applied entries between snapshots; Infinity for never */
  snapshotEntries: number
  /** entries kept in the log behind a snapshot, for followers a little behind */
  keepEntries: number
  /**
   * A snapshot also waits until the entries applied since the last one add
   * up to this many times its size, so that snapshots cost in proportion to
   * what is written however large the state grows, as LogCabin's
   * snapshotRatio does (default 0: the entry count alone decides). Below
   * RATIO_FLOOR_BYTES of snapshot, the count alone decides.
   */
  snapshotBytesRatio?: number
  /**
   * Given (RaftNode gives one that waits a turn of the event loop), a state
   * machine with capture() is encoded in slices, with pause() between them,
   * on an asynchronous storage; without it (the simulator), at once.
   */
  pause?: () => Promise<void>
  events?: ReadyLoopEvents
}

/** a snapshot smaller than this is cheap whatever the ratio says */
export const RATIO_FLOOR_BYTES = 1 << 20

type Step = void | Promise<void>

/** Runs `next` after `first`, at once when `first` was synchronous. */
function then (first: Step, next: () => Step): Step {
  return first instanceof Promise ? first.then(next) : next()
}

interface TrackedProposal {
  term: number
  done: (outcome: ProposalOutcome) => void
}

interface AppliedWaiter {
  index: number
  done: (reached: boolean) => void
}

export class ReadyLoop {
  readonly core: RaftCore
  private readonly init: ReadyLoopInit
  private readonly storage: HostStorage
  private readonly sm: StateMachine
  private readonly events: ReadyLoopEvents
  private applied: number
  /** the config as of the applied index, for snapshots */
  private config: ClusterConfig
  private readonly proposals = new Map<number, TrackedProposal>()
  private readonly reads = new Map<number, (index: number | undefined) => void>()
  private waiters: AppliedWaiter[] = []
  /** the newest hard state the core handed out, and the one on disk */
  private hardState: HardState | undefined
  private persistedHardState: HardState | undefined
  /** a snapshot being written in the background */
  private writing: Promise<void> | undefined
  /** bytes of the entries applied so far, and that count when the last snapshot was taken or installed */
  private appliedBytes = 0
  private bytesAtSnapshot = 0
  private stopped = false

  /** Restores the state machine from the storage's snapshot, then builds the core on the storage. */
  constructor (init: ReadyLoopInit) {
    this.init = init
    this.storage = init.storage
    this.sm = init.stateMachine
    this.events = init.events ?? {}
    const snap = this.storage.snapshot()
    this.applied = snap.meta.index
    // Before any config entry, the config is the snapshot's or, with none, the core's `peers` (as the core itself decides).
    this.config = snap.meta.index > 0 ? snap.meta.config : { voters: init.raft.peers.slice(), learners: [] }
    if (snap.meta.index > 0) {
      this.sm.restore(snap.data, snap.meta.index)
      this.events.restored?.(snap, 'disk')
    }
    this.core = new RaftCore({ ...init.raft, storage: this.storage, applied: snap.meta.index })
  }

  get appliedIndex (): number { return this.applied }
  get appliedConfig (): ClusterConfig { return this.config }
  /** a snapshot being written in the background: wait for it before closing the storage */
  get snapshotWriting (): Promise<void> | undefined { return this.writing }

  hasReady (): boolean { return this.core.hasReady() }

  /**
   * Takes the core's Ready and handles it in the contract's order. It
   * returns a promise when the storage is asynchronous, and nothing when it
   * is not. Calls must not overlap. `stopAfter` cuts it short, as a crash
   * would (the core is then to be thrown away): for the simulator.
   */
  processReady (stopAfter?: ReadyPhase): void | Promise<void> {
    const rd = this.core.ready()
    return then(this.persist(rd), () => {
      if (stopAfter === 'persist') return
      this.sendAll(rd.messages)
      if (stopAfter === 'send') return
      for (const e of rd.committed) this.apply(e)
      this.wakeWaiters()
      this.core.advance(rd)
      this.takeReads(rd)
      this.maybeSnapshot()
    })
  }

  /**
   * Settles everything callers wait for: proposals become unknown, reads
   * dropped, waiters unreached; later requests are settled at once. A Ready
   * under way still finishes.
   */
  stop (): void {
    this.stopped = true
    const proposals = [...this.proposals.values()]
    const reads = [...this.reads.values()]
    const waiters = this.waiters
    this.proposals.clear()
    this.reads.clear()
    this.waiters = []
    for (const p of proposals) p.done({ status: 'unknown' })
    for (const done of reads) done(undefined)
    for (const w of waiters) w.done(false)
  }

  // --- what callers wait for ---

  /**
   * Reports how the entry that propose() or changeConfig() put at (index,
   * term) ends. An earlier proposal still waiting at the same index was cut
   * from this peer's log before it led again; a leader holds every committed
   * entry, so that one never committed: it is lost.
   */
  track (at: { index: number, term: number }, done: (outcome: ProposalOutcome) => void): void {
    if (this.stopped) {
      done({ status: 'unknown' })
      return
    }
    const earlier = this.proposals.get(at.index)
    this.proposals.set(at.index, { term: at.term, done })
    earlier?.done({ status: 'lost' })
  }

  /** Stops reporting on the entry at (index, term): its caller gave up. */
  untrack (at: { index: number, term: number }): void {
    if (this.proposals.get(at.index)?.term === at.term) this.proposals.delete(at.index)
  }

  /**
   * Asks the core to confirm a linearizable read (ReadIndex) under `ctx`.
   * `done` gets the index to read at once a heartbeat round confirms the
   * leadership, or undefined if the read is dropped (this peer stopped
   * leading) or the loop stops. False, and `done` never called, if the core
   * refused (not the leader).
   */
  readIndex (ctx: number, done: (index: number | undefined) => void): boolean {
    if (this.stopped || this.core.readIndex(ctx) !== undefined) return false
    this.reads.set(ctx, done)
    return true
  }

  /** Forgets the read under `ctx`; true if it was still waiting. */
  cancelRead (ctx: number): boolean { return this.reads.delete(ctx) }

  /** Calls done(true) once `index` is applied here (at once if it is), or done(false) if the loop stops first. */
  afterApplied (index: number, done: (reached: boolean) => void): void {
    if (this.applied >= index) done(true)
    else if (this.stopped) done(false)
    else this.waiters.push({ index, done })
  }

  // --- the steps of one Ready ---

  private persist (rd: Ready): Step {
    const snap = rd.snapshot
    return then(snap !== undefined ? this.install(snap) : undefined, () => this.persistLog(rd))
  }

  private install (snap: Snapshot): Step {
    // One snapshot write at a time: ours must not land after the leader's.
    return then(this.writing, () => then(this.storage.installSnapshot(snap), () => { this.restore(snap) }))
  }

  private restore (snap: Snapshot): void {
    this.sm.restore(snap.data, snap.meta.index)
    this.applied = snap.meta.index
    this.bytesAtSnapshot = this.appliedBytes
    this.config = snap.meta.config
    this.events.restored?.(snap, 'leader')
    // Proposals at or below it are settled by it, one way or the other,
    // and the snapshot does not say which.
    for (const [index, p] of this.proposals) {
      if (index > this.applied) continue
      this.proposals.delete(index)
      p.done({ status: 'unknown' })
    }
    this.wakeWaiters()
  }

  /**
   * A hard state whose only change is commit is not written on its own:
   * commit is only a hint for the restart (it re-applies less, then learns
   * the rest from the leader), and writing it alone was a LevelDB batch for
   * every acknowledgement the leader received. With entries, the newest
   * commit goes too, so that what a restart believes committed (and so its
   * cluster config) is never more than one config change behind.
   */
  private persistLog (rd: Ready): Step {
    if (rd.hardState !== undefined) this.hardState = rd.hardState
    if (rd.entries.length === 0 && !rd.mustSync) return
    const hs = this.hardState
    const write = this.storage.save({ entries: rd.entries, ...(hs !== this.persistedHardState && hs !== undefined ? { hardState: hs } : {}), sync: rd.mustSync })
    return then(write, () => { this.persistedHardState = hs })
  }

  private sendAll (messages: readonly RaftMessage[]): void {
    for (const m of messages) {
      if (m.type === 'snapshot') {
        const snap = this.storage.snapshot()
        this.init.send({ ...m, meta: snap.meta, data: snap.data })
      } else {
        this.init.send(m)
      }
    }
  }

  private apply (e: Entry): void {
    let result: unknown
    this.appliedBytes += e.data.length
    if (e.kind === 'normal') result = this.sm.apply(e.index, e.data)
    else if (e.kind === 'config') this.config = decodeClusterConfig(e.data)
    this.applied = e.index
    this.events.applied?.(e, result)
    const p = this.proposals.get(e.index)
    if (p === undefined) return
    this.proposals.delete(e.index)
    // Another term's entry at its index means it was overwritten: it was never committed.
    p.done(p.term === e.term ? { status: 'applied', entry: e, result } : { status: 'lost' })
  }

  private wakeWaiters (): void {
    if (this.waiters.length === 0) return
    const woken = this.waiters.filter(w => w.index <= this.applied)
    this.waiters = this.waiters.filter(w => w.index > this.applied)
    for (const w of woken) w.done(true)
  }

  private takeReads (rd: Ready): void {
    this.events.reads?.(rd.readStates, rd.droppedReads)
    for (const r of rd.readStates) {
      const done = this.reads.get(r.ctx)
      this.reads.delete(r.ctx)
      done?.(r.index)
    }
    for (const ctx of rd.droppedReads) {
      const done = this.reads.get(ctx)
      this.reads.delete(ctx)
      done?.(undefined)
    }
  }

  /**
   * Every snapshotEntries applied entries, the state is encoded here, at the
   * applied index, and written; on an asynchronous storage in the
   * background, as the loop goes on: the write touches only the snapshot and
   * the entries it covers.
   */
  private maybeSnapshot (): void {
    if (this.writing !== undefined) return
    if (this.applied - this.storage.snapshotMeta().index < this.init.snapshotEntries) return
    const last = this.storage.snapshot().data.length
    if (last >= RATIO_FLOOR_BYTES && this.appliedBytes - this.bytesAtSnapshot < (this.init.snapshotBytesRatio ?? 0) * last) return
    this.bytesAtSnapshot = this.appliedBytes
    const meta: SnapshotMeta = { index: this.applied, term: this.storage.term(this.applied), config: this.config }
    const compactTo = meta.index - this.init.keepEntries
    const pause = this.init.pause
    const capture = pause !== undefined ? this.sm.capture?.() : undefined
    if (capture !== undefined && pause !== undefined) {
      let bytes = 0
      this.writing = capture(pause)
        .then(data => {
          bytes = data.length
          if (this.stopped) throw new Error('the loop stopped')
          return this.storage.saveSnapshot({ meta, data }, compactTo)
        })
        .then(() => { this.events.snapshotTaken?.(meta, bytes) }, (err: Error) => { this.events.snapshotFailed?.(meta.index, err) })
        .finally(() => { this.writing = undefined })
      return
    }
    const data = this.sm.snapshot()
    const written = this.storage.saveSnapshot({ meta, data }, compactTo)
    if (!(written instanceof Promise)) {
      this.events.snapshotTaken?.(meta, data.length)
      return
    }
    this.writing = written
      .then(() => { this.events.snapshotTaken?.(meta, data.length) }, (err: Error) => { this.events.snapshotFailed?.(meta.index, err) })
      .finally(() => { this.writing = undefined })
  }

}
