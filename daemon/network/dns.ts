// The cluster DNS server, one per peer, answering over UDP and TCP from the
// local replica of the store the way CoreDNS's kubernetes plugin does:
// <svc>.<ns>.svc.<domain> (the clusterIP, or a headless service's ready
// endpoints), <host>.<svc>.<ns>.svc.<domain> (a headless endpoint),
// _<port>._<proto>.<svc>.<ns>.svc.<domain> (SRV), <a-b-c-d>.<ns>.pod.<domain>
// and ExternalName CNAMEs. Other names go to the upstream resolvers, if any.
// The wire format is dns-packet's.
// May import: protocol/, daemon/store/types.ts, daemon/clock/, daemon/log/.
import { ENDPOINTS, NAMESPACE, POD, SERVICE } from '../../protocol/kinds.ts'
import { randomInt } from 'node:crypto'
import { createSocket } from 'node:dgram'
import type { RemoteInfo, Socket as UdpSocket } from 'node:dgram'
import { connect, createServer, isIP, isIPv4, isIPv6 } from 'node:net'
import type { Server, Socket } from 'node:net'
import { AUTHORITATIVE_ANSWER, decode, encode, RECURSION_AVAILABLE, RECURSION_DESIRED, TRUNCATED_RESPONSE } from 'dns-packet'
import type { Answer, DecodedPacket, OptAnswer, Packet, Question } from 'dns-packet'
import type { EndpointAddress, EndpointPort, ServicePort, ServiceSpec } from '../../protocol/core-v1.ts'
import { systemClock } from '../clock/clock.ts'
import type { Clock } from '../clock/clock.ts'
import type { Logger } from '../log/log.ts'
import type { StoreReader } from '../store/types.ts'

const RCODE = { NOERROR: 0, FORMERR: 1, SERVFAIL: 2, NXDOMAIN: 3, NOTIMP: 4, REFUSED: 5 } as const
/** the UDP answer size without EDNS, and the most we send whatever EDNS asks */
const UDP_MIN = 512
const UDP_MAX = 4096
/** the payload size we advertise (the DNS flag day's figure) */
const EDNS_SIZE = 1232
const TCP_IDLE_MS = 10_000
const TCP_MAX_CONNECTIONS = 256
/** queries one TCP connection may have in flight before we stop reading it */
const TCP_MAX_INFLIGHT = 16
/** SO_REUSEPORT: where Node supports it (elsewhere the option is an error at bind) */
const REUSE_PORT = ['linux', 'freebsd', 'sunos', 'aix'].includes(process.platform)

export interface DnsServerOptions {
  store: StoreReader
  /** the cluster domain; default cluster.local */
  domain?: string
  /** where to listen, UDP and TCP on each; port 0 picks one, the same for both */
  listen: Array<{ host: string, port: number }>
  /** resolvers for names outside the domain: 'ip:port', '[ipv6]:port' or 'ip' (port 53); none: NXDOMAIN */
  upstream?: string[]
  log: Logger
  /** seconds; default 5 */
  ttl?: number
  /** how long to wait for one upstream before trying the next; default 2000 ms */
  upstreamTimeoutMs?: number
  clock?: Clock
}

/** A listen address that cannot be bound; the message names it. */
export class DnsListenError extends Error {
  override name = 'DnsListenError'
  readonly code: string | undefined
  constructor (message: string, code: string | undefined) {
    super(message)
    this.code = code
  }
}

interface Upstream { host: string, port: number }
interface Result { rcode: number, authoritative: boolean, answers: Answer[], authorities: Answer[], additionals: Answer[] }
/** one ready endpoint address with its DNS label and the ports of its subset */
interface Endpoint { ip: string, host: string, ports: EndpointPort[] }

function parseUpstream (s: string): Upstream {
  const m = /^\[(.+)\]:(\d+)$/.exec(s) ?? /^([^:]+):(\d+)$/.exec(s)
  const host = m?.[1] ?? s
  const port = m?.[2] === undefined ? 53 : Number(m[2])
  if (isIP(host) === 0 || !Number.isInteger(port) || port < 1 || port > 65535) throw new Error(`invalid DNS upstream "${s}": want ip:port`)
  return { host, port }
}

function listenError (proto: string, host: string, port: number, err: unknown): DnsListenError {
  const code = err instanceof Error && 'code' in err && typeof err.code === 'string' ? err.code : undefined
  const why = code === 'EACCES'
    ? 'permission denied (ports below 1024 need privilege)'
    : code === 'EADDRINUSE'
      ? 'address already in use'
      : code === 'EADDRNOTAVAIL' ? 'address not available on this host' : err instanceof Error ? err.message : String(err)
  return new DnsListenError(`DNS cannot listen on ${proto} ${host.includes(':') ? `[${host}]` : host}:${port}: ${why}`, code)
}

function dashed (ip: string): string {
  return ip.replaceAll(/[.:]/g, '-')
}

function undashed (label: string): string | undefined {
  const v4 = label.replaceAll('-', '.')
  if (isIPv4(v4)) return v4
  const v6 = label.replaceAll('-', ':')
  return isIPv6(v6) ? v6 : undefined
}

function frame (msg: Buffer): Buffer {
  const len = Buffer.alloc(2)
  len.writeUInt16BE(msg.length)
  return Buffer.concat([len, msg])
}

/** The service's clusterIP; undefined for a headless service or one with none allocated. */
function clusterIPOf (spec: ServiceSpec): string | undefined {
  return spec.clusterIP !== undefined && spec.clusterIP !== '' && spec.clusterIP !== 'None' ? spec.clusterIP : undefined
}

export class DnsServer {
  private readonly store: StoreReader
  private readonly domain: string
  private readonly listen: Array<{ host: string, port: number }>
  private readonly upstream: Upstream[]
  private readonly log: Logger
  private readonly ttl: number
  private readonly upstreamTimeoutMs: number
  private readonly clock: Clock
  private udpSockets: UdpSocket[] = []
  private tcpServers: Server[] = []
  private readonly connections = new Set<Socket>()
  /** cancels of the upstream queries in flight */
  private readonly pending = new Set<() => void>()
  private bound: Array<{ host: string, port: number }> = []
  private stopped = false

  constructor (opts: DnsServerOptions) {
    this.store = opts.store
    this.domain = (opts.domain ?? 'cluster.local').toLowerCase().replace(/^\.+|\.+$/g, '')
    this.listen = opts.listen
    this.upstream = (opts.upstream ?? []).map(parseUpstream)
    this.log = opts.log
    this.ttl = opts.ttl ?? 5
    this.upstreamTimeoutMs = opts.upstreamTimeoutMs ?? 2000
    this.clock = opts.clock ?? systemClock
    for (const l of this.listen) if (isIP(l.host) === 0) throw new Error(`invalid DNS listen address "${l.host}": want an IP address`)
  }

  /** Binds every listen address; throws DnsListenError (and binds none) if one fails, or an Error if an upstream is this server. */
  async start (): Promise<void> {
    this.stopped = false
    try {
      for (const l of this.listen) await this.bind(l.host, l.port)
      // Forwarding to ourselves would loop until every query times out.
      const wildcard = (h: string): boolean => h === '0.0.0.0' || h === '::'
      const self = this.upstream.find(u => this.bound.some(b => b.port === u.port && (b.host === u.host || wildcard(b.host))))
      if (self !== undefined) throw new Error(`DNS upstream ${self.host}:${self.port} is this server's own listen address`)
    } catch (err) {
      await this.stop()
      throw err
    }
  }

  async stop (): Promise<void> {
    this.stopped = true
    for (const cancel of [...this.pending]) cancel()
    for (const s of this.udpSockets) try { s.close() } catch { /* already closed */ }
    for (const c of this.connections) c.destroy()
    await Promise.all(this.tcpServers.map(async s => await new Promise(resolve => s.close(resolve))))
    this.udpSockets = []
    this.tcpServers = []
    this.bound = []
  }

  /** the addresses bound (with the port picked for port 0) */
  addresses (): Array<{ host: string, port: number }> {
    return [...this.bound]
  }

  private async bind (host: string, port: number): Promise<void> {
    const udp = createSocket({ type: isIPv6(host) ? 'udp6' : 'udp4', ...(REUSE_PORT ? { reusePort: true } : {}) })
    try {
      await new Promise<void>((resolve, reject) => {
        udp.once('error', reject)
        udp.bind({ address: host, port }, () => { udp.off('error', reject); resolve() })
      })
    } catch (err) {
      try { udp.close() } catch { /* never bound */ }
      throw listenError('udp', host, port, err)
    }
    udp.on('error', err => { this.log.warn({ err, host, port }, 'dns udp socket error') })
    udp.on('message', (msg, rinfo) => { void this.onUdp(udp, msg, rinfo) })
    this.udpSockets.push(udp)
    const udpPort = udp.address().port
    const tcp = createServer(sock => { this.onTcp(sock) })
    tcp.maxConnections = TCP_MAX_CONNECTIONS
    try {
      await new Promise<void>((resolve, reject) => {
        tcp.once('error', reject)
        tcp.listen({ host, port: udpPort, ...(REUSE_PORT ? { reusePort: true } : {}) }, () => { tcp.off('error', reject); resolve() })
      })
    } catch (err) {
      throw listenError('tcp', host, udpPort, err)
    }
    tcp.on('error', err => { this.log.warn({ err, host, port: udpPort }, 'dns tcp server error') })
    this.tcpServers.push(tcp)
    this.bound.push({ host, port: udpPort })
  }

  private async onUdp (sock: UdpSocket, msg: Buffer, from: RemoteInfo): Promise<void> {
    const reply = await this.handle(msg, 'udp')
    if (reply === undefined || this.stopped) return
    try {
      sock.send(reply, from.port, from.address, err => { if (err != null) this.log.debug({ err }, 'dns udp send failed') })
    } catch { /* closed meanwhile */ }
  }

  private onTcp (sock: Socket): void {
    this.connections.add(sock)
    sock.setTimeout(TCP_IDLE_MS, () => sock.destroy())
    sock.on('close', () => this.connections.delete(sock))
    sock.on('error', () => sock.destroy())
    let buf = Buffer.alloc(0)
    let inflight = 0
    sock.on('data', (chunk: Buffer) => {
      buf = Buffer.concat([buf, chunk])
      while (buf.length >= 2) {
        const len = buf.readUInt16BE(0)
        if (buf.length < 2 + len) break
        const msg = buf.subarray(2, 2 + len)
        buf = buf.subarray(2 + len)
        if (++inflight >= TCP_MAX_INFLIGHT) sock.pause()
        void this.handle(msg, 'tcp').then(reply => {
          if (--inflight < TCP_MAX_INFLIGHT) sock.resume()
          if (reply === undefined) sock.destroy()
          else if (!sock.destroyed) sock.write(frame(reply))
        })
      }
    })
  }

  /** The answer to one message, or undefined to drop it (UDP) or close the connection (TCP). Never throws. */
  private async handle (msg: Buffer, transport: 'udp' | 'tcp'): Promise<Buffer | undefined> {
    // Only queries, with exactly one question; a count is checked before decoding to bound the work.
    if (msg.length < 12 || (msg.readUInt8(2) & 0x80) !== 0) return undefined
    const id = msg.readUInt16BE(0)
    const rd = msg.readUInt16BE(2) & RECURSION_DESIRED
    if (msg.readUInt16BE(4) !== 1) return encode({ type: 'response', id, flags: rd | RCODE.FORMERR, questions: [] })
    let query: DecodedPacket
    try {
      query = decode(msg)
    } catch {
      return undefined
    }
    const question = query.questions?.[0]
    if (question === undefined) return undefined
    const empty = { authoritative: false, answers: [], authorities: [], additionals: [] }
    try {
      if (((query.flags ?? 0) >> 11 & 0xf) !== 0) return this.reply(query, question, { ...empty, rcode: RCODE.NOTIMP }, transport)
      const klass: string = question.class ?? 'IN'
      if (klass !== 'IN' && klass !== 'ANY') return this.reply(query, question, { ...empty, rcode: RCODE.REFUSED }, transport)
      const result = this.lookup(question)
      if (result !== undefined) return this.reply(query, question, result, transport)
      if (this.upstream.length === 0) return this.reply(query, question, { ...empty, rcode: RCODE.NXDOMAIN }, transport)
      return await this.forward(msg, id, transport) ?? this.reply(query, question, { ...empty, rcode: RCODE.SERVFAIL }, transport)
    } catch (err) {
      this.log.warn({ err, name: question.name }, 'dns query failed')
      return this.reply(query, question, { ...empty, rcode: RCODE.SERVFAIL }, transport)
    }
  }

  private reply (query: DecodedPacket, question: Question, r: Result, transport: 'udp' | 'tcp'): Buffer {
    const opt = query.additionals?.find((a): a is OptAnswer => a.type === 'OPT')
    const ourOpt: Answer[] = opt === undefined ? [] : [{ type: 'OPT', name: '.', udpPayloadSize: EDNS_SIZE, extendedRcode: 0, ednsVersion: 0, flags: 0, flag_do: false, options: [] }]
    const limit = transport === 'tcp' ? 65535 : Math.min(UDP_MAX, Math.max(UDP_MIN, opt?.udpPayloadSize ?? UDP_MIN))
    const flags = ((query.flags ?? 0) & RECURSION_DESIRED) | (this.upstream.length > 0 ? RECURSION_AVAILABLE : 0) | (r.authoritative ? AUTHORITATIVE_ANSWER : 0) | r.rcode
    const packet: Packet = { type: 'response', id: query.id ?? 0, flags, questions: [question], answers: r.answers, authorities: r.authorities, additionals: [...r.additionals, ...ourOpt] }
    let out = encode(packet)
    // Too big: first drop the additionals (glue, not needed for a correct answer), then truncate (the client retries over TCP).
    if (out.length > limit) out = encode({ ...packet, additionals: ourOpt })
    if (out.length > limit) out = encode({ ...packet, flags: flags | TRUNCATED_RESPONSE, answers: [], authorities: [], additionals: ourOpt })
    return out
  }

  // ---- names under the domain

  /** The answer for a name under the domain; undefined for a name outside it. */
  private lookup (q: Question): Result | undefined {
    const name = q.name.toLowerCase().replace(/\.$/, '')
    const d = this.domain
    if (name !== d && !name.endsWith(`.${d}`)) return undefined
    const labels = name === d ? [] : name.slice(0, -d.length - 1).split('.').reverse()
    const qtype: string = q.type
    const nodata = (): Result => this.negative(RCODE.NOERROR)
    const nxdomain = (): Result => this.negative(RCODE.NXDOMAIN)
    const [zone, ns, svcName, fourth, fifth] = labels
    if (zone === undefined) return qtype === 'SOA' || qtype === 'ANY' ? this.positive([this.soa()], []) : nodata()
    if (zone === 'pod') {
      if (labels.length < 3) return nodata()
      const ip = fourth === undefined && svcName !== undefined ? undashed(svcName) : undefined
      return ip === undefined ? nxdomain() : this.addressRecords(q, [ip])
    }
    if (zone !== 'svc' || labels.length > 5) return nxdomain()
    if (ns === undefined) return nodata()
    if (svcName === undefined) return this.store.get(NAMESPACE, undefined, ns) === undefined ? nxdomain() : nodata()
    const service = this.store.get(SERVICE, ns, svcName)
    if (service === undefined) return nxdomain()
    const spec = service.spec ?? {}
    const fqdn = `${svcName}.${ns}.svc.${d}`
    if (spec.type === 'ExternalName') {
      if (fourth !== undefined || spec.externalName === undefined) return nxdomain()
      return this.positive([{ type: 'CNAME', name: q.name, ttl: this.ttl, class: 'IN', data: spec.externalName.replace(/\.$/, '') }], [])
    }
    // A service with no clusterIP (none allocated) is answered like a headless one.
    const clusterIP = clusterIPOf(spec)
    const endpoints = clusterIP === undefined ? this.endpoints(ns, svcName) : []
    if (fourth === undefined) {
      if (qtype === 'SRV') return this.srv(q, fqdn, spec.ports ?? [], clusterIP, endpoints, undefined)
      return this.addressRecords(q, clusterIP !== undefined ? [clusterIP] : [...new Set(endpoints.map(e => e.ip))])
    }
    if (fifth === undefined) {
      // _tcp.<svc>...: an empty non-terminal on the way to SRV names; else a headless endpoint by hostname.
      if (fourth === '_tcp' || fourth === '_udp') return nodata()
      const mine = endpoints.filter(e => e.host === fourth || dashed(e.ip) === fourth)
      return mine.length === 0 ? nxdomain() : this.addressRecords(q, [...new Set(mine.map(e => e.ip))])
    }
    if (!fourth.startsWith('_') || !fifth.startsWith('_')) return nxdomain()
    const wanted = { proto: fourth.slice(1), port: fifth.slice(1) }
    const result = this.srv(q, fqdn, spec.ports ?? [], clusterIP, endpoints, wanted)
    if (result.answers.length === 0) return nxdomain()
    return qtype === 'SRV' || qtype === 'ANY' ? result : nodata()
  }

  /** The ready addresses of a service's Endpoints, each with its DNS label (hostname, the pod's hostname, or the dashed IP). */
  private endpoints (ns: string, svcName: string): Endpoint[] {
    const ep = this.store.get(ENDPOINTS, ns, svcName)
    const out: Endpoint[] = []
    for (const subset of ep?.subsets ?? []) {
      for (const a of subset.addresses ?? []) {
        if (typeof a.ip !== 'string' || isIP(a.ip) === 0) continue
        out.push({ ip: a.ip, host: (a.hostname ?? this.podHostname(ns, svcName, a) ?? dashed(a.ip)).toLowerCase(), ports: subset.ports ?? [] })
      }
    }
    return out.sort((x, y) => x.ip.localeCompare(y.ip))
  }

  /** A pod's spec.hostname, when its spec.subdomain names this service (as Kubernetes' endpoints controller fills in hostname). */
  private podHostname (ns: string, svcName: string, a: EndpointAddress): string | undefined {
    if (a.targetRef?.kind !== 'Pod' || a.targetRef.name === undefined) return undefined
    const spec = this.store.get(POD, ns, a.targetRef.name)?.spec
    return spec?.subdomain === svcName && typeof spec.hostname === 'string' && spec.hostname !== '' ? spec.hostname : undefined
  }

  /**
   * SRV records for the named ports (all, or the one wanted), with the
   * targets' addresses as additionals: the service's ports at its clusterIP,
   * or without one (headless), each endpoint's ports at the endpoint.
   */
  private srv (q: Question, fqdn: string, ports: ServicePort[], clusterIP: string | undefined, endpoints: Endpoint[], wanted: { proto: string, port: string } | undefined): Result {
    const matches = (p: ServicePort | EndpointPort): boolean => p.name !== undefined && p.name !== '' &&
      (wanted === undefined || (p.name.toLowerCase() === wanted.port && (p.protocol ?? 'TCP').toLowerCase() === wanted.proto))
    const answers: Answer[] = []
    const additionals = new Map<string, Answer>()
    const record = (port: number, target: string, ip: string): void => {
      answers.push({ type: 'SRV', name: q.name, ttl: this.ttl, class: 'IN', data: { priority: 0, weight: 100, port, target } })
      additionals.set(target, { type: isIPv6(ip) ? 'AAAA' : 'A', name: target, ttl: this.ttl, class: 'IN', data: ip })
    }
    if (clusterIP !== undefined) {
      for (const p of ports.filter(matches)) record(p.port, fqdn, clusterIP)
    } else {
      for (const e of endpoints) for (const p of e.ports.filter(matches)) record(p.port, `${e.host}.${fqdn}`, e.ip)
    }
    return this.positive(answers, [...additionals.values()])
  }

  /** A or AAAA records for the IPs of the family asked (NODATA for another type). */
  private addressRecords (q: Question, ips: string[]): Result {
    const qtype: string = q.type
    const answers: Answer[] = []
    for (const ip of ips) {
      const type = isIPv6(ip) ? 'AAAA' : 'A'
      if (qtype === type || qtype === 'ANY') answers.push({ type, name: q.name, ttl: this.ttl, class: 'IN', data: ip })
    }
    return answers.length === 0 ? this.negative(RCODE.NOERROR) : this.positive(answers, [])
  }

  private positive (answers: Answer[], additionals: Answer[]): Result {
    return { rcode: RCODE.NOERROR, authoritative: true, answers, authorities: [], additionals }
  }

  /** NXDOMAIN or NODATA, with the SOA for negative caching (RFC 2308). */
  private negative (rcode: number): Result {
    return { rcode, authoritative: true, answers: [], authorities: [this.soa()], additionals: [] }
  }

  private soa (): Answer {
    const serial = Number(this.store.resourceVersion()) % 2 ** 32
    return {
      type: 'SOA',
      name: this.domain,
      ttl: this.ttl,
      class: 'IN',
      data: { mname: `ns.dns.${this.domain}`, rname: `hostmaster.${this.domain}`, serial: Number.isFinite(serial) ? serial : 0, refresh: 7200, retry: 1800, expire: 86400, minimum: this.ttl }
    }
  }

  // ---- names outside the domain

  /** The first upstream's answer (UDP, then TCP if that was truncated and the client came over TCP), with the client's id. */
  private async forward (msg: Buffer, id: number, transport: 'udp' | 'tcp'): Promise<Buffer | undefined> {
    for (const up of this.upstream) {
      if (this.stopped) return undefined
      let answer = await this.askUdp(up, msg)
      if (answer !== undefined && transport === 'tcp' && (answer.readUInt16BE(2) & TRUNCATED_RESPONSE) !== 0) answer = await this.askTcp(up, msg)
      if (answer !== undefined) {
        answer.writeUInt16BE(id, 0)
        return answer
      }
    }
    return undefined
  }

  /** Runs one upstream exchange with the timeout; `start` calls `done` with the answer, or it gets undefined. */
  private async exchange (start: (done: (answer: Buffer | undefined) => void) => () => void): Promise<Buffer | undefined> {
    return await new Promise(resolve => {
      let finished = false
      let cleanup = (): void => {}
      const done = (answer: Buffer | undefined): void => {
        if (finished) return
        finished = true
        this.clock.clearTimeout(timer)
        this.pending.delete(cancel)
        cleanup()
        resolve(answer)
      }
      const cancel = (): void => { done(undefined) }
      const timer = this.clock.setTimeout(cancel, this.upstreamTimeoutMs)
      this.pending.add(cancel)
      cleanup = start(done)
      if (finished) cleanup()
    })
  }

  private async askUdp (up: Upstream, msg: Buffer): Promise<Buffer | undefined> {
    // A fresh random id and source port per query, against spoofed answers (crypto randomness: not a simulation input).
    const qid = randomInt(0, 65536)
    const query = Buffer.from(msg)
    query.writeUInt16BE(qid, 0)
    return await this.exchange(done => {
      const sock = createSocket(isIPv6(up.host) ? 'udp6' : 'udp4')
      sock.on('error', () => { done(undefined) })
      sock.on('message', (answer, from) => {
        if (from.port !== up.port || answer.length < 12 || answer.readUInt16BE(0) !== qid || (answer.readUInt8(2) & 0x80) === 0) return
        done(answer)
      })
      sock.send(query, up.port, up.host, err => { if (err != null) done(undefined) })
      return () => { try { sock.close() } catch { /* closed */ } }
    })
  }

  private async askTcp (up: Upstream, msg: Buffer): Promise<Buffer | undefined> {
    return await this.exchange(done => {
      const sock = connect({ host: up.host, port: up.port })
      let buf = Buffer.alloc(0)
      sock.on('error', () => { done(undefined) })
      sock.on('close', () => { done(undefined) })
      sock.on('data', (chunk: Buffer) => {
        buf = Buffer.concat([buf, chunk])
        if (buf.length >= 2 && buf.length >= 2 + buf.readUInt16BE(0)) done(buf.subarray(2, 2 + buf.readUInt16BE(0)))
      })
      sock.write(frame(msg))
      return () => { sock.destroy() }
    })
  }
}
