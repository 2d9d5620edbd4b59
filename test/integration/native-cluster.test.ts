// Three real shoald peers (127.0.171.2-4) with the native runtime, pulling
// from Debian's docker-registry on 127.0.172.2: the cluster test of the
// Docker runtime (docker-cluster.test.ts), run on native sandboxes. A
// Deployment's 6 replicas of an image with only `image:` run spread over
// the peers and answer HTTP; logs and exec work through a peer that does not
// run the pod; a pod reaches them through a Service, by its name (the
// cluster DNS in the container's /etc/resolv.conf) and its address; the
// leader is SIGKILLed and the cluster goes on answering with the same pods;
// a SIGKILLed and restarted shoald adopts its sandboxes (same containers);
// after a peer is SIGKILLed for good, 6 pods run again on the survivors,
// and the killed peer removes its old sandboxes when it comes back.
import test from 'ava'
import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { detectCgroups } from '../../daemon/kubelet/native/cgroups.ts'
import type { CgroupLayout } from '../../daemon/kubelet/native/cgroups.ts'
import { api, deploymentOf, restartPeer, startCluster, stopAll, waitFor, waitForLeader, waitForReadyNodes } from '../helpers/cluster.ts'
import type { Peer } from '../helpers/cluster.ts'
import { checkWebPodAccess, runningWebPods, shoalSync, waitForWebPodsOff } from '../helpers/web-pods.ts'
import type { WebPod } from '../helpers/web-pods.ts'
import { busyboxRootLayer, imageOf, pushImage } from '../helpers/oci-build.ts'
import type { BuiltImage } from '../helpers/oci-build.ts'
import { startRegistry } from '../helpers/oci-registry.ts'
import type { Registry } from '../helpers/oci-registry.ts'
import { nativeProblem, nativeTest } from '../helpers/native.ts'
import { killNativeContainers } from '../helpers/native-peer.ts'

const IPS = ['127.0.171.2', '127.0.171.3', '127.0.171.4']
const NAMES = ['nc1', 'nc2', 'nc3']
const REGISTRY_IP = '127.0.172.2'

// killStale (teardown) waits on the daemon clock, whose timers are unref'd: keep the process alive meanwhile.
const alive = setInterval(() => {}, 1000)
test.after.always(() => { clearInterval(alive) })


/** busybox with httpd, nc and a shell; the Entrypoint serves the pod's name on POD_IP:8080 and says so. */
async function webImage (): Promise<BuiltImage> {
  const applets = ['sh', 'httpd', 'nc', 'hostname', 'mkdir', 'printf', 'tail', 'cat', 'echo', 'sleep']
  const tar = await busyboxRootLayer(applets)
  return imageOf([{ tar, compression: 'gzip' }], 'amd64', {
    Entrypoint: ['/bin/sh', '-c', 'echo serving as $(hostname); mkdir -p /tmp/www && hostname > /tmp/www/index.html && exec httpd -f -p "$POD_IP:8080" -h /tmp/www'],
    Env: ['PATH=/bin']
  })
}

/** The containers a peer has recorded as running whose sandbox is alive (they outlive a SIGKILLed shoald). */
function sandboxes (peer: Peer): string[] {
  const dir = join(peer.opts.dataDir, 'native', 'containers')
  let files: string[] = []
  try { files = readdirSync(dir).filter(f => f.endsWith('.json')) } catch {}
  const alive: string[] = []
  for (const f of files) {
    const rec = JSON.parse(readFileSync(join(dir, f), 'utf8')) as { id: string, state: string, gatePid?: number }
    if (rec.state !== 'running' || rec.gatePid === undefined) continue
    try { process.kill(rec.gatePid, 0); alive.push(rec.id) } catch {}
  }
  return alive.sort()
}

let registry: Registry | undefined
let layout: CgroupLayout | undefined

test.before(async () => {
  if (nativeProblem !== undefined) return
  layout = detectCgroups()
  registry = await startRegistry({ ip: REGISTRY_IP })
  await pushImage({ url: registry.url }, 'web', '1', await webImage())
})

test.after.always(async () => {
  await registry?.stop()
})

nativeTest('6 replicas run in native sandboxes over three peers, survive a leader kill, a shoald restart and a dead peer', async t => {
  t.timeout(300_000)
  const { dir, peers } = await startCluster('native-cluster', IPS, ['--runtime', 'native', '--service-cidr', '127.97.171.0/24', '--dns-port', '53', '--pod-eviction-grace', '15s'], NAMES)
  t.teardown(async () => {
    await stopAll(peers)
    for (const p of peers) await killNativeContainers(p.opts.dataDir, layout as CgroupLayout)
    await stopAll([], dir)
  })
  let leader = await waitForLeader(peers, 60_000)
  await waitForReadyNodes(leader, 3)
  const image = `${registry!.host}/web:1`
  t.is((await api(leader, 'POST', '/apis/apps/v1/namespaces/default/deployments', deploymentOf('web', 6, { name: 'httpd', image }))).status, 201)
  const pods = await waitFor('6 Running pods', async () => { const p = await runningWebPods(leader); return p.length === 6 && p }, 120_000)
  const byNode = new Map<string, WebPod[]>()
  for (const p of pods) byNode.set(p.spec.nodeName ?? '', [...(byNode.get(p.spec.nodeName ?? '') ?? []), p])
  t.true(byNode.size >= 2, `spread over ${[...byNode.keys()].join(', ')}`)
  for (const p of peers) t.is(sandboxes(p).length, byNode.get(p.name)?.length ?? 0, `${p.name}'s sandboxes are its pods`)

  // Each answers on its own address; logs and exec through a peer that does not run it.
  const pod = pods[0]!
  const other = await checkWebPodAccess(t, pod, peers)

  // A Service's cluster IP, reached from inside another native pod (on a peer that is not the leader, which is killed next).
  const svc = await api(leader, 'POST', '/api/v1/namespaces/default/services', { apiVersion: 'v1', kind: 'Service', metadata: { name: 'web' }, spec: { selector: { app: 'web' }, ports: [{ port: 80, targetPort: 8080 }] } })
  t.is(svc.status, 201, JSON.stringify(svc.body))
  const clusterIP = String(svc.body.spec.clusterIP)
  t.is((await api(leader, 'POST', '/api/v1/namespaces/default/pods', { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'client' }, spec: { terminationGracePeriodSeconds: 1, nodeSelector: { 'kubernetes.io/hostname': other.name === leader.name ? (peers.find(p => p !== leader && p !== other) as Peer).name : other.name }, containers: [{ name: 'c', image, command: ['sleep', '600'] }] } })).status, 201)
  await waitFor('the client pod', async () => (await api(leader, 'GET', '/api/v1/namespaces/default/pods/client')).body.status?.phase === 'Running', 60_000)
  const fetchThroughService = async (via: Peer, target = 'web'): Promise<string> => {
    let last = ''
    return await waitFor('a fetch through the service', async () => {
      const r = shoalSync(via, ['exec', 'client', '--', 'sh', '-c', `printf "GET / HTTP/1.0\\r\\n\\r\\n" | nc -w 5 ${target} 80 | tail -1`])
      last = `exit ${String(r.status)}: ${r.stdout} ${r.stderr}`
      return r.status === 0 && r.stdout.trim() !== '' && r.stdout.trim()
    }, 30_000).catch(err => { throw new Error(`${(err as Error).message}; last try: ${last}`) })
  }
  // By its short name: the container's /etc/resolv.conf names the cluster DNS, on the DNS service's address.
  const served = await fetchThroughService(other)
  t.true(pods.some(p => p.metadata.name === served), served)
  const byAddress = await fetchThroughService(other, clusterIP)
  t.true(pods.some(p => p.metadata.name === byAddress), byAddress)
  const resolv = shoalSync(other, ['exec', 'client', '--', 'cat', '/etc/resolv.conf', '/etc/hosts', '/etc/hostname'])
  t.is(resolv.status, 0, resolv.stderr)
  t.regex(resolv.stdout, /^search default\.svc\.cluster\.local svc\.cluster\.local cluster\.local\nnameserver 127\.97\.171\.10\noptions ndots:5\n/)
  t.regex(resolv.stdout, /\n127\.\d+\.\d+\.\d+\tclient\nclient\n$/, 'its own name at its address in /etc/hosts, and /etc/hostname')

  // The leader SIGKILLed: another takes over, and the same pods go on serving (none replaced while it is away, under the eviction grace).
  const oldLeader = leader
  await oldLeader.kill('SIGKILL')
  leader = await waitForLeader(peers.filter(p => p !== oldLeader), 30_000)
  t.not(leader.name, oldLeader.name)
  const afterKill = await waitFor('6 Running pods seen by the new leader', async () => { const p = await runningWebPods(leader); return p.length === 6 && p }, 30_000)
  t.deepEqual(afterKill.map(p => p.metadata.uid).sort(), pods.map(p => p.metadata.uid).sort())
  const servedAfter = await fetchThroughService(leader)
  t.true(pods.some(p => p.metadata.name === servedAfter), servedAfter)
  // ...and the old leader, restarted, adopts its sandboxes: the same containers, no pod replaced.
  const before = sandboxes(oldLeader)
  peers[peers.indexOf(oldLeader)] = await restartPeer(oldLeader)
  const again = peers.find(p => p.name === oldLeader.name)!
  await waitFor('the kubelet to start', () => again.events().some(e => e.event === 'kubelet.started'), 60_000)
  t.deepEqual(sandboxes(again), before)
  const afterRestart = await waitFor('6 Running pods', async () => { const p = await runningWebPods(leader); return p.length === 6 && p }, 60_000)
  t.deepEqual(afterRestart.map(p => p.metadata.uid).sort(), pods.map(p => p.metadata.uid).sort(), 'no pod was replaced')

  // SIGKILL of a peer for good: its pods come back on the survivors.
  const victim = peers.find(p => p !== leader && p.running && (byNode.get(p.name)?.length ?? 0) > 0)!
  const clientNode = (await api(leader, 'GET', '/api/v1/namespaces/default/pods/client')).body.spec?.nodeName
  await victim.kill('SIGKILL')
  const survivors = peers.filter(p => p !== victim)
  const moved = await waitForWebPodsOff(survivors, victim, 6)
  t.is(moved.length, 6)
  for (const s of survivors) {
    const expected = moved.filter(p => p.spec.nodeName === s.name).length + (clientNode === s.name ? 1 : 0)
    await waitFor(`${s.name} to run its ${expected} sandboxes`, () => sandboxes(s).length === expected, 30_000)
  }
  t.true(sandboxes(victim).length > 0, 'the dead peer\'s sandboxes still run while it is away')
  // Back again: it removes the sandboxes of pods that now run elsewhere.
  peers[peers.indexOf(victim)] = await restartPeer(victim)
  await waitFor(`${victim.name} to remove its old sandboxes`, async () => sandboxes(victim).length === 0, 60_000)
  t.is((await runningWebPods(leader)).length, 6)
})
