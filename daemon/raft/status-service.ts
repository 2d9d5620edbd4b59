// The leader's view of the log for any peer: only the leader knows each
// peer's match index and lag, so a follower asked for it
// (GET /shoal/v1/raft?view=leader) fetches it from the leader over libp2p
// (`/shoal/raft-status/1.0.0`, one request and one answer per stream).
// May import: protocol/, daemon/p2p (host, rpc), ./node.ts.
import { peerIdFromString } from '@libp2p/peer-id'
import type { RaftStatusView } from '../../protocol/api.ts'
import { isObject } from '../../protocol/codec.ts'
import type { ShoalHost } from '../p2p/host.ts'
import { request, serve } from '../p2p/rpc.ts'
import type { Logger } from '../log/log.ts'

export const RAFT_STATUS_PROTOCOL = '/shoal/raft-status/1.0.0'
const OPTS = { timeoutMs: 2000, maxBytes: 1024 * 1024 }

function isStatus (v: unknown): v is RaftStatusView {
  return isObject(v) && v.kind === 'RaftStatus' && Array.isArray(v.voters) && Array.isArray(v.learners)
}

function isAsk (v: unknown): v is Record<string, unknown> {
  return isObject(v)
}

export interface StatusSource {
  status: () => RaftStatusView
}

/** Answers other peers' requests with this peer's status, from start to stop. */
export class RaftStatusService {
  private readonly host: ShoalHost
  private readonly raft: StatusSource
  private readonly log: Logger

  constructor (host: ShoalHost, raft: StatusSource, log: Logger) {
    this.host = host
    this.raft = raft
    this.log = log
  }

  async start (): Promise<void> {
    await serve(this.host, RAFT_STATUS_PROTOCOL, isAsk, OPTS, () => this.raft.status(), (err, from) => {
      this.log.debug({ event: 'raft.status-rpc.failed', from: from.toString(), err: err.message }, 'a raft status request failed')
    })
  }

  async stop (): Promise<void> {
    await this.host.unhandle(RAFT_STATUS_PROTOCOL).catch(() => {})
  }
}

/** The leader's status: this peer's own if it leads, else asked of the leader; undefined when there is no leader. */
export async function leaderRaftStatus (host: ShoalHost, raft: StatusSource): Promise<RaftStatusView | undefined> {
  const own = raft.status()
  if (own.role === 'leader') return own
  if (own.leader === undefined) return undefined
  return await request(host, peerIdFromString(own.leader.id), RAFT_STATUS_PROTOCOL, {}, isStatus, OPTS)
}
