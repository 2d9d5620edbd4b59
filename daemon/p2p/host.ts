// The libp2p host: TCP, a private network (pnet) keyed by the cluster key,
// Noise, Yamux, identify, ping and gossipsub. It owns the peer's identity and
// reports handshakes that fail, which in a private network means that the
// other side holds another cluster key (or none).
// May import: protocol/, daemon/clock, daemon/log.
import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { gossipsub } from '@libp2p/gossipsub'
import type { GossipSub } from '@libp2p/gossipsub'
import { identify } from '@libp2p/identify'
import type { ConnectionEncrypter, ConnectionProtector, Libp2p, MessageStream, MultiaddrConnection, PrivateKey } from '@libp2p/interface'
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
  /** heartbeat interval of gossipsub's own mesh maintenance, ms */
  gossipHeartbeatMs?: number
}

type ComponentFactory<T> = (components: any) => T

/**
 * Remembers the remote address of each protected stream, so that a failed
 * handshake can say where it came from, and logs each failing address at
 * most once a minute (a joiner with a wrong key retries every second).
 */
function handshakeReporter (log: Logger): {
  protector: (f: ComponentFactory<ConnectionProtector>) => ComponentFactory<ConnectionProtector>
  encrypter: (f: ComponentFactory<ConnectionEncrypter>) => ComponentFactory<ConnectionEncrypter>
} {
  const remoteOf = new WeakMap<object, string>()
  const lastLogged = new Map<string, number>()
  const report = (direction: string, conn: MessageStream, err: unknown): void => {
    const remote = remoteOf.get(conn) ?? 'unknown address'
    const now = Date.now()
    if ((lastLogged.get(remote) ?? 0) > now - 60_000) return
    lastLogged.set(remote, now)
    log.warn({ event: 'handshake.failed', direction, remote, err: (err as Error).message },
      `${direction} connection ${direction === 'inbound' ? 'from' : 'to'} ${remote} failed its handshake: the other peer has a different cluster key, or none`)
  }
  return {
    protector: (factory) => (components) => {
      const inner = factory(components)
      return {
        async protect (conn: MultiaddrConnection, options) {
          const out = await inner.protect(conn, options)
          remoteOf.set(out, conn.remoteAddr.toString())
          return out
        }
      } as ConnectionProtector
    },
    encrypter: (factory) => (components) => {
      const inner = factory(components)
      return {
        protocol: inner.protocol,
        async secureInbound (conn, options) {
          try { return await inner.secureInbound(conn, options) } catch (err) { report('inbound', conn, err); throw err }
        },
        async secureOutbound (conn, options) {
          try { return await inner.secureOutbound(conn, options) } catch (err) { report('outbound', conn, err); throw err }
        }
      }
    }
  }
}

export async function createHost (opts: HostOptions): Promise<ShoalHost> {
  const reporter = handshakeReporter(opts.log)
  return await createLibp2p({
    privateKey: opts.privateKey,
    addresses: { listen: opts.listen },
    transports: [tcp()],
    connectionProtector: reporter.protector(preSharedKey({ psk: opts.psk })),
    connectionEncrypters: [reporter.encrypter(noise())],
    streamMuxers: [yamux()],
    connectionManager: { maxConnections: 1000 },
    services: {
      identify: identify(),
      ping: ping(),
      pubsub: gossipsub({
        allowPublishToZeroTopicPeers: true,
        emitSelf: false,
        heartbeatInterval: opts.gossipHeartbeatMs ?? 1000
      })
    }
  }) as ShoalHost
}
