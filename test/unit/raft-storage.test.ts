// One suite for every RaftStorage implementation (memory and LevelDB), and
// what only the durable one must do: come back after a restart as it was.
import test from 'ava'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Entry, HardState } from '../../protocol/raft.ts'
import { LevelStorage } from '../../daemon/raft/level-storage.ts'
import { LogCompactedError, LogOrderError, LogUnavailableError, MemoryStorage } from '../../daemon/raft/storage.ts'
import type { RaftStorage } from '../../daemon/raft/storage.ts'

const entry = (index: number, term: number, text = `e${index}`): Entry =>
  ({ index, term, kind: 'normal', data: new TextEncoder().encode(text) })

interface Writable extends RaftStorage {
  write (entries: Entry[], hardState?: HardState): Promise<void>
}

const dirs: string[] = []
test.after.always(() => { for (const d of dirs) rmSync(d, { recursive: true, force: true }) })

async function openLevel (dir?: string): Promise<{ storage: LevelStorage, dir: string }> {
  const path = dir ?? mkdtempSync(join(tmpdir(), 'shoal-raftlog-'))
  if (dir === undefined) dirs.push(path)
  return { storage: await LevelStorage.open(path), dir: path }
}

const implementations: Array<[string, () => Promise<Writable>]> = [
  ['memory', async () => {
    const m = new MemoryStorage()
    return Object.assign(m, {
      async write (entries: Entry[], hs?: HardState) { m.append(entries); if (hs !== undefined) m.setHardState(hs) }
    })
  }],
  ['leveldb', async () => {
    const { storage } = await openLevel()
    return Object.assign(storage, {
      async write (entries: Entry[], hs?: HardState) { await storage.save({ entries, ...(hs !== undefined ? { hardState: hs } : {}), sync: true }) }
    })
  }]
]

for (const [name, make] of implementations) {
  test(`${name}: an empty log answers for index 0 and nothing past it`, async t => {
    const s = await make()
    t.is(s.firstIndex(), 1)
    t.is(s.lastIndex(), 0)
    t.is(s.term(0), 0)
    t.throws(() => s.term(1), { instanceOf: LogUnavailableError })
    t.deepEqual(s.hardState(), { term: 0, commit: 0 })
  })

  test(`${name}: appends, reads ranges and limits`, async t => {
    const s = await make()
    await s.write([entry(1, 1), entry(2, 1), entry(3, 2)], { term: 2, votedFor: 'a', commit: 2 })
    t.is(s.lastIndex(), 3)
    t.is(s.term(3), 2)
    t.deepEqual(s.entries(1, 4).map(e => e.index), [1, 2, 3])
    t.deepEqual(s.entries(2, 4, 1).map(e => e.index), [2])
    t.deepEqual(s.hardState(), { term: 2, votedFor: 'a', commit: 2 })
    t.throws(() => s.entries(0, 2), { instanceOf: LogCompactedError })
  })

  test(`${name}: a conflicting suffix is overwritten, holes and falling terms are refused`, async t => {
    const s = await make()
    await s.write([entry(1, 1), entry(2, 1), entry(3, 1), entry(4, 1)])
    await s.write([entry(3, 2, 'new3')])
    t.is(s.lastIndex(), 3)
    t.is(new TextDecoder().decode(s.entries(3, 4)[0]!.data), 'new3')
    await t.throwsAsync(s.write([entry(5, 2)]), { instanceOf: LogOrderError })
    await t.throwsAsync(s.write([entry(4, 1)]), { instanceOf: LogOrderError })
    t.is(s.lastIndex(), 3, 'a refused write changes nothing')
  })
}

test('leveldb: a reopened log is the one that was written, truncations included', async t => {
  const { storage, dir } = await openLevel()
  await storage.save({ entries: [entry(1, 1), entry(2, 1), entry(3, 1)], hardState: { term: 1, votedFor: 'b', commit: 1 }, sync: true })
  await storage.save({ entries: [entry(2, 3, 'rewritten')], hardState: { term: 3, commit: 2 }, sync: true })
  await storage.close()
  const { storage: again } = await openLevel(dir)
  t.is(again.lastIndex(), 2)
  t.is(again.term(2), 3)
  t.is(new TextDecoder().decode(again.entries(2, 3)[0]!.data), 'rewritten')
  t.deepEqual(again.hardState(), { term: 3, commit: 2 })
  await again.close()
})

test('leveldb: a thousand entries in one synced batch, then one at a time', async t => {
  const { storage, dir } = await openLevel()
  await storage.save({ entries: Array.from({ length: 1000 }, (_, i) => entry(i + 1, 1)), sync: true })
  for (let i = 1001; i <= 1010; i++) await storage.save({ entries: [entry(i, 2)], sync: true })
  await storage.close()
  const { storage: again } = await openLevel(dir)
  t.is(again.lastIndex(), 1010)
  t.is(again.term(1000), 1)
  t.is(again.term(1010), 2)
  await again.close()
})
