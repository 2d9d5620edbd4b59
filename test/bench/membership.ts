// Membership benchmarks on real shoald processes, timed from the peers' own
// log lines (pino's `time`, ms) so that measuring does not load the peers.
import { rmSync } from 'node:fs'
import { join } from 'node:path'
import { Peer, startPeer, tempDir, waitFor } from '../helpers/cluster.ts'
import { cpuMs, max, median, privateMb, rssMb, sleep } from './stats.ts'

type Log = (line: string) => void

function ips (subnet: string, n: number): string[] {
  return Array.from({ length: n }, (_, i) => `${subnet}.${i + 1}`)
}

function eventTime (peer: Peer, match: (e: Record<string, unknown>) => boolean, after = 0): number | undefined {
  return peer.events().find(e => match(e) && Number(e.time) >= after)?.time as number | undefined
}

interface Cluster { dir: string, peers: Peer[], key: string }

/** Starts one founding peer, then the rest in concurrent batches. */
async function launch (prefix: string, subnet: string, n: number, batch: number): Promise<Cluster> {
  const dir = tempDir(prefix)
  const addrs = ips(subnet, n)
  const first = await startPeer({ ip: addrs[0]!, name: 'p1', dataDir: join(dir, 'p1'), args: ['--log-level', 'info'] })
  const key = join(dir, 'p1', 'cluster.key')
  const peers = [first]
  for (let i = 1; i < n; i += batch) {
    const group = addrs.slice(i, i + batch).map(async (ip, j) => await startPeer({
      ip, name: `p${i + j + 1}`, dataDir: join(dir, `p${i + j + 1}`), join: [first.addr], clusterKey: key
    }))
    peers.push(...await Promise.all(group))
  }
  return { dir, peers, key }
}

async function shutdown (c: Cluster): Promise<void> {
  await Promise.all(c.peers.map(async p => { await p.kill('SIGKILL') }))
  rmSync(c.dir, { recursive: true, force: true })
}

/** ms from the last peer's start until every peer has logged `n` alive members. */
async function convergence (c: Cluster, n: number, boundMs = 120_000): Promise<number> {
  const seen = await waitFor(`${n} alive on every peer`, () => {
    const times = c.peers.map(p => eventTime(p, e => e.event === 'members.alive' && e.alive === n))
    return times.every(t => t !== undefined) ? times as number[] : undefined
  }, boundMs)
  const started = c.peers.map(p => eventTime(p, e => e.event === 'started')!)
  return max(seen) - max(started)
}

/** SIGKILLs `victim`; ms until every other peer has logged it dead. */
async function detection (c: Cluster, victim: Peer, boundMs = 120_000): Promise<number> {
  const others = c.peers.filter(p => p !== victim)
  const tKill = Date.now()
  await victim.kill('SIGKILL')
  const times = await waitFor(`every peer to mark ${victim.name} dead`, () => {
    const t = others.map(p => eventTime(p, e => e.event === 'member.dead' && e.member === victim.name, tKill))
    return t.every(x => x !== undefined) ? t as number[] : undefined
  }, boundMs)
  return max(times) - tKill
}

async function restart (c: Cluster, victim: Peer): Promise<void> {
  const i = c.peers.indexOf(victim)
  const again = await startPeer({ ...victim.opts, join: [c.peers[0]!.addr], clusterKey: c.key })
  c.peers[i] = again
  await waitFor(`${victim.name} alive everywhere again`, async () => {
    const views = await Promise.all(c.peers.map(async p => (await p.states())[victim.name]))
    return views.every(s => s === 'alive')
  }, 60_000)
}

export interface TenPeerFigures {
  detectMs: number[]
  convergeMs: number[]
  rssMb: number[]
  privateMb: number[]
}

export async function tenPeers (trials: number, log: Log): Promise<TenPeerFigures> {
  const convergeMs: number[] = []
  for (let t = 0; t < trials; t++) {
    const c = await launch(`bench10c${t}`, '127.0.10', 10, 9)
    try {
      convergeMs.push(await convergence(c, 10))
      log(`  10 peers, trial ${t + 1}: converged in ${convergeMs.at(-1)} ms`)
    } finally { await shutdown(c) }
  }
  const c = await launch('bench10d', '127.0.10', 10, 9)
  const detectMs: number[] = []
  let rss: number[] = []
  let priv: number[] = []
  try {
    await convergence(c, 10)
    await sleep(10_000) // idle, then read memory
    rss = c.peers.map(p => rssMb(p.proc.pid!))
    priv = c.peers.map(p => privateMb(p.proc.pid!))
    for (let t = 0; t < trials; t++) {
      const victim = c.peers[1 + (t % (c.peers.length - 1))]!
      detectMs.push(await detection(c, victim))
      log(`  10 peers, trial ${t + 1}: ${victim.name} dead everywhere after ${detectMs.at(-1)} ms`)
      await restart(c, victim)
      await sleep(2000)
    }
  } finally { await shutdown(c) }
  return { detectMs, convergeMs, rssMb: rss, privateMb: priv }
}

export interface FiftyPeerFigures {
  /** undefined when the peers did not all converge within the bound */
  convergeMs?: number
  detectMs?: number
  idleCpuPercent: number[]
  /** alive counts seen by each peer when convergence was given up on */
  partial?: string
}

export async function fiftyPeers (log: Log): Promise<FiftyPeerFigures> {
  const c = await launch('bench50', '127.0.50', 50, 5)
  try {
    let convergeMs: number | undefined
    let partial: string | undefined
    try {
      convergeMs = await convergence(c, 50, 60_000)
      log(`  50 peers: converged in ${convergeMs} ms`)
    } catch (err) {
      const counts = c.peers.map(p => Number(p.events().filter(e => e.event === 'members.alive').at(-1)?.alive ?? 1))
      partial = `after 60 s, peers saw ${Math.min(...counts)}–${Math.max(...counts)} alive (median ${median(counts)})`
      log(`  50 peers: ${(err as Error).message}; ${partial}`)
    }
    await sleep(10_000)
    const sample = c.peers.slice(1, 11)
    const before = sample.map(p => cpuMs(p.proc.pid!))
    const t0 = Date.now()
    await sleep(20_000)
    const elapsed = Date.now() - t0
    const idleCpuPercent = sample.map((p, i) => 100 * (cpuMs(p.proc.pid!) - before[i]!) / elapsed)
    log(`  50 peers: idle CPU per peer ${idleCpuPercent.map(x => x.toFixed(2)).join(', ')} %`)
    let detectMs: number | undefined
    try {
      detectMs = await detection(c, c.peers[25]!, 60_000)
      log(`  50 peers: p26 dead everywhere after ${detectMs} ms`)
    } catch (err) {
      log(`  50 peers: ${(err as Error).message}`)
    }
    return { ...(convergeMs !== undefined ? { convergeMs } : {}), ...(detectMs !== undefined ? { detectMs } : {}), ...(partial !== undefined ? { partial } : {}), idleCpuPercent }
  } finally { await shutdown(c) }
}

export { median, max }
