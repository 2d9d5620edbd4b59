// `shoal get` and `shoal describe` for the workload kinds of issue 15 (Job,
// CronJob, DaemonSet, StatefulSet, ReplicationController,
// PodDisruptionBudget), run in-process against the real API server over an
// in-memory store (test/helpers/k8s-api.ts): no controllers run, so each
// status is written here through its status subresource.
import test from 'ava'
import type { ExecutionContext } from 'ava'
import type { KObject } from '../../protocol/k8s.ts'
import { alignTabs, timeText } from '../../cli/describe-text.ts'
import { startK8sTestApi } from '../helpers/k8s-api.ts'
import type { K8sTestApi } from '../helpers/k8s-api.ts'
import { runCli } from '../helpers/cli.ts'
import type { CliRun } from '../helpers/cli.ts'

const NOW = Date.parse('2025-06-01T12:00:00Z')
const iso = (ms: number): string => new Date(ms).toISOString().replace(/\.\d+Z$/, 'Z')
const MERGE = 'application/merge-patch+json'

async function shoal (t: ExecutionContext, api: K8sTestApi, argv: string[]): Promise<CliRun> {
  return await runCli(t, api.plainUrl, api.token, argv, () => NOW)
}

async function call (api: K8sTestApi, method: string, path: string, body: unknown, contentType = 'application/json'): Promise<KObject> {
  const res = await fetch(api.plainUrl + path, { method, headers: { authorization: `Bearer ${api.token}`, 'content-type': contentType }, body: JSON.stringify(body) })
  const json = await res.json() as KObject
  if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${JSON.stringify(json)}`)
  return json
}

const template = (app: string, restartPolicy?: string): Record<string, unknown> => ({
  metadata: { labels: { app } },
  spec: { ...(restartPolicy !== undefined ? { restartPolicy } : {}), containers: [{ name: app, image: 'busybox', command: ['sh', '-c', 'echo hi'] }] }
})

/** Creates an object, then (if given) writes its status. */
async function put (api: K8sTestApi, base: string, plural: string, obj: Record<string, unknown>, status?: Record<string, unknown>): Promise<KObject> {
  const created = await call(api, 'POST', `${base}/namespaces/default/${plural}`, obj)
  if (status === undefined) return created
  return await call(api, 'PATCH', `${base}/namespaces/default/${plural}/${created.metadata.name ?? ''}/status`, { status }, MERGE)
}

interface Workloads { job: KObject, cj: KObject, ds: KObject, sts: KObject, rc: KObject, pdb: KObject }

async function workloads (api: K8sTestApi): Promise<Workloads> {
  const meta = (name: string): { name: string } => ({ name })
  const job = await put(api, '/apis/batch/v1', 'jobs', { apiVersion: 'batch/v1', kind: 'Job', metadata: meta('pi'), spec: { completions: 2, backoffLimit: 4, template: template('pi', 'Never') } },
    { startTime: iso(NOW - 90_000), completionTime: iso(NOW - 30_000), succeeded: 2, ready: 0, conditions: [{ type: 'Complete', status: 'True' }] })
  const cj = await put(api, '/apis/batch/v1', 'cronjobs', {
    apiVersion: 'batch/v1', kind: 'CronJob', metadata: meta('nightly'), spec: { schedule: '30 2 * * *', jobTemplate: { spec: { template: template('nightly', 'OnFailure') } } }
  }, { lastScheduleTime: iso(NOW - 3_600_000 * 9.5), active: [{ kind: 'Job', name: 'nightly-29100000', namespace: 'default' }] })
  const ds = await put(api, '/apis/apps/v1', 'daemonsets', {
    apiVersion: 'apps/v1', kind: 'DaemonSet', metadata: meta('agent'), spec: { selector: { matchLabels: { app: 'agent' } }, template: template('agent') }
  }, { desiredNumberScheduled: 3, currentNumberScheduled: 2, numberReady: 1, updatedNumberScheduled: 2, numberAvailable: 1, numberMisscheduled: 0 })
  const sts = await put(api, '/apis/apps/v1', 'statefulsets', {
    apiVersion: 'apps/v1', kind: 'StatefulSet', metadata: meta('db'),
    spec: { replicas: 3, serviceName: 'db', selector: { matchLabels: { app: 'db' } }, template: template('db'), updateStrategy: { type: 'RollingUpdate', rollingUpdate: { partition: 1 } } }
  }, { replicas: 2, readyReplicas: 2 })
  const rc = await put(api, '/api/v1', 'replicationcontrollers', {
    apiVersion: 'v1', kind: 'ReplicationController', metadata: meta('legacy'), spec: { replicas: 2, selector: { app: 'legacy' }, template: template('legacy') }
  }, { replicas: 2, readyReplicas: 1 })
  const pdb = await put(api, '/apis/policy/v1', 'poddisruptionbudgets', {
    apiVersion: 'policy/v1', kind: 'PodDisruptionBudget', metadata: meta('web'), spec: { minAvailable: 2, selector: { matchLabels: { app: 'web' } } }
  }, { disruptionsAllowed: 1, currentHealthy: 3, desiredHealthy: 2, expectedPods: 3 })
  return { job, cj, ds, sts, rc, pdb }
}

/** A pod owned by `owner`, in `phase`. */
async function ownedPod (api: K8sTestApi, owner: KObject, name: string, app: string, phase: string): Promise<void> {
  const ref = { apiVersion: owner.apiVersion, kind: owner.kind, name: owner.metadata.name, uid: owner.metadata.uid, controller: true }
  await put(api, '/api/v1', 'pods', { apiVersion: 'v1', kind: 'Pod', metadata: { name, labels: { app }, ownerReferences: [ref] }, spec: { containers: [{ name: app, image: 'busybox' }] } }, { phase })
}

test('get: each new kind with kubectl\'s columns, by plural, singular and short name', async t => {
  const api = await startK8sTestApi(t)
  await workloads(api)
  const get = async (...args: string[]): Promise<string> => {
    const r = await shoal(t, api, ['get', ...args])
    t.is(r.code, 0, r.stderr)
    return r.stdout
  }
  t.regex(await get('jobs'), /^NAME +STATUS +COMPLETIONS +DURATION +AGE\npi +Complete +2\/2 +60s +\S+\n$/)
  t.is(await get('job', 'pi'), await get('jobs.batch', 'pi'))
  t.regex(await get('cj'), /^NAME +SCHEDULE +TIMEZONE +SUSPEND +ACTIVE +LAST SCHEDULE +AGE\nnightly +30 2 \* \* \* +<none> +False +1 +9h +\S+\n$/)
  t.regex(await get('ds'), /^NAME +DESIRED +CURRENT +READY +UP-TO-DATE +AVAILABLE +NODE SELECTOR +AGE\nagent +3 +2 +1 +2 +1 +<none> +\S+\n$/)
  t.regex(await get('sts'), /^NAME +READY +AGE\ndb +2\/3 +\S+\n$/)
  t.regex(await get('rc'), /^NAME +DESIRED +CURRENT +READY +AGE\nlegacy +2 +2 +1 +\S+\n$/)
  t.regex(await get('pdb'), /^NAME +MIN AVAILABLE +MAX UNAVAILABLE +ALLOWED DISRUPTIONS +AGE\nweb +2 +N\/A +1 +\S+\n$/)
  t.regex(await get('cronjobs', '-o', 'wide'), /CONTAINERS +IMAGES +SELECTOR\nnightly .* nightly +busybox +<none>\n$/)
  t.regex(await get('controllerrevisions'), /^$/)
})

test('get all: every kind in the `all` category, each as kind.group/name, and not the PDB', async t => {
  const api = await startK8sTestApi(t)
  await workloads(api)
  const r = await shoal(t, api, ['get', 'all'])
  t.is(r.code, 0, r.stderr)
  for (const name of ['replicationcontroller/legacy', 'daemonset.apps/agent', 'statefulset.apps/db', 'job.batch/pi', 'cronjob.batch/nightly']) {
    t.regex(r.stdout, new RegExp(`^${name.replace('.', '\\.')} `, 'm'), name)
  }
  t.notRegex(r.stdout, /poddisruptionbudget|\bweb\b/)
  t.regex(r.stdout, /^NAME +STATUS +COMPLETIONS +DURATION +AGE\njob\.batch\/pi /m)
  const names = await shoal(t, api, ['get', 'all,pdb', '-o', 'name'])
  t.regex(names.stdout, /^poddisruptionbudget\.policy\/web$/m)
  t.regex(names.stdout, /^cronjob\.batch\/nightly$/m)
  const empty = await shoal(t, api, ['get', 'all', '-n', 'kube-system'])
  t.deepEqual([empty.code, empty.stdout, empty.stderr], [0, '', 'No resources found in kube-system namespace.\n'])
})

test('describe job: spec, times, duration, pod statuses and template', async t => {
  const api = await startK8sTestApi(t)
  await workloads(api)
  const r = await shoal(t, api, ['describe', 'job', 'pi'])
  t.is(r.code, 0, r.stderr)
  t.regex(r.stdout, /^Name: +pi\nNamespace: +default\n/)
  t.regex(r.stdout, /\nSelector: +batch\.kubernetes\.io\/controller-uid=\S+\n/)
  t.regex(r.stdout, /\nParallelism: +1\nCompletions: +2\nCompletion Mode: +NonIndexed\nSuspend: +false\nBackoff Limit: +4\n/)
  t.regex(r.stdout, /\nStart Time: +Sun, 01 Jun 2025 11:58:30 \+0000\nCompleted At: +Sun, 01 Jun 2025 11:59:30 \+0000\nDuration: +60s\n/)
  t.regex(r.stdout, /\nPods Statuses: +0 Active \(0 Ready\) \/ 2 Succeeded \/ 0 Failed\n/)
  t.regex(r.stdout, /\nPod Template:\n  Labels: +app=pi\n/)
  t.regex(r.stdout, /\n  Containers:\n {4}pi:\n {6}Image: +busybox\n {6}Command:\n {8}sh\n/)
  t.regex(r.stdout, /\nConditions:\n  Type +Status +Reason\n  Complete +True +<none>\n/)
  t.regex(r.stdout, /\nEvents: +<none>\n$/)
})

test('describe cronjob: schedule, policy, limits, last and next schedule, active jobs', async t => {
  const api = await startK8sTestApi(t)
  const { cj } = await workloads(api)
  const r = await shoal(t, api, ['describe', 'cj/nightly'])
  t.is(r.code, 0, r.stderr)
  t.regex(r.stdout, /\nSchedule: +30 2 \* \* \*\nTime Zone: +<unset>\nConcurrency Policy: +Allow\nSuspend: +False\n/)
  t.regex(r.stdout, /\nSuccessful Job History Limit: +3\nFailed Job History Limit: +1\nStarting Deadline Seconds: +<unset>\n/)
  t.regex(r.stdout, /\nSelector: +<unset>\nParallelism: +<unset>\nCompletions: +<unset>\nPod Template:\n/)
  t.regex(r.stdout, /\nLast Schedule Time: +Sun, 01 Jun 2025 02:30:00 \+0000\nActive Jobs: +nightly-29100000\n/)
  t.regex(r.stdout, /\nNext Schedule: +Mon, 02 Jun 2025 02:30:00 \+0000 \(in 14h\)\n/)
  await call(api, 'PATCH', `/apis/batch/v1/namespaces/default/cronjobs/${cj.metadata.name ?? ''}`, { spec: { suspend: true, timeZone: 'Asia/Tokyo' } }, MERGE)
  const suspended = await shoal(t, api, ['describe', 'cronjob', 'nightly'])
  t.regex(suspended.stdout, /\nTime Zone: +Asia\/Tokyo\n/)
  t.regex(suspended.stdout, /\nNext Schedule: +<none> \(suspended\)\n/)
  await call(api, 'PATCH', `/apis/batch/v1/namespaces/default/cronjobs/${cj.metadata.name ?? ''}`, { spec: { suspend: false } }, MERGE)
  // 02:30 in Tokyo (UTC+9) is 17:30 UTC.
  t.regex((await shoal(t, api, ['describe', 'cronjob', 'nightly'])).stdout, /\nNext Schedule: +Sun, 01 Jun 2025 17:30:00 \+0000 \(in 5h30m\)\n/)
})

test('describe daemonset, statefulset and replicationcontroller: counts, strategy and their own pods by phase', async t => {
  const api = await startK8sTestApi(t)
  const { ds, sts, rc } = await workloads(api)
  await ownedPod(api, ds, 'agent-a', 'agent', 'Running')
  await ownedPod(api, ds, 'agent-b', 'agent', 'Pending')
  await ownedPod(api, rc, 'agent-c', 'agent', 'Failed') // matches the selector, controlled by another: not counted
  await ownedPod(api, sts, 'db-0', 'db', 'Running')
  await ownedPod(api, rc, 'legacy-x', 'legacy', 'Succeeded')

  const d = await shoal(t, api, ['describe', 'daemonset', 'agent'])
  t.is(d.code, 0, d.stderr)
  t.regex(d.stdout, /\nSelector: +app=agent\nNode-Selector: +<none>\n/)
  t.regex(d.stdout, /\nDesired Number of Nodes Scheduled: 3\nCurrent Number of Nodes Scheduled: 2\nNumber of Nodes Scheduled with Up-to-date Pods: 2\n/)
  t.regex(d.stdout, /\nNumber of Nodes Scheduled with Available Pods: 1\nNumber of Nodes Misscheduled: 0\nPods Status: +1 Running \/ 1 Waiting \/ 0 Succeeded \/ 0 Failed\nPod Template:\n/)

  const s = await shoal(t, api, ['describe', 'sts', 'db'])
  t.regex(s.stdout, /\nSelector: +app=db\nReplicas: +3 desired \| 2 total\nUpdate Strategy: +RollingUpdate\n  Partition: +1\nPods Status: +1 Running \/ 0 Waiting \/ 0 Succeeded \/ 0 Failed\n/)

  const c = await shoal(t, api, ['describe', 'rc', 'legacy'])
  t.regex(c.stdout, /\nSelector: +app=legacy\nReplicas: +2 current \/ 2 desired\nPods Status: +0 Running \/ 0 Waiting \/ 1 Succeeded \/ 0 Failed\n/)
})

test('describe poddisruptionbudget: the budget, selector and status', async t => {
  const api = await startK8sTestApi(t)
  await workloads(api)
  const r = await shoal(t, api, ['describe', 'pdb', 'web'])
  t.is(r.code, 0, r.stderr)
  t.regex(r.stdout, /\nMin available: +2\nSelector: +app=web\nStatus:\n {4}Allowed disruptions: {2}1\n {4}Current: {14}3\n {4}Desired: {14}2\n {4}Total: {16}3\nEvents: +<none>\n$/)
})

test('the describe layout: values two spaces after the longest label of each run, times as RFC 1123', t => {
  t.is(alignTabs('Name:\tweb\nCreationTimestamp:\tx\nPod Template:\n  Labels:\ta=b\n\tc=d\n'), 'Name:               web\nCreationTimestamp:  x\nPod Template:\n  Labels:  a=b\n           c=d\n')
  t.is(timeText('2025-06-01T12:00:00Z'), 'Sun, 01 Jun 2025 12:00:00 +0000')
  t.is(timeText(undefined), '<unset>')
})
