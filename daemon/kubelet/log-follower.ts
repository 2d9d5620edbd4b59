// A container's log file, shared by the process and native runtimes: as a
// stream (the tail of what is there, then with `follow` what is appended,
// polled on the injected clock, across a rotation, until the container has
// ended), read whole with its rotated part, and rotated when it grows too
// big (copied to .log.1, then truncated in place: the container appends to
// it through its own descriptor, so it cannot be renamed under it).
// May import: daemon/clock.
import { copyFile, open, readFile, stat, truncate } from 'node:fs/promises'
import { Readable } from 'node:stream'
import type { Clock, TimerHandle } from '../clock/clock.ts'

/** How often a followed log is checked for new bytes. */
const FOLLOW_POLL_MS = 200
const READ_CHUNK_BYTES = 64 * 1024

/** The last `lines` lines of `buf` (all of it when undefined), counted as tail() counts them. */
export function tailBytes (buf: Buffer, lines: number | undefined): Buffer {
  if (lines === undefined) return buf
  if (lines <= 0) return buf.subarray(buf.length)
  let end = buf.length > 0 && buf[buf.length - 1] === 0x0a ? buf.length - 1 : buf.length
  for (let seen = 0; ; seen++) {
    const nl = buf.lastIndexOf(0x0a, end - 1)
    if (nl < 0 || end === 0) return buf
    if (seen + 1 === lines) return buf.subarray(nl + 1)
    end = nl
  }
}

export async function readWhole (file: string): Promise<Buffer> {
  try { return await readFile(file) } catch { return Buffer.alloc(0) }
}

/** A container's log as kept: its rotated part (.log.1), then the current file. */
export async function readLog (logFile: string): Promise<Buffer> {
  return Buffer.concat([await readWhole(`${logFile}.1`), await readWhole(logFile)])
}

/** Kubernetes' containerLogMaxSize default. */
export const MAX_LOG_BYTES = 10 * 1024 * 1024

/**
 * Moves a log bigger than `maxBytes` to .log.1 (replacing an older one) and
 * empties it in place; whether it did. The writer appends (O_APPEND), so it
 * goes on at the new end; lines written between the copy and the
 * truncation are lost (logrotate's copytruncate has the same gap).
 */
export async function rotateIfLarge (logFile: string, maxBytes: number): Promise<boolean> {
  const size = await stat(logFile).then(st => st.size, () => 0)
  if (size <= maxBytes) return false
  await copyFile(logFile, `${logFile}.1`)
  await truncate(logFile, 0)
  return true
}

/**
 * One container's log as a stream: the backlog (the rotated file, then the
 * current one, tailed), then with `follow` the bytes appended since, found by
 * polling the file's size. A file smaller than what was read was rotated
 * (copied to .log.1, then truncated): the rest of .log.1 is read, then the
 * file from 0. It ends after a last read once `ended()` says the container
 * has exited (or was removed). Nothing is read while the consumer is behind.
 */
export class LogFollower extends Readable {
  private readonly logFile: string
  private readonly opts: { tailLines?: number, follow: boolean }
  private readonly clock: Clock
  private readonly ended: () => boolean
  /** bytes of the current log file already pushed; undefined until the backlog is out */
  private position: number | undefined
  private timer: TimerHandle | undefined
  private busy = false
  private again = false

  constructor (logFile: string, opts: { tailLines?: number, follow: boolean }, clock: Clock, ended: () => boolean) {
    super()
    this.logFile = logFile
    this.opts = opts
    this.clock = clock
    this.ended = ended
  }

  override _read (): void {
    // A call while a step runs (the consumer drained at once) is not lost: the step runs again after.
    if (this.busy) { this.again = true; return }
    if (this.timer !== undefined) return
    this.busy = true
    this.again = false
    this.step().then(() => {
      this.busy = false
      if (this.again && this.timer === undefined && !this.destroyed) this._read()
    }, (err: unknown) => {
      this.busy = false
      this.destroy(err as Error)
    })
  }

  override _destroy (err: Error | null, callback: (err?: Error | null) => void): void {
    if (this.timer !== undefined) this.clock.clearTimeout(this.timer)
    this.timer = undefined
    callback(err)
  }

  /** Pushes what there is; then waits for the consumer (push said no), polls again later, or ends. */
  private async step (): Promise<void> {
    if (this.position === undefined) {
      const rotated = await readWhole(`${this.logFile}.1`)
      const current = await readWhole(this.logFile)
      this.position = current.length
      const backlog = tailBytes(Buffer.concat([rotated, current]), this.opts.tailLines)
      if (!this.opts.follow) {
        this.push(backlog)
        this.push(null)
        return
      }
      if (backlog.length > 0 && !this.push(backlog)) return
    }
    for (;;) {
      if (this.destroyed) return
      // Seen before the read: what an exited process wrote is all on disk by then.
      const exited = this.ended()
      const more = await this.readNew()
      if (this.destroyed) return
      if (more === 'full') return
      if (more === 'some') continue
      if (exited) {
        this.push(null)
        return
      }
      this.timer = this.clock.setTimeout(() => {
        this.timer = undefined
        this._read()
      }, FOLLOW_POLL_MS)
      return
    }
  }

  /** Reads one chunk past `position`: 'some' (pushed, the consumer wants more), 'full' (pushed, it does not) or 'none'. */
  private async readNew (): Promise<'some' | 'full' | 'none'> {
    let size: number
    try {
      size = (await stat(this.logFile)).size
    } catch {
      return 'none'
    }
    const position = this.position ?? 0
    if (size < position) {
      // Rotated: what was written before the copy and not yet read is at the end of .log.1.
      const rest = (await readWhole(`${this.logFile}.1`)).subarray(position)
      this.position = 0
      if (rest.length > 0) return this.push(rest) ? 'some' : 'full'
      return 'some'
    }
    if (size === position) return 'none'
    const handle = await open(this.logFile, 'r')
    try {
      const buf = Buffer.alloc(Math.min(size - position, READ_CHUNK_BYTES))
      const { bytesRead } = await handle.read(buf, 0, buf.length, position)
      if (bytesRead === 0) return 'none'
      this.position = position + bytesRead
      if (this.destroyed) return 'full'
      return this.push(buf.subarray(0, bytesRead)) ? 'some' : 'full'
    } finally {
      await handle.close()
    }
  }
}
