// `--runtime native` across a restart of shoald, and its hostPath allowlist,
// for real: one shoald (127.0.163.2) started with --allow-host-path naming a
// temporary directory, and Debian's docker-registry on 127.0.164.2 serving a
// busybox image built here. Checked: a container that prints a line every
// 200 ms and then exits 3 keeps running while shoald is SIGKILLed and started
// again (its log grows while shoald is down), is adopted (same containerID,
// restartCount 0, exec works on it), and its real exit code reaches the pod
// status; a hostPath outside the allowed directory (/etc, or a link from
// inside it to /etc) leaves the container waiting with
// CreateContainerConfigError, while one inside it is mounted. Without root,
// a usable sandbox host or docker-registry the tests are skipped (failed in
// CI). Every container's cgroup is emptied and removed in teardown.
import test from 'ava'
import { chmodSync, mkdtempSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { detectCgroups } from '../../daemon/kubelet/native/cgroups.ts'
import type { CgroupLayout } from '../../daemon/kubelet/native/cgroups.ts'
import { killStale } from '../../daemon/kubelet/native-runtime.ts'
import type { KObject } from '../../protocol/k8s.ts'
import { api, restartPeer, waitFor } from '../helpers/cluster.ts'
import type { Peer } from '../helpers/cluster.ts'
import { busyboxRootLayer, imageOf, pushImage } from '../helpers/oci-build.ts'
import { startRegistry } from '../helpers/oci-registry.ts'
import { nativeProblem, nativeTest } from '../helpers/native.ts'
import { startNativePeer, stopNativePeer } from '../helpers/native-peer.ts'
import type { NativePeer } from '../helpers/native-peer.ts'
import type { Registry } from '../helpers/oci-registry.ts'

const PEER_IP = '127.0.163.2'
const REGISTRY_IP = '127.0.164.2'

// killStale's timers are on the daemon clock, which are not ref'd: keep the process alive meanwhile.
const alive = setInterval(() => {}, 1000)
test.after.always(() => { clearInterval(alive) })

const problem = nativeProblem

let registry: Registry | undefined
let peer: Peer | undefined
let native: NativePeer | undefined
let layout: CgroupLayout | undefined
/** the one directory --allow-host-path names */
const allowed = mkdtempSync(join(tmpdir(), 'shoal-allowed-'))

test.before(async () => {
  if (problem !== undefined) return
  layout = detectCgroups()
  registry = await startRegistry({ ip: REGISTRY_IP })
  const applets = ['sh', 'echo', 'cat', 'sleep', 'hostname', 'id']
  const tar = await busyboxRootLayer(applets)
  await pushImage({ url: registry.url }, 'busybox', 'latest', imageOf([{ tar, compression: 'gzip' }], 'amd64', { Cmd: ['sh'], Env: ['PATH=/bin'] }))
  native = await startNativePeer('native-adopt', PEER_IP, ['--allow-host-path', allowed])
  peer = native.peer
})

test.after.always(async () => {
  await stopNativePeer(native, layout)
  await registry?.stop()
  rmSync(allowed, { recursive: true, force: true })
})

async function create (obj: KObject): Promise<void> {
  const r = await api(peer!, 'POST', '/api/v1/namespaces/default/pods', obj)
  if (r.status !== 201) throw new Error(`POST pod: ${r.status} ${JSON.stringify(r.body)}`)
}

async function getPod (name: string): Promise<any> {
  return (await api(peer!, 'GET', `/api/v1/namespaces/default/pods/${name}`)).body
}

async function exec (name: string, ...argv: string[]): Promise<{ exitCode: number, stdout: string, stderr: string }> {
  const query = argv.map(a => `command=${encodeURIComponent(a)}`).join('&')
  const r = await api(peer!, 'POST', `/api/v1/namespaces/default/pods/${name}/exec?${query}`)
  if (r.status !== 200) throw new Error(`exec ${argv.join(' ')} in ${name}: ${r.status} ${JSON.stringify(r.body)}`)
  return r.body
}

function lines (file: string): number {
  try { return readFileSync(file, 'utf8').split('\n').filter(l => l.startsWith('tick ')).length } catch { return 0 }
}

nativeTest('a restarted shoald adopts a running container: same container, its log grows while shoald is down, exec works, and its real exit code is reported', async t => {
  t.timeout(90_000)
  // About 20 s of ticks: long enough to outlive the restart, then exit 3.
  await create({
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: 'ticker', namespace: 'default' },
    spec: {
      restartPolicy: 'Never',
      terminationGracePeriodSeconds: 1,
      containers: [{ name: 'main', image: `${registry!.host}/busybox`, command: ['sh', '-c', 'i=0; while [ $i -lt 100 ]; do echo "tick $i"; i=$((i + 1)); sleep 0.2; done; exit 3'] }]
    }
  } as unknown as KObject)
  const before = await waitFor('ticker running', async () => {
    const p = await getPod('ticker')
    const s = p.status?.containerStatuses?.[0]
    if (s?.state?.terminated !== undefined) throw new Error(`ticker ended: ${JSON.stringify(s.state)}`)
    return s?.state?.running !== undefined && p
  }, 30_000, 200)
  const containerID = before.status.containerStatuses[0].containerID as string
  t.regex(containerID, /^native:\/\//)
  const log = join(native!.dir, 'p1', 'pods', before.metadata.uid, 'main', '0.log')
  await waitFor('a few ticks in the log', () => lines(log) >= 3, 10_000, 100)

  await peer!.kill('SIGKILL')
  const atKill = lines(log)
  await waitFor('ticks written while shoald is down', () => lines(log) >= atKill + 5, 10_000, 100)
  const whileDown = lines(log)
  peer = native!.peer = await restartPeer(peer!)

  const id = containerID.replace(/^native:\/\//, '')
  await waitFor('the adoption in the log', () => peer!.events().some(e => e.event === 'kubelet.container.adopted' && e.id === id), 30_000, 100)
  const after = await waitFor('ticker reported running again by the new shoald', async () => {
    const p = await getPod('ticker')
    const s = p.status?.containerStatuses?.[0]
    if (s?.state?.terminated !== undefined) throw new Error(`ticker ended before it was seen running again: ${JSON.stringify(s.state)}`)
    return s?.state?.running !== undefined && lines(log) > whileDown && p
  }, 30_000, 200)
  t.is(after.status.containerStatuses[0].containerID, containerID, 'the same container')
  t.is(after.status.containerStatuses[0].restartCount, 0)
  t.true(whileDown >= atKill + 5, `the log grew from ${atKill} to ${whileDown} ticks while shoald was down`)

  const hostname = await exec('ticker', 'hostname')
  t.is(hostname.exitCode, 0, hostname.stderr)
  t.is(hostname.stdout.trim(), 'ticker', 'exec enters the adopted container')
  t.is((await exec('ticker', 'id', '-u')).stdout.trim(), '65534')

  const done = await waitFor('ticker terminated', async () => {
    const p = await getPod('ticker')
    return p.status?.containerStatuses?.[0]?.state?.terminated !== undefined && p
  }, 40_000, 200)
  const s = done.status.containerStatuses[0]
  t.is(s.state.terminated.exitCode, 3, JSON.stringify(s.state.terminated))
  t.is(s.state.terminated.reason, 'Error')
  t.is(s.containerID, containerID)
  t.is(s.restartCount, 0)
  t.is(done.status.phase, 'Failed')
  const logs = (await api(peer!, 'GET', '/api/v1/namespaces/default/pods/ticker/log')).body as string
  t.true(logs.includes('tick 99\n'), 'the whole output is in the log')
  // Its cgroup is removed once its exit is recorded.
  const cgroups = layout!.version === 2 ? [join(layout!.root, 'shoal', id)] : Object.values(layout!.mounts).map(m => join(m, 'shoal', id))
  await waitFor('the adopted container\'s cgroup removed', () => cgroups.every(d => { try { statSync(d); return false } catch { return true } }), 10_000, 100)
})

nativeTest('--allow-host-path: a hostPath outside it is a CreateContainerConfigError naming the path and the flag; one inside it is mounted', async t => {
  t.timeout(60_000)
  // The container runs as nobody: mkdtemp's 0700 would keep it out.
  chmodSync(allowed, 0o755)
  writeFileSync(join(allowed, 'hello'), 'from the allowed directory\n', { mode: 0o644 })
  symlinkSync('/etc', join(allowed, 'to-etc'))
  const podWith = (name: string, path: string): KObject => ({
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, namespace: 'default' },
    spec: {
      terminationGracePeriodSeconds: 1,
      containers: [{ name: 'main', image: `${registry!.host}/busybox`, command: ['sh', '-c', 'cat /data/hello; exec sleep 600'], volumeMounts: [{ name: 'data', mountPath: '/data', readOnly: true }] }],
      volumes: [{ name: 'data', hostPath: { path } }]
    }
  } as unknown as KObject)
  await create(podWith('etc', '/etc'))
  await create(podWith('via-link', join(allowed, 'to-etc')))
  // `..` never gets this far: the API refuses it.
  t.is((await api(peer!, 'POST', '/api/v1/namespaces/default/pods', podWith('dotdot', `${allowed}/../..${allowed}`))).status, 422)
  await create(podWith('allowed', allowed))
  for (const [name, path] of [['etc', '/etc'], ['via-link', join(allowed, 'to-etc')]] as const) {
    const waiting = await waitFor(`${name} waiting`, async () => {
      const p = await getPod(name)
      const s = p.status?.containerStatuses?.[0]
      if (s?.state?.running !== undefined) throw new Error(`${name} runs with hostPath ${path}`)
      return s?.state?.waiting?.reason === 'CreateContainerConfigError' && s.state.waiting
    }, 20_000, 200)
    t.true(waiting.message.includes(`"${path}"`), waiting.message)
    t.true(waiting.message.includes('--allow-host-path'), waiting.message)
    t.false(waiting.message.includes('\n'), 'one line')
  }
  const output = await waitFor('allowed\'s output', async () => {
    const r = await api(peer!, 'GET', '/api/v1/namespaces/default/pods/allowed/log')
    return typeof r.body === 'string' && r.body.includes('\n') && r.body
  }, 20_000, 200)
  t.true(output.startsWith('from the allowed directory\n'), output)
  const p = await getPod('allowed')
  t.not(p.status.containerStatuses[0].state.running, undefined)
})

nativeTest('without --allow-privileged, a container that asks for uid 0 does not run, and says why', async t => {
  t.timeout(60_000)
  await create({
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: 'as-root', namespace: 'default' },
    spec: {
      terminationGracePeriodSeconds: 1,
      restartPolicy: 'Never',
      containers: [{ name: 'main', image: `${registry!.host}/busybox`, command: ['id', '-u'], securityContext: { runAsUser: 0 } }]
    }
  } as unknown as KObject)
  const done = await waitFor('as-root refused', async () => {
    const s = (await getPod('as-root'))?.status?.containerStatuses?.[0]
    return s?.state?.terminated?.reason === 'ContainerCannotRun' && s.state.terminated
  }, 30_000, 100)
  t.regex(done.message, /uid 0.*host's root.*--allow-privileged/)
})
