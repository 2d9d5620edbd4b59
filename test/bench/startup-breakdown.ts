// Where the time of a pod's start goes: `npx node test/bench/startup-breakdown.ts [native|process] [pods]`
// (default native 50). Three peers (127.0.165.2-4, debug logs) and
// docker-registry on 127.0.166.2 holding a one-layer busybox `sleep` image;
// one warm-up pod per peer pulls it, then one Deployment of `pods` replicas
// is applied. Prints, from a watch on a follower, when the pods were created,
// bound and Running (p50, p99, max after the POST); for native pods each
// peer's container starts from its `kubelet.container.started` events (the
// pull, the root, the sandbox, in ms); and how busy the machine was, and
// shoald's share (CPU ticks of 10 ms, from /proc). Not part of `npm run
// bench`: a tool for finding the next cost to cut. Needs root for native.
// May import: daemon/kubelet/native/cgroups.ts, test/helpers/cluster.ts,
// test/helpers/oci-*.ts, test/helpers/native-peer.ts, ./pods.ts, ./load.ts, ./stats.ts.
import { performance } from 'node:perf_hooks'
import { readFileSync } from 'node:fs'
import { detectCgroups } from '../../daemon/kubelet/native/cgroups.ts'
import { stopAll, tempDir } from '../helpers/cluster.ts'
import type { Peer } from '../helpers/cluster.ts'
import { busyboxRootLayer, imageOf, pushImage } from '../helpers/oci-build.ts'
import { startRegistry } from '../helpers/oci-registry.ts'
import { killNativeContainers } from '../helpers/native-peer.ts'
import { startPeers } from './pods.ts'
import { watchEvents } from './load.ts'
import { percentile, sleep } from './stats.ts'

const runtime = process.argv[2] ?? 'native'
const N = Number(process.argv[3] ?? 50)
const IPS = ['127.0.165.2', '127.0.165.3', '127.0.165.4']
const layout = detectCgroups()
const dir = tempDir('startup-breakdown')
const peers: Peer[] = []
const registry = await startRegistry({ ip: '127.0.166.2' })
const alive = setInterval(() => {}, 1000)
try {
  const tar = await busyboxRootLayer(['sh', 'sleep'])
  await pushImage({ url: registry.url }, 'bench/sleep', '1', imageOf([{ tar, compression: 'gzip' }], 'amd64', { Entrypoint: ['/bin/sleep', '86400'], Env: ['PATH=/bin'] }))
  const ref = `${registry.host}/bench/sleep:1`
  const { call } = await startPeers(IPS, ['nat1', 'nat2', 'nat3'], dir, ['--runtime', runtime, '--dns-port', '0', ...(process.env.BREAKDOWN_QUIET === '1' ? [] : ['--log-level', 'debug'])], peers)
  const [host, watcher] = peers as [Peer, Peer]
  const tmpl = (node?: string) => ({ terminationGracePeriodSeconds: 1, ...(node ? { nodeSelector: { 'kubernetes.io/hostname': node } } : {}), containers: [{ name: 'c', image: ref, ...(runtime !== 'native' ? { command: ['sleep', '600'] } : {}) }] })
  for (const p of peers) await call(host, 'POST', '/api/v1/namespaces/default/pods', { apiVersion: 'v1', kind: 'Pod', metadata: { name: `warm-${p.name}` }, spec: tmpl(p.name) })
  await sleep(5000)
  for (const p of peers) await call(host, 'DELETE', `/api/v1/namespaces/default/pods/warm-${p.name}`)
  await sleep(4000)
  const seen = new Map<string, { created?: number, bound?: number, running?: number, node?: string }>()
  const stop = await watchEvents(`${watcher.apiUrl}/api/v1/namespaces/default/pods?watch=1&labelSelector=app%3Dstartup`, watcher.token(), (e: any) => {
    const at = performance.now()
    const n = e.object.metadata.name
    const v = seen.get(n) ?? {}
    v.created ??= at
    if (e.object.spec?.nodeName) { v.bound ??= at; v.node = e.object.spec.nodeName }
    if (e.object.status?.phase === 'Running') v.running ??= at
    seen.set(n, v)
  }, () => {})
  const cpu = () => { const f = (readFileSync('/proc/stat', 'utf8').split('\n')[0] ?? '').trim().split(/\s+/).slice(1).map(Number); return { total: f.reduce((a, b) => a + b, 0), idle: (f[3] ?? 0) + (f[4] ?? 0) } }
  const pcpu = () => peers.map(p => (readFileSync(`/proc/${p.proc.pid}/stat`, 'utf8').split(') ')[1] ?? '').split(' ').slice(11, 13).map(Number).reduce((a, b) => a + b, 0))
  const c0 = cpu(); const p0 = pcpu()
  const index0 = (await host.raft()).commitIndex
  const t0 = performance.now()
  const tWall = Date.now()
  const r = await call(host, 'POST', '/apis/apps/v1/namespaces/default/deployments', { apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: 'startup' }, spec: { replicas: N, selector: { matchLabels: { app: 'startup' } }, template: { metadata: { labels: { app: 'startup' } }, spec: tmpl() } } })
  if (r.status !== 201) throw new Error(JSON.stringify(r.body))
  while ([...seen.values()].filter(v => v.running !== undefined).length < N && performance.now() - t0 < 60_000) await sleep(20)
  stop()
  const c1 = cpu(); const p1 = pcpu()
  const entries = (await host.raft()).commitIndex - index0
  console.log('machine busy', ((1 - (c1.idle - c0.idle) / (c1.total - c0.total)) * 100).toFixed(0), '% over', (performance.now() - t0).toFixed(0), 'ms; shoald cpu (ticks of 10ms)', p1.map((x, i) => x - (p0[i] as number)).join(' '), 'machine total ticks', c1.total - c0.total, '; log entries committed', entries)
  const vs = [...seen.values()]
  const col = (f: (v: any) => number | undefined) => { const xs = vs.map(f).filter((x): x is number => x !== undefined).map(x => x - t0); return `p50 ${percentile(xs, 50).toFixed(0)} p99 ${percentile(xs, 99).toFixed(0)} max ${Math.max(...xs).toFixed(0)}` }
  console.log('created', col(v => v.created))
  console.log('bound  ', col(v => v.bound))
  console.log('running', col(v => v.running))
  const bound2run = vs.filter(v => v.running && v.bound).map(v => (v.running as number) - (v.bound as number))
  console.log('bound→running p50', percentile(bound2run, 50).toFixed(0), 'p99', percentile(bound2run, 99).toFixed(0))
  for (const p of peers) {
    const ev = p.events().filter(e => e.event === 'kubelet.container.started' && typeof e.time === 'number' && (e.time as number) >= tWall)
    const f = (k: string) => ev.map(e => Number(e[k]))
    console.log(p.name, ev.length, 'started; pullMs p50/max', percentile(f('pullMs'), 50), Math.max(...f('pullMs')), 'root', percentile(f('rootMs'), 50), Math.max(...f('rootMs')), 'sandbox', percentile(f('sandboxMs'), 50), Math.max(...f('sandboxMs')),
      'at (ms after POST) first/last', Math.min(...ev.map(e => (e.time as number) - tWall)), Math.max(...ev.map(e => (e.time as number) - tWall)))
  }
} finally {
  await stopAll(peers)
  for (const p of peers) await killNativeContainers(p.opts.dataDir, layout)
  await stopAll([], dir)
  await registry.stop()
  clearInterval(alive)
}
