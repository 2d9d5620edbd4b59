// The Raft core's settings, with defaults and validation.
// May import: daemon/clock (the Rng type), ./storage.ts.
import type { Rng } from '../clock/clock.ts'
import type { RaftStorage } from './storage.ts'

export interface RaftConfig {
  /** this peer's id */
  id: string
  /** the voters, this peer included; order does not matter */
  peers: string[]
  /**
   * Ticks without hearing from a leader before a follower campaigns; each
   * wait is drawn from [electionTicks, 2 * electionTicks) so that peers
   * rarely campaign together. A leader steps down (CheckQuorum) if it has
   * not heard from a majority for this long. Default 10.
   */
  electionTicks?: number
  /** Ticks between a leader's heartbeats; well under electionTicks. Default 1. */
  heartbeatTicks?: number
  /** election jitter comes from here, never from Math.random */
  rng: Rng
  /** the persisted log and hard state the core starts from and reads */
  storage: RaftStorage
  /**
   * Appends a leader may have unacknowledged to one follower before it waits
   * (pipelining). Default 64.
   */
  maxInflight?: number
  /** Entries in one append (batching). Default 64. */
  maxBatchEntries?: number
  /**
   * Bytes of entry data in one append: a batch ends at maxBatchEntries or
   * here, whichever comes first, so that an append stays well inside one
   * transport message. An entry larger than this goes alone. Default 1 MiB.
   */
  maxBatchBytes?: number
  /**
   * Bytes of entry data a leader may have unacknowledged to one follower
   * before it waits, as maxInflight counts appends; the append that passes
   * it still goes. Default 32 MiB, half of what the Raft transport queues
   * for one peer, so that a pipeline of large entries is not dropped there.
   */
  maxInflightBytes?: number
  /**
   * Campaign in two rounds, first asking whether a vote would be granted
   * without moving to a new term, so that a peer returning from a partition
   * does not depose a healthy leader (thesis 9.6). Default true.
   */
  preVote?: boolean
  /**
   * A leader that has not heard from a majority within an election timeout
   * steps down, and a follower that heard from a leader within one ignores
   * votes (the leader lease). Default true.
   */
  checkQuorum?: boolean
  /**
   * The last index the host's state machine has applied, from its own
   * persisted state; replay starts after it. Default 0 (replay everything
   * committed); snapshots will set it.
   */
  applied?: number
}

export type ResolvedRaftConfig = Required<RaftConfig>

export const RAFT_DEFAULTS = {
  electionTicks: 10,
  heartbeatTicks: 1,
  maxInflight: 64,
  maxBatchEntries: 64,
  maxBatchBytes: 1024 * 1024,
  maxInflightBytes: 32 * 1024 * 1024,
  preVote: true,
  checkQuorum: true,
  applied: 0
} as const

export class RaftConfigError extends Error {
  override name = 'RaftConfigError'
}

export function resolveRaftConfig (c: RaftConfig): ResolvedRaftConfig {
  const r: ResolvedRaftConfig = { ...RAFT_DEFAULTS, ...withoutUndefined(c) } as ResolvedRaftConfig
  if (r.id.length === 0) throw new RaftConfigError('raft: id must not be empty')
  if (new Set(r.peers).size !== r.peers.length) throw new RaftConfigError(`raft: peers has duplicates: ${r.peers.join(', ')}`)
  for (const key of ['electionTicks', 'heartbeatTicks', 'maxInflight', 'maxBatchEntries', 'maxBatchBytes', 'maxInflightBytes'] as const) {
    if (!Number.isSafeInteger(r[key]) || r[key] < 1) throw new RaftConfigError(`raft: ${key} must be a whole number of at least 1, got ${r[key]}`)
  }
  if (r.heartbeatTicks >= r.electionTicks) {
    throw new RaftConfigError(`raft: heartbeatTicks (${r.heartbeatTicks}) must be below electionTicks (${r.electionTicks})`)
  }
  if (!Number.isSafeInteger(r.applied) || r.applied < 0) throw new RaftConfigError(`raft: applied must be a whole number, got ${r.applied}`)
  return r
}

function withoutUndefined<T extends object> (o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>
}
