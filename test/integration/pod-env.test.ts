// What every pod expects of a cluster, on three real shoald peers
// (127.0.150.2-4, process runtime, their own service range 127.97.150.0/24,
// DNS off): the kubernetes Service at the range's first address with every
// peer's API as its endpoints, reached through the service proxy on port
// 443; a pod's HOSTNAME and KUBERNETES_SERVICE_HOST; and a Job-like pod
// (restartPolicy Never) with a native sidecar that runs forever, Succeeded
// once its main container has exited 0, its sidecar stopped.
import test from 'ava'
import type { KObject } from '../../protocol/k8s.ts'
import { api, API_PORT, startCluster, stopAll, waitFor, waitForLeader, waitForReadyNodes } from '../helpers/cluster.ts'
import type { Peer } from '../helpers/cluster.ts'

const IPS = ['127.0.150.2', '127.0.150.3', '127.0.150.4']
const API_IP = '127.97.150.1'

function podOf (name: string, spec: Record<string, unknown>): KObject {
  return { apiVersion: 'v1', kind: 'Pod', metadata: { name, namespace: 'default' }, spec: { restartPolicy: 'Never', terminationGracePeriodSeconds: 2, ...spec } }
}

function sh (name: string, script: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { name, image: 'busybox:1.36', command: ['sh', '-c', script], ...extra }
}

async function podNamed (peer: Peer, name: string): Promise<any> {
  return (await api(peer, 'GET', `/api/v1/namespaces/default/pods/${name}`)).body
}

async function succeeded (peer: Peer, name: string): Promise<any> {
  return await waitFor(`${name} Succeeded`, async () => {
    const p = await podNamed(peer, name)
    if (p.status?.phase === 'Failed') throw new Error(`${name} failed: ${JSON.stringify(p.status)}`)
    return p.status?.phase === 'Succeeded' && p
  }, 90_000)
}

test('the kubernetes Service, a pod\'s environment, and a Job-like pod with a native sidecar', async t => {
  t.timeout(300_000)
  const { dir, peers } = await startCluster('pod-env', IPS, ['--service-cidr', '127.97.150.0/24', '--dns-port', '0'])
  t.teardown(async () => { await stopAll(peers, dir) })
  const leader = await waitForLeader(peers, 60_000)
  await waitForReadyNodes(leader, 3)

  // The kubernetes Service and its Endpoints: every peer's API.
  const svc = await waitFor('the kubernetes service', async () => { const r = await api(leader, 'GET', '/api/v1/namespaces/default/services/kubernetes'); return r.status === 200 && r.body })
  t.is(svc.spec.clusterIP, API_IP)
  t.deepEqual(svc.spec.ports, [{ name: 'https', port: 443, protocol: 'TCP', targetPort: API_PORT }])
  const ep = await waitFor('3 API endpoints', async () => {
    const r = await api(leader, 'GET', '/api/v1/namespaces/default/endpoints/kubernetes')
    return r.status === 200 && (r.body.subsets?.[0]?.addresses ?? []).length === 3 && r.body
  })
  t.deepEqual(ep.subsets, [{ addresses: IPS.map(ip => ({ ip })), ports: [{ name: 'https', port: API_PORT, protocol: 'TCP' }] }])
  // Through the service proxy (the API speaks plain HTTP on loopback addresses).
  const version = await waitFor('the API through the kubernetes service', async () => {
    const res = await fetch(`http://${API_IP}:443/version`, { signal: AbortSignal.timeout(3000) })
    return res.ok && await res.json() as { gitVersion?: string }
  })
  t.truthy(version.gitVersion)

  // A pod's environment, read through its logs.
  t.is((await api(leader, 'POST', '/api/v1/namespaces/default/pods', podOf('env', { containers: [sh('main', 'echo $HOSTNAME $KUBERNETES_SERVICE_HOST $KUBERNETES_SERVICE_PORT')] }))).status, 201)
  t.is((await api(leader, 'POST', '/api/v1/namespaces/default/pods', podOf('named', { hostname: 'box', enableServiceLinks: false, containers: [sh('main', 'echo $HOSTNAME $KUBERNETES_SERVICE_HOST')] }))).status, 201)
  // A Job-like pod: its sidecar would run forever.
  const job = podOf('job', { initContainers: [sh('side', 'while :; do sleep 1; done', { restartPolicy: 'Always' })], containers: [sh('main', 'echo done')] })
  const created = await api(leader, 'POST', '/api/v1/namespaces/default/pods', job)
  t.is(created.status, 201, JSON.stringify(created.body))
  t.is(created.body.spec.serviceAccountName, 'default')

  await succeeded(leader, 'env')
  t.is((await api(leader, 'GET', '/api/v1/namespaces/default/pods/env/log')).body, `env ${API_IP} 443\n`)
  await succeeded(leader, 'named')
  t.is((await api(leader, 'GET', '/api/v1/namespaces/default/pods/named/log')).body, `box ${API_IP}\n`)

  const p = await succeeded(leader, 'job')
  t.is(p.status.containerStatuses[0].state.terminated?.exitCode, 0)
  t.truthy(p.status.initContainerStatuses[0].state.terminated, 'the sidecar was stopped')
  t.is(p.status.initContainerStatuses[0].restartCount, 0)
  t.is((await api(leader, 'GET', '/api/v1/namespaces/default/pods/job/log?container=main')).body, 'done\n')
})
