// StatefulSet controller over an in-process store: stable names and
// labels, OrderedReady creation and reverse scale-down, Parallel, a failed
// pod made again under its name, rolling updates with a partition (highest
// ordinal first) and maxUnavailable, OnDelete, status, ordinals.start, and
// the finalizer that keeps a name until the old incarnation is gone.
import test from 'ava'
import { CONTROLLER_REVISION_HASH, STOPPED_BY_KUBELET_FINALIZER } from '../../protocol/apps-v1.ts'
import type { StatefulSet } from '../../protocol/apps-v1.ts'
import type { Pod } from '../../protocol/core-v1.ts'
import { CONTROLLER_REVISION, EVENT, POD, STATEFUL_SET } from '../../protocol/kinds.ts'
import type { KObject } from '../../protocol/k8s.ts'
import { rfc3339 } from '../../daemon/controllers/framework.ts'
import type { MemberHealthView } from '../../daemon/controllers/framework.ts'
import { parseOrdinal, StatefulSetController } from '../../daemon/controllers/statefulset.ts'
import { ref, StoreHarness } from '../../daemon/store/testing.ts'
import { controllerContext } from '../helpers/controllers.ts'
import { FakeClock } from '../helpers/fake-clock.ts'

const START = Date.parse('2025-01-01T00:00:00Z')

interface Env { h: StoreHarness, clock: FakeClock, members: MemberHealthView[], deleted: string[], settle: () => Promise<void>, stop: () => void }

/** startControllers' environment, with a members list the test can change. */
function setup (opts: ConstructorParameters<typeof StatefulSetController>[0] = {}): Env {
  const h = new StoreHarness()
  const clock = new FakeClock(START)
  const members: MemberHealthView[] = []
  const controller = new StatefulSetController(opts)
  const deleted: string[] = []
  const terminating = new Set<string>()
  h.store.watch(POD, {}, e => {
    if (e.type === 'ERROR' || e.type === 'BOOKMARK') return
    const uid = e.object.metadata.uid ?? ''
    if (e.object.metadata.deletionTimestamp === undefined || terminating.has(uid)) return
    terminating.add(uid)
    deleted.push(e.object.metadata.name ?? '')
  })
  controller.start(controllerContext(h, clock, members))
  const settle = async (): Promise<void> => {
    let last = ''
    let stable = 0
    for (let i = 0; i < 1000 && stable < 5; i++) {
      await new Promise(resolve => setImmediate(resolve))
      clock.advance(60)
      const rv = h.store.resourceVersion()
      stable = rv === last ? stable + 1 : 0
      last = rv
    }
  }
  return { h, clock, members, deleted, settle, stop: () => { controller.stop() } }
}

function statefulSet (name: string, replicas: number, spec: Record<string, unknown> = {}): KObject {
  const labels = { app: name }
  return {
    apiVersion: 'apps/v1',
    kind: 'StatefulSet',
    metadata: { name, namespace: 'default' },
    spec: {
      replicas,
      serviceName: 'nginx',
      selector: { matchLabels: labels },
      template: { metadata: { labels }, spec: { containers: [{ name: 'main', image: 'busybox:1.36', command: ['sleep', '3600'] }] } },
      ...spec
    }
  }
}

const now = (env: Env): string => rfc3339(env.clock.now())

function patchSet (env: Env, name: string, patch: Record<string, unknown>): void {
  env.h.ok(env.h.apply({ op: 'patch', ref: ref('statefulsets', name, 'default', 'apps'), patchType: 'merge', patch, now: now(env) }))
}

function setImage (env: Env, name: string, image: string): void {
  const set = env.h.store.get(STATEFUL_SET, 'default', name) as StatefulSet
  const template = structuredClone(set.spec?.template ?? {})
  const c = template.spec?.containers[0]
  if (c !== undefined) c.image = image
  env.h.ok(env.h.apply({ op: 'update', object: { ...set, spec: { ...set.spec, template } } as unknown as KObject, now: now(env) }))
}

function pods (env: Env): Pod[] {
  return env.h.store.list(POD, { namespace: 'default' }).items
    .sort((a, b) => parseOrdinal(a.metadata.name ?? '').ordinal - parseOrdinal(b.metadata.name ?? '').ordinal)
}

const names = (env: Env): string[] => pods(env).map(p => p.metadata.name ?? '')
const live = (env: Env): string[] => pods(env).filter(p => p.metadata.deletionTimestamp === undefined).map(p => p.metadata.name ?? '')

function getPod (env: Env, name: string): Pod {
  const p = env.h.store.get(POD, 'default', name)
  if (p === undefined) throw new Error(`no pod ${name}`)
  return p
}

function setPhase (env: Env, name: string, phase: string, ready: boolean): void {
  env.h.ok(env.h.apply({
    op: 'patch',
    ref: ref('pods', name, 'default'),
    patchType: 'merge',
    subresource: 'status',
    patch: { status: { phase, conditions: [{ type: 'Ready', status: ready ? 'True' : 'False', lastTransitionTime: now(env) }] } },
    now: now(env)
  }))
}

const markReady = (env: Env, name: string): void => { setPhase(env, name, 'Running', true) }

/** Marks every live pod Running and Ready, settling in between, until nothing new appears (at most `rounds`). */
async function readyAll (env: Env, rounds = 10): Promise<void> {
  for (let i = 0; i < rounds; i++) {
    await env.settle()
    const todo = pods(env).filter(p => p.metadata.deletionTimestamp === undefined && p.status?.phase !== 'Running')
    if (todo.length === 0) return
    for (const p of todo) markReady(env, p.metadata.name ?? '')
  }
}

function bindAll (env: Env, node: string): void {
  for (const p of pods(env)) {
    if (p.spec?.nodeName === undefined && p.metadata.deletionTimestamp === undefined) {
      env.h.ok(env.h.apply({ op: 'patch', ref: ref('pods', p.metadata.name ?? '', 'default'), patchType: 'merge', patch: { spec: { nodeName: node } }, now: now(env) }))
    }
  }
}

/** What the kubelet does once the containers of a deleted pod stopped: takes the finalizer off. */
function kubeletStopped (env: Env, name: string): void {
  const p = getPod(env, name)
  const rest = (p.metadata.finalizers ?? []).filter(f => f !== STOPPED_BY_KUBELET_FINALIZER)
  env.h.ok(env.h.apply({ op: 'patch', ref: ref('pods', name, 'default'), patchType: 'merge', patch: { metadata: { finalizers: rest.length === 0 ? null : rest } }, now: now(env) }))
}

function status (env: Env, name: string): Record<string, unknown> {
  return (env.h.store.get(STATEFUL_SET, 'default', name)?.status ?? {}) as Record<string, unknown>
}

/** The pods deleted so far (by the controller or the test), in order: as the watch saw each get its deletionTimestamp. */
function deleteEvents (env: Env): string[] {
  return [...env.deleted]
}

function eventReasons (env: Env): string[] {
  return env.h.store.list(EVENT, { namespace: 'default' }).items.map(e => `${e.reason ?? ''}: ${e.message ?? ''}`).sort()
}

test('parseOrdinal splits a pod name as Kubernetes does', t => {
  t.deepEqual(parseOrdinal('web-12'), { parent: 'web', ordinal: 12 })
  t.deepEqual(parseOrdinal('my-db-0'), { parent: 'my-db', ordinal: 0 })
  t.is(parseOrdinal('web').ordinal, -1)
  t.is(parseOrdinal('web-x').ordinal, -1)
})

test('pods get stable names, hostname and subdomain, the identity labels, the revision name and the finalizer', async t => {
  const env = setup()
  const set = env.h.create(statefulSet('web', 2))
  await env.settle()
  t.deepEqual(names(env), ['web-0'], 'OrderedReady: only the first until it is ready')
  const p = getPod(env, 'web-0')
  const st = status(env, 'web')
  t.regex(String(st.updateRevision), /^web-[a-z0-9]+$/)
  t.deepEqual(p.metadata.labels, {
    app: 'web',
    'statefulset.kubernetes.io/pod-name': 'web-0',
    'apps.kubernetes.io/pod-index': '0',
    [CONTROLLER_REVISION_HASH]: String(st.updateRevision)
  })
  t.is(p.spec?.hostname, 'web-0')
  t.is(p.spec?.subdomain, 'nginx')
  t.deepEqual(p.metadata.finalizers, [STOPPED_BY_KUBELET_FINALIZER])
  t.deepEqual(p.metadata.ownerReferences, [{ apiVersion: 'apps/v1', kind: 'StatefulSet', name: 'web', uid: set.metadata.uid ?? '', controller: true, blockOwnerDeletion: true }])
  const revs = env.h.store.list(CONTROLLER_REVISION, { namespace: 'default' }).items
  t.deepEqual(revs.map(r => [r.metadata.name, r.revision]), [[st.updateRevision, 1]])
  t.like(st, { replicas: 1, readyReplicas: 0, currentReplicas: 1, updatedReplicas: 1, currentRevision: st.updateRevision, observedGeneration: 1, collisionCount: 0 })
  env.stop()
})

test('OrderedReady: each ordinal only once the lower ones are Running and Ready; scale-down from the highest, one at a time', async t => {
  const env = setup()
  env.h.create(statefulSet('web', 3))
  await env.settle()
  t.deepEqual(names(env), ['web-0'])
  setPhase(env, 'web-0', 'Running', false)
  await env.settle()
  t.deepEqual(names(env), ['web-0'], 'running but not ready blocks')
  markReady(env, 'web-0')
  await env.settle()
  t.deepEqual(names(env), ['web-0', 'web-1'])
  t.true((getPod(env, 'web-0').metadata.creationTimestamp ?? '') <= (getPod(env, 'web-1').metadata.creationTimestamp ?? ''))
  markReady(env, 'web-1')
  await env.settle()
  t.deepEqual(names(env), ['web-0', 'web-1', 'web-2'])
  markReady(env, 'web-2')
  await env.settle()
  t.like(status(env, 'web'), { replicas: 3, readyReplicas: 3, availableReplicas: 3 })

  // Bound pods: the finalizer holds each deleted one until "the kubelet" lets go.
  bindAll(env, 'peer-1')
  env.members.push({ name: 'peer-1', peerId: 'p1', state: 'alive', since: START })
  patchSet(env, 'web', { spec: { replicas: 1 } })
  await env.settle()
  t.deepEqual(live(env), ['web-0', 'web-1'])
  t.truthy(getPod(env, 'web-2').metadata.deletionTimestamp, 'web-2 terminating')
  t.deepEqual(deleteEvents(env), ['web-2'], 'web-1 waits for web-2 to be gone')
  kubeletStopped(env, 'web-2')
  await env.settle()
  t.deepEqual(deleteEvents(env), ['web-2', 'web-1'])
  kubeletStopped(env, 'web-1')
  await env.settle()
  t.deepEqual(names(env), ['web-0'])
  t.like(status(env, 'web'), { replicas: 1, readyReplicas: 1 })
  env.stop()
})

test('OrderedReady scale-down waits for an unhealthy lower pod', async t => {
  const env = setup()
  env.h.create(statefulSet('web', 3))
  await readyAll(env)
  setPhase(env, 'web-0', 'Running', false)
  patchSet(env, 'web', { spec: { replicas: 2 } })
  await env.settle()
  t.deepEqual(names(env), ['web-0', 'web-1', 'web-2'], 'nothing goes while web-0 is not ready')
  markReady(env, 'web-0')
  await env.settle()
  t.deepEqual(names(env), ['web-0', 'web-1'])
  env.stop()
})

test('Parallel: every pod at once, and scale-down all at once', async t => {
  const env = setup()
  env.h.create(statefulSet('db', 3, { podManagementPolicy: 'Parallel' }))
  await env.settle()
  t.deepEqual(names(env), ['db-0', 'db-1', 'db-2'])
  patchSet(env, 'db', { spec: { replicas: 5 } })
  await env.settle()
  t.deepEqual(names(env), ['db-0', 'db-1', 'db-2', 'db-3', 'db-4'], 'nothing waits for readiness')
  patchSet(env, 'db', { spec: { replicas: 1 } })
  await env.settle()
  t.deepEqual(names(env), ['db-0'])
  t.deepEqual(deleteEvents(env).sort(), ['db-1', 'db-2', 'db-3', 'db-4'])
  env.stop()
})

test('a failed pod is deleted and made again under the same name, once the old one is gone', async t => {
  const env = setup()
  env.h.create(statefulSet('web', 3))
  await readyAll(env)
  bindAll(env, 'peer-1')
  env.members.push({ name: 'peer-1', peerId: 'p1', state: 'alive', since: START })
  const old = getPod(env, 'web-1')
  setPhase(env, 'web-1', 'Failed', false)
  await env.settle()
  t.truthy(getPod(env, 'web-1').metadata.deletionTimestamp)
  t.is(getPod(env, 'web-1').metadata.uid, old.metadata.uid, 'not made again while the old one is there')
  kubeletStopped(env, 'web-1')
  await env.settle()
  const again = getPod(env, 'web-1')
  t.not(again.metadata.uid, old.metadata.uid)
  t.is(again.metadata.deletionTimestamp, undefined)
  t.deepEqual(names(env), ['web-0', 'web-1', 'web-2'])
  env.stop()
})

test('RollingUpdate with a partition updates only the ordinals at or above it, highest first, each after the one above is ready', async t => {
  const env = setup()
  env.h.create(statefulSet('web', 4))
  await readyAll(env)
  const rev1 = String(status(env, 'web').currentRevision)
  patchSet(env, 'web', { spec: { updateStrategy: { type: 'RollingUpdate', rollingUpdate: { partition: 2 } } } })
  setImage(env, 'web', 'busybox:1.37')
  await env.settle()
  await readyAll(env)
  const rev2 = String(status(env, 'web').updateRevision)
  t.not(rev1, rev2)
  const revOf = (n: string): string | undefined => getPod(env, n).metadata.labels?.[CONTROLLER_REVISION_HASH]
  t.deepEqual(['web-0', 'web-1', 'web-2', 'web-3'].map(revOf), [rev1, rev1, rev2, rev2])
  t.deepEqual(deleteEvents(env), ['web-3', 'web-2'], 'highest first')
  t.is(getPod(env, 'web-2').spec?.containers[0]?.image, 'busybox:1.37')
  t.is(getPod(env, 'web-0').spec?.containers[0]?.image, 'busybox:1.36')
  t.like(status(env, 'web'), { replicas: 4, readyReplicas: 4, currentReplicas: 2, updatedReplicas: 2, currentRevision: rev1, updateRevision: rev2, observedGeneration: 3 })

  // A pod below the partition that is deleted comes back at the current revision.
  env.h.ok(env.h.apply({ op: 'delete', ref: ref('pods', 'web-0', 'default'), now: now(env) }))
  await env.settle()
  t.is(revOf('web-0'), rev1)
  await readyAll(env)

  // One at a time: web-1 goes only once web-2 (above it) is ready again.
  patchSet(env, 'web', { spec: { updateStrategy: { rollingUpdate: { partition: 0 } } } })
  await env.settle()
  t.deepEqual(deleteEvents(env), ['web-3', 'web-2', 'web-0', 'web-1'])
  t.not(revOf('web-0'), rev2, 'web-0 waits for web-1')
  await readyAll(env)
  t.deepEqual(deleteEvents(env), ['web-3', 'web-2', 'web-0', 'web-1', 'web-0'])
  t.true(eventReasons(env).includes('SuccessfulDelete: delete Pod web-3 in StatefulSet web successful'))
  t.true(eventReasons(env).includes('SuccessfulCreate: create Pod web-3 in StatefulSet web successful'))
  t.like(status(env, 'web'), { replicas: 4, readyReplicas: 4, currentReplicas: 4, updatedReplicas: 4, currentRevision: rev2, updateRevision: rev2 })
  env.stop()
})

test('RollingUpdate with maxUnavailable replaces that many at a time', async t => {
  const env = setup()
  env.h.create(statefulSet('web', 4, { podManagementPolicy: 'Parallel', updateStrategy: { type: 'RollingUpdate', rollingUpdate: { partition: 0, maxUnavailable: 2 } } }))
  await readyAll(env)
  setImage(env, 'web', 'busybox:1.37')
  await env.settle()
  t.deepEqual(deleteEvents(env), ['web-3', 'web-2'])
  await readyAll(env)
  t.deepEqual(deleteEvents(env), ['web-3', 'web-2', 'web-1', 'web-0'])
  t.like(status(env, 'web'), { updatedReplicas: 4, readyReplicas: 4 })
  env.stop()
})

test('OnDelete: a new template replaces nothing; a pod the user deletes comes back at the update revision', async t => {
  const env = setup()
  env.h.create(statefulSet('web', 3, { updateStrategy: { type: 'OnDelete' } }))
  await readyAll(env)
  const rev1 = String(status(env, 'web').currentRevision)
  setImage(env, 'web', 'busybox:1.37')
  await env.settle()
  const rev2 = String(status(env, 'web').updateRevision)
  t.not(rev1, rev2)
  t.deepEqual(deleteEvents(env), [])
  t.like(status(env, 'web'), { currentReplicas: 3, updatedReplicas: 0, currentRevision: rev1 })
  env.h.ok(env.h.apply({ op: 'delete', ref: ref('pods', 'web-1', 'default'), now: now(env) }))
  await env.settle()
  t.is(getPod(env, 'web-1').metadata.labels?.[CONTROLLER_REVISION_HASH], rev2)
  t.is(getPod(env, 'web-1').spec?.containers[0]?.image, 'busybox:1.37')
  await readyAll(env)
  t.like(status(env, 'web'), { currentReplicas: 2, updatedReplicas: 1, currentRevision: rev1, updateRevision: rev2 })
  env.stop()
})

test('status: availableReplicas waits for minReadySeconds; observedGeneration follows the spec', async t => {
  const env = setup()
  env.h.create(statefulSet('web', 2, { minReadySeconds: 5, podManagementPolicy: 'Parallel' }))
  await env.settle()
  markReady(env, 'web-0')
  markReady(env, 'web-1')
  await env.settle()
  t.like(status(env, 'web'), { replicas: 2, readyReplicas: 2, availableReplicas: 0, observedGeneration: 1 })
  env.clock.advance(5100)
  await env.settle()
  t.like(status(env, 'web'), { availableReplicas: 2 })
  patchSet(env, 'web', { spec: { replicas: 3 } })
  await env.settle()
  t.like(status(env, 'web'), { replicas: 3, observedGeneration: 2 })
  env.stop()
})

test('OrderedReady waits for each pod to be available for minReadySeconds', async t => {
  const env = setup()
  env.h.create(statefulSet('web', 2, { minReadySeconds: 3 }))
  await env.settle()
  markReady(env, 'web-0')
  await env.settle()
  t.deepEqual(names(env), ['web-0'])
  env.clock.advance(3100)
  await env.settle()
  t.deepEqual(names(env), ['web-0', 'web-1'])
  env.stop()
})

test('ordinals.start numbers the pods from there', async t => {
  const env = setup()
  env.h.create(statefulSet('web', 2, { ordinals: { start: 5 } }))
  await readyAll(env)
  t.deepEqual(names(env), ['web-5', 'web-6'])
  t.is(getPod(env, 'web-6').metadata.labels?.['apps.kubernetes.io/pod-index'], '6')
  patchSet(env, 'web', { spec: { ordinals: { start: 4 } } })
  await readyAll(env)
  t.deepEqual(names(env), ['web-4', 'web-5'])
  env.stop()
})

test('orphans named like the set\'s pods are adopted; a pod whose labels stop matching is released', async t => {
  const env = setup()
  const set = env.h.create(statefulSet('web', 1))
  await readyAll(env)
  env.h.ok(env.h.apply({ op: 'patch', ref: ref('pods', 'web-0', 'default'), patchType: 'merge', patch: { metadata: { labels: { app: 'other' } } }, now: now(env) }))
  await env.settle()
  const released = env.h.store.get(POD, 'default', 'web-0')
  t.is(released?.metadata.ownerReferences, undefined)
  t.is(released?.metadata.deletionTimestamp, undefined)
  // Its name is taken, so the set cannot make its web-0 until the stray one is gone.
  env.h.ok(env.h.apply({ op: 'delete', ref: ref('pods', 'web-0', 'default'), now: now(env) }))
  await env.settle()
  t.is(getPod(env, 'web-0').metadata.ownerReferences?.[0]?.uid, set.metadata.uid)
  env.stop()
})

test('a pod of a dead peer keeps its name until the peer has had time to fence itself', async t => {
  const env = setup({ fenceAfterMs: 10_000, releaseMarginMs: 5000 })
  env.h.create(statefulSet('web', 2, { template: { metadata: { labels: { app: 'web' } }, spec: { terminationGracePeriodSeconds: 2, containers: [{ name: 'main', image: 'busybox' }] } } }))
  await readyAll(env)
  bindAll(env, 'peer-2')
  const member: MemberHealthView = { name: 'peer-2', peerId: 'p2', state: 'alive', since: START }
  env.members.push(member)
  const old = getPod(env, 'web-1')
  // Node lifecycle deletes the pods of a dead member.
  member.state = 'dead'
  member.since = env.clock.now()
  env.h.ok(env.h.apply({ op: 'delete', ref: ref('pods', 'web-1', 'default'), now: now(env) }))
  await env.settle()
  env.clock.advance(10_000)
  await env.settle()
  t.is(getPod(env, 'web-1').metadata.uid, old.metadata.uid, 'still held 10 s after')
  env.clock.advance(8_000)
  await env.settle()
  const again = getPod(env, 'web-1')
  t.not(again.metadata.uid, old.metadata.uid, 'made again after fence + grace + margin')
  t.is(again.metadata.deletionTimestamp, undefined)
  env.stop()
})

test('a name collision with another revision bumps collisionCount', async t => {
  const env = setup()
  const set = statefulSet('web', 1)
  const created = env.h.create(set)
  await env.settle()
  const name = String(status(env, 'web').updateRevision)
  // Replace the revision with a stranger's of the same name and other data, then change nothing: the next pass sees the clash.
  env.h.ok(env.h.apply({ op: 'delete', ref: ref('controllerrevisions', name, 'default', 'apps'), now: now(env) }))
  env.h.create({ apiVersion: 'apps/v1', kind: 'ControllerRevision', metadata: { name, namespace: 'default' }, data: { other: true }, revision: 1 })
  patchSet(env, 'web', { spec: { replicas: 2 } })
  await env.settle()
  const st = status(env, 'web')
  t.is(st.collisionCount, 1)
  t.not(st.updateRevision, name)
  t.truthy(env.h.store.get(CONTROLLER_REVISION, 'default', String(st.updateRevision)))
  t.truthy(created)
  env.stop()
})
