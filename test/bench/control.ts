// Control-plane benchmarks on three real shoald peers (127.0.90.2-4):
// scheduler throughput (pods bound and committed per second onto simulated
// Nodes that have no kubelet), API latency under an open-loop load of mixed
// creates and gets, and watch fan-out (the time for one change to reach 100
// watchers on one peer).
// May import: test/helpers/cluster.ts, ./load.ts, ./stats.ts, protocol/ types.
import { Agent } from 'node:http'
import { join } from 'node:path'
import { performance } from 'node:perf_hooks'
import { Peer, stopAll, tempDir, waitStarted } from '../helpers/cluster.ts'
import { httpRequest, watchEvents } from './load.ts'
import { percentile, sleep } from './stats.ts'

const IPS = ['127.0.90.2', '127.0.90.3', '127.0.90.4']

export interface ControlFigures {
  /** seconds: from the first node turning Ready to every pod bound; createSeconds: creating the pending pods */
  scheduler?: { pods: number, nodes: number, seconds: number, podsPerSecond: number, bindPhaseSeconds: number }
  schedulerError?: string
  api?: { rate: number, seconds: number, mutatingP50: number, mutatingP99: number, readP50: number, readP99: number, errors: number }
  apiError?: string
  watch?: { watchers: number, trials: number, p50: number, p99: number }
  watchError?: string
}

export interface ControlOptions {
  pods: number
  nodes: number
  apiSeconds: number
  watchers: number
  watchTrials: number
  log: (line: string) => void
}

export async function measureControl (opts: ControlOptions): Promise<ControlFigures> {
  const figures: ControlFigures = {}
  const dir = tempDir('benchctl')
  const peers: Peer[] = []
  const agent = new Agent({ keepAlive: true, maxSockets: 64 })
  try {
    peers.push(new Peer({ ip: IPS[0] as string, name: 'p1', dataDir: join(dir, 'p1') }))
    await waitStarted(peers[0] as Peer)
    const key = join(dir, 'p1', 'cluster.key')
    peers.push(...IPS.slice(1).map((ip, i) => new Peer({ ip, name: `p${i + 2}`, dataDir: join(dir, `p${i + 2}`), join: [(peers[0] as Peer).addr], clusterKey: key })))
    await Promise.all(peers.slice(1).map(async p => { await waitStarted(p) }))
    const token = (peers[0] as Peer).token()
    const headers = { authorization: `Bearer ${token}`, 'content-type': 'application/json' }
    const call = async (peer: Peer, method: string, path: string, body?: unknown): Promise<{ status: number, body: any }> => {
      const h = method === 'PATCH' ? { ...headers, 'content-type': 'application/merge-patch+json' } : headers
      const r = await httpRequest(agent, `${peer.apiUrl}${path}`, { method, headers: h, ...(body !== undefined ? { body: JSON.stringify(body) } : {}), timeoutMs: 30_000 })
      let parsed: unknown = r.body
      try { parsed = JSON.parse(r.body) } catch { /* not JSON */ }
      return { status: r.status, body: parsed }
    }
    // A leader, three voters, the default namespace.
    const deadline = Date.now() + 60_000
    let leader: Peer | undefined
    while (leader === undefined) {
      if (Date.now() > deadline) throw new Error('no leader with 3 voters and the default namespace within 60 s')
      for (const p of peers) {
        const s = await call(p, 'GET', '/shoal/v1/raft').catch(() => undefined)
        if (s?.body?.role === 'leader' && s.body.voters.length === 3 && (await call(p, 'GET', '/api/v1/namespaces/default')).status === 200) leader = p
      }
      if (leader === undefined) await sleep(200)
    }
    const follower = peers.find(p => p !== leader) as Peer

    // --- scheduler throughput ---
    try {
      opts.log(`  control: ${opts.nodes} simulated nodes`)
      const nodeBodies = Array.from({ length: opts.nodes }, (_, i) => ({
        apiVersion: 'v1',
        kind: 'Node',
        metadata: { name: `sim-${i}`, labels: { 'shoal.dev/simulated': 'true' } },
        status: {
          capacity: { cpu: '64', memory: '256Gi', pods: '110' },
          allocatable: { cpu: '64', memory: '256Gi', pods: '110' },
          // Not Ready yet: the pods wait, so that binding is timed alone.
          conditions: [{ type: 'Ready', status: 'False', reason: 'Simulated' }]
        }
      }))
      await inParallel(nodeBodies, 32, async body => {
        const r = await call(leader, 'POST', '/api/v1/nodes', body)
        if (r.status !== 201) throw new Error(`creating a node: ${r.status} ${JSON.stringify(r.body).slice(0, 200)}`)
      })
      // Only the simulated nodes take pods: the members' own are cordoned.
      for (const p of peers) await call(leader, 'PATCH', `/api/v1/nodes/${p.name}`, { spec: { unschedulable: true } }).catch(() => undefined)
      opts.log(`  control: creating ${opts.pods} pods`)
      const t0 = performance.now()
      await inParallel(Array.from({ length: opts.pods }, (_, i) => i), 64, async i => {
        const r = await call(peers[i % peers.length] as Peer, 'POST', '/api/v1/namespaces/default/pods', {
          apiVersion: 'v1', kind: 'Pod', metadata: { name: `bench-${i}`, labels: { app: 'bench' } },
          spec: { containers: [{ name: 'c', image: 'busybox', resources: { requests: { cpu: '10m', memory: '16Mi' } } }] }
        })
        if (r.status !== 201) throw new Error(`creating a pod: ${r.status} ${JSON.stringify(r.body).slice(0, 200)}`)
      })
      // Every pod is pending; now the nodes turn Ready and the scheduler binds.
      const t1 = performance.now()
      await inParallel(nodeBodies, 32, async body => {
        const r = await call(leader, 'PATCH', `/api/v1/nodes/${body.metadata.name}/status`, { status: { conditions: [{ type: 'Ready', status: 'True', reason: 'Simulated' }] } })
        if (r.status !== 200) throw new Error(`making a node Ready: ${r.status} ${JSON.stringify(r.body).slice(0, 200)}`)
      })
      const created = t1
      let bound = 0
      let firstBound: number | undefined
      while (bound < opts.pods) {
        if (performance.now() - t0 > 300_000) throw new Error(`only ${bound} of ${opts.pods} pods bound after 300 s`)
        const list = await call(follower, 'GET', '/api/v1/namespaces/default/pods?labelSelector=app%3Dbench')
        bound = ((list.body.items ?? []) as Array<{ spec?: { nodeName?: string } }>).filter(p => p.spec?.nodeName !== undefined).length
        if (bound > 0 && firstBound === undefined) firstBound = performance.now()
        if (bound < opts.pods) await sleep(100)
      }
      const end = performance.now()
      const seconds = (end - created) / 1000
      figures.scheduler = { pods: opts.pods, nodes: opts.nodes, seconds, podsPerSecond: opts.pods / seconds, bindPhaseSeconds: (created - t0) / 1000 }
      opts.log(`  control: ${opts.pods} pending pods bound and committed (seen on a follower) ${seconds.toFixed(1)} s after the nodes began to turn Ready: ${(opts.pods / seconds).toFixed(0)} pods/s (creating them took ${((created - t0) / 1000).toFixed(1)} s)`)
    } catch (err) {
      figures.schedulerError = (err as Error).message
      opts.log(`  control: scheduler: ${figures.schedulerError}`)
    }

    // --- API latency: an open loop of 200 requests/s, half creates (ConfigMaps), half gets ---
    try {
      const rate = 200
      const total = rate * opts.apiSeconds
      const mutating: number[] = []
      const reads: number[] = []
      let errors = 0
      const inflight: Array<Promise<void>> = []
      const start = performance.now()
      for (let i = 0; i < total; i++) {
        const due = start + (i * 1000) / rate
        const wait = due - performance.now()
        if (wait > 0) await sleep(wait)
        const peer = peers[i % peers.length] as Peer
        inflight.push((async () => {
          const t = performance.now()
          const write = i % 2 === 0
          const r = write
            ? await call(peer, 'POST', '/api/v1/namespaces/default/configmaps', { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: `lat-${i}` }, data: { k: 'v' } }).catch(() => ({ status: 0, body: undefined }))
            : await call(peer, 'GET', `/api/v1/namespaces/default/configmaps/lat-${Math.max(0, i - 11)}`).catch(() => ({ status: 0, body: undefined }))
          const ms = performance.now() - t
          if ((write && r.status !== 201) || (!write && r.status !== 200 && r.status !== 404)) errors++
          else (write ? mutating : reads).push(ms)
        })())
      }
      await Promise.all(inflight)
      figures.api = {
        rate,
        seconds: opts.apiSeconds,
        mutatingP50: percentile(mutating, 50),
        mutatingP99: percentile(mutating, 99),
        readP50: percentile(reads, 50),
        readP99: percentile(reads, 99),
        errors
      }
      opts.log(`  control: API at ${rate}/s: creates p50 ${figures.api.mutatingP50.toFixed(1)} ms p99 ${figures.api.mutatingP99.toFixed(1)} ms; gets p99 ${figures.api.readP99.toFixed(1)} ms; ${errors} errors`)
    } catch (err) {
      figures.apiError = (err as Error).message
    }

    // --- watch fan-out: 100 watchers on one follower, one change at a time ---
    try {
      const stops: Array<() => void> = []
      let seen = new Map<string, number>()
      let expected = ''
      let reached: (() => void) | undefined
      for (let w = 0; w < opts.watchers; w++) {
        stops.push(await watchEvents(`${follower.apiUrl}/api/v1/namespaces/default/configmaps?watch=1&labelSelector=fanout%3Dyes`, token, e => {
          const name = e.object.metadata.name
          if (name !== expected) return
          const n = (seen.get(name) ?? 0) + 1
          seen.set(name, n)
          if (n === opts.watchers) reached?.()
        }))
      }
      const times: number[] = []
      for (let trial = 0; trial < opts.watchTrials; trial++) {
        expected = `fanout-${trial}`
        seen = new Map()
        const all = new Promise<void>(resolve => { reached = resolve })
        const t = performance.now()
        const r = await call(leader, 'POST', '/api/v1/namespaces/default/configmaps', { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: expected, labels: { fanout: 'yes' } }, data: {} })
        if (r.status !== 201) throw new Error(`creating a configmap: ${r.status}`)
        await Promise.race([all, sleep(10_000).then(() => { throw new Error(`the change reached ${seen.get(expected) ?? 0} of ${opts.watchers} watchers in 10 s`) })])
        times.push(performance.now() - t)
      }
      for (const stop of stops) stop()
      figures.watch = { watchers: opts.watchers, trials: opts.watchTrials, p50: percentile(times, 50), p99: percentile(times, 99) }
      opts.log(`  control: watch fan-out to ${opts.watchers} watchers: p50 ${figures.watch.p50.toFixed(1)} ms, p99 ${figures.watch.p99.toFixed(1)} ms (from the create's start)`)
    } catch (err) {
      figures.watchError = (err as Error).message
    }
  } finally {
    agent.destroy()
    await stopAll(peers, dir)
  }
  return figures
}

async function inParallel<T> (items: T[], width: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0
  await Promise.all(Array.from({ length: width }, async () => {
    while (next < items.length) {
      const item = items[next++] as T
      await fn(item)
    }
  }))
}
