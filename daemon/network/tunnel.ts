// The tunnel (`/shoal/tunnel/1.0.0`): how the service proxy reaches an
// endpoint on another peer. The dialer opens a libp2p stream (encrypted by
// Noise, inside the cluster's private network) and sends one frame,
// `{ ip, port }`; the peer that runs the endpoint checks that ip:port is an
// address of an Endpoints object on its own node (it never dials anything
// else), connects, answers one frame (`{ ok: true }` or `{ ok: false,
// message }`), and from then on the stream carries the connection's raw
// bytes both ways, with back-pressure and half-close (pipe.ts).
// May import: protocol/ (codec), daemon/p2p (host), daemon/store/types.ts,
// daemon/clock, daemon/log, ./pipe.ts, ./routes.ts.
import { ENDPOINTS } from '../../protocol/kinds.ts'
import { createSocket } from 'node:dgram'
import { isIPv6 } from 'node:net'
import type { Duplex } from 'node:stream'
import type { PeerId, Stream } from '@libp2p/interface'
import { peerIdFromString } from '@libp2p/peer-id'
import { lpStream } from '@libp2p/utils'
import type { Multiaddr } from '@multiformats/multiaddr'
import { decode, encode } from '../../protocol/codec.ts'
import type { Endpoints } from '../../protocol/core-v1.ts'
import { systemClock } from '../clock/clock.ts'
import type { Clock } from '../clock/clock.ts'
import type { Logger } from '../log/log.ts'
import type { ShoalHost } from '../p2p/host.ts'
import type { StoreReader, Watch } from '../store/types.ts'
import { datagramFrame, datagramReader, isTunnelAnswer, isTunnelRequest, TUNNEL_PROTOCOL } from '../../protocol/network.ts'
import type { TunnelAnswer, TunnelRequest } from '../../protocol/network.ts'
import { connectTcp, splice, streamDuplex } from './pipe.ts'
import { serviceKey } from './routes.ts'

/** The handshake frames are tiny; anything bigger is not a tunnel request. */
const MAX_FRAME_BYTES = 1024
/** Open tunnels per connection between two peers, each way. */
const MAX_STREAMS = 4096
const DEFAULT_DIAL_TIMEOUT_MS = 2000
/** for the whole handshake: the request, the dial to the endpoint, the answer */
const HANDSHAKE_TIMEOUT_MS = 10_000


export { TUNNEL_PROTOCOL }

/** A tunnel that could not be opened: the peer is unreachable, refused the address, or could not connect to it. */
export class TunnelError extends Error {
  override name = 'TunnelError'
}

/** How the proxy reaches an endpoint on another node (see ServiceProxy). */
export type DialRemote = (nodeName: string, ip: string, port: number, signal: AbortSignal, udp?: boolean) => Promise<Duplex>

export interface TunnelInit {
  store: StoreReader
  /** this peer's member name: only endpoints with this nodeName are served */
  nodeName: string
  log: Logger
  clock?: Clock
  /** to connect to the endpoint; default 2 s */
  dialTimeoutMs?: number
}

export interface TunnelServer {
  /** stops serving and resets every open tunnel */
  stop: () => Promise<void>
}

/**
 * The ip:port pairs of this node's endpoints, kept from a watch on
 * Endpoints: ready and not-ready addresses both (a pod may turn unready
 * while a connection to it is being opened), every port of their subset.
 */
class LocalEndpoints {
  private readonly byObject = new Map<string, string[]>()
  private readonly counts = new Map<string, number>()
  private readonly nodeName: string

  constructor (nodeName: string) { this.nodeName = nodeName }

  has (ip: string, port: number, protocol: 'TCP' | 'UDP'): boolean {
    return (this.counts.get(`${protocol}/${ip}:${port}`) ?? 0) > 0
  }

  set (obj: Endpoints, present: boolean): void {
    const key = serviceKey(obj)
    for (const a of this.byObject.get(key) ?? []) {
      const n = (this.counts.get(a) ?? 1) - 1
      if (n <= 0) this.counts.delete(a)
      else this.counts.set(a, n)
    }
    this.byObject.delete(key)
    if (!present) return
    const addrs = new Set<string>()
    for (const s of obj.subsets ?? []) {
      const ports = s.ports ?? []
      for (const a of [...s.addresses ?? [], ...s.notReadyAddresses ?? []]) {
        if (a.nodeName !== this.nodeName || typeof a.ip !== 'string') continue
        for (const p of ports) if (typeof p.port === 'number' && (p.protocol === undefined || p.protocol === 'TCP' || p.protocol === 'UDP')) addrs.add(`${p.protocol ?? 'TCP'}/${a.ip}:${p.port}`)
      }
    }
    this.byObject.set(key, [...addrs])
    for (const a of addrs) this.counts.set(a, (this.counts.get(a) ?? 0) + 1)
  }
}

/** Serves inbound tunnels on `host` for the endpoints of this node. */
export async function registerTunnel (host: ShoalHost, init: TunnelInit): Promise<TunnelServer> {
  const { log, nodeName } = init
  const clock = init.clock ?? systemClock
  const dialTimeoutMs = init.dialTimeoutMs ?? DEFAULT_DIAL_TIMEOUT_MS
  const local = new LocalEndpoints(nodeName)
  const watch: Watch = init.store.watch(ENDPOINTS, {}, e => {
    if (e.type === 'ADDED' || e.type === 'MODIFIED' || e.type === 'DELETED') local.set(e.object, e.type !== 'DELETED')
  })
  const open = new Set<Duplex>()
  const streams = new Set<Stream>()

  await host.handle(TUNNEL_PROTOCOL, async (stream: Stream, connection) => {
    const from = connection.remotePeer.toString()
    streams.add(stream)
    const signal = AbortSignal.timeout(HANDSHAKE_TIMEOUT_MS)
    const lp = lpStream(stream, { maxDataLength: MAX_FRAME_BYTES })
    try {
      const req = decode((await lp.read({ signal })).subarray(), isTunnelRequest, TUNNEL_PROTOCOL)
      const refuse = async (message: string): Promise<void> => {
        log.debug({ event: 'tunnel.refused', from, ip: req.ip, port: req.port, reason: message }, 'a tunnel was refused')
        await lp.write(encode({ ok: false, message } satisfies TunnelAnswer), { signal })
        await stream.close({ signal })
      }
      if (!local.has(req.ip, req.port, req.udp === true ? 'UDP' : 'TCP')) {
        await refuse(`${req.ip}:${req.port} is not an endpoint on node ${nodeName}`)
        return
      }
      if (req.udp === true) {
        await lp.write(encode({ ok: true } satisfies TunnelAnswer), { signal })
        const remote = streamDuplex(lp.unwrap())
        open.add(remote)
        relayUdp(remote, req.ip, req.port, () => { open.delete(remote) })
        return
      }
      let socket
      try {
        socket = await connectTcp(req.ip, req.port, dialTimeoutMs, clock)
      } catch (err) {
        await refuse(`node ${nodeName} cannot connect to ${req.ip}:${req.port}: ${(err as Error).message}`)
        return
      }
      try {
        await lp.write(encode({ ok: true } satisfies TunnelAnswer), { signal })
      } catch (err) {
        socket.destroy()
        throw err
      }
      const remote = streamDuplex(lp.unwrap())
      open.add(remote)
      splice(socket, remote, err => {
        open.delete(remote)
        if (err !== undefined) log.debug({ event: 'tunnel.broken', from, ip: req.ip, port: req.port, err: err.message }, 'a tunnel ended with an error')
      })
    } catch (err) {
      stream.abort(err as Error)
      log.debug({ event: 'tunnel.failed', from, err: (err as Error).message }, 'an inbound tunnel failed')
    } finally {
      streams.delete(stream)
    }
  }, { maxInboundStreams: MAX_STREAMS })

  return {
    async stop () {
      watch.stop()
      await host.unhandle(TUNNEL_PROTOCOL)
      for (const s of streams) s.abort(new Error('the tunnel server stopped'))
      for (const d of open) d.destroy()
    }
  }
}

/**
 * Opens a tunnel to ip:port through the peer `peer` (its id, or an address
 * to dial it at) and returns the connection as a Duplex. Rejects with a
 * TunnelError if the peer cannot be reached, refuses the address, or
 * cannot connect to it.
 */
export async function dialTunnel (host: ShoalHost, peer: PeerId | Multiaddr | string, ip: string, port: number, signal?: AbortSignal, udp = false): Promise<Duplex> {
  const target = typeof peer === 'string' ? peerIdFromString(peer) : peer
  const sig = signal ?? AbortSignal.timeout(HANDSHAKE_TIMEOUT_MS)
  let stream: Stream
  try {
    stream = await host.dialProtocol(target, TUNNEL_PROTOCOL, { signal: sig, maxOutboundStreams: MAX_STREAMS })
  } catch (err) {
    throw new TunnelError(`cannot open a tunnel through ${target.toString()}: ${(err as Error).message}`)
  }
  try {
    const lp = lpStream(stream, { maxDataLength: MAX_FRAME_BYTES })
    await lp.write(encode({ ip, port, ...(udp ? { udp } : {}) } satisfies TunnelRequest), { signal: sig })
    const answer = decode((await lp.read({ signal: sig })).subarray(), isTunnelAnswer, TUNNEL_PROTOCOL)
    if (!answer.ok) throw new TunnelError(answer.message)
    return streamDuplex(lp.unwrap())
  } catch (err) {
    stream.abort(err as Error)
    if (err instanceof TunnelError) throw err
    throw new TunnelError(`tunnel to ${ip}:${port} through ${target.toString()} failed: ${(err as Error).message}`)
  }
}

/** The proxy's DialRemote over tunnels; `peerOf` maps a member's name to its peer id, if it is alive. */
export function tunnelDialer (host: ShoalHost, peerOf: (nodeName: string) => string | undefined): DialRemote {
  return async (nodeName, ip, port, signal, udp) => {
    const peer = peerOf(nodeName)
    if (peer === undefined) throw new TunnelError(`node ${nodeName} is not a live member`)
    return await dialTunnel(host, peer, ip, port, signal, udp)
  }
}

/** The far end of a UDP tunnel: datagrams from the stream go to ip:port from one socket, its answers come back. */
function relayUdp (remote: Duplex, ip: string, port: number, done: () => void): void {
  const socket = createSocket(isIPv6(ip) ? 'udp6' : 'udp4')
  let ended = false
  const end = (): void => {
    if (ended) return
    ended = true
    try { socket.close() } catch {}
    remote.destroy()
    done()
  }
  socket.on('message', (msg, from) => {
    // Datagrams are small and UDP may lose them; the stream buffers what a slow reader has not taken.
    if (from.address === ip && from.port === port && !remote.destroyed) remote.write(datagramFrame(msg))
  })
  socket.on('error', end)
  remote.on('data', datagramReader(payload => { socket.send(payload, port, ip) }))
  remote.on('end', end)
  remote.on('close', end)
  remote.on('error', end)
}
