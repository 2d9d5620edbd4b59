// Framed msgpackr messages over libp2p streams: one request and at most one
// answer per stream, each frame length-prefixed and size-bounded; or (the
// streaming variant) one request, a header answer, then raw byte frames.
import { Readable } from 'node:stream'
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

// ---- streamed answers ------------------------------------------------------
// After the request, the server writes one msgpackr header frame, then the
// body as raw byte frames (never empty), then one empty frame: the end. A
// stream that breaks before the empty frame is an error for the reader.
// Either side going away tears the other down: the reader destroying its body
// aborts the libp2p stream, which destroys the server's body.

/** Frames of the body are at most this big (well under any maxBytes). */
const BODY_FRAME_BYTES = 64 * 1024

export interface StreamedAnswer {
  /** encoded with msgpackr, checked by the reader's guard */
  header: unknown
  /** the bytes that follow the header; none for an error */
  body?: Readable
}

/** Pauses or resumes reading a libp2p stream (a closing stream refuses both; nothing to do then). */
function setPaused (stream: Stream, paused: boolean): void {
  try {
    if (paused) stream.pause()
    else stream.resume()
  } catch {}
}

/**
 * Sends `message`, reads and checks the header, and returns the body as a
 * Readable that pulls frames as its consumer reads them (the libp2p stream
 * is paused while the consumer is behind). Destroying the body aborts the
 * stream. Failures before the header are RpcErrors; `opts.timeoutMs` bounds
 * only the exchange up to the header.
 */
export async function requestStream<T> (host: ShoalHost, target: PeerId | Multiaddr, protocol: string, message: unknown, guard: Guard<T>, opts: RpcOptions): Promise<{ header: T, body: Readable }> {
  let stream: Stream
  try {
    stream = await openStream(host, target, protocol, opts, AbortSignal.timeout(opts.timeoutMs))
  } catch (err) {
    throw new RpcError((err as Error).message, false)
  }
  const lp = lpStream(stream, { maxDataLength: opts.maxBytes })
  let header: T
  try {
    const signal = AbortSignal.timeout(opts.timeoutMs)
    await lp.write(encode(message), { signal })
    header = decode((await lp.read({ signal })).subarray(), guard, protocol)
  } catch (err) {
    stream.abort(err as Error)
    throw new RpcError((err as Error).message, true)
  }
  let finished = false
  const body = new Readable({
    read () {
      setPaused(stream, false)
      lp.read().then(frame => {
        if (frame.byteLength === 0) {
          finished = true
          stream.close().catch(() => {})
          this.push(null)
          return
        }
        if (!this.push(frame.subarray())) setPaused(stream, true)
      }, (err: unknown) => { this.destroy(err as Error) })
    },
    destroy (err, callback) {
      if (!finished) stream.abort(err ?? new Error('the reader closed the stream'))
      callback(err)
    }
  })
  return { header, body }
}

/**
 * Serves `protocol` with streamed answers: each inbound stream carries one
 * message, checked by `guard`; the handler's header goes back, then its body
 * as it comes, with back-pressure (a write waits for the stream to drain).
 * When the requester goes away, the body is destroyed.
 */
export async function serveStream<T> (host: ShoalHost, protocol: string, guard: Guard<T>, opts: RpcOptions,
  handler: (message: T, remotePeer: PeerId) => Promise<StreamedAnswer>,
  onError: (err: Error, remotePeer: PeerId) => void): Promise<void> {
  await host.handle(protocol, async (stream: Stream, connection) => {
    let body: Readable | undefined
    const onClose = (): void => { body?.destroy() }
    stream.addEventListener('close', onClose)
    try {
      const lp = lpStream(stream, { maxDataLength: opts.maxBytes })
      const message = decode((await lp.read({ signal: AbortSignal.timeout(opts.timeoutMs) })).subarray(), guard, protocol)
      const answer = await handler(message, connection.remotePeer)
      body = answer.body
      // The requester may have gone while the handler ran: no close event will come again.
      if (stream.status !== 'open') throw new Error('the requester went away')
      await lp.write(encode(answer.header), { signal: AbortSignal.timeout(opts.timeoutMs) })
      if (body !== undefined) {
        for await (const chunk of body as AsyncIterable<Uint8Array>) {
          for (let at = 0; at < chunk.byteLength; at += BODY_FRAME_BYTES) await lp.write(chunk.subarray(at, at + BODY_FRAME_BYTES))
        }
      }
      await lp.write(new Uint8Array(0), { signal: AbortSignal.timeout(opts.timeoutMs) })
      await stream.close({ signal: AbortSignal.timeout(opts.timeoutMs) })
    } catch (err) {
      body?.destroy()
      stream.abort(err as Error)
      onError(err as Error, connection.remotePeer)
    } finally {
      stream.removeEventListener('close', onClose)
    }
  }, { maxInboundStreams: 256 })
}
