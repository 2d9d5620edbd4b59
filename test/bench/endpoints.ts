// How fast a pod that turns not-ready leaves every peer's proxy: three real
// shoald peers (127.0.92.2-4, process runtime), a Service over 3 pods whose
// readiness probe checks a file in the container's working directory. Each
// trial removes one pod's file and times, from the moment a watch on the
// leader sees the pod's Ready condition turn False, until a watch on every
// peer has seen the Endpoints lose that address (the proxy takes its table
// from that watch, one microtask later). The file then comes back.
// May import: test/helpers/cluster.ts, ./load.ts, ./stats.ts.
import { rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { performance } from 'node:perf_hooks'
import { api, startCluster, stopAll, waitFor, waitForLeader } from '../helpers/cluster.ts'
import { watchEvents } from './load.ts'
import { sleep } from './stats.ts'

const IPS = ['127.0.92.2', '127.0.92.3', '127.0.92.4']

export async function measureEndpointPropagation (opts: { trials: number, log: (line: string) => void }): Promise<number[]> {
  const { dir, peers } = await startCluster('benchep', IPS, ['--service-cidr', '127.97.92.0/24', '--dns-port', '0'])
  const stops: Array<() => void> = []
  try {
    const leader = await waitForLeader(peers, 60_000)
    await waitFor('three Ready nodes', async () => ((await api(leader, 'GET', '/api/v1/nodes')).body.items ?? []).filter((n: any) => (n.status?.conditions ?? []).some((c: any) => c.type === 'Ready' && c.status === 'True')).length === 3, 60_000)
    await api(leader, 'POST', '/apis/apps/v1/namespaces/default/deployments', {
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: { name: 'flip' },
      spec: {
        replicas: 3,
        selector: { matchLabels: { app: 'flip' } },
        template: {
          metadata: { labels: { app: 'flip' } },
          spec: { terminationGracePeriodSeconds: 1, containers: [{ name: 'c', image: 'busybox', command: ['sh', '-c', 'touch ready; exec sleep 600'], ports: [{ containerPort: 80 }], readinessProbe: { exec: { command: ['test', '-f', 'ready'] }, periodSeconds: 1 } }] }
        }
      }
    })
    await api(leader, 'POST', '/api/v1/namespaces/default/services', { apiVersion: 'v1', kind: 'Service', metadata: { name: 'flip' }, spec: { selector: { app: 'flip' }, ports: [{ port: 80 }] } })
    // Per peer, the addresses its replica's Endpoints list as ready, and when that last changed.
    const views = peers.map(() => ({ ready: new Set<string>(), at: 0 }))
    for (const [i, peer] of peers.entries()) {
      stops.push(await watchEvents(`${peer.apiUrl}/api/v1/namespaces/default/endpoints?watch=1&fieldSelector=metadata.name%3Dflip`, peer.token(), (e, at) => {
        const subsets = ((e.object as any).subsets ?? []) as Array<{ addresses?: Array<{ ip: string }> }>
        views[i]!.ready = new Set(subsets.flatMap(s => (s.addresses ?? []).map(a => a.ip)))
        views[i]!.at = at
      }))
    }
    const notReadyAt = new Map<string, number>()
    stops.push(await watchEvents(`${leader.apiUrl}/api/v1/namespaces/default/pods?watch=1&labelSelector=app%3Dflip`, leader.token(), (e, at) => {
      const status = (e.object as any).status ?? {}
      const ready = (status.conditions ?? []).some((c: any) => c.type === 'Ready' && c.status === 'True')
      if (!ready && status.podIP !== undefined && !notReadyAt.has(status.podIP)) notReadyAt.set(status.podIP, at)
      if (ready) notReadyAt.delete(status.podIP)
    }))
    const pods = await waitFor('3 ready endpoints everywhere', async () => {
      const list = ((await api(leader, 'GET', '/api/v1/namespaces/default/pods?labelSelector=app%3Dflip')).body.items ?? []) as any[]
      return views.every(v => v.ready.size === 3) && list.length === 3 && list
    }, 90_000)
    const times: number[] = []
    for (let trial = 0; trial < opts.trials; trial++) {
      const pod = pods[trial % pods.length]
      const ip = pod.status.podIP as string
      const peerDir = join(dir, pod.spec.nodeName as string)
      const file = join(peerDir, 'pods', pod.metadata.uid as string, 'c', 'ready')
      rmSync(file)
      const t0 = performance.now()
      while (!(notReadyAt.has(ip) && views.every(v => !v.ready.has(ip)))) {
        if (performance.now() - t0 > 30_000) throw new Error(`trial ${trial + 1}: ${ip} still listed after 30 s`)
        await sleep(5)
      }
      const took = Math.max(...views.map(v => v.at)) - (notReadyAt.get(ip) as number)
      times.push(took)
      opts.log(`  network: trial ${trial + 1}: ${ip} left every peer's endpoints ${took.toFixed(0)} ms after it turned not-ready`)
      writeFileSync(file, '')
      await waitFor('the pod ready again everywhere', () => views.every(v => v.ready.has(ip)), 30_000)
    }
    return times
  } finally {
    for (const s of stops) s()
    await stopAll(peers, dir)
  }
}
