// The data directory is private whatever modes it had: one real shoald on
// 127.0.114.10, started on a directory that exists with mode 0755, and again
// after every file in it was loosened to 0644.
import test from 'ava'
import { chmodSync, mkdirSync, readdirSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { startPeer, stopAll, tempDir } from '../helpers/cluster.ts'
import type { Peer } from '../helpers/cluster.ts'

const IP = '127.0.114.10'
const SECRETS = ['peer.key', 'cluster.key', 'admin.token', 'viewer.token']

const modeOf = (path: string): string => (statSync(path).mode & 0o777).toString(8).padStart(4, '0')

/** Every mode under the data directory that matters: the directory, the Raft log and its files, the keys and tokens. */
function modes (dataDir: string): Record<string, string> {
  const out: Record<string, string> = { '.': modeOf(dataDir), raft: modeOf(join(dataDir, 'raft')) }
  for (const f of readdirSync(join(dataDir, 'raft'))) out[`raft/${f}`] = modeOf(join(dataDir, 'raft', f))
  for (const f of SECRETS) out[f] = modeOf(join(dataDir, f))
  return out
}

function expected (dataDir: string): Record<string, string> {
  const out: Record<string, string> = { '.': '0700', raft: '0700' }
  for (const f of readdirSync(join(dataDir, 'raft'))) out[`raft/${f}`] = '0600'
  for (const f of SECRETS) out[f] = '0600'
  return out
}

test('the data directory ends 0700 and the Raft files and secrets 0600, even when they existed with looser modes', async t => {
  const dir = tempDir('modes')
  const dataDir = join(dir, 'p1')
  mkdirSync(dataDir, { mode: 0o755 })
  chmodSync(dataDir, 0o755)
  let peer: Peer | undefined
  t.teardown(async () => { await stopAll(peer === undefined ? [] : [peer], dir) })

  peer = await startPeer({ ip: IP, name: 'p1', dataDir })
  t.deepEqual(modes(dataDir), expected(dataDir), 'a directory that existed with 0755')
  await peer.kill('SIGTERM')

  // As an older version, a copy or a careless chmod might leave them.
  chmodSync(dataDir, 0o755)
  chmodSync(join(dataDir, 'raft'), 0o755)
  for (const f of readdirSync(join(dataDir, 'raft'))) chmodSync(join(dataDir, 'raft', f), 0o644)
  for (const f of SECRETS) chmodSync(join(dataDir, f), 0o644)
  peer = await startPeer({ ip: IP, name: 'p1', dataDir })
  t.deepEqual(modes(dataDir), expected(dataDir), 'after every mode was loosened')
})
