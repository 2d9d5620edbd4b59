// Pod benchmarks on three real shoald peers (127.0.91.2-4) with the
// process runtime: pod startup (a Deployment applied until each pod is
// Running, as a watch on a follower sees it), idle CPU and rescheduling
// (SIGKILL of a peer until all of its pods run elsewhere). With the Docker
// runtime (an engine at DOCKER_HOST), pod startup only. The native runtime's
// figures are in ./native.ts, which shares this file's cluster helpers.
// May import: test/helpers/cluster.ts, test/helpers/docker.ts, ./load.ts, ./stats.ts.
import { existsSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { performance } from 'node:perf_hooks'
import { killPodProcesses, Peer, stopAll, tempDir, waitStarted } from '../helpers/cluster.ts'
import { findEngine, removeNode, TEST_IMAGE } from '../helpers/docker.ts'
import { httpRequest, watchEvents } from './load.ts'
import { cpuMs, percentile, sleep } from './stats.ts'

const IPS = ['127.0.91.2', '127.0.91.3', '127.0.91.4']

export interface PodFigures {
  startup?: { pods: number, p50: number, p99: number, max: number }
  startupError?: string
  /** Docker only: the engine alone creating and starting 2 containers per pod (sandbox + app), 16 at a time, in ms */
  engineFloorMs?: number
  /** % of one core used by one shoald running 50 idle pods */
  idleCpu?: number
  /** VmRSS of that shoald in MB: before the 50 pods, and with them Running (after the idle CPU window) */
  rssBeforeMb?: number
  rssMb?: number
  idleError?: string
  rescheduleMs: number[]
  rescheduleError?: string
}

interface PodView { name: string, node?: string, phase?: string, deleting: boolean }

/** VmRSS of a process in MB, from /proc/<pid>/status. */
export function vmRssMb (pid: number): number {
  const kb = /VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1]
  if (kb === undefined) throw new Error(`no VmRSS in /proc/${pid}/status`)
  return Number(kb) / 1024
}

export type ApiCall = (peer: Peer, method: string, path: string, body?: unknown) => Promise<{ status: number, body: any }>

/**
 * Three peers (the first founds the cluster, the others join it) with
 * `args`, once all three Nodes are Ready; and a JSON call to any of them.
 */
export async function startPeers (ips: readonly string[], names: readonly string[], dir: string, args: string[], peers: Peer[]): Promise<{ key: string, call: ApiCall }> {
  peers.push(new Peer({ ip: ips[0] as string, name: names[0] as string, dataDir: join(dir, 'p1'), args }))
  await waitStarted(peers[0] as Peer)
  const key = join(dir, 'p1', 'cluster.key')
  peers.push(...ips.slice(1).map((ip, i) => new Peer({ ip, name: names[i + 1] as string, dataDir: join(dir, `p${i + 2}`), join: [(peers[0] as Peer).addr], clusterKey: key, args })))
  await Promise.all(peers.slice(1).map(async p => { await waitStarted(p) }))
  const token = (peers[0] as Peer).token()
  const call: ApiCall = async (peer, method, path, body) => {
    const r = await httpRequest(undefined, `${peer.apiUrl}${path}`, { method, headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, ...(body !== undefined ? { body: JSON.stringify(body) } : {}), timeoutMs: 30_000 })
    let parsed: unknown = r.body
    try { parsed = JSON.parse(r.body) } catch { /* text */ }
    return { status: r.status, body: parsed }
  }
  const deadline = Date.now() + 60_000
  for (;;) {
    const r = await call(peers[0] as Peer, 'GET', '/api/v1/nodes').catch(() => undefined)
    const ready = ((r?.body?.items ?? []) as any[]).filter(n => (n.status?.conditions ?? []).some((c: any) => c.type === 'Ready' && c.status === 'True'))
    // A watch on a peer uses that peer's admin.token, which a joiner writes once it has the cluster's.
    if (ready.length === ips.length && peers.every(p => existsSync(join(p.opts.dataDir, 'admin.token')))) break
    if (Date.now() > deadline) throw new Error(`no ${ips.length} Ready nodes, each peer with its admin.token, within 60 s`)
    await sleep(200)
  }
  return { key, call }
}

/** A live view of the pods with app=<app>, kept by a watch on one peer. */
export async function watchPods (peer: Peer, app: string, onChange: (pods: Map<string, PodView>, at: number) => void): Promise<() => void> {
  const pods = new Map<string, PodView>()
  return await watchEvents(`${peer.apiUrl}/api/v1/namespaces/default/pods?watch=1&labelSelector=app%3D${app}`, peer.token(), e => {
    if (e.type === 'DELETED') pods.delete(e.object.metadata.name)
    else pods.set(e.object.metadata.name, { name: e.object.metadata.name, node: e.object.spec?.nodeName, phase: e.object.status?.phase, deleting: e.object.metadata.deletionTimestamp !== undefined })
  }, at => { onChange(pods, at) })
}

function deployment (name: string, replicas: number, nodeSelector?: Record<string, string>, image = 'busybox'): unknown {
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name },
    spec: {
      replicas,
      selector: { matchLabels: { app: name } },
      template: {
        metadata: { labels: { app: name } },
        spec: { terminationGracePeriodSeconds: 1, ...(nodeSelector !== undefined ? { nodeSelector } : {}), containers: [{ name: 'c', image, command: ['sleep', '600'] }] }
      }
    }
  }
}

/** How long the engine itself takes to create and start `n` pause containers, 16 at a time (then removed). */
async function engineFloor (docker: import('dockerode'), n: number): Promise<number> {
  const ids: string[] = []
  const t0 = performance.now()
  let next = 0
  await Promise.all(Array.from({ length: 16 }, async () => {
    while (next < n) {
      next++
      const c = await docker.createContainer({ Image: 'shoal/pause:1', Cmd: ['/pause'], Labels: { 'shoal.node': 'bench-floor' }, HostConfig: { NetworkMode: 'none' } })
      ids.push(c.id)
      await c.start()
    }
  }))
  const took = performance.now() - t0
  await removeNode(docker, 'bench-floor')
  return took
}

export async function measurePods (opts: { pods: number, trials: number, log: (line: string) => void, runtime?: 'process' | 'docker' }): Promise<PodFigures> {
  const figures: PodFigures = { rescheduleMs: [] }
  const docker = opts.runtime === 'docker'
  const names = IPS.map((_, i) => docker ? `bench-dk${i + 1}` : `p${i + 1}`)
  const args = ['--runtime', docker ? 'docker' : 'process']
  const image = docker ? TEST_IMAGE : 'busybox'
  let engine
  if (docker) {
    const found = await findEngine()
    if (!('engine' in found)) throw new Error(found.why)
    engine = found.engine
    for (const n of names) await removeNode(engine.docker, n)
  }
  const dir = tempDir('benchpods')
  const peers: Peer[] = []
  try {
    const { key, call } = await startPeers(IPS, names, dir, args, peers)

    // --- startup ---
    try {
      const watcher = peers[1] as Peer
      const runningAt = new Map<string, number>()
      const stop = await watchPods(watcher, 'startup', (pods, at) => {
        for (const p of pods.values()) if (p.phase === 'Running' && !runningAt.has(p.name)) runningAt.set(p.name, at)
      })
      const t0 = performance.now()
      const r = await call(peers[0] as Peer, 'POST', '/apis/apps/v1/namespaces/default/deployments', deployment('startup', opts.pods, undefined, image))
      if (r.status !== 201) throw new Error(`creating the deployment: ${r.status}`)
      while (runningAt.size < opts.pods) {
        if (performance.now() - t0 > 60_000) throw new Error(`only ${runningAt.size} of ${opts.pods} pods Running after 60 s`)
        await sleep(20)
      }
      stop()
      const times = [...runningAt.values()].map(t => t - t0)
      figures.startup = { pods: opts.pods, p50: percentile(times, 50), p99: percentile(times, 99), max: Math.max(...times) }
      opts.log(`  pods: ${opts.pods} pods Running after the apply: p50 ${figures.startup.p50.toFixed(0)} ms, p99 ${figures.startup.p99.toFixed(0)} ms`)
      await call(peers[0] as Peer, 'DELETE', '/apis/apps/v1/namespaces/default/deployments/startup')
    } catch (err) {
      figures.startupError = (err as Error).message
    }
    if (engine !== undefined) {
      figures.engineFloorMs = await engineFloor(engine.docker, 2 * opts.pods)
      opts.log(`  pods: the engine alone starts ${2 * opts.pods} containers in ${figures.engineFloorMs.toFixed(0)} ms`)
      return figures
    }

    // --- idle CPU of one agent with 50 pods ---
    try {
      const host = peers[0] as Peer
      figures.rssBeforeMb = vmRssMb(host.proc.pid as number)
      const r = await call(host, 'POST', '/apis/apps/v1/namespaces/default/deployments', deployment('idle', 50, { 'kubernetes.io/hostname': host.name }))
      if (r.status !== 201) throw new Error(`creating the deployment: ${r.status}`)
      const by = Date.now() + 60_000
      for (;;) {
        const pods = ((await call(host, 'GET', '/api/v1/namespaces/default/pods?labelSelector=app%3Didle')).body.items ?? []) as any[]
        if (pods.filter(p => p.status?.phase === 'Running').length === 50) break
        if (Date.now() > by) throw new Error('50 pods were not Running on one peer within 60 s')
        await sleep(200)
      }
      await sleep(3000)
      const pid = host.proc.pid as number
      const before = cpuMs(pid)
      const t = performance.now()
      await sleep(10_000)
      figures.idleCpu = (cpuMs(pid) - before) / (performance.now() - t) * 100
      figures.rssMb = vmRssMb(pid)
      opts.log(`  pods: one peer running 50 idle pods uses ${figures.idleCpu.toFixed(2)} % of a core, VmRSS ${figures.rssMb.toFixed(0)} MB (${figures.rssBeforeMb.toFixed(0)} MB before)`)
      await call(host, 'DELETE', '/apis/apps/v1/namespaces/default/deployments/idle')
    } catch (err) {
      figures.idleError = (err as Error).message
    }

    // --- rescheduling ---
    try {
      const r = await call(peers[0] as Peer, 'POST', '/apis/apps/v1/namespaces/default/deployments', deployment('moving', 6))
      if (r.status !== 201) throw new Error(`creating the deployment: ${r.status}`)
      for (let trial = 0; trial < opts.trials; trial++) {
        // Steady: 6 Running; the victim is a peer (not p1, which the bench talks to) that runs some of them.
        const steadyBy = Date.now() + 60_000
        let victim: Peer | undefined
        for (;;) {
          const pods = ((await call(peers[0] as Peer, 'GET', '/api/v1/namespaces/default/pods?labelSelector=app%3Dmoving')).body.items ?? []) as any[]
          const live = pods.filter(p => p.metadata.deletionTimestamp === undefined && p.status?.phase === 'Running')
          const nodes = new Set(live.map(p => p.spec.nodeName as string))
          victim = [peers[1 + (trial % 2)], peers[2 - (trial % 2)]].find(p => p !== undefined && p.running && nodes.has(p.name))
          if (live.length === 6 && pods.length === 6 && victim !== undefined) break
          if (Date.now() > steadyBy) throw new Error('the deployment did not settle with 6 Running pods within 60 s')
          await sleep(200)
        }
        const watcher = peers.find(p => p !== victim) as Peer
        let doneAt: number | undefined
        const stop = await watchPods(watcher, 'moving', (pods, at) => {
          const live = [...pods.values()].filter(p => !p.deleting && p.phase === 'Running' && p.node !== undefined && p.node !== victim.name)
          if (live.length === 6 && doneAt === undefined) doneAt = at
        })
        await sleep(300) // the watch's initial state, before the kill
        doneAt = undefined
        const t0 = performance.now()
        victim.proc.kill('SIGKILL')
        while (doneAt === undefined) {
          if (performance.now() - t0 > 60_000) throw new Error('the pods did not all run elsewhere within 60 s')
          await sleep(20)
        }
        stop()
        figures.rescheduleMs.push(doneAt - t0)
        opts.log(`  pods: rescheduling ${trial + 1}/${opts.trials}: ${victim.name} killed, 6 pods Running elsewhere after ${(doneAt - t0).toFixed(0)} ms`)
        await victim.exited
        const i = peers.indexOf(victim)
        peers[i] = new Peer({ ...victim.opts, join: peers.filter(p => p !== victim).map(p => p.addr), clusterKey: key })
        await waitStarted(peers[i] as Peer)
        // Move some pods back onto the returned peer: delete the pods of the busiest node, the scheduler spreads their replacements.
        await sleep(1500)
        const pods = ((await call(peers[0] as Peer, 'GET', '/api/v1/namespaces/default/pods?labelSelector=app%3Dmoving')).body.items ?? []) as any[]
        const byNode = new Map<string, string[]>()
        for (const p of pods) byNode.set(p.spec.nodeName, [...(byNode.get(p.spec.nodeName) ?? []), p.metadata.name])
        const busiest = [...byNode.values()].sort((a, b) => b.length - a.length)[0] ?? []
        for (const name of busiest.slice(0, 2)) await call(peers[0] as Peer, 'DELETE', `/api/v1/namespaces/default/pods/${name as string}`)
      }
    } catch (err) {
      figures.rescheduleError = (err as Error).message
      opts.log(`  pods: rescheduling: ${figures.rescheduleError}`)
    }
  } finally {
    await stopAll(peers, dir)
    killPodProcesses(dir)
    if (engine !== undefined) for (const n of names) await removeNode(engine.docker, n)
  }
  return figures
}
