// The Endpoints, node-lifecycle and garbage-collection controllers over an
// in-process store, with a manual clock.
import { CONTROLLER_REVISION, DAEMON_SET, ENDPOINTS, POD, REPLICA_SET } from '../../protocol/kinds.ts'
import test from 'ava'
import { EndpointsController } from '../../daemon/controllers/endpoints.ts'
import { GarbageCollector } from '../../daemon/controllers/gc.ts'
import { NodeLifecycleController } from '../../daemon/controllers/nodelifecycle.ts'
import { pod, ref, StoreHarness } from '../../daemon/store/testing.ts'
import type { KObject } from '../../protocol/k8s.ts'
import { FakeClock } from '../helpers/fake-clock.ts'
import type { MemberHealthView } from '../../daemon/controllers/framework.ts'
import { controllerContext } from '../helpers/controllers.ts'

/** Lets queued reconciles (promise chains) run. */
async function settle (): Promise<void> {
  for (let i = 0; i < 20; i++) await new Promise(resolve => setImmediate(resolve))
}

function withStatus (h: StoreHarness, p: KObject, ip: string, ready: boolean): void {
  const current = h.store.get(POD, 'default', p.metadata.name ?? '') as KObject
  h.ok(h.apply({
    op: 'patch', ref: ref('pods', current.metadata.name ?? '', 'default'), patchType: 'merge', subresource: 'status', now: '2025-01-01T00:00:00Z',
    patch: { status: { podIP: ip, conditions: [{ type: 'Ready', status: ready ? 'True' : 'False' }] } }
  }))
}

test('a named target port that no pod declares gives no endpoints', async t => {
  const h = new StoreHarness()
  const clock = new FakeClock()
  h.create({ apiVersion: 'v1', kind: 'Service', metadata: { name: 'web', namespace: 'default' }, spec: { selector: { app: 'web' }, ports: [{ name: 'http', port: 80, targetPort: 'http' }] } })
  const a = h.create({ ...pod('a', { labels: { app: 'web' }, nodeName: 'n1' }) })
  const b = h.create({ ...pod('b', { labels: { app: 'web' }, nodeName: 'n2' }) })
  h.create({ ...pod('other', { labels: { app: 'db' } }) })
  const ctrl = new EndpointsController()
  ctrl.start(controllerContext(h, clock))
  withStatus(h, a, '127.1.0.5', true)
  withStatus(h, b, '127.1.0.6', false)
  await settle()
  const ep = h.store.get(ENDPOINTS, 'default', 'web')
  ctrl.stop()
  t.truthy(ep, 'an Endpoints object was made')
  // The builder's pods declare no ports, so the named targetPort resolves to nothing.
  t.deepEqual(ep?.subsets, [])
})

test('endpoints with a numeric target port', async t => {
  const h = new StoreHarness()
  const clock = new FakeClock()
  h.create({ apiVersion: 'v1', kind: 'Service', metadata: { name: 'web', namespace: 'default' }, spec: { selector: { app: 'web' }, ports: [{ port: 80, targetPort: 8080 }] } })
  const a = h.create(pod('a', { labels: { app: 'web' }, nodeName: 'n1' }))
  const b = h.create(pod('b', { labels: { app: 'web' }, nodeName: 'n2' }))
  const ctrl = new EndpointsController()
  ctrl.start(controllerContext(h, clock))
  withStatus(h, a, '127.1.0.5', true)
  withStatus(h, b, '127.1.0.6', false)
  await settle()
  const ep = h.store.get(ENDPOINTS, 'default', 'web')
  ctrl.stop()
  const subsets = ep?.subsets as Array<{ addresses?: Array<{ ip: string }>, notReadyAddresses?: Array<{ ip: string }>, ports: unknown[] }>
  t.is(subsets.length, 1)
  t.deepEqual(subsets[0]?.addresses?.map(x => x.ip), ['127.1.0.5'])
  t.deepEqual(subsets[0]?.notReadyAddresses?.map(x => x.ip), ['127.1.0.6'])
  t.deepEqual(subsets[0]?.ports, [{ port: 8080, protocol: 'TCP' }])
})

test('a dead member\'s pods are deleted after the grace period, a live one\'s are kept', async t => {
  const h = new StoreHarness()
  const clock = new FakeClock()
  const members: MemberHealthView[] = [
    { name: 'n1', peerId: 'p1', state: 'alive', since: clock.now() },
    { name: 'n2', peerId: 'p2', state: 'dead', since: clock.now() }
  ]
  h.create(pod('on-n1', { nodeName: 'n1' }))
  h.create(pod('on-n2', { nodeName: 'n2' }))
  const ctrl = new NodeLifecycleController({ evictionGraceMs: 2000, intervalMs: 100 })
  ctrl.start(controllerContext(h, clock, members))
  // bound after the controller started: found through its watch
  h.create(pod('late-on-n2', { nodeName: 'n2' }))
  clock.advance(500)
  await settle()
  t.truthy(h.store.get(POD, 'default', 'on-n2'), 'within the grace period the pod stays')
  clock.advance(2000)
  await settle()
  clock.advance(200)
  await settle()
  t.is(h.store.get(POD, 'default', 'on-n2'), undefined, 'after it, the dead node\'s pod is gone')
  t.is(h.store.get(POD, 'default', 'late-on-n2'), undefined, 'and one bound to it later')
  t.truthy(h.store.get(POD, 'default', 'on-n1'), 'the live node\'s pod stays')
  ctrl.stop()
})

test('foreground deletion removes the dependents first, then the owner', async t => {
  const h = new StoreHarness()
  const clock = new FakeClock()
  const rs = h.create({
    apiVersion: 'apps/v1',
    kind: 'ReplicaSet',
    metadata: { name: 'rs', namespace: 'default' },
    spec: { replicas: 1, selector: { matchLabels: { app: 'x' } }, template: { metadata: { labels: { app: 'x' } }, spec: { containers: [{ name: 'c', image: 'busybox' }] } } }
  })
  h.create({ ...pod('child', { labels: { app: 'x' } }), metadata: { ...pod('child', { labels: { app: 'x' } }).metadata, ownerReferences: [{ apiVersion: 'apps/v1', kind: 'ReplicaSet', name: 'rs', uid: rs.metadata.uid ?? '', controller: true }] } })
  const gc = new GarbageCollector({ sweepMs: 1_000_000 })
  gc.start(controllerContext(h, clock))
  const r = h.apply({ op: 'delete', ref: ref('replicasets', 'rs', 'default', 'apps'), now: '2025-01-01T00:00:00Z', propagationPolicy: 'Foreground' })
  t.true(r.ok)
  t.truthy(h.store.get(REPLICA_SET, 'default', 'rs')?.metadata.deletionTimestamp, 'the owner waits, marked for deletion')
  await settle()
  t.is(h.store.get(POD, 'default', 'child'), undefined, 'the dependent went first')
  t.is(h.store.get(REPLICA_SET, 'default', 'rs'), undefined, 'then the owner')
  gc.stop()
})

test('foreground deletion of a DaemonSet removes its pods and revisions, then the DaemonSet', async t => {
  const h = new StoreHarness()
  const clock = new FakeClock()
  const ds = h.create({
    apiVersion: 'apps/v1',
    kind: 'DaemonSet',
    metadata: { name: 'agent', namespace: 'default' },
    spec: { selector: { matchLabels: { app: 'agent' } }, template: { metadata: { labels: { app: 'agent' } }, spec: { containers: [{ name: 'c', image: 'busybox' }] } } }
  })
  const owner = [{ apiVersion: 'apps/v1', kind: 'DaemonSet', name: 'agent', uid: ds.metadata.uid ?? '', controller: true }]
  h.create({ ...pod('agent-x', { labels: { app: 'agent' } }), metadata: { ...pod('agent-x', { labels: { app: 'agent' } }).metadata, ownerReferences: owner } })
  h.create({ apiVersion: 'apps/v1', kind: 'ControllerRevision', metadata: { name: 'agent-1', namespace: 'default', ownerReferences: owner }, revision: 1, data: {} })
  const gc = new GarbageCollector({ sweepMs: 1_000_000 })
  gc.start(controllerContext(h, clock))
  t.true(h.apply({ op: 'delete', ref: ref('daemonsets', 'agent', 'default', 'apps'), now: '2025-01-01T00:00:00Z', propagationPolicy: 'Foreground' }).ok)
  await settle()
  t.is(h.store.get(POD, 'default', 'agent-x'), undefined)
  t.is(h.store.get(CONTROLLER_REVISION, 'default', 'agent-1'), undefined)
  t.is(h.store.get(DAEMON_SET, 'default', 'agent'), undefined, 'then the owner')
  gc.stop()
})
