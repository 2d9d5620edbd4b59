// GET /shoal/v1/debug/state-hash: a digest of this peer's whole replicated
// state at its applied index, so that tests can compare replicas (two peers
// at the same applied index must answer the same hash). The state comes from
// the backup source without a ReadIndex round: index and bytes are taken in
// one synchronous step, so they belong together. `parts` digests each state
// machine's share alone, to say which one diverged. Encoding the whole
// state is costly: only the admin token may ask (server.ts), and each client
// address at most once per STATE_HASH_INTERVAL_MS (StateHashRate: 429 with
// Retry-After beyond).
// May import: protocol/, daemon/backup (the TakeBackup type), ./http.ts.
import { createHash } from 'node:crypto'
import type { IncomingMessage, ServerResponse } from 'node:http'
import { API_PREFIX } from '../../protocol/api.ts'
import { decode, isObject } from '../../protocol/codec.ts'
import type { TakeBackup } from '../backup/source.ts'
import { allow, HttpError, send } from './http.ts'

export const STATE_HASH_PATH = `${API_PREFIX}/debug/state-hash`

/** How often one client address may have the state hashed. */
export const STATE_HASH_INTERVAL_MS = 1000

/**
 * At most one computation per interval per client address, on the clock
 * it is given. It remembers only the clients of the last interval (once
 * more than a thousand are remembered, the older ones are forgotten).
 */
export class StateHashRate {
  private readonly intervalMs: number
  private readonly now: () => number
  private readonly last = new Map<string, number>()

  constructor (intervalMs: number, now: () => number) {
    this.intervalMs = intervalMs
    this.now = now
  }

  /** 0 when `client` may go now (which counts as its call), else how many ms until it may. */
  take (client: string): number {
    const now = this.now()
    if (this.last.size > 1000) {
      for (const [c, at] of this.last) if (now - at >= this.intervalMs || now < at) this.last.delete(c)
    }
    const at = this.last.get(client)
    if (at !== undefined && now >= at && now - at < this.intervalMs) return this.intervalMs - (now - at)
    this.last.set(client, now)
    return 0
  }

  /** Clients remembered (for tests). */
  size (): number { return this.last.size }
}

export interface StateHashView {
  appliedIndex: number
  /** sha256 of the encoded state, hex */
  hash: string
  /** sha256 of each state machine's part (kv, store), hex */
  parts: Record<string, string>
}

function isParts (v: unknown): v is { parts: Record<string, Uint8Array> } {
  return isObject(v) && isObject(v.parts) && Object.values(v.parts).every(p => p instanceof Uint8Array)
}

const sha256 = (bytes: Uint8Array): string => createHash('sha256').update(bytes).digest('hex')

/** GET of the state hash, for an admin caller (server.ts checks the token) at `client`, within `rate`. */
export async function handleStateHash (req: IncomingMessage, res: ServerResponse, take: TakeBackup | undefined, rate: StateHashRate, client: string): Promise<void> {
  allow(req, STATE_HASH_PATH, ['GET'])
  if (take === undefined) throw new HttpError(503, 'ServiceUnavailable', 'the replicated state is not running on this peer yet', { 'retry-after': '1' })
  const waitMs = rate.take(client)
  if (waitMs > 0) {
    throw new HttpError(429, 'TooManyRequests', `the state hash is computed at most once every ${STATE_HASH_INTERVAL_MS / 1000} s per client; try again in ${Math.ceil(waitMs / 1000)} s`, { 'retry-after': String(Math.ceil(waitMs / 1000)) })
  }
  const { header, body } = await take({ consistent: false })
  const parts: Record<string, string> = {}
  try {
    for (const [name, part] of Object.entries(decode(body, isParts, 'state snapshot').parts)) parts[name] = sha256(part)
  } catch { /* not routed: the whole hash still stands */ }
  send(res, 200, { appliedIndex: header.index, hash: sha256(body), parts } satisfies StateHashView)
}
