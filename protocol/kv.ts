// The cluster KV: the commands that go through the Raft log, the results the
// state machine returns, and the JSON shapes of its HTTP API.
// May import: only ./codec.ts.
import { isNumber, isObject, isString } from './codec.ts'

/** Values above this many bytes get 413 unless the peer is configured otherwise. */
export const DEFAULT_KV_MAX_VALUE_BYTES = 512 * 1024
/** Keys are 1 to this many bytes of UTF-8. */
export const KV_MAX_KEY_BYTES = 1024

/**
 * A write. `cas` makes it conditional on the key's modifyIndex: 0 means
 * "only if the key does not exist".
 */
export type KvCommand =
  | { op: 'put', key: string, value: Uint8Array, cas?: number }
  | { op: 'del', key: string, cas?: number }

/** What applying a KvCommand at log index `index` returned. */
export type KvResult =
  | { ok: true, index: number }
  /** the CAS did not match; `modifyIndex` is the key's current one (0: absent) */
  | { ok: false, reason: 'cas', index: number, modifyIndex: number }

/** One key as the state machine holds it. */
export interface KvEntry {
  key: string
  value: Uint8Array
  /** log index of the write that created the key */
  createIndex: number
  /** log index of the last write to the key */
  modifyIndex: number
}

/** `GET /shoal/v1/kv/{key}`: the value as UTF-8 text, or base64 when it is not valid UTF-8. */
export interface KvPairView {
  key: string
  value: string
  encoding?: 'base64'
  createIndex: number
  modifyIndex: number
}

/** `GET /shoal/v1/kv/?prefix=P`. `index` is the applied index the list was read at. */
export interface KvListView { kind: 'KvList', index: number, items: KvPairView[] }

/** `PUT` and `DELETE` answer this on success. */
export interface KvWriteView { index: number }

export function isKvCommand (v: unknown): v is KvCommand {
  if (!isObject(v) || !isString(v.key)) return false
  if (v.cas !== undefined && !isNumber(v.cas)) return false
  if (v.op === 'put') return v.value instanceof Uint8Array
  return v.op === 'del'
}
