// A pod's binding (the scheduler's one write per pod, Kubernetes' pods/binding):
// the node and PodScheduled=True in one entry, and the conflicts
// kube-apiserver's BindingREST answers.
import test from 'ava'
import { POD } from '../../protocol/kinds.ts'
import type { Pod } from '../../protocol/core-v1.ts'
import { configMap, NOW, pod, ref, StoreHarness } from '../../daemon/store/testing.ts'

const LATER = '2025-01-01T00:01:00Z'

test('a binding sets the node and turns PodScheduled True, replacing Unschedulable, in one event', t => {
  const h = new StoreHarness()
  const p = h.create(pod('a'))
  h.ok(h.apply({ op: 'patch', ref: ref('pods', 'a', 'default'), subresource: 'status', patchType: 'strategic', patch: { status: { conditions: [{ type: 'PodScheduled', status: 'False', reason: 'Unschedulable', message: 'no nodes' }] } }, now: NOW }))
  const events: string[] = []
  const w = h.store.watch(POD, {}, e => { events.push(e.type) })
  const bound = h.ok(h.apply({ op: 'bind', ref: ref('pods', 'a', 'default'), node: 'n1', preconditions: { uid: p.metadata.uid as string }, now: LATER })) as Pod
  w.stop()
  t.is(bound.spec?.nodeName, 'n1')
  t.deepEqual(bound.status?.conditions, [{ type: 'PodScheduled', status: 'True', lastProbeTime: null, lastTransitionTime: LATER }])
  t.deepEqual(events.filter(e => e !== 'ADDED'), ['MODIFIED'])
  t.is(h.store.get(POD, 'default', 'a')?.spec?.nodeName, 'n1')
})

test('a pod with a node, a deleted one, another uid and a missing one are refused', t => {
  const h = new StoreHarness()
  h.create(pod('bound', { nodeName: 'n1' }))
  t.like(h.apply({ op: 'bind', ref: ref('pods', 'bound', 'default'), node: 'n2', now: NOW }), { ok: false, status: { code: 409, message: 'Operation cannot be fulfilled on pods "bound": pod bound is already assigned to node "n1"' } })
  const held = pod('held')
  held.metadata.finalizers = ['example.com/hold']
  h.create(held)
  h.ok(h.apply({ op: 'delete', ref: ref('pods', 'held', 'default'), now: NOW }))
  t.like(h.apply({ op: 'bind', ref: ref('pods', 'held', 'default'), node: 'n1', now: NOW }), { ok: false, status: { code: 409 } })
  h.create(pod('a'))
  t.like(h.apply({ op: 'bind', ref: ref('pods', 'a', 'default'), node: 'n1', preconditions: { uid: 'someone-else' }, now: NOW }), { ok: false, status: { code: 409 } })
  t.like(h.apply({ op: 'bind', ref: ref('pods', 'gone', 'default'), node: 'n1', now: NOW }), { ok: false, status: { code: 404 } })
  h.create(configMap('cm', {}))
  t.like(h.apply({ op: 'bind', ref: ref('configmaps', 'cm', 'default'), node: 'n1', now: NOW }), { ok: false, status: { code: 404 } })
  t.is(h.store.get(POD, 'default', 'a')?.spec?.nodeName, undefined)
})

test('a bind command without a node is refused as malformed', t => {
  const h = new StoreHarness()
  h.create(pod('a'))
  t.like(h.apply({ op: 'bind', ref: ref('pods', 'a', 'default'), node: '', now: NOW }), { ok: false, status: { code: 400 } })
})
