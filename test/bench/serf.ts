// Serf baseline for the membership benchmark: real `serf agent` processes on
// 127.0.60.x with Serf's default (LAN) timings, measuring failure detection,
// join convergence and idle memory, so Shoal's figures sit next to those of
// the gossip layer it is compared with, measured on the same machine.
//
// Timing comes from two sources per agent, neither of them polling serf:
// - the agent's own log lines `serf: EventMemberJoin: NAME ADDR` and
//   `serf: EventMemberFailed: NAME ADDR`, stamped as they arrive on the
//   agent's stdout pipe. Serf logs these the moment its member table changes,
//   so they are the primary figures.
// - an event handler that appends `<epoch ms> <SERF_EVENT> <members>` to a
//   per-agent file. The serf agent hard-codes event coalescing (1 s quiet
//   period, 3 s at most) in front of its handlers, so these land 1–3 s after
//   Serf already knew; they are kept as `handler` figures, which is what a
//   Serf user's scripts would see.
import { execFileSync, spawn } from 'node:child_process'
import type { ChildProcess } from 'node:child_process'
import { accessSync, constants, createWriteStream, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import type { WriteStream } from 'node:fs'
import { tmpdir } from 'node:os'
import { delimiter, join } from 'node:path'

export interface SerfTimings {
  detectMedianMs: number
  detectMaxMs: number
  convergeMedianMs: number
  convergeMaxMs: number
}

export interface SerfFigures extends SerfTimings {
  /** first line of `serf version` (Debian's 0.9.4 build reports 0.8.2-dev) */
  version: string
  /** the Debian package version, when dpkg knows it */
  packageVersion?: string
  /** idle VmRSS of one agent, median across agents and trials */
  rssMb: number
  /** the same trials timed by event handlers, i.e. after Serf's event coalescing */
  handler: SerfTimings
}

// Only this /24 is ours on loopback; other benchmarks and tests use other ranges.
const SUBNET = '127.0.60.'
const BIND_PORT = 7946
const RPC_PORT = 7373
const WAIT_MS = 60_000
const IDLE_MS = 5_000

// Serf runs handlers with `/bin/sh -c`; the output file comes from the
// agent's environment, which Serf passes on. The string must hold no '=':
// Serf would read what precedes it as an event filter.
const HANDLER = 'echo "$(date +%s%3N) $SERF_EVENT $(tr \'\\n\' \'|\')" >> "$SERF_BENCH_EVENTS"'

const LOG_EVENT = /serf: EventMember(\w+): (\S+)/

export function serfAvailable (): boolean {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (dir === '') continue
    try {
      accessSync(join(dir, 'serf'), constants.X_OK)
      return true
    } catch { /* not in this directory */ }
  }
  return false
}

interface Seen { at: number, event: string, name: string }

class Agent {
  readonly name: string
  readonly ip: string
  readonly eventsFile: string
  readonly child: ChildProcess
  readonly exited: Promise<void>
  /** member events from the agent's log, stamped on arrival */
  readonly logged: Seen[] = []
  readonly out: WriteStream
  ready = false
  expectDeath = false
  spawnError: Error | undefined
  private tail: string[] = []

  constructor (dir: string, name: string, ip: string, joinAddr: string | undefined, onLine: () => void) {
    this.name = name
    this.ip = ip
    this.eventsFile = join(dir, `${name}.events`)
    this.out = createWriteStream(join(dir, `${name}.log`))
    const args = ['agent', `-node=${name}`, `-bind=${ip}:${BIND_PORT}`, `-rpc-addr=${ip}:${RPC_PORT}`,
      ...(joinAddr !== undefined ? [`-join=${joinAddr}`] : []), `-event-handler=${HANDLER}`]
    this.child = spawn('serf', args, {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, SERF_BENCH_EVENTS: this.eventsFile }
    })
    this.exited = new Promise(resolve => {
      this.child.once('exit', () => { resolve() })
      this.child.once('error', err => { this.spawnError = err; resolve() })
    })
    // Stamped on arrival: serf writes each log line as it happens, and its
    // own timestamps only have whole seconds.
    const reader = (): (chunk: Buffer) => void => {
      let partial = ''
      return chunk => {
        const at = Date.now()
        this.out.write(chunk)
        partial += chunk.toString('utf8')
        const lines = partial.split('\n')
        partial = lines.pop() ?? ''
        for (const line of lines) this.line(line, at)
        onLine()
      }
    }
    this.child.stdout!.on('data', reader())
    this.child.stderr!.on('data', reader())
  }

  private line (line: string, at: number): void {
    this.tail.push(line)
    if (this.tail.length > 20) this.tail.shift()
    if (line.includes('Serf agent running!')) this.ready = true
    const m = LOG_EVENT.exec(line)
    if (m !== null) this.logged.push({ at, event: `member-${m[1]!.toLowerCase()}`, name: m[2]! })
  }

  get running (): boolean {
    return this.spawnError === undefined && this.child.exitCode === null && this.child.signalCode === null
  }

  /** Events as the handler recorded them; only complete lines count. */
  handled (): Seen[] {
    let text: string
    try { text = readFileSync(this.eventsFile, 'utf8') } catch { return [] }
    const lines = text.split('\n')
    lines.pop()
    const seen: Seen[] = []
    for (const line of lines) {
      const [stamp, event, members] = line.split(' ', 3)
      const at = Number(stamp)
      if (!Number.isFinite(at) || event === undefined) continue
      // Serf hands the members over as `name\taddr\trole\ttags` lines, which
      // the handler joined with '|'.
      for (const member of (members ?? '').split('|')) {
        const name = member.split('\t')[0]?.trim() ?? ''
        if (name !== '') seen.push({ at, event, name })
      }
    }
    return seen
  }

  describe (): string {
    const why = this.spawnError !== undefined ? this.spawnError.message : `exit ${this.child.exitCode ?? this.child.signalCode}`
    return `${this.name} (${why}): ${this.tail.join(' | ').slice(-800)}`
  }

  kill (): void {
    if (this.running) this.child.kill('SIGKILL')
  }
}

/** When `seen` first covers every one of `names` with `event` (at or after `after`), or undefined if not yet. */
function completedAt (seen: Seen[], event: string, names: Set<string>, after = 0): number | undefined {
  const got = new Set<string>()
  for (const s of seen) {
    if (s.event !== event || s.at < after || !names.has(s.name)) continue
    got.add(s.name)
    if (got.size === names.size) return s.at
  }
  return undefined
}

function median (xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b)
  if (s.length === 0) return NaN
  const mid = Math.floor(s.length / 2)
  return s.length % 2 === 1 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2
}

function rssMbOf (pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8')
  return Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? NaN) / 1024
}

const sleep = async (ms: number): Promise<void> => { await new Promise(resolve => setTimeout(resolve, ms)) }

/** The agents of one trial, plus a way to wait on what they report. */
class Cluster {
  readonly dir: string
  readonly agents: Agent[] = []
  /** every agent of the run not yet stopped, for the emergency kill */
  private readonly live: Set<Agent>
  private readonly pokes = new Set<() => void>()

  constructor (dir: string, live: Set<Agent>) {
    this.dir = dir
    this.live = live
  }

  start (name: string, ip: string, joinAddr?: string): Agent {
    const agent = new Agent(this.dir, name, ip, joinAddr, () => { for (const poke of this.pokes) poke() })
    this.agents.push(agent)
    this.live.add(agent)
    return agent
  }

  /**
   * Resolves once `check` holds. Re-checked on every agent log line and every
   * 200 ms, because handler files are written by serf's child shells and
   * nobody tells us; the timestamps are inside the files, so this cadence
   * costs no precision.
   */
  async until (what: string, check: () => boolean): Promise<void> {
    await new Promise<void>((resolve, reject) => {
      let done = false
      const finish = (err?: Error): void => {
        if (done) return
        done = true
        clearTimeout(timer)
        clearInterval(tick)
        this.pokes.delete(poke)
        if (err !== undefined) reject(err)
        else resolve()
      }
      const poke = (): void => {
        const dead = this.agents.find(a => !a.expectDeath && !a.running)
        if (dead !== undefined) { finish(new Error(`serf agent died while waiting for ${what}: ${dead.describe()}`)); return }
        try {
          if (check()) finish()
        } catch (err) {
          finish(err as Error)
        }
      }
      const timer = setTimeout(() => { finish(new Error(`timed out after ${WAIT_MS} ms waiting for ${what}`)) }, WAIT_MS)
      const tick = setInterval(poke, 200)
      this.pokes.add(poke)
      poke()
    })
  }

  async stop (): Promise<void> {
    for (const a of this.agents) a.kill()
    const gone = Promise.all(this.agents.map(async a => { await a.exited }))
    let timer: NodeJS.Timeout | undefined
    const late = new Promise<void>(resolve => { timer = setTimeout(resolve, 10_000) })
    await Promise.race([gone, late])
    clearTimeout(timer)
    for (const a of this.agents) this.live.delete(a)
    await Promise.all(this.agents.map(async a => { await new Promise(resolve => { a.out.end(resolve) }) }))
  }
}

interface Trial {
  converge: number
  convergeHandler: number
  detect: number
  detectHandler: number
  rss: number[]
}

/**
 * One fresh cluster: agent 1 alone, then agents 2..N at once, each told to
 * join agent 1. After convergence and an idle spell (memory is read then),
 * one non-first agent is SIGKILLed and the others are timed until they all
 * report it failed.
 */
async function trial (cluster: Cluster, n: number, index: number): Promise<Trial> {
  const names = Array.from({ length: n }, (_, i) => `serf-t${index}-${i + 1}`)
  const everyone = new Set(names)
  const first = cluster.start(names[0]!, `${SUBNET}1`)
  // A joiner whose -join fails exits, so agent 1 must be listening first.
  await cluster.until('agent 1 to start', () => first.ready)
  for (let i = 1; i < n; i++) cluster.start(names[i]!, `${SUBNET}${i + 1}`, `${SUBNET}1:${BIND_PORT}`)
  const t0 = Date.now()

  // Serf reports each agent itself as a member-join too, so "converged" is
  // all N names, self included.
  const logDone = (a: Agent): number | undefined => completedAt(a.logged, 'member-join', everyone)
  const handlerDone = (a: Agent): number | undefined => completedAt(a.handled(), 'member-join', everyone)
  await cluster.until(`${n} agents to see all ${n} members`, () =>
    cluster.agents.every(a => logDone(a) !== undefined && handlerDone(a) !== undefined))
  const converge = Math.max(...cluster.agents.map(a => logDone(a)!)) - t0
  const convergeHandler = Math.max(...cluster.agents.map(a => handlerDone(a)!)) - t0

  await sleep(IDLE_MS)
  const rss = cluster.agents.map(a => rssMbOf(a.child.pid!))

  // Rotate the victim over the non-first agents.
  const victim = cluster.agents[1 + (index - 1) % (n - 1)]!
  const others = cluster.agents.filter(a => a !== victim)
  const gone = new Set([victim.name])
  victim.expectDeath = true
  const tKill = Date.now()
  victim.kill()
  const logFailed = (a: Agent): number | undefined => completedAt(a.logged, 'member-failed', gone, tKill)
  const handlerFailed = (a: Agent): number | undefined => completedAt(a.handled(), 'member-failed', gone, tKill)
  await cluster.until(`${n - 1} agents to see ${victim.name} failed`, () =>
    others.every(a => logFailed(a) !== undefined && handlerFailed(a) !== undefined))
  const detect = Math.max(...others.map(a => logFailed(a)!)) - tKill
  const detectHandler = Math.max(...others.map(a => handlerFailed(a)!)) - tKill

  return { converge, convergeHandler, detect, detectHandler, rss }
}

function packageVersion (): string | undefined {
  try {
    const v = execFileSync('dpkg-query', ['-W', '-f=${Version}', 'serf'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'], timeout: 10_000 }).trim()
    return v !== '' ? v : undefined
  } catch {
    return undefined
  }
}

export async function measureSerf (opts: { agents: number, trials: number, log?: (line: string) => void }): Promise<SerfFigures> {
  const { agents: n, trials } = opts
  const log = opts.log ?? (() => {})
  if (!Number.isInteger(n) || n < 2 || n > 254) throw new Error(`agents must be 2..254 (one loopback address each), got ${n}`)
  if (!Number.isInteger(trials) || trials < 1) throw new Error(`trials must be at least 1, got ${trials}`)
  const version = execFileSync('serf', ['version'], { encoding: 'utf8', timeout: 10_000 }).split('\n')[0]!.trim()

  const dir = mkdtempSync(join(tmpdir(), 'shoal-bench-serf-'))
  const live = new Set<Agent>()
  // If the benchmark process dies outright, take the agents with it.
  const emergency = (): void => { for (const a of live) a.kill() }
  process.on('exit', emergency)
  const results: Trial[] = []
  try {
    for (let t = 1; t <= trials; t++) {
      const c = new Cluster(mkdtempSync(join(dir, `t${t}-`)), live)
      try {
        const r = await trial(c, n, t)
        results.push(r)
        log(`serf trial ${t}/${trials}: converge ${r.converge} ms (handler ${r.convergeHandler} ms), ` +
          `detect ${r.detect} ms (handler ${r.detectHandler} ms), rss ${median(r.rss).toFixed(1)} MB`)
      } finally {
        await c.stop()
      }
    }
  } finally {
    process.off('exit', emergency)
    rmSync(dir, { recursive: true, force: true })
  }

  const pick = (f: (r: Trial) => number): number[] => results.map(f)
  return {
    version,
    packageVersion: packageVersion(),
    detectMedianMs: median(pick(r => r.detect)),
    detectMaxMs: Math.max(...pick(r => r.detect)),
    convergeMedianMs: median(pick(r => r.converge)),
    convergeMaxMs: Math.max(...pick(r => r.converge)),
    rssMb: Math.round(median(results.flatMap(r => r.rss)) * 10) / 10,
    handler: {
      detectMedianMs: median(pick(r => r.detectHandler)),
      detectMaxMs: Math.max(...pick(r => r.detectHandler)),
      convergeMedianMs: median(pick(r => r.convergeHandler)),
      convergeMaxMs: Math.max(...pick(r => r.convergeHandler))
    }
  }
}
