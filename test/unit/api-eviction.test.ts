// The eviction subresource through the real API server over an in-process
// store: discovery lists pods/eviction as kubectl drain looks for it; a
// policy/v1 (or v1beta1) Eviction is a 201 Success; a budget at 0 is a 429
// with kube-apiserver's message and cause; the viewer may not evict; the
// body is checked as kube-apiserver checks it.
import { randomUUID } from 'node:crypto'
import { mkdtemp, rm } from 'node:fs/promises'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import test from 'ava'
import type { ExecutionContext } from 'ava'
import { pino } from 'pino'
import { rfc3339 } from '../../protocol/k8s.ts'
import { TokenStore } from '../../daemon/api/auth.ts'
import { createApiServer } from '../../daemon/api/server.ts'
import { bootstrapCommands, encodeStoreCommand, ResourceStore } from '../../daemon/store/store.ts'
import { StoreReplicator } from '../helpers/k8s-api.ts'

type Obj = Record<string, any>
interface Api { base: string, admin: string, viewer: string, store: ResourceStore }

async function startApi (t: ExecutionContext): Promise<Api> {
  const dir = await mkdtemp(join(tmpdir(), 'shoal-api-eviction-'))
  const tokens = await TokenStore.load(dir)
  const admin = await tokens.create()
  const viewer = tokens.getViewer() ?? ''
  const store = new ResourceStore()
  const raft = new StoreReplicator(store)
  for (const c of bootstrapCommands(rfc3339(Date.now()), [randomUUID(), randomUUID(), randomUUID(), randomUUID()])) await raft.propose(encodeStoreCommand(c))
  const server = createApiServer({ tokens, members: () => [], selfPeerId: 'peer-a', log: pino({ level: 'silent' }), raft, store })
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  t.teardown(async () => {
    server.closeAllConnections()
    await new Promise<void>(resolve => server.close(() => { resolve() }))
    await rm(dir, { recursive: true, force: true })
  })
  return { base: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, admin, viewer, store }
}

async function call (api: Api, method: string, path: string, body?: unknown, token = api.admin): Promise<{ status: number, body: Obj, headers: Headers }> {
  const res = await fetch(`${api.base}${path}`, {
    method,
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
    signal: AbortSignal.timeout(10_000)
  })
  return { status: res.status, body: await res.json() as Obj, headers: res.headers }
}

const PODS = '/api/v1/namespaces/default/pods'

async function readyPod (api: Api, name: string): Promise<void> {
  const created = await call(api, 'POST', PODS, { apiVersion: 'v1', kind: 'Pod', metadata: { name, labels: { app: 'web' } }, spec: { nodeName: 'n1', containers: [{ name: 'main', image: 'busybox' }] } })
  if (created.status !== 201) throw new Error(JSON.stringify(created.body))
  const status = await call(api, 'PUT', `${PODS}/${name}/status`, { ...created.body, status: { phase: 'Running', conditions: [{ type: 'Ready', status: 'True' }] } })
  if (status.status !== 200) throw new Error(JSON.stringify(status.body))
}

async function budget (api: Api, allowed: number): Promise<void> {
  const created = await call(api, 'POST', '/apis/policy/v1/namespaces/default/poddisruptionbudgets', { apiVersion: 'policy/v1', kind: 'PodDisruptionBudget', metadata: { name: 'web' }, spec: { minAvailable: 2, selector: { matchLabels: { app: 'web' } } } })
  if (created.status !== 201) throw new Error(JSON.stringify(created.body))
  const status = await call(api, 'PUT', '/apis/policy/v1/namespaces/default/poddisruptionbudgets/web/status', {
    ...created.body, status: { disruptionsAllowed: allowed, currentHealthy: 2 + allowed, desiredHealthy: 2, expectedPods: 2 + allowed, observedGeneration: 1 }
  })
  if (status.status !== 200) throw new Error(JSON.stringify(status.body))
}

function eviction (name: string, apiVersion = 'policy/v1', deleteOptions?: Obj): Obj {
  return { apiVersion, kind: 'Eviction', metadata: { name, namespace: 'default' }, ...(deleteOptions !== undefined ? { deleteOptions } : {}) }
}

test('discovery lists pods/eviction with the group, version and kind kubectl drain looks for', async t => {
  const api = await startApi(t)
  const r = await call(api, 'GET', '/api/v1')
  const sub = (r.body.resources as Obj[]).find(x => x.name === 'pods/eviction')
  t.deepEqual(sub, { name: 'pods/eviction', singularName: '', namespaced: true, group: 'policy', version: 'v1', kind: 'Eviction', verbs: ['create'] })
})

test('an allowed eviction is a 201 Success; the next one, at 0, is a 429 naming the budget', async t => {
  const api = await startApi(t)
  for (const n of ['a', 'b', 'c']) await readyPod(api, n)
  await budget(api, 1)
  const ok = await call(api, 'POST', `${PODS}/a/eviction`, eviction('a'))
  t.is(ok.status, 201)
  t.deepEqual(ok.body, { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Success' })
  t.is((await call(api, 'GET', `${PODS}/a`)).status, 404)
  const refused = await call(api, 'POST', `${PODS}/b/eviction`, eviction('b', 'policy/v1beta1'))
  t.is(refused.status, 429)
  t.like(refused.body, { kind: 'Status', status: 'Failure', reason: 'TooManyRequests', code: 429, message: "Cannot evict pod as it would violate the pod's disruption budget." })
  t.deepEqual(refused.body.details?.causes, [{ reason: 'DisruptionBudget', message: 'The disruption budget web needs 2 healthy pods and has 3 currently' }])
  t.is((await call(api, 'GET', `${PODS}/b`)).status, 200)
  const pdb = await call(api, 'GET', '/apis/policy/v1/namespaces/default/poddisruptionbudgets/web')
  t.is(pdb.body.status.disruptionsAllowed, 0)
  t.deepEqual(Object.keys(pdb.body.status.disruptedPods), ['a'])
})

test('dry runs evict nothing; the viewer may not evict; bad requests are refused', async t => {
  const api = await startApi(t)
  await readyPod(api, 'a')
  t.is((await call(api, 'POST', `${PODS}/a/eviction?dryRun=All`, eviction('a'))).status, 201)
  t.is((await call(api, 'POST', `${PODS}/a/eviction`, eviction('a', 'policy/v1', { dryRun: ['All'] }))).status, 201)
  t.is((await call(api, 'GET', `${PODS}/a`)).status, 200)
  const viewer = await call(api, 'POST', `${PODS}/a/eviction`, eviction('a'), api.viewer)
  t.is(viewer.status, 403)
  t.is((await call(api, 'POST', `${PODS}/a/eviction`, eviction('b'))).body.message, 'name in URL does not match name in Eviction object')
  t.is((await call(api, 'POST', `${PODS}/a/eviction`, { ...eviction('a'), kind: 'Pod' })).status, 400)
  t.is((await call(api, 'POST', `${PODS}/a/eviction`, eviction('a', 'policy/v1', { gracePeriodSeconds: -3 }))).status, 400)
  t.is((await call(api, 'GET', `${PODS}/a/eviction`)).status, 405)
  t.is((await call(api, 'POST', '/api/v1/namespaces/default/configmaps/x/eviction', eviction('x'))).status, 404)
  t.is((await call(api, 'POST', `${PODS}/missing/eviction`, eviction('missing'))).status, 404)
  const precondition = await call(api, 'POST', `${PODS}/a/eviction`, eviction('a', 'policy/v1', { preconditions: { uid: 'not-it' } }))
  t.is(precondition.status, 409)
  t.is((await call(api, 'GET', `${PODS}/a`)).status, 200)
  t.is((await call(api, 'POST', `${PODS}/a/eviction`, eviction('a', 'policy/v1', { gracePeriodSeconds: 0 }))).status, 201)
  t.is((await call(api, 'GET', `${PODS}/a`)).status, 404)
})

test('a budget the controller has not seen since its spec changed asks the client to retry', async t => {
  const api = await startApi(t)
  await readyPod(api, 'a')
  await budget(api, 1)
  const res = await fetch(`${api.base}/apis/policy/v1/namespaces/default/poddisruptionbudgets/web`, {
    method: 'PATCH', headers: { authorization: `Bearer ${api.admin}`, 'content-type': 'application/merge-patch+json' }, body: JSON.stringify({ spec: { minAvailable: 1 } })
  })
  t.is(res.status, 200)
  const r = await call(api, 'POST', `${PODS}/a/eviction`, eviction('a'))
  t.is(r.status, 429)
  t.is(r.headers.get('retry-after'), '10')
})
