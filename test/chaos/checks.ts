// The chaos suite's checks. LeaderWatch polls every peer's Raft status
// during the run and records who claimed to lead in which term. The rest
// run after the faults are healed, each bounded in time, and each returns a
// named verdict with a detail line: leaders per term, acknowledged KV
// writes and objects present, Deployments converged, no pod processes
// without a pod, identical state at the same applied index, the Service
// answering, and the linearizability of the KV history.
// May import: protocol/ (types), daemon/api/debug.ts (the view's type), test/helpers/cluster.ts, test/sim/linearizability.ts, ./workload.ts.
import { readdirSync, readlinkSync } from 'node:fs'
import { join, sep } from 'node:path'
import type { RaftStatusView } from '../../protocol/api.ts'
import type { KObject } from '../../protocol/k8s.ts'
import type { KvPairView } from '../../protocol/kv.ts'
import type { StateHashView } from '../../daemon/api/debug.ts'
import { api } from '../helpers/cluster.ts'
import type { Peer } from '../helpers/cluster.ts'
import { checkLinearizable, kvModel } from '../sim/linearizability.ts'
import type { KvInput, KvOutput, Operation } from '../sim/linearizability.ts'
import { httpGet, KV_UNIQUE_PREFIX, sleep } from './workload.ts'
import type { ObjectWorkload } from './workload.ts'

export interface CheckResult {
  name: string
  ok: boolean
  detail: string
}

/** A peer's Raft status, or undefined when it does not answer within a second. */
export async function raftStatus (peer: Peer): Promise<RaftStatusView | undefined> {
  try {
    const res = await fetch(`${peer.apiUrl}/shoal/v1/raft`, { headers: { authorization: `Bearer ${peer.token()}` }, signal: AbortSignal.timeout(1000) })
    return res.ok ? await res.json() as RaftStatusView : undefined
  } catch {
    return undefined
  }
}

/** The peer that says it leads, in the highest term heard; undefined when none answers as leader. */
export async function currentLeader (peers: Peer[]): Promise<Peer | undefined> {
  const views = await Promise.all(peers.map(async p => p.running ? await raftStatus(p) : undefined))
  let best: { peer: Peer, term: number } | undefined
  views.forEach((v, i) => {
    if (v?.role === 'leader' && (best === undefined || v.term > best.term)) best = { peer: peers[i] as Peer, term: v.term }
  })
  return (best as { peer: Peer } | undefined)?.peer
}

export interface LeaderChange { t: number, term: number, leader: string }

/** Polls every running peer's /shoal/v1/raft four times a second and records (term, leader) claims. */
export class LeaderWatch {
  /** term → the peers that answered as its leader */
  readonly claims = new Map<number, Set<string>>()
  /** each (term, leader) pair when first seen, in order */
  readonly changes: LeaderChange[] = []
  polls = 0
  private stopped = false
  private loop: Promise<void> | undefined

  /** Polls until stop(), or by itself until now() reaches `untilMs`. */
  start (peers: () => Peer[], now: () => number, untilMs: number): void {
    this.loop = (async () => {
      while (!this.stopped && now() < untilMs) {
        const current = peers()
        const views = await Promise.all(current.map(async p => p.running ? await raftStatus(p) : undefined))
        this.polls++
        for (const [i, v] of views.entries()) {
          if (v?.role !== 'leader') continue
          const name = current[i]?.name ?? v.name
          let set = this.claims.get(v.term)
          if (set === undefined) this.claims.set(v.term, set = new Set())
          if (!set.has(name)) {
            set.add(name)
            this.changes.push({ t: now(), term: v.term, leader: name })
          }
        }
        await sleep(250)
      }
    })()
  }

  async stop (): Promise<void> {
    this.stopped = true
    await this.loop
  }

  check (): CheckResult {
    const bad = [...this.claims].filter(([, names]) => names.size > 1).map(([term, names]) => `term ${term}: ${[...names].join(', ')}`)
    return {
      name: 'at most one leader per term',
      ok: bad.length === 0,
      detail: bad.length === 0 ? `${this.claims.size} terms with a leader seen in ${this.polls} polls of every peer` : `two leaders in ${bad.join('; ')}`
    }
  }
}

export function checkKvLinearizable (history: Array<Operation<KvInput, KvOutput>>): CheckResult {
  const started = performance.now()
  const result = checkLinearizable(kvModel, history, { timeoutMs: 60_000 })
  const keys = new Set(history.map(op => op.input.key)).size
  return {
    name: 'the KV history is linearizable',
    ok: result.ok,
    detail: result.ok
      ? `${history.length} operations on ${keys} keys checked in ${Math.round(performance.now() - started)} ms`
      : (result.explanation ?? 'not linearizable')
  }
}

/** Every acknowledged unique put is there with its value, on every peer's own replica. */
export async function checkKvAcked (peers: Peer[], acked: Map<string, string>): Promise<CheckResult> {
  const problems: string[] = []
  for (const p of peers) {
    const list = await p.call('GET', `/shoal/v1/kv/?prefix=${encodeURIComponent(KV_UNIQUE_PREFIX)}`)
    if (list.status !== 200) { problems.push(`${p.name} answered ${list.status}`); continue }
    const items = new Map((list.json as { items: KvPairView[] }).items.map(i => [i.key, i.value]))
    const missing = [...acked].filter(([k, v]) => items.get(k) !== v).map(([k]) => k)
    if (missing.length > 0) problems.push(`${p.name} lacks ${missing.length}: ${missing.slice(0, 5).join(', ')}`)
  }
  return {
    name: 'every acknowledged KV write is present',
    ok: problems.length === 0,
    detail: problems.length === 0 ? `${acked.size} acknowledged unique keys on each of ${peers.length} peers` : problems.join('; ')
  }
}

/** Every acknowledged Deployment and ConfigMap exists (and a ConfigMap holds what was written). */
export async function checkObjectsAcked (peers: Peer[], objects: ObjectWorkload): Promise<CheckResult> {
  const problems: string[] = []
  let checked = 0
  for (const p of peers) {
    for (const d of objects.deployments.values()) {
      if (d.created !== 'acked') continue
      checked++
      const r = await api(p, 'GET', `/apis/apps/v1/namespaces/default/deployments/${d.name}`)
      if (r.status !== 200) problems.push(`${p.name}: Deployment ${d.name} answered ${r.status}`)
      else if (d.replicasCertain && r.body.spec.replicas !== d.replicas) problems.push(`${p.name}: Deployment ${d.name} has ${String(r.body.spec.replicas)} replicas, ${d.replicas} acknowledged`)
    }
    for (const m of objects.configMaps.values()) {
      if (m.created !== 'acked') continue
      checked++
      const r = await api(p, 'GET', `/api/v1/namespaces/default/configmaps/${m.name}`)
      if (r.status !== 200) problems.push(`${p.name}: ConfigMap ${m.name} answered ${r.status}`)
      else if (r.body.data?.value !== m.value) problems.push(`${p.name}: ConfigMap ${m.name} holds ${JSON.stringify(r.body.data)}`)
    }
  }
  return {
    name: 'every acknowledged object is present',
    ok: problems.length === 0,
    detail: problems.length === 0 ? `${checked / Math.max(1, peers.length)} objects on each of ${peers.length} peers` : problems.slice(0, 10).join('; ')
  }
}

interface DeploymentView extends KObject {
  spec: { replicas: number }
  status?: { observedGeneration?: number, replicas?: number, updatedReplicas?: number, readyReplicas?: number }
}

function converged (d: DeploymentView): boolean {
  const s = d.status ?? {}
  const want = d.spec.replicas
  return (s.observedGeneration ?? 0) >= (d.metadata.generation ?? 1) && s.replicas === want && s.updatedReplicas === want && s.readyReplicas === want
}

/** Every Deployment reaches its desired ready replicas, all of the newest template, within `boundMs`. */
export async function checkConvergence (peer: () => Peer, boundMs: number, now: () => number): Promise<CheckResult & { ms: number }> {
  const start = now()
  let last = 'no answer'
  while (now() - start < boundMs) {
    try {
      const r = await api(peer(), 'GET', '/apis/apps/v1/namespaces/default/deployments')
      if (r.status === 200) {
        const items = (r.body.items ?? []) as DeploymentView[]
        const pending = items.filter(d => !converged(d))
        if (pending.length === 0 && items.length > 0) {
          const ms = Math.round(now() - start)
          return { name: 'every Deployment converges', ok: true, detail: `${items.length} Deployments ready with their desired replicas ${(ms / 1000).toFixed(1)} s after healing`, ms }
        }
        last = pending.map(d => `${d.metadata.name ?? ''} ${d.status?.readyReplicas ?? 0}/${d.spec.replicas} ready, ${d.status?.updatedReplicas ?? 0} updated, ${d.status?.replicas ?? 0} in all`).join('; ')
      } else last = `answered ${r.status}`
    } catch (err) { last = (err as Error).message }
    await sleep(500)
  }
  return { name: 'every Deployment converges', ok: false, detail: `not within ${boundMs / 1000} s: ${last}; ${await podsReport(peer()).catch((err: Error) => err.message)}`, ms: boundMs }
}

/** What the pods and ReplicaSets of the cluster look like, for a convergence failure's message. */
async function podsReport (peer: Peer): Promise<string> {
  const pods = ((await api(peer, 'GET', '/api/v1/namespaces/default/pods')).body.items ?? []) as any[]
  const rss = ((await api(peer, 'GET', '/apis/apps/v1/namespaces/default/replicasets')).body.items ?? []) as any[]
  const pod = (p: any): string => {
    const ready = (p.status?.conditions ?? []).find((c: any) => c.type === 'Ready')?.status ?? '?'
    const cs = p.status?.containerStatuses?.[0]
    const state = cs === undefined ? 'no status' : Object.keys(cs.state ?? {})[0] + (cs.state?.waiting?.reason !== undefined ? `:${String(cs.state.waiting.reason)}` : '')
    return `${String(p.metadata.name)}@${String(p.spec?.nodeName ?? '-')} ${String(p.status?.phase)} ready=${String(ready)} ${state}${p.metadata.deletionTimestamp !== undefined ? ' deleting' : ''}`
  }
  const rs = (r: any): string => `${String(r.metadata.name)} spec=${String(r.spec?.replicas)} status=${String(r.status?.replicas)}/${String(r.status?.readyReplicas ?? 0)} gen=${String(r.metadata.generation)}/${String(r.status?.observedGeneration)}`
  return `pods: ${pods.map(pod).join(', ')}; replicasets: ${rss.map(rs).join(', ')}`
}

/** The pod uid of each process whose working directory is under a peer's pods directory, per peer name. */
function podProcesses (peers: Peer[]): Array<{ pid: number, peer: string, uid: string }> {
  const out: Array<{ pid: number, peer: string, uid: string }> = []
  for (const pid of readdirSync('/proc').filter(x => /^\d+$/.test(x))) {
    let cwd: string
    try { cwd = readlinkSync(`/proc/${pid}/cwd`) } catch { continue }
    for (const p of peers) {
      const podsDir = join(p.opts.dataDir, 'pods') + sep
      if (!cwd.startsWith(podsDir)) continue
      const uid = cwd.slice(podsDir.length).split(sep)[0] ?? ''
      out.push({ pid: Number(pid), peer: p.name, uid })
    }
  }
  return out
}

/** Every pod process on every peer belongs to a pod that exists and is bound to that peer; waits up to `boundMs` for kubelets to clean up. */
export async function checkNoOrphans (peers: Peer[], reader: () => Peer, boundMs: number): Promise<CheckResult> {
  const deadline = Date.now() + boundMs
  let last = ''
  for (;;) {
    try {
      const r = await api(reader(), 'GET', '/api/v1/pods')
      if (r.status !== 200) throw new Error(`the pod list answered ${r.status}`)
      const pods = new Map(((r.body.items ?? []) as Array<KObject & { spec: { nodeName?: string } }>).map(p => [p.metadata.uid ?? '', p]))
      const procs = podProcesses(peers)
      const orphans = procs.filter(x => pods.get(x.uid)?.spec.nodeName !== x.peer)
      if (orphans.length === 0) {
        return { name: 'no orphaned pod processes', ok: true, detail: `${procs.length} pod processes, each of a pod bound to its peer (${pods.size} pods)` }
      }
      last = orphans.slice(0, 6).map(o => `pid ${o.pid} on ${o.peer} for pod ${o.uid.slice(0, 8)} (${pods.has(o.uid) ? `bound to ${pods.get(o.uid)?.spec.nodeName ?? 'nobody'}` : 'gone'})`).join('; ')
    } catch (err) { last = (err as Error).message }
    if (Date.now() > deadline) return { name: 'no orphaned pod processes', ok: false, detail: `after ${boundMs / 1000} s: ${last}` }
    await sleep(1000)
  }
}

async function stateHash (peer: Peer): Promise<StateHashView | undefined> {
  try {
    const r = await peer.call('GET', '/shoal/v1/debug/state-hash', undefined, 5000)
    return r.status === 200 ? r.json as StateHashView : undefined
  } catch {
    return undefined
  }
}

/** Asks every peer at once until all answer at the same applied index; then their hashes must agree. */
export async function checkStateHashes (peers: Peer[], boundMs: number): Promise<CheckResult> {
  const name = 'every peer holds the same state at the same applied index'
  const deadline = Date.now() + boundMs
  let last = ''
  let mismatch: string | undefined
  let rounds = 0
  while (Date.now() < deadline) {
    rounds++
    const views = await Promise.all(peers.map(async p => await stateHash(p)))
    const indexes = new Set(views.map(v => v?.appliedIndex))
    if (views.every(v => v !== undefined) && indexes.size === 1) {
      const hashes = new Set(views.map(v => v?.hash))
      const index = views[0]?.appliedIndex ?? 0
      if (hashes.size === 1) return { name, ok: true, detail: `${peers.length} peers at applied index ${index}: ${views[0]?.hash.slice(0, 16) ?? ''}… (after ${rounds} rounds)` }
      mismatch = `at applied index ${index}: ` + views.map((v, i) => `${peers[i]?.name ?? ''} ${v?.hash.slice(0, 12) ?? ''} (${Object.entries(v?.parts ?? {}).map(([k, h]) => `${k} ${h.slice(0, 8)}`).join(', ')})`).join('; ')
      return { name, ok: false, detail: mismatch }
    }
    last = views.map((v, i) => `${peers[i]?.name ?? ''} ${v?.appliedIndex ?? 'no answer'}`).join(', ')
    // each peer computes the hash at most once a second per client (429 beyond)
    await sleep(1000)
  }
  return { name, ok: false, detail: `the peers never stood at one applied index together within ${boundMs / 1000} s (last: ${last})` }
}

/** After healing the Service answers 20 requests in a row, within `boundMs`. */
export async function checkServiceAnswers (clusterIP: string, boundMs: number): Promise<CheckResult> {
  const deadline = Date.now() + boundMs
  let streak = 0
  let last = ''
  const backends = new Set<string>()
  while (Date.now() < deadline) {
    try {
      backends.add(await httpGet(clusterIP, 80, 3000))
      if (++streak >= 20) return { name: 'the Service answers after healing', ok: true, detail: `20 requests in a row to ${clusterIP}:80 answered, by ${backends.size} backends` }
    } catch (err) {
      streak = 0
      last = (err as Error).message
      await sleep(250)
    }
  }
  return { name: 'the Service answers after healing', ok: false, detail: `no 20 answers in a row to ${clusterIP}:80 within ${boundMs / 1000} s (last error: ${last})` }
}
