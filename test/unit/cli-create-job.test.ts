// `shoal create job NAME --from=cronjob/NAME` against the fake server: the
// Job kubectl would make (template, manual annotation, controller owner
// reference) and one-line errors for bad input.
import test from 'ava'
import type { ExecutionContext } from 'ava'
import type { KObject } from '../../protocol/k8s.ts'
import { startFakeK8s } from '../helpers/fake-k8s.ts'
import type { FakeK8s } from '../helpers/fake-k8s.ts'
import { runCli } from '../helpers/cli.ts'
import type { CliRun } from '../helpers/cli.ts'

async function shoal (t: ExecutionContext, fake: FakeK8s, argv: string[]): Promise<CliRun> {
  return await runCli(t, fake.url, fake.token, argv)
}

const CRONJOB: KObject = {
  apiVersion: 'batch/v1',
  kind: 'CronJob',
  metadata: { name: 'nightly', namespace: 'default', uid: 'cj-uid' },
  spec: {
    schedule: '0 3 * * *',
    jobTemplate: {
      metadata: { labels: { app: 'nightly' }, annotations: { team: 'ops' } },
      spec: { backoffLimit: 2, template: { spec: { restartPolicy: 'Never', containers: [{ name: 'c', image: 'busybox', command: ['echo', 'hi'] }] } } }
    }
  }
}

test('create job --from=cronjob/NAME posts the template as a Job, marked manual and owned by the cron job', async t => {
  const fake = await startFakeK8s(t)
  fake.put(CRONJOB)
  const r = await shoal(t, fake, ['create', 'job', 'manual', '--from=cronjob/nightly'])
  t.is(r.code, 0, r.stderr)
  t.is(r.stdout, 'job.batch/manual created\n')
  const post = fake.requests.find(q => q.method === 'POST')
  t.is(post?.path, '/apis/batch/v1/namespaces/default/jobs')
  t.deepEqual(post?.body, {
    apiVersion: 'batch/v1',
    kind: 'Job',
    metadata: {
      name: 'manual',
      namespace: 'default',
      annotations: { 'cronjob.kubernetes.io/instantiate': 'manual', team: 'ops' },
      labels: { app: 'nightly' },
      ownerReferences: [{ apiVersion: 'batch/v1', kind: 'CronJob', name: 'nightly', uid: 'cj-uid', controller: true }]
    },
    spec: (CRONJOB.spec as { jobTemplate: { spec: unknown } }).jobTemplate.spec
  })
  // The short name and another namespace work too.
  fake.put({ ...CRONJOB, metadata: { ...CRONJOB.metadata, namespace: 'ops', uid: 'cj-2' } })
  const other = await shoal(t, fake, ['create', 'job', 'again', '--from', 'cj/nightly', '-n', 'ops'])
  t.is(other.code, 0, other.stderr)
  t.truthy(fake.get('jobs', 'ops', 'again'))
})

test('create job: a missing cron job, a bad --from and no --from are one-line errors with a non-zero exit', async t => {
  const fake = await startFakeK8s(t)
  const missing = await shoal(t, fake, ['create', 'job', 'manual', '--from=cronjob/nope'])
  t.is(missing.code, 1)
  t.is(missing.stderr, 'shoal: cronjobs.batch "nope" not found\n')
  for (const [args, pattern] of [
    [['--from=nightly'], /--from must be of the form <resource>\/<name>/],
    [['--from=cronjob/'], /--from must be of the form <resource>\/<name>/],
    [['--from=deployment/web'], /unknown object type deployment/],
    [[], /needs --from=cronjob\/NAME/]
  ] as const) {
    const r = await shoal(t, fake, ['create', 'job', 'manual', ...args])
    t.is(r.code, 2, args.join(' '))
    t.regex(r.stderr, pattern)
    t.is(r.stderr.trim().split('\n').length, 1)
    t.is(r.stdout, '')
  }
  t.false(fake.requests.some(q => q.method === 'POST'))
})
