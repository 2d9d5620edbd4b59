// Disaster recovery with real shoald processes: `shoal backup` of a
// three-peer cluster restored with `shoald --restore` into a new one-peer
// cluster (objects, uids and KV keys kept; a new cluster key and id); a
// corrupted or truncated backup refused with nothing written; scheduled
// snapshots keeping exactly --snapshot-retain files; and quorum loss: two of
// three voters killed for good, `--recover` on the survivor brings back
// every acknowledged write, and two new peers join and become voters.
// Peers on 127.0.20.x and 127.0.21.x.
import test from 'ava'
import { spawn } from 'node:child_process'
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import type { KObject } from '../../protocol/k8s.ts'
import type { KvPairView } from '../../protocol/kv.ts'
import { readBackupFile } from '../../daemon/backup/file.ts'
import { api, SHOAL, SHOALD, startCluster, startPeer, stopAll, tempDir, waitFor, waitForLeader } from '../helpers/cluster.ts'
import type { Peer } from '../helpers/cluster.ts'

/** Runs a program to its end (bounded), with its output. */
async function run (args: string[], boundMs = 60_000): Promise<{ code: number | null, stdout: string, stderr: string }> {
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] })
  let stdout = ''
  let stderr = ''
  child.stdout.setEncoding('utf8').on('data', (s: string) => { stdout += s })
  child.stderr.setEncoding('utf8').on('data', (s: string) => { stderr += s })
  const timer = setTimeout(() => { child.kill('SIGKILL') }, boundMs)
  const code = await new Promise<number | null>(resolve => child.once('exit', c => { resolve(c) }))
  clearTimeout(timer)
  return { code, stdout, stderr }
}

const shoal = async (peer: Peer, ...args: string[]): Promise<{ code: number | null, stdout: string, stderr: string }> =>
  await run([SHOAL, '--server', peer.apiUrl, '--token', peer.token(), ...args])

const configMap = (name: string, data: Record<string, string>): KObject => ({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name, namespace: 'default', labels: { set: 'dr' } }, data })

const deployment: KObject = {
  apiVersion: 'apps/v1',
  kind: 'Deployment',
  metadata: { name: 'web', namespace: 'default', labels: { app: 'web' } },
  spec: {
    replicas: 1,
    selector: { matchLabels: { app: 'web' } },
    template: { metadata: { labels: { app: 'web' } }, spec: { containers: [{ name: 'web', image: 'busybox', command: ['sleep', '3600'] }] } }
  }
}

/** What must survive a restore: identity and content, not the resourceVersion or status. */
function essence (o: KObject): unknown {
  const { resourceVersion: _rv, managedFields: _mf, ...meta } = o.metadata as Record<string, unknown>
  return { kind: o.kind, metadata: meta, data: (o as Record<string, unknown>).data, spec: (o as Record<string, unknown>).spec }
}

test('backup of a three-peer cluster, refused when damaged, restored into a new cluster', async t => {
  t.timeout(240_000)
  const { dir, peers } = await startCluster('backup', ['127.0.20.2', '127.0.20.3', '127.0.20.4'])
  let restored: Peer | undefined
  try {
    const leader = await waitForLeader(peers, 60_000)
    const follower = peers.find(p => p !== leader) as Peer
    await waitFor('the default namespace', async () => (await api(follower, 'GET', '/api/v1/namespaces/default')).status === 200 || undefined, 30_000)
    const originals: KObject[] = []
    for (let i = 0; i < 3; i++) {
      const r = await api(follower, 'POST', '/api/v1/namespaces/default/configmaps', configMap(`cm-${i}`, { n: String(i), text: 'x'.repeat(100 * i) }))
      t.is(r.status, 201, JSON.stringify(r.body))
      originals.push(r.body as KObject)
    }
    const d = await api(follower, 'POST', '/apis/apps/v1/namespaces/default/deployments', deployment)
    t.is(d.status, 201, JSON.stringify(d.body))
    // Once its controller has annotated it, its metadata and spec stay put.
    originals.push(await waitFor('the Deployment\'s first revision', async () => {
      const r = await api(follower, 'GET', '/apis/apps/v1/namespaces/default/deployments/web')
      return (r.body as KObject).metadata.annotations?.['deployment.kubernetes.io/revision'] === '1' ? r.body as KObject : undefined
    }, 30_000))
    const keys: Record<string, string> = {}
    for (let i = 0; i < 20; i++) {
      keys[`dr/key-${i}`] = `value-${i}`
      const r = await follower.call('PUT', `/shoal/v1/kv/dr%2Fkey-${i}`, `value-${i}`)
      t.is(r.status, 200)
    }

    // The backup, from a follower: ReadIndex through the leader, then its replica.
    const file = join(dir, 'cluster.backup')
    const b = await shoal(follower, 'backup', '-o', file)
    t.is(b.code, 0, b.stderr)
    t.regex(b.stdout, /^backup of cluster [0-9a-f]{32} at index \d+ \(term \d+\) from p\d written to /)
    t.false(readdirSync(dir).some(n => n.includes('.tmp-')), 'no temporary file is left')
    const read = await readBackupFile(file)
    const status = await follower.raft()
    t.true(read.header.index >= status.commitIndex - 50 && read.header.index <= status.commitIndex, 'the backup is at a recent committed index')

    const viewer = readFileSync(join(follower.opts.dataDir, 'viewer.token'), 'utf8').trim()
    const denied = await fetch(`${follower.apiUrl}/shoal/v1/backup`, { headers: { authorization: `Bearer ${viewer}` } })
    t.is(denied.status, 403, 'a backup holds every Secret: the read-only token may not take one')

    const v = await run([SHOAL, 'backup', 'verify', file])
    t.is(v.code, 0, v.stderr)
    t.regex(v.stdout, /: ok\n/)
    t.regex(v.stdout, /\n {2}Deployment +1\n/)
    const allConfigMaps = (await api(follower, 'GET', '/api/v1/configmaps')).body.items as KObject[]
    t.regex(v.stdout, new RegExp(`\\n {2}ConfigMap +${allConfigMaps.length}\\n`))
    t.regex(v.stdout, /\nkv keys: +20\n/)
    t.log(v.stdout)

    // A flipped byte and a truncation: refused by verify and by --restore, with one line and nothing written.
    const bytes = readFileSync(file)
    const flipped = Buffer.from(bytes)
    const at = Math.floor(flipped.length / 2)
    flipped[at] = (flipped[at] as number) ^ 0x10
    writeFileSync(join(dir, 'flipped.backup'), flipped)
    writeFileSync(join(dir, 'truncated.backup'), bytes.subarray(0, Math.floor(bytes.length * 0.7)))
    for (const [name, why] of [['flipped.backup', /corrupted/], ['truncated.backup', /truncated/]] as const) {
      const bad = join(dir, name)
      const check = await run([SHOAL, 'backup', 'verify', bad])
      t.is(check.code, 1)
      t.regex(check.stderr, why)
      t.is(check.stderr.trim().split('\n').length, 1, check.stderr)
      const target = join(dir, `restore-${name}`)
      const r = await run([SHOALD, '--restore', bad, '--data-dir', target, '--name', 'r0', '--api', '127.0.21.9:7070', '--listen', '/ip4/127.0.21.9/tcp/7946', '--client-config', 'none', '--runtime', 'process'])
      t.is(r.code, 1, r.stderr)
      t.regex(r.stderr, why)
      t.is(r.stderr.trim().split('\n').length, 1, r.stderr)
      t.false(existsSync(target), 'nothing is written')
    }

    // The restore: a new cluster of one, at the backup's index.
    const restoredDir = join(dir, 'restored')
    restored = await startPeer({ ip: '127.0.21.2', name: 'r1', dataDir: restoredDir, args: ['--restore', file] })
    const r1 = restored
    t.true(r1.events().some(e => e.event === 'backup.restored'))
    await waitForLeader([r1], 30_000)
    const raft = await r1.raft()
    t.deepEqual(raft.voters.map(x => x.name), ['r1'])
    t.true(raft.snapshotIndex === read.header.index, 'the log starts from the backup\'s snapshot')
    for (const o of originals) {
      const path = o.kind === 'Deployment' ? `/apis/apps/v1/namespaces/default/deployments/${o.metadata.name ?? ''}` : `/api/v1/namespaces/default/configmaps/${o.metadata.name ?? ''}`
      const got = await api(r1, 'GET', path)
      t.is(got.status, 200)
      t.deepEqual(essence(got.body as KObject), essence(o), `${o.kind} ${o.metadata.name ?? ''} as it was`)
    }
    for (const [key, value] of Object.entries(keys)) {
      const got = await r1.call('GET', `/shoal/v1/kv/${encodeURIComponent(key)}?consistent`)
      t.is((got.json as KvPairView).value, value)
    }
    // The machines of the old cluster are not here: their Nodes go not-Ready, their pods come to r1.
    await waitFor('the old Nodes not Ready', async () => {
      const nodes = (await api(r1, 'GET', '/api/v1/nodes')).body.items as KObject[]
      const ready = (n: KObject): string | undefined => ((n.status as any)?.conditions ?? []).find((c: any) => c.type === 'Ready')?.status
      return nodes.filter(n => n.metadata.name !== 'r1').every(n => ready(n) === 'Unknown') && nodes.length === 4 ? true : undefined
    }, 30_000)
    const moved = await waitFor('the web pod running on r1', async () => {
      const pods = ((await api(r1, 'GET', '/api/v1/namespaces/default/pods')).body.items as KObject[]).filter(p => p.metadata.deletionTimestamp === undefined)
      return pods.length === 1 && (pods[0]?.spec as any)?.nodeName === 'r1' && (pods[0]?.status as any)?.phase === 'Running' ? pods[0] : undefined
    }, 90_000)
    t.truthy(moved)
    // New keys, a new token, and writes that go on after the backup's index.
    t.not(readFileSync(join(restoredDir, 'cluster.key'), 'utf8'), readFileSync(join(dir, 'p1', 'cluster.key'), 'utf8'))
    t.not(r1.token(), leader.token())
    const w = await r1.call('PUT', '/shoal/v1/kv/after-restore', 'yes')
    t.is(w.status, 200)
    t.true((w.json as { index: number }).index > read.header.index)
    const again = join(dir, 'restored.backup')
    const b2 = await shoal(r1, 'backup', '-o', again)
    t.is(b2.code, 0, b2.stderr)
    t.not((await readBackupFile(again)).header.clusterId, read.header.clusterId, 'the restored cluster has a new id')
    // Into a data directory that is not empty: refused.
    const busy = await run([SHOALD, '--restore', file, '--data-dir', restoredDir, '--client-config', 'none'])
    t.is(busy.code, 1)
    t.regex(busy.stderr, /not empty/)
  } finally {
    await stopAll(restored !== undefined ? [...peers, restored] : peers, dir)
  }
})

test('scheduled snapshots keep exactly --snapshot-retain files', async t => {
  t.timeout(120_000)
  const dir = tempDir('backup-scheduled')
  const peer = await startPeer({ ip: '127.0.20.10', name: 's1', dataDir: join(dir, 's1'), args: ['--snapshot-interval', '1s', '--snapshot-retain', '2'] })
  try {
    await waitForLeader([peer], 30_000)
    await peer.call('PUT', '/shoal/v1/kv/scheduled', 'yes')
    await waitFor('four scheduled snapshots', () => peer.events().filter(e => e.event === 'backup.scheduled').length >= 4 || undefined, 30_000)
    // A graceful stop lets a write under way finish and prune.
    await peer.kill('SIGTERM')
    const backups = join(dir, 's1', 'backups')
    const files = readdirSync(backups).sort()
    t.is(files.length, 2, files.join(', '))
    for (const f of files) {
      t.regex(f, /^shoal-\d{8}T\d{9}Z-i\d+\.backup$/)
      const read = await readBackupFile(join(backups, f))
      t.is(read.header.peer, 's1')
    }
  } finally {
    await stopAll([peer], dir)
  }
})

test('quorum loss: --recover on the survivor keeps every acknowledged write; new peers join and vote', async t => {
  t.timeout(240_000)
  const { dir, peers, key } = await startCluster('recover', ['127.0.21.10', '127.0.21.11', '127.0.21.12'])
  const all = [...peers]
  try {
    const leader = await waitForLeader(peers, 60_000)
    await waitFor('3 voters', async () => (await leader.raft()).voters.length === 3 || undefined, 60_000)
    const survivor = peers.find(p => p !== leader) as Peer
    let last = 0
    const acknowledged: string[] = []
    for (let i = 0; i < 60; i++) {
      const r = await peers[i % 3]!.call('PUT', `/shoal/v1/kv/ack-${i}`, `v${i}`)
      t.is(r.status, 200)
      acknowledged.push(`ack-${i}`)
      last = Math.max(last, (r.json as { index: number }).index)
    }
    // The survivor holds them (a majority did; we pick a survivor that is in it).
    await waitFor('the survivor to hold every write', async () => (await survivor.raft()).appliedIndex >= last || undefined, 30_000)
    for (const p of peers) if (p !== survivor) await p.kill('SIGKILL')
    const stuck = await survivor.call('PUT', '/shoal/v1/kv/no-quorum', 'x', 15_000)
    t.true(stuck.status === 503 || stuck.status === 504, `without quorum a write fails (${stuck.status})`)
    await survivor.kill('SIGTERM')

    const recovered = await startPeer({ ...survivor.opts, join: [], args: [...(survivor.opts.args ?? []), '--recover'] })
    all.push(recovered)
    t.true(recovered.events().some(e => e.event === 'raft.recovered'))
    await waitForLeader([recovered], 30_000)
    const alone = await recovered.raft()
    t.deepEqual(alone.voters.map(v => v.name), [survivor.name])
    for (let i = 0; i < acknowledged.length; i++) {
      const got = await recovered.call('GET', `/shoal/v1/kv/${acknowledged[i] ?? ''}?consistent`)
      t.is(got.status, 200)
      t.is((got.json as KvPairView).value, `v${i}`)
    }
    const w = await recovered.call('PUT', '/shoal/v1/kv/after-recover', 'yes')
    t.is(w.status, 200)

    // Two new peers join the survivor, and autopilot makes them voters.
    for (const [ip, name] of [['127.0.21.13', 'n1'], ['127.0.21.14', 'n2']] as const) {
      all.push(await startPeer({ ip, name, dataDir: join(dir, name), join: [recovered.addr], clusterKey: key }))
    }
    const grown = await waitFor('3 voters again', async () => {
      const s = await recovered.raft()
      return s.voters.length === 3 ? s : undefined
    }, 90_000)
    t.deepEqual(grown.voters.map(v => v.name).sort(), [survivor.name, 'n1', 'n2'].sort())
    const n1 = all.find(p => p.name === 'n1') as Peer
    const got = await n1.call('GET', '/shoal/v1/kv/ack-7?consistent')
    t.is((got.json as KvPairView).value, 'v7', 'a new peer serves the recovered state')
  } finally {
    await stopAll(all, dir)
  }
})
