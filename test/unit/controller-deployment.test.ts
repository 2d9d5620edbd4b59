// Deployment controller (with the ReplicaSet controller) over an in-process
// store: the first ReplicaSet, rolling updates within maxSurge and
// maxUnavailable, rollback, Recreate, scaling, history pruning, pausing.
import { DEPLOYMENT, EVENT, POD, REPLICA_SET } from '../../protocol/kinds.ts'
import test from 'ava'
import type { KObject, ResourceType } from '../../protocol/k8s.ts'
import type { Deployment } from '../../protocol/apps-v1.ts'
import type { Pod } from '../../protocol/core-v1.ts'
import { DeploymentController, fenceposts, resolveIntOrPercent } from '../../daemon/controllers/deployment.ts'
import { canonicalJson, podTemplateHash } from '../../daemon/controllers/hash.ts'
import { isPodActive, isPodReady, ReplicaSetController } from '../../daemon/controllers/replicaset.ts'
import { deployment, ref, StoreHarness } from '../../daemon/store/testing.ts'
import { startControllers } from '../helpers/controllers.ts'
import type { ControllerEnv } from '../helpers/controllers.ts'
import { rfc3339 } from '../../daemon/controllers/framework.ts'
import type { FakeClock } from '../helpers/fake-clock.ts'

const T0 = '2025-01-01T00:00:00Z'
type Obj = Record<string, any>

function setup (): ControllerEnv {
  return startControllers([new ReplicaSetController(), new DeploymentController()], T0)
}

function web (replicas: number, strategy: Obj, extra: Obj = {}): Deployment {
  const d = deployment('web', { replicas }) as Obj
  d.spec.strategy = strategy
  Object.assign(d.spec, extra)
  return d as Deployment
}

const rolling = (maxSurge: number | string, maxUnavailable: number | string): Obj => ({ type: 'RollingUpdate', rollingUpdate: { maxSurge, maxUnavailable } })

function getDeploy (h: StoreHarness): Obj {
  return h.store.get(DEPLOYMENT, 'default', 'web') as Obj
}

/** Replaces the deployment's spec fields (a read-modify-write, as kubectl does). */
function editDeploy (h: StoreHarness, change: (spec: Obj) => void): void {
  const d = structuredClone(getDeploy(h))
  change(d.spec)
  h.ok(h.apply({ op: 'update', object: d as KObject, now: T0 }))
}

function setImage (h: StoreHarness, image: string): void {
  editDeploy(h, spec => { spec.template.spec.containers[0].image = image })
}

function replicaSets (h: StoreHarness): Obj[] {
  return h.store.list(REPLICA_SET, { namespace: 'default' }).items as Obj[]
}

function rsWithImage (h: StoreHarness, image: string): Obj | undefined {
  return replicaSets(h).find(rs => rs.spec.template.spec.containers[0].image === image)
}

function activePods (h: StoreHarness): Obj[] {
  return h.store.list(POD, { namespace: 'default' }).items.filter(isPodActive) as Obj[]
}

function markAllReady (h: StoreHarness, clock: FakeClock): number {
  let n = 0
  for (const p of activePods(h)) {
    if (isPodReady(p as Pod)) continue
    const at = rfc3339(clock.now())
    h.ok(h.apply({
      op: 'patch',
      ref: ref('pods', p.metadata.name, 'default'),
      patchType: 'merge',
      subresource: 'status',
      patch: { status: { phase: 'Running', conditions: [{ type: 'Ready', status: 'True', lastTransitionTime: at }] } },
      now: at
    }))
    n++
  }
  return n
}

/** Lets the controllers run, then plays the kubelets (marks pods Ready), until `done` or a step bound. */
async function drive (env: ControllerEnv, done: () => boolean, maxSteps = 30): Promise<number> {
  for (let step = 0; step < maxSteps; step++) {
    await env.settle()
    if (done()) return step
    markAllReady(env.h, env.clock)
  }
  await env.settle()
  return maxSteps
}

function scaledTo (rs: Obj | undefined, n: number): boolean {
  return rs !== undefined && rs.spec.replicas === n && (rs.status?.availableReplicas ?? 0) === n
}

function condition (d: Obj, type: string): Obj | undefined {
  return (d.status?.conditions ?? []).find((c: Obj) => c.type === type)
}

test('hash: canonical JSON ignores key order; the hash is short, alphanumeric and stable', t => {
  t.is(canonicalJson({ b: 1, a: [{ y: 2, x: undefined, z: null }] }), '{"a":[{"y":2,"z":null}],"b":1}')
  const a = podTemplateHash({ metadata: { labels: { app: 'web', tier: 'x' } }, spec: { containers: [{ name: 'a', image: 'i' }] } })
  const b = podTemplateHash({ spec: { containers: [{ image: 'i', name: 'a' }] }, metadata: { labels: { tier: 'x', app: 'web' } } })
  t.is(a, b)
  t.regex(a, /^[a-z0-9]{1,10}$/)
  t.not(podTemplateHash({ spec: { containers: [{ name: 'a', image: 'j' }] } }), podTemplateHash({ spec: { containers: [{ name: 'a', image: 'i' }] } }))
  const template = { spec: { containers: [{ name: 'a', image: 'i' }] } }
  t.not(podTemplateHash(template, 1), podTemplateHash(template))
})

test('fenceposts: maxSurge rounds up, maxUnavailable down; both zero gives one unavailable', t => {
  t.is(resolveIntOrPercent('25%', 3, true), 1)
  t.is(resolveIntOrPercent('25%', 3, false), 0)
  t.is(resolveIntOrPercent(2, 3, false), 2)
  t.deepEqual(fenceposts(web(10, rolling('25%', '25%'))), { maxSurge: 3, maxUnavailable: 2 })
  t.deepEqual(fenceposts(web(1, rolling('10%', '10%'))), { maxSurge: 1, maxUnavailable: 0 })
  t.deepEqual(fenceposts(web(3, rolling(0, '10%'))), { maxSurge: 0, maxUnavailable: 1 })
  t.deepEqual(fenceposts(web(3, { type: 'Recreate' })), { maxSurge: 0, maxUnavailable: 0 })
})

test('a Deployment creates a ReplicaSet with the pod-template hash and revision 1', async t => {
  const env = setup()
  const { h } = env
  const d = h.create(web(3, rolling(1, 0))) as Obj
  await drive(env, () => scaledTo(replicaSets(h)[0], 3))
  const all = replicaSets(h)
  t.is(all.length, 1)
  const rs = all[0] as Obj
  const hash = podTemplateHash(d.spec.template)
  t.is(rs.metadata.name, `web-${hash}`)
  t.is(rs.metadata.labels['pod-template-hash'], hash)
  t.deepEqual(rs.spec.selector, { matchLabels: { app: 'web', 'pod-template-hash': hash } })
  t.is(rs.spec.template.metadata.labels['pod-template-hash'], hash)
  t.like(rs.metadata.annotations, { 'deployment.kubernetes.io/revision': '1', 'deployment.kubernetes.io/desired-replicas': '3', 'deployment.kubernetes.io/max-replicas': '4' })
  t.like(rs.metadata.ownerReferences[0], { kind: 'Deployment', name: 'web', uid: d.metadata.uid, controller: true })
  t.true(activePods(h).every(p => p.metadata.labels['pod-template-hash'] === hash))
  const now = getDeploy(h)
  t.is(now.metadata.annotations['deployment.kubernetes.io/revision'], '1')
  t.like(now.status, { replicas: 3, updatedReplicas: 3, readyReplicas: 3, availableReplicas: 3, unavailableReplicas: 0, observedGeneration: 1 })
  t.like(condition(now, 'Available'), { status: 'True', reason: 'MinimumReplicasAvailable' })
  t.like(condition(now, 'Progressing'), { status: 'True', reason: 'NewReplicaSetAvailable' })
  t.true(h.store.list(EVENT, { namespace: 'default' }).items.some(e => e.reason === 'ScalingReplicaSet' && e.message === `Scaled up replica set web-${hash} to 3`))
  // Quiet once converged.
  const rv = h.store.resourceVersion()
  await env.settle()
  t.is(h.store.resourceVersion(), rv)
  env.stop()
})

test('rolling update with maxSurge 1, maxUnavailable 0, then rollback', async t => {
  const env = setup()
  const { h } = env
  h.create(web(3, rolling(1, 0)))
  await drive(env, () => scaledTo(rsWithImage(h, 'nginx:1.25'), 3))
  const a = rsWithImage(h, 'nginx:1.25') as Obj

  // Watch every pod change: never more than 4 active pods, never fewer than 3 ready.
  let maxActive = 0
  let minReady = Infinity
  h.store.watch(POD, { resourceVersion: h.store.resourceVersion() }, () => {
    const pods = activePods(h)
    maxActive = Math.max(maxActive, pods.length)
    minReady = Math.min(minReady, pods.filter(p => isPodReady(p as Pod)).length)
  })

  setImage(h, 'nginx:1.26')
  await env.settle()
  // Mid-rollout: one surge pod, not ready, and the old set untouched.
  let b = rsWithImage(h, 'nginx:1.26') as Obj
  t.is(b.spec.replicas, 1)
  t.is((rsWithImage(h, 'nginx:1.25') as Obj).spec.replicas, 3)
  t.like(condition(getDeploy(h), 'Progressing'), { reason: 'ReplicaSetUpdated' })
  t.is(getDeploy(h).status.updatedReplicas, 1)
  const sizes: Array<[number, number]> = []
  await drive(env, () => {
    sizes.push([(rsWithImage(h, 'nginx:1.26') as Obj).spec.replicas, (rsWithImage(h, 'nginx:1.25') as Obj).spec.replicas])
    return scaledTo(rsWithImage(h, 'nginx:1.26'), 3) && (rsWithImage(h, 'nginx:1.25') as Obj).status.replicas === 0
  })
  // The new set grew one at a time as the old one shrank.
  t.deepEqual(sizes, [[1, 3], [2, 2], [3, 1], [3, 0]])
  t.is(maxActive, 4, 'one surge pod at a time, never more than 4')
  t.is(minReady, 3, 'never fewer than 3 ready')
  b = rsWithImage(h, 'nginx:1.26') as Obj
  t.is(b.spec.replicas, 3)
  t.is((rsWithImage(h, 'nginx:1.25') as Obj).spec.replicas, 0)
  t.is(b.metadata.annotations['deployment.kubernetes.io/revision'], '2')
  let d = getDeploy(h)
  t.is(d.metadata.annotations['deployment.kubernetes.io/revision'], '2')
  t.like(d.status, { replicas: 3, updatedReplicas: 3, availableReplicas: 3, readyReplicas: 3, unavailableReplicas: 0, observedGeneration: 2 })
  t.like(condition(d, 'Progressing'), { status: 'True', reason: 'NewReplicaSetAvailable' })
  t.like(condition(d, 'Available'), { status: 'True' })
  const messages = h.store.list(EVENT, { namespace: 'default' }).items.filter(e => e.reason === 'ScalingReplicaSet').map(e => e.message)
  t.true(messages.includes(`Scaled up replica set ${b.metadata.name as string} to 3`))
  t.true(messages.includes(`Scaled down replica set ${a.metadata.name as string} to 0 from 1`))

  // Rollback: the template goes back to the first one; its ReplicaSet is reused with the next revision.
  setImage(h, 'nginx:1.25')
  await drive(env, () => scaledTo(rsWithImage(h, 'nginx:1.25'), 3) && (rsWithImage(h, 'nginx:1.26') as Obj).status.replicas === 0)
  t.is(replicaSets(h).length, 2)
  const back = rsWithImage(h, 'nginx:1.25') as Obj
  t.is(back.metadata.name, a.metadata.name)
  t.is(back.metadata.uid, a.metadata.uid)
  t.is(back.metadata.annotations['deployment.kubernetes.io/revision'], '3')
  t.is((rsWithImage(h, 'nginx:1.26') as Obj).spec.replicas, 0)
  d = getDeploy(h)
  t.is(d.metadata.annotations['deployment.kubernetes.io/revision'], '3')
  t.like(d.status, { updatedReplicas: 3, availableReplicas: 3 })
  t.like(condition(d, 'Progressing'), { reason: 'NewReplicaSetAvailable' })
  t.true(maxActive <= 4)
  env.stop()
})

test('Recreate: old pods are all gone before the new ReplicaSet scales up', async t => {
  const env = setup()
  const { h } = env
  h.create(web(2, { type: 'Recreate' }))
  await drive(env, () => scaledTo(rsWithImage(h, 'nginx:1.25'), 2))
  // A finalizer keeps one old pod terminating for a while.
  const held = activePods(h)[0] as Obj
  h.ok(h.apply({ op: 'patch', ref: ref('pods', held.metadata.name, 'default'), patchType: 'merge', patch: { metadata: { finalizers: ['test/hold'] } }, now: T0 }))
  setImage(h, 'nginx:1.26')
  await env.settle()
  t.is((rsWithImage(h, 'nginx:1.25') as Obj).spec.replicas, 0)
  const fresh = rsWithImage(h, 'nginx:1.26')
  t.true(fresh === undefined || fresh.spec.replicas === 0, 'the new set waits for the old pods')
  t.is(activePods(h).length, 0)
  t.truthy(h.store.get(POD, 'default', held.metadata.name)?.metadata.deletionTimestamp)
  h.ok(h.apply({ op: 'patch', ref: ref('pods', held.metadata.name, 'default'), patchType: 'merge', patch: { metadata: { finalizers: null } }, now: T0 }))
  await drive(env, () => scaledTo(rsWithImage(h, 'nginx:1.26'), 2))
  const b = rsWithImage(h, 'nginx:1.26') as Obj
  t.is(b.spec.replicas, 2)
  t.is(b.metadata.annotations['deployment.kubernetes.io/revision'], '2')
  t.like(getDeploy(h).status, { updatedReplicas: 2, availableReplicas: 2 })
  t.like(condition(getDeploy(h), 'Progressing'), { reason: 'NewReplicaSetAvailable' })
  env.stop()
})

test('a change of replicas alone scales the ReplicaSet', async t => {
  const env = setup()
  const { h } = env
  h.create(web(3, rolling(1, 0)))
  await drive(env, () => scaledTo(replicaSets(h)[0], 3))
  editDeploy(h, spec => { spec.replicas = 5 })
  await drive(env, () => scaledTo(replicaSets(h)[0], 5))
  const rs = replicaSets(h)[0] as Obj
  t.is(replicaSets(h).length, 1)
  t.is(rs.spec.replicas, 5)
  t.is(rs.metadata.annotations['deployment.kubernetes.io/desired-replicas'], '5')
  t.is(activePods(h).length, 5)
  editDeploy(h, spec => { spec.replicas = 1 })
  await drive(env, () => scaledTo(replicaSets(h)[0], 1))
  t.is(activePods(h).length, 1)
  t.like(getDeploy(h).status, { replicas: 1, availableReplicas: 1 })
  env.stop()
})

test('revisionHistoryLimit prunes the oldest empty ReplicaSets', async t => {
  const env = setup()
  const { h } = env
  h.create(web(1, rolling(1, 0), { revisionHistoryLimit: 1 }))
  await drive(env, () => scaledTo(rsWithImage(h, 'nginx:1.25'), 1))
  const first = rsWithImage(h, 'nginx:1.25') as Obj
  setImage(h, 'nginx:1.26')
  await drive(env, () => scaledTo(rsWithImage(h, 'nginx:1.26'), 1) && (rsWithImage(h, 'nginx:1.25')?.status?.replicas ?? 0) === 0)
  t.is(replicaSets(h).length, 2, 'one old set is within the limit')
  setImage(h, 'nginx:1.27')
  await drive(env, () => scaledTo(rsWithImage(h, 'nginx:1.27'), 1) && replicaSets(h).length === 2)
  const names = replicaSets(h).map(rs => rs.spec.template.spec.containers[0].image).sort()
  t.deepEqual(names, ['nginx:1.26', 'nginx:1.27'])
  t.is(h.store.get(REPLICA_SET, 'default', first.metadata.name), undefined)
  t.is((rsWithImage(h, 'nginx:1.27') as Obj).metadata.annotations['deployment.kubernetes.io/revision'], '3')
  env.stop()
})

test('a paused Deployment scales but does not roll out until resumed', async t => {
  const env = setup()
  const { h } = env
  h.create(web(2, rolling(1, 0)))
  await drive(env, () => scaledTo(replicaSets(h)[0], 2))
  editDeploy(h, spec => { spec.paused = true })
  setImage(h, 'nginx:1.26')
  await drive(env, () => false, 3)
  t.is(replicaSets(h).length, 1, 'no new ReplicaSet while paused')
  t.like(condition(getDeploy(h), 'Progressing'), { status: 'Unknown', reason: 'DeploymentPaused' })
  editDeploy(h, spec => { spec.replicas = 3 })
  await drive(env, () => scaledTo(replicaSets(h)[0], 3))
  t.is((replicaSets(h)[0] as Obj).spec.replicas, 3)
  t.is(replicaSets(h).length, 1)
  editDeploy(h, spec => { spec.paused = false })
  await drive(env, () => scaledTo(rsWithImage(h, 'nginx:1.26'), 3) && (rsWithImage(h, 'nginx:1.25')?.status?.replicas ?? 0) === 0)
  t.is((rsWithImage(h, 'nginx:1.26') as Obj).spec.replicas, 3)
  t.is((rsWithImage(h, 'nginx:1.25') as Obj).spec.replicas, 0)
  t.like(condition(getDeploy(h), 'Progressing'), { status: 'True', reason: 'NewReplicaSetAvailable' })
  env.stop()
})

test('scaling during a rollout shares the new replicas in proportion, within maxSurge', async t => {
  const env = setup()
  const { h } = env
  h.create(web(10, rolling(3, 2)))
  await drive(env, () => scaledTo(replicaSets(h)[0], 10))
  setImage(h, 'nginx:1.26')
  await env.settle()
  // Old down to 10 - maxUnavailable; new up to 10 + maxSurge in all; nothing new is ready yet.
  t.is((rsWithImage(h, 'nginx:1.26') as Obj).spec.replicas, 5)
  t.is((rsWithImage(h, 'nginx:1.25') as Obj).spec.replicas, 8)
  editDeploy(h, spec => { spec.replicas = 20 })
  await env.settle()
  const next = (rsWithImage(h, 'nginx:1.26') as Obj).spec.replicas
  const old = (rsWithImage(h, 'nginx:1.25') as Obj).spec.replicas
  t.is(next + old, 23, 'replicas + maxSurge')
  t.deepEqual([next, old], [9, 14], 'each grew in proportion to its size')
  t.is(activePods(h).length, 23)
  await drive(env, () => scaledTo(rsWithImage(h, 'nginx:1.26'), 20) && (rsWithImage(h, 'nginx:1.25')?.status?.replicas ?? 0) === 0)
  t.is((rsWithImage(h, 'nginx:1.26') as Obj).spec.replicas, 20)
  t.is((rsWithImage(h, 'nginx:1.25') as Obj).spec.replicas, 0)
  t.like(getDeploy(h).status, { replicas: 20, updatedReplicas: 20, availableReplicas: 20 })
  env.stop()
})
