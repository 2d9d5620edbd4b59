// Watches over HTTP (`?watch=1`): one stream of newline-delimited events per
// request, from the local replica, bounded the way Kubernetes' watch cache
// bounds its watchers.
// - Caps: at most `maxPerToken` open watches per token and `maxPerClient` per
//   client address on this peer; one more is a 429 with Retry-After.
// - Back-pressure: events are written as the client takes them. The events a
//   watch starts with (the current objects, or the history after its
//   resourceVersion) wait as references to objects the replica holds anyway;
//   events that arrive later count, as serialized bytes, with what the socket
//   has not sent yet. A watch whose unsent bytes pass `bufferBytes` when the
//   next event comes is dropped (its connection closed): its client lists
//   again, as Kubernetes clients do after a watch ends.
// - `timeoutSeconds` ends the stream cleanly after that long (what was
//   queued is sent first), and with `allowWatchBookmarks=true` a BOOKMARK
//   with the replica's resourceVersion is sent every `bookmarkIntervalMs` and
//   just before a timeout ends the stream.
// May import: protocol/, daemon/log (the type), daemon/store/types.ts, ./http.ts, ./table.ts.
import type { IncomingMessage, ServerResponse } from 'node:http'
import { apiVersionOf } from '../../protocol/k8s.ts'
import type { WatchEvent } from '../../protocol/k8s.ts'
import type { Kind } from '../../protocol/kinds.ts'
import type { Logger } from '../log/log.ts'
import type { StoreReader, WatchOptions } from '../store/types.ts'
import { HttpError } from './http.ts'
import { toTable } from './table.ts'
import type { IncludeObject } from './table.ts'

export interface WatchLimits {
  /** open watches one token may hold on this peer (--max-watches-per-token) */
  maxPerToken: number
  /** open watches one client address may hold on this peer (--max-watches-per-ip) */
  maxPerClient: number
  /** unsent bytes (beyond the newest event) after which a watch is dropped (--watch-buffer) */
  bufferBytes: number
  /** how often a watch that allows bookmarks gets one (Kubernetes: about a minute) */
  bookmarkIntervalMs: number
}

/**
 * 256 watches per token and 64 per address are far more than a UI (six
 * streams at most per browser), kubectl or an informer-based program opens;
 * 4 MiB holds more than one event of the largest object (3 MiB). Together
 * they bound what unread watches can hold to 64 × 4 MiB per address.
 */
export const DEFAULT_WATCH_LIMITS: WatchLimits = {
  maxPerToken: 256,
  maxPerClient: 64,
  bufferBytes: 4 * 1024 * 1024,
  bookmarkIntervalMs: 60_000
}

/** Who opens a watch: the token's name (its role) and the client's address. */
export interface WatchCaller {
  token: string
  client: string
}

/** The open watches of one API server, counted per token and per client address. */
export class OpenWatches {
  readonly limits: WatchLimits
  readonly log: Logger | undefined
  private readonly byToken = new Map<string, number>()
  private readonly byClient = new Map<string, number>()
  private readonly streams = new Set<{ unsentBytes: () => number }>()

  constructor (limits: WatchLimits, log?: Logger) {
    this.limits = limits
    this.log = log
  }

  /** Takes a slot for a new watch, or throws a 429; the function returned gives the slot back (once). */
  admit (caller: WatchCaller): () => void {
    const tokenCount = this.byToken.get(caller.token) ?? 0
    const clientCount = this.byClient.get(caller.client) ?? 0
    if (tokenCount >= this.limits.maxPerToken) throw tooMany(`this token already holds ${tokenCount} open watches on this peer, its limit (--max-watches-per-token)`)
    if (clientCount >= this.limits.maxPerClient) throw tooMany(`${caller.client} already holds ${clientCount} open watches on this peer, its limit (--max-watches-per-ip)`)
    this.byToken.set(caller.token, tokenCount + 1)
    this.byClient.set(caller.client, clientCount + 1)
    let released = false
    return () => {
      if (released) return
      released = true
      decrement(this.byToken, caller.token)
      decrement(this.byClient, caller.client)
    }
  }

  /** Open watches in all. */
  count (): number {
    let n = 0
    for (const c of this.byToken.values()) n += c
    return n
  }

  /** What the open watches hold for their clients and have not sent yet, in bytes (queued, and buffered in the response and its socket). */
  unsentBytes (): number {
    let n = 0
    for (const s of this.streams) n += s.unsentBytes()
    return n
  }

  /** Counts a stream's unsent bytes until the function returned is called. */
  track (stream: { unsentBytes: () => number }): () => void {
    this.streams.add(stream)
    return () => { this.streams.delete(stream) }
  }
}

function decrement (counts: Map<string, number>, key: string): void {
  const n = (counts.get(key) ?? 0) - 1
  if (n <= 0) counts.delete(key)
  else counts.set(key, n)
}

function tooMany (message: string): HttpError {
  return new HttpError(429, 'TooManyRequests', `${message}: close a watch, or try again later`, { 'retry-after': '1' })
}

/**
 * The last event line made. The store hands one change to each of its
 * watchers in turn, each as its own event of the same (frozen) object, so
 * one slot lets them all write the same bytes: one serialization and one
 * buffer per change, however many watch it, and nothing kept beyond it.
 */
let lastLine: { object: object, type: string, line: Buffer } | undefined
function eventLine (e: WatchEvent): Buffer {
  if (lastLine !== undefined && lastLine.object === e.object && lastLine.type === e.type) return lastLine.line
  const line = Buffer.from(JSON.stringify(e) + '\n')
  lastLine = { object: e.object, type: e.type, line }
  return line
}

export interface WatchStreamOptions {
  /** the open watches of this server, with their limits; the caller takes a slot of them */
  watches: OpenWatches
  caller: WatchCaller
  /** with a Table Accept (kubectl get -w): each object is a one-row Table, the first with the columns */
  table?: { version: 'v1' | 'v1beta1', includeObject: IncludeObject }
  /** end the stream cleanly after this long (?timeoutSeconds) */
  timeoutMs?: number
  /** send BOOKMARK events (?allowWatchBookmarks=true) */
  bookmarks: boolean
}

/** How long a watch that timed out waits for its client to take what was queued before it. */
const END_GRACE_MS = 30_000

/** A line waiting to be written: an event (serialized when written) or a line already made; `bytes` is what it counts toward the limit. */
interface Queued {
  event?: WatchEvent
  line?: Buffer | string
  bytes: number
}

/**
 * A watch as newline-delimited JSON events, until the client goes away, the
 * timeout passes, or the client falls too far behind (see the header).
 * Events are written in the order the local replica applies the log.
 * Throws (before anything is sent) a 429 over a cap, GoneError for a
 * compacted resourceVersion and BadSelectorError for a bad selector.
 */
export async function streamWatch (req: IncomingMessage, res: ServerResponse, store: StoreReader, type: Kind, opts: WatchOptions, options: WatchStreamOptions): Promise<void> {
  const release = options.watches.admit(options.caller)
  const stream = new WatchStream(req, res, store, type, options)
  const untrack = options.watches.track(stream)
  try {
    await stream.run(opts)
  } finally {
    untrack()
    release()
  }
}

class WatchStream {
  private readonly req: IncomingMessage
  private readonly res: ServerResponse
  private readonly store: StoreReader
  private readonly type: Kind
  private readonly options: WatchStreamOptions
  private readonly queue: Queued[] = []
  /** the first entry of `queue` not yet written */
  private head = 0
  /** bytes of the queued entries that count toward the limit */
  private queuedBytes = 0
  /** false while the watch sends what it starts with */
  private live = false
  /** the timeout passed: write what is queued, then end */
  private ending = false
  private closed = false
  private columnsSent = false
  private stopWatch: () => void = () => {}
  private readonly timers: Array<ReturnType<typeof setTimeout>> = []
  private finish: () => void = () => {}

  constructor (req: IncomingMessage, res: ServerResponse, store: StoreReader, type: Kind, options: WatchStreamOptions) {
    this.req = req
    this.res = res
    this.store = store
    this.type = type
    this.options = options
  }

  async run (opts: WatchOptions): Promise<void> {
    const { res, req } = this
    const watch = this.store.watch(this.type, opts, e => { this.onEvent(e) }) // throws before anything is sent
    this.stopWatch = () => { watch.stop() }
    res.writeHead(200, { 'content-type': 'application/json', 'transfer-encoding': 'chunked', 'cache-control': 'no-cache' })
    // Send the headers now: a watch with nothing to report yet must still answer.
    res.flushHeaders()
    // Events are small writes, each to go at once (no Nagle wait on the client's delayed ACK).
    req.socket.setNoDelay(true)
    this.live = true
    const { timeoutMs, bookmarks } = this.options
    if (bookmarks) this.timers.push(setInterval(() => { this.bookmark() }, this.options.watches.limits.bookmarkIntervalMs))
    if (timeoutMs !== undefined) this.timers.push(setTimeout(() => { this.end() }, timeoutMs))
    for (const t of this.timers) t.unref()
    await new Promise<void>(resolve => {
      this.finish = resolve
      res.on('drain', () => { this.pump() })
      req.on('close', () => { this.close() })
      res.on('close', () => { this.close() })
      res.on('error', () => { this.close() })
      // A client gone before the listeners were on would hold its slot for good.
      if (req.socket.destroyed || res.destroyed) this.close()
      else this.pump()
    })
  }

  /** Bytes queued to count toward the limit, and what the response and its socket hold. */
  unsentBytes (): number {
    return this.closed ? 0 : this.queuedBytes + this.res.writableLength
  }

  private onEvent (e: WatchEvent): void {
    if (this.closed) return
    if (!this.live) {
      this.queue.push({ event: e, bytes: 0 })
      return
    }
    if (this.unsentBytes() > this.options.watches.limits.bufferBytes) {
      this.drop()
      return
    }
    // The line now, shared with the change's other watchers; a Table row is made as it is written (the first carries the columns).
    const line = eventLine(e)
    this.queue.push(this.options.table === undefined ? { line, bytes: line.length } : { event: e, bytes: line.length })
    this.queuedBytes += line.length
    this.pump()
  }

  /** Writes queued lines while the socket takes them; ends the stream once an ending watch has written all. */
  private pump (): void {
    const { res } = this
    if (this.closed || res.destroyed) return
    while (this.head < this.queue.length && !res.writableNeedDrain) {
      const q = this.queue[this.head] as Queued
      this.queue[this.head++] = { bytes: 0 }
      this.queuedBytes -= q.bytes
      res.write(q.line ?? this.line(q.event as WatchEvent))
    }
    if (this.head === this.queue.length) {
      this.queue.length = 0
      this.head = 0
      if (this.ending) {
        res.end()
        this.close()
      }
    } else if (this.head > 1024 && this.head * 2 > this.queue.length) {
      this.queue.splice(0, this.head)
      this.head = 0
    }
  }

  private line (e: WatchEvent): Buffer | string {
    const { table } = this.options
    if (table === undefined || (e.type !== 'ADDED' && e.type !== 'MODIFIED' && e.type !== 'DELETED') || e.object.kind === 'Status') return eventLine(e)
    const object = toTable(this.type, [e.object], { ...table, now: Date.now(), withColumns: !this.columnsSent })
    this.columnsSent = true
    return JSON.stringify({ type: e.type, object }) + '\n'
  }

  /** A BOOKMARK at the replica's resourceVersion: every event up to it is queued before it. */
  private bookmark (): void {
    if (this.ending || this.closed) return
    if (this.unsentBytes() > this.options.watches.limits.bufferBytes) {
      this.drop()
      return
    }
    const object = { kind: this.type.kind, apiVersion: apiVersionOf(this.type), metadata: { resourceVersion: this.store.resourceVersion() } }
    const line = JSON.stringify({ type: 'BOOKMARK', object }) + '\n'
    this.queue.push({ line, bytes: line.length })
    this.queuedBytes += line.length
    this.pump()
  }

  /**
   * The timeout passed: no more events; what is queued (and a last bookmark)
   * goes out, then the stream ends. A client that does not take it within
   * END_GRACE_MS loses the connection.
   */
  private end (): void {
    if (this.ending || this.closed) return
    if (this.options.bookmarks) this.bookmark()
    if (this.closed) return
    this.ending = true
    this.stopWatch()
    const grace = setTimeout(() => { this.close(); this.res.destroy() }, END_GRACE_MS)
    grace.unref()
    this.timers.push(grace)
    this.pump()
  }

  /** The client fell too far behind: its connection goes, and with it what it has not read. */
  private drop (): void {
    this.options.watches.log?.info({
      event: 'api.watch.dropped',
      resource: this.type.plural,
      client: this.options.caller.client,
      unsentBytes: this.unsentBytes(),
      limit: this.options.watches.limits.bufferBytes
    }, 'dropped a watch whose client does not keep up')
    this.close()
    this.res.destroy()
  }

  private close (): void {
    if (this.closed) return
    this.closed = true
    this.stopWatch()
    for (const t of this.timers) clearTimeout(t)
    this.timers.length = 0
    this.queue.length = 0
    this.head = 0
    this.queuedBytes = 0
    this.finish()
  }
}
