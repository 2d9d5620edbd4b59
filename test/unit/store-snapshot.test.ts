// Snapshots and determinism: restore round trip, watches after restore, and identical state from identical logs.
import { CONFIG_MAP, POD } from '../../protocol/kinds.ts'
import test from 'ava'
import type { KObject, ResourceType, WatchEvent } from '../../protocol/k8s.ts'
import { ResourceStore, encodeStoreCommand } from '../../daemon/store/store.ts'
import { GoneError } from '../../daemon/store/types.ts'
import { configMap, deployment, namespace, NOW, pod, ref, StoreHarness } from '../../daemon/store/testing.ts'


function busy (): StoreHarness {
  const h = new StoreHarness()
  h.create(namespace('team'))
  const d = h.create(deployment('web', { namespace: 'team' }))
  h.create({ ...pod('p1', { namespace: 'team', labels: { app: 'web' } }), metadata: { name: 'p1', namespace: 'team', labels: { app: 'web' }, ownerReferences: [{ apiVersion: 'apps/v1', kind: 'Deployment', name: 'web', uid: d.metadata.uid as string }] } })
  h.create({ ...pod(''), metadata: { generateName: 'job-', namespace: 'default' } })
  h.create(configMap('cfg', { a: '1' }))
  h.apply({ op: 'patch', ref: ref('deployments', 'web', 'team', 'apps'), patchType: 'strategic', patch: { spec: { template: { spec: { containers: [{ name: 'web', image: 'nginx:2' }] } } } }, now: NOW })
  h.apply({ op: 'patch', ref: ref('configmaps', 'cfg', 'default'), patchType: 'json', patch: [{ op: 'add', path: '/data/b', value: '2' }], now: NOW })
  h.apply({ op: 'create', object: pod('bad!'), uid: 'u-bad', now: NOW })
  h.apply({ op: 'delete', ref: ref('deployments', 'web', 'team', 'apps'), now: NOW })
  return h
}

test('snapshot and restore round-trip every object and the resourceVersion', t => {
  const h = busy()
  const copy = new ResourceStore()
  copy.restore(h.store.snapshot(), h.index)
  t.is(copy.resourceVersion(), String(h.index))
  t.deepEqual(copy.list(POD, {}).items, h.store.list(POD, {}).items)
  t.deepEqual(copy.get(CONFIG_MAP, 'default', 'cfg'), h.store.get(CONFIG_MAP, 'default', 'cfg'))
  t.deepEqual(copy.snapshot(), h.store.snapshot())
  t.is(copy.get(POD, 'team', 'p1'), undefined, 'the cascade survived')
  // the restored store goes on applying
  t.like(copy.apply(h.index + 1, encodeStoreCommand({ op: 'create', object: pod('after'), uid: 'u-after', now: NOW })), { ok: true })
})

test('after restore, history is gone (older watches get 410), but open watches stay and see the difference', t => {
  const h = busy()
  // A follower behind: its store holds an older state than the snapshot it installs.
  const behind = new ResourceStore()
  h.log.slice(0, 4).forEach((cmd, i) => behind.apply(i + 1, encodeStoreCommand(cmd)))
  const events: WatchEvent[] = []
  behind.watch(POD, {}, e => events.push(e))
  const before = events.length
  behind.restore(h.store.snapshot(), h.index)
  const after = events.slice(before).map(e => `${e.type} ${(e.object as KObject).metadata?.name ?? ''}`)
  t.true(after.some(e => e.startsWith('ADDED job-')), after.join(', '))
  t.false(after.includes('ERROR '))
  // The same snapshot again changes nothing: no events.
  const n = events.length
  behind.restore(h.store.snapshot(), h.index)
  t.is(events.length, n)
  // A pod deleted in the snapshot is DELETED for the watcher.
  const gone = new StoreHarness()
  const p = gone.create(pod('short'))
  const seen: WatchEvent[] = []
  gone.store.watch(POD, {}, e => seen.push(e))
  const fresh = new StoreHarness()
  fresh.create(configMap('x', { a: '1' }))
  gone.store.restore(fresh.store.snapshot(), gone.index + 10)
  t.deepEqual(seen.slice(-1).map(e => [e.type, (e.object as KObject).metadata.uid]), [['DELETED', p.metadata.uid]])
  t.throws(() => behind.watch(POD, { resourceVersion: '3' }, () => {}), { instanceOf: GoneError })
  t.notThrows(() => behind.watch(POD, { resourceVersion: String(h.index) }, () => {}))
})

test('two stores applying the same commands produce identical snapshots and results', t => {
  const a = busy()
  const b = new ResourceStore()
  const results = a.log.map((cmd, i) => b.apply(i + 1, encodeStoreCommand(cmd)))
  t.deepEqual(b.snapshot(), a.store.snapshot())
  const c = new ResourceStore()
  t.deepEqual(a.log.map((cmd, i) => c.apply(i + 1, encodeStoreCommand(cmd))), results)
})

test('a corrupt snapshot throws and leaves the store as it was', t => {
  const h = busy()
  const before = h.store.snapshot()
  t.throws(() => h.store.restore(new Uint8Array([1, 2, 3]), 99))
  t.deepEqual(h.store.snapshot(), before)
})
