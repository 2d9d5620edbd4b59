// One simulated machine: a Raft core, its disk (a MemoryStorage, which
// outlives crashes), its state machine (the applied entries of this
// incarnation) and the host loop that drives the core exactly by the Ready
// contract: persist, then send, then apply, then advance. A crash may cut
// the loop short and may lose hard state written without a sync.
// May import: protocol/, daemon/clock, daemon/raft, ./checkers.ts.
import type { Entry, HardState, RaftMessage } from '../../protocol/raft.ts'
import type { Rng } from '../../daemon/clock/clock.ts'
import { RaftCore } from '../../daemon/raft/core.ts'
import type { RaftConfig } from '../../daemon/raft/config.ts'
import { MemoryStorage } from '../../daemon/raft/storage.ts'
import { CheckFailure, entryKey } from './checkers.ts'
import type { Checkers, SimNodeView } from './checkers.ts'

export type CoreSettings = Required<Pick<RaftConfig,
  'electionTicks' | 'heartbeatTicks' | 'maxInflight' | 'maxBatchEntries' | 'preVote' | 'checkQuorum'>>

/** Where a crash interrupts the host loop: after persisting a Ready, or after sending it too. */
export type CrashPoint = 'persist' | 'send'

export interface HostContext {
  peers: string[]
  settings: CoreSettings
  checkers: Checkers
  send: (m: RaftMessage) => void
}

export class SimHost implements SimNodeView {
  readonly id: string
  readonly storage = new MemoryStorage()
  core: RaftCore | undefined
  incarnation = 0
  applied: Entry[] = []
  /** while down, the tick it restarts at */
  downUntil = 0
  /** proposals this incarnation made, by index, waiting to be applied */
  readonly pending = new Map<number, { term: number, key: string }>()
  /** the hard state as of the last synced write */
  private syncedHardState: HardState = { term: 0, commit: 0 }
  private readonly ctx: HostContext

  constructor (id: string, ctx: HostContext) {
    this.id = id
    this.ctx = ctx
  }

  /** Starts from what the disk holds, with a fresh state machine that replays the log. */
  start (rng: Rng): RaftCore {
    this.incarnation++
    this.applied = []
    this.pending.clear()
    this.core = new RaftCore({ id: this.id, peers: this.ctx.peers, rng, storage: this.storage, ...this.ctx.settings })
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
   * Returns whether the disk lost anything.
   */
  crash (point: CrashPoint | undefined, loseUnsynced: boolean): boolean {
    const core = this.core as RaftCore
    if (point !== undefined && core.hasReady()) this.processReady(point)
    this.core = undefined
    this.pending.clear()
    const synced = this.syncedHardState
    if (!loseUnsynced || sameHardState(this.storage.hardState(), synced)) return false
    this.storage.setHardState(synced)
    this.ctx.checkers.onUnsyncedLost(this, synced)
    return true
  }

  private processReady (upTo?: CrashPoint): void {
    const core = this.core as RaftCore
    const checkers = this.ctx.checkers
    const rd = core.ready()
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
    for (const m of rd.messages) this.ctx.send(m)
    if (upTo === 'send') return
    for (const e of rd.committed) this.apply(e)
    core.advance(rd)
  }

  private apply (e: Entry): void {
    const key = entryKey(e)
    this.ctx.checkers.onApply(this, e, key)
    this.applied.push(e)
    const proposal = this.pending.get(e.index)
    if (proposal === undefined) return
    this.pending.delete(e.index)
    // Acknowledged only if what the leader applies at that index is what it
    // proposed there; otherwise the proposal was overwritten and is lost.
    if (proposal.term === e.term && proposal.key === key) this.ctx.checkers.onAcknowledge(e, key)
  }
}

function sameHardState (a: HardState, b: HardState): boolean {
  return a.term === b.term && a.votedFor === b.votedFor && a.commit === b.commit
}
