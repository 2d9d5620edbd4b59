// The native runtime's figures for the pods section (issue 16), on three
// real shoald peers (127.0.165.2-4, `--runtime native`) and Debian's
// docker-registry on 127.0.166.2, holding two images built here from the
// host's static busybox: `bench/sleep:1` (one layer, Entrypoint a long
// `sleep`) and `bench/five:1` (the same layer and four of random bytes).
// Measured, in this order: the first pull (one pod of bench/five, cached
// nowhere, from its POST to Running as a watch on a follower sees it; then
// the pull alone and the unpacking alone through daemon/image's
// ImagePuller into fresh caches); pod startup (bench/sleep pulled on every
// peer by one warm-up pod each, then 50 pods of one Deployment, apply to
// Running as a watch on a follower sees it); and the first peer's VmRSS and
// idle CPU with 50 native pods, as pods.ts takes them for host processes.
// Without root, a sandbox host or docker-registry nothing runs and
// `nativeProblem` says why. Every sandbox's cgroup is emptied and removed in
// teardown (a SIGKILLed shoald leaves its sandboxes running).
// May import: daemon/image, daemon/kubelet/native*, daemon/clock,
// test/helpers/cluster.ts, test/helpers/oci-*.ts, ./pods.ts, ./stats.ts.
import { randomBytes } from 'node:crypto'
import { join } from 'node:path'
import { performance } from 'node:perf_hooks'
import { ImagePuller } from '../../daemon/image/puller.ts'
import { detectCgroups } from '../../daemon/kubelet/native/cgroups.ts'
import { checkSandboxHost } from '../../daemon/kubelet/native/sandbox.ts'
import { killStale } from '../../daemon/kubelet/native-runtime.ts'
import { stopAll, tempDir } from '../helpers/cluster.ts'
import type { Peer } from '../helpers/cluster.ts'
import { busyboxRootLayer, imageOf, pushImage, tarOf } from '../helpers/oci-build.ts'
import type { BuiltImage } from '../helpers/oci-build.ts'
import { registryMissing, startRegistry } from '../helpers/oci-registry.ts'
import type { Registry } from '../helpers/oci-registry.ts'
import { killNativeContainers } from '../helpers/native-peer.ts'
import { startPeers, vmRssMb, watchPods } from './pods.ts'
import type { ApiCall } from './pods.ts'
import { cpuMs, percentile, sleep } from './stats.ts'

const IPS = ['127.0.165.2', '127.0.165.3', '127.0.165.4']
const NAMES = ['nat1', 'nat2', 'nat3']
const REGISTRY_IP = '127.0.166.2'
/** The four layers above busybox in bench/five, each this many random (incompressible) bytes. */
const FILLER_BYTES = 4 * 2 ** 20

export interface NativeFigures {
  startup?: { pods: number, p50: number, p99: number, max: number }
  startupError?: string
  /** one pod of a five-layer image cached nowhere, POST to Running */
  firstPull?: { ms: number, layers: number, compressedBytes: number, unpackedBytes: number }
  firstPullError?: string
  /** the same image through ImagePuller alone into fresh caches, and unpacked alone; ms per trial */
  pullAloneMs: number[]
  unpackAloneMs: number[]
  /** the one-layer sleep image unpacked alone into a root, as each native container's start does; ms per trial */
  sleepUnpackMs: number[]
  pullAloneError?: string
  /** the first peer's VmRSS in MB before and with `idlePods` native pods Running, and its idle CPU (% of a core, 10 s) with them */
  idlePods?: number
  rssBeforeMb?: number
  rssMb?: number
  idleCpu?: number
  rssError?: string
}

/** Why the native runtime cannot be measured on this machine, or undefined when it can. */
export function nativeProblem (): string | undefined {
  if (process.getuid?.() !== 0) return 'not root (the sandboxes need namespaces, mounts and cgroups)'
  const missing = registryMissing()
  if (missing !== undefined) return missing
  const host = checkSandboxHost()
  if (host !== true) return host
  try { detectCgroups() } catch (err) { return `no usable cgroups: ${(err as Error).message}` }
  return undefined
}

/** busybox with the applets a shell and `sleep` need, a passwd with nobody, /tmp. */
async function busyboxLayer (): Promise<Buffer> {
  return await busyboxRootLayer(['sh', 'sleep'])
}

const SLEEP_RUN = { Entrypoint: ['/bin/sleep', '86400'], Env: ['PATH=/bin'] }

async function sleepImage (): Promise<BuiltImage> {
  return imageOf([{ tar: await busyboxLayer(), compression: 'gzip' }], 'amd64', SLEEP_RUN)
}

async function fiveLayerImage (): Promise<{ image: BuiltImage, unpackedBytes: number }> {
  const tars = [await busyboxLayer()]
  for (let i = 1; i <= 4; i++) tars.push(await tarOf([{ name: `data/layer-${i}.bin`, body: randomBytes(FILLER_BYTES) }]))
  return {
    image: imageOf(tars.map(tar => ({ tar, compression: 'gzip' as const })), 'amd64', SLEEP_RUN),
    unpackedBytes: tars.reduce((n, t) => n + t.length, 0)
  }
}

function podOf (name: string, app: string, image: string, node?: string): unknown {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, labels: { app } },
    spec: { terminationGracePeriodSeconds: 1, ...(node !== undefined ? { nodeSelector: { 'kubernetes.io/hostname': node } } : {}), containers: [{ name: 'c', image }] }
  }
}

function deploymentOf (name: string, replicas: number, image: string, node?: string): unknown {
  const template = podOf(name, name, image, node) as { metadata: unknown, spec: unknown }
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name },
    spec: { replicas, selector: { matchLabels: { app: name } }, template: { metadata: { labels: { app: name } }, spec: template.spec } }
  }
}

/** Resolves when the watch on `watcher` has seen `n` pods of `app` Running, with each pod's time (performance.now()); bounded. */
async function untilRunning (watcher: Peer, app: string, n: number, boundMs: number, act: () => Promise<void>): Promise<{ t0: number, at: number[] }> {
  const runningAt = new Map<string, number>()
  const stop = await watchPods(watcher, app, (pods, at) => {
    for (const p of pods.values()) if (p.phase === 'Running' && !runningAt.has(p.name)) runningAt.set(p.name, at)
  })
  try {
    const t0 = performance.now()
    await act()
    while (runningAt.size < n) {
      if (performance.now() - t0 > boundMs) throw new Error(`only ${runningAt.size} of ${n} pods Running after ${boundMs / 1000} s`)
      await sleep(20)
    }
    return { t0, at: [...runningAt.values()] }
  } finally {
    stop()
  }
}

/** Resolves when no pod of `app` is left, as `peer` lists them; bounded. */
async function untilGone (call: ApiCall, peer: Peer, app: string, boundMs: number): Promise<void> {
  const by = Date.now() + boundMs
  for (;;) {
    const pods = ((await call(peer, 'GET', `/api/v1/namespaces/default/pods?labelSelector=app%3D${app}`)).body.items ?? []) as unknown[]
    if (pods.length === 0) return
    if (Date.now() > by) throw new Error(`${pods.length} pods of ${app} still there after ${boundMs / 1000} s`)
    await sleep(200)
  }
}

export async function measureNative (opts: { pods: number, idlePods: number, pullTrials: number, log: (line: string) => void }): Promise<NativeFigures> {
  const figures: NativeFigures = { pullAloneMs: [], unpackAloneMs: [], sleepUnpackMs: [] }
  const began = performance.now()
  const layout = detectCgroups()
  const dir = tempDir('benchnative')
  const peers: Peer[] = []
  let registry: Registry | undefined
  try {
    registry = await startRegistry({ ip: REGISTRY_IP })
    const sleepRef = `${registry.host}/bench/sleep:1`
    const fiveRef = `${registry.host}/bench/five:1`
    const five = await fiveLayerImage()
    await pushImage({ url: registry.url }, 'bench/sleep', '1', await sleepImage())
    await pushImage({ url: registry.url }, 'bench/five', '1', five.image)
    const { call } = await startPeers(IPS, NAMES, dir, ['--runtime', 'native', '--dns-port', '0'], peers)
    const [host, watcher, third] = peers as [Peer, Peer, Peer]
    const create = async (path: string, body: unknown): Promise<void> => {
      const r = await call(host, 'POST', path, body)
      if (r.status !== 201) throw new Error(`POST ${path}: ${r.status} ${JSON.stringify(r.body).slice(0, 200)}`)
    }

    // --- first pull: one pod of a five-layer image that no peer has ---
    try {
      const { t0, at } = await untilRunning(watcher, 'first-pull', 1, 60_000, async () => {
        await create('/api/v1/namespaces/default/pods', podOf('first-pull', 'first-pull', fiveRef, third.name))
      })
      figures.firstPull = {
        ms: (at[0] as number) - t0,
        layers: five.image.blobs.length - 1,
        compressedBytes: five.image.blobs.reduce((n, b) => n + b.bytes.length, five.image.manifest.bytes.length),
        unpackedBytes: five.unpackedBytes
      }
      opts.log(`  native: first pull, one pod of a ${figures.firstPull.layers}-layer image (${(figures.firstPull.compressedBytes / 2 ** 20).toFixed(1)} MiB) Running after ${figures.firstPull.ms.toFixed(0)} ms`)
      await call(host, 'DELETE', '/api/v1/namespaces/default/pods/first-pull')
    } catch (err) {
      figures.firstPullError = (err as Error).message
      opts.log(`  native: first pull: ${figures.firstPullError}`)
    }
    try {
      for (let trial = 1; trial <= opts.pullTrials; trial++) {
        const puller = new ImagePuller({ cacheDir: join(dir, `pull-${trial}`) })
        let t = performance.now()
        const image = await puller.pull(fiveRef)
        figures.pullAloneMs.push(performance.now() - t)
        t = performance.now()
        await puller.unpackTo(image, join(dir, `pull-${trial}`, 'root'))
        figures.unpackAloneMs.push(performance.now() - t)
        const small = await puller.pull(sleepRef)
        t = performance.now()
        await puller.unpackTo(small, join(dir, `pull-${trial}`, 'sleep-root'))
        figures.sleepUnpackMs.push(performance.now() - t)
      }
      opts.log(`  native: the pull alone ${figures.pullAloneMs.map(x => x.toFixed(0)).join(', ')} ms; unpacking alone ${figures.unpackAloneMs.map(x => x.toFixed(0)).join(', ')} ms; the sleep image unpacked alone ${figures.sleepUnpackMs.map(x => x.toFixed(0)).join(', ')} ms`)
    } catch (err) {
      figures.pullAloneError = (err as Error).message
    }

    // --- startup, the image cached on every peer ---
    try {
      await untilRunning(watcher, 'warm', peers.length, 60_000, async () => {
        for (const p of peers) await create('/api/v1/namespaces/default/pods', podOf(`warm-${p.name}`, 'warm', sleepRef, p.name))
      })
      for (const p of peers) await call(host, 'DELETE', `/api/v1/namespaces/default/pods/warm-${p.name}`)
      await untilGone(call, host, 'warm', 30_000)
      await untilGone(call, host, 'first-pull', 30_000)
      const { t0, at } = await untilRunning(watcher, 'startup', opts.pods, 90_000, async () => {
        await create('/apis/apps/v1/namespaces/default/deployments', deploymentOf('startup', opts.pods, sleepRef))
      })
      const times = at.map(t => t - t0)
      figures.startup = { pods: opts.pods, p50: percentile(times, 50), p99: percentile(times, 99), max: Math.max(...times) }
      opts.log(`  native: ${opts.pods} pods Running after the apply: p50 ${figures.startup.p50.toFixed(0)} ms, p99 ${figures.startup.p99.toFixed(0)} ms`)
      await call(host, 'DELETE', '/apis/apps/v1/namespaces/default/deployments/startup')
      await untilGone(call, host, 'startup', 60_000)
    } catch (err) {
      figures.startupError = (err as Error).message
      opts.log(`  native: startup: ${figures.startupError}`)
    }

    // --- RSS and idle CPU of the peer that runs 50 native pods, as pods.ts takes them for host processes ---
    try {
      const pid = host.proc.pid as number
      figures.idlePods = opts.idlePods
      figures.rssBeforeMb = vmRssMb(pid)
      await untilRunning(watcher, 'idle', opts.idlePods, 90_000, async () => {
        await create('/apis/apps/v1/namespaces/default/deployments', deploymentOf('idle', opts.idlePods, sleepRef, host.name))
      })
      await sleep(3000)
      const before = cpuMs(pid)
      const t = performance.now()
      await sleep(10_000)
      figures.idleCpu = (cpuMs(pid) - before) / (performance.now() - t) * 100
      figures.rssMb = vmRssMb(pid)
      opts.log(`  native: one peer running ${opts.idlePods} native pods: VmRSS ${figures.rssMb.toFixed(0)} MB (${figures.rssBeforeMb.toFixed(0)} MB before), ${figures.idleCpu.toFixed(2)} % of a core`)
    } catch (err) {
      figures.rssError = (err as Error).message
      opts.log(`  native: rss: ${figures.rssError}`)
    }
  } finally {
    // The daemon clock's timers (killStale's) do not hold the event loop: this does, meanwhile.
    const alive = setInterval(() => {}, 1000)
    try {
      await stopAll(peers)
      for (const p of peers) await killNativeContainers(p.opts.dataDir, layout)
      await stopAll([], dir)
      await registry?.stop()
    } finally {
      clearInterval(alive)
    }
  }
  opts.log(`  native: measured in ${((performance.now() - began) / 1000).toFixed(0)} s`)
  return figures
}
