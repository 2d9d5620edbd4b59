// `shoald --restore FILE`: a new cluster from a backup. The file is read and
// checked in full (magic, format, checksum, truncation, a decodable state)
// before anything touches the data directory, which must be new or empty.
// The state then becomes this peer's Raft snapshot at the backup's index,
// with a config naming this peer its only voter, so the log goes on at
// index + 1; the keys and tokens made at first start are new, and so is the
// cluster id derived from the key. Joiners get the state by InstallSnapshot.
// May import: protocol/, daemon/raft (storage), daemon/log, this folder.
import { readdir } from 'node:fs/promises'
import type { Logger } from '../log/log.ts'
import type { LevelStorage } from '../raft/level-storage.ts'
import { readBackupFile } from './file.ts'
import { BackupFormatError, summarize } from '../../protocol/backup.ts'
import type { BackupSummary } from '../../protocol/backup.ts'
import type { Backup } from './source.ts'

export interface CheckedBackup extends Backup {
  path: string
  summary: BackupSummary
}

/** Reads and checks the backup, and that `dataDir` holds nothing yet; writes nothing. */
export async function prepareRestore (path: string, dataDir: string): Promise<CheckedBackup> {
  let entries: string[] = []
  try {
    entries = await readdir(dataDir)
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code
    if (code !== 'ENOENT') throw new BackupFormatError(`--restore: cannot read the data directory ${dataDir}: ${code ?? (err as Error).message}`)
  }
  if (entries.length > 0) throw new BackupFormatError(`--restore: the data directory ${dataDir} is not empty; restore into a new one`)
  let read
  try {
    read = await readBackupFile(path)
  } catch (err) {
    if (err instanceof BackupFormatError) throw new BackupFormatError(`--restore: ${err.message}`)
    throw err
  }
  const summary = summarize(read.body)
  return { path, header: read.header, body: read.body, summary }
}

/** Makes the backup this fresh log's snapshot, with this peer the only voter. */
export async function installRestore (storage: LevelStorage, backup: CheckedBackup, selfId: string, log: Logger): Promise<void> {
  if (storage.lastIndex() !== 0 || storage.snapshotMeta().index !== 0) throw new Error('--restore: the Raft log is not empty')
  const { index, term } = backup.header
  await storage.installSnapshot({ meta: { index, term, config: { voters: [selfId], learners: [] } }, data: backup.body })
  // The current term may not be below the last entry's.
  await storage.save({ entries: [], hardState: { term, commit: index }, sync: true })
  log.info({
    event: 'backup.restored',
    file: backup.path,
    fromCluster: backup.header.clusterId,
    index,
    term,
    objects: backup.summary.objects,
    kvKeys: backup.summary.kvKeys
  }, `restored ${backup.summary.objects} objects and ${backup.summary.kvKeys} KV keys from ${backup.path} (cluster ${backup.header.clusterId}, index ${index}) into a new cluster`)
}
