// JSON shapes of the HTTP API that the CLI (and later the UI) read.
import type { Capacity, MemberState } from './membership.ts'

export const API_PREFIX = '/shoal/v1'

/** One entry of `GET /shoal/v1/members`. */
export interface MemberView {
  name: string
  peerId: string
  addrs: string[]
  /** the member's HTTP API, host:port */
  api: string
  state: MemberState
  /** ISO time of the last evidence that the member was alive */
  lastSeen: string
  /** ISO time the member's current incarnation started */
  startedAt: string
  version: string
  capacity: Capacity
  incarnation: number
  /** the SHA-256 fingerprint of the member's API certificate, as it gossips it (AB:CD:…); absent for peers older than it */
  apiFingerprint?: string
  /** true for the peer that answered */
  self: boolean
}

export interface MemberList { kind: 'MemberList', items: MemberView[] }

/** Error body, shaped like Kubernetes' `Status`. */
export interface StatusBody {
  kind: 'Status'
  apiVersion: 'v1'
  status: 'Failure'
  message: string
  reason: string
  code: number
}

/** A voter or learner as `GET /shoal/v1/raft` shows it. */
export interface RaftServerView {
  id: string
  /** the member's name and API address, when membership knows them */
  name?: string
  api?: string
  /** the leader's replication state for it; only a leader knows */
  matchIndex?: number
  /** commitIndex minus matchIndex, when known */
  lag?: number
}

/** `GET /shoal/v1/raft`: this peer's view of the replicated log. */
export interface RaftStatusView {
  kind: 'RaftStatus'
  id: string
  name: string
  role: 'leader' | 'follower' | 'pre-candidate' | 'candidate' | 'learner'
  term: number
  /** the leader this peer knows of, if any */
  leader?: { id: string, name?: string, api?: string }
  commitIndex: number
  appliedIndex: number
  lastIndex: number
  /** index of the last snapshot this peer holds (0: none) */
  snapshotIndex: number
  voters: RaftServerView[]
  learners: RaftServerView[]
}

/** GET /shoal/v1/whoami: what the caller's token may do. */
export interface WhoAmI { kind: 'WhoAmI', role: 'admin' | 'viewer' }
