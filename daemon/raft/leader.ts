// The volatile state of a leader (Figure 2: nextIndex and matchIndex per
// follower) and the leader's side of replication: heartbeats, batched and
// pipelined appends, back-off on rejection, the commit rule, CheckQuorum.
// One LeaderState lives exactly as long as one term of leadership; the core
// creates it on winning and drops it on any change of term or role.
// May import: protocol/, and this folder.
import type { AppendMessage, AppendResponseMessage, ConflictHint, Entry, RaftMessage } from '../../protocol/raft.ts'
import type { ResolvedRaftConfig } from './config.ts'
import type { RaftLog } from './log.ts'
import { Progress, STALL_HEARTBEATS } from './progress.ts'
import type { ProgressState } from './progress.ts'
import { committedIndex, voteResult } from './quorum.ts'

export interface ProgressView {
  matchIndex: number
  nextIndex: number
  state: ProgressState
  inflight: number
}

/** What a leader needs from the core around it. */
export interface LeaderContext {
  id: string
  term: number
  config: ResolvedRaftConfig
  raftLog: RaftLog
  send: (m: RaftMessage) => void
}

export class LeaderState {
  private readonly id: string
  private readonly term: number
  private readonly config: ResolvedRaftConfig
  private readonly raftLog: RaftLog
  private readonly send: (m: RaftMessage) => void
  /** every voter, this peer included (its matchIndex counts towards commit) */
  private readonly progress = new Map<string, Progress>()
  private readonly followers: string[]
  private heartbeatElapsed = 0
  private quorumElapsed = 0
  /** proposals since the last Ready go out together, one append per follower */
  private pendingBroadcast = false

  constructor (ctx: LeaderContext) {
    this.id = ctx.id
    this.term = ctx.term
    this.config = ctx.config
    this.raftLog = ctx.raftLog
    this.send = ctx.send
    this.followers = this.config.peers.filter(p => p !== this.id)
    const next = this.raftLog.lastIndex() + 1
    for (const peer of this.config.peers) this.progress.set(peer, new Progress(next, this.config.maxInflight))
    const self = this.progress.get(this.id)
    if (self !== undefined) {
      self.matchIndex = next - 1
      self.recentActive = true
    }
    // Entries of earlier terms cannot be committed by counting replicas
    // (Figure 8); this one, of our own term, commits them when it commits.
    this.append({ term: this.term, index: next, kind: 'noop', data: new Uint8Array(0) })
  }

  progressOf (peer: string): ProgressView | undefined {
    const pr = this.progress.get(peer)
    if (pr === undefined) return undefined
    return { matchIndex: pr.matchIndex, nextIndex: pr.nextIndex, state: pr.state, inflight: pr.inflights.count }
  }

  propose (data: Uint8Array): { index: number, term: number } {
    const index = this.raftLog.lastIndex() + 1
    this.append({ term: this.term, index, kind: 'normal', data })
    return { index, term: this.term }
  }

  hasPendingBroadcast (): boolean { return this.pendingBroadcast }

  /** Sends what proposals since the last Ready left to send; called when a Ready is made. */
  broadcast (): void {
    if (!this.pendingBroadcast) return
    this.pendingBroadcast = false
    for (const peer of this.followers) this.sendAppends(peer)
  }

  /** Advances the leader's clock; false if it must step down (CheckQuorum). */
  tick (): boolean {
    this.heartbeatElapsed++
    this.quorumElapsed++
    if (this.quorumElapsed >= this.config.electionTicks) {
      this.quorumElapsed = 0
      if (this.config.checkQuorum && !this.quorumActive()) return false
    }
    if (this.heartbeatElapsed >= this.config.heartbeatTicks) {
      this.heartbeatElapsed = 0
      for (const peer of this.followers) {
        this.sendHeartbeat(peer)
        this.retransmit(peer)
      }
    }
    return true
  }

  handleAppendResponse (m: AppendResponseMessage): void {
    const pr = this.progress.get(m.from)
    if (pr === undefined || m.from === this.id) return
    pr.recentActive = true
    if (!m.success) {
      if (pr.reject(m.rejectedIndex, this.resumeIndex(m.rejectedIndex, m.hint))) this.sendAppends(m.from)
      return
    }
    // Nothing new (a heartbeat's answer, a duplicate, a late answer) sends
    // nothing; no follower can hold more than its leader.
    if (m.matchIndex > this.raftLog.lastIndex() || !pr.acknowledge(m.matchIndex)) return
    if (pr.state === 'probe' && !pr.resumedSinceHeartbeat) {
      pr.becomeReplicate()
      pr.resumedSinceHeartbeat = true
    }
    if (this.maybeCommit()) {
      // Followers learn the new commit now rather than at the next heartbeat.
      for (const peer of this.followers) {
        if (!this.sendAppends(peer)) this.sendHeartbeat(peer)
      }
    } else {
      this.sendAppends(m.from)
    }
  }

  private append (entry: Entry): void {
    this.raftLog.append([entry])
    this.progress.get(this.id)?.acknowledge(entry.index)
    this.pendingBroadcast = true
    this.maybeCommit()
  }

  /**
   * Commits the highest index a majority holds, but only if it is of the
   * current term (Figure 8): an older entry on a majority may still be
   * overwritten by a leader that never saw it.
   */
  private maybeCommit (): boolean {
    const index = committedIndex(this.config.peers, id => this.progress.get(id)?.matchIndex ?? 0)
    if (index <= this.raftLog.committed || this.raftLog.term(index) !== this.term) return false
    this.raftLog.commitTo(index)
    return true
  }

  /** Whether a majority was heard from since the last check; starts the next window. */
  private quorumActive (): boolean {
    const active = new Map<string, boolean>()
    for (const [peer, pr] of this.progress) {
      active.set(peer, peer === this.id || pr.recentActive)
      if (peer !== this.id) pr.recentActive = false
    }
    return voteResult(this.config.peers, active) === 'won'
  }

  /**
   * Resending runs on the heartbeat clock, at most once per follower per
   * interval, and only after STALL_HEARTBEATS intervals without progress:
   * a lost probe is sent again; in a pipeline, an append at nextIndex is
   * refused if earlier ones were lost, which sends the follower back to
   * probing (as in etcd).
   */
  private retransmit (peer: string): void {
    const pr = this.progress.get(peer) as Progress
    pr.resumedSinceHeartbeat = false
    if (pr.matchIndex >= this.raftLog.lastIndex()) {
      pr.stalledHeartbeats = 0
      return
    }
    if (++pr.stalledHeartbeats < STALL_HEARTBEATS) return
    pr.stalledHeartbeats = 0
    if (pr.state === 'probe') {
      pr.probeSent = false
      this.sendAppend(peer, false)
    } else {
      if (pr.inflights.full()) pr.inflights.freeFirstOne()
      this.sendAppend(peer, true)
    }
  }

  /** Where to probe next after a rejection, from the follower's hint (thesis 5.3). */
  private resumeIndex (rejected: number, hint: ConflictHint): number {
    if (hint.conflictTerm !== undefined) {
      const last = this.raftLog.lastIndexOfTerm(hint.conflictTerm, rejected)
      if (last !== undefined) return last + 1
    }
    return hint.conflictIndex
  }

  /** Sends as many appends as flow control allows; true if any carried entries. */
  private sendAppends (to: string): boolean {
    let sent = false
    while (this.sendAppend(to, false)) sent = true
    return sent
  }

  /** One append from nextIndex, of up to maxBatchEntries; true if it carried entries. */
  private sendAppend (to: string, allowEmpty: boolean): boolean {
    const pr = this.progress.get(to)
    if (pr === undefined || pr.paused()) return false
    const prevLogIndex = pr.nextIndex - 1
    const prevLogTerm = this.raftLog.term(prevLogIndex)
    if (prevLogTerm === undefined) return false // compacted: a snapshot will go here
    const entries = this.raftLog.slice(pr.nextIndex, Infinity, this.config.maxBatchEntries)
    if (entries.length === 0 && !allowEmpty) return false
    this.send({
      type: 'append', from: this.id, to, term: this.term, prevLogIndex, prevLogTerm, entries, commit: this.raftLog.committed
    } satisfies AppendMessage)
    const last = entries.at(-1)
    if (last !== undefined) pr.sentTo(last.index)
    else if (pr.state === 'probe') pr.probeSent = true
    return last !== undefined
  }

  /**
   * A heartbeat is an empty append at matchIndex, which the follower is
   * known to hold, so it never fails and never disturbs the pipeline; its
   * commit is capped at matchIndex since the follower may hold a stale
   * suffix beyond.
   */
  private sendHeartbeat (to: string): void {
    const pr = this.progress.get(to) as Progress
    this.send({
      type: 'append',
      from: this.id,
      to,
      term: this.term,
      prevLogIndex: pr.matchIndex,
      prevLogTerm: this.raftLog.term(pr.matchIndex) ?? 0,
      entries: [],
      commit: Math.min(this.raftLog.committed, pr.matchIndex)
    } satisfies AppendMessage)
  }
}
