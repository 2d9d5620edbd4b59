// The chaos suite's workload, run while faults are injected: KV clients
// whose puts, CAS writes and consistent reads are recorded as a history for
// the linearizability checker; a deployer that creates, scales and rolls
// out Deployments and creates ConfigMaps, remembering what was
// acknowledged; and a bounded request load on a Service's cluster IP. Every
// loop stops by itself at `until`. A client that gets no answer moves to
// the next peer. Traffic goes only to the peers' and the service's
// loopback addresses.
// May import: protocol/ (types), daemon/clock, test/helpers/cluster.ts, test/sim/linearizability.ts.
import { request } from 'node:http'
import type { KObject } from '../../protocol/k8s.ts'
import type { KvPairView } from '../../protocol/kv.ts'
import { seededRng } from '../../daemon/clock/clock.ts'
import type { Rng } from '../../daemon/clock/clock.ts'
import { api, deploymentOf } from '../helpers/cluster.ts'
import type { Peer } from '../helpers/cluster.ts'
import type { KvInput, KvOutput, Operation } from '../sim/linearizability.ts'

/** What every workload needs: the current peers (restarts replace them), the run's clock and its end. */
export interface WorkloadContext {
  peers: () => Peer[]
  /** ms since the run started */
  now: () => number
  /** the workload stops at this now() */
  until: number
}

/** Counts by name, and per second of the run, for the report. */
export class Tally {
  readonly totals = new Map<string, number>()
  readonly perSecond = new Map<string, number[]>()

  add (name: string, atMs: number): void {
    this.totals.set(name, (this.totals.get(name) ?? 0) + 1)
    let series = this.perSecond.get(name)
    if (series === undefined) this.perSecond.set(name, series = [])
    const s = Math.max(0, Math.floor(atMs / 1000))
    while (series.length <= s) series.push(0)
    series[s] = (series[s] ?? 0) + 1
  }

  get (name: string): number { return this.totals.get(name) ?? 0 }
}

export const sleep = async (ms: number): Promise<void> => { await new Promise(resolve => setTimeout(resolve, ms)) }

/** The first running peer at or after index `from`, cyclically. */
function peerAt (peers: Peer[], from: number): { peer: Peer, index: number } | undefined {
  for (let k = 0; k < peers.length; k++) {
    const index = (from + k) % peers.length
    const peer = peers[index]
    if (peer?.running === true) return { peer, index }
  }
  return undefined
}

/** Why a request got no answer, in a few words for the report. */
export function failureName (err: unknown): string {
  const e = err as Error & { cause?: NodeJS.ErrnoException }
  if (e.name === 'TimeoutError' || e.name === 'AbortError') return 'timeout'
  const code = e.cause?.code ?? (e as NodeJS.ErrnoException).code
  if (code === 'ECONNREFUSED') return 'refused'
  if (code === 'ECONNRESET' || code === 'UND_ERR_SOCKET') return 'reset'
  return code ?? e.message.slice(0, 40)
}

type Outcome = { kind: 'ok', status: number, json: unknown } | { kind: 'none', why: string } | { kind: 'unknown', why: string }

// ---- KV -------------------------------------------------------------------

const KV_TIMEOUT_MS = 6000
/** Shared keys change every epoch, so that each key's history stays small enough to check. */
const KV_EPOCH_MS = 10_000
const KV_SHARED_KEYS = 3
export const KV_UNIQUE_PREFIX = 'chaos/u-'
/** Every loop is bounded in count as well as in time. */
const MAX_OPS_PER_CLIENT = 200_000

/** One KV request; `none` means it certainly had no effect (refused connection, 503), `unknown` that it may have. */
async function kvCall (peer: Peer, method: string, path: string, body?: string): Promise<Outcome> {
  try {
    const r = await peer.call(method, path, body, KV_TIMEOUT_MS)
    if (r.status === 503) return { kind: 'none', why: '503' }
    if (r.status === 200 || r.status === 404 || r.status === 409) return { kind: 'ok', status: r.status, json: r.json }
    return { kind: 'unknown', why: String(r.status) }
  } catch (err) {
    const why = failureName(err)
    return why === 'refused' ? { kind: 'none', why } : { kind: 'unknown', why }
  }
}

export class KvWorkload {
  readonly history: Array<Operation<KvInput, KvOutput>> = []
  /** unique keys whose put was acknowledged, with their values */
  readonly acked = new Map<string, string>()
  /** when each acknowledged write returned (ms of the run) */
  readonly ackTimes: number[] = []
  readonly stats = { ok: 0, unknown: 0, none: 0 }
  private readonly ctx: WorkloadContext
  private readonly tally: Tally
  private readonly seed: number

  constructor (ctx: WorkloadContext, tally: Tally, seed: number) {
    this.ctx = ctx
    this.tally = tally
    this.seed = seed
  }

  async run (clients: number): Promise<void> {
    await Promise.all(Array.from({ length: clients }, async (_, c) => { await this.client(c, seededRng(this.seed * 31 + c)) }))
  }

  private async client (c: number, rng: Rng): Promise<void> {
    const { ctx } = this
    let at = c
    for (let n = 0; ctx.now() < ctx.until && n < MAX_OPS_PER_CLIENT; n++) {
      const found = peerAt(ctx.peers(), at)
      if (found === undefined) { await sleep(200); continue }
      at = found.index
      const peer = found.peer
      const key = `chaos/e${Math.floor(ctx.now() / KV_EPOCH_MS)}-k${Math.floor(rng.next() * KV_SHARED_KEYS)}`
      const value = `c${c}-${n}`
      const roll = rng.next()
      const call0 = ctx.now()
      let r: Outcome
      if (roll < 0.35) {
        r = await kvCall(peer, 'PUT', `/shoal/v1/kv/${key}`, value)
        this.record(c, { op: 'put', key, value }, r, call0, r.kind === 'ok' ? { ok: true } : undefined)
      } else if (roll < 0.55) {
        // CAS on what a local read saw: values are unique, so "modifyIndex is N" is "the value is V".
        r = await kvCall(peer, 'GET', `/shoal/v1/kv/${key}`)
        if (r.kind === 'ok') {
          const expected = r.status === 404 ? null : (r.json as KvPairView).value
          const index = r.status === 404 ? 0 : (r.json as KvPairView).modifyIndex
          const at1 = ctx.now()
          r = await kvCall(peer, 'PUT', `/shoal/v1/kv/${key}?cas=${index}`, value)
          this.record(c, { op: 'cas', key, expected, value }, r, at1, r.kind === 'ok' ? { ok: r.status === 200 } : undefined)
        }
      } else if (roll < 0.85) {
        r = await kvCall(peer, 'GET', `/shoal/v1/kv/${key}?consistent`)
        // a read with no answer constrains nothing: it is left out of the history
        if (r.kind === 'ok') this.record(c, { op: 'get', key }, r, call0, { value: r.status === 404 ? null : (r.json as KvPairView).value })
      } else {
        const unique = `${KV_UNIQUE_PREFIX}${value}`
        r = await kvCall(peer, 'PUT', `/shoal/v1/kv/${unique}`, value)
        this.stats[r.kind]++
        if (r.kind === 'ok' && r.status === 200) {
          this.acked.set(unique, value)
          this.ack()
        }
      }
      if (r.kind !== 'ok') {
        this.tally.add(`kv ${r.why}`, ctx.now())
        at++
        if (r.kind === 'none') await sleep(100)
      }
      await sleep(20)
    }
  }

  private ack (): void {
    const t = this.ctx.now()
    this.ackTimes.push(t)
    this.tally.add('acked writes', t)
  }

  private record (c: number, input: KvInput, r: Outcome, callAt: number, output: KvOutput | undefined): void {
    if (r.kind === 'none') { this.stats.none++; return }
    if (r.kind === 'unknown' || output === undefined) {
      this.stats.unknown++
      if (input.op !== 'get') this.history.push({ client: c, input, call: callAt, output: undefined, return: Infinity })
      return
    }
    this.stats.ok++
    if (input.op !== 'get' && 'ok' in output && output.ok) this.ack()
    this.history.push({ client: c, input, call: callAt, output, return: this.ctx.now() })
  }
}

// ---- Deployments and ConfigMaps ------------------------------------------------

export const HTTP_SERVER = "require('http').createServer((q,s)=>s.end(process.env.POD_NAME)).listen(8080, process.env.POD_IP)"

/** acked: the write was acknowledged; unknown: its outcome is not known; pending: never certainly sent */
export type WriteState = 'acked' | 'unknown' | 'pending'

export interface TrackedDeployment {
  name: string
  created: WriteState
  /** the replicas last acknowledged */
  replicas: number
  /** false once a scale's outcome was unknown: then the cluster's own spec is what must converge */
  replicasCertain: boolean
  /** rollouts acknowledged */
  revision: number
}

export interface TrackedConfigMap { name: string, created: WriteState, value: string }

export function webDeployment (replicas: number): KObject {
  return deploymentOf('web', replicas, {
    name: 'web',
    image: 'node',
    command: [process.execPath, '-e', HTTP_SERVER],
    ports: [{ name: 'http', containerPort: 8080 }],
    readinessProbe: { httpGet: { path: '/', port: 8080 }, periodSeconds: 1 }
  })
}

export function webService (): KObject {
  return { apiVersion: 'v1', kind: 'Service', metadata: { name: 'web', namespace: 'default' }, spec: { selector: { app: 'web' }, ports: [{ name: 'http', port: 80, targetPort: 8080 }] } }
}

function sleeperDeployment (name: string, replicas: number): KObject {
  return deploymentOf(name, replicas, { name: 'sleep', image: 'busybox', command: ['sh', '-c', 'sleep 600'] })
}


const DEPLOYMENTS = '/apis/apps/v1/namespaces/default/deployments'
const CONFIGMAPS = '/api/v1/namespaces/default/configmaps'
const MAX_SLEEPERS = 4

export class ObjectWorkload {
  readonly deployments = new Map<string, TrackedDeployment>()
  readonly configMaps = new Map<string, TrackedConfigMap>()
  readonly stats = { created: 0, scaled: 0, rolledOut: 0, configMaps: 0, unknown: 0, refused: 0 }
  private readonly ctx: WorkloadContext
  private readonly tally: Tally
  private readonly rng: Rng
  private at = 0

  constructor (ctx: WorkloadContext, tally: Tally, seed: number) {
    this.ctx = ctx
    this.tally = tally
    this.rng = seededRng(seed)
  }

  /** One write to the next peer that answers; moves on when a peer gives no answer. */
  async write (method: string, path: string, body: unknown, contentType = 'application/json'): Promise<Outcome> {
    const found = peerAt(this.ctx.peers(), this.at)
    if (found === undefined) return { kind: 'none', why: 'no peer running' }
    this.at = found.index
    let out: Outcome
    try {
      const r = await api(found.peer, method, path, body, contentType)
      if (r.status === 503) out = { kind: 'none', why: '503' }
      else if (r.status >= 200 && r.status < 300) out = { kind: 'ok', status: r.status, json: r.body }
      else if (r.status === 409 || r.status === 404) out = { kind: 'ok', status: r.status, json: r.body }
      else out = { kind: 'unknown', why: String(r.status) }
    } catch (err) {
      const why = failureName(err)
      out = why === 'refused' ? { kind: 'none', why } : { kind: 'unknown', why }
    }
    if (out.kind !== 'ok') {
      this.tally.add(`objects ${out.why}`, this.ctx.now())
      this.stats[out.kind === 'none' ? 'refused' : 'unknown']++
      this.at++
    }
    return out
  }

  /** Creates (or makes sure of) a Deployment; an unknown outcome is settled by the next try's 409. */
  async createDeployment (name: string, replicas: number): Promise<void> {
    const tracked = this.deployments.get(name) ?? { name, created: 'pending', replicas, replicasCertain: true, revision: 0 }
    this.deployments.set(name, tracked)
    const object = name === 'web' ? webDeployment(replicas) : sleeperDeployment(name, replicas)
    const r = await this.write('POST', DEPLOYMENTS, object)
    if (r.kind === 'ok' && (r.status === 201 || (r.status === 409 && tracked.created === 'unknown'))) {
      if (r.status === 201) this.stats.created++
      tracked.created = 'acked'
    } else if (r.kind === 'unknown' && tracked.created === 'pending') tracked.created = 'unknown'
  }

  async createConfigMap (name: string, value: string): Promise<void> {
    const tracked = this.configMaps.get(name) ?? { name, created: 'pending', value }
    this.configMaps.set(name, tracked)
    const r = await this.write('POST', CONFIGMAPS, { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name, namespace: 'default' }, data: { value } })
    if (r.kind === 'ok' && (r.status === 201 || (r.status === 409 && tracked.created === 'unknown'))) {
      if (r.status === 201) this.stats.configMaps++
      tracked.created = 'acked'
    } else if (r.kind === 'unknown' && tracked.created === 'pending') tracked.created = 'unknown'
  }

  async scale (d: TrackedDeployment, replicas: number): Promise<void> {
    const r = await this.write('PATCH', `${DEPLOYMENTS}/${d.name}`, { spec: { replicas } }, 'application/merge-patch+json')
    if (r.kind === 'ok' && r.status === 200) {
      d.replicas = replicas
      this.stats.scaled++
    } else if (r.kind === 'unknown') d.replicasCertain = false
  }

  async rollOut (d: TrackedDeployment): Promise<void> {
    const revision = d.revision + 1
    const patch = { spec: { template: { metadata: { annotations: { 'chaos/revision': String(revision) } } } } }
    const r = await this.write('PATCH', `${DEPLOYMENTS}/${d.name}`, patch, 'application/merge-patch+json')
    if (r.kind === 'ok' && r.status === 200) {
      d.revision = revision
      this.stats.rolledOut++
    }
  }

  /** Every 2 to 5 s one change: finish an unsettled create, or create, scale or roll out. */
  async run (): Promise<void> {
    const { ctx, rng } = this
    let sleepers = 0
    let maps = 0
    for (let n = 0; ctx.now() < ctx.until && n < MAX_OPS_PER_CLIENT; n++) {
      await sleep(2000 + rng.next() * 3000)
      if (ctx.now() >= ctx.until) break
      const unsettled = [...this.deployments.values()].find(d => d.created !== 'acked')
      const unsettledMap = [...this.configMaps.values()].find(m => m.created !== 'acked')
      const roll = rng.next()
      const settled = [...this.deployments.values()].filter(d => d.created === 'acked')
      const target = settled[Math.floor(rng.next() * settled.length)]
      if (unsettled !== undefined) await this.createDeployment(unsettled.name, unsettled.replicas)
      else if (unsettledMap !== undefined) await this.createConfigMap(unsettledMap.name, unsettledMap.value)
      else if (roll < 0.2 && sleepers < MAX_SLEEPERS) await this.createDeployment(`sleep-${++sleepers}`, 1 + Math.floor(rng.next() * 2))
      else if (roll < 0.4) await this.createConfigMap(`cm-${++maps}`, `v${Math.floor(rng.next() * 1e9)}`)
      else if (roll < 0.75 && target !== undefined) await this.scale(target, target.name === 'web' ? 2 + Math.floor(rng.next() * 3) : 1 + Math.floor(rng.next() * 3))
      else if (target !== undefined) await this.rollOut(target)
    }
  }
}

// ---- Service load -------------------------------------------------------------

/** One GET on a new connection (no keep-alive, so that each request is balanced afresh); the body. */
export async function httpGet (host: string, port: number, timeoutMs: number): Promise<string> {
  return await new Promise((resolve, reject) => {
    const req = request({ host, port, path: '/', agent: false, timeout: timeoutMs }, res => {
      let body = ''
      res.setEncoding('utf8').on('data', (c: string) => { body += c }).on('end', () => {
        if (res.statusCode === 200) resolve(body)
        else reject(new Error(`status ${res.statusCode ?? 0}`))
      }).on('error', reject)
    })
    req.on('timeout', () => { req.destroy(Object.assign(new Error('timed out'), { name: 'TimeoutError' })) })
    req.on('error', reject)
    req.end()
  })
}

export class ServiceLoad {
  readonly stats = { ok: 0, errors: 0 }
  private readonly ctx: WorkloadContext
  private readonly tally: Tally

  constructor (ctx: WorkloadContext, tally: Tally) {
    this.ctx = ctx
    this.tally = tally
  }

  /** `workers` sequential clients, each about 10 requests a second at most. */
  async run (clusterIP: string, workers: number): Promise<void> {
    await Promise.all(Array.from({ length: workers }, async () => {
      for (let n = 0; this.ctx.now() < this.ctx.until && n < MAX_OPS_PER_CLIENT; n++) {
        try {
          await httpGet(clusterIP, 80, 3000)
          this.stats.ok++
          this.tally.add('service ok', this.ctx.now())
        } catch (err) {
          this.stats.errors++
          this.tally.add('service errors', this.ctx.now())
          this.tally.add(`service ${failureName(err)}`, this.ctx.now())
        }
        await sleep(100)
      }
    }))
  }
}
