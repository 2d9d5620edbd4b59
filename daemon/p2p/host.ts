// The libp2p host: TCP, a private network (pnet) keyed by the cluster key,
// Noise, Yamux, identify, ping and gossipsub. It owns the peer's identity and
// reports handshakes that fail, which in a private network means that the
// other side holds another cluster key (or none).
// May import: protocol/, daemon/clock, daemon/log.
import { createHash } from 'node:crypto'
import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { gossipsub } from '@libp2p/gossipsub'
import type { GossipSub } from '@libp2p/gossipsub'
import { identify } from '@libp2p/identify'
import type { ConnectionProtector, Libp2p, MultiaddrConnection, PrivateKey } from '@libp2p/interface'
import { ping } from '@libp2p/ping'
import type { Ping } from '@libp2p/ping'
import { preSharedKey } from '@libp2p/pnet'
import { tcp } from '@libp2p/tcp'
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
 * Wraps the pnet protector to report connections whose upgrade fails after
 * protection: in a private network that means the other side holds another
 * cluster key, or none. libp2p reports such a failure only through the
 * connection's debug logger, so the wrapper taps that logger's error channel.
 * Each remote address is reported at most once a minute (a joiner with the
 * wrong key retries every second).
 */
const KEY_MISMATCH_WINDOW_MS = 5000

function reportingProtector (factory: (components: any) => ConnectionProtector, log: Logger): (components: any) => ConnectionProtector {
  const lastLogged = new Map<string, number>()
  return (components) => {
    const inner = factory(components)
    return {
      async protect (conn: MultiaddrConnection, options) {
        const remote = conn.remoteAddr.toString()
        const since = Date.now()
        const debugError = conn.log.error
        conn.log.error = (formatter: any, ...args: any[]) => {
          const err = args.find(a => a instanceof Error) as Error | undefined
          // A wrong key fails within milliseconds, on garbled bytes. A handshake
          // that the other side gave up on (a timeout on a busy machine) is
          // not a key problem and is left to the debug log.
          const elapsed = Date.now() - since
          const garbled = elapsed < KEY_MISMATCH_WINDOW_MS && !/abort|timeout|timed out/i.test(err?.message ?? '')
          const upgradeFailed = typeof formatter === 'string' && formatter.startsWith('failed to upgrade') && err?.name === 'EncryptionFailedError'
          const direction = args[0] === 'inbound' ? 'inbound' : 'outbound'
          if (upgradeFailed && !garbled) log.debug({ event: 'handshake.abandoned', direction, remote, elapsed, err: err?.message })
          if (upgradeFailed && garbled) {
            const now = Date.now()
            if ((lastLogged.get(remote) ?? 0) <= now - 60_000) {
              lastLogged.set(remote, now)
              log.warn({ event: 'handshake.failed', direction, remote, err: err.message },
                `${direction} connection ${direction === 'inbound' ? 'from' : 'to'} ${remote} failed its handshake: the other peer has a different cluster key, or none`)
            }
          }
          debugError(formatter, ...args)
        }
        return await inner.protect(conn, options)
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
    connectionProtector: reportingProtector(preSharedKey({ psk: opts.psk }), opts.log),
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
