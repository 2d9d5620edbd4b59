// The replicated log with real shoald processes: five peers on
// 127.0.0.2-6, concurrent KV clients, and repeated SIGKILLs of the leader
// and of random peers (never more than a minority down). Afterwards every
// acknowledged write is there, the history is linearizable, and the logs on
// disk agree wherever they overlap.
import test from 'ava'
import { join } from 'node:path'
import { seededRng } from '../../daemon/clock/clock.ts'
import { LevelStorage } from '../../daemon/raft/level-storage.ts'
import type { Entry } from '../../protocol/raft.ts'
import type { KvPairView } from '../../protocol/kv.ts'
import { restartPeer, startCluster, stopAll, waitFor, waitForLeader } from '../helpers/cluster.ts'
import type { Peer } from '../helpers/cluster.ts'
import { checkLinearizable, kvModel } from '../sim/linearizability.ts'
import type { KvInput, KvOutput } from '../sim/linearizability.ts'
import type { Operation } from '../sim/linearizability.ts'

const IPS = ['127.0.0.2', '127.0.0.3', '127.0.0.4', '127.0.0.5', '127.0.0.6']
const CHAOS_MS = Number(process.env.SHOAL_CHAOS_MS ?? 25_000)
const CLIENTS = 4
const SHARED_KEYS = ['k0', 'k1', 'k2']

type Outcome = { kind: 'ok', status: number, json: unknown } | { kind: 'none' } | { kind: 'unknown' }

/** One request; `none` means it certainly had no effect (refused connection, 503), `unknown` that it may have. */
async function call (peer: Peer, method: string, path: string, body?: string): Promise<Outcome> {
  try {
    const r = await peer.call(method, path, body, 8000)
    if (r.status === 503) return { kind: 'none' }
    if (r.status === 200 || r.status === 404 || r.status === 409) return { kind: 'ok', status: r.status, json: r.json }
    return { kind: 'unknown' }
  } catch (err) {
    const code = ((err as Error).cause as NodeJS.ErrnoException | undefined)?.code
    return code === 'ECONNREFUSED' ? { kind: 'none' } : { kind: 'unknown' }
  }
}

test('five peers, the leader and others SIGKILLed under load: no acknowledged write lost, linearizable, logs agree', async t => {
  t.timeout(240_000)
  const { dir, peers } = await startCluster('raft', IPS, ['--snapshot-entries', '400'])
  const rng = seededRng(20261129)
  const started = performance.now()
  const now = (): number => performance.now() - started
  const history: Array<Operation<KvInput, KvOutput>> = []
  const acked = new Map<string, string>()
  const stats = { ok: 0, none: 0, unknown: 0, kills: 0, leaderKills: 0 }
  try {
    const leader = await waitForLeader(peers, 60_000)
    await waitFor('five voters', async () => (await leader.raft()).voters.length === 5 || undefined, 60_000)
    t.log(`5 voters after ${Math.round(now())} ms; leader ${leader.name}`)

    const deadline = now() + CHAOS_MS
    const anyRunning = (): Peer => {
      const up = peers.filter(p => p.running)
      return up[Math.floor(rng.next() * up.length)] as Peer
    }
    const client = async (c: number): Promise<void> => {
      for (let n = 0; now() < deadline; n++) {
        const peer = anyRunning()
        const key = SHARED_KEYS[Math.floor(rng.next() * SHARED_KEYS.length)] as string
        const value = `c${c}-${n}`
        const roll = rng.next()
        const call0 = now()
        if (roll < 0.35) {
          const r = await call(peer, 'PUT', `/shoal/v1/kv/${key}`, value)
          record(c, { op: 'put', key, value }, r, call0, r.kind === 'ok' ? { ok: true } : undefined)
        } else if (roll < 0.55) {
          // CAS on what a local read saw: values are unique, so "modifyIndex is N" is "the value is V".
          const seen = await call(peer, 'GET', `/shoal/v1/kv/${key}`)
          if (seen.kind !== 'ok') continue
          const expected = seen.status === 404 ? null : (seen.json as KvPairView).value
          const index = seen.status === 404 ? 0 : (seen.json as KvPairView).modifyIndex
          const at = now()
          const r = await call(peer, 'PUT', `/shoal/v1/kv/${key}?cas=${index}`, value)
          record(c, { op: 'cas', key, expected, value }, r, at, r.kind === 'ok' ? { ok: r.status === 200 } : undefined)
        } else if (roll < 0.85) {
          const r = await call(peer, 'GET', `/shoal/v1/kv/${key}?consistent`)
          if (r.kind === 'ok') record(c, { op: 'get', key }, r, call0, { value: r.status === 404 ? null : (r.json as KvPairView).value })
          else if (r.kind === 'unknown') stats.unknown++ // a read with no answer constrains nothing
        } else {
          const unique = `u-${value}`
          const r = await call(peer, 'PUT', `/shoal/v1/kv/${unique}`, value)
          if (r.kind === 'ok' && r.status === 200) acked.set(unique, value)
        }
      }
    }
    const record = (c: number, input: KvInput, r: Outcome, callAt: number, output: KvOutput | undefined): void => {
      if (r.kind === 'none') { stats.none++; return }
      if (r.kind === 'unknown' || output === undefined) {
        stats.unknown++
        history.push({ client: c, input, call: callAt, output: undefined, return: Infinity })
        return
      }
      stats.ok++
      history.push({ client: c, input, call: callAt, output, return: now() })
    }

    const chaos = async (): Promise<void> => {
      let round = 0
      while (now() < deadline - 2000) {
        await new Promise(resolve => setTimeout(resolve, 1500 + rng.next() * 1500))
        const down = peers.filter(p => !p.running)
        if (down.length >= 2) {
          const back = down[0] as Peer
          const i = peers.indexOf(back)
          peers[i] = await restartPeer(back, peers.filter(p => p !== back).map(p => p.addr))
          continue
        }
        let victim: Peer | undefined
        if (round++ % 2 === 0) {
          const views = await Promise.all(peers.filter(p => p.running).map(async p => await p.raft().catch(() => undefined)))
          const lead = views.find(v => v?.role === 'leader')
          victim = peers.find(p => p.running && lead !== undefined && p.name === lead.name)
          if (victim !== undefined) stats.leaderKills++
        }
        victim ??= anyRunning()
        await victim.kill('SIGKILL')
        stats.kills++
      }
    }
    await Promise.all([chaos(), ...Array.from({ length: CLIENTS }, async (_, c) => { await client(c) })])

    // Heal: everyone back, one leader, every peer applied the same index.
    for (let i = 0; i < peers.length; i++) {
      const p = peers[i] as Peer
      if (!p.running) peers[i] = await restartPeer(p, peers.filter(q => q !== p).map(q => q.addr))
    }
    const finalLeader = await waitForLeader(peers, 60_000)
    const marker = await finalLeader.call('PUT', '/shoal/v1/kv/final', 'x')
    t.is(marker.status, 200, 'a write after healing')
    const target = (marker.json as { index: number }).index
    await waitFor('every peer to apply the final write', async () => {
      const views = await Promise.all(peers.map(async p => await p.raft()))
      return views.every(v => v.appliedIndex >= target) || undefined
    }, 60_000)
    t.log(`${stats.kills} kills (${stats.leaderKills} of the leader); ${stats.ok} ops answered, ${stats.unknown} unknown, ${stats.none} refused; ${acked.size} unique writes acknowledged`)

    // Every acknowledged write is there, on every peer.
    for (const p of peers) {
      const list = await p.call('GET', '/shoal/v1/kv/?prefix=u-')
      const items = new Map((list.json as { items: KvPairView[] }).items.map(i => [i.key, i.value]))
      const missing = [...acked].filter(([k, v]) => items.get(k) !== v).map(([k]) => k)
      t.deepEqual(missing, [], `${p.name} lost acknowledged writes`)
    }
    t.true(stats.ok > 50, 'the clients got answers during the chaos')
    t.true(stats.kills >= 3, 'the chaos killed peers')

    const result = checkLinearizable(kvModel, history, { timeoutMs: 60_000 })
    t.true(result.ok, `the history is not linearizable: ${result.explanation ?? ''}`)

    // The logs on disk agree at every index two peers both hold.
    await Promise.all(peers.map(async p => { await p.kill('SIGKILL') }))
    const logs: Array<Map<number, Entry>> = []
    for (const p of peers) {
      const storage = await LevelStorage.open(join(p.opts.dataDir, 'raft'))
      const m = new Map<number, Entry>()
      const commit = storage.hardState().commit
      for (let i = storage.firstIndex(); i <= commit; i++) m.set(i, storage.entries(i, i + 1)[0] as Entry)
      logs.push(m)
      await storage.close()
    }
    let compared = 0
    for (let a = 0; a < logs.length; a++) {
      for (let b = a + 1; b < logs.length; b++) {
        for (const [i, e] of logs[a] as Map<number, Entry>) {
          const f = (logs[b] as Map<number, Entry>).get(i)
          if (f === undefined) continue
          compared++
          if (f.term !== e.term || Buffer.compare(f.data, e.data) !== 0) t.fail(`${peers[a]?.name} and ${peers[b]?.name} disagree at committed index ${i}`)
        }
      }
    }
    t.true(compared > 100, 'the logs overlapped enough to compare')
  } finally {
    await stopAll(peers, dir)
  }
})
