// Raft wire and storage shapes: log entries, the hard state a peer persists,
// and the messages peers exchange, with guards for decoding. The core in
// daemon/raft/ speaks these; drivers encode them with codec.ts.
// May import: only ./codec.ts.
import { isObject, isString } from './codec.ts'

/**
 * `noop` is the empty entry a new leader appends at the start of its term, so
 * that entries of earlier terms get committed with it. Membership-change
 * kinds will join this list.
 */
export type EntryKind = 'normal' | 'noop' | 'config'
export const ENTRY_KINDS: readonly EntryKind[] = ['normal', 'noop', 'config']

/**
 * The largest command, encoded, that the log takes (4 MiB), and the largest
 * object the store keeps. Above the API's 3 MiB bodies, so that what a
 * client may send fits unless it expands (YAML aliases, numbers that encode
 * longer than they print, managedFields); and a quarter of the Raft
 * transport's 16 MiB messages, so that an append of one such entry, or a
 * forwarded proposal and its answer, always fits one with room to spare.
 */
export const MAX_COMMAND_BYTES = 4 * 1024 * 1024

/**
 * Who votes and who only follows. A `config` entry's data is one of these,
 * msgpackr-encoded; a peer uses the newest one in its log, committed or
 * not (the Raft thesis, 4.1), and the leader proposes one at a time, each
 * adding, removing, promoting or demoting a single server.
 */
export interface ClusterConfig {
  voters: string[]
  learners: string[]
}

/** What a snapshot stands for: the log up to (index, term), and the config then. */
export interface SnapshotMeta {
  index: number
  term: number
  config: ClusterConfig
}

export interface Entry {
  term: number
  index: number
  kind: EntryKind
  /** opaque to Raft (a ClusterConfig for `config`); empty for a noop */
  data: Uint8Array
}

/** What a peer must persist before it answers anyone. */
export interface HardState {
  term: number
  /** the candidate this peer voted for in `term`, if any */
  votedFor?: string
  /** highest index known committed; persisted so a restart re-applies no less */
  commit: number
}

interface MessageBase {
  from: string
  to: string
  term: number
}

/**
 * A vote request. A PreVote request carries the term the sender would
 * campaign in (its own term plus one) without having moved to it.
 */
export interface VoteMessage extends MessageBase {
  type: 'vote'
  preVote: boolean
  lastLogIndex: number
  lastLogTerm: number
  /** a leadership transfer: the leader asked for it, so voters ignore their lease */
  transfer?: boolean
}

/**
 * A granted vote carries the term of the request (for a PreVote, a term the
 * voter has not reached); a refusal carries the voter's own term.
 */
export interface VoteResponseMessage extends MessageBase {
  type: 'vote-response'
  preVote: boolean
  granted: boolean
}

/** AppendEntries; with no entries it is also the leader's heartbeat. */
export interface AppendMessage extends MessageBase {
  type: 'append'
  prevLogIndex: number
  prevLogTerm: number
  entries: Entry[]
  /** the leader's commitIndex, capped at what the follower is known to hold */
  commit: number
  /** ReadIndex: the leader's read round; the answer echoes it */
  read?: number
}

/**
 * Where a follower's log parts from the leader's (the Raft thesis, 5.3):
 * `conflictTerm` is the follower's term at the rejected index and
 * `conflictIndex` its first index of that term; with no entry there,
 * `conflictTerm` is absent and `conflictIndex` is the follower's last index
 * plus one.
 */
export interface ConflictHint {
  conflictTerm?: number
  conflictIndex: number
}

export interface AppendAcceptedMessage extends MessageBase {
  type: 'append-response'
  success: true
  /** the follower's log matches the leader's up to here */
  matchIndex: number
  /** the `read` of the append this answers, if it had one */
  read?: number
}

export interface AppendRejectedMessage extends MessageBase {
  type: 'append-response'
  success: false
  /** the prevLogIndex that did not match, so the leader can tell a stale rejection */
  rejectedIndex: number
  hint: ConflictHint
}

export type AppendResponseMessage = AppendAcceptedMessage | AppendRejectedMessage

/** Tells a caught-up follower to campaign at once (leadership transfer). */
export interface TimeoutNowMessage extends MessageBase {
  type: 'timeout-now'
}

/**
 * InstallSnapshot. The core emits it without `data`; the transport attaches
 * the state machine's snapshot, sends it in chunks, and delivers it whole.
 * The follower answers with an append-response (matchIndex = meta.index).
 */
export interface SnapshotMessage extends MessageBase {
  type: 'snapshot'
  meta: SnapshotMeta
  data?: Uint8Array
}

export type RaftMessage =
  VoteMessage | VoteResponseMessage | AppendMessage | AppendResponseMessage | TimeoutNowMessage | SnapshotMessage

export type RaftMessageType = RaftMessage['type']

/** Terms and indexes are whole numbers from 0; a float or a negative is never one. */
function isIndex (v: unknown): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0
}

function isPeerId (v: unknown): v is string {
  return isString(v) && v.length > 0
}

export function isEntryKind (v: unknown): v is EntryKind {
  return typeof v === 'string' && (ENTRY_KINDS as readonly string[]).includes(v)
}

export function isEntry (v: unknown): v is Entry {
  return isObject(v) && isIndex(v.term) && isIndex(v.index) && v.index > 0 &&
    isEntryKind(v.kind) && v.data instanceof Uint8Array
}

export function isClusterConfig (v: unknown): v is ClusterConfig {
  return isObject(v) && Array.isArray(v.voters) && v.voters.every(isPeerId) &&
    Array.isArray(v.learners) && v.learners.every(isPeerId)
}

export function isSnapshotMeta (v: unknown): v is SnapshotMeta {
  return isObject(v) && isIndex(v.index) && isIndex(v.term) && isClusterConfig(v.config)
}

export function isHardState (v: unknown): v is HardState {
  return isObject(v) && isIndex(v.term) && isIndex(v.commit) &&
    (v.votedFor === undefined || isPeerId(v.votedFor))
}

function isConflictHint (v: unknown): v is ConflictHint {
  return isObject(v) && isIndex(v.conflictIndex) && (v.conflictTerm === undefined || isIndex(v.conflictTerm))
}

export function isRaftMessage (v: unknown): v is RaftMessage {
  if (!isObject(v) || !isPeerId(v.from) || !isPeerId(v.to) || !isIndex(v.term)) return false
  if (v.read !== undefined && !isIndex(v.read)) return false
  switch (v.type) {
    case 'vote':
      return typeof v.preVote === 'boolean' && isIndex(v.lastLogIndex) && isIndex(v.lastLogTerm) &&
        (v.transfer === undefined || typeof v.transfer === 'boolean')
    case 'vote-response':
      return typeof v.preVote === 'boolean' && typeof v.granted === 'boolean'
    case 'append':
      return isIndex(v.prevLogIndex) && isIndex(v.prevLogTerm) && isIndex(v.commit) &&
        Array.isArray(v.entries) && v.entries.every(isEntry)
    case 'append-response':
      if (v.success === true) return isIndex(v.matchIndex)
      return v.success === false && isIndex(v.rejectedIndex) && isConflictHint(v.hint)
    case 'timeout-now':
      return true
    case 'snapshot':
      return isSnapshotMeta(v.meta) && (v.data === undefined || v.data instanceof Uint8Array)
    default:
      return false
  }
}

// --- host-to-host requests, beside the core's messages ---

/** Protocol ids of the Raft transport. */
export const RAFT_PROTOCOL = '/shoal/raft/1.0.0'
export const RAFT_SNAPSHOT_PROTOCOL = '/shoal/raft-snapshot/1.0.0'
/** one long-lived stream per leader, carrying id-tagged ForwardRequest and ForwardResponse frames */
export const RAFT_FORWARD_PROTOCOL = '/shoal/raft-forward/2.0.0'

/** A follower asks the leader to propose a command, or to give a read index. */
export type ForwardRequest =
  | { type: 'propose', command: Uint8Array }
  | { type: 'read-index' }

/**
 * The leader's answer. `index` is the committed index of the proposal (or the
 * read index); the follower waits until it has applied it. `result` is what
 * the leader's state machine returned. On failure, `error` says why and
 * `leader` is the leader the answering peer knows of, if any.
 */
export type ForwardResponse =
  | { ok: true, index: number, result?: unknown }
  | { ok: false, error: 'not-leader' | 'no-leader' | 'timeout' | 'too-large', message: string, leader?: string }

export function isForwardRequest (v: unknown): v is ForwardRequest {
  if (!isObject(v)) return false
  return (v.type === 'propose' && v.command instanceof Uint8Array) || v.type === 'read-index'
}

export function isForwardResponse (v: unknown): v is ForwardResponse {
  if (!isObject(v)) return false
  if (v.ok === true) return isIndex(v.index)
  return v.ok === false && isString(v.error) && isString(v.message) && (v.leader === undefined || isString(v.leader))
}
