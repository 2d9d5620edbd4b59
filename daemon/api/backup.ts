// GET /shoal/v1/backup: a consistent backup of the whole replicated state,
// streamed in the format of protocol/backup.ts. The answering peer runs
// a ReadIndex round through the leader, encodes its state machine at its
// applied index (at or past the read index) and streams that buffer in
// frames, with back-pressure: the state is held once, never copied again.
// Admin token only: a backup holds every Secret.
// May import: protocol/, daemon/backup (format and the snapshot function), ./http.ts.
import type { IncomingMessage, ServerResponse } from 'node:http'
import { API_PREFIX } from '../../protocol/api.ts'
import { backupFileBytes, backupPieces, encodeHeader } from '../../protocol/backup.ts'
import type { TakeBackup } from '../backup/source.ts'
import { allow, ClientGoneError, HttpError } from './http.ts'

export const BACKUP_PATH = `${API_PREFIX}/backup`
export const BACKUP_CONTENT_TYPE = 'application/vnd.shoal.backup'

export async function handleBackup (req: IncomingMessage, res: ServerResponse, take: TakeBackup | undefined, admin: boolean): Promise<void> {
  allow(req, BACKUP_PATH, ['GET'])
  if (!admin) throw new HttpError(403, 'Forbidden', 'a backup holds every Secret: it needs the admin token')
  if (take === undefined) throw new HttpError(503, 'ServiceUnavailable', 'the replicated state is not running on this peer yet', { 'retry-after': '1' })
  const { header, body } = await take({ consistent: true })
  const encoded = encodeHeader(header)
  res.writeHead(200, {
    'content-type': BACKUP_CONTENT_TYPE,
    'content-length': String(backupFileBytes(encoded.length, body.length)),
    'x-shoal-backup-index': String(header.index),
    'cache-control': 'no-store'
  })
  if (req.method === 'HEAD') {
    res.end()
    return
  }
  for (const piece of backupPieces(header, body, encoded)) {
    if (res.destroyed) throw new ClientGoneError()
    if (!res.write(piece)) {
      await new Promise<void>((resolve, reject) => {
        const done = (): void => { res.off('drain', done); res.off('close', gone); resolve() }
        const gone = (): void => { res.off('drain', done); res.off('close', gone); reject(new ClientGoneError()) }
        res.on('drain', done)
        res.on('close', gone)
      })
    }
  }
  res.end()
}
