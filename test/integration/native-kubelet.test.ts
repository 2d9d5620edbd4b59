// The kubelet with the native runtime, over an in-process store: the tests of
// docker-kubelet.test.ts that apply to it, and more of what a kubelet must do
// (init containers, restart policies, env and the downward API, configMap,
// secret and emptyDir volumes, previous logs), each pod run from an OCI image
// built here from the host's static busybox and served by Debian's
// docker-registry on 127.0.167.2. Native pods share the host's network and
// bind to their POD_IP (the node's range, a /24 of 127.64.0.0/10 hashed from
// the node's name). The image has no USER, so its containers run as nobody.
// Each test is its own node (its own data directory and pod range); its
// kubelets are stopped, and every container it started is killed and its
// cgroup removed, in teardown. Without root, a usable sandbox host or
// docker-registry the tests are skipped (failed in CI).
// Not ported from the Docker test: the Docker labels and `docker inspect`
// (the limits are read from the container's cgroup instead), and a pull from
// registry.invalid (a DNS lookup leaving loopback; a repository missing from
// the local registry stands for it).
import test from 'ava'
import type { ExecutionContext } from 'ava'
import { randomBytes } from 'node:crypto'
import { existsSync } from 'node:fs'
import { readdir, readFile, stat } from 'node:fs/promises'
import { join } from 'node:path'
import { systemClock } from '../../daemon/clock/clock.ts'
import type { Kubelet } from '../../daemon/kubelet/kubelet.ts'
import { detectCgroups } from '../../daemon/kubelet/native/cgroups.ts'
import type { CgroupLayout } from '../../daemon/kubelet/native/cgroups.ts'
import { ImagePuller } from '../../daemon/image/puller.ts'
import { killStale, NativeRuntime } from '../../daemon/kubelet/native-runtime.ts'
import { createLogger } from '../../daemon/log/log.ts'
import { configMap, NOW, pod, ref } from '../../daemon/store/testing.ts'
import type { KObject } from '../../protocol/k8s.ts'
import { expectCrashLoop, getPod, kubeletEnv, main, waitFor } from '../helpers/kubelet.ts'
import type { KubeletEnv, Obj } from '../helpers/kubelet.ts'
import { busyboxRootLayer, imageOf, pushImage, tarOf } from '../helpers/oci-build.ts'
import { startRegistry } from '../helpers/oci-registry.ts'
import type { Registry } from '../helpers/oci-registry.ts'
import { nativeProblem, nativeTest } from '../helpers/native.ts'
import { killNativeContainers } from '../helpers/native-peer.ts'

const REGISTRY_IP = '127.0.167.2'

// The daemon clock's timers (killStale, log follow, the sandboxes' polls) are not ref'd: keep the process alive meanwhile.
const alive = setInterval(() => {}, 1000)
test.after.always(() => { clearInterval(alive) })

let registry: Registry | undefined
let layout: CgroupLayout | undefined
let IMAGE = ''

const APPLETS = ['sh', 'httpd', 'cat', 'echo', 'sleep', 'mkdir', 'touch', 'ls', 'id', 'hostname', 'true', 'false', 'env', 'head', 'tail', 'test', 'kill', 'wc', 'rm', 'ln']

test.before(async () => {
  if (nativeProblem !== undefined) return
  layout = detectCgroups()
  registry = await startRegistry({ ip: REGISTRY_IP })
  const tar = await busyboxRootLayer(APPLETS)
  await pushImage({ url: registry.url }, 'busybox', 'latest', imageOf([{ tar, compression: 'gzip' }], 'amd64', { Cmd: ['sh'], Env: ['PATH=/bin'] }))
  await pushImage({ url: registry.url }, 'other', '1', imageOf([{ tar, compression: 'gzip' }, { tar: await tarOf([{ name: 'other.txt', body: 'other\n' }]), compression: 'gzip' }], 'amd64', { Cmd: ['sh'], Env: ['PATH=/bin'] }))
  IMAGE = `${registry.host}/busybox`
})

test.after.always(async () => { await registry?.stop() })

interface NativeEnv extends KubeletEnv { node: string, start: () => Promise<Kubelet>, runtime: () => NativeRuntime }

/** The cgroup directories of container `id` (one per v1 hierarchy). */
function cgroupDirs (id: string): string[] {
  const l = layout as CgroupLayout
  return l.version === 2 ? [join(l.root, 'shoal', id)] : [...new Set(Object.values(l.mounts).map(m => join(m, 'shoal', id)))]
}

async function nativeEnv (t: ExecutionContext): Promise<NativeEnv> {
  t.timeout(120_000)
  // A node name that is one cgroup-safe, path-safe element, and a pod range of its own.
  const node = `nk-${randomBytes(3).toString('hex')}`
  const e = await kubeletEnv(t, node)
  const kubelets: Kubelet[] = []
  // ava runs teardowns last-registered first: this one before kubeletEnv's, which removes the data directory.
  t.teardown(async () => {
    for (const k of kubelets) await k.stop()
    await killNativeContainers(e.dir, layout as CgroupLayout)
  })
  let last: NativeRuntime | undefined
  const runtime = (): NativeRuntime => (last = new NativeRuntime({ nodeName: node, dataDir: e.dir, clock: systemClock, log: createLogger('silent', 'test'), layout: layout as CgroupLayout, adoptPollMs: 100 }))
  return {
    ...e,
    node,
    runtime: () => last ?? runtime(),
    start: async () => {
      const k = await e.kubelet({ runtime: runtime() })
      kubelets.push(k)
      return k
    }
  }
}

function npod (node: string, name: string, containers: Obj[], extra: Obj = {}): KObject {
  const p = pod(name, { nodeName: node })
  return { ...p, spec: { nodeName: node, terminationGracePeriodSeconds: 1, containers: containers.map(c => ({ image: IMAGE, ...c })), ...extra } }
}

// /tmp is the container's own tmpfs, writable by nobody; the address is the pod's, not every address of the host.
const HTTPD = ['sh', '-c', 'mkdir -p /tmp/www && echo hello > /tmp/www/index.html && exec httpd -f -p "$POD_IP:8080" -h /tmp/www']

function running (e: NativeEnv, name: string, ms = 60_000): Promise<Obj> {
  return waitFor(`${name} Running`, () => {
    const p = getPod(e.h, name)
    const s = main(p)?.state
    if (s?.terminated !== undefined && p?.spec?.restartPolicy === 'Never') throw new Error(`${name} ended: ${JSON.stringify(s)}`)
    return p?.status?.phase === 'Running' && s?.running !== undefined && p
  }, ms)
}

async function httpGet (url: string): Promise<string> {
  return await waitFor(`an HTTP answer at ${url}`, async () => {
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(2000) })
      return res.ok ? await res.text() : undefined
    } catch { return undefined }
  }, 30_000)
}

function idOf (status: Obj | undefined): string {
  return String(status?.containerID).replace(/^native:\/\//, '')
}

/** Every log line the kubelet has for `container` once it has at least `lines` lines. */
async function logLines (k: Kubelet, name: string, container: string, lines: number, opts: { previous?: boolean } = {}): Promise<string> {
  return await waitFor(`${lines} lines of ${name}/${container}'s log`, async () => {
    const s = await k.logs('default', name, container, opts).catch(() => '')
    return s.split('\n').length > lines && s.endsWith('\n') && s
  })
}

const gone = async (path: string): Promise<boolean> => await stat(path).then(() => false, () => true)

// ---- ported from docker-kubelet.test.ts --------------------------------------

nativeTest('a busybox httpd pod runs: Running, its own address in the node range, and it answers HTTP there', async t => {
  const e = await nativeEnv(t)
  await e.start()
  e.h.create(npod(e.node, 'web', [{ name: 'httpd', command: HTTPD }]))
  const p = await running(e, 'web')
  const ip = p.status.podIP as string
  t.regex(ip, /^127\./)
  t.regex(main(p)?.containerID, /^native:\/\/[0-9a-f]{16}$/)
  t.regex(main(p)?.imageID, new RegExp(`^${IMAGE.replace(/\./g, '\\.')}@sha256:[0-9a-f]{64}$`))
  t.is((await httpGet(`http://${ip}:8080/`)).trim(), 'hello')
  const recs = (await e.runtime().listContainers()).filter(r => r.podUid === p.metadata.uid)
  t.deepEqual(recs.map(r => [r.containerName, r.state]), [['httpd', 'running']])
  t.true(cgroupDirs(idOf(main(p))).every(d => existsSync(d)), 'the container has its cgroup')
})

nativeTest('a container that exits 1 with restartPolicy Always: growing restart counts and CrashLoopBackOff', async t => {
  const e = await nativeEnv(t)
  await e.start()
  e.h.create(npod(e.node, 'crash', [{ name: 'main', command: ['sh', '-c', 'echo boom; exit 1'] }]))
  const cs = await expectCrashLoop(t, e.h, 'crash')
  t.is(getPod(e.h, 'crash')?.status?.phase, 'Running')
  t.true(cs.restartCount >= 3)
  const k = e.runtime()
  // The latest attempt that ended (a newer one may have just started, with nothing written yet).
  t.regex(await k.logs((await k.listContainers()).filter(r => r.containerName === 'main' && r.state === 'exited').at(-1)!.id), /boom/)
})

nativeTest('a failing liveness probe restarts the container; a failing readiness probe keeps the pod not Ready', async t => {
  const e = await nativeEnv(t)
  await e.start()
  e.h.create(npod(e.node, 'sick', [{ name: 'main', command: ['sleep', '600'], livenessProbe: { exec: { command: ['cat', '/tmp/healthy'] }, periodSeconds: 1, failureThreshold: 1 } }]))
  e.h.create(npod(e.node, 'unready', [{ name: 'main', command: HTTPD, readinessProbe: { httpGet: { path: '/', port: 9999 }, periodSeconds: 1 } }]))
  const sick = await waitFor('a liveness restart', () => { const c = main(getPod(e.h, 'sick')); return c !== undefined && c.restartCount >= 1 && c }, 60_000)
  t.true(sick.lastState.terminated.exitCode === 137 || sick.lastState.terminated.exitCode === 143, String(sick.lastState.terminated.exitCode))
  const unready = await waitFor('unready Running', () => { const p = getPod(e.h, 'unready'); return p?.status?.phase === 'Running' && main(p)?.started === true && p }, 60_000)
  // It does serve, on 8080: only the probe's port is wrong.
  t.is((await httpGet(`http://${unready.status.podIP as string}:8080/`)).trim(), 'hello')
  await new Promise(resolve => setTimeout(resolve, 2500))
  const again = getPod(e.h, 'unready') as Obj
  t.is(main(again)?.ready, false)
  t.is(again.status.conditions.find((c: Obj) => c.type === 'Ready')?.status, 'False')
  t.is(main(again)?.restartCount, 0, 'readiness never restarts')
})

nativeTest('passing exec liveness and httpGet readiness probes: Ready, no restarts', async t => {
  const e = await nativeEnv(t)
  await e.start()
  e.h.create(npod(e.node, 'healthy', [{
    name: 'main',
    command: HTTPD,
    ports: [{ name: 'http', containerPort: 8080 }],
    livenessProbe: { exec: { command: ['test', '-f', '/tmp/www/index.html'] }, initialDelaySeconds: 1, periodSeconds: 1, failureThreshold: 2 },
    readinessProbe: { httpGet: { path: '/', port: 'http' }, periodSeconds: 1 }
  }]))
  const p = await waitFor('Ready', () => { const p = getPod(e.h, 'healthy'); return p?.status?.conditions?.find((c: Obj) => c.type === 'Ready')?.status === 'True' && p }, 60_000)
  t.is(main(p)?.ready, true)
  await new Promise(resolve => setTimeout(resolve, 3000))
  const again = getPod(e.h, 'healthy') as Obj
  t.is(main(again)?.restartCount, 0, 'the liveness probe passes')
  t.is(main(again)?.ready, true)
  t.is(main(again)?.containerID, main(p)?.containerID)
})

nativeTest('a ConfigMap mounted as a file is readable inside; the limits are set on the container\'s cgroup; exec returns the exit status', async t => {
  const e = await nativeEnv(t)
  const k = await e.start()
  e.h.create(configMap('cfg', { 'app.conf': 'mode=native\n' }))
  e.h.create(npod(e.node, 'conf', [{
    name: 'main',
    command: ['sleep', '600'],
    volumeMounts: [{ name: 'cfg', mountPath: '/etc/app' }],
    resources: { limits: { memory: '48Mi', cpu: '250m' } }
  }], { volumes: [{ name: 'cfg', configMap: { name: 'cfg' } }] }))
  const p = await running(e, 'conf')
  const cat = await k.exec('default', 'conf', 'main', ['cat', '/etc/app/app.conf'])
  t.is(cat.exitCode, 0, cat.stderr)
  t.is(cat.stdout, 'mode=native\n')
  // No /sys inside the sandbox: the kernel's view, from the host.
  const id = idOf(main(p))
  const l = layout as CgroupLayout
  if (l.version === 2) {
    const dir = join(l.root, 'shoal', id)
    t.is((await readFile(join(dir, 'memory.max'), 'utf8')).trim(), String(48 * 1024 * 1024))
    t.is((await readFile(join(dir, 'cpu.max'), 'utf8')).trim(), '25000 100000')
  } else {
    t.is((await readFile(join(l.mounts.memory, 'shoal', id, 'memory.limit_in_bytes'), 'utf8')).trim(), String(48 * 1024 * 1024))
    t.is((await readFile(join(l.mounts.cpu, 'shoal', id, 'cpu.cfs_quota_us'), 'utf8')).trim(), '25000')
    t.is((await readFile(join(l.mounts.cpu, 'shoal', id, 'cpu.cfs_period_us'), 'utf8')).trim(), '100000')
  }
  // exec runs in the container's cgroup too.
  const procs = l.version === 2 ? join(l.root, 'shoal', id, 'cgroup.procs') : join(l.mounts.memory, 'shoal', id, 'cgroup.procs')
  const inside = await k.exec('default', 'conf', 'main', ['sh', '-c', 'echo $$; sleep 0.5'])
  t.is(inside.exitCode, 0, inside.stderr)
  t.truthy(inside.stdout.trim())
  t.true((await readFile(procs, 'utf8')).split('\n').length >= 2)
  const fail = await k.exec('default', 'conf', 'main', ['sh', '-c', 'echo out; echo err >&2; exit 7'])
  t.deepEqual(fail, { exitCode: 7, stdout: 'out\n', stderr: 'err\n' })
  const missing = await k.exec('default', 'conf', 'main', ['no-such-command'])
  t.is(missing.exitCode, 127)
})

nativeTest('deleting a pod stops its containers and removes them, their roots, cgroups, logs and the pod\'s directory', async t => {
  const e = await nativeEnv(t)
  await e.start()
  e.h.create(npod(e.node, 'gone', [{ name: 'a', command: ['sleep', '600'] }, { name: 'b', command: HTTPD }], { volumes: [{ name: 'scratch', emptyDir: {} }] }))
  const p = await waitFor('Running', () => { const p = getPod(e.h, 'gone'); return p?.status?.phase === 'Running' && p.status.containerStatuses?.every((c: Obj) => c.state?.running !== undefined) && p }, 60_000)
  const uid = p.metadata.uid as string
  const made = (await e.runtime().listContainers()).filter(r => r.podUid === uid)
  t.is(made.length, 2, made.map(r => `${r.containerName} ${r.state}`).join('; '))
  const ids = made.map(r => r.id)
  await httpGet(`http://${p.status.podIP as string}:8080/`)
  e.h.ok(e.h.apply({ op: 'delete', ref: ref('pods', 'gone', 'default'), now: NOW }))
  await waitFor('the pod gone from the store', () => getPod(e.h, 'gone') === undefined, 30_000)
  await waitFor('no containers', async () => (await e.runtime().listContainers()).every(r => r.podUid !== uid), 30_000)
  await waitFor('the pod\'s directory removed', async () => await gone(join(e.dir, 'pods', uid)), 10_000)
  for (const id of ids) {
    t.true(await gone(join(e.dir, 'native', 'roots', id)), `root of ${id}`)
    t.true(await gone(join(e.dir, 'native', 'containers', `${id}.json`)), `record of ${id}`)
    t.true(cgroupDirs(id).every(d => !existsSync(d)), `cgroup of ${id}`)
  }
  const stillServing = await fetch(`http://${p.status.podIP as string}:8080/`, { signal: AbortSignal.timeout(1000) }).then(() => true, () => false)
  t.false(stillServing, 'httpd was stopped')
})

nativeTest('a restarted kubelet adopts the containers it left running: same ids, no duplicates', async t => {
  const e = await nativeEnv(t)
  const first = await e.start()
  e.h.create(npod(e.node, 'keep', [{ name: 'main', command: HTTPD }]))
  const p = await running(e, 'keep')
  const before = (await e.runtime().listContainers()).filter(r => r.podUid === p.metadata.uid).map(r => r.id).sort()
  await first.stop()
  const second = await e.start()
  await new Promise(resolve => setTimeout(resolve, 1500))
  const after = (await e.runtime().listContainers()).filter(r => r.podUid === p.metadata.uid && r.state === 'running').map(r => r.id).sort()
  t.deepEqual(after, before)
  const again = getPod(e.h, 'keep') as Obj
  t.is(main(again)?.containerID, main(p)?.containerID)
  t.is(main(again)?.restartCount, 0)
  t.is(again.status.podIP, p.status.podIP)
  t.is((await second.exec('default', 'keep', 'main', ['true'])).exitCode, 0)
  t.is((await httpGet(`http://${p.status.podIP as string}:8080/`)).trim(), 'hello')
})

nativeTest('a missing image gives ErrImagePull, then ImagePullBackOff, and the kubelet carries on', async t => {
  const e = await nativeEnv(t)
  await e.start()
  const missing = `${(registry as Registry).host}/shoal/none:1`
  e.h.create(npod(e.node, 'noimage', [{ name: 'main', image: missing, command: ['true'] }]))
  const seen = new Set<string>()
  await waitFor('ErrImagePull and ImagePullBackOff', () => {
    const w = main(getPod(e.h, 'noimage'))?.state?.waiting
    if (w?.reason !== undefined) seen.add(w.reason)
    return seen.has('ErrImagePull') && seen.has('ImagePullBackOff')
  }, 60_000).catch(() => undefined)
  t.true(seen.has('ErrImagePull'), [...seen].join(', '))
  t.true(seen.has('ImagePullBackOff'), [...seen].join(', '))
  t.true((main(getPod(e.h, 'noimage'))?.state?.waiting?.message ?? '').includes(missing), main(getPod(e.h, 'noimage'))?.state?.waiting?.message)
  e.h.create(npod(e.node, 'never', [{ name: 'main', image: `${(registry as Registry).host}/shoal/absent:1`, imagePullPolicy: 'Never', command: ['true'] }]))
  const w = await waitFor('ErrImageNeverPull', () => main(getPod(e.h, 'never'))?.state?.waiting?.reason === 'ErrImageNeverPull' && main(getPod(e.h, 'never')))
  t.regex(w.state.waiting.message, /pull policy is Never/)
  // It still runs other pods.
  e.h.create(npod(e.node, 'fine', [{ name: 'main', command: ['sleep', '600'] }]))
  const fine = await running(e, 'fine')
  t.not(main(fine)?.state?.running, undefined)
  t.is(main(getPod(e.h, 'never'))?.state?.waiting?.reason, 'ErrImageNeverPull', 'and the other still waits')
})

nativeTest('logs follow a container as it writes, and end when it exits; tailLines gives the last lines', async t => {
  const e = await nativeEnv(t)
  const k = await e.start()
  e.h.create(npod(e.node, 'ticker', [{ name: 'main', command: ['sh', '-c', 'i=0; while [ $i -lt 20 ]; do echo line $i; i=$((i+1)); sleep 0.1; done'] }], { restartPolicy: 'Never' }))
  await waitFor('Running or done', () => ['Running', 'Succeeded'].includes(getPod(e.h, 'ticker')?.status?.phase) || undefined, 60_000)
  const stream = await k.logStream('default', 'ticker', 'main', { follow: true })
  let text = ''
  for await (const chunk of stream) text += String(chunk)
  t.deepEqual(text.trim().split('\n'), Array.from({ length: 20 }, (_, i) => `line ${i}`))
  await waitFor('Succeeded', () => getPod(e.h, 'ticker')?.status?.phase === 'Succeeded')
  t.is(await k.logs('default', 'ticker', 'main', { tailLines: 2 }), 'line 18\nline 19\n')
})

// ---- more of the kubelet, on the native runtime --------------------------------

nativeTest('init containers run in order, each to completion, before the app container', async t => {
  const e = await nativeEnv(t)
  const k = await e.start()
  const seen: string[] = []
  e.h.create(npod(e.node, 'init', [{
    name: 'main', command: ['sh', '-c', 'echo app >> /work/order; cat /work/order; exec sleep 600'], volumeMounts: [{ name: 'work', mountPath: '/work' }]
  }], {
    volumes: [{ name: 'work', emptyDir: {} }],
    initContainers: [
      { name: 'init-1', image: IMAGE, command: ['sh', '-c', 'sleep 0.3; [ -f /work/order ] && exit 9; echo one >> /work/order'], volumeMounts: [{ name: 'work', mountPath: '/work' }] },
      { name: 'init-2', image: IMAGE, command: ['sh', '-c', 'sleep 0.3; [ "$(cat /work/order)" = one ] || exit 9; echo two >> /work/order'], volumeMounts: [{ name: 'work', mountPath: '/work' }] }
    ]
  }))
  await waitFor('Running', () => {
    const p = getPod(e.h, 'init')
    const w = main(p)?.state?.waiting?.reason
    if (w !== undefined && seen.at(-1) !== w) seen.push(w)
    return p?.status?.phase === 'Running' && main(p)?.state?.running !== undefined && p
  }, 60_000)
  t.is(await logLines(k, 'init', 'main', 3), 'one\ntwo\napp\n')
  const p = getPod(e.h, 'init') as Obj
  const inits = p.status.initContainerStatuses as Obj[]
  t.deepEqual(inits.map(s => [s.name, s.state?.terminated?.exitCode, s.state?.terminated?.reason, s.restartCount]), [['init-1', 0, 'Completed', 0], ['init-2', 0, 'Completed', 0]])
  t.true(Date.parse(inits[0]!.state.terminated.finishedAt) <= Date.parse(inits[1]!.state.terminated.startedAt), 'init-2 started after init-1 finished')
  t.true(seen.every(r => r === 'PodInitializing' || r === 'ContainerCreating'), seen.join(', '))
})

nativeTest('a symlink planted in an emptyDir is not followed out of it by a subPath mount (CVE-2017-1002101)', async t => {
  const e = await nativeEnv(t)
  await e.start()
  e.h.create(npod(e.node, 'esc', [{
    name: 'main', command: ['sh', '-c', 'ls /host; exec sleep 600'], volumeMounts: [{ name: 'work', mountPath: '/host', subPath: 'escape' }]
  }], {
    volumes: [{ name: 'work', emptyDir: {} }],
    initContainers: [{ name: 'plant', image: IMAGE, command: ['ln', '-s', '/', '/work/escape'], volumeMounts: [{ name: 'work', mountPath: '/work' }] }]
  }))
  const p = await waitFor('the main container refused', () => {
    const s = main(getPod(e.h, 'esc'))
    const why = s?.lastState?.terminated ?? s?.state?.terminated
    return why?.reason === 'ContainerCannotRun' && why
  }, 60_000)
  t.regex(p.message ?? '', /outside the pod's volumes/)
  t.not(main(getPod(e.h, 'esc'))?.state?.running !== undefined, true, 'it never ran with the host\'s / mounted')
})

nativeTest('restartPolicy Never: exit 0 is Succeeded/Completed, exit 3 is Failed/Error; OnFailure restarts a failure and stops after success', async t => {
  const e = await nativeEnv(t)
  await e.start()
  e.h.create(npod(e.node, 'ok', [{ name: 'main', command: ['sh', '-c', 'exit 0'] }], { restartPolicy: 'Never' }))
  e.h.create(npod(e.node, 'bad', [{ name: 'main', command: ['sh', '-c', 'exit 3'] }], { restartPolicy: 'Never' }))
  // Fails the first time, succeeds the second: the emptyDir outlives the attempt (each attempt has a fresh root).
  e.h.create(npod(e.node, 'job', [{
    name: 'main', command: ['sh', '-c', 'if [ -f /state/ran ]; then exit 0; fi; touch /state/ran; exit 2'], volumeMounts: [{ name: 'state', mountPath: '/state' }]
  }], { restartPolicy: 'OnFailure', volumes: [{ name: 'state', emptyDir: {} }] }))
  const ok = await waitFor('Succeeded', () => getPod(e.h, 'ok')?.status?.phase === 'Succeeded' && getPod(e.h, 'ok'), 60_000)
  t.is(main(ok)?.state?.terminated?.exitCode, 0)
  t.is(main(ok)?.state?.terminated?.reason, 'Completed')
  t.is(main(ok)?.restartCount, 0)
  const bad = await waitFor('Failed', () => getPod(e.h, 'bad')?.status?.phase === 'Failed' && getPod(e.h, 'bad'), 60_000)
  t.is(main(bad)?.state?.terminated?.exitCode, 3)
  t.is(main(bad)?.state?.terminated?.reason, 'Error')
  t.is(main(bad)?.restartCount, 0)
  t.is((bad.status.conditions as Obj[]).find(c => c.type === 'Ready')?.status, 'False')
  const job = await waitFor('job Succeeded', () => getPod(e.h, 'job')?.status?.phase === 'Succeeded' && getPod(e.h, 'job'), 60_000)
  t.is(main(job)?.restartCount, 1)
  t.is(main(job)?.lastState?.terminated?.exitCode, 2)
  t.is(main(job)?.state?.terminated?.exitCode, 0)
  // Finished: nothing of theirs runs.
  await new Promise(resolve => setTimeout(resolve, 1000))
  t.deepEqual((await e.runtime().listContainers()).filter(r => r.state === 'running'), [])
})

nativeTest('env: values, configMap and secret keys, and the downward API (name, namespace, uid, node, IP, labels)', async t => {
  const e = await nativeEnv(t)
  const k = await e.start()
  e.h.create(configMap('cfg', { greeting: 'hello' }))
  e.h.create({ apiVersion: 'v1', kind: 'Secret', metadata: { name: 'creds', namespace: 'default' }, data: { token: Buffer.from('t0ken').toString('base64') } })
  const base = npod(e.node, 'envy', [{
    name: 'main',
    command: ['sh', '-c', 'echo "$MODE|$GREETING|$TOKEN|$MY_NAME|$MY_NS|$MY_UID|$MY_NODE|$MY_IP|$POD_IP|$APP|$HOSTNAME"; exec sleep 600'],
    env: [
      { name: 'MODE', value: 'prod' },
      { name: 'GREETING', valueFrom: { configMapKeyRef: { name: 'cfg', key: 'greeting' } } },
      { name: 'TOKEN', valueFrom: { secretKeyRef: { name: 'creds', key: 'token' } } },
      { name: 'MY_NAME', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } },
      { name: 'MY_NS', valueFrom: { fieldRef: { fieldPath: 'metadata.namespace' } } },
      { name: 'MY_UID', valueFrom: { fieldRef: { fieldPath: 'metadata.uid' } } },
      { name: 'MY_NODE', valueFrom: { fieldRef: { fieldPath: 'spec.nodeName' } } },
      { name: 'MY_IP', valueFrom: { fieldRef: { fieldPath: 'status.podIP' } } },
      { name: 'APP', valueFrom: { fieldRef: { fieldPath: "metadata.labels['app']" } } }
    ]
  }])
  const created = e.h.create({ ...base, metadata: { ...base.metadata, labels: { app: 'envy-app' } } } as KObject)
  const p = await running(e, 'envy')
  const ip = p.status.podIP as string
  t.is(await logLines(k, 'envy', 'main', 1), `prod|hello|t0ken|envy|default|${created.metadata.uid as string}|${e.node}|${ip}|${ip}|envy-app|envy\n`)
  const r = await k.exec('default', 'envy', 'main', ['sh', '-c', 'echo "$MY_NAME $GREETING"; exit 4'], 5000)
  t.deepEqual(r, { exitCode: 4, stdout: 'envy hello\n', stderr: '' }, 'exec sees the container\'s environment')
  // A missing key waits, then runs once it is there.
  e.h.create(npod(e.node, 'waits', [{ name: 'main', command: ['sleep', '600'], env: [{ name: 'X', valueFrom: { configMapKeyRef: { name: 'later', key: 'x' } } }] }]))
  const waiting = await waitFor('CreateContainerConfigError', () => main(getPod(e.h, 'waits'))?.state?.waiting as Obj | undefined)
  t.is(waiting.reason, 'CreateContainerConfigError')
  e.h.create(configMap('later', { x: '1' }))
  await running(e, 'waits')
  t.is((await k.exec('default', 'waits', 'main', ['sh', '-c', 'echo $X'])).stdout, '1\n')
})

nativeTest('configMap and secret volumes at their mount paths, read-only; an update of the configMap reaches the file', async t => {
  const e = await nativeEnv(t)
  const k = await e.start()
  e.h.create(configMap('settings', { greeting: 'hello', mode: 'prod', unused: 'x' }))
  e.h.create({ apiVersion: 'v1', kind: 'Secret', metadata: { name: 'creds', namespace: 'default' }, data: { password: Buffer.from('s3cr3t!').toString('base64') } })
  const created = e.h.create(npod(e.node, 'vols', [{
    name: 'main',
    command: ['sh', '-c', 'cat /etc/config/greeting; echo; cat /etc/config/nested/mode; echo; cat /run/secrets/password; echo; exec sleep 600'],
    volumeMounts: [{ name: 'config', mountPath: '/etc/config' }, { name: 'creds', mountPath: '/run/secrets', readOnly: true }]
  }], {
    volumes: [
      { name: 'config', configMap: { name: 'settings', items: [{ key: 'greeting', path: 'greeting' }, { key: 'mode', path: 'nested/mode' }] } },
      { name: 'creds', secret: { secretName: 'creds' } }
    ]
  }))
  await running(e, 'vols')
  t.is(await logLines(k, 'vols', 'main', 3), 'hello\nprod\ns3cr3t!\n')
  t.is((await k.exec('default', 'vols', 'main', ['ls', '/etc/config'])).stdout.split('\n').filter(l => l !== '').sort().join(','), 'greeting,nested', 'only the listed items')
  const write = await k.exec('default', 'vols', 'main', ['sh', '-c', 'echo x > /etc/config/new'])
  t.not(write.exitCode, 0)
  t.regex(write.stderr, /Read-only file system/)
  e.h.ok(e.h.apply({ op: 'patch', ref: ref('configmaps', 'settings', 'default'), patchType: 'merge', patch: { data: { greeting: 'bonjour' } }, now: NOW }))
  const seen = await waitFor('the update inside the container', async () => {
    const r = await k.exec('default', 'vols', 'main', ['cat', '/etc/config/greeting'])
    return r.stdout === 'bonjour' && r.stdout
  }, 20_000)
  t.is(seen, 'bonjour')
  t.is(main(getPod(e.h, 'vols'))?.restartCount, 0, 'no restart for a refresh')
  // A secret's file on the host: defaultMode 0644 by default.
  t.is((await stat(join(e.dir, 'pods', created.metadata.uid as string, 'volumes', 'creds', 'password'))).mode & 0o777, 0o644)
})

nativeTest('an emptyDir shared by two containers of one pod, writable by their user, removed with the pod', async t => {
  const e = await nativeEnv(t)
  const k = await e.start()
  const created = e.h.create(npod(e.node, 'pair', [
    { name: 'writer', command: ['sh', '-c', 'echo hi from writer > /shared/msg; exec sleep 600'], volumeMounts: [{ name: 'scratch', mountPath: '/shared' }] },
    { name: 'reader', command: ['sh', '-c', 'i=0; while [ ! -f /data/msg ] && [ $i -lt 300 ]; do sleep 0.1; i=$((i+1)); done; cat /data/msg; exec sleep 600'], volumeMounts: [{ name: 'scratch', mountPath: '/data' }] }
  ], { volumes: [{ name: 'scratch', emptyDir: {} }] }))
  await running(e, 'pair')
  t.is(await logLines(k, 'pair', 'reader', 1), 'hi from writer\n')
  const back = await k.exec('default', 'pair', 'reader', ['sh', '-c', 'echo reply > /data/reply && cat /data/msg'])
  t.is(back.exitCode, 0, back.stderr)
  t.is((await k.exec('default', 'pair', 'writer', ['cat', '/shared/reply'])).stdout, 'reply\n')
  const dir = join(e.dir, 'pods', created.metadata.uid as string, 'volumes', 'scratch')
  t.is(await readFile(join(dir, 'msg'), 'utf8'), 'hi from writer\n')
  e.h.ok(e.h.apply({ op: 'delete', ref: ref('pods', 'pair', 'default'), now: NOW }))
  await waitFor('the volume to go', async () => await gone(dir), 30_000)
  t.false(existsSync(dir))
})

nativeTest('logs: the current attempt, and the previous one after a restart', async t => {
  const e = await nativeEnv(t)
  const k = await e.start()
  e.h.create(npod(e.node, 'talk', [{
    name: 'main',
    command: ['sh', '-c', 'if [ -f /state/ran ]; then echo second; exec sleep 600; fi; touch /state/ran; echo first; echo bye; exit 1'],
    volumeMounts: [{ name: 'state', mountPath: '/state' }]
  }], { volumes: [{ name: 'state', emptyDir: {} }] }))
  await waitFor('the restart', () => main(getPod(e.h, 'talk'))?.restartCount === 1 && main(getPod(e.h, 'talk'))?.state?.running !== undefined, 60_000)
  t.is(await logLines(k, 'talk', 'main', 1), 'second\n')
  t.is(await k.logs('default', 'talk', 'main', { previous: true }), 'first\nbye\n')
  t.is(await k.logs('default', 'talk', 'main', { previous: true, tailLines: 1 }), 'bye\n')
  const last = main(getPod(e.h, 'talk'))?.lastState?.terminated as Obj
  t.is(last.exitCode, 1)
  t.is(last.reason, 'Error')
})

nativeTest('image gc: an image no container has used for the delay goes, blobs and unpacked root; one a container of this peer names stays', async t => {
  const e = await nativeEnv(t)
  let now = Date.now()
  const clock = { now: () => now, setTimeout: systemClock.setTimeout, clearTimeout: systemClock.clearTimeout }
  const puller = new ImagePuller({ cacheDir: join(e.dir, 'images') })
  const runtime = new NativeRuntime({ nodeName: e.node, dataDir: e.dir, clock, log: createLogger('silent', 'test'), layout: layout as CgroupLayout, puller, imageGcDelayMs: 180_000, imageGcIntervalMs: 3_600_000 })
  const k = await e.kubelet({ runtime })
  t.teardown(async () => { await k.stop() })
  e.h.create(npod(e.node, 'user', [{ name: 'main', command: ['sleep', '600'] }]))
  await running(e, 'user')
  const other = await puller.pull(`${(registry as Registry).host}/other:1`)
  const otherRoot = await puller.rootOf(other)
  const used = (await puller.content.images()).find(i => i.reference === `${IMAGE}:latest`)
  t.truthy(used)
  t.deepEqual(await runtime.collectImages(), [], 'an image first seen now counts as used now')
  now += 181_000
  t.deepEqual(await runtime.collectImages(), [`${(registry as Registry).host}/other:1`])
  t.false(existsSync(otherRoot), 'its unpacked root is gone')
  t.false(await puller.content.has(other.layers[1]?.digest as string), 'and the blob only it named')
  t.true(await puller.content.has(other.layers[0]?.digest as string), 'a layer the kept image shares stays')
  t.true(existsSync(puller.content.rootPath(used!.manifestDigest)), 'the running container\'s image stays, root and all')
  now += 181_000
  t.deepEqual(await runtime.collectImages(), [], 'still in use, however long ago it started')
  e.h.ok(e.h.apply({ op: 'delete', ref: ref('pods', 'user', 'default'), now: NOW }))
  await waitFor('the container removed', async () => (await runtime.listContainers()).length === 0, 30_000)
  t.deepEqual(await runtime.collectImages(), [], 'unused, but only since just now')
  now += 181_000
  t.deepEqual(await runtime.collectImages(), [`${IMAGE}:latest`])
  t.deepEqual(await puller.content.images(), [])
})

nativeTest('a log past maxLogBytes is rotated to .log.1: the two files stay bounded, and logs reads across them', async t => {
  const e = await nativeEnv(t)
  const runtime = new NativeRuntime({ nodeName: e.node, dataDir: e.dir, clock: systemClock, log: createLogger('silent', 'test'), layout: layout as CgroupLayout, maxLogBytes: 64 * 1024 })
  const k = await e.kubelet({ runtime })
  t.teardown(async () => { await k.stop() })
  // About 900 KB over 6 s, so that the check (every second) rotates it several times.
  const created = e.h.create(npod(e.node, 'chatty', [{ name: 'main', command: ['sh', '-c', 'i=0; while [ $i -lt 60 ]; do j=0; while [ $j -lt 200 ]; do echo "$i $j a line of log long enough to fill the file up fast ....."; j=$((j+1)); done; i=$((i+1)); sleep 0.1; done; echo done; exec sleep 600'] }]))
  await running(e, 'chatty')
  await waitFor('the last line', async () => (await k.logs('default', 'chatty', 'main', { tailLines: 1 }).catch(() => '')) === 'done\n', 60_000)
  const dir = join(e.dir, 'pods', created.metadata.uid as string, 'main')
  const log = join(dir, (await readdir(dir)).find(f => f.endsWith('.log')) as string)
  const [current, rotated] = [(await stat(log)).size, (await stat(`${log}.1`)).size]
  t.true(rotated > 64 * 1024, `.log.1 holds a whole rotated log (${rotated} bytes)`)
  t.true(current + rotated < 600 * 1024, `the two files keep what is recent, not all ~900 KB written (${current} + ${rotated} bytes)`)
  const lines = (await k.logs('default', 'chatty', 'main')).trimEnd().split('\n')
  t.is(lines.at(-1), 'done')
  t.regex(lines.at(-2) ?? '', /^59 199 /, 'the lines before it, read across the rotation')
})

nativeTest('downwardAPI and projected volumes at their mount paths, read-only; a label change reaches the file', async t => {
  const e = await nativeEnv(t)
  const k = await e.start()
  e.h.create(configMap('site', { greeting: 'hello' }))
  const p = npod(e.node, 'downward', [{ name: 'main', command: ['sleep', '600'], volumeMounts: [{ name: 'info', mountPath: '/etc/podinfo' }, { name: 'all', mountPath: '/etc/all' }] }], {
    volumes: [
      { name: 'info', downwardAPI: { items: [{ path: 'labels', fieldRef: { fieldPath: 'metadata.labels' } }, { path: 'name', fieldRef: { fieldPath: 'metadata.name' } }] } },
      { name: 'all', projected: { sources: [{ configMap: { name: 'site' } }, { downwardAPI: { items: [{ path: 'ns', fieldRef: { fieldPath: 'metadata.namespace' } }] } }] } }
    ]
  })
  e.h.create({ ...p, metadata: { ...p.metadata, labels: { tier: 'web' } } })
  await running(e, 'downward')
  const read = async (cmd: string): Promise<string> => {
    const r = await k.exec('default', 'downward', 'main', ['sh', '-c', cmd])
    return `${r.exitCode}:${r.stdout}${r.stderr}`
  }
  t.is(await read('cat /etc/podinfo/name; echo; cat /etc/podinfo/labels'), '0:downward\ntier="web"')
  t.is(await read('cat /etc/all/greeting /etc/all/ns'), '0:hellodefault')
  t.regex(await read('touch /etc/podinfo/x'), /^1:.*Read-only file system/)
  e.h.ok(e.h.apply({ op: 'patch', ref: ref('pods', 'downward', 'default'), patchType: 'merge', patch: { metadata: { labels: { tier: 'api' } } }, now: NOW }))
  const labels = await waitFor('the new label in the file', async () => { const r = await read('cat /etc/podinfo/labels'); return r.includes('api') && r }, 30_000)
  t.is(labels, '0:tier="api"')
})
