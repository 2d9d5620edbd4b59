// The process runtime: each container is a plain process (its command and
// args) in a process group of its own, with its own working directory and
// log file under <dataDir>/pods/<uid>/<container>/, and each pod gets a
// loopback IP (ipam.ts). Every container's record is persisted in
// <dataDir>/containers/<id>.json, so that a restarted daemon finds the
// processes still running and adopts them instead of starting duplicates.
// The process runs under a small `sh` shim that writes its exit code to a
// file: that is how the exit code of a process that is not our child (one
// adopted after a restart) is known.
// There are no mount namespaces: a volume mount is a symlink at
// <working dir>/<mountPath without its leading slash> to the volume's host
// path, plus SHOAL_VOLUME_<NAME> (the volume name upper-cased, other than
// [A-Z0-9] as _) holding that host path; readOnly is not enforced.
// `logs -f` (logStream) polls the log file's size on the injected clock.
// May import: protocol/, daemon/clock, daemon/log, ./runtime.ts, ./ipam.ts.
import { spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { closeSync, openSync, readFileSync } from 'node:fs'
import { lstat, mkdir, readdir, readFile, rm, stat, symlink } from 'node:fs/promises'
import { constants } from 'node:os'
import { dirname, join, normalize } from 'node:path'
import { Readable } from 'node:stream'
import type { Pod } from '../../protocol/core-v1.ts'
import { isUid } from '../../protocol/validation.ts'
import { every } from '../clock/clock.ts'
import type { Clock } from '../clock/clock.ts'
import type { Logger } from '../log/log.ts'
import { LogFollower, MAX_LOG_BYTES, readLog, rotateIfLarge } from './log-follower.ts'
import { loadRecords, saveRecord } from './records.ts'
import { defaultPodCidr, Ipam } from './ipam.ts'
import { ExecOutput } from './runtime.ts'
import type { ContainerRecord, ContainerSpec, ExecResult, Mount, Runtime, StartOptions } from './runtime.ts'

export interface ProcessRuntimeOptions {
  dataDir: string
  nodeName: string
  /** the node's pod range; default a /24 in 127.64.0.0/10 picked by a hash of nodeName */
  podCidr?: string
  clock: Clock
  log: Logger
  /** how often processes not our own are checked for exit, and logs for size (default 1000 ms) */
  pollMs?: number
  /** a log bigger than this is moved to <attempt>.log.1 and started afresh (default 10 MiB) */
  maxLogBytes?: number
}

/** Runs the command, then writes its exit status to the file named by $0. TERM is caught (not ignored, which the command would inherit) so that the shell outlives it and records its status. */
const SHIM = 'trap : TERM INT; "$@"; c=$?; echo $c > "$0"; exit $c'

const DEFAULT_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'

interface Persisted extends ContainerRecord {
  /** what /proc/<pid>/cmdline must say for the pid to still be this container */
  argv: string[]
  env: Record<string, string>
  cwd: string
  logFile: string
  exitFile: string
}

function publicRecord (p: Persisted): ContainerRecord {
  const { argv: _a, env: _e, cwd: _c, logFile: _l, exitFile: _x, ...rec } = p
  return { ...rec }
}

function signalGroup (pid: number, signal: NodeJS.Signals): void {
  try { process.kill(-pid, signal) } catch {}
}

/** Whether `pid` is alive (not a zombie) and, where /proc tells, still runs `argv`. */
function alive (pid: number, argv: string[]): boolean {
  try {
    process.kill(pid, 0)
  } catch {
    return false
  }
  if (process.platform !== 'linux') return true
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    if (stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) === 'Z') return false
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8') === argv.join('\0') + '\0'
  } catch {
    return false
  }
}

function tail (text: string, lines: number | undefined): string {
  if (lines === undefined) return text
  if (lines <= 0) return ''
  const parts = text.split('\n')
  const trailing = parts[parts.length - 1] === '' ? parts.pop() !== undefined : false
  return parts.slice(-lines).join('\n') + (trailing ? '\n' : '')
}

export class ProcessRuntime implements Runtime {
  readonly name = 'process'
  private readonly opts: Required<Omit<ProcessRuntimeOptions, 'podCidr'>> & { podCidr: string }
  private ipam: Ipam
  private readonly records = new Map<string, Persisted>()
  /** ids of containers that are our children (their exit comes as an event) */
  private readonly children = new Set<string>()
  private readonly listeners: Array<(rec: ContainerRecord) => void> = []
  private readonly exitWaiters = new Map<string, Array<() => void>>()
  private stopPoll: (() => void) | undefined

  constructor (opts: ProcessRuntimeOptions) {
    this.opts = { pollMs: 1000, maxLogBytes: MAX_LOG_BYTES, ...opts, podCidr: opts.podCidr ?? defaultPodCidr(opts.nodeName) }
    this.ipam = new Ipam(join(opts.dataDir, 'pods', 'ipam.json'), this.opts.podCidr)
  }

  get podCidr (): string { return this.opts.podCidr }

  usePodCidr (cidr: string): void {
    this.opts.podCidr = cidr
    this.ipam = new Ipam(join(this.opts.dataDir, 'pods', 'ipam.json'), cidr)
  }

  async init (): Promise<void> {
    await mkdir(this.containersDir(), { recursive: true })
    await this.ipam.load()
    for (const rec of await loadRecords<Persisted>(this.containersDir(), this.opts.log)) {
      this.records.set(rec.id, rec)
      if (rec.state === 'running' && !alive(rec.pid ?? 0, rec.argv)) await this.finish(rec, undefined)
    }
    this.stopPoll = every(this.opts.clock, this.opts.pollMs, () => { void this.poll() })
  }

  close (): void {
    this.stopPoll?.()
    this.stopPoll = undefined
  }

  onExit (listener: (rec: ContainerRecord) => void): void {
    this.listeners.push(listener)
  }

  async ensureSandbox (pod: Pod): Promise<{ ip: string }> {
    const uid = pod.metadata.uid ?? ''
    await mkdir(this.podDir(uid), { recursive: true })
    return { ip: await this.ipam.allocate(uid) }
  }

  async removeSandbox (podUid: string): Promise<void> {
    await rm(this.podDir(podUid), { recursive: true, force: true })
    await this.ipam.free(podUid)
  }

  async releaseAddress (podUid: string): Promise<void> {
    await this.ipam.free(podUid)
  }

  /** Pods with an address, and finished ones (their address released) whose directory is still here. */
  async listSandboxes (): Promise<string[]> {
    const dirs = await readdir(join(this.opts.dataDir, 'pods'), { withFileTypes: true }).catch(() => [])
    return [...new Set([...this.ipam.uids(), ...dirs.filter(d => d.isDirectory() && isUid(d.name)).map(d => d.name)])]
  }

  async startContainer (pod: Pod, spec: ContainerSpec, attempt: number, start: StartOptions): Promise<ContainerRecord> {
    const uid = pod.metadata.uid ?? ''
    const cwd = join(this.podDir(uid), spec.name)
    await mkdir(cwd, { recursive: true })
    const id = randomBytes(8).toString('hex')
    const now = this.opts.clock.now()
    const command = spec.command !== undefined && spec.command.length > 0
      ? [...spec.command, ...(spec.args ?? [])]
      : spec.args !== undefined && spec.args.length > 0 ? spec.args : undefined
    const exitFile = join(cwd, `${attempt}.exit`)
    const logFile = join(cwd, `${attempt}.log`)
    const env: Record<string, string> = { PATH: DEFAULT_PATH, HOME: cwd, ...start.env }
    for (const m of start.mounts ?? []) {
      env[volumeEnvName(m.name)] = m.hostPath
      await link(cwd, m)
    }
    const rec: Persisted = {
      id, podUid: uid, podNamespace: pod.metadata.namespace ?? 'default', podName: pod.metadata.name ?? '',
      containerName: spec.name, attempt, state: 'running', startedAt: now,
      argv: command === undefined ? [] : ['/bin/sh', '-c', SHIM, exitFile, ...command], env, cwd, logFile, exitFile
    }
    await rm(exitFile, { force: true })
    if (command === undefined) return await this.cannotRun(rec, 'the process runtime needs a command')
    const fd = openSync(logFile, 'a')
    let child
    try {
      child = spawn(rec.argv[0] as string, rec.argv.slice(1), { cwd, env, detached: true, stdio: ['ignore', fd, fd] })
    } catch (err) {
      return await this.cannotRun(rec, (err as Error).message)
    } finally {
      closeSync(fd)
    }
    if (child.pid === undefined) {
      const message = await new Promise<string>(resolve => child.once('error', err => { resolve(err.message) }))
      return await this.cannotRun(rec, message)
    }
    child.unref()
    rec.pid = child.pid
    this.records.set(id, rec)
    this.children.add(id)
    child.once('exit', (code, signal) => {
      this.children.delete(id)
      const exitCode = code ?? exitCodeOf(signal)
      void this.finish(rec, exitCode)
    })
    await this.persist(rec)
    this.opts.log.debug({ event: 'kubelet.container.started', id, pod: `${rec.podNamespace}/${rec.podName}`, container: spec.name, attempt, pid: rec.pid }, `started ${rec.podNamespace}/${rec.podName}/${spec.name} (pid ${rec.pid})`)
    return publicRecord(rec)
  }

  async stopContainer (id: string, graceMs: number): Promise<void> {
    const rec = this.records.get(id)
    if (rec === undefined || rec.state !== 'running' || rec.pid === undefined) return
    signalGroup(rec.pid, 'SIGTERM')
    if (await this.waitExit(rec, graceMs)) return
    this.opts.log.debug({ event: 'kubelet.container.kill', id, pid: rec.pid }, `container ${id} outlived its grace period: SIGKILL`)
    signalGroup(rec.pid, 'SIGKILL')
    if (!(await this.waitExit(rec, 10_000))) this.opts.log.warn({ event: 'kubelet.container.unkillable', id, pid: rec.pid }, `container ${id} (pid ${rec.pid}) did not end after SIGKILL`)
  }

  async removeContainer (id: string): Promise<void> {
    const rec = this.records.get(id)
    if (rec === undefined) return
    if (rec.state === 'running') await this.stopContainer(id, 0)
    this.records.delete(id)
    await rm(this.recordFile(id), { force: true })
    for (const f of [rec.logFile, `${rec.logFile}.1`, rec.exitFile]) await rm(f, { force: true })
  }

  async listContainers (): Promise<ContainerRecord[]> {
    return [...this.records.values()].map(publicRecord)
  }

  async logs (id: string, opts: { tailLines?: number } = {}): Promise<string> {
    const rec = this.records.get(id)
    if (rec === undefined) throw new Error(`no container ${id}`)
    return tail((await readLog(rec.logFile)).toString('utf8'), opts.tailLines)
  }

  async logStream (id: string, opts: { tailLines?: number, follow: boolean }): Promise<Readable> {
    const rec = this.records.get(id)
    if (rec === undefined) throw new Error(`no container ${id}`)
    return new LogFollower(rec.logFile, opts, this.opts.clock, () => this.records.get(id) !== rec || rec.state === 'exited')
  }

  async exec (id: string, argv: string[], timeoutMs: number): Promise<ExecResult> {
    const rec = this.records.get(id)
    if (rec === undefined || rec.state !== 'running') throw new Error(`container ${id} is not running`)
    if (argv.length === 0) throw new Error('exec needs a command')
    return await new Promise<ExecResult>(resolve => {
      const child = spawn(argv[0] as string, argv.slice(1), { cwd: rec.cwd, env: rec.env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] })
      // Each capped (ExecOutput): the rest is read and dropped, so the command runs to its end.
      const stdout = new ExecOutput()
      const stderr = new ExecOutput()
      child.stdout.on('data', (b: Buffer) => { stdout.add(b) })
      child.stderr.on('data', (b: Buffer) => { stderr.add(b) })
      const timer = this.opts.clock.setTimeout(() => { if (child.pid !== undefined) signalGroup(child.pid, 'SIGKILL') }, timeoutMs)
      child.once('error', err => {
        this.opts.clock.clearTimeout(timer)
        resolve({ exitCode: 126, stdout: stdout.text(), stderr: stderr.text() + err.message })
      })
      child.once('close', (code, signal) => {
        this.opts.clock.clearTimeout(timer)
        resolve({ exitCode: code ?? exitCodeOf(signal), stdout: stdout.text(), stderr: stderr.text() })
      })
    })
  }

  // ---- internals -----------------------------------------------------------

  private containersDir (): string { return join(this.opts.dataDir, 'containers') }
  private recordFile (id: string): string { return join(this.containersDir(), `${id}.json`) }
  private podDir (uid: string): string {
    // A uid is one path element; the kubelet runs no pod whose uid is not one, and this holds it to that.
    if (!isUid(uid)) throw new Error(`${JSON.stringify(uid)} is not a pod uid`)
    return join(this.opts.dataDir, 'pods', uid)
  }

  private async persist (rec: Persisted): Promise<void> {
    await saveRecord(this.recordFile(rec.id), rec)
  }

  private async cannotRun (rec: Persisted, message: string): Promise<ContainerRecord> {
    Object.assign(rec, { state: 'exited', finishedAt: rec.startedAt, exitCode: 128, reason: 'ContainerCannotRun', message })
    this.records.set(rec.id, rec)
    await this.persist(rec)
    return publicRecord(rec)
  }

  /** Marks `rec` exited; without an exit code (not our child) it is read from the shim's file. */
  private async finish (rec: Persisted, exitCode: number | undefined): Promise<void> {
    if (rec.state === 'exited') return
    let message: string | undefined
    if (exitCode === undefined) {
      try {
        exitCode = Number((await readFile(rec.exitFile, 'utf8')).trim())
      } catch {}
      if (exitCode === undefined || !Number.isInteger(exitCode)) {
        exitCode = 137
        message = 'the process ended without recording its exit status (killed)'
      }
    }
    rec.state = 'exited'
    rec.finishedAt = this.opts.clock.now()
    rec.exitCode = exitCode
    rec.reason = exitCode === 0 ? 'Completed' : 'Error'
    if (message !== undefined) rec.message = message
    // As when a container's first process ends: nothing else of it may stay.
    if (rec.pid !== undefined) signalGroup(rec.pid, 'SIGKILL')
    await this.persist(rec).catch(err => {
      this.opts.log.warn({ event: 'kubelet.runtime.persist', id: rec.id, err: (err as Error).message }, `could not persist container ${rec.id}`)
    })
    for (const w of this.exitWaiters.get(rec.id) ?? []) w()
    this.exitWaiters.delete(rec.id)
    for (const l of this.listeners) l(publicRecord(rec))
  }

  /** Resolves true once `rec` has exited, false after `ms`. */
  private async waitExit (rec: Persisted, ms: number): Promise<boolean> {
    const deadline = this.opts.clock.now() + ms
    for (;;) {
      if (rec.state === 'exited') return true
      if (!this.children.has(rec.id) && !alive(rec.pid ?? 0, rec.argv)) {
        await this.finish(rec, undefined)
        return true
      }
      const left = deadline - this.opts.clock.now()
      if (left <= 0) return false
      await new Promise<void>(resolve => {
        const list = this.exitWaiters.get(rec.id) ?? []
        const t = this.opts.clock.setTimeout(done, Math.min(left, 50))
        function done (): void { resolve() }
        list.push(() => { this.opts.clock.clearTimeout(t); resolve() })
        this.exitWaiters.set(rec.id, list)
      })
    }
  }

  private async poll (): Promise<void> {
    for (const rec of [...this.records.values()]) {
      if (rec.state !== 'running') continue
      if (!this.children.has(rec.id) && !alive(rec.pid ?? 0, rec.argv)) {
        await this.finish(rec, undefined)
        continue
      }
      await rotateIfLarge(rec.logFile, this.opts.maxLogBytes).catch(() => false)
    }
  }
}

/** The variable that tells a process where volume `name` is: SHOAL_VOLUME_<NAME>. */
export function volumeEnvName (name: string): string {
  return `SHOAL_VOLUME_${name.toUpperCase().replace(/[^A-Z0-9]/g, '_')}`
}

/** Links `m.hostPath` at `m.mountPath` under `cwd`, replacing an earlier link (a previous attempt's) but nothing else. */
async function link (cwd: string, m: Mount): Promise<void> {
  const rel = normalize(m.mountPath.replace(/^\/+/, ''))
  if (rel === '.' || rel === '..' || rel.startsWith('../')) return
  const at = join(cwd, rel)
  await mkdir(dirname(at), { recursive: true })
  try {
    if (!(await lstat(at)).isSymbolicLink()) return
    await rm(at)
  } catch {}
  await symlink(m.hostPath, at)
}

/** A shell's exit code for death by `signal`: 128 + its number. */
function exitCodeOf (signal: NodeJS.Signals | null): number {
  return 128 + (signal === null ? 9 : constants.signals[signal])
}
