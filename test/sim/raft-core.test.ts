// Focused tests of the Raft core, each driving a small cluster by hand
// through one rule: elections, PreVote, CheckQuorum, log repair, the commit
// rule of Figure 8, the election restriction, flow control and the Ready
// contract; plus the storage and the wire guards the core relies on.
import test from 'ava'
import { decode, encode } from '../../protocol/codec.ts'
import { isRaftMessage } from '../../protocol/raft.ts'
import type { AppendMessage, Entry, RaftMessage } from '../../protocol/raft.ts'
import { seededRng } from '../../daemon/clock/clock.ts'
import { NotLeaderError, RaftCore } from '../../daemon/raft/core.ts'
import { RaftConfigError } from '../../daemon/raft/config.ts'
import { LogOrderError, MemoryStorage } from '../../daemon/raft/storage.ts'
import { ManualCluster } from './manual-cluster.ts'

const ELECTION = 10
const bytes = (s: string): Uint8Array => new TextEncoder().encode(s)
const text = (e: Entry): string => e.kind === 'noop' ? `noop@${e.term}` : `${new TextDecoder().decode(e.data)}@${e.term}`
const logOf = (c: ManualCluster, id: string): string[] => {
  const s = c.node(id).storage
  return s.entries(1, s.lastIndex() + 1).map(text)
}

function propose (c: ManualCluster, id: string, data: string): { index: number, term: number } {
  const r = c.core(id).propose(bytes(data))
  if (r instanceof NotLeaderError) throw r
  c.flush()
  return r
}

test('a 3-node cluster elects exactly one leader, which stays', t => {
  for (let seed = 1; seed <= 20; seed++) {
    const c = new ManualCluster(3, {}, seed * 10)
    c.run(4 * ELECTION)
    const leaders = c.leaders()
    t.is(leaders.length, 1, `seed ${seed}`)
    const leader = leaders[0]?.core as RaftCore
    for (const n of c.nodes.values()) {
      t.is(n.core.term, leader.term, `seed ${seed}: ${n.id} term`)
      t.is(n.core.leaderId, leader.id, `seed ${seed}: ${n.id} leader`)
      t.is(n.core.commitIndex, leader.lastIndex, `seed ${seed}: ${n.id} committed the leader's noop`)
    }
    c.run(20 * ELECTION)
    t.is(leader.role, 'leader', `seed ${seed}: the leader kept its role`)
    t.true([...c.nodes.values()].every(n => n.core.term === leader.term), `seed ${seed}: no new term while all is well`)
  }
})

test('PreVote: a partitioned node that rejoins does not disrupt the leader', t => {
  const c = new ManualCluster(3)
  c.campaign('n1')
  const term = c.core('n1').term
  t.is(c.core('n1').role, 'leader')
  c.isolated.add('n3')
  c.run(10 * ELECTION)
  t.is(c.core('n3').term, term, 'campaigning alone, n3 never moved to a new term')
  c.isolated.delete('n3')
  c.run(5 * ELECTION)
  t.is(c.core('n1').role, 'leader')
  t.is(c.core('n1').term, term)
  t.is(c.core('n3').leaderId, 'n1')
  t.is(c.core('n3').commitIndex, c.core('n1').commitIndex)
})

test('without PreVote, the same rejoin deposes the leader (what PreVote prevents)', t => {
  const c = new ManualCluster(3, { preVote: false })
  c.campaign('n1')
  const term = c.core('n1').term
  c.isolated.add('n3')
  c.run(10 * ELECTION)
  t.true(c.core('n3').term > term)
  c.isolated.delete('n3')
  c.run(5 * ELECTION)
  t.true(c.core('n1').term > term, 'the leader was pushed into a new term')
})

test('PreVote and the lease: a node that cannot hear the leader wins no PreVote from peers that can', t => {
  const c = new ManualCluster(3)
  c.campaign('n1')
  const term = c.core('n1').term
  c.cut.add('n1>n3') // n3 hears nothing from n1, yet reaches everyone
  c.run(10 * ELECTION)
  t.is(c.core('n3').term, term, 'n1 and n2 ignored n3\'s PreVotes while n1 leads')
  c.cut.clear()
  c.run(5 * ELECTION)
  t.is(c.core('n1').role, 'leader')
  t.is(c.core('n1').term, term)
})

test('CheckQuorum: an isolated leader steps down within an election timeout or two', t => {
  const c = new ManualCluster(3)
  c.campaign('n1')
  c.isolated.add('n1')
  c.tick(['n1'], ELECTION - 1)
  t.is(c.core('n1').role, 'leader', 'not before a full election timeout')
  c.tick(['n1'], ELECTION + 1)
  t.is(c.core('n1').role, 'follower')
  t.is(c.core('n1').leaderId, undefined)

  const d = new ManualCluster(3, { checkQuorum: false })
  d.campaign('n1')
  d.isolated.add('n1')
  d.tick(['n1'], 10 * ELECTION)
  t.is(d.core('n1').role, 'leader', 'without CheckQuorum it never notices')
})

test('CheckQuorum: followers that hear from a leader ignore a disruptive vote request', t => {
  const c = new ManualCluster(3, { preVote: false })
  c.campaign('n1')
  const term = c.core('n1').term
  // n3 asks for votes in a higher term, as a node that restarts with a
  // higher term might; the others heard from n1 just now.
  c.core('n2').step({ type: 'vote', from: 'n3', to: 'n2', term: term + 5, preVote: false, lastLogIndex: 99, lastLogTerm: term })
  c.flush()
  t.is(c.core('n2').term, term)
  t.false(c.queue.some(m => m.type === 'vote-response'), 'not even refused: ignored')
})

test('a follower\'s conflicting suffix is overwritten by the new leader\'s log', t => {
  const c = new ManualCluster(3)
  c.campaign('n1')
  c.isolated.add('n1')
  for (let i = 1; i <= 5; i++) propose(c, 'n1', `stale${i}`)
  t.is(c.node('n1').storage.lastIndex(), 6, 'n1 persisted entries no one else has')

  c.run(5 * ELECTION, ['n2', 'n3'])
  const leader = c.leaders().find(n => n.id !== 'n1')
  if (leader === undefined) return t.fail('n2 or n3 should lead')
  for (let i = 1; i <= 3; i++) propose(c, leader.id, `fresh${i}`)
  c.deliver()

  c.isolated.delete('n1')
  c.run(3 * ELECTION)
  t.is(c.core('n1').role, 'follower')
  t.deepEqual(logOf(c, 'n1'), logOf(c, leader.id))
  t.false(logOf(c, 'n1').some(e => e.startsWith('stale')))
  t.deepEqual(c.node('n1').applied.map(text), c.node(leader.id).applied.map(text))
  t.true(c.node('n1').applied.map(text).includes(`fresh3@${leader.core.term}`))
})

test('a rejecting follower hints where its log parts, and the leader resumes from the hint', t => {
  // The follower holds index 1..6: 1 of term 1, 2..6 of term 2, uncommitted.
  const storage = new MemoryStorage()
  const e = (index: number, term: number): Entry => ({ index, term, kind: 'normal', data: bytes(`${index}`) })
  storage.append([e(1, 1), e(2, 2), e(3, 2), e(4, 2), e(5, 2), e(6, 2)])
  storage.setHardState({ term: 2, commit: 1 })
  const follower = new RaftCore({ id: 'n2', peers: ['n1', 'n2', 'n3'], rng: seededRng(1), storage })
  follower.step({ type: 'append', from: 'n1', to: 'n2', term: 4, prevLogIndex: 9, prevLogTerm: 4, entries: [], commit: 1 })
  follower.step({ type: 'append', from: 'n1', to: 'n2', term: 4, prevLogIndex: 5, prevLogTerm: 3, entries: [], commit: 1 })
  const answers = follower.ready().messages
  t.like(answers[0], { type: 'append-response', success: false, rejectedIndex: 9, hint: { conflictIndex: 7 } })
  t.like(answers[1], { type: 'append-response', success: false, rejectedIndex: 5, hint: { conflictTerm: 2, conflictIndex: 2 } })

  // The leader side: n2 falls behind a pipelining leader, then rejects.
  const c = new ManualCluster(3, { maxBatchEntries: 1 })
  c.campaign('n1')
  for (let i = 0; i < 8; i++) propose(c, 'n1', `x${i}`)
  c.deliver()
  const leader = c.core('n1')
  const term = leader.term
  c.isolated.add('n2')
  for (let i = 0; i < 4; i++) propose(c, 'n1', `y${i}`)
  t.like(leader.progressOf('n2'), { matchIndex: 9, nextIndex: 14, state: 'replicate', inflight: 4 })
  const reject = (rejectedIndex: number, hint: { conflictTerm?: number, conflictIndex: number }): void => {
    leader.step({ type: 'append-response', from: 'n2', to: 'n1', term, success: false, rejectedIndex, hint })
  }
  reject(13, { conflictIndex: 11 })
  t.like(leader.progressOf('n2'), { nextIndex: 11, state: 'probe' }, 'straight to where n2\'s log ends')
  reject(12, { conflictIndex: 2 })
  t.like(leader.progressOf('n2'), { nextIndex: 11 }, 'a rejection of an older append is stale')
  reject(10, { conflictTerm: term - 1, conflictIndex: 3 })
  t.like(leader.progressOf('n2'), { nextIndex: 10 }, 'never below matchIndex + 1')
})

test('Figure 8: an entry of an earlier term is not committed by counting replicas', t => {
  // One entry per append, so the old entry reaches n2 before the new leader's noop does.
  const c = new ManualCluster(3, { preVote: false, checkQuorum: false, maxBatchEntries: 1 })
  c.campaign('n1')
  const oldTerm = c.core('n1').term
  c.isolated.add('n1')
  t.is(propose(c, 'n1', 'old').index, 2, 'only n1 holds index 2')
  c.isolated.delete('n1')
  c.restart('n1')
  c.isolated.add('n3')
  c.campaign('n1', () => {
    const p = c.core('n1').progressOf('n2')
    return p !== undefined && p.matchIndex >= 2
  })
  const leader = c.core('n1')
  t.is(leader.role, 'leader', 'n2 voted for n1, whose log is longer')
  t.true(leader.term > oldTerm)
  t.is(leader.progressOf('n2')?.matchIndex, 2, 'n1 and n2, a majority, hold index 2')
  t.is(leader.commitIndex, 1, 'but index 2 is of an old term, so it is not committed yet')
  c.deliver()
  t.is(leader.commitIndex, 3, 'the noop of the new term commits both')
  t.deepEqual(c.node('n2').applied.map(text), [`noop@${oldTerm}`, `old@${oldTerm}`, `noop@${leader.term}`])
})

test('the election restriction: a node missing a committed entry cannot win', t => {
  const c = new ManualCluster(3, { preVote: false, checkQuorum: false })
  c.campaign('n1')
  c.isolated.add('n3')
  const x = propose(c, 'n1', 'x')
  c.deliver()
  t.is(c.core('n1').commitIndex, x.index, 'x is committed by n1 and n2')
  c.isolated.delete('n3')
  c.isolated.add('n1')
  c.campaign('n3')
  t.not(c.core('n3').role, 'leader')
  t.true(c.delivered.some(m => m.type === 'vote-response' && m.from === 'n2' && m.to === 'n3' && !m.granted))
  c.run(10 * ELECTION, ['n2', 'n3'])
  t.deepEqual(c.leaders().map(n => n.id).filter(id => id !== 'n1'), ['n2'], 'only n2 can win (n1, cut off, still believes it leads)')
  t.true(logOf(c, 'n3').includes(`x@${x.term}`))
})

test('proposals to a follower fail with the leader\'s id', t => {
  const c = new ManualCluster(3)
  c.campaign('n1')
  const r = c.core('n2').propose(bytes('x'))
  t.true(r instanceof NotLeaderError)
  t.is((r as NotLeaderError).leaderId, 'n1')
  t.is(new ManualCluster(3).core('n1').propose(bytes('x')) instanceof NotLeaderError, true)
})

test('the leader batches and pipelines, within maxInflight', t => {
  const c = new ManualCluster(3, { maxInflight: 3, maxBatchEntries: 2 })
  c.campaign('n1')
  const leader = c.core('n1')
  for (let i = 0; i < 20; i++) leader.propose(bytes(`e${i}`))
  c.flush()
  const appends = c.queue.filter((m): m is AppendMessage => m.type === 'append' && m.to === 'n2')
  t.is(appends.length, 3, 'three appends out at once, no more')
  t.deepEqual(appends.map(m => m.entries.length), [2, 2, 2])
  t.like(leader.progressOf('n2'), { state: 'replicate', inflight: 3 })
  c.deliver()
  t.is(leader.commitIndex, 21)
  t.is(c.core('n2').commitIndex, 21)
})

test('the Ready contract: what to persist, send and apply, and hardState only on change', t => {
  const storage = new MemoryStorage()
  const core = new RaftCore({ id: 'n2', peers: ['n1', 'n2', 'n3'], rng: seededRng(1), storage })
  t.false(core.hasReady())
  const entry: Entry = { index: 1, term: 3, kind: 'noop', data: new Uint8Array(0) }
  core.step({ type: 'append', from: 'n1', to: 'n2', term: 3, prevLogIndex: 0, prevLogTerm: 0, entries: [entry], commit: 1 })
  t.true(core.hasReady())
  const rd = core.ready()
  t.deepEqual(rd.hardState, { term: 3, commit: 1 })
  t.deepEqual(rd.entries, [entry])
  t.deepEqual(rd.committed, [entry], 'committed and still unstable: applied after persisting')
  t.true(rd.mustSync)
  t.like(rd.messages[0], { type: 'append-response', success: true, matchIndex: 1 })
  t.throws(() => core.ready(), undefined, 'one Ready at a time')
  storage.append(rd.entries)
  storage.setHardState(rd.hardState as NonNullable<typeof rd.hardState>)
  core.advance(rd)
  t.false(core.hasReady())
  t.is(core.lastApplied, 1)
  core.step({ type: 'append', from: 'n1', to: 'n2', term: 3, prevLogIndex: 1, prevLogTerm: 3, entries: [], commit: 1 })
  const heartbeat = core.ready()
  t.is(heartbeat.hardState, undefined)
  t.false(heartbeat.mustSync)
  t.deepEqual(heartbeat.entries, [])
  core.advance(heartbeat)

  // A restart from storage replays what was committed.
  const again = new RaftCore({ id: 'n2', peers: ['n1', 'n2', 'n3'], rng: seededRng(2), storage })
  t.is(again.term, 3)
  t.deepEqual(again.ready().committed, [entry])
})

test('config is validated', t => {
  const base = { id: 'n1', peers: ['n1'], rng: seededRng(1), storage: new MemoryStorage() }
  t.throws(() => new RaftCore({ ...base, electionTicks: 2, heartbeatTicks: 2 }), { instanceOf: RaftConfigError })
  t.throws(() => new RaftCore({ ...base, peers: ['n1', 'n1'] }), { instanceOf: RaftConfigError })
  t.throws(() => new RaftCore({ ...base, maxInflight: 0 }), { instanceOf: RaftConfigError })
  const single = new RaftCore(base)
  for (let i = 0; i < 2 * ELECTION; i++) single.tick()
  t.is(single.role, 'leader', 'a single voter elects itself')
  const rd = single.ready()
  t.is(rd.committed.length, 1, 'and commits its noop alone')
})

test('MemoryStorage: append overwrites a suffix and refuses a hole', t => {
  const s = new MemoryStorage()
  const e = (index: number, term: number, d = ''): Entry => ({ index, term, kind: 'normal', data: bytes(d) })
  s.append([e(1, 1), e(2, 1), e(3, 1)])
  s.append([e(2, 2, 'new')])
  t.is(s.lastIndex(), 2)
  t.is(s.term(2), 2)
  t.is(s.term(0), 0)
  t.is(s.firstIndex(), 1)
  t.deepEqual(s.entries(1, 3, 1).map(x => x.index), [1])
  t.throws(() => s.append([e(4, 2)]), { instanceOf: LogOrderError })
  t.throws(() => s.append([e(3, 1)]), { instanceOf: LogOrderError }, 'terms never fall')
  t.throws(() => s.setHardState({ term: 2, commit: 5 }), { instanceOf: LogOrderError })
})

test('every message survives the wire codec, and malformed ones are refused', t => {
  const entry: Entry = { index: 3, term: 2, kind: 'normal', data: bytes('payload') }
  const messages: RaftMessage[] = [
    { type: 'vote', from: 'a', to: 'b', term: 3, preVote: true, lastLogIndex: 3, lastLogTerm: 2 },
    { type: 'vote-response', from: 'b', to: 'a', term: 3, preVote: false, granted: true },
    { type: 'append', from: 'a', to: 'b', term: 3, prevLogIndex: 2, prevLogTerm: 2, entries: [entry], commit: 2 },
    { type: 'append-response', from: 'b', to: 'a', term: 3, success: true, matchIndex: 3 },
    { type: 'append-response', from: 'b', to: 'a', term: 3, success: false, rejectedIndex: 2, hint: { conflictTerm: 1, conflictIndex: 1 } },
    { type: 'timeout-now', from: 'a', to: 'b', term: 3 }
  ]
  // msgpack hands bytes back as a Buffer, which is a Uint8Array but not deep-equal to one.
  const plain = (m: RaftMessage): unknown => m.type === 'append' ? { ...m, entries: m.entries.map(e => ({ ...e, data: [...e.data] })) } : m
  for (const m of messages) t.deepEqual(plain(decode(encode(m), isRaftMessage, 'raft message')), plain(m))
  t.false(isRaftMessage({ type: 'vote', from: 'a', to: 'b', term: -1, preVote: true, lastLogIndex: 0, lastLogTerm: 0 }))
  t.false(isRaftMessage({ type: 'append', from: 'a', to: 'b', term: 1, prevLogIndex: 0, prevLogTerm: 0, entries: [{ index: 1, term: 1, kind: 'normal', data: 'x' }], commit: 0 }))
  t.false(isRaftMessage({ type: 'append-response', from: 'a', to: 'b', term: 1, success: false, rejectedIndex: 1 }))
  t.false(isRaftMessage({ type: 'gossip', from: 'a', to: 'b', term: 1 }))
})
