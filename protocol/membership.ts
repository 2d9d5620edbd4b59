// Membership wire messages: the heartbeat each peer gossips about itself,
// the leave it publishes on SIGTERM, and the push-pull sync exchanged
// directly between two peers when they connect.
import { isNumber, isObject, isString, isStringArray } from './codec.ts'
import { isFingerprint } from './tls.ts'

/** Gossipsub topic for heartbeats and leaves. */
export const MEMBERSHIP_TOPIC = 'shoal/membership/1'
/** Direct stream protocol for push-pull sync, announces and leaves. */
export const SYNC_PROTOCOL = '/shoal/membership/sync/1.0.0'
/** Largest sync frame accepted (a full member list of a large cluster). */
export const MAX_SYNC_BYTES = 4 * 1024 * 1024

export type MemberState = 'alive' | 'suspect' | 'dead' | 'left'
export const MEMBER_STATES: readonly MemberState[] = ['alive', 'suspect', 'dead', 'left']

export interface Capacity {
  /** logical CPUs */
  cpu: number
  /** bytes of memory */
  memory: number
}

/**
 * What a peer says about itself. `incarnation` grows by one at every start
 * of the same data directory; `seq` grows by one at every heartbeat of one
 * incarnation. Together they order every statement a peer makes.
 */
export interface MemberRecord {
  name: string
  peerId: string
  addrs: string[]
  api: string
  version: string
  capacity: Capacity
  startedAt: number
  incarnation: number
  seq: number
  /** the sender's current heartbeat interval, ms: it stretches as the cluster grows */
  heartbeatMs: number
  /** the SHA-256 fingerprint of the member's API certificate (protocol/tls.ts); `shoal kubeconfig` pins it. Absent from peers older than it. */
  apiFingerprint?: string
}

export interface HeartbeatMessage { type: 'heartbeat', member: MemberRecord }
export interface LeaveMessage { type: 'leave', peerId: string, incarnation: number }
export type GossipMessage = HeartbeatMessage | LeaveMessage

/** A member as one peer sees it, sent in a sync. */
export interface MemberSnapshot { record: MemberRecord, state: MemberState }

/** Sent by the dialling side; the other side answers with a SyncResponse. */
export interface SyncRequest { type: 'sync', members: MemberSnapshot[], wantToken: boolean }
export interface SyncResponse { type: 'sync-response', members: MemberSnapshot[], adminToken?: string, viewerToken?: string }
/** One-way: members the sender just learned of, or the sender leaving. */
export interface AnnounceMessage { type: 'announce', members: MemberSnapshot[] }
export type SyncMessage = SyncRequest | SyncResponse | AnnounceMessage | LeaveMessage

export function isCapacity (v: unknown): v is Capacity {
  return isObject(v) && isNumber(v.cpu) && isNumber(v.memory)
}

export function isMemberRecord (v: unknown): v is MemberRecord {
  return isObject(v) &&
    isString(v.name) && v.name.length > 0 && v.name.length <= 253 &&
    isString(v.peerId) && v.peerId.length > 0 &&
    isStringArray(v.addrs) &&
    isString(v.api) && isString(v.version) &&
    isCapacity(v.capacity) &&
    isNumber(v.startedAt) && isNumber(v.incarnation) && isNumber(v.seq) && isNumber(v.heartbeatMs) && v.heartbeatMs > 0 &&
    (v.apiFingerprint === undefined || isFingerprint(v.apiFingerprint))
}

export function isMemberState (v: unknown): v is MemberState {
  return typeof v === 'string' && (MEMBER_STATES as readonly string[]).includes(v)
}

function isSnapshotList (v: unknown): v is MemberSnapshot[] {
  return Array.isArray(v) && v.every(s => isObject(s) && isMemberRecord(s.record) && isMemberState(s.state))
}

function isLeave (v: Record<string, unknown>): boolean {
  return v.type === 'leave' && isString(v.peerId) && isNumber(v.incarnation)
}

export function isGossipMessage (v: unknown): v is GossipMessage {
  if (!isObject(v)) return false
  if (v.type === 'heartbeat') return isMemberRecord(v.member)
  return isLeave(v)
}

export function isSyncMessage (v: unknown): v is SyncMessage {
  if (!isObject(v)) return false
  switch (v.type) {
    case 'sync': return isSnapshotList(v.members) && typeof v.wantToken === 'boolean'
    case 'sync-response': return isSnapshotList(v.members) && (v.adminToken === undefined || isString(v.adminToken)) &&
      (v.viewerToken === undefined || isString(v.viewerToken))
    case 'announce': return isSnapshotList(v.members)
    default: return isLeave(v)
  }
}
