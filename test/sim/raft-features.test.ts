// Golden-trace tests of the Raft core's newer features, each a scripted
// scenario on a hand-driven cluster (./manual-cluster.ts) whose messages and
// events are recorded as compact lines and compared with the expected list:
// a leader returning from isolation, a snapshot for a lagging learner,
// leadership transfer, ReadIndex, and membership changes. PreVote,
// CheckQuorum and log repair are covered in ./raft-core.test.ts.
// Set SHOAL_GOLDEN_PRINT=1 to print the traces recorded.
import test from 'ava'
import type { ExecutionContext } from 'ava'
import type { Entry, RaftMessage } from '../../protocol/raft.ts'
import { ConfigChangeError, NotLeaderError } from '../../daemon/raft/core.ts'
import type { ConfigChange } from '../../daemon/raft/core.ts'
import { describeMessage } from './describe.ts'
import { ManualCluster } from './manual-cluster.ts'

const ELECTION = 10
const bytes = (s: string): Uint8Array => new TextEncoder().encode(s)
const text = (e: Entry): string => e.kind === 'normal' ? `${new TextDecoder().decode(e.data)}@${e.term}` : `${e.kind}@${e.term}`

function propose (c: ManualCluster, id: string, data: string): void {
  const r = c.core(id).propose(bytes(data))
  if (r instanceof NotLeaderError) throw r
  c.flush()
}

function change (c: ManualCluster, id: string, ch: ConfigChange): void {
  const r = c.core(id).changeConfig(ch)
  if (r instanceof Error) throw r
  c.flush()
}

/** Messages delivered from `mark` on that `keep` accepts. */
function messages (c: ManualCluster, mark: number, keep: (m: RaftMessage) => boolean = () => true): string[] {
  return c.delivered.slice(mark).filter(keep).map(describeMessage)
}

const notHeartbeat = (m: RaftMessage): boolean =>
  !(m.type === 'append' && m.entries.length === 0) && !(m.type === 'append-response' && m.success)

function logOf (c: ManualCluster, id: string): string {
  const s = c.node(id).storage
  const snap = s.snapshotMeta()
  const head = snap.index > 0 ? [`snap=${snap.index}@${snap.term}`] : []
  return [...head, ...s.entries(s.firstIndex(), s.lastIndex() + 1).map(text)].join(' ')
}

function golden (t: ExecutionContext, actual: string[], expected: string[]): void {
  if (process.env.SHOAL_GOLDEN_PRINT !== undefined) console.log(`${t.title}:\n` + actual.map(l => `    '${l}',`).join('\n'))
  t.deepEqual(actual, expected)
}

test('(c) a leader isolated without CheckQuorum keeps leading alone; on rejoining it steps down and its tail is replaced', t => {
  const c = new ManualCluster(3, { checkQuorum: false })
  c.campaign('n1')
  propose(c, 'n1', 'a')
  c.deliver()
  c.isolated.add('n1')
  propose(c, 'n1', 'lost')
  // The others stop hearing from n1; one of them wins a new term.
  c.run(3 * ELECTION, ['n2', 'n3'])
  const next = c.leaders().find(n => n.id !== 'n1')
  if (next === undefined) throw new Error('no new leader')
  propose(c, next.id, 'b')
  c.deliver()
  const events = [`n1 ${c.core('n1').role}@${c.core('n1').term}`, `${next.id} ${next.core.role}@${next.core.term}`, `n1 log ${logOf(c, 'n1')}`]
  c.isolated.delete('n1')
  const mark = c.delivered.length
  c.tick(['n1'])
  c.deliver()
  c.run(2)
  events.push(...messages(c, mark, m => m.from === 'n1' || m.to === 'n1'))
  events.push(`n1 ${c.core('n1').role}@${c.core('n1').term}`, `n1 log ${logOf(c, 'n1')}`, `n1 applied ${c.node('n1').applied.map(text).join(' ')}`)
  golden(t, events, [
    'n1 leader@1',
    'n3 leader@2',
    'n1 log noop@1 a@1 lost@1',
    'append n1>n2 t1 prev=2@1 n=0 commit=2',
    'append n1>n3 t1 prev=2@1 n=0 commit=2',
    'append-response n2>n1 t2 rejected=2 hint=0@-',
    'append-response n3>n1 t2 rejected=2 hint=0@-',
    'append n3>n1 t2 prev=0@0 n=0 commit=0',
    'append-response n1>n3 t2 match=2',
    'append n3>n1 t2 prev=2@1 n=2 commit=4',
    'append-response n1>n3 t2 match=4',
    'append n3>n1 t2 prev=4@2 n=0 commit=4',
    'append-response n1>n3 t2 match=4',
    'n1 follower@2',
    'n1 log noop@1 a@1 noop@2 b@2',
    'n1 applied noop@1 a@1 noop@2 b@2'
  ])
})

test('(d) a learner behind the leader\'s compacted log gets a snapshot, installs it, then appends', t => {
  const c = new ManualCluster(3, {}, 1, { voters: ['n1', 'n2'], learners: [] })
  c.campaign('n1')
  for (const v of ['a', 'b', 'c']) propose(c, 'n1', v)
  c.deliver()
  c.compact('n1', 0)
  const mark = c.delivered.length
  change(c, 'n1', { type: 'add-learner', id: 'n3' })
  c.deliver()
  propose(c, 'n1', 'd')
  c.deliver()
  const trace = messages(c, mark, m => m.from === 'n3' || m.to === 'n3')
  trace.push(`n3 log ${logOf(c, 'n3')}`, `n3 applied ${c.node('n3').appliedIndex}`, `n3 role ${c.core('n3').role}, voter ${String(c.core('n3').isVoter())}`)
  golden(t, trace, [
    'append n1>n3 t2 prev=6@2 n=0 commit=5',
    'append-response n3>n1 t2 rejected=6 hint=2@-',
    'snapshot n1>n3 t2 snap=5@2',
    'append n1>n3 t2 prev=0@0 n=0 commit=0',
    'append-response n3>n1 t2 match=5',
    'append-response n3>n1 t2 match=5',
    'append n1>n3 t2 prev=5@2 n=1 commit=6',
    'append-response n3>n1 t2 match=6',
    'append n1>n3 t2 prev=6@2 n=1 commit=6',
    'append-response n3>n1 t2 match=7',
    'append n1>n3 t2 prev=6@2 n=0 commit=6',
    'append-response n3>n1 t2 match=6',
    'n3 log snap=5@2 config@2 d@2',
    'n3 applied 6',
    'n3 role follower, voter false',
  ])
})

test('(f) leadership transfer goes to the most up-to-date voter by timeout-now, one term later', t => {
  const c = new ManualCluster(3)
  c.campaign('n1')
  const term = c.core('n1').term
  c.cut.add('n1>n3')
  propose(c, 'n1', 'a')
  c.deliver()
  c.cut.clear()
  const mark = c.delivered.length
  const to = c.core('n1').transferLeadership()
  t.is(to, 'n2')
  t.true(c.core('n1').propose(bytes('refused')) instanceof NotLeaderError, 'no proposals while handing over')
  c.deliver()
  golden(t, [...messages(c, mark, m => m.type !== 'append' || m.entries.length > 0), ...[...c.nodes.values()].map(n => `${n.id} ${n.core.role}@${n.core.term - term}`)], [
    'timeout-now n1>n2 t1',
    'vote n2>n1 t2 transfer last=2@1',
    'vote n2>n3 t2 transfer last=2@1',
    'vote-response n1>n2 t2 granted',
    'vote-response n3>n2 t2 granted',
    'append n2>n1 t2 prev=2@1 n=1 commit=2',
    'append n2>n3 t2 prev=2@1 n=1 commit=2',
    'append-response n1>n2 t2 match=3',
    'append-response n3>n2 t2 rejected=2 hint=2@-',
    'append n2>n3 t2 prev=1@1 n=2 commit=3',
    'append-response n1>n2 t2 match=3',
    'append-response n3>n2 t2 match=0',
    'append-response n3>n2 t2 match=3',
    'n1 follower@1',
    'n2 leader@1',
    'n3 follower@1'
  ])
})

test('(g) ReadIndex needs a quorum round; a leader that lost its quorum never answers, and drops the read on stepping down', t => {
  const c = new ManualCluster(3)
  c.campaign('n1')
  c.tick(['n1'])
  c.deliver()
  let mark = c.delivered.length
  t.is(c.core('n1').readIndex(1), undefined)
  c.flush()
  const trace = [`readStates before the round: ${c.readStates.length}`]
  c.deliver()
  trace.push(...messages(c, mark), ...c.readStates.map(r => `read ${r.ctx} on ${r.id} at ${r.index}`))
  c.isolated.add('n1')
  mark = c.delivered.length
  t.is(c.core('n1').readIndex(2), undefined)
  c.tick(['n1'], 2 * ELECTION)
  c.deliver()
  trace.push(...messages(c, mark), `readStates ${c.readStates.length}`, ...c.droppedReads.map(r => `dropped ${r.ctx} on ${r.id}`), `n1 ${c.core('n1').role}`)
  t.true(c.core('n2').readIndex(3) instanceof NotLeaderError, 'a follower refuses')
  golden(t, trace, [
    'readStates before the round: 0',
    'append n1>n2 t1 prev=1@1 n=0 commit=1 read=1',
    'append n1>n3 t1 prev=1@1 n=0 commit=1 read=1',
    'append-response n2>n1 t1 match=1 read=1',
    'append-response n3>n1 t1 match=1 read=1',
    'read 1 on n1 at 1',
    'readStates 1',
    'dropped 2 on n1',
    'n1 follower'
  ])
})

test('(h) membership: add a learner, promote it, remove a voter; a removal only the old leader holds is lost when another voter wins', t => {
  const c = new ManualCluster(4, {}, 1, { voters: ['n1', 'n2', 'n3'], learners: [] })
  c.campaign('n1')
  const trace: string[] = []
  const config = (id: string): string => `${id} voters=${c.core(id).clusterConfig.voters.join(',')} learners=${c.core(id).clusterConfig.learners.join(',')}`
  change(c, 'n1', { type: 'add-learner', id: 'n4' })
  const busy = c.core('n1').changeConfig({ type: 'promote', id: 'n4' })
  trace.push(`second change while one is pending: ${busy instanceof ConfigChangeError ? busy.message : 'accepted'}`)
  c.deliver()
  trace.push(config('n1'), config('n4'))
  change(c, 'n1', { type: 'promote', id: 'n4' })
  c.deliver()
  trace.push(config('n1'), config('n4'))
  change(c, 'n1', { type: 'remove', id: 'n3' })
  c.deliver()
  trace.push(config('n1'), config('n2'))
  const self = c.core('n1').changeConfig({ type: 'remove', id: 'n1' })
  trace.push(`remove self: ${self instanceof ConfigChangeError ? self.message : 'accepted'}`)
  // n1 proposes removing n2 and, using that config at once (thesis 4.1),
  // replicates it to no one before it is cut off: n2 and n4 never see it,
  // n2 wins with n4's vote, and the removal is gone.
  change(c, 'n1', { type: 'remove', id: 'n2' })
  c.isolated.add('n1')
  const mark = c.delivered.length
  c.isolated.delete('n1')
  c.cut.add('n1>n4')
  c.deliver(m => !(m.type === 'append' && m.entries.length === 0))
  c.isolated.add('n1')
  c.cut.clear()
  trace.push(`n2 log ${logOf(c, 'n2')}`)
  // n4 stops hearing from n1, so its lease runs out and it may vote.
  c.tick(['n4'], ELECTION)
  c.deliver()
  c.campaign('n2', () => c.core('n2').role === 'leader')
  trace.push(`n2 ${c.core('n2').role}@${c.core('n2').term}`)
  c.deliver()
  trace.push(...messages(c, mark, notHeartbeat), `n2 ${c.core('n2').role}`, config('n2'), config('n4'))
  golden(t, trace, [
    'second change while one is pending: another config change is not committed yet',
    'n1 voters=n1,n2,n3 learners=n4',
    'n4 voters=n1,n2,n3 learners=n4',
    'n1 voters=n1,n2,n3,n4 learners=',
    'n4 voters=n1,n2,n3,n4 learners=',
    'n1 voters=n1,n2,n4 learners=',
    'n2 voters=n1,n2,n4 learners=',
    'remove self: the leader cannot remove itself; transfer leadership first',
    'n2 log config@1 noop@2 config@2 config@2 config@2',
    'n2 leader@3',
    'vote n2>n4 t3 pre last=5@2',
    'vote-response n4>n2 t3 pre granted',
    'vote n2>n4 t3 last=5@2',
    'vote-response n4>n2 t3 granted',
    'append n2>n4 t3 prev=5@2 n=1 commit=5',
    'n2 leader',
    'n2 voters=n1,n2,n4 learners=',
    'n4 voters=n1,n2,n4 learners=',
  ])
})
