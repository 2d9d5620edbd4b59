// Framed msgpackr messages over libp2p streams: one request and at most one
// answer per stream, each frame length-prefixed and size-bounded.
import type { PeerId, Stream } from '@libp2p/interface'
import type { Multiaddr } from '@multiformats/multiaddr'
import { lpStream } from '@libp2p/utils'
import { decode, encode } from '../../protocol/codec.ts'
import type { Guard } from '../../protocol/codec.ts'
import type { ShoalHost } from './host.ts'

export interface RpcOptions {
  maxBytes: number
  /** for the exchange itself, once connected */
  timeoutMs: number
  /** for a new connection's handshake, when there is none yet (default: timeoutMs) */
  dialTimeoutMs?: number
}

/** Opens a stream, dialling first if need be; the handshake and the exchange have separate time limits. */
async function openStream (host: ShoalHost, target: PeerId | Multiaddr, protocol: string, opts: RpcOptions, signal: AbortSignal): Promise<Stream> {
  const connection = await host.dial(target, { signal: AbortSignal.timeout(opts.dialTimeoutMs ?? opts.timeoutMs) })
  return await connection.newStream(protocol, { signal })
}

/** A request that failed; `sent` is false when it never left this peer (no stream could be opened). */
export class RpcError extends Error {
  override name = 'RpcError'
  readonly sent: boolean
  constructor (message: string, sent: boolean) {
    super(message)
    this.sent = sent
  }
}

/** Sends `message` and, if `guard` is given, reads and checks one answer. Failures are RpcErrors. */
export async function request<T> (host: ShoalHost, target: PeerId | Multiaddr, protocol: string, message: unknown, guard: Guard<T>, opts: RpcOptions): Promise<T> {
  let stream: Stream
  try {
    stream = await openStream(host, target, protocol, opts, AbortSignal.timeout(opts.timeoutMs))
  } catch (err) {
    throw new RpcError((err as Error).message, false)
  }
  const signal = AbortSignal.timeout(opts.timeoutMs)
  try {
    const lp = lpStream(stream, { maxDataLength: opts.maxBytes })
    await lp.write(encode(message), { signal })
    const answer = await lp.read({ signal })
    await stream.close({ signal }).catch(() => {})
    return decode(answer.subarray(), guard, protocol)
  } catch (err) {
    stream.abort(err as Error)
    throw new RpcError((err as Error).message, true)
  }
}

/** Sends `message` and closes the stream without waiting for an answer. */
export async function tell (host: ShoalHost, target: PeerId | Multiaddr, protocol: string, message: unknown, opts: RpcOptions): Promise<void> {
  const stream = await openStream(host, target, protocol, opts, AbortSignal.timeout(opts.timeoutMs))
  const signal = AbortSignal.timeout(opts.timeoutMs)
  try {
    await lpStream(stream, { maxDataLength: opts.maxBytes }).write(encode(message), { signal })
    await stream.close({ signal })
  } catch (err) {
    stream.abort(err as Error)
    throw err
  }
}

/**
 * Serves `protocol`: each inbound stream carries one message, checked by
 * `guard`; what the handler returns (if not undefined) is the answer.
 * A malformed message aborts that stream only.
 */
export async function serve<T> (host: ShoalHost, protocol: string, guard: Guard<T>, opts: RpcOptions,
  handler: (message: T, remotePeer: PeerId) => Promise<unknown> | unknown,
  onError: (err: Error, remotePeer: PeerId) => void): Promise<void> {
  await host.handle(protocol, async (stream: Stream, connection) => {
    const signal = AbortSignal.timeout(opts.timeoutMs)
    try {
      const lp = lpStream(stream, { maxDataLength: opts.maxBytes })
      const message = decode((await lp.read({ signal })).subarray(), guard, protocol)
      const answer = await handler(message, connection.remotePeer)
      if (answer !== undefined) await lp.write(encode(answer), { signal })
      await stream.close({ signal })
    } catch (err) {
      stream.abort(err as Error)
      onError(err as Error, connection.remotePeer)
    }
  }, { maxInboundStreams: 256 })
}
