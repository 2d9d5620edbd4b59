// The disruption controller over an in-process store: a PodDisruptionBudget's
// status as Kubernetes computes it (expectedPods from the pods or from their
// controllers' scale, desiredHealthy, currentHealthy, disruptionsAllowed,
// disruptedPods and their expiry, observedGeneration, the DisruptionAllowed
// condition, the fail-safe when a controller is missing).
import test from 'ava'
import { EVENT, POD_DISRUPTION_BUDGET } from '../../protocol/kinds.ts'
import type { KObject, OwnerReference } from '../../protocol/k8s.ts'
import type { PodDisruptionBudgetStatus } from '../../protocol/policy-v1.ts'
import { DisruptionController } from '../../daemon/controllers/disruption.ts'
import { rfc3339 } from '../../daemon/controllers/framework.ts'
import { NOW, ref } from '../../daemon/store/testing.ts'
import type { StoreHarness } from '../../daemon/store/testing.ts'
import { startControllers } from '../helpers/controllers.ts'
import type { ControllerEnv } from '../helpers/controllers.ts'

const LABELS = { app: 'web' }

function setup (): ControllerEnv {
  return startControllers([new DisruptionController()])
}

function owner (o: KObject): OwnerReference {
  return { apiVersion: o.apiVersion, kind: o.kind, name: o.metadata.name ?? '', uid: o.metadata.uid ?? '', controller: true }
}

const template = { metadata: { labels: LABELS }, spec: { containers: [{ name: 'main', image: 'busybox:1.36' }] } }

function deployment (h: StoreHarness, replicas: number): KObject {
  return h.create({ apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: 'web', namespace: 'default' }, spec: { replicas, selector: { matchLabels: LABELS }, template } })
}

function replicaSet (h: StoreHarness, name: string, replicas: number, controller?: KObject): KObject {
  return h.create({
    apiVersion: 'apps/v1',
    kind: 'ReplicaSet',
    metadata: { name, namespace: 'default', ...(controller !== undefined ? { ownerReferences: [owner(controller)] } : {}) },
    spec: { replicas, selector: { matchLabels: LABELS }, template }
  })
}

/** A pod of `controller` (if any), Running, ready or not. */
function podOf (h: StoreHarness, name: string, controller: KObject | undefined, ready = true): KObject {
  h.create({
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, namespace: 'default', labels: LABELS, ...(controller !== undefined ? { ownerReferences: [owner(controller)] } : {}) },
    spec: { nodeName: 'n1', containers: [{ name: 'main', image: 'busybox:1.36' }] }
  })
  return h.ok(h.apply({
    op: 'patch',
    ref: ref('pods', name, 'default'),
    patchType: 'merge',
    subresource: 'status',
    patch: { status: { phase: 'Running', conditions: [{ type: 'Ready', status: ready ? 'True' : 'False' }] } },
    now: NOW
  }))
}

function budget (h: StoreHarness, spec: Record<string, unknown>): KObject {
  return h.create({ apiVersion: 'policy/v1', kind: 'PodDisruptionBudget', metadata: { name: 'web', namespace: 'default' }, spec: { selector: { matchLabels: LABELS }, ...spec } })
}

function status (h: StoreHarness): PodDisruptionBudgetStatus {
  const s = h.store.get(POD_DISRUPTION_BUDGET, 'default', 'web')?.status
  if (s === undefined) throw new Error('no status yet')
  return s
}

function counts (s: PodDisruptionBudgetStatus): Record<string, unknown> {
  return { expectedPods: s.expectedPods, desiredHealthy: s.desiredHealthy, currentHealthy: s.currentHealthy, disruptionsAllowed: s.disruptionsAllowed }
}

test('an integer minAvailable counts the matching pods; the condition says whether a disruption is allowed', async t => {
  const { h, settle, stop } = setup()
  const rs = replicaSet(h, 'web', 3)
  for (const n of ['a', 'b', 'c']) podOf(h, n, rs)
  budget(h, { minAvailable: 2 })
  await settle()
  const s = status(h)
  t.deepEqual(counts(s), { expectedPods: 3, desiredHealthy: 2, currentHealthy: 3, disruptionsAllowed: 1 })
  t.is(s.observedGeneration, 1)
  t.like(s.conditions?.[0], { type: 'DisruptionAllowed', status: 'True', reason: 'SufficientPods', observedGeneration: 1 })

  // A spec change: a new generation, observed; nothing allowed any more.
  h.ok(h.apply({ op: 'patch', ref: ref('poddisruptionbudgets', 'web', 'default', 'policy'), patchType: 'merge', patch: { spec: { minAvailable: 3 } }, now: NOW }))
  await settle()
  const after = status(h)
  t.deepEqual(counts(after), { expectedPods: 3, desiredHealthy: 3, currentHealthy: 3, disruptionsAllowed: 0 })
  t.is(after.observedGeneration, 2)
  t.like(after.conditions?.[0], { type: 'DisruptionAllowed', status: 'False', reason: 'InsufficientPods', observedGeneration: 2 })
  stop()
})

test('maxUnavailable counts the Deployment\'s scale through its ReplicaSets, once', async t => {
  const { h, settle, stop } = setup()
  const d = deployment(h, 4)
  const oldRs = replicaSet(h, 'web-old', 1, d)
  const newRs = replicaSet(h, 'web-new', 3, d)
  podOf(h, 'a', oldRs)
  podOf(h, 'b', newRs)
  podOf(h, 'c', newRs)
  budget(h, { maxUnavailable: 1 })
  await settle()
  t.deepEqual(counts(status(h)), { expectedPods: 4, desiredHealthy: 3, currentHealthy: 3, disruptionsAllowed: 0 })

  // Scaling the Deployment changes the budget with no pod changing.
  h.ok(h.apply({ op: 'patch', ref: ref('deployments', 'web', 'default', 'apps'), patchType: 'merge', patch: { spec: { replicas: 3 } }, now: NOW }))
  await settle()
  t.deepEqual(counts(status(h)), { expectedPods: 3, desiredHealthy: 2, currentHealthy: 3, disruptionsAllowed: 1 })
  stop()
})

test('a percentage minAvailable rounds up over the scale of ReplicaSets, StatefulSets and ReplicationControllers', async t => {
  const { h, settle, stop } = setup()
  const rs = replicaSet(h, 'web', 2)
  const sts = h.create({ apiVersion: 'apps/v1', kind: 'StatefulSet', metadata: { name: 'db', namespace: 'default' }, spec: { replicas: 2, serviceName: 'db', selector: { matchLabels: LABELS }, template } })
  const rc = h.create({ apiVersion: 'v1', kind: 'ReplicationController', metadata: { name: 'old', namespace: 'default' }, spec: { replicas: 1, selector: LABELS, template } })
  podOf(h, 'a', rs)
  podOf(h, 'b', rs)
  podOf(h, 'c', sts)
  podOf(h, 'd', rc, false)
  budget(h, { minAvailable: '50%' })
  await settle()
  // 5 expected, 50% of 5 rounds up to 3; 3 of the 4 pods are ready.
  t.deepEqual(counts(status(h)), { expectedPods: 5, desiredHealthy: 3, currentHealthy: 3, disruptionsAllowed: 0 })
  stop()
})

test('unready and terminating pods are not healthy; no pods means nothing may be disrupted', async t => {
  const { h, settle, stop } = setup()
  budget(h, { minAvailable: 0 })
  await settle()
  t.deepEqual(counts(status(h)), { expectedPods: 0, desiredHealthy: 0, currentHealthy: 0, disruptionsAllowed: 0 })
  t.true(h.store.list(EVENT, { namespace: 'default' }).items.some(e => (e as { reason?: string }).reason === 'NoPods'))

  const rs = replicaSet(h, 'web', 3)
  podOf(h, 'a', rs)
  podOf(h, 'b', rs, false)
  const held = podOf(h, 'c', rs)
  h.ok(h.apply({ op: 'patch', ref: ref('pods', 'c', 'default'), patchType: 'merge', patch: { metadata: { finalizers: ['test/hold'] } }, now: NOW }))
  h.ok(h.apply({ op: 'delete', ref: ref('pods', held.metadata.name ?? '', 'default'), now: NOW }))
  await settle()
  t.deepEqual(counts(status(h)), { expectedPods: 3, desiredHealthy: 0, currentHealthy: 1, disruptionsAllowed: 1 })
  stop()
})

test('an evicted pod that is still there is not counted for two minutes, then the entry expires', async t => {
  const { h, clock, settle, stop } = setup()
  const rs = replicaSet(h, 'web', 3)
  for (const n of ['a', 'b', 'c']) podOf(h, n, rs)
  budget(h, { minAvailable: 2 })
  await settle()
  t.is(status(h).disruptionsAllowed, 1)
  // As an eviction whose delete has not happened yet would leave it.
  const pdb = h.store.get(POD_DISRUPTION_BUDGET, 'default', 'web') as KObject
  const at = rfc3339(clock.now())
  h.ok(h.apply({ op: 'update', subresource: 'status', object: { ...pdb, status: { ...status(h), disruptionsAllowed: 0, disruptedPods: { a: at, gone: at } } }, now: at }))
  await settle()
  t.deepEqual(status(h).disruptedPods, { a: at }, 'the pod that no longer exists is dropped')
  t.deepEqual(counts(status(h)), { expectedPods: 3, desiredHealthy: 2, currentHealthy: 2, disruptionsAllowed: 0 })
  clock.advance(2 * 60 * 1000 + 1000)
  await settle()
  t.is(status(h).disruptedPods, undefined)
  t.deepEqual(counts(status(h)), { expectedPods: 3, desiredHealthy: 2, currentHealthy: 3, disruptionsAllowed: 1 })
  stop()
})

test('a pod whose controller is missing fails the sync safe: no disruptions, condition SyncFailed', async t => {
  const { h, settle, stop } = setup()
  const rs = replicaSet(h, 'web', 2)
  podOf(h, 'a', rs)
  podOf(h, 'b', rs)
  budget(h, { maxUnavailable: 1 })
  await settle()
  t.is(status(h).disruptionsAllowed, 1)
  podOf(h, 'c', { apiVersion: 'apps/v1', kind: 'ReplicaSet', metadata: { name: 'ghost', uid: 'uid-ghost' } })
  await settle()
  const s = status(h)
  t.is(s.disruptionsAllowed, 0)
  t.like(s.conditions?.[0], { type: 'DisruptionAllowed', status: 'False', reason: 'SyncFailed', message: 'found no controllers for pod "c"' })
  stop()
})

test('pods without a controller count for an integer minAvailable, and are left out of a scale', async t => {
  const { h, settle, stop } = setup()
  podOf(h, 'a', undefined)
  podOf(h, 'b', undefined)
  budget(h, { minAvailable: 1 })
  await settle()
  t.deepEqual(counts(status(h)), { expectedPods: 2, desiredHealthy: 1, currentHealthy: 2, disruptionsAllowed: 1 })
  h.ok(h.apply({ op: 'patch', ref: ref('poddisruptionbudgets', 'web', 'default', 'policy'), patchType: 'merge', patch: { spec: { minAvailable: null, maxUnavailable: '50%' } }, now: NOW }))
  await settle()
  t.deepEqual(counts(status(h)), { expectedPods: 0, desiredHealthy: 0, currentHealthy: 2, disruptionsAllowed: 0 })
  stop()
})
