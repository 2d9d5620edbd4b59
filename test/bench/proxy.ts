// The service proxy's cost: throughput of one connection and the latency of
// a request on a new connection, directly to a server on loopback, through
// the proxy to an endpoint on this node, and through the proxy and a tunnel
// between two libp2p hosts to an endpoint on "another" node. Everything
// runs in this process (both hosts, the proxy, the client and the server),
// so the remote figures pay for both ends of the tunnel on one core.
// Addresses: 127.0.15.200-202 and services 127.96.15.200-201.
import { connect, createServer } from 'node:net'
import type { AddressInfo, Server } from 'node:net'
import { randomBytes } from 'node:crypto'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { generateKey } from '@libp2p/pnet'
import { pino } from 'pino'
import { createHost } from '../../daemon/p2p/host.ts'
import { ServiceProxy } from '../../daemon/network/proxy.ts'
import { registerTunnel, tunnelDialer } from '../../daemon/network/tunnel.ts'
import { StoreHarness } from '../../daemon/store/testing.ts'
import { percentile } from './stats.ts'

export interface PathFigures {
  /** one connection, client to server, MB/s */
  throughputMBps: number
  /** connect, one small request, the answer, close: ms */
  p50Ms: number
  p99Ms: number
}

export interface ProxyFigures {
  direct: PathFigures
  local: PathFigures
  remote: PathFigures
  bytes: number
  requests: number
}

export interface ProxyBenchOptions {
  /** bytes sent per throughput run; default 256 MiB */
  bytes?: number
  /** requests per latency run; default 1000 */
  requests?: number
  log?: (line: string) => void
}

/** A server that counts what it receives and answers the count when the client ends. */
async function sinkServer (ip: string): Promise<{ server: Server, port: number }> {
  const server = createServer({ allowHalfOpen: true }, socket => {
    let n = 0
    socket.on('data', (d: Buffer) => { n += d.length })
    socket.on('end', () => { socket.end(String(n)) })
    socket.on('error', () => {})
  })
  await new Promise<void>(resolve => server.listen(0, ip, resolve))
  return { server, port: (server.address() as AddressInfo).port }
}

/** Sends `bytes` on one connection and reads the answer; resolves with the answer and the elapsed ms. */
async function transfer (ip: string, port: number, bytes: number): Promise<{ answer: string, ms: number }> {
  const block = randomBytes(64 * 1024)
  const started = performance.now()
  return await new Promise((resolve, reject) => {
    const socket = connect({ host: ip, port, allowHalfOpen: true })
    const chunks: Buffer[] = []
    let sent = 0
    const write = (): void => {
      while (sent < bytes) {
        const n = Math.min(block.length, bytes - sent)
        sent += n
        if (!socket.write(n === block.length ? block : block.subarray(0, n))) {
          socket.once('drain', write)
          return
        }
      }
      socket.end()
    }
    socket.on('connect', write)
    socket.on('data', (d: Buffer) => chunks.push(d))
    socket.on('end', () => { resolve({ answer: Buffer.concat(chunks).toString(), ms: performance.now() - started }) })
    socket.on('error', reject)
  })
}

async function measurePath (ip: string, port: number, bytes: number, requests: number): Promise<PathFigures> {
  // Warm up (the first tunnel opens the stream machinery, the JIT warms).
  for (let i = 0; i < 20; i++) await transfer(ip, port, 100)
  const big = await transfer(ip, port, bytes)
  if (big.answer !== String(bytes)) throw new Error(`${ip}:${port}: the server got ${big.answer} bytes of ${bytes}`)
  const latencies: number[] = []
  const deadline = performance.now() + 60_000
  for (let i = 0; i < requests && performance.now() < deadline; i++) latencies.push((await transfer(ip, port, 100)).ms)
  return { throughputMBps: bytes / 1e6 / (big.ms / 1000), p50Ms: percentile(latencies, 50), p99Ms: percentile(latencies, 99) }
}

export async function measureProxy (opts: ProxyBenchOptions = {}): Promise<ProxyFigures> {
  const bytes = opts.bytes ?? 256 * 1024 * 1024
  const requests = opts.requests ?? 1000
  const say = opts.log ?? (() => {})
  const log = pino({ level: 'silent' })
  const psk = new Uint8Array(95)
  generateKey(psk)
  const a = await createHost({ privateKey: await generateKeyPair('Ed25519'), psk, listen: ['/ip4/127.0.15.201/tcp/0'], log })
  const b = await createHost({ privateKey: await generateKeyPair('Ed25519'), psk, listen: ['/ip4/127.0.15.202/tcp/0'], log })
  const sink = await sinkServer('127.0.15.200')
  const h = new StoreHarness()
  const tunnel = await registerTunnel(b, { store: h.store, nodeName: 'node-b', log })
  const proxy = new ServiceProxy({
    store: h.store,
    nodeName: 'node-a',
    nodeAddress: '127.0.15.201',
    dialRemote: tunnelDialer(a, name => name === 'node-b' ? b.peerId.toString() : undefined),
    log
  })
  try {
    const addr = b.getMultiaddrs()[0]
    if (addr === undefined) throw new Error('host b has no address')
    await a.dial(addr)
    await proxy.start()
    for (const [name, ip, nodeName] of [['local', '127.96.15.200', 'node-a'], ['remote', '127.96.15.201', 'node-b']] as const) {
      h.create({ apiVersion: 'v1', kind: 'Service', metadata: { name, namespace: 'default' }, spec: { clusterIP: ip, ports: [{ name: 'tcp', port: 9000, protocol: 'TCP' }] } })
      h.create({
        apiVersion: 'v1',
        kind: 'Endpoints',
        metadata: { name, namespace: 'default' },
        subsets: [{ addresses: [{ ip: '127.0.15.200', nodeName }], ports: [{ name: 'tcp', port: sink.port, protocol: 'TCP' }] }]
      })
    }
    await new Promise(resolve => setImmediate(resolve))
    await proxy.settled()
    say(`proxy: direct, ${bytes / 1024 / 1024} MiB and ${requests} requests`)
    const direct = await measurePath('127.0.15.200', sink.port, bytes, requests)
    say('proxy: through the proxy to a local endpoint')
    const local = await measurePath('127.96.15.200', 9000, bytes, requests)
    say('proxy: through the proxy and a tunnel to a remote endpoint')
    const remote = await measurePath('127.96.15.201', 9000, bytes, requests)
    return { direct, local, remote, bytes, requests }
  } finally {
    await proxy.stop()
    await tunnel.stop()
    sink.server.close()
    await a.stop()
    await b.stop()
  }
}

// `node test/bench/proxy.ts` prints the figures.
if (import.meta.main) {
  const figures = await measureProxy({ log: line => { process.stderr.write(line + '\n') } })
  process.stdout.write(JSON.stringify(figures, null, 2) + '\n')
}
