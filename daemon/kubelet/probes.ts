// Container probes (liveness, readiness, startup) as Kubernetes runs them:
// one worker per probe per container attempt, on the injected clock. The
// first probe runs initialDelaySeconds after the container started, then one
// every periodSeconds; a result flips after successThreshold consecutive
// successes or failureThreshold consecutive failures. While a startup probe
// has not succeeded, liveness and readiness are not run. The kubelet reads
// the results (started, ready, and whether the container must be killed) and
// is told only when one of them changes, so that probes write no status on
// their own. A worker ends with its container attempt (forget/retain).
// May import: protocol/, daemon/clock, daemon/log, ./runtime.ts.
import { request as httpRequest } from 'node:http'
import { request as httpsRequest } from 'node:https'
import { connect } from 'node:net'
import type { Container, IntOrString, Probe } from '../../protocol/core-v1.ts'
import type { Clock, TimerHandle } from '../clock/clock.ts'
import type { Logger } from '../log/log.ts'
import type { ContainerRecord, ExecResult } from './runtime.ts'

export type ProbeKind = 'startup' | 'liveness' | 'readiness'

/** What the kubelet needs to know of one container attempt's probes. */
export interface ProbeState {
  /** no startup probe, or it has succeeded */
  started: boolean
  /** started, and no readiness probe or it currently succeeds */
  ready: boolean
  /** set once liveness or startup failed failureThreshold times: the container must be killed */
  failed?: string
}

export interface ProberOptions {
  clock: Clock
  log: Logger
  exec: (id: string, argv: string[], timeoutMs: number) => Promise<ExecResult>
  /** called when a container's ProbeState changes */
  onChange: (podKey: string) => void
}

interface Worker {
  kind: ProbeKind
  spec: Probe
  /** the current result; undefined until the threshold was first reached (startup) */
  result: boolean | undefined
  successes: number
  failures: number
  timer?: TimerHandle
  running: boolean
}

interface Entry {
  podUid: string
  podKey: string
  container: Container
  rec: ContainerRecord
  podIP: string
  workers: Worker[]
  state: ProbeState
  stopped: boolean
}

/** One probe: whether it succeeded, and why not. */
export type ProbeOutcome = { ok: true } | { ok: false, message: string }

/** A named container port, or the number itself; the store does not require a probe's port. */
export function resolvePort (port: IntOrString | undefined, container: Container): number | undefined {
  if (typeof port === 'number') return port
  if (port === undefined) return undefined
  if (/^\d+$/.test(port)) return Number(port)
  return container.ports?.find(p => p.name === port)?.containerPort
}

export class Prober {
  private readonly opts: ProberOptions
  /** by container record id */
  private readonly entries = new Map<string, Entry>()

  constructor (opts: ProberOptions) {
    this.opts = opts
  }

  /**
   * The probe state of a running container attempt, starting its workers on
   * the first call. A container without probes is started and ready.
   */
  ensure (podKey: string, podIP: string, container: Container, rec: ContainerRecord): ProbeState {
    let e = this.entries.get(rec.id)
    if (e === undefined) {
      e = { podUid: rec.podUid, podKey, container, rec, podIP, workers: [], state: { started: true, ready: true }, stopped: false }
      for (const kind of ['startup', 'liveness', 'readiness'] as const) {
        const spec = container[`${kind}Probe` as const]
        // The store keeps a null the user sent: no probe.
        if (spec === undefined || spec === null) continue
        // Kubernetes' initial results: readiness fails and startup is unknown until probed; liveness succeeds.
        e.workers.push({ kind, spec, result: kind === 'liveness' ? true : kind === 'readiness' ? false : undefined, successes: 0, failures: 0, running: false })
      }
      e.state = this.compute(e)
      this.entries.set(rec.id, e)
      for (const w of e.workers) this.schedule(e, w, rec.startedAt + 1000 * Math.max(0, w.spec.initialDelaySeconds ?? 0) - this.opts.clock.now())
    }
    return { ...e.state }
  }

  /** Stops the workers of `podUid`'s containers other than `keep` (ids). */
  retain (podUid: string, keep: Set<string>): void {
    for (const [id, e] of this.entries) if (e.podUid === podUid && !keep.has(id)) this.drop(id, e)
  }

  forgetPod (podUid: string): void {
    this.retain(podUid, new Set())
  }

  stop (): void {
    for (const [id, e] of this.entries) this.drop(id, e)
  }

  private drop (id: string, e: Entry): void {
    e.stopped = true
    for (const w of e.workers) if (w.timer !== undefined) this.opts.clock.clearTimeout(w.timer)
    this.entries.delete(id)
  }

  private schedule (e: Entry, w: Worker, ms: number): void {
    if (e.stopped) return
    w.timer = this.opts.clock.setTimeout(() => { void this.tick(e, w) }, Math.max(0, ms))
  }

  private async tick (e: Entry, w: Worker): Promise<void> {
    w.timer = undefined
    if (e.stopped || e.state.failed !== undefined) return
    const period = 1000 * Math.max(1, w.spec.periodSeconds ?? 10)
    // Startup gates the others; a startup probe that succeeded is done.
    const gated = w.kind !== 'startup' && !e.state.started
    if (w.kind === 'startup' && w.result === true) return
    if (!gated && !w.running) {
      w.running = true
      let outcome: ProbeOutcome
      try {
        outcome = await this.probe(e, w.spec)
      } catch (err) {
        outcome = { ok: false, message: (err as Error).message }
      }
      w.running = false
      if (e.stopped) return
      this.record(e, w, outcome)
    }
    this.schedule(e, w, period)
  }

  private record (e: Entry, w: Worker, outcome: ProbeOutcome): void {
    if (outcome.ok) {
      w.successes++
      w.failures = 0
      // successThreshold must be 1 for liveness and startup (as Kubernetes validates).
      const need = w.kind === 'readiness' ? Math.max(1, w.spec.successThreshold ?? 1) : 1
      if (w.successes >= need) w.result = true
    } else {
      w.failures++
      w.successes = 0
      if (w.failures >= Math.max(1, w.spec.failureThreshold ?? 3)) {
        w.result = false
        if (w.kind !== 'readiness' && e.state.failed === undefined) {
          e.state.failed = `${w.kind === 'liveness' ? 'Liveness' : 'Startup'} probe failed: ${outcome.message}`
          this.opts.log.info({ event: 'kubelet.probe.failed', pod: e.podKey, container: e.rec.containerName, probe: w.kind, message: outcome.message }, `container ${e.podKey}/${e.rec.containerName} failed its ${w.kind} probe, will be restarted: ${outcome.message}`)
        }
      }
    }
    const next = this.compute(e)
    if (next.started !== e.state.started || next.ready !== e.state.ready || next.failed !== e.state.failed) {
      e.state = next
      this.opts.onChange(e.podKey)
    }
  }

  private compute (e: Entry): ProbeState {
    const of = (kind: ProbeKind): Worker | undefined => e.workers.find(w => w.kind === kind)
    const startup = of('startup')
    const readiness = of('readiness')
    const started = startup === undefined || startup.result === true
    const ready = started && (readiness === undefined || readiness.result === true)
    return e.state.failed === undefined ? { started, ready } : { started, ready: false, failed: e.state.failed }
  }

  /** Runs one probe once. */
  private async probe (e: Entry, spec: Probe): Promise<ProbeOutcome> {
    const timeoutMs = 1000 * Math.max(1, spec.timeoutSeconds ?? 1)
    if (spec.exec !== undefined) {
      const r = await this.opts.exec(e.rec.id, spec.exec.command ?? [], timeoutMs)
      return r.exitCode === 0 ? { ok: true } : { ok: false, message: `command exited with ${r.exitCode}: ${(r.stdout + r.stderr).trim().slice(0, 200)}` }
    }
    if (spec.httpGet !== undefined) {
      const port = resolvePort(spec.httpGet.port, e.container)
      if (port === undefined) return { ok: false, message: `no port ${String(spec.httpGet.port)}` }
      return await this.httpGet(spec.httpGet.host ?? e.podIP, port, spec.httpGet, timeoutMs)
    }
    if (spec.tcpSocket !== undefined) {
      const port = resolvePort(spec.tcpSocket.port, e.container)
      if (port === undefined) return { ok: false, message: `no port ${String(spec.tcpSocket.port)}` }
      return await this.tcp(spec.tcpSocket.host ?? e.podIP, port, timeoutMs)
    }
    // gRPC probes (and none at all) are not supported: they count as success rather than kill the container.
    return { ok: true }
  }

  private async httpGet (host: string, port: number, get: NonNullable<Probe['httpGet']>, timeoutMs: number): Promise<ProbeOutcome> {
    // The store takes any string for the scheme.
    const https = (get.scheme ?? 'HTTP').toUpperCase() === 'HTTPS'
    const headers: Record<string, string> = { 'user-agent': 'shoal-probe/1.0', accept: '*/*' }
    for (const h of get.httpHeaders ?? []) headers[h.name.toLowerCase()] = h.value
    const path = get.path === undefined || get.path === '' ? '/' : get.path.startsWith('/') ? get.path : `/${get.path}`
    return await new Promise<ProbeOutcome>(resolve => {
      let done = false
      const finish = (o: ProbeOutcome): void => {
        if (done) return
        done = true
        this.opts.clock.clearTimeout(timer)
        req.destroy()
        resolve(o)
      }
      const req = (https ? httpsRequest : httpRequest)({ host, port, path, method: 'GET', headers, rejectUnauthorized: false, agent: false }, res => {
        const code = res.statusCode ?? 0
        res.resume()
        finish(code >= 200 && code < 400 ? { ok: true } : { ok: false, message: `HTTP probe failed with statuscode: ${code}` })
      })
      const timer = this.opts.clock.setTimeout(() => { finish({ ok: false, message: `Get ${https ? 'https' : 'http'}://${host}:${port}${path}: timeout after ${timeoutMs}ms` }) }, timeoutMs)
      req.on('error', err => { finish({ ok: false, message: err.message }) })
      req.end()
    })
  }

  private async tcp (host: string, port: number, timeoutMs: number): Promise<ProbeOutcome> {
    return await new Promise<ProbeOutcome>(resolve => {
      let done = false
      const finish = (o: ProbeOutcome): void => {
        if (done) return
        done = true
        this.opts.clock.clearTimeout(timer)
        socket.destroy()
        resolve(o)
      }
      const socket = connect({ host, port }, () => { finish({ ok: true }) })
      const timer = this.opts.clock.setTimeout(() => { finish({ ok: false, message: `dial tcp ${host}:${port}: timeout after ${timeoutMs}ms` }) }, timeoutMs)
      socket.on('error', err => { finish({ ok: false, message: err.message }) })
    })
  }
}
