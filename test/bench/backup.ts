// Backup and restore figures, in process (no cluster): a resource store
// filled through StoreHarness with N ConfigMaps (each ~200 bytes of data)
// and N/10 KV keys, then
//   backup:  the state machine's snapshot + the file written (checksummed,
//            synced, renamed), as GET /shoal/v1/backup and the scheduler do;
//   restore: the file read and checked + counted + installed as the Raft
//            snapshot of a fresh LevelDB log + the state machine restored,
//            as `shoald --restore` does before it starts the network.
// Run alone: node test/bench/backup.ts [objects]
// May import: daemon/ (backup, kv, raft, store), protocol/.
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { performance } from 'node:perf_hooks'
import { readBackupFile, writeBackupFile } from '../../daemon/backup/file.ts'
import { installRestore } from '../../daemon/backup/restore.ts'
import { backupSource } from '../../daemon/backup/source.ts'
import { summarize } from '../../protocol/backup.ts'
import { systemClock } from '../../daemon/clock/clock.ts'
import { encodeKvCommand, KV_TAG, KvStore } from '../../daemon/kv/store.ts'
import { createLogger } from '../../daemon/log/log.ts'
import { LevelStorage } from '../../daemon/raft/level-storage.ts'
import { RoutedStateMachine } from '../../daemon/raft/state-machine.ts'
import { ResourceStore } from '../../daemon/store/store.ts'
import { StoreHarness } from '../../daemon/store/testing.ts'
import { STORE_TAG } from '../../daemon/store/types.ts'

export interface BackupFigures {
  objects: number
  kvKeys: number
  /** ms to encode the state and write the file */
  backupMs: number
  /** ms to read, check and install it, and restore the state machine */
  restoreMs: number
  fileBytes: number
}

function machine (kv: KvStore, store: ResourceStore): RoutedStateMachine {
  return new RoutedStateMachine([{ tag: KV_TAG, name: 'kv', machine: kv }, { tag: STORE_TAG, name: 'store', machine: store }])
}

export async function measureBackup (opts: { objects: number }): Promise<BackupFigures> {
  const h = new StoreHarness()
  const payload = 'x'.repeat(200)
  for (let i = 0; i < opts.objects; i++) {
    h.create({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: `cm-${i}`, namespace: 'default', labels: { app: `a${i % 50}` } }, data: { payload, i: String(i) } })
  }
  const kv = new KvStore()
  let index = h.index
  const kvKeys = Math.floor(opts.objects / 10)
  for (let i = 0; i < kvKeys; i++) kv.apply(++index, encodeKvCommand({ op: 'put', key: `bench/${i}`, value: new TextEncoder().encode(payload) }))
  const state = machine(kv, h.store)
  const dir = mkdtempSync(join(tmpdir(), 'shoal-bench-backup-'))
  try {
    const take = backupSource({ raft: { readBarrier: async () => index, appliedIndex: () => index }, termAt: () => 1, state, clusterId: 'bench', peer: 'bench', clock: systemClock })
    const file = join(dir, 'state.backup')
    let t0 = performance.now()
    const { header, body } = await take({ consistent: false })
    const fileBytes = await writeBackupFile(file, header, body)
    const backupMs = performance.now() - t0

    t0 = performance.now()
    const read = await readBackupFile(file)
    const summary = summarize(read.body)
    const storage = await LevelStorage.open(join(dir, 'raft'))
    await installRestore(storage, { path: file, header: read.header, body: read.body, summary }, 'self', createLogger('silent', 'bench'))
    const restored = machine(new KvStore(), new ResourceStore())
    restored.restore(storage.snapshot().data, storage.snapshotMeta().index)
    const restoreMs = performance.now() - t0
    await storage.close()
    if (summary.kinds.ConfigMap !== opts.objects) throw new Error(`restored ${summary.kinds.ConfigMap ?? 0} ConfigMaps, wanted ${opts.objects}`)
    return { objects: opts.objects, kvKeys, backupMs, restoreMs, fileBytes }
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}

if (import.meta.main) {
  const objects = Number(process.argv[2] ?? 100_000)
  const f = await measureBackup({ objects })
  process.stdout.write(`${f.objects} objects + ${f.kvKeys} KV keys: backup ${f.backupMs.toFixed(0)} ms, restore ${f.restoreMs.toFixed(0)} ms, file ${(f.fileBytes / 1024 / 1024).toFixed(1)} MiB\n`)
}
