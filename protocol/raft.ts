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
export type EntryKind = 'normal' | 'noop'
export const ENTRY_KINDS: readonly EntryKind[] = ['normal', 'noop']

export interface Entry {
  term: number
  index: number
  kind: EntryKind
  /** opaque to Raft; empty for a noop */
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

export type RaftMessage =
  VoteMessage | VoteResponseMessage | AppendMessage | AppendResponseMessage | TimeoutNowMessage

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

export function isHardState (v: unknown): v is HardState {
  return isObject(v) && isIndex(v.term) && isIndex(v.commit) &&
    (v.votedFor === undefined || isPeerId(v.votedFor))
}

function isConflictHint (v: unknown): v is ConflictHint {
  return isObject(v) && isIndex(v.conflictIndex) && (v.conflictTerm === undefined || isIndex(v.conflictTerm))
}

export function isRaftMessage (v: unknown): v is RaftMessage {
  if (!isObject(v) || !isPeerId(v.from) || !isPeerId(v.to) || !isIndex(v.term)) return false
  switch (v.type) {
    case 'vote':
      return typeof v.preVote === 'boolean' && isIndex(v.lastLogIndex) && isIndex(v.lastLogTerm)
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
    default:
      return false
  }
}
