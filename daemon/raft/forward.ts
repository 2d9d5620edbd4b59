// Forwarding from followers to the leader: proposals and read-index
// requests, multiplexed over one long-lived libp2p stream per leader. A
// stream per request cost a protocol negotiation and a logger each time,
// which dominated the follower's CPU; here requests and answers are frames
// tagged with an id, written in batches.
// May import: protocol/, daemon/p2p, daemon/log, daemon/clock, ./node.ts (ForwardError).
import { peerIdFromString } from '@libp2p/peer-id'
import type { Stream } from '@libp2p/interface'
import { lpStream } from '@libp2p/utils'
import { decode, encode, isNumber, isObject } from '../../protocol/codec.ts'
import { isForwardRequest, isForwardResponse, MAX_COMMAND_BYTES, RAFT_FORWARD_PROTOCOL } from '../../protocol/raft.ts'
import type { ForwardRequest, ForwardResponse } from '../../protocol/raft.ts'
import type { Clock, TimerHandle } from '../clock/clock.ts'
import type { Logger } from '../log/log.ts'
import type { ShoalHost } from '../p2p/host.ts'
import { ForwardError } from './node.ts'

/**
 * A frame holds one request (a command of at most MAX_COMMAND_BYTES) or one
 * answer (what applying it returned: at most an object, which the store
 * keeps within MAX_COMMAND_BYTES as well), with room to spare. Readers buffer
 * two frames: libp2p's default buffer of 4 MiB reset the stream on the first
 * frame larger than that, so a follower's largest writes never got through.
 */
const MAX_FRAME_BYTES = 4 * MAX_COMMAND_BYTES
const FRAMING = { maxDataLength: MAX_FRAME_BYTES, maxBufferSize: 2 * MAX_FRAME_BYTES }
const OPEN_TIMEOUT_MS = 2000

interface RequestFrame { id: number, req: ForwardRequest }
interface ResponseFrame { id: number, res: ForwardResponse }

function isRequestFrame (v: unknown): v is RequestFrame {
  return isObject(v) && isNumber(v.id) && isForwardRequest(v.req)
}

function isResponseFrame (v: unknown): v is ResponseFrame {
  return isObject(v) && isNumber(v.id) && isForwardResponse(v.res)
}

interface Pending {
  resolve: (res: ForwardResponse) => void
  reject: (err: ForwardError) => void
  /** handed to the stream: from then on, a failure leaves the outcome unknown */
  written: boolean
  timer: TimerHandle
}

/** The client side towards one peer. */
interface Session {
  peerId: string
  stream?: Stream
  writer?: ReturnType<typeof lpStream>
  queue: Array<{ id: number, frame: Uint8Array }>
  pending: Map<number, Pending>
  pumping: boolean
}

export interface ForwarderInit {
  host: ShoalHost
  log: Logger
  clock: Clock
  /** answers a request on this peer (the leader's side) */
  handle: (req: ForwardRequest) => Promise<ForwardResponse>
  /**
   * Whether a peer may forward here: the cluster has admitted it (a voter or
   * a learner of the Raft configuration). A stream from any other peer, one
   * that holds the cluster key and nothing more, is refused when it opens.
   */
  admitted: (peerId: string) => boolean
}

export class Forwarder {
  private readonly init: ForwarderInit
  private readonly sessions = new Map<string, Session>()
  private readonly inbound = new Set<Stream>()
  private nextId = 1
  private stopped = false

  constructor (init: ForwarderInit) { this.init = init }

  async start (): Promise<void> {
    await this.init.host.handle(RAFT_FORWARD_PROTOCOL, (stream, connection) => {
      const from = connection.remotePeer.toString()
      if (!this.init.admitted(from)) {
        this.init.log.warn({ event: 'raft.forward.refused', from }, `refused a forwarding stream from ${from}: the cluster has not admitted that peer`)
        stream.abort(new Error('this peer is not a member of the cluster configuration'))
        return
      }
      void this.serve(stream)
    }, { maxInboundStreams: 64 })
  }

  async stop (): Promise<void> {
    this.stopped = true
    for (const s of this.sessions.values()) this.failSession(s, new ForwardError('this peer is stopping', false))
    for (const stream of this.inbound) stream.abort(new Error('stopping'))
    await this.init.host.unhandle(RAFT_FORWARD_PROTOCOL).catch(() => {})
  }

  /** Sends a request to `to` and waits for its answer; failures are ForwardErrors. */
  async request (to: string, req: ForwardRequest, timeoutMs: number): Promise<ForwardResponse> {
    if (this.stopped) throw new ForwardError('this peer is stopping', false)
    let session = this.sessions.get(to)
    if (session === undefined) {
      session = { peerId: to, queue: [], pending: new Map(), pumping: false }
      this.sessions.set(to, session)
    }
    const s = session
    const id = this.nextId++
    return await new Promise<ForwardResponse>((resolve, reject) => {
      const timer = this.init.clock.setTimeout(() => {
        const p = s.pending.get(id)
        if (p === undefined) return
        s.pending.delete(id)
        s.queue = s.queue.filter(q => q.id !== id)
        reject(new ForwardError(`no answer from the leader within ${timeoutMs} ms`, p.written))
      }, timeoutMs)
      s.pending.set(id, {
        resolve: (res) => { this.init.clock.clearTimeout(timer); resolve(res) },
        reject: (err) => { this.init.clock.clearTimeout(timer); reject(err) },
        written: false,
        timer
      })
      s.queue.push({ id, frame: encode({ id, req } satisfies RequestFrame) })
      if (!s.pumping) void this.pump(s)
    })
  }

  private async pump (s: Session): Promise<void> {
    s.pumping = true
    try {
      // Let requests made in the same turn of the event loop (every HTTP
      // request parsed in it) go out together: one frame batch, not one each.
      await new Promise(resolve => setImmediate(resolve))
      while (!this.stopped && s.queue.length > 0) {
        if (s.stream === undefined || s.writer === undefined || s.stream.writeStatus !== 'writable') {
          try {
            await this.open(s)
          } catch (err) {
            this.failSession(s, new ForwardError(`cannot reach the leader: ${(err as Error).message}`, false))
            return
          }
        }
        const batch = s.queue
        s.queue = []
        for (const q of batch) {
          const p = s.pending.get(q.id)
          if (p !== undefined) p.written = true
        }
        try {
          await (s.writer as ReturnType<typeof lpStream>).writeV(batch.map(q => q.frame))
        } catch (err) {
          this.failSession(s, new ForwardError(`the stream to the leader broke: ${(err as Error).message}`, true))
          return
        }
      }
    } finally {
      s.pumping = false
    }
  }

  private async open (s: Session): Promise<void> {
    const stream = await this.init.host.dialProtocol(peerIdFromString(s.peerId), RAFT_FORWARD_PROTOCOL,
      { signal: AbortSignal.timeout(OPEN_TIMEOUT_MS) })
    const lp = lpStream(stream, FRAMING)
    s.stream = stream
    s.writer = lp
    void this.readAnswers(s, stream, lp)
  }

  private async readAnswers (s: Session, stream: Stream, lp: ReturnType<typeof lpStream>): Promise<void> {
    try {
      for (;;) {
        const frame = decode((await lp.read()).subarray(), isResponseFrame, 'forward answer')
        const p = s.pending.get(frame.id)
        if (p === undefined) continue // timed out already
        s.pending.delete(frame.id)
        p.resolve(frame.res)
      }
    } catch (err) {
      if (s.stream === stream) this.failSession(s, new ForwardError(`the stream to the leader ended: ${(err as Error).message}`, true))
    }
  }

  /** Fails every request of a session: written ones with `err.sent`, queued ones as not sent. */
  private failSession (s: Session, err: ForwardError): void {
    s.stream?.abort(err)
    s.stream = undefined
    s.writer = undefined
    const queued = new Set(s.queue.map(q => q.id))
    s.queue = []
    for (const [id, p] of s.pending) {
      p.reject(queued.has(id) || !p.written ? new ForwardError(err.message, false) : new ForwardError(err.message, err.sent))
    }
    s.pending.clear()
  }

  /** The leader's side: answers each request as it completes, in batches. */
  private async serve (stream: Stream): Promise<void> {
    if (this.stopped) { stream.abort(new Error('stopping')); return }
    this.inbound.add(stream)
    const lp = lpStream(stream, FRAMING)
    let out: Uint8Array[] = []
    let flushing = false
    let broken = false
    const flush = async (): Promise<void> => {
      if (flushing) return
      flushing = true
      try {
        await Promise.resolve()
        while (out.length > 0 && !broken) {
          const batch = out
          out = []
          await lp.writeV(batch)
        }
      } catch (err) {
        broken = true
        stream.abort(err as Error)
      } finally {
        flushing = false
      }
    }
    try {
      for (;;) {
        const frame = decode((await lp.read()).subarray(), isRequestFrame, 'forwarded request')
        void this.init.handle(frame.req)
          .catch((err: Error): ForwardResponse => ({ ok: false, error: 'timeout', message: err.message }))
          .then(res => {
            if (broken) return
            out.push(encode({ id: frame.id, res } satisfies ResponseFrame))
            void flush()
          })
      }
    } catch (err) {
      if (!this.stopped && !broken) this.init.log.debug({ event: 'raft.forward.stream-ended', err: (err as Error).message }, 'a forwarding stream ended')
      broken = true
      stream.abort(err as Error)
    } finally {
      this.inbound.delete(stream)
    }
  }
}
