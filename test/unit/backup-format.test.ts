// The backup file format, scheduled snapshots' naming and pruning, and the
// log surgery of --restore and --recover on a real LevelDB log (no network).
import test from 'ava'
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { decode, encode } from '../../protocol/codec.ts'
import { backupFileBytes, backupPieces, BackupFormatError, BACKUP_FORMAT, CHUNK_BYTES, clusterIdOf, readBackup, summarize } from '../../protocol/backup.ts'
import type { BackupHeader } from '../../protocol/backup.ts'
import { readBackupFile, writeBackupFile } from '../../daemon/backup/file.ts'
import { BackupScheduler, backupFileName } from '../../daemon/backup/scheduler.ts'
import { backupSource } from '../../daemon/backup/source.ts'
import { forceSingleVoter, RecoverError } from '../../daemon/backup/recover.ts'
import { installRestore, prepareRestore } from '../../daemon/backup/restore.ts'
import { encodeKvCommand, KV_TAG, KvStore } from '../../daemon/kv/store.ts'
import { LevelStorage } from '../../daemon/raft/level-storage.ts'
import { RoutedStateMachine } from '../../daemon/raft/state-machine.ts'
import { StoreHarness, deployment } from '../../daemon/store/testing.ts'
import { STORE_TAG } from '../../daemon/store/types.ts'
import { createLogger } from '../../daemon/log/log.ts'
import { FakeClock } from '../helpers/fake-clock.ts'

const log = createLogger('silent', 'test')

function tmp (t: { teardown: (fn: () => void) => void }): string {
  const dir = mkdtempSync(join(tmpdir(), 'shoal-backup-unit-'))
  t.teardown(() => { rmSync(dir, { recursive: true, force: true }) })
  return dir
}

/** A routed state machine with a few objects and KV keys. */
function populated (objects = 3, keys = 2): { state: RoutedStateMachine, index: number } {
  const h = new StoreHarness()
  for (let i = 0; i < objects; i++) h.create({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: `cm-${i}`, namespace: 'default' }, data: { i: String(i) } })
  h.create(deployment('web'))
  const kv = new KvStore()
  let index = h.index
  for (let i = 0; i < keys; i++) kv.apply(++index, encodeKvCommand({ op: 'put', key: `k${i}`, value: new TextEncoder().encode(`v${i}`) }))
  const state = new RoutedStateMachine([{ tag: KV_TAG, name: 'kv', machine: kv }, { tag: STORE_TAG, name: 'store', machine: h.store }])
  return { state, index }
}

function header (body: Uint8Array, extra: Partial<BackupHeader> = {}): BackupHeader {
  return { format: BACKUP_FORMAT, clusterId: 'c1', index: 42, term: 3, createdAt: '2025-01-01T00:00:00.000Z', version: '0.1.0', peer: 'p1', bodyBytes: body.length, ...extra }
}

async function * once (bytes: Uint8Array): AsyncGenerator<Uint8Array> { yield bytes }

function whole (h: BackupHeader, body: Uint8Array): Buffer {
  return Buffer.concat([...backupPieces(h, body)])
}

test('a backup reads back byte for byte, across many frames and any chunking', async t => {
  const body = new Uint8Array(CHUNK_BYTES * 2 + 12345).map((_, i) => i * 7)
  const h = header(body)
  const file = whole(h, body)
  t.is(file.length, backupFileBytes(encode(h).length, body.length), 'the size is known before writing')
  const read = await readBackup(once(file))
  t.deepEqual(read.header, h)
  t.deepEqual(Buffer.from(read.body), Buffer.from(body))
  // The same file delivered in odd small pieces.
  async function * dribble (): AsyncGenerator<Uint8Array> { for (let i = 0; i < file.length; i += 997) yield file.subarray(i, i + 997) }
  const again = await readBackup(dribble())
  t.is(again.sha256, read.sha256)
  t.deepEqual(Buffer.from(again.body), Buffer.from(body))
  const checkedOnly = await readBackup(once(file), { keepBody: false })
  t.is(checkedOnly.body.length, 0)
  t.is(checkedOnly.fileBytes, file.length)
})

test('every flipped byte and every truncation is refused', async t => {
  const { state } = populated()
  const body = state.snapshot()
  const file = whole(header(body), body)
  for (let i = 0; i < file.length; i += Math.max(1, Math.floor(file.length / 97))) {
    const bad = Buffer.from(file)
    bad[i] = (bad[i] as number) ^ 0x01
    await t.throwsAsync(readBackup(once(bad)), { instanceOf: BackupFormatError }, `byte ${i} flipped`)
  }
  for (const cut of [0, 5, 12, 40, file.length - 33, file.length - 1]) {
    const e = await t.throwsAsync(readBackup(once(file.subarray(0, cut))), { instanceOf: BackupFormatError })
    t.regex(e?.message ?? '', cut < file.length - 40 ? /truncated/ : /truncated|corrupted/, `cut at ${cut}`)
  }
  await t.throwsAsync(readBackup(once(Buffer.concat([file, Buffer.from([0])]))), { message: /bytes follow the trailer/ })
  await t.throwsAsync(readBackup(once(Buffer.from('PK\x03\x04 not a backup at all'))), { message: /not a Shoal backup/ })
  const future = whole(header(body, { format: 99 }), body)
  await t.throwsAsync(readBackup(once(future)), { message: /format 99/ })
})

test('summarize counts objects per kind and KV keys; a body that is no snapshot is refused', t => {
  const { state } = populated(3, 2)
  const s = summarize(state.snapshot())
  t.is(s.kinds.ConfigMap, 3)
  t.is(s.kinds.Deployment, 1)
  t.true((s.kinds.Namespace ?? 0) >= 1)
  t.is(s.kvKeys, 2)
  t.throws(() => summarize(encode({ hello: 'world' })), { instanceOf: BackupFormatError })
})

test('clusterIdOf depends on the key only', t => {
  const a = clusterIdOf(new Uint8Array(32).fill(1))
  t.is(a, clusterIdOf(new Uint8Array(32).fill(1)))
  t.not(a, clusterIdOf(new Uint8Array(32).fill(2)))
  t.regex(a, /^[0-9a-f]{32}$/)
})

test('a consistent backup takes the state at the applied index after the read barrier', async t => {
  const { state, index } = populated()
  const calls: string[] = []
  const take = backupSource({
    raft: { readBarrier: async () => { calls.push('barrier'); return index }, appliedIndex: () => { calls.push('applied'); return index } },
    termAt: i => i === index ? 7 : 0,
    state,
    clusterId: 'abc',
    peer: 'p1',
    clock: new FakeClock(Date.parse('2025-02-03T04:05:06.007Z'))
  })
  const b = await take({ consistent: true })
  t.deepEqual(calls, ['barrier', 'applied'])
  t.like(b.header, { index, term: 7, clusterId: 'abc', peer: 'p1', createdAt: '2025-02-03T04:05:06.007Z', bodyBytes: b.body.length })
  await take({ consistent: false })
  t.deepEqual(calls, ['barrier', 'applied', 'applied'], 'a local backup skips the barrier')
})

test('scheduled snapshots: names sort by time, only the newest N are kept, other files are left', async t => {
  const dir = tmp(t)
  t.is(backupFileName('2025-01-02T03:04:05.006Z', 17), 'shoal-20250102T030405006Z-i17.backup')
  const { state, index } = populated()
  const clock = new FakeClock(Date.parse('2025-01-01T00:00:00.000Z'))
  const take = backupSource({ raft: { readBarrier: async () => index, appliedIndex: () => index }, termAt: () => 1, state, clusterId: 'c', peer: 'p', clock })
  const s = new BackupScheduler({ dataDir: dir, intervalMs: 1000, retain: 2, take, clock, log })
  const written: string[] = []
  for (let i = 0; i < 4; i++) {
    written.push(await s.runOnce())
    clock.advance(1500)
  }
  writeFileSync(join(s.dir, 'notes.txt'), 'mine')
  const left = readdirSync(s.dir).sort()
  t.deepEqual(left, [...written.slice(2).map(p => p.split('/').at(-1) as string), 'notes.txt'].sort())
  const read = await readBackupFile(written[3] as string)
  t.is(read.header.index, index)
})

test('--restore: a checked backup becomes the Raft snapshot of a fresh log, this peer the only voter', async t => {
  const dir = tmp(t)
  const { state, index } = populated()
  const body = state.snapshot()
  const file = join(dir, 'b.backup')
  await writeBackupFile(file, header(body, { index, term: 5 }), body)

  // Refusals write nothing.
  const bad = join(dir, 'bad.backup')
  const bytes = readFileSync(file)
  bytes[bytes.length - 100] = (bytes[bytes.length - 100] as number) ^ 0xff
  writeFileSync(bad, bytes)
  const fresh = join(dir, 'fresh')
  await t.throwsAsync(prepareRestore(bad, fresh), { message: /--restore: .*corrupted/ })
  await t.throwsAsync(prepareRestore(join(dir, 'missing'), fresh), { message: /no such file/ })
  t.throws(() => readdirSync(fresh), { code: 'ENOENT' })
  await t.throwsAsync(prepareRestore(file, dir), { message: /not empty/ })

  const checked = await prepareRestore(file, fresh)
  const storage = await LevelStorage.open(join(fresh, 'raft'))
  await installRestore(storage, checked, 'self', log)
  await storage.close()
  const reopened = await LevelStorage.open(join(fresh, 'raft'))
  t.teardown(async () => { await reopened.close() })
  t.deepEqual(reopened.snapshotMeta(), { index, term: 5, config: { voters: ['self'], learners: [] } })
  t.is(reopened.lastIndex(), index, 'the log goes on at index + 1')
  t.deepEqual(reopened.hardState(), { term: 5, commit: index })
  const copy = populated(0, 0).state
  copy.restore(reopened.snapshot().data, index)
  // Equal but for each part's own appliedIndex (the restore sets both to the snapshot's).
  const parts = (bytes: Uint8Array): unknown => {
    const routed = decode(bytes, (v): v is { parts: Record<string, Uint8Array> } => true, 'routed')
    return Object.fromEntries(Object.entries(routed.parts).map(([name, part]) => {
      const { appliedIndex: _, ...rest } = decode(part, (v): v is Record<string, unknown> => true, name)
      return [name, rest]
    }))
  }
  t.deepEqual(parts(copy.snapshot()), parts(body), 'the state is the backup\'s')
})

test('--recover keeps the whole log and appends a committed sole-voter config in a new term', async t => {
  const dir = tmp(t)
  const storage = await LevelStorage.open(join(dir, 'raft'))
  t.teardown(async () => { await storage.close() })
  await t.throwsAsync(forceSingleVoter(storage, 'a', dir, log), { instanceOf: RecoverError })
  const cfg = encode({ voters: ['a', 'b', 'c'], learners: [] })
  await storage.save({
    entries: [
      { term: 1, index: 1, kind: 'config', data: cfg },
      { term: 2, index: 2, kind: 'normal', data: new Uint8Array([1]) },
      { term: 3, index: 3, kind: 'normal', data: new Uint8Array([2]) }
    ],
    hardState: { term: 4, votedFor: 'b', commit: 2 },
    sync: true
  })
  const at = await forceSingleVoter(storage, 'a', dir, log)
  t.deepEqual(at, { index: 4, term: 5 })
  t.is(storage.lastIndex(), 4)
  t.is(storage.term(3), 3, 'the uncommitted tail is kept')
  const e = storage.entries(4, 5)[0]
  t.is(e?.kind, 'config')
  t.deepEqual(decode(e?.data ?? new Uint8Array(), (v): v is unknown => true, 'config'), { voters: ['a'], learners: [] })
  t.deepEqual(storage.hardState(), { term: 5, commit: 4 })
})
