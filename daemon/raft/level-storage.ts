// The Raft log and hard state on disk, in LevelDB. Reads are served from an
// in-memory copy (MemoryStorage), since the core reads synchronously; every
// write of a Ready is one LevelDB batch, synced when the Ready says so, and
// reaches the memory copy only after the batch is on disk (group commit: a
// Ready carries every entry the core has ready, however many proposals).
// Keys: `log/` + a 12-digit zero-padded index, `meta/hardstate`,
// `meta/snapshot` (the latest snapshot, meta and data) and `meta/first` (the
// index and term just before the first entry, once compacted); values are
// msgpackr records, checked by protocol/raft.ts's guards when read back.
// May import: protocol/ and this folder.
import { chmod, readdir } from 'node:fs/promises'
import { join } from 'node:path'
import { Level } from 'level'
import { decode, encode, isObject } from '../../protocol/codec.ts'
import { isEntry, isHardState, isSnapshotMeta } from '../../protocol/raft.ts'
import type { Entry, HardState, SnapshotMeta } from '../../protocol/raft.ts'
import { checkEntries, LogOrderError, MemoryStorage, NO_SNAPSHOT } from './storage.ts'
import type { HostStorage, RaftWrite, Snapshot } from './storage.ts'

const HARD_STATE_KEY = 'meta/hardstate'
const SNAPSHOT_KEY = 'meta/snapshot'
const FIRST_KEY = 'meta/first'

function isSnapshot (v: unknown): v is Snapshot {
  return isObject(v) && isSnapshotMeta(v.meta) && v.data instanceof Uint8Array
}

function isBefore (v: unknown): v is { index: number, term: number } {
  return isObject(v) && typeof v.index === 'number' && typeof v.term === 'number'
}
const LOG_PREFIX = 'log/'

export function logKey (index: number): string {
  return LOG_PREFIX + String(index).padStart(12, '0')
}

export type { RaftWrite } from './storage.ts'

/**
 * The log's directory 0700 and its files 0600, whatever modes an older
 * version or a copy left (LevelDB makes them after the umask). Files LevelDB
 * makes later stay behind the private directory.
 */
async function keepPrivate (path: string): Promise<void> {
  await chmod(path, 0o700)
  for (const entry of await readdir(path, { withFileTypes: true })) {
    if (entry.isFile()) await chmod(join(path, entry.name), 0o600)
  }
}

export class LevelStorage implements HostStorage {
  private readonly db: Level<string, Uint8Array>
  private readonly memory: MemoryStorage

  private constructor (db: Level<string, Uint8Array>, memory: MemoryStorage) {
    this.db = db
    this.memory = memory
  }

  /** Opens (or creates) the log in `path` and loads it. */
  static async open (path: string): Promise<LevelStorage> {
    const db = new Level<string, Uint8Array>(path, { valueEncoding: 'view' })
    await db.open()
    await keepPrivate(path)
    const memory = new MemoryStorage()
    const snapBytes = await db.get(SNAPSHOT_KEY)
    const firstBytes = await db.get(FIRST_KEY)
    if (snapBytes !== undefined || firstBytes !== undefined) {
      const snap = snapBytes !== undefined ? decode(snapBytes, isSnapshot, 'raft snapshot') : NO_SNAPSHOT
      const before = firstBytes !== undefined ? decode(firstBytes, isBefore, 'raft log start') : { index: 0, term: 0 }
      memory.load(before, snap)
    }
    const entries: Entry[] = []
    for await (const [key, value] of db.iterator({ gte: LOG_PREFIX, lt: LOG_PREFIX + '~' })) {
      entries.push(decode(value, isEntry, `raft log ${key}`))
    }
    // The log on disk is whole and in order (every batch keeps it so); a
    // violation means the directory was damaged, and MemoryStorage says where.
    memory.append(entries)
    const hs = await db.get(HARD_STATE_KEY)
    if (hs !== undefined) memory.setHardState(decode(hs, isHardState, 'raft hard state'))
    return new LevelStorage(db, memory)
  }

  term (index: number): number { return this.memory.term(index) }
  entries (lo: number, hi: number, maxEntries?: number): Entry[] { return this.memory.entries(lo, hi, maxEntries) }
  lastIndex (): number { return this.memory.lastIndex() }
  firstIndex (): number { return this.memory.firstIndex() }
  hardState (): HardState { return this.memory.hardState() }
  snapshotMeta (): SnapshotMeta { return this.memory.snapshotMeta() }
  snapshot (): Snapshot { return this.memory.snapshot() }

  /**
   * Stores a snapshot the host took at an applied index and drops the log up
   * to `compactTo`, in one synced batch. It may run while a Ready's entries
   * are being saved (it touches only keys at or below the snapshot), but not
   * beside installSnapshot.
   */
  async saveSnapshot (snap: Snapshot, compactTo: number): Promise<void> {
    compactTo = Math.min(compactTo, snap.meta.index)
    if (snap.meta.index > this.lastIndex() || this.term(snap.meta.index) !== snap.meta.term) {
      throw new LogOrderError(`snapshot at ${snap.meta.index}@${snap.meta.term} does not match the log`)
    }
    const ops: Array<{ type: 'put', key: string, value: Uint8Array } | { type: 'del', key: string }> = [
      { type: 'put', key: SNAPSHOT_KEY, value: encode(snap) }
    ]
    if (compactTo >= this.firstIndex()) {
      ops.push({ type: 'put', key: FIRST_KEY, value: encode({ index: compactTo, term: this.term(compactTo) }) })
      for (let i = this.firstIndex(); i <= compactTo; i++) ops.push({ type: 'del', key: logKey(i) })
    }
    // The hard state is not touched: this write may run beside a Ready's,
    // and must not put back an older term or vote. The stored commit may lag
    // the snapshot; the core takes the larger of the two.
    await this.db.batch(ops, { sync: true })
    this.memory.saveSnapshot(snap, compactTo)
  }

  /** Replaces the whole log with a leader's snapshot, in one synced batch. */
  async installSnapshot (snap: Snapshot): Promise<void> {
    const ops: Array<{ type: 'put', key: string, value: Uint8Array } | { type: 'del', key: string }> = [
      { type: 'put', key: SNAPSHOT_KEY, value: encode(snap) },
      { type: 'put', key: FIRST_KEY, value: encode({ index: snap.meta.index, term: snap.meta.term }) }
    ]
    for (let i = this.firstIndex(); i <= this.lastIndex(); i++) ops.push({ type: 'del', key: logKey(i) })
    const hs = this.hardState()
    if (hs.commit < snap.meta.index) ops.push({ type: 'put', key: HARD_STATE_KEY, value: encode({ ...hs, commit: snap.meta.index }) })
    await this.db.batch(ops, { sync: true })
    this.memory.installSnapshot(snap)
  }

  /**
   * Persists one Ready's entries and hard state in a single batch. Entries
   * overwrite whatever followed their first index; the dropped suffix is
   * deleted in the same batch, so a crash leaves either the old log or the
   * new one, never a mix.
   */
  async save (write: RaftWrite): Promise<void> {
    const ops: Array<{ type: 'put', key: string, value: Uint8Array } | { type: 'del', key: string }> = []
    const first = write.entries[0]
    const last = write.entries.at(-1)
    if (first !== undefined && last !== undefined) {
      // Check the write against the log before it reaches the disk.
      if (first.index > this.lastIndex() + 1) throw new LogOrderError(`entry ${first.index} would leave a hole after ${this.lastIndex()}`)
      if (first.index < this.firstIndex()) throw new LogOrderError(`entry ${first.index} is before the first entry held, ${this.firstIndex()}`)
      checkEntries(write.entries, first.index - 1, this.term(first.index - 1))
      for (const e of write.entries) ops.push({ type: 'put', key: logKey(e.index), value: encode(e) })
      for (let i = last.index + 1; i <= this.lastIndex(); i++) ops.push({ type: 'del', key: logKey(i) })
    }
    if (write.hardState !== undefined) ops.push({ type: 'put', key: HARD_STATE_KEY, value: encode(write.hardState) })
    if (ops.length === 0) return
    await this.db.batch(ops, { sync: write.sync })
    this.memory.append(write.entries)
    if (write.hardState !== undefined) this.memory.setHardState(write.hardState)
  }

  async close (): Promise<void> { await this.db.close() }

  /**
   * Founds a cluster on an empty log: entry 1, committed, is a config
   * naming `selfId` its only voter. False, and nothing written, if the log
   * holds anything (entries or a snapshot).
   */
  async found (selfId: string): Promise<boolean> {
    if (this.lastIndex() !== 0 || this.snapshotMeta().index !== 0) return false
    await this.save({
      entries: [{ term: 1, index: 1, kind: 'config', data: encode({ voters: [selfId], learners: [] }) }],
      hardState: { term: 1, commit: 1 },
      sync: true
    })
    return true
  }
}
