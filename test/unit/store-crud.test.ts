// Resource store: create, get, list, update, status and scale subresources, conflicts, dry runs, bad commands.
import { CONFIG_MAP, DEPLOYMENT, NAMESPACE, POD } from '../../protocol/kinds.ts'
import test from 'ava'
import type { KObject, ResourceType } from '../../protocol/k8s.ts'
import { STORE_TAG } from '../../daemon/store/types.ts'
import { encode } from '../../protocol/codec.ts'
import { configMap, deployment, NOW, pod, ref, StoreHarness } from '../../daemon/store/testing.ts'


test('bootstrap creates the system namespaces', t => {
  const h = new StoreHarness()
  const names = h.store.list(NAMESPACE).items.map(n => n.metadata.name)
  t.deepEqual(names, ['default', 'kube-node-lease', 'kube-public', 'kube-system'])
  t.is(h.store.resourceVersion(), '4')
})

test('create sets uid, timestamps, resourceVersion and generation; get returns it', t => {
  const h = new StoreHarness()
  const created = h.create(pod('a'))
  t.is(created.metadata.uid, 'uid-1')
  t.is(created.metadata.creationTimestamp, NOW)
  t.is(created.metadata.resourceVersion, String(h.index))
  t.is(created.metadata.generation, 1)
  t.deepEqual(h.store.get(POD, 'default', 'a'), created)
  t.is(h.store.get(POD, 'default', 'b'), undefined)
  t.throws(() => { (h.store.get(POD, 'default', 'a') as KObject).metadata.name = 'x' }, { instanceOf: TypeError })
})

test('create: already exists is 409, missing namespace is 404, unknown kind is 400', t => {
  const h = new StoreHarness()
  h.create(pod('a'))
  const again = h.tryCreate(pod('a'))
  t.false(again.ok)
  if (!again.ok) {
    t.is(again.status.code, 409)
    t.is(again.status.reason, 'AlreadyExists')
    t.is(again.status.message, 'pods "a" already exists')
  }
  const noNs = h.tryCreate(pod('a', { namespace: 'nope' }))
  t.like(noNs, { ok: false, status: { code: 404, message: 'namespaces "nope" not found' } })
  const noKind = h.tryCreate({ apiVersion: 'v1', kind: 'Widget', metadata: { name: 'w' } })
  t.like(noKind, { ok: false, status: { code: 400 } })
})

test('generateName appends five characters derived from the uid', t => {
  const a = new StoreHarness()
  const b = new StoreHarness()
  const obj = { ...pod(''), metadata: { generateName: 'web-', namespace: 'default' } }
  const x = a.create(obj)
  const y = b.create(obj)
  t.regex(x.metadata.name as string, /^web-[bcdfghjklmnpqrstvwxz2456789]{5}$/)
  t.is(x.metadata.name, y.metadata.name)
  t.not(a.create(obj).metadata.name, x.metadata.name)
})

test('list filters by namespace and selectors and sorts by namespace, name', t => {
  const h = new StoreHarness()
  h.create({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'team' } })
  h.create(pod('b', { labels: { app: 'web' } }))
  h.create(pod('a', { labels: { app: 'db' } }))
  h.create(pod('c', { labels: { app: 'web' }, namespace: 'team', nodeName: 'n1' }))
  t.deepEqual(h.store.list(POD, {}).items.map(p => p.metadata.name), ['a', 'b', 'c'])
  t.deepEqual(h.store.list(POD, { namespace: 'default' }).items.map(p => p.metadata.name), ['a', 'b'])
  t.deepEqual(h.store.list(POD, { labelSelector: 'app=web' }).items.map(p => p.metadata.name), ['b', 'c'])
  t.deepEqual(h.store.list(POD, { fieldSelector: 'spec.nodeName=n1' }).items.map(p => p.metadata.name), ['c'])
  t.deepEqual(h.store.list(POD, { fieldSelector: 'status.phase=Pending,metadata.name!=a' }).items.map(p => p.metadata.name), ['b', 'c'])
  t.is(h.store.list(POD, {}).resourceVersion, String(h.index))
})

test('update replaces spec and metadata, keeps uid and status, bumps generation only on spec change', t => {
  const h = new StoreHarness()
  const d = h.create(deployment('web'))
  const withStatus = h.ok(h.apply({ op: 'update', subresource: 'status', now: NOW, object: { ...structuredClone(d), status: { replicas: 3 } } }))
  t.is(withStatus.metadata.generation, 1)
  t.deepEqual(withStatus.status, { replicas: 3 })

  const relabel = structuredClone(withStatus)
  relabel.metadata.labels = { app: 'web', tier: 'front' }
  delete relabel.status
  const relabeled = h.ok(h.apply({ op: 'update', now: NOW, object: relabel }))
  t.is(relabeled.metadata.generation, 1)
  t.deepEqual(relabeled.metadata.labels, { app: 'web', tier: 'front' })
  t.deepEqual(relabeled.status, { replicas: 3 }, 'status survives a main-resource update')
  t.is(relabeled.metadata.uid, d.metadata.uid)

  const rescale = structuredClone(relabeled) as KObject & { spec: { replicas: number } }
  rescale.spec.replicas = 5
  rescale.metadata.uid = undefined as unknown as string
  delete rescale.metadata.uid
  const rescaled = h.ok(h.apply({ op: 'update', now: NOW, object: rescale }))
  t.is(rescaled.metadata.generation, 2)
  t.is(rescaled.metadata.resourceVersion, String(h.index))
})

test('status update changes only status', t => {
  const h = new StoreHarness()
  const p = h.create(pod('a'))
  const attempt = structuredClone(p)
  attempt.metadata.labels = { sneaky: 'yes' }
  attempt.status = { phase: 'Running' }
  const r = h.ok(h.apply({ op: 'update', subresource: 'status', now: NOW, object: attempt }))
  t.deepEqual(r.status, { phase: 'Running' })
  t.is(r.metadata.labels, undefined)
})

test('update with a stale resourceVersion is a 409 Conflict', t => {
  const h = new StoreHarness()
  const c = h.create(configMap('cfg', { a: '1' }))
  h.ok(h.apply({ op: 'update', now: NOW, object: { ...structuredClone(c), data: { a: '2' } } }))
  const stale = h.apply({ op: 'update', now: NOW, object: { ...structuredClone(c), data: { a: '3' } } })
  t.like(stale, { ok: false, status: { code: 409, reason: 'Conflict' } })
  if (!stale.ok) t.true(stale.status.message.includes('the object has been modified; please apply your changes to the latest version and try again'))
  t.deepEqual(h.store.get(CONFIG_MAP, 'default', 'cfg')?.data, { a: '2' })
})

test('an update that changes nothing does not write', t => {
  const h = new StoreHarness()
  const c = h.create(configMap('cfg', { a: '1' }))
  const same = h.ok(h.apply({ op: 'update', now: NOW, object: structuredClone(c) }))
  t.is(same.metadata.resourceVersion, c.metadata.resourceVersion)
})

test('update of a missing object is 404', t => {
  const h = new StoreHarness()
  t.like(h.apply({ op: 'update', now: NOW, object: configMap('none', {}) }), { ok: false, status: { code: 404, message: 'configmaps "none" not found' } })
})

test('pod spec is immutable except image and an unset nodeName', t => {
  const h = new StoreHarness()
  const p = h.create(pod('a'))
  const bind = structuredClone(p) as KObject & { spec: Record<string, unknown> }
  bind.spec.nodeName = 'node-1'
  const bound = h.ok(h.apply({ op: 'update', now: NOW, object: bind }))
  t.is((bound.spec as { nodeName: string }).nodeName, 'node-1')
  const move = structuredClone(bound) as KObject & { spec: Record<string, unknown> }
  move.spec.nodeName = 'node-2'
  const r = h.apply({ op: 'update', now: NOW, object: move })
  t.like(r, { ok: false, status: { code: 422 } })
})

test('scale subresource reads and writes spec.replicas through a Scale', t => {
  const h = new StoreHarness()
  h.create(deployment('web', { replicas: 2 }))
  const r = h.ok(h.apply({ op: 'patch', ref: ref('deployments', 'web', 'default', 'apps'), patchType: 'merge', patch: { spec: { replicas: 7 } }, subresource: 'scale', now: NOW }))
  t.is(r.kind, 'Scale')
  t.is(r.apiVersion, 'autoscaling/v1')
  t.deepEqual(r.spec, { replicas: 7 })
  t.deepEqual(r.status, { replicas: 0, selector: 'app=web' })
  t.is((h.store.get(DEPLOYMENT, 'default', 'web')?.spec as { replicas: number }).replicas, 7)
  const u = h.ok(h.apply({ op: 'update', subresource: 'scale', ref: ref('deployments', 'web', 'default', 'apps'), now: NOW, object: { apiVersion: 'autoscaling/v1', kind: 'Scale', metadata: { name: 'web', namespace: 'default' }, spec: { replicas: 1 } } }))
  t.deepEqual(u.spec, { replicas: 1 })
  const bad = h.apply({ op: 'patch', ref: ref('deployments', 'web', 'default', 'apps'), patchType: 'merge', patch: { spec: { replicas: -1 } }, subresource: 'scale', now: NOW })
  t.like(bad, { ok: false, status: { code: 422 } })
  t.like(h.apply({ op: 'patch', ref: ref('pods', 'x', 'default'), patchType: 'merge', patch: {}, subresource: 'scale', now: NOW }), { ok: false, status: { code: 404 } })
})

test('dry run validates and answers the result but changes nothing', t => {
  const h = new StoreHarness()
  const r = h.tryCreate(pod('a'), { dryRun: true })
  t.true(r.ok)
  t.is(h.store.get(POD, 'default', 'a'), undefined)
  h.create(pod('a'))
  t.like(h.apply({ op: 'delete', ref: ref('pods', 'a', 'default'), now: NOW, dryRun: true }), { ok: true })
  t.truthy(h.store.get(POD, 'default', 'a'))
  const bad = h.tryCreate({ ...pod('b'), spec: { containers: [] } }, { dryRun: true })
  t.like(bad, { ok: false, status: { code: 422 } })
  t.is(h.store.list(DEPLOYMENT, {}).items.length, 0)
})

test('bad commands answer 400 and never throw', t => {
  const h = new StoreHarness()
  t.like(h.store.apply(100, new Uint8Array([1, 2, 3])), { ok: false, status: { code: 400 } })
  const wrongShape = encode({ op: 'create', object: 'nope' })
  const bytes = new Uint8Array(wrongShape.length + 1)
  bytes[0] = STORE_TAG
  bytes.set(wrongShape, 1)
  t.like(h.store.apply(101, bytes), { ok: false, status: { code: 400 } })
  t.like(h.store.apply(102, new Uint8Array([STORE_TAG, 0xc1])), { ok: false, status: { code: 400 } })
  t.is(h.store.resourceVersion(), '102')
  t.throws(() => h.store.apply(102, new Uint8Array([STORE_TAG])))
})
