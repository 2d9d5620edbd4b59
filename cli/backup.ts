// `shoal backup -o FILE` (download a consistent backup from any peer, checked
// as it streams, written atomically, with a progress line on a terminal) and
// `shoal backup verify FILE` (check a file and say what it holds).
// May import: protocol/, ./client.ts, ./errors.ts, ./io.ts, ./target.ts, ./tls.ts,
// commander, and protocol/backup.ts: the file format, which imports
// only protocol/ and belongs there (protocol/backup.ts).
import { randomBytes } from 'node:crypto'
import { createReadStream } from 'node:fs'
import { open, rename, rm } from 'node:fs/promises'
import { basename, dirname, join, resolve } from 'node:path'
import type { Command } from 'commander'
import { API_PREFIX } from '../protocol/api.ts'
import { BackupFormatError, readBackup, summarize } from '../protocol/backup.ts'
import { isPlainObject } from '../protocol/json.ts'
import type { BackupHeader } from '../protocol/backup.ts'
import { describeFetchError, UnreachableError } from './client.ts'
import type { Attempt } from './client.ts'
import { CliError, EXIT_FAILED, EXIT_USAGE, describeAttempt } from './errors.ts'
import type { Io } from './io.ts'
import { resolveTarget } from './target.ts'
import type { GlobalOptions, Target } from './target.ts'
import { trustedFetch } from './tls.ts'

const HEADERS_TIMEOUT_MS = 30_000

function size (bytes: number): string {
  if (bytes < 1024) return `${bytes} B`
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(1)} KiB`
  if (bytes < 1024 * 1024 * 1024) return `${(bytes / 1024 / 1024).toFixed(1)} MiB`
  return `${(bytes / 1024 / 1024 / 1024).toFixed(2)} GiB`
}

function headerLines (h: BackupHeader): string[] {
  return [
    `format:   ${h.format}`,
    `cluster:  ${h.clusterId}`,
    `index:    ${h.index}`,
    `term:     ${h.term}`,
    `created:  ${h.createdAt}`,
    `version:  ${h.version}`,
    `peer:     ${h.peer}`
  ]
}

/** The first server's answer to GET /shoal/v1/backup; unreachable servers and 5xx are skipped for the next. */
async function fetchBackup ({ servers, token, trust }: Target, trace: string[]): Promise<{ server: string, res: Response }> {
  const attempts: Attempt[] = []
  const fetch = trustedFetch(trust)
  for (const server of servers) {
    const started = Date.now()
    const headers = new AbortController()
    const timer = setTimeout(() => { headers.abort(new DOMException('timed out', 'TimeoutError')) }, HEADERS_TIMEOUT_MS)
    let res: Response
    try {
      res = await fetch(server + `${API_PREFIX}/backup`, { headers: { authorization: `Bearer ${token}` }, signal: headers.signal })
    } catch (err) {
      attempts.push({ server, ...describeFetchError(err, HEADERS_TIMEOUT_MS), elapsedMs: Date.now() - started })
      continue
    } finally {
      clearTimeout(timer)
    }
    if (res.ok) return { server, res }
    const text = await res.text().catch(() => '')
    let message = res.statusText
    try {
      const parsed: unknown = JSON.parse(text)
      if (isPlainObject(parsed) && typeof parsed.message === 'string') message = parsed.message
    } catch {}
    if (res.status >= 500) {
      attempts.push({ server, reason: `${res.status} ${message}`, detail: `HTTP ${res.status} ${res.statusText}: ${message}`, elapsedMs: Date.now() - started })
      continue
    }
    if (res.status === 401) throw new CliError(`the server rejected the token (401): ${message}`, EXIT_FAILED, trace)
    throw new CliError(`${res.status} ${message}`, EXIT_FAILED, trace)
  }
  const err = new UnreachableError(attempts)
  throw new CliError(err.message, EXIT_FAILED, [...trace, ...attempts.map(a => `tried ${describeAttempt(a)}`)])
}

/** A `\r` progress line on a terminal, at most ten times a second. */
function progress (io: Io, total: number | undefined): { update: (bytes: number) => void, done: () => void } {
  const tty = 'isTTY' in io.stderr && io.stderr.isTTY === true
  let last = 0
  let shown = false
  const line = (bytes: number): string => total !== undefined && total > 0
    ? `\rbackup: ${size(bytes)} of ${size(total)} (${Math.floor(bytes * 100 / total)}%)   `
    : `\rbackup: ${size(bytes)}   `
  return {
    update: bytes => {
      if (!tty) return
      const now = Date.now()
      if (now - last < 100) return
      last = now
      shown = true
      io.stderr.write(line(bytes))
    },
    done: () => { if (shown) io.stderr.write('\n') }
  }
}

async function download (io: Io, opts: GlobalOptions, output: string): Promise<void> {
  const trace: string[] = []
  const target = await resolveTarget(opts, io.env, trace)
  const { server, res } = await fetchBackup(target, trace)
  if (res.body === null) throw new CliError(`${server} answered with an empty body`)
  const lengthHeader = res.headers.get('content-length')
  const total = lengthHeader !== null ? Number(lengthHeader) : undefined
  const path = resolve(output)
  const tmp = join(dirname(path), `.${basename(path)}.tmp-${randomBytes(6).toString('hex')}`)
  const fh = await open(tmp, 'wx', 0o600).catch((err: NodeJS.ErrnoException) => {
    throw new CliError(`cannot write ${path}: ${err.code ?? err.message}`)
  })
  const bar = progress(io, total)
  let written = 0
  const body = res.body
  // Every chunk goes to the file as it comes, and through the checks: the
  // file is renamed into place only if it is whole and its checksum matches.
  async function * tee (): AsyncGenerator<Uint8Array> {
    for await (const chunk of body) {
      await fh.write(chunk)
      written += chunk.length
      bar.update(written)
      yield chunk
    }
  }
  try {
    const read = await readBackup(tee(), { keepBody: false })
    await fh.sync()
    await fh.close()
    await rename(tmp, path)
    bar.done()
    io.stdout.write(`backup of cluster ${read.header.clusterId} at index ${read.header.index} (term ${read.header.term}) from ${read.header.peer} written to ${output} (${size(read.fileBytes)}, sha256 ${read.sha256})\n`)
  } catch (err) {
    bar.done()
    await fh.close().catch(() => {})
    await rm(tmp, { force: true })
    if (err instanceof BackupFormatError) throw new CliError(`the backup from ${server} is not whole: ${err.message}; nothing was written`, EXIT_FAILED, trace)
    if (err instanceof CliError) throw err
    const code = (err as NodeJS.ErrnoException).code
    if (code !== undefined && code.startsWith('E')) throw new CliError(`cannot write ${path}: ${code}`)
    throw new CliError(`the backup from ${server} broke off after ${size(written)}: ${(err as Error).message}; nothing was written`, EXIT_FAILED, trace)
  }
}

async function verify (io: Io, file: string): Promise<void> {
  let read
  try {
    read = await readBackup(createReadStream(file, { highWaterMark: 1024 * 1024 }))
  } catch (err) {
    if (err instanceof BackupFormatError) throw new CliError(`${file}: ${err.message}`)
    const code = (err as NodeJS.ErrnoException).code
    throw new CliError(`cannot read ${file}: ${code === 'ENOENT' ? 'no such file' : code ?? (err as Error).message}`)
  }
  let summary
  try {
    summary = summarize(read.body)
  } catch (err) {
    throw new CliError(`${file}: ${(err as Error).message}`)
  }
  const lines = [
    `${file}: ok`,
    ...headerLines(read.header),
    `size:     ${read.fileBytes} bytes (state ${read.header.bodyBytes})`,
    `sha256:   ${read.sha256}`,
    `objects:  ${summary.objects}`,
    ...Object.entries(summary.kinds).sort(([a], [b]) => a.localeCompare(b)).map(([kind, n]) => `  ${kind.padEnd(24)} ${n}`),
    `kv keys:  ${summary.kvKeys}`
  ]
  io.stdout.write(lines.join('\n') + '\n')
}

export function addBackupCommands (program: Command, io: Io): void {
  const backup = program.command('backup')
    .description('save a consistent backup of the whole cluster state to a file (see also: backup verify)')
    .option('-o, --output <file>', 'where to write the backup (written whole, or not at all)')
    .addHelpText('after', `
The answering peer confirms the leader's commit index (ReadIndex), then
streams its state at that point or later: every object, every KV key. The
file is checked as it arrives (sha256) and renamed into place only whole.
Restore it into a new cluster with: shoald --restore FILE --data-dir NEW-DIR`)
    .action(async (cmdOpts: { output?: string }, cmd: Command) => {
      if (cmdOpts.output === undefined || cmdOpts.output === '') throw new CliError('backup needs -o FILE', EXIT_USAGE)
      await download(io, cmd.optsWithGlobals<GlobalOptions>(), cmdOpts.output)
    })
  backup.command('verify')
    .description('check a backup file (magic, format, checksum, whole) and say what it holds')
    .argument('<file>')
    .action(async (file: string) => {
      await verify(io, file)
    })
}
