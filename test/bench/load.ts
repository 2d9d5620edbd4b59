// A bounded, closed-loop HTTP load generator for the benchmarks:
// `concurrency` clients each run one request at a time, each over its own
// keep-alive connection per server. It runs in the bench process on the
// machine that hosts the servers, so it stays cheap: a bare HTTP/1.1
// exchange on a socket rather than node:http or fetch (see LoadClient).
// `httpRequest` (node:http) is for the benchmarks' occasional control calls.
// Imports only node: modules and ./stats.ts.
import { request } from 'node:http'
import type { Agent } from 'node:http'
import { connect } from 'node:net'
import type { Socket } from 'node:net'
import type { IncomingHttpHeaders, IncomingMessage } from 'node:http'
import { performance } from 'node:perf_hooks'
import { percentileSorted } from './stats.ts'

export interface HttpInit {
  method?: string
  headers?: Record<string, string>
  body?: string | Buffer
  /** abort the request after this long (default: none) */
  timeoutMs?: number
}

export interface HttpAnswer {
  status: number
  headers: IncomingHttpHeaders
  body: string
}

/** One HTTP request; rejects on network errors and timeouts, not on HTTP error statuses. */
export async function httpRequest (agent: Agent | undefined, url: string | URL, init: HttpInit = {}): Promise<HttpAnswer> {
  return await new Promise((resolve, reject) => {
    const headers: Record<string, string | number> = { ...init.headers }
    if (init.body !== undefined) headers['content-length'] = Buffer.byteLength(init.body)
    const req = request(url, { method: init.method ?? 'GET', headers, ...(agent !== undefined ? { agent } : {}) }, res => {
      const chunks: Buffer[] = []
      res.on('data', (chunk: Buffer) => { chunks.push(chunk) })
      res.on('end', () => {
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body: chunks.length === 1 ? chunks[0]!.toString('utf8') : Buffer.concat(chunks).toString('utf8') })
      })
      res.on('error', reject)
    })
    req.on('error', reject)
    if (init.timeoutMs !== undefined) {
      req.setTimeout(init.timeoutMs, () => { req.destroy(new Error(`no answer within ${init.timeoutMs} ms`)) })
    }
    req.end(init.body)
  })
}

/** One keep-alive HTTP/1.1 connection that carries one request at a time. */
class Connection {
  private readonly socket: Socket
  private buf: Buffer = Buffer.alloc(0)
  private pending: { resolve: (a: HttpAnswer) => void, reject: (err: Error) => void, timer?: NodeJS.Timeout } | undefined
  closed = false

  constructor (host: string, port: number) {
    this.socket = connect({ host, port, noDelay: true })
    this.socket.on('data', (chunk: Buffer) => {
      this.buf = this.buf.length === 0 ? chunk : Buffer.concat([this.buf, chunk])
      this.parse()
    })
    this.socket.on('error', err => { this.close(err) })
    this.socket.on('close', () => { this.close(new Error('connection closed')) })
  }

  async send (head: string, body: string | Buffer | undefined, timeoutMs: number | undefined): Promise<HttpAnswer> {
    if (this.pending !== undefined) throw new Error('connection busy')
    return await new Promise((resolve, reject) => {
      this.pending = { resolve, reject }
      if (timeoutMs !== undefined) this.pending.timer = setTimeout(() => { this.close(new Error(`no answer within ${timeoutMs} ms`)) }, timeoutMs)
      this.socket.cork()
      this.socket.write(head, 'latin1')
      if (body !== undefined) this.socket.write(body)
      this.socket.uncork()
    })
  }

  destroy (): void { this.close(new Error('client closed')) }

  private close (err: Error): void {
    if (!this.closed) {
      this.closed = true
      this.socket.destroy()
    }
    this.settle(undefined, err)
  }

  private settle (answer: HttpAnswer | undefined, err?: Error): void {
    const p = this.pending
    if (p === undefined) return
    this.pending = undefined
    if (p.timer !== undefined) clearTimeout(p.timer)
    if (answer !== undefined) p.resolve(answer)
    else p.reject(err ?? new Error('no answer'))
  }

  /** Parses one response from the buffer, when it is complete. */
  private parse (): void {
    const end = this.buf.indexOf('\r\n\r\n')
    if (end < 0) return
    const lines = this.buf.toString('latin1', 0, end).split('\r\n')
    const status = Number(lines[0]!.slice(9, 12))
    const headers: IncomingHttpHeaders = {}
    for (let i = 1; i < lines.length; i++) {
      const line = lines[i]!
      const colon = line.indexOf(':')
      headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim()
    }
    let body: Buffer
    let rest: Buffer
    const length = headers['content-length']
    if (length !== undefined) {
      const n = Number(length)
      if (this.buf.length < end + 4 + n) return
      body = this.buf.subarray(end + 4, end + 4 + n)
      rest = this.buf.subarray(end + 4 + n)
    } else if (headers['transfer-encoding'] === 'chunked') {
      const parts: Buffer[] = []
      let pos = end + 4
      for (;;) {
        const eol = this.buf.indexOf('\r\n', pos)
        if (eol < 0) return
        const size = parseInt(this.buf.toString('latin1', pos, eol), 16)
        if (size === 0) {
          const trailerEnd = this.buf.indexOf('\r\n', eol + 2) // no trailers expected: an empty line
          if (trailerEnd < 0) return
          rest = this.buf.subarray(trailerEnd + 2)
          break
        }
        if (this.buf.length < eol + 2 + size + 2) return
        parts.push(this.buf.subarray(eol + 2, eol + 2 + size))
        pos = eol + 2 + size + 2
      }
      body = Buffer.concat(parts)
    } else if (status === 204 || status === 304 || (status >= 100 && status < 200)) {
      body = Buffer.alloc(0)
      rest = this.buf.subarray(end + 4)
    } else {
      this.close(new Error(`HTTP ${status} without a length is not supported`))
      return
    }
    this.buf = rest.length === 0 ? Buffer.alloc(0) : Buffer.from(rest)
    if (String(headers.connection).toLowerCase() === 'close') {
      this.closed = true
      this.socket.end()
    }
    this.settle({ status, headers, body: body.toString('utf8') })
  }
}

/**
 * What an op gets: its client's index, and its own keep-alive connection to
 * each origin it talks to. A bare HTTP/1.1 exchange on a socket costs a
 * fraction of node:http's CPU per request (measured here: about 70 µs for
 * node:http with a sized Agent, 250 µs for fetch), which is CPU the servers
 * under test get instead.
 */
export class LoadClient {
  readonly id: number
  private readonly connections = new Map<string, Connection>()

  constructor (id: number) {
    this.id = id
  }

  async request (url: string | URL, init: HttpInit = {}): Promise<HttpAnswer> {
    const u = typeof url === 'string' ? new URL(url) : url
    let conn = this.connections.get(u.host)
    if (conn === undefined || conn.closed) {
      conn = new Connection(u.hostname, Number(u.port !== '' ? u.port : 80))
      this.connections.set(u.host, conn)
    }
    let head = `${init.method ?? 'GET'} ${u.pathname}${u.search} HTTP/1.1\r\nhost: ${u.host}\r\n`
    for (const [k, v] of Object.entries(init.headers ?? {})) head += `${k}: ${v}\r\n`
    head += `content-length: ${init.body === undefined ? 0 : Buffer.byteLength(init.body)}\r\n\r\n`
    return await conn.send(head, init.body, init.timeoutMs)
  }

  close (): void {
    for (const conn of this.connections.values()) conn.destroy()
  }
}

export interface LoadOptions {
  concurrency: number
  /** stop issuing ops after this long (ops in flight still finish) */
  durationMs?: number
  /** stop after this many ops, failed ones included */
  maxOps?: number
  /** one operation; it throws to count as an error */
  op: (client: LoadClient, i: number) => Promise<void>
}

export interface LoadResult {
  /** acknowledged ops */
  ops: number
  errors: number
  /** the first error's message, if any */
  firstError?: string
  seconds: number
  /** acknowledged ops per second */
  throughput: number
  /** latency of each acknowledged op, ms, ascending */
  latencies: number[]
  p50: number
  p99: number
  max: number
  /** CPU this process (the load generator) used meanwhile, % of one core */
  cpuPercent: number
}

export async function runLoad (opts: LoadOptions): Promise<LoadResult> {
  if (opts.durationMs === undefined && opts.maxOps === undefined) throw new Error('runLoad needs durationMs or maxOps')
  const latencies: number[] = []
  let next = 0
  let errors = 0
  let firstError: string | undefined
  const start = performance.now()
  const cpu0 = process.cpuUsage()
  const deadline = opts.durationMs !== undefined ? start + opts.durationMs : Infinity
  const maxOps = opts.maxOps ?? Infinity

  const worker = async (client: LoadClient): Promise<void> => {
    while (next < maxOps) {
      const t0 = performance.now()
      if (t0 >= deadline) return
      const i = next++
      try {
        await opts.op(client, i)
        latencies.push(performance.now() - t0)
      } catch (err) {
        errors++
        firstError ??= (err as Error).message
        // A failing server answers fast; do not spin the CPU the servers need.
        await new Promise(resolve => setTimeout(resolve, 5))
      }
    }
  }
  const clients = Array.from({ length: opts.concurrency }, (_, id) => new LoadClient(id))
  try {
    await Promise.all(clients.map(worker))
  } finally {
    for (const c of clients) c.close()
  }
  const seconds = (performance.now() - start) / 1000
  const cpu = process.cpuUsage(cpu0)
  latencies.sort((a, b) => a - b)
  return {
    ops: latencies.length,
    errors,
    ...(firstError !== undefined ? { firstError } : {}),
    seconds,
    throughput: latencies.length / seconds,
    latencies,
    p50: percentileSorted(latencies, 50),
    p99: percentileSorted(latencies, 99),
    max: percentileSorted(latencies, 100),
    cpuPercent: (cpu.user + cpu.system) / 1e4 / seconds
  }
}

export interface AckOptions {
  /** start a new attempt this often while none has been acknowledged (default 10 ms) */
  intervalMs?: number
  /** each attempt's own timeout, passed to it (default 500 ms) */
  timeoutMs?: number
  /** give up after this long (default 30 s) */
  boundMs?: number
}

/**
 * Starts `attempt` every `intervalMs`, overlapping, until one resolves;
 * returns the performance.now() of that first acknowledgement. Overlapping
 * attempts keep the resolution at `intervalMs` even while earlier ones hang
 * (a write forwarded to a dead leader is never answered). Waits for the
 * attempts still in flight before it returns, so none leaks into what follows.
 */
export async function firstAcknowledged (attempt: (timeoutMs: number) => Promise<void>, opts: AckOptions = {}): Promise<number> {
  const intervalMs = opts.intervalMs ?? 10
  const timeoutMs = opts.timeoutMs ?? 500
  const boundMs = opts.boundMs ?? 30_000
  const start = performance.now()
  const inFlight = new Set<Promise<void>>()
  let ackedAt: number | undefined
  let lastError = ''
  while (ackedAt === undefined) {
    if (performance.now() - start > boundMs) {
      await Promise.allSettled(inFlight)
      throw new Error(`no write acknowledged within ${boundMs} ms${lastError !== '' ? ` (last error: ${lastError})` : ''}`)
    }
    const p: Promise<void> = attempt(timeoutMs).then(
      () => { ackedAt ??= performance.now() },
      (err: unknown) => { lastError = (err as Error).message }
    ).finally(() => { inFlight.delete(p) })
    inFlight.add(p)
    await new Promise(resolve => setTimeout(resolve, intervalMs))
  }
  await Promise.allSettled(inFlight)
  return ackedAt
}

/**
 * The put benchmark's load phase: a warm-up of a tenth of the duration
 * (at least 0.5 s), then the measured run; logs one line about `name`.
 */
export async function measuredLoad (name: string, opts: { concurrency: number, durationMs: number, log: (line: string) => void }, op: LoadOptions['op']): Promise<{ load?: LoadResult, loadError?: string }> {
  try {
    await runLoad({ concurrency: opts.concurrency, durationMs: Math.max(500, opts.durationMs / 10), op })
    const l = await runLoad({ concurrency: opts.concurrency, durationMs: opts.durationMs, op })
    opts.log(`  ${name} put: ${l.throughput.toFixed(0)}/s, p50 ${l.p50.toFixed(1)} ms, p99 ${l.p99.toFixed(1)} ms, ${l.errors} errors, load generator ${l.cpuPercent.toFixed(0)} % of a core${l.firstError !== undefined ? ` (${l.firstError})` : ''}`)
    return l.ops === 0 ? { load: l, loadError: l.firstError ?? 'no put acknowledged' } : { load: l }
  } catch (err) {
    return { loadError: (err as Error).message }
  }
}

/**
 * A `?watch=1` stream read with node:http (a hundred fetch streams cost the
 * bench process more than the server): `onEvent` gets each event and the
 * time its chunk arrived, `onChunk` runs after each chunk's events.
 * Resolves once the answer's headers are in, with a function that stops it.
 */
export async function watchEvents (url: string, token: string, onEvent: (e: WatchLine, at: number) => void, onChunk?: (at: number) => void, localAddress?: string): Promise<() => void> {
  const controller = new AbortController()
  const res = await new Promise<IncomingMessage>((resolve, reject) => {
    const req = request(url, { headers: { authorization: `Bearer ${token}` }, signal: controller.signal, ...(localAddress !== undefined ? { localAddress } : {}) }, resolve)
    req.on('error', reject)
    req.end()
  })
  res.setEncoding('utf8')
  void (async () => {
    let buf = ''
    try {
      for await (const chunk of res as AsyncIterable<string>) {
        buf += chunk
        const lines = buf.split('\n')
        buf = lines.pop() ?? ''
        const at = performance.now()
        for (const line of lines) if (line !== '') onEvent(JSON.parse(line) as WatchLine, at)
        onChunk?.(at)
      }
    } catch { /* stopped */ }
  })()
  return () => { controller.abort() }
}

/** One watch event, as the benchmarks read it. */
export interface WatchLine {
  type: string
  object: { metadata: { name: string, deletionTimestamp?: string }, spec?: { nodeName?: string }, status?: { phase?: string } }
}
