// The leader's view of one follower: how far its log matches (matchIndex),
// what to send next (nextIndex), and the flow control that decides whether
// another append may go out now. Only the core uses it.
// May import: nothing of ours.

/**
 * `probe`: the leader does not know where the follower's log parts from its
 * own, so it sends one append at a time and waits for the answer.
 * `replicate`: the follower is known to match up to matchIndex, so the
 * leader streams appends without waiting, advancing nextIndex as it sends.
 * `snapshot`: the follower needs entries the leader has compacted away; a
 * snapshot is on its way, and nothing else is sent until it lands or fails.
 */
export type ProgressState = 'probe' | 'replicate' | 'snapshot'

/**
 * Heartbeat intervals without progress before the leader presumes its
 * appends lost and sends again. One would resend whenever a round trip
 * outlasts a heartbeat interval, which the simulator's delays often do.
 */
export const STALL_HEARTBEATS = 2

/**
 * The last index and the size (bytes of entry data) of each append sent and
 * not yet acknowledged, oldest first; full at `max` appends or `maxBytes`
 * bytes, whichever comes first.
 */
export class Inflights {
  private readonly max: number
  private readonly maxBytes: number
  private readonly lastIndexes: number[] = []
  private readonly sizes: number[] = []
  private totalBytes = 0

  constructor (max: number, maxBytes = Infinity) {
    this.max = max
    this.maxBytes = maxBytes
  }

  get count (): number { return this.lastIndexes.length }
  get bytes (): number { return this.totalBytes }
  full (): boolean { return this.lastIndexes.length >= this.max || (this.lastIndexes.length > 0 && this.totalBytes >= this.maxBytes) }
  add (lastIndex: number, bytes = 0): void {
    this.lastIndexes.push(lastIndex)
    this.sizes.push(bytes)
    this.totalBytes += bytes
  }

  /** An acknowledgement up to `index` covers every append that ended there or before. */
  freeTo (index: number): void {
    let n = 0
    while (n < this.lastIndexes.length && (this.lastIndexes[n] as number) <= index) n++
    if (n > 0) this.drop(n)
  }

  freeFirstOne (): void { if (this.lastIndexes.length > 0) this.drop(1) }
  reset (): void { this.drop(this.lastIndexes.length) }

  private drop (n: number): void {
    this.lastIndexes.splice(0, n)
    for (const b of this.sizes.splice(0, n)) this.totalBytes -= b
  }
}

export class Progress {
  matchIndex = 0
  nextIndex: number
  state: ProgressState = 'probe'
  /** in probe state: an append is out and unanswered, so send no other */
  probeSent = false
  /** heard from within the current election timeout (CheckQuorum) */
  recentActive = false
  /**
   * Went back to pipelining since the last heartbeat. Appends of an earlier
   * window still in flight answer late and out of order; were each late
   * answer allowed to open a new window, windows would breed windows.
   */
  resumedSinceHeartbeat = false
  /** heartbeat intervals since the last acknowledgement or rejection that moved anything */
  stalledHeartbeats = 0
  /** in snapshot state: the index of the snapshot being sent */
  pendingSnapshot = 0
  /** ReadIndex: the highest read round this follower has answered */
  readAck = 0
  readonly inflights: Inflights

  constructor (nextIndex: number, maxInflight: number, maxInflightBytes = Infinity) {
    this.nextIndex = nextIndex
    this.inflights = new Inflights(maxInflight, maxInflightBytes)
  }

  paused (): boolean {
    if (this.state === 'snapshot') return true
    return this.state === 'probe' ? this.probeSent : this.inflights.full()
  }

  becomeSnapshot (index: number): void {
    this.state = 'snapshot'
    this.pendingSnapshot = index
    this.probeSent = false
    this.inflights.reset()
  }

  becomeProbe (): void {
    this.state = 'probe'
    this.probeSent = false
    this.inflights.reset()
  }

  becomeReplicate (): void {
    this.state = 'replicate'
    this.nextIndex = this.matchIndex + 1
    this.probeSent = false
    this.inflights.reset()
  }

  /** Records an append of entries up to `lastIndex`, `bytes` of entry data, going out. */
  sentTo (lastIndex: number, bytes = 0): void {
    if (this.state === 'replicate') {
      this.nextIndex = lastIndex + 1
      this.inflights.add(lastIndex, bytes)
    } else {
      this.probeSent = true
    }
  }

  /**
   * An acknowledgement up to `index`; false if it tells nothing new (a
   * heartbeat's answer, a duplicate, a late answer), which then sends
   * nothing: resending is the heartbeat's job, so that a message answered
   * twice never makes twice the traffic.
   */
  acknowledge (index: number): boolean {
    if (index <= this.matchIndex) return false
    if (this.state === 'snapshot' && index >= this.pendingSnapshot) this.becomeProbe()
    this.matchIndex = index
    this.nextIndex = Math.max(this.nextIndex, index + 1)
    this.inflights.freeTo(index)
    this.probeSent = false
    this.stalledHeartbeats = 0
    return true
  }

  /**
   * A rejection of the append whose prevLogIndex was `rejected`, with the
   * leader's guess of where to resume. False if the rejection is stale: it
   * answers an append that a newer acknowledgement, probe or rewind has
   * overtaken.
   */
  reject (rejected: number, resumeAt: number): boolean {
    if (this.state === 'snapshot') return false
    if (this.state === 'replicate') {
      if (rejected <= this.matchIndex || rejected >= this.nextIndex) return false
    } else if (rejected !== this.nextIndex - 1) {
      return false
    }
    // Always move forward from matchIndex, and strictly below the rejected
    // probe, so that probing ends.
    this.nextIndex = Math.max(this.matchIndex + 1, Math.min(resumeAt, rejected))
    this.becomeProbe()
    this.stalledHeartbeats = 0
    return true
  }
}
