// Control-plane benchmarks on three real shoald peers (127.0.90.2-4):
// scheduler throughput (pods bound and committed per second onto simulated
// Nodes that have no kubelet; then again with half the pods carrying
// required podAntiAffinity), API latency under an open-loop load of mixed
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
  /** the same with half the pods carrying required podAntiAffinity on kubernetes.io/hostname (groups of at most half as many pods as nodes, one per node) */
  schedulerAntiAffinity?: { pods: number, nodes: number, seconds: number, podsPerSecond: number, bindPhaseSeconds: number }
  schedulerAntiAffinityError?: string
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

    // --- scheduler throughput: plain pods, then half with required podAntiAffinity ---
    const sched: SchedulerRig = { call, leader, follower, peers, token, log: opts.log }
    let nodeBodies: SimNode[] = []
    try {
      nodeBodies = await createSimNodes(sched, opts.nodes)
      figures.scheduler = await schedulerRun(sched, nodeBodies, opts.pods, 'bench', i => plainPod(`bench-${i}`, 'bench'))
    } catch (err) {
      figures.schedulerError = (err as Error).message
      opts.log(`  control: scheduler: ${figures.schedulerError}`)
    }
    try {
      if (nodeBodies.length === 0) throw new Error('no simulated nodes')
      // The first run's pods stay: deleting 10,000 pods costs each peer a scan of the store per delete (the
      // store's cascade looks for dependents in every object), which would be timed into what follows.
      // Groups of at most half as many pods as nodes, one pod of a group per node: the nodes turn
      // Ready a few at a time and the first ones fill up (the plain run's pods are still there), so
      // a group as large as the node count would not fit in every order; half of it always does.
      const groups = Math.ceil(opts.pods / 2 / Math.floor(opts.nodes / 2))
      figures.schedulerAntiAffinity = await schedulerRun(sched, nodeBodies, opts.pods, 'bench-anti', i => i % 2 === 0
        ? antiPod(`bench-anti-${i}`, `g${Math.floor(i / 2) % groups}`)
        : plainPod(`bench-anti-${i}`, 'bench-anti'))
    } catch (err) {
      figures.schedulerAntiAffinityError = (err as Error).message
      opts.log(`  control: scheduler with anti-affinity: ${figures.schedulerAntiAffinityError}`)
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
        // from four source addresses: the API allows 64 watches per client address
        stops.push(await watchEvents(`${follower.apiUrl}/api/v1/namespaces/default/configmaps?watch=1&labelSelector=fanout%3Dyes`, token, e => {
          const name = e.object.metadata.name
          if (name !== expected) return
          const n = (seen.get(name) ?? 0) + 1
          seen.set(name, n)
          if (n === opts.watchers) reached?.()
        }, undefined, `127.0.90.${100 + (w % 4)}`))
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

type Call = (peer: Peer, method: string, path: string, body?: unknown) => Promise<{ status: number, body: any }>
interface SchedulerRig { call: Call, leader: Peer, follower: Peer, peers: Peer[], token: string, log: (line: string) => void }
interface SimNode { metadata: { name: string } }
type SchedulerFigures = NonNullable<ControlFigures['scheduler']>

/** A pod requesting 10m CPU and 16 MiB, labelled run=`run`. */
function plainPod (name: string, run: string): unknown {
  return {
    apiVersion: 'v1', kind: 'Pod', metadata: { name, labels: { app: 'bench', run } },
    spec: { containers: [{ name: 'c', image: 'busybox', resources: { requests: { cpu: '10m', memory: '16Mi' } } }] }
  }
}

/** The same, in anti-affinity group `group`: never on a node with another pod of its group. */
function antiPod (name: string, group: string): unknown {
  const pod = plainPod(name, 'bench-anti') as { metadata: { labels: Record<string, string> }, spec: Record<string, unknown> }
  pod.metadata.labels.group = group
  pod.spec.affinity = { podAntiAffinity: { requiredDuringSchedulingIgnoredDuringExecution: [{ labelSelector: { matchLabels: { group } }, topologyKey: 'kubernetes.io/hostname' }] } }
  return pod
}

/** Creates the simulated Nodes (Not Ready) and cordons the members' own. */
async function createSimNodes (r: SchedulerRig, count: number): Promise<SimNode[]> {
  r.log(`  control: ${count} simulated nodes`)
  const nodeBodies = Array.from({ length: count }, (_, i) => ({
    apiVersion: 'v1',
    kind: 'Node',
    metadata: { name: `sim-${i}`, labels: { 'shoal.dev/simulated': 'true', 'kubernetes.io/hostname': `sim-${i}` } },
    status: {
      capacity: { cpu: '64', memory: '256Gi', pods: '110' },
      allocatable: { cpu: '64', memory: '256Gi', pods: '110' },
      // Not Ready yet: the pods wait, so that binding is timed alone.
      conditions: [{ type: 'Ready', status: 'False', reason: 'Simulated' }]
    }
  }))
  await inParallel(nodeBodies, 32, async body => {
    const res = await retried(async () => await r.call(r.leader, 'POST', '/api/v1/nodes', body))
    if (res.status !== 201 && res.status !== 409) throw new Error(`creating a node: ${res.status} ${JSON.stringify(res.body).slice(0, 200)}`)
  })
  // Only the simulated nodes take pods: the members' own are cordoned.
  for (const p of r.peers) await r.call(r.leader, 'PATCH', `/api/v1/nodes/${p.name}`, { spec: { unschedulable: true } }).catch(() => undefined)
  return nodeBodies
}

async function setReady (r: SchedulerRig, nodes: SimNode[], ready: boolean): Promise<void> {
  await inParallel(nodes, 32, async body => {
    const res = await retried(async () => await r.call(r.leader, 'PATCH', `/api/v1/nodes/${body.metadata.name}/status`, { status: { conditions: [{ type: 'Ready', status: ready ? 'True' : 'False', reason: 'Simulated' }] } }))
    if (res.status !== 200) throw new Error(`making a node ${ready ? 'Ready' : 'Not Ready'}: ${res.status} ${JSON.stringify(res.body).slice(0, 200)}`)
  })
}

/**
 * One timed run: with the nodes Not Ready, `pods` pods from `body` (label
 * run=`run`) created through all three peers; then the nodes turn Ready and
 * the clock runs until a watch on a follower has seen every pod with a node.
 * The log entries each phase took are reported beside the figure.
 */
async function schedulerRun (r: SchedulerRig, nodes: SimNode[], pods: number, run: string, body: (i: number) => unknown): Promise<SchedulerFigures> {
  const commitIndex = async (): Promise<number> => Number((await r.call(r.leader, 'GET', '/shoal/v1/raft')).body?.commitIndex ?? NaN)
  await setReady(r, nodes, false)
  r.log(`  control: creating ${pods} pods (run=${run})`)
  const e0 = await commitIndex()
  const t0 = performance.now()
  await inParallel(Array.from({ length: pods }, (_, i) => i), 64, async i => {
    const res = await retried(async () => await r.call(r.peers[i % r.peers.length] as Peer, 'POST', '/api/v1/namespaces/default/pods', body(i)))
    // 409: an earlier attempt was committed though its answer was lost
    if (res.status !== 201 && res.status !== 409) throw new Error(`creating a pod: ${res.status} ${JSON.stringify(res.body).slice(0, 200)}`)
  })
  // Every pod is pending; a watch on a follower counts the pods that get a node.
  const bound = new Set<string>()
  let allBound: (() => void) | undefined
  const done = new Promise<void>(resolve => { allBound = resolve })
  const stopWatch = await watchEvents(`${r.follower.apiUrl}/api/v1/namespaces/default/pods?watch=1&labelSelector=run%3D${run}&fieldSelector=spec.nodeName%21%3D`, r.token, e => {
    if (e.type === 'DELETED' || (e.object.spec?.nodeName ?? '') === '') return
    bound.add(e.object.metadata.name)
    if (bound.size >= pods) allBound?.()
  })
  try {
    const e1 = await commitIndex()
    // Now the nodes turn Ready and the scheduler binds.
    const created = performance.now()
    await setReady(r, nodes, true)
    // A list now and then, in case the watch ended early: the pods still without a node.
    for (;;) {
      if (performance.now() - t0 > 300_000) {
        const left = await r.call(r.follower, 'GET', `/api/v1/namespaces/default/pods?labelSelector=run%3D${run}&fieldSelector=spec.nodeName%3D`)
        const first = left.body?.items?.[0]
        const why = (first?.status?.conditions ?? []).find((c: { type: string }) => c.type === 'PodScheduled')?.message ?? 'no PodScheduled condition'
        throw new Error(`only ${bound.size} of ${pods} pods bound after 300 s; ${left.body?.items?.length ?? '?'} without a node, ${first?.metadata?.name ?? ''}: ${why}`)
      }
      const polled = await Promise.race([done.then(() => true), sleep(10_000).then(() => false)])
      if (polled) break
      const left = await r.call(r.follower, 'GET', `/api/v1/namespaces/default/pods?labelSelector=run%3D${run}&fieldSelector=spec.nodeName%3D`)
      if (Array.isArray(left.body?.items) && left.body.items.length === 0) break
    }
    const seconds = (performance.now() - created) / 1000
    const e2 = await commitIndex()
    r.log(`  control: ${pods} pending pods (run=${run}) bound and committed (seen on a follower) ${seconds.toFixed(1)} s after the nodes began to turn Ready: ${(pods / seconds).toFixed(0)} pods/s (creating them took ${((created - t0) / 1000).toFixed(1)} s; log entries: ${e1 - e0} while creating, ${e2 - e1} while binding)`)
    return { pods, nodes: nodes.length, seconds, podsPerSecond: pods / seconds, bindPhaseSeconds: (created - t0) / 1000 }
  } finally {
    stopWatch()
  }
}

/**
 * A setup request (not a timed one), tried again up to 5 times, 1 s apart,
 * when it gets a 5xx or its connection fails: under this load a write may
 * miss the API's commit deadline (504), which is issue 21's figure, not the
 * scheduler's.
 */
async function retried (req: () => Promise<{ status: number, body: any }>): Promise<{ status: number, body: any }> {
  for (let attempt = 1; ; attempt++) {
    try {
      const res = await req()
      if (res.status < 500 || attempt >= 5) return res
    } catch (err) {
      if (attempt >= 5) throw err
    }
    await sleep(1000)
  }
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
