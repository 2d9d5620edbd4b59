// The libp2p host: TCP, a private network (pnet) keyed by the cluster key,
// Noise, Yamux, identify, ping and gossipsub. It owns the peer's identity and
// checks, right after pnet, that the other side holds the same cluster key.
// May import: protocol/, daemon/clock, daemon/log.
import { createHash } from 'node:crypto'
import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { gossipsub } from '@libp2p/gossipsub'
import type { GossipSub } from '@libp2p/gossipsub'
import { identify } from '@libp2p/identify'
import type { AbortOptions, ConnectionProtector, Libp2p, MultiaddrConnection, PrivateKey } from '@libp2p/interface'
import { ping } from '@libp2p/ping'
import type { Ping } from '@libp2p/ping'
import { preSharedKey } from '@libp2p/pnet'
import { tcp } from '@libp2p/tcp'
import { byteStream } from '@libp2p/utils'
import { createLibp2p } from 'libp2p'
import type { Logger } from '../log/log.ts'

export type ShoalServices = { ping: Ping, pubsub: GossipSub, identify: unknown }
export type ShoalHost = Libp2p<ShoalServices>

export interface HostOptions {
  privateKey: PrivateKey
  psk: Uint8Array
  listen: string[]
  log: Logger
}

/**
 * Wraps the pnet protector with a key check: right after the pnet nonces,
 * each side sends a fixed 16-byte marker through the encrypted stream and
 * reads the other's. With the same cluster key both read the marker; with
 * another key (or none) both read garbage at once, so both sides know it is
 * a key mismatch, say so, and drop the connection. (Without the check, a
 * wrong key showed only as garbled bytes that the next layer might wait on
 * until the dialer gave up, which looks like any slow handshake.) Each
 * remote address is reported at most once a minute, since a joiner with
 * the wrong key retries every second.
 */
const KEY_CHECK = new TextEncoder().encode('shoal/cluster-k1') // 16 bytes
const KEY_CHECK_TIMEOUT_MS = 10_000

export class ClusterKeyMismatchError extends Error {
  override name = 'ClusterKeyMismatchError'
}

function checkingProtector (factory: (components: any) => ConnectionProtector, log: Logger): (components: any) => ConnectionProtector {
  const lastLogged = new Map<string, number>()
  return (components) => {
    const inner = factory(components)
    return {
      async protect (conn: MultiaddrConnection, options?: AbortOptions) {
        const protectedConn = await inner.protect(conn, options)
        const bytes = byteStream(protectedConn)
        const signal = options?.signal ?? AbortSignal.timeout(KEY_CHECK_TIMEOUT_MS)
        const [got] = await Promise.all([bytes.read({ bytes: KEY_CHECK.length, signal }), bytes.write(KEY_CHECK, { signal })])
        if (Buffer.compare(got.subarray(), KEY_CHECK) === 0) return bytes.unwrap()
        const remote = conn.remoteAddr.toString()
        const direction = conn.direction === 'inbound' ? 'inbound' : 'outbound'
        const now = Date.now()
        if ((lastLogged.get(remote) ?? 0) <= now - 60_000) {
          lastLogged.set(remote, now)
          log.warn({ event: 'handshake.failed', direction, remote },
            `${direction} connection ${direction === 'inbound' ? 'from' : 'to'} ${remote} failed its handshake: the other peer has a different cluster key, or none`)
        }
        const err = new ClusterKeyMismatchError(`the peer at ${remote} has a different cluster key, or none`)
        conn.abort(err)
        throw err
      }
    } as ConnectionProtector
  }
}

/**
 * A peer that listens on one specific IPv4 address also dials from it, so
 * that its traffic carries its own address (several peers on one host each
 * have their own loopback address, and the chaos tests filter on it).
 */
function sourceAddress (listen: string[]): object {
  const ips = new Set(listen.map(a => /^\/ip4\/([\d.]+)\/tcp\//.exec(a)?.[1]))
  const [ip] = [...ips]
  return ips.size === 1 && ip !== undefined && ip !== '0.0.0.0' ? { localAddress: ip } : {}
}

function messageId (data: Uint8Array): Uint8Array {
  return createHash('sha256').update(data).digest().subarray(0, 20)
}

export async function createHost (opts: HostOptions): Promise<ShoalHost> {
  return await createLibp2p({
    privateKey: opts.privateKey,
    addresses: { listen: opts.listen },
    transports: [tcp({ dialOpts: sourceAddress(opts.listen) })],
    connectionProtector: checkingProtector(preSharedKey({ psk: opts.psk }), opts.log),
    connectionEncrypters: [noise()],
    // Yamux's keep-alive pings every connection; membership's own probes and
    // closed connections already tell who is gone, so they only cost CPU.
    streamMuxers: [yamux({ enableKeepAlive: false })],
    // Every member keeps a connection to every other, and many peers may share
    // one host address (or one NAT): libp2p's per-address inbound rate limit
    // of 5 a second would reset the joins of a burst of new peers.
    connectionManager: { maxConnections: 1000, inboundConnectionThreshold: 200, maxIncomingPendingConnections: 200 },
    // libp2p's monitor pings every connection every 10 s and aborts one whose
    // ping is slower than its adaptive timeout, which a busy event loop
    // easily is. Membership's own failure detector decides who is dead, and
    // with a connection to every member the monitor's pings were a large
    // part of an idle peer's work, so it is off.
    connectionMonitor: { enabled: false },
    services: {
      identify: identify(),
      ping: ping(),
      pubsub: gossipsub({
        allowPublishToZeroTopicPeers: true,
        emitSelf: false,
        heartbeatInterval: 1000,
        // Every connection is already authenticated by Noise inside the
        // private network, so per-message signatures buy nothing but CPU:
        // verifying them was a fifth of an idle peer's work.
        globalSignaturePolicy: 'StrictNoSign',
        msgIdFn: (msg) => messageId(msg.data),
        fastMsgIdFn: (msg) => Buffer.from(messageId(msg.data ?? new Uint8Array())).toString('base64'),
        msgIdToStrFn: (id) => Buffer.from(id).toString('base64'),
        // Each member is connected to every other: a small mesh spreads a
        // message in a hop or two, and flooding our own messages to every
        // peer would multiply the duplicates each peer must decrypt and drop.
        floodPublish: false,
        D: 2,
        Dlo: 1,
        Dhi: 4,
        Dlazy: 2
      })
    }
  }) as ShoalHost
}
