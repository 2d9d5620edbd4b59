// Real shoald processes for integration tests: each peer on its own loopback
// address, with its own data directory, its log kept for assertions.
import { spawn } from 'node:child_process'
import type { ChildProcess } from 'node:child_process'
import { existsSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import type { MemberList, MemberView, RaftStatusView } from '../../protocol/api.ts'
import type { KObject } from '../../protocol/k8s.ts'

export const ROOT = resolve(import.meta.dirname, '..', '..')
export const SHOALD = join(ROOT, 'daemon', 'bin.ts')
export const SHOAL = join(ROOT, 'cli', 'bin.ts')

export const P2P_PORT = 7946
export const API_PORT = 7070

export function tempDir (prefix: string): string {
  return mkdtempSync(join(tmpdir(), `shoal-${prefix}-`))
}

export interface PeerOptions {
  ip: string
  name: string
  dataDir: string
  join?: string[]
  clusterKey?: string
  args?: string[]
  /** wait for the 'started' log line (default true) */
  waitStarted?: boolean
  /** run inside this network namespace (made by the test: test/helpers/netns.ts) */
  netns?: string
}

export class Peer {
  readonly proc: ChildProcess
  readonly opts: PeerOptions
  readonly lines: string[] = []
  readonly exited: Promise<{ code: number | null, signal: NodeJS.Signals | null }>
  stderr = ''

  constructor (opts: PeerOptions) {
    this.opts = opts
    // SHOAL_PEER_NODE_FLAGS: Node's own flags for every peer, for profiling a run by hand
    // (for example `--cpu-prof --cpu-prof-dir=/tmp/prof`); never set by the tests.
    const nodeFlags = (process.env.SHOAL_PEER_NODE_FLAGS ?? '').split(' ').filter(f => f !== '')
    const args = [...nodeFlags, SHOALD,
      '--data-dir', opts.dataDir,
      '--name', opts.name,
      '--listen', `/ip4/${opts.ip}/tcp/${P2P_PORT}`,
      '--api', `${opts.ip}:${API_PORT}`,
      '--client-config', join(opts.dataDir, '..', `${opts.name}-client.json`),
      ...(opts.join ?? []).flatMap(j => ['--join', j]),
      ...(opts.clusterKey !== undefined ? ['--cluster-key', opts.clusterKey] : []),
      // The process runtime unless a test asks for another (CI has a Docker engine, which auto would pick).
      ...((opts.args ?? []).includes('--runtime') ? [] : ['--runtime', 'process']),
      ...(opts.args ?? [])]
    // `ip netns exec` execs the command, so the pid (and its signals) is shoald's own.
    this.proc = opts.netns === undefined
      ? spawn(process.execPath, args, { stdio: ['ignore', 'ignore', 'pipe'] })
      : spawn('ip', ['netns', 'exec', opts.netns, process.execPath, ...args], { stdio: ['ignore', 'ignore', 'pipe'] })
    let partial = ''
    this.proc.stderr!.setEncoding('utf8').on('data', (chunk: string) => {
      this.stderr += chunk
      partial += chunk
      const parts = partial.split('\n')
      partial = parts.pop() ?? ''
      this.lines.push(...parts)
    })
    this.exited = new Promise(resolve => this.proc.once('exit', (code, signal) => { resolve({ code, signal }) }))
  }

  get name (): string { return this.opts.name }
  get addr (): string { return `/ip4/${this.opts.ip}/tcp/${P2P_PORT}` }
  get apiUrl (): string { return `http://${this.opts.ip}:${API_PORT}` }
  get running (): boolean { return this.proc.exitCode === null && this.proc.signalCode === null }

  token (): string { return readFileSync(join(this.opts.dataDir, 'admin.token'), 'utf8').trim() }

  /** Parsed JSON log events. */
  events (): Array<Record<string, unknown>> {
    const out: Array<Record<string, unknown>> = []
    for (const line of this.lines) {
      try { out.push(JSON.parse(line) as Record<string, unknown>) } catch { /* not a log line */ }
    }
    return out
  }

  async members (token = this.token()): Promise<MemberView[]> {
    const res = await fetch(`${this.apiUrl}/shoal/v1/members`, { headers: { authorization: `Bearer ${token}` }, signal: AbortSignal.timeout(3000) })
    if (!res.ok) throw new Error(`${this.name}: members answered ${res.status}`)
    return ((await res.json()) as MemberList).items
  }

  /** member name → state, as this peer sees it */
  async states (): Promise<Record<string, string>> {
    return Object.fromEntries((await this.members()).map(m => [m.name, m.state]))
  }

  /** An API call with the admin token; the body is sent as is. */
  async call (method: string, path: string, body?: string | Uint8Array, timeoutMs = 10_000): Promise<{ status: number, json: unknown, headers: Headers }> {
    const res = await fetch(`${this.apiUrl}${path}`, {
      method,
      headers: { authorization: `Bearer ${this.token()}` },
      ...(body !== undefined ? { body } : {}),
      signal: AbortSignal.timeout(timeoutMs)
    })
    const text = await res.text()
    let json: unknown
    try { json = JSON.parse(text) } catch { json = text }
    return { status: res.status, json, headers: res.headers }
  }

  async raft (): Promise<RaftStatusView> {
    const r = await this.call('GET', '/shoal/v1/raft', undefined, 3000)
    if (r.status !== 200) throw new Error(`${this.name}: /shoal/v1/raft answered ${r.status}`)
    return r.json as RaftStatusView
  }

  async kill (signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    if (this.running) this.proc.kill(signal)
    await this.exited
  }
}

export async function waitFor<T> (what: string, check: () => Promise<T | undefined | false> | T | undefined | false, timeoutMs = 30_000, pollMs = 100): Promise<T> {
  const deadline = Date.now() + timeoutMs
  let lastError = ''
  for (;;) {
    try {
      const value = await check()
      if (value !== undefined && value !== false) return value
    } catch (err) {
      lastError = (err as Error).message
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${lastError !== '' ? ` (last error: ${lastError})` : ''}`)
    await new Promise(resolve => setTimeout(resolve, pollMs))
  }
}

export async function startPeer (opts: PeerOptions): Promise<Peer> {
  const peer = new Peer(opts)
  if (opts.waitStarted !== false) await waitStarted(peer)
  return peer
}

/** Waits for a peer's 'started' log line; fails at once if it exits first. */
export async function waitStarted (peer: Peer, boundMs = 30_000): Promise<void> {
  const deadline = Date.now() + boundMs
  while (!peer.events().some(e => e.event === 'started')) {
    if (!peer.running) throw new Error(`${peer.name} exited: ${peer.stderr.slice(-500)}`)
    if (Date.now() > deadline) throw new Error(`${peer.name} did not log 'started' within ${boundMs / 1000} s`)
    await new Promise(resolve => setTimeout(resolve, 50))
  }
}

/** Waits until a joining peer has the API tokens, which the cluster hands over once it has admitted it. */
export async function waitAdmitted (peer: Peer, boundMs = 30_000): Promise<void> {
  await waitFor(`${peer.name} to be admitted and receive the API token`, () => {
    if (!peer.running) throw new Error(`${peer.name} exited: ${peer.stderr.slice(-500)}`)
    return existsSync(join(peer.opts.dataDir, 'admin.token')) && existsSync(join(peer.opts.dataDir, 'viewer.token'))
  }, boundMs, 50)
}

/** Starts a founding peer and joiners, each on its own loopback address, named p1, p2, … unless `names` are given. */
export async function startCluster (prefix: string, ips: string[], args: string[] = [], names = ips.map((_, i) => `p${i + 1}`)): Promise<{ dir: string, peers: Peer[], key: string }> {
  const dir = tempDir(prefix)
  const [firstIp, ...rest] = ips
  const first = await startPeer({ ip: firstIp!, name: names[0]!, dataDir: join(dir, names[0]!), args })
  const key = join(dir, names[0]!, 'cluster.key')
  const others = await Promise.all(rest.map(async (ip, i) => await startPeer({
    ip, name: names[i + 1]!, dataDir: join(dir, names[i + 1]!), join: [first.addr], clusterKey: key, args
  })))
  // A joiner gets the API tokens once the cluster has admitted it to its log, a moment after it starts.
  await Promise.all(others.map(async p => { await waitAdmitted(p) }))
  return { dir, peers: [first, ...others], key }
}

export async function stopAll (peers: Peer[], dir?: string): Promise<void> {
  // A profiled peer writes its profile on a clean stop (SIGTERM; shoald's own hard stop ends it after 10 s).
  await Promise.all(peers.map(async p => { await p.kill(process.env.SHOAL_PEER_NODE_FLAGS !== undefined ? 'SIGTERM' : 'SIGKILL') }))
  if (dir !== undefined) {
    killPodProcesses(dir)
    rmSync(dir, { recursive: true, force: true })
  }
}

/**
 * SIGKILLs the pods' processes that peers under `dir` left running (the
 * process runtime runs each container in its own process group, in a
 * working directory under its peer's data directory, and a SIGKILLed
 * shoald leaves them, as a real kubelet would). Returns how many it found.
 */
export function killPodProcesses (dir: string): number {
  let found = 0
  for (const pid of readdirSync('/proc').filter(x => /^\d+$/.test(x))) {
    let cwd: string
    try { cwd = readlinkSync(`/proc/${pid}/cwd`) } catch { continue }
    if (!cwd.startsWith(dir)) continue
    found++
    for (const target of [-Number(pid), Number(pid)]) {
      try { process.kill(target, 'SIGKILL') } catch { /* gone, or not a group leader */ }
    }
  }
  return found
}

/** Starts a stopped peer again with the same data directory and options (joining `join` if given). */
export async function restartPeer (peer: Peer, join?: string[]): Promise<Peer> {
  if (peer.running) throw new Error(`${peer.name} is still running`)
  return await startPeer({ ...peer.opts, ...(join !== undefined ? { join } : {}) })
}

/** The peer that leads, once every running peer in `peers` agrees on it and it says so itself. */
export async function waitForLeader (peers: Peer[], timeoutMs = 30_000): Promise<Peer> {
  return await waitFor('a leader all running peers agree on', async () => {
    const running = peers.filter(p => p.running)
    const views = await Promise.all(running.map(async p => await p.raft()))
    const leaderId = views[0]?.leader?.id
    if (leaderId === undefined || !views.every(v => v.leader?.id === leaderId)) return undefined
    const i = views.findIndex(v => v.id === leaderId && v.role === 'leader')
    return i >= 0 ? running[i] : undefined
  }, timeoutMs)
}

/** One API request to a peer with its admin token; the body parsed as JSON where it is JSON. */
export async function api (peer: Peer, method: string, path: string, body?: unknown, contentType = 'application/json'): Promise<{ status: number, body: any }> {
  const res = await fetch(`${peer.apiUrl}${path}`, {
    method,
    headers: { authorization: `Bearer ${peer.token()}`, 'content-type': contentType },
    ...(body !== undefined ? { body: typeof body === 'string' ? body : JSON.stringify(body) } : {}),
    signal: AbortSignal.timeout(10_000)
  })
  const text = await res.text()
  let parsed: unknown = text
  try { parsed = JSON.parse(text) } catch { /* not JSON */ }
  return { status: res.status, body: parsed }
}

/** A Deployment of `replicas` pods labelled app=<name>, with one container and a 1 s grace period. */
export function deploymentOf (name: string, replicas: number, container: Record<string, unknown>): KObject {
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name, namespace: 'default' },
    spec: {
      replicas,
      selector: { matchLabels: { app: name } },
      template: { metadata: { labels: { app: name } }, spec: { terminationGracePeriodSeconds: 1, containers: [container] } }
    }
  }
}

/** A process-runtime container that answers HTTP on its pod's address, port 8080, with its pod's name; Ready once it answers. */
export function echoContainer (name = 'echo'): Record<string, unknown> {
  return {
    name,
    image: 'node',
    command: [process.execPath, '-e', "require('http').createServer((q, s) => s.end(process.env.POD_NAME)).listen(8080, process.env.POD_IP)"],
    ports: [{ name: 'http', containerPort: 8080 }],
    readinessProbe: { httpGet: { path: '/', port: 8080 }, periodSeconds: 1 }
  }
}

/** Waits until `peer` lists `n` Nodes whose Ready condition is True. */
export async function waitForReadyNodes (peer: Peer, n: number, timeoutMs = 60_000): Promise<KObject[]> {
  return await waitFor(`${n} Ready nodes`, async () => {
    const items = ((await api(peer, 'GET', '/api/v1/nodes')).body.items ?? []) as KObject[]
    const ready = items.filter(x => (((x.status as { conditions?: Array<{ type: string, status: string }> } | undefined)?.conditions) ?? []).some(c => c.type === 'Ready' && c.status === 'True'))
    return ready.length === n && items
  }, timeoutMs)
}
