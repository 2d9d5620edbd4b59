// The kubectl-like commands of `shoal` run in-process against the in-memory
// Kubernetes-layout fake server (test/helpers/fake-k8s.ts): what they send,
// what they print, and their exit statuses.
import { NAMESPACE } from '../../protocol/kinds.ts'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import test from 'ava'
import type { ExecutionContext } from 'ava'
import { parse } from 'yaml'
import type { KObject } from '../../protocol/k8s.ts'
import { main } from '../../cli/main.ts'
import { startFakeK8s } from '../helpers/fake-k8s.ts'
import type { FakeK8s } from '../helpers/fake-k8s.ts'

const NOW = Date.parse('2025-06-01T12:00:00Z')
const ago = (ms: number): string => new Date(NOW - ms).toISOString().replace(/\.\d+Z$/, 'Z')

interface Run { code: number, stdout: string, stderr: string }

async function tempDir (t: ExecutionContext): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'shoal-cli-k8s-'))
  t.teardown(async () => { await rm(dir, { recursive: true, force: true }) })
  return dir
}

/** Runs `shoal` against the fake; `onStdout` sees the output so far after each write. */
async function shoal (t: ExecutionContext, fake: FakeK8s, argv: string[], signal?: AbortSignal, onStdout?: (out: string) => void): Promise<Run> {
  const dir = await tempDir(t)
  let stdout = ''
  let stderr = ''
  const code = await main(['--server', fake.url, '--token', fake.token, ...argv], {
    stdout: { write: (s: string) => { stdout += s; onStdout?.(stdout) } },
    stderr: { write: (s: string) => { stderr += s } },
    env: { SHOAL_CONFIG: join(dir, 'config.json') },
    now: () => NOW,
    ...(signal !== undefined ? { signal } : {})
  })
  return { code, stdout, stderr }
}

function pod (name: string, over: Partial<KObject> & { node?: string, ip?: string, ns?: string, labels?: Record<string, string> } = {}): KObject {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, namespace: over.ns ?? 'default', creationTimestamp: ago(5 * 60_000), ...(over.labels !== undefined ? { labels: over.labels } : {}) },
    spec: { containers: [{ name: 'app', image: 'nginx:1.27' }], ...(over.node !== undefined ? { nodeName: over.node } : {}) },
    status: { phase: 'Running', ...(over.ip !== undefined ? { podIP: over.ip } : {}), containerStatuses: [{ name: 'app', ready: true, restartCount: 2 }] }
  }
}

function deployment (name: string, replicas: number, status: Record<string, unknown> = {}, image = 'nginx:1.27'): KObject {
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name, namespace: 'default', creationTimestamp: ago(2 * 3_600_000) },
    spec: { replicas, selector: { matchLabels: { app: name } }, template: { metadata: { labels: { app: name } }, spec: { containers: [{ name: 'app', image }] } } },
    status
  }
}

const MANIFESTS = `apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: 2
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
      - name: app
        image: nginx:1.27
---
apiVersion: v1
kind: Service
metadata:
  name: web
  namespace: prod
spec:
  selector: {app: web}
  ports:
  - port: 80
    protocol: TCP
`

test('apply creates, then reports unchanged, then configures with a strategic merge patch', async t => {
  const fake = await startFakeK8s(t)
  const dir = await tempDir(t)
  const file = join(dir, 'app.yaml')
  await writeFile(file, MANIFESTS)
  const first = await shoal(t, fake, ['apply', '-f', file])
  t.deepEqual(first, { code: 0, stdout: 'deployment.apps/web created\nservice/web created\n', stderr: '' })
  t.is(fake.get('deployments', 'default', 'web')?.metadata.namespace, 'default', 'namespaced kinds default to "default"')
  t.truthy(fake.get('services', 'prod', 'web'), 'the manifest\'s namespace wins')
  t.deepEqual(fake.requests.filter(r => r.method === 'POST').map(r => r.path), ['/apis/apps/v1/namespaces/default/deployments', '/api/v1/namespaces/prod/services'])

  const again = await shoal(t, fake, ['apply', '-f', file])
  t.deepEqual(again, { code: 0, stdout: 'deployment.apps/web unchanged\nservice/web unchanged\n', stderr: '' })

  await writeFile(file, MANIFESTS.replace('replicas: 2', 'replicas: 4'))
  fake.requests.length = 0
  const changed = await shoal(t, fake, ['apply', '-f', dir])
  t.deepEqual(changed, { code: 0, stdout: 'deployment.apps/web configured\nservice/web unchanged\n', stderr: '' })
  const patch = fake.requests.find(r => r.method === 'PATCH')
  t.is(patch?.path, '/apis/apps/v1/namespaces/default/deployments/web')
  t.is(patch?.contentType, 'application/strategic-merge-patch+json')
  t.is(fake.get('deployments', 'default', 'web')?.spec !== undefined && (fake.get('deployments', 'default', 'web')?.spec as { replicas: number }).replicas, 4)
})

test('apply of a kind Shoal does not know names it and the file, goes on with the rest, and exits 1', async t => {
  const fake = await startFakeK8s(t)
  const dir = await tempDir(t)
  const file = join(dir, 'mixed.yaml')
  await writeFile(file, `apiVersion: example.com/v1\nkind: Widget\nmetadata: {name: w}\n---\napiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: ConfigMap\n  metadata: {name: settings}\n  data: {a: "1"}\n`)
  const r = await shoal(t, fake, ['apply', '-f', file])
  t.is(r.code, 1)
  t.is(r.stdout, 'configmap/settings created\n')
  t.is(r.stderr, `shoal: ${file}: no kind "Widget" in version "example.com/v1" is known to Shoal (object "w")\n`)
  t.truthy(fake.get('configmaps', 'default', 'settings'))
})

test('bad YAML is one line with its line number; a missing -f or file is one line too', async t => {
  const fake = await startFakeK8s(t)
  const dir = await tempDir(t)
  const file = join(dir, 'bad.yaml')
  await writeFile(file, 'apiVersion: v1\nkind: Pod\nmetadata:\n  name: [unclosed\n')
  const r = await shoal(t, fake, ['apply', '-f', file])
  t.is(r.code, 1)
  t.regex(r.stderr, /^shoal: .*bad\.yaml: .*line \d+, column \d+[^\n]*\n$/)
  t.is(fake.requests.length, 0)

  const missing = await shoal(t, fake, ['apply'])
  t.deepEqual(missing, { code: 2, stdout: '', stderr: 'shoal: -f FILE is required (a file, a directory, or - for standard input)\n' })
  const absent = await shoal(t, fake, ['apply', '-f', join(dir, 'nope.yaml')])
  t.is(absent.code, 1)
  t.is(absent.stderr, `shoal: cannot read ${join(dir, 'nope.yaml')}: no such file or directory\n`)
})

test('get prints kubectl\'s tables for pods, deployments, services and nodes', async t => {
  const fake = await startFakeK8s(t)
  fake.put(pod('web-1', { node: 'n1', ip: '10.1.0.5' }))
  fake.put(deployment('web', 3, { readyReplicas: 2, updatedReplicas: 3, availableReplicas: 2 }))
  fake.put({ apiVersion: 'v1', kind: 'Service', metadata: { name: 'web', namespace: 'default', creationTimestamp: ago(3 * 86_400_000) }, spec: { type: 'NodePort', clusterIP: '10.96.0.10', ports: [{ port: 80, nodePort: 30080, protocol: 'TCP' }] } })
  fake.put({ apiVersion: 'v1', kind: 'Node', metadata: { name: 'n1', creationTimestamp: ago(40_000), labels: { 'node-role.kubernetes.io/worker': '' } }, spec: { unschedulable: true }, status: { conditions: [{ type: 'Ready', status: 'True' }], nodeInfo: { kubeletVersion: 'shoal-0.1.0' } } })

  t.deepEqual((await shoal(t, fake, ['get', 'po'])).stdout.split('\n'), [
    'NAME    READY   STATUS    RESTARTS   AGE',
    'web-1   1/1     Running   2          5m',
    ''
  ])
  // -o wide: kubectl's wide columns, from the kind registry (the API's Tables serve the same ones)
  t.deepEqual((await shoal(t, fake, ['get', 'pods', '-o', 'wide'])).stdout.split('\n'), [
    'NAME    READY   STATUS    RESTARTS   AGE   IP         NODE   NOMINATED NODE   READINESS GATES',
    'web-1   1/1     Running   2          5m    10.1.0.5   n1     <none>           <none>',
    ''
  ])
  t.deepEqual((await shoal(t, fake, ['get', 'deploy'])).stdout.split('\n'), [
    'NAME   READY   UP-TO-DATE   AVAILABLE   AGE',
    'web    2/3     3            2           2h',
    ''
  ])
  t.deepEqual((await shoal(t, fake, ['get', 'svc'])).stdout.split('\n'), [
    'NAME   TYPE       CLUSTER-IP   EXTERNAL-IP   PORT(S)        AGE',
    'web    NodePort   10.96.0.10   <none>        80:30080/TCP   3d',
    ''
  ])
  t.deepEqual((await shoal(t, fake, ['get', 'no'])).stdout.split('\n'), [
    'NAME   STATUS                     ROLES    AGE   VERSION',
    'n1     Ready,SchedulingDisabled   worker   40s   shoal-0.1.0',
    ''
  ])
  t.is(fake.requests.find(r => r.path === '/api/v1/nodes')?.method, 'GET', 'nodes are listed cluster-wide')
})

test('get -o json, yaml and name; kind/name; several kinds', async t => {
  const fake = await startFakeK8s(t)
  fake.put(pod('web-1'))
  fake.put(pod('web-2'))
  fake.put(deployment('web', 1))
  const one = await shoal(t, fake, ['get', 'pod/web-1', '-o', 'json'])
  t.is(one.code, 0)
  const obj = JSON.parse(one.stdout)
  t.like(obj, { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'web-1', namespace: 'default' } })
  const list = parse((await shoal(t, fake, ['get', 'pods', '-o', 'yaml'])).stdout)
  t.is(list.kind, 'List')
  t.deepEqual(list.items.map((i: KObject) => `${i.kind}/${i.metadata.name ?? ''}`), ['Pod/web-1', 'Pod/web-2'])
  t.deepEqual(await shoal(t, fake, ['get', 'pods,deploy', '-o', 'name']), { code: 0, stdout: 'pod/web-1\npod/web-2\ndeployment.apps/web\n', stderr: '' })
  const both = await shoal(t, fake, ['get', 'pod/web-2', 'deploy/web'])
  t.regex(both.stdout, /^NAME +READY +STATUS[^\n]*\npod\/web-2 [^\n]*\n\nNAME +READY +UP-TO-DATE[^\n]*\ndeployment\.apps\/web /)
  const missing = await shoal(t, fake, ['get', 'pod', 'web-1', 'ghost'])
  t.is(missing.code, 1)
  t.regex(missing.stdout, /^NAME[^\n]*\nweb-1 /)
  t.is(missing.stderr, 'shoal: pods "ghost" not found\n')
})

test('get -A adds NAMESPACE and lists across namespaces; -l and --field-selector are passed on; empty says so', async t => {
  const fake = await startFakeK8s(t)
  fake.put(pod('a', { ns: 'prod', labels: { app: 'web' } }))
  fake.put(pod('b', { ns: 'default', labels: { app: 'db' } }))
  const all = await shoal(t, fake, ['get', 'pods', '-A'])
  t.deepEqual(all.stdout.split('\n').map(l => l.split(/\s+/).slice(0, 2).join(' ')), ['NAMESPACE NAME', 'default b', 'prod a', ''])
  t.truthy(fake.requests.find(r => r.path === '/api/v1/pods'))
  const labelled = await shoal(t, fake, ['get', 'pods', '-A', '-l', 'app=web', '--field-selector', 'metadata.namespace=prod'])
  t.regex(labelled.stdout, /\nprod +a /)
  t.notRegex(labelled.stdout, /default/)
  const req = fake.requests.at(-1)
  t.is(req?.query.get('labelSelector'), 'app=web')
  t.is(req?.query.get('fieldSelector'), 'metadata.namespace=prod')
  t.deepEqual(await shoal(t, fake, ['get', 'pods', '-n', 'empty']), { code: 0, stdout: '', stderr: 'No resources found in empty namespace.\n' })
})

test('unknown kinds and bad -o are usage errors (exit 2) before any request', async t => {
  const fake = await startFakeK8s(t)
  t.deepEqual(await shoal(t, fake, ['get', 'widgets']), { code: 2, stdout: '', stderr: 'shoal: the server doesn\'t have a resource type "widgets"\n' })
  t.deepEqual(await shoal(t, fake, ['get', 'pods', '-o', 'xml']), { code: 2, stdout: '', stderr: 'shoal: -o must be wide, json, yaml or name, not "xml"\n' })
  t.is((await shoal(t, fake, ['delete', 'gizmo', 'x'])).code, 2)
  t.is((await shoal(t, fake, ['scale', 'pod/x', '--replicas', '2'])).code, 2)
  t.is(fake.requests.length, 0)
})

test('get -w prints a row for each change until aborted', async t => {
  const fake = await startFakeK8s(t)
  fake.put(pod('web-1'))
  const abort = new AbortController()
  // Ends the watch (as Ctrl-C would) once the change has been printed.
  const run = shoal(t, fake, ['get', 'pods', '-w'], abort.signal, out => { if (out.includes('Failed')) abort.abort() })
  await fake.nextWatch()
  fake.put({ ...pod('web-1'), status: { phase: 'Failed', containerStatuses: [] } })
  const r = await run
  t.is(r.code, 0)
  t.regex(r.stdout, /^NAME +READY[^\n]*\nweb-1 +1\/1 +Running[^\n]*\nweb-1 +0\/1 +Failed /)
  t.is(fake.requests.at(-1)?.query.get('watch'), '1')
})

test('describe shows metadata, kind fields and the object\'s events, filtering them itself when the server cannot', async t => {
  const fake = await startFakeK8s(t)
  fake.put({ ...pod('web-1', { node: 'n1', labels: { app: 'web' } }) })
  const event = (name: string, obj: string, reason: string, message: string): KObject => ({
    apiVersion: 'v1', kind: 'Event', metadata: { name, namespace: 'default' }, involvedObject: { kind: 'Pod', name: obj, namespace: 'default' },
    type: 'Normal', reason, message, lastTimestamp: ago(30_000), source: { component: 'scheduler' }
  })
  fake.put(event('e1', 'web-1', 'Scheduled', 'Successfully assigned default/web-1 to n1'))
  fake.put(event('e2', 'other', 'Pulled', 'not about web-1'))
  const r = await shoal(t, fake, ['describe', 'pod', 'web-1'])
  t.is(r.code, 0)
  t.regex(r.stdout, /^Name: +web-1\nNamespace: +default\nLabels: +app=web\nAnnotations: +<none>\n/)
  t.regex(r.stdout, /Node: +n1\n/)
  t.regex(r.stdout, /Image: +nginx:1\.27/)
  t.regex(r.stdout, /Events:\n  Type +Reason +Age +From +Message\n  Normal +Scheduled +30s +scheduler +Successfully assigned default\/web-1 to n1\n$/)
  t.is(fake.requests.find(r => r.path === '/api/v1/namespaces/default/events')?.query.get('fieldSelector'), 'involvedObject.name=web-1,involvedObject.kind=Pod,involvedObject.namespace=default')

  fake.rejectFieldSelectors.add('involvedObject.name')
  const fallback = await shoal(t, fake, ['describe', 'pods/web-1'])
  t.is(fallback.code, 0)
  t.regex(fallback.stdout, /Scheduled/)
  t.notRegex(fallback.stdout, /not about web-1/)
})

test('delete by name, with --cascade, and from a manifest', async t => {
  const fake = await startFakeK8s(t)
  fake.put(pod('web-1'))
  fake.put(deployment('web', 1))
  t.deepEqual(await shoal(t, fake, ['delete', 'pod', 'web-1', 'ghost']), { code: 1, stdout: 'pod "web-1" deleted\n', stderr: 'shoal: pods "ghost" not found\n' })
  t.is(fake.get('pods', 'default', 'web-1'), undefined)
  t.is(fake.requests.find(r => r.method === 'DELETE')?.query.get('propagationPolicy'), 'Background')
  const dir = await tempDir(t)
  await writeFile(join(dir, 'd.json'), JSON.stringify(deployment('web', 1)))
  t.deepEqual(await shoal(t, fake, ['delete', '-f', join(dir, 'd.json'), '--cascade=foreground']), { code: 0, stdout: 'deployment.apps "web" deleted\n', stderr: '' })
  t.is(fake.requests.at(-1)?.query.get('propagationPolicy'), 'Foreground')
  t.is(fake.get('deployments', 'default', 'web'), undefined)
})

test('scale patches the scale subresource; create namespace; cordon, uncordon and drain', async t => {
  const fake = await startFakeK8s(t)
  fake.put(deployment('web', 1))
  t.deepEqual(await shoal(t, fake, ['scale', 'deploy/web', '--replicas', '5']), { code: 0, stdout: 'deployment.apps/web scaled\n', stderr: '' })
  const req = fake.requests.at(-1)
  t.deepEqual([req?.method, req?.path, req?.contentType, req?.body], ['PATCH', '/apis/apps/v1/namespaces/default/deployments/web/scale', 'application/merge-patch+json', { spec: { replicas: 5 } }])
  t.is((fake.get('deployments', 'default', 'web')?.spec as { replicas: number }).replicas, 5)

  t.deepEqual(await shoal(t, fake, ['create', 'namespace', 'prod']), { code: 0, stdout: 'namespace/prod created\n', stderr: '' })
  t.truthy(fake.get('namespaces', '', 'prod'))

  fake.put({ apiVersion: 'v1', kind: 'Node', metadata: { name: 'n1' }, spec: {} })
  fake.put(pod('on-n1', { node: 'n1', ns: 'prod' }))
  fake.put(pod('on-n2', { node: 'n2' }))
  t.deepEqual(await shoal(t, fake, ['cordon', 'n1']), { code: 0, stdout: 'node/n1 cordoned\n', stderr: '' })
  t.is((fake.get('nodes', '', 'n1')?.spec as { unschedulable?: boolean }).unschedulable, true)
  t.is(fake.requests.at(-1)?.contentType, 'application/merge-patch+json')
  t.deepEqual(await shoal(t, fake, ['cordon', 'n1']), { code: 0, stdout: 'node/n1 already cordoned\n', stderr: '' })
  t.deepEqual(await shoal(t, fake, ['uncordon', 'n1']), { code: 0, stdout: 'node/n1 uncordoned\n', stderr: '' })
  t.deepEqual(await shoal(t, fake, ['drain', 'n1']), { code: 0, stdout: 'node/n1 cordoned\npod/on-n1 deleted\nnode/n1 drained\n', stderr: '' })
  t.is(fake.get('pods', 'prod', 'on-n1'), undefined)
  t.truthy(fake.get('pods', 'default', 'on-n2'))
})

test('drain evicts through the eviction subresource, leaves DaemonSet and mirror pods, and gives up at --timeout naming the budget', async t => {
  const fake = await startFakeK8s(t)
  fake.evictions = true
  fake.put({ apiVersion: 'v1', kind: 'Node', metadata: { name: 'n1' }, spec: {} })
  fake.put(pod('web-1', { node: 'n1', labels: { app: 'web' } }))
  const ds = pod('agent-1', { node: 'n1' })
  ds.metadata.ownerReferences = [{ apiVersion: 'apps/v1', kind: 'DaemonSet', name: 'agent', uid: 'ds-uid', controller: true }]
  fake.put(ds)
  const mirror = pod('static-n1', { node: 'n1' })
  mirror.metadata.annotations = { 'kubernetes.io/config.mirror': 'x' }
  fake.put(mirror)
  const drained = await shoal(t, fake, ['drain', 'n1'])
  t.deepEqual(drained, { code: 0, stdout: 'node/n1 cordoned\npod/web-1 evicted\nnode/n1 drained\n', stderr: 'Warning: ignoring DaemonSet-managed Pods: default/agent-1\n' })
  t.is(fake.get('pods', 'default', 'web-1'), undefined)
  t.truthy(fake.get('pods', 'default', 'agent-1'))
  t.truthy(fake.get('pods', 'default', 'static-n1'))
  t.true(fake.requests.some(r => r.method === 'POST' && r.path === '/api/v1/namespaces/default/pods/web-1/eviction' && (r.body as { kind?: string }).kind === 'Eviction'))

  fake.put(pod('web-2', { node: 'n1', labels: { app: 'web' } }))
  fake.put({ apiVersion: 'policy/v1', kind: 'PodDisruptionBudget', metadata: { name: 'web', namespace: 'default' }, spec: { minAvailable: 2, selector: { matchLabels: { app: 'web' } } }, status: { disruptionsAllowed: 0, currentHealthy: 2, desiredHealthy: 2, expectedPods: 2 } })
  fake.refuseEvictions.add('web-2')
  const refused = await shoal(t, fake, ['drain', 'n1', '--timeout', '1s'])
  t.is(refused.code, 1)
  t.regex(refused.stderr, /^Warning: ignoring DaemonSet-managed Pods: default\/agent-1\nshoal: drain n1: gave up after \d+ms \(--timeout\): pod default\/web-2 cannot be evicted: the disruption budget default\/web allows no disruption now \(it needs 2 healthy pods and has 2; 0 disruptions allowed\)\n$/)
  t.truthy(fake.get('pods', 'default', 'web-2'))
  t.is((await shoal(t, fake, ['drain', 'n1', '--timeout', 'soon'])).code, 2)
})

test('rollout status follows the deployment until it is rolled out', async t => {
  const fake = await startFakeK8s(t)
  const d = fake.put(deployment('web', 3, { observedGeneration: 1, replicas: 3, updatedReplicas: 3, availableReplicas: 1 }))
  const run = shoal(t, fake, ['rollout', 'status', 'deploy/web', '--timeout', '30s'])
  await fake.nextWatch()
  fake.put({ ...d, status: { observedGeneration: 1, replicas: 3, updatedReplicas: 3, availableReplicas: 2 } })
  fake.put({ ...d, status: { observedGeneration: 1, replicas: 3, updatedReplicas: 3, availableReplicas: 3 } })
  const r = await run
  t.deepEqual(r, {
    code: 0,
    stdout: 'Waiting for deployment "web" rollout to finish: 1 of 3 updated replicas are available...\n' +
      'Waiting for deployment "web" rollout to finish: 2 of 3 updated replicas are available...\n' +
      'deployment "web" successfully rolled out\n',
    stderr: ''
  })
})

test('rollout status exits 1 when --timeout passes first', async t => {
  const fake = await startFakeK8s(t)
  fake.put(deployment('web', 3, { observedGeneration: 1, replicas: 3, updatedReplicas: 1, availableReplicas: 1 }))
  const r = await shoal(t, fake, ['rollout', 'status', 'deploy/web', '--timeout', '300ms'])
  t.is(r.code, 1)
  t.is(r.stdout, 'Waiting for deployment "web" rollout to finish: 1 out of 3 new replicas have been updated...\n')
  t.is(r.stderr, 'shoal: timed out waiting for the condition\n')
})

test('rollout history lists the owned replica sets; undo patches the template back', async t => {
  const fake = await startFakeK8s(t)
  const d = fake.put(deployment('web', 2, {}, 'nginx:1.28'))
  const rs = (revision: number, image: string, owner: string | undefined): KObject => ({
    apiVersion: 'apps/v1',
    kind: 'ReplicaSet',
    metadata: {
      name: `web-${revision}`,
      namespace: 'default',
      labels: { app: 'web' },
      annotations: { 'deployment.kubernetes.io/revision': String(revision) },
      ownerReferences: [{ apiVersion: 'apps/v1', kind: 'Deployment', name: 'web', uid: owner ?? 'someone-else', controller: true }]
    },
    spec: { replicas: 0, template: { metadata: { labels: { app: 'web', 'pod-template-hash': `h${revision}` } }, spec: { containers: [{ name: 'app', image }] } } }
  })
  fake.put(rs(1, 'nginx:1.26', d.metadata.uid))
  fake.put(rs(2, 'nginx:1.27', d.metadata.uid))
  fake.put(rs(3, 'nginx:1.28', d.metadata.uid))
  fake.put({ ...rs(9, 'evil', undefined), metadata: { ...rs(9, 'evil', undefined).metadata, name: 'not-ours' } })
  t.deepEqual((await shoal(t, fake, ['rollout', 'history', 'deploy/web'])).stdout.split('\n'), [
    'deployment.apps/web', 'REVISION   CHANGE-CAUSE', '1          <none>', '2          <none>', '3          <none>', ''
  ])
  t.deepEqual(await shoal(t, fake, ['rollout', 'undo', 'deploy/web']), { code: 0, stdout: 'deployment.apps/web rolled back\n', stderr: '' })
  const template = (fake.get('deployments', 'default', 'web')?.spec as { template: { metadata: { labels: Record<string, string> }, spec: { containers: Array<{ image: string }> } } }).template
  t.is(template.spec.containers[0]?.image, 'nginx:1.27')
  t.deepEqual(template.metadata.labels, { app: 'web' }, 'no pod-template-hash')
  t.is(fake.requests.at(-1)?.contentType, 'application/merge-patch+json')
  t.is((await shoal(t, fake, ['rollout', 'undo', 'deploy/web', '--to-revision', '1'])).code, 0)
  t.is((fake.get('deployments', 'default', 'web')?.spec as { template: { spec: { containers: Array<{ image: string }> } } }).template.spec.containers[0]?.image, 'nginx:1.26')
  t.deepEqual(await shoal(t, fake, ['rollout', 'undo', 'deploy/web', '--to-revision', '7']), { code: 1, stdout: '', stderr: 'shoal: unable to find specified revision 7 in history\n' })
})

test('events prints kubectl get events\' table; the server\'s Status message is the error line', async t => {
  const fake = await startFakeK8s(t)
  fake.put({ apiVersion: 'v1', kind: 'Event', metadata: { name: 'e1', namespace: 'default' }, involvedObject: { kind: 'Pod', name: 'web-1' }, type: 'Warning', reason: 'BackOff', message: 'Back-off restarting', lastTimestamp: ago(90_000) })
  t.deepEqual((await shoal(t, fake, ['events'])).stdout.split('\n'), [
    'LAST SEEN   TYPE      REASON    OBJECT      MESSAGE',
    '1m          Warning   BackOff   pod/web-1   Back-off restarting',
    ''
  ])
  const bad = await main(['--server', fake.url, '--token', 'wrong', 'get', 'pods'], { stdout: { write: () => {} }, stderr: { write: s => { t.is(s, 'shoal: the server rejected the token (401): Unauthorized\n') } }, env: { SHOAL_CONFIG: '/nonexistent/shoal.json' } })
  t.is(bad, 1)
})
