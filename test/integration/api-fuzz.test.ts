// The API fuzzer (issue #14), on three real shoald peers (127.0.141.2-4):
// for a bounded time (SHOAL_FUZZ_SECONDS, default 60) workers send requests
// that fast-check generates (test/helpers/http-fuzz.ts: realistic and
// mutated manifests, patches of every type, garbage, deep and big bodies,
// YAML aliases; Kubernetes and Shoal paths with bad percent-encoding, huge
// names and unicode; query strings; content types; the admin token, the
// viewer token, none and a wrong one), spread over the three peers. Every
// answer must be a well-formed Status unless it succeeded, never a 500, a
// 503 only with Retry-After, and a 4xx where the input was known bad. Then:
// every daemon is still up, ready, within the memory bound, logged no
// internal error, still commits writes, and the three state hashes agree
// at one applied index. SHOAL_FUZZ_SEED=S replays a run's inputs. Before
// the fuzzer, the faults it found are tested one by one: a HEAD watch that
// held its connection, answers Node's HTTP parser gave without a Status,
// a server-side apply that was a 500, a 503 without Retry-After.
import test from 'ava'
import fc from 'fast-check'
import { readFileSync } from 'node:fs'
import { Agent } from 'node:http'
import { connect } from 'node:net'
import { join } from 'node:path'
import { api, startCluster, stopAll, waitFor, waitForLeader } from '../helpers/cluster.ts'
import type { Peer } from '../helpers/cluster.ts'
import { describe as describeRequest, problemWith, requestArb, send } from '../helpers/http-fuzz.ts'
import type { FuzzRequest, Target } from '../helpers/http-fuzz.ts'

const IPS = ['127.0.141.2', '127.0.141.3', '127.0.141.4']
const NAMES = ['fz1', 'fz2', 'fz3']
const SECONDS = Number(process.env.SHOAL_FUZZ_SECONDS ?? 60)
const SEED = process.env.SHOAL_FUZZ_SEED === undefined ? Math.floor(Math.random() * 2 ** 31) : Number(process.env.SHOAL_FUZZ_SEED)
/** Requests in flight at once, over the three peers. */
const WORKERS = 6
/** Any answer slower than this is a hang. */
const ANSWER_TIMEOUT_MS = 20_000
/** The bound on each daemon's peak resident memory (VmHWM) over the whole run. */
const RSS_BOUND_MIB = 600

let cluster: { dir: string, peers: Peer[] } | undefined
test.after.always(async () => { if (cluster !== undefined) await stopAll(cluster.peers, cluster.dir) })

function memory (peer: Peer): { rssMiB: number, peakMiB: number } {
  const status = readFileSync(`/proc/${peer.proc.pid ?? 0}/status`, 'utf8')
  const kib = (field: string): number => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN)
  return { rssMiB: Math.round(kib('VmRSS') / 1024), peakMiB: Math.round(kib('VmHWM') / 1024) }
}

interface HashView { appliedIndex: number, hash: string, parts: Record<string, string> }

/** The three peers' state hashes at one applied index: after a write through the leader, once all have applied it and none moves on. */
async function hashesAtOneIndex (peers: Peer[]): Promise<HashView[]> {
  return await waitFor('the three peers to answer their state hashes at one applied index', async () => {
    const views = await Promise.all(peers.map(async p => {
      const r = await p.call('GET', '/shoal/v1/debug/state-hash', undefined, 5000)
      if (r.status === 429) return undefined
      if (r.status !== 200) throw new Error(`${p.name}: state-hash answered ${r.status} ${JSON.stringify(r.json)}`)
      return r.json as HashView
    }))
    if (views.some(v => v === undefined)) return undefined
    const all = views as HashView[]
    return all.every(v => v.appliedIndex === all[0]?.appliedIndex) ? all : undefined
  }, 60_000, 1100)
}

/** The cluster, started once: the regression tests below run first, then the fuzzer. */
async function theCluster (): Promise<Peer[]> {
  if (cluster !== undefined) return cluster.peers
  cluster = await startCluster('api-fuzz', IPS, ['--dns-port', '0', '--snapshot-entries', '2000'], NAMES)
  const { peers } = cluster
  await waitForLeader(peers)
  // No pod may run: every node is cordoned and tainted, and the fuzzer's pods name nodes that are not members.
  await waitFor('the three Nodes', async () => ((await api(peers[0]!, 'GET', '/api/v1/nodes')).body.items ?? []).length === 3)
  for (const name of NAMES) {
    const r = await api(peers[0]!, 'PATCH', `/api/v1/nodes/${name}`, { spec: { unschedulable: true, taints: [{ key: 'shoal.test/fuzz', effect: 'NoExecute' }] } }, 'application/merge-patch+json')
    if (r.status !== 200) throw new Error(`cordoning ${name}: ${r.status} ${JSON.stringify(r.body)}`)
  }
  const team = await api(peers[0]!, 'POST', '/api/v1/namespaces', { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'team' } })
  if (team.status !== 201) throw new Error(`creating namespace team: ${team.status}`)
  return peers
}

/** Requests written byte for byte on one connection; every answer read until the server closes it. */
async function rawExchange (peer: Peer, bytes: string, timeoutMs = 5000): Promise<string> {
  return await new Promise<string>((resolve, reject) => {
    const socket = connect({ host: peer.opts.ip, port: Number(new URL(peer.apiUrl).port) })
    let got = ''
    const timer = setTimeout(() => { socket.destroy(); resolve(got) }, timeoutMs)
    socket.setEncoding('latin1')
    socket.on('connect', () => { socket.write(bytes) })
    socket.on('data', (c: string) => { got += c })
    socket.on('end', () => { clearTimeout(timer); resolve(got) })
    socket.on('error', err => { clearTimeout(timer); if (got !== '') resolve(got); else reject(err) })
  })
}

/** The Status in a raw answer, after its head. */
function statusIn (answer: string): { code?: number, kind?: string, message?: string } {
  const body = answer.slice(answer.indexOf('\r\n\r\n') + 4)
  try { return JSON.parse(body) as { code?: number, kind?: string, message?: string } } catch { return {} }
}

test.serial('a HEAD of a watch or a log follow answers its head and ends: the next request on the connection is answered', async t => {
  const [peer] = await theCluster()
  const token = peer!.token()
  // Found by the fuzzer: the watch went on behind a bodiless HEAD answer, and the connection's next request waited for it.
  for (const target of ['/api/v1/namespaces/default/configmaps?watch=1', '/api/v1/namespaces/default/pods/nope/log?follow=true']) {
    const answer = await rawExchange(peer!, `HEAD ${target} HTTP/1.1\r\nhost: x\r\nauthorization: Bearer ${token}\r\n\r\n` +
      `GET /healthz HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n`)
    const heads = answer.match(/^HTTP\/1\.1 \d{3}/gm) ?? []
    t.is(heads.length, 2, `two answers on the connection after HEAD ${target}: ${JSON.stringify(answer.slice(0, 300))}`)
    t.regex(answer, /\{"status":"ok"\}|"status": "ok"/, 'the second is /healthz\'s')
  }
})

test.serial('what Node\'s HTTP parser refuses (an unknown method, a bad request line, headers too large, an Expect it does not know) is answered with a Status', async t => {
  const [peer] = await theCluster()
  const cases: Array<[string, string, number]> = [
    ['an unknown method', 'FOO /api/v1/pods HTTP/1.1\r\nhost: x\r\n\r\n', 400],
    ['a space in the target', 'GET /api/v1/pods x HTTP/1.1\r\nhost: x\r\n\r\n', 400],
    ['a malformed header', 'GET /healthz HTTP/1.1\r\nhost x\r\n\r\n', 400],
    ['headers too large', `GET /healthz HTTP/1.1\r\nhost: x\r\nx-big: ${'a'.repeat(20_000)}\r\n\r\n`, 431],
    ['an unknown Expect', 'GET /healthz HTTP/1.1\r\nhost: x\r\nexpect: gzip\r\n\r\n', 417]
  ]
  for (const [what, bytes, code] of cases) {
    const answer = await rawExchange(peer!, bytes)
    t.true(answer.startsWith(`HTTP/1.1 ${code} `), `${what}: ${JSON.stringify(answer.slice(0, 120))}`)
    const st = statusIn(answer)
    t.like(st, { kind: 'Status', code }, `${what}: ${JSON.stringify(answer.slice(0, 300))}`)
    t.regex(st.message ?? '', /^[^\n]+$/, `${what}: one line`)
  }
  t.true(peer!.running)
})

test.serial('a server-side apply that cannot merge with the live object is a 4xx Status, not a 500', async t => {
  const [peer] = await theCluster()
  const path = '/api/v1/namespaces/default/configmaps/apply-target?fieldManager=fuzz'
  const manifest = (ownerReferences: unknown): string => JSON.stringify({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'apply-target', namespace: 'default', ...(ownerReferences === undefined ? {} : { ownerReferences }) }, data: { a: '1' } })
  t.is((await api(peer!, 'PATCH', path, manifest(undefined), 'application/apply-patch+yaml')).status, 201)
  // Found by the fuzzer: owner references merge by uid, and these are not objects.
  const r = await api(peer!, 'PATCH', path, manifest(['x', 7]), 'application/apply-patch+yaml')
  t.true(r.status >= 400 && r.status < 500, `${r.status} ${JSON.stringify(r.body)}`)
  t.like(r.body, { kind: 'Status', code: r.status })
  t.false(peer!.events().some(e => e.event === 'api.error'), 'no internal error logged')
})

test.serial('the log of a pod on a node out of reach is a 503 with Retry-After', async t => {
  const [peer] = await theCluster()
  const pod = { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'stranded' }, spec: { nodeName: 'no-such-node', containers: [{ name: 'main', image: 'busybox', command: ['true'] }] } }
  t.is((await api(peer!, 'POST', '/api/v1/namespaces/default/pods', pod)).status, 201)
  // Found by the fuzzer: the 503 came without Retry-After, which only a lasting refusal may.
  const res = await fetch(`${peer!.apiUrl}/api/v1/namespaces/default/pods/stranded/log`, { headers: { authorization: `Bearer ${peer!.token()}` }, signal: AbortSignal.timeout(10_000) })
  t.is(res.status, 503)
  t.truthy(res.headers.get('retry-after'))
  t.like(await res.json(), { kind: 'Status', code: 503, reason: 'ServiceUnavailable' })
})

test.serial('the API answers random, mutated and malicious requests with Statuses, stays up and keeps its replicas identical', async t => {
  t.timeout((SECONDS + 240) * 1000)
  const peers = await theCluster()

  const targets: Target[] = peers.map(p => ({
    host: p.opts.ip,
    port: Number(new URL(p.apiUrl).port),
    tokens: { admin: p.token(), viewer: readFileSync(join(p.opts.dataDir, 'viewer.token'), 'utf8').trim(), none: undefined, bad: 'not-the-token' }
  }))
  const agents = peers.map(() => new Agent({ keepAlive: true, maxSockets: WORKERS }))
  const before = peers.map(memory)

  const started = Date.now()
  const deadline = started + SECONDS * 1000
  const problems: string[] = []
  const problemKinds = new Map<string, number>()
  const codes = new Map<number, number>()
  const kinds = new Map<string, number>()
  let sent = 0
  let transportErrors = 0
  let batch = 0
  let queue: FuzzRequest[] = []
  const next = (): FuzzRequest => {
    if (queue.length === 0) queue = fc.sample(requestArb, { seed: SEED + batch++, numRuns: 200 })
    return queue.pop() as FuzzRequest
  }
  const worker = async (): Promise<void> => {
    while (Date.now() < deadline && problems.length < 50) {
      const req = next()
      sent++
      kinds.set(req.bodyKind === 'none' ? req.targetKind : req.bodyKind, (kinds.get(req.bodyKind === 'none' ? req.targetKind : req.bodyKind) ?? 0) + 1)
      try {
        const answer = await send(agents[req.peer] as Agent, targets[req.peer] as Target, req, ANSWER_TIMEOUT_MS)
        codes.set(answer.status, (codes.get(answer.status) ?? 0) + 1)
        const problem = problemWith(req, answer)
        if (problem !== undefined) {
          const kind = problem.replace(/:.*$/s, '').replace(/\d{3}/g, n => n)
          problemKinds.set(kind, (problemKinds.get(kind) ?? 0) + 1)
          problems.push(`${problem}\n    request: ${describeRequest(req)}\n    answer: ${JSON.stringify(answer.body.subarray(0, 300).toString('utf8'))}`)
        }
      } catch (err) {
        // A reset is a fair answer to some inputs (a body over the limit is cut off); no answer at all is not.
        transportErrors++
        if (/no answer within/.test((err as Error).message)) problems.push(`${(err as Error).message}\n    request: ${describeRequest(req)}`)
      }
    }
  }
  let peak = before.map(m => m.rssMiB)
  const sampler = setInterval(() => { peak = peers.map((p, i) => p.running ? Math.max(peak[i] ?? 0, memory(p).rssMiB) : peak[i] ?? 0) }, 1000)
  await Promise.all(Array.from({ length: WORKERS }, worker))
  clearInterval(sampler)
  for (const a of agents) a.destroy()
  const elapsed = (Date.now() - started) / 1000

  t.log(`seed ${SEED} (replay: SHOAL_FUZZ_SEED=${SEED}); ${sent} requests in ${elapsed.toFixed(0)} s (${(sent / elapsed).toFixed(0)}/s) over ${peers.length} peers; ${transportErrors} ended without an answer (reset)`)
  t.log(`answers: ${[...codes].sort((a, b) => a[0] - b[0]).map(([c, n]) => `${c}×${n}`).join(' ')}`)
  t.log(`inputs: ${[...kinds].sort((a, b) => b[1] - a[1]).slice(0, 30).map(([k, n]) => `${k}×${n}`).join(' ')}`)

  // The daemons are up, ready, and within the memory bound.
  for (const p of peers) t.true(p.running, `${p.name} exited: ${p.stderr.slice(-800)}`)
  const after = peers.map(memory)
  t.log(`memory (MiB): before ${before.map(m => m.rssMiB).join('/')}, sampled peak ${peak.join('/')}, VmHWM ${after.map(m => m.peakMiB).join('/')}, now ${after.map(m => m.rssMiB).join('/')}; bound ${RSS_BOUND_MIB}`)
  for (const [i, m] of after.entries()) t.true(m.peakMiB < RSS_BOUND_MIB, `${NAMES[i] ?? ''}'s peak RSS is ${m.peakMiB} MiB`)
  for (const p of peers) {
    const ready = await fetch(`${p.apiUrl}/readyz`, { signal: AbortSignal.timeout(10_000) })
    t.is(ready.status, 200, `${p.name} /readyz`)
    // A 500 is logged as api.error with its stack; a failed log as raft.failed.
    const bad = p.events().filter(e => e.event === 'api.error' || e.event === 'raft.failed' || (typeof e.level === 'number' && e.level >= 60))
    t.deepEqual(bad.slice(0, 5).map(e => `${String(e.event)}: ${String(e.msg)} ${String(e.path ?? '')} ${String(e.err ?? '').split('\n').slice(0, 4).join(' | ')}`), [], `${p.name} logged internal errors`)
  }
  t.deepEqual(problems.slice(0, 20), [], `seed ${SEED}: ${problems.length} bad answers: ${[...problemKinds].map(([k, n]) => `${n}× ${k}`).join('; ')}`)

  // The cluster still commits writes through every peer, and the replicas agree.
  for (const [i, p] of peers.entries()) {
    const r = await api(p, 'POST', '/api/v1/namespaces/default/configmaps', { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: `after-fuzz-${i}` }, data: { peer: p.name } })
    t.is(r.status, 201, `a write through ${p.name}: ${JSON.stringify(r.body)}`)
  }
  await waitFor('every peer to read every write', async () => {
    for (const p of peers) for (const i of [0, 1, 2]) if ((await api(p, 'GET', `/api/v1/namespaces/default/configmaps/after-fuzz-${i}`)).status !== 200) return false
    return true
  })
  const hashes = await hashesAtOneIndex(peers)
  t.log(`state hashes at applied index ${hashes[0]?.appliedIndex ?? '?'}: ${hashes.map(h => h.hash.slice(0, 16)).join(' ')}`)
  t.true(hashes.every(h => h.hash === hashes[0]?.hash), `the replicas diverged: ${JSON.stringify(hashes)}`)
})
