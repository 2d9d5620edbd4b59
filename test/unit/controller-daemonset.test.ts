// DaemonSet controller over an in-process store (with the real scheduler
// where binding matters): one pod per node with the daemon tolerations and
// a node affinity on metadata.name, nodeSelector, taints (cordon keeps the
// pod, a custom NoSchedule taint gets none, NoExecute removes it), nodes
// that join, go away or stop being Ready, failed pods replaced with
// back-off, RollingUpdate within maxUnavailable or maxSurge, OnDelete,
// revisions (rollback renumbers, history pruned) and status.
import test from 'ava'
import { CONTROLLER_REVISION_HASH } from '../../protocol/apps-v1.ts'
import type { ControllerRevision, DaemonSet } from '../../protocol/apps-v1.ts'
import type { Pod } from '../../protocol/core-v1.ts'
import { CONTROLLER_REVISION, DAEMON_SET, EVENT, POD } from '../../protocol/kinds.ts'
import type { KObject } from '../../protocol/k8s.ts'
import {
  DaemonSetController, daemonFenceposts, daemonPodTolerations, nodeShouldRunDaemonPod, POD_TEMPLATE_GENERATION, targetNodeOf
} from '../../daemon/controllers/daemonset.ts'
import { isPodReady } from '../../daemon/controllers/replicaset.ts'
import { Scheduler } from '../../daemon/scheduler/scheduler.ts'
import { ref, StoreHarness } from '../../daemon/store/testing.ts'
import type { Controller } from '../../daemon/controllers/framework.ts'
import { startControllers } from '../helpers/controllers.ts'
import type { ControllerEnv } from '../helpers/controllers.ts'

const T0 = '2025-01-01T00:00:00Z'
type Obj = Record<string, any>

interface NodeOpts { labels?: Record<string, string>, taints?: Obj[], unschedulable?: boolean, ready?: 'True' | 'False' | 'Unknown' }

function node (name: string, o: NodeOpts = {}): KObject {
  const alloc = { cpu: '4', memory: '8Gi', pods: '110' }
  return {
    apiVersion: 'v1',
    kind: 'Node',
    metadata: { name, labels: { 'kubernetes.io/hostname': name, ...o.labels } },
    spec: { ...(o.unschedulable === true ? { unschedulable: true } : {}), ...(o.taints !== undefined ? { taints: o.taints } : {}) },
    status: { capacity: alloc, allocatable: alloc, conditions: [{ type: 'Ready', status: o.ready ?? 'True' }] }
  }
}

function daemonSet (spec: Obj = {}, image = 'fluentd:1'): KObject {
  return {
    apiVersion: 'apps/v1',
    kind: 'DaemonSet',
    metadata: { name: 'agent', namespace: 'default' },
    spec: {
      selector: { matchLabels: { app: 'agent' } },
      template: { metadata: { labels: { app: 'agent' } }, spec: { containers: [{ name: 'main', image }] } },
      ...spec
    }
  }
}

function setup (controllers: Controller[] = [new DaemonSetController()]): ControllerEnv {
  return startControllers(controllers, T0)
}

function pods (h: StoreHarness): Pod[] {
  return h.store.list(POD, { namespace: 'default' }).items.filter(p => p.metadata.ownerReferences?.some(r => r.kind === 'DaemonSet'))
}

function podsByNode (h: StoreHarness): Record<string, number> {
  const out: Record<string, number> = {}
  for (const p of pods(h)) out[targetNodeOf(p)] = (out[targetNodeOf(p)] ?? 0) + 1
  return out
}

function ds (h: StoreHarness): DaemonSet {
  return h.store.get(DAEMON_SET, 'default', 'agent') as DaemonSet
}

function revisions (h: StoreHarness): ControllerRevision[] {
  return h.store.list(CONTROLLER_REVISION, { namespace: 'default' }).items.sort((a, b) => a.revision - b.revision)
}

function patchNode (h: StoreHarness, name: string, patch: Obj, subresource?: 'status'): void {
  h.ok(h.apply({ op: 'patch', ref: ref('nodes', name), patchType: 'merge', patch, now: T0, ...(subresource !== undefined ? { subresource } : {}) }))
}

function setImage (h: StoreHarness, image: string): void {
  h.ok(h.apply({ op: 'patch', ref: ref('daemonsets', 'agent', 'default', 'apps'), patchType: 'strategic', patch: { spec: { template: { spec: { containers: [{ name: 'main', image }] } } } }, now: T0 }))
}

/** What the scheduler and the kubelet would do: bind each pod to the node it is for and make it Running and Ready. */
function runPods (h: StoreHarness, which: (p: Pod) => boolean = () => true): void {
  for (const p of pods(h)) {
    if (!which(p) || p.metadata.deletionTimestamp !== undefined) continue
    const name = p.metadata.name ?? ''
    if ((p.spec?.nodeName ?? '') === '') h.ok(h.apply({ op: 'patch', ref: ref('pods', name, 'default'), patchType: 'merge', patch: { spec: { nodeName: targetNodeOf(p) } }, now: T0 }))
    if (!isPodReady(p)) {
      h.ok(h.apply({
        op: 'patch',
        ref: ref('pods', name, 'default'),
        patchType: 'merge',
        subresource: 'status',
        patch: { status: { phase: 'Running', conditions: [{ type: 'Ready', status: 'True', lastTransitionTime: T0 }] } },
        now: T0
      }))
    }
  }
}

function imageOf (p: Pod): string {
  return p.spec?.containers[0]?.image ?? ''
}

test('one pod per node, with the daemon tolerations, a node affinity for its node, the revision labels and status', async t => {
  const { h, settle, stop } = setup()
  for (const n of ['n1', 'n2', 'n3']) h.create(node(n))
  const created = h.create(daemonSet({ template: { metadata: { labels: { app: 'agent' } }, spec: { containers: [{ name: 'main', image: 'fluentd:1' }], tolerations: [{ key: 'node-role.kubernetes.io/control-plane', operator: 'Exists', effect: 'NoSchedule' }] } } }))
  await settle()
  t.deepEqual(podsByNode(h), { n1: 1, n2: 1, n3: 1 })
  const [rev] = revisions(h)
  t.is(revisions(h).length, 1)
  t.is(rev?.revision, 1)
  const hash = rev?.metadata.labels?.[CONTROLLER_REVISION_HASH] ?? ''
  t.is(rev?.metadata.name, `agent-${hash}`)
  t.deepEqual(rev?.metadata.ownerReferences?.map(r => r.uid), [created.metadata.uid])
  for (const p of pods(h)) {
    t.regex(p.metadata.name ?? '', /^agent-[a-z0-9]{5}$/)
    t.deepEqual(p.metadata.labels, { app: 'agent', [CONTROLLER_REVISION_HASH]: hash, [POD_TEMPLATE_GENERATION]: '1' })
    t.deepEqual(p.metadata.ownerReferences, [{ apiVersion: 'apps/v1', kind: 'DaemonSet', name: 'agent', uid: created.metadata.uid ?? '', controller: true, blockOwnerDeletion: true }])
    t.deepEqual(p.spec?.affinity, { nodeAffinity: { requiredDuringSchedulingIgnoredDuringExecution: { nodeSelectorTerms: [{ matchFields: [{ key: 'metadata.name', operator: 'In', values: [targetNodeOf(p)] }] }] } } })
    t.deepEqual(p.spec?.tolerations?.map(x => `${x.key ?? ''}:${x.effect ?? ''}`), [
      'node-role.kubernetes.io/control-plane:NoSchedule',
      'node.kubernetes.io/not-ready:NoExecute', 'node.kubernetes.io/unreachable:NoExecute', 'node.kubernetes.io/disk-pressure:NoSchedule',
      'node.kubernetes.io/memory-pressure:NoSchedule', 'node.kubernetes.io/pid-pressure:NoSchedule', 'node.kubernetes.io/unschedulable:NoSchedule'
    ])
    t.is(p.spec?.nodeName, undefined, 'the scheduler binds it')
  }
  t.like(ds(h).status, { desiredNumberScheduled: 3, currentNumberScheduled: 3, numberMisscheduled: 0, numberReady: 0, updatedNumberScheduled: 3, numberAvailable: 0, numberUnavailable: 3, observedGeneration: 1 })
  runPods(h)
  await settle()
  t.like(ds(h).status, { desiredNumberScheduled: 3, currentNumberScheduled: 3, numberReady: 3, updatedNumberScheduled: 3, numberAvailable: 3, numberUnavailable: 0 })
  t.is(h.store.list(EVENT, { namespace: 'default' }).items.filter(e => e.reason === 'SuccessfulCreate').length, 3)
  // Quiet once converged.
  const rv = h.store.resourceVersion()
  await settle()
  t.is(h.store.resourceVersion(), rv)
  stop()
})

test('the scheduler binds each pod to its node, a cordoned one included', async t => {
  const { h, settle, stop } = setup([new Scheduler(), new DaemonSetController()])
  h.create(node('n1'))
  h.create(node('n2', { unschedulable: true }))
  h.create(node('n3', { taints: [{ key: 'dedicated', value: 'infra', effect: 'NoSchedule' }] }))
  h.create(daemonSet())
  await settle()
  t.deepEqual(Object.fromEntries(pods(h).map(p => [targetNodeOf(p), p.spec?.nodeName])), { n1: 'n1', n2: 'n2' })
  stop()
})

test('nodeSelector and required node affinity choose the nodes; a node that stops matching loses its pod', async t => {
  const { h, settle, stop } = setup()
  h.create(node('n1', { labels: { disk: 'ssd', zone: 'a' } }))
  h.create(node('n2', { labels: { disk: 'ssd', zone: 'b' } }))
  h.create(node('n3', { labels: { zone: 'a' } }))
  h.create(daemonSet({
    template: {
      metadata: { labels: { app: 'agent' } },
      spec: {
        nodeSelector: { disk: 'ssd' },
        affinity: { nodeAffinity: { requiredDuringSchedulingIgnoredDuringExecution: { nodeSelectorTerms: [{ matchExpressions: [{ key: 'zone', operator: 'In', values: ['a'] }] }] } } },
        containers: [{ name: 'main', image: 'fluentd:1' }]
      }
    }
  }))
  await settle()
  t.deepEqual(podsByNode(h), { n1: 1 })
  t.like(ds(h).status, { desiredNumberScheduled: 1, currentNumberScheduled: 1 })
  patchNode(h, 'n3', { metadata: { labels: { disk: 'ssd' } } })
  patchNode(h, 'n1', { metadata: { labels: { disk: null } } })
  await settle()
  t.deepEqual(podsByNode(h), { n3: 1 })
  stop()
})

test('taints: a cordoned node runs its pod; a custom NoSchedule taint gets none but keeps one it has; NoExecute takes it', async t => {
  const { h, settle, stop } = setup()
  h.create(node('n1', { unschedulable: true }))
  h.create(node('n2', { taints: [{ key: 'dedicated', value: 'infra', effect: 'NoSchedule' }] }))
  h.create(node('n3'))
  h.create(node('n4', { taints: [{ key: 'node.kubernetes.io/memory-pressure', effect: 'NoSchedule' }] }))
  h.create(daemonSet())
  await settle()
  t.deepEqual(podsByNode(h), { n1: 1, n3: 1, n4: 1 })
  t.like(ds(h).status, { desiredNumberScheduled: 3, numberMisscheduled: 0 })

  // A NoSchedule taint added later: the pod stays (Kubernetes' shouldContinueRunning), counted as misscheduled.
  patchNode(h, 'n3', { spec: { taints: [{ key: 'dedicated', value: 'infra', effect: 'NoSchedule' }] } })
  await settle()
  t.deepEqual(podsByNode(h), { n1: 1, n3: 1, n4: 1 })
  t.like(ds(h).status, { desiredNumberScheduled: 2, currentNumberScheduled: 2, numberMisscheduled: 1 })
  // NoExecute: it goes.
  patchNode(h, 'n3', { spec: { taints: [{ key: 'dedicated', value: 'infra', effect: 'NoExecute' }] } })
  await settle()
  t.deepEqual(podsByNode(h), { n1: 1, n4: 1 })
  t.like(ds(h).status, { desiredNumberScheduled: 2, numberMisscheduled: 0 })
  // A template that tolerates it runs there again.
  h.ok(h.apply({ op: 'patch', ref: ref('daemonsets', 'agent', 'default', 'apps'), patchType: 'merge', patch: { spec: { template: { spec: { tolerations: [{ key: 'dedicated', operator: 'Exists' }] } } } }, now: T0 }))
  await settle()
  t.deepEqual(Object.keys(podsByNode(h)).sort(), ['n1', 'n2', 'n3', 'n4'])
  stop()
})

test('a node that joins gets a pod; a deleted node\'s pod goes; a NotReady node keeps its pod but gets no new one', async t => {
  const { h, settle, stop } = setup()
  h.create(node('n1'))
  h.create(node('n2'))
  h.create(daemonSet())
  await settle()
  runPods(h)
  h.create(node('n3'))
  await settle()
  t.deepEqual(podsByNode(h), { n1: 1, n2: 1, n3: 1 })

  h.ok(h.apply({ op: 'delete', ref: ref('nodes', 'n3'), now: T0 }))
  await settle()
  t.deepEqual(podsByNode(h), { n1: 1, n2: 1 })

  // n2's member dies: Ready False. The pod tolerates not-ready (NoExecute) and stays...
  patchNode(h, 'n2', { status: { conditions: [{ type: 'Ready', status: 'False' }] } }, 'status')
  await settle()
  t.deepEqual(podsByNode(h), { n1: 1, n2: 1 })
  t.like(ds(h).status, { desiredNumberScheduled: 1, numberMisscheduled: 1 })
  // ...until node lifecycle evicts it; no pod comes back while the node is not Ready.
  const onN2 = pods(h).find(p => targetNodeOf(p) === 'n2') as Pod
  h.ok(h.apply({ op: 'delete', ref: ref('pods', onN2.metadata.name ?? '', 'default'), now: T0 }))
  await settle()
  t.deepEqual(podsByNode(h), { n1: 1 })
  // Back and Ready: a pod again.
  patchNode(h, 'n2', { status: { conditions: [{ type: 'Ready', status: 'True' }] } }, 'status')
  await settle()
  t.deepEqual(podsByNode(h), { n1: 1, n2: 1 })
  stop()
})

test('a failed pod is deleted and replaced, with back-off when it keeps failing', async t => {
  const { h, clock, settle, stop } = setup()
  h.create(node('n1'))
  h.create(daemonSet())
  await settle()
  runPods(h)
  const fail = (): string => {
    const p = pods(h)[0] as Pod
    h.ok(h.apply({ op: 'patch', ref: ref('pods', p.metadata.name ?? '', 'default'), patchType: 'merge', subresource: 'status', patch: { status: { phase: 'Failed' } }, now: T0 }))
    return p.metadata.name ?? ''
  }
  const first = fail()
  await settle()
  const second = pods(h)[0]?.metadata.name
  t.not(second, first, 'replaced at once the first time')
  t.is(pods(h).length, 1)
  t.true(h.store.list(EVENT, { namespace: 'default' }).items.some(e => e.reason === 'FailedDaemonPod'))
  runPods(h)
  // Failing again within the back-off (1 s, then 2 s): it waits.
  fail()
  await new Promise(resolve => setImmediate(resolve))
  await new Promise(resolve => setImmediate(resolve))
  t.is(pods(h)[0]?.metadata.name, second)
  t.is(pods(h)[0]?.status?.phase, 'Failed')
  clock.advance(2000)
  await settle()
  t.not(pods(h)[0]?.metadata.name, second)
  t.is(pods(h).length, 1)
  stop()
})

/** Nodes without an available pod of either revision. */
function unavailableNodes (h: StoreHarness, nodes: string[]): number {
  return nodes.filter(n => !pods(h).some(p => targetNodeOf(p) === n && isPodReady(p))).length
}

test('RollingUpdate with maxUnavailable deletes old pods first, never more than maxUnavailable at once', async t => {
  const { h, settle, stop } = setup()
  const nodes = ['n1', 'n2', 'n3', 'n4']
  for (const n of nodes) h.create(node(n))
  h.create(daemonSet({ updateStrategy: { type: 'RollingUpdate', rollingUpdate: { maxUnavailable: '50%', maxSurge: 0 } } }))
  await settle()
  runPods(h)
  await settle()
  setImage(h, 'fluentd:2')
  await settle()
  t.is(ds(h).status?.observedGeneration, 2)
  let steps = 0
  for (; steps < 10 && !pods(h).every(p => imageOf(p) === 'fluentd:2' && isPodReady(p)); steps++) {
    t.true(unavailableNodes(h, nodes) <= 2, `at most 2 of 4 nodes without an available pod (step ${steps})`)
    t.true(pods(h).length <= 4, 'never a second pod on a node')
    t.is(pods(h).filter(p => imageOf(p) === 'fluentd:2' && !isPodReady(p)).length, 2, 'two replaced at a time')
    runPods(h)
    await settle()
  }
  t.is(steps, 2)
  t.deepEqual(podsByNode(h), { n1: 1, n2: 1, n3: 1, n4: 1 })
  t.like(ds(h).status, { desiredNumberScheduled: 4, updatedNumberScheduled: 4, numberAvailable: 4, numberUnavailable: 0, observedGeneration: 2 })
  const revs = revisions(h)
  t.deepEqual(revs.map(r => r.revision), [1, 2])
  t.true(pods(h).every(p => p.metadata.labels?.[CONTROLLER_REVISION_HASH] === revs[1]?.metadata.labels?.[CONTROLLER_REVISION_HASH]))
  t.true(pods(h).every(p => p.metadata.labels?.[POD_TEMPLATE_GENERATION] === '2'))
  stop()
})

test('RollingUpdate with maxSurge starts the new pod next to the old one and deletes the old one once the new one is available', async t => {
  const { h, settle, stop } = setup()
  const nodes = ['n1', 'n2', 'n3']
  for (const n of nodes) h.create(node(n))
  h.create(daemonSet({ updateStrategy: { type: 'RollingUpdate', rollingUpdate: { maxUnavailable: 0, maxSurge: 1 } } }))
  await settle()
  runPods(h)
  await settle()
  setImage(h, 'fluentd:2')
  await settle()
  let steps = 0
  for (; steps < 10 && !pods(h).every(p => imageOf(p) === 'fluentd:2' && isPodReady(p)); steps++) {
    t.is(unavailableNodes(h, nodes), 0, `every node keeps an available pod (step ${steps})`)
    const fresh = pods(h).filter(p => imageOf(p) === 'fluentd:2' && !isPodReady(p))
    t.is(fresh.length, 1, 'one surge pod at a time')
    t.is(pods(h).length, 4)
    t.is(pods(h).filter(p => targetNodeOf(p) === targetNodeOf(fresh[0] as Pod)).length, 2, 'next to the old one')
    runPods(h)
    await settle()
  }
  t.is(steps, 3)
  t.deepEqual(podsByNode(h), { n1: 1, n2: 1, n3: 1 })
  t.like(ds(h).status, { desiredNumberScheduled: 3, currentNumberScheduled: 3, updatedNumberScheduled: 3, numberAvailable: 3 })
  stop()
})

test('OnDelete replaces a pod only when it is deleted', async t => {
  const { h, settle, stop } = setup()
  for (const n of ['n1', 'n2']) h.create(node(n))
  h.create(daemonSet({ updateStrategy: { type: 'OnDelete' } }))
  await settle()
  runPods(h)
  setImage(h, 'fluentd:2')
  await settle()
  t.deepEqual(pods(h).map(imageOf), ['fluentd:1', 'fluentd:1'])
  t.like(ds(h).status, { updatedNumberScheduled: 0, observedGeneration: 2 })
  const victim = pods(h).find(p => targetNodeOf(p) === 'n1') as Pod
  h.ok(h.apply({ op: 'delete', ref: ref('pods', victim.metadata.name ?? '', 'default'), now: T0 }))
  await settle()
  t.deepEqual(Object.fromEntries(pods(h).map(p => [targetNodeOf(p), imageOf(p)])), { n1: 'fluentd:2', n2: 'fluentd:1' })
  t.like(ds(h).status, { updatedNumberScheduled: 1 })
  stop()
})

test('rollback: the revision kubectl rollout undo patches back in is renumbered as the newest; history is pruned', async t => {
  const { h, settle, stop } = setup()
  for (const n of ['n1', 'n2']) h.create(node(n))
  h.create(daemonSet({ revisionHistoryLimit: 1 }))
  await settle()
  runPods(h)
  setImage(h, 'fluentd:2')
  for (let i = 0; i < 4; i++) { await settle(); runPods(h) }
  const [r1, r2] = revisions(h)
  t.deepEqual(revisions(h).map(r => r.revision), [1, 2])
  // kubectl rollout undo: revision 1's data as a strategic merge patch ($patch: replace on the template).
  h.ok(h.apply({ op: 'patch', ref: ref('daemonsets', 'agent', 'default', 'apps'), patchType: 'strategic', patch: r1?.data as Obj, now: T0 }))
  for (let i = 0; i < 4; i++) { await settle(); runPods(h) }
  await settle()
  const after = revisions(h)
  t.deepEqual(after.map(r => [r.metadata.name, r.revision]), [[r2?.metadata.name, 2], [r1?.metadata.name, 3]], 'renumbered, not copied')
  t.deepEqual(pods(h).map(imageOf), ['fluentd:1', 'fluentd:1'])
  t.true(pods(h).every(p => p.metadata.labels?.[CONTROLLER_REVISION_HASH] === r1?.metadata.labels?.[CONTROLLER_REVISION_HASH]))
  t.like(ds(h).status, { updatedNumberScheduled: 2, numberAvailable: 2, observedGeneration: 3 })
  // A third template: with revisionHistoryLimit 1, the oldest unused revision goes.
  setImage(h, 'fluentd:3')
  for (let i = 0; i < 4; i++) { await settle(); runPods(h) }
  t.deepEqual(revisions(h).map(r => r.revision), [3, 4])
  stop()
})

test('orphans that match are adopted (replaced by a rolling update, as pods of another revision); a pod whose labels stop matching is released and replaced', async t => {
  const { h, settle, stop } = setup()
  h.create(node('n1'))
  const orphan = h.create({ apiVersion: 'v1', kind: 'Pod', metadata: { name: 'stray', namespace: 'default', labels: { app: 'agent' } }, spec: { nodeName: 'n1', containers: [{ name: 'main', image: 'fluentd:1' }] } })
  // OnDelete: under RollingUpdate the adopted pod, of no known revision, would be replaced
  const created = h.create(daemonSet({ updateStrategy: { type: 'OnDelete' } }))
  await settle()
  const adopted = h.store.get(POD, 'default', 'stray')
  t.is(adopted?.metadata.ownerReferences?.[0]?.uid, created.metadata.uid)
  t.deepEqual(podsByNode(h), { n1: 1 }, 'the adopted pod is n1\'s')
  h.ok(h.apply({ op: 'patch', ref: ref('pods', 'stray', 'default'), patchType: 'merge', patch: { metadata: { labels: { app: 'other' } } }, now: T0 }))
  await settle()
  t.is(h.store.get(POD, 'default', 'stray')?.metadata.ownerReferences, undefined)
  t.is(pods(h).length, 1)
  t.not(pods(h)[0]?.metadata.name, orphan.metadata.name)
  // Under RollingUpdate, an adopted pod of no revision of this DaemonSet is replaced.
  h.ok(h.apply({ op: 'patch', ref: ref('pods', 'stray', 'default'), patchType: 'merge', patch: { metadata: { labels: { app: 'agent' } } }, now: T0 }))
  h.ok(h.apply({ op: 'delete', ref: ref('pods', pods(h).find(p => p.metadata.name !== 'stray')?.metadata.name ?? '', 'default'), now: T0 }))
  h.ok(h.apply({ op: 'patch', ref: ref('daemonsets', 'agent', 'default', 'apps'), patchType: 'merge', patch: { spec: { updateStrategy: { type: 'RollingUpdate' } } }, now: T0 }))
  for (let i = 0; i < 3; i++) { await settle(); runPods(h) }
  t.is(h.store.get(POD, 'default', 'stray'), undefined)
  t.deepEqual(podsByNode(h), { n1: 1 })
  t.like(ds(h).status, { updatedNumberScheduled: 1, numberAvailable: 1 })
  stop()
})

test('helpers: fenceposts, the tolerations added, and when a node should run a pod', t => {
  const d = (ru: Obj): DaemonSet => daemonSet({ updateStrategy: { type: 'RollingUpdate', rollingUpdate: ru } }) as DaemonSet
  t.deepEqual(daemonFenceposts(d({ maxUnavailable: '10%', maxSurge: 0 }), 15), { maxSurge: 0, maxUnavailable: 2 }, 'rounded up')
  t.deepEqual(daemonFenceposts(d({ maxUnavailable: 0, maxSurge: '25%' }), 3), { maxSurge: 1, maxUnavailable: 0 })
  t.deepEqual(daemonFenceposts(d({ maxUnavailable: 0, maxSurge: 0 }), 3), { maxSurge: 0, maxUnavailable: 1 })
  // A toleration of the same key, operator and effect is replaced; hostNetwork adds network-unavailable.
  const tols = daemonPodTolerations({ hostNetwork: true, containers: [], tolerations: [{ key: 'node.kubernetes.io/not-ready', operator: 'Exists', effect: 'NoExecute', tolerationSeconds: 300 }] })
  t.is(tols.length, 7)
  t.deepEqual(tols[0], { key: 'node.kubernetes.io/not-ready', operator: 'Exists', effect: 'NoExecute' })
  t.true(tols.some(x => x.key === 'node.kubernetes.io/network-unavailable'))
  const template = (daemonSet() as DaemonSet).spec?.template
  t.deepEqual(nodeShouldRunDaemonPod(node('a', { ready: 'Unknown' }) as any, template), { shouldRun: false, shouldContinueRunning: true })
  t.deepEqual(nodeShouldRunDaemonPod(node('a', { unschedulable: true }) as any, template), { shouldRun: true, shouldContinueRunning: true })
  t.deepEqual(nodeShouldRunDaemonPod(node('a', { taints: [{ key: 'x', effect: 'NoExecute' }] }) as any, template), { shouldRun: false, shouldContinueRunning: false })
  t.deepEqual(nodeShouldRunDaemonPod(node('a', { taints: [{ key: 'x', effect: 'PreferNoSchedule' }] }) as any, template), { shouldRun: true, shouldContinueRunning: true })
})
