// CronJob controller over an in-process store on a fake clock: one Job per
// scheduled minute with its deterministic name, annotation, labels and owner;
// Allow, Forbid and Replace; suspend; startingDeadlineSeconds; history
// limits; a gap without a leader caught up once; time zones; restarts and
// two leaders at once never making a run twice.
import test from 'ava'
import { CRON_JOB, EVENT, JOB } from '../../protocol/kinds.ts'
import type { CronJob, Job } from '../../protocol/batch-v1.ts'
import type { KObject } from '../../protocol/k8s.ts'
import { CronJobController, jobNameFor, rfc3339In, unmetTimes } from '../../daemon/controllers/cronjob.ts'
import type { ControllerContext } from '../../daemon/controllers/framework.ts'
import { ref, StoreHarness } from '../../daemon/store/testing.ts'
import type { StoreCommand } from '../../daemon/store/types.ts'
import { controllerContext, startControllers } from '../helpers/controllers.ts'
import type { ControllerEnv } from '../helpers/controllers.ts'

const T0 = Date.parse('2025-01-01T00:00:00Z')

function cronJob (name: string, spec: Record<string, unknown> = {}): KObject {
  return {
    apiVersion: 'batch/v1',
    kind: 'CronJob',
    metadata: { name, namespace: 'default' },
    spec: {
      schedule: '*/1 * * * *',
      jobTemplate: {
        metadata: { labels: { app: name }, annotations: { team: 'ops' } },
        spec: { template: { spec: { restartPolicy: 'OnFailure', containers: [{ name: 'tick', image: 'busybox', command: ['sh', '-c', 'echo tick'] }] } } }
      },
      ...spec
    }
  }
}

function jobs (h: StoreHarness): Job[] {
  return h.store.list(JOB, { namespace: 'default' }).items.sort((a, b) => (a.metadata.name ?? '').localeCompare(b.metadata.name ?? ''))
}

function names (h: StoreHarness): string[] { return jobs(h).map(j => j.metadata.name ?? '') }

/** The Job name for the run at `iso` (UTC) of CronJob `cj`. */
function runName (cj: string, iso: string): string { return jobNameFor(cj, Date.parse(iso)) }

function cronStatus (h: StoreHarness, name: string): NonNullable<CronJob['status']> {
  return h.store.get(CRON_JOB, 'default', name)?.status ?? {}
}

function events (h: StoreHarness, reason: string): KObject[] {
  return h.store.list(EVENT, { namespace: 'default' }).items.filter(e => e.reason === reason)
}

/** Moves the fake clock to `iso` (firing the timers on the way), then lets the controller settle. */
async function at (env: ControllerEnv, iso: string): Promise<void> {
  const target = Date.parse(iso)
  if (target < env.clock.now()) throw new Error(`the clock is already past ${iso}`)
  env.clock.advance(target - env.clock.now())
  await env.settle()
}

function finish (h: StoreHarness, name: string, as: 'Complete' | 'Failed', iso: string): void {
  h.ok(h.apply({
    op: 'patch',
    ref: ref('jobs', name, 'default', 'batch'),
    patchType: 'merge',
    subresource: 'status',
    patch: { status: { startTime: iso, conditions: [{ type: as, status: 'True', lastTransitionTime: iso }], ...(as === 'Complete' ? { completionTime: iso } : {}) } },
    now: iso
  }))
}

function patchSpec (h: StoreHarness, name: string, spec: Record<string, unknown>): void {
  h.ok(h.apply({ op: 'patch', ref: ref('cronjobs', name, 'default', 'batch'), patchType: 'merge', patch: { spec }, now: '2025-01-01T00:00:00Z' }))
}

test('an every-minute schedule makes one Job per minute: deterministic name, scheduled-time annotation, template labels, controller reference', async t => {
  const env = startControllers([new CronJobController()])
  const { h } = env
  const cj = h.create(cronJob('tick'))
  await env.settle()
  t.deepEqual(names(h), [], 'nothing before the first scheduled time')
  await at(env, '2025-01-01T00:01:00.500Z')
  await at(env, '2025-01-01T00:02:00.500Z')
  await at(env, '2025-01-01T00:03:00.500Z')
  const minutes = ['00:01', '00:02', '00:03'].map(m => `2025-01-01T${m}:00Z`)
  t.deepEqual(names(h), minutes.map(m => runName('tick', m)))
  t.is(runName('tick', minutes[0]!), `tick-${(T0 + 60_000) / 60_000}`)
  for (const [i, j] of jobs(h).entries()) {
    t.is(j.metadata.annotations?.['batch.kubernetes.io/cronjob-scheduled-timestamp'], minutes[i])
    t.is(j.metadata.annotations?.team, 'ops')
    t.is(j.metadata.labels?.app, 'tick')
    t.deepEqual(j.metadata.ownerReferences, [{ apiVersion: 'batch/v1', kind: 'CronJob', name: 'tick', uid: cj.metadata.uid ?? '', controller: true, blockOwnerDeletion: true }])
    t.deepEqual(j.spec?.template.spec?.containers[0]?.command, ['sh', '-c', 'echo tick'])
  }
  // Allow: the three run side by side.
  const status = cronStatus(h, 'tick')
  t.is(status.lastScheduleTime, '2025-01-01T00:03:00Z')
  t.deepEqual((status.active ?? []).map(r => r.name), names(h))
  t.true((status.active ?? []).every(r => r.kind === 'Job' && r.apiVersion === 'batch/v1' && r.namespace === 'default' && typeof r.uid === 'string'))
  t.deepEqual(events(h, 'SuccessfulCreate').map(e => e.message).sort(), names(h).map(n => `Created job ${n}`))
  // Quiet between ticks.
  const rv = h.store.resourceVersion()
  await at(env, '2025-01-01T00:03:40Z')
  t.is(h.store.resourceVersion(), rv)
  env.stop()
})

test('a finished Job leaves status.active (SawCompletedJob) and sets lastSuccessfulTime', async t => {
  const env = startControllers([new CronJobController()])
  const { h } = env
  h.create(cronJob('tick'))
  await at(env, '2025-01-01T00:01:00.500Z')
  finish(h, runName('tick', '2025-01-01T00:01:00Z'), 'Complete', '2025-01-01T00:01:05Z')
  await env.settle()
  const status = cronStatus(h, 'tick')
  t.deepEqual(status.active ?? [], [])
  t.is(status.lastSuccessfulTime, '2025-01-01T00:01:05Z')
  t.is(events(h, 'SawCompletedJob')[0]?.message, `Saw completed job: ${runName('tick', '2025-01-01T00:01:00Z')}, condition: Complete`)
  env.stop()
})

test('Forbid skips a run while a Job is active (JobAlreadyActive); the missed run starts when it finishes', async t => {
  const env = startControllers([new CronJobController()])
  const { h } = env
  h.create(cronJob('once', { concurrencyPolicy: 'Forbid' }))
  await at(env, '2025-01-01T00:01:00.500Z')
  await at(env, '2025-01-01T00:02:00.500Z')
  t.deepEqual(names(h), [runName('once', '2025-01-01T00:01:00Z')])
  t.true(events(h, 'JobAlreadyActive').length >= 1)
  t.is(cronStatus(h, 'once').lastScheduleTime, '2025-01-01T00:01:00Z')
  // As in Kubernetes: without a starting deadline, the skipped 00:02 run starts once the active one is done.
  finish(h, runName('once', '2025-01-01T00:01:00Z'), 'Complete', '2025-01-01T00:02:30Z')
  await at(env, '2025-01-01T00:02:30Z')
  t.deepEqual(names(h), [runName('once', '2025-01-01T00:01:00Z'), runName('once', '2025-01-01T00:02:00Z')])
  t.deepEqual((cronStatus(h, 'once').active ?? []).map(r => r.name), [runName('once', '2025-01-01T00:02:00Z')])
  env.stop()
})

test('Forbid with a starting deadline: the skipped run is not started late', async t => {
  const env = startControllers([new CronJobController()])
  const { h } = env
  h.create(cronJob('once', { concurrencyPolicy: 'Forbid', startingDeadlineSeconds: 10 }))
  await at(env, '2025-01-01T00:01:00.500Z')
  await at(env, '2025-01-01T00:02:00.500Z')
  finish(h, runName('once', '2025-01-01T00:01:00Z'), 'Complete', '2025-01-01T00:02:30Z')
  await at(env, '2025-01-01T00:02:30Z')
  t.deepEqual(names(h), [runName('once', '2025-01-01T00:01:00Z')])
  t.is(events(h, 'MissSchedule').length, 1)
  await at(env, '2025-01-01T00:03:00.500Z')
  t.deepEqual(names(h), [runName('once', '2025-01-01T00:01:00Z'), runName('once', '2025-01-01T00:03:00Z')])
  env.stop()
})

test('Replace deletes the active Job (SuccessfulDelete) and starts the new one', async t => {
  const env = startControllers([new CronJobController()])
  const { h } = env
  h.create(cronJob('swap', { concurrencyPolicy: 'Replace' }))
  await at(env, '2025-01-01T00:01:00.500Z')
  await at(env, '2025-01-01T00:02:00.500Z')
  t.deepEqual(names(h), [runName('swap', '2025-01-01T00:02:00Z')])
  t.deepEqual((cronStatus(h, 'swap').active ?? []).map(r => r.name), [runName('swap', '2025-01-01T00:02:00Z')])
  t.is(events(h, 'SuccessfulDelete')[0]?.message, `Deleted job ${runName('swap', '2025-01-01T00:01:00Z')}`)
  env.stop()
})

test('suspend stops new runs; resuming runs the latest missed time unless it is past the starting deadline', async t => {
  const env = startControllers([new CronJobController()])
  const { h } = env
  h.create(cronJob('late', { suspend: true }))
  h.create(cronJob('strict', { suspend: true, startingDeadlineSeconds: 10 }))
  await at(env, '2025-01-01T00:01:00.500Z')
  await at(env, '2025-01-01T00:02:00.500Z')
  t.deepEqual(names(h), [])
  await at(env, '2025-01-01T00:02:30Z')
  patchSpec(h, 'late', { suspend: false })
  patchSpec(h, 'strict', { suspend: false })
  await env.settle()
  // Kubernetes' rule: the most recent missed time (00:02), once; the one with a 10 s deadline is too late for it.
  t.deepEqual(names(h), [runName('late', '2025-01-01T00:02:00Z')])
  const missed = events(h, 'MissSchedule')
  t.is(missed.length, 1)
  t.is((missed[0]?.involvedObject as { name: string }).name, 'strict')
  t.is(missed[0]?.message, 'Missed scheduled time to start a job: Wed, 01 Jan 2025 00:02:00 +0000')
  await at(env, '2025-01-01T00:03:00.500Z')
  t.deepEqual(names(h), [runName('late', '2025-01-01T00:02:00Z'), runName('late', '2025-01-01T00:03:00Z'), runName('strict', '2025-01-01T00:03:00Z')])
  // Suspended again: no more runs.
  patchSpec(h, 'late', { suspend: true })
  await at(env, '2025-01-01T00:04:00.500Z')
  t.false(names(h).includes(runName('late', '2025-01-01T00:04:00Z')))
  t.true(names(h).includes(runName('strict', '2025-01-01T00:04:00Z')))
  env.stop()
})

test('history limits: the oldest finished Jobs beyond successfulJobsHistoryLimit and failedJobsHistoryLimit are deleted', async t => {
  const env = startControllers([new CronJobController()])
  const { h } = env
  h.create(cronJob('hist', { successfulJobsHistoryLimit: 2, failedJobsHistoryLimit: 1 }))
  const minutes = [1, 2, 3, 4, 5].map(m => `2025-01-01T00:0${m}:00Z`)
  for (const m of minutes) await at(env, m.replace('Z', '.500Z'))
  t.is(names(h).length, 5)
  const [n1, n2, n3, n4, n5] = minutes.map(m => runName('hist', m))
  finish(h, n1!, 'Complete', '2025-01-01T00:05:10Z')
  finish(h, n2!, 'Complete', '2025-01-01T00:05:11Z')
  finish(h, n3!, 'Complete', '2025-01-01T00:05:12Z')
  finish(h, n4!, 'Failed', '2025-01-01T00:05:13Z')
  finish(h, n5!, 'Failed', '2025-01-01T00:05:14Z')
  await env.settle()
  t.deepEqual(names(h), [n2, n3, n5])
  t.deepEqual(events(h, 'SuccessfulDelete').map(e => e.message).sort(), [`Deleted job ${n1!}`, `Deleted job ${n4!}`])
  t.deepEqual(cronStatus(h, 'hist').active ?? [], [])
  t.is(cronStatus(h, 'hist').lastSuccessfulTime, '2025-01-01T00:05:12Z')
  env.stop()
})

/** Stops `c`, moves the clock to `iso` with no controller running (no leader), then starts a fresh controller. */
async function leaderGap (env: ControllerEnv, c: CronJobController, iso: string, ctx?: ControllerContext): Promise<CronJobController> {
  c.stop()
  env.clock.advance(Date.parse(iso) - env.clock.now())
  const next = new CronJobController()
  next.start(ctx ?? controllerContext(env.h, env.clock))
  await env.settle()
  return next
}

test('10 minutes without a leader: the new leader makes exactly one Job, for the most recent missed minute', async t => {
  const c = new CronJobController()
  const env = startControllers([c])
  const { h } = env
  h.create(cronJob('gap'))
  await at(env, '2025-01-01T00:01:00.500Z')
  const next = await leaderGap(env, c, '2025-01-01T00:11:30Z')
  t.deepEqual(names(h), [runName('gap', '2025-01-01T00:01:00Z'), runName('gap', '2025-01-01T00:11:00Z')])
  t.is(cronStatus(h, 'gap').lastScheduleTime, '2025-01-01T00:11:00Z')
  t.is(events(h, 'TooManyMissedTimes').length, 0)
  // And on schedule after that.
  await at(env, '2025-01-01T00:12:00.500Z')
  t.is(names(h).at(-1), runName('gap', '2025-01-01T00:12:00Z'))
  t.is(names(h).length, 3)
  next.stop()
})

test('more than 100 missed times: one Job for the latest, and a TooManyMissedTimes warning', async t => {
  const c = new CronJobController()
  const env = startControllers([c])
  const { h } = env
  h.create(cronJob('many'))
  await env.settle()
  const next = await leaderGap(env, c, '2025-01-01T03:00:30Z')
  t.deepEqual(names(h), [runName('many', '2025-01-01T03:00:00Z')])
  t.is(events(h, 'TooManyMissedTimes').length, 1)
  next.stop()
})

test('a gap longer than startingDeadlineSeconds: the missed run is skipped (MissSchedule); the next one runs', async t => {
  const c = new CronJobController()
  const env = startControllers([c])
  const { h } = env
  h.create(cronJob('dl', { startingDeadlineSeconds: 30 }))
  await at(env, '2025-01-01T00:01:00.500Z')
  const next = await leaderGap(env, c, '2025-01-01T00:10:45Z')
  t.deepEqual(names(h), [runName('dl', '2025-01-01T00:01:00Z')])
  t.is(events(h, 'MissSchedule').length, 1)
  await at(env, '2025-01-01T00:11:00.500Z')
  t.deepEqual(names(h), [runName('dl', '2025-01-01T00:01:00Z'), runName('dl', '2025-01-01T00:11:00Z')])
  next.stop()
})

test('timeZone shifts the run time: 09:00 in Europe/Paris is 08:00 UTC in January, and the annotation carries the offset', async t => {
  const env = startControllers([new CronJobController()])
  const { h } = env
  h.create(cronJob('paris', { schedule: '0 9 * * *', timeZone: 'Europe/Paris' }))
  h.create(cronJob('utc', { schedule: '0 9 * * *' }))
  await at(env, '2025-01-01T07:59:30Z')
  t.deepEqual(names(h), [])
  await at(env, '2025-01-01T08:00:30Z')
  t.deepEqual(names(h), [runName('paris', '2025-01-01T08:00:00Z')])
  t.is(jobs(h)[0]?.metadata.annotations?.['batch.kubernetes.io/cronjob-scheduled-timestamp'], '2025-01-01T09:00:00+01:00')
  await at(env, '2025-01-01T09:00:30Z')
  t.deepEqual(names(h), [runName('paris', '2025-01-01T08:00:00Z'), runName('utc', '2025-01-01T09:00:00Z')])
  t.is(jobs(h)[1]?.metadata.annotations?.['batch.kubernetes.io/cronjob-scheduled-timestamp'], '2025-01-01T09:00:00Z')
  env.stop()
})

test('a restart mid-minute never makes a duplicate, even when the leader died between creating the Job and recording it', async t => {
  const c = new CronJobController()
  const env = startControllers([c])
  const { h, clock } = env
  h.create(cronJob('dup'))
  await env.settle()
  c.stop()
  // A leader whose status write never lands (it dies right after creating the Job).
  const ctx = controllerContext(h, clock)
  const lossy: ControllerContext = {
    ...ctx,
    write: async <T extends KObject = KObject>(cmd: StoreCommand) => {
      if (cmd.op === 'update' && cmd.subresource === 'status' && cmd.object.kind === 'CronJob') return await new Promise<never>(() => {})
      return await ctx.write<T>(cmd)
    }
  }
  const dying = new CronJobController()
  dying.start(lossy)
  await at(env, '2025-01-01T00:01:00.500Z')
  t.deepEqual(names(h), [runName('dup', '2025-01-01T00:01:00Z')])
  t.is(cronStatus(h, 'dup').lastScheduleTime, undefined, 'the status was never written')
  // The next leader, mid-minute: the same run is found, not made again, and recorded.
  const next = await leaderGap(env, dying, '2025-01-01T00:01:30Z')
  t.deepEqual(names(h), [runName('dup', '2025-01-01T00:01:00Z')])
  t.is(cronStatus(h, 'dup').lastScheduleTime, '2025-01-01T00:01:00Z')
  t.deepEqual((cronStatus(h, 'dup').active ?? []).map(r => r.name), [runName('dup', '2025-01-01T00:01:00Z')])
  // A plain restart mid-minute: nothing new either.
  const third = await leaderGap(env, next, '2025-01-01T00:01:40Z')
  t.deepEqual(names(h), [runName('dup', '2025-01-01T00:01:00Z')])
  await at(env, '2025-01-01T00:02:00.500Z')
  t.deepEqual(names(h), [runName('dup', '2025-01-01T00:01:00Z'), runName('dup', '2025-01-01T00:02:00Z')])
  t.is(events(h, 'SuccessfulCreate').length, 2)
  third.stop()
})

test('two leaders at once (an old one not yet stopped) still make each run once', async t => {
  const env = startControllers([new CronJobController(), new CronJobController()])
  const { h } = env
  h.create(cronJob('race'))
  await at(env, '2025-01-01T00:01:00.500Z')
  await at(env, '2025-01-01T00:02:00.500Z')
  t.deepEqual(names(h), [runName('race', '2025-01-01T00:01:00Z'), runName('race', '2025-01-01T00:02:00Z')])
  t.deepEqual((cronStatus(h, 'race').active ?? []).map(r => r.name), names(h))
  env.stop()
})

test('a manually created Job owned by the CronJob is not tracked as a scheduled run (UnexpectedJob, as Kubernetes)', async t => {
  const env = startControllers([new CronJobController()])
  const { h } = env
  const cj = h.create(cronJob('man', { concurrencyPolicy: 'Forbid' }))
  await env.settle()
  h.create({
    apiVersion: 'batch/v1',
    kind: 'Job',
    metadata: { name: 'manual', namespace: 'default', annotations: { 'cronjob.kubernetes.io/instantiate': 'manual' }, ownerReferences: [{ apiVersion: 'batch/v1', kind: 'CronJob', name: 'man', uid: cj.metadata.uid ?? '', controller: true }] },
    spec: (cj.spec as { jobTemplate: { spec: unknown } }).jobTemplate.spec
  } as KObject)
  await env.settle()
  t.is(events(h, 'UnexpectedJob').length, 1)
  await at(env, '2025-01-01T00:01:00.500Z')
  t.deepEqual(names(h), ['manual', runName('man', '2025-01-01T00:01:00Z')].sort())
  env.stop()
})

test('unmetTimes: bounded and exact for long gaps and irregular schedules', t => {
  // Weekdays at 09:00: from a Monday to the next Saturday, the latest is Friday.
  const mon = Date.parse('2025-01-06T00:00:00Z')
  const r = unmetTimes('0 9 * * 1-5', undefined, mon, Date.parse('2025-01-11T10:00:00Z'))
  t.deepEqual(r, { latest: Date.parse('2025-01-10T09:00:00Z'), count: 5 })
  // Ten years of minutes: the latest, counted as "more than 100", quickly.
  const started = performance.now()
  const long = unmetTimes('* * * * *', undefined, Date.parse('2015-01-01T00:00:00Z'), Date.parse('2025-01-01T00:00:30Z'))
  t.deepEqual(long, { latest: Date.parse('2025-01-01T00:00:00Z'), count: 101 })
  // Every minute of the 1st of the month, seen from the 28th: the latest is 23:59 on the 1st.
  const sparse = unmetTimes('* * 1 * *', undefined, Date.parse('2024-01-01T00:00:00Z'), Date.parse('2025-01-28T00:00:00Z'))
  t.is(sparse.latest, Date.parse('2025-01-01T23:59:00Z'))
  // Weekdays at 09:00 over a year: more than 100, and the latest is still the Friday before the Saturday.
  t.deepEqual(unmetTimes('0 9 * * 1-5', undefined, Date.parse('2024-01-01T00:00:00Z'), Date.parse('2025-01-11T10:00:00Z')), { latest: Date.parse('2025-01-10T09:00:00Z'), count: 101 })
  // In a time zone: 09:00 in Paris is 08:00 UTC in winter.
  t.is(unmetTimes('0 9 * * *', 'Europe/Paris', Date.parse('2024-01-01T00:00:00Z'), Date.parse('2025-01-11T10:00:00Z')).latest, Date.parse('2025-01-11T08:00:00Z'))
  t.true(performance.now() - started < 2000)
  t.is(rfc3339In(Date.parse('2025-07-01T07:00:00Z'), 'Europe/Paris'), '2025-07-01T09:00:00+02:00')
  t.is(rfc3339In(Date.parse('2025-07-01T07:00:00Z'), 'Etc/UTC'), '2025-07-01T07:00:00Z')
})
