// The scheduler against an in-process store: spreading, filters (resources,
// selectors, affinity, taints, ports, cordon, readiness), the unschedulable
// condition and events, retry on change, NoExecute eviction, and a
// throughput sanity check.
import { POD } from '../../protocol/kinds.ts'
import test from 'ava'
import type { ExecutionContext } from 'ava'
import type { KObject } from '../../protocol/k8s.ts'
import { systemClock } from '../../daemon/clock/clock.ts'
import { rfc3339 } from '../../daemon/controllers/framework.ts'
import { EventRecorder } from '../../daemon/record/recorder.ts'
import type { ControllerContext } from '../../daemon/controllers/framework.ts'
import { createLogger } from '../../daemon/log/log.ts'
import { Scheduler } from '../../daemon/scheduler/scheduler.ts'
import type { SchedulerOptions } from '../../daemon/scheduler/scheduler.ts'
import { ref, StoreHarness } from '../../daemon/store/testing.ts'
import type { StoreCommand, StoreResult } from '../../daemon/store/types.ts'

interface NodeOpts {
  cpu?: string
  memory?: string
  pods?: string
  ready?: boolean
  unschedulable?: boolean
  taints?: Array<{ key: string, value?: string, effect: string, timeAdded?: string }>
  labels?: Record<string, string>
}

function node (name: string, o: NodeOpts = {}): KObject {
  const alloc = { cpu: o.cpu ?? '4', memory: o.memory ?? '8Gi', pods: o.pods ?? '110' }
  return {
    apiVersion: 'v1',
    kind: 'Node',
    metadata: { name, labels: { 'kubernetes.io/hostname': name, ...o.labels } },
    spec: { ...(o.unschedulable === true ? { unschedulable: true } : {}), ...(o.taints === undefined ? {} : { taints: o.taints }) },
    status: { capacity: alloc, allocatable: alloc, conditions: [{ type: 'Ready', status: o.ready === false ? 'False' : 'True' }] }
  }
}

interface PodOpts {
  cpu?: string
  memory?: string
  owner?: string
  labels?: Record<string, string>
  nodeSelector?: Record<string, string>
  affinity?: unknown
  tolerations?: unknown[]
  hostPort?: number
  nodeName?: string
}

function pod (name: string, o: PodOpts = {}): KObject {
  const requests: Record<string, string> = {}
  if (o.cpu !== undefined) requests.cpu = o.cpu
  if (o.memory !== undefined) requests.memory = o.memory
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: {
      name,
      namespace: 'default',
      labels: o.labels ?? { app: name },
      ...(o.owner === undefined ? {} : { ownerReferences: [{ apiVersion: 'apps/v1', kind: 'ReplicaSet', name: 'web-rs', uid: o.owner, controller: true }] })
    },
    spec: {
      containers: [{
        name: 'main',
        image: 'nginx:1.25',
        ...(Object.keys(requests).length === 0 ? {} : { resources: { requests } }),
        ...(o.hostPort === undefined ? {} : { ports: [{ containerPort: 80, hostPort: o.hostPort }] })
      }],
      ...(o.nodeSelector === undefined ? {} : { nodeSelector: o.nodeSelector }),
      ...(o.affinity === undefined ? {} : { affinity: o.affinity }),
      ...(o.tolerations === undefined ? {} : { tolerations: o.tolerations }),
      ...(o.nodeName === undefined ? {} : { nodeName: o.nodeName })
    }
  }
}

interface Rig { h: StoreHarness, ctx: ControllerContext, scheduler: Scheduler, writes: StoreCommand[] }

function rig (t: ExecutionContext, opts: SchedulerOptions = {}): Rig {
  const h = new StoreHarness()
  const writes: StoreCommand[] = []
  const write = async <T extends KObject = KObject>(cmd: StoreCommand): Promise<StoreResult<T>> => {
    writes.push(cmd)
    return h.apply<T>(cmd)
  }
  let uids = 0
  const ctx: ControllerContext = {
    store: h.store,
    write,
    clock: systemClock,
    log: createLogger('silent', 'test'),
    members: () => [],
    events: new EventRecorder(write, systemClock),
    uid: () => `sched-uid-${++uids}`,
    now: () => rfc3339(systemClock.now())
  }
  const scheduler = new Scheduler(opts)
  scheduler.start(ctx)
  t.teardown(() => { scheduler.stop() })
  return { h, ctx, scheduler, writes }
}

async function until (what: string, cond: () => boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`)
    await new Promise(resolve => setTimeout(resolve, 2))
  }
}

/** Lets every queued pass and write finish. */
async function settle (): Promise<void> {
  for (let i = 0; i < 5; i++) await new Promise(resolve => setTimeout(resolve, 5))
}

function getPod (h: StoreHarness, name: string): KObject | undefined {
  return h.store.get(POD, 'default', name)
}

function nodeOf (h: StoreHarness, name: string): string | undefined {
  return (getPod(h, name)?.spec as { nodeName?: string } | undefined)?.nodeName
}

function scheduledCondition (h: StoreHarness, name: string): { status: string, reason?: string, message?: string } | undefined {
  const conds = (getPod(h, name)?.status as { conditions?: Array<{ type: string, status: string, reason?: string, message?: string }> } | undefined)?.conditions
  return conds?.find(c => c.type === 'PodScheduled')
}

function events (h: StoreHarness, reason: string): KObject[] {
  return h.store.list({ group: '', version: 'v1', kind: 'Event', plural: 'events', singular: 'event', namespaced: true, shortNames: [], subresources: [] }, {}).items
    .filter(e => e.reason === reason)
}

test('three replicas of one owner spread one per node over three equal nodes', async t => {
  const { h } = rig(t)
  for (const n of ['p1', 'p2', 'p3']) h.create(node(n))
  for (const i of [1, 2, 3]) h.create(pod(`web-${i}`, { owner: 'rs-uid', labels: { app: 'web' }, cpu: '100m' }))
  await until('all bound', () => [1, 2, 3].every(i => nodeOf(h, `web-${i}`) !== undefined))
  t.deepEqual(new Set([1, 2, 3].map(i => nodeOf(h, `web-${i}`))), new Set(['p1', 'p2', 'p3']))
  await until('Scheduled events', () => events(h, 'Scheduled').length === 3)
  const msgs = events(h, 'Scheduled').map(e => e.message).sort()
  t.true(msgs.includes(`Successfully assigned default/web-1 to ${nodeOf(h, 'web-1') ?? ''}`))
  t.is(events(h, 'Scheduled')[0]?.type, 'Normal')
})

test('a pod too big for every node stays Pending with the Kubernetes message and a FailedScheduling event', async t => {
  const { h, writes } = rig(t)
  for (const n of ['p1', 'p2', 'p3']) h.create(node(n, { cpu: '2' }))
  h.create(pod('big', { cpu: '3' }))
  h.create(pod('small', { cpu: '1500m' }))
  await until('condition', () => scheduledCondition(h, 'big') !== undefined)
  const msg = '0/3 nodes are available: 3 Insufficient cpu.'
  t.deepEqual(scheduledCondition(h, 'big'), { ...scheduledCondition(h, 'big'), status: 'False', reason: 'Unschedulable', message: msg })
  t.is(nodeOf(h, 'big'), undefined)
  await until('event', () => events(h, 'FailedScheduling').length === 1)
  const ev = events(h, 'FailedScheduling')[0] as KObject
  t.is(ev.type, 'Warning')
  t.is(ev.message, msg)
  t.is((ev.involvedObject as { name: string }).name, 'big')
  t.is(nodeOf(h, 'small'), 'p1')
  // Retried on change, but an unchanged message is not written again.
  const before = writes.length
  h.create(pod('other', { cpu: '100m' }))
  h.apply({ op: 'patch', ref: ref('nodes', 'p3'), patchType: 'merge', patch: { metadata: { labels: { zone: 'a' } } }, now: '2025-01-01T00:00:00Z' })
  await until('other bound', () => nodeOf(h, 'other') !== undefined)
  await settle()
  const later = writes.slice(before).filter(w => w.op === 'patch' && w.ref.name === 'big')
  t.deepEqual(later, [])
})

test('a changed Unschedulable message is written at the next refresh, and not at all for a pod bound by then', async t => {
  const { h, writes } = rig(t, { messageRefreshMs: 300 })
  h.create(node('p1', { cpu: '2' }))
  h.create(pod('big', { cpu: '3' }))
  h.create(pod('soon', { cpu: '1' }))
  h.create(pod('hog', { cpu: '2', nodeName: 'p1' }))
  await until('conditions', () => scheduledCondition(h, 'big') !== undefined && scheduledCondition(h, 'soon') !== undefined)
  t.is(scheduledCondition(h, 'big')?.message, '0/1 nodes are available: 1 Insufficient cpu.')
  const before = writes.length
  // A second node: "big" still fits nowhere, with a new count; "soon" fits and is bound at once.
  h.create(node('p2', { cpu: '2' }))
  await until('soon bound', () => nodeOf(h, 'soon') === 'p2')
  await settle()
  const forBig = (): StoreCommand[] => writes.slice(before).filter(w => w.op === 'patch' && w.ref.name === 'big')
  t.is(forBig().length, 0, 'the new message waits for the refresh')
  await until('refreshed', () => scheduledCondition(h, 'big')?.message === '0/2 nodes are available: 2 Insufficient cpu.')
  t.is(forBig().length, 1)
  t.is(writes.slice(before).filter(w => w.op === 'patch' && w.ref.name === 'soon').length, 0)
  t.is(scheduledCondition(h, 'soon')?.status, 'True')
})

test('mixed reasons are counted per reason', async t => {
  const { h } = rig(t)
  h.create(node('p1', { cpu: '1' }))
  h.create(node('p2', { cpu: '1' }))
  h.create(node('p3', { unschedulable: true }))
  h.create(pod('big', { cpu: '2' }))
  await until('condition', () => scheduledCondition(h, 'big') !== undefined)
  t.is(scheduledCondition(h, 'big')?.message, '0/3 nodes are available: 2 Insufficient cpu, 1 node(s) were unschedulable.')
})

test('memory and pod count are checked too', async t => {
  const { h } = rig(t)
  h.create(node('p1', { memory: '1Gi', pods: '1' }))
  h.create(pod('fat', { memory: '2Gi' }))
  h.create(pod('a'))
  h.create(pod('b'))
  await until('conditions', () => scheduledCondition(h, 'fat') !== undefined && scheduledCondition(h, 'b') !== undefined)
  t.is(scheduledCondition(h, 'fat')?.message, '0/1 nodes are available: 1 Insufficient memory.')
  t.is(nodeOf(h, 'a'), 'p1')
  t.is(scheduledCondition(h, 'b')?.message, '0/1 nodes are available: 1 Too many pods.')
})

test('nodeSelector picks the labelled node', async t => {
  const { h } = rig(t)
  h.create(node('p1'))
  h.create(node('p2', { labels: { disk: 'ssd' } }))
  h.create(node('p3'))
  h.create(pod('db', { nodeSelector: { disk: 'ssd' } }))
  h.create(pod('nowhere', { nodeSelector: { disk: 'tape' } }))
  await until('bound', () => nodeOf(h, 'db') !== undefined && scheduledCondition(h, 'nowhere') !== undefined)
  t.is(nodeOf(h, 'db'), 'p2')
  t.is(scheduledCondition(h, 'nowhere')?.message, "0/3 nodes are available: 3 node(s) didn't match Pod's node affinity/selector.")
})

test('required node affinity: In and NotIn, terms ORed, expressions ANDed', async t => {
  const { h } = rig(t)
  h.create(node('p1', { labels: { zone: 'a', tier: 'web' } }))
  h.create(node('p2', { labels: { zone: 'b', tier: 'db' } }))
  h.create(node('p3', { labels: { zone: 'c', gen: '5' } }))
  const req = (terms: unknown[]): unknown => ({ nodeAffinity: { requiredDuringSchedulingIgnoredDuringExecution: { nodeSelectorTerms: terms } } })
  h.create(pod('in-b', { affinity: req([{ matchExpressions: [{ key: 'zone', operator: 'In', values: ['b'] }] }]) }))
  h.create(pod('not-ab', { affinity: req([{ matchExpressions: [{ key: 'zone', operator: 'NotIn', values: ['a', 'b'] }] }]) }))
  h.create(pod('and', { affinity: req([{ matchExpressions: [{ key: 'zone', operator: 'In', values: ['a', 'b'] }, { key: 'tier', operator: 'In', values: ['db'] }] }]) }))
  h.create(pod('or', {
    affinity: req([
      { matchExpressions: [{ key: 'zone', operator: 'In', values: ['z'] }] },
      { matchExpressions: [{ key: 'gen', operator: 'Gt', values: ['4'] }, { key: 'tier', operator: 'DoesNotExist' }] }
    ])
  }))
  h.create(pod('none', { affinity: req([{ matchExpressions: [{ key: 'zone', operator: 'In', values: ['q'] }] }]) }))
  await until('decided', () => ['in-b', 'not-ab', 'and', 'or'].every(n => nodeOf(h, n) !== undefined) && scheduledCondition(h, 'none') !== undefined)
  t.is(nodeOf(h, 'in-b'), 'p2')
  t.is(nodeOf(h, 'not-ab'), 'p3')
  t.is(nodeOf(h, 'and'), 'p2')
  t.is(nodeOf(h, 'or'), 'p3')
  t.is(scheduledCondition(h, 'none')?.message, "0/3 nodes are available: 3 node(s) didn't match Pod's node affinity/selector.")
})

test('taints keep pods off unless tolerated', async t => {
  const { h } = rig(t)
  h.create(node('p1', { taints: [{ key: 'dedicated', value: 'gpu', effect: 'NoSchedule' }] }))
  h.create(node('p2', { taints: [{ key: 'maint', effect: 'NoExecute' }] }))
  h.create(node('p3', { taints: [{ key: 'soft', effect: 'PreferNoSchedule' }] }))
  h.create(pod('plain'))
  h.create(pod('gpu', { tolerations: [{ key: 'dedicated', operator: 'Equal', value: 'gpu', effect: 'NoSchedule' }], nodeSelector: { 'kubernetes.io/hostname': 'p1' } }))
  h.create(pod('any', { tolerations: [{ operator: 'Exists' }], nodeSelector: { 'kubernetes.io/hostname': 'p2' } }))
  h.create(pod('wrong', { tolerations: [{ key: 'dedicated', operator: 'Equal', value: 'cpu' }], nodeSelector: { 'kubernetes.io/hostname': 'p1' } }))
  await until('decided', () => ['plain', 'gpu', 'any'].every(n => nodeOf(h, n) !== undefined) && scheduledCondition(h, 'wrong') !== undefined)
  t.is(nodeOf(h, 'plain'), 'p3')
  t.is(nodeOf(h, 'gpu'), 'p1')
  t.is(nodeOf(h, 'any'), 'p2')
  t.is(scheduledCondition(h, 'wrong')?.message,
    "0/3 nodes are available: 1 node(s) didn't match Pod's node affinity/selector, 1 node(s) had untolerated taint {dedicated: gpu}, 1 node(s) had untolerated taint {maint: }.")
})

test('a host port in use on a node sends the next pod elsewhere, or nowhere', async t => {
  const { h } = rig(t)
  h.create(node('p1'))
  h.create(node('p2'))
  h.create(pod('a', { hostPort: 8080 }))
  h.create(pod('b', { hostPort: 8080 }))
  h.create(pod('c', { hostPort: 8080 }))
  await until('decided', () => nodeOf(h, 'a') !== undefined && nodeOf(h, 'b') !== undefined && scheduledCondition(h, 'c') !== undefined)
  t.not(nodeOf(h, 'a'), nodeOf(h, 'b'))
  t.is(scheduledCondition(h, 'c')?.message, "0/2 nodes are available: 2 node(s) didn't have free ports for the requested pod ports.")
})

test('a cordoned node and a not-Ready node take no pods', async t => {
  const { h } = rig(t)
  h.create(node('p1', { unschedulable: true }))
  h.create(node('p2', { ready: false }))
  h.create(node('p3'))
  for (const i of [1, 2, 3]) h.create(pod(`w-${i}`, { owner: 'rs' }))
  h.create(pod('pinned', { nodeSelector: { 'kubernetes.io/hostname': 'p1' } }))
  await until('decided', () => [1, 2, 3].every(i => nodeOf(h, `w-${i}`) !== undefined) && scheduledCondition(h, 'pinned') !== undefined)
  t.deepEqual([1, 2, 3].map(i => nodeOf(h, `w-${i}`)), ['p3', 'p3', 'p3'])
  t.is(scheduledCondition(h, 'pinned')?.message,
    "0/3 nodes are available: 1 node(s) didn't match Pod's node affinity/selector, 1 node(s) were not ready, 1 node(s) were unschedulable.")
})

test('a pending pod is bound when a node becomes Ready later, and PodScheduled turns True', async t => {
  const { h } = rig(t)
  h.create(node('p1', { ready: false }))
  h.create(pod('waiting'))
  await until('unschedulable', () => scheduledCondition(h, 'waiting')?.status === 'False')
  t.is(scheduledCondition(h, 'waiting')?.message, '0/1 nodes are available: 1 node(s) were not ready.')
  h.apply({ op: 'patch', ref: ref('nodes', 'p1'), subresource: 'status', patchType: 'merge', patch: { status: { conditions: [{ type: 'Ready', status: 'True' }] } }, now: '2025-01-01T00:00:00Z' })
  await until('bound', () => nodeOf(h, 'waiting') === 'p1')
  await until('condition True', () => scheduledCondition(h, 'waiting')?.status === 'True')
  t.pass()
})

test('a freed node takes a waiting pod (retry on pod deletion)', async t => {
  const { h } = rig(t)
  h.create(node('p1', { cpu: '1' }))
  h.create(pod('first', { cpu: '800m' }))
  await until('first bound', () => nodeOf(h, 'first') === 'p1')
  h.create(pod('second', { cpu: '800m' }))
  await until('second unschedulable', () => scheduledCondition(h, 'second')?.status === 'False')
  h.apply({ op: 'delete', ref: ref('pods', 'first', 'default'), now: '2025-01-01T00:00:00Z' })
  await until('second bound', () => nodeOf(h, 'second') === 'p1')
  t.pass()
})

test('pods already bound count against capacity; finished ones do not', async t => {
  const { h } = rig(t)
  h.create(node('p1', { cpu: '1' }))
  h.create(node('p2', { cpu: '1' }))
  h.create(pod('resident', { cpu: '900m', nodeName: 'p1' }))
  h.create(pod('done', { cpu: '900m', nodeName: 'p2' }))
  h.apply({ op: 'patch', ref: ref('pods', 'done', 'default'), subresource: 'status', patchType: 'merge', patch: { status: { phase: 'Succeeded' } }, now: '2025-01-01T00:00:00Z' })
  h.create(pod('new', { cpu: '500m' }))
  await until('bound', () => nodeOf(h, 'new') !== undefined)
  t.is(nodeOf(h, 'new'), 'p2')
})

test('a NoExecute taint evicts pods that do not tolerate it', async t => {
  const { h } = rig(t)
  h.create(node('p1'))
  h.create(pod('victim', { nodeName: 'p1' }))
  h.create(pod('stays', { nodeName: 'p1', tolerations: [{ key: 'maint', operator: 'Exists', effect: 'NoExecute' }] }))
  h.create(pod('later', { nodeName: 'p1', tolerations: [{ key: 'maint', operator: 'Exists', effect: 'NoExecute', tolerationSeconds: 0 }] }))
  await settle()
  t.truthy(getPod(h, 'victim'))
  h.apply({ op: 'patch', ref: ref('nodes', 'p1'), patchType: 'merge', patch: { spec: { taints: [{ key: 'maint', effect: 'NoExecute' }] } }, now: '2025-01-01T00:00:00Z' })
  await until('evicted', () => getPod(h, 'victim') === undefined && getPod(h, 'later') === undefined)
  await settle()
  t.truthy(getPod(h, 'stays'))
})

test('perf sanity: 2,000 pods onto 100 nodes', async t => {
  const { h, scheduler } = rig(t)
  for (let i = 0; i < 100; i++) h.create(node(`n${String(i).padStart(3, '0')}`, { cpu: '32', memory: '64Gi' }))
  const start = Date.now()
  for (let i = 0; i < 2000; i++) h.create(pod(`p-${i}`, { owner: `rs-${i % 20}`, labels: { app: `a${i % 20}` }, cpu: '100m', memory: '128Mi' }))
  const created = Date.now()
  await until('all bound', () => scheduler.bound === 2000, 30_000)
  const end = Date.now()
  const rate = (ms: number): number => Math.round(2000 / (Math.max(1, ms) / 1000))
  t.log(`2,000 pods onto 100 nodes: created in ${created - start} ms; bound (with Scheduled events) in ${end - created} ms: ${rate(end - created)} pods/s; end to end ${rate(end - start)} pods/s`)
  // spread evenly: 20 a node
  const perNode = new Map<string, number>()
  for (let i = 0; i < 2000; i++) {
    const n = nodeOf(h, `p-${i}`) ?? ''
    perNode.set(n, (perNode.get(n) ?? 0) + 1)
  }
  t.is(perNode.size, 100)
  t.true([...perNode.values()].every(c => c === 20))
})

test('tolerationSeconds: evicted once the toleration runs out, counted from the taint timeAdded', async t => {
  const { h } = rig(t)
  h.create(node('p1'))
  const tol = (secs: number): unknown[] => [{ key: 'maint', operator: 'Exists', effect: 'NoExecute', tolerationSeconds: secs }]
  h.create(pod('expired', { nodeName: 'p1', tolerations: tol(5) }))
  h.create(pod('patient', { nodeName: 'p1', tolerations: tol(3600) }))
  const tenSecondsAgo = rfc3339(Date.now() - 10_000)
  h.apply({ op: 'patch', ref: ref('nodes', 'p1'), patchType: 'merge', patch: { spec: { taints: [{ key: 'maint', effect: 'NoExecute', timeAdded: tenSecondsAgo }] } }, now: '2025-01-01T00:00:00Z' })
  await until('evicted', () => getPod(h, 'expired') === undefined)
  await settle()
  t.truthy(getPod(h, 'patient'))
})

test('a failed binding write is retried', async t => {
  const { h, ctx } = rig(t, { bindRetryMs: 10 })
  let failures = 0
  const write = ctx.write
  ctx.write = async cmd => {
    if (cmd.op === 'bind' && failures < 2) {
      failures++
      return { ok: false, status: { apiVersion: 'v1', kind: 'Status', status: 'Failure', message: 'no leader', reason: 'ServiceUnavailable', code: 503 } }
    }
    return await write(cmd)
  }
  h.create(node('p1'))
  h.create(pod('flaky'))
  await until('bound', () => nodeOf(h, 'flaky') === 'p1')
  t.is(failures, 2)
})

test('pods for another scheduler are left alone', async t => {
  const { h } = rig(t)
  h.create(node('p1'))
  const other = pod('other')
  ;(other.spec as Record<string, unknown>).schedulerName = 'my-scheduler'
  h.create(other)
  h.create(pod('mine'))
  await until('mine bound', () => nodeOf(h, 'mine') === 'p1')
  await settle()
  t.is(nodeOf(h, 'other'), undefined)
  t.is(scheduledCondition(h, 'other'), undefined)
})
