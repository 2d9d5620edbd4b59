// Scheduled snapshots: every --snapshot-interval, this peer writes a backup
// of its own replica (no leader needed) into <data-dir>/backups/, named by
// time and index so that names sort oldest first, and removes the oldest
// beyond --snapshot-retain. Off unless the interval is given.
// May import: protocol/, daemon/clock, daemon/log, this folder.
import { mkdir, readdir, rm } from 'node:fs/promises'
import { join } from 'node:path'
import type { Clock } from '../clock/clock.ts'
import { every } from '../clock/clock.ts'
import type { Logger } from '../log/log.ts'
import { writeBackupFile } from './file.ts'
import type { TakeBackup } from './source.ts'

export const BACKUP_DIR = 'backups'
const NAME = /^shoal-\d{8}T\d{9}Z-i\d+\.backup$/

/** e.g. shoal-20250101T120000123Z-i4242.backup: UTC time to the millisecond, then the log index. */
export function backupFileName (createdAt: string, index: number): string {
  const stamp = createdAt.replace(/[-:]/g, '').replace('.', '')
  return `shoal-${stamp}-i${index}.backup`
}

export interface BackupSchedulerInit {
  dataDir: string
  intervalMs: number
  retain: number
  take: TakeBackup
  clock: Clock
  log: Logger
}

export class BackupScheduler {
  readonly dir: string
  private readonly init: BackupSchedulerInit
  private stopTimer: (() => void) | undefined
  private running: Promise<void> | undefined

  constructor (init: BackupSchedulerInit) {
    this.init = init
    this.dir = join(init.dataDir, BACKUP_DIR)
  }

  start (): void {
    this.stopTimer = every(this.init.clock, this.init.intervalMs, () => {
      // A slow write skips a turn rather than piling up.
      if (this.running !== undefined) return
      this.running = this.runOnce().then(() => {}, (err: Error) => {
        this.init.log.error({ event: 'backup.scheduled.failed', err: err.message }, `scheduled snapshot failed: ${err.message}`)
      }).finally(() => { this.running = undefined })
    })
  }

  async stop (): Promise<void> {
    this.stopTimer?.()
    await this.running
  }

  /** Writes one backup now and prunes the oldest; resolves with its path. */
  async runOnce (): Promise<string> {
    const { header, body } = await this.init.take({ consistent: false })
    await mkdir(this.dir, { recursive: true, mode: 0o700 })
    const path = join(this.dir, backupFileName(header.createdAt, header.index))
    const bytes = await writeBackupFile(path, header, body)
    this.init.log.info({ event: 'backup.scheduled', path, index: header.index, bytes }, `snapshot at index ${header.index} written to ${path}`)
    await this.prune()
    return path
  }

  /** Removes the oldest of our backups beyond the retain count (other files are left alone). */
  async prune (): Promise<string[]> {
    const names = (await readdir(this.dir)).filter(n => NAME.test(n)).sort()
    const old = names.slice(0, Math.max(0, names.length - this.init.retain))
    for (const n of old) await rm(join(this.dir, n), { force: true })
    return old
  }
}
