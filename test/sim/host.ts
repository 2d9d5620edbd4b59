// One simulated machine: its disk (a MemoryStorage, which outlives
// crashes), and, while it is up, a key-value state machine (./kv-model.ts)
// behind the host loop shoald runs, daemon/raft/ready-loop.ts: the same
// code persists, sends, applies, advances, serves reads and takes
// snapshots here as in production, on a disk that answers synchronously.
// The checkers watch every write of the disk and every entry applied. A
// crash may cut the loop short and may lose hard state written without a
// sync; a restart builds a new loop, which restores the state machine from
// the disk's snapshot.
// May import: protocol/, daemon/clock, daemon/raft, this folder.
import type { Entry, HardState, SnapshotMeta } from '../../protocol/raft.ts'
import type { RaftMessage } from '../../protocol/raft.ts'
import type { Rng } from '../../daemon/clock/clock.ts'
import type { RaftCore } from '../../daemon/raft/core.ts'
import type { RaftConfig } from '../../daemon/raft/config.ts'
import { ReadyLoop } from '../../daemon/raft/ready-loop.ts'
import type { ProposalOutcome as LoopOutcome, ReadyPhase } from '../../daemon/raft/ready-loop.ts'
import { MemoryStorage } from '../../daemon/raft/storage.ts'
import type { HostStorage, RaftWrite, Snapshot } from '../../daemon/raft/storage.ts'
import { CheckFailure, entryKey } from './checkers.ts'
import type { Checkers, SimNodeView } from './checkers.ts'
import { KvStateMachine } from './kv-model.ts'
import type { KvOutput } from './linearizability.ts'

export type CoreSettings = Required<Pick<RaftConfig,
  'electionTicks' | 'heartbeatTicks' | 'maxInflight' | 'maxBatchEntries' | 'maxBatchBytes' | 'maxInflightBytes' | 'preVote' | 'checkQuorum'>>

/** Where a crash interrupts the host loop: after persisting a Ready, or after sending it too. */
export type CrashPoint = ReadyPhase

export interface HostContext {
  peers: string[]
  settings: CoreSettings
  checkers: Checkers
  send: (m: RaftMessage, from: SimHost) => void
  /** applied entries between snapshots; Infinity for never */
  snapshotEvery: number
  /** entries kept in the log behind a snapshot */
  keepEntries: number
}

/**
 * How a proposal ended: applied with its result, definitely not applied
 * (another term's entry took its index), or undefined when this host can no
 * longer tell (it crashed, or a snapshot skipped the index).
 */
export type ProposalOutcome = { applied: true, output: KvOutput | undefined } | { applied: false } | undefined

export class SimHost implements SimNodeView {
  readonly id: string
  readonly storage = new MemoryStorage()
  /** this incarnation's host loop, while up */
  loop: ReadyLoop | undefined
  incarnation = 0
  sm = new KvStateMachine()
  /** while down, the tick it restarts at */
  downUntil = 0
  /** the last index this incarnation applied or restored, as the loop's events tell it */
  appliedIndex = 0
  snapshotsTaken = 0
  snapshotsInstalled = 0
  /** the hard state as of the last synced write */
  private syncedHardState: HardState = { term: 0, commit: 0 }
  /** the applied config, for the state hash */
  private configHash = ''
  private readonly ctx: HostContext
  private readonly disk: HostStorage

  constructor (id: string, ctx: HostContext) {
    this.id = id
    this.ctx = ctx
    this.disk = this.simDisk()
  }

  /** the core, while up */
  get core (): RaftCore | undefined { return this.loop?.core }

  /** Writes the same first entry on every disk, as daemon/main.ts does when founding a cluster. */
  bootstrap (entry: Entry): void {
    this.storage.append([entry])
    this.storage.setHardState({ term: entry.term, commit: entry.index })
    this.syncedHardState = this.storage.hardState()
  }

  /** Starts from what the disk holds: the loop restores the state machine from its snapshot, the rest is replayed. */
  start (rng: Rng): RaftCore {
    this.incarnation++
    this.sm = new KvStateMachine()
    this.appliedIndex = 0
    const checkers = this.ctx.checkers
    const loop = new ReadyLoop({
      raft: { id: this.id, peers: this.ctx.peers, rng, ...this.ctx.settings },
      storage: this.disk,
      stateMachine: this.sm,
      send: m => { this.ctx.send(m, this) },
      snapshotEntries: this.ctx.snapshotEvery,
      keepEntries: this.ctx.keepEntries,
      events: {
        restored: (snap, from) => {
          if (from === 'leader') this.snapshotsInstalled++
          this.appliedIndex = snap.meta.index
          this.configHash = JSON.stringify(snap.meta.config)
          checkers.onState(this, snap.meta.index, this.stateHash())
        },
        applied: e => {
          checkers.onApply(this, e, entryKey(e))
          this.appliedIndex = e.index
          if (e.kind === 'config') this.configHash = JSON.stringify(loop.appliedConfig)
          checkers.onState(this, e.index, this.stateHash())
        },
        snapshotTaken: () => { this.snapshotsTaken++ },
        snapshotFailed: (index, err) => { throw new CheckFailure(`${this.id}: snapshot at ${index} failed: ${err.message}`) }
      }
    })
    this.loop = loop
    this.configHash = JSON.stringify(loop.appliedConfig)
    return loop.core
  }

  processReadies (): void {
    const loop = this.loop as ReadyLoop
    for (let round = 0; loop.hasReady(); round++) {
      if (round > 10) throw new CheckFailure(`${this.id}: still has a Ready after 10 rounds`)
      this.processReady(loop)
    }
  }

  /**
   * Tracks a proposal this host's core took at (index, term) with `data`:
   * checks that what is applied there in that term is what was proposed,
   * records it as acknowledged, and tells `done` how it ended.
   */
  track (at: { index: number, term: number }, data: Uint8Array, done?: (outcome: ProposalOutcome) => void): void {
    const key = entryKey({ term: at.term, index: at.index, kind: 'normal', data })
    const loop = this.loop as ReadyLoop
    loop.track(at, (outcome: LoopOutcome) => {
      if (outcome.status === 'applied') {
        const applied = entryKey(outcome.entry)
        if (applied !== key) throw new CheckFailure(`${this.id}: applied ${applied} where it proposed ${key} in the same term`)
        this.ctx.checkers.onAcknowledge(outcome.entry, key)
        done?.({ applied: true, output: outcome.result as KvOutput | undefined })
      } else {
        done?.(outcome.status === 'lost' ? { applied: false } : undefined)
      }
    })
  }

  /**
   * Asks for a linearizable read of `key`: once the leadership is confirmed
   * and this host has applied the read index, `done` gets the value from its
   * state machine (undefined if the read was dropped or the host crashed).
   * False if the core refused.
   */
  readIndex (ctx: number, key: string, done: (value: string | null | undefined) => void): boolean {
    const loop = this.loop as ReadyLoop
    const sm = this.sm
    return loop.readIndex(ctx, index => {
      if (index === undefined) done(undefined)
      else loop.afterApplied(index, reached => { done(reached ? sm.get(key) : undefined) })
    })
  }

  /**
   * Stops the machine. With `point`, the crash lands inside the host loop,
   * after part of a Ready. With `loseUnsynced`, the disk forgets hard state
   * written since the last sync; the core marks a Ready mustSync whenever the
   * term, vote or entries change, so only a commit may be lost that way.
   * Returns whether the disk lost anything. Every proposal and read of this
   * incarnation ends unknown.
   */
  crash (point: CrashPoint | undefined, loseUnsynced: boolean): boolean {
    const loop = this.loop as ReadyLoop
    if (point !== undefined && loop.hasReady()) this.processReady(loop, point)
    this.settleAll()
    this.loop = undefined
    const synced = this.syncedHardState
    if (!loseUnsynced || sameHardState(this.storage.hardState(), synced)) return false
    this.storage.setHardState(synced)
    this.ctx.checkers.onUnsyncedLost(this, synced)
    return true
  }

  /** Outcomes still pending (at the end of a run, or in a crash) become unknown. */
  settleAll (): void {
    this.loop?.stop()
  }

  private processReady (loop: ReadyLoop, stopAfter?: ReadyPhase): void {
    if (loop.processReady(stopAfter) !== undefined) throw new CheckFailure(`${this.id}: the simulated disk is synchronous, yet the host loop waited`)
  }

  private stateHash (): string { return `${this.sm.hash()}|${this.configHash}` }

  /**
   * The disk as the host loop writes it: this host's MemoryStorage, with the
   * checkers watching every write and the last synced hard state kept for a
   * crash that loses what came after.
   */
  private simDisk (): HostStorage {
    const storage = this.storage
    const checkers = this.ctx.checkers
    const synced = (): void => { this.syncedHardState = storage.hardState() }
    return {
      term: index => storage.term(index),
      entries: (lo, hi, maxEntries) => storage.entries(lo, hi, maxEntries),
      lastIndex: () => storage.lastIndex(),
      firstIndex: () => storage.firstIndex(),
      hardState: () => storage.hardState(),
      snapshotMeta: (): SnapshotMeta => storage.snapshotMeta(),
      snapshot: (): Snapshot => storage.snapshot(),
      save: (write: RaftWrite) => {
        storage.append(write.entries)
        if (write.hardState !== undefined) {
          checkers.onPersistHardState(this, write.hardState)
          storage.setHardState(write.hardState)
        }
        // A synced write makes every earlier write durable too.
        if (write.sync) synced()
        checkers.onPersistEntries(this, write.entries)
        const core = this.core
        if (core?.role === 'leader' && write.entries.some(e => e.kind === 'noop' && e.term === core.term)) {
          checkers.onLeaderNoopPersisted(this, core.term)
        }
      },
      // Both are written synced (daemon/raft/level-storage.ts), which makes the hard state before them durable.
      installSnapshot: snap => {
        storage.installSnapshot(snap)
        synced()
      },
      saveSnapshot: (snap, compactTo) => {
        storage.saveSnapshot(snap, compactTo)
        synced()
      }
    }
  }
}

function sameHardState (a: HardState, b: HardState): boolean {
  return a.term === b.term && a.votedFor === b.votedFor && a.commit === b.commit
}
