// The tunnel between two real libp2p hosts in this process, on 127.0.15.x:
// 100 MB through it intact with bounded memory, refusals of addresses that
// are not this node's endpoints, a host without the cluster key, and the
// service proxy reaching a remote endpoint through it.
import test from 'ava'
import { createSocket } from 'node:dgram'
import { createHash, randomBytes } from 'node:crypto'
import { connect, createServer } from 'node:net'
import type { AddressInfo, Server, Socket } from 'node:net'
import { Readable } from 'node:stream'
import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'
import type { Duplex } from 'node:stream'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { generateKey } from '@libp2p/pnet'
import { pino } from 'pino'
import type { KObject } from '../../protocol/k8s.ts'
import { createHost } from '../../daemon/p2p/host.ts'
import type { ShoalHost } from '../../daemon/p2p/host.ts'
import { ServiceProxy } from '../../daemon/network/proxy.ts'
import { dialTunnel, registerTunnel, TunnelError, tunnelDialer } from '../../daemon/network/tunnel.ts'
import type { TunnelServer } from '../../daemon/network/tunnel.ts'
import { StoreHarness } from '../../daemon/store/testing.ts'
import { waitFor } from '../helpers/cluster.ts'

const log = pino({ level: 'silent' })
setFlagsFromString('--expose-gc')
const gc = runInNewContext('gc') as () => void

function newPsk (): Uint8Array {
  const psk = new Uint8Array(95)
  generateKey(psk)
  return psk
}

async function startHost (ip: string, psk: Uint8Array): Promise<ShoalHost> {
  return await createHost({ privateKey: await generateKeyPair('Ed25519'), psk, listen: [`/ip4/${ip}/tcp/0`], log })
}

function endpointsOn (name: string, ip: string, port: number, nodeName: string): KObject {
  return {
    apiVersion: 'v1',
    kind: 'Endpoints',
    metadata: { name, namespace: 'default' },
    subsets: [{ addresses: [{ ip, nodeName }], ports: [{ name: 'tcp', port, protocol: 'TCP' }] }]
  }
}

/** An echo server that also hashes what it receives, and counts its connections. */
async function echoServer (ip: string): Promise<{ server: Server, port: number, digests: string[], connections: () => number }> {
  const digests: string[] = []
  let connections = 0
  const server = createServer({ allowHalfOpen: true }, socket => {
    connections++
    const hash = createHash('sha256')
    socket.on('data', (d: Buffer) => { hash.update(d) })
    socket.on('end', () => { digests.push(hash.digest('hex')) })
    socket.on('error', () => {})
    socket.pipe(socket)
  })
  await new Promise<void>(resolve => server.listen(0, ip, resolve))
  return { server, port: (server.address() as AddressInfo).port, digests, connections: () => connections }
}

interface Pair { a: ShoalHost, b: ShoalHost, h: StoreHarness, tunnel: TunnelServer }

async function pair (aIp: string, bIp: string): Promise<Pair> {
  const psk = newPsk()
  const a = await startHost(aIp, psk)
  const b = await startHost(bIp, psk)
  const h = new StoreHarness()
  const tunnel = await registerTunnel(b, { store: h.store, nodeName: 'node-b', log })
  await a.dial(b.getMultiaddrs()[0] as NonNullable<ReturnType<typeof b.getMultiaddrs>[0]>)
  return { a, b, h, tunnel }
}

async function stopPair (p: Pair): Promise<void> {
  await p.tunnel.stop()
  await p.a.stop()
  await p.b.stop()
}

const TOTAL = 100 * 1024 * 1024
const CHUNK = 64 * 1024

/** TOTAL bytes, varied chunk by chunk, produced as the reader asks for them. */
function payload (hash: ReturnType<typeof createHash>): Readable {
  const block = randomBytes(CHUNK)
  let sent = 0
  return new Readable({
    read () {
      if (sent >= TOTAL) {
        this.push(null)
        return
      }
      const chunk = Buffer.from(block)
      chunk.writeUInt32BE(sent / CHUNK, 0)
      sent += chunk.length
      hash.update(chunk)
      this.push(chunk)
    }
  })
}

test.serial('100 MB go through the tunnel and back intact, with bounded memory', async t => {
  t.timeout(120_000)
  const echo = await echoServer('127.0.15.10')
  const p = await pair('127.0.15.1', '127.0.15.2')
  try {
    p.h.create(endpointsOn('echo', '127.0.15.10', echo.port, 'node-b'))
    const conn = await dialTunnel(p.a, p.b.peerId, '127.0.15.10', echo.port)
    const sentHash = createHash('sha256')
    const backHash = createHash('sha256')
    // Buffering shows as live memory: collect the garbage (Noise makes a lot
    // of it) before each sample, so that what grows is what is held.
    const live = (): number => { gc(); const m = process.memoryUsage(); return m.heapUsed + m.arrayBuffers }
    const before = process.memoryUsage().rss
    const liveBefore = live()
    let peak = before
    let livePeak = liveBefore
    const sampler = setInterval(() => {
      livePeak = Math.max(livePeak, live())
      peak = Math.max(peak, process.memoryUsage().rss)
    }, 100)
    let received = 0
    const done = new Promise<void>((resolve, reject) => {
      conn.on('data', (d: Buffer) => { received += d.length; backHash.update(d) })
      conn.on('end', resolve)
      conn.on('error', reject)
    })
    // The client ends its side after sending; the echo's remaining bytes still arrive (half-close).
    payload(sentHash).pipe(conn)
    await done
    clearInterval(sampler)
    const sent = sentHash.digest('hex')
    t.is(received, TOTAL)
    t.is(backHash.digest('hex'), sent)
    await waitFor('the server digest', () => echo.digests.length === 1, 5000, 10)
    t.is(echo.digests[0], sent)
    const growthMb = (peak - before) / 1024 / 1024
    const liveMb = (livePeak - liveBefore) / 1024 / 1024
    t.log(`growth during the transfer: RSS ${growthMb.toFixed(1)} MB, live heap and buffers ${liveMb.toFixed(1)} MB`)
    // Both ends of the tunnel are in this process, and each direction may
    // hold one Yamux window (up to 16 MiB) while its reader is paused.
    // Unbounded buffering would hold most of the 100 MB.
    t.true(liveMb < 80, `live memory grew by ${liveMb.toFixed(1)} MB`)
    t.true(growthMb < 100, `RSS grew by ${growthMb.toFixed(1)} MB`)
  } finally {
    echo.server.close()
    await stopPair(p)
  }
})

test.serial('addresses that are not this node\'s endpoints are refused with a clear message', async t => {
  const echo = await echoServer('127.0.15.11')
  const p = await pair('127.0.15.3', '127.0.15.4')
  try {
    // An endpoint, but of another node.
    p.h.create(endpointsOn('elsewhere', '127.0.15.11', echo.port, 'node-c'))
    const err = await t.throwsAsync(dialTunnel(p.a, p.b.peerId, '127.0.15.11', echo.port), { instanceOf: TunnelError })
    t.is(err?.message, `127.0.15.11:${echo.port} is not an endpoint on node node-b`)
    // Not an endpoint at all.
    await t.throwsAsync(dialTunnel(p.a, p.b.peerId, '127.0.0.1', 22), { instanceOf: TunnelError, message: '127.0.0.1:22 is not an endpoint on node node-b' })
    t.is(echo.connections(), 0)
    // An endpoint of this node where nothing listens: the connect error comes back.
    p.h.create(endpointsOn('down', '127.0.15.12', 9, 'node-b'))
    await t.throwsAsync(dialTunnel(p.a, p.b.peerId, '127.0.15.12', 9), { instanceOf: TunnelError, message: /node node-b cannot connect to 127\.0\.15\.12:9: .*ECONNREFUSED/ })
  } finally {
    echo.server.close()
    await stopPair(p)
  }
})

test.serial('a host with another cluster key cannot open a tunnel', async t => {
  const echo = await echoServer('127.0.15.13')
  const p = await pair('127.0.15.5', '127.0.15.6')
  const stranger = await startHost('127.0.15.7', newPsk())
  try {
    p.h.create(endpointsOn('echo', '127.0.15.13', echo.port, 'node-b'))
    const addr = p.b.getMultiaddrs()[0]
    if (addr === undefined) throw new Error('no address')
    await t.throwsAsync(dialTunnel(stranger, addr, '127.0.15.13', echo.port, AbortSignal.timeout(5000)), { instanceOf: TunnelError })
    t.is(echo.connections(), 0)
    // The cluster's own peer still can.
    const conn = await dialTunnel(p.a, p.b.peerId, '127.0.15.13', echo.port)
    conn.end('ping')
    t.is(await readAll(conn), 'ping')
  } finally {
    echo.server.close()
    await stranger.stop()
    await stopPair(p)
  }
})

async function readAll (s: Duplex | Socket): Promise<string> {
  const chunks: Buffer[] = []
  for await (const c of s) chunks.push(c as Buffer)
  return Buffer.concat(chunks).toString()
}

test.serial('the service proxy reaches an endpoint on another node through the tunnel', async t => {
  const echo = await echoServer('127.0.15.14')
  const p = await pair('127.0.15.8', '127.0.15.9')
  const proxy = new ServiceProxy({
    store: p.h.store,
    nodeName: 'node-a',
    nodeAddress: '127.0.15.8',
    dialRemote: tunnelDialer(p.a, name => name === 'node-b' ? p.b.peerId.toString() : undefined),
    log
  })
  try {
    await proxy.start()
    p.h.create({ apiVersion: 'v1', kind: 'Service', metadata: { name: 'echo', namespace: 'default' }, spec: { clusterIP: '127.96.15.20', ports: [{ name: 'tcp', port: 7000, protocol: 'TCP' }] } })
    p.h.create(endpointsOn('echo', '127.0.15.14', echo.port, 'node-b'))
    await waitFor('the listener', () => proxy.listening().includes('TCP/127.96.15.20:7000'), 1000, 10)
    for (let i = 0; i < 5; i++) {
      const s = connect({ host: '127.96.15.20', port: 7000, allowHalfOpen: true })
      s.end(`hello ${i}`)
      t.is(await readAll(s), `hello ${i}`)
    }
    t.is(echo.connections(), 5)
  } finally {
    await proxy.stop()
    echo.server.close()
    await stopPair(p)
  }
})

test.serial('UDP through the proxy reaches an endpoint on another node through a UDP tunnel, and the answers come back', async t => {
  const echo = createSocket('udp4')
  echo.on('message', (msg, from) => { echo.send(Buffer.concat([Buffer.from('echo:'), msg]), from.port, from.address) })
  await new Promise<void>(resolve => { echo.bind(0, '127.0.15.15', resolve) })
  const p = await pair('127.0.15.10', '127.0.15.11')
  const proxy = new ServiceProxy({
    store: p.h.store,
    nodeName: 'node-a',
    nodeAddress: '127.0.15.10',
    dialRemote: tunnelDialer(p.a, name => name === 'node-b' ? p.b.peerId.toString() : undefined),
    log
  })
  const client = createSocket('udp4')
  try {
    await proxy.start()
    p.h.create({ apiVersion: 'v1', kind: 'Service', metadata: { name: 'dgram', namespace: 'default' }, spec: { clusterIP: '127.96.15.21', ports: [{ name: 'dns', port: 5300, protocol: 'UDP' }] } })
    p.h.create({ apiVersion: 'v1', kind: 'Endpoints', metadata: { name: 'dgram', namespace: 'default' }, subsets: [{ addresses: [{ ip: '127.0.15.15', nodeName: 'node-b' }], ports: [{ name: 'dns', port: echo.address().port, protocol: 'UDP' }] }] })
    await waitFor('the UDP listener', () => proxy.listening().includes('UDP/127.96.15.21:5300'), 1000, 10)
    const answers: string[] = []
    client.on('message', msg => { answers.push(msg.toString()) })
    await new Promise<void>(resolve => { client.bind(0, '127.0.0.1', resolve) })
    for (let i = 0; i < 5; i++) client.send(`ping ${i}`, 5300, '127.96.15.21')
    await waitFor('5 answers', () => answers.length === 5, 10_000, 20)
    t.deepEqual(answers.sort(), [0, 1, 2, 3, 4].map(i => `echo:ping ${i}`))
  } finally {
    client.close()
    await proxy.stop()
    echo.close()
    await stopPair(p)
  }
})
