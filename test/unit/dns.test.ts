// The cluster DNS server over a StoreHarness, queried over loopback with
// dns-packet (UDP and TCP) and with Node's own resolver.
// Each test listens on its own 127.0.16.x address with a kernel-picked port.
import test from 'ava'
import type { ExecutionContext } from 'ava'
import { createSocket } from 'node:dgram'
import { Resolver } from 'node:dns/promises'
import { connect } from 'node:net'
import { decode, encode, RECURSION_DESIRED, TRUNCATED_RESPONSE } from 'dns-packet'
import type { Answer, DecodedPacket, Packet, RecordType, SrvAnswer } from 'dns-packet'
import { DnsServer } from '../../daemon/network/dns.ts'
import type { DnsServerOptions } from '../../daemon/network/dns.ts'
import { createLogger } from '../../daemon/log/log.ts'
import { namespace, NOW, pod, ref, StoreHarness } from '../../daemon/store/testing.ts'
import type { KObject } from '../../protocol/k8s.ts'

type Reply = DecodedPacket & { rcode: string }
const HANG_MS = 10_000

function service (name: string, spec: Record<string, unknown>, namespace = 'default'): KObject {
  return { apiVersion: 'v1', kind: 'Service', metadata: { name, namespace }, spec }
}

function endpoints (name: string, ready: Array<{ ip: string, pod?: string, hostname?: string }>, notReady: string[], ports: unknown[], namespace = 'default'): KObject {
  const address = (a: { ip: string, pod?: string, hostname?: string }): Record<string, unknown> => ({
    ip: a.ip, ...(a.hostname === undefined ? {} : { hostname: a.hostname }), targetRef: { kind: 'Pod', namespace, name: a.pod ?? `pod-${a.ip}` }
  })
  return {
    apiVersion: 'v1',
    kind: 'Endpoints',
    metadata: { name, namespace },
    subsets: [{ ...(ready.length > 0 ? { addresses: ready.map(address) } : {}), ...(notReady.length > 0 ? { notReadyAddresses: notReady.map(ip => address({ ip })) } : {}), ports }]
  }
}

async function serve (t: ExecutionContext, h: StoreHarness, host: string, extra: Partial<DnsServerOptions> = {}): Promise<{ server: DnsServer, port: number }> {
  const server = new DnsServer({ store: h.store, listen: [{ host, port: 0 }], log: createLogger('silent', 'test'), ...extra })
  await server.start()
  t.teardown(async () => { await server.stop() })
  const port = server.addresses()[0]?.port
  if (port === undefined) throw new Error('no address bound')
  return { server, port }
}

function query (name: string, type: RecordType, opts: { id?: number, edns?: number } = {}): Buffer {
  return encode({
    type: 'query',
    id: opts.id ?? 4242,
    flags: RECURSION_DESIRED,
    questions: [{ type, name, class: 'IN' }],
    additionals: opts.edns === undefined ? [] : [{ type: 'OPT', name: '.', udpPayloadSize: opts.edns, extendedRcode: 0, ednsVersion: 0, flags: 0, flag_do: false, options: [] }]
  })
}

/** Sends `msgs` over UDP and waits for the first reply (rejects after a generous hang bound). */
async function udp (host: string, port: number, ...msgs: Buffer[]): Promise<Reply> {
  const sock = createSocket('udp4')
  try {
    return await new Promise<Reply>((resolve, reject) => {
      const timer = setTimeout(() => { reject(new Error('no UDP reply')) }, HANG_MS)
      sock.on('message', m => { clearTimeout(timer); resolve(decode(m) as Reply) })
      for (const m of msgs) sock.send(m, port, host)
    })
  } finally {
    sock.close()
  }
}

/** Writes `bytes` on one TCP connection and collects `count` framed replies; resolves early with what came if the server closes. */
async function tcp (host: string, port: number, bytes: Buffer, count: number): Promise<{ replies: Reply[], closed: boolean }> {
  return await new Promise((resolve, reject) => {
    const sock = connect({ host, port })
    const replies: Reply[] = []
    let buf = Buffer.alloc(0)
    const timer = setTimeout(() => { sock.destroy(); reject(new Error('no TCP reply')) }, HANG_MS)
    sock.on('error', reject)
    sock.on('close', () => { clearTimeout(timer); resolve({ replies, closed: true }) })
    sock.on('data', (chunk: Buffer) => {
      buf = Buffer.concat([buf, chunk])
      while (buf.length >= 2 && buf.length >= 2 + buf.readUInt16BE(0)) {
        replies.push(decode(buf.subarray(2, 2 + buf.readUInt16BE(0))) as Reply)
        buf = buf.subarray(2 + buf.readUInt16BE(0))
      }
      if (replies.length >= count) { clearTimeout(timer); sock.destroy(); resolve({ replies, closed: false }) }
    })
    sock.write(bytes)
  })
}

function framed (msg: Buffer): Buffer {
  const len = Buffer.alloc(2)
  len.writeUInt16BE(msg.length)
  return Buffer.concat([len, msg])
}

function resolver (host: string, port: number): Resolver {
  const r = new Resolver({ timeout: 2000, tries: 1 })
  r.setServers([`${host}:${port}`])
  return r
}

const dataOf = (answers: Answer[] | undefined): unknown[] => (answers ?? []).map(a => (a as { data: unknown }).data)

test('A for a service is its clusterIP, for Node\'s resolver too, case-insensitive with a trailing dot', async t => {
  const h = new StoreHarness()
  h.create(service('web', { clusterIP: '127.96.0.10', ports: [{ name: 'http', port: 80 }] }))
  const host = '127.0.16.2'
  const { port } = await serve(t, h, host)
  t.deepEqual(await resolver(host, port).resolve4('web.default.svc.cluster.local'), ['127.96.0.10'])
  const r = await udp(host, port, query('WEB.Default.SVC.cluster.LOCAL.', 'A', { id: 777 }))
  t.is(r.id, 777)
  t.is(r.rcode, 'NOERROR')
  t.true(r.flag_aa)
  t.deepEqual(dataOf(r.answers), ['127.96.0.10'])
  t.is(r.answers?.[0]?.type, 'A')
  t.is((r.answers?.[0] as { ttl: number }).ttl, 5)
  // Only fully qualified names under the domain.
  t.is((await udp(host, port, query('web.default.svc', 'A'))).rcode, 'NXDOMAIN')
})

test('changes in the store are followed: a service made after start answers, a deleted one is NXDOMAIN', async t => {
  const h = new StoreHarness()
  const host = '127.0.16.3'
  const { port } = await serve(t, h, host)
  h.create(namespace('ns-1'))
  const name = 'late.ns-1.svc.cluster.local'
  const before = await udp(host, port, query(name, 'A'))
  t.is(before.rcode, 'NXDOMAIN')
  h.create(service('late', { clusterIP: '127.96.0.11', ports: [{ port: 8080 }] }, 'ns-1'))
  t.deepEqual(dataOf((await udp(host, port, query(name, 'A'))).answers), ['127.96.0.11'])
  h.ok(h.apply({ op: 'delete', ref: ref('services', 'late', 'ns-1'), now: NOW }))
  const after = await udp(host, port, query(name, 'A'))
  t.is(after.rcode, 'NXDOMAIN')
  t.is(after.answers?.length, 0)
})

test('a headless service answers its ready endpoints only, and each endpoint by name', async t => {
  const h = new StoreHarness()
  h.create(service('db', { clusterIP: 'None', ports: [{ name: 'pg', port: 5432 }] }))
  h.create({ ...pod('db-0'), spec: { containers: [{ name: 'main', image: 'postgres' }], hostname: 'db-0', subdomain: 'db' } })
  h.create(endpoints('db', [{ ip: '127.64.1.2', pod: 'db-0' }, { ip: '127.64.1.3' }], ['127.64.1.4'], [{ name: 'pg', port: 5432, protocol: 'TCP' }]))
  const host = '127.0.16.4'
  const { port } = await serve(t, h, host)
  t.deepEqual((await resolver(host, port).resolve4('db.default.svc.cluster.local')).sort(), ['127.64.1.2', '127.64.1.3'])
  // By the pod's hostname (its subdomain is the service) or by the dashed IP.
  t.deepEqual(dataOf((await udp(host, port, query('db-0.db.default.svc.cluster.local', 'A'))).answers), ['127.64.1.2'])
  t.deepEqual(dataOf((await udp(host, port, query('127-64-1-3.db.default.svc.cluster.local', 'A'))).answers), ['127.64.1.3'])
  t.is((await udp(host, port, query('127-64-1-4.db.default.svc.cluster.local', 'A'))).rcode, 'NXDOMAIN', 'a not-ready address has no name')
  // SRV: one per ready endpoint, the target's address in the additionals.
  const srv = await udp(host, port, query('_pg._tcp.db.default.svc.cluster.local', 'SRV'))
  t.deepEqual(dataOf(srv.answers), [
    { priority: 0, weight: 100, port: 5432, target: 'db-0.db.default.svc.cluster.local' },
    { priority: 0, weight: 100, port: 5432, target: '127-64-1-3.db.default.svc.cluster.local' }
  ])
  t.deepEqual(srv.additionals?.map(a => [a.name, (a as { data: unknown }).data]), [
    ['db-0.db.default.svc.cluster.local', '127.64.1.2'],
    ['127-64-1-3.db.default.svc.cluster.local', '127.64.1.3']
  ])
})

test('SRV for a named port of a clusterIP service, for Node\'s resolver too', async t => {
  const h = new StoreHarness()
  h.create(service('api', { clusterIP: '127.96.0.12', ports: [{ name: 'http', port: 80 }, { name: 'dns', port: 53, protocol: 'UDP' }] }))
  const host = '127.0.16.5'
  const { port } = await serve(t, h, host)
  const viaNode = await resolver(host, port).resolveSrv('_http._tcp.api.default.svc.cluster.local')
  t.is(viaNode.length, 1)
  t.like(viaNode[0], { name: 'api.default.svc.cluster.local', port: 80, priority: 0, weight: 100 })
  const r = await udp(host, port, query('_dns._udp.api.default.svc.cluster.local', 'SRV'))
  t.deepEqual(dataOf(r.answers), [{ priority: 0, weight: 100, port: 53, target: 'api.default.svc.cluster.local' }])
  t.deepEqual(dataOf(r.additionals), ['127.96.0.12'])
  t.is((await udp(host, port, query('_http._udp.api.default.svc.cluster.local', 'SRV'))).rcode, 'NXDOMAIN', 'wrong protocol')
  t.is((await udp(host, port, query('_nope._tcp.api.default.svc.cluster.local', 'SRV'))).rcode, 'NXDOMAIN')
  const nodata = await udp(host, port, query('_http._tcp.api.default.svc.cluster.local', 'A'))
  t.is(nodata.rcode, 'NOERROR')
  t.is(nodata.answers?.length, 0)
})

test('an unknown name under the domain is NXDOMAIN with an SOA; another type of a known name is NODATA', async t => {
  const h = new StoreHarness()
  h.create(service('web', { clusterIP: '127.96.0.10', ports: [{ port: 80 }] }))
  const host = '127.0.16.6'
  const { port } = await serve(t, h, host)
  for (const name of ['nope.default.svc.cluster.local', 'web.nope.svc.cluster.local', 'x.web.default.svc.cluster.local', 'foo.cluster.local', 'a.b.c.d.e.f.svc.cluster.local']) {
    const r = await udp(host, port, query(name, 'A'))
    t.is(r.rcode, 'NXDOMAIN', name)
    t.is(r.authorities?.[0]?.type, 'SOA', name)
    t.like((r.authorities?.[0] as { data: object }).data, { mname: 'ns.dns.cluster.local', minimum: 5 })
  }
  const err = await t.throwsAsync(resolver(host, port).resolve4('nope.default.svc.cluster.local'))
  t.is((err as { code?: string }).code, 'ENOTFOUND')
  const aaaa = await udp(host, port, query('web.default.svc.cluster.local', 'AAAA'))
  t.is(aaaa.rcode, 'NOERROR')
  t.is(aaaa.answers?.length, 0)
  t.is(aaaa.authorities?.[0]?.type, 'SOA')
  // Namespaces and the zone apex exist (empty non-terminals), with no records of their own.
  t.is((await udp(host, port, query('default.svc.cluster.local', 'A'))).rcode, 'NOERROR')
  t.is((await udp(host, port, query('cluster.local', 'SOA'))).answers?.[0]?.type, 'SOA')
})

test('pod names: <a-b-c-d>.<ns>.pod.<domain>', async t => {
  const h = new StoreHarness()
  const host = '127.0.16.7'
  const { port } = await serve(t, h, host)
  t.deepEqual(dataOf((await udp(host, port, query('127-64-0-9.default.pod.cluster.local', 'A'))).answers), ['127.64.0.9'])
  t.is((await udp(host, port, query('not-an-ip.default.pod.cluster.local', 'A'))).rcode, 'NXDOMAIN')
  t.is((await udp(host, port, query('127-64-0-9.default.pod.cluster.local', 'AAAA'))).rcode, 'NOERROR')
})

test('names outside the domain are NXDOMAIN with no upstream, relayed from the upstream with one', async t => {
  const h = new StoreHarness()
  // A fake upstream that answers every A query with 192.0.2.1.
  const upstream = createSocket('udp4')
  let asked = 0
  upstream.on('message', (m, from) => {
    const q = decode(m)
    asked++
    upstream.send(encode({ type: 'response', id: q.id ?? 0, flags: 0, questions: q.questions ?? [], answers: [{ type: 'A', name: q.questions?.[0]?.name ?? '', ttl: 60, data: '192.0.2.1' }] }), from.port, from.address)
  })
  await new Promise<void>(resolve => upstream.bind(0, '127.0.16.9', resolve))
  t.teardown(() => upstream.close())
  const { port: lonely } = await serve(t, h, '127.0.16.8')
  t.is((await udp('127.0.16.8', lonely, query('example.com', 'A'))).rcode, 'NXDOMAIN')
  const { port } = await serve(t, h, '127.0.16.10', { upstream: [`127.0.16.9:${upstream.address().port}`] })
  const r = await udp('127.0.16.10', port, query('Example.com', 'A', { id: 31337 }))
  t.is(r.id, 31337, 'the client\'s id')
  t.is(r.rcode, 'NOERROR')
  t.deepEqual(dataOf(r.answers), ['192.0.2.1'])
  t.is(asked, 1)
  // Over TCP from the client, and Node's resolver through us.
  const { replies } = await tcp('127.0.16.10', port, framed(query('example.org', 'A', { id: 9 })), 1)
  t.is(replies[0]?.id, 9)
  t.deepEqual(dataOf(replies[0]?.answers), ['192.0.2.1'])
  t.deepEqual(await resolver('127.0.16.10', port).resolve4('example.net'), ['192.0.2.1'])
  // Names under the domain never go upstream.
  t.is((await udp('127.0.16.10', port, query('x.default.svc.cluster.local', 'A'))).rcode, 'NXDOMAIN')
  t.is(asked, 3)
})

test('a silent upstream gives SERVFAIL after the timeout', async t => {
  const h = new StoreHarness()
  const silent = createSocket('udp4')
  await new Promise<void>(resolve => silent.bind(0, '127.0.16.11', resolve))
  t.teardown(() => silent.close())
  const { port } = await serve(t, h, '127.0.16.12', { upstream: [`127.0.16.11:${silent.address().port}`], upstreamTimeoutMs: 100 })
  t.is((await udp('127.0.16.12', port, query('example.com', 'A'))).rcode, 'SERVFAIL')
})

test('TCP: framed queries, pipelined on one connection', async t => {
  const h = new StoreHarness()
  h.create(service('web', { clusterIP: '127.96.0.10', ports: [{ port: 80 }] }))
  h.create(service('api', { clusterIP: '127.96.0.12', ports: [{ port: 80 }] }))
  const host = '127.0.16.13'
  const { port } = await serve(t, h, host)
  const { replies } = await tcp(host, port, Buffer.concat([framed(query('web.default.svc.cluster.local', 'A', { id: 1 })), framed(query('api.default.svc.cluster.local', 'A', { id: 2 }))]), 2)
  const byId = new Map(replies.map(r => [r.id, dataOf(r.answers)]))
  t.deepEqual(byId.get(1), ['127.96.0.10'])
  t.deepEqual(byId.get(2), ['127.96.0.12'])
})

test('a big answer is truncated over UDP unless EDNS allows it, and whole over TCP', async t => {
  const h = new StoreHarness()
  h.create(service('many', { clusterIP: 'None', ports: [{ name: 'http', port: 80 }] }))
  const ips = Array.from({ length: 30 }, (_, i) => `127.64.2.${i + 10}`)
  h.create(endpoints('many', ips.map(ip => ({ ip })), [], [{ name: 'http', port: 80, protocol: 'TCP' }]))
  const host = '127.0.16.14'
  const { port } = await serve(t, h, host)
  const name = 'many.default.svc.cluster.local'
  const small = await udp(host, port, query(name, 'A'))
  t.true(small.flag_tc)
  t.is(small.answers?.length, 0)
  const edns = await udp(host, port, query(name, 'A', { edns: 4096 }))
  t.false(edns.flag_tc)
  t.is(edns.answers?.length, 30)
  t.true(edns.additionals?.some(a => a.type === 'OPT'))
  const { replies } = await tcp(host, port, framed(query(name, 'A')), 1)
  t.is(replies[0]?.answers?.length, 30)
  t.is((replies[0]?.flags ?? 0) & TRUNCATED_RESPONSE, 0)
  // Node's resolver falls back to TCP (or uses EDNS) and gets them all.
  t.is((await resolver(host, port).resolve4(name)).length, 30)
  // SRV additionals are dropped first, without truncating.
  const srv = await udp(host, port, query('_http._tcp.many.default.svc.cluster.local', 'SRV', { edns: 4096 }))
  t.false(srv.flag_tc)
  t.is(srv.answers?.length, 30)
  t.true((srv.answers as SrvAnswer[]).every(a => a.data.port === 80))
})

test('malformed packets are dropped (UDP) or close the connection (TCP), and the server goes on', async t => {
  const h = new StoreHarness()
  h.create(service('web', { clusterIP: '127.96.0.10', ports: [{ port: 80 }] }))
  const host = '127.0.16.15'
  const { port } = await serve(t, h, host)
  const good = query('web.default.svc.cluster.local', 'A', { id: 5 })
  const truncated = good.subarray(0, good.length - 3)
  const badPointer = Buffer.from(good)
  badPointer.writeUInt8(0xc0, 12)
  badPointer.writeUInt8(0xff, 13)
  // Garbage first, on the same socket: only the good query is answered.
  const r = await udp(host, port, Buffer.from('hello'), truncated, badPointer, Buffer.alloc(600, 0xff), good)
  t.is(r.id, 5)
  t.deepEqual(dataOf(r.answers), ['127.96.0.10'])
  // A header that asks no or two questions: FORMERR.
  t.is((await udp(host, port, encode({ type: 'query', id: 7, questions: [] }))).rcode, 'FORMERR')
  const two = encode({ type: 'query', id: 6, questions: [{ type: 'A', name: 'a.cluster.local' }, { type: 'A', name: 'b.cluster.local' }] } satisfies Packet)
  t.is((await udp(host, port, two)).rcode, 'FORMERR')
  const closed = await tcp(host, port, framed(truncated), 1)
  t.true(closed.closed)
  t.is(closed.replies.length, 0)
  t.deepEqual(dataOf((await udp(host, port, good)).answers), ['127.96.0.10'])
})

test('a listen address that cannot be bound fails start with the address in the message; peers can share one', async t => {
  const h = new StoreHarness()
  const log = createLogger('silent', 'test')
  const taken = createSocket('udp4')
  await new Promise<void>(resolve => taken.bind(0, '127.0.16.16', resolve))
  t.teardown(() => taken.close())
  const port = taken.address().port
  const busy = new DnsServer({ store: h.store, listen: [{ host: '127.0.16.16', port }], log })
  const err = await t.throwsAsync(busy.start())
  t.regex(err?.message ?? '', new RegExp(`127\\.0\\.16\\.16:${port}: address already in use`))
  const absent = new DnsServer({ store: h.store, listen: [{ host: '192.0.2.1', port: 5353 }], log })
  t.regex((await t.throwsAsync(absent.start()))?.message ?? '', /192\.0\.2\.1:5353: address not available/)
  if (process.platform !== 'linux') return
  // Two peers on one host share an address through SO_REUSEPORT.
  h.create(service('web', { clusterIP: '127.96.0.10', ports: [{ port: 80 }] }))
  const { port: shared } = await serve(t, h, '127.0.16.17')
  const second = new DnsServer({ store: h.store, listen: [{ host: '127.0.16.17', port: shared }], log })
  await second.start()
  t.teardown(async () => { await second.stop() })
  t.deepEqual(dataOf((await udp('127.0.16.17', shared, query('web.default.svc.cluster.local', 'A'))).answers), ['127.96.0.10'])
  // An upstream that is the shared address itself would loop.
  const loop = new DnsServer({ store: h.store, listen: [{ host: '127.0.16.17', port: shared }], upstream: [`127.0.16.17:${shared}`], log })
  t.regex((await t.throwsAsync(loop.start()))?.message ?? '', /own listen address/)
})
