// The store's evict command (the eviction subresource decided in one log
// entry): allowed and spent, refused with 429 at 0, two evictions racing for
// one allowed disruption, more than one budget (500), no budget (a plain
// delete), and Kubernetes' exceptions (pending, unready, stale budget).
import test from 'ava'
import { POD, POD_DISRUPTION_BUDGET } from '../../protocol/kinds.ts'
import type { KObject } from '../../protocol/k8s.ts'
import type { PodDisruptionBudget } from '../../protocol/policy-v1.ts'
import { NOW, pod, ref, StoreHarness } from '../../daemon/store/testing.ts'
import type { StoreCommand } from '../../daemon/store/types.ts'
import type { EvictionStatus } from '../../daemon/store/evict.ts'

const LATER = '2025-01-01T00:01:00Z'

function running (h: StoreHarness, name: string, ready = true, phase = 'Running'): KObject {
  h.create(pod(name, { labels: { app: 'web' }, nodeName: 'n1' }))
  return h.ok(h.apply({
    op: 'patch',
    ref: ref('pods', name, 'default'),
    patchType: 'merge',
    subresource: 'status',
    patch: { status: { phase, conditions: [{ type: 'Ready', status: ready ? 'True' : 'False' }] } },
    now: NOW
  }))
}

/** A budget over app=web with the status the disruption controller would have written. */
function budget (h: StoreHarness, name: string, status: { allowed: number, current?: number, desired?: number }, spec: Record<string, unknown> = {}): PodDisruptionBudget {
  const created = h.create({
    apiVersion: 'policy/v1',
    kind: 'PodDisruptionBudget',
    metadata: { name, namespace: 'default' },
    spec: { minAvailable: 2, selector: { matchLabels: { app: 'web' } }, ...spec }
  })
  return h.ok(h.apply({
    op: 'update',
    subresource: 'status',
    object: {
      ...created,
      status: {
        disruptionsAllowed: status.allowed,
        currentHealthy: status.current ?? 3,
        desiredHealthy: status.desired ?? 2,
        expectedPods: 3,
        observedGeneration: created.metadata.generation
      }
    },
    now: NOW
  })) as PodDisruptionBudget
}

function evictCmd (name: string, extra: Partial<Extract<StoreCommand, { op: 'evict' }>> = {}): StoreCommand {
  return { op: 'evict', ref: ref('pods', name, 'default'), now: LATER, ...extra }
}

function pdbOf (h: StoreHarness, name: string): PodDisruptionBudget {
  const pdb = h.store.get(POD_DISRUPTION_BUDGET, 'default', name)
  if (pdb === undefined) throw new Error(`no budget ${name}`)
  return pdb
}

test('an eviction the budget allows deletes the pod and spends the disruption in the same entry', t => {
  const h = new StoreHarness()
  for (const n of ['a', 'b', 'c']) running(h, n)
  budget(h, 'web', { allowed: 1 })
  const deleted: string[] = []
  const changed: string[] = []
  h.store.watch(POD, {}, e => { if (e.type === 'DELETED') deleted.push(e.object.metadata.name ?? '') })
  h.store.watch(POD_DISRUPTION_BUDGET, {}, e => { if (e.type === 'MODIFIED') changed.push(e.object.metadata.resourceVersion ?? '') })
  const r = h.apply(evictCmd('a'))
  t.true(r.ok)
  t.is(h.store.get(POD, 'default', 'a'), undefined)
  t.deepEqual(deleted, ['a'])
  const pdb = pdbOf(h, 'web')
  t.is(pdb.status?.disruptionsAllowed, 0)
  t.deepEqual(pdb.status?.disruptedPods, { a: LATER })
  t.deepEqual(changed, [String(h.index)], 'one entry wrote the budget')
  t.like(pdb.status?.conditions?.[0], { type: 'DisruptionAllowed', status: 'False', reason: 'InsufficientPods' })
})

test('an eviction the budget forbids is a 429 with the budget named, and changes nothing', t => {
  const h = new StoreHarness()
  for (const n of ['a', 'b']) running(h, n)
  const before = budget(h, 'web', { allowed: 0, current: 2, desired: 2 })
  const r = h.apply(evictCmd('a'))
  t.false(r.ok)
  if (r.ok) return
  const status = r.status as EvictionStatus
  t.is(status.code, 429)
  t.is(status.reason, 'TooManyRequests')
  t.is(status.message, "Cannot evict pod as it would violate the pod's disruption budget.")
  t.deepEqual(status.details?.causes, [{ reason: 'DisruptionBudget', message: 'The disruption budget web needs 2 healthy pods and has 2 currently' }])
  t.truthy(h.store.get(POD, 'default', 'a'))
  t.is(pdbOf(h, 'web').metadata.resourceVersion, before.metadata.resourceVersion)
})

test('two evictions proposed against one allowed disruption: exactly one succeeds', t => {
  const h = new StoreHarness()
  for (const n of ['a', 'b', 'c']) running(h, n)
  budget(h, 'web', { allowed: 1 })
  // Both proposed (from two peers) before either was applied: the log orders them.
  const first = evictCmd('a')
  const second = evictCmd('b')
  const results = [h.apply(first), h.apply(second)]
  t.deepEqual(results.map(r => r.ok), [true, false])
  t.is(results[1]?.ok === false ? results[1].status.code : 0, 429)
  t.is(h.store.get(POD, 'default', 'a'), undefined)
  t.truthy(h.store.get(POD, 'default', 'b'))
  t.is(pdbOf(h, 'web').status?.disruptionsAllowed, 0)
})

test('a pod under more than one budget is a 500 and stays', t => {
  const h = new StoreHarness()
  running(h, 'a')
  budget(h, 'one', { allowed: 1 })
  budget(h, 'two', { allowed: 1 })
  const r = h.apply(evictCmd('a'))
  t.false(r.ok)
  if (r.ok) return
  t.is(r.status.code, 500)
  t.is(r.status.message, 'This pod has more than one PodDisruptionBudget, which the eviction subresource does not support.')
  t.truthy(h.store.get(POD, 'default', 'a'))
})

test('without a budget an eviction is a plain delete; a missing pod is a 404', t => {
  const h = new StoreHarness()
  running(h, 'a')
  h.create(pod('other', { labels: { app: 'db' } }))
  budget(h, 'web', { allowed: 0 }, { selector: { matchLabels: { app: 'web' } } })
  t.true(h.apply(evictCmd('other')).ok)
  t.is(h.store.get(POD, 'default', 'other'), undefined)
  const missing = h.apply(evictCmd('nope'))
  t.is(missing.ok ? 0 : missing.status.code, 404)
})

test('a budget without a selector covers nothing; an empty one covers the whole namespace', t => {
  const h = new StoreHarness()
  running(h, 'a')
  running(h, 'b')
  const none = h.create({ apiVersion: 'policy/v1', kind: 'PodDisruptionBudget', metadata: { name: 'none', namespace: 'default' }, spec: { minAvailable: 1 } })
  t.truthy(none)
  t.true(h.apply(evictCmd('a')).ok)
  budget(h, 'all', { allowed: 0 }, { selector: {} })
  const r = h.apply(evictCmd('b'))
  t.is(r.ok ? 0 : r.status.code, 429)
})

test('pending, finished and terminating pods are deleted without asking the budget', t => {
  const h = new StoreHarness()
  running(h, 'pending', false, 'Pending')
  running(h, 'done', false, 'Succeeded')
  budget(h, 'web', { allowed: 0 })
  t.true(h.apply(evictCmd('pending')).ok)
  t.true(h.apply(evictCmd('done')).ok)
  t.is(pdbOf(h, 'web').status?.disruptionsAllowed, 0)
  t.is(pdbOf(h, 'web').status?.disruptedPods, undefined)
})

test('an unready pod goes without spending a disruption while the budget is met; AlwaysAllow lets it go regardless', t => {
  const h = new StoreHarness()
  running(h, 'sick', false)
  running(h, 'sick2', false)
  budget(h, 'web', { allowed: 0, current: 2, desired: 2 })
  t.true(h.apply(evictCmd('sick')).ok)
  t.is(pdbOf(h, 'web').status?.disruptionsAllowed, 0)
  // Not met: the unready pod needs a disruption too.
  const h2 = new StoreHarness()
  running(h2, 'sick', false)
  running(h2, 'sick2', false)
  budget(h2, 'web', { allowed: 0, current: 1, desired: 2 })
  t.is((r => r.ok ? 0 : r.status.code)(h2.apply(evictCmd('sick'))), 429)
  budget(h2, 'other', { allowed: 0, current: 1, desired: 2 }, { selector: { matchLabels: { app: 'web', extra: 'x' } }, unhealthyPodEvictionPolicy: 'AlwaysAllow' })
  h2.ok(h2.apply({ op: 'delete', ref: ref('poddisruptionbudgets', 'web', 'default', 'policy'), now: NOW }))
  h2.ok(h2.apply({ op: 'patch', ref: ref('pods', 'sick2', 'default'), patchType: 'merge', patch: { metadata: { labels: { extra: 'x' } } }, now: NOW }))
  t.true(h2.apply(evictCmd('sick2')).ok)
})

test('a budget whose spec the controller has not seen yet is a 429 to retry in 10 s', t => {
  const h = new StoreHarness()
  running(h, 'a')
  budget(h, 'web', { allowed: 1 })
  h.ok(h.apply({ op: 'patch', ref: ref('poddisruptionbudgets', 'web', 'default', 'policy'), patchType: 'merge', patch: { spec: { minAvailable: 1 } }, now: NOW }))
  const r = h.apply(evictCmd('a'))
  t.false(r.ok)
  if (r.ok) return
  const status = r.status as EvictionStatus
  t.is(status.code, 429)
  t.is(status.details?.retryAfterSeconds, 10)
  t.regex(status.details?.causes?.[0]?.message ?? '', /web is still being processed/)
})

test('dry runs change nothing; preconditions are checked; the grace period travels on the deleted pod', t => {
  const h = new StoreHarness()
  const a = running(h, 'a')
  running(h, 'b')
  budget(h, 'web', { allowed: 1 })
  const before = pdbOf(h, 'web').metadata.resourceVersion
  t.true(h.apply(evictCmd('a', { dryRun: true })).ok)
  t.truthy(h.store.get(POD, 'default', 'a'))
  t.is(pdbOf(h, 'web').metadata.resourceVersion, before)
  const wrongUid = h.apply(evictCmd('a', { preconditions: { uid: 'someone-else' } }))
  t.is(wrongUid.ok ? 0 : wrongUid.status.code, 409)
  const wrongRv = h.apply(evictCmd('a', { preconditions: { resourceVersion: '1' } }))
  t.is(wrongRv.ok ? 0 : wrongRv.status.code, 409)
  let gone: KObject | undefined
  h.store.watch(POD, {}, e => { if (e.type === 'DELETED') gone = e.object })
  t.true(h.apply(evictCmd('a', { preconditions: { uid: a.metadata.uid ?? '', resourceVersion: a.metadata.resourceVersion ?? '' }, gracePeriodSeconds: 5 })).ok)
  t.is(gone?.metadata.deletionGracePeriodSeconds, 5)
})

test('a malformed evict command is refused before it is applied', t => {
  const h = new StoreHarness()
  running(h, 'a')
  const r = h.apply({ op: 'evict', ref: ref('pods', 'a', 'default'), now: NOW, gracePeriodSeconds: -1 })
  t.is(r.ok ? 0 : r.status.code, 400)
  const other = h.apply({ op: 'evict', ref: ref('configmaps', 'a', 'default'), now: NOW })
  t.is(other.ok ? 0 : other.status.code, 400)
  t.truthy(h.store.get(POD, 'default', 'a'))
})
