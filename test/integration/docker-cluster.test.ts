// Three real shoald peers (127.0.13.2-4) with the Docker runtime on one real
// engine: a Deployment's 6 replicas run as containers spread over the
// peers; logs and exec work through a peer that does not run the pod; a
// SIGKILLed and restarted shoald adopts its containers (same ids); after
// a peer is SIGKILLed for good, 6 pods run again on the survivors, and the
// killed peer removes its old containers when it comes back.
import test from 'ava'
import { api, deploymentOf, restartPeer, startCluster, stopAll, waitFor, waitForLeader, waitForReadyNodes } from '../helpers/cluster.ts'
import type { Peer } from '../helpers/cluster.ts'
import { checkWebPodAccess, runningWebPods, shoalSync, waitForWebPodsOff } from '../helpers/web-pods.ts'
import type { WebPod } from '../helpers/web-pods.ts'
import { dockerTests, removeNode, TEST_IMAGE } from '../helpers/docker.ts'
import type { Engine } from '../helpers/docker.ts'

const { dtest, engine } = await dockerTests(test)
const IPS = ['127.0.13.2', '127.0.13.3', '127.0.13.4']
const NAMES = ['dk1', 'dk2', 'dk3']

const deployment = deploymentOf('web', 6, { name: 'httpd', image: TEST_IMAGE, command: ['sh', '-c', 'echo serving as $(hostname); mkdir -p /www && hostname > /www/index.html && exec httpd -f -p 8080 -h /www'] })


/** Running pod containers (not sandboxes) the engine has for `node`. */
async function containers (node: string): Promise<string[]> {
  const list = await (engine as Engine).docker.listContainers({ filters: { label: [`shoal.node=${node}`, 'shoal.role=container'] } })
  return list.map(c => c.Id).sort()
}

dtest('6 replicas run as containers over three peers, survive a shoald restart and a dead peer', async t => {
  t.timeout(300_000)
  const { docker } = engine as Engine
  for (const n of NAMES) await removeNode(docker, n)
  const { dir, peers } = await startCluster('docker', IPS, ['--runtime', 'docker', '--pod-eviction-grace', '8s'], NAMES)
  t.teardown(async () => {
    await stopAll(peers, dir)
    for (const n of NAMES) await removeNode(docker, n)
  })
  const leader = await waitForLeader(peers, 60_000)
  await waitForReadyNodes(leader, 3)
  t.is((await api(leader, 'POST', '/apis/apps/v1/namespaces/default/deployments', deployment)).status, 201)
  const pods = await waitFor('6 Running pods', async () => { const p = await runningWebPods(leader); return p.length === 6 && p }, 120_000)
  const byNode = new Map<string, WebPod[]>()
  for (const p of pods) byNode.set(p.spec.nodeName ?? '', [...(byNode.get(p.spec.nodeName ?? '') ?? []), p])
  t.true(byNode.size >= 2, `spread over ${[...byNode.keys()].join(', ')}`)
  for (const [node, list] of byNode) t.is((await containers(node)).length, list.length, `${node}'s engine runs its pods`)

  // Each answers on its own address; logs and exec through a peer that does not run it.
  const pod = pods[0]!
  const other = await checkWebPodAccess(t, pod, peers)

  // A Docker pod reaches a Service by its short name: the cluster DNS as its resolver, the service range routed to the host.
  const svc = await api(leader, 'POST', '/api/v1/namespaces/default/services', { apiVersion: 'v1', kind: 'Service', metadata: { name: 'web' }, spec: { selector: { app: 'web' }, ports: [{ port: 80, targetPort: 8080 }] } })
  t.is(svc.status, 201, JSON.stringify(svc.body))
  t.regex(svc.body.spec.clusterIP, /^10\.96\./, 'the Docker runtime\'s service range')
  t.is((await api(leader, 'POST', '/api/v1/namespaces/default/pods', { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'client' }, spec: { terminationGracePeriodSeconds: 1, containers: [{ name: 'c', image: TEST_IMAGE, command: ['sleep', '600'] }] } })).status, 201)
  await waitFor('the client pod', async () => (await api(leader, 'GET', '/api/v1/namespaces/default/pods/client')).body.status?.phase === 'Running', 60_000)
  let last = ''
  const fetched = await waitFor('a fetch through the service name', async () => {
    // busybox's static wget crashes when a connection fails; nc says why.
    const r = shoalSync(other, ['exec', 'client', '--', 'sh', '-c', 'printf "GET / HTTP/1.0\\r\\n\\r\\n" | nc -w 5 web 80 | tail -1'])
    last = `exit ${String(r.status)}: ${r.stdout} ${r.stderr}`
    return r.status === 0 && r.stdout.trim() !== '' && r
  }, 30_000).catch(err => { throw new Error(`${(err as Error).message}; last try: ${last}`) })
  t.true(pods.some(p => p.metadata.name === fetched.stdout.trim()), fetched.stdout)
  const resolv = shoalSync(other, ['exec', 'client', '--', 'cat', '/etc/resolv.conf'])
  // On a user-defined network Docker's embedded resolver (127.0.0.11) answers, forwarding to the sandbox's Dns: the cluster DNS.
  t.regex(resolv.stdout, /search default\.svc\.cluster\.local svc\.cluster\.local cluster\.local/)
  const sandbox = (await docker.listContainers({ filters: { label: ['shoal.pod.name=client', 'shoal.role=sandbox'] } }))[0]
  t.deepEqual((await docker.getContainer(sandbox?.Id ?? '').inspect()).HostConfig.Dns, ['10.96.0.10'])
  t.is((await api(leader, 'DELETE', '/api/v1/namespaces/default/pods/client')).status, 200)
  await waitFor('the client pod to go', async () => {
    const gone = (await api(leader, 'GET', '/api/v1/namespaces/default/pods/client')).status === 404
    const left = await docker.listContainers({ all: true, filters: { label: ['shoal.pod.name=client'] } })
    return gone && left.length === 0
  }, 60_000)

  // SIGKILL and restart of a peer's shoald: its containers are adopted, not replaced.
  const restartee = peers.find(p => p !== leader && byNode.has(p.name))!
  const before = await containers(restartee.name)
  await restartee.kill('SIGKILL')
  peers[peers.indexOf(restartee)] = await restartPeer(restartee)
  const again = peers.find(p => p.name === restartee.name)!
  await waitFor('the kubelet to start', () => again.events().some(e => e.event === 'kubelet.started'), 60_000)
  t.deepEqual(await containers(restartee.name), before)
  const adopted = again.events().find(e => e.event === 'kubelet.started')!
  t.is(adopted.adopted, before.length)
  const afterRestart = await waitFor('6 Running pods', async () => { const p = await runningWebPods(leader); return p.length === 6 && p }, 60_000)
  t.deepEqual(afterRestart.map(p => p.metadata.uid).sort(), pods.map(p => p.metadata.uid).sort(), 'no pod was replaced')

  // SIGKILL of a peer for good: its pods come back on the survivors.
  const victim = peers.find(p => p !== leader && byNode.has(p.name))!
  await victim.kill('SIGKILL')
  const survivors = peers.filter(p => p !== victim)
  const moved = await waitForWebPodsOff(survivors, victim, 6)
  t.is(moved.length, 6)
  t.true((await containers(victim.name)).length > 0, 'the dead peer\'s containers still run while it is away')
  // Back again: it removes the containers of pods that now run elsewhere.
  peers[peers.indexOf(victim)] = await restartPeer(victim)
  await waitFor(`${victim.name} to remove its old containers`, async () => (await containers(victim.name)).length === 0, 60_000)
  t.is((await runningWebPods(leader)).length, 6)
})
