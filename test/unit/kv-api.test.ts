// The KV and Raft routes of the real API server on 127.0.0.1, with a
// KvStore behind a FakeReplicator: reads, writes, CAS, lists, limits, key
// and query validation, auth, and how replicator errors are answered.
import { request as httpRequest } from 'node:http'
import { connect } from 'node:net'
import test from 'ava'
import type { ExecutionContext } from 'ava'
import type { RaftStatusView, StatusBody } from '../../protocol/api.ts'
import type { KvListView, KvPairView, KvWriteView } from '../../protocol/kv.ts'
import { startTestApi } from '../helpers/fake-replicator.ts'
import type { TestApi } from '../helpers/fake-replicator.ts'

interface Answer { status: number, headers: Headers, body: unknown, bytes: Uint8Array }

async function call (api: TestApi, method: string, path: string, body?: Uint8Array | string, token: string | null = api.token): Promise<Answer> {
  const res = await fetch(api.url + path, {
    method,
    headers: token === null ? {} : { authorization: `Bearer ${token}` },
    ...(body !== undefined ? { body } : {}),
    signal: AbortSignal.timeout(10_000)
  })
  const bytes = new Uint8Array(await res.arrayBuffer())
  let parsed: unknown
  try { parsed = JSON.parse(new TextDecoder().decode(bytes)) } catch { parsed = undefined }
  return { status: res.status, headers: res.headers, body: parsed, bytes }
}

function statusOf (t: ExecutionContext, a: Answer, code: number, reason: string): StatusBody {
  t.is(a.status, code)
  const s = a.body as StatusBody
  t.is(s.kind, 'Status')
  t.is(s.code, code)
  t.is(s.reason, reason)
  return s
}

test('put, get, overwrite, delete', async t => {
  const api = await startTestApi(t)
  const put = await call(api, 'PUT', '/shoal/v1/kv/greeting', 'hello')
  t.is(put.status, 200)
  t.deepEqual(put.body as KvWriteView, { index: 1 })

  const got = await call(api, 'GET', '/shoal/v1/kv/greeting')
  t.is(got.status, 200)
  t.deepEqual(got.body as KvPairView, { key: 'greeting', value: 'hello', createIndex: 1, modifyIndex: 1 })

  t.deepEqual((await call(api, 'PUT', '/shoal/v1/kv/greeting', 'bye')).body, { index: 2 })
  t.deepEqual((await call(api, 'GET', '/shoal/v1/kv/greeting')).body, { key: 'greeting', value: 'bye', createIndex: 1, modifyIndex: 2 })

  const del = await call(api, 'DELETE', '/shoal/v1/kv/greeting')
  t.is(del.status, 200)
  t.deepEqual(del.body, { index: 3 })
  const s = statusOf(t, await call(api, 'GET', '/shoal/v1/kv/greeting'), 404, 'NotFound')
  t.is(s.message, 'no such key: "greeting"')
  // Deleting a missing key is fine.
  t.is((await call(api, 'DELETE', '/shoal/v1/kv/greeting')).status, 200)
})

test('HEAD answers like GET without a body; other methods are 405 with Allow', async t => {
  const api = await startTestApi(t)
  await call(api, 'PUT', '/shoal/v1/kv/k', 'v')
  const head = await call(api, 'HEAD', '/shoal/v1/kv/k')
  t.is(head.status, 200)
  t.is(head.bytes.length, 0)
  t.is((await call(api, 'HEAD', '/shoal/v1/kv/missing')).status, 404)
  const post = await call(api, 'POST', '/shoal/v1/kv/k', 'v')
  statusOf(t, post, 405, 'MethodNotAllowed')
  t.is(post.headers.get('allow'), 'GET, HEAD, PUT, DELETE')
  const raftPut = await call(api, 'PUT', '/shoal/v1/raft', 'x')
  statusOf(t, raftPut, 405, 'MethodNotAllowed')
  t.is(raftPut.headers.get('allow'), 'GET, HEAD')
})

test('keys are percent-decoded; a slash may be sent raw or as %2F', async t => {
  const api = await startTestApi(t)
  const key = 'app/config é ?#%'
  t.is((await call(api, 'PUT', `/shoal/v1/kv/${encodeURIComponent(key)}`, 'x')).status, 200)
  t.deepEqual((await call(api, 'GET', '/shoal/v1/kv/app/config%20%C3%A9%20%3F%23%25')).body, { key, value: 'x', createIndex: 1, modifyIndex: 1 })
  t.truthy(api.kv.get(key))
  // A dot segment inside a key stays: the raw path is used, not a normalised one.
  t.is((await call(api, 'PUT', '/shoal/v1/kv/a%2F..%2Fb', 'y')).status, 200)
  t.truthy(api.kv.get('a/../b'))
})

test('binary values come back as base64, and as raw bytes with ?raw', async t => {
  const api = await startTestApi(t)
  const value = new Uint8Array([0, 0xff, 0xfe, 10, 0x80])
  t.is((await call(api, 'PUT', '/shoal/v1/kv/bin', value)).status, 200)
  const got = await call(api, 'GET', '/shoal/v1/kv/bin')
  t.deepEqual(got.body, { key: 'bin', value: Buffer.from(value).toString('base64'), encoding: 'base64', createIndex: 1, modifyIndex: 1 })
  const raw = await call(api, 'GET', '/shoal/v1/kv/bin?raw')
  t.is(raw.status, 200)
  t.is(raw.headers.get('content-type'), 'application/octet-stream')
  t.is(raw.headers.get('x-shoal-modify-index'), '1')
  t.deepEqual([...raw.bytes], [...value])
  // An empty value is a value.
  t.is((await call(api, 'PUT', '/shoal/v1/kv/empty', '')).status, 200)
  t.deepEqual((await call(api, 'GET', '/shoal/v1/kv/empty')).body, { key: 'empty', value: '', createIndex: 2, modifyIndex: 2 })
})

test('cas: 0 creates only, N matches modifyIndex, a mismatch is 409 naming the current index', async t => {
  const api = await startTestApi(t)
  t.deepEqual((await call(api, 'PUT', '/shoal/v1/kv/lock?cas=0', 'me')).body, { index: 1 })
  const again = statusOf(t, await call(api, 'PUT', '/shoal/v1/kv/lock?cas=0', 'you'), 409, 'Conflict')
  t.is(again.message, 'compare-and-set failed: key "lock" has modifyIndex 1, not 0')
  t.deepEqual((await call(api, 'PUT', '/shoal/v1/kv/lock?cas=1', 'me2')).body, { index: 3 })
  const stale = statusOf(t, await call(api, 'DELETE', '/shoal/v1/kv/lock?cas=1'), 409, 'Conflict')
  t.regex(stale.message, /modifyIndex 3, not 1/)
  t.deepEqual((await call(api, 'DELETE', '/shoal/v1/kv/lock?cas=3')).body, { index: 5 })
  const gone = statusOf(t, await call(api, 'PUT', '/shoal/v1/kv/lock?cas=3', 'x'), 409, 'Conflict')
  t.is(gone.message, 'compare-and-set failed: key "lock" does not exist (modifyIndex 0), not 3')
})

test('?cas must be a non-negative integer; unknown parameters are 400', async t => {
  const api = await startTestApi(t)
  for (const q of ['cas=-1', 'cas=1.5', 'cas=abc', 'cas=', 'cas=99999999999999999999', 'cas=1e3']) {
    const s = statusOf(t, await call(api, 'PUT', `/shoal/v1/kv/k?${q}`, 'v'), 400, 'BadRequest')
    t.regex(s.message, /\?cas must be a non-negative integer/, q)
  }
  statusOf(t, await call(api, 'DELETE', '/shoal/v1/kv/k?cas=x'), 400, 'BadRequest')
  t.regex(statusOf(t, await call(api, 'GET', '/shoal/v1/kv/k?consistant'), 400, 'BadRequest').message, /unknown query parameter "consistant"/)
  t.is(api.raft.proposals, 0, 'nothing was proposed')
})

test('bad keys are 400: empty, longer than 1 KiB, invalid percent-encoding or UTF-8, dot segments', async t => {
  const api = await startTestApi(t)
  const cases: Array<[string, string, RegExp]> = [
    ['PUT', '/shoal/v1/kv/', /the key is empty/],
    ['DELETE', '/shoal/v1/kv/', /the key is empty/],
    ['PUT', `/shoal/v1/kv/${'k'.repeat(1025)}`, /1025 bytes long; the most is 1024/],
    ['GET', `/shoal/v1/kv/${'%C3%A9'.repeat(513)}`, /1026 bytes/],
    ['PUT', '/shoal/v1/kv/bad%zz', /not valid percent-encoded UTF-8/],
    ['PUT', '/shoal/v1/kv/bad%', /not valid percent-encoded UTF-8/],
    ['GET', '/shoal/v1/kv/%FF%FE', /not valid percent-encoded UTF-8/],
    ['GET', '/shoal/v1/kv/%ED%A0%80', /not valid/],
    ['GET', '/shoal/v1/kv/?prefix=%FF', /not valid percent-encoded UTF-8/]
  ]
  for (const [method, path, message] of cases) {
    const s = statusOf(t, await call(api, method, path, method === 'PUT' ? 'v' : undefined), 400, 'BadRequest')
    t.regex(s.message, message, `${method} ${path}`)
  }
  t.is((await call(api, 'PUT', `/shoal/v1/kv/${'k'.repeat(1024)}`, 'v')).status, 200, 'exactly 1 KiB is fine')
  // fetch folds dot segments itself; node:http sends the path as it is.
  const dots = await new Promise<{ status: number, body: string }>((resolve, reject) => {
    const req = httpRequest(`${api.url}/`, { method: 'PUT', path: '/shoal/v1/kv/%2E%2E', headers: { authorization: `Bearer ${api.token}` } }, res => {
      let body = ''
      res.on('data', (c: Buffer) => { body += c.toString() })
      res.on('end', () => { resolve({ status: res.statusCode ?? 0, body }) })
    })
    req.on('error', reject)
    req.end('v')
  })
  t.is(dots.status, 400)
  t.regex(dots.body, /the key may not be \\"\.\.\\"/)
})

test('list: all keys or a prefix, sorted, with the applied index', async t => {
  const api = await startTestApi(t)
  for (const key of ['svc/b', 'svc/a', 'other', 'svc/c/d']) await call(api, 'PUT', `/shoal/v1/kv/${encodeURIComponent(key)}`, key.toUpperCase())
  const all = await call(api, 'GET', '/shoal/v1/kv/')
  t.is(all.status, 200)
  const view = all.body as KvListView
  t.is(view.kind, 'KvList')
  t.is(view.index, 4)
  t.deepEqual(view.items.map(i => i.key), ['other', 'svc/a', 'svc/b', 'svc/c/d'])
  t.deepEqual(view.items[0], { key: 'other', value: 'OTHER', createIndex: 3, modifyIndex: 3 })
  t.deepEqual(((await call(api, 'GET', '/shoal/v1/kv')).body as KvListView).items.length, 4)

  const svc = (await call(api, 'GET', '/shoal/v1/kv/?prefix=svc%2F')).body as KvListView
  t.deepEqual(svc.items.map(i => i.key), ['svc/a', 'svc/b', 'svc/c/d'])
  const onKey = (await call(api, 'GET', '/shoal/v1/kv/svc/?prefix')).body as KvListView
  t.deepEqual(onKey.items.map(i => i.key), ['svc/a', 'svc/b', 'svc/c/d'])
  const none = (await call(api, 'GET', '/shoal/v1/kv/?prefix=nope')).body as KvListView
  t.deepEqual(none.items, [])
})

test('?consistent waits for the read barrier first', async t => {
  const api = await startTestApi(t)
  await call(api, 'PUT', '/shoal/v1/kv/k', 'v')
  t.is((await call(api, 'GET', '/shoal/v1/kv/k')).status, 200)
  t.is(api.raft.readBarriers, 0, 'a plain read is local')
  t.is((await call(api, 'GET', '/shoal/v1/kv/k?consistent')).status, 200)
  t.is(api.raft.readBarriers, 1)
  t.is((await call(api, 'GET', '/shoal/v1/kv/?prefix=k&consistent=true')).status, 200)
  t.is(api.raft.readBarriers, 2)
  // A failing barrier fails the read, while a local read still answers.
  api.raft.failure = { kind: 'no-leader' }
  statusOf(t, await call(api, 'GET', '/shoal/v1/kv/k?consistent'), 503, 'ServiceUnavailable')
  t.is((await call(api, 'GET', '/shoal/v1/kv/k')).status, 200)
})

test('a value over the limit is 413, also without a content-length, and the peer keeps serving', async t => {
  const api = await startTestApi(t, { kvMaxValueBytes: 1000 })
  t.is((await call(api, 'PUT', '/shoal/v1/kv/k', 'x'.repeat(1000))).status, 200)
  const s = statusOf(t, await call(api, 'PUT', '/shoal/v1/kv/k', 'x'.repeat(1001)), 413, 'RequestEntityTooLarge')
  t.regex(s.message, /limit of 1000 bytes/)
  // Far over the limit: the answer still arrives, though the rest of the body is not all read.
  statusOf(t, await call(api, 'PUT', '/shoal/v1/kv/k', new Uint8Array(4 * 1024 * 1024)), 413, 'RequestEntityTooLarge')

  // Chunked, no content-length, and much larger than the limit.
  const chunked = await new Promise<{ status: number, body: string }>((resolve, reject) => {
    const req = httpRequest(`${api.url}/shoal/v1/kv/k`, { method: 'PUT', headers: { authorization: `Bearer ${api.token}` } }, res => {
      let body = ''
      res.setEncoding('utf8')
      res.on('data', (c: string) => { body += c })
      res.on('end', () => { resolve({ status: res.statusCode ?? 0, body }) })
    })
    req.on('error', reject)
    for (let i = 0; i < 50; i++) req.write(Buffer.alloc(1000, 'y'))
    req.end()
  })
  t.is(chunked.status, 413)
  t.is(api.raft.proposals, 1)
  t.is(new TextDecoder().decode(api.kv.get('k')?.value), 'x'.repeat(1000))
  t.is((await call(api, 'GET', '/shoal/v1/kv/k')).status, 200)
})

test('a client that disconnects mid-body does not crash the peer', async t => {
  const api = await startTestApi(t)
  const { port } = api.server.address() as { port: number }
  await new Promise<void>((resolve, reject) => {
    const socket = connect(port, '127.0.0.1', () => {
      socket.write(`PUT /shoal/v1/kv/half HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${api.token}\r\nContent-Length: 1000\r\n\r\nonly a little`)
      setTimeout(() => { socket.destroy(); resolve() }, 50)
    })
    socket.on('error', reject)
  })
  await new Promise(resolve => setTimeout(resolve, 50))
  t.is(api.kv.get('half'), undefined)
  t.is(api.raft.proposals, 0)
  t.is((await call(api, 'PUT', '/shoal/v1/kv/after', 'ok')).status, 200)
})

test('without the token every KV and Raft route is 401', async t => {
  const api = await startTestApi(t)
  for (const [method, path] of [['GET', '/shoal/v1/kv/k'], ['PUT', '/shoal/v1/kv/k'], ['DELETE', '/shoal/v1/kv/k'], ['GET', '/shoal/v1/kv/'], ['GET', '/shoal/v1/raft']] as const) {
    const a = await call(api, method, path, method === 'PUT' ? 'v' : undefined, null)
    statusOf(t, a, 401, 'Unauthorized')
    t.is(a.headers.get('www-authenticate'), 'Bearer')
    t.is((await call(api, method, path, method === 'PUT' ? 'v' : undefined, 'wrong-token-wrong-token')).status, 401)
  }
  t.is(api.raft.proposals, 0)
})

test('no leader is 503 with Retry-After; a timeout is 504; not the leader names it', async t => {
  const api = await startTestApi(t)
  api.raft.failure = { kind: 'no-leader', retryAfterSeconds: 2 }
  const put = await call(api, 'PUT', '/shoal/v1/kv/k', 'v')
  const s = statusOf(t, put, 503, 'ServiceUnavailable')
  t.is(put.headers.get('retry-after'), '2')
  t.regex(s.message, /no leader/)
  statusOf(t, await call(api, 'DELETE', '/shoal/v1/kv/k'), 503, 'ServiceUnavailable')

  api.raft.failure = { kind: 'timeout' }
  const timeout = statusOf(t, await call(api, 'PUT', '/shoal/v1/kv/k', 'v'), 504, 'Timeout')
  t.regex(timeout.message, /may or may not have been applied/)

  api.raft.failure = { kind: 'not-leader', leaderApi: '127.0.0.9:7070' }
  const notLeader = await call(api, 'PUT', '/shoal/v1/kv/k', 'v')
  t.regex(statusOf(t, notLeader, 503, 'ServiceUnavailable').message, /127\.0\.0\.9:7070/)
  t.is(notLeader.headers.get('x-shoal-leader'), '127.0.0.9:7070')
  t.is(notLeader.headers.get('retry-after'), '1')

  api.raft.failure = { kind: 'none' }
  t.is((await call(api, 'PUT', '/shoal/v1/kv/k', 'v')).status, 200)
})

test('an unexpected error is a 500 without a stack', async t => {
  const api = await startTestApi(t)
  api.raft.propose = async () => { throw new Error('secret internals at line 42') }
  const s = statusOf(t, await call(api, 'PUT', '/shoal/v1/kv/k', 'v'), 500, 'InternalError')
  t.false(s.message.includes('secret'))
  t.is((await call(api, 'GET', '/shoal/v1/kv/')).status, 200)
})

test('without a replicated log the KV and Raft routes are 503 with Retry-After', async t => {
  const api = await startTestApi(t, { raft: false })
  for (const [method, path] of [['GET', '/shoal/v1/kv/k'], ['PUT', '/shoal/v1/kv/k'], ['GET', '/shoal/v1/raft']] as const) {
    const a = await call(api, method, path, method === 'PUT' ? 'v' : undefined)
    statusOf(t, a, 503, 'ServiceUnavailable')
    t.is(a.headers.get('retry-after'), '1')
  }
  t.is((await call(api, 'GET', '/shoal/v1/members')).status, 200)
})

test('/shoal/v1/raft answers the replicator\'s status', async t => {
  const api = await startTestApi(t)
  await call(api, 'PUT', '/shoal/v1/kv/k', 'v')
  const a = await call(api, 'GET', '/shoal/v1/raft')
  t.is(a.status, 200)
  const view = a.body as RaftStatusView
  t.is(view.kind, 'RaftStatus')
  t.is(view.role, 'leader')
  t.is(view.commitIndex, 1)
  t.deepEqual(view, api.raft.status())
})
