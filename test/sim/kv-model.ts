// The simulated hosts' state machine: a tiny key-value store that applies
// committed put and cas commands, snapshots to bytes and restores from them,
// and hashes its contents so that checkers can compare replicas at the same
// applied index. It is a StateMachine as shoald's are: the host loop
// (daemon/raft/ready-loop.ts) hands it normal entries only and keeps the
// cluster config itself. Deterministic: no clock, no randomness.
// May import: protocol/, daemon/raft (the StateMachine interface).
import type { StateMachine } from '../../daemon/raft/state-machine.ts'
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
}

export class KvStateMachine implements StateMachine {
  private values = new Map<string, string>()
  private kvHash = '[]'

  get (key: string): string | null { return this.values.get(key) ?? null }

  /** Applies one committed command; the result for a client command, undefined for anything else. */
  apply (_index: number, data: Uint8Array): KvOutput | undefined {
    const c = decodeCommand(data)
    if (c === undefined) return undefined
    if (c.op === 'cas' && this.get(c.key) !== c.expected) return { ok: false }
    this.values.set(c.key, c.value)
    this.rehash()
    return { ok: true }
  }

  snapshot (): Uint8Array {
    const body: SnapshotBody = { values: [...this.values] }
    return encoder.encode(JSON.stringify(body))
  }

  restore (data: Uint8Array, _index: number): void {
    const body = JSON.parse(decoder.decode(data)) as SnapshotBody
    this.values = new Map(body.values)
    this.rehash()
  }

  /** The contents: equal on two replicas at the same applied index, or the replicas diverged. */
  hash (): string { return this.kvHash }

  private rehash (): void {
    this.kvHash = JSON.stringify([...this.values].sort((a, b) => a[0] < b[0] ? -1 : 1))
  }
}
