// The service proxy over an in-process store, with real sockets on
// loopback: backends on 127.0.14.x, service addresses in 127.96.14.0/24,
// NodePorts on 127.0.14.250 and up. Each test has its own addresses, so
// they run side by side.
import test from 'ava'
import type { ExecutionContext } from 'ava'
import { createSocket } from 'node:dgram'
import { connect, createServer } from 'node:net'
import type { AddressInfo, Server, Socket } from 'node:net'
import type { Duplex } from 'node:stream'
import { pino } from 'pino'
import type { KObject } from '../../protocol/k8s.ts'
import { ServiceProxy } from '../../daemon/network/proxy.ts'
import type { DialRemote } from '../../daemon/network/proxy.ts'
import { RouteBalancer } from '../../daemon/network/routes.ts'
import { NOW, ref, StoreHarness } from '../../daemon/store/testing.ts'
import { waitFor } from '../helpers/cluster.ts'

interface LogLine { level: number, event?: string, msg?: string, [k: string]: unknown }

/** A TCP backend: reads until the client ends, then answers `name:bytes` and ends. */
async function backend (ip: string, name: string): Promise<{ server: Server, port: number, name: string }> {
  const server = createServer({ allowHalfOpen: true }, socket => {
    let bytes = 0
    socket.on('data', (d: Buffer) => { bytes += d.length })
    socket.on('end', () => { socket.end(`${name}:${bytes}`) })
    socket.on('error', () => {})
  })
  await new Promise<void>(resolve => server.listen(0, ip, resolve))
  return { server, port: (server.address() as AddressInfo).port, name }
}

/** Connects, sends `payload`, half-closes, and reads the whole answer. */
async function ask (ip: string, port: number, payload = 'hello', localAddress?: string): Promise<string> {
  return await new Promise((resolve, reject) => {
    const socket: Socket = connect({ host: ip, port, allowHalfOpen: true, ...(localAddress !== undefined ? { localAddress } : {}) })
    const chunks: Buffer[] = []
    const timer = setTimeout(() => { socket.destroy(); reject(new Error('no answer in 5 s')) }, 5000)
    socket.on('connect', () => { socket.end(payload) })
    socket.on('data', (d: Buffer) => chunks.push(d))
    socket.on('end', () => { clearTimeout(timer); resolve(Buffer.concat(chunks).toString()) })
    socket.on('error', err => { clearTimeout(timer); reject(err) })
  })
}

function service (name: string, clusterIP: string, spec: Record<string, unknown> = {}, annotations?: Record<string, string>): KObject {
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name, namespace: 'default', ...(annotations !== undefined ? { annotations } : {}) },
    spec: { clusterIP, ports: [{ name: 'http', port: 8080, protocol: 'TCP' }], ...spec }
  }
}

interface Addr { ip: string, port: number, nodeName?: string }

function endpoints (name: string, ready: Addr[], portName: string | undefined = 'http', notReady: Addr[] = []): KObject {
  // One subset per address, since each backend has its own port.
  const subset = (a: Addr, key: 'addresses' | 'notReadyAddresses'): unknown => ({
    [key]: [{ ip: a.ip, ...(a.nodeName !== undefined ? { nodeName: a.nodeName } : {}) }],
    ports: [{ ...(portName !== undefined ? { name: portName } : {}), port: a.port, protocol: 'TCP' }]
  })
  return {
    apiVersion: 'v1',
    kind: 'Endpoints',
    metadata: { name, namespace: 'default' },
    subsets: [...ready.map(a => subset(a, 'addresses')), ...notReady.map(a => subset(a, 'notReadyAddresses'))]
  }
}

function updateEndpoints (h: StoreHarness, obj: KObject): void {
  h.ok(h.apply({ op: 'update', object: obj, now: NOW }))
}

interface Setup { h: StoreHarness, proxy: ServiceProxy, logs: LogLine[] }

async function setup (t: ExecutionContext, opts: { nodeAddress?: string, dialRemote?: DialRemote, h?: StoreHarness } = {}): Promise<Setup> {
  const logs: LogLine[] = []
  const log = pino({ level: 'debug' }, { write: (line: string) => { logs.push(JSON.parse(line) as LogLine) } })
  const h = opts.h ?? new StoreHarness()
  const proxy = new ServiceProxy({
    store: h.store,
    nodeName: 'node-a',
    nodeAddress: opts.nodeAddress ?? '127.0.14.250',
    dialRemote: opts.dialRemote ?? (async () => { throw new Error('no remote nodes in this test') }),
    log
  })
  await proxy.start()
  t.teardown(async () => { await proxy.stop() })
  return { h, proxy, logs }
}

async function backends (t: ExecutionContext, ips: string[]): Promise<Array<{ server: Server, port: number, name: string }>> {
  const out = await Promise.all(ips.map(async (ip, i) => await backend(ip, `b${i}`)))
  t.teardown(() => { for (const b of out) b.server.close() })
  return out
}

test('round-robin spreads connections evenly over three backends, and half-close keeps the reply', async t => {
  const bs = await backends(t, ['127.0.14.1', '127.0.14.2', '127.0.14.3'])
  const { h, proxy } = await setup(t)
  h.create(service('rr', '127.96.14.20'))
  h.create(endpoints('rr', bs.map((b, i) => ({ ip: `127.0.14.${i + 1}`, port: b.port }))))
  await waitFor('the listener', () => proxy.listening().includes('TCP/127.96.14.20:8080'), 1000, 10)
  const counts = new Map<string, number>()
  for (let i = 0; i < 30; i++) {
    const answer = await ask('127.96.14.20', 8080, 'x'.repeat(100))
    const [name, bytes] = answer.split(':')
    t.is(bytes, '100') // the client had ended its side before the backend answered
    counts.set(name as string, (counts.get(name as string) ?? 0) + 1)
  }
  t.deepEqual([...counts.entries()].sort(), [['b0', 10], ['b1', 10], ['b2', 10]])
})

test('a dead backend is skipped without a client error', async t => {
  const bs = await backends(t, ['127.0.14.4', '127.0.14.5', '127.0.14.6'])
  const dead = bs[1]
  if (dead === undefined) throw new Error('no backend')
  await new Promise(resolve => dead.server.close(resolve))
  const { h } = await setup(t)
  h.create(service('dead', '127.96.14.21'))
  h.create(endpoints('dead', bs.map((b, i) => ({ ip: `127.0.14.${i + 4}`, port: b.port }))))
  await waitFor('the service', async () => await ask('127.96.14.21', 8080), 1000, 10)
  const names = new Set<string>()
  for (let i = 0; i < 20; i++) names.add((await ask('127.96.14.21', 8080)).split(':')[0] as string)
  t.deepEqual([...names].sort(), ['b0', 'b2'])
})

test('the proxy follows endpoint changes within a second', async t => {
  const bs = await backends(t, ['127.0.14.7', '127.0.14.8'])
  const [b0, b1] = bs as [typeof bs[0], typeof bs[0]]
  const { h } = await setup(t)
  h.create(service('follow', '127.96.14.22'))
  h.create(endpoints('follow', [{ ip: '127.0.14.7', port: b0.port }]))
  await waitFor('the service', async () => await ask('127.96.14.22', 8080), 1000, 10)
  t.is((await ask('127.96.14.22', 8080)).split(':')[0], 'b0')
  updateEndpoints(h, endpoints('follow', [{ ip: '127.0.14.8', port: b1.port }]))
  const started = Date.now()
  await waitFor('answers from b1 only', async () => (await ask('127.96.14.22', 8080)).startsWith('b1:'), 1000, 5)
  t.true(Date.now() - started < 1000)
  for (let i = 0; i < 5; i++) t.is((await ask('127.96.14.22', 8080)).split(':')[0], 'b1')
  // Not-ready addresses get no traffic; no ready endpoint at all: the connection is reset.
  updateEndpoints(h, endpoints('follow', [], 'http', [{ ip: '127.0.14.8', port: b1.port }]))
  await waitFor('a reset', async () => await ask('127.96.14.22', 8080).then(() => false, (err: NodeJS.ErrnoException) => err.code === 'ECONNRESET'), 1000, 5)
  t.pass()
})

test('ClientIP affinity sticks each client to one backend', async t => {
  const bs = await backends(t, ['127.0.14.9', '127.0.14.10', '127.0.14.11'])
  const { h } = await setup(t)
  // (The store's schema does not know sessionAffinityConfig yet: the default timeout, 3 hours.)
  h.create(service('sticky', '127.96.14.23', { sessionAffinity: 'ClientIP' }))
  h.create(endpoints('sticky', bs.map((b, i) => ({ ip: `127.0.14.${i + 9}`, port: b.port }))))
  await waitFor('the service', async () => await ask('127.96.14.23', 8080, 'x', '127.0.14.100'), 1000, 10)
  const seen = new Set<string>()
  for (const client of ['127.0.14.100', '127.0.14.101', '127.0.14.102', '127.0.14.103']) {
    const names = new Set<string>()
    for (let i = 0; i < 6; i++) names.add((await ask('127.96.14.23', 8080, 'x', client)).split(':')[0] as string)
    t.is(names.size, 1, `client ${client} saw ${[...names].join(', ')}`)
    for (const n of names) seen.add(n)
  }
  // New clients still go round the backends.
  t.true(seen.size >= 2)
})

test('affinity expires after its timeout and follows a removed backend', t => {
  const b = new RouteBalancer()
  const x = { ip: '10.0.0.1', port: 80 }
  const y = { ip: '10.0.0.2', port: 80 }
  b.update([x, y], 1000)
  b.chose('c', y, 0)
  t.deepEqual(b.candidates('c', 500)[0], y)
  t.deepEqual(b.candidates('c', 500)[0], y)
  // Expired: plain round-robin again (the cursor decides).
  const firsts = new Set([b.candidates('c', 2000)[0]?.ip, b.candidates('c', 2000)[0]?.ip])
  t.is(firsts.size, 2)
  b.chose('c', y, 3000)
  b.update([x], 1000)
  t.deepEqual(b.candidates('c', 3100), [x])
})

test('a NodePort service listens on the node address too', async t => {
  const bs = await backends(t, ['127.0.14.12'])
  const { h, proxy } = await setup(t, { nodeAddress: '127.0.14.251' })
  h.create(service('np', '127.96.14.24', { type: 'NodePort', ports: [{ name: 'http', port: 8080, protocol: 'TCP', nodePort: 31414 }] }))
  h.create(endpoints('np', [{ ip: '127.0.14.12', port: (bs[0] as { port: number }).port }]))
  await waitFor('both listeners', () => proxy.listening().includes('TCP/127.0.14.251:31414') && proxy.listening().includes('TCP/127.96.14.24:8080'), 1000, 10)
  t.is(await ask('127.0.14.251', 31414, 'abc'), 'b0:3')
  t.is(await ask('127.96.14.24', 8080, 'abcd'), 'b0:4')
})

test('a deleted service stops listening; headless and opted-out services never listen', async t => {
  const bs = await backends(t, ['127.0.14.13'])
  const { h, proxy } = await setup(t)
  h.create(service('gone', '127.96.14.25'))
  h.create(endpoints('gone', [{ ip: '127.0.14.13', port: (bs[0] as { port: number }).port }]))
  h.create(service('headless', 'None'))
  h.create(service('dns', '127.96.14.26', {}, { 'shoal.io/proxy': 'false' }))
  await waitFor('the service', async () => await ask('127.96.14.25', 8080), 1000, 10)
  t.deepEqual(proxy.listening(), ['TCP/127.96.14.25:8080'])
  h.ok(h.apply({ op: 'delete', ref: ref('services', 'gone', 'default'), now: NOW }))
  await waitFor('connections refused', async () => await ask('127.96.14.25', 8080).then(() => false, (err: NodeJS.ErrnoException) => err.code === 'ECONNREFUSED'), 1000, 5)
  t.deepEqual(proxy.listening(), [])
  await t.throwsAsync(ask('127.96.14.26', 8080), { code: 'ECONNREFUSED' })
})

test('a service with no endpoints resets its connections at once', async t => {
  const { h, proxy, logs } = await setup(t)
  h.create(service('empty', '127.96.14.27'))
  await waitFor('the listener', () => proxy.listening().includes('TCP/127.96.14.27:8080'), 1000, 10)
  await t.throwsAsync(ask('127.96.14.27', 8080), { code: 'ECONNRESET' })
  t.true(logs.some(l => l.event === 'proxy.no-endpoints'))
})

test('remote endpoints go through dialRemote, and a failing one is skipped', async t => {
  const bs = await backends(t, ['127.0.14.14', '127.0.14.15'])
  const [b0, b1] = bs as [typeof bs[0], typeof bs[0]]
  const calls: string[] = []
  const dialRemote: DialRemote = async (nodeName, ip, port) => {
    calls.push(`${nodeName}/${ip}:${port}`)
    if (nodeName === 'node-broken') throw new Error('tunnel refused')
    return await new Promise<Duplex>((resolve, reject) => {
      const s = connect({ host: ip, port, allowHalfOpen: true })
      s.once('connect', () => { resolve(s) })
      s.once('error', reject)
    })
  }
  const { h } = await setup(t, { dialRemote })
  h.create(service('remote', '127.96.14.28'))
  h.create(endpoints('remote', [
    { ip: '127.0.14.14', port: b0.port, nodeName: 'node-b' },
    { ip: '127.0.14.15', port: b1.port, nodeName: 'node-broken' }
  ]))
  await waitFor('the service', async () => await ask('127.96.14.28', 8080), 1000, 10)
  for (let i = 0; i < 6; i++) t.is(await ask('127.96.14.28', 8080, 'xy'), 'b0:2')
  t.true(calls.includes(`node-b/127.0.14.14:${b0.port}`))
  t.true(calls.includes(`node-broken/127.0.14.15:${b1.port}`))
})

test('endpoints on this node are dialled directly, not through dialRemote', async t => {
  const bs = await backends(t, ['127.0.14.16'])
  let remoteCalls = 0
  const { h } = await setup(t, { dialRemote: async () => { remoteCalls++; throw new Error('unexpected') } })
  h.create(service('local', '127.96.14.29'))
  h.create(endpoints('local', [{ ip: '127.0.14.16', port: (bs[0] as { port: number }).port, nodeName: 'node-a' }]))
  await waitFor('the service', async () => await ask('127.96.14.29', 8080), 1000, 10)
  t.is(await ask('127.96.14.29', 8080, 'z'), 'b0:1')
  t.is(remoteCalls, 0)
})

test('an address that cannot be bound is a warning, not a crash', async t => {
  const h = new StoreHarness()
  // TEST-NET-1: no local route, so binding it fails with EADDRNOTAVAIL.
  h.create({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'shoal-cluster', namespace: 'kube-system' }, data: { serviceCIDR: '192.0.2.0/24' } })
  const { proxy, logs } = await setup(t, { h })
  h.create(service('faraway', '192.0.2.20'))
  await waitFor('the warning', () => logs.some(l => l.event === 'proxy.bind-failed'), 1000, 10)
  await proxy.settled()
  t.deepEqual(proxy.listening(), [])
  const warnings = logs.filter(l => l.event === 'proxy.bind-failed')
  t.is(warnings.length, 1)
  t.is(warnings[0]?.code, 'EADDRNOTAVAIL')
  t.is(warnings[0]?.level, 40)
  // Unrelated changes do not retry it (no new warning).
  h.create(endpoints('faraway', []))
  await new Promise(resolve => setTimeout(resolve, 50))
  t.is(logs.filter(l => l.event === 'proxy.bind-failed').length, 1)
})

test('UDP datagrams are relayed to a local endpoint and the replies come back', async t => {
  const echo = createSocket('udp4')
  echo.on('message', (msg, rinfo) => { echo.send(Buffer.concat([Buffer.from('echo:'), msg]), rinfo.port, rinfo.address) })
  await new Promise<void>(resolve => echo.bind(0, '127.0.14.17', resolve))
  t.teardown(() => { echo.close() })
  const { h, proxy } = await setup(t)
  h.create(service('udp', '127.96.14.30', { ports: [{ name: 'dns', port: 5353, protocol: 'UDP' }] }))
  h.create({
    apiVersion: 'v1',
    kind: 'Endpoints',
    metadata: { name: 'udp', namespace: 'default' },
    subsets: [{ addresses: [{ ip: '127.0.14.17', nodeName: 'node-a' }], ports: [{ name: 'dns', port: echo.address().port, protocol: 'UDP' }] }]
  })
  await waitFor('the UDP listener', () => proxy.listening().includes('UDP/127.96.14.30:5353'), 1000, 10)
  const client = createSocket('udp4')
  t.teardown(() => { client.close() })
  const replies: string[] = []
  client.on('message', msg => replies.push(msg.toString()))
  await new Promise<void>(resolve => client.bind(0, '127.0.0.1', resolve))
  for (let i = 0; i < 3; i++) client.send(`ping${i}`, 5353, '127.96.14.30')
  await waitFor('three replies', () => replies.length >= 3, 2000, 10)
  t.deepEqual(replies.sort(), ['echo:ping0', 'echo:ping1', 'echo:ping2'])
})

test('two proxies on one host share a service address (SO_REUSEPORT)', async t => {
  const bs = await backends(t, ['127.0.14.18'])
  const h = new StoreHarness()
  const first = await setup(t, { h, nodeAddress: '127.0.14.252' })
  const second = await setup(t, { h, nodeAddress: '127.0.14.253' })
  h.create(service('shared', '127.96.14.31'))
  h.create(endpoints('shared', [{ ip: '127.0.14.18', port: (bs[0] as { port: number }).port }]))
  await waitFor('both listeners', () => first.proxy.listening().includes('TCP/127.96.14.31:8080') && second.proxy.listening().includes('TCP/127.96.14.31:8080'), 1000, 10)
  t.false([...first.logs, ...second.logs].some(l => l.event === 'proxy.bind-failed'))
  for (let i = 0; i < 10; i++) t.is(await ask('127.96.14.31', 8080, 'q'), 'b0:1')
  // One stops; the other still answers.
  await first.proxy.stop()
  for (let i = 0; i < 5; i++) t.is(await ask('127.96.14.31', 8080, 'q'), 'b0:1')
})

test('retryFailed binds an address that failed before, once it can', async t => {
  const bs = await backends(t, ['127.0.14.19'])
  const blocker = createServer()
  // Taken without SO_REUSEPORT: the proxy's bind fails with EADDRINUSE.
  await new Promise<void>(resolve => blocker.listen({ host: '127.96.14.32', port: 8080 }, resolve))
  const { h, proxy, logs } = await setup(t)
  h.create(service('later', '127.96.14.32'))
  h.create(endpoints('later', [{ ip: '127.0.14.19', port: (bs[0] as { port: number }).port }]))
  await waitFor('the warning', () => logs.some(l => l.event === 'proxy.bind-failed' && l.code === 'EADDRINUSE'), 1000, 10)
  await new Promise(resolve => blocker.close(resolve))
  proxy.retryFailed()
  await proxy.settled()
  t.deepEqual(proxy.listening(), ['TCP/127.96.14.32:8080'])
  t.is(await ask('127.96.14.32', 8080, 'r'), 'b0:1')
})
