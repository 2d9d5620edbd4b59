// Server-side printing: which Accept headers get a Table, the columns and
// cells per kind (priority 1 for -o wide), includeObject, and Tables over
// the real API (list, get, and a watch whose first event carries the columns).
import { kindOf } from '../../protocol/kinds.ts'
import test from 'ava'
import type { KObject } from '../../protocol/k8s.ts'
import type { Kind } from '../../protocol/kinds.ts'
import { includeObjectOf, tableAccept, toTable } from '../../daemon/api/table.ts'
import { startK8sTestApi } from '../helpers/k8s-api.ts'

const KUBECTL_ACCEPT = 'application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json'
const NOW = Date.parse('2025-01-01T01:00:00Z')
const type = (apiVersion: string, kind: string): Kind => {
  const k = kindOf(apiVersion, kind)
  if (k === undefined) throw new Error(`no kind ${apiVersion} ${kind}`)
  return k
}

const pod: KObject = {
  apiVersion: 'v1',
  kind: 'Pod',
  metadata: { name: 'web-1', namespace: 'default', creationTimestamp: '2025-01-01T00:55:00Z', uid: 'u1', labels: { app: 'web' } },
  spec: { nodeName: 'p2', containers: [{ name: 'a', image: 'x' }, { name: 'b', image: 'y' }] },
  status: {
    phase: 'Running',
    podIP: '127.1.0.5',
    containerStatuses: [{ name: 'a', ready: true, restartCount: 2, state: { running: {} } }, { name: 'b', ready: false, restartCount: 1, state: { waiting: { reason: 'CrashLoopBackOff' } } }]
  }
}

test('the Accept header decides: kubectl\'s preference list gets a v1 Table, plain JSON does not', t => {
  t.is(tableAccept(KUBECTL_ACCEPT), 'v1')
  t.is(tableAccept('application/json;as=Table;v=v1beta1;g=meta.k8s.io, application/json'), 'v1beta1')
  t.is(tableAccept('application/json'), undefined)
  t.is(tableAccept(undefined), undefined)
  t.is(tableAccept('application/json, application/json;as=Table;v=v1;g=meta.k8s.io'), undefined, 'the first acceptable range wins')
  t.is(tableAccept('application/json;as=PartialObjectMetadataList;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1;g=meta.k8s.io'), 'v1', 'a range Shoal cannot serve is skipped')
  t.is(includeObjectOf(null), 'Metadata')
  t.is(includeObjectOf('None'), 'None')
  t.is(includeObjectOf('Everything'), undefined)
})

test('pods: NAME READY STATUS RESTARTS AGE, then the wide columns at priority 1', t => {
  const table = toTable(type('v1', 'Pod'), [pod], { now: NOW, includeObject: 'Metadata', resourceVersion: '42' })
  t.is(table.kind, 'Table')
  t.is(table.apiVersion, 'meta.k8s.io/v1')
  t.deepEqual(table.metadata, { resourceVersion: '42' })
  t.deepEqual(table.columnDefinitions.map(c => [c.name.toUpperCase(), c.priority]), [
    ['NAME', 0], ['READY', 0], ['STATUS', 0], ['RESTARTS', 0], ['AGE', 0], ['IP', 1], ['NODE', 1], ['NOMINATED NODE', 1], ['READINESS GATES', 1]
  ])
  t.is(table.columnDefinitions[0]?.format, 'name')
  t.deepEqual(table.rows[0]?.cells, ['web-1', '1/2', 'CrashLoopBackOff', 3, '5m', '127.1.0.5', 'p2', '<none>', '<none>'])
  t.deepEqual(table.rows[0]?.object, { kind: 'PartialObjectMetadata', apiVersion: 'meta.k8s.io/v1', metadata: pod.metadata })
  t.deepEqual(toTable(type('v1', 'Pod'), [pod], { now: NOW, includeObject: 'Object' }).rows[0]?.object, pod)
  t.false('object' in (toTable(type('v1', 'Pod'), [pod], { now: NOW, includeObject: 'None' }).rows[0] ?? {}))
  t.deepEqual(toTable(type('v1', 'Pod'), [pod], { now: NOW, includeObject: 'None', withColumns: false }).columnDefinitions, [])
})

test('deployments, services, nodes, configmaps and events have kubectl\'s columns', t => {
  const names = (kind: string, apiVersion = 'v1'): string[] => toTable(type(apiVersion, kind), [], { now: NOW, includeObject: 'None' }).columnDefinitions.filter(c => c.priority === 0).map(c => c.name.toUpperCase())
  t.deepEqual(names('Deployment', 'apps/v1'), ['NAME', 'READY', 'UP-TO-DATE', 'AVAILABLE', 'AGE'])
  t.deepEqual(names('ReplicaSet', 'apps/v1'), ['NAME', 'DESIRED', 'CURRENT', 'READY', 'AGE'])
  t.deepEqual(names('Service'), ['NAME', 'TYPE', 'CLUSTER-IP', 'EXTERNAL-IP', 'PORT(S)', 'AGE'])
  t.deepEqual(names('Endpoints'), ['NAME', 'ENDPOINTS', 'AGE'])
  t.deepEqual(names('Node'), ['NAME', 'STATUS', 'ROLES', 'AGE', 'VERSION'])
  t.deepEqual(names('Namespace'), ['NAME', 'STATUS', 'AGE'])
  t.deepEqual(names('ConfigMap'), ['NAME', 'DATA', 'AGE'])
  t.deepEqual(names('Secret'), ['NAME', 'TYPE', 'DATA', 'AGE'])
  t.deepEqual(names('Event'), ['LAST SEEN', 'TYPE', 'REASON', 'OBJECT', 'MESSAGE'])

  const deploy: KObject = {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name: 'web', creationTimestamp: '2025-01-01T00:00:00Z' },
    spec: { replicas: 3, selector: { matchLabels: { app: 'web' } }, template: { spec: { containers: [{ name: 'web', image: 'nginx' }, { name: 'log', image: 'fluent' }] } } },
    status: { readyReplicas: 2, updatedReplicas: 3, availableReplicas: 2 }
  }
  t.deepEqual(toTable(type('apps/v1', 'Deployment'), [deploy], { now: NOW, includeObject: 'None' }).rows[0]?.cells, ['web', '2/3', 3, 2, '1h', 'web,log', 'nginx,fluent', 'app=web'])
  const svc: KObject = {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name: 'web', creationTimestamp: '2025-01-01T00:59:30Z' },
    spec: { type: 'NodePort', clusterIP: '10.0.0.7', ports: [{ port: 80, nodePort: 30080, protocol: 'TCP' }, { port: 53, protocol: 'UDP' }], selector: { app: 'web' } }
  }
  t.deepEqual(toTable(type('v1', 'Service'), [svc], { now: NOW, includeObject: 'None' }).rows[0]?.cells, ['web', 'NodePort', '10.0.0.7', '<none>', '80:30080/TCP,53/UDP', '30s', 'app=web'])
  const node: KObject = {
    apiVersion: 'v1',
    kind: 'Node',
    metadata: { name: 'p1', creationTimestamp: '2024-12-30T01:00:00Z', labels: { 'node-role.kubernetes.io/worker': '' } },
    spec: { unschedulable: true },
    status: { conditions: [{ type: 'Ready', status: 'True' }], nodeInfo: { kubeletVersion: 'shoal-0.1.0' }, addresses: [{ type: 'InternalIP', address: '127.0.0.2' }] }
  }
  t.deepEqual(toTable(type('v1', 'Node'), [node], { now: NOW, includeObject: 'None' }).rows[0]?.cells.slice(0, 6), ['p1', 'Ready,SchedulingDisabled', 'worker', '2d', 'shoal-0.1.0', '127.0.0.2'])
})

async function tableGet (url: string, token: string, path: string, accept = KUBECTL_ACCEPT): Promise<any> {
  const res = await fetch(`${url}${path}`, { headers: { authorization: `Bearer ${token}`, accept } })
  return { status: res.status, body: await res.json() }
}

test('the API answers list, get and watch with Tables when asked', async t => {
  const api = await startK8sTestApi(t)
  const post = await fetch(`${api.plainUrl}/api/v1/namespaces/default/configmaps`, {
    method: 'POST',
    headers: { authorization: `Bearer ${api.token}`, 'content-type': 'application/json' },
    body: JSON.stringify({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'one' }, data: { a: '1', b: '2' } })
  })
  t.is(post.status, 201)

  const list = await tableGet(api.plainUrl, api.token, '/api/v1/namespaces/default/configmaps')
  t.is(list.body.kind, 'Table')
  t.deepEqual(list.body.rows.map((r: any) => r.cells.slice(0, 2)), [['one', 2]])
  t.is(list.body.rows[0].object.kind, 'PartialObjectMetadata')
  t.is(list.body.rows[0].object.metadata.name, 'one')
  const full = await tableGet(api.plainUrl, api.token, '/api/v1/namespaces/default/configmaps/one?includeObject=Object')
  t.deepEqual(full.body.rows[0].object.data, { a: '1', b: '2' })
  const plain = await tableGet(api.plainUrl, api.token, '/api/v1/namespaces/default/configmaps/one', 'application/json')
  t.is(plain.body.kind, 'ConfigMap')
  const bad = await tableGet(api.plainUrl, api.token, '/api/v1/namespaces/default/configmaps?includeObject=All')
  t.is(bad.status, 400)
  const missing = await tableGet(api.plainUrl, api.token, '/api/v1/namespaces/default/configmaps/nope')
  t.is(missing.status, 404)
  t.is(missing.body.kind, 'Status')

  // A watch from the list's resourceVersion: each event a one-row Table, columns on the first only.
  const controller = new AbortController()
  const res = await fetch(`${api.plainUrl}/api/v1/namespaces/default/configmaps?watch=1&resourceVersion=${String(list.body.metadata.resourceVersion)}`, {
    headers: { authorization: `Bearer ${api.token}`, accept: KUBECTL_ACCEPT },
    signal: controller.signal
  })
  const events: any[] = []
  const reading = (async () => {
    let buffered = ''
    try {
      for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
        buffered += Buffer.from(chunk).toString('utf8')
        const lines = buffered.split('\n')
        buffered = lines.pop() ?? ''
        for (const line of lines) if (line !== '') events.push(JSON.parse(line))
      }
    } catch {}
  })()
  for (const name of ['two', 'three']) {
    await fetch(`${api.plainUrl}/api/v1/namespaces/default/configmaps`, {
      method: 'POST',
      headers: { authorization: `Bearer ${api.token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name }, data: { a: '1' } })
    })
  }
  const deadline = Date.now() + 10_000
  while (events.length < 2 && Date.now() < deadline) await new Promise(resolve => setTimeout(resolve, 20))
  controller.abort()
  await reading
  t.deepEqual(events.map(e => [e.type, e.object.kind, e.object.rows.length, e.object.rows[0].cells[0], e.object.columnDefinitions.length > 0]), [
    ['ADDED', 'Table', 1, 'two', true],
    ['ADDED', 'Table', 1, 'three', false]
  ])
})
