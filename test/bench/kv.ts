// Replicated-log benchmark for Shoal: three real shoald peers on
// 127.0.80.2-4, KV put throughput and latency under 64 clients, and failover
// (SIGKILL of the leader until a surviving peer acknowledges a put).
// test/bench/etcd.ts measures the same for etcd; both return LogFigures.
// Peers are started the way test/helpers/cluster.ts's startCluster does.
// May import: test/helpers/cluster.ts, ./load.ts, ./stats.ts, protocol/ types.
import { randomBytes } from 'node:crypto'
import { Agent } from 'node:http'
import { join } from 'node:path'
import { performance } from 'node:perf_hooks'
import type { RaftStatusView } from '../../protocol/api.ts'
import { Peer, stopAll, tempDir, waitStarted } from '../helpers/cluster.ts'
import { firstAcknowledged, httpRequest, measuredLoad } from './load.ts'
import type { HttpAnswer, LoadClient, LoadResult } from './load.ts'
import { sleep } from './stats.ts'

type Log = (line: string) => void

export interface LogBenchOptions {
  /** measured load phase, after a warm-up of a tenth of it */
  durationMs: number
  concurrency: number
  failoverTrials: number
  log: Log
}

export interface LogFigures {
  load?: LoadResult
  /** why the load phase gave no figures */
  loadError?: string
  /** ms from SIGKILL of the leader to the first acknowledged put, one per trial */
  failoverMs: number[]
  failoverError?: string
}

const IPS = ['127.0.80.2', '127.0.80.3', '127.0.80.4']
const READY_MS = 60_000

/** A put's value: printable, the same size for Shoal and etcd. */
export const VALUE = randomBytes(96).toString('base64url') // 128 characters
export const keyOf = (client: number, i: number): string => `bench/${client}/${i}`

/** The message of a Shoal Status answer, else the start of the body. */
function why (res: HttpAnswer): string {
  try {
    const message = (JSON.parse(res.body) as { message?: unknown }).message
    if (typeof message === 'string') return message
  } catch { /* not JSON */ }
  return res.body.slice(0, 200)
}

/** An API the benchmark needs is missing: no use waiting for it. */
class NotThere extends Error {
  override name = 'NotThere'
}

async function raftStatus (peer: Peer, timeoutMs = 2000): Promise<RaftStatusView> {
  const res = await httpRequest(undefined, `${peer.apiUrl}/shoal/v1/raft`, { headers: { authorization: `Bearer ${peer.token()}` }, timeoutMs })
  if (res.status === 404) throw new NotThere(`GET /shoal/v1/raft on ${peer.name} answered 404: ${why(res)}`)
  if (res.status !== 200) throw new Error(`GET /shoal/v1/raft on ${peer.name} answered ${res.status}: ${why(res)}`)
  return JSON.parse(res.body) as RaftStatusView
}

/** Waits until one running peer leads with 3 voters; returns it. */
async function leaderWithVoters (peers: Peer[], boundMs = READY_MS): Promise<Peer> {
  const deadline = Date.now() + boundMs
  let last = 'no answer yet'
  for (;;) {
    for (const peer of peers.filter(p => p.running)) {
      try {
        const s = await raftStatus(peer)
        if (s.role === 'leader' && s.voters.length === IPS.length) return peer
        last = `${peer.name}: role ${s.role}, term ${s.term}, ${s.voters.length} voters, ${s.learners.length} learners, leader ${s.leader?.name ?? 'none'}`
      } catch (err) {
        if (err instanceof NotThere) throw err
        last = (err as Error).message
      }
    }
    if (Date.now() > deadline) throw new Error(`no Shoal leader with ${IPS.length} voters within ${boundMs / 1000} s (last: ${last})`)
    await sleep(200)
  }
}

async function put (client: LoadClient | undefined, agent: Agent | undefined, peer: Peer, token: string, key: string, timeoutMs?: number): Promise<void> {
  const url = `${peer.apiUrl}/shoal/v1/kv/${encodeURIComponent(key)}`
  const init = { method: 'PUT', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/octet-stream' }, body: VALUE, ...(timeoutMs !== undefined ? { timeoutMs } : {}) }
  const res = client !== undefined ? await client.request(url, init) : await httpRequest(agent, url, init)
  if (res.status !== 200) throw new Error(`PUT answered ${res.status}: ${why(res)}`)
}

export async function measureShoal (opts: LogBenchOptions): Promise<LogFigures> {
  const figures: LogFigures = { failoverMs: [] }
  // startCluster's steps, keeping hold of every process it starts so that a
  // failure half way leaves none behind.
  const dir = tempDir('benchkv')
  const key = join(dir, 'p1', 'cluster.key')
  const peers: Peer[] = []
  const killAll = (): void => { for (const p of peers) if (p.running) p.proc.kill('SIGKILL') }
  process.once('exit', killAll)
  try {
    peers.push(new Peer({ ip: IPS[0]!, name: 'p1', dataDir: join(dir, 'p1') }))
    await waitStarted(peers[0]!)
    peers.push(...IPS.slice(1).map((ip, i) => new Peer({ ip, name: `p${i + 2}`, dataDir: join(dir, `p${i + 2}`), join: [peers[0]!.addr], clusterKey: key })))
    await Promise.all(peers.slice(1).map(async p => { await waitStarted(p) }))
    await leaderWithVoters(peers)
    const tokens = peers.map(p => p.token())
    const op = async (c: LoadClient, i: number): Promise<void> => {
      const n = c.id % peers.length
      await put(c, undefined, peers[n]!, tokens[n]!, keyOf(c.id, i))
    }
    Object.assign(figures, await measuredLoad('shoal', opts, op))

    const agent = new Agent({ keepAlive: true })
    try {
      for (let t = 0; t < opts.failoverTrials; t++) {
        const leader = await leaderWithVoters(peers)
        const survivor = peers.find(p => p !== leader)!
        const token = survivor.token()
        const t0 = performance.now()
        leader.proc.kill('SIGKILL')
        const ackedAt = await firstAcknowledged(async timeoutMs => { await put(undefined, agent, survivor, token, `failover/${t}`, timeoutMs) })
        figures.failoverMs.push(ackedAt - t0)
        opts.log(`  shoal failover ${t + 1}/${opts.failoverTrials}: ${leader.name} killed, put acknowledged by ${survivor.name} after ${(ackedAt - t0).toFixed(0)} ms`)
        await leader.exited
        const i = peers.indexOf(leader)
        const others = peers.filter(p => p !== leader)
        peers[i] = new Peer({ ...leader.opts, join: others.map(p => p.addr), clusterKey: key })
        await waitStarted(peers[i]!)
        await waitLeaderSeenBy(peers[i]!)
        await caughtUp(peers, await leaderWithVoters(peers))
      }
    } catch (err) {
      figures.failoverError = (err as Error).message
      opts.log(`  shoal failover: ${figures.failoverError}`)
    } finally {
      agent.destroy()
    }
  } catch (err) {
    figures.loadError ??= (err as Error).message
    figures.failoverError ??= (err as Error).message
    opts.log(`  shoal: ${(err as Error).message}`)
  } finally {
    await stopAll(peers, dir)
    process.off('exit', killAll)
  }
  return figures
}

/** Waits until every peer has applied what the leader had committed: the cluster is back in its steady state. */
async function caughtUp (peers: Peer[], leader: Peer, boundMs = READY_MS): Promise<void> {
  const target = (await raftStatus(leader)).commitIndex
  const deadline = Date.now() + boundMs
  for (const peer of peers) {
    for (;;) {
      const applied = (await raftStatus(peer).catch(() => undefined))?.appliedIndex ?? -1
      if (applied >= target) break
      if (Date.now() > deadline) throw new Error(`${peer.name} did not catch up to index ${target} within ${boundMs / 1000} s`)
      await sleep(50)
    }
  }
}

async function waitLeaderSeenBy (peer: Peer, boundMs = READY_MS): Promise<void> {
  const deadline = Date.now() + boundMs
  let last = ''
  for (;;) {
    if (!peer.running) throw new Error(`restarted ${peer.name} exited: ${peer.stderr.slice(-500)}`)
    try {
      const s = await raftStatus(peer)
      if (s.leader !== undefined) return
      last = `role ${s.role}, term ${s.term}, no leader`
    } catch (err) {
      last = (err as Error).message
    }
    if (Date.now() > deadline) throw new Error(`restarted ${peer.name} saw no leader within ${boundMs / 1000} s (last: ${last})`)
    await sleep(100)
  }
}
