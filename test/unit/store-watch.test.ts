// Watches: initial ADDED events, ordering, resuming from a resourceVersion, 410 Gone, namespace and selector filtering.
import { POD } from '../../protocol/kinds.ts'
import test from 'ava'
import type { KObject, ResourceType, WatchEvent } from '../../protocol/k8s.ts'
import { GoneError } from '../../daemon/store/types.ts'
import { BadSelectorError } from '../../protocol/selector.ts'
import { configMap, namespace, NOW, pod, ref, StoreHarness } from '../../daemon/store/testing.ts'


const summary = (events: WatchEvent[]): string[] =>
  events.map(e => `${e.type} ${(e.object as KObject).metadata.name ?? ''}@${(e.object as KObject).metadata.resourceVersion ?? ''}`)

function relabel (h: StoreHarness, name: string, labels: Record<string, string>): void {
  h.ok(h.apply({ op: 'patch', ref: ref('pods', name, 'default'), patchType: 'merge', patch: { metadata: { labels } }, now: NOW }))
}

test('a watch without resourceVersion sends the current objects, then changes in order', t => {
  const h = new StoreHarness()
  h.create(pod('b'))
  h.create(pod('a'))
  const events: WatchEvent[] = []
  h.store.watch(POD, {}, e => events.push(e))
  t.deepEqual(summary(events), ['ADDED a@6', 'ADDED b@5'])
  h.create(configMap('not-a-pod', {}))
  relabel(h, 'a', { x: 'y' })
  h.apply({ op: 'delete', ref: ref('pods', 'b', 'default'), now: NOW })
  t.deepEqual(summary(events).slice(2), ['MODIFIED a@8', 'DELETED b@9'])
})

test('a watch from a resourceVersion replays what came after it', t => {
  const h = new StoreHarness()
  h.create(pod('a'))
  const rv = h.store.resourceVersion()
  h.create(pod('b'))
  relabel(h, 'a', { x: 'y' })
  const events: WatchEvent[] = []
  const w = h.store.watch(POD, { resourceVersion: rv }, e => events.push(e))
  t.deepEqual(summary(events), ['ADDED b@6', 'MODIFIED a@7'])
  h.create(pod('c'))
  t.deepEqual(summary(events).slice(2), ['ADDED c@8'])
  w.stop()
  h.create(pod('d'))
  t.is(events.length, 3)
})

test('a resourceVersion older than the history kept is 410 Gone', t => {
  const h = new StoreHarness({ historySize: 3 })
  for (const n of ['a', 'b', 'c', 'd', 'e']) h.create(pod(n))
  t.throws(() => h.store.watch(POD, { resourceVersion: '5' }, () => {}), { instanceOf: GoneError })
  const events: WatchEvent[] = []
  h.store.watch(POD, { resourceVersion: '6' }, e => events.push(e))
  t.deepEqual(summary(events), ['ADDED c@7', 'ADDED d@8', 'ADDED e@9'])
  t.throws(() => h.store.watch(POD, { resourceVersion: 'abc' }, () => {}), { instanceOf: BadSelectorError })
})

test('namespace and label selector filtering: leaving the selection is DELETED, entering it ADDED', t => {
  const h = new StoreHarness()
  h.create(namespace('other'))
  const events: WatchEvent[] = []
  h.store.watch(POD, { namespace: 'default', labelSelector: 'app=web' }, e => events.push(e))
  h.create(pod('a', { labels: { app: 'web' } }))
  h.create(pod('b', { labels: { app: 'db' } }))
  h.create(pod('c', { labels: { app: 'web' }, namespace: 'other' }))
  relabel(h, 'a', { app: 'db' })
  relabel(h, 'b', { app: 'web' })
  relabel(h, 'b', { app: 'web', v: '2' })
  t.deepEqual(events.map(e => `${e.type} ${(e.object as KObject).metadata.name ?? ''}`), ['ADDED a', 'DELETED a', 'ADDED b', 'MODIFIED b'])
  t.throws(() => h.store.watch(POD, { labelSelector: 'app in web' }, () => {}), { instanceOf: BadSelectorError })
})

test('a namespace delete streams every cascaded change at one resourceVersion', t => {
  const h = new StoreHarness()
  h.create(namespace('team'))
  h.create(pod('a', { namespace: 'team' }))
  h.create(pod('b', { namespace: 'team' }))
  const events: WatchEvent[] = []
  h.store.watch(POD, { resourceVersion: h.store.resourceVersion() }, e => events.push(e))
  h.apply({ op: 'delete', ref: ref('namespaces', 'team'), now: NOW })
  t.deepEqual(summary(events), [`DELETED a@${h.index}`, `DELETED b@${h.index}`])
})

test('a watcher that throws is dropped without breaking apply', t => {
  const h = new StoreHarness()
  let calls = 0
  h.store.watch(POD, {}, () => { calls++; throw new Error('boom') })
  const ok: WatchEvent[] = []
  h.store.watch(POD, {}, e => ok.push(e))
  h.create(pod('a'))
  h.create(pod('b'))
  t.is(calls, 1)
  t.is(ok.length, 2)
})
