// Services on three real shoald peers (127.0.18.2-4, process runtime, their
// own service range 127.97.18.0/24 and DNS on port 10053): a Deployment of 3
// HTTP servers spread over the peers, behind a NodePort Service and a
// headless one. Requests through the service address and through every
// peer's NodePort reach all 3 backends; every peer's DNS answers for both
// services and an SRV name, and NXDOMAIN otherwise; a SIGKILLed peer costs
// a client at most one retry, and nothing once the endpoints have moved.
import test from 'ava'
import { request } from 'node:http'
import { Resolver } from 'node:dns/promises'
import type { KObject } from '../../protocol/k8s.ts'
import { api, deploymentOf, echoContainer, startCluster, stopAll, waitFor, waitForLeader, waitForReadyNodes } from '../helpers/cluster.ts'
import type { Peer } from '../helpers/cluster.ts'

const IPS = ['127.0.18.2', '127.0.18.3', '127.0.18.4']
const DNS_PORT = 10053

const deployment = deploymentOf('echo', 3, echoContainer())

const service = (name: string, spec: Record<string, unknown>): KObject => ({
  apiVersion: 'v1', kind: 'Service', metadata: { name, namespace: 'default' }, spec: { selector: { app: 'echo' }, ports: [{ name: 'http', port: 80, targetPort: 'http' }], ...spec }
})

/** One GET on a new connection (no keep-alive, so that each request is balanced afresh). */
async function get (host: string, port: number, timeoutMs = 5000): Promise<string> {
  return await new Promise((resolve, reject) => {
    const req = request({ host, port, path: '/', agent: false, timeout: timeoutMs }, res => {
      let body = ''
      res.setEncoding('utf8').on('data', (c: string) => { body += c }).on('end', () => { res.statusCode === 200 ? resolve(body) : reject(new Error(`status ${res.statusCode ?? 0}`)) }).on('error', reject)
    })
    req.on('timeout', () => { req.destroy(new Error('timed out')) })
    req.on('error', reject)
    req.end()
  })
}

async function backends (host: string, port: number, n: number): Promise<Map<string, number>> {
  const seen = new Map<string, number>()
  for (let i = 0; i < n; i++) {
    const name = await get(host, port)
    seen.set(name, (seen.get(name) ?? 0) + 1)
  }
  return seen
}

type Pod = KObject & { spec: { nodeName?: string }, status?: { podIP?: string, conditions?: Array<{ type: string, status: string }> } }

async function readyPods (peer: Peer): Promise<Pod[]> {
  const r = await api(peer, 'GET', '/api/v1/namespaces/default/pods?labelSelector=app%3Decho')
  return ((r.body.items ?? []) as Pod[]).filter(p => p.metadata.deletionTimestamp === undefined && (p.status?.conditions ?? []).some(c => c.type === 'Ready' && c.status === 'True'))
}

test('a service spreads over its backends from every peer, answers in DNS, and rides out a dead peer', async t => {
  t.timeout(300_000)
  const { dir, peers } = await startCluster('services', IPS, ['--service-cidr', '127.97.18.0/24', '--dns-port', String(DNS_PORT)])
  t.teardown(async () => { await stopAll(peers, dir) })
  const leader = await waitForLeader(peers, 60_000)
  await waitForReadyNodes(leader, 3)
  t.is((await api(leader, 'POST', '/apis/apps/v1/namespaces/default/deployments', deployment)).status, 201)
  const svc = await api(leader, 'POST', '/api/v1/namespaces/default/services', service('echo', { type: 'NodePort' }))
  t.is(svc.status, 201, JSON.stringify(svc.body))
  t.is((await api(leader, 'POST', '/api/v1/namespaces/default/services', service('echo-hl', { clusterIP: 'None' }))).status, 201)
  const clusterIP = svc.body.spec.clusterIP as string
  const nodePort = svc.body.spec.ports[0].nodePort as number
  t.regex(clusterIP, /^127\.97\.18\./)

  const pods = await waitFor('3 Ready pods', async () => { const p = await readyPods(leader); return p.length === 3 && p }, 90_000)
  const names = pods.map(p => p.metadata.name as string).sort()
  t.is(new Set(pods.map(p => p.spec.nodeName)).size, 3, `one backend per peer: ${pods.map(p => p.spec.nodeName).join(', ')}`)
  // Every peer's proxy follows the endpoints within a moment.
  await waitFor('every backend through the service', async () => (await backends(clusterIP, 80, 30)).size === 3, 30_000)

  // Through the service address (the kernel spreads clients over the peers' proxies), and through each peer's NodePort.
  const all = await backends(clusterIP, 80, 300)
  t.deepEqual([...all.keys()].sort(), names, JSON.stringify([...all]))
  for (const peer of peers) {
    const seen = await backends(IPS[peers.indexOf(peer)] as string, nodePort, 300)
    t.deepEqual([...seen.keys()].sort(), names, `${peer.name}'s NodePort: ${JSON.stringify([...seen])}`)
  }

  // DNS on every peer.
  for (const ip of IPS) {
    const r = new Resolver({ timeout: 2000, tries: 2 })
    r.setServers([`${ip}:${DNS_PORT}`])
    t.deepEqual(await r.resolve4('echo.default.svc.cluster.local'), [clusterIP], ip)
    t.deepEqual((await r.resolve4('echo-hl.default.svc.cluster.local')).sort(), pods.map(p => p.status?.podIP as string).sort(), ip)
    const srv = await r.resolveSrv('_http._tcp.echo-hl.default.svc.cluster.local')
    t.is(srv.length, 3)
    t.true(srv.every(s => s.port === 8080), JSON.stringify(srv))
    const err = await r.resolve4('nothing.default.svc.cluster.local').then(() => undefined, (e: NodeJS.ErrnoException) => e.code)
    t.is(err, 'ENOTFOUND', 'NXDOMAIN')
  }

  // A dying node: a bounded load through the service while the peer of one backend is SIGKILLed.
  const victim = peers.find(p => p !== leader && pods.some(x => x.spec.nodeName === p.name)) as Peer
  const deadPod = pods.find(p => p.spec.nodeName === victim.name)?.metadata.name as string
  let requests = 0
  let retried = 0
  let failed = 0
  let errorsAfterUpdate = 0
  let endpointsMovedAt: number | undefined
  const watchEndpoints = (async () => {
    await waitFor('the dead backend to leave the endpoints', async () => {
      const ep = await api(leader, 'GET', '/api/v1/namespaces/default/endpoints/echo')
      const addrs = ((ep.body.subsets ?? []) as Array<{ addresses?: Array<{ targetRef?: { name?: string } }> }>).flatMap(s => s.addresses ?? [])
      return addrs.length > 0 && !addrs.some(a => a.targetRef?.name === deadPod)
    }, 60_000)
    endpointsMovedAt = Date.now()
  })()
  const deadline = Date.now() + 15_000
  setTimeout(() => { void victim.kill('SIGKILL') }, 1000)
  while (Date.now() < deadline && requests < 3000) {
    requests++
    const settled = endpointsMovedAt !== undefined && Date.now() - endpointsMovedAt > 1000
    try {
      await get(clusterIP, 80, 4000)
    } catch {
      if (settled) errorsAfterUpdate++
      retried++
      try { await get(clusterIP, 80, 4000) } catch { failed++ }
    }
  }
  await watchEndpoints
  t.log(`${requests} requests during the failure: ${retried} retried once, ${failed} failed twice, ${errorsAfterUpdate} errors once the endpoints had moved`)
  t.is(failed, 0, 'no request failed twice')
  t.is(errorsAfterUpdate, 0, 'no errors once the endpoints have updated')
  t.true(requests > 50)
})
