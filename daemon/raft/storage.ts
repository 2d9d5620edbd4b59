// The persisted Raft log as the core reads it (RaftStorage), as the host
// loop writes it (HostStorage), and an in-memory reference implementation
// for tests and the simulator. The core only reads storage; the host writes
// it while processing a Ready, so what storage holds is exactly what
// survives a crash.
// May import: protocol/.
import type { ClusterConfig, Entry, HardState, SnapshotMeta } from '../../protocol/raft.ts'

/** Asked for entries that a snapshot has replaced. */
export class LogCompactedError extends Error {
  override name = 'LogCompactedError'
}

/** Asked for entries past the last one. */
export class LogUnavailableError extends Error {
  override name = 'LogUnavailableError'
}

/** A write that would leave a hole or a disorder in the log. */
export class LogOrderError extends Error {
  override name = 'LogOrderError'
}

/**
 * What the core reads. Indexes outside [firstIndex() - 1, lastIndex()] throw
 * LogCompactedError or LogUnavailableError; the core checks bounds first, so
 * either means a bug.
 */
export interface RaftStorage {
  /**
   * The term of the entry at `index`. `firstIndex() - 1` is allowed: its term
   * is kept even after compaction (0 for an empty log), so that the entry
   * after it can still be matched.
   */
  term (index: number): number
  /** Entries [lo, hi), at most `maxEntries` of them if given. */
  entries (lo: number, hi: number, maxEntries?: number): Entry[]
  /** Index of the last entry; `firstIndex() - 1` when the log is empty. */
  lastIndex (): number
  /** Index of the first entry still held: 1 until a compaction. */
  firstIndex (): number
  hardState (): HardState
  /**
   * The latest snapshot held (index 0 and an empty config when none). Its
   * index is at least firstIndex() - 1: compaction never passes it.
   */
  snapshotMeta (): SnapshotMeta
}

/** A stored snapshot: what it stands for and the state machine's bytes. */
export interface Snapshot {
  meta: SnapshotMeta
  data: Uint8Array
}

/** What the host persists from one Ready. */
export interface RaftWrite {
  entries: readonly Entry[]
  hardState?: HardState
  /** true when the write must be on disk before anything depending on it is sent */
  sync: boolean
}

/**
 * What the host loop (ready-loop.ts) reads and writes: the core's view plus
 * the writes of a Ready, the stored snapshot and compaction. Each write is
 * on disk when it returns, or when its promise resolves: LevelStorage is
 * asynchronous, MemoryStorage (the simulator's disk) synchronous.
 */
export interface HostStorage extends RaftStorage {
  snapshot (): Snapshot
  /** Entries (overwriting whatever followed the first of them), then the hard state. */
  save (write: RaftWrite): void | Promise<void>
  /** Replaces the whole log with a leader's snapshot. */
  installSnapshot (snap: Snapshot): void | Promise<void>
  /** Records a snapshot taken at an applied index and drops the log up to `compactTo`. */
  saveSnapshot (snap: Snapshot, compactTo: number): void | Promise<void>
}

export const EMPTY_CONFIG: ClusterConfig = { voters: [], learners: [] }
export const NO_SNAPSHOT: Snapshot = { meta: { index: 0, term: 0, config: EMPTY_CONFIG }, data: new Uint8Array(0) }

/** Terms never fall along a log, and indexes follow one another with no hole. */
export function checkEntries (entries: readonly Entry[], prevIndex: number, prevTerm: number): void {
  let index = prevIndex
  let term = prevTerm
  for (const e of entries) {
    if (e.index !== index + 1) throw new LogOrderError(`entry ${e.index} does not follow ${index}`)
    if (e.term < term) throw new LogOrderError(`entry ${e.index} has term ${e.term} below the term ${term} before it`)
    index = e.index
    term = e.term
  }
}

export class MemoryStorage implements HostStorage {
  private state: HardState = { term: 0, commit: 0 }
  // log[0] stands for the entry before the first one held (index 0, term 0
  // until a snapshot moves it), so that term(firstIndex - 1) always answers.
  private log: Entry[] = [{ term: 0, index: 0, kind: 'noop', data: new Uint8Array(0) }]
  private snap: Snapshot = NO_SNAPSHOT

  private get offset (): number { return (this.log[0] as Entry).index }

  term (index: number): number {
    this.check(index, index, true)
    return (this.log[index - this.offset] as Entry).term
  }

  entries (lo: number, hi: number, maxEntries = Infinity): Entry[] {
    this.check(lo, hi - 1, false)
    const end = Math.min(hi, lo + maxEntries)
    return this.log.slice(lo - this.offset, end - this.offset)
  }

  lastIndex (): number { return this.offset + this.log.length - 1 }
  firstIndex (): number { return this.offset + 1 }
  hardState (): HardState { return { ...this.state } }
  snapshotMeta (): SnapshotMeta { return this.snap.meta }
  snapshot (): Snapshot { return this.snap }

  /**
   * Records a snapshot the host took at an index it has applied, and drops
   * the entries up to `compactTo` (at most the snapshot's index; entries
   * after it may be kept for followers that are only a little behind).
   */
  saveSnapshot (snap: Snapshot, compactTo: number): void {
    if (snap.meta.index > this.lastIndex() || snap.meta.index < this.snap.meta.index) {
      throw new LogOrderError(`snapshot at ${snap.meta.index} is outside [${this.snap.meta.index}, ${this.lastIndex()}]`)
    }
    if (this.term(snap.meta.index) !== snap.meta.term) throw new LogOrderError(`snapshot at ${snap.meta.index} has term ${snap.meta.term}, the log has ${this.term(snap.meta.index)}`)
    this.snap = snap
    compactTo = Math.min(compactTo, snap.meta.index)
    if (compactTo > this.offset) this.log = this.log.slice(compactTo - this.offset)
  }

  /**
   * Loads what a disk held: the log starts after (before.index, before.term),
   * and `snap` is the snapshot. For LevelStorage's open() only.
   */
  load (before: { index: number, term: number }, snap: Snapshot): void {
    this.log = [{ term: before.term, index: before.index, kind: 'noop', data: new Uint8Array(0) }]
    this.snap = snap
  }

  /** Replaces the whole log with a snapshot from the leader: the log then starts after it. */
  installSnapshot (snap: Snapshot): void {
    this.snap = snap
    this.log = [{ term: snap.meta.term, index: snap.meta.index, kind: 'noop', data: new Uint8Array(0) }]
    if (this.state.commit < snap.meta.index) this.state = { ...this.state, commit: snap.meta.index }
  }

  /** One Ready's write: entries, then the hard state. */
  save (write: RaftWrite): void {
    this.append(write.entries)
    if (write.hardState !== undefined) this.setHardState(write.hardState)
  }

  setHardState (hs: HardState): void {
    if (hs.commit > this.lastIndex()) throw new LogOrderError(`commit ${hs.commit} is past the last entry ${this.lastIndex()}`)
    this.state = { ...hs }
  }

  /**
   * Writes entries, which must start at or before lastIndex() + 1. Whatever
   * followed the first of them is dropped: a new leader may overwrite a
   * suffix that was never committed.
   */
  append (entries: readonly Entry[]): void {
    const first = entries[0]
    if (first === undefined) return
    if (first.index > this.lastIndex() + 1) throw new LogOrderError(`entry ${first.index} would leave a hole after ${this.lastIndex()}`)
    // Entries a snapshot already covers are dropped rather than refused.
    const kept = entries.filter(e => e.index >= this.firstIndex())
    const head = kept[0]
    if (head === undefined) return
    const prev = this.log[head.index - 1 - this.offset] as Entry
    checkEntries(kept, prev.index, prev.term)
    this.log.length = head.index - this.offset
    for (const e of kept) this.log.push(e)
  }

  private check (lo: number, hi: number, allowBeforeFirst: boolean): void {
    const min = allowBeforeFirst ? this.offset : this.firstIndex()
    if (lo < min) throw new LogCompactedError(`index ${lo} is compacted (first is ${this.firstIndex()})`)
    if (hi > this.lastIndex()) throw new LogUnavailableError(`index ${hi} is past the last entry ${this.lastIndex()}`)
  }
}
