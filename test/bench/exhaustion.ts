// The resource-exhaustion attacks of issue #14, against one real shoald on
// 127.0.44.2, measured as the daemon's peak RSS (VmHWM in /proc): figures,
// not assertions (the tests in test/unit/api-exhaustion.test.ts and friends
// assert the behaviour). Each run starts a fresh peer, waits until it is
// ready, notes its peak RSS so far, runs one bounded attack and notes the
// peak again.
//   watch: 20 watches of ConfigMaps that never read, while 200 ConfigMaps of
//          100 KB are created (20 MB of events per watch)
//   ui:    4,000 requests for unknown 8 KB paths under /ui/
//   exec:  one exec that writes 200 MB to stdout (process runtime)
// Usage: node test/bench/exhaustion.ts [--attack watch|ui|exec] [--runs 3]
//   [--watches 20] (0: the same writes with no watch, for comparison)
// Prints one line per run and the median and worst of the runs.
import { randomBytes } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { connect } from 'node:net'
import type { Socket } from 'node:net'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { Peer, stopAll, tempDir, waitFor, waitStarted } from '../helpers/cluster.ts'
import { max, median, sleep } from './stats.ts'

const IP = '127.0.44.2'
const ATTACK_BOUND_MS = 180_000

const { values } = parseArgs({
  options: {
    attack: { type: 'string', default: 'watch' },
    runs: { type: 'string', default: '3' },
    watches: { type: 'string', default: '20' }
  }
})
const attack = values.attack
const runs = Number(values.runs)
if (attack !== 'watch' && attack !== 'ui' && attack !== 'exec') {
  process.stderr.write(`--attack: "${attack}" is not watch, ui or exec\n`)
  process.exit(2)
}

/** The peak resident set of a process so far, in MiB (VmHWM). */
function peakMb (pid: number): number {
  const m = /^VmHWM:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))
  return Number(m?.[1] ?? NaN) / 1024
}

async function call (peer: Peer, method: string, path: string, body?: unknown): Promise<{ status: number, json: unknown }> {
  const res = await fetch(`${peer.apiUrl}${path}`, {
    method,
    headers: { authorization: `Bearer ${peer.token()}`, 'content-type': 'application/json' },
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
    signal: AbortSignal.timeout(60_000)
  })
  const text = await res.text()
  let json: unknown
  try { json = JSON.parse(text) } catch { json = text }
  return { status: res.status, json }
}

/** Opens a watch on a raw socket and never reads from it. */
async function unreadWatch (peer: Peer, path: string): Promise<Socket> {
  return await new Promise((resolve, reject) => {
    const socket = connect({ host: IP, port: 7070 }, () => {
      socket.write(`GET ${path} HTTP/1.1\r\nHost: ${IP}\r\nAuthorization: Bearer ${peer.token()}\r\n\r\n`)
      socket.pause()
      resolve(socket)
    })
    socket.once('error', reject)
  })
}

async function watchAttack (peer: Peer): Promise<string> {
  const sockets: Socket[] = []
  const watches = Number(values.watches)
  for (let i = 0; i < watches; i++) sockets.push(await unreadWatch(peer, '/api/v1/namespaces/default/configmaps?watch=1'))
  await sleep(500)
  const value = 'x'.repeat(100_000)
  let created = 0
  for (let i = 0; i < 200; i++) {
    const r = await call(peer, 'POST', '/api/v1/namespaces/default/configmaps', { metadata: { name: `cm-${i}` }, data: { v: value } })
    if (r.status === 201) created++
  }
  await sleep(1000)
  // Read what reached the sockets: a watch the daemon dropped ends (the client would list again).
  const ended = await Promise.all(sockets.map(async s => await new Promise<boolean>(resolve => {
    const timer = setTimeout(() => { resolve(false) }, 5000)
    s.on('data', () => {})
    s.once('close', () => { clearTimeout(timer); resolve(true) })
    s.resume()
  })))
  for (const s of sockets) s.destroy()
  return `${created} ConfigMaps created; ${ended.filter(e => e).length} of ${watches} watches ended by the daemon`
}

async function uiAttack (peer: Peer): Promise<string> {
  let notFound = 0
  let next = 0
  const worker = async (): Promise<void> => {
    while (next < 4000) {
      next++
      const res = await fetch(`${peer.apiUrl}/ui/${randomBytes(4096).toString('hex')}`, { signal: AbortSignal.timeout(10_000) })
      await res.arrayBuffer()
      if (res.status === 404) notFound++
    }
  }
  await Promise.all(Array.from({ length: 8 }, worker))
  return `${notFound} of 4000 answered 404`
}

async function execAttack (peer: Peer): Promise<string> {
  const pod = { metadata: { name: 'talker' }, spec: { containers: [{ name: 'c', image: 'none', command: ['sleep', '3600'] }] } }
  const created = await call(peer, 'POST', '/api/v1/namespaces/default/pods', pod)
  if (created.status !== 201) throw new Error(`creating the pod answered ${created.status}: ${JSON.stringify(created.json)}`)
  await waitFor('the pod to run', async () => {
    const r = await call(peer, 'GET', '/api/v1/namespaces/default/pods/talker')
    return (r.json as { status?: { phase?: string } }).status?.phase === 'Running'
  }, 60_000)
  const cmd = ['sh', '-c', 'head -c 200000000 /dev/zero | tr "\\0" a'].map(c => `command=${encodeURIComponent(c)}`).join('&')
  const r = await call(peer, 'POST', `/api/v1/namespaces/default/pods/talker/exec?${cmd}`)
  const body = r.json as { stdout?: string, exitCode?: number }
  return `exec answered ${r.status}, exit ${String(body.exitCode)}, ${body.stdout?.length ?? 0} characters of stdout`
}

async function oneRun (run: number): Promise<{ before: number, after: number }> {
  const dir = tempDir('exhaustion')
  const peer = new Peer({ ip: IP, name: 'victim', dataDir: join(dir, 'victim'), args: ['--dns-port', '0'] })
  try {
    await waitStarted(peer, 60_000)
    await waitFor('the peer to be ready', async () => (await fetch(`${peer.apiUrl}/readyz`)).status === 200, 60_000)
    await waitFor('the default namespace', async () => (await call(peer, 'GET', '/api/v1/namespaces/default')).status === 200, 30_000)
    await sleep(1000)
    const pid = peer.proc.pid ?? 0
    const before = peakMb(pid)
    const bound = sleep(ATTACK_BOUND_MS).then(() => { throw new Error(`the attack took more than ${ATTACK_BOUND_MS / 1000} s`) })
    const what = await Promise.race([attack === 'watch' ? watchAttack(peer) : attack === 'ui' ? uiAttack(peer) : execAttack(peer), bound])
    const after = peakMb(pid)
    process.stderr.write(`run ${run}: peak RSS ${before.toFixed(0)} MiB before the attack, ${after.toFixed(0)} MiB after (${what}); ${peer.running ? 'the daemon is up' : 'the daemon DIED'}\n`)
    return { before, after }
  } finally {
    await stopAll([peer], dir)
  }
}

const afters: number[] = []
const befores: number[] = []
for (let i = 1; i <= runs; i++) {
  const r = await oneRun(i)
  befores.push(r.before)
  afters.push(r.after)
}
process.stdout.write(`${attack}: peak RSS after the attack, median ${median(afters).toFixed(0)} MiB, worst ${max(afters).toFixed(0)} MiB (before it: median ${median(befores).toFixed(0)} MiB) over ${runs} runs\n`)
process.exit(0)
