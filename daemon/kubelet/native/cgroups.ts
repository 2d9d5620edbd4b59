// Owns the native runtime's control groups: which hierarchy this host has
// (detected once at start, described for the log), and one cgroup per
// container under a `shoal/` parent, with its limits written before any
// process joins it, usage and OOM kills read back, and its removal.
// cgroup v2 (/sys/fs/cgroup/cgroup.controllers exists): one directory,
// <root>/shoal/<name>, with memory, cpu and pids enabled in the
// cgroup.subtree_control of the root and of shoal/. cgroup v1: one directory
// per controller, <mount of memory|cpu|cpuacct|pids>/shoal/<name>, where the
// mounts are read from /proc/self/mountinfo (cpu and cpuacct may share one,
// as `cpu,cpuacct`; a shared mount is written once).
// Limits follow the kubelet's conversions: quota = milli-CPU * period / 1000
// (period 100 ms, quota at least 1 ms), shares = milli-CPU * 1024 / 1000
// (at least 2), and on v2 weight = 1 + (shares - 2) * 9999 / 262142. Swap is
// not allowed where the host has it (memsw / memory.swap.max equal the limit).
// May import: daemon/clock.
import { existsSync, readFileSync } from 'node:fs'
import { mkdir, readFile, rmdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import type { Clock } from '../../clock/clock.ts'

/** The controllers a container's cgroup needs; cpuacct only on v1, for CPU usage. */
export type V1Controller = 'memory' | 'cpu' | 'cpuacct' | 'pids'
const V1_CONTROLLERS: readonly V1Controller[] = ['memory', 'cpu', 'cpuacct', 'pids']
const V2_CONTROLLERS = ['memory', 'cpu', 'pids'] as const

export type CgroupLayout =
  | { version: 2, root: string }
  | { version: 1, mounts: Record<V1Controller, string> }

export class CgroupError extends Error {
  override name = 'CgroupError'
}

/** What a container may use; an absent field is not limited. */
export interface CgroupLimits {
  memoryBytes?: number
  /** resources.limits.cpu in milli-CPU: the CFS quota */
  cpuLimitMillis?: number
  /** resources.requests.cpu in milli-CPU: shares (v1) or weight (v2) */
  cpuRequestMillis?: number
  /** the most tasks (processes and threads) at once */
  pids?: number
}

export interface CgroupUsage {
  memoryBytes: number
  cpuNanos: number
}

/**
 * Out-of-memory events so far: `oomKills` counts kills by the OOM killer
 * where the kernel tells (v2 memory.events, v1 memory.oom_control since
 * Linux 4.13), else it is undefined and `limitHits` (v1 memory.failcnt: the
 * times the limit was reached, which reclaim may have resolved) is all there is.
 */
export interface OomEvents { oomKills: number | undefined, limitHits: number }

const CFS_PERIOD_US = 100_000
const MIN_QUOTA_US = 1000
const MIN_SHARES = 2
const MAX_SHARES = 262_144

/** cpu.cfs_quota_us (and the first field of cpu.max) for a limit in milli-CPU, as the kubelet computes it. */
export function cpuQuotaUs (millis: number): number {
  return Math.max(MIN_QUOTA_US, Math.floor(millis * CFS_PERIOD_US / 1000))
}

/** cpu.shares for a request in milli-CPU (the kubelet's MilliCPUToShares). */
export function cpuShares (millis: number): number {
  return Math.min(MAX_SHARES, Math.max(MIN_SHARES, Math.floor(millis * 1024 / 1000)))
}

/** cpu.weight for cpu.shares (the kubelet's CpuSharesToCpuWeight). */
export function cpuWeight (shares: number): number {
  return 1 + Math.floor((shares - 2) * 9999 / 262_142)
}

/** The mount point of each v1 controller, from /proc/self/mountinfo's text. */
export function v1Mounts (mountinfo: string): Partial<Record<V1Controller, string>> {
  const found: Partial<Record<V1Controller, string>> = {}
  for (const line of mountinfo.split('\n')) {
    const sep = line.indexOf(' - ')
    if (sep < 0) continue
    const [fstype, , superOpts] = line.slice(sep + 3).split(' ')
    if (fstype !== 'cgroup' || superOpts === undefined) continue
    const mountPoint = unescapeMountinfo(line.slice(0, sep).split(' ')[4] ?? '')
    const opts = superOpts.split(',')
    for (const c of V1_CONTROLLERS) if (opts.includes(c) && found[c] === undefined) found[c] = mountPoint
  }
  return found
}

/** mountinfo writes space, tab, newline and backslash as \ooo. */
function unescapeMountinfo (s: string): string {
  return s.replace(/\\([0-7]{3})/g, (_m, oct: string) => String.fromCharCode(parseInt(oct, 8)))
}

/**
 * The host's hierarchy: v2 if <root>/cgroup.controllers exists (and has
 * memory, cpu and pids), else v1 with each controller mounted. Throws
 * CgroupError saying what is missing.
 */
export function detectCgroups (opts: { root?: string, mountinfo?: string } = {}): CgroupLayout {
  const root = opts.root ?? '/sys/fs/cgroup'
  if (existsSync(join(root, 'cgroup.controllers'))) {
    const available = readFileSync(join(root, 'cgroup.controllers'), 'utf8').trim().split(/\s+/)
    const missing = V2_CONTROLLERS.filter(c => !available.includes(c))
    if (missing.length > 0) throw new CgroupError(`cgroup v2 at ${root} lacks the ${missing.join(', ')} controller(s) (it has: ${available.join(' ') || 'none'})`)
    return { version: 2, root }
  }
  const mounts = v1Mounts(opts.mountinfo ?? readFileSync('/proc/self/mountinfo', 'utf8'))
  const missing = V1_CONTROLLERS.filter(c => mounts[c] === undefined)
  if (missing.length > 0) throw new CgroupError(`no cgroup v2 at ${root}, and cgroup v1 has no ${missing.join(', ')} controller mounted`)
  return { version: 1, mounts: mounts as Record<V1Controller, string> }
}

/** One line for the start-up log. */
export function describeCgroups (layout: CgroupLayout): string {
  if (layout.version === 2) return `cgroup v2 at ${layout.root} (memory, cpu, pids; containers under ${join(layout.root, 'shoal')})`
  return `cgroup v1 (${V1_CONTROLLERS.map(c => `${c} at ${layout.mounts[c]}`).join(', ')}; containers under <controller>/shoal)`
}

/** A cgroup name is one path element of a safe alphabet. */
export function isCgroupName (name: string): boolean {
  return /^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/.test(name)
}

async function write (file: string, value: string): Promise<void> {
  try {
    await writeFile(file, value)
  } catch (err) {
    throw new CgroupError(`cannot write ${JSON.stringify(value)} to ${file}: ${(err as Error).message}`)
  }
}

async function readOptional (file: string): Promise<string | undefined> {
  try { return await readFile(file, 'utf8') } catch { return undefined }
}

/** The value of `key` in a flat-keyed file (cpu.stat, memory.events, memory.oom_control). */
export function keyedValue (text: string, key: string): number | undefined {
  for (const line of text.split('\n')) {
    const [k, v] = line.trim().split(/\s+/)
    if (k === key && v !== undefined) return Number(v)
  }
  return undefined
}

/** Enables memory, cpu and pids for the children of `dir` (v2), unless they already are. */
async function enableControllers (dir: string): Promise<void> {
  const enabled = ((await readOptional(join(dir, 'cgroup.subtree_control'))) ?? '').trim().split(/\s+/)
  const wanted = V2_CONTROLLERS.filter(c => !enabled.includes(c))
  if (wanted.length > 0) await write(join(dir, 'cgroup.subtree_control'), wanted.map(c => `+${c}`).join(' '))
}

async function isEmpty (dir: string): Promise<boolean> {
  return ((await readOptional(join(dir, 'cgroup.procs'))) ?? '').trim() === ''
}

/** One container's cgroup. Make it with Cgroup.create (or find an existing one with Cgroup.open); it is gone after remove(). */
export class Cgroup {
  readonly layout: CgroupLayout
  readonly name: string
  /** the directories that hold it: one on v2; one per distinct v1 mount */
  readonly dirs: readonly string[]

  private constructor (layout: CgroupLayout, name: string) {
    this.layout = layout
    this.name = name
    this.dirs = layout.version === 2
      ? [join(layout.root, 'shoal', name)]
      : [...new Set(V1_CONTROLLERS.map(c => join(layout.mounts[c], 'shoal', name)))]
  }

  /**
   * Creates shoal/<name> with `limits` written, before any process is in it.
   * An existing, empty cgroup of that name (left by a crash) is taken over;
   * one with processes in it is an error.
   */
  static async create (layout: CgroupLayout, name: string, limits: CgroupLimits): Promise<Cgroup> {
    if (!isCgroupName(name)) throw new CgroupError(`${JSON.stringify(name)} is not a cgroup name`)
    const cg = new Cgroup(layout, name)
    if (layout.version === 2) {
      await enableControllers(layout.root)
      await mkdir(join(layout.root, 'shoal'), { recursive: true })
      await enableControllers(join(layout.root, 'shoal'))
    }
    for (const dir of cg.dirs) {
      try {
        await mkdir(dir)
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') await mkdir(dir, { recursive: true })
        else if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw new CgroupError(`cannot create cgroup ${dir}: ${(err as Error).message}`)
        else if (!(await isEmpty(dir))) throw new CgroupError(`cgroup ${dir} already exists and has processes in it`)
      }
    }
    try {
      await cg.setLimits(limits)
    } catch (err) {
      await cg.remove(undefined, 0).catch(() => {})
      throw err
    }
    return cg
  }

  /**
   * The existing cgroup shoal/<name>, as a restarted shoald finds the one of a
   * container it adopts: nothing is created or written (exists() tells
   * whether it is still there).
   */
  static open (layout: CgroupLayout, name: string): Cgroup {
    if (!isCgroupName(name)) throw new CgroupError(`${JSON.stringify(name)} is not a cgroup name`)
    return new Cgroup(layout, name)
  }

  /** The directory of a v1 controller, or the one v2 directory. */
  dir (controller: V1Controller): string {
    if (this.layout.version === 2) return this.dirs[0] as string
    return join(this.layout.mounts[controller], 'shoal', this.name)
  }

  private async setLimits (limits: CgroupLimits): Promise<void> {
    const { memoryBytes, cpuLimitMillis, cpuRequestMillis, pids } = limits
    const v2 = this.layout.version === 2
    if (memoryBytes !== undefined) {
      const bytes = String(Math.floor(memoryBytes))
      if (v2) {
        await write(join(this.dir('memory'), 'memory.max'), bytes)
        if (existsSync(join(this.dir('memory'), 'memory.swap.max'))) await write(join(this.dir('memory'), 'memory.swap.max'), '0')
      } else {
        await write(join(this.dir('memory'), 'memory.limit_in_bytes'), bytes)
        if (existsSync(join(this.dir('memory'), 'memory.memsw.limit_in_bytes'))) await write(join(this.dir('memory'), 'memory.memsw.limit_in_bytes'), bytes)
      }
    }
    if (cpuLimitMillis !== undefined) {
      const quota = cpuQuotaUs(cpuLimitMillis)
      if (v2) {
        await write(join(this.dir('cpu'), 'cpu.max'), `${quota} ${CFS_PERIOD_US}`)
      } else {
        await write(join(this.dir('cpu'), 'cpu.cfs_period_us'), String(CFS_PERIOD_US))
        await write(join(this.dir('cpu'), 'cpu.cfs_quota_us'), String(quota))
      }
    }
    if (cpuRequestMillis !== undefined) {
      const shares = cpuShares(cpuRequestMillis)
      if (v2) await write(join(this.dir('cpu'), 'cpu.weight'), String(cpuWeight(shares)))
      else await write(join(this.dir('cpu'), 'cpu.shares'), String(shares))
    }
    if (pids !== undefined) await write(join(this.dir('pids'), 'pids.max'), String(Math.floor(pids)))
  }

  /** Moves `pid` (and from then on every child it forks) into this cgroup, in every hierarchy. */
  async addProcess (pid: number): Promise<void> {
    for (const dir of this.dirs) await write(join(dir, 'cgroup.procs'), String(pid))
  }

  /** The processes in it (v1: those in the pids controller's directory, which all are). */
  async processes (): Promise<number[]> {
    const text = (await readOptional(join(this.dir('pids'), 'cgroup.procs'))) ?? ''
    return text.split('\n').filter(l => l !== '').map(Number)
  }

  async usage (): Promise<CgroupUsage> {
    if (this.layout.version === 2) {
      const memory = Number((await readOptional(join(this.dir('memory'), 'memory.current')))?.trim() ?? 0)
      const usec = keyedValue((await readOptional(join(this.dir('cpu'), 'cpu.stat'))) ?? '', 'usage_usec') ?? 0
      return { memoryBytes: memory, cpuNanos: usec * 1000 }
    }
    const memory = Number((await readOptional(join(this.dir('memory'), 'memory.usage_in_bytes')))?.trim() ?? 0)
    const nanos = Number((await readOptional(join(this.dir('cpuacct'), 'cpuacct.usage')))?.trim() ?? 0)
    return { memoryBytes: memory, cpuNanos: nanos }
  }

  async oomEvents (): Promise<OomEvents> {
    if (this.layout.version === 2) {
      const events = (await readOptional(join(this.dir('memory'), 'memory.events'))) ?? ''
      return { oomKills: keyedValue(events, 'oom_kill') ?? 0, limitHits: keyedValue(events, 'max') ?? 0 }
    }
    const control = (await readOptional(join(this.dir('memory'), 'memory.oom_control'))) ?? ''
    const failcnt = Number((await readOptional(join(this.dir('memory'), 'memory.failcnt')))?.trim() ?? 0)
    return { oomKills: keyedValue(control, 'oom_kill'), limitHits: failcnt }
  }

  /** How many times a fork was refused at pids.max (pids.events `max`), where the kernel tells. */
  async pidsLimitHits (): Promise<number | undefined> {
    return keyedValue((await readOptional(join(this.dir('pids'), 'pids.events'))) ?? '', 'max')
  }

  /** SIGKILLs every process in it, again until none is left or `clock` says `ms` passed. Resolves whether it is empty. */
  async killAll (clock: Clock, ms = 2000): Promise<boolean> {
    const deadline = clock.now() + ms
    for (;;) {
      const pids = await this.processes()
      if (pids.length === 0) return true
      for (const pid of pids) {
        try { process.kill(pid, 'SIGKILL') } catch {}
      }
      if (clock.now() >= deadline) return false
      await sleep(clock, 10)
    }
  }

  /**
   * Removes its directories. Its processes must be gone: an rmdir that finds
   * the cgroup busy (EBUSY: a killed process not yet reaped) is retried until
   * `ms` passed on `clock`, then the error is thrown. Removing a removed cgroup does nothing.
   */
  async remove (clock: Clock | undefined, ms = 2000): Promise<void> {
    const deadline = (clock?.now() ?? 0) + ms
    for (const dir of this.dirs) {
      for (;;) {
        try {
          await rmdir(dir)
          break
        } catch (err) {
          const code = (err as NodeJS.ErrnoException).code
          if (code === 'ENOENT') break
          if (code !== 'EBUSY' || clock === undefined || clock.now() >= deadline) throw new CgroupError(`cannot remove cgroup ${dir}: ${(err as Error).message}`)
          await sleep(clock, 20)
        }
      }
    }
  }

  /** Whether any of its directories still exists. */
  exists (): boolean {
    return this.dirs.some(d => existsSync(d))
  }
}

async function sleep (clock: Clock, ms: number): Promise<void> {
  await new Promise<void>(resolve => { clock.setTimeout(resolve, ms) })
}
