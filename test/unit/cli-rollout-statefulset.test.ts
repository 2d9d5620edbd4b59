// `shoal rollout status|history|undo` on StatefulSets against the in-memory
// fake server: kubectl's status lines (partitioned or not), history from
// the ControllerRevisions the StatefulSet controls, undo as the revision's
// data in a strategic merge patch.
import test from 'ava'
import type { ExecutionContext } from 'ava'
import type { StatefulSet } from '../../protocol/apps-v1.ts'
import type { KObject } from '../../protocol/k8s.ts'
import { statefulSetRolloutStatus } from '../../cli/rollout.ts'
import { startFakeK8s } from '../helpers/fake-k8s.ts'
import type { FakeK8s } from '../helpers/fake-k8s.ts'
import { runCli } from '../helpers/cli.ts'
import type { CliRun } from '../helpers/cli.ts'

async function shoal (t: ExecutionContext, fake: FakeK8s, argv: string[]): Promise<CliRun> {
  return await runCli(t, fake.url, fake.token, argv, () => Date.parse('2025-06-01T12:00:00Z'))
}

function template (image: string): Record<string, unknown> {
  return { metadata: { labels: { app: 'nginx' } }, spec: { containers: [{ name: 'nginx', image }] } }
}

function statefulSet (status: Record<string, unknown>, opts: { image?: string, generation?: number, partition?: number | null, type?: string } = {}): KObject {
  const partition = opts.partition === undefined ? 0 : opts.partition
  return {
    apiVersion: 'apps/v1',
    kind: 'StatefulSet',
    metadata: { name: 'web', namespace: 'default', generation: opts.generation ?? 2 },
    spec: {
      replicas: 3,
      serviceName: 'nginx',
      selector: { matchLabels: { app: 'nginx' } },
      template: template(opts.image ?? 'busybox:2'),
      updateStrategy: opts.type === 'OnDelete' ? { type: 'OnDelete' } : { type: 'RollingUpdate', ...(partition === null ? {} : { rollingUpdate: { partition } }) }
    },
    status
  }
}

function revision (n: number, image: string, owner: string | undefined): KObject {
  return {
    apiVersion: 'apps/v1',
    kind: 'ControllerRevision',
    metadata: {
      name: `web-h${n}`,
      namespace: 'default',
      labels: { app: 'nginx', 'controller-revision-hash': `h${n}` },
      ownerReferences: [{ apiVersion: 'apps/v1', kind: 'StatefulSet', name: 'web', uid: owner ?? 'someone-else', controller: true }]
    },
    data: { spec: { template: { ...template(image), $patch: 'replace' } } },
    revision: n
  }
}

test('status lines as kubectl prints them for a stateful set', t => {
  const s = (status: Record<string, unknown>, opts = {}): StatefulSet => statefulSet(status, opts) as StatefulSet
  t.deepEqual(statefulSetRolloutStatus(s({})), { message: 'Waiting for statefulset spec update to be observed...', done: false })
  t.deepEqual(statefulSetRolloutStatus(s({ observedGeneration: 1 })), { message: 'Waiting for statefulset spec update to be observed...', done: false })
  t.deepEqual(statefulSetRolloutStatus(s({ observedGeneration: 2, replicas: 3, readyReplicas: 1 })), { message: 'Waiting for 2 pods to be ready...', done: false })
  t.deepEqual(statefulSetRolloutStatus(s({ observedGeneration: 2, replicas: 3, readyReplicas: 3, updatedReplicas: 0 }, { partition: 2 })),
    { message: 'Waiting for partitioned roll out to finish: 0 out of 1 new pods have been updated...', done: false })
  t.deepEqual(statefulSetRolloutStatus(s({ observedGeneration: 2, replicas: 3, readyReplicas: 3, updatedReplicas: 1 }, { partition: 2 })),
    { message: 'partitioned roll out complete: 1 new pods have been updated...', done: true })
  t.deepEqual(statefulSetRolloutStatus(s({ observedGeneration: 2, replicas: 3, readyReplicas: 3, updatedReplicas: 3 })),
    { message: 'partitioned roll out complete: 3 new pods have been updated...', done: true })
  // Without rollingUpdate (as an older server may answer): the revisions decide.
  t.deepEqual(statefulSetRolloutStatus(s({ observedGeneration: 2, readyReplicas: 3, updatedReplicas: 1, currentRevision: 'web-a', updateRevision: 'web-b' }, { partition: null })),
    { message: 'waiting for statefulset rolling update to complete 1 pods at revision web-b...', done: false })
  t.deepEqual(statefulSetRolloutStatus(s({ observedGeneration: 2, readyReplicas: 3, currentReplicas: 3, currentRevision: 'web-b', updateRevision: 'web-b' }, { partition: null })),
    { message: 'statefulset rolling update complete 3 pods at revision web-b...', done: true })
  t.throws(() => statefulSetRolloutStatus(s({ observedGeneration: 2 }, { type: 'OnDelete' })), { message: 'rollout status is only available for RollingUpdate strategy type' })
})

test('rollout status follows a stateful set until it is rolled out', async t => {
  const fake = await startFakeK8s(t)
  const d = fake.put(statefulSet({ observedGeneration: 2, replicas: 3, readyReplicas: 2, updatedReplicas: 2 }))
  const run = shoal(t, fake, ['rollout', 'status', 'sts/web', '--timeout', '30s'])
  await fake.nextWatch()
  fake.put({ ...d, status: { observedGeneration: 2, replicas: 3, readyReplicas: 3, updatedReplicas: 3 } })
  t.deepEqual(await run, {
    code: 0,
    stdout: 'Waiting for 1 pods to be ready...\npartitioned roll out complete: 3 new pods have been updated...\n',
    stderr: ''
  })
})

test('rollout history lists a stateful set\'s controller revisions; undo sends the previous one\'s data', async t => {
  const fake = await startFakeK8s(t)
  const d = fake.put(statefulSet({}, { image: 'busybox:3' }))
  fake.put(revision(1, 'busybox:1', d.metadata.uid))
  fake.put(revision(2, 'busybox:3', d.metadata.uid))
  fake.put({ ...revision(7, 'evil', undefined), metadata: { ...revision(7, 'evil', undefined).metadata, name: 'not-ours' } })
  t.deepEqual((await shoal(t, fake, ['rollout', 'history', 'statefulset/web'])).stdout.split('\n'), [
    'statefulset.apps/web', 'REVISION   CHANGE-CAUSE', '1          <none>', '2          <none>', ''
  ])
  t.deepEqual(await shoal(t, fake, ['rollout', 'undo', 'sts', 'web']), { code: 0, stdout: 'statefulset.apps/web rolled back\n', stderr: '' })
  const req = fake.requests.at(-1)
  t.deepEqual([req?.method, req?.path, req?.contentType], ['PATCH', '/apis/apps/v1/namespaces/default/statefulsets/web', 'application/strategic-merge-patch+json'])
  t.deepEqual(req?.body, { spec: { template: { ...template('busybox:1'), $patch: 'replace' } } })
})
