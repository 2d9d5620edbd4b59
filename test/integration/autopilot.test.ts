// The self-healing voter set and the leader's graceful exit, with real
// shoald processes: a voter killed for good is replaced; a late peer catches
// up through a snapshot; SIGTERM on the leader hands over with no write
// refused; a peer restarted from its data directory keeps its log, term and
// vote. Peers on 127.0.5.x and 127.0.6.x.
import test from 'ava'
import { join } from 'node:path'
import { LevelStorage } from '../../daemon/raft/level-storage.ts'
import type { KvPairView } from '../../protocol/kv.ts'
import { restartPeer, startCluster, startPeer, stopAll, waitFor, waitForLeader } from '../helpers/cluster.ts'
import type { Peer } from '../helpers/cluster.ts'

test('autopilot replaces a dead voter, and a late peer catches up through a snapshot', async t => {
  t.timeout(180_000)
  const { dir, peers, key } = await startCluster('autopilot', ['127.0.5.2', '127.0.5.3', '127.0.5.4', '127.0.5.5'], ['--snapshot-entries', '50'])
  try {
    const leader = await waitForLeader(peers, 60_000)
    const full = await waitFor('3 voters and a learner', async () => {
      const s = await leader.raft()
      return s.voters.length === 3 && s.learners.length === 1 ? s : undefined
    }, 60_000)
    const victimId = full.voters.map(v => v.id).find(id => id !== full.id) as string
    const victim = peers.find(p => p.name === full.voters.find(v => v.id === victimId)?.name) as Peer
    const learnerId = full.learners[0]?.id
    await victim.kill('SIGKILL')
    const killedAt = Date.now()
    const healed = await waitFor('the dead voter replaced', async () => {
      const s = await leader.raft()
      const ids = s.voters.map(v => v.id)
      return ids.length === 3 && !ids.includes(victimId) ? s : undefined
    }, 60_000)
    t.log(`voters back at 3 ${Date.now() - killedAt} ms after the SIGKILL (grace 5 s)`)
    t.true(healed.voters.some(v => v.id === learnerId), 'the learner took the dead voter\'s place')
    t.false(healed.learners.some(l => l.id === victimId), 'the dead voter is gone from the config')

    // Enough writes that the log is compacted past what a newcomer needs.
    for (let i = 0; i < 120; i++) {
      const r = await leader.call('PUT', `/shoal/v1/kv/snap-${i}`, `v${i}`)
      t.is(r.status, 200)
    }
    const before = await leader.raft()
    t.true(before.snapshotIndex > 0, 'the leader took a snapshot')
    const late = await startPeer({ ip: '127.0.5.6', name: 'late', dataDir: join(dir, 'late'), join: [leader.addr], clusterKey: key })
    peers.push(late)
    const caught = await waitFor('the late peer to catch up', async () => {
      const s = await late.raft()
      return s.appliedIndex >= before.commitIndex ? s : undefined
    }, 60_000)
    t.true(late.events().some(e => e.event === 'raft.snapshot.installed'), 'it installed the leader\'s snapshot')
    t.true(caught.snapshotIndex > 0)
    const got = await late.call('GET', '/shoal/v1/kv/snap-7')
    t.is((got.json as KvPairView).value, 'v7', 'its replica serves what the snapshot held')
    const role = await waitFor('the late peer in the config', async () => {
      const s = await leader.raft()
      return [...s.voters, ...s.learners].some(v => v.name === 'late') || undefined
    })
    t.true(role)
  } finally {
    await stopAll(peers, dir)
  }
})

test('SIGTERM on the leader hands over with no write refused; a restarted peer keeps its log, term and vote', async t => {
  t.timeout(180_000)
  const { dir, peers } = await startCluster('transfer', ['127.0.6.2', '127.0.6.3', '127.0.6.4'])
  try {
    const leader = await waitForLeader(peers, 60_000)
    await waitFor('3 voters', async () => (await leader.raft()).voters.length === 3 || undefined, 60_000)
    const writer = peers.find(p => p !== leader) as Peer
    const errors: string[] = []
    let writes = 0
    let worst = 0
    let stopWriting = false
    const load = (async () => {
      for (let i = 0; !stopWriting; i++) {
        const t0 = Date.now()
        try {
          const r = await writer.call('PUT', `/shoal/v1/kv/t-${i}`, `v${i}`)
          if (r.status !== 200) errors.push(`write ${i}: ${r.status} ${JSON.stringify(r.json)}`)
          else writes++
        } catch (err) {
          errors.push(`write ${i}: ${(err as Error).message}`)
        }
        worst = Math.max(worst, Date.now() - t0)
      }
    })()
    await new Promise(resolve => setTimeout(resolve, 1000))
    await leader.kill('SIGTERM')
    const exited = await leader.exited
    t.is(exited.code, 0, 'the old leader exits cleanly')
    await new Promise(resolve => setTimeout(resolve, 2000))
    stopWriting = true
    await load
    t.deepEqual(errors, [], 'no write was refused')
    t.true(writes > 20, `writes went on (${writes})`)
    t.log(`${writes} writes through ${writer.name}; the slowest took ${worst} ms across the handover`)
    t.true(leader.events().some(e => e.event === 'raft.transfer'), 'the leader handed over')
    t.false(leader.events().some(e => e.event === 'raft.transfer.failed'))
    const next = await waitForLeader(peers.filter(p => p !== leader))
    t.not(next.name, leader.name)

    // Restart safety: bring the old leader back, then SIGKILL a follower and read its disk.
    const i = peers.indexOf(leader)
    peers[i] = await restartPeer(leader, peers.filter(p => p !== leader).map(p => p.addr))
    const newLeader = await waitForLeader(peers)
    const follower = peers.find(p => p !== newLeader && p.running) as Peer
    await waitFor('the follower caught up', async () => {
      const [a, b] = await Promise.all([newLeader.raft(), follower.raft()])
      return b.appliedIndex >= a.commitIndex || undefined
    })
    const seen = await follower.raft()
    await follower.kill('SIGKILL')
    const storage = await LevelStorage.open(join(follower.opts.dataDir, 'raft'))
    const hs = storage.hardState()
    const lastIndex = storage.lastIndex()
    await storage.close()
    t.is(hs.term, seen.term, 'the term is on disk')
    t.true(lastIndex >= seen.commitIndex, 'the log is on disk')
    t.true(hs.commit >= 1)
    if (hs.votedFor !== undefined) t.true(seen.voters.some(v => v.id === hs.votedFor), 'the vote names a voter')
    t.log(`on disk: term ${hs.term}, vote ${hs.votedFor ?? '(none this term)'}, last index ${lastIndex}`)
    const j = peers.indexOf(follower)
    const back = await restartPeer(follower, peers.filter(p => p !== follower).map(p => p.addr))
    peers[j] = back
    const after = await waitFor('the restarted peer to report', async () => await back.raft())
    t.true(after.term >= seen.term, 'the term survived')
    t.true(after.lastIndex >= seen.commitIndex, 'the log survived')
    const value = await back.call('GET', '/shoal/v1/kv/t-3')
    t.is((value.json as KvPairView).value, 'v3', 'its replica serves old writes right after the restart')
  } finally {
    await stopAll(peers, dir)
  }
})
