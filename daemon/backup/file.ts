// Backup files on disk: written atomically (a temporary file in the same
// directory, synced, then renamed over the name) and read back with every
// check of protocol/backup.ts.
// May import: protocol/, this folder.
import { randomBytes } from 'node:crypto'
import { createReadStream } from 'node:fs'
import { open, rename, rm } from 'node:fs/promises'
import { basename, dirname, join } from 'node:path'
import { backupPieces, BackupFormatError, readBackup } from '../../protocol/backup.ts'
import type { BackupHeader, ReadBackup } from '../../protocol/backup.ts'

/** Writes `pieces` to `path` atomically; a failure leaves no file behind (nor a half-written one). */
export async function writeAtomically (path: string, pieces: Iterable<Uint8Array> | AsyncIterable<Uint8Array>): Promise<number> {
  const tmp = join(dirname(path), `.${basename(path)}.tmp-${randomBytes(6).toString('hex')}`)
  const fh = await open(tmp, 'wx', 0o600)
  let bytes = 0
  try {
    for await (const piece of pieces) {
      await fh.write(piece)
      bytes += piece.length
    }
    await fh.sync()
    await fh.close()
    await rename(tmp, path)
  } catch (err) {
    await fh.close().catch(() => {})
    await rm(tmp, { force: true })
    throw err
  }
  return bytes
}

export async function writeBackupFile (path: string, header: BackupHeader, body: Uint8Array): Promise<number> {
  return await writeAtomically(path, backupPieces(header, body))
}

/** Reads and checks a backup file; BackupFormatError (with the path) for anything wrong with it. */
export async function readBackupFile (path: string, opts: { keepBody?: boolean } = {}): Promise<ReadBackup> {
  try {
    return await readBackup(createReadStream(path, { highWaterMark: 1024 * 1024 }), opts)
  } catch (err) {
    if (err instanceof BackupFormatError) throw new BackupFormatError(`${path}: ${err.message}`)
    const code = (err as NodeJS.ErrnoException).code
    if (code === 'ENOENT') throw new BackupFormatError(`${path}: no such file`)
    if (code === 'EISDIR') throw new BackupFormatError(`${path}: is a directory, not a backup file`)
    if (code !== undefined) throw new BackupFormatError(`cannot read ${path}: ${code}`)
    throw err
  }
}
