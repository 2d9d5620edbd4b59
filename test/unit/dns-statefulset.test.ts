// Stable DNS names for a StatefulSet's pods: the Endpoints controller puts
// each pod's hostname on its address when the pod's subdomain is the
// headless service, and the cluster DNS answers <pod>.<svc>.<ns>.svc.<domain>
// with that pod's IP and <svc>.<ns>.svc.<domain> with every ready one.
import test from 'ava'
import { createSocket } from 'node:dgram'
import { Resolver } from 'node:dns/promises'
import { decode, encode, RECURSION_DESIRED } from 'dns-packet'
import type { DecodedPacket, RecordType } from 'dns-packet'
import { EndpointsController, subsetsFor } from '../../daemon/controllers/endpoints.ts'
import { createLogger } from '../../daemon/log/log.ts'
import { DnsServer } from '../../daemon/network/dns.ts'
import { ref } from '../../daemon/store/testing.ts'
import type { StoreHarness } from '../../daemon/store/testing.ts'
import type { Pod, Service } from '../../protocol/core-v1.ts'
import { ENDPOINTS } from '../../protocol/kinds.ts'
import type { KObject } from '../../protocol/k8s.ts'
import { startControllers } from '../helpers/controllers.ts'

const HOST = '127.0.0.1'

function statefulPod (name: string, ip: string, ready: boolean, subdomain = 'nginx'): KObject {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, namespace: 'default', labels: { app: 'nginx' } },
    spec: { hostname: name, subdomain, containers: [{ name: 'main', image: 'busybox', ports: [{ name: 'web', containerPort: 80 }] }] },
    status: { phase: 'Running', podIP: ip, conditions: [{ type: 'Ready', status: ready ? 'True' : 'False' }] }
  }
}

const headless: KObject = {
  apiVersion: 'v1',
  kind: 'Service',
  metadata: { name: 'nginx', namespace: 'default' },
  spec: { clusterIP: 'None', selector: { app: 'nginx' }, ports: [{ name: 'web', port: 80 }] }
}

async function udp (port: number, name: string, type: RecordType): Promise<DecodedPacket & { rcode: string }> {
  const sock = createSocket('udp4')
  try {
    return await new Promise((resolve, reject) => {
      const timer = setTimeout(() => { reject(new Error('no UDP reply')) }, 5000)
      sock.on('message', m => { clearTimeout(timer); resolve(decode(m) as DecodedPacket & { rcode: string }) })
      sock.send(encode({ type: 'query', id: 7, flags: RECURSION_DESIRED, questions: [{ type, name, class: 'IN' }] }), port, HOST)
    })
  } finally {
    sock.close()
  }
}

/** Creates a pod with its status (the store takes status on create only through the subresource). */
function createPod (h: StoreHarness, p: KObject): void {
  const { status, ...rest } = p
  h.create(rest)
  h.ok(h.apply({ op: 'patch', ref: ref('pods', p.metadata.name ?? '', 'default'), patchType: 'merge', subresource: 'status', patch: { status }, now: '2025-01-01T00:00:00Z' }))
}

test('subsetsFor: an address carries the pod\'s hostname only when its subdomain is the service', t => {
  const pods = [statefulPod('web-0', '127.64.3.10', true), statefulPod('other-0', '127.64.3.11', true, 'elsewhere')] as Pod[]
  const [subset] = subsetsFor(headless as Service, pods)
  t.deepEqual(subset?.addresses?.map(a => [a.ip, a.hostname]), [['127.64.3.10', 'web-0'], ['127.64.3.11', undefined]])
})

test('each StatefulSet pod resolves by its stable name to its own IP; the headless service to every ready one', async t => {
  const env = startControllers([new EndpointsController()])
  t.teardown(env.stop)
  const { h } = env
  h.create(headless)
  createPod(h, statefulPod('web-0', '127.64.3.10', true))
  createPod(h, statefulPod('web-1', '127.64.3.11', true))
  createPod(h, statefulPod('web-2', '127.64.3.12', false))
  await env.settle()
  const ep = h.store.get(ENDPOINTS, 'default', 'nginx')
  t.deepEqual(ep?.subsets?.[0]?.addresses?.map(a => [a.hostname, a.ip]), [['web-0', '127.64.3.10'], ['web-1', '127.64.3.11']])
  t.deepEqual(ep?.subsets?.[0]?.notReadyAddresses?.map(a => [a.hostname, a.ip]), [['web-2', '127.64.3.12']])

  const server = new DnsServer({ store: h.store, listen: [{ host: HOST, port: 0 }], log: createLogger('silent', 'test') })
  await server.start()
  t.teardown(async () => { await server.stop() })
  const port = server.addresses()[0]?.port ?? 0
  const resolver = new Resolver({ timeout: 2000, tries: 1 })
  resolver.setServers([`${HOST}:${port}`])

  t.deepEqual(await resolver.resolve4('web-0.nginx.default.svc.cluster.local'), ['127.64.3.10'])
  t.deepEqual(await resolver.resolve4('web-1.nginx.default.svc.cluster.local'), ['127.64.3.11'])
  t.deepEqual((await resolver.resolve4('nginx.default.svc.cluster.local')).sort(), ['127.64.3.10', '127.64.3.11'])
  t.is((await udp(port, 'web-2.nginx.default.svc.cluster.local', 'A')).rcode, 'NXDOMAIN', 'not ready: no name yet')
  const srv = await udp(port, '_web._tcp.nginx.default.svc.cluster.local', 'SRV')
  t.deepEqual(srv.answers?.map(a => ((a as { data: unknown }).data as { target: string }).target), ['web-0.nginx.default.svc.cluster.local', 'web-1.nginx.default.svc.cluster.local'])

  // Once ready, web-2 has its name; a pod made again under a name keeps it, at its new IP.
  h.ok(h.apply({ op: 'patch', ref: ref('pods', 'web-2', 'default'), patchType: 'merge', subresource: 'status', patch: { status: { conditions: [{ type: 'Ready', status: 'True' }] } }, now: '2025-01-01T00:00:00Z' }))
  h.ok(h.apply({ op: 'delete', ref: ref('pods', 'web-1', 'default'), now: '2025-01-01T00:00:00Z' }))
  createPod(h, statefulPod('web-1', '127.64.4.20', true))
  await env.settle()
  t.deepEqual(await resolver.resolve4('web-2.nginx.default.svc.cluster.local'), ['127.64.3.12'])
  t.deepEqual(await resolver.resolve4('web-1.nginx.default.svc.cluster.local'), ['127.64.4.20'])
})
