// `shoal rollout status|history|undo` on DaemonSets against the in-memory
// fake server: kubectl's status lines, history from the ControllerRevisions
// the DaemonSet controls, undo as the revision's data in a strategic merge
// patch (skipped when the template already matches), and the kinds
// rollout refuses.
import test from 'ava'
import type { ExecutionContext } from 'ava'
import type { KObject } from '../../protocol/k8s.ts'
import { daemonSetRolloutStatus } from '../../cli/rollout.ts'
import { startFakeK8s } from '../helpers/fake-k8s.ts'
import type { FakeK8s } from '../helpers/fake-k8s.ts'
import { runCli } from '../helpers/cli.ts'
import type { CliRun } from '../helpers/cli.ts'

async function shoal (t: ExecutionContext, fake: FakeK8s, argv: string[]): Promise<CliRun> {
  return await runCli(t, fake.url, fake.token, argv, () => Date.parse('2025-06-01T12:00:00Z'))
}

function template (image: string): Record<string, unknown> {
  return { metadata: { labels: { app: 'agent' } }, spec: { containers: [{ name: 'main', image }] } }
}

function daemonSet (status: Record<string, unknown>, image = 'fluentd:2', generation = 2): KObject {
  return {
    apiVersion: 'apps/v1',
    kind: 'DaemonSet',
    metadata: { name: 'agent', namespace: 'default', generation },
    spec: { selector: { matchLabels: { app: 'agent' } }, template: template(image), updateStrategy: { type: 'RollingUpdate', rollingUpdate: { maxUnavailable: 1, maxSurge: 0 } } },
    status
  }
}

function revision (n: number, image: string, owner: string | undefined, extra: Record<string, string> = {}): KObject {
  return {
    apiVersion: 'apps/v1',
    kind: 'ControllerRevision',
    metadata: {
      name: `agent-h${n}`,
      namespace: 'default',
      labels: { app: 'agent', 'controller-revision-hash': `h${n}` },
      annotations: extra,
      ownerReferences: [{ apiVersion: 'apps/v1', kind: 'DaemonSet', name: 'agent', uid: owner ?? 'someone-else', controller: true }]
    },
    data: { spec: { template: { ...template(image), $patch: 'replace' } } },
    revision: n
  }
}

test('status lines as kubectl prints them for a daemon set', t => {
  const ds = (status: Record<string, unknown>, generation = 2): any => daemonSet(status, 'x', generation)
  t.deepEqual(daemonSetRolloutStatus(ds({ observedGeneration: 1 })), { message: 'Waiting for daemon set spec update to be observed...', done: false })
  t.deepEqual(daemonSetRolloutStatus(ds({ observedGeneration: 2, desiredNumberScheduled: 3, updatedNumberScheduled: 1, numberAvailable: 3 })),
    { message: 'Waiting for daemon set "agent" rollout to finish: 1 out of 3 new pods have been updated...', done: false })
  t.deepEqual(daemonSetRolloutStatus(ds({ observedGeneration: 2, desiredNumberScheduled: 3, updatedNumberScheduled: 3, numberAvailable: 2 })),
    { message: 'Waiting for daemon set "agent" rollout to finish: 2 of 3 updated pods are available...', done: false })
  t.deepEqual(daemonSetRolloutStatus(ds({ observedGeneration: 2, desiredNumberScheduled: 3, updatedNumberScheduled: 3, numberAvailable: 3 })),
    { message: 'daemon set "agent" successfully rolled out', done: true })
  const onDelete = ds({ observedGeneration: 2 })
  onDelete.spec.updateStrategy = { type: 'OnDelete' }
  t.throws(() => daemonSetRolloutStatus(onDelete), { message: 'rollout status is only available for RollingUpdate strategy type' })
})

test('rollout status follows a daemon set until it is rolled out', async t => {
  const fake = await startFakeK8s(t)
  const d = fake.put(daemonSet({ observedGeneration: 2, desiredNumberScheduled: 2, updatedNumberScheduled: 1, numberAvailable: 1 }))
  const run = shoal(t, fake, ['rollout', 'status', 'ds/agent', '--timeout', '30s'])
  await fake.nextWatch()
  fake.put({ ...d, status: { observedGeneration: 2, desiredNumberScheduled: 2, updatedNumberScheduled: 2, numberAvailable: 2 } })
  t.deepEqual(await run, {
    code: 0,
    stdout: 'Waiting for daemon set "agent" rollout to finish: 1 out of 2 new pods have been updated...\ndaemon set "agent" successfully rolled out\n',
    stderr: ''
  })
})

test('rollout history lists the controller revisions; undo sends a revision\'s data as a strategic merge patch', async t => {
  const fake = await startFakeK8s(t)
  const d = fake.put(daemonSet({}, 'fluentd:3'))
  fake.put(revision(1, 'fluentd:1', d.metadata.uid, { 'kubernetes.io/change-cause': 'first' }))
  fake.put(revision(2, 'fluentd:2', d.metadata.uid))
  fake.put(revision(3, 'fluentd:3', d.metadata.uid))
  fake.put({ ...revision(9, 'evil', undefined), metadata: { ...revision(9, 'evil', undefined).metadata, name: 'not-ours' } })
  t.deepEqual((await shoal(t, fake, ['rollout', 'history', 'daemonset/agent'])).stdout.split('\n'), [
    'daemonset.apps/agent', 'REVISION   CHANGE-CAUSE', '1          first', '2          <none>', '3          <none>', ''
  ])
  t.deepEqual(await shoal(t, fake, ['rollout', 'undo', 'ds', 'agent']), { code: 0, stdout: 'daemonset.apps/agent rolled back\n', stderr: '' })
  const req = fake.requests.at(-1)
  t.deepEqual([req?.method, req?.path, req?.contentType], ['PATCH', '/apis/apps/v1/namespaces/default/daemonsets/agent', 'application/strategic-merge-patch+json'])
  t.deepEqual(req?.body, { spec: { template: { ...template('fluentd:2'), $patch: 'replace' } } })
  // (the fake merges a strategic patch as a merge patch: put the template back as the server would have it)
  fake.put({ ...d, spec: { ...(d.spec as object), template: template('fluentd:2') } })
  t.deepEqual(await shoal(t, fake, ['rollout', 'undo', 'ds/agent', '--to-revision', '2']), {
    code: 0, stdout: 'daemonset.apps/agent skipped rollback (current template already matches revision 2)\n', stderr: ''
  })
  t.deepEqual(await shoal(t, fake, ['rollout', 'undo', 'ds/agent', '--to-revision', '7']), { code: 1, stdout: '', stderr: 'shoal: unable to find specified revision 7 in history\n' })
})

test('undo with one revision has nothing to go back to; rollout refuses other kinds', async t => {
  const fake = await startFakeK8s(t)
  const d = fake.put(daemonSet({}, 'fluentd:1', 1))
  fake.put(revision(1, 'fluentd:1', d.metadata.uid))
  t.deepEqual(await shoal(t, fake, ['rollout', 'undo', 'ds/agent']), { code: 1, stdout: '', stderr: 'shoal: no last revision to roll back to\n' })
  const r = await shoal(t, fake, ['rollout', 'history', 'pod/x'])
  t.is(r.code, 2)
  t.regex(r.stderr, /rollout works on deployments, daemonsets, statefulsets, not pods/)
})
