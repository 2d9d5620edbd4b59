// The Raft node's answers to callers (daemon/raft/node.ts), on a real
// LevelDB log with a fake transport: a lone founder commits and reads; a
// peer with no leader says so in bounded time; a follower forwards, and a
// forward that failed before or after leaving is told apart; what the node
// tells others of its core.
import test from 'ava'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { encode } from '../../protocol/codec.ts'
import type { ForwardRequest, ForwardResponse, RaftMessage } from '../../protocol/raft.ts'
import { seededRng, systemClock } from '../../daemon/clock/clock.ts'
import { encodeKvCommand, KvStore } from '../../daemon/kv/store.ts'
import { createLogger } from '../../daemon/log/log.ts'
import { LevelStorage } from '../../daemon/raft/level-storage.ts'
import { ForwardError, RaftNode } from '../../daemon/raft/node.ts'
import { CommandTooLargeError, MAX_COMMAND_BYTES, NoLeaderError, NotLeaderError, ProposalTimeoutError } from '../../daemon/raft/replicator.ts'

const dirs: string[] = []
// systemClock's timers do not hold the process open (in shoald, libp2p does): this does, for the tests.
const keepAlive = setInterval(() => {}, 1000)
test.after.always(() => {
  clearInterval(keepAlive)
  for (const d of dirs) rmSync(d, { recursive: true, force: true })
})

interface Harness {
  node: RaftNode
  kv: KvStore
  sent: RaftMessage[]
  storage: LevelStorage
}

async function makeNode (opts: { founder: boolean, forward?: (to: string, req: ForwardRequest) => Promise<ForwardResponse> }): Promise<Harness> {
  const dir = mkdtempSync(join(tmpdir(), 'shoal-node-'))
  dirs.push(dir)
  const storage = await LevelStorage.open(dir)
  if (opts.founder) {
    await storage.save({ entries: [{ term: 1, index: 1, kind: 'config', data: encode({ voters: ['me'], learners: [] }) }], hardState: { term: 1, commit: 1 }, sync: true })
  }
  const kv = new KvStore()
  const sent: RaftMessage[] = []
  const node = new RaftNode({
    id: 'me',
    name: 'me',
    api: '127.0.0.1:1',
    storage,
    stateMachine: kv,
    send: m => { sent.push(m) },
    forward: async (to, req) => {
      if (opts.forward === undefined) throw new ForwardError('no forwarding here', false)
      return await opts.forward(to, req)
    },
    describe: id => id === 'boss' ? { name: 'boss', api: '127.0.0.9:7070' } : {},
    clock: systemClock,
    rng: seededRng(1),
    log: createLogger('silent', 'test'),
    tickMs: 5,
    electionTicks: 4,
    timeoutMs: 1000,
    noLeaderWaitMs: 200
  })
  node.start()
  return { node, kv, sent, storage }
}

/** Makes `boss` this node's leader by stepping a heartbeat from it. */
function hearFromBoss (node: RaftNode): void {
  node.step({ type: 'append', from: 'boss', to: 'me', term: 5, prevLogIndex: 0, prevLogTerm: 0, entries: [], commit: 0 })
}

test('a lone founder elects itself, commits, applies and answers reads', async t => {
  const { node, kv, storage } = await makeNode({ founder: true })
  try {
    const put = await node.propose(encodeKvCommand({ op: 'put', key: 'a', value: new TextEncoder().encode('1') }))
    t.deepEqual(put.result, { ok: true, index: put.index })
    t.is(new TextDecoder().decode(kv.get('a')?.value), '1')
    const read = await node.readBarrier()
    t.true(read >= put.index)
    const s = node.status()
    t.is(s.role, 'leader')
    t.is(s.leader?.api, '127.0.0.1:1')
    t.deepEqual(s.voters.map(v => v.id), ['me'])
  } finally {
    await node.stop()
    await storage.close()
  }
})

test('with no leader, a write is refused with NoLeaderError in bounded time', async t => {
  const { node, storage } = await makeNode({ founder: false })
  try {
    const started = Date.now()
    await t.throwsAsync(node.propose(new Uint8Array([1])), { instanceOf: NoLeaderError })
    await t.throwsAsync(node.readBarrier(), { instanceOf: NoLeaderError })
    t.true(Date.now() - started < 5000, 'bounded, not a hang')
    t.is(node.status().role, 'learner')
  } finally {
    await node.stop()
    await storage.close()
  }
})

test('a follower forwards; a forward that never left is "not the leader" with its address, one that left is unknown', async t => {
  let mode: 'ok' | 'unsent' | 'sent' = 'ok'
  const { node, storage } = await makeNode({
    founder: false,
    forward: async (to, req) => {
      t.is(to, 'boss')
      if (mode === 'unsent') throw new ForwardError('connection refused', false)
      if (mode === 'sent') throw new ForwardError('stream reset', true)
      return req.type === 'read-index' ? { ok: true, index: 0 } : { ok: true, index: 0, result: { ok: true, index: 7 } }
    }
  })
  try {
    hearFromBoss(node)
    const r = await node.propose(new Uint8Array([1]))
    t.deepEqual(r.result, { ok: true, index: 7 }, 'the leader\'s result comes back')
    t.is(await node.readBarrier(), 0)
    mode = 'unsent'
    const err = await t.throwsAsync(node.propose(new Uint8Array([2])), { instanceOf: NotLeaderError })
    t.is(err?.leaderApi, '127.0.0.9:7070')
    mode = 'sent'
    await t.throwsAsync(node.propose(new Uint8Array([3])), { instanceOf: ProposalTimeoutError })
  } finally {
    await node.stop()
    await storage.close()
  }
})

test('a consistent read on a peer that has not applied the read index fails rather than read stale state', async t => {
  const { node, storage } = await makeNode({
    founder: false,
    forward: async () => ({ ok: true, index: 100 })
  })
  try {
    hearFromBoss(node)
    await t.throwsAsync(node.readBarrier(300), { instanceOf: ProposalTimeoutError, message: /not caught up/ })
  } finally {
    await node.stop()
    await storage.close()
  }
})

test('what others may know of the core: leadership, the config, commit and match indexes; a lone voter does not hand over', async t => {
  const { node, storage } = await makeNode({ founder: true })
  try {
    const put = await node.propose(encodeKvCommand({ op: 'put', key: 'a', value: new TextEncoder().encode('1') }))
    t.true(node.isLeader())
    t.deepEqual(node.clusterConfig(), { voters: ['me'], learners: [] })
    t.false(node.configChangePending())
    t.true(node.commitIndex() >= put.index)
    t.true((node.matchIndex('me') ?? 0) >= put.index, 'the leader tracks its own match index')
    t.is(node.matchIndex('stranger'), undefined)
    await node.beforeStop()
    t.true(node.isLeader(), 'with no other voter there is no one to hand over to')
  } finally {
    await node.stop()
    await storage.close()
  }
})

test('a command larger than MAX_COMMAND_BYTES is refused before the log, proposed here or forwarded; one at the limit commits', async t => {
  const { node, kv, storage } = await makeNode({ founder: true })
  try {
    await node.propose(encodeKvCommand({ op: 'put', key: 'warm', value: new Uint8Array([1]) }))
    const last = node.status().lastIndex
    const tooLarge = new Uint8Array(MAX_COMMAND_BYTES + 1)
    const err = await t.throwsAsync(node.propose(tooLarge), { instanceOf: CommandTooLargeError })
    t.is(err?.message, `the write is ${MAX_COMMAND_BYTES + 1} bytes once encoded, more than the ${MAX_COMMAND_BYTES} bytes one write may be`)
    t.like(await node.handleForward({ type: 'propose', command: tooLarge }), { ok: false, error: 'too-large' }, 'a follower\'s forward of it too')
    t.is(node.status().lastIndex, last, 'neither reached the log')
    // The largest command the log takes: a KV value that fills it exactly.
    const header = encodeKvCommand({ op: 'put', key: 'big', value: new Uint8Array(0) }).byteLength
    const largest = encodeKvCommand({ op: 'put', key: 'big', value: new Uint8Array(MAX_COMMAND_BYTES - header - 4) })
    t.true(largest.byteLength <= MAX_COMMAND_BYTES && largest.byteLength > MAX_COMMAND_BYTES - 8)
    const put = await node.propose(largest)
    t.deepEqual(put.result, { ok: true, index: put.index })
    t.is(kv.get('big')?.value.byteLength, MAX_COMMAND_BYTES - header - 4)
  } finally {
    await node.stop()
    await storage.close()
  }
})

test('a follower whose leader answers "too large" says so as CommandTooLargeError', async t => {
  const { node, storage } = await makeNode({
    founder: false,
    forward: async () => ({ ok: false, error: 'too-large', message: 'too large for the leader' })
  })
  try {
    hearFromBoss(node)
    await t.throwsAsync(node.propose(new Uint8Array(10)), { instanceOf: CommandTooLargeError, message: 'too large for the leader' })
  } finally {
    await node.stop()
    await storage.close()
  }
})
