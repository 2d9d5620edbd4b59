// The viewer token sees Secrets' metadata only (issue 14): the real API
// server over an in-process ResourceStore; gets, lists, watches and Tables
// hand the viewer Secrets without data, stringData or kubectl's
// last-applied annotation, while the admin reads them whole.
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
interface Api { base: string, admin: string, viewer: string }

const SECRET = {
  apiVersion: 'v1',
  kind: 'Secret',
  metadata: { name: 'creds', namespace: 'default', labels: { app: 'web' }, annotations: { note: 'kept', 'kubectl.kubernetes.io/last-applied-configuration': '{"data":{"password":"aHVudGVyMg=="}}' } },
  type: 'Opaque',
  data: { password: Buffer.from('hunter2').toString('base64') },
  stringData: { token: 'plain-text-token' }
}

async function startApi (t: ExecutionContext): Promise<Api> {
  const dir = await mkdtemp(join(tmpdir(), 'shoal-api-viewer-'))
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
  return { base: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, admin, viewer }
}

async function call (api: Api, token: string, method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<{ status: number, body: Obj }> {
  const res = await fetch(`${api.base}${path}`, {
    method,
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', ...headers },
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
    signal: AbortSignal.timeout(10_000)
  })
  return { status: res.status, body: await res.json() as Obj }
}

/** Reads a watch's events until `enough` says so (bounded by the timeout). */
async function watchUntil (api: Api, token: string, path: string, enough: (events: Obj[]) => boolean, during?: () => Promise<void>): Promise<Obj[]> {
  const controller = new AbortController()
  const timer = setTimeout(() => { controller.abort() }, 10_000)
  const res = await fetch(`${api.base}${path}`, { headers: { authorization: `Bearer ${token}` }, signal: controller.signal })
  const reader = res.body!.getReader()
  const events: Obj[] = []
  let buffered = ''
  let started = false
  try {
    while (!enough(events)) {
      const { value, done } = await reader.read()
      if (done) break
      buffered += Buffer.from(value).toString()
      const lines = buffered.split('\n')
      buffered = lines.pop() ?? ''
      for (const l of lines) if (l.trim() !== '') events.push(JSON.parse(l) as Obj)
      if (!started && during !== undefined) { started = true; await during() }
    }
  } finally {
    clearTimeout(timer)
    controller.abort()
  }
  return events
}

const secretFields = (o: Obj): Obj => ({ data: o.data, stringData: o.stringData, annotations: o.metadata?.annotations, type: o.type, name: o.metadata?.name })
const METADATA_ONLY = { data: undefined, stringData: undefined, annotations: { note: 'kept' }, type: 'Opaque', name: 'creds' }

test('the viewer gets and lists Secrets without data; the admin gets them whole', async t => {
  const api = await startApi(t)
  t.is((await call(api, api.admin, 'POST', '/api/v1/namespaces/default/secrets', SECRET)).status, 201)
  const whole = await call(api, api.admin, 'GET', '/api/v1/namespaces/default/secrets/creds')
  t.is(whole.body.data.password, SECRET.data.password)
  t.is(whole.body.data.token, Buffer.from('plain-text-token').toString('base64'))

  const one = await call(api, api.viewer, 'GET', '/api/v1/namespaces/default/secrets/creds')
  t.is(one.status, 200)
  t.deepEqual(secretFields(one.body), METADATA_ONLY)
  t.deepEqual(one.body.metadata.labels, { app: 'web' })
  for (const path of ['/api/v1/namespaces/default/secrets', '/api/v1/secrets', '/api/v1/secrets?labelSelector=app%3Dweb']) {
    const list = await call(api, api.viewer, 'GET', path)
    t.is(list.status, 200)
    t.is(list.body.items.length, 1, path)
    t.deepEqual(secretFields(list.body.items[0]), METADATA_ONLY, path)
  }
  // Other kinds are untouched.
  await call(api, api.admin, 'POST', '/api/v1/namespaces/default/configmaps', { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'cm' }, data: { a: '1' } })
  t.deepEqual((await call(api, api.viewer, 'GET', '/api/v1/namespaces/default/configmaps/cm')).body.data, { a: '1' })
  // The admin's reads are unchanged by the viewer's.
  t.is((await call(api, api.admin, 'GET', '/api/v1/namespaces/default/secrets')).body.items[0].data.password, SECRET.data.password)
})

test('the viewer\'s Tables carry Secrets without data', async t => {
  const api = await startApi(t)
  await call(api, api.admin, 'POST', '/api/v1/namespaces/default/secrets', SECRET)
  const accept = { accept: 'application/json;as=Table;v=v1;g=meta.k8s.io' }
  for (const path of ['/api/v1/namespaces/default/secrets?includeObject=Object', '/api/v1/namespaces/default/secrets/creds?includeObject=Object']) {
    const table = await call(api, api.viewer, 'GET', path, undefined, accept)
    t.is(table.body.kind, 'Table', path)
    t.deepEqual(secretFields(table.body.rows[0].object), METADATA_ONLY, path)
    t.false(JSON.stringify(table.body).includes(SECRET.data.password), path)
  }
})

test('the viewer\'s watches carry Secrets without data, for what is there and what changes', async t => {
  const api = await startApi(t)
  await call(api, api.admin, 'POST', '/api/v1/namespaces/default/secrets', SECRET)
  const newPassword = Buffer.from('correct horse').toString('base64')
  const events = await watchUntil(api, api.viewer, '/api/v1/namespaces/default/secrets?watch=1', evs => evs.some(e => e.type === 'DELETED'), async () => {
    t.is((await call(api, api.admin, 'PATCH', '/api/v1/namespaces/default/secrets/creds', { data: { password: newPassword } }, { 'content-type': 'application/merge-patch+json' })).status, 200)
    t.is((await call(api, api.admin, 'DELETE', '/api/v1/namespaces/default/secrets/creds')).status, 200)
  })
  t.deepEqual(events.map(e => e.type), ['ADDED', 'MODIFIED', 'DELETED'])
  for (const e of events) t.deepEqual(secretFields(e.object), METADATA_ONLY, e.type)
  // The admin's watch of the same (resumed from the start) has the data.
  const adminEvents = await watchUntil(api, api.admin, '/api/v1/namespaces/default/secrets?watch=1&resourceVersion=1', evs => evs.some(e => e.type === 'DELETED'))
  t.is(adminEvents.find(e => e.type === 'MODIFIED')?.object.data.password, newPassword)
})
