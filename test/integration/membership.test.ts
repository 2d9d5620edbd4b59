// Five real shoald processes on 127.0.4.2-6: join, SIGKILL, SIGTERM, and the
// loss of the bootstrap peer.
import test from 'ava'
import { join } from 'node:path'
import { startCluster, startPeer, stopAll, waitFor } from '../helpers/cluster.ts'
import type { Peer } from '../helpers/cluster.ts'

const IPS = ['127.0.4.2', '127.0.4.3', '127.0.4.4', '127.0.4.5', '127.0.4.6']
let peers: Peer[] = []
let dir = ''
let key = ''

test.before(async () => {
  ({ peers, dir, key } = await startCluster('five', IPS))
})

test.after.always(async () => { await stopAll(peers, dir) })

async function everyoneSees (viewers: Peer[], name: string, state: string, timeoutMs = 20_000): Promise<void> {
  await waitFor(`${viewers.map(p => p.name).join(',')} to see ${name} ${state}`, async () => {
    const views = await Promise.all(viewers.map(async p => (await p.states())[name]))
    return views.every(s => s === state)
  }, timeoutMs)
}

test.serial('every peer lists five alive members', async t => {
  await waitFor('five alive members on every peer', async () => {
    const lists = await Promise.all(peers.map(async p => await p.members()))
    return lists.every(l => l.length === 5 && l.every(m => m.state === 'alive'))
  }, 20_000)
  const view = await peers[2]!.members()
  t.deepEqual(view.map(m => m.name).sort(), ['p1', 'p2', 'p3', 'p4', 'p5'])
  t.true(view.find(m => m.name === 'p3')!.self)
  const p1 = view.find(m => m.name === 'p1')!
  t.deepEqual(p1.addrs, ['/ip4/127.0.4.2/tcp/7946'])
  t.is(p1.api, '127.0.4.2:7070')
  t.true(p1.capacity.cpu >= 1 && p1.capacity.memory > 0)
  t.is(p1.version, '0.1.0')
  t.false(Number.isNaN(Date.parse(p1.lastSeen)))
})

test.serial('a SIGKILLed peer is marked dead by every other peer', async t => {
  const victim = peers[4]!
  await victim.kill('SIGKILL')
  await everyoneSees(peers.slice(0, 4), 'p5', 'dead')
  for (const p of peers.slice(0, 4)) {
    t.true(p.events().some(e => e.event === 'member.dead' && e.member === 'p5'), `${p.name} logged the death`)
  }
})

test.serial('a SIGTERMed peer leaves and is marked left, not dead', async t => {
  const leaver = peers[3]!
  await leaver.kill('SIGTERM')
  t.is((await leaver.exited).code, 0)
  await everyoneSees(peers.slice(0, 3), 'p4', 'left', 10_000)
  for (const p of peers.slice(0, 3)) {
    t.false(p.events().some(e => e.event === 'member.dead' && e.member === 'p4'), `${p.name} never thought p4 dead`)
  }
})

test.serial('after the bootstrap peer dies, a restarted peer joining through a survivor sees everyone', async t => {
  const oldId = (await peers[1]!.members()).find(m => m.name === 'p4')!.peerId
  await peers[0]!.kill('SIGKILL')
  await everyoneSees([peers[1]!, peers[2]!], 'p1', 'dead')
  const restarted = await startPeer({ ip: IPS[3]!, name: 'p4', dataDir: join(dir, 'p4'), join: [peers[1]!.addr], clusterKey: key })
  peers[3] = restarted
  await waitFor('the restarted p4 to see the whole cluster', async () => {
    const s = await restarted.states()
    return s.p1 === 'dead' && s.p2 === 'alive' && s.p3 === 'alive' && s.p4 === 'alive' && s.p5 === 'dead'
  }, 20_000)
  await everyoneSees([peers[1]!, peers[2]!], 'p4', 'alive')
  const me = (await restarted.members()).find(m => m.self)!
  t.is(me.peerId, oldId, 'same data directory, same peer id')
  t.is(me.incarnation, 2)
})
