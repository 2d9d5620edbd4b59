// The API's bounds against exhausting clients (issue #14), on the real API
// server over an in-process ResourceStore: watches capped per token and per
// client address (429 with Retry-After and a Status), dropped when their
// client leaves too much unread, ended by timeoutSeconds, with bookmarks;
// the state hash for the admin only, once a second per client; malformed
// percent-encoding and request targets as 400s, never 500s.
import { randomUUID } from 'node:crypto'
import { mkdtemp, rm } from 'node:fs/promises'
import { request as httpRequest } from 'node:http'
import type { Server } from 'node:http'
import { connect } from 'node:net'
import type { AddressInfo, Socket } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Writable } from 'node:stream'
import test from 'ava'
import type { ExecutionContext } from 'ava'
import { pino } from 'pino'
import type { StatusBody } from '../../protocol/api.ts'
import { rfc3339 } from '../../protocol/k8s.ts'
import { TokenStore } from '../../daemon/api/auth.ts'
import { createApiServer } from '../../daemon/api/server.ts'
import { StateHashRate } from '../../daemon/api/debug.ts'
import { DEFAULT_WATCH_LIMITS, OpenWatches } from '../../daemon/api/watch.ts'
import type { WatchLimits } from '../../daemon/api/watch.ts'
import { parseDaemonArgs, UsageError } from '../../daemon/config/flags.ts'
import { bootstrapCommands, encodeStoreCommand, ResourceStore } from '../../daemon/store/store.ts'
import { StoreReplicator } from '../helpers/k8s-api.ts'

interface Api {
  port: number
  admin: string
  viewer: string
  raft: StoreReplicator
  server: Server
  /** the API's log, one parsed line each */
  logged: Array<Record<string, unknown>>
  /** the rate limits' clock, moved by hand */
  clock: { now: number }
  /** the server's open watches */
  watches: OpenWatches
}

async function startApi (t: ExecutionContext, watchLimits: Partial<WatchLimits> = {}): Promise<Api> {
  const dir = await mkdtemp(join(tmpdir(), 'shoal-api-exhaustion-'))
  const tokens = await TokenStore.load(dir)
  const admin = await tokens.create()
  const viewer = tokens.getViewer() ?? ''
  const store = new ResourceStore()
  const raft = new StoreReplicator(store)
  for (const c of bootstrapCommands(rfc3339(Date.now()), [randomUUID(), randomUUID(), randomUUID(), randomUUID()])) await raft.propose(encodeStoreCommand(c))
  const logged: Array<Record<string, unknown>> = []
  const sink = new Writable({ write (chunk: Buffer, _enc, done) { logged.push(JSON.parse(chunk.toString()) as Record<string, unknown>); done() } })
  const clock = { now: 1_000_000 }
  const log = pino({ level: 'info' }, sink)
  const watches = new OpenWatches({ ...DEFAULT_WATCH_LIMITS, ...watchLimits }, log)
  const server = createApiServer({
    tokens,
    members: () => [],
    selfPeerId: 'peer-a',
    log,
    raft,
    store,
    watches,
    now: () => clock.now,
    backup: async () => ({
      header: { format: 1, clusterId: 'c', index: raft.appliedIndex(), term: 1, createdAt: rfc3339(0), version: 'test', peer: 'a', bodyBytes: 3 },
      body: new Uint8Array([1, 2, 3])
    })
  })
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo
  t.teardown(async () => {
    server.closeAllConnections()
    await new Promise<void>(resolve => server.close(() => { resolve() }))
    await rm(dir, { recursive: true, force: true })
  })
  return { port, admin, viewer, raft, server, logged, clock, watches }
}

interface Answer { status: number, headers: Record<string, string>, text: string }

/** One request written byte for byte on its own connection (no client normalises the target), from `from`. */
async function raw (api: Api, method: string, target: string, token: string | undefined, from = '127.0.0.1'): Promise<Answer> {
  return await new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port: api.port, localAddress: from }, () => {
      socket.write(`${method} ${target} HTTP/1.1\r\nHost: shoal\r\n${token !== undefined ? `Authorization: Bearer ${token}\r\n` : ''}Connection: close\r\n\r\n`)
    })
    const chunks: Buffer[] = []
    socket.on('data', (b: Buffer) => chunks.push(b))
    socket.on('error', reject)
    socket.on('close', () => {
      const text = Buffer.concat(chunks).toString()
      const [head = '', body = ''] = text.split('\r\n\r\n')
      const [statusLine = '', ...lines] = head.split('\r\n')
      const headers = Object.fromEntries(lines.map(l => [l.slice(0, l.indexOf(':')).toLowerCase(), l.slice(l.indexOf(':') + 1).trim()]))
      resolve({ status: Number(statusLine.split(' ')[1]), headers, text: body })
    })
  })
}

function statusOf (t: ExecutionContext, a: Answer, code: number, reason: string): StatusBody {
  t.is(a.status, code, a.text)
  const s = JSON.parse(a.text) as StatusBody
  t.is(s.kind, 'Status')
  t.is(s.code, code)
  t.is(s.reason, reason)
  t.false(s.message.includes('\n'), 'a one-line message')
  return s
}

/** A watch that is read line by line, from `from`; `lines` grows as they come, `ended` once the server ends the stream. */
interface OpenWatch {
  status: number
  headers: Record<string, string | string[] | undefined>
  lines: Array<{ type: string, object: Record<string, any> }>
  body: string
  ended: Promise<'end' | 'error'>
  close: () => void
}

async function watch (api: Api, path: string, token: string, from = '127.0.0.1'): Promise<OpenWatch> {
  return await new Promise((resolve, reject) => {
    const req = httpRequest({ host: '127.0.0.1', port: api.port, path, localAddress: from, headers: { authorization: `Bearer ${token}` }, agent: false }, res => {
      const w: OpenWatch = {
        status: res.statusCode ?? 0,
        headers: res.headers,
        lines: [],
        body: '',
        ended: new Promise(resolve => {
          res.on('end', () => { resolve('end') })
          res.on('error', () => { resolve('error') })
          res.on('aborted', () => { resolve('error') })
        }),
        close: () => { req.destroy() }
      }
      let partial = ''
      res.setEncoding('utf8').on('data', (chunk: string) => {
        w.body += chunk
        if (w.status !== 200) return
        partial += chunk
        const parts = partial.split('\n')
        partial = parts.pop() ?? ''
        for (const p of parts) w.lines.push(JSON.parse(p) as OpenWatch['lines'][number])
      })
      resolve(w)
    })
    req.on('error', reject)
    req.end()
  })
}

async function until (what: string, check: () => boolean, boundMs = 10_000): Promise<void> {
  const deadline = Date.now() + boundMs
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise(resolve => setTimeout(resolve, 10))
  }
}

async function createConfigMap (api: Api, name: string, value: string): Promise<void> {
  const res = await fetch(`http://127.0.0.1:${api.port}/api/v1/namespaces/default/configmaps`, {
    method: 'POST',
    headers: { authorization: `Bearer ${api.admin}`, 'content-type': 'application/json' },
    body: JSON.stringify({ metadata: { name }, data: { v: value } })
  })
  if (res.status !== 201) throw new Error(`creating ${name} answered ${res.status}: ${await res.text()}`)
}

const CONFIGMAPS = '/api/v1/namespaces/default/configmaps'

test('20 watches that never read are dropped once their unsent bytes pass the limit, so memory stays bounded', async t => {
  const bufferBytes = 256 * 1024
  const api = await startApi(t, { bufferBytes })
  // 20 watches on raw sockets that are read until their headers come (the watch is open), then never again.
  const sockets: Socket[] = []
  for (let i = 0; i < 20; i++) {
    sockets.push(await new Promise<Socket>((resolve, reject) => {
      const s = connect({ host: '127.0.0.1', port: api.port }, () => {
        s.write(`GET ${CONFIGMAPS}?watch=1 HTTP/1.1\r\nHost: shoal\r\nAuthorization: Bearer ${api.admin}\r\n\r\n`)
      })
      s.once('data', (head: Buffer) => {
        s.pause()
        if (head.toString().startsWith('HTTP/1.1 200 ')) resolve(s)
        else reject(new Error(`the watch answered ${head.toString().split('\r\n')[0] ?? ''}`))
      })
      s.on('error', () => {})
      s.once('error', reject)
    }))
  }
  t.teardown(() => { for (const s of sockets) s.destroy() })
  t.is(api.watches.count(), 20)
  // 120 events of 100 KB each: 12 MB per watch, 240 MB in all if nothing were dropped.
  const value = 'x'.repeat(100_000)
  const eventBytes = 101_000
  const memoryBefore = process.memoryUsage()
  let peakGrowth = 0
  let peakUnsent = 0
  for (let i = 0; i < 120; i++) {
    await createConfigMap(api, `cm-${i}`, value)
    const m = process.memoryUsage()
    peakGrowth = Math.max(peakGrowth, (m.heapUsed + m.external) - (memoryBefore.heapUsed + memoryBefore.external))
    peakUnsent = Math.max(peakUnsent, api.watches.unsentBytes())
  }
  t.log(`unsent bytes at most ${Math.round(peakUnsent / 1024)} KiB; heap and external memory grew by ${Math.round(peakGrowth / 1024 / 1024)} MiB at most`)
  // Never more unsent than the limit and one event per watch, …
  t.true(peakUnsent <= 20 * (bufferBytes + eventBytes + 1024), `${peakUnsent} bytes unsent`)
  // … and the process holds far less than the 240 MB the events would have taken
  // (the writes alone, with no watch, take about 70 MiB here, garbage included).
  t.true(peakGrowth < 150 * 1024 * 1024, `the heap grew by ${Math.round(peakGrowth / 1024 / 1024)} MiB`)
  const dropped = (): Array<Record<string, unknown>> => api.logged.filter(l => l.event === 'api.watch.dropped')
  await until('every unread watch dropped', () => dropped().length === 20)
  // Dropped as the limit passed: with no more than the limit and one event unsent.
  for (const d of dropped()) {
    t.true((d.unsentBytes as number) > bufferBytes)
    t.true((d.unsentBytes as number) <= bufferBytes + eventBytes + 1024, `unsent ${String(d.unsentBytes)}`)
  }
  await until('the dropped watches to be closed', () => api.watches.count() === 0)
  // A watch that reads keeps up and is not dropped.
  const reader = await watch(api, `${CONFIGMAPS}?watch=1&resourceVersion=${api.raft.appliedIndex()}`, api.admin)
  t.teardown(reader.close)
  for (let i = 120; i < 140; i++) await createConfigMap(api, `cm-${i}`, value)
  await until('the reading watch to see 20 events', () => reader.lines.length === 20)
  t.is(dropped().length, 20)
})

test('a watch over the per-address or per-token cap gets 429 with Retry-After and a Status; closing one frees its slot', async t => {
  const api = await startApi(t, { maxPerClient: 3, maxPerToken: 4 })
  const open: OpenWatch[] = []
  t.teardown(() => { for (const w of open) w.close() })
  for (let i = 0; i < 3; i++) open.push(await watch(api, `${CONFIGMAPS}?watch=1`, api.admin, '127.0.0.1'))
  t.deepEqual(open.map(w => w.status), [200, 200, 200])
  // The fourth from the same address: the address's cap.
  const perClient = await raw(api, 'GET', `${CONFIGMAPS}?watch=1`, api.admin, '127.0.0.1')
  t.regex(statusOf(t, perClient, 429, 'TooManyRequests').message, /127\.0\.0\.1 already holds 3 open watches.*--max-watches-per-ip/)
  t.is(perClient.headers['retry-after'], '1')
  // Another address may open one more with the admin token, then the token's cap.
  open.push(await watch(api, `${CONFIGMAPS}?watch=1`, api.admin, '127.0.0.2'))
  t.is(open[3]?.status, 200)
  const perToken = await raw(api, 'GET', `${CONFIGMAPS}?watch=1`, api.admin, '127.0.0.3')
  t.regex(statusOf(t, perToken, 429, 'TooManyRequests').message, /this token already holds 4 open watches.*--max-watches-per-token/)
  t.is(perToken.headers['retry-after'], '1')
  // The viewer's token counts on its own.
  open.push(await watch(api, `${CONFIGMAPS}?watch=1`, api.viewer, '127.0.0.3'))
  t.is(open[4]?.status, 200)
  // Lists are not capped.
  t.is((await raw(api, 'GET', CONFIGMAPS, api.admin, '127.0.0.1')).status, 200)
  t.is(api.watches.count(), 5)
  // A closed watch gives its slot back (once the server has seen the close).
  open[0]?.close()
  await until('the server to see the close', () => api.watches.count() === 4)
  const again = await watch(api, `${CONFIGMAPS}?watch=1`, api.admin, '127.0.0.1')
  open.push(again)
  t.is(again.status, 200)
})

test('timeoutSeconds ends the stream cleanly, with a last bookmark when bookmarks are allowed; the slot is freed', async t => {
  const api = await startApi(t, { maxPerClient: 1 })
  const started = Date.now()
  const w = await watch(api, `${CONFIGMAPS}?watch=1&timeoutSeconds=1&allowWatchBookmarks=true`, api.admin)
  t.is(w.status, 200)
  await createConfigMap(api, 'during', 'v')
  t.is(await w.ended, 'end')
  await until('the slot to be free', () => api.watches.count() === 0)
  const took = Date.now() - started
  t.true(took >= 900 && took < 10_000, `ended after ${took} ms`)
  t.deepEqual(w.lines.map(l => l.type), ['ADDED', 'BOOKMARK'])
  const bookmark = w.lines[1]?.object
  t.deepEqual(bookmark, { kind: 'ConfigMap', apiVersion: 'v1', metadata: { resourceVersion: String(api.raft.appliedIndex()) } })
  // Without allowWatchBookmarks, no bookmark: the stream just ends.
  const plain = await watch(api, `${CONFIGMAPS}?watch=1&timeoutSeconds=1`, api.admin)
  t.is(plain.status, 200)
  t.is(await plain.ended, 'end')
  t.deepEqual(plain.lines.map(l => l.type), ['ADDED'])
  // A bad timeout is a 400.
  for (const bad of ['-1', 'soon', '1.5', '99999999999']) {
    statusOf(t, await raw(api, 'GET', `${CONFIGMAPS}?watch=1&timeoutSeconds=${bad}`, api.admin), 400, 'BadRequest')
  }
})

test('bookmarks arrive periodically, at the replica\'s resourceVersion, after the events before them', async t => {
  const api = await startApi(t, { bookmarkIntervalMs: 100 })
  const w = await watch(api, `${CONFIGMAPS}?watch=1&allowWatchBookmarks=true&resourceVersion=${api.raft.appliedIndex()}`, api.admin)
  t.teardown(w.close)
  t.is(w.status, 200)
  await createConfigMap(api, 'a', '1')
  const rv = String(api.raft.appliedIndex())
  await until('a bookmark at the new resourceVersion', () => w.lines.some(l => l.type === 'BOOKMARK' && l.object.metadata.resourceVersion === rv))
  const added = w.lines.findIndex(l => l.type === 'ADDED')
  const bookmark = w.lines.findIndex(l => l.type === 'BOOKMARK' && l.object.metadata.resourceVersion === rv)
  t.true(added >= 0 && added < bookmark)
  t.is(w.lines[added]?.object.metadata.resourceVersion, rv)
  await until('more bookmarks', () => w.lines.filter(l => l.type === 'BOOKMARK').length >= 3)
  for (const l of w.lines.filter(l => l.type === 'BOOKMARK')) t.deepEqual(Object.keys(l.object.metadata), ['resourceVersion'])
})

test('the state hash is the admin\'s only, and computed at most once a second per client', async t => {
  const api = await startApi(t)
  const path = '/shoal/v1/debug/state-hash'
  statusOf(t, await raw(api, 'GET', path, api.viewer), 403, 'Forbidden')
  statusOf(t, await raw(api, 'GET', path, undefined), 401, 'Unauthorized')
  const first = await raw(api, 'GET', path, api.admin)
  t.is(first.status, 200)
  t.is((JSON.parse(first.text) as { appliedIndex: number }).appliedIndex, api.raft.appliedIndex())
  const again = await raw(api, 'GET', path, api.admin)
  statusOf(t, again, 429, 'TooManyRequests')
  t.is(again.headers['retry-after'], '1')
  // Another client is not held back by the first.
  t.is((await raw(api, 'GET', path, api.admin, '127.0.0.2')).status, 200)
  api.clock.now += 999
  t.is((await raw(api, 'GET', path, api.admin)).status, 429)
  api.clock.now += 1
  t.is((await raw(api, 'GET', path, api.admin)).status, 200)
  // A refused viewer does not use up the admin's turn.
  api.clock.now += 1000
  statusOf(t, await raw(api, 'GET', path, api.viewer), 403, 'Forbidden')
  t.is((await raw(api, 'GET', path, api.admin)).status, 200)
})

test('the state hash\'s rate limit remembers only the clients of its last interval', t => {
  let now = 0
  const rate = new StateHashRate(1000, () => now)
  for (let i = 0; i <= 1000; i++) t.is(rate.take(`10.0.${i >> 8}.${i & 255}`), 0)
  t.is(rate.take('10.0.0.0'), 1000)
  now = 400
  t.is(rate.take('10.0.0.0'), 600)
  now = 1000
  // Past a thousand remembered, those of an older interval are forgotten.
  t.is(rate.take('10.9.9.9'), 0)
  t.is(rate.size(), 1)
  t.is(rate.take('10.0.0.0'), 0)
})

test('malformed percent-encoding and unparsable request targets are 400s with a Status, never 500s', async t => {
  const api = await startApi(t)
  const paths = [
    `${CONFIGMAPS}/%E0%A4%A`,
    '/api/v1/namespaces/%zz/configmaps',
    '/api/v1/namespaces/default/configmaps/%',
    `/apis/apps/v1/namespaces/%C0%AF/deployments`,
    `/api/v1/namespaces/default/configmaps/${'%'.repeat(300)}`
  ]
  for (const path of paths) {
    const s = statusOf(t, await raw(api, 'GET', path, api.admin), 400, 'BadRequest')
    t.regex(s.message, /not valid percent-encoded UTF-8/)
    t.true(s.message.length < 200)
  }
  // Writes and deletes decode the same path first.
  statusOf(t, await raw(api, 'DELETE', `${CONFIGMAPS}/%E0%A4%A`, api.admin), 400, 'BadRequest')
  // Targets that no URL parser takes, with or without a token.
  for (const target of ['http://[/api/v1/pods', 'http://a:99999/api/v1/pods', 'http://a:-1/']) {
    statusOf(t, await raw(api, 'GET', target, api.admin), 400, 'BadRequest')
    statusOf(t, await raw(api, 'GET', target, undefined), 400, 'BadRequest')
  }
  // An origin-form target is a path, however it starts: `//[` and `//x:99999/`
  // are paths (404), and `//api/v1/...` is not read as the host "api".
  for (const target of ['//[', '//x:99999/', '//api/v1/namespaces']) {
    statusOf(t, await raw(api, 'GET', target, api.admin), 404, 'NotFound')
  }
  // A malformed query: selectors and values are taken literally, then checked.
  statusOf(t, await raw(api, 'GET', `${CONFIGMAPS}?labelSelector=%zz%E0`, api.admin), 400, 'BadRequest')
  t.is((await raw(api, 'GET', `${CONFIGMAPS}?%zz=1&includeObject=%`, api.admin)).status, 400)
  // (The KV's paths and queries are decoded strictly as well: test/unit/kv-api.test.ts, "bad keys are 400".)
  t.false(api.logged.some(l => l.event === 'api.error'), 'nothing logged as an internal error')
})

test('the watch flags default to DEFAULT_WATCH_LIMITS and are checked', t => {
  const config = parseDaemonArgs([])
  t.deepEqual(config.watchLimits, { maxPerToken: DEFAULT_WATCH_LIMITS.maxPerToken, maxPerClient: DEFAULT_WATCH_LIMITS.maxPerClient, bufferBytes: DEFAULT_WATCH_LIMITS.bufferBytes })
  t.deepEqual(parseDaemonArgs(['--max-watches-per-token', '10', '--max-watches-per-ip', '5', '--watch-buffer', '1MiB']).watchLimits, { maxPerToken: 10, maxPerClient: 5, bufferBytes: 1024 * 1024 })
  t.throws(() => parseDaemonArgs(['--max-watches-per-ip', '0']), { instanceOf: UsageError, message: /--max-watches-per-ip/ })
  t.throws(() => parseDaemonArgs(['--watch-buffer', 'lots']), { instanceOf: UsageError, message: /--watch-buffer/ })
})
