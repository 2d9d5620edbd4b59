// ReplicaSet controller over an in-process store: pod creation with owner
// references and labels, scale-down order, adoption, replacement, status.
import { EVENT, POD, REPLICA_SET, REPLICATION_CONTROLLER } from '../../protocol/kinds.ts'
import test from 'ava'
import type { KObject, ResourceType } from '../../protocol/k8s.ts'
import { ReplicaSetController } from '../../daemon/controllers/replicaset.ts'
import { pod, ref, StoreHarness } from '../../daemon/store/testing.ts'
import type { Controller } from '../../daemon/controllers/framework.ts'
import { startControllers } from '../helpers/controllers.ts'
import type { ControllerEnv } from '../helpers/controllers.ts'
import { rfc3339 } from '../../daemon/controllers/framework.ts'


function setup (controllers: Controller[]): ControllerEnv {
  return startControllers(controllers)
}

function replicaSet (name: string, replicas: number, extra: Record<string, unknown> = {}): KObject {
  const labels = { app: name }
  return {
    apiVersion: 'apps/v1',
    kind: 'ReplicaSet',
    metadata: { name, namespace: 'default' },
    spec: { replicas, selector: { matchLabels: labels }, template: { metadata: { labels: { ...labels, tier: 'web' } }, spec: { containers: [{ name: 'main', image: 'busybox:1.36' }] } }, ...extra }
  }
}

function podsOf (h: StoreHarness, ownerUid: string): KObject[] {
  return h.store.list(POD, { namespace: 'default' }).items.filter(p => p.metadata.ownerReferences?.some(r => r.uid === ownerUid))
}

function setReplicas (h: StoreHarness, name: string, replicas: number): void {
  h.ok(h.apply({ op: 'patch', ref: ref('replicasets', name, 'default', 'apps'), patchType: 'merge', patch: { spec: { replicas } }, now: '2025-01-01T00:00:00Z' }))
}

function bind (h: StoreHarness, p: KObject, node: string): void {
  h.ok(h.apply({ op: 'patch', ref: ref('pods', p.metadata.name ?? '', 'default'), patchType: 'merge', patch: { spec: { nodeName: node } }, now: '2025-01-01T00:00:00Z' }))
}

function markReady (h: StoreHarness, p: KObject, at = '2025-01-01T00:00:00Z'): void {
  h.ok(h.apply({
    op: 'patch',
    ref: ref('pods', p.metadata.name ?? '', 'default'),
    patchType: 'merge',
    subresource: 'status',
    patch: { status: { phase: 'Running', conditions: [{ type: 'Ready', status: 'True', lastTransitionTime: at }] } },
    now: at
  }))
}

function rsStatus (h: StoreHarness, name: string): Record<string, unknown> {
  return (h.store.get(REPLICA_SET, 'default', name)?.status ?? {}) as Record<string, unknown>
}

test('creates pods from the template with owner references, labels and generated names', async t => {
  const { h, settle, stop } = setup([new ReplicaSetController()])
  const rs = h.create(replicaSet('web', 3))
  await settle()
  const pods = podsOf(h, rs.metadata.uid ?? '')
  t.is(pods.length, 3)
  for (const p of pods) {
    t.regex(p.metadata.name ?? '', /^web-[a-z0-9]{5}$/)
    t.deepEqual(p.metadata.labels, { app: 'web', tier: 'web' })
    t.deepEqual(p.metadata.ownerReferences, [{ apiVersion: 'apps/v1', kind: 'ReplicaSet', name: 'web', uid: rs.metadata.uid ?? '', controller: true, blockOwnerDeletion: true }])
    t.is(p.metadata.namespace, 'default')
  }
  t.like(rsStatus(h, 'web'), { replicas: 3, fullyLabeledReplicas: 3, readyReplicas: 0, availableReplicas: 0, observedGeneration: 1 })
  const events = h.store.list(EVENT, { namespace: 'default' }).items.filter(e => e.reason === 'SuccessfulCreate')
  t.is(events.length, 3)
  t.true(events.every(e => (e.involvedObject as { name: string }).name === 'web'))
  // Quiet once converged: no further writes.
  const rv = h.store.resourceVersion()
  await settle()
  t.is(h.store.resourceVersion(), rv)
  stop()
})

test('scaling down deletes unscheduled pods first, then not-ready ones', async t => {
  const { h, settle, stop } = setup([new ReplicaSetController()])
  const rs = h.create(replicaSet('web', 4))
  await settle()
  const [a, b, c] = podsOf(h, rs.metadata.uid ?? '') as [KObject, KObject, KObject, KObject]
  bind(h, a, 'node-1')
  bind(h, b, 'node-2')
  bind(h, c, 'node-3')
  markReady(h, c)
  setReplicas(h, 'web', 3)
  await settle()
  let left = podsOf(h, rs.metadata.uid ?? '').map(p => p.metadata.name).sort()
  t.deepEqual(left, [a, b, c].map(p => p.metadata.name).sort(), 'the unscheduled pod went first')
  setReplicas(h, 'web', 1)
  await settle()
  left = podsOf(h, rs.metadata.uid ?? '').map(p => p.metadata.name)
  t.deepEqual(left, [c.metadata.name], 'the ready pod stays')
  t.is(h.store.list(EVENT, { namespace: 'default' }).items.filter(e => e.reason === 'SuccessfulDelete').length, 3)
  t.like(rsStatus(h, 'web'), { replicas: 1, readyReplicas: 1, availableReplicas: 1 })
  stop()
})

test('status counts ready pods; availability waits for minReadySeconds', async t => {
  const { h, clock, settle, stop } = setup([new ReplicaSetController()])
  const rs = h.create(replicaSet('web', 3, { minReadySeconds: 30 }))
  await settle()
  const pods = podsOf(h, rs.metadata.uid ?? '')
  const now = rfc3339(clock.now())
  markReady(h, pods[0] as KObject, now)
  markReady(h, pods[1] as KObject, now)
  await settle()
  t.like(rsStatus(h, 'web'), { replicas: 3, readyReplicas: 2, availableReplicas: 0 })
  clock.advance(31_000)
  await settle()
  t.like(rsStatus(h, 'web'), { replicas: 3, readyReplicas: 2, availableReplicas: 2, observedGeneration: 1 })
  stop()
})

test('adopts a matching orphan and replaces a deleted pod; finished pods do not count', async t => {
  const { h, settle, stop } = setup([new ReplicaSetController()])
  h.create(pod('orphan', { labels: { app: 'web' } }))
  const rs = h.create(replicaSet('web', 2))
  await settle()
  let pods = podsOf(h, rs.metadata.uid ?? '')
  t.is(pods.length, 2)
  t.true(pods.some(p => p.metadata.name === 'orphan'))
  h.ok(h.apply({ op: 'delete', ref: ref('pods', 'orphan', 'default'), now: '2025-01-01T00:00:00Z' }))
  await settle()
  pods = podsOf(h, rs.metadata.uid ?? '')
  t.is(pods.length, 2)
  t.false(pods.some(p => p.metadata.name === 'orphan'))
  const done = pods[0] as KObject
  h.ok(h.apply({ op: 'patch', ref: ref('pods', done.metadata.name ?? '', 'default'), patchType: 'merge', subresource: 'status', patch: { status: { phase: 'Succeeded' } }, now: '2025-01-01T00:00:00Z' }))
  await settle()
  t.is(podsOf(h, rs.metadata.uid ?? '').length, 3, 'a succeeded pod is replaced')
  t.like(rsStatus(h, 'web'), { replicas: 2 })
  stop()
})

test('stop drops the watches: nothing happens afterwards', async t => {
  const { h, settle, stop } = setup([new ReplicaSetController()])
  stop()
  const rs = h.create(replicaSet('web', 2))
  await settle()
  t.is(podsOf(h, rs.metadata.uid ?? '').length, 0)
})

test('a ReplicationController is kept at its count by the same machinery, with its label-map selector and its own status', async t => {
  const { h, settle, stop } = setup([new ReplicaSetController({ kind: REPLICATION_CONTROLLER }), new ReplicaSetController()])
  const rc = h.create({
    apiVersion: 'v1',
    kind: 'ReplicationController',
    metadata: { name: 'nginx', namespace: 'default' },
    spec: { replicas: 3, template: { metadata: { labels: { app: 'nginx' } }, spec: { containers: [{ name: 'nginx', image: 'nginx' }] } } }
  })
  t.deepEqual((rc.spec as { selector: unknown }).selector, { app: 'nginx' }, 'the selector defaults to the template labels')
  await settle()
  let pods = podsOf(h, rc.metadata.uid ?? '')
  t.is(pods.length, 3)
  t.true(pods.every(p => p.metadata.ownerReferences?.[0]?.kind === 'ReplicationController' && p.metadata.name?.startsWith('nginx-') === true))
  for (const p of pods) markReady(h, p)
  h.ok(h.apply({ op: 'patch', ref: ref('replicationcontrollers', 'nginx', 'default'), patchType: 'merge', subresource: 'scale', patch: { spec: { replicas: 1 } }, now: '2025-01-01T00:00:00Z' }))
  await settle()
  pods = podsOf(h, rc.metadata.uid ?? '').filter(p => p.metadata.deletionTimestamp === undefined)
  t.is(pods.length, 1)
  const status = h.store.get(REPLICATION_CONTROLLER, 'default', 'nginx')?.status
  t.is(status?.replicas, 1)
  t.is(status?.readyReplicas, 1)
  t.is(h.store.list(REPLICA_SET, {}).items.length, 0, 'the ReplicaSet controller leaves it alone')
  stop()
})
