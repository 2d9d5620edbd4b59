// Patches: JSON merge (RFC 7386), strategic merge (Kubernetes merge keys and directives), JSON patch (RFC 6902), through the store and alone.
import { DEPLOYMENT } from '../../protocol/kinds.ts'
import test from 'ava'
import type { KObject } from '../../protocol/k8s.ts'
import { applyJsonPatch, applyMergePatch, applyStrategicPatch, PatchError } from '../../daemon/store/patch.ts'
import type { PatchType } from '../../daemon/store/types.ts'
import { deployment, NOW, ref, StoreHarness } from '../../daemon/store/testing.ts'

interface Container { name: string, image: string, env?: Array<{ name: string, value?: string }>, ports?: Array<{ containerPort: number, name?: string }> }
const containersOf = (d: KObject | undefined): Container[] =>
  ((d?.spec as { template: { spec: { containers: Container[] } } }).template.spec.containers)

function setup (): StoreHarness {
  const h = new StoreHarness()
  h.create(deployment('web'))
  return h
}

function patch (h: StoreHarness, patchType: PatchType, body: unknown): ReturnType<StoreHarness['apply']> {
  return h.apply({ op: 'patch', ref: ref('deployments', 'web', 'default', 'apps'), patchType, patch: body, now: NOW })
}

test('strategic: change the image of one container by name, keep the other', t => {
  const h = setup()
  const r = h.ok(patch(h, 'strategic', { spec: { template: { spec: { containers: [{ name: 'sidecar', image: 'envoy:1.31' }] } } } }))
  t.deepEqual(containersOf(r).map(c => [c.name, c.image]), [['web', 'nginx:1.25'], ['sidecar', 'envoy:1.31']])
  t.is(r.metadata.generation, 2)
})

test('strategic: add an env var merges by name', t => {
  const h = setup()
  const r = h.ok(patch(h, 'strategic', { spec: { template: { spec: { containers: [{ name: 'web', env: [{ name: 'DEBUG', value: '1' }, { name: 'MODE', value: 'dev' }] }] } } } }))
  t.deepEqual(containersOf(r)[0]?.env, [{ name: 'MODE', value: 'dev' }, { name: 'DEBUG', value: '1' }])
  t.is(containersOf(r)[0]?.image, 'nginx:1.25')
})

test('strategic: $patch delete removes a list item by merge key', t => {
  const h = setup()
  const r = h.ok(patch(h, 'strategic', { spec: { template: { spec: { containers: [{ name: 'sidecar', $patch: 'delete' }] } } } }))
  t.deepEqual(containersOf(r).map(c => c.name), ['web'])
})

test('strategic: $patch replace replaces the list; lists without merge key are replaced', t => {
  const h = setup()
  const r = h.ok(patch(h, 'strategic', { spec: { template: { spec: { containers: [{ $patch: 'replace' }, { name: 'only', image: 'x:1' }] } } } }))
  t.deepEqual(containersOf(r).map(c => c.name), ['only'])
  const merged = applyStrategicPatch({ spec: { containers: [{ name: 'a', args: ['1', '2'], ports: [{ containerPort: 80 }] }] } },
    { spec: { containers: [{ name: 'a', args: ['3'], ports: [{ containerPort: 81 }] }] } })
  t.deepEqual(merged, { spec: { containers: [{ name: 'a', args: ['3'], ports: [{ containerPort: 80 }, { containerPort: 81 }] }] } })
})

test('strategic: service ports merge by port, volumes by name, mounts by mountPath, null deletes', t => {
  t.deepEqual(applyStrategicPatch({ spec: { ports: [{ port: 80, name: 'http' }, { port: 443, name: 'https' }] } }, { spec: { ports: [{ port: 443, targetPort: 8443 }] } }),
    { spec: { ports: [{ port: 80, name: 'http' }, { port: 443, name: 'https', targetPort: 8443 }] } })
  t.deepEqual(applyStrategicPatch({ volumes: [{ name: 'a', emptyDir: {} }], volumeMounts: [{ mountPath: '/a', name: 'a' }] },
    { volumes: [{ name: 'b', emptyDir: {} }], volumeMounts: [{ mountPath: '/a', readOnly: true }] }),
  { volumes: [{ name: 'a', emptyDir: {} }, { name: 'b', emptyDir: {} }], volumeMounts: [{ mountPath: '/a', name: 'a', readOnly: true }] })
  t.deepEqual(applyStrategicPatch({ metadata: { labels: { a: '1', b: '2' } } }, { metadata: { labels: { a: null } } }), { metadata: { labels: { b: '2' } } })
  t.deepEqual(applyStrategicPatch({ metadata: { finalizers: ['x'] } }, { metadata: { finalizers: ['y', 'x'] } }), { metadata: { finalizers: ['x', 'y'] } })
  t.throws(() => applyStrategicPatch({}, { containers: [{ image: 'no-name' }] }), { instanceOf: PatchError })
})

test('merge: RFC 7386 replaces lists and deletes with null', t => {
  const h = setup()
  const r = h.ok(patch(h, 'merge', { metadata: { labels: { tier: 'front' } }, spec: { template: { spec: { containers: [{ name: 'solo', image: 'busybox:1' }] } } } }))
  t.deepEqual(containersOf(r).map(c => c.name), ['solo'])
  t.deepEqual(r.metadata.labels, { app: 'web', tier: 'front' })
  t.deepEqual(applyMergePatch({ a: 'b', c: { d: 'e', f: 'g' } }, { a: 'z', c: { f: null } }), { a: 'z', c: { d: 'e' } })
  t.deepEqual(applyMergePatch({ a: [1, 2] }, { a: [3] }), { a: [3] })
  t.deepEqual(applyMergePatch({ a: 'b' }, ['c']), ['c'])
})

test('json: RFC 6902 add, remove, replace, test, move, copy on a Deployment', t => {
  const h = setup()
  const base = '/spec/template/spec/containers'
  const r = h.ok(patch(h, 'json', [
    { op: 'test', path: `${base}/0/name`, value: 'web' },
    { op: 'replace', path: `${base}/0/image`, value: 'nginx:1.27' },
    { op: 'add', path: `${base}/0/env/-`, value: { name: 'DEBUG', value: '1' } },
    { op: 'remove', path: `${base}/1` },
    { op: 'copy', from: '/metadata/labels/app', path: '/metadata/labels/copy' },
    { op: 'move', from: '/metadata/labels/copy', path: '/metadata/labels/moved' }
  ]))
  t.deepEqual(containersOf(r).map(c => [c.name, c.image]), [['web', 'nginx:1.27']])
  t.deepEqual(containersOf(r)[0]?.env, [{ name: 'MODE', value: 'prod' }, { name: 'DEBUG', value: '1' }])
  t.deepEqual(r.metadata.labels, { app: 'web', moved: 'web' })
})

test('json: a failed test or a missing path changes nothing and is a 422; malformed is 400', t => {
  const h = setup()
  const before = h.store.get(DEPLOYMENT, 'default', 'web')
  t.like(patch(h, 'json', [{ op: 'replace', path: '/spec/replicas', value: 9 }, { op: 'test', path: '/spec/replicas', value: 3 }]), { ok: false, status: { code: 422 } })
  t.like(patch(h, 'json', [{ op: 'remove', path: '/spec/nothing' }]), { ok: false, status: { code: 422 } })
  t.like(patch(h, 'json', [{ op: 'frobnicate', path: '/spec' }]), { ok: false, status: { code: 400 } })
  t.like(patch(h, 'json', { op: 'add' }), { ok: false, status: { code: 400 } })
  t.deepEqual(h.store.get(DEPLOYMENT, 'default', 'web'), before)
  t.deepEqual(applyJsonPatch({ a: { 'b/c': 1, 'd~e': 2 } }, [{ op: 'remove', path: '/a/b~1c' }, { op: 'replace', path: '/a/d~0e', value: 3 }]), { a: { 'd~e': 3 } })
  t.deepEqual(applyJsonPatch([1, 2], [{ op: 'add', path: '/1', value: 9 }]), [1, 9, 2])
})

test('a patch that breaks validation is a 422 and a patch that sets a stale resourceVersion a 409', t => {
  const h = setup()
  t.like(patch(h, 'merge', { spec: { template: { metadata: { labels: { app: 'other' } } } } }), { ok: false, status: { code: 422 } })
  t.like(patch(h, 'merge', { metadata: { resourceVersion: '1' }, spec: { replicas: 3 } }), { ok: false, status: { code: 409, reason: 'Conflict' } })
  t.like(h.apply({ op: 'patch', ref: ref('deployments', 'nope', 'default', 'apps'), patchType: 'merge', patch: {}, now: NOW }), { ok: false, status: { code: 404 } })
})

test('a status patch changes only status', t => {
  const h = setup()
  const r = h.ok(h.apply({ op: 'patch', ref: ref('deployments', 'web', 'default', 'apps'), patchType: 'merge', subresource: 'status', patch: { status: { readyReplicas: 1 }, spec: { replicas: 50 } }, now: NOW }))
  t.deepEqual(r.status, { readyReplicas: 1 })
  t.is((r.spec as { replicas: number }).replicas, 1)
  t.is(r.metadata.generation, 1)
  const main = h.ok(patch(h, 'merge', { status: { readyReplicas: 9 } }))
  t.deepEqual(main.status, { readyReplicas: 1 }, 'a main-resource patch ignores status')
})
