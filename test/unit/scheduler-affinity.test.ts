// The scheduler's Kubernetes placement rules beyond resources and nodes,
// against an in-process store: required and preferred podAffinity and
// podAntiAffinity (topology keys, namespaces, namespaceSelector,
// matchLabelKeys, the first pod of a group, existing pods' anti-affinity
// both ways), preferred node affinity, topologySpreadConstraints (skew,
// minDomains, node inclusion policies, ScheduleAnyway scoring), scheduling
// gates, the validation of these fields, the kubernetes.io/arch node label
// and a throughput check with half the pods carrying anti-affinity.
import test from 'ava'
import type { ExecutionContext } from 'ava'
import { POD } from '../../protocol/kinds.ts'
import type { KObject } from '../../protocol/k8s.ts'
import { systemClock } from '../../daemon/clock/clock.ts'
import { rfc3339 } from '../../daemon/controllers/framework.ts'
import type { ControllerContext } from '../../daemon/controllers/framework.ts'
import { desiredNode } from '../../daemon/controllers/nodes.ts'
import { EventRecorder } from '../../daemon/record/recorder.ts'
import { createLogger } from '../../daemon/log/log.ts'
import { Scheduler } from '../../daemon/scheduler/scheduler.ts'
import { ref, StoreHarness } from '../../daemon/store/testing.ts'
import type { StoreCommand, StoreResult } from '../../daemon/store/types.ts'

const NOW = '2025-01-01T00:00:00Z'

interface NodeOpts { cpu?: string, labels?: Record<string, string>, taints?: unknown[], pods?: string }

function node (name: string, o: NodeOpts = {}): KObject {
  const alloc = { cpu: o.cpu ?? '4', memory: '8Gi', pods: o.pods ?? '110' }
  return {
    apiVersion: 'v1',
    kind: 'Node',
    metadata: { name, labels: { 'kubernetes.io/hostname': name, ...o.labels } },
    spec: o.taints === undefined ? {} : { taints: o.taints },
    status: { capacity: alloc, allocatable: alloc, conditions: [{ type: 'Ready', status: 'True' }] }
  }
}

interface PodOpts {
  namespace?: string
  labels?: Record<string, string>
  cpu?: string
  nodeName?: string
  nodeSelector?: Record<string, string>
  affinity?: unknown
  spread?: unknown[]
  gates?: string[]
  tolerations?: unknown[]
}

function pod (name: string, o: PodOpts = {}): KObject {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, namespace: o.namespace ?? 'default', labels: o.labels ?? { app: name } },
    spec: {
      containers: [{ name: 'main', image: 'nginx:1.25', ...(o.cpu === undefined ? {} : { resources: { requests: { cpu: o.cpu } } }) }],
      ...(o.nodeName === undefined ? {} : { nodeName: o.nodeName }),
      ...(o.nodeSelector === undefined ? {} : { nodeSelector: o.nodeSelector }),
      ...(o.affinity === undefined ? {} : { affinity: o.affinity }),
      ...(o.spread === undefined ? {} : { topologySpreadConstraints: o.spread }),
      ...(o.gates === undefined ? {} : { schedulingGates: o.gates.map(name => ({ name })) }),
      ...(o.tolerations === undefined ? {} : { tolerations: o.tolerations })
    }
  }
}

/** A PodAffinityTerm selecting `labels`. */
function term (labels: Record<string, string>, topologyKey = 'kubernetes.io/hostname', extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { labelSelector: { matchLabels: labels }, topologyKey, ...extra }
}

const required = (kind: 'podAffinity' | 'podAntiAffinity', ...terms: unknown[]): Record<string, unknown> => ({ [kind]: { requiredDuringSchedulingIgnoredDuringExecution: terms } })
const preferred = (kind: 'podAffinity' | 'podAntiAffinity', ...terms: Array<[number, unknown]>): Record<string, unknown> =>
  ({ [kind]: { preferredDuringSchedulingIgnoredDuringExecution: terms.map(([weight, podAffinityTerm]) => ({ weight, podAffinityTerm })) } })

function rig (t: ExecutionContext): { h: StoreHarness, scheduler: Scheduler } {
  const h = new StoreHarness()
  const write = async <T extends KObject = KObject>(cmd: StoreCommand): Promise<StoreResult<T>> => h.apply<T>(cmd)
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
  const scheduler = new Scheduler()
  scheduler.start(ctx)
  t.teardown(() => { scheduler.stop() })
  return { h, scheduler }
}

async function until (what: string, cond: () => boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`)
    await new Promise(resolve => setTimeout(resolve, 2))
  }
}

async function settle (): Promise<void> {
  for (let i = 0; i < 5; i++) await new Promise(resolve => setTimeout(resolve, 5))
}

function nodeOf (h: StoreHarness, name: string, namespace = 'default'): string | undefined {
  return (h.store.get(POD, namespace, name)?.spec as { nodeName?: string } | undefined)?.nodeName
}

function scheduled (h: StoreHarness, name: string): { status: string, reason?: string, message?: string } | undefined {
  const conds = h.store.get(POD, 'default', name)?.status?.conditions
  return conds?.find(c => c.type === 'PodScheduled')
}

/** Waits until every pod in `bound` has a node and every pod in `pending` has a PodScheduled condition. */
async function decided (h: StoreHarness, bound: string[], pending: string[] = []): Promise<void> {
  await until(`${bound.join(',')} bound, ${pending.join(',')} marked`, () => bound.every(n => nodeOf(h, n) !== undefined) && pending.every(n => scheduled(h, n)?.status === 'False'))
}

function zones (h: StoreHarness, zoneOf: Record<string, string>, names: string[]): Record<string, number> {
  const out: Record<string, number> = {}
  for (const n of names) {
    const z = zoneOf[nodeOf(h, n) ?? ''] ?? 'none'
    out[z] = (out[z] ?? 0) + 1
  }
  return out
}

// ---- required podAffinity ---------------------------------------------------

test('required podAffinity on hostname: the pod goes to the node of the pod it selects', async t => {
  const { h } = rig(t)
  for (const n of ['p1', 'p2', 'p3']) h.create(node(n))
  h.create(pod('db', { nodeName: 'p3' }))
  h.create(pod('app', { affinity: required('podAffinity', term({ app: 'db' })) }))
  await decided(h, ['app'])
  // without the term, the empty p1 would win on least allocated and name
  t.is(nodeOf(h, 'app'), 'p3')
})

test('a pod with a required podAffinity that no pod satisfies stays Pending with the Kubernetes reason', async t => {
  const { h } = rig(t)
  for (const n of ['p1', 'p2', 'p3']) h.create(node(n))
  h.create(pod('app', { labels: { app: 'app' }, affinity: required('podAffinity', term({ app: 'db' })) }))
  await decided(h, [], ['app'])
  t.is(nodeOf(h, 'app'), undefined)
  t.like(scheduled(h, 'app'), { status: 'False', reason: 'Unschedulable', message: "0/3 nodes are available: 3 node(s) didn't match pod affinity rules." })
  // the pod it wants arrives: it is scheduled next to it
  h.create(pod('db', { nodeName: 'p2' }))
  // at once, not at the next periodic retry (5 s)
  await until('app bound', () => nodeOf(h, 'app') !== undefined, 1500)
  t.is(nodeOf(h, 'app'), 'p2')
  await until('PodScheduled True', () => scheduled(h, 'app')?.status === 'True')
})

test('required podAffinity: no node with the topology key satisfies it, even where the selected pod runs', async t => {
  const { h } = rig(t)
  h.create(node('p1'))
  h.create(node('p2'))
  h.create(pod('db', { nodeName: 'p1' }))
  h.create(pod('app', { affinity: required('podAffinity', term({ app: 'db' }, 'topology.kubernetes.io/zone')) }))
  await decided(h, [], ['app'])
  t.is(scheduled(h, 'app')?.message, "0/2 nodes are available: 2 node(s) didn't match pod affinity rules.")
})

test('required podAffinity on any node label: the same zone, not the same node', async t => {
  const { h } = rig(t)
  const zone = (z: string): NodeOpts => ({ labels: { 'topology.kubernetes.io/zone': z } })
  h.create(node('p1', { ...zone('a'), cpu: '1' }))
  h.create(node('p2', zone('a')))
  h.create(node('p3', zone('b')))
  h.create(node('p4'))
  h.create(pod('db', { nodeName: 'p1', cpu: '1' }))
  for (const i of [1, 2, 3]) h.create(pod(`app-${i}`, { labels: { app: 'app' }, cpu: '100m', affinity: required('podAffinity', term({ app: 'db' }, 'topology.kubernetes.io/zone')) }))
  await decided(h, ['app-1', 'app-2', 'app-3'])
  // p1 is full, p3 is another zone, p4 has no zone: all go to p2
  t.deepEqual([1, 2, 3].map(i => nodeOf(h, `app-${i}`)), ['p2', 'p2', 'p2'])
})

test('the first pod of a group with affinity to itself may go anywhere; the rest follow it', async t => {
  const { h } = rig(t)
  for (const n of ['p1', 'p2', 'p3']) h.create(node(n))
  h.create(pod('filler', { nodeName: 'p1', cpu: '2' }))
  for (const i of [1, 2, 3]) h.create(pod(`cache-${i}`, { labels: { app: 'cache' }, affinity: required('podAffinity', term({ app: 'cache' })) }))
  await decided(h, ['cache-1', 'cache-2', 'cache-3'])
  const first = nodeOf(h, 'cache-1')
  t.is(first, 'p2')
  t.deepEqual([2, 3].map(i => nodeOf(h, `cache-${i}`)), [first, first])
  // a pod that does not match its own term is not a first pod
  h.create(pod('loner', { labels: { app: 'loner' }, affinity: required('podAffinity', term({ app: 'nobody' })) }))
  await decided(h, [], ['loner'])
  t.is(nodeOf(h, 'loner'), undefined)
})

test('the first pod of a group still needs a node with the topology key', async t => {
  const { h } = rig(t)
  h.create(node('p1'))
  h.create(node('p2', { labels: { zone: 'a' } }))
  h.create(pod('first', { labels: { app: 'cz' }, affinity: required('podAffinity', term({ app: 'cz' }, 'zone')) }))
  await decided(h, ['first'])
  // p1, empty and first by name, has no zone
  t.is(nodeOf(h, 'first'), 'p2')
})

test('relabelling the node of the selected pod moves its domain', async t => {
  const { h } = rig(t)
  h.create(node('p1', { labels: { zone: 'a' } }))
  h.create(node('p2'))
  h.create(pod('db', { nodeName: 'p2' }))
  h.create(pod('app', { affinity: required('podAffinity', term({ app: 'db' }, 'zone')) }))
  await decided(h, [], ['app'])
  t.is(scheduled(h, 'app')?.message, "0/2 nodes are available: 2 node(s) didn't match pod affinity rules.")
  // p2 joins zone a: db is now in zone a, and so may app be, on either node
  h.apply({ op: 'patch', ref: ref('nodes', 'p2'), patchType: 'merge', patch: { metadata: { labels: { zone: 'a' } } }, now: NOW })
  await until('app bound', () => nodeOf(h, 'app') !== undefined, 1500)
  t.is(nodeOf(h, 'app'), 'p1')
})

test('every required affinity term must hold on the node', async t => {
  const { h } = rig(t)
  for (const n of ['p1', 'p2']) h.create(node(n, { labels: { rack: 'r1' } }))
  h.create(node('p3', { labels: { rack: 'r2' } }))
  h.create(pod('db', { nodeName: 'p1', labels: { app: 'db', tier: 'data' } }))
  h.create(pod('both', { affinity: required('podAffinity', term({ app: 'db' }, 'rack'), term({ tier: 'data' })) }))
  h.create(pod('clash', { affinity: required('podAffinity', term({ app: 'db' }), term({ app: 'other' }, 'rack')) }))
  await decided(h, ['both'], ['clash'])
  t.is(nodeOf(h, 'both'), 'p1')
})

// ---- required podAntiAffinity -------------------------------------------------

test('required podAntiAffinity on hostname: one replica per node, the extra one Pending', async t => {
  const { h } = rig(t)
  h.create(node('p1', { cpu: '64' }))
  h.create(node('p2'))
  h.create(node('p3'))
  const anti = required('podAntiAffinity', term({ app: 'web' }))
  for (const i of [1, 2, 3, 4]) h.create(pod(`web-${i}`, { labels: { app: 'web' }, cpu: '100m', affinity: anti }))
  await decided(h, ['web-1', 'web-2', 'web-3'], ['web-4'])
  t.deepEqual(new Set([1, 2, 3].map(i => nodeOf(h, `web-${i}`))), new Set(['p1', 'p2', 'p3']))
  t.is(scheduled(h, 'web-4')?.message, "0/3 nodes are available: 3 node(s) didn't match pod anti-affinity rules.")
  // a replica goes away: the extra one takes its node
  const freed = nodeOf(h, 'web-2')
  h.apply({ op: 'delete', ref: ref('pods', 'web-2', 'default'), now: NOW })
  await until('web-4 bound', () => nodeOf(h, 'web-4') !== undefined)
  t.is(nodeOf(h, 'web-4'), freed)
})

test("an existing pod's required anti-affinity keeps away the pods it selects (symmetry)", async t => {
  const { h } = rig(t)
  h.create(node('p1'))
  h.create(node('p2'))
  h.create(pod('guard', { nodeName: 'p1', affinity: required('podAntiAffinity', term({ app: 'web' })) }))
  // neither of these has any affinity of its own
  h.create(pod('web', { nodeSelector: { 'kubernetes.io/hostname': 'p1' } }))
  h.create(pod('web-free', { labels: { app: 'web' } }))
  h.create(pod('other', { nodeSelector: { 'kubernetes.io/hostname': 'p1' } }))
  await decided(h, ['web-free', 'other'], ['web'])
  t.is(scheduled(h, 'web')?.message, "0/2 nodes are available: 1 node(s) didn't match Pod's node affinity/selector, 1 node(s) didn't satisfy existing pods anti-affinity rules.")
  t.is(nodeOf(h, 'web-free'), 'p2')
  t.is(nodeOf(h, 'other'), 'p1')
  // the guard goes: the web pod may go to p1
  h.apply({ op: 'delete', ref: ref('pods', 'guard', 'default'), now: NOW })
  await until('web bound', () => nodeOf(h, 'web') !== undefined)
  t.is(nodeOf(h, 'web'), 'p1')
})

test('anti-affinity over a zone key keeps the whole zone free; nodes without the key are fine', async t => {
  const { h } = rig(t)
  h.create(node('p1', { labels: { zone: 'a' } }))
  h.create(node('p2', { labels: { zone: 'a' } }))
  h.create(node('p3'))
  h.create(pod('noisy', { nodeName: 'p1' }))
  h.create(pod('quiet', { affinity: required('podAntiAffinity', term({ app: 'noisy' }, 'zone')) }))
  await decided(h, ['quiet'])
  t.is(nodeOf(h, 'quiet'), 'p3')
})

test('matchLabelKeys and mismatchLabelKeys take their values from the pod itself', async t => {
  const { h } = rig(t)
  h.create(node('p1'))
  h.create(pod('v1-a', { nodeName: 'p1', labels: { app: 'web', version: '1' } }))
  const anti = required('podAntiAffinity', term({ app: 'web' }, 'kubernetes.io/hostname', { matchLabelKeys: ['version'] }))
  h.create(pod('v2-a', { labels: { app: 'web', version: '2' }, affinity: anti }))
  h.create(pod('v1-b', { labels: { app: 'web', version: '1' }, affinity: anti }))
  const aff = required('podAffinity', term({ app: 'web' }, 'kubernetes.io/hostname', { mismatchLabelKeys: ['version'] }))
  h.create(pod('v3', { labels: { app: 'x', version: '1' }, affinity: aff }))
  await decided(h, ['v2-a', 'v3'], ['v1-b'])
  t.is(nodeOf(h, 'v2-a'), 'p1')
  t.is(scheduled(h, 'v1-b')?.message, "0/1 nodes are available: 1 node(s) didn't match pod anti-affinity rules.")
})

test('namespaces: the own by default, a list, a namespaceSelector by labels, {} for all', async t => {
  const { h } = rig(t)
  h.create({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'team-a', labels: { team: 'a' } } })
  h.create(node('p1'))
  h.create(node('p2'))
  h.create(pod('db', { namespace: 'team-a', nodeName: 'p2' }))
  const aff = (extra: Record<string, unknown>): unknown => required('podAffinity', term({ app: 'db' }, 'kubernetes.io/hostname', extra))
  h.create(pod('own', { affinity: aff({}) }))
  h.create(pod('listed', { affinity: aff({ namespaces: ['team-a'] }) }))
  h.create(pod('by-label', { affinity: aff({ namespaceSelector: { matchLabels: { team: 'a' } } }) }))
  h.create(pod('wrong-label', { affinity: aff({ namespaceSelector: { matchLabels: { team: 'b' } } }) }))
  h.create(pod('all', { affinity: aff({ namespaceSelector: {} }) }))
  await decided(h, ['listed', 'by-label', 'all'], ['own', 'wrong-label'])
  t.deepEqual(['listed', 'by-label', 'all'].map(n => nodeOf(h, n)), ['p2', 'p2', 'p2'])
  // relabelling the namespace changes what the selector selects
  h.apply({ op: 'patch', ref: ref('namespaces', 'team-a'), patchType: 'merge', patch: { metadata: { labels: { team: 'b' } } }, now: NOW })
  await until('wrong-label bound', () => nodeOf(h, 'wrong-label') === 'p2')
  t.is(nodeOf(h, 'own'), undefined)
})

// ---- preferred terms ----------------------------------------------------------

test('preferred podAffinity draws a pod to its peer; preferred podAntiAffinity pushes it away', async t => {
  const { h } = rig(t)
  for (const n of ['p1', 'p2', 'p3']) h.create(node(n))
  h.create(pod('cache', { nodeName: 'p3' }))
  h.create(pod('near', { affinity: preferred('podAffinity', [50, term({ app: 'cache' })]) }))
  await decided(h, ['near'])
  t.is(nodeOf(h, 'near'), 'p3')
  h.create(pod('busy', { nodeName: 'p1' }))
  h.create(pod('busy-2', { nodeName: 'p2' }))
  // p1 and p2 each have one pod; p3 has two, yet far goes to p3: away from busy
  h.create(pod('far', { labels: { app: 'far' }, affinity: preferred('podAntiAffinity', [100, term({ app: 'busy' })]) }))
  await decided(h, ['far'])
  t.is(nodeOf(h, 'far'), 'p2')
})

test("an existing pod's preferred affinity draws the pods it selects (symmetric scoring)", async t => {
  const { h } = rig(t)
  for (const n of ['p1', 'p2', 'p3']) h.create(node(n))
  h.create(pod('magnet', { nodeName: 'p3', affinity: preferred('podAffinity', [100, term({ app: 'iron' })]) }))
  h.create(pod('iron'))
  await decided(h, ['iron'])
  t.is(nodeOf(h, 'iron'), 'p3')
})

test('preferred node affinity: the heavier matching preference wins', async t => {
  const { h } = rig(t)
  h.create(node('p1', { labels: { disk: 'hdd' } }))
  h.create(node('p2', { labels: { disk: 'ssd' } }))
  h.create(node('p3', { labels: { disk: 'ssd', gpu: 'yes' } }))
  const pref = (...terms: Array<[number, string, string]>): unknown => ({
    nodeAffinity: { preferredDuringSchedulingIgnoredDuringExecution: terms.map(([weight, key, value]) => ({ weight, preference: { matchExpressions: [{ key, operator: 'In', values: [value] }] } })) }
  })
  h.create(pod('ssd', { affinity: pref([10, 'disk', 'ssd']) }))
  h.create(pod('gpu', { affinity: pref([10, 'disk', 'ssd'], [60, 'gpu', 'yes']) }))
  h.create(pod('hdd', { affinity: pref([5, 'disk', 'ssd'], [80, 'disk', 'hdd']) }))
  h.create(pod('plain'))
  await decided(h, ['ssd', 'gpu', 'hdd', 'plain'])
  t.is(nodeOf(h, 'ssd'), 'p2')
  t.is(nodeOf(h, 'gpu'), 'p3')
  t.is(nodeOf(h, 'hdd'), 'p1')
})

// ---- topologySpreadConstraints --------------------------------------------------

const ZONE_OF: Record<string, string> = { p1: 'a', p2: 'a', p3: 'b', p4: 'b' }
function zoned (h: StoreHarness, names = ['p1', 'p2', 'p3'], opts: NodeOpts = {}): void {
  for (const n of names) h.create(node(n, { ...opts, labels: { zone: ZONE_OF[n] as string, ...opts.labels } }))
}
const spreadBy = (key: string, extra: Record<string, unknown> = {}): Record<string, unknown> =>
  ({ maxSkew: 1, topologyKey: key, whenUnsatisfiable: 'DoNotSchedule', labelSelector: { matchLabels: { app: 'web' } }, ...extra })

test('DoNotSchedule over zones: four replicas split two and two although zone a has twice the nodes', async t => {
  const { h } = rig(t)
  zoned(h)
  const names = [1, 2, 3, 4].map(i => `web-${i}`)
  for (const n of names) h.create(pod(n, { labels: { app: 'web' }, spread: [spreadBy('zone')] }))
  await decided(h, names)
  t.deepEqual(zones(h, ZONE_OF, names), { a: 2, b: 2 })
})

test('DoNotSchedule: a node that would make the skew too large is filtered, with the Kubernetes reasons', async t => {
  const { h } = rig(t)
  h.create(node('p1', { labels: { zone: 'a' } }))
  h.create(node('p3', { labels: { zone: 'b' }, cpu: '1' }))
  h.create(node('p9'))
  h.create(pod('web-0', { labels: { app: 'web' }, nodeName: 'p1' }))
  h.create(pod('web-1', { labels: { app: 'web' }, cpu: '2', spread: [spreadBy('zone')] }))
  await decided(h, [], ['web-1'])
  t.is(scheduled(h, 'web-1')?.message,
    "0/3 nodes are available: 1 Insufficient cpu, 1 node(s) didn't match pod topology spread constraints, 1 node(s) didn't match pod topology spread constraints (missing required label).")
  // a pod the constraint does not select does not count itself
  h.create(pod('other', { labels: { app: 'other' }, nodeSelector: { zone: 'a' }, spread: [spreadBy('zone')] }))
  await decided(h, ['other'])
  t.is(nodeOf(h, 'other'), 'p1')
})

test('minDomains: fewer domains than asked count the global minimum as 0', async t => {
  const { h } = rig(t)
  zoned(h)
  h.create(pod('web-a', { labels: { app: 'web' }, nodeName: 'p1' }))
  h.create(pod('web-b', { labels: { app: 'web' }, nodeName: 'p3' }))
  h.create(pod('with-3', { labels: { app: 'web' }, spread: [spreadBy('zone', { minDomains: 3 })] }))
  h.create(pod('with-2', { labels: { app: 'web' }, spread: [spreadBy('zone', { minDomains: 2 })] }))
  await decided(h, ['with-2'], ['with-3'])
  t.is(scheduled(h, 'with-3')?.message, "0/3 nodes are available: 3 node(s) didn't match pod topology spread constraints.")
})

test('nodeAffinityPolicy: Honor counts only the nodes the pod may use, Ignore counts all', async t => {
  const { h } = rig(t)
  zoned(h)
  h.create(pod('web-0', { labels: { app: 'web' }, nodeName: 'p1' }))
  h.create(pod('honor', { labels: { app: 'web' }, nodeSelector: { zone: 'a' }, spread: [spreadBy('zone')] }))
  h.create(pod('ignore', { labels: { app: 'web' }, nodeSelector: { zone: 'a' }, spread: [spreadBy('zone', { nodeAffinityPolicy: 'Ignore' })] }))
  await decided(h, ['honor'], ['ignore'])
  t.is(ZONE_OF[nodeOf(h, 'honor') ?? ''], 'a')
})

test('nodeTaintsPolicy: Ignore (the default) counts a tainted zone, Honor does not', async t => {
  const { h } = rig(t)
  h.create(node('p1', { labels: { zone: 'a' } }))
  h.create(node('p3', { labels: { zone: 'b' }, taints: [{ key: 'dedicated', value: 'x', effect: 'NoSchedule' }] }))
  h.create(pod('web-0', { labels: { app: 'web' }, nodeName: 'p1' }))
  h.create(pod('ignore', { labels: { app: 'web' }, spread: [spreadBy('zone')] }))
  h.create(pod('honor', { labels: { app: 'web' }, spread: [spreadBy('zone', { nodeTaintsPolicy: 'Honor' })] }))
  await decided(h, ['honor'], ['ignore'])
  t.is(nodeOf(h, 'honor'), 'p1')
  t.is(scheduled(h, 'ignore')?.message, "0/2 nodes are available: 1 node(s) didn't match pod topology spread constraints, 1 node(s) had untolerated taint {dedicated: x}.")
})

test('ScheduleAnyway: the emptier zone wins over the emptier node', async t => {
  const { h } = rig(t)
  zoned(h)
  // zone a holds two pods the constraint selects, p3 in zone b is half full of something else
  h.create(pod('web-0', { labels: { app: 'web', idx: '0' }, nodeName: 'p1' }))
  h.create(pod('web-1', { labels: { app: 'web', idx: '1' }, nodeName: 'p2' }))
  h.create(pod('load', { nodeName: 'p3', cpu: '2' }))
  h.create(pod('soft', { labels: { app: 'web' }, spread: [spreadBy('zone', { whenUnsatisfiable: 'ScheduleAnyway' })] }))
  h.create(pod('none', { labels: { app: 'web' } }))
  await decided(h, ['soft', 'none'])
  t.is(nodeOf(h, 'soft'), 'p3')
  // without a constraint, least allocated picks an empty node of zone a
  t.not(ZONE_OF[nodeOf(h, 'none') ?? ''], 'b')
})

test('ScheduleAnyway never leaves a pod Pending and a hostname constraint spreads per node', async t => {
  const { h } = rig(t)
  zoned(h, ['p1', 'p2', 'p3'], { pods: '3' })
  const names = [1, 2, 3, 4, 5, 6].map(i => `web-${i}`)
  const soft = spreadBy('kubernetes.io/hostname', { whenUnsatisfiable: 'ScheduleAnyway' })
  for (const [i, n] of names.entries()) h.create(pod(n, { labels: { app: 'web', idx: String(i) }, spread: [soft] }))
  await decided(h, names)
  const perNode = new Map<string, number>()
  for (const n of names) perNode.set(nodeOf(h, n) ?? '', (perNode.get(nodeOf(h, n) ?? '') ?? 0) + 1)
  t.deepEqual([...perNode.values()], [2, 2, 2])
})

// ---- scheduling gates ----------------------------------------------------------

test('a gated pod waits with SchedulingGated and is scheduled once its gates are removed', async t => {
  const { h } = rig(t)
  h.create(node('p1'))
  h.create(pod('gated', { gates: ['example.com/quota', 'wait'] }))
  await until('SchedulingGated', () => scheduled(h, 'gated')?.reason === 'SchedulingGated')
  t.like(scheduled(h, 'gated'), { status: 'False', message: 'Scheduling is blocked due to non-empty scheduling gates' })
  await settle()
  t.is(nodeOf(h, 'gated'), undefined)
  // adding a gate is refused; removing one is allowed, and one left still gates
  const add = h.apply({ op: 'patch', ref: ref('pods', 'gated', 'default'), patchType: 'merge', patch: { spec: { schedulingGates: [{ name: 'wait' }, { name: 'more' }] } }, now: NOW })
  t.false(add.ok)
  t.regex(add.ok ? '' : add.status.message ?? '', /only deletion is allowed, but found new scheduling gate 'more'/)
  const one = h.apply({ op: 'patch', ref: ref('pods', 'gated', 'default'), patchType: 'merge', patch: { spec: { schedulingGates: [{ name: 'wait' }] } }, now: NOW })
  t.true(one.ok)
  await settle()
  t.is(nodeOf(h, 'gated'), undefined)
  const none = h.apply({ op: 'patch', ref: ref('pods', 'gated', 'default'), patchType: 'merge', patch: { spec: { schedulingGates: [] } }, now: NOW })
  t.true(none.ok)
  await until('bound', () => nodeOf(h, 'gated') === 'p1')
  await until('PodScheduled True', () => scheduled(h, 'gated')?.status === 'True')
})

// ---- validation -------------------------------------------------------------------

test('validation: pod affinity, spread constraints and gates are checked as Kubernetes does', t => {
  const h = new StoreHarness()
  const refuse = (name: string, o: PodOpts, why: RegExp): void => {
    const r = h.tryCreate(pod(name, o))
    t.false(r.ok, name)
    if (!r.ok) t.regex(r.status.message ?? '', why, name)
  }
  refuse('weight', { affinity: preferred('podAffinity', [0, term({ app: 'x' })]) }, /preferredDuringSchedulingIgnoredDuringExecution\[0\]\.weight: Invalid value: 0: must be in the range 1-100/)
  refuse('key', { affinity: required('podAntiAffinity', term({ app: 'x' }, '')) }, /requiredDuringSchedulingIgnoredDuringExecution\[0\]\.topologyKey: Required value: can not be empty/)
  refuse('unknown', { affinity: required('podAffinity', { ...term({ app: 'x' }), topologyKeys: 'a' }) }, /topologyKeys/)
  refuse('op', { affinity: required('podAffinity', { labelSelector: { matchExpressions: [{ key: 'a', operator: 'Near' }] }, topologyKey: 'k' }) }, /operator: Unsupported value/)
  refuse('ns', { affinity: required('podAffinity', term({ app: 'x' }, 'k', { namespaces: ['Bad_NS'] })) }, /namespaces\[0\]/)
  refuse('keys', { affinity: required('podAffinity', term({ app: 'x' }, 'k', { matchLabelKeys: ['v'], mismatchLabelKeys: ['v'] })) }, /exists in both matchLabelKeys and mismatchLabelKeys/)
  refuse('skew', { spread: [spreadBy('zone', { maxSkew: 0 })] }, /maxSkew: Invalid value: 0: must be greater than zero/)
  refuse('when', { spread: [spreadBy('zone', { whenUnsatisfiable: 'Sometimes' })] }, /whenUnsatisfiable: Unsupported value/)
  refuse('nokey', { spread: [spreadBy('')] }, /topologyKey: Required value/)
  refuse('mindomains', { spread: [spreadBy('zone', { whenUnsatisfiable: 'ScheduleAnyway', minDomains: 2 })] }, /can only use minDomains if whenUnsatisfiable=DoNotSchedule/)
  refuse('policy', { spread: [spreadBy('zone', { nodeTaintsPolicy: 'Maybe' })] }, /nodeTaintsPolicy: Unsupported value/)
  refuse('dup', { spread: [spreadBy('zone'), spreadBy('zone')] }, /Duplicate value/)
  refuse('mlk', { spread: [spreadBy('zone', { matchLabelKeys: ['app'] })] }, /exists in both matchLabelKeys and labelSelector/)
  refuse('gate', { gates: ['a', 'a'] }, /schedulingGates\[1\]: Duplicate value/)
  refuse('gated-bound', { gates: ['a'], nodeName: 'p1' }, /cannot be set until all schedulingGates have been cleared/)
  const ok = h.tryCreate(pod('fine', {
    affinity: {
      ...required('podAffinity', term({ app: 'x' }, 'topology.kubernetes.io/zone', { namespaceSelector: {}, matchLabelKeys: ['v'] })),
      ...preferred('podAntiAffinity', [100, term({ app: 'y' })])
    },
    spread: [spreadBy('zone', { minDomains: 2, nodeAffinityPolicy: 'Ignore', nodeTaintsPolicy: 'Honor', matchLabelKeys: ['pod-template-hash'] })],
    gates: ['example.com/g']
  }))
  t.true(ok.ok, ok.ok ? '' : ok.status.message)
})

test('Nodes carry kubernetes.io/arch in Go naming', t => {
  const n = desiredNode({ name: 'p1', peerId: 'peer', api: '127.0.0.1:6443', cpu: 2, memoryBytes: 2 ** 30, state: 'alive', version: '0' } as unknown as Parameters<typeof desiredNode>[0], undefined, NOW)
  const want = ({ x64: 'amd64', ia32: '386', arm64: 'arm64', arm: 'arm' } as Record<string, string>)[process.arch] ?? process.arch
  t.is(n.metadata.labels?.['kubernetes.io/arch'], want)
  t.is(n.metadata.labels?.['kubernetes.io/os'], 'linux')
})

// ---- throughput -----------------------------------------------------------------------

test('perf sanity: 2,000 pods onto 100 nodes, half with required anti-affinity in groups of 100', async t => {
  const { h, scheduler } = rig(t)
  for (let i = 0; i < 100; i++) h.create(node(`n${String(i).padStart(3, '0')}`, { cpu: '32' }))
  const start = Date.now()
  for (let i = 0; i < 2000; i++) {
    const group = `g${Math.floor(i / 2) % 10}`
    const anti = i % 2 === 0
    h.create(pod(`p-${i}`, anti ? { labels: { app: 'anti', group }, affinity: required('podAntiAffinity', term({ group })), cpu: '100m' } : { labels: { app: 'plain' }, cpu: '100m' }))
  }
  await until('all bound', () => scheduler.bound === 2000, 30_000)
  const ms = Date.now() - start
  t.log(`2,000 pods (1,000 with anti-affinity) onto 100 nodes: ${ms} ms, ${Math.round(2000 / (ms / 1000))} pods/s`)
  const seen = new Set<string>()
  for (let i = 0; i < 2000; i += 2) {
    const key = `${Math.floor(i / 2) % 10}/${nodeOf(h, `p-${i}`) ?? ''}`
    t.false(seen.has(key), `two pods of one group on one node: ${key}`)
    seen.add(key)
  }
})
