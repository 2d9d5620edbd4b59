// GET /shoal/v1/debug/state-hash: a digest of this peer's whole replicated
// state at its applied index, so that tests can compare replicas (two peers
// at the same applied index must answer the same hash). The state comes from
// the backup source without a ReadIndex round: index and bytes are taken in
// one synchronous step, so they belong together. `parts` digests each state
// machine's share alone, to say which one diverged.
// May import: protocol/, daemon/backup (the TakeBackup type), ./http.ts.
import { createHash } from 'node:crypto'
import type { IncomingMessage, ServerResponse } from 'node:http'
import { API_PREFIX } from '../../protocol/api.ts'
import { decode, isObject } from '../../protocol/codec.ts'
import type { TakeBackup } from '../backup/source.ts'
import { allow, HttpError, send } from './http.ts'

export const STATE_HASH_PATH = `${API_PREFIX}/debug/state-hash`

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

export async function handleStateHash (req: IncomingMessage, res: ServerResponse, take: TakeBackup | undefined): Promise<void> {
  allow(req, STATE_HASH_PATH, ['GET'])
  if (take === undefined) throw new HttpError(503, 'ServiceUnavailable', 'the replicated state is not running on this peer yet', { 'retry-after': '1' })
  const { header, body } = await take({ consistent: false })
  const parts: Record<string, string> = {}
  try {
    for (const [name, part] of Object.entries(decode(body, isParts, 'state snapshot').parts)) parts[name] = sha256(part)
  } catch { /* not routed: the whole hash still stands */ }
  send(res, 200, { appliedIndex: header.index, hash: sha256(body), parts } satisfies StateHashView)
}
