// One simulated machine: a Raft core, its disk (a MemoryStorage, which
// outlives crashes), its key-value state machine (./kv-model.ts) and the
// host loop that drives the core exactly by the Ready contract, as
// daemon/raft/node.ts does: install a leader's snapshot, persist, then
// send (attaching this disk's snapshot to snapshot messages), then apply,
// then advance, then serve confirmed reads and maybe take a snapshot. A
// crash may cut the loop short and may lose hard state written without a
// sync; a restart restores the state machine from the disk's snapshot.
// May import: protocol/, daemon/clock, daemon/raft, this folder.
import type { ClusterConfig, Entry, HardState, RaftMessage } from '../../protocol/raft.ts'
import type { Rng } from '../../daemon/clock/clock.ts'
import { RaftCore } from '../../daemon/raft/core.ts'
import type { RaftConfig } from '../../daemon/raft/config.ts'
import { MemoryStorage } from '../../daemon/raft/storage.ts'
import { CheckFailure, entryKey } from './checkers.ts'
import type { Checkers, SimNodeView } from './checkers.ts'
import { KvStateMachine } from './kv-model.ts'
import type { KvOutput } from './linearizability.ts'

export type CoreSettings = Required<Pick<RaftConfig,
  'electionTicks' | 'heartbeatTicks' | 'maxInflight' | 'maxBatchEntries' | 'preVote' | 'checkQuorum'>>

/** Where a crash interrupts the host loop: after persisting a Ready, or after sending it too. */
export type CrashPoint = 'persist' | 'send'

export interface HostContext {
  peers: string[]
  settings: CoreSettings
  checkers: Checkers
  send: (m: RaftMessage, from: SimHost) => void
  /** the config a state machine starts with when the disk holds no snapshot */
  initialConfig: ClusterConfig
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

interface Proposal {
  term: number
  key: string
  done?: (outcome: ProposalOutcome) => void
}

interface PendingRead {
  key: string
  /** set once the leader confirmed the read */
  index?: number
  /** the value read, or undefined if the read was dropped */
  done: (value: string | null | undefined) => void
}

export class SimHost implements SimNodeView {
  readonly id: string
  readonly storage = new MemoryStorage()
  core: RaftCore | undefined
  incarnation = 0
  sm: KvStateMachine
  /** while down, the tick it restarts at */
  downUntil = 0
  /** proposals this incarnation made, by index, waiting to be applied */
  readonly pending = new Map<number, Proposal>()
  /** reads this incarnation asked for, by ctx */
  readonly reads = new Map<number, PendingRead>()
  snapshotsTaken = 0
  snapshotsInstalled = 0
  /** the hard state as of the last synced write */
  private syncedHardState: HardState = { term: 0, commit: 0 }
  private readonly ctx: HostContext

  constructor (id: string, ctx: HostContext) {
    this.id = id
    this.ctx = ctx
    this.sm = new KvStateMachine(ctx.initialConfig)
  }

  get appliedIndex (): number { return this.sm.applied }

  /** Writes the same first entry on every disk, as daemon/main.ts does when founding a cluster. */
  bootstrap (entry: Entry): void {
    this.storage.append([entry])
    this.storage.setHardState({ term: entry.term, commit: entry.index })
    this.syncedHardState = this.storage.hardState()
  }

  /** Starts from what the disk holds: the state machine from its snapshot, the rest replayed. */
  start (rng: Rng): RaftCore {
    this.incarnation++
    this.pending.clear()
    this.reads.clear()
    const snap = this.storage.snapshot()
    this.sm = new KvStateMachine(this.ctx.initialConfig)
    if (snap.meta.index > 0) this.restore(snap.data, snap.meta.index, snap.meta.config)
    this.core = new RaftCore({ id: this.id, peers: this.ctx.peers, rng, storage: this.storage, applied: snap.meta.index, ...this.ctx.settings })
    return this.core
  }

  processReadies (): void {
    const core = this.core as RaftCore
    for (let round = 0; core.hasReady(); round++) {
      if (round > 10) throw new CheckFailure(`${this.id}: still has a Ready after 10 rounds`)
      this.processReady()
    }
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
    const core = this.core as RaftCore
    if (point !== undefined && core.hasReady()) this.processReady(point)
    this.core = undefined
    this.settleAll()
    const synced = this.syncedHardState
    if (!loseUnsynced || sameHardState(this.storage.hardState(), synced)) return false
    this.storage.setHardState(synced)
    this.ctx.checkers.onUnsyncedLost(this, synced)
    return true
  }

  /** Outcomes still pending (at the end of a run) become unknown. */
  settleAll (): void {
    const proposals = [...this.pending.values()]
    const reads = [...this.reads.values()]
    this.pending.clear()
    this.reads.clear()
    for (const p of proposals) p.done?.(undefined)
    for (const r of reads) r.done(undefined)
  }

  private processReady (upTo?: CrashPoint): void {
    const core = this.core as RaftCore
    const checkers = this.ctx.checkers
    const rd = core.ready()
    if (rd.snapshot !== undefined) {
      const { meta, data } = rd.snapshot
      this.storage.installSnapshot(rd.snapshot)
      this.restore(data, meta.index, meta.config)
      this.snapshotsInstalled++
      // What the snapshot replaced cannot be told apart from what it holds.
      for (const [index, p] of this.pending) {
        if (index > meta.index) continue
        this.pending.delete(index)
        p.done?.(undefined)
      }
    }
    this.storage.append(rd.entries)
    if (rd.hardState !== undefined) {
      checkers.onPersistHardState(this, rd.hardState)
      this.storage.setHardState(rd.hardState)
    }
    // A synced write makes every earlier write durable too.
    if (rd.mustSync) this.syncedHardState = this.storage.hardState()
    checkers.onPersistEntries(this, rd.entries)
    if (core.role === 'leader' && rd.entries.some(e => e.kind === 'noop' && e.term === core.term)) {
      checkers.onLeaderNoopPersisted(this, core.term)
    }
    if (upTo === 'persist') return
    for (const m of rd.messages) {
      if (m.type === 'snapshot') {
        const snap = this.storage.snapshot()
        this.ctx.send({ ...m, meta: snap.meta, data: snap.data }, this)
      } else {
        this.ctx.send(m, this)
      }
    }
    if (upTo === 'send') return
    for (const e of rd.committed) this.apply(e)
    core.advance(rd)
    for (const r of rd.readStates) {
      const read = this.reads.get(r.ctx)
      if (read !== undefined) read.index = r.index
    }
    for (const ctx of rd.droppedReads) {
      const read = this.reads.get(ctx)
      this.reads.delete(ctx)
      read?.done(undefined)
    }
    this.serveReads()
    this.maybeSnapshot()
  }

  private restore (data: Uint8Array, index: number, config: ClusterConfig): void {
    this.sm.restore(data, index)
    if (JSON.stringify(this.sm.config) !== JSON.stringify(config)) {
      throw new CheckFailure(`${this.id}: snapshot at ${index} says config ${JSON.stringify(config)}, its data ${JSON.stringify(this.sm.config)}`)
    }
    this.ctx.checkers.onState(this, index, this.sm.hash())
  }

  private apply (e: Entry): void {
    const key = entryKey(e)
    this.ctx.checkers.onApply(this, e, key)
    const output = this.sm.apply(e)
    this.ctx.checkers.onState(this, e.index, this.sm.hash())
    const proposal = this.pending.get(e.index)
    if (proposal === undefined) return
    this.pending.delete(e.index)
    // Applied only if what this host applies at that index is what it
    // proposed there; another term's entry there means it was overwritten.
    const applied = proposal.term === e.term
    if (applied && proposal.key !== key) throw new CheckFailure(`${this.id}: applied ${key} where it proposed ${proposal.key} in the same term`)
    if (applied) this.ctx.checkers.onAcknowledge(e, key)
    proposal.done?.(applied ? { applied: true, output } : { applied: false })
  }

  /** Confirmed reads whose index this host has applied are answered from its state machine. */
  private serveReads (): void {
    for (const [ctx, read] of this.reads) {
      if (read.index === undefined || read.index > this.sm.applied) continue
      this.reads.delete(ctx)
      read.done(this.sm.get(read.key))
    }
  }

  private maybeSnapshot (): void {
    const snapIndex = this.storage.snapshotMeta().index
    const index = this.sm.applied
    if (index - snapIndex < this.ctx.snapshotEvery) return
    const term = this.storage.term(index)
    this.storage.saveSnapshot({ meta: { index, term, config: this.sm.config }, data: this.sm.snapshot() }, index - this.ctx.keepEntries)
    // A snapshot is written synced, which makes the hard state before it durable.
    this.syncedHardState = this.storage.hardState()
    this.snapshotsTaken++
  }
}

function sameHardState (a: HardState, b: HardState): boolean {
  return a.term === b.term && a.votedFor === b.votedFor && a.commit === b.commit
}
