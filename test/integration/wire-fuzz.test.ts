// The wire fuzzer (issue #14), on three real shoald peers (127.0.142.2-4):
// a libp2p host holding the cluster key opens streams of every protocol
// Shoal serves (membership sync, Raft, Raft snapshots, forwarding, Raft
// status, pod access, pod logs, tunnel) and sends one malformed frame on
// each: garbage, truncated (in the message or in its framing), oversized,
// a bad length prefix, nested deeply, cyclic (msgpackr's structured clone),
// msgpackr extensions (RegExp, Error, Set, Date, BigInt, typed arrays), the
// wrong shape. It does so first as a stranger with the key only
// (127.0.142.5), then as an admitted peer (with p3's identity, p3 stopped),
// so that the frames get past the admission checks to the decoders; and it
// gossips garbage and forged leaves on the membership topic. Each stream
// must end without an answer (a reset, or a close); and nothing else may
// change: every peer stays up and in the cluster, keeps answering the API
// and committing writes, and logs no crash. SHOAL_WIRE_FRAMES=N sends N
// frames per protocol per phase (default 100); SHOAL_WIRE_SEED=S replays.
import test from 'ava'
import fc from 'fast-check'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { generateKeyPair, privateKeyFromProtobuf } from '@libp2p/crypto/keys'
import type { Stream } from '@libp2p/interface'
import { multiaddr } from '@multiformats/multiaddr'
import { Packr } from 'msgpackr'
import { pino } from 'pino'
import { encode } from '../../protocol/codec.ts'
import { MEMBERSHIP_TOPIC, SYNC_PROTOCOL } from '../../protocol/membership.ts'
import { TUNNEL_PROTOCOL } from '../../protocol/network.ts'
import { RAFT_FORWARD_PROTOCOL, RAFT_PROTOCOL, RAFT_SNAPSHOT_PROTOCOL } from '../../protocol/raft.ts'
import { POD_ACCESS_PROTOCOL, POD_LOGS_PROTOCOL } from '../../daemon/kubelet/access.ts'
import { createHost } from '../../daemon/p2p/host.ts'
import type { ShoalHost } from '../../daemon/p2p/host.ts'
import { parseClusterKey } from '../../daemon/p2p/keys.ts'
import { RAFT_STATUS_PROTOCOL } from '../../daemon/raft/status-service.ts'
import { api, startCluster, stopAll, waitFor, waitForLeader } from '../helpers/cluster.ts'
import type { Peer } from '../helpers/cluster.ts'
import { nastyString } from '../helpers/arbitraries.ts'

const IPS = ['127.0.142.2', '127.0.142.3', '127.0.142.4']
const STRANGER_IP = '127.0.142.5'
const FRAMES = Number(process.env.SHOAL_WIRE_FRAMES ?? 100)
const SEED = process.env.SHOAL_WIRE_SEED === undefined ? Math.floor(Math.random() * 2 ** 31) : Number(process.env.SHOAL_WIRE_SEED)
/** How long a stream may stay open after its malformed frame before it counts as left hanging. */
const REACTION_MS = 6000
const PARALLEL = 8

let cluster: { dir: string, peers: Peer[] } | undefined
const hosts: ShoalHost[] = []
test.after.always(async () => {
  for (const h of hosts) await Promise.resolve(h.stop()).catch(() => {})
  if (cluster !== undefined) await stopAll(cluster.peers, cluster.dir)
})

// ---- frames --------------------------------------------------------------------

/** What each protocol's first frame looks like when it is well formed (never sent as is). */
function templates (self: string, target: string): Record<string, Record<string, unknown>> {
  return {
    [SYNC_PROTOCOL]: { type: 'sync', members: [], wantToken: true },
    [RAFT_PROTOCOL]: { type: 'vote', from: self, to: target, term: 0, preVote: true, lastLogIndex: 0, lastLogTerm: 0 },
    [RAFT_SNAPSHOT_PROTOCOL]: { type: 'snapshot', from: self, to: target, term: 0, meta: { index: 0, term: 0, config: { voters: [], learners: [] } }, size: 8 },
    [RAFT_FORWARD_PROTOCOL]: { id: 1, req: { type: 'read-index' } },
    [RAFT_STATUS_PROTOCOL]: {},
    [POD_ACCESS_PROTOCOL]: { type: 'logs', namespace: 'default', name: 'nope' },
    [POD_LOGS_PROTOCOL]: { type: 'logs', namespace: 'default', name: 'nope', follow: true },
    [TUNNEL_PROTOCOL]: { ip: '127.0.0.1', port: 9 }
  }
}
const PROTOCOLS = Object.keys(templates('', ''))

/** The largest frame each protocol reads (its limit plus one is oversized). */
const LIMITS: Record<string, number> = {
  [SYNC_PROTOCOL]: 4 * 1024 * 1024,
  [RAFT_PROTOCOL]: 16 * 1024 * 1024,
  [RAFT_SNAPSHOT_PROTOCOL]: 16 * 1024 * 1024,
  [RAFT_FORWARD_PROTOCOL]: 16 * 1024 * 1024,
  [RAFT_STATUS_PROTOCOL]: 1024 * 1024,
  [POD_ACCESS_PROTOCOL]: 16 * 1024 * 1024,
  [POD_LOGS_PROTOCOL]: 16 * 1024 * 1024,
  [TUNNEL_PROTOCOL]: 1024
}

const varint = (n: number): number[] => {
  const out: number[] = []
  do { out.push((n % 128) | (n >= 128 ? 0x80 : 0)); n = Math.floor(n / 128) } while (n > 0)
  return out
}
/** One length-prefixed frame. */
const framed = (body: Uint8Array | number[]): Uint8Array => Uint8Array.from([...varint(body.length), ...body])

/** `message` encoded, with the msgpack of the string `QQQQ` inside replaced by `raw`. */
function spliced (message: unknown, raw: readonly number[]): Uint8Array {
  const bytes = encode(message)
  const mark = [0xa4, 0x51, 0x51, 0x51, 0x51]
  const at = bytes.findIndex((_, i) => mark.every((b, j) => bytes[i + j] === b))
  return Uint8Array.from([...bytes.subarray(0, at), ...raw, ...bytes.subarray(at + mark.length)])
}

const exotic = new Packr({ structuredClone: true, useRecords: false, moreTypes: true, useBigIntExtension: true } as ConstructorParameters<typeof Packr>[0])
const packExotic = (v: unknown): Uint8Array => exotic.pack(v)

interface Frame { category: string, bytes: Uint8Array }

const pick = <T>(xs: readonly T[]): fc.Arbitrary<T> => fc.constantFrom(...xs)

/**
 * Malformed first frames for `protocol`, by construction: none is one
 * plain msgpack map of the protocol's shape. (Garbage never starts with a
 * map's marker, so that it cannot happen to be one.)
 */
function frameArb (protocol: string, template: Record<string, unknown>): fc.Arbitrary<Frame> {
  const good = encode(template)
  const firstKey = Object.keys(template)[0] ?? 'type'
  const notAMap = (b: number): boolean => !((b >= 0x80 && b <= 0x8f) || b === 0xde || b === 0xdf)
  return fc.oneof(
    fc.uint8Array({ minLength: 1, maxLength: 300 }).filter(b => notAMap(b[0] as number)).map(b => ({ category: 'garbage', bytes: framed(b) })),
    fc.integer({ min: 0, max: Math.max(0, good.length - 1) }).map(n => ({ category: 'truncated', bytes: framed(good.subarray(0, n)) })),
    fc.integer({ min: 1, max: 64 }).map(n => ({ category: 'truncated-framing', bytes: Uint8Array.from([...varint(good.length + n), ...good]) })),
    fc.constant({ category: 'bad-prefix', bytes: Uint8Array.from([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]) }),
    fc.constant({ category: 'empty', bytes: framed([]) }),
    // Past the limit: a small limit is sent whole; a large one is announced, then a taste of it.
    fc.constant((LIMITS[protocol] ?? 0) <= 2 * 1024 * 1024
      ? { category: 'oversized', bytes: framed(new Uint8Array((LIMITS[protocol] ?? 0) + 1).fill(0xc0)) }
      : { category: 'oversized', bytes: Uint8Array.from([...varint((LIMITS[protocol] ?? 0) + 1), ...new Uint8Array(4096).fill(0xc0)]) }),
    fc.integer({ min: 129, max: 200_000 }).map(d => ({ category: 'deep', bytes: framed(spliced({ ...template, [firstKey]: 'QQQQ' }, [...new Uint8Array(d).fill(0x91), 0xc0])) })),
    fc.integer({ min: 129, max: 50_000 }).map(d => ({ category: 'deep-map', bytes: framed(spliced({ ...template, extra: 'QQQQ' }, [...Array.from({ length: d }, () => [0x81, 0xa1, 0x61]).flat(), 0xc0])) })),
    fc.constant(null).map(() => {
      const cycle: Record<string, unknown> = { ...template }
      cycle[firstKey] = cycle
      return { category: 'cyclic', bytes: framed(packExotic(cycle)) }
    }),
    pick([/x/g, new Error('boom'), new Set([1, 2]), new Date(0), 2n ** 70n, new Float64Array([1.5]), new Uint32Array([7])] as unknown[]).map(v => ({ category: `ext:${Object.prototype.toString.call(v).slice(8, -1)}`, bytes: framed(packExotic({ ...template, [firstKey]: v })) })),
    fc.oneof(
      fc.oneof(fc.integer(), nastyString, fc.array(fc.integer(), { maxLength: 3 }), fc.constant(null)).map(v => encode(v)),
      fc.tuple(fc.oneof(fc.integer(), fc.constant([]), fc.constant(null), fc.double()), pick([...Object.keys(template).filter(k => k !== 'term'), 'extra'])).map(([v, k]) => encode({ ...template, [k]: v, type: 'frob', ...('req' in template ? { req: 7 } : {}), ...('ip' in template ? { port: -1 } : {}) }))
    ).filter(b => protocol !== RAFT_STATUS_PROTOCOL || notAMap(b[0] as number)).map(b => ({ category: 'wrong-shape', bytes: framed(b) }))
  )
}

// ---- sending ---------------------------------------------------------------------

type Outcome = 'reset' | 'closed' | 'answered' | 'hung' | 'refused-open'

/** Opens a stream, sends `bytes`, closes the writing side, and watches how the stream ends. */
async function sendFrame (host: ShoalHost, target: string, protocol: string, bytes: Uint8Array): Promise<{ outcome: Outcome, detail: string }> {
  let stream: Stream
  try {
    stream = await host.dialProtocol(multiaddr(target), protocol, { signal: AbortSignal.timeout(5000) })
  } catch (err) {
    return { outcome: 'refused-open', detail: (err as Error).message }
  }
  return await new Promise(resolve => {
    let answered = 0
    let settled = false
    const settle = (r: { outcome: Outcome, detail: string }): void => {
      if (settled) return
      settled = true
      clearTimeout(timer)
      resolve(answered > 0 ? { outcome: 'answered', detail: `${answered} bytes came back` } : r)
    }
    // A stream may end before anyone listens (a refusal at once): its status says how.
    const ended = (): boolean => {
      if (stream.status === 'aborted' || stream.status === 'reset') settle({ outcome: 'reset', detail: stream.status })
      else if (stream.status === 'closed') settle({ outcome: 'closed', detail: '' })
      return settled
    }
    const timer = setTimeout(() => {
      if (ended()) return
      settle({ outcome: 'hung', detail: `open ${REACTION_MS} ms after the frame (status ${stream.status}, read ${stream.readStatus}, write ${stream.writeStatus}, remote write ${stream.remoteWriteStatus})` })
      stream.abort(new Error('the fuzzer gave up'))
    }, REACTION_MS)
    stream.addEventListener('message', e => { answered += (e as unknown as { data: { byteLength: number } }).data.byteLength })
    stream.addEventListener('close', e => {
      const err = (e as unknown as { error?: Error }).error
      settle(err !== undefined ? { outcome: 'reset', detail: err.name } : { outcome: 'closed', detail: '' })
    })
    if (ended()) return
    void (async () => {
      try {
        for (let at = 0; at < bytes.length; at += 64 * 1024) {
          if (!stream.send(bytes.subarray(at, at + 64 * 1024))) await stream.onDrain({ signal: AbortSignal.timeout(5000) })
        }
        await stream.close({ signal: AbortSignal.timeout(5000) })
      } catch { /* the remote reset first: the close event or the status says so */ }
      ended()
    })()
  })
}

// ---- health ------------------------------------------------------------------------

/** Every running peer is up, ready, sees the others alive, agrees on a leader, commits a write through itself, and logged no crash. */
async function healthy (t: { true: (v: boolean, m?: string) => void, is: (a: unknown, b: unknown, m?: string) => void, deepEqual: (a: unknown, b: unknown, m?: string) => void }, peers: Peer[], label: string): Promise<void> {
  const running = peers.filter(p => p.running)
  for (const p of peers) if (p.opts.name !== 'p3' || label === 'stranger') t.true(p.running, `${label}: ${p.name} is up (${p.stderr.slice(-300)})`)
  await waitForLeader(running, 20_000)
  for (const [i, p] of running.entries()) {
    t.is((await fetch(`${p.apiUrl}/readyz`, { signal: AbortSignal.timeout(5000) })).status, 200, `${label}: ${p.name} is ready`)
    const states = await p.states()
    for (const q of running) t.is(states[q.name], 'alive', `${label}: ${p.name} sees ${q.name} alive`)
    const r = await api(p, 'POST', '/api/v1/namespaces/default/configmaps', { apiVersion: 'v1', kind: 'ConfigMap', metadata: { generateName: `${label}-${i}-` }, data: { a: 'b' } })
    t.is(r.status, 201, `${label}: a write through ${p.name}: ${JSON.stringify(r.body)}`)
    const crashes = p.events().filter(e => e.event === 'raft.failed' || e.event === 'raft.transport.callback-failed' || e.event === 'api.error' || (typeof e.level === 'number' && e.level >= 60))
    t.deepEqual(crashes.map(e => `${String(e.event)}: ${String(e.msg)}`), [], `${label}: ${p.name} logged no crash`)
  }
}

async function fuzzAs (host: ShoalHost, label: string, targets: Array<{ peer: Peer, addr: string, id: string }>, selfId: string, seed: number): Promise<{ sent: number, outcomes: Map<string, number>, problems: string[] }> {
  const jobs: Array<{ protocol: string, target: { peer: Peer, addr: string, id: string }, frame: Frame }> = []
  for (const [pi, protocol] of PROTOCOLS.entries()) {
    for (const [ti, target] of targets.entries()) {
      const frames = fc.sample(frameArb(protocol, templates(selfId, target.id)[protocol] ?? {}), { seed: seed + pi * 97 + ti * 7, numRuns: Math.ceil(FRAMES / targets.length) })
      for (const frame of frames) jobs.push({ protocol, target, frame })
    }
  }
  const outcomes = new Map<string, number>()
  const problems: string[] = []
  let next = 0
  await Promise.all(Array.from({ length: PARALLEL }, async () => {
    while (next < jobs.length) {
      const job = jobs[next++]!
      const { outcome, detail } = await sendFrame(host, job.target.addr, job.protocol, job.frame.bytes)
      const key = `${job.protocol.replace('/shoal/', '').replace(/\/[0-9.]+$/, '')} ${outcome}`
      outcomes.set(key, (outcomes.get(key) ?? 0) + 1)
      if (outcome === 'answered' || outcome === 'hung' || outcome === 'refused-open') {
        problems.push(`${label} → ${job.target.peer.name} ${job.protocol} ${job.frame.category} (${job.frame.bytes.length} B: ${Buffer.from(job.frame.bytes.subarray(0, 24)).toString('hex')}…): ${outcome} ${detail}`)
      }
    }
  }))
  return { sent: jobs.length, outcomes, problems }
}

test('malformed, truncated, oversized, deep and cyclic frames on every protocol reset their stream and nothing else', async t => {
  t.timeout(240_000)
  const started = Date.now()
  cluster = await startCluster('wire-fuzz', IPS, ['--dns-port', '0', '--dead-voter-grace', '1h'])
  const { peers, dir } = cluster
  await waitForLeader(peers)
  await waitFor('three voters', async () => ((await peers[0]!.raft()).voters ?? []).length === 3, 30_000)
  const ids = await Promise.all(peers.map(async p => (await p.members()).find(m => m.self)!.peerId))
  const targets = peers.map((peer, i) => ({ peer, addr: `${peer.addr}/p2p/${ids[i]!}`, id: ids[i]! }))
  const psk = parseClusterKey(readFileSync(join(dir, 'p1', 'cluster.key')), 'cluster.key')
  const quiet = pino({ level: 'silent' })
  const summary: string[] = []
  let total = 0
  const phase = (what: string): void => { summary.push(`${what} at ${((Date.now() - started) / 1000).toFixed(1)} s`) }
  phase('cluster up')

  // 1. A stranger with the cluster key only.
  const stranger = await createHost({ privateKey: await generateKeyPair('Ed25519'), psk, listen: [`/ip4/${STRANGER_IP}/tcp/0`], log: quiet })
  hosts.push(stranger)
  const asStranger = await fuzzAs(stranger, 'stranger', targets, stranger.peerId.toString(), SEED)
  total += asStranger.sent
  phase('stranger frames sent')
  // Gossip: garbage, and leaves forged in the other members' names.
  for (const t0 of targets) await stranger.dial(multiaddr(t0.addr)).catch(() => {})
  await new Promise(resolve => setTimeout(resolve, 1500))
  const gossip = fc.sample(fc.oneof(
    fc.uint8Array({ minLength: 1, maxLength: 200 }),
    fc.constantFrom(...ids).map(id => encode({ type: 'leave', peerId: id, incarnation: 1_000_000 })),
    fc.integer({ min: 129, max: 20_000 }).map(d => Uint8Array.from([...new Uint8Array(d).fill(0x91), 0xc0])),
    fc.constant(null).map(() => { const c: Record<string, unknown> = { type: 'heartbeat' }; c.member = c; return packExotic(c) })
  ), { seed: SEED + 1, numRuns: FRAMES })
  for (const g of gossip) await stranger.services.pubsub.publish(MEMBERSHIP_TOPIC, g).catch(() => {})
  total += gossip.length
  await new Promise(resolve => setTimeout(resolve, 2000))
  phase('gossip sent')
  await healthy(t, peers, 'stranger')
  phase('healthy after the stranger')

  // 2. An admitted peer: p3's identity, with p3 stopped, so that frames pass the admission checks (forwarding, pod access, tokens).
  await peers[2]!.kill('SIGKILL')
  const key = privateKeyFromProtobuf(readFileSync(join(dir, 'p3', 'peer.key')))
  const insider = await createHost({ privateKey: key, psk, listen: [`/ip4/${STRANGER_IP}/tcp/0`], log: quiet })
  hosts.push(insider)
  t.is(insider.peerId.toString(), ids[2] as string)
  const asInsider = await fuzzAs(insider, 'admitted', targets.slice(0, 2), ids[2]!, SEED + 2)
  total += asInsider.sent
  phase('admitted frames sent')
  await healthy(t, peers.slice(0, 2), 'admitted')
  phase('healthy after the admitted peer')

  for (const [label, r] of [['stranger', asStranger], ['admitted', asInsider]] as const) {
    summary.push(`${label}: ${r.sent} frames: ${[...r.outcomes].sort().map(([k, n]) => `${k}×${n}`).join(', ')}`)
  }
  t.log(`seed ${SEED} (replay: SHOAL_WIRE_SEED=${SEED}); ${total} frames and gossip messages in ${((Date.now() - started) / 1000).toFixed(0)} s\n${summary.join('\n')}`)
  t.deepEqual([...asStranger.problems, ...asInsider.problems].slice(0, 25), [], `seed ${SEED}: streams that did not just end`)
})
