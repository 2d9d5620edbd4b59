// etcd baseline for the replicated-log benchmark: a 3-member etcd cluster
// (Debian's etcd-server, 3.4) on 127.0.70.1-3 with default timings, measured
// the way test/bench/kv.ts measures Shoal: puts through the v3 JSON gateway
// (`POST /v3/kv/put`) under 64 clients, and failover (SIGKILL of the leader
// until a surviving member acknowledges a put).
// May import: ./kv.ts (types, the shared key and value), ./load.ts, ./stats.ts.
import { spawn, execFileSync } from 'node:child_process'
import type { ChildProcess } from 'node:child_process'
import { accessSync, constants, mkdtempSync, rmSync } from 'node:fs'
import { Agent } from 'node:http'
import { tmpdir } from 'node:os'
import { delimiter, join } from 'node:path'
import { performance } from 'node:perf_hooks'
import { keyOf, VALUE } from './kv.ts'
import type { LogBenchOptions, LogFigures } from './kv.ts'
import { firstAcknowledged, httpRequest, measuredLoad } from './load.ts'
import type { LoadClient } from './load.ts'
import { sleep } from './stats.ts'

// Only this /24 is ours on loopback; other benchmarks and tests use other ranges.
const IPS = ['127.0.70.1', '127.0.70.2', '127.0.70.3']
const CLIENT_PORT = 2379
const PEER_PORT = 2380
const READY_MS = 60_000

/** Path of the etcd binary, or undefined when it is not installed. */
export function etcdPath (): string | undefined {
  for (const dir of ['/usr/bin', ...(process.env.PATH ?? '').split(delimiter)]) {
    if (dir === '') continue
    try {
      accessSync(join(dir, 'etcd'), constants.X_OK)
      return join(dir, 'etcd')
    } catch { /* not in this directory */ }
  }
  return undefined
}

/** e.g. "3.4.23" from `etcd --version`. */
export function etcdVersion (bin: string): string {
  const out = execFileSync(bin, ['--version'], { encoding: 'utf8' })
  return /etcd Version:\s*(\S+)/.exec(out)?.[1] ?? 'unknown'
}

class Member {
  readonly name: string
  readonly ip: string
  readonly args: string[]
  proc: ChildProcess
  exited: Promise<void>
  tail: string[] = []

  constructor (bin: string, dir: string, index: number) {
    this.name = `e${index + 1}`
    this.ip = IPS[index]!
    this.args = [
      '--name', this.name,
      '--data-dir', join(dir, this.name),
      '--listen-client-urls', this.clientUrl,
      '--advertise-client-urls', this.clientUrl,
      '--listen-peer-urls', `http://${this.ip}:${PEER_PORT}`,
      '--initial-advertise-peer-urls', `http://${this.ip}:${PEER_PORT}`,
      '--initial-cluster', IPS.map((ip, i) => `e${i + 1}=http://${ip}:${PEER_PORT}`).join(','),
      '--initial-cluster-state', 'new',
      '--initial-cluster-token', 'shoal-bench',
      '--logger', 'zap', '--log-outputs', 'stderr'
    ]
    ;({ proc: this.proc, exited: this.exited } = this.spawn(bin))
  }

  get clientUrl (): string { return `http://${this.ip}:${CLIENT_PORT}` }
  get running (): boolean { return this.proc.exitCode === null && this.proc.signalCode === null }

  /** Starts etcd; with an existing data dir it rejoins from its WAL and ignores the initial-cluster flags. */
  spawn (bin: string): { proc: ChildProcess, exited: Promise<void> } {
    // Debian's packaging reads ETCD_* variables; none of ours should leak in.
    const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('ETCD_')))
    const proc = spawn(bin, this.args, { stdio: ['ignore', 'ignore', 'pipe'], env })
    proc.stderr!.setEncoding('utf8').on('data', (chunk: string) => {
      this.tail.push(...chunk.split('\n').filter(l => l !== ''))
      if (this.tail.length > 30) this.tail.splice(0, this.tail.length - 30)
    })
    const exited = new Promise<void>(resolve => {
      proc.once('exit', () => { resolve() })
      proc.once('error', err => { this.tail.push(err.message); resolve() })
    })
    return { proc, exited }
  }

  restart (bin: string): void {
    ;({ proc: this.proc, exited: this.exited } = this.spawn(bin))
  }

  async kill (): Promise<void> {
    if (this.running) this.proc.kill('SIGKILL')
    await this.exited
  }

  async healthy (): Promise<boolean> {
    const res = await httpRequest(undefined, `${this.clientUrl}/health`, { timeoutMs: 2000 })
    return res.status === 200 && (JSON.parse(res.body) as { health?: string }).health === 'true'
  }

  /** member_id and the leader's id, as this member sees them. */
  async status (): Promise<{ id: string, leader: string }> {
    const res = await httpRequest(undefined, `${this.clientUrl}/v3/maintenance/status`, { method: 'POST', body: '{}', timeoutMs: 2000 })
    if (res.status !== 200) throw new Error(`${this.name}: status answered ${res.status}: ${res.body.slice(0, 200)}`)
    const s = JSON.parse(res.body) as { header?: { member_id?: string }, leader?: string }
    return { id: s.header?.member_id ?? '', leader: s.leader ?? '' }
  }
}

async function allHealthy (members: Member[], boundMs = READY_MS): Promise<void> {
  const deadline = Date.now() + boundMs
  let last = ''
  for (;;) {
    for (const m of members) if (!m.running) throw new Error(`etcd ${m.name} exited: ${m.tail.slice(-5).join(' | ')}`)
    try {
      const health = await Promise.all(members.map(async m => await m.healthy()))
      if (health.every(h => h)) return
      last = `health ${health.join(', ')}`
    } catch (err) {
      last = (err as Error).message
    }
    if (Date.now() > deadline) throw new Error(`etcd cluster not healthy within ${boundMs / 1000} s (last: ${last})`)
    await sleep(100)
  }
}

/** The member all three agree leads. */
async function findLeader (members: Member[], boundMs = READY_MS): Promise<Member> {
  const deadline = Date.now() + boundMs
  let last = ''
  for (;;) {
    try {
      const s = await Promise.all(members.map(async m => await m.status()))
      const leader = s[0]!.leader
      const i = s.findIndex(x => x.id === leader)
      if (leader !== '' && leader !== '0' && i >= 0 && s.every(x => x.leader === leader)) return members[i]!
      last = s.map((x, j) => `${members[j]!.name}→${x.leader}`).join(', ')
    } catch (err) {
      last = (err as Error).message
    }
    if (Date.now() > deadline) throw new Error(`etcd members did not agree on a leader within ${boundMs / 1000} s (last: ${last})`)
    await sleep(100)
  }
}

async function put (client: LoadClient | undefined, agent: Agent | undefined, member: Member, key: string, timeoutMs?: number): Promise<void> {
  const init = {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: `{"key":"${Buffer.from(key).toString('base64')}","value":"${VALUE_B64}"}`,
    ...(timeoutMs !== undefined ? { timeoutMs } : {})
  }
  const url = `${member.clientUrl}/v3/kv/put`
  const res = client !== undefined ? await client.request(url, init) : await httpRequest(agent, url, init)
  // The gateway answers 200 with the header, or an error status with {"error": …}.
  if (res.status !== 200 || !res.body.includes('"header"')) throw new Error(`put answered ${res.status}: ${res.body.slice(0, 200)}`)
}
const VALUE_B64 = Buffer.from(VALUE).toString('base64')

export async function measureEtcd (bin: string, opts: LogBenchOptions): Promise<LogFigures> {
  const figures: LogFigures = { failoverMs: [] }
  const dir = mkdtempSync(join(tmpdir(), 'shoal-bench-etcd-'))
  const members: Member[] = []
  const killAll = (): void => { for (const m of members) if (m.running) m.proc.kill('SIGKILL') }
  process.once('exit', killAll)
  try {
    for (let i = 0; i < IPS.length; i++) members.push(new Member(bin, dir, i))
    await allHealthy(members)
    await findLeader(members)
    const op = async (c: LoadClient, i: number): Promise<void> => { await put(c, undefined, members[c.id % members.length]!, keyOf(c.id, i)) }
    Object.assign(figures, await measuredLoad('etcd', opts, op))

    const agent = new Agent({ keepAlive: true })
    try {
      for (let t = 0; t < opts.failoverTrials; t++) {
        const leader = await findLeader(members)
        const survivor = members.find(m => m !== leader)!
        const t0 = performance.now()
        leader.proc.kill('SIGKILL')
        const ackedAt = await firstAcknowledged(async timeoutMs => { await put(undefined, agent, survivor, `failover/${t}`, timeoutMs) })
        figures.failoverMs.push(ackedAt - t0)
        opts.log(`  etcd failover ${t + 1}/${opts.failoverTrials}: ${leader.name} killed, put acknowledged by ${survivor.name} after ${(ackedAt - t0).toFixed(0)} ms`)
        await leader.exited
        leader.restart(bin)
        await allHealthy(members)
      }
    } catch (err) {
      figures.failoverError = (err as Error).message
      opts.log(`  etcd failover: ${figures.failoverError}`)
    } finally {
      agent.destroy()
    }
  } catch (err) {
    figures.loadError ??= (err as Error).message
    figures.failoverError ??= (err as Error).message
    opts.log(`  etcd: ${(err as Error).message}`)
  } finally {
    await Promise.all(members.map(async m => { await m.kill() }))
    process.off('exit', killAll)
    rmSync(dir, { recursive: true, force: true })
  }
  return figures
}
