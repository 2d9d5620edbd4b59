// Appends are batched by bytes as well as by count, the pipeline to each
// follower is bounded by bytes as well as by appends, and an entry larger
// than a batch goes alone: large entries never make an append too big for
// the transport, and never stall the log.
import test from 'ava'
import type { AppendMessage, Entry } from '../../protocol/raft.ts'
import { seededRng } from '../../daemon/clock/clock.ts'
import { NotLeaderError, RaftCore } from '../../daemon/raft/core.ts'
import { RAFT_DEFAULTS, RaftConfigError } from '../../daemon/raft/config.ts'
import { batchOf } from '../../daemon/raft/leader.ts'
import { Inflights } from '../../daemon/raft/progress.ts'
import { MemoryStorage } from '../../daemon/raft/storage.ts'
import { ManualCluster } from './manual-cluster.ts'

/** `size` bytes of entry data, all `fill` (so that entries can be told apart). */
const payload = (size: number, fill: number): Uint8Array => new Uint8Array(size).fill(fill)
const entry = (index: number, size: number): Entry => ({ term: 1, index, kind: 'normal', data: payload(size, index) })

function propose (c: ManualCluster, id: string, data: Uint8Array): void {
  const r = c.core(id).propose(data)
  if (r instanceof NotLeaderError) throw r
}

/** The appends queued for `to` that carry entries, as the sizes of their entries. */
function appendSizes (c: ManualCluster, to: string): number[][] {
  return c.queue
    .filter((m): m is AppendMessage => m.type === 'append' && m.to === to && m.entries.length > 0)
    .map(m => m.entries.map(e => e.data.byteLength))
}

/** A heartbeat from `leader` (followers learn the last commit from the next one), delivered. */
function heartbeat (c: ManualCluster, leader = 'n1'): void {
  c.tick([leader])
  c.deliver()
}

/** Every node holds the same log, and has committed all of it. */
function converged (c: ManualCluster): boolean {
  const leader = c.leaders()[0]?.core
  if (leader === undefined) return false
  return [...c.nodes.values()].every(n => n.core.commitIndex === leader.lastIndex && n.storage.lastIndex() === leader.lastIndex)
}

test('batchOf: entries up to the byte cap, and always at least the first, however large', t => {
  const es = [entry(1, 40), entry(2, 40), entry(3, 40), entry(4, 500), entry(5, 10)]
  t.deepEqual(batchOf(es, 100).entries.map(e => e.index), [1, 2], 'a third 40 would pass 100')
  t.is(batchOf(es, 100).bytes, 80)
  t.deepEqual(batchOf(es, 120).entries.map(e => e.index), [1, 2, 3], 'exactly at the cap is within it')
  t.deepEqual(batchOf(es.slice(3), 100).entries.map(e => e.index), [4], 'an entry larger than a batch goes alone')
  t.is(batchOf(es.slice(3), 100).bytes, 500)
  t.deepEqual(batchOf([], 100), { entries: [], bytes: 0 })
  t.is(batchOf(es, Infinity).entries, es, 'no copy when everything fits')
})

test('Inflights: full by count or by bytes, whichever comes first; freeing gives both back', t => {
  const w = new Inflights(4, 100)
  w.add(1, 60)
  t.false(w.full())
  w.add(2, 40)
  t.true(w.full(), '100 bytes out: full with two appends of four')
  t.is(w.bytes, 100)
  w.freeTo(1)
  t.false(w.full())
  t.is(w.bytes, 40)
  w.add(3, 0)
  w.add(4, 0)
  w.add(5, 0)
  t.true(w.full(), 'four appends out: full with 40 bytes of 100')
  w.freeFirstOne()
  t.is(w.count, 3)
  t.is(w.bytes, 0)
  w.reset()
  t.deepEqual([w.count, w.bytes, w.full()], [0, 0, false])
  w.freeFirstOne()
  t.is(w.count, 0, 'freeing from an empty window is nothing')
})

test('the leader caps each append by bytes as well as by count', t => {
  const c = new ManualCluster(3, { maxBatchEntries: 10, maxBatchBytes: 100, maxInflight: 100 })
  c.campaign('n1')
  for (let i = 0; i < 10; i++) propose(c, 'n1', payload(40, i))
  c.flush()
  t.deepEqual(appendSizes(c, 'n2'), [[40, 40], [40, 40], [40, 40], [40, 40], [40, 40]], 'two entries of 40 per append, not ten')
  c.deliver()
  heartbeat(c)
  t.true(converged(c))
  t.is(c.core('n1').commitIndex, 11)
})

test('an entry larger than a batch goes alone, between batches of the small ones, and commits everywhere', t => {
  const c = new ManualCluster(3, { maxBatchEntries: 64, maxBatchBytes: 100, maxInflight: 100 })
  c.campaign('n1')
  for (const size of [30, 30, 1000, 30, 30]) propose(c, 'n1', payload(size, size))
  c.flush()
  t.deepEqual(appendSizes(c, 'n3'), [[30, 30], [1000], [30, 30]])
  c.deliver()
  heartbeat(c)
  t.true(converged(c))
  const sizes = c.node('n3').storage.entries(2, 7).map(e => e.data.byteLength)
  t.deepEqual(sizes, [30, 30, 1000, 30, 30], 'the follower holds every entry, in order')
})

test('the pipeline to a follower is bounded by bytes as well as by appends', t => {
  const c = new ManualCluster(3, { maxBatchEntries: 64, maxBatchBytes: 100, maxInflight: 100, maxInflightBytes: 250 })
  c.campaign('n1')
  for (let i = 0; i < 10; i++) propose(c, 'n1', payload(100, i))
  c.flush()
  t.deepEqual(appendSizes(c, 'n2'), [[100], [100], [100]], 'the third append passes 250 bytes and still goes; no fourth')
  t.like(c.core('n1').progressOf('n2'), { state: 'replicate', inflight: 3 })
  c.deliver()
  heartbeat(c)
  t.true(converged(c), 'acknowledgements open the window again until everything is through')
})

test('a window full by bytes whose appends were lost is sent again after a stall', t => {
  const c = new ManualCluster(3, { maxBatchEntries: 64, maxBatchBytes: 100, maxInflight: 100, maxInflightBytes: 250 })
  c.campaign('n1')
  c.isolated.add('n3')
  for (let i = 0; i < 10; i++) propose(c, 'n1', payload(100, i))
  c.deliver()
  t.is(c.core('n2').commitIndex, 11, 'n1 and n2 commit without n3')
  t.like(c.core('n1').progressOf('n3'), { inflight: 3 }, 'n3\'s window is full, and its appends are lost')
  c.isolated.delete('n3')
  for (let i = 0; i < 40 && !converged(c); i++) heartbeat(c)
  t.true(converged(c), 'heartbeats found the stall, and n3 caught up')
})

test('a single voter commits an entry larger than a batch', t => {
  const core = new RaftCore({ id: 'n1', peers: ['n1'], rng: seededRng(1), storage: new MemoryStorage(), maxBatchBytes: 10 })
  for (let i = 0; i < 30 && core.role !== 'leader'; i++) core.tick()
  t.is(core.role, 'leader')
  const at = core.propose(payload(1000, 1))
  if (at instanceof NotLeaderError) throw at
  const rd = core.ready()
  t.deepEqual(rd.committed.map(e => e.data.byteLength), [0, 1000], 'the noop, then the large entry')
})

test('the byte caps are validated, with defaults of 1 MiB per append and 32 MiB in flight', t => {
  t.is(RAFT_DEFAULTS.maxBatchBytes, 1024 * 1024)
  t.is(RAFT_DEFAULTS.maxInflightBytes, 32 * 1024 * 1024)
  const base = { id: 'n1', peers: ['n1'], rng: seededRng(1), storage: new MemoryStorage() }
  t.throws(() => new RaftCore({ ...base, maxBatchBytes: 0 }), { instanceOf: RaftConfigError, message: /maxBatchBytes/ })
  t.throws(() => new RaftCore({ ...base, maxInflightBytes: 1.5 }), { instanceOf: RaftConfigError, message: /maxInflightBytes/ })
})
