// What the rest of the daemon sees of the replicated log: propose a command,
// wait for a linearizable read point, read the status. The Raft node
// (node.ts) implements it; the API server and, later, the store use it.
// May import: protocol/.
import type { RaftStatusView } from '../../protocol/api.ts'

/** No leader is known (an election is under way); retry after `retryAfterSeconds`. */
export class NoLeaderError extends Error {
  override name = 'NoLeaderError'
  readonly retryAfterSeconds: number
  constructor (message = 'no leader is elected yet; retry shortly', retryAfterSeconds = 1) {
    super(message)
    this.retryAfterSeconds = retryAfterSeconds
  }
}

/** The outcome is unknown: the command may or may not have been applied. */
export class ProposalTimeoutError extends Error {
  override name = 'ProposalTimeoutError'
}

/**
 * The operation needs the leader and cannot be forwarded; `leaderApi` is the
 * leader's HTTP API address (host:port), when known.
 */
export class NotLeaderError extends Error {
  override name = 'NotLeaderError'
  readonly leaderApi: string | undefined
  constructor (leaderApi: string | undefined) {
    super(leaderApi === undefined ? 'this peer is not the leader' : `this peer is not the leader; the leader's API is ${leaderApi}`)
    this.leaderApi = leaderApi
  }
}

/** The largest command, encoded, that propose takes (4 MiB; protocol/raft.ts says why). */
export { MAX_COMMAND_BYTES } from '../../protocol/raft.ts'

/** A command too large for the log: it was not proposed, and nothing changed. */
export class CommandTooLargeError extends Error {
  override name = 'CommandTooLargeError'
  readonly bytes: number
  readonly limit: number
  /** `message`: the leader's own words, when it was the leader that refused */
  constructor (bytes: number, limit: number, message?: string) {
    super(message ?? `the write is ${bytes} bytes once encoded, more than the ${limit} bytes one write may be`)
    this.bytes = bytes
    this.limit = limit
  }
}

export interface Proposed<R> {
  /** the log index the command was committed at */
  index: number
  /** what the state machine returned when it applied the command */
  result: R
}

export interface Replicator {
  /**
   * Replicates `command` (made by a state machine's encoder) through the
   * leader, wherever it is, and resolves once it is committed and applied on
   * this peer too, so that a local read that follows sees it. Rejects with
   * NoLeaderError, ProposalTimeoutError or NotLeaderError; never hangs
   * (bounded by `timeoutMs`, default 5 s). A command larger than
   * MAX_COMMAND_BYTES is refused at once with CommandTooLargeError.
   */
  propose: (command: Uint8Array, timeoutMs?: number) => Promise<Proposed<unknown>>
  /**
   * ReadIndex: resolves with an index once this peer has applied everything
   * that was committed when the call was made; a read of local state after
   * it is linearizable. Same errors as propose.
   */
  readBarrier: (timeoutMs?: number) => Promise<number>
  status: () => RaftStatusView
  /** the index this peer's state machine has applied */
  appliedIndex: () => number
}
