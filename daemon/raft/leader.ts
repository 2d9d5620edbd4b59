// The volatile state of a leader (Figure 2: nextIndex and matchIndex per
// follower) and the leader's side of replication: heartbeats, batched and
// pipelined appends, back-off on rejection, the commit rule, CheckQuorum.
// One LeaderState lives exactly as long as one term of leadership; the core
// creates it on winning and drops it on any change of term or role.
// May import: protocol/, and this folder.
import type {
  AppendMessage, AppendResponseMessage, ClusterConfig, ConflictHint, Entry, RaftMessage, SnapshotMessage, TimeoutNowMessage
} from '../../protocol/raft.ts'
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
  /** the committed cluster config at the time of winning */
  cluster: ClusterConfig
  raftLog: RaftLog
  send: (m: RaftMessage) => void
}

/** A linearizable read waiting for a majority to confirm this leader (ReadIndex). */
interface PendingRead {
  ctx: number
  /** the commit index when the read came in: what it must see */
  index: number
  /** the read round that confirms it */
  round: number
}

/** A read the leader has confirmed: once the host has applied `index`, reading is linearizable. */
export interface ReadState {
  ctx: number
  index: number
}

export class LeaderState {
  private readonly id: string
  private readonly term: number
  private readonly config: ResolvedRaftConfig
  private readonly raftLog: RaftLog
  private readonly send: (m: RaftMessage) => void
  /** every voter and learner, this peer included (its matchIndex counts towards commit) */
  private readonly progress = new Map<string, Progress>()
  private voters: string[] = []
  /** every voter and learner but this peer */
  private followers: string[] = []
  private heartbeatElapsed = 0
  private quorumElapsed = 0
  /** proposals since the last Ready go out together, one append per follower */
  private pendingBroadcast = false
  /** commit moved since the last Ready: followers hear of it with that Ready's messages */
  private pendingCommitBroadcast = false
  /** the first index of this term (its noop); reads wait until it commits */
  private readonly termStart: number
  /** leadership transfer in progress: the voter that will take over */
  private transferee: string | undefined
  private transferElapsed = 0
  private readRound = 0
  private pendingReads: PendingRead[] = []
  /** reads that a majority confirmed, to hand to the host in the next Ready */
  readStates: ReadState[] = []
  /** a read round to announce with the next Ready */
  private pendingReadBroadcast = false

  constructor (ctx: LeaderContext) {
    this.id = ctx.id
    this.term = ctx.term
    this.config = ctx.config
    this.raftLog = ctx.raftLog
    this.send = ctx.send
    const next = this.raftLog.lastIndex() + 1
    this.termStart = next
    this.setConfig(ctx.cluster, true)
    const self = this.progress.get(this.id)
    if (self !== undefined) {
      self.matchIndex = next - 1
      self.recentActive = true
    }
    // Entries of earlier terms cannot be committed by counting replicas
    // (Figure 8); this one, of our own term, commits them when it commits.
    this.append({ term: this.term, index: next, kind: 'noop', data: new Uint8Array(0) })
  }

  /** A new committed config: progress for new servers, none for removed ones. */
  setConfig (cluster: ClusterConfig, initial = false): void {
    this.voters = cluster.voters.slice()
    const all = new Set([...cluster.voters, ...cluster.learners, this.id])
    for (const peer of this.progress.keys()) if (!all.has(peer)) this.progress.delete(peer)
    const added: string[] = []
    for (const peer of all) {
      if (this.progress.has(peer)) continue
      this.progress.set(peer, new Progress(this.raftLog.lastIndex() + 1, this.config.maxInflight, this.config.maxInflightBytes))
      added.push(peer)
    }
    this.followers = [...all].filter(p => p !== this.id)
    // A newcomer is probed at once rather than at the next stalled heartbeat.
    if (!initial) for (const peer of added) if (peer !== this.id) this.sendAppend(peer, true)
    if (this.transferee !== undefined && !this.voters.includes(this.transferee)) this.transferee = undefined
    this.maybeCommit()
    this.confirmReads()
  }

  progressOf (peer: string): ProgressView | undefined {
    const pr = this.progress.get(peer)
    if (pr === undefined) return undefined
    return { matchIndex: pr.matchIndex, nextIndex: pr.nextIndex, state: pr.state, inflight: pr.inflights.count }
  }

  get transferring (): string | undefined { return this.transferee }

  /** Whether an entry of this term has committed (a new leader's noop): only then is commit current. */
  committedInTerm (): boolean { return this.raftLog.committed >= this.termStart }

  propose (data: Uint8Array, kind: 'normal' | 'config' = 'normal'): { index: number, term: number } {
    const index = this.raftLog.lastIndex() + 1
    this.append({ term: this.term, index, kind, data })
    return { index, term: this.term }
  }

  hasPendingBroadcast (): boolean { return this.pendingBroadcast || this.pendingReadBroadcast || this.pendingCommitBroadcast }

  /** Sends what proposals since the last Ready left to send; called when a Ready is made. */
  broadcast (): void {
    if (this.pendingReadBroadcast) {
      this.pendingReadBroadcast = false
      for (const peer of this.followers) this.sendHeartbeat(peer)
    }
    const commit = this.pendingCommitBroadcast
    this.pendingCommitBroadcast = false
    if (!this.pendingBroadcast && !commit) return
    const appends = this.pendingBroadcast
    this.pendingBroadcast = false
    for (const peer of this.followers) {
      // Appends carry the new commit; a follower with none to get hears of
      // it by heartbeat: one message per Ready, however often commit moved.
      const sent = appends && this.sendAppends(peer)
      if (!sent && commit) this.sendHeartbeat(peer)
    }
  }

  /**
   * ReadIndex (thesis 6.4): the read must see everything committed now. A
   * round of heartbeats that a majority answers proves this peer was still
   * the leader when the read came in. Reads that arrive together share one
   * round. Before this term's first entry commits, the commit index may lag
   * the previous leader's, so reads wait for it.
   */
  readIndex (ctx: number): void {
    if (this.voters.length === 1 && this.voters[0] === this.id && this.committedInTerm()) {
      this.readStates.push({ ctx, index: this.raftLog.committed })
      return
    }
    if (!this.pendingReadBroadcast) {
      this.readRound++
      this.pendingReadBroadcast = true
    }
    this.pendingReads.push({ ctx, index: this.raftLog.committed, round: this.readRound })
    this.confirmReads()
  }

  /** Starts handing leadership to `target`, which must be a voter. */
  transferTo (target: string): void {
    this.transferee = target
    this.transferElapsed = 0
    const pr = this.progress.get(target)
    if (pr === undefined) return
    if (pr.matchIndex >= this.raftLog.lastIndex()) this.sendTimeoutNow(target)
    else this.sendAppends(target)
  }

  /** The voter (not this peer) whose log is most complete, if any; ties go to the first in order. */
  mostUpToDate (): string | undefined {
    let best: string | undefined
    let bestMatch = -1
    for (const peer of this.voters) {
      if (peer === this.id) continue
      const pr = this.progress.get(peer)
      if (pr !== undefined && pr.matchIndex > bestMatch) {
        best = peer
        bestMatch = pr.matchIndex
      }
    }
    return best
  }

  /** Tells every follower the commit index now; a leader that committed its own removal does so before stepping down. */
  announceCommit (): void {
    this.pendingCommitBroadcast = false
    for (const peer of this.followers) this.sendHeartbeat(peer)
  }

  /** Advances the leader's clock; false if it must step down (CheckQuorum). */
  tick (): boolean {
    this.heartbeatElapsed++
    this.quorumElapsed++
    if (this.transferee !== undefined && ++this.transferElapsed >= this.config.electionTicks) this.transferee = undefined
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

  /** The transport finished sending a snapshot to `peer`; on failure it is tried again after a while. */
  snapshotSent (peer: string, ok: boolean): void {
    const pr = this.progress.get(peer)
    if (pr?.state !== 'snapshot') return
    pr.becomeProbe()
    // Wait for the follower's answer (on success) or a heartbeat interval
    // or two (on failure) before sending anything more.
    pr.probeSent = true
    if (!ok) pr.stalledHeartbeats = 0
  }

  handleAppendResponse (m: AppendResponseMessage): void {
    const pr = this.progress.get(m.from)
    if (pr === undefined || m.from === this.id) return
    pr.recentActive = true
    if (m.success && m.read !== undefined && m.read > pr.readAck) {
      pr.readAck = m.read
      this.confirmReads()
    }
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
    if (m.from === this.transferee && pr.matchIndex >= this.raftLog.lastIndex()) this.sendTimeoutNow(m.from)
    // Followers learn a new commit with the next Ready's messages rather
    // than at the next heartbeat.
    if (this.maybeCommit()) this.pendingCommitBroadcast = true
    this.sendAppends(m.from)
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
    const index = committedIndex(this.voters, id => this.progress.get(id)?.matchIndex ?? 0)
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
    return voteResult(this.voters, active) === 'won'
  }

  /** Hands out, in order, the reads whose round a majority has answered. */
  private confirmReads (): void {
    if (this.pendingReads.length === 0 || !this.committedInTerm()) return
    const acks = new Map<string, number>()
    for (const [peer, pr] of this.progress) acks.set(peer, peer === this.id ? this.readRound : pr.readAck)
    const confirmed = committedIndex(this.voters, id => acks.get(id) ?? 0)
    let n = 0
    while (n < this.pendingReads.length && (this.pendingReads[n] as PendingRead).round <= confirmed) {
      const r = this.pendingReads[n] as PendingRead
      // A read that came in before this term's first commit must see at least that.
      this.readStates.push({ ctx: r.ctx, index: Math.max(r.index, this.termStart) })
      n++
    }
    if (n > 0) this.pendingReads.splice(0, n)
  }

  /** Reads still waiting, dropped when leadership ends; the host answers them "retry". */
  pendingReadContexts (): number[] { return this.pendingReads.map(r => r.ctx) }

  private sendTimeoutNow (to: string): void {
    this.send({ type: 'timeout-now', from: this.id, to, term: this.term } satisfies TimeoutNowMessage)
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
      // An empty probe still finds where the logs part (or that a snapshot is needed).
      pr.probeSent = false
      this.sendAppend(peer, true)
    } else {
      // Room for one more append, whether the window is full by count or by bytes.
      while (pr.inflights.full()) pr.inflights.freeFirstOne()
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

  /**
   * One append from nextIndex, of up to maxBatchEntries and maxBatchBytes
   * (an entry larger than a batch goes alone); true if it carried entries.
   */
  private sendAppend (to: string, allowEmpty: boolean): boolean {
    const pr = this.progress.get(to)
    if (pr === undefined || pr.paused()) return false
    const prevLogIndex = pr.nextIndex - 1
    const prevLogTerm = this.raftLog.term(prevLogIndex)
    if (prevLogTerm === undefined) {
      if (this.raftLog.compacted(prevLogIndex)) this.sendSnapshot(to, pr)
      return false
    }
    const { entries, bytes } = batchOf(this.raftLog.slice(pr.nextIndex, Infinity, this.config.maxBatchEntries), this.config.maxBatchBytes)
    if (entries.length === 0 && !allowEmpty) return false
    this.send({
      type: 'append', from: this.id, to, term: this.term, prevLogIndex, prevLogTerm, entries, commit: this.raftLog.committed
    } satisfies AppendMessage)
    const last = entries.at(-1)
    if (last !== undefined) pr.sentTo(last.index, bytes)
    else if (pr.state === 'probe') pr.probeSent = true
    return last !== undefined
  }

  /**
   * A heartbeat is an empty append at matchIndex, which the follower is
   * known to hold, so it never fails and never disturbs the pipeline; its
   * commit is capped at matchIndex since the follower may hold a stale
   * suffix beyond.
   */
  private sendSnapshot (to: string, pr: Progress): void {
    // A snapshot still being persisted (this peer took one from its own
    // leader just before winning) cannot be sent yet; the next try will.
    if (this.raftLog.pendingSnapshot() !== undefined) return
    const meta = this.raftLog.storage.snapshotMeta()
    pr.becomeSnapshot(meta.index)
    this.send({ type: 'snapshot', from: this.id, to, term: this.term, meta } satisfies SnapshotMessage)
  }

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
      commit: Math.min(this.raftLog.committed, pr.matchIndex),
      ...(this.pendingReads.length > 0 ? { read: this.readRound } : {})
    } satisfies AppendMessage)
  }
}

/**
 * The longest prefix of `entries` whose data fits in `maxBytes`, and its
 * size; at least the first entry, however large, so that an entry larger
 * than a batch still goes (alone) and the log never stalls on it.
 */
export function batchOf (entries: Entry[], maxBytes: number): { entries: Entry[], bytes: number } {
  let bytes = 0
  let n = 0
  for (const e of entries) {
    if (n > 0 && bytes + e.data.byteLength > maxBytes) break
    bytes += e.data.byteLength
    n++
  }
  return { entries: n === entries.length ? entries : entries.slice(0, n), bytes }
}
