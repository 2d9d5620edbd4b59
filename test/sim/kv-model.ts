// The simulated hosts' state machine: a tiny key-value store that applies
// committed put and cas commands, tracks the cluster config as of the
// applied index (for snapshots), snapshots to bytes and restores from them,
// and hashes its whole state so that checkers can compare replicas at the
// same applied index. Deterministic: no clock, no randomness.
// May import: protocol/, daemon/raft (types and config decoding).
import type { ClusterConfig, Entry } from '../../protocol/raft.ts'
import { decodeClusterConfig } from '../../daemon/raft/core.ts'
import type { KvOutput } from './linearizability.ts'

/** A client's write; values are unique per seed, so every command is. */
export type KvCommand =
  | { op: 'put', key: string, value: string }
  | { op: 'cas', key: string, expected: string | null, value: string }

const PREFIX = 'kv:'
const encoder = new TextEncoder()
const decoder = new TextDecoder()

export function encodeCommand (c: KvCommand): Uint8Array {
  return encoder.encode(PREFIX + JSON.stringify(c))
}

/** The command in an entry's data, or undefined for anything else (other proposals are no-ops here). */
export function decodeCommand (data: Uint8Array): KvCommand | undefined {
  if (data.length < PREFIX.length || data[0] !== 0x6b || data[1] !== 0x76 || data[2] !== 0x3a) return undefined
  return JSON.parse(decoder.decode(data).slice(PREFIX.length)) as KvCommand
}

interface SnapshotBody {
  values: Array<[string, string]>
  config: ClusterConfig
}

export class KvStateMachine {
  private values = new Map<string, string>()
  /** the config as of `applied`, which a snapshot taken now records */
  config: ClusterConfig
  applied = 0
  private kvHash = '[]'
  private configHash: string

  constructor (config: ClusterConfig) {
    this.config = config
    this.configHash = JSON.stringify(config)
  }

  get (key: string): string | null { return this.values.get(key) ?? null }

  /** Applies one committed entry; the result for a client command, undefined for anything else. */
  apply (e: Entry): KvOutput | undefined {
    this.applied = e.index
    if (e.kind === 'config') {
      this.setConfig(decodeClusterConfig(e.data))
      return undefined
    }
    if (e.kind !== 'normal') return undefined
    const c = decodeCommand(e.data)
    if (c === undefined) return undefined
    if (c.op === 'cas' && this.get(c.key) !== c.expected) return { ok: false }
    this.values.set(c.key, c.value)
    this.kvHash = JSON.stringify([...this.values].sort((a, b) => a[0] < b[0] ? -1 : 1))
    return { ok: true }
  }

  snapshot (): Uint8Array {
    const body: SnapshotBody = { values: [...this.values], config: this.config }
    return encoder.encode(JSON.stringify(body))
  }

  restore (data: Uint8Array, index: number): void {
    const body = JSON.parse(decoder.decode(data)) as SnapshotBody
    this.values = new Map(body.values)
    this.kvHash = JSON.stringify([...this.values].sort((a, b) => a[0] < b[0] ? -1 : 1))
    this.setConfig(body.config)
    this.applied = index
  }

  /** The whole state: equal on two replicas at the same applied index, or the replicas diverged. */
  hash (): string { return `${this.kvHash}|${this.configHash}` }

  private setConfig (config: ClusterConfig): void {
    this.config = config
    this.configHash = JSON.stringify(config)
  }
}
