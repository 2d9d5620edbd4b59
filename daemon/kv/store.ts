// The cluster KV's state machine: the keys and values that the Raft log
// replicates, with compare-and-set on each key's modifyIndex. In memory; the
// Raft node persists it through snapshot() and the log. Synchronous and
// deterministic: the same commands in the same order give the same state and
// results on every peer.
// May import: protocol/, daemon/raft/state-machine.ts.
import { Buffer } from 'node:buffer'
import { decode, encode, isNumber, isObject, isString } from '../../protocol/codec.ts'
import { isKvCommand, KV_MAX_KEY_BYTES } from '../../protocol/kv.ts'
import { msgpackShapeError } from '../../protocol/msgpack-scan.ts'
import type { KvCommand, KvEntry, KvResult } from '../../protocol/kv.ts'
import { tagged } from '../raft/state-machine.ts'
import type { StateMachine } from '../raft/state-machine.ts'

/**
 * What apply() returns: a KvResult, or `invalid` for a command that could not
 * be decoded or breaks the rules (a bad key, a cas that is not a
 * non-negative integer). An invalid command changes nothing.
 */
export type KvApplyResult = KvResult | { ok: false, reason: 'invalid', index: number, message: string }

/** Snapshot format version, so that a later format can still read this one. */
const SNAPSHOT_VERSION = 1

interface KvSnapshot {
  v: number
  appliedIndex: number
  /** [key, value, createIndex, modifyIndex], sorted by key */
  entries: Array<[string, Uint8Array, number, number]>
}

function isIndex (v: unknown): v is number {
  return isNumber(v) && Number.isSafeInteger(v) && v >= 0
}

function isKvSnapshot (v: unknown): v is KvSnapshot {
  return isObject(v) && v.v === SNAPSHOT_VERSION && isIndex(v.appliedIndex) && Array.isArray(v.entries) &&
    v.entries.every(e => Array.isArray(e) && e.length === 4 && isString(e[0]) && e[1] instanceof Uint8Array && isIndex(e[2]) && isIndex(e[3]))
}

/** Every KV command's bytes start with this tag (see daemon/raft/state-machine.ts's RoutedStateMachine). */
export const KV_TAG = 1

/** The encoded form of a command, as KvStore.apply decodes it; what proposers hand to Replicator.propose. */
export function encodeKvCommand (cmd: KvCommand): Uint8Array {
  // No `cas: undefined` on the wire: the guard accepts an absent cas, not a nil one.
  const body = cmd.op === 'put'
    ? encode(cmd.cas === undefined ? { op: 'put', key: cmd.key, value: cmd.value } : { op: 'put', key: cmd.key, value: cmd.value, cas: cmd.cas })
    : encode(cmd.cas === undefined ? { op: 'del', key: cmd.key } : { op: 'del', key: cmd.key, cas: cmd.cas })
  return tagged(KV_TAG, body)
}

function byKey (a: KvEntry, b: KvEntry): number {
  return a.key < b.key ? -1 : a.key > b.key ? 1 : 0
}

export class KvStore implements StateMachine {
  private entries = new Map<string, KvEntry>()
  private applied = 0

  /**
   * Why `key` cannot be a key, or undefined when it can: 1 to
   * KV_MAX_KEY_BYTES bytes of UTF-8, well-formed (no lone surrogate), and
   * not `.` or `..` (URL parsers fold those path segments away, so such a
   * key could not be addressed as /shoal/v1/kv/{key}).
   */
  static validateKey (key: string): string | undefined {
    if (key === '') return 'the key is empty'
    if (!key.isWellFormed()) return 'the key is not valid UTF-8 (it has a lone surrogate)'
    const bytes = Buffer.byteLength(key, 'utf8')
    if (bytes > KV_MAX_KEY_BYTES) return `the key is ${bytes} bytes long; the most is ${KV_MAX_KEY_BYTES} bytes of UTF-8`
    if (key === '.' || key === '..') return `the key may not be "${key}"`
    return undefined
  }

  /** The log index of the last KV command applied (or the one the restored snapshot had applied). */
  get appliedIndex (): number { return this.applied }

  /** The number of keys. */
  get size (): number { return this.entries.size }

  get (key: string): KvEntry | undefined {
    return this.entries.get(key)
  }

  /** The entries whose key starts with `prefix` ('' for all), sorted by key (UTF-16 code units, as JavaScript compares strings). */
  list (prefix = ''): KvEntry[] {
    const found: KvEntry[] = []
    for (const entry of this.entries.values()) if (entry.key.startsWith(prefix)) found.push(entry)
    return found.sort(byKey)
  }

  /**
   * Applies the command committed at `index`. Put: unconditional without
   * `cas`; with `cas: 0` only if the key is absent; with `cas: N` only if the
   * key's modifyIndex is N. Del: without `cas` always ok, also for a missing
   * key (deleting is idempotent; nothing changes); with `cas: N` only if the
   * key exists with modifyIndex N (`cas: 0` on a missing key is ok: it
   * asked for absence and got it). Never throws on a bad command.
   */
  apply (index: number, command: Uint8Array): KvApplyResult {
    // A Raft node applies each index once, in order; anything else is a bug upstream.
    if (!Number.isSafeInteger(index) || index <= this.applied) throw new Error(`KvStore.apply: index ${index} after ${this.applied}`)
    this.applied = index
    let cmd: KvCommand
    try {
      if (command[0] !== KV_TAG) throw new Error('not a KV command (wrong tag)')
      // A command is one flat map: anything nested is refused before the decoder's recursion could see it.
      const shape = msgpackShapeError(command.subarray(1), 1)
      if (shape !== undefined) throw new Error(`KV command: ${shape.message}`)
      cmd = decode(command.subarray(1), isKvCommand, 'KV command')
    } catch (err) {
      return { ok: false, reason: 'invalid', index, message: (err as Error).message }
    }
    const bad = KvStore.validateKey(cmd.key) ?? (cmd.cas !== undefined && !isIndex(cmd.cas) ? `cas must be a non-negative integer, not ${cmd.cas}` : undefined)
    if (bad !== undefined) return { ok: false, reason: 'invalid', index, message: bad }

    const current = this.entries.get(cmd.key)
    const modifyIndex = current?.modifyIndex ?? 0
    if (cmd.cas !== undefined && cmd.cas !== modifyIndex) return { ok: false, reason: 'cas', index, modifyIndex }
    if (cmd.op === 'put') {
      // A copy: the decoded value may be a view into the whole command buffer.
      this.entries.set(cmd.key, { key: cmd.key, value: Uint8Array.from(cmd.value), createIndex: current?.createIndex ?? index, modifyIndex: index })
    } else {
      this.entries.delete(cmd.key)
    }
    return { ok: true, index }
  }

  snapshot (): Uint8Array {
    const snap: KvSnapshot = {
      v: SNAPSHOT_VERSION,
      appliedIndex: this.applied,
      entries: this.list().map(e => [e.key, e.value, e.createIndex, e.modifyIndex])
    }
    return encode(snap)
  }

  /** Replaces the whole state with a snapshot's; throws a DecodeError if `data` is not one. */
  restore (data: Uint8Array, index: number): void {
    const snap = decode(data, isKvSnapshot, 'KV snapshot')
    const entries = new Map<string, KvEntry>()
    for (const [key, value, createIndex, modifyIndex] of snap.entries) {
      entries.set(key, { key, value: Uint8Array.from(value), createIndex, modifyIndex })
    }
    this.entries = entries
    // The snapshot's own applied index (its last KV command), not the log's:
    // a replica that restored and one that applied every entry must encode the same state.
    this.applied = Math.min(snap.appliedIndex, index)
  }
}
