// The API's Service, default/kubernetes, and its Endpoints, kept by the
// NodeKeeper from membership; the allocator never hands out its address; the
// service proxy forwards it to the members' API addresses; and every
// container's KUBERNETES_SERVICE_* variables come from it (in-process store).
import { readFileSync } from 'node:fs'
import { connect, createServer } from 'node:net'
import type { AddressInfo, Server } from 'node:net'
import test from 'ava'
import { apiSubsets, NodeKeeper } from '../../daemon/controllers/nodes.ts'
import type { MemberInfo } from '../../daemon/controllers/nodes.ts'
import { podEnv, serviceEnv } from '../../daemon/kubelet/env.ts'
import { createLogger } from '../../daemon/log/log.ts'
import { ServiceProxy } from '../../daemon/network/proxy.ts'
import { namespace, pod, StoreHarness } from '../../daemon/store/testing.ts'
import { ENDPOINTS, SERVICE } from '../../protocol/kinds.ts'
import type { Pod } from '../../protocol/core-v1.ts'
import type { KObject } from '../../protocol/k8s.ts'
import { FakeClock } from '../helpers/fake-clock.ts'

function member (name: string, api: string, state: MemberInfo['state'] = 'alive'): MemberInfo {
  return { name, peerId: `peer-${name}`, api, state, cpu: 2, memoryBytes: 2 ** 30, version: 'test' }
}

/** A store and a NodeKeeper over it whose members the test sets. */
function keeper (serviceCidr: string, members: MemberInfo[]): { h: StoreHarness, nodes: NodeKeeper, members: MemberInfo[] } {
  const h = new StoreHarness()
  const nodes = new NodeKeeper({
    store: h.store,
    writer: { write: async cmd => h.apply(cmd) },
    isLeader: () => true,
    members: () => members,
    clock: new FakeClock(),
    log: createLogger('silent', 'test'),
    network: { serviceCidr, podCidr: '10.128.0.0/10', clusterDomain: 'cluster.local' }
  })
  return { h, nodes, members }
}

test('the kubernetes Service is at the first address of the service range, port 443 (https) to the API port', async t => {
  const { h, nodes } = keeper('10.96.0.0/16', [member('p1', '10.0.0.2:7070')])
  await nodes.reconcile()
  const svc = h.store.get(SERVICE, 'default', 'kubernetes')
  t.is(svc?.spec?.clusterIP, '10.96.0.1')
  t.deepEqual(svc?.spec?.clusterIPs, ['10.96.0.1'])
  t.is(svc?.spec?.type, 'ClusterIP')
  t.deepEqual(svc?.spec?.ports, [{ name: 'https', port: 443, protocol: 'TCP', targetPort: 7070 }])
  t.deepEqual(svc?.spec?.selector, undefined)
  t.deepEqual(svc?.metadata.labels, { component: 'apiserver', provider: 'kubernetes' })
  t.is(h.store.get(SERVICE, 'kube-system', 'kube-dns')?.spec?.clusterIP, '10.96.0.10')
  t.deepEqual(h.store.get(ENDPOINTS, 'default', 'kubernetes')?.subsets, [{ addresses: [{ ip: '10.0.0.2' }], ports: [{ name: 'https', port: 7070, protocol: 'TCP' }] }])
})

test('its Endpoints list every alive member\'s API address, and are written only when membership changes', async t => {
  const { h, nodes, members } = keeper('10.96.0.0/16', [member('p2', '10.0.0.3:7070'), member('p1', '10.0.0.2:7070'), member('p3', '10.0.0.4:7070', 'suspect')])
  await nodes.reconcile()
  const ips = (): string[] => (h.store.get(ENDPOINTS, 'default', 'kubernetes')?.subsets ?? []).flatMap(s => (s.addresses ?? []).map(a => a.ip))
  t.deepEqual(ips(), ['10.0.0.2', '10.0.0.3'])
  const rv = h.store.get(ENDPOINTS, 'default', 'kubernetes')?.metadata.resourceVersion
  await nodes.reconcile()
  t.is(h.store.get(ENDPOINTS, 'default', 'kubernetes')?.metadata.resourceVersion, rv, 'nothing changed, nothing written')

  members[2] = member('p3', '10.0.0.4:7070')
  members[0] = member('p2', '10.0.0.3:7070', 'dead')
  members.push(member('p4', '[fd00::5]:7070'))
  await nodes.reconcile()
  t.deepEqual(ips(), ['10.0.0.2', '10.0.0.4', 'fd00::5'])
  t.not(h.store.get(ENDPOINTS, 'default', 'kubernetes')?.metadata.resourceVersion, rv)
  // A deleted Endpoints object comes back.
  h.ok(h.apply({ op: 'delete', ref: { group: '', resource: 'endpoints', namespace: 'default', name: 'kubernetes' }, now: '2025-01-01T00:00:00Z' }))
  await nodes.reconcile()
  t.deepEqual(ips(), ['10.0.0.2', '10.0.0.4', 'fd00::5'])
})

test('apiSubsets: one subset per port, the most used first; unusable addresses left out', t => {
  t.deepEqual(apiSubsets([member('a', '10.0.0.2:7070'), member('b', '10.0.0.3:8080'), member('c', '10.0.0.4:8080'), member('d', '0.0.0.0:7070'), member('e', 'host.example:7070')]), [
    { addresses: [{ ip: '10.0.0.3' }, { ip: '10.0.0.4' }], ports: [{ name: 'https', port: 8080, protocol: 'TCP' }] },
    { addresses: [{ ip: '10.0.0.2' }], ports: [{ name: 'https', port: 7070, protocol: 'TCP' }] }
  ])
  t.deepEqual(apiSubsets([]), [])
})

test('the allocator never hands the kubernetes Service\'s address to another Service', async t => {
  // A /28: 16 addresses, the first ten kept back, the last the broadcast: four to give out.
  const { h, nodes } = keeper('10.96.7.0/28', [member('p1', '10.0.0.2:7070')])
  await nodes.reconcile()
  t.is(h.store.get(SERVICE, 'default', 'kubernetes')?.spec?.clusterIP, '10.96.7.1')
  const given: string[] = []
  for (let i = 0; i < 4; i++) {
    const s = h.create({ apiVersion: 'v1', kind: 'Service', metadata: { name: `s${i}`, namespace: 'default' }, spec: { ports: [{ port: 80 }] } })
    given.push((s.spec as { clusterIP: string }).clusterIP)
  }
  t.deepEqual(given.sort(), ['10.96.7.11', '10.96.7.12', '10.96.7.13', '10.96.7.14'])
  const full = h.tryCreate({ apiVersion: 'v1', kind: 'Service', metadata: { name: 'full', namespace: 'default' }, spec: { ports: [{ port: 80 }] } })
  t.false(full.ok)
  const taken = h.tryCreate({ apiVersion: 'v1', kind: 'Service', metadata: { name: 'taken', namespace: 'default' }, spec: { clusterIP: '10.96.7.1', ports: [{ port: 80 }] } })
  t.false(taken.ok)
})

test('every container gets HOSTNAME and the kubernetes Service\'s variables, even without service links', async t => {
  const { h, nodes } = keeper('10.96.0.0/16', [member('p1', '10.0.0.2:7070')])
  await nodes.reconcile()
  h.create(namespace('apps'))
  h.create({ apiVersion: 'v1', kind: 'Service', metadata: { name: 'web', namespace: 'apps' }, spec: { clusterIP: '10.96.3.3', ports: [{ port: 80 }] } })
  const master = {
    KUBERNETES_SERVICE_HOST: '10.96.0.1',
    KUBERNETES_SERVICE_PORT: '443',
    KUBERNETES_SERVICE_PORT_HTTPS: '443',
    KUBERNETES_PORT: 'tcp://10.96.0.1:443',
    KUBERNETES_PORT_443_TCP: 'tcp://10.96.0.1:443',
    KUBERNETES_PORT_443_TCP_PROTO: 'tcp',
    KUBERNETES_PORT_443_TCP_PORT: '443',
    KUBERNETES_PORT_443_TCP_ADDR: '10.96.0.1'
  }
  const p = (spec: Record<string, unknown> = {}, name = 'web-0'): Pod => ({ ...pod(name, { namespace: 'apps' }), spec: { containers: [], ...spec } }) as Pod
  t.deepEqual(podEnv(h.store, p({ enableServiceLinks: false })), { HOSTNAME: 'web-0', ...master })
  const linked = podEnv(h.store, p({ hostname: 'box' }))
  t.is(linked.HOSTNAME, 'box')
  t.is(linked.WEB_SERVICE_HOST, '10.96.3.3')
  t.is(linked.KUBERNETES_SERVICE_HOST, '10.96.0.1')
  // A pod name longer than a DNS label is cut, as Kubernetes cuts it.
  t.is(podEnv(h.store, p({}, `${'a'.repeat(62)}-b`)).HOSTNAME, 'a'.repeat(62))
  t.deepEqual(serviceEnv(h.store, 'default'), master)
  // A namespace's own `kubernetes` Service wins over the API's.
  h.create({ apiVersion: 'v1', kind: 'Service', metadata: { name: 'kubernetes', namespace: 'apps' }, spec: { clusterIP: '10.96.3.4', ports: [{ port: 8443 }] } })
  t.is(serviceEnv(h.store, 'apps').KUBERNETES_SERVICE_HOST, '10.96.3.4')
  t.is(serviceEnv(h.store, 'apps', false).KUBERNETES_SERVICE_HOST, '10.96.0.1')
})

/** Whether this process may listen on port 443. */
function mayBindLowPorts (): boolean {
  if (process.getuid?.() === 0) return true
  try { return Number(readFileSync('/proc/sys/net/ipv4/ip_unprivileged_port_start', 'utf8')) <= 443 } catch { return false }
}

test('the service proxy forwards the kubernetes Service\'s clusterIP:443 to the members\' API addresses', async t => {
  if (!mayBindLowPorts()) {
    t.log('cannot listen on port 443 here: skipped')
    t.pass()
    return
  }
  // A stand-in for the API on a loopback address: it answers its name.
  const api: Server = createServer(s => {
    s.on('error', () => {})
    s.end('api-1')
  })
  await new Promise<void>(resolve => api.listen(0, '127.0.152.2', resolve))
  t.teardown(() => { api.close() })
  const { h, nodes } = keeper('127.96.152.0/24', [member('p1', `127.0.152.2:${(api.address() as AddressInfo).port}`)])
  await nodes.reconcile()
  const proxy = new ServiceProxy({ store: h.store, nodeName: 'p1', nodeAddress: '127.0.152.2', dialRemote: async () => { throw new Error('no tunnel in this test') }, log: createLogger('silent', 'test') })
  await proxy.start()
  t.teardown(async () => { await proxy.stop() })
  t.true(proxy.listening().includes('TCP/127.96.152.1:443'))
  const answer = await new Promise<string>((resolve, reject) => {
    const socket = connect({ host: '127.96.152.1', port: 443 })
    let text = ''
    socket.on('data', (d: Buffer) => { text += d.toString() })
    socket.on('end', () => { resolve(text) })
    socket.on('error', reject)
  })
  t.is(answer, 'api-1')
})

test('a kubernetes Service someone made first is kept; its Endpoints are still kept', async t => {
  const { h, nodes } = keeper('127.96.0.0/16', [member('p1', '10.0.0.2:7070')])
  const mine: KObject = { apiVersion: 'v1', kind: 'Service', metadata: { name: 'kubernetes', namespace: 'default' }, spec: { clusterIP: '127.96.0.1', ports: [{ name: 'https', port: 443, targetPort: 6443 }] } }
  h.create(mine)
  await nodes.reconcile()
  t.deepEqual(h.store.get(SERVICE, 'default', 'kubernetes')?.spec?.ports?.[0]?.targetPort, 6443)
  t.is(h.store.get(ENDPOINTS, 'default', 'kubernetes')?.subsets?.[0]?.addresses?.[0]?.ip, '10.0.0.2')
})
