// The Raft core: a pure, synchronous state machine in the style of
// etcd-io/raft's RawNode. It does no I/O and reads no clock: time is tick()
// calls, randomness comes from the injected Rng, the log is read through
// RaftStorage, and everything the host must do comes out of ready().
//
// The host loop, for every Ready, in this order:
//   1. persist: append ready.entries to storage (they may overwrite a
//      suffix), then store ready.hardState if present; sync if mustSync;
//   2. send ready.messages (only now: a vote or an acknowledgement must
//      never leave before what it promises is on disk);
//   3. apply ready.committed to the state machine, in order;
//   4. advance(ready).
// tick(), step() and propose() may be called at any time, also between
// ready() and advance(); what they cause goes into the next Ready. Only one
// Ready may be outstanding.
//
// May import: protocol/ and this folder.
import { decode, encode } from '../../protocol/codec.ts'
import { isClusterConfig } from '../../protocol/raft.ts'
import type {
  AppendMessage, AppendResponseMessage, ClusterConfig, ConflictHint, Entry, HardState, RaftMessage, SnapshotMessage, SnapshotMeta,
  VoteMessage, VoteResponseMessage
} from '../../protocol/raft.ts'
import type { RaftConfig, ResolvedRaftConfig } from './config.ts'
import { resolveRaftConfig } from './config.ts'
import { LeaderState } from './leader.ts'
import type { ProgressView, ReadState } from './leader.ts'
import { RaftLog } from './log.ts'
import { voteResult } from './quorum.ts'

export type { ProgressView, ReadState } from './leader.ts'

/** One step of a single-server membership change. */
export interface ConfigChange {
  type: 'add-learner' | 'promote' | 'demote' | 'remove'
  id: string
}

/** A membership change the leader cannot make now; `retry` if it may work later. */
export class ConfigChangeError extends Error {
  override name = 'ConfigChangeError'
  readonly retry: boolean
  constructor (message: string, retry: boolean) {
    super(message)
    this.retry = retry
  }
}

export function decodeClusterConfig (data: Uint8Array): ClusterConfig {
  return decode(data, isClusterConfig, 'cluster config entry')
}

export function encodeClusterConfig (c: ClusterConfig): Uint8Array {
  return encode({ voters: c.voters, learners: c.learners })
}

export type Role = 'follower' | 'pre-candidate' | 'candidate' | 'leader'

/** What the host must do next; see the loop in this file's header. */
export interface Ready {
  /**
   * A leader's snapshot to install before anything else: persist it (it
   * replaces the whole log) and restore the state machine from its data.
   */
  snapshot?: { meta: SnapshotMeta, data: Uint8Array }
  /** linearizable reads confirmed: each may be served once `index` is applied */
  readStates: ReadState[]
  /** reads dropped because this peer stopped leading; the host answers them "retry" */
  droppedReads: number[]
  /** only when term, votedFor or commit changed since the last Ready */
  hardState?: HardState
  /** to persist, in order, before sending; the first may overwrite a persisted suffix */
  entries: Entry[]
  /** to send after persisting */
  messages: RaftMessage[]
  /** to apply, in order, after persisting */
  committed: Entry[]
  /** entries, term or vote changed: the write must reach the disk (commit alone need not) */
  mustSync: boolean
}

/** Proposals go to the leader; `leaderId` is this peer's best guess of it. */
export class NotLeaderError extends Error {
  override name = 'NotLeaderError'
  readonly leaderId: string | undefined

  constructor (leaderId: string | undefined) {
    super(leaderId === undefined ? 'not the leader, and no leader is known' : `not the leader; the leader is ${leaderId}`)
    this.leaderId = leaderId
  }
}

type Campaign = 'pre-vote' | 'election'

export class RaftCore {
  readonly id: string
  private readonly config: ResolvedRaftConfig
  private readonly raftLog: RaftLog
  private currentRole: Role = 'follower'
  private currentTerm: number
  private vote: string | undefined
  private lead: string | undefined
  private electionElapsed = 0
  private randomizedElectionTimeout = 0
  private readonly votes = new Map<string, boolean>()
  /** present exactly while this peer leads */
  private leader: LeaderState | undefined
  private msgs: RaftMessage[] = []
  /** the hard state as of the last Ready handed out */
  private readyHardState: HardState
  private outstanding = false
  /** the committed cluster config: who votes, who only follows */
  private cluster: ClusterConfig
  /** config entries in the log above commit, oldest first; the newest is in force (see effective()) */
  private pendingConfigs: Array<{ index: number, term: number, config: ClusterConfig }> = []
  private pendingSnapshot: { meta: SnapshotMeta, data: Uint8Array } | undefined
  private droppedReads: number[] = []

  constructor (config: RaftConfig) {
    this.config = resolveRaftConfig(config)
    this.id = this.config.id
    this.raftLog = new RaftLog(this.config.storage, this.config.applied)
    const hs = this.config.storage.hardState()
    this.currentTerm = hs.term
    this.vote = hs.votedFor
    this.readyHardState = this.hardState()
    this.cluster = this.loadConfig()
    this.becomeFollower(hs.term, undefined)
  }

  /** The config of the snapshot, then every config entry after it: committed ones apply, later ones wait. */
  private loadConfig (): ClusterConfig {
    const storage = this.config.storage
    const snap = storage.snapshotMeta()
    // Before any committed config entry, the config is the snapshot's, or
    // with no snapshot the one the peer was started with (`peers`). An
    // uncommitted entry does not replace it: that entry may yet be
    // overwritten (a restart with one in the log once lost the voters).
    let cluster: ClusterConfig = snap.index > 0 ? snap.config : { voters: this.config.peers.slice(), learners: [] }
    const from = Math.max(storage.firstIndex(), snap.index + 1)
    if (from <= storage.lastIndex()) {
      for (const e of storage.entries(from, storage.lastIndex() + 1)) {
        if (e.kind !== 'config') continue
        const c = decodeClusterConfig(e.data)
        if (e.index <= this.raftLog.committed) cluster = c
        else this.pendingConfigs.push({ index: e.index, term: e.term, config: c })
      }
    }
    return cluster
  }

  get role (): Role { return this.currentRole }
  /** the committed cluster config */
  get clusterConfig (): ClusterConfig { return this.effective() }
  /** the newest config committed (clusterConfig may be one uncommitted change ahead) */
  get committedConfig (): ClusterConfig { return this.cluster }
  /** whether a config change is in the log and not yet committed */
  get configChangePending (): boolean { return this.pendingConfigs.length > 0 }
  /** the voter a leadership transfer is handing over to, if one is under way */
  get transferee (): string | undefined { return this.leader?.transferring }
  isVoter (id = this.id): boolean { return this.effective().voters.includes(id) }

  /**
   * The config in force: the newest one in the log, committed or not (the
   * Raft thesis, 4.1). A peer that waited for commit could deadlock: the
   * only voter left by a change may not know the change committed, while
   * the peers that know are no longer voters.
   */
  private effective (): ClusterConfig { return this.pendingConfigs.at(-1)?.config ?? this.cluster }
  get term (): number { return this.currentTerm }
  get leaderId (): string | undefined { return this.lead }
  get votedFor (): string | undefined { return this.vote }
  get commitIndex (): number { return this.raftLog.committed }
  get lastApplied (): number { return this.raftLog.applied }
  get lastIndex (): number { return this.raftLog.lastIndex() }

  /** The leader's replication state for a peer; undefined unless leader. */
  progressOf (peer: string): ProgressView | undefined {
    return this.leader?.progressOf(peer)
  }

  tick (): void {
    if (this.leader === undefined) this.tickElection()
    else if (!this.leader.tick()) this.becomeFollower(this.currentTerm, undefined)
  }

  /**
   * Appends a command to the log. Refused (NotLeaderError) by a follower,
   * and by a leader that is handing over: the caller retries with whoever
   * leads next.
   */
  propose (data: Uint8Array): { index: number, term: number } | NotLeaderError {
    if (this.leader === undefined) return new NotLeaderError(this.lead)
    if (this.leader.transferring !== undefined) return new NotLeaderError(undefined)
    const at = this.leader.propose(data)
    this.takeCommittedConfigs()
    return at
  }

  /**
   * Proposes one single-server membership change. Only one may be in the
   * log uncommitted at a time, and only once this term's first entry has
   * committed (so that no change of an earlier term is still in flight).
   */
  changeConfig (change: ConfigChange): { index: number, term: number } | NotLeaderError | ConfigChangeError {
    if (this.leader === undefined) return new NotLeaderError(this.lead)
    if (this.leader.transferring !== undefined) return new ConfigChangeError('a leadership transfer is under way', true)
    if (this.pendingConfigs.length > 0) return new ConfigChangeError('another config change is not committed yet', true)
    if (!this.leader.committedInTerm()) return new ConfigChangeError('this term\'s first entry is not committed yet', true)
    const { voters, learners } = this.cluster
    const { id, type } = change
    const isVoter = voters.includes(id)
    const isLearner = learners.includes(id)
    let next: ClusterConfig
    switch (type) {
      case 'add-learner':
        if (isVoter || isLearner) return new ConfigChangeError(`${id} is already a ${isVoter ? 'voter' : 'learner'}`, false)
        next = { voters, learners: [...learners, id] }
        break
      case 'promote':
        if (!isLearner) return new ConfigChangeError(`${id} is not a learner`, false)
        next = { voters: [...voters, id], learners: learners.filter(l => l !== id) }
        break
      case 'demote':
        if (!isVoter) return new ConfigChangeError(`${id} is not a voter`, false)
        if (id === this.id) return new ConfigChangeError('the leader cannot demote itself; transfer leadership first', false)
        next = { voters: voters.filter(v => v !== id), learners: [...learners, id] }
        break
      case 'remove':
        if (!isVoter && !isLearner) return new ConfigChangeError(`${id} is not in the cluster`, false)
        if (id === this.id) return new ConfigChangeError('the leader cannot remove itself; transfer leadership first', false)
        next = { voters: voters.filter(v => v !== id), learners: learners.filter(l => l !== id) }
        break
    }
    if (next.voters.length === 0) return new ConfigChangeError('the last voter cannot go', false)
    const at = this.leader.propose(encodeClusterConfig(next), 'config')
    this.pendingConfigs.push({ index: at.index, term: at.term, config: next })
    this.leader.setConfig(next)
    this.takeCommittedConfigs()
    return at
  }

  /**
   * Hands leadership to `to`, or to the most up-to-date voter: it is brought
   * up to date, then told to campaign at once. Proposals are refused
   * meanwhile; the transfer is abandoned after an election timeout.
   * Returns the chosen voter, or undefined if there is none.
   */
  transferLeadership (to?: string): string | undefined {
    if (this.leader === undefined) return undefined
    const target = to ?? this.leader.mostUpToDate()
    if (target === undefined || target === this.id || !this.effective().voters.includes(target)) return undefined
    this.leader.transferTo(target)
    return target
  }

  /**
   * Asks for a linearizable read point; it comes back in a later Ready's
   * readStates under `ctx` (or in droppedReads if leadership ends first).
   */
  readIndex (ctx: number): NotLeaderError | undefined {
    if (this.leader === undefined) return new NotLeaderError(this.lead)
    this.leader.readIndex(ctx)
    return undefined
  }

  /** The transport finished (ok) or gave up (not ok) sending a snapshot to `peer`. */
  snapshotSent (peer: string, ok: boolean): void { this.leader?.snapshotSent(peer, ok) }

  /**
   * The host saw the connection to `peer` drop. If it is the leader, the
   * lease is void: a crashed leader's process closes its connections, and
   * waiting out a full election timeout would only delay the failover. The
   * campaign still waits a random part of a timeout, so that the survivors
   * do not all campaign at once. Safe: it only makes this peer willing to
   * vote and campaign sooner, as a lost heartbeat would.
   */
  leaderUnreachable (peer: string): void {
    if (this.leader !== undefined || this.lead !== peer) return
    this.lead = undefined
    const half = Math.max(1, Math.ceil(this.config.electionTicks / 2))
    this.electionElapsed = Math.max(this.electionElapsed, this.randomizedElectionTimeout - 1 - Math.floor(this.config.rng.next() * half))
  }

  step (m: RaftMessage): void {
    this.stepInner(m)
    this.takeCommittedConfigs()
  }

  private stepInner (m: RaftMessage): void {
    if (m.to !== this.id || m.from === this.id) return
    if (m.term > this.currentTerm) {
      if (m.type === 'vote') {
        // The leader lease: a peer that heard from a leader within an
        // election timeout believes it alive and will not help depose it.
        // PreVote honours it always; a real vote with CheckQuorum (etcd's rule).
        // A leader's electionElapsed stays 0: it is always in its own lease.
        const inLease = this.lead !== undefined && this.electionElapsed < this.config.electionTicks
        if (inLease && (m.preVote || this.config.checkQuorum) && m.transfer !== true) return
      }
      const keepsTerm = (m.type === 'vote' && m.preVote) ||
        // a granted PreVote carries the term we would campaign in, not one anyone is in
        (m.type === 'vote-response' && m.preVote && m.granted)
      if (!keepsTerm) this.becomeFollower(m.term, m.type === 'append' ? m.from : undefined)
    } else if (m.term < this.currentTerm) {
      this.answerStale(m)
      return
    }

    switch (m.type) {
      case 'vote': this.handleVote(m); return
      case 'timeout-now':
        // The leader hands over: campaign now, skipping PreVote (the leader
        // asked, so no lease stands in the way).
        if (this.currentRole === 'follower' && this.promotable()) this.campaign('election', true)
        return
    }
    switch (this.currentRole) {
      case 'leader':
        if (m.type === 'append-response') this.leader?.handleAppendResponse(m)
        return
      case 'pre-candidate':
      case 'candidate':
        if (m.type === 'append' || m.type === 'snapshot') {
          this.becomeFollower(m.term, m.from)
          if (m.type === 'append') this.handleAppend(m)
          else this.handleSnapshot(m)
        } else if (m.type === 'vote-response') {
          this.handleVoteResponse(m)
        }
        return
      case 'follower':
        if (m.type === 'append') this.handleAppend(m)
        else if (m.type === 'snapshot') this.handleSnapshot(m)
    }
  }

  /** Moves committed config entries out of the pending list; a leader that a committed config removed steps down. */
  private takeCommittedConfigs (): void {
    while (this.pendingConfigs.length > 0) {
      const next = this.pendingConfigs[0] as { index: number, term: number, config: ClusterConfig }
      if (next.index > this.raftLog.committed) break
      this.pendingConfigs.shift()
      this.cluster = next.config
      // A leader already uses the newest config; one that a committed
      // config leaves out of the voters steps down (after saying so).
      if (this.leader !== undefined && !this.cluster.voters.includes(this.id)) {
        this.leader.announceCommit()
        this.becomeFollower(this.currentTerm, undefined)
        return
      }
    }
  }

  /** Tracks config entries just written to the log, and forgets any that were overwritten. */
  private noteEntries (entries: readonly Entry[]): void {
    const log = this.raftLog
    this.pendingConfigs = this.pendingConfigs.filter(p => log.term(p.index) === p.term)
    for (const e of entries) {
      if (e.kind !== 'config' || e.index <= log.committed || log.term(e.index) !== e.term) continue
      if (this.pendingConfigs.some(p => p.index === e.index)) continue
      let config: ClusterConfig
      try {
        config = decodeClusterConfig(e.data)
      } catch {
        continue // cannot happen for a log made by a leader of ours
      }
      this.pendingConfigs.push({ index: e.index, term: e.term, config })
    }
    this.pendingConfigs.sort((a, b) => a.index - b.index)
  }

  hasReady (): boolean {
    return this.leader?.hasPendingBroadcast() === true || this.msgs.length > 0 || this.raftLog.hasUnstable() ||
      this.raftLog.hasNextCommitted() || !sameHardState(this.hardState(), this.readyHardState) ||
      this.pendingSnapshot !== undefined || (this.leader?.readStates.length ?? 0) > 0 || this.droppedReads.length > 0
  }

  ready (): Ready {
    if (this.outstanding) throw new Error('raft: ready() called again before advance()')
    this.leader?.broadcast()
    const hs = this.hardState()
    const prev = this.readyHardState
    const rd: Ready = {
      entries: this.raftLog.unstableEntries(),
      messages: this.msgs,
      committed: this.raftLog.nextCommitted(),
      mustSync: false,
      readStates: [],
      droppedReads: this.droppedReads
    }
    if (this.leader !== undefined) {
      rd.readStates = this.leader.readStates
      this.leader.readStates = []
    }
    if (this.pendingSnapshot !== undefined) rd.snapshot = this.pendingSnapshot
    this.pendingSnapshot = undefined
    rd.mustSync = rd.entries.length > 0 || hs.term !== prev.term || hs.votedFor !== prev.votedFor || rd.snapshot !== undefined
    if (!sameHardState(hs, prev)) rd.hardState = hs
    this.msgs = []
    this.droppedReads = []
    this.readyHardState = hs
    this.outstanding = true
    return rd
  }

  advance (rd: Ready): void {
    if (!this.outstanding) throw new Error('raft: advance() without an outstanding Ready')
    this.outstanding = false
    if (rd.snapshot !== undefined) this.raftLog.snapshotStable(rd.snapshot.meta)
    const lastEntry = rd.entries.at(-1)
    if (lastEntry !== undefined) this.raftLog.stableTo(lastEntry.index, lastEntry.term)
    const lastCommitted = rd.committed.at(-1)
    if (lastCommitted !== undefined) this.raftLog.appliedTo(lastCommitted.index)
  }

  // --- roles ---

  private reset (term: number): void {
    if (term !== this.currentTerm) {
      this.currentTerm = term
      this.vote = undefined
    }
    this.lead = undefined
    this.electionElapsed = 0
    this.randomizeElectionTimeout()
    this.votes.clear()
    if (this.leader !== undefined) {
      this.droppedReads.push(...this.leader.pendingReadContexts())
      for (const r of this.leader.readStates) this.droppedReads.push(r.ctx)
    }
    this.leader = undefined
  }

  private randomizeElectionTimeout (): void {
    const e = this.config.electionTicks
    this.randomizedElectionTimeout = e + Math.floor(this.config.rng.next() * e)
  }

  private becomeFollower (term: number, lead: string | undefined): void {
    this.reset(term)
    this.currentRole = 'follower'
    this.lead = lead
  }

  private becomeLeader (): void {
    this.reset(this.currentTerm)
    this.currentRole = 'leader'
    this.lead = this.id
    this.leader = new LeaderState({
      id: this.id, term: this.currentTerm, config: this.config, cluster: this.effective(), raftLog: this.raftLog, send: m => { this.send(m) }
    })
    this.takeCommittedConfigs()
  }

  private promotable (): boolean { return this.effective().voters.includes(this.id) && this.raftLog.pendingSnapshot() === undefined }

  private voters (): string[] { return this.effective().voters.filter(p => p !== this.id) }

  // --- elections ---

  private tickElection (): void {
    this.electionElapsed++
    if (this.promotable() && this.electionElapsed >= this.randomizedElectionTimeout) {
      this.campaign(this.config.preVote ? 'pre-vote' : 'election')
    }
  }

  private campaign (kind: Campaign, transfer = false): void {
    let term: number
    if (kind === 'pre-vote') {
      // A pre-candidate keeps its term and vote, so a failed PreVote leaves
      // no trace that could disrupt anyone.
      this.reset(this.currentTerm)
      this.currentRole = 'pre-candidate'
      term = this.currentTerm + 1
    } else {
      this.reset(this.currentTerm + 1)
      this.currentRole = 'candidate'
      this.vote = this.id
      term = this.currentTerm
    }
    if (this.recordVote(this.id, true)) return
    const lastLogIndex = this.raftLog.lastIndex()
    const lastLogTerm = this.raftLog.lastTerm()
    for (const to of this.voters()) {
      const m: VoteMessage = { type: 'vote', from: this.id, to, term, preVote: kind === 'pre-vote', lastLogIndex, lastLogTerm }
      if (transfer) m.transfer = true
      this.send(m)
    }
  }

  private handleVote (m: VoteMessage): void {
    const canVote = this.vote === m.from ||
      (this.vote === undefined && this.lead === undefined) ||
      (m.preVote && m.term > this.currentTerm)
    if (canVote && this.raftLog.isUpToDate(m.lastLogIndex, m.lastLogTerm)) {
      this.send<VoteResponseMessage>({ type: 'vote-response', from: this.id, to: m.from, term: m.term, preVote: m.preVote, granted: true })
      if (!m.preVote) {
        this.vote = m.from
        this.electionElapsed = 0
      }
    } else {
      this.send<VoteResponseMessage>({ type: 'vote-response', from: this.id, to: m.from, term: this.currentTerm, preVote: m.preVote, granted: false })
    }
  }

  private handleVoteResponse (m: VoteResponseMessage): void {
    const preCandidate = this.currentRole === 'pre-candidate'
    if (m.preVote !== preCandidate) return
    // A granted PreVote carries the term we asked for; anything else is from an older round.
    const expected = preCandidate && m.granted ? this.currentTerm + 1 : this.currentTerm
    if (m.term !== expected) return
    this.recordVote(m.from, m.granted)
  }

  /** Counts a vote; true if it decided the campaign. */
  private recordVote (from: string, granted: boolean): boolean {
    if (!this.votes.has(from)) this.votes.set(from, granted)
    switch (voteResult(this.effective().voters, this.votes)) {
      case 'won':
        if (this.currentRole === 'pre-candidate') this.campaign('election')
        else this.becomeLeader()
        return true
      case 'lost':
        this.becomeFollower(this.currentTerm, undefined)
        return true
      case 'pending':
        return false
    }
  }

  /**
   * A message from an older term is dropped, but some are answered so that
   * their senders catch up: a stale leader learns of the newer term and
   * steps down (with PreVote and the lease, nothing else would tell it), and
   * a candidate or pre-candidate behind our term hears back instead of
   * campaigning forever in terms no one answers. (Configs can differ while
   * a change is uncommitted: the peer with the newer term may never ask the
   * stale candidate for its vote, so this answer is its only news.)
   */
  private answerStale (m: RaftMessage): void {
    if (m.type === 'append') {
      // The hint is meaningless: the higher term makes the receiver step down.
      this.send<AppendResponseMessage>({
        type: 'append-response', from: this.id, to: m.from, term: this.currentTerm, success: false, rejectedIndex: m.prevLogIndex, hint: { conflictIndex: 0 }
      })
    } else if (m.type === 'vote') {
      this.send<VoteResponseMessage>({ type: 'vote-response', from: this.id, to: m.from, term: this.currentTerm, preVote: m.preVote, granted: false })
    }
  }

  // --- follower side of replication ---

  private handleAppend (m: AppendMessage): void {
    this.electionElapsed = 0
    this.lead = m.from
    const log = this.raftLog
    // Committed entries are the same in every leader's log, so an append
    // from below commit can only confirm them.
    if (m.prevLogIndex < log.committed) {
      this.acceptAppend(m.from, log.committed, m.read)
      return
    }
    if (!wellFormed(m)) return
    if (log.matchTerm(m.prevLogIndex, m.prevLogTerm)) {
      const lastNew = log.appendAfter(m.prevLogIndex, m.entries)
      if (m.entries.length > 0) this.noteEntries(m.entries)
      // Only entries known to match the leader's may be committed.
      log.commitTo(Math.min(m.commit, lastNew))
      this.acceptAppend(m.from, lastNew, m.read)
      return
    }
    let hint: ConflictHint
    const term = log.term(m.prevLogIndex)
    if (term === undefined) hint = { conflictIndex: log.lastIndex() + 1 }
    else hint = { conflictTerm: term, conflictIndex: log.firstIndexOfTermAt(m.prevLogIndex) }
    this.send<AppendResponseMessage>({
      type: 'append-response', from: this.id, to: m.from, term: this.currentTerm, success: false, rejectedIndex: m.prevLogIndex, hint
    })
  }

  private acceptAppend (to: string, matchIndex: number, read?: number): void {
    const m: AppendResponseMessage = { type: 'append-response', from: this.id, to, term: this.currentTerm, success: true, matchIndex }
    if (read !== undefined) m.read = read
    this.send(m)
  }

  /**
   * InstallSnapshot. A snapshot the log already covers only moves commit;
   * otherwise it replaces the whole log, and the host installs it (with the
   * state machine) before this peer answers.
   */
  private handleSnapshot (m: SnapshotMessage): void {
    this.electionElapsed = 0
    this.lead = m.from
    const log = this.raftLog
    const meta = m.meta
    if (m.data === undefined) return
    if (meta.index <= log.committed) {
      this.acceptAppend(m.from, log.committed)
      return
    }
    if (log.matchTerm(meta.index, meta.term)) {
      log.commitTo(meta.index)
      this.acceptAppend(m.from, meta.index)
      return
    }
    log.restore(meta)
    this.cluster = meta.config
    this.pendingConfigs = []
    this.pendingSnapshot = { meta, data: m.data }
    this.acceptAppend(m.from, meta.index)
  }

  private send<M extends RaftMessage> (m: M): void { this.msgs.push(m) }

  private hardState (): HardState {
    const hs: HardState = { term: this.currentTerm, commit: this.raftLog.committed }
    if (this.vote !== undefined) hs.votedFor = this.vote
    return hs
  }
}

function sameHardState (a: HardState, b: HardState): boolean {
  return a.term === b.term && a.votedFor === b.votedFor && a.commit === b.commit
}

/** Entries follow prevLogIndex one by one, with terms that never fall and never pass the leader's. */
function wellFormed (m: AppendMessage): boolean {
  let index = m.prevLogIndex
  let term = m.prevLogTerm
  for (const e of m.entries) {
    if (e.index !== index + 1 || e.term < term || e.term > m.term) return false
    index = e.index
    term = e.term
  }
  return true
}
