// Deletes: preconditions, finalizers, Foreground, namespace cascades, owner-reference cascades (Background) and Orphan.
import { CONFIG_MAP, NAMESPACE, POD } from '../../protocol/kinds.ts'
import test from 'ava'
import type { KObject } from '../../protocol/k8s.ts'
import { configMap, namespace, NOW, pod, ref, StoreHarness } from '../../daemon/store/testing.ts'

function owned (obj: KObject, owner: KObject): KObject {
  return { ...obj, metadata: { ...obj.metadata, ownerReferences: [{ apiVersion: owner.apiVersion, kind: owner.kind, name: owner.metadata.name as string, uid: owner.metadata.uid as string, controller: true }] } }
}

test('delete of a missing object is 404; of a present one removes it', t => {
  const h = new StoreHarness()
  t.like(h.apply({ op: 'delete', ref: ref('pods', 'a', 'default'), now: NOW }), { ok: false, status: { code: 404, message: 'pods "a" not found' } })
  h.create(pod('a'))
  const r = h.ok(h.apply({ op: 'delete', ref: ref('pods', 'a', 'default'), now: NOW }))
  t.is(r.metadata.name, 'a')
  t.is(h.store.get(POD, 'default', 'a'), undefined)
})

test('delete preconditions that do not match are 409', t => {
  const h = new StoreHarness()
  const p = h.create(pod('a'))
  t.like(h.apply({ op: 'delete', ref: ref('pods', 'a', 'default'), now: NOW, preconditions: { uid: 'other' } }), { ok: false, status: { code: 409 } })
  t.like(h.apply({ op: 'delete', ref: ref('pods', 'a', 'default'), now: NOW, preconditions: { resourceVersion: '1' } }), { ok: false, status: { code: 409 } })
  t.like(h.apply({ op: 'delete', ref: ref('pods', 'a', 'default'), now: NOW, preconditions: { uid: p.metadata.uid as string, resourceVersion: p.metadata.resourceVersion as string } }), { ok: true })
})

test('finalizers hold an object with a deletionTimestamp until an update empties them', t => {
  const h = new StoreHarness()
  h.create({ ...configMap('cfg', {}), metadata: { name: 'cfg', namespace: 'default', finalizers: ['example.com/hold'] } })
  const held = h.ok(h.apply({ op: 'delete', ref: ref('configmaps', 'cfg', 'default'), now: '2025-02-02T00:00:00Z' }))
  t.is(held.metadata.deletionTimestamp, '2025-02-02T00:00:00Z')
  t.truthy(h.store.get(CONFIG_MAP, 'default', 'cfg'))
  const addMore = structuredClone(held)
  addMore.metadata.finalizers = ['example.com/hold', 'example.com/more']
  t.like(h.apply({ op: 'update', now: NOW, object: addMore }), { ok: false, status: { code: 422 } })
  const release = structuredClone(held)
  release.metadata.finalizers = []
  h.ok(h.apply({ op: 'update', now: NOW, object: release }))
  t.is(h.store.get(CONFIG_MAP, 'default', 'cfg'), undefined)
})

test('Foreground adds the foregroundDeletion finalizer', t => {
  const h = new StoreHarness()
  h.create(configMap('cfg', {}))
  const r = h.ok(h.apply({ op: 'delete', ref: ref('configmaps', 'cfg', 'default'), now: NOW, propagationPolicy: 'Foreground' }))
  t.deepEqual(r.metadata.finalizers, ['foregroundDeletion'])
  t.is(r.metadata.deletionTimestamp, NOW)
  t.truthy(h.store.get(CONFIG_MAP, 'default', 'cfg'))
})

test('deleting a namespace deletes everything in it, in the same apply', t => {
  const h = new StoreHarness()
  h.create(namespace('team'))
  h.create(pod('a', { namespace: 'team' }))
  h.create(configMap('c', {}, 'team'))
  h.create(pod('keep'))
  const before = h.index
  h.ok(h.apply({ op: 'delete', ref: ref('namespaces', 'team'), now: NOW }))
  t.is(h.index, before + 1)
  t.is(h.store.get(NAMESPACE, undefined, 'team'), undefined)
  t.is(h.store.get(POD, 'team', 'a'), undefined)
  t.is(h.store.get(CONFIG_MAP, 'team', 'c'), undefined)
  t.truthy(h.store.get(POD, 'default', 'keep'))
  t.like(h.apply({ op: 'delete', ref: ref('namespaces', 'default'), now: NOW }), { ok: false, status: { code: 403 } })
})

test('a namespace with a finalized object stays Terminating, refuses new content, and goes with its last object', t => {
  const h = new StoreHarness()
  h.create(namespace('team'))
  h.create({ ...pod('held', { namespace: 'team' }), metadata: { name: 'held', namespace: 'team', finalizers: ['x/y'] } })
  h.ok(h.apply({ op: 'delete', ref: ref('namespaces', 'team'), now: NOW }))
  const ns = h.store.get(NAMESPACE, undefined, 'team')
  t.is((ns?.status as { phase: string }).phase, 'Terminating')
  t.like(h.tryCreate(pod('new', { namespace: 'team' })), { ok: false, status: { code: 403 } })
  h.ok(h.apply({ op: 'patch', ref: ref('pods', 'held', 'team'), patchType: 'merge', patch: { metadata: { finalizers: null } }, now: NOW }))
  t.is(h.store.get(POD, 'team', 'held'), undefined)
  t.is(h.store.get(NAMESPACE, undefined, 'team'), undefined)
})

test('Background deletes dependents by ownerReference, transitively', t => {
  const h = new StoreHarness()
  const owner = h.create(configMap('owner', {}))
  const mid = h.create(owned(configMap('mid', {}), owner))
  h.create(owned(pod('leaf'), mid))
  h.create(pod('stranger'))
  h.ok(h.apply({ op: 'delete', ref: ref('configmaps', 'owner', 'default'), now: NOW }))
  t.is(h.store.get(CONFIG_MAP, 'default', 'mid'), undefined)
  t.is(h.store.get(POD, 'default', 'leaf'), undefined)
  t.truthy(h.store.get(POD, 'default', 'stranger'))
})

test('a dependent with another owner only loses the dangling reference', t => {
  const h = new StoreHarness()
  const a = h.create(configMap('a', {}))
  const b = h.create(configMap('b', {}))
  const both = owned(pod('p'), a)
  both.metadata.ownerReferences?.push({ apiVersion: 'v1', kind: 'ConfigMap', name: 'b', uid: b.metadata.uid as string })
  h.create(both)
  h.ok(h.apply({ op: 'delete', ref: ref('configmaps', 'a', 'default'), now: NOW }))
  t.deepEqual(h.store.get(POD, 'default', 'p')?.metadata.ownerReferences?.map(r => r.name), ['b'])
})

test('Orphan removes the ownerReference from dependents and keeps them', t => {
  const h = new StoreHarness()
  const owner = h.create(configMap('owner', {}))
  h.create(owned(pod('p'), owner))
  h.ok(h.apply({ op: 'delete', ref: ref('configmaps', 'owner', 'default'), now: NOW, propagationPolicy: 'Orphan' }))
  const p = h.store.get(POD, 'default', 'p')
  t.truthy(p)
  t.is(p?.metadata.ownerReferences, undefined)
  t.is(p?.metadata.resourceVersion, String(h.index))
})

test('the cascade finds dependents after a restore, and not ones whose reference an update took away', t => {
  const h = new StoreHarness()
  const owner = h.create(configMap('owner', {}))
  h.create(owned(pod('kept-ref'), owner))
  const freed = h.create(owned(pod('freed'), owner))
  const unowned = structuredClone(freed)
  delete unowned.metadata.ownerReferences
  h.ok(h.apply({ op: 'update', now: NOW, object: unowned }))
  // A replica that installs a snapshot rebuilds its owner index from the objects alone.
  const other = new StoreHarness({ bootstrap: false })
  other.store.restore(h.store.snapshot(), h.index)
  other.index = h.index
  for (const s of [h, other]) {
    s.ok(s.apply({ op: 'delete', ref: ref('configmaps', 'owner', 'default'), now: NOW }))
    t.is(s.store.get(POD, 'default', 'kept-ref'), undefined)
    t.truthy(s.store.get(POD, 'default', 'freed'))
  }
  t.deepEqual(other.store.snapshot(), h.store.snapshot())
})

test('a dry-run delete of an owner changes nothing; the real one takes its dependent', t => {
  const h = new StoreHarness()
  const owner = h.create(configMap('owner', {}))
  h.create(owned(pod('p'), owner))
  t.like(h.apply({ op: 'delete', ref: ref('configmaps', 'owner', 'default'), now: NOW, dryRun: true }), { ok: true })
  t.truthy(h.store.get(POD, 'default', 'p'))
  h.ok(h.apply({ op: 'delete', ref: ref('configmaps', 'owner', 'default'), now: NOW }))
  t.is(h.store.get(POD, 'default', 'p'), undefined)
})
