// CronJobs on three real shoald peers (127.0.152.2-4, process runtime), one
// cluster for the whole file, its tests running side by side so that the
// file stays under about three minutes: a real `*/1 * * * *` CronJob makes a
// Job for each minute (deterministic name, scheduled-time annotation), which
// completes, and successfulJobsHistoryLimit: 1 leaves one Job after two runs;
// `shoal create job --from=cronjob/NAME`; kubectl applies a CronJob in the
// Kubernetes docs' style, runs `kubectl create job --from` and shows
// kubectl's CronJob columns. kubectl comes from the machine: without it the
// kubectl test fails under CI and is skipped elsewhere.
// Until the Job controller is registered in daemon/main.ts, nothing
// completes Jobs: the test then marks each one Complete itself (the status
// the Job controller would write), so that the history limit is still
// exercised end to end.
import test from 'ava'
import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { api, ROOT, SHOAL, startCluster, stopAll, waitFor, waitForLeader } from '../helpers/cluster.ts'
import type { Peer } from '../helpers/cluster.ts'
import { HAS_KUBECTL, kubectlAgainst } from '../helpers/kubectl.ts'
import { run } from '../helpers/run.ts'
import type { Run } from '../helpers/run.ts'

const IPS = ['127.0.152.2', '127.0.152.3', '127.0.152.4']
const CI = process.env.CI === 'true'
const JOB_CONTROLLER = /new JobController\(/.test(readFileSync(join(ROOT, 'daemon', 'main.ts'), 'utf8'))
const SCHEDULED = 'batch.kubernetes.io/cronjob-scheduled-timestamp'
const JOBS = '/apis/batch/v1/namespaces/default/jobs'
const CRONJOBS = '/apis/batch/v1/namespaces/default/cronjobs'

let cluster: { dir: string, peers: Peer[] } | undefined
let ready: Promise<Peer> | undefined

/** The cluster and its leader, started once for every test of the file. */
async function leader (): Promise<{ leader: Peer, peers: Peer[], dir: string }> {
  ready ??= (async () => {
    cluster = await startCluster('cronjob', IPS)
    return await waitForLeader(cluster.peers, 60_000)
  })()
  const l = await ready
  return { leader: l, peers: cluster!.peers, dir: cluster!.dir }
}

test.after.always(async () => {
  if (cluster !== undefined) await stopAll(cluster.peers, cluster.dir)
})

function cronJob (name: string, spec: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    apiVersion: 'batch/v1',
    kind: 'CronJob',
    metadata: { name },
    spec: {
      schedule: '*/1 * * * *',
      jobTemplate: {
        metadata: { labels: { app: name } },
        spec: { template: { spec: { restartPolicy: 'Never', terminationGracePeriodSeconds: 1, containers: [{ name: 'tick', image: 'busybox', command: ['sh', '-c', 'echo tick'] }] } } }
      },
      ...spec
    }
  }
}

async function jobsOf (peer: Peer, cronJob: string): Promise<any[]> {
  const r = await api(peer, 'GET', JOBS)
  return ((r.body.items ?? []) as any[]).filter(j => (j.metadata.ownerReferences ?? []).some((o: any) => o.kind === 'CronJob' && o.name === cronJob))
    .sort((a, b) => String(a.metadata.name).localeCompare(String(b.metadata.name)))
}

function isComplete (job: any): boolean {
  return (job.status?.conditions ?? []).some((c: any) => c.type === 'Complete' && c.status === 'True')
}

/** Waits for `job` to complete: by the Job controller, or (until it is registered) marked Complete here as it would. */
async function completed (peer: Peer, name: string): Promise<void> {
  if (!JOB_CONTROLLER) {
    const now = new Date().toISOString().replace(/\.\d+Z$/, 'Z')
    const r = await api(peer, 'PATCH', `${JOBS}/${name}/status`, { status: { startTime: now, completionTime: now, succeeded: 1, conditions: [{ type: 'Complete', status: 'True', lastTransitionTime: now }] } }, 'application/merge-patch+json')
    if (r.status !== 200) throw new Error(`marking ${name} Complete: ${r.status} ${JSON.stringify(r.body)}`)
  }
  await waitFor(`${name} to complete`, async () => isComplete((await api(peer, 'GET', `${JOBS}/${name}`)).body), 40_000, 250)
}

test('a */1 CronJob makes a Job each minute, which completes; successfulJobsHistoryLimit: 1 keeps one after two runs', async t => {
  t.timeout(200_000)
  const { leader: l, peers } = await leader()
  const created = await api(l, 'POST', CRONJOBS, cronJob('tick', { successfulJobsHistoryLimit: 1 }))
  t.is(created.status, 201, JSON.stringify(created.body))
  const uid = created.body.metadata.uid as string

  // The first run within a minute (and a bit): named for its minute, annotated with it, owned by the CronJob.
  const [first] = await waitFor('the first Job', async () => { const js = await jobsOf(l, 'tick'); return js.length >= 1 && js }, 75_000, 250)
  const scheduled = Date.parse(first.metadata.annotations[SCHEDULED])
  t.is(scheduled % 60_000, 0)
  t.is(first.metadata.name, `tick-${scheduled / 60_000}`)
  t.is(first.metadata.labels.app, 'tick')
  t.like(first.metadata.ownerReferences[0], { kind: 'CronJob', name: 'tick', uid, controller: true })
  const skew = Date.parse(first.metadata.creationTimestamp) - scheduled
  t.true(skew >= 0 && skew <= 2000, `created ${skew} ms after its scheduled time`)
  // Every peer serves it, and the CronJob's status lists it.
  for (const p of peers) t.is((await api(p, 'GET', `${JOBS}/${first.metadata.name as string}`)).status, 200)
  // The status records the run, and lists the Job while it is active (a pod of `echo tick` may finish before a poll sees that).
  await waitFor('the CronJob\'s status to record the first run', async () => {
    const status = (await api(l, 'GET', `${CRONJOBS}/tick`)).body.status ?? {}
    if (Date.parse(status.lastScheduleTime ?? '') !== scheduled) return false
    return (status.active ?? []).some((r: any) => r.name === first.metadata.name) || isComplete((await api(l, 'GET', `${JOBS}/${first.metadata.name as string}`)).body)
  }, 20_000)
  await completed(l, first.metadata.name)

  // The second run, a minute later; once it completes, the first one is deleted.
  const second = await waitFor('the second Job', async () => (await jobsOf(l, 'tick')).find(j => j.metadata.name !== first.metadata.name), 70_000, 250)
  t.is(Date.parse(second.metadata.annotations[SCHEDULED]), scheduled + 60_000)
  await completed(l, second.metadata.name)
  const left = await waitFor('only the newest Job to remain', async () => { const js = await jobsOf(l, 'tick'); return js.length === 1 && js }, 20_000, 250)
  t.is(left[0].metadata.name, second.metadata.name)
  // The status catches up with the finished run (its write may trail the Job's completion).
  const status = await waitFor('the CronJob\'s status to show no active Job', async () => {
    const st = (await api(l, 'GET', `${CRONJOBS}/tick`)).body.status ?? {}
    return (st.active ?? []).length === 0 && typeof st.lastSuccessfulTime === 'string' && st
  }, 20_000, 250)
  t.is(Date.parse(status.lastScheduleTime), scheduled + 60_000)
  await api(l, 'DELETE', `${CRONJOBS}/tick`)
})

test('shoal create job NAME --from=cronjob/NAME makes a manual Job; a missing cron job is a one-line error', async t => {
  t.timeout(120_000)
  const { leader: l, peers } = await leader()
  t.is((await api(l, 'POST', CRONJOBS, cronJob('x', { suspend: true, schedule: '0 3 * * *' }))).status, 201)
  const other = peers.find(p => p !== l) as Peer
  const shoal = async (...args: string[]): Promise<Run> => await run(process.execPath, [SHOAL, '--server', other.apiUrl, '--token', other.token(), ...args])
  const made = await shoal('create', 'job', 'manual', '--from=cronjob/x')
  t.is(made.code, 0, made.stderr)
  t.is(made.stdout, 'job.batch/manual created\n')
  const job = (await api(l, 'GET', `${JOBS}/manual`)).body
  t.is(job.metadata.annotations['cronjob.kubernetes.io/instantiate'], 'manual')
  t.like(job.metadata.ownerReferences[0], { kind: 'CronJob', name: 'x', controller: true })
  t.is(job.metadata.labels.app, 'x')
  t.deepEqual(job.spec.template.spec.containers[0].command, ['sh', '-c', 'echo tick'])
  const missing = await shoal('create', 'job', 'manual2', '--from=cronjob/nope')
  t.is(missing.code, 1)
  t.is(missing.stderr, 'shoal: cronjobs.batch "nope" not found\n')
  const bad = await shoal('create', 'job', 'manual2', '--from=x')
  t.is(bad.code, 2)
  t.is(bad.stderr.trim().split('\n').length, 1)
})

const maybe = HAS_KUBECTL || CI ? test : test.skip

const DOCS_MANIFEST = `apiVersion: batch/v1
kind: CronJob
metadata:
  name: hello
spec:
  schedule: "* * * * *"
  jobTemplate:
    spec:
      template:
        spec:
          containers:
          - name: hello
            image: busybox:1.28
            imagePullPolicy: IfNotPresent
            command:
            - /bin/sh
            - -c
            - date; echo Hello from the Kubernetes cluster
          restartPolicy: OnFailure
`

maybe('kubectl applies a CronJob from the docs, creates a Job from it and shows its columns', async t => {
  if (!HAS_KUBECTL) {
    t.fail('kubectl is not installed (apt-get install kubernetes-client, or any kubectl on PATH); CI must have it')
    return
  }
  t.timeout(150_000)
  const { leader: l, dir } = await leader()
  const { kubectl: runKubectl } = await kubectlAgainst(l, dir)
  const manifest = join(dir, 'hello-cronjob.yaml')
  writeFileSync(manifest, DOCS_MANIFEST)
  const kubectl = async (...args: string[]): Promise<Run> => await runKubectl(args, 60_000)

  const applied = await kubectl('apply', '-f', manifest)
  t.is(applied.code, 0, applied.stderr)
  t.is(applied.stdout, 'cronjob.batch/hello created\n')
  const got = await kubectl('get', 'cronjobs')
  t.is(got.code, 0, got.stderr)
  t.regex(got.stdout, /^NAME\s+SCHEDULE\s+TIMEZONE\s+SUSPEND\s+ACTIVE\s+LAST SCHEDULE\s+AGE\nhello\s+\* \* \* \* \*\s+<none>\s+False\s+\d+\s+\S+\s+\S+\n/)

  const manual = await kubectl('create', 'job', '--from=cronjob/hello', 'hello-manual')
  t.is(manual.code, 0, manual.stderr)
  t.is(manual.stdout, 'job.batch/hello-manual created\n')
  const job = (await api(l, 'GET', `${JOBS}/hello-manual`)).body
  t.is(job.metadata.annotations['cronjob.kubernetes.io/instantiate'], 'manual')
  t.like(job.metadata.ownerReferences[0], { kind: 'CronJob', name: 'hello', controller: true })
  const jobs = await kubectl('get', 'jobs', 'hello-manual')
  t.is(jobs.code, 0, jobs.stderr)
  t.regex(jobs.stdout, /^NAME\s+STATUS\s+COMPLETIONS\s+DURATION\s+AGE\nhello-manual\s/)

  // The schedule runs too: a Job for the next minute, then LAST SCHEDULE is set.
  await waitFor('a scheduled Job of hello', async () => (await jobsOf(l, 'hello')).some(j => j.metadata.annotations?.[SCHEDULED] !== undefined), 75_000, 500)
  const after = await waitFor('LAST SCHEDULE to be set', async () => {
    const r = await kubectl('get', 'cronjob', 'hello')
    return /^hello\s+\* \* \* \* \*\s+<none>\s+False\s+\d+\s+\d+s\s+/m.test(r.stdout) && r.stdout
  }, 15_000, 500)
  t.regex(after, /hello/)
  const deleted = await kubectl('delete', 'cronjob', 'hello')
  t.is(deleted.code, 0, deleted.stderr)
})
