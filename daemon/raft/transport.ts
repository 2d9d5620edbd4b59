// Carries the Raft core's messages between peers over libp2p. Ordinary
// messages go in order on one long-lived stream per destination
// (RAFT_PROTOCOL), as length-prefixed msgpackr frames, one message a frame;
// a snapshot goes on a stream of its own (RAFT_SNAPSHOT_PROTOCOL) in chunks
// and is delivered whole. Sending never blocks and never throws: what cannot
// be sent is dropped, since Raft resends.
// May import: protocol/, daemon/p2p, daemon/log, daemon/clock.
import type { PeerId, Stream } from '@libp2p/interface'
import { peerIdFromString } from '@libp2p/peer-id'
import { LengthPrefixedDecoder, lpStream } from '@libp2p/utils'
import { decode, encode, isObject } from '../../protocol/codec.ts'
import { isRaftMessage, isSnapshotMeta, RAFT_PROTOCOL, RAFT_SNAPSHOT_PROTOCOL } from '../../protocol/raft.ts'
import type { RaftMessage, SnapshotMessage } from '../../protocol/raft.ts'
import { systemClock } from '../clock/clock.ts'
import type { Clock, TimerHandle } from '../clock/clock.ts'
import type { Logger } from '../log/log.ts'
import type { ShoalHost } from '../p2p/host.ts'

export interface RaftTransportInit {
  host: ShoalHost
  log: Logger
  /** every message that arrives, decoded and checked (isRaftMessage); snapshots arrive whole, with data */
  onMessage: (m: RaftMessage) => void
  /**
   * A snapshot send finished: ok true means the receiver acknowledged the
   * whole snapshot; false means it failed and the leader should try again later.
   */
  onSnapshotSent: (to: string, ok: boolean) => void
  /** optional: a peer's connection went away (used to speed up failover) */
  onPeerDisconnected?: (peerId: string) => void
  /**
   * The largest ordinary message, either way. Default 16 MiB: an append
   * carries at most the core's maxBatchBytes (1 MiB) or one entry of at most
   * MAX_COMMAND_BYTES (4 MiB), so every append fits with room to spare; a
   * larger message is dropped here, and Raft would resend it forever.
   */
  maxMessageBytes?: number
  /** a snapshot's data travels in frames of this size. Default 256 KiB. */
  snapshotChunkBytes?: number
  /** the largest snapshot this peer accepts. Default 1 GiB. */
  maxSnapshotBytes?: number
  /**
   * A snapshot transfer, either way, fails after this long without progress
   * (no chunk written or read, no acknowledgement). Default 60 s.
   */
  snapshotTimeoutMs?: number
  /** messages waiting for one peer, beyond which the oldest are dropped. Default 4,096. */
  maxQueuedMessages?: number
  /** bytes waiting for one peer, beyond which the oldest messages are dropped. Default 64 MiB. */
  maxQueuedBytes?: number
  /** dialling a peer and opening its stream. Default 5 s. */
  openTimeoutMs?: number
  /** a write that cannot drain for this long breaks the stream. Default 10 s. */
  writeTimeoutMs?: number
  /** after a failure, the first wait before the stream to that peer is reopened; it doubles up to 1 s. Default 100 ms. */
  minBackoffMs?: number
  clock?: Clock
}

export const RAFT_TRANSPORT_DEFAULTS = {
  maxMessageBytes: 16 * 1024 * 1024,
  snapshotChunkBytes: 256 * 1024,
  maxSnapshotBytes: 1024 * 1024 * 1024,
  snapshotTimeoutMs: 60_000,
  maxQueuedMessages: 4096,
  maxQueuedBytes: 64 * 1024 * 1024,
  openTimeoutMs: 5000,
  writeTimeoutMs: 10_000,
  minBackoffMs: 100
}

const MAX_BACKOFF_MS = 1000
const MAX_INBOUND_STREAMS = 32
const MAX_OUTBOUND_STREAMS = 32

/** The first frame of a snapshot stream: the message without its data, and the data's size. */
type SnapshotHeader = Omit<SnapshotMessage, 'data'> & { size: number }

function isSnapshotHeader (v: unknown): v is SnapshotHeader {
  return isRaftMessage(v) && v.type === 'snapshot' && v.data === undefined && isSnapshotMeta(v.meta) &&
    isObject(v) && typeof v.size === 'number' && Number.isSafeInteger(v.size) && v.size >= 0
}

/** The receiver's last frame on a snapshot stream: it holds the whole snapshot. */
function isSnapshotAck (v: unknown): v is { ok: true } {
  return isObject(v) && v.ok === true
}

class TransportError extends Error {
  override name = 'RaftTransportError'
}

/** One destination: its queue of encoded frames and its outbound stream. */
interface Link {
  peerId: string
  queue: Uint8Array[]
  queueBytes: number
  stream?: Stream
  /** the framing writer of `stream` (made once: each one listens on the stream) */
  writer?: ReturnType<typeof lpStream>
  /** the writer loop is running */
  pumping: boolean
  backoffMs: number
  /** no stream is opened before this time, after a failure */
  retryAt: number
  /** messages dropped since the last report */
  dropped: number
}

export class RaftTransport {
  private readonly host: ShoalHost
  private readonly log: Logger
  private readonly init: RaftTransportInit
  private readonly clock: Clock
  private readonly self: string
  private readonly maxMessageBytes: number
  private readonly snapshotChunkBytes: number
  private readonly maxSnapshotBytes: number
  private readonly snapshotTimeoutMs: number
  private readonly maxQueuedMessages: number
  private readonly maxQueuedBytes: number
  private readonly openTimeoutMs: number
  private readonly writeTimeoutMs: number
  private readonly minBackoffMs: number
  private readonly links = new Map<string, Link>()
  /** inbound streams and outbound snapshot streams, aborted on stop */
  private readonly streams = new Set<Stream>()
  /** writer loops waiting out a back-off, woken on stop */
  private readonly sleepers = new Set<() => void>()
  private readonly stopping = new AbortController()
  private started = false
  private stopped = false
  private readonly onDisconnect = (evt: CustomEvent<PeerId>): void => {
    const peerId = evt.detail.toString()
    if (this.stopped || this.init.onPeerDisconnected === undefined) return
    try {
      this.init.onPeerDisconnected(peerId)
    } catch (err) {
      this.log.error({ event: 'raft.transport.callback-failed', err: (err as Error).message }, 'onPeerDisconnected threw')
    }
  }

  constructor (init: RaftTransportInit) {
    this.init = init
    this.host = init.host
    this.log = init.log
    this.clock = init.clock ?? systemClock
    this.self = init.host.peerId.toString()
    const d = RAFT_TRANSPORT_DEFAULTS
    this.maxMessageBytes = init.maxMessageBytes ?? d.maxMessageBytes
    this.snapshotChunkBytes = init.snapshotChunkBytes ?? d.snapshotChunkBytes
    this.maxSnapshotBytes = init.maxSnapshotBytes ?? d.maxSnapshotBytes
    this.snapshotTimeoutMs = init.snapshotTimeoutMs ?? d.snapshotTimeoutMs
    this.maxQueuedMessages = init.maxQueuedMessages ?? d.maxQueuedMessages
    this.maxQueuedBytes = init.maxQueuedBytes ?? d.maxQueuedBytes
    this.openTimeoutMs = init.openTimeoutMs ?? d.openTimeoutMs
    this.writeTimeoutMs = init.writeTimeoutMs ?? d.writeTimeoutMs
    this.minBackoffMs = init.minBackoffMs ?? d.minBackoffMs
    for (const [name, v] of Object.entries({
      maxMessageBytes: this.maxMessageBytes,
      snapshotChunkBytes: this.snapshotChunkBytes,
      maxSnapshotBytes: this.maxSnapshotBytes,
      snapshotTimeoutMs: this.snapshotTimeoutMs,
      maxQueuedMessages: this.maxQueuedMessages,
      maxQueuedBytes: this.maxQueuedBytes,
      openTimeoutMs: this.openTimeoutMs,
      writeTimeoutMs: this.writeTimeoutMs,
      minBackoffMs: this.minBackoffMs
    })) {
      if (!Number.isSafeInteger(v) || v <= 0) throw new TransportError(`raft transport: ${name} must be a positive whole number, not ${v}`)
    }
    if (this.snapshotChunkBytes > this.maxMessageBytes) {
      throw new TransportError(`raft transport: snapshotChunkBytes (${this.snapshotChunkBytes}) exceeds maxMessageBytes (${this.maxMessageBytes})`)
    }
  }

  /** Registers the protocol handlers and starts watching disconnections. */
  async start (): Promise<void> {
    if (this.started) return
    this.started = true
    const options = { maxInboundStreams: MAX_INBOUND_STREAMS, maxOutboundStreams: MAX_OUTBOUND_STREAMS }
    await this.host.handle(RAFT_PROTOCOL, (stream, connection) => {
      void this.receive(stream, connection.remotePeer.toString())
    }, options)
    await this.host.handle(RAFT_SNAPSHOT_PROTOCOL, (stream, connection) => {
      void this.receiveSnapshot(stream, connection.remotePeer.toString())
    }, options)
    this.host.addEventListener('peer:disconnect', this.onDisconnect)
  }

  /** Queues `m` for its destination. Never blocks, never throws. */
  send (m: RaftMessage): void {
    if (this.stopped) return
    try {
      if (m.to === this.self) {
        // The core does not address itself, but if it does, no network is needed.
        queueMicrotask(() => { if (!this.stopped) this.deliver(m) })
        return
      }
      if (m.type === 'snapshot') {
        void this.sendSnapshot(m)
        return
      }
      const frame = encode(m)
      if (frame.byteLength > this.maxMessageBytes) {
        this.log.warn({ event: 'raft.transport.too-large', to: m.to, type: m.type, bytes: frame.byteLength },
          `a ${m.type} message of ${frame.byteLength} bytes exceeds the limit of ${this.maxMessageBytes}; dropped`)
        return
      }
      this.enqueue(this.link(m.to), frame)
    } catch (err) {
      this.log.error({ event: 'raft.transport.send-failed', to: m.to, type: m.type, err: (err as Error).message })
    }
  }

  /** Aborts every stream, stops the writer loops and unregisters the protocols. */
  async stop (): Promise<void> {
    if (this.stopped) return
    this.stopped = true
    this.stopping.abort(new TransportError('raft transport stopped'))
    this.host.removeEventListener('peer:disconnect', this.onDisconnect)
    for (const wake of this.sleepers) wake()
    this.sleepers.clear()
    const err = new TransportError('raft transport stopped')
    for (const link of this.links.values()) {
      link.queue = []
      link.queueBytes = 0
      link.stream?.abort(err)
      link.stream = undefined
    }
    this.links.clear()
    for (const stream of this.streams) stream.abort(err)
    this.streams.clear()
    if (this.started) await this.host.unhandle([RAFT_PROTOCOL, RAFT_SNAPSHOT_PROTOCOL]).catch(() => {})
  }

  // --- ordinary messages, outbound ---

  private link (peerId: string): Link {
    let link = this.links.get(peerId)
    if (link === undefined) {
      link = { peerId, queue: [], queueBytes: 0, pumping: false, backoffMs: this.minBackoffMs, retryAt: 0, dropped: 0 }
      this.links.set(peerId, link)
    }
    return link
  }

  private enqueue (link: Link, frame: Uint8Array): void {
    link.queue.push(frame)
    link.queueBytes += frame.byteLength
    while (link.queue.length > this.maxQueuedMessages || (link.queueBytes > this.maxQueuedBytes && link.queue.length > 1)) {
      link.queueBytes -= (link.queue.shift() as Uint8Array).byteLength
      link.dropped++
    }
    if (!link.pumping) void this.pump(link)
  }

  /**
   * The writer loop of one destination: while frames are queued, it writes
   * them all in one go (one stream write for the whole batch, which is what
   * keeps the cost per message low) and waits for the stream to drain.
   */
  private async pump (link: Link): Promise<void> {
    link.pumping = true
    try {
      // Let every message of the same turn (a whole Ready) join the batch.
      await Promise.resolve()
      while (!this.stopped && link.queue.length > 0) {
        const wait = link.retryAt - this.clock.now()
        if (wait > 0) {
          await this.sleep(wait)
          continue
        }
        if (link.dropped > 0) {
          this.log.debug({ event: 'raft.transport.queue-full', to: link.peerId, dropped: link.dropped })
          link.dropped = 0
        }
        let stream = link.stream
        try {
          if (stream === undefined || link.writer === undefined || stream.writeStatus !== 'writable') {
            stream = await this.open(link)
            if (this.stopped) {
              stream.abort(new TransportError('raft transport stopped'))
              return
            }
            link.stream = stream
            link.writer = lpStream(stream, { maxDataLength: this.maxMessageBytes })
          }
          const batch = link.queue
          link.queue = []
          link.queueBytes = 0
          await this.write(stream, link.writer, batch)
          link.backoffMs = this.minBackoffMs
        } catch (err) {
          this.fail(link, stream, err as Error)
        }
      }
    } finally {
      link.pumping = false
    }
  }

  private async open (link: Link): Promise<Stream> {
    const signal = AbortSignal.any([this.stopping.signal, AbortSignal.timeout(this.openTimeoutMs)])
    const stream = await this.host.dialProtocol(peerIdFromString(link.peerId), RAFT_PROTOCOL, { signal })
    // The peer may close or reset it at any time (a restart, a lost
    // connection): forget it then, so that the next batch opens another.
    stream.addEventListener('close', () => {
      if (link.stream === stream) { link.stream = undefined; link.writer = undefined }
    })
    this.log.debug({ event: 'raft.transport.opened', to: link.peerId })
    return stream
  }

  /** Writes frames as one batch; a write that cannot drain in time breaks the stream. */
  private async write (stream: Stream, writer: ReturnType<typeof lpStream>, frames: Uint8Array[]): Promise<void> {
    const timer = this.clock.setTimeout(() => {
      stream.abort(new TransportError(`raft stream did not drain within ${this.writeTimeoutMs} ms`))
    }, this.writeTimeoutMs)
    try {
      await writer.writeV(frames)
    } finally {
      this.clock.clearTimeout(timer)
    }
  }

  /** Drops what is queued for the peer (Raft resends) and backs off before reopening. */
  private fail (link: Link, stream: Stream | undefined, err: Error): void {
    if (this.stopped) return
    stream?.abort(err)
    if (link.stream === stream) { link.stream = undefined; link.writer = undefined }
    const dropped = link.queue.length
    link.queue = []
    link.queueBytes = 0
    link.retryAt = this.clock.now() + link.backoffMs
    this.log.debug({ event: 'raft.transport.link-failed', to: link.peerId, err: err.message, dropped, backoffMs: link.backoffMs })
    link.backoffMs = Math.min(link.backoffMs * 2, Math.max(MAX_BACKOFF_MS, this.minBackoffMs))
  }

  private async sleep (ms: number): Promise<void> {
    await new Promise<void>(resolve => {
      let handle: TimerHandle | undefined
      const wake = (): void => {
        if (handle !== undefined) this.clock.clearTimeout(handle)
        this.sleepers.delete(wake)
        resolve()
      }
      this.sleepers.add(wake)
      handle = this.clock.setTimeout(wake, ms)
    })
  }

  // --- ordinary messages, inbound ---

  /** Reads frames until the stream ends; a malformed frame aborts this stream only. */
  private async receive (stream: Stream, remote: string): Promise<void> {
    if (this.stopped) {
      stream.abort(new TransportError('raft transport stopped'))
      return
    }
    this.streams.add(stream)
    const decoder = new LengthPrefixedDecoder({ maxDataLength: this.maxMessageBytes, maxBufferSize: 2 * this.maxMessageBytes })
    let liedAbout = false
    // Bytes that arrived, and bytes of whole frames read: unequal at the end means a frame was cut short.
    let received = 0
    let framed = 0
    try {
      for await (const chunk of stream) {
        received += chunk.byteLength
        for (const frame of decoder.decode(chunk)) {
          framed += frame.byteLength + varintLength(frame.byteLength)
          const m = decode(frame.subarray(), isRaftMessage, 'raft message')
          if (m.from !== remote || m.to !== this.self) {
            if (!liedAbout) {
              liedAbout = true
              this.log.warn({ event: 'raft.transport.misaddressed', remote, from: m.from, to: m.to, type: m.type },
                `${remote} sent a raft message from ${m.from} to ${m.to}; dropped`)
            }
            continue
          }
          this.deliver(m)
        }
      }
      // The sender closed its side. A frame cut short (or an empty one, which no
      // message is, or a length prefix that never ends) is malformed; otherwise
      // close ours too, so that the stream ends rather than stays half open.
      if (received !== framed) throw new TransportError(`the stream ended inside a frame (${received - framed} bytes of it)`)
      await stream.close().catch(() => {})
    } catch (err) {
      if (!this.stopped) {
        this.log.warn({ event: 'raft.transport.bad-stream', remote, err: (err as Error).message },
          `raft stream from ${remote} broken: ${(err as Error).message}`)
      }
      stream.abort(err as Error)
    } finally {
      this.streams.delete(stream)
    }
  }

  private deliver (m: RaftMessage): void {
    try {
      this.init.onMessage(m)
    } catch (err) {
      this.log.error({ event: 'raft.transport.callback-failed', type: m.type, from: m.from, err: (err as Error).message }, 'onMessage threw')
    }
  }

  // --- snapshots ---

  /**
   * Sends a snapshot on a stream of its own: the message without data but
   * with the data's size, the data in chunks, then the receiver's
   * acknowledgement. Memory stays at a few chunks: each write waits for the
   * stream to drain.
   */
  private async sendSnapshot (m: SnapshotMessage): Promise<void> {
    const to = m.to
    if (m.data === undefined) {
      this.log.error({ event: 'raft.transport.snapshot-without-data', to, index: m.meta.index }, 'a snapshot message has no data; not sent')
      this.reportSnapshot(to, false)
      return
    }
    const data = m.data
    const progress = new Progress(this.clock, this.snapshotTimeoutMs, this.stopping.signal)
    let stream: Stream | undefined
    try {
      stream = await this.host.dialProtocol(peerIdFromString(to), RAFT_SNAPSHOT_PROTOCOL, { signal: progress.signal })
      this.streams.add(stream)
      const lp = lpStream(stream, { maxDataLength: this.maxMessageBytes })
      const { data: _, ...message } = m
      const header: SnapshotHeader = { ...message, size: data.byteLength }
      await lp.write(encode(header), { signal: progress.signal })
      for (let offset = 0; offset < data.byteLength; offset += this.snapshotChunkBytes) {
        progress.touch()
        await lp.write(data.subarray(offset, offset + this.snapshotChunkBytes), { signal: progress.signal })
      }
      progress.touch()
      await stream.close({ signal: progress.signal })
      decode((await lp.read({ signal: progress.signal })).subarray(), isSnapshotAck, 'snapshot acknowledgement')
      this.log.debug({ event: 'raft.transport.snapshot-sent', to, index: m.meta.index, bytes: data.byteLength })
      this.reportSnapshot(to, true)
    } catch (err) {
      stream?.abort(err as Error)
      if (!this.stopped) {
        this.log.info({ event: 'raft.transport.snapshot-failed', to, index: m.meta.index, err: (err as Error).message },
          `snapshot to ${to} failed: ${(err as Error).message}`)
      }
      this.reportSnapshot(to, false)
    } finally {
      progress.done()
      if (stream !== undefined) this.streams.delete(stream)
    }
  }

  private reportSnapshot (to: string, ok: boolean): void {
    // Never from inside send(): the caller may not expect to be re-entered.
    queueMicrotask(() => {
      if (this.stopped) return
      try {
        this.init.onSnapshotSent(to, ok)
      } catch (err) {
        this.log.error({ event: 'raft.transport.callback-failed', err: (err as Error).message }, 'onSnapshotSent threw')
      }
    })
  }

  /** Collects a snapshot's chunks, checks its size, acknowledges it and delivers it whole. */
  private async receiveSnapshot (stream: Stream, remote: string): Promise<void> {
    if (this.stopped) {
      stream.abort(new TransportError('raft transport stopped'))
      return
    }
    this.streams.add(stream)
    const progress = new Progress(this.clock, this.snapshotTimeoutMs, this.stopping.signal)
    try {
      const lp = lpStream(stream, { maxDataLength: this.maxMessageBytes, maxBufferSize: 2 * this.maxMessageBytes })
      const header = decode((await lp.read({ signal: progress.signal })).subarray(), isSnapshotHeader, 'snapshot header')
      if (header.from !== remote || header.to !== this.self) {
        throw new TransportError(`snapshot from ${header.from} to ${header.to} came from ${remote}`)
      }
      if (header.size > this.maxSnapshotBytes) {
        throw new TransportError(`snapshot of ${header.size} bytes exceeds the limit of ${this.maxSnapshotBytes}`)
      }
      const data = new Uint8Array(header.size)
      let received = 0
      while (received < header.size) {
        progress.touch()
        const chunk = await lp.read({ signal: progress.signal })
        if (received + chunk.byteLength > header.size) {
          throw new TransportError(`snapshot data exceeds its announced ${header.size} bytes`)
        }
        for (const part of chunk) {
          data.set(part, received)
          received += part.byteLength
        }
      }
      progress.touch()
      await lp.write(encode({ ok: true }), { signal: progress.signal })
      await stream.close({ signal: progress.signal })
      const { size, ...message } = header
      this.log.debug({ event: 'raft.transport.snapshot-received', from: remote, index: message.meta.index, bytes: size })
      if (!this.stopped) this.deliver({ ...message, data })
    } catch (err) {
      if (!this.stopped) {
        this.log.warn({ event: 'raft.transport.bad-snapshot', remote, err: (err as Error).message },
          `snapshot from ${remote} refused: ${(err as Error).message}`)
      }
      stream.abort(err as Error)
    } finally {
      progress.done()
      this.streams.delete(stream)
    }
  }
}

/** An abort signal that fires after `ms` without a touch(), or when `parent` fires. */
class Progress {
  private readonly controller = new AbortController()
  private readonly clock: Clock
  private readonly ms: number
  private handle: TimerHandle | undefined
  private last: number
  private readonly onParentAbort = (): void => { this.controller.abort(this.parent.reason) }
  private readonly parent: AbortSignal
  readonly signal: AbortSignal

  constructor (clock: Clock, ms: number, parent: AbortSignal) {
    this.clock = clock
    this.ms = ms
    this.parent = parent
    this.signal = this.controller.signal
    this.last = clock.now()
    if (parent.aborted) this.controller.abort(parent.reason)
    else parent.addEventListener('abort', this.onParentAbort, { once: true })
    this.arm(ms)
  }

  /** Progress was made: the deadline moves. Cheap, since it only records the time. */
  touch (): void {
    this.last = this.clock.now()
  }

  done (): void {
    if (this.handle !== undefined) this.clock.clearTimeout(this.handle)
    this.handle = undefined
    this.parent.removeEventListener('abort', this.onParentAbort)
  }

  private arm (ms: number): void {
    this.handle = this.clock.setTimeout(() => {
      const idle = this.clock.now() - this.last
      if (idle >= this.ms) {
        this.controller.abort(new TransportError(`no progress for ${this.ms} ms`))
        this.handle = undefined
      } else {
        this.arm(this.ms - idle)
      }
    }, ms)
  }
}

/** How many bytes the varint length prefix of an `n`-byte frame takes. */
function varintLength (n: number): number {
  let bytes = 1
  for (let rest = n; rest >= 128; rest = Math.floor(rest / 128)) bytes++
  return bytes
}
