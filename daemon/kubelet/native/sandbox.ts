// Owns running one container process isolated on this host, without Docker:
// its own cgroup (cgroups.ts) with the container's limits, joined before it
// runs anything; new mount, PID, UTS and IPC namespaces; the given root
// filesystem as `/` (pivot_root, the host's tree detached); a fresh /proc,
// a private /tmp and a minimal /dev (the peer's read-only template,
// makeDevTemplate, where the host allows one); volumes bind-mounted
// (read-only where asked; one given as a descriptor is staged from it by the
// gate, so its path is never resolved again); the pod's name as hostname; the given uid and gid with no
// supplementary groups; the given working directory, environment and argv.
// How each step is done, and why, is in setup-script.ts. The network
// namespace is the host's (pods use loopback addresses, ipam.ts).
// When the process ends its exit code, whether the OOM killer struck in its
// cgroup, and its final usage are reported; the cgroup is then removed.
// A sandbox outlives the shoald that started it: it runs in a session of its
// own, its output goes to the file descriptors it was given (not through
// shoald), and its gate writes the exit code to the spec's exit file.
// adoptSandbox takes one over again after a restart, by its gate's pid and
// start time (so a reused pid is not taken for it), polling for its end.
// Needs root, util-linux's `unshare`, and a statically linked busybox
// (checkSandboxHost says what is missing). Used by ../native-runtime.ts.
// May import: daemon/clock, ./cgroups.ts, ./host-shell.ts, ./rootfs.ts, ./setup-script.ts.
import { spawn, spawnSync } from 'node:child_process'
import type { ChildProcess } from 'node:child_process'
import { accessSync, constants as fsConstants, closeSync, fstatSync, openSync, readSync } from 'node:fs'
import { lstat, mkdir, readFile, readlink, realpath, rename, rm, stat, symlink, writeFile } from 'node:fs/promises'
import { constants } from 'node:os'
import { join } from 'node:path'
import type { Readable } from 'node:stream'
import type { Clock } from '../../clock/clock.ts'
import { Cgroup } from './cgroups.ts'
import type { CgroupLayout, CgroupLimits, CgroupUsage } from './cgroups.ts'
import { execRunner } from './host-shell.ts'
import type { AppletRunner } from './host-shell.ts'
import { containerPathParts, ensureInRoot } from './rootfs.ts'
import { GATE, SETUP, setupArgv } from './setup-script.ts'

export const DEFAULT_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'

/** A host path bind-mounted at `containerPath` inside the root before the workload starts. */
export interface BindMount {
  hostPath: string
  containerPath: string
  readOnly: boolean
  /**
   * An O_PATH descriptor of hostPath that the caller opened and checked:
   * the sandbox mounts what it refers to, not the path, so a symbolic link
   * swapped in after the check is never followed (Kubernetes'
   * CVE-2021-25741). The caller closes it once startSandbox has returned.
   */
  fd?: number
}

export interface SandboxSpec {
  /** names the cgroup (shoal/<id>): one path element of [A-Za-z0-9_.-] */
  id: string
  /** the directory that becomes `/` */
  rootfs: string
  /** the pod's name; at most 64 bytes */
  hostname: string
  uid: number
  gid: number
  /** absolute, inside the root; created if missing (default /) */
  workingDir?: string
  /** the command and its arguments; a command without a slash is looked up in env.PATH */
  argv: string[]
  /** the whole environment; PATH defaults to DEFAULT_PATH */
  env: Record<string, string>
  mounts?: BindMount[]
  limits: CgroupLimits
  /** file descriptors for the workload's stdout and stderr; without one, a pipe (RunningSandbox.stdout/stderr) */
  stdout?: number
  stderr?: number
  /** a host file, outside the root, that the gate truncates now and writes the workload's exit code to when it ends (default: none) */
  exitFile?: string
  /** a /dev made by makeDevTemplate, bound read-only (two mounts); without one, each sandbox builds its own (eight) */
  devTemplate?: string
  /** an empty host directory outside the root where the volumes given as descriptors are staged (needed when any is) */
  volumeStaging?: string
}

/** What a restarted runtime knows of a sandbox it started earlier (RunningSandbox's id, pid, startTicks and the spec's exitFile). */
export interface AdoptedSandbox {
  id: string
  pid: number
  startTicks: number
  exitFile: string
}

export interface SandboxTools {
  /** util-linux unshare (default /usr/bin/unshare) */
  unshare?: string
  /** runs umount for the staged volumes (default: a process of busybox each) */
  run?: AppletRunner
  /** a statically linked busybox (default /usr/bin/busybox) */
  busybox?: string
  /** util-linux setpriv, for no_new_privs (default /usr/bin/setpriv) */
  setpriv?: string
}

export interface SandboxExit {
  /** the workload's exit code; 128 + the signal when a signal ended it; 128 when it never started */
  exitCode: number
  /** the signal that ended it, if one did */
  signal?: NodeJS.Signals
  /** whether the OOM killer killed a process of the container */
  oomKilled: boolean
  /** Kubernetes' reasons: OOMKilled, Completed, Error, or StartError when setup failed before the workload ran */
  reason: 'OOMKilled' | 'Completed' | 'Error' | 'StartError'
  /** why setup failed (StartError), or why the exit code is a guess (an adopted sandbox killed before it could record it) */
  message?: string
  /** usage read just before the cgroup was removed */
  usage: CgroupUsage
  /** why the cgroup could not be removed, when it could not (it is left for the caller to retry: RunningSandbox.cgroup) */
  cleanupError?: string
}

export class SandboxError extends Error {
  override name = 'SandboxError'
}

/** The directories the sandbox mounts its own file systems on. */
const SANDBOX_DIRS = ['proc', 'tmp', 'dev']

/** Whether a volume at these path parts lies in one of the sandbox's fresh tmpfs (/tmp, /dev/shm), where the setup makes its mount point. */
function inSandboxTmpfs (parts: string[]): boolean {
  return parts[0] === 'tmp' || (parts[0] === 'dev' && parts[1] === 'shm')
}

/** Whether this host can run sandboxes, or why not, in one line. */
export function checkSandboxHost (tools: SandboxTools = {}): true | string {
  if (process.platform !== 'linux') return 'sandboxes need Linux'
  if (process.getuid?.() !== 0) return 'sandboxes need root (namespaces, mounts and cgroups)'
  const unshare = tools.unshare ?? '/usr/bin/unshare'
  const busybox = tools.busybox ?? '/usr/bin/busybox'
  const setpriv = tools.setpriv ?? '/usr/bin/setpriv'
  for (const bin of [unshare, busybox, setpriv]) {
    try { accessSync(bin, fsConstants.X_OK) } catch { return `${bin} is missing or not executable` }
  }
  const interp = elfInterpreter(busybox)
  if (interp === undefined) return `${busybox} is not an ELF executable this check can read`
  if (interp !== null) return `${busybox} is dynamically linked (interpreter ${interp}); the sandbox needs a static busybox (busybox-static)`
  // After pivot_root no host binary is left: the setup's commands must be busybox's own applets, found without PATH.
  const own = spawnSync(busybox, ['sh', '-c', 'PATH=/nonexistent-shoal; pivot_root 2>&1; true'], { encoding: 'utf8', env: {}, timeout: 10_000 })
  if (!/Usage: pivot_root/.test(own.stdout ?? '')) return `${busybox} does not run its own applets before PATH (the sandbox's setup needs a busybox built with FEATURE_PREFER_APPLETS, as Debian's busybox-static is)`
  return true
}

/**
 * The ELF file's PT_INTERP (its dynamic loader), null for a static
 * executable, undefined when it is not a little-endian ELF file.
 */
export function elfInterpreter (file: string): string | null | undefined {
  let fd
  try { fd = openSync(file, 'r') } catch { return undefined }
  try {
    const head = Buffer.alloc(64)
    readSync(fd, head, 0, 64, 0)
    if (head.readUInt32BE(0) !== 0x7f454c46 || head[5] !== 1) return undefined
    const is64 = head[4] === 2
    const phoff = is64 ? Number(head.readBigUInt64LE(32)) : head.readUInt32LE(28)
    const phentsize = head.readUInt16LE(is64 ? 54 : 42)
    const phnum = head.readUInt16LE(is64 ? 56 : 44)
    const table = Buffer.alloc(phentsize * phnum)
    readSync(fd, table, 0, table.length, phoff)
    for (let i = 0; i < phnum; i++) {
      const ph = table.subarray(i * phentsize)
      if (ph.readUInt32LE(0) !== 3) continue
      const offset = is64 ? Number(ph.readBigUInt64LE(8)) : ph.readUInt32LE(4)
      const size = is64 ? Number(ph.readBigUInt64LE(32)) : ph.readUInt32LE(16)
      const name = Buffer.alloc(Math.min(size, 4096))
      readSync(fd, name, 0, name.length, offset)
      return name.toString('utf8').replace(/\0.*$/s, '')
    }
    return null
  } catch {
    return undefined
  } finally {
    closeSync(fd)
  }
}

function validate (spec: SandboxSpec): void {
  const bad = (why: string): never => { throw new SandboxError(`sandbox ${spec.id}: ${why}`) }
  if (spec.argv.length === 0 || spec.argv[0] === '') bad('a container needs a command')
  for (const a of spec.argv) if (a.includes('\0')) bad('an argument has a NUL byte in it')
  // an RFC 1123 name, never anything a tool could read as an option (`-F FILE` would have busybox read a host file)
  if (spec.hostname.length > 64 || !/^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/.test(spec.hostname)) bad(`${JSON.stringify(spec.hostname)} is not a hostname`)
  for (const id of [spec.uid, spec.gid]) if (!Number.isInteger(id) || id < 0 || id > 0xfffffffe) bad(`${id} is not a uid or gid`)
  for (const [k, v] of Object.entries(spec.env)) {
    if (k === '' || k.includes('=') || k.includes('\0') || v.includes('\0')) bad(`${JSON.stringify(k)} is not an environment variable name`)
  }
  if (spec.workingDir !== undefined && spec.workingDir !== '/') {
    const wd = containerPathParts(spec.workingDir)
    if (typeof wd === 'string') bad(`working directory: ${wd}`)
  }
  for (const m of spec.mounts ?? []) {
    const parts = containerPathParts(m.containerPath)
    if (typeof parts === 'string') bad(`volume mount: ${parts}`)
    else if (SANDBOX_DIRS.includes(parts[0] as string) && !inSandboxTmpfs(parts)) bad(`volume mount at ${m.containerPath}: /proc and /dev (but /dev/shm) are the sandbox's own`)
    if (m.hostPath.includes('\0') || !m.hostPath.startsWith('/')) bad(`volume host path ${JSON.stringify(m.hostPath)} is not absolute`)
  }
}

/** The signal's number, for 128 + n. */
function signalNumber (signal: NodeJS.Signals): number {
  return constants.signals[signal] ?? 0
}

async function sleep (clock: Clock, ms: number): Promise<void> {
  await new Promise<void>(resolve => { clock.setTimeout(resolve, ms) })
}

/**
 * When the process started, in clock ticks since boot (/proc/<pid>/stat's
 * starttime): with the pid, it names one process, even once the pid is
 * reused. Undefined when there is no such process, or it is a zombie.
 */
export async function processStartTicks (pid: number): Promise<number | undefined> {
  if (!Number.isInteger(pid) || pid <= 0) return undefined
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => '')
  const close = stat.lastIndexOf(')')
  if (close < 0) return undefined
  // After the command's ')': state is field 3, starttime field 22.
  const fields = stat.slice(close + 2).split(' ')
  if (fields[0] === 'Z' || fields[0] === 'X') return undefined
  const ticks = Number(fields[19])
  return Number.isInteger(ticks) ? ticks : undefined
}

/** A started (or adopted) sandbox. `exited` settles once the process is gone and its cgroup removed. */
export class RunningSandbox {
  readonly id: string
  /** the host pid of the gate, the process that waits for the container (unshare) and records its exit */
  readonly pid: number
  /** the gate's start time (processStartTicks), to find it again after a restart */
  readonly startTicks: number
  readonly cgroup: Cgroup
  readonly exited: Promise<SandboxExit>
  /** true once setup is done and the workload is being exec'd; false if the sandbox ended before */
  readonly started: Promise<boolean>
  /** the workload's output when the spec gave no file descriptor */
  readonly stdout: Readable | null
  readonly stderr: Readable | null
  private readonly clock: Clock
  private done = false

  constructor (id: string, gate: { pid: number, startTicks: number, stdout: Readable | null, stderr: Readable | null }, cgroup: Cgroup, exited: Promise<SandboxExit>, started: Promise<boolean>, clock: Clock) {
    this.id = id
    this.started = started
    this.pid = gate.pid
    this.startTicks = gate.startTicks
    this.cgroup = cgroup
    this.exited = exited
    this.stdout = gate.stdout
    this.stderr = gate.stderr
    this.clock = clock
    void exited.then(() => { this.done = true }, () => { this.done = true })
  }

  /** The container's pid 1 as the host numbers it: the process in the cgroup whose pid in its own namespace is 1. */
  async initPid (): Promise<number | undefined> {
    for (const pid of await this.cgroup.processes()) {
      const status = await readFile(`/proc/${pid}/status`, 'utf8').catch(() => '')
      const nspid = /^NSpid:\s*(.*)$/m.exec(status)?.[1]?.trim().split(/\s+/)
      if (nspid !== undefined && nspid.length > 1 && nspid[nspid.length - 1] === '1') return pid
    }
    return undefined
  }

  async usage (): Promise<CgroupUsage> {
    return await this.cgroup.usage()
  }

  /**
   * Sends SIGTERM to the container's pid 1 (which, as any pid 1, ignores it
   * unless it handles it), then after `graceMs` SIGKILLs everything in the
   * cgroup. Resolves with the exit once it is gone.
   */
  async stop (graceMs: number): Promise<SandboxExit> {
    if (!this.done) {
      const init = await this.initPid()
      if (init !== undefined) {
        try { process.kill(init, 'SIGTERM') } catch {}
      }
      const gone = await Promise.race([this.exited.then(() => true), sleep(this.clock, graceMs).then(() => false)])
      if (!gone) await this.kill()
    }
    return await this.exited
  }

  /** SIGKILLs every process in the container at once, and the waiting unshare. */
  async kill (): Promise<void> {
    if (this.done) return
    await this.cgroup.killAll(this.clock)
  }
}

/**
 * Starts `spec`'s process in a sandbox. Throws SandboxError (or CgroupError,
 * RootfsPathError) when it cannot even be started: then nothing is left
 * behind. A failure inside the setup (a mount refused, the command not
 * found) is an exit with reason StartError instead.
 */
export async function startSandbox (layout: CgroupLayout, spec: SandboxSpec, clock: Clock, tools: SandboxTools = {}): Promise<RunningSandbox> {
  validate(spec)
  const root = await realpath(spec.rootfs)
  if (!(await stat(root)).isDirectory()) throw new SandboxError(`sandbox ${spec.id}: the root filesystem ${root} is not a directory`)
  if (root === '/') throw new SandboxError(`sandbox ${spec.id}: the host's root cannot be a container's root`)
  for (const dir of SANDBOX_DIRS) await ensureInRoot(root, `/${dir}`)
  const workingDir = spec.workingDir ?? '/'
  // one in /tmp or /dev/shm is made by the setup, inside the fresh tmpfs
  if (workingDir !== '/' && !inSandboxTmpfs(containerPathParts(workingDir) as string[])) await ensureInRoot(root, workingDir)
  const mounts = []
  /** descriptors the gate inherits from fd 6 on, and where it stages each */
  const fds: number[] = []
  const staged: string[] = []
  let staging: string | undefined
  for (const m of spec.mounts ?? []) {
    let hostPath: string
    let kind: 'dir' | 'file'
    if (m.fd !== undefined) {
      kind = fstatSync(m.fd).isDirectory() ? 'dir' : 'file'
      staging ??= await stagingOf(spec, root)
      hostPath = join(staging, String(fds.length))
      if (kind === 'dir') await mkdir(hostPath, { mode: 0o700 })
      else await writeFile(hostPath, '', { flag: 'wx', mode: 0o600 })
      fds.push(m.fd)
      staged.push(hostPath)
    } else {
      hostPath = await realpath(m.hostPath)
      kind = (await stat(hostPath)).isDirectory() ? 'dir' : 'file'
    }
    const parts = containerPathParts(m.containerPath) as string[]
    if (!inSandboxTmpfs(parts)) await ensureInRoot(root, m.containerPath, kind)
    mounts.push({ hostPath, containerPath: '/' + parts.join('/'), readOnly: m.readOnly, kind })
  }
  const env = { PATH: DEFAULT_PATH, ...spec.env }
  const args = setupArgv({ root, hostname: spec.hostname, uid: spec.uid, gid: spec.gid, workingDir, path: env.PATH, mounts, env, argv: spec.argv, ...(spec.devTemplate !== undefined ? { dev: spec.devTemplate } : {}) })
  const unshare = tools.unshare ?? '/usr/bin/unshare'
  const busybox = tools.busybox ?? '/usr/bin/busybox'
  const exitFd = spec.exitFile !== undefined ? openSync(spec.exitFile, 'w', 0o600) : undefined

  let cgroup: Cgroup
  try {
    cgroup = await Cgroup.create(layout, spec.id, spec.limits)
  } catch (err) {
    if (exitFd !== undefined) closeSync(exitFd)
    throw err
  }
  let child: ChildProcess
  try {
    // The environment of host-side tools is ours, never the container's (LD_PRELOAD and the like would run as root on the host).
    // A session of its own: a signal to shoald's process group (a terminal's ^C) does not reach the container, which outlives shoald.
    child = spawn(busybox, ['sh', '-c', GATE, 'shoal-gate', unshare, busybox, SETUP, tools.setpriv ?? '/usr/bin/setpriv', spec.volumeStaging ?? '/', String(fds.length), ...args], {
      cwd: '/',
      env: { PATH: '/usr/sbin:/usr/bin:/sbin:/bin' },
      detached: true,
      stdio: ['ignore', spec.stdout ?? 'pipe', spec.stderr ?? 'pipe', 'pipe', 'pipe', exitFd ?? 'ignore', ...fds]
    })
  } catch (err) {
    await cgroup.remove(clock)
    throw new SandboxError(`sandbox ${spec.id}: cannot start ${busybox}: ${(err as Error).message}`)
  } finally {
    if (exitFd !== undefined) closeSync(exitFd)
  }
  if (child.pid === undefined) {
    const message = await new Promise<string>(resolve => child.once('error', err => { resolve(err.message) }))
    await cgroup.remove(clock)
    throw new SandboxError(`sandbox ${spec.id}: cannot start ${busybox}: ${message}`)
  }
  // The status channel is held open by unshare until it exits, so its end (with the exit) means all of it was read.
  // stdout and stderr are not waited for: a caller that does not read them must not keep the exit from being reported.
  const status: string[] = []
  const statusPipe = child.stdio[4]
  let markStarted: (started: boolean) => void = () => {}
  const started = new Promise<boolean>(resolve => { markStarted = resolve })
  const statusEnded = new Promise<void>(resolve => {
    if (statusPipe === null || statusPipe === undefined) { resolve(); return }
    statusPipe.on('data', (b: Buffer) => {
      status.push(b.toString('utf8'))
      if (status.join('').split('\n').includes('ready')) markStarted(true)
    })
    statusPipe.once('close', () => { resolve() })
    statusPipe.on('error', () => { resolve() })
  })
  const ended = new Promise<{ code: number | null, signal: NodeJS.Signals | null }>(resolve => {
    child.once('exit', (code, signal) => { resolve({ code, signal }) })
  })
  const exited = Promise.all([ended, statusEnded]).then(async ([{ code, signal }]) => await finish(cgroup, clock, code, signal, status.join('').split('\n').includes('ready') ? true : status.join('')))
  void exited.then(() => { markStarted(false) }, () => { markStarted(false) })
  if (staged.length > 0) {
    // Once the setup has made its own copies (or given up), the staging mounts go from the host's namespace.
    const run = tools.run ?? execRunner(busybox)
    void started.then(async () => { for (const p of staged) await run('umount', '-l', p).catch(() => {}) })
  }

  let startTicks: number | undefined
  try {
    await cgroup.addProcess(child.pid)
    // The gate waits for `go`, so this pid is still it.
    startTicks = await processStartTicks(child.pid)
    if (startTicks === undefined) throw new SandboxError(`sandbox ${spec.id}: cannot read /proc/${child.pid}/stat`)
  } catch (err) {
    child.kill('SIGKILL')
    await exited.catch(() => {})
    throw err
  }
  const gate = child.stdio[3]
  if (gate === null || gate === undefined || !('write' in gate)) throw new SandboxError('no gate pipe')
  // Should the gate have died already, the write fails (EPIPE) and the exit reports it.
  gate.on('error', () => {})
  gate.end('go\n')
  return new RunningSandbox(spec.id, { pid: child.pid, startTicks, stdout: child.stdout, stderr: child.stderr }, cgroup, exited, started, clock)
}

/** The spec's staging directory, resolved: it must be given, and lie outside the root. */
async function stagingOf (spec: SandboxSpec, root: string): Promise<string> {
  if (spec.volumeStaging === undefined) throw new SandboxError(`sandbox ${spec.id}: a volume given as a descriptor needs a staging directory`)
  const staging = await realpath(spec.volumeStaging)
  if (staging === root || staging.startsWith(root + '/')) throw new SandboxError(`sandbox ${spec.id}: the staging directory ${staging} is inside the root filesystem`)
  return staging
}

/** The device nodes of a sandbox's /dev: name, major, minor (all 0666, as Docker and Kubernetes make them). */
const DEVICES: ReadonlyArray<[string, number, number]> = [['null', 1, 3], ['zero', 1, 5], ['full', 1, 7], ['random', 1, 8], ['urandom', 1, 9], ['tty', 5, 0]]

const DEV_LINKS: ReadonlyArray<[string, string]> = [['fd', '/proc/self/fd'], ['stdin', '/proc/self/fd/0'], ['stdout', '/proc/self/fd/1'], ['stderr', '/proc/self/fd/2']]

/**
 * A /dev for sandboxes to bind read-only, at `dir`: the device nodes of
 * DEVICES, the fd, stdin, stdout and stderr links to /proc/self/fd, and an
 * empty `shm` for the sandbox's own tmpfs. Device nodes open read-write on
 * a read-only mount, so one template serves every sandbox of the peer.
 * One already there is used as it is (sandboxes of an earlier shoald have
 * it mounted: it is never replaced); it is made when missing. Returns the
 * directory, or why there can be none (no mknod, a file system mounted
 * nodev, or something else at `dir`): sandboxes then make their own.
 */
export async function makeDevTemplate (dir: string, run: AppletRunner): Promise<{ dir?: string, problem?: string }> {
  try {
    if (await lstat(dir).then(() => true, () => false)) {
      const bad = await devTemplateProblem(dir)
      return bad === undefined ? { dir } : { problem: `${dir} is not a /dev template (${bad}); remove it to have one made` }
    }
    const tmp = `${dir}.${process.pid}.tmp`
    await rm(tmp, { recursive: true, force: true })
    await mkdir(tmp, { mode: 0o755 })
    try {
      for (const [name, major, minor] of DEVICES) {
        await run('mknod', '-m', '666', join(tmp, name), 'c', String(major), String(minor))
      }
      for (const [name, target] of DEV_LINKS) await symlink(target, join(tmp, name))
      await mkdir(join(tmp, 'shm'), { mode: 0o755 })
      const bad = await devTemplateProblem(tmp)
      if (bad !== undefined) throw new Error(bad)
      await rename(tmp, dir)
    } finally {
      await rm(tmp, { recursive: true, force: true })
    }
    return { dir }
  } catch (err) {
    return { problem: ((err as Error).message.split('\n')[0] ?? '').trim() }
  }
}

/** What is wrong with a /dev template, or undefined. */
async function devTemplateProblem (dir: string): Promise<string | undefined> {
  const top = await lstat(dir)
  if (!top.isDirectory() || top.uid !== 0 || (top.mode & 0o022) !== 0) return 'it is not a directory owned by root that only root can write'
  for (const [name, major, minor] of DEVICES) {
    const st = await lstat(join(dir, name)).catch(() => undefined)
    if (st?.isCharacterDevice() !== true || st.rdev !== major * 256 + minor || (st.mode & 0o7777) !== 0o666 || st.uid !== 0) return `${name} is not the device ${major},${minor} mode 0666 owned by root`
  }
  for (const [name, target] of DEV_LINKS) {
    if (await readlink(join(dir, name)).catch(() => undefined) !== target) return `${name} is not a link to ${target}`
  }
  const shm = await lstat(join(dir, 'shm')).catch(() => undefined)
  if (shm?.isDirectory() !== true) return 'shm is not a directory'
  // a file system mounted nodev refuses to open its device nodes
  try {
    closeSync(openSync(join(dir, 'null'), 'w'))
  } catch (err) {
    return `its null cannot be opened (${(err as NodeJS.ErrnoException).code ?? (err as Error).message}): is its file system mounted nodev?`
  }
  return undefined
}

/**
 * Takes over a sandbox that an earlier shoald started (its gate is not our
 * child): `exited` settles once its gate is gone (polled every `pollMs`),
 * with the exit code the gate wrote to the exit file (137 and a message when
 * there is none: the gate was SIGKILLed), the OOM kills and usage read from
 * its cgroup, which is then removed. A sandbox found already gone settles at
 * once. Polling stops, and `exited` stays pending, once `watching()` is false.
 * The workload is taken to have started (setup's status channel died with
 * the earlier shoald).
 */
export function adoptSandbox (layout: CgroupLayout, found: AdoptedSandbox, clock: Clock, opts: { pollMs?: number, watching?: () => boolean } = {}): RunningSandbox {
  const cgroup = Cgroup.open(layout, found.id)
  const pollMs = opts.pollMs ?? 250
  const watching = opts.watching ?? (() => true)
  const exited = (async (): Promise<SandboxExit> => {
    while (await processStartTicks(found.pid) === found.startTicks) {
      if (!watching()) return await new Promise<SandboxExit>(() => {})
      await sleep(clock, pollMs)
    }
    const text = (await readFile(found.exitFile, 'utf8').catch(() => '')).trim()
    const known = /^\d{1,3}$/.test(text)
    const exit = await finish(cgroup, clock, known ? Number(text) : 137, null, true)
    if (!known) exit.message = 'the container ended without recording its exit status (killed)'
    return exit
  })()
  return new RunningSandbox(found.id, { pid: found.pid, startTicks: found.startTicks, stdout: null, stderr: null }, cgroup, exited, Promise.resolve(true), clock)
}

/** Turns the ended process into a SandboxExit, and removes the cgroup. `status` is true once setup said `ready`, else what it said. */
async function finish (cgroup: Cgroup, clock: Clock, code: number | null, signal: NodeJS.Signals | null, status: true | string): Promise<SandboxExit> {
  // The namespace's pid 1 is gone, so the kernel has killed the rest; make sure before reading the final numbers.
  await cgroup.killAll(clock)
  const usage = await cgroup.usage().catch(() => ({ memoryBytes: 0, cpuNanos: 0 }))
  const oom = await cgroup.oomEvents().catch(() => ({ oomKills: 0, limitHits: 0 }))
  const cleanupError = await cgroup.remove(clock).then(() => undefined, (err: Error) => err.message)
  const exitCode = code ?? (signal !== null ? 128 + signalNumber(signal) : 128)
  if (status !== true) {
    const message = status.trim() || `the sandbox ended before its workload started (exit ${exitCode})`
    return { exitCode: 128, oomKilled: false, reason: 'StartError', message, usage, ...(cleanupError !== undefined ? { cleanupError } : {}) }
  }
  // Without oom_kill (v1 before Linux 4.13), a SIGKILL after the limit was reached is taken for the OOM killer.
  const oomKilled = oom.oomKills !== undefined ? oom.oomKills > 0 : oom.limitHits > 0 && exitCode === 137
  const out: SandboxExit = { exitCode, oomKilled, reason: oomKilled ? 'OOMKilled' : exitCode === 0 ? 'Completed' : 'Error', usage }
  if (signal !== null) out.signal = signal
  if (cleanupError !== undefined) out.cleanupError = cleanupError
  return out
}
