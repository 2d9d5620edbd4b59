// The Job controller and the TTL-after-finished controller over an
// in-process store, the test playing the kubelet (pod phases and container
// statuses through the status subresource): completions and parallelism,
// work queues, back-off and backoffLimit, activeDeadlineSeconds, suspend,
// Indexed Jobs (annotation, label, env, hostname, each index once),
// backoffLimitPerIndex and maxFailedIndexes, podFailurePolicy, successPolicy,
// podReplacementPolicy, finalizer tracking and exact counts across a
// controller restart at every write, TTL, deletion (background, and
// foreground with the garbage collector).
import test from 'ava'
import type { ExecutionContext } from 'ava'
import type { Job, JobCondition } from '../../protocol/batch-v1.ts'
import { JOB_COMPLETION_INDEX, JOB_TRACKING_FINALIZER } from '../../protocol/batch-v1.ts'
import type { Pod } from '../../protocol/core-v1.ts'
import { EVENT, JOB, POD } from '../../protocol/kinds.ts'
import type { KObject } from '../../protocol/k8s.ts'
import { rfc3339 } from '../../daemon/controllers/framework.ts'
import type { Controller } from '../../daemon/controllers/framework.ts'
import { JobController } from '../../daemon/controllers/job.ts'
import { Indexes } from '../../daemon/controllers/job-model.ts'
import type { JobControllerOptions } from '../../daemon/controllers/job.ts'
import { GarbageCollector } from '../../daemon/controllers/gc.ts'
import { TtlAfterFinishedController } from '../../daemon/controllers/ttl.ts'
import { ref, StoreHarness } from '../../daemon/store/testing.ts'
import type { StoreCommand } from '../../daemon/store/types.ts'
import { controllerContext, startControllers } from '../helpers/controllers.ts'
import type { ControllerEnv } from '../helpers/controllers.ts'
import { FakeClock } from '../helpers/fake-clock.ts'

const START = '2025-01-01T00:00:00Z'

function jobManifest (name: string, spec: Record<string, unknown> = {}, podSpec: Record<string, unknown> = {}): KObject {
  return {
    apiVersion: 'batch/v1',
    kind: 'Job',
    metadata: { name, namespace: 'default' },
    spec: {
      template: { spec: { restartPolicy: 'Never', containers: [{ name: 'main', image: 'busybox', command: ['sh', '-c', 'true'] }], ...podSpec } },
      ...spec
    }
  }
}

function setup (opts: JobControllerOptions = {}, extra: Controller[] = []): ControllerEnv {
  return startControllers([new JobController(opts), ...extra], START)
}

function getJob (h: StoreHarness, name: string): Job {
  const j = h.store.get(JOB, 'default', name)
  if (j === undefined) throw new Error(`no job ${name}`)
  return j
}

function podsOf (h: StoreHarness, job: Job | KObject): Pod[] {
  return h.store.list(POD, { namespace: 'default' }).items.filter(p => p.metadata.ownerReferences?.some(r => r.uid === job.metadata.uid))
}

function activeOf (h: StoreHarness, job: Job | KObject): Pod[] {
  return podsOf(h, job).filter(p => p.metadata.deletionTimestamp === undefined && p.status?.phase !== 'Succeeded' && p.status?.phase !== 'Failed')
}

function condition (job: Job, type: string): JobCondition | undefined {
  return (job.status?.conditions ?? []).find(c => c.type === type)
}

function conditionTypes (job: Job): string[] {
  return (job.status?.conditions ?? []).filter(c => c.status === 'True').map(c => c.type)
}

/** The kubelet's part: the pod ran its container to `exitCode` (Succeeded at 0, else Failed), finishing now. */
function finish (env: ControllerEnv, pod: Pod, exitCode = 0, extra: Record<string, unknown> = {}): void {
  const now = rfc3339(env.clock.now())
  env.h.ok(env.h.apply({
    op: 'patch',
    ref: ref('pods', pod.metadata.name ?? '', 'default'),
    patchType: 'merge',
    subresource: 'status',
    patch: {
      status: {
        phase: exitCode === 0 ? 'Succeeded' : 'Failed',
        containerStatuses: [{ name: 'main', ready: false, restartCount: 0, image: 'busybox', imageID: '', state: { terminated: { exitCode, reason: exitCode === 0 ? 'Completed' : 'Error', finishedAt: now } } }],
        ...extra
      }
    },
    now
  }))
}

function running (env: ControllerEnv, pod: Pod, ready = true): void {
  const now = rfc3339(env.clock.now())
  env.h.ok(env.h.apply({
    op: 'patch',
    ref: ref('pods', pod.metadata.name ?? '', 'default'),
    patchType: 'merge',
    subresource: 'status',
    patch: { status: { phase: 'Running', conditions: [{ type: 'Ready', status: ready ? 'True' : 'False', lastTransitionTime: now }] } },
    now
  }))
}

function patchJob (h: StoreHarness, name: string, spec: Record<string, unknown>): void {
  h.ok(h.apply({ op: 'patch', ref: ref('jobs', name, 'default', 'batch'), patchType: 'merge', patch: { spec }, now: START }))
}

function deletePod (env: ControllerEnv, pod: Pod): void {
  env.h.ok(env.h.apply({ op: 'delete', ref: ref('pods', pod.metadata.name ?? '', 'default'), now: rfc3339(env.clock.now()) }))
}

function events (h: StoreHarness, reason: string): number {
  return h.store.list(EVENT, { namespace: 'default' }).items.filter(e => e.reason === reason).length
}

test('intervals: parsed leniently, merged, printed as Kubernetes prints completedIndexes', t => {
  t.is(Indexes.parse('0,1,3-5,9', 8).toString(), '0,1,3-5')
  t.is(Indexes.parse('3-5,x,1', 10).toString(), '1,3-5')
  t.is(Indexes.of([4, 2, 3, 0]).toString(), '0,2-4')
  t.is(Indexes.of([0, 1]).toString(), '0,1')
  const ix = Indexes.parse('1,3-5', 10).with([2, 7])
  t.is(ix.toString(), '1-5,7')
  t.is(ix.total(), 6)
  t.true(ix.has(4))
  t.false(ix.has(6))
})

test('runs completions with at most parallelism pods at once, tracked by the finalizer, then Complete', async t => {
  const env = setup()
  const { h, settle, stop } = env
  const created = h.create(jobManifest('work', { completions: 5, parallelism: 2 }))
  await settle()
  let peak = 0
  for (let round = 0; round < 10; round++) {
    const active = activeOf(h, created)
    peak = Math.max(peak, active.length)
    if (active.length === 0) break
    finish(env, active[0] as Pod)
    await settle()
  }
  t.is(peak, 2)
  const job = getJob(h, 'work')
  const pods = podsOf(h, created)
  t.is(pods.length, 5, 'one pod per completion, none more')
  t.true(pods.every(p => p.status?.phase === 'Succeeded'))
  t.true(pods.every(p => !(p.metadata.finalizers ?? []).includes(JOB_TRACKING_FINALIZER)), 'every finalizer removed once counted')
  const p0 = pods[0] as Pod
  t.regex(p0.metadata.name ?? '', /^work-[a-z0-9]{5}$/)
  t.is(p0.metadata.labels?.['batch.kubernetes.io/job-name'], 'work')
  t.is(p0.metadata.labels?.['batch.kubernetes.io/controller-uid'], created.metadata.uid)
  t.like(p0.metadata.ownerReferences?.[0], { apiVersion: 'batch/v1', kind: 'Job', name: 'work', controller: true, blockOwnerDeletion: true })
  t.like(job.status, { succeeded: 5, ready: 0, terminating: 0, uncountedTerminatedPods: {} })
  t.is(job.status?.active, undefined)
  t.is(job.status?.failed, undefined)
  t.deepEqual(conditionTypes(job), ['SuccessCriteriaMet', 'Complete'])
  t.like(condition(job, 'Complete'), { reason: 'CompletionsReached' })
  t.is(job.status?.completionTime, condition(job, 'Complete')?.lastTransitionTime)
  t.truthy(job.status?.startTime)
  t.is(events(h, 'SuccessfulCreate'), 5)
  t.is(events(h, 'Completed'), 1)
  stop()
})

test('a new pod carries the finalizer; a finished pod is first listed as uncounted, then counted once its finalizer is gone', async t => {
  const env = setup()
  const { h, settle, stop } = env
  const created = h.create(jobManifest('steps', { completions: 2, parallelism: 1 }))
  await settle()
  const [p] = activeOf(h, created) as [Pod]
  t.deepEqual(p.metadata.finalizers, [JOB_TRACKING_FINALIZER])
  const writes: Array<{ what: string, at: number }> = []
  const watch = h.store.watch(JOB, {}, e => { if (e.type === 'MODIFIED') writes.push({ what: `job ${JSON.stringify(e.object.status?.uncountedTerminatedPods)} ${e.object.status?.succeeded ?? 0}`, at: h.index }) })
  const podWatch = h.store.watch(POD, {}, e => { if (e.type === 'MODIFIED' && e.object.metadata.uid === p.metadata.uid && !(e.object.metadata.finalizers ?? []).includes(JOB_TRACKING_FINALIZER)) writes.push({ what: 'finalizer removed', at: h.index }) })
  finish(env, p)
  await settle()
  watch.stop()
  podWatch.stop()
  const order = writes.map(w => w.what).filter((w, i, all) => all.indexOf(w) === i)
  const uid = p.metadata.uid ?? ''
  t.deepEqual(order.slice(0, 3), [`job {"succeeded":["${uid}"]} 0`, 'finalizer removed', 'job {} 1'])
  stop()
})

test('a work queue (no completions) stops creating pods at the first success and completes when all are done', async t => {
  const env = setup()
  const { h, settle, stop } = env
  const created = h.create(jobManifest('queue', { parallelism: 3 }))
  await settle()
  const pods = activeOf(h, created)
  t.is(pods.length, 3)
  finish(env, pods[0] as Pod)
  await settle()
  t.is(activeOf(h, created).length, 2, 'the others run on; none is added')
  t.false(conditionTypes(getJob(h, 'queue')).includes('Complete'))
  finish(env, pods[1] as Pod)
  finish(env, pods[2] as Pod, 1)
  await settle()
  const job = getJob(h, 'queue')
  t.true(conditionTypes(job).includes('Complete'))
  t.like(job.status, { succeeded: 2, failed: 1 })
  t.is(podsOf(h, created).length, 3)
  stop()
})

test('failed pods are replaced after a back-off of 10 s, doubling; past backoffLimit the Job fails and its active pods go', async t => {
  const env = setup()
  const { h, clock, settle, stop } = env
  const created = h.create(jobManifest('flaky', { completions: 3, parallelism: 2, backoffLimit: 2 }))
  await settle()
  let [a, b] = activeOf(h, created) as [Pod, Pod]
  finish(env, a, 1)
  await settle()
  t.is(activeOf(h, created).length, 1, 'not replaced yet')
  t.like(getJob(h, 'flaky').status, { failed: 1, active: 1 })
  clock.advance(8_000)
  await settle()
  t.is(activeOf(h, created).length, 1, 'still within the 10 s back-off')
  clock.advance(2_500)
  await settle()
  t.is(activeOf(h, created).length, 2, 'replaced after 10 s')
  ;[a, b] = activeOf(h, created) as [Pod, Pod]
  finish(env, a, 1)
  await settle()
  clock.advance(15_000)
  await settle()
  t.is(activeOf(h, created).length, 1, 'the second failure waits 20 s')
  clock.advance(6_000)
  await settle()
  t.is(activeOf(h, created).length, 2)
  const [c] = activeOf(h, created).filter(p => p.metadata.uid !== b.metadata.uid) as [Pod]
  finish(env, c, 2)
  await settle()
  const job = getJob(h, 'flaky')
  t.deepEqual(conditionTypes(job), ['FailureTarget', 'Failed'])
  t.like(condition(job, 'Failed'), { reason: 'BackoffLimitExceeded', message: 'Job has reached the specified backoff limit' })
  t.is(activeOf(h, created).length, 0, 'the running pod was deleted')
  t.like(job.status, { failed: 4, terminating: 0, uncountedTerminatedPods: {} })
  t.is(job.status?.completionTime, undefined)
  t.is(podsOf(h, created).length, 3, 'the finished pods are kept; the deleted one is gone')
  stop()
})

test('a success resets the back-off', async t => {
  const env = setup()
  const { h, clock, settle, stop } = env
  const created = h.create(jobManifest('reset', { completions: 4, parallelism: 1 }))
  await settle()
  finish(env, activeOf(h, created)[0] as Pod, 1)
  await settle()
  clock.advance(10_100)
  await settle()
  finish(env, activeOf(h, created)[0] as Pod, 0)
  await settle()
  t.is(activeOf(h, created).length, 1, 'replaced at once after a success')
  finish(env, activeOf(h, created)[0] as Pod, 1)
  await settle()
  clock.advance(10_100)
  await settle()
  t.is(activeOf(h, created).length, 1, 'back to a 10 s back-off, not 20 s')
  stop()
})

test('activeDeadlineSeconds: the Job fails with DeadlineExceeded and its running pods are deleted and counted as failed', async t => {
  const env = setup()
  const { h, clock, settle, stop } = env
  const created = h.create(jobManifest('slow', { completions: 2, parallelism: 2, activeDeadlineSeconds: 30 }))
  await settle()
  running(env, activeOf(h, created)[0] as Pod)
  await settle()
  t.like(getJob(h, 'slow').status, { active: 2, ready: 1 })
  clock.advance(25_000)
  await settle()
  t.deepEqual(conditionTypes(getJob(h, 'slow')), [])
  clock.advance(5_100)
  await settle()
  const job = getJob(h, 'slow')
  t.deepEqual(conditionTypes(job), ['FailureTarget', 'Failed'])
  t.like(condition(job, 'Failed'), { reason: 'DeadlineExceeded' })
  t.is(podsOf(h, created).length, 0)
  t.like(job.status, { failed: 2, ready: 0 })
  stop()
})

test('suspend: no pods while suspended, active pods deleted (not counted as failed), startTime reset on resume', async t => {
  const env = setup()
  const { h, clock, settle, stop } = env
  const created = h.create(jobManifest('later', { completions: 3, parallelism: 2, suspend: true, activeDeadlineSeconds: 100 }))
  await settle()
  let job = getJob(h, 'later')
  t.is(podsOf(h, created).length, 0)
  t.like(condition(job, 'Suspended'), { status: 'True', reason: 'JobSuspended' })
  t.is(job.status?.startTime, undefined)
  clock.advance(200_000)
  patchJob(h, 'later', { suspend: false })
  await settle()
  job = getJob(h, 'later')
  t.is(activeOf(h, created).length, 2)
  t.like(condition(job, 'Suspended'), { status: 'False', reason: 'JobResumed' })
  t.is(job.status?.startTime, rfc3339(clock.now() - (clock.now() - Date.parse(job.status?.startTime ?? ''))))
  t.true(Date.parse(job.status?.startTime ?? '') >= Date.parse(START) + 200_000, 'startTime counts from the resume')
  t.deepEqual(conditionTypes(job), [], 'no deadline passed: the 200 s suspended do not count')
  finish(env, activeOf(h, created)[0] as Pod)
  await settle()
  patchJob(h, 'later', { suspend: true })
  await settle()
  job = getJob(h, 'later')
  t.is(activeOf(h, created).length, 0, 'active pods deleted')
  t.is(podsOf(h, created).length, 1, 'the succeeded pod stays')
  t.like(job.status, { succeeded: 1 })
  t.is(job.status?.active, undefined, 'no active pods: left out, as Kubernetes writes it')
  t.is(job.status?.failed, undefined, 'pods deleted for suspension are no failures')
  t.like(condition(job, 'Suspended'), { status: 'True' })
  patchJob(h, 'later', { suspend: false })
  await settle()
  t.is(activeOf(h, created).length, 2)
  for (const p of activeOf(h, created)) finish(env, p)
  await settle()
  t.true(conditionTypes(getJob(h, 'later')).includes('Complete'))
  t.is(getJob(h, 'later').status?.succeeded, 3)
  stop()
})

test('Indexed: each index runs until one pod of it succeeds; index annotation, label, env, hostname; completedIndexes', async t => {
  const env = setup()
  const { h, clock, settle, stop } = env
  const created = h.create(jobManifest('idx', { completions: 4, parallelism: 2, completionMode: 'Indexed' }))
  await settle()
  let active = activeOf(h, created)
  t.deepEqual(active.map(p => p.metadata.annotations?.[JOB_COMPLETION_INDEX]).sort(), ['0', '1'])
  const p0 = active.find(p => p.metadata.annotations?.[JOB_COMPLETION_INDEX] === '0') as Pod
  t.is(p0.metadata.labels?.[JOB_COMPLETION_INDEX], '0')
  t.regex(p0.metadata.name ?? '', /^idx-0-[a-z0-9]{5}$/)
  t.is(p0.spec?.hostname, 'idx-0')
  t.deepEqual(p0.spec?.containers[0]?.env, [{ name: 'JOB_COMPLETION_INDEX', valueFrom: { fieldRef: { fieldPath: `metadata.annotations['${JOB_COMPLETION_INDEX}']` } } }])
  // Index 0 fails once: it runs again, as index 0.
  finish(env, p0, 1)
  await settle()
  clock.advance(10_100)
  await settle()
  active = activeOf(h, created)
  t.deepEqual(active.map(p => p.metadata.annotations?.[JOB_COMPLETION_INDEX]).sort(), ['0', '1'])
  const byIndex = (ix: string): Pod => activeOf(h, created).find(p => p.metadata.annotations?.[JOB_COMPLETION_INDEX] === ix) as Pod
  finish(env, byIndex('1'))
  await settle()
  t.is(getJob(h, 'idx').status?.completedIndexes, '1')
  t.deepEqual(activeOf(h, created).map(p => p.metadata.annotations?.[JOB_COMPLETION_INDEX]).sort(), ['0', '2'])
  finish(env, byIndex('2'))
  finish(env, byIndex('0'))
  await settle()
  finish(env, byIndex('3'))
  await settle()
  const job = getJob(h, 'idx')
  t.like(job.status, { completedIndexes: '0-3', succeeded: 4, failed: 1 })
  t.true(conditionTypes(job).includes('Complete'))
  const succeeded = podsOf(h, created).filter(p => p.status?.phase === 'Succeeded').map(p => p.metadata.annotations?.[JOB_COMPLETION_INDEX]).sort()
  t.deepEqual(succeeded, ['0', '1', '2', '3'], 'each index succeeded exactly once')
  stop()
})

test('Indexed: a second pod of an index (a duplicate) is deleted, and a succeeded index is counted once', async t => {
  const env = setup()
  const { h, settle, stop } = env
  const created = h.create(jobManifest('dup', { completions: 2, parallelism: 2, completionMode: 'Indexed' }))
  await settle()
  const p0 = activeOf(h, created).find(p => p.metadata.annotations?.[JOB_COMPLETION_INDEX] === '0') as Pod
  // Someone else makes another pod of index 0 for this Job.
  const twin = structuredClone(p0) as KObject
  twin.metadata = { generateName: 'dup-0-', namespace: 'default', labels: p0.metadata.labels, annotations: p0.metadata.annotations, ownerReferences: p0.metadata.ownerReferences, finalizers: [JOB_TRACKING_FINALIZER] }
  delete twin.status
  h.create(twin)
  await settle()
  const zeros = activeOf(h, created).filter(p => p.metadata.annotations?.[JOB_COMPLETION_INDEX] === '0')
  t.is(zeros.length, 1, 'one pod per index')
  for (const p of activeOf(h, created)) finish(env, p)
  await settle()
  t.like(getJob(h, 'dup').status, { completedIndexes: '0,1', succeeded: 2 })
  stop()
})

test('backoffLimitPerIndex: an index that fails too often is failed; the others run on; the Job fails with FailedIndexes', async t => {
  const env = setup()
  const { h, clock, settle, stop } = env
  const created = h.create(jobManifest('per', { completions: 3, parallelism: 3, completionMode: 'Indexed', backoffLimitPerIndex: 1 }))
  await settle()
  const byIndex = (ix: string): Pod | undefined => activeOf(h, created).find(p => p.metadata.annotations?.[JOB_COMPLETION_INDEX] === ix)
  t.is(byIndex('0')?.metadata.annotations?.['batch.kubernetes.io/job-index-failure-count'], '0')
  finish(env, byIndex('0') as Pod, 1)
  await settle()
  t.is(byIndex('0'), undefined, 'index 0 waits out its back-off')
  clock.advance(10_100)
  await settle()
  const again = byIndex('0') as Pod
  t.is(again.metadata.annotations?.['batch.kubernetes.io/job-index-failure-count'], '1')
  finish(env, again, 1)
  await settle()
  let job = getJob(h, 'per')
  t.is(job.status?.failedIndexes, '0')
  t.deepEqual(conditionTypes(job), [], 'the Job runs on')
  clock.advance(60_000)
  await settle()
  t.is(byIndex('0'), undefined, 'a failed index is not run again')
  finish(env, byIndex('1') as Pod)
  finish(env, byIndex('2') as Pod)
  await settle()
  job = getJob(h, 'per')
  t.like(job.status, { completedIndexes: '1,2', failedIndexes: '0', succeeded: 2, failed: 2 })
  t.like(condition(job, 'Failed'), { reason: 'FailedIndexes' })
  t.truthy(condition(job, 'FailureTarget'))
  stop()
})

test('maxFailedIndexes: more failed indexes than allowed fail the Job at once', async t => {
  const env = setup()
  const { h, settle, stop } = env
  const created = h.create(jobManifest('maxf', { completions: 4, parallelism: 4, completionMode: 'Indexed', backoffLimitPerIndex: 0, maxFailedIndexes: 0 }))
  await settle()
  finish(env, activeOf(h, created)[0] as Pod, 1)
  await settle()
  const job = getJob(h, 'maxf')
  t.like(condition(job, 'Failed'), { reason: 'MaxFailedIndexesExceeded' })
  t.is(activeOf(h, created).length, 0)
  stop()
})

test('podFailurePolicy: FailJob by exit code fails the Job (PodFailurePolicy); Ignore neither counts nor stops; Count counts', async t => {
  const env = setup()
  const { h, clock, settle, stop } = env
  const created = h.create(jobManifest('policy', {
    completions: 3,
    parallelism: 1,
    backoffLimit: 5,
    podFailurePolicy: {
      rules: [
        { action: 'FailJob', onExitCodes: { containerName: 'main', operator: 'In', values: [42] } },
        { action: 'Ignore', onPodConditions: [{ type: 'DisruptionTarget' }] },
        { action: 'Count', onExitCodes: { operator: 'NotIn', values: [42] } }
      ]
    }
  }))
  await settle()
  // Ignored: a disruption.
  finish(env, activeOf(h, created)[0] as Pod, 137, { conditions: [{ type: 'DisruptionTarget', status: 'True' }] })
  await settle()
  t.is(getJob(h, 'policy').status?.failed, undefined, 'an ignored failure is not counted')
  clock.advance(10_100)
  await settle()
  // Counted.
  finish(env, activeOf(h, created)[0] as Pod, 3)
  await settle()
  t.is(getJob(h, 'policy').status?.failed, 1)
  clock.advance(20_100)
  await settle()
  const doomed = activeOf(h, created)[0] as Pod
  finish(env, doomed, 42)
  await settle()
  const job = getJob(h, 'policy')
  t.deepEqual(conditionTypes(job), ['FailureTarget', 'Failed'])
  t.like(condition(job, 'Failed'), { reason: 'PodFailurePolicy', message: `Container main for pod default/${doomed.metadata.name ?? ''} failed with exit code 42 matching FailJob rule at index 0` })
  t.is(job.status?.failed, 2)
  stop()
})

test('podFailurePolicy FailIndex fails just that index', async t => {
  const env = setup()
  const { h, settle, stop } = env
  const created = h.create(jobManifest('failidx', {
    completions: 2, parallelism: 2, completionMode: 'Indexed', backoffLimitPerIndex: 3, podFailurePolicy: { rules: [{ action: 'FailIndex', onExitCodes: { operator: 'In', values: [7] } }] }
  }))
  await settle()
  const p1 = activeOf(h, created).find(p => p.metadata.annotations?.[JOB_COMPLETION_INDEX] === '1') as Pod
  finish(env, p1, 7)
  await settle()
  t.is(getJob(h, 'failidx').status?.failedIndexes, '1')
  finish(env, activeOf(h, created)[0] as Pod)
  await settle()
  t.like(condition(getJob(h, 'failidx'), 'Failed'), { reason: 'FailedIndexes' })
  stop()
})

test('successPolicy: once the named indexes succeed, SuccessCriteriaMet, the other pods go, then Complete', async t => {
  const env = setup()
  const { h, settle, stop } = env
  const created = h.create(jobManifest('leader', { completions: 4, parallelism: 4, completionMode: 'Indexed', successPolicy: { rules: [{ succeededIndexes: '0' }] } }))
  await settle()
  t.is(activeOf(h, created).length, 4)
  finish(env, activeOf(h, created).find(p => p.metadata.annotations?.[JOB_COMPLETION_INDEX] === '0') as Pod)
  await settle()
  const job = getJob(h, 'leader')
  t.deepEqual(conditionTypes(job), ['SuccessCriteriaMet', 'Complete'])
  t.like(condition(job, 'Complete'), { reason: 'SuccessPolicy', message: 'Matched rules at index 0' })
  t.is(activeOf(h, created).length, 0)
  t.like(job.status, { succeeded: 1, completedIndexes: '0' })
  t.is(job.status?.failed, undefined, 'pods stopped by the success policy are no failures')
  stop()
})

test('podReplacementPolicy: TerminatingOrFailed replaces a deleted pod at once (a failure); Failed waits until it has failed', async t => {
  const env = setup()
  const { h, clock, settle, stop } = env
  const a = h.create(jobManifest('eager', { completions: 1, backoffLimit: 3 }))
  const b = h.create(jobManifest('patient', { completions: 1, backoffLimit: 3, podReplacementPolicy: 'Failed' }))
  await settle()
  const pa = activeOf(h, a)[0] as Pod
  const pb = activeOf(h, b)[0] as Pod
  // Bound pods, as the scheduler would leave them: a kubelet will finish them.
  for (const p of [pa, pb]) h.ok(h.apply({ op: 'patch', ref: ref('pods', p.metadata.name ?? '', 'default'), patchType: 'merge', patch: { spec: { nodeName: 'node-1' } }, now: START }))
  running(env, pa)
  running(env, pb)
  deletePod(env, pa)
  deletePod(env, pb)
  await settle()
  clock.advance(10_100)
  await settle()
  t.is(activeOf(h, a).length, 1, 'replaced')
  t.is(getJob(h, 'eager').status?.failed, 1)
  t.is(activeOf(h, b).length, 0, 'not while the old pod is terminating')
  const terminating = podsOf(h, b).find(p => p.metadata.uid === pb.metadata.uid) as Pod
  t.truthy(terminating.metadata.deletionTimestamp, 'held by the finalizer')
  t.is(getJob(h, 'patient').status?.terminating, 1)
  finish(env, terminating, 143)
  await settle()
  clock.advance(10_100)
  await settle()
  t.is(activeOf(h, b).length, 1, 'replaced once it failed')
  t.is(podsOf(h, b).length, 1, 'the failed pod, counted, was let go')
  t.like(getJob(h, 'patient').status, { failed: 1, terminating: 0 })
  stop()
})

test('deleting a running Job: its pods lose the finalizer and go with it', async t => {
  const env = setup()
  const { h, settle, stop } = env
  const created = h.create(jobManifest('gone', { completions: 3, parallelism: 3 }))
  await settle()
  finish(env, activeOf(h, created)[0] as Pod)
  t.is(podsOf(h, created).length, 3)
  h.ok(h.apply({ op: 'delete', ref: ref('jobs', 'gone', 'default', 'batch'), now: START, propagationPolicy: 'Background' }))
  await settle()
  t.is(h.store.get(JOB, 'default', 'gone'), undefined)
  t.is(podsOf(h, created).length, 0, 'no pod is left behind by our finalizer')
  stop()
})

test('deleting a running Job in the foreground: the garbage collector takes its pods (our finalizer let go), then the Job', async t => {
  const env = setup({}, [new GarbageCollector()])
  const { h, settle, stop } = env
  const created = h.create(jobManifest('fg', { completions: 2, parallelism: 2 }))
  await settle()
  finish(env, activeOf(h, created)[0] as Pod)
  await settle()
  h.ok(h.apply({ op: 'delete', ref: ref('jobs', 'fg', 'default', 'batch'), now: START, propagationPolicy: 'Foreground' }))
  await settle()
  t.is(podsOf(h, created).length, 0)
  t.is(h.store.get(JOB, 'default', 'fg'), undefined)
  stop()
})

test('an orphan pod holding our finalizer has it removed', async t => {
  const env = setup()
  const { h, settle, stop } = env
  h.create({ apiVersion: 'v1', kind: 'Pod', metadata: { name: 'stray', namespace: 'default', finalizers: [JOB_TRACKING_FINALIZER] }, spec: { containers: [{ name: 'c', image: 'busybox' }] } })
  await settle()
  t.deepEqual(h.store.get(POD, 'default', 'stray')?.metadata.finalizers ?? [], [])
  stop()
})

test('ttlSecondsAfterFinished: the finished Job is deleted that long after it finished, with its pods', async t => {
  const env = setup({}, [new TtlAfterFinishedController()])
  const { h, clock, settle, stop } = env
  const created = h.create(jobManifest('brief', { completions: 1, ttlSecondsAfterFinished: 60 }))
  await settle()
  finish(env, activeOf(h, created)[0] as Pod)
  await settle()
  t.true(conditionTypes(getJob(h, 'brief')).includes('Complete'))
  clock.advance(58_000)
  await settle()
  t.truthy(h.store.get(JOB, 'default', 'brief'), 'kept until the TTL passes')
  clock.advance(2_500)
  await settle()
  t.is(h.store.get(JOB, 'default', 'brief'), undefined)
  t.is(podsOf(h, created).length, 0, 'its pods went with it (Background)')
  stop()
})

/**
 * A Job run to the end while the controller "crashes" after its `crashAfter`-th
 * write (that write is applied but its answer is lost; every later one
 * fails, as for a deposed leader) and a new
 * controller takes over on the same store, as after a leader change.
 */
async function runWithCrash (t: ExecutionContext, spec: Record<string, unknown>, crashAfter: number, failEvery = 0): Promise<{ job: Job, pods: Pod[], maxActive: number, crashed: boolean }> {
  const h = new StoreHarness()
  const clock = new FakeClock(Date.parse(START))
  const base = controllerContext(h, clock)
  let writes = 0
  let crashed = false
  const first = new JobController()
  first.start({
    ...base,
    write: async (cmd: StoreCommand) => {
      if (crashed) throw new Error('the leader is gone')
      if (++writes <= crashAfter) return await base.write(cmd)
      // The last write lands, but its answer never comes back.
      await base.write(cmd)
      crashed = true
      first.stop()
      throw new Error('the leader is gone')
    }
  })
  let second: JobController | undefined
  const created = h.create(jobManifest('exact', spec))
  let maxActive = 0
  let finished = 0
  for (let turn = 0; turn < 400; turn++) {
    for (let i = 0; i < 3; i++) {
      await new Promise(resolve => setImmediate(resolve))
      clock.advance(60)
    }
    if (crashed && second === undefined) {
      second = new JobController()
      second.start(controllerContext(h, clock))
    }
    const active = activeOf(h, created)
    maxActive = Math.max(maxActive, active.length)
    const job = getJob(h, 'exact')
    if (conditionTypes(job).some(c => c === 'Complete' || c === 'Failed')) break
    // The kubelet: one pod finishes a turn (every `failEvery`-th fails).
    const p = active[0]
    if (p !== undefined && turn % 2 === 1) finish({ h, clock, settle: async () => {}, stop: () => {} }, p, failEvery > 0 && ++finished % failEvery === 0 ? 1 : 0)
    if (turn % 20 === 19) clock.advance(11_000)
  }
  second?.stop()
  first.stop()
  return { job: getJob(h, 'exact'), pods: podsOf(h, created), maxActive, crashed }
}

test('a controller restart at any write never double counts nor runs too many pods (NonIndexed)', async t => {
  // Every write of a run is a crash point, until a run needs no more writes than that.
  let crashed = true
  for (let crashAfter = 0; crashed && crashAfter < 200; crashAfter++) {
    const run = await runWithCrash(t, { completions: 4, parallelism: 2, backoffLimit: 10 }, crashAfter, 3)
    const { job, pods, maxActive } = run
    crashed = run.crashed
    const succeeded = pods.filter(p => p.status?.phase === 'Succeeded').length
    const failed = pods.filter(p => p.status?.phase === 'Failed').length
    t.true(conditionTypes(job).includes('Complete'), `crash after ${crashAfter}: complete`)
    t.is(job.status?.succeeded, 4, `crash after ${crashAfter}: succeeded`)
    t.is(succeeded, 4, `crash after ${crashAfter}: 4 succeeded pods`)
    t.is(job.status?.failed ?? 0, failed, `crash after ${crashAfter}: failed pods counted once`)
    t.true(maxActive <= 2, `crash after ${crashAfter}: at most parallelism pods at once (${maxActive})`)
    t.deepEqual(job.status?.uncountedTerminatedPods, {})
    t.true(pods.every(p => !(p.metadata.finalizers ?? []).includes(JOB_TRACKING_FINALIZER)))
  }
})

test('a controller restart at any write never counts an index twice nor runs two pods of one index (Indexed)', async t => {
  let crashed = true
  for (let crashAfter = 0; crashed && crashAfter < 200; crashAfter++) {
    const run = await runWithCrash(t, { completions: 5, parallelism: 2, completionMode: 'Indexed', backoffLimit: 10 }, crashAfter, 4)
    const { job, pods, maxActive } = run
    crashed = run.crashed
    const succeeded = pods.filter(p => p.status?.phase === 'Succeeded').map(p => p.metadata.annotations?.[JOB_COMPLETION_INDEX]).sort()
    t.true(conditionTypes(job).includes('Complete'), `crash after ${crashAfter}: complete`)
    t.deepEqual(succeeded, ['0', '1', '2', '3', '4'], `crash after ${crashAfter}: each index succeeded once`)
    t.like(job.status, { succeeded: 5, completedIndexes: '0-4' })
    t.is(job.status?.failed ?? 0, pods.filter(p => p.status?.phase === 'Failed').length)
    t.true(maxActive <= 2)
  }
})

test('parallelism changes are followed: scaling down deletes the surplus, never below what completions need', async t => {
  const env = setup()
  const { h, settle, stop } = env
  const created = h.create(jobManifest('scale', { completions: 10, parallelism: 4 }))
  await settle()
  t.is(activeOf(h, created).length, 4)
  patchJob(h, 'scale', { parallelism: 1 })
  await settle()
  t.is(activeOf(h, created).length, 1)
  t.is(getJob(h, 'scale').status?.failed, undefined, 'surplus pods deleted are no failures')
  patchJob(h, 'scale', { parallelism: 20 })
  await settle()
  t.is(activeOf(h, created).length, 10, 'never more than the completions left')
  stop()
})

test('restartPolicy OnFailure: container restarts count against backoffLimit', async t => {
  const env = setup()
  const { h, settle, stop } = env
  const created = h.create(jobManifest('restarts', { completions: 1, backoffLimit: 2 }, { restartPolicy: 'OnFailure' }))
  await settle()
  const p = activeOf(h, created)[0] as Pod
  h.ok(h.apply({
    op: 'patch',
    ref: ref('pods', p.metadata.name ?? '', 'default'),
    patchType: 'merge',
    subresource: 'status',
    patch: { status: { phase: 'Running', containerStatuses: [{ name: 'main', ready: false, restartCount: 2, image: 'busybox', imageID: '', state: { waiting: { reason: 'CrashLoopBackOff' } } }] } },
    now: START
  }))
  await settle()
  t.like(condition(getJob(h, 'restarts'), 'Failed'), { reason: 'BackoffLimitExceeded' })
  stop()
})
