// The core's view of the log: what storage has persisted, plus the unstable
// tail the core has accepted but the host has not yet written, plus the
// commit and apply cursors. Only the core uses it.
// May import: protocol/, ./storage.ts.
import type { Entry, SnapshotMeta } from '../../protocol/raft.ts'
import type { RaftStorage } from './storage.ts'
import { checkEntries } from './storage.ts'

/** A state Raft forbids; reaching one means a bug, and going on would spread it. */
export class RaftInvariantError extends Error {
  override name = 'RaftInvariantError'
}

export class RaftLog {
  readonly storage: RaftStorage
  /** entries not yet persisted; unstable[0] has index `unstableOffset` */
  private unstable: Entry[] = []
  /**
   * A leader's snapshot accepted but not yet persisted: the log now starts
   * after it, and storage's entries no longer count.
   */
  private unstableSnapshot: SnapshotMeta | undefined
  private unstableOffset: number
  committed: number
  /** the host has applied up to here (acknowledged by advance) */
  applied: number
  /** handed out in a Ready for applying, not yet acknowledged */
  applying: number

  constructor (storage: RaftStorage, applied: number) {
    this.storage = storage
    this.unstableOffset = storage.lastIndex() + 1
    // A snapshot's index was committed even if the stored commit lags it.
    this.committed = Math.max(storage.hardState().commit, storage.snapshotMeta().index)
    if (this.committed > storage.lastIndex()) {
      throw new RaftInvariantError(`persisted commit ${this.committed} is past the persisted log (${storage.lastIndex()})`)
    }
    this.applied = Math.max(applied, storage.firstIndex() - 1)
    if (this.applied > this.committed) throw new RaftInvariantError(`applied ${this.applied} is past commit ${this.committed}`)
    this.applying = this.applied
  }

  firstIndex (): number {
    return this.unstableSnapshot !== undefined ? this.unstableSnapshot.index + 1 : this.storage.firstIndex()
  }

  lastIndex (): number {
    if (this.unstable.length > 0) return this.unstableOffset + this.unstable.length - 1
    return this.unstableSnapshot !== undefined ? this.unstableSnapshot.index : this.storage.lastIndex()
  }

  /** The term at `index`, or undefined outside [firstIndex - 1, lastIndex]. */
  term (index: number): number | undefined {
    if (index >= this.unstableOffset && this.unstable.length > 0) {
      return this.unstable[index - this.unstableOffset]?.term
    }
    const snap = this.unstableSnapshot
    if (snap !== undefined) return index === snap.index ? snap.term : undefined
    if (index < this.firstIndex() - 1 || index > this.storage.lastIndex()) return undefined
    return this.storage.term(index)
  }

  /** Entries that a follower behind firstIndex needs are gone: it needs a snapshot. */
  compacted (index: number): boolean { return index < this.firstIndex() - 1 }

  /**
   * Accepts a leader's snapshot that the log does not already cover: the
   * whole log is replaced, and it counts as committed and applied once the
   * host has persisted it and restored the state machine from it.
   */
  restore (meta: SnapshotMeta): void {
    this.unstableSnapshot = meta
    this.unstable = []
    this.unstableOffset = meta.index + 1
    this.committed = meta.index
    this.applying = meta.index
  }

  pendingSnapshot (): SnapshotMeta | undefined { return this.unstableSnapshot }

  /** The host persisted the snapshot and restored the state machine from it. */
  snapshotStable (meta: SnapshotMeta): void {
    if (this.unstableSnapshot?.index === meta.index) this.unstableSnapshot = undefined
    if (meta.index > this.applied) this.applied = meta.index
  }

  lastTerm (): number { return this.term(this.lastIndex()) ?? 0 }

  matchTerm (index: number, term: number): boolean { return this.term(index) === term }

  /** Raft's election restriction (5.4.1): is a log ending at (index, term) at least as up to date as ours? */
  isUpToDate (index: number, term: number): boolean {
    const lastTerm = this.lastTerm()
    return term > lastTerm || (term === lastTerm && index >= this.lastIndex())
  }

  /** Entries [lo, hi), at most `max`, from storage and the unstable tail. */
  slice (lo: number, hi: number, max = Infinity): Entry[] {
    hi = Math.min(hi, this.lastIndex() + 1, lo + max)
    if (lo >= hi) return []
    const out: Entry[] = []
    const stableEnd = this.unstableSnapshot !== undefined ? lo : Math.min(hi, this.unstableOffset, this.storage.lastIndex() + 1)
    if (lo < stableEnd) out.push(...this.storage.entries(lo, stableEnd))
    const from = Math.max(lo, this.unstableOffset)
    if (from < hi) out.push(...this.unstable.slice(from - this.unstableOffset, hi - this.unstableOffset))
    return out
  }

  /** The leader's own appends, always after the last entry. */
  append (entries: readonly Entry[]): void {
    if (entries.length === 0) return
    checkEntries(entries, this.lastIndex(), this.lastTerm())
    this.truncateAndAppend(entries)
  }

  /**
   * A follower's AppendEntries after the consistency check passed at
   * prevLogIndex: skips entries it already has, and overwrites from the
   * first conflicting one. Returns the index of the last new entry.
   */
  appendAfter (prevLogIndex: number, entries: readonly Entry[]): number {
    const lastNew = prevLogIndex + entries.length
    const conflict = entries.find(e => !this.matchTerm(e.index, e.term))
    if (conflict === undefined) return lastNew
    if (conflict.index <= this.committed) {
      throw new RaftInvariantError(`entry ${conflict.index} (term ${conflict.term}) conflicts with committed ${this.committed}`)
    }
    const rest = entries.slice(conflict.index - prevLogIndex - 1)
    checkEntries(rest, conflict.index - 1, this.term(conflict.index - 1) ?? 0)
    this.truncateAndAppend(rest)
    return lastNew
  }

  /**
   * The first index of the term at `index`, looking no further back than
   * commit + 1: committed entries match any leader's, so the leader needs
   * to probe no lower.
   */
  firstIndexOfTermAt (index: number): number {
    const term = this.term(index)
    const floor = Math.max(this.committed + 1, this.firstIndex())
    while (index > floor && this.term(index - 1) === term) index--
    return index
  }

  /** The last index at or before `index` whose term is `term`, if any. */
  lastIndexOfTerm (term: number, index: number): number | undefined {
    index = Math.min(index, this.lastIndex())
    for (; index >= this.firstIndex(); index--) {
      const t = this.term(index) ?? 0
      if (t === term) return index
      if (t < term) return undefined
    }
    return undefined
  }

  commitTo (index: number): void {
    if (index <= this.committed) return
    if (index > this.lastIndex()) throw new RaftInvariantError(`commit ${index} is past the last entry ${this.lastIndex()}`)
    this.committed = index
  }

  /** Entries the host must persist next, in order. */
  unstableEntries (): Entry[] { return this.unstable.slice() }
  hasUnstable (): boolean { return this.unstable.length > 0 }

  /**
   * The host persisted up to (index, term). If the tail was overwritten since
   * the Ready was made, the term no longer matches and the entries stay
   * unstable, to be written again.
   */
  stableTo (index: number, term: number): void {
    if (index < this.unstableOffset || this.term(index) !== term) return
    this.unstable = this.unstable.slice(index + 1 - this.unstableOffset)
    this.unstableOffset = index + 1
  }

  hasNextCommitted (): boolean { return this.committed > this.applying }

  /**
   * Committed entries not yet handed out. They may still be unstable: the
   * host persists a Ready's entries before it applies its committed ones.
   */
  nextCommitted (): Entry[] {
    const out = this.slice(this.applying + 1, this.committed + 1)
    this.applying = this.committed
    return out
  }

  appliedTo (index: number): void {
    if (index > this.committed || index < this.applied) {
      throw new RaftInvariantError(`applied ${index} is outside [${this.applied}, ${this.committed}]`)
    }
    this.applied = index
  }

  private truncateAndAppend (entries: readonly Entry[]): void {
    const after = (entries[0] as Entry).index
    if (after === this.unstableOffset + this.unstable.length) {
      this.unstable.push(...entries)
    } else if (after <= this.unstableOffset) {
      // The overwrite reaches into persisted entries; the host's append
      // truncates them when it writes these.
      this.unstableOffset = after
      this.unstable = entries.slice()
    } else {
      this.unstable = this.unstable.slice(0, after - this.unstableOffset).concat(entries)
    }
  }
}
