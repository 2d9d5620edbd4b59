// The Raft node: the daemon's host around the pure core. It runs the host
// loop of ready-loop.ts (persist → send → apply → advance, snapshots and
// compaction) on the LevelDB storage, on the next turn of the event loop
// whenever the core has work, and ticks the core on the clock. Proposals
// and reads from anywhere in the daemon come in through the Replicator
// interface; on a follower they are forwarded to the leader over libp2p.
// Others see the core only through the methods below, never the core
// itself. Its lifecycle is daemon/lifecycle's Startable shape: start ticks,
// beforeStop hands leadership over, stop settles every caller still waiting.
// May import: protocol/, daemon/clock, daemon/log, and this folder.
import type { RaftServerView, RaftStatusView } from '../../protocol/api.ts'
import type { ClusterConfig, ForwardRequest, ForwardResponse, RaftMessage } from '../../protocol/raft.ts'
import type { Clock, Rng, TimerHandle } from '../clock/clock.ts'
import { every } from '../clock/clock.ts'
import type { Logger } from '../log/log.ts'
import { ConfigChangeError, NotLeaderError as CoreNotLeaderError } from './core.ts'
import type { ConfigChange, RaftCore } from './core.ts'
import type { LevelStorage } from './level-storage.ts'
import { ReadyLoop } from './ready-loop.ts'
import type { ProposalOutcome } from './ready-loop.ts'
import { CommandTooLargeError, MAX_COMMAND_BYTES, NoLeaderError, NotLeaderError, ProposalTimeoutError } from './replicator.ts'
import type { Proposed, Replicator } from './replicator.ts'
import type { StateMachine } from './state-machine.ts'

/** A forwarded request failed; `sent` false means it never reached the leader, so a retry is safe. */
export class ForwardError extends Error {
  override name = 'ForwardError'
  readonly sent: boolean
  constructor (message: string, sent: boolean) {
    super(message)
    this.sent = sent
  }
}

export interface RaftNodeInit {
  id: string
  /** the member's name and API address, for status */
  name: string
  api: string
  storage: LevelStorage
  stateMachine: StateMachine
  /** delivers messages to peers; never blocks */
  send: (m: RaftMessage) => void
  /** asks the leader `to` to propose or give a read index; throws ForwardError */
  forward: (to: string, req: ForwardRequest, timeoutMs: number) => Promise<ForwardResponse>
  /** a member's name and API address, for status and "not the leader" answers */
  describe: (id: string) => { name?: string, api?: string }
  clock: Clock
  rng: Rng
  log: Logger
  /** milliseconds per tick (default 50) */
  tickMs?: number
  /** ticks without a leader before campaigning (default 10) */
  electionTicks?: number
  /** ticks between a leader's heartbeats (default 2) */
  heartbeatTicks?: number
  /** applied entries between snapshots (default 10,000) */
  snapshotEntries?: number
  /** and at least this many times the last snapshot's size in applied entries' bytes (default 1; see ReadyLoopInit) */
  snapshotBytesRatio?: number
  /** entries kept in the log behind a snapshot, for followers a little behind (default a tenth of snapshotEntries, at most 1,000) */
  keepEntries?: number
  /** how long propose and readBarrier may take by default (default 5 s) */
  timeoutMs?: number
  /** how long a request waits for an election before answering "no leader" (default 2 s) */
  noLeaderWaitMs?: number
  /** the largest command, encoded, that propose takes, here and forwarded (default MAX_COMMAND_BYTES, 4 MiB) */
  maxCommandBytes?: number
}

/** How often a request without a known leader looks again. */
const RETRY_MS = 20

export class RaftNode implements Replicator {
  readonly id: string
  private readonly core: RaftCore
  private readonly loop: ReadyLoop
  private readonly init: RaftNodeInit
  private readonly storage: LevelStorage
  private readonly log: Logger
  private readonly clock: Clock
  private readonly timeoutMs: number
  private readonly noLeaderWaitMs: number
  private readonly maxCommandBytes: number
  private running = false
  private stopped = false
  private stopTicking: (() => void) | undefined
  private readSeq = 0
  private lastLeader: string | undefined
  private loopError: Error | undefined

  constructor (init: RaftNodeInit) {
    this.init = init
    this.id = init.id
    this.storage = init.storage
    this.log = init.log
    this.clock = init.clock
    this.timeoutMs = init.timeoutMs ?? 5000
    this.noLeaderWaitMs = init.noLeaderWaitMs ?? 2000
    this.maxCommandBytes = init.maxCommandBytes ?? MAX_COMMAND_BYTES
    const snapshotEntries = init.snapshotEntries ?? 10_000
    const log = this.log
    this.loop = new ReadyLoop({
      raft: {
        id: init.id,
        peers: [],
        rng: init.rng,
        electionTicks: init.electionTicks ?? 10,
        heartbeatTicks: init.heartbeatTicks ?? 2,
        maxInflight: 256,
        maxBatchEntries: 256
      },
      storage: init.storage,
      stateMachine: init.stateMachine,
      send: init.send,
      snapshotEntries,
      keepEntries: init.keepEntries ?? Math.min(1000, Math.floor(snapshotEntries / 10)),
      snapshotBytesRatio: init.snapshotBytesRatio ?? 1,
      // the store's snapshot is encoded between turns of the event loop, which heartbeats and the API keep
      pause: async () => { await new Promise<void>(resolve => { init.clock.setTimeout(resolve, 0) }) },
      events: {
        restored: (snap, from) => {
          if (from !== 'leader') return
          log.info({ event: 'raft.snapshot.installed', index: snap.meta.index, bytes: snap.data.length }, `installed the leader's snapshot at index ${snap.meta.index}`)
        },
        applied: e => {
          if (e.kind !== 'config') return
          const c = this.loop.appliedConfig
          log.info({ event: 'raft.config', index: e.index, voters: c.voters, learners: c.learners }, `cluster config at ${e.index}: ${c.voters.length} voters, ${c.learners.length} learners`)
        },
        snapshotTaken: (meta, bytes) => {
          log.info({ event: 'raft.snapshot.taken', index: meta.index, bytes, firstIndex: this.storage.firstIndex() }, `snapshot at index ${meta.index}; log compacted`)
        },
        snapshotFailed: (index, err) => {
          log.error({ event: 'raft.snapshot.failed', index, err: err.message }, `could not store a snapshot at index ${index}: ${err.message}`)
        }
      }
    })
    this.core = this.loop.core
  }

  start (): void {
    this.stopTicking = every(this.clock, this.init.tickMs ?? 50, () => {
      this.core.tick()
      this.schedule()
    })
    this.schedule()
  }

  /**
   * A leader hands over before it goes, when another voter can take over,
   * so that writes barely pause. It runs while everything else still does.
   */
  async beforeStop (): Promise<void> {
    if (this.stopped || !this.isLeader() || this.core.clusterConfig.voters.length <= 1) return
    const handed = await this.transferLeadership(2000)
    if (!handed) this.log.warn({ event: 'raft.transfer.failed' }, 'could not hand leadership over before stopping')
  }

  async stop (): Promise<void> {
    this.stopped = true
    this.stopTicking?.()
    this.loop.stop()
    // let a loop iteration under way finish its write
    for (let i = 0; i < 100 && this.running; i++) await new Promise(resolve => setTimeout(resolve, 10))
    await this.loop.snapshotWriting
  }

  // --- inputs ---

  step (m: RaftMessage): void {
    if (this.stopped) return
    this.core.step(m)
    this.schedule()
  }

  snapshotSent (peer: string, ok: boolean): void {
    this.core.snapshotSent(peer, ok)
    this.schedule()
  }

  peerDisconnected (peer: string): void {
    this.core.leaderUnreachable(peer)
  }

  // --- the host loop ---

  /**
   * Starts the loop if there is work. It starts on the next turn of the
   * event loop, so that every message and proposal that arrived in this one
   * goes into one Ready: fewer LevelDB batches and fewer, larger appends.
   */
  private schedule (): void {
    if (this.running || this.stopped || !this.core.hasReady()) return
    this.running = true
    setImmediate(() => { void this.run().finally(() => { this.running = false }) })
  }

  private async run (): Promise<void> {
    try {
      while (!this.stopped && this.loop.hasReady()) {
        await this.loop.processReady()
        this.noteLeader()
      }
    } catch (err) {
      // A failed write leaves the core ahead of the disk; going on could
      // acknowledge what is not stored. Stop this node and say so.
      this.loopError = err as Error
      this.stopped = true
      this.stopTicking?.()
      this.log.fatal({ event: 'raft.failed', err: (err as Error).stack }, `the Raft log failed and this peer stopped replicating: ${(err as Error).message}`)
    }
  }

  private noteLeader (): void {
    const leader = this.core.leaderId
    if (leader === this.lastLeader) return
    this.lastLeader = leader
    if (leader !== undefined) {
      const who = leader === this.id ? 'this peer' : (this.init.describe(leader).name ?? leader)
      this.log.info({ event: 'raft.leader', leader, term: this.core.term, self: leader === this.id }, `leader is ${who} (term ${this.core.term})`)
    }
  }

  // --- Replicator ---

  appliedIndex (): number { return this.loop.appliedIndex }

  // --- what others may know of the core ---

  isLeader (): boolean { return this.core.role === 'leader' }
  /** the config in force: the newest in the log, committed or not */
  clusterConfig (): ClusterConfig { return this.core.clusterConfig }
  /** whether a config change is in the log and not yet committed */
  configChangePending (): boolean { return this.core.configChangePending }
  commitIndex (): number { return this.core.commitIndex }
  /** on the leader, the highest index known to be replicated on `id`; undefined elsewhere or for a stranger */
  matchIndex (id: string): number | undefined { return this.core.progressOf(id)?.matchIndex }

  async propose (command: Uint8Array, timeoutMs = this.timeoutMs): Promise<Proposed<unknown>> {
    if (command.byteLength > this.maxCommandBytes) throw new CommandTooLargeError(command.byteLength, this.maxCommandBytes)
    const deadline = this.clock.now() + timeoutMs
    for (;;) {
      this.checkRunning()
      const at = this.core.role === 'leader' ? this.core.propose(command) : undefined
      if (at !== undefined && !(at instanceof CoreNotLeaderError)) {
        this.schedule()
        const outcome = await this.awaitProposal(at, deadline)
        if (outcome.status === 'applied') return { index: at.index, result: outcome.result }
        if (outcome.status === 'unknown') throw new ProposalTimeoutError('the write\'s outcome is unknown (a snapshot replaced the log); it may have been applied')
        continue // lost: never committed, so proposing again is safe
      }
      const leader = await this.awaitLeader(deadline)
      if (leader === this.id) continue
      let res: ForwardResponse
      try {
        res = await this.init.forward(leader, { type: 'propose', command }, Math.max(1, deadline - this.clock.now()))
      } catch (err) {
        if (err instanceof ForwardError && !err.sent) {
          if (this.clock.now() + RETRY_MS < deadline) {
            await this.sleep(RETRY_MS)
            continue
          }
          // Never sent: certainly not applied. Point the client at the leader.
          throw new NotLeaderError(this.init.describe(leader).api)
        }
        throw new ProposalTimeoutError(`the leader did not answer in time; the write may or may not have been applied (${(err as Error).message})`)
      }
      if (res.ok) {
        await this.awaitApplied(res.index, deadline)
        return { index: res.index, result: res.result }
      }
      if (res.error === 'timeout') throw new ProposalTimeoutError(res.message)
      if (res.error === 'too-large') throw new CommandTooLargeError(command.byteLength, this.maxCommandBytes, res.message)
      // not-leader or no-leader: the leader never proposed it; go again
      await this.sleep(RETRY_MS)
    }
  }

  async readBarrier (timeoutMs = this.timeoutMs): Promise<number> {
    const deadline = this.clock.now() + timeoutMs
    for (;;) {
      this.checkRunning()
      if (this.core.role === 'leader') {
        const index = await this.leaderReadIndex(Math.max(1, deadline - this.clock.now()))
        if (index !== undefined) return await this.appliedForRead(index, deadline)
        if (this.clock.now() >= deadline) throw new ProposalTimeoutError('the read could not be confirmed in time')
        continue
      }
      const leader = await this.awaitLeader(deadline)
      if (leader === this.id) continue
      let res: ForwardResponse
      try {
        res = await this.init.forward(leader, { type: 'read-index' }, Math.max(1, deadline - this.clock.now()))
      } catch (err) {
        if (this.clock.now() + RETRY_MS < deadline) {
          await this.sleep(RETRY_MS)
          continue
        }
        if (err instanceof ForwardError && !err.sent) throw new NotLeaderError(this.init.describe(leader).api)
        throw new ProposalTimeoutError(`the leader did not confirm the read in time (${(err as Error).message})`)
      }
      if (res.ok) return await this.appliedForRead(res.index, deadline)
      if (res.error === 'timeout') throw new ProposalTimeoutError(res.message)
      await this.sleep(RETRY_MS)
    }
  }

  /**
   * ReadIndex on this peer as leader: the index a read must see, once a
   * heartbeat round has confirmed the leadership; undefined if this peer
   * stopped leading (the read was dropped) or the round took too long.
   */
  private async leaderReadIndex (timeoutMs: number): Promise<number | undefined> {
    const ctx = ++this.readSeq
    return await new Promise<number | undefined>(resolve => {
      const timer = this.clock.setTimeout(() => { if (this.loop.cancelRead(ctx)) resolve(undefined) }, timeoutMs)
      const asked = this.loop.readIndex(ctx, index => { this.clock.clearTimeout(timer); resolve(index) })
      if (!asked) {
        this.clock.clearTimeout(timer)
        resolve(undefined)
      }
      this.schedule()
    })
  }

  /**
   * A read may only go ahead once this peer has applied the read index: a
   * peer still catching up (just restarted, or installing a snapshot) must
   * not answer from its older state, however long it takes.
   */
  private async appliedForRead (index: number, deadline: number): Promise<number> {
    await this.awaitApplied(index, deadline)
    const applied = this.loop.appliedIndex
    if (applied < index) throw new ProposalTimeoutError(`this peer has not caught up with the log in time (applied ${applied} of ${index}); retry, or read from another peer`)
    return index
  }

  /** Serves a follower's forwarded request; only the leader says yes. */
  async handleForward (req: ForwardRequest): Promise<ForwardResponse> {
    if (this.stopped) return { ok: false, error: 'no-leader', message: 'this peer is stopping' }
    const notLeader = (): ForwardResponse => {
      const leader = this.core.leaderId
      return leader !== undefined && leader !== this.id
        ? { ok: false, error: 'not-leader', message: 'not the leader', leader }
        : { ok: false, error: 'no-leader', message: 'no leader yet' }
    }
    const deadline = this.clock.now() + this.timeoutMs
    if (req.type === 'read-index') {
      if (this.core.role !== 'leader') return notLeader()
      const index = await this.leaderReadIndex(this.timeoutMs)
      return index !== undefined ? { ok: true, index } : notLeader()
    }
    // Whoever forwarded it, the log takes no command larger than a proposal here may be.
    if (req.command.byteLength > this.maxCommandBytes) {
      return { ok: false, error: 'too-large', message: new CommandTooLargeError(req.command.byteLength, this.maxCommandBytes).message }
    }
    for (;;) {
      const at = this.core.propose(req.command)
      if (at instanceof CoreNotLeaderError) return notLeader()
      this.schedule()
      let outcome: ProposalOutcome
      try {
        outcome = await this.awaitProposal(at, deadline)
      } catch (err) {
        return { ok: false, error: 'timeout', message: (err as Error).message }
      }
      if (outcome.status === 'applied') return { ok: true, index: at.index, result: outcome.result }
      if (outcome.status === 'unknown') return { ok: false, error: 'timeout', message: 'the outcome is unknown (a snapshot replaced the log)' }
      // overwritten by another leader: never committed; the caller may go again
      return notLeader()
    }
  }

  /** Proposes one membership change and waits until it is applied here. */
  async changeConfig (change: ConfigChange, timeoutMs = this.timeoutMs): Promise<void> {
    const at = this.core.changeConfig(change)
    if (at instanceof CoreNotLeaderError || at instanceof ConfigChangeError) throw at
    this.schedule()
    const outcome = await this.awaitProposal(at, this.clock.now() + timeoutMs)
    if (outcome.status !== 'applied') throw new ConfigChangeError('the change was overwritten by another leader', true)
  }

  /**
   * Hands leadership to the most up-to-date voter and waits (up to
   * `timeoutMs`) until this peer no longer leads. False if it still does.
   */
  async transferLeadership (timeoutMs = 2000): Promise<boolean> {
    if (this.core.role !== 'leader') return true
    const target = this.core.transferLeadership()
    if (target === undefined) return false
    this.log.info({ event: 'raft.transfer', to: target }, `handing leadership to ${this.init.describe(target).name ?? target}`)
    this.schedule()
    const deadline = this.clock.now() + timeoutMs
    while (this.core.role === 'leader' && this.clock.now() < deadline) await this.sleep(10)
    return this.core.role !== 'leader'
  }

  status (): RaftStatusView {
    const core = this.core
    const cfg = core.clusterConfig
    const view = (id: string): RaftServerView => {
      const d = id === this.id ? { name: this.init.name, api: this.init.api } : this.init.describe(id)
      const v: RaftServerView = { id }
      if (d.name !== undefined) v.name = d.name
      if (d.api !== undefined) v.api = d.api
      const pr = core.progressOf(id)
      if (pr !== undefined) {
        v.matchIndex = pr.matchIndex
        v.lag = Math.max(0, core.commitIndex - pr.matchIndex)
      }
      return v
    }
    const role = core.role === 'follower' && !core.isVoter() ? 'learner' : core.role
    const out: RaftStatusView = {
      kind: 'RaftStatus',
      id: this.id,
      name: this.init.name,
      role,
      term: core.term,
      commitIndex: core.commitIndex,
      appliedIndex: this.loop.appliedIndex,
      lastIndex: core.lastIndex,
      snapshotIndex: this.storage.snapshotMeta().index,
      voters: cfg.voters.map(view),
      learners: cfg.learners.map(view)
    }
    const leader = core.leaderId
    if (leader !== undefined) {
      const d = leader === this.id ? { name: this.init.name, api: this.init.api } : this.init.describe(leader)
      out.leader = { id: leader, ...(d.name !== undefined ? { name: d.name } : {}), ...(d.api !== undefined ? { api: d.api } : {}) }
    }
    return out
  }

  // --- waiting ---

  private checkRunning (): void {
    if (this.loopError !== undefined) throw new Error(`the Raft log on this peer failed: ${this.loopError.message}`)
    if (this.stopped) throw new NoLeaderError('this peer is shutting down; retry on another peer')
  }

  /** The leader's id once one is known, waiting up to noLeaderWaitMs (and the deadline). */
  private async awaitLeader (deadline: number): Promise<string> {
    const giveUp = Math.min(deadline, this.clock.now() + this.noLeaderWaitMs)
    for (;;) {
      this.checkRunning()
      const leader = this.core.leaderId
      // a leader handing over refuses proposals: wait for the next one
      if (leader !== undefined && !(leader === this.id && this.core.transferee !== undefined)) return leader
      if (this.clock.now() >= giveUp) throw new NoLeaderError()
      await this.sleep(RETRY_MS)
    }
  }

  private async awaitProposal (at: { index: number, term: number }, deadline: number): Promise<ProposalOutcome> {
    let timer: TimerHandle | undefined
    const r = await new Promise<ProposalOutcome | 'timeout'>(resolve => {
      timer = this.clock.setTimeout(() => { resolve('timeout') }, Math.max(1, deadline - this.clock.now()))
      this.loop.track(at, resolve)
    })
    if (timer !== undefined) this.clock.clearTimeout(timer)
    if (r === 'timeout') {
      this.loop.untrack(at)
      throw new ProposalTimeoutError('the write was not committed in time; it may or may not be applied later')
    }
    if (r.status !== 'applied') this.checkRunning()
    return r
  }

  /** Waits until this peer has applied `index`, up to the deadline; the write is committed either way. */
  private async awaitApplied (index: number, deadline: number): Promise<void> {
    if (this.loop.appliedIndex >= index) return
    await new Promise<void>(resolve => {
      const timer = this.clock.setTimeout(resolve, Math.max(1, deadline - this.clock.now()))
      this.loop.afterApplied(index, () => { this.clock.clearTimeout(timer); resolve() })
    })
  }

  private async sleep (ms: number): Promise<void> {
    await new Promise<void>(resolve => this.clock.setTimeout(resolve, ms))
  }
}
