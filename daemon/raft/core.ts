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
import type {
  AppendMessage, AppendResponseMessage, ConflictHint, Entry, HardState, RaftMessage, VoteMessage, VoteResponseMessage
} from '../../protocol/raft.ts'
import type { RaftConfig, ResolvedRaftConfig } from './config.ts'
import { resolveRaftConfig } from './config.ts'
import { LeaderState } from './leader.ts'
import type { ProgressView } from './leader.ts'
import { RaftLog } from './log.ts'
import { voteResult } from './quorum.ts'

export type { ProgressView } from './leader.ts'

export type Role = 'follower' | 'pre-candidate' | 'candidate' | 'leader'

/** What the host must do next; see the loop in this file's header. Snapshots will add a field. */
export interface Ready {
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

  constructor (config: RaftConfig) {
    this.config = resolveRaftConfig(config)
    this.id = this.config.id
    this.raftLog = new RaftLog(this.config.storage, this.config.applied)
    const hs = this.config.storage.hardState()
    this.currentTerm = hs.term
    this.vote = hs.votedFor
    this.readyHardState = this.hardState()
    this.becomeFollower(hs.term, undefined)
  }

  get role (): Role { return this.currentRole }
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

  propose (data: Uint8Array): { index: number, term: number } | NotLeaderError {
    if (this.leader === undefined) return new NotLeaderError(this.lead)
    return this.leader.propose(data)
  }

  step (m: RaftMessage): void {
    if (m.to !== this.id || m.from === this.id) return
    if (m.term > this.currentTerm) {
      if (m.type === 'vote') {
        // The leader lease: a peer that heard from a leader within an
        // election timeout believes it alive and will not help depose it.
        // PreVote honours it always; a real vote with CheckQuorum (etcd's rule).
        // A leader's electionElapsed stays 0: it is always in its own lease.
        const inLease = this.lead !== undefined && this.electionElapsed < this.config.electionTicks
        if (inLease && (m.preVote || this.config.checkQuorum)) return
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
      case 'timeout-now': return // leadership transfer is not built yet
    }
    switch (this.currentRole) {
      case 'leader':
        if (m.type === 'append-response') this.leader?.handleAppendResponse(m)
        return
      case 'pre-candidate':
      case 'candidate':
        if (m.type === 'append') {
          this.becomeFollower(m.term, m.from)
          this.handleAppend(m)
        } else if (m.type === 'vote-response') {
          this.handleVoteResponse(m)
        }
        return
      case 'follower':
        if (m.type === 'append') this.handleAppend(m)
    }
  }

  hasReady (): boolean {
    return this.leader?.hasPendingBroadcast() === true || this.msgs.length > 0 || this.raftLog.hasUnstable() ||
      this.raftLog.hasNextCommitted() || !sameHardState(this.hardState(), this.readyHardState)
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
      mustSync: false
    }
    rd.mustSync = rd.entries.length > 0 || hs.term !== prev.term || hs.votedFor !== prev.votedFor
    if (!sameHardState(hs, prev)) rd.hardState = hs
    this.msgs = []
    this.readyHardState = hs
    this.outstanding = true
    return rd
  }

  advance (rd: Ready): void {
    if (!this.outstanding) throw new Error('raft: advance() without an outstanding Ready')
    this.outstanding = false
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
      id: this.id, term: this.currentTerm, config: this.config, raftLog: this.raftLog, send: m => { this.send(m) }
    })
  }

  private promotable (): boolean { return this.config.peers.includes(this.id) }

  private followers (): string[] { return this.config.peers.filter(p => p !== this.id) }

  // --- elections ---

  private tickElection (): void {
    this.electionElapsed++
    if (this.promotable() && this.electionElapsed >= this.randomizedElectionTimeout) {
      this.campaign(this.config.preVote ? 'pre-vote' : 'election')
    }
  }

  private campaign (kind: Campaign): void {
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
    for (const to of this.followers()) {
      this.send<VoteMessage>({ type: 'vote', from: this.id, to, term, preVote: kind === 'pre-vote', lastLogIndex, lastLogTerm })
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
    switch (voteResult(this.config.peers, this.votes)) {
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
   * A message from an older term is dropped, but two kinds are answered so
   * that their senders catch up: a stale leader learns of the newer term and
   * steps down (with PreVote and the lease, nothing else would tell it), and
   * a pre-candidate behind our term hears back instead of waiting forever.
   */
  private answerStale (m: RaftMessage): void {
    if (m.type === 'append') {
      // The hint is meaningless: the higher term makes the receiver step down.
      this.send<AppendResponseMessage>({
        type: 'append-response', from: this.id, to: m.from, term: this.currentTerm, success: false, rejectedIndex: m.prevLogIndex, hint: { conflictIndex: 0 }
      })
    } else if (m.type === 'vote' && m.preVote) {
      this.send<VoteResponseMessage>({ type: 'vote-response', from: this.id, to: m.from, term: this.currentTerm, preVote: true, granted: false })
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
      this.acceptAppend(m.from, log.committed)
      return
    }
    if (!wellFormed(m)) return
    if (log.matchTerm(m.prevLogIndex, m.prevLogTerm)) {
      const lastNew = log.appendAfter(m.prevLogIndex, m.entries)
      // Only entries known to match the leader's may be committed.
      log.commitTo(Math.min(m.commit, lastNew))
      this.acceptAppend(m.from, lastNew)
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

  private acceptAppend (to: string, matchIndex: number): void {
    this.send<AppendResponseMessage>({ type: 'append-response', from: this.id, to, term: this.currentTerm, success: true, matchIndex })
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
