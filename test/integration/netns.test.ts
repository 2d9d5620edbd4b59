// Three peers as three hosts: each shoald in a network namespace the test
// makes (its own loopback, one address on a private bridge), so pod and
// service addresses are really per host and an endpoint on another peer is
// reachable only through the encrypted tunnel. From inside each host, a
// Service's address reaches all 3 backends; every host's NodePort and DNS
// answer from outside; and a SIGKILLed host costs a client at most a retry.
import test from 'ava'
import { spawn } from 'node:child_process'
import { Resolver } from 'node:dns/promises'
import { join } from 'node:path'
import type { KObject } from '../../protocol/k8s.ts'
import { api, deploymentOf, echoContainer, startPeer, stopAll, tempDir, waitFor, waitForLeader, waitForReadyNodes } from '../helpers/cluster.ts'
import type { Peer } from '../helpers/cluster.ts'
import { makeHosts, netnsAvailable, nodeIn } from '../helpers/netns.ts'

const available = netnsAvailable()
const CI = process.env.CI === 'true'
const maybe = available === true || CI ? test : test.skip
const DNS_PORT = 10053

/** A client script for inside a host: N requests (or until a deadline) to HOST:PORT, each on a new connection, retried once; JSON counts on stdout. */
const CLIENT = `
const http = require('http')
const get = (host, port) => new Promise((resolve, reject) => {
  const r = http.request({ host, port, path: '/', agent: false, timeout: 4000 }, s => { let b = ''; s.on('data', c => { b += c }); s.on('end', () => s.statusCode === 200 ? resolve(b) : reject(new Error('status ' + s.statusCode))) })
  r.on('timeout', () => r.destroy(new Error('timeout'))); r.on('error', reject); r.end()
})
;(async () => {
  const [host, port, n, ms] = [process.env.HOST, Number(process.env.PORT), Number(process.env.N), Number(process.env.MS)]
  const out = { requests: 0, retried: 0, failed: 0, backends: {} }
  const deadline = Date.now() + ms
  while (out.requests < n && Date.now() < deadline) {
    out.requests++
    let name
    try { name = await get(host, port) } catch { out.retried++; try { name = await get(host, port) } catch { out.failed++ } }
    if (name !== undefined) out.backends[name] = (out.backends[name] || 0) + 1
  }
  process.stdout.write(JSON.stringify(out))
})()
`

interface ClientCounts { requests: number, retried: number, failed: number, backends: Record<string, number> }

function clientIn (ns: string, host: string, port: number, n: number, ms: number): Promise<ClientCounts> {
  return new Promise((resolve, reject) => {
    const child = spawn('ip', ['netns', 'exec', ns, process.execPath, '-e', CLIENT], { env: { ...process.env, HOST: host, PORT: String(port), N: String(n), MS: String(ms) }, stdio: ['ignore', 'pipe', 'pipe'] })
    let out = ''
    let err = ''
    child.stdout.setEncoding('utf8').on('data', (c: string) => { out += c })
    child.stderr.setEncoding('utf8').on('data', (c: string) => { err += c })
    const timer = setTimeout(() => { child.kill('SIGKILL') }, ms + 30_000)
    child.on('close', code => {
      clearTimeout(timer)
      if (code !== 0) reject(new Error(`client in ${ns} exited ${String(code)}: ${err}`))
      else resolve(JSON.parse(out) as ClientCounts)
    })
  })
}

maybe('peers in their own network namespaces: services across hosts through the tunnel, NodePorts, DNS, a dead host', async t => {
  if (available !== true) {
    t.fail(`${available}; CI must run these as root`)
    return
  }
  t.timeout(300_000)
  const hosts = makeHosts(3)
  const dir = tempDir('netns')
  const peers: Peer[] = []
  t.teardown(async () => {
    await stopAll(peers, dir)
    hosts.cleanup()
  })
  // The API on a bridge address requires TLS by default; these plain-HTTP calls stand for a trusted host network.
  const args = ['--dns-port', String(DNS_PORT), '--api-tls', 'optional']
  const [first, ...rest] = hosts.ips
  peers.push(await startPeer({ ip: first as string, name: 'h1', dataDir: join(dir, 'h1'), netns: hosts.names[0], args }))
  const key = join(dir, 'h1', 'cluster.key')
  peers.push(...await Promise.all(rest.map(async (ip, i) => await startPeer({ ip, name: `h${i + 2}`, dataDir: join(dir, `h${i + 2}`), netns: hosts.names[i + 1], join: [(peers[0] as Peer).addr], clusterKey: key, args }))))
  const leader = await waitForLeader(peers, 60_000)
  await waitForReadyNodes(leader, 3)
  const deployment = deploymentOf('echo', 3, echoContainer())
  t.is((await api(leader, 'POST', '/apis/apps/v1/namespaces/default/deployments', deployment)).status, 201)
  const svc = await api(leader, 'POST', '/api/v1/namespaces/default/services', { apiVersion: 'v1', kind: 'Service', metadata: { name: 'echo' }, spec: { type: 'NodePort', selector: { app: 'echo' }, ports: [{ port: 80, targetPort: 8080 }] } })
  t.is(svc.status, 201)
  const clusterIP = svc.body.spec.clusterIP as string
  const nodePort = svc.body.spec.ports[0].nodePort as number
  const pods = await waitFor('3 Ready pods on 3 hosts', async () => {
    const items = ((await api(leader, 'GET', '/api/v1/namespaces/default/pods?labelSelector=app%3Decho')).body.items ?? []) as any[]
    const ready = items.filter(p => (p.status?.conditions ?? []).some((c: any) => c.type === 'Ready' && c.status === 'True'))
    return ready.length === 3 && ready
  }, 90_000)
  const names = pods.map((p: any) => p.metadata.name as string).sort()
  t.is(new Set(pods.map((p: any) => p.spec.nodeName)).size, 3)
  // A pod's address is its host's own loopback: the test cannot reach it, and other hosts only through the tunnel.
  t.throws(() => nodeIn(hosts.names[0] as string, `require('net').connect(8080, '${pods.find((p: any) => p.spec.nodeName !== 'h1').status.podIP as string}').on('connect', () => process.exit(0)).on('error', () => process.exit(3))`, 10_000))

  // From inside every host: the service address reaches all 3 backends (1 local, 2 through the tunnel).
  for (const ns of hosts.names) {
    await waitFor(`every backend from ${ns}`, async () => Object.keys((await clientIn(ns, clusterIP, 80, 30, 20_000)).backends).length === 3, 30_000)
    const counts = await clientIn(ns, clusterIP, 80, 300, 60_000)
    t.deepEqual(Object.keys(counts.backends).sort(), names, `${ns}: ${JSON.stringify(counts)}`)
    t.is(counts.failed + counts.retried, 0, ns)
  }
  // From outside: every host's NodePort, and every host's DNS.
  for (const ip of hosts.ips) {
    const seen = new Set<string>()
    for (let i = 0; i < 30; i++) seen.add(await (await fetch(`http://${ip}:${nodePort}/`, { signal: AbortSignal.timeout(5000), headers: { connection: 'close' } })).text())
    t.deepEqual([...seen].sort(), names, `NodePort on ${ip}`)
    const r = new Resolver({ timeout: 2000, tries: 2 })
    r.setServers([`${ip}:${DNS_PORT}`])
    t.deepEqual(await r.resolve4('echo.default.svc.cluster.local'), [clusterIP], `DNS on ${ip}`)
  }

  // A host dies: a client inside another host keeps being answered (a retry at most).
  const victim = peers.find(p => p !== leader) as Peer
  const watcher = hosts.names[peers.indexOf(peers.find(p => p !== leader && p !== victim) as Peer)] as string
  const during = clientIn(watcher, clusterIP, 80, 5000, 12_000)
  await new Promise(resolve => setTimeout(resolve, 1000))
  await victim.kill('SIGKILL')
  const counts = await during
  t.log(`${counts.requests} requests while a host died: ${counts.retried} retried once, ${counts.failed} failed twice`)
  t.is(counts.failed, 0)
  t.true(counts.requests > 50)
})
