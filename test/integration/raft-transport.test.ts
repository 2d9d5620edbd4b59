// The Raft transport between real libp2p hosts in this process, on
// 127.0.3.x: order, snapshots, lying and malformed senders, a peer that
// stops and comes back, and the rate for heartbeat-sized messages.
import test from 'ava'
import { randomBytes } from 'node:crypto'
import { generateKeyPair } from '@libp2p/crypto/keys'
import type { PrivateKey } from '@libp2p/interface'
import { generateKey } from '@libp2p/pnet'
import { lpStream } from '@libp2p/utils'
import { pino } from 'pino'
import { encode } from '../../protocol/codec.ts'
import { RAFT_PROTOCOL } from '../../protocol/raft.ts'
import type { AppendMessage, Entry, RaftMessage, SnapshotMessage } from '../../protocol/raft.ts'
import { createHost } from '../../daemon/p2p/host.ts'
import type { ShoalHost } from '../../daemon/p2p/host.ts'
import { RaftTransport } from '../../daemon/raft/transport.ts'
import type { RaftTransportInit } from '../../daemon/raft/transport.ts'
import { waitFor } from '../helpers/cluster.ts'

interface LogLine { level: number, event?: string, msg?: string, [k: string]: unknown }

interface Node {
  id: string
  host: ShoalHost
  key: PrivateKey
  transport: RaftTransport
  received: RaftMessage[]
  snapshotsSent: Array<{ to: string, ok: boolean }>
  disconnected: string[]
  logs: LogLine[]
}

function newPsk (): Uint8Array {
  const psk = new Uint8Array(95)
  generateKey(psk)
  return psk
}

async function startNode (listen: string, psk: Uint8Array, opts: Partial<RaftTransportInit> = {}, key?: PrivateKey): Promise<Node> {
  const logs: LogLine[] = []
  const log = pino({ level: 'debug' }, { write: (line: string) => { logs.push(JSON.parse(line) as LogLine) } })
  const privateKey = key ?? await generateKeyPair('Ed25519')
  const host = await createHost({ privateKey, psk, listen: [listen], log })
  const node: Node = { id: host.peerId.toString(), host, key: privateKey, received: [], snapshotsSent: [], disconnected: [], logs, transport: undefined as unknown as RaftTransport }
  node.transport = new RaftTransport({
    host,
    log,
    onMessage: m => { node.received.push(m) },
    onSnapshotSent: (to, ok) => { node.snapshotsSent.push({ to, ok }) },
    onPeerDisconnected: peerId => { node.disconnected.push(peerId) },
    ...opts
  })
  await node.transport.start()
  return node
}

async function stopNode (node: Node): Promise<void> {
  await node.transport.stop()
  await node.host.stop()
}

async function connect (a: Node, b: Node): Promise<void> {
  const addr = b.host.getMultiaddrs()[0]
  if (addr === undefined) throw new Error('no listen address')
  await a.host.dial(addr)
}

function entry (index: number, term: number): Entry {
  return { index, term, kind: 'normal', data: new Uint8Array(randomBytes(32 + (index % 200))) }
}

function append (from: Node, to: Node, term: number, prev: number, entries: Entry[]): AppendMessage {
  return { type: 'append', from: from.id, to: to.id, term, prevLogIndex: prev, prevLogTerm: term, entries, commit: prev }
}

/** msgpackr hands binary back as Buffers; compare plain bytes. */
function plain (m: RaftMessage): RaftMessage {
  if (m.type === 'append') return { ...m, entries: m.entries.map(e => ({ ...e, data: new Uint8Array(e.data) })) }
  if (m.type === 'snapshot' && m.data !== undefined) return { ...m, data: new Uint8Array(m.data) }
  return m
}

async function sleep (ms: number): Promise<void> {
  await new Promise(resolve => setTimeout(resolve, ms))
}

test.serial('2,000 appends with entries arrive in order and intact', async t => {
  const psk = newPsk()
  const a = await startNode('/ip4/127.0.3.1/tcp/0', psk)
  const b = await startNode('/ip4/127.0.3.2/tcp/0', psk)
  try {
    await connect(a, b)
    const sent: AppendMessage[] = []
    for (let i = 0; i < 2000; i++) {
      const entries = [entry(3 * i + 1, 2), entry(3 * i + 2, 2), entry(3 * i + 3, 2)]
      sent.push(append(a, b, 2, 3 * i, entries))
    }
    // Some in one burst, the rest spread over a few turns of the event loop.
    for (const m of sent.slice(0, 500)) a.transport.send(m)
    for (let i = 500; i < sent.length; i += 100) {
      await sleep(1)
      for (const m of sent.slice(i, i + 100)) a.transport.send(m)
    }
    await waitFor('2,000 appends', () => b.received.length >= sent.length, 30_000)
    t.is(b.received.length, sent.length)
    t.deepEqual(b.received.map(plain), sent)
    // And the other way, on b's own stream to a.
    b.transport.send({ type: 'append-response', from: b.id, to: a.id, term: 2, success: true, matchIndex: 6000 })
    await waitFor('the answer', () => a.received.length === 1)
    t.deepEqual(a.received[0], { type: 'append-response', from: b.id, to: a.id, term: 2, success: true, matchIndex: 6000 })
  } finally {
    await stopNode(a)
    await stopNode(b)
  }
})

test.serial('a 3 MiB snapshot arrives whole, and failures are reported', async t => {
  const psk = newPsk()
  const a = await startNode('/ip4/127.0.3.3/tcp/0', psk)
  const b = await startNode('/ip4/127.0.3.4/tcp/0', psk)
  const small = await startNode('/ip4/127.0.3.5/tcp/0', psk, { maxSnapshotBytes: 1024 * 1024 })
  try {
    await connect(a, b)
    await connect(a, small)
    const data = new Uint8Array(randomBytes(3 * 1024 * 1024 + 17))
    const meta = { index: 1200, term: 3, config: { voters: [a.id, b.id], learners: [] } }
    const snapshot: SnapshotMessage = { type: 'snapshot', from: a.id, to: b.id, term: 3, meta, data }
    a.transport.send(snapshot)
    // Ordinary messages keep flowing beside it.
    a.transport.send({ type: 'timeout-now', from: a.id, to: b.id, term: 3 })
    await waitFor('the snapshot to be acknowledged', () => a.snapshotsSent.length === 1, 30_000)
    t.deepEqual(a.snapshotsSent, [{ to: b.id, ok: true }])
    const got = b.received.find(m => m.type === 'snapshot')
    if (got?.type !== 'snapshot' || got.data === undefined) throw new Error('no snapshot with data arrived')
    // Compared apart: ava's deepEqual takes seconds over 3 MiB.
    t.true(Buffer.from(got.data).equals(data), 'the same bytes')
    t.deepEqual({ ...got, data: undefined }, { ...snapshot, data: undefined })
    t.true(b.received.some(m => m.type === 'timeout-now'))

    // Without data: a bug, reported as a failure; nothing is sent.
    a.transport.send({ type: 'snapshot', from: a.id, to: b.id, term: 3, meta })
    await waitFor('the failure', () => a.snapshotsSent.length === 2)
    t.deepEqual(a.snapshotsSent[1], { to: b.id, ok: false })
    t.true(a.logs.some(l => l.event === 'raft.transport.snapshot-without-data'))

    // Beyond the receiver's limit: refused, and the sender hears of it.
    a.transport.send({ type: 'snapshot', from: a.id, to: small.id, term: 3, meta, data })
    await waitFor('the refusal', () => a.snapshotsSent.length === 3, 30_000)
    t.deepEqual(a.snapshotsSent[2], { to: small.id, ok: false })
    t.false(small.received.some(m => m.type === 'snapshot'))
    t.true(small.logs.some(l => l.event === 'raft.transport.bad-snapshot'))
    t.is(b.received.filter(m => m.type === 'snapshot').length, 1)
  } finally {
    await stopNode(a)
    await stopNode(b)
    await stopNode(small)
  }
})

test.serial('a message whose from is not the sender is dropped', async t => {
  const psk = newPsk()
  const a = await startNode('/ip4/127.0.3.6/tcp/0', psk)
  const b = await startNode('/ip4/127.0.3.7/tcp/0', psk)
  const c = await startNode('/ip4/127.0.3.8/tcp/0', psk)
  try {
    await connect(a, b)
    a.transport.send({ type: 'vote', from: c.id, to: b.id, term: 9, preVote: false, lastLogIndex: 100, lastLogTerm: 8 })
    a.transport.send({ type: 'vote', from: a.id, to: b.id, term: 5, preVote: true, lastLogIndex: 10, lastLogTerm: 4 })
    await waitFor('the honest vote', () => b.received.length > 0)
    await sleep(200)
    t.deepEqual(b.received, [{ type: 'vote', from: a.id, to: b.id, term: 5, preVote: true, lastLogIndex: 10, lastLogTerm: 4 }])
    const warning = b.logs.find(l => l.event === 'raft.transport.misaddressed')
    t.is(warning?.from, c.id)
    t.is(warning?.remote, a.id)
  } finally {
    await stopNode(a)
    await stopNode(b)
    await stopNode(c)
  }
})

test.serial('malformed frames break only their own stream', async t => {
  const psk = newPsk()
  const a = await startNode('/ip4/127.0.3.9/tcp/0', psk)
  const b = await startNode('/ip4/127.0.3.10/tcp/0', psk)
  try {
    await connect(a, b)
    a.transport.send({ type: 'timeout-now', from: a.id, to: b.id, term: 1 })
    await waitFor('the first message', () => b.received.length === 1)

    const garbage = [
      // not msgpack at all
      async (lp: ReturnType<typeof lpStream>) => { await lp.write(Uint8Array.from([0xc1, 0xc1, 0xc1])) },
      // msgpack, but not a Raft message
      async (lp: ReturnType<typeof lpStream>) => { await lp.write(encode({ type: 'vote', from: a.id, to: b.id, term: -1 })) },
      // a length prefix far beyond the limit
      async (lp: ReturnType<typeof lpStream>) => { await lp.unwrap().send(Uint8Array.from([0xff, 0xff, 0xff, 0xff, 0x7f, 1, 2, 3])) }
    ]
    for (const write of garbage) {
      const stream = await a.host.dialProtocol(b.host.peerId, RAFT_PROTOCOL)
      const closed = new Promise<void>(resolve => { stream.addEventListener('close', () => { resolve() }) })
      await write(lpStream(stream))
      await Promise.race([closed, sleep(10_000).then(() => { throw new Error('the bad stream was not aborted') })])
    }
    t.is(b.logs.filter(l => l.event === 'raft.transport.bad-stream').length, garbage.length)
    t.is(b.received.length, 1)

    // The transport's own stream (and the host) are unharmed.
    a.transport.send({ type: 'timeout-now', from: a.id, to: b.id, term: 2 })
    await waitFor('a later message', () => b.received.length === 2)
    t.is(b.received[1]?.term, 2)
  } finally {
    await stopNode(a)
    await stopNode(b)
  }
})

test.serial('sending to a stopped peer neither throws nor hangs, and messages flow once it is back', async t => {
  const psk = newPsk()
  const a = await startNode('/ip4/127.0.3.11/tcp/0', psk)
  let b = await startNode('/ip4/127.0.3.12/tcp/0', psk)
  const bAddr = b.host.getMultiaddrs()[0]!.toString()
  const bId = b.id
  let term = 1
  const heartbeat = (): AppendMessage => ({ type: 'append', from: a.id, to: bId, term: term++, prevLogIndex: 0, prevLogTerm: 0, entries: [], commit: 0 })
  try {
    await connect(a, b)
    a.transport.send(heartbeat())
    await waitFor('the first heartbeat', () => b.received.length === 1)

    await stopNode(b)
    await waitFor('the disconnection to be reported', () => a.disconnected.includes(bId))
    const started = Date.now()
    for (let i = 0; i < 5000; i++) a.transport.send(heartbeat())
    t.true(Date.now() - started < 5000, 'send does not block')
    a.transport.send({ type: 'snapshot', from: a.id, to: bId, term, meta: { index: 1, term: 1, config: { voters: [a.id, bId], learners: [] } }, data: new Uint8Array(1000) })
    await waitFor('the snapshot failure', () => a.snapshotsSent.length === 1, 20_000)
    t.deepEqual(a.snapshotsSent, [{ to: bId, ok: false }])
    await sleep(500)

    // Same key, same address: the peerStore's address for b is right again.
    b = await startNode(bAddr, psk, {}, b.key)
    t.is(b.id, bId)
    const got = await waitFor('heartbeats to reach the new b', () => {
      a.transport.send(heartbeat())
      return b.received.length > 0 ? b.received.length : undefined
    }, 20_000)
    t.true(got > 0)
    const terms = b.received.map(m => m.term)
    t.deepEqual(terms, [...terms].sort((x, y) => x - y), 'in order')
  } finally {
    await stopNode(a)
    await stopNode(b)
  }
})

test.serial('rate of heartbeat-sized messages', async t => {
  const psk = newPsk()
  const a = await startNode('/ip4/127.0.3.13/tcp/0', psk)
  const b = await startNode('/ip4/127.0.3.14/tcp/0', psk)
  try {
    await connect(a, b)
    const total = 100_000
    const window = 2000
    let sent = 0
    const heartbeat = (): AppendMessage => ({ type: 'append', from: a.id, to: b.id, term: 7, prevLogIndex: 123456, prevLogTerm: 7, entries: [], commit: 123450 })
    a.transport.send(heartbeat())
    await waitFor('warm-up', () => b.received.length === 1)
    b.received.length = 0
    const started = process.hrtime.bigint()
    while (b.received.length < total) {
      while (sent < total && sent - b.received.length < window) {
        a.transport.send(heartbeat())
        sent++
      }
      await new Promise(resolve => setImmediate(resolve))
    }
    const seconds = Number(process.hrtime.bigint() - started) / 1e9
    t.is(b.received.length, total)
    t.log(`${total} heartbeats in ${seconds.toFixed(2)} s: ${Math.round(total / seconds)} messages/s (${encode(heartbeat()).byteLength} bytes each)`)
  } finally {
    await stopNode(a)
    await stopNode(b)
  }
})
