// The real `shoal` binary against real peers on 127.0.2.x: the config file
// that shoald writes, the table, and failover when a peer is down.
import test from 'ava'
import { spawnSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { SHOAL, startCluster, stopAll, waitFor } from '../helpers/cluster.ts'
import type { Peer } from '../helpers/cluster.ts'

let peers: Peer[] = []
let dir = ''

test.before(async () => {
  ({ peers, dir } = await startCluster('cli', ['127.0.2.2', '127.0.2.3']))
  await waitFor('both peers to see each other', async () => (await peers[1]!.members()).filter(m => m.state === 'alive').length === 2)
})
test.after.always(async () => { await stopAll(peers, dir) })

function shoal (args: string[], env: Record<string, string>): { status: number | null, stdout: string, stderr: string } {
  const r = spawnSync(process.execPath, [SHOAL, ...args], { encoding: 'utf8', timeout: 20_000, env: { PATH: process.env.PATH ?? '', HOME: dir, ...env } })
  return { status: r.status, stdout: r.stdout, stderr: r.stderr }
}

test.serial('shoald writes a client config that shoal uses with no flags', t => {
  const config = join(dir, 'p1-client.json')
  const written = JSON.parse(readFileSync(config, 'utf8')) as { servers: string[], token: string }
  t.deepEqual(written.servers, ['http://127.0.2.2:7070'])
  t.is(written.token, peers[0]!.token())
  const r = shoal(['members'], { SHOAL_CONFIG: config })
  t.is(r.status, 0, r.stderr)
  const [header, ...rows] = r.stdout.trim().split('\n')
  t.regex(header!, /^NAME\s+STATE\s+ADDRESS\s+API\s+LAST SEEN\s+AGE$/)
  t.is(rows.length, 2)
  t.regex(rows.find(l => l.startsWith('p1'))!, /^p1\*\s+alive\s+\/ip4\/127\.0\.2\.2\/tcp\/7946\s+127\.0\.2\.2:7070/)
  t.regex(rows.find(l => l.startsWith('p2'))!, /^p2\s+alive\s+\/ip4\/127\.0\.2\.3\/tcp\/7946/)
})

test.serial('shoal moves on to the next server when the first is down', async t => {
  const token = peers[0]!.token()
  await peers[0]!.kill('SIGKILL')
  const r = shoal(['--server', '127.0.2.2:7070', '--server', '127.0.2.3:7070', 'members', '-o', 'json'], { SHOAL_TOKEN: token, SHOAL_CONFIG: join(dir, 'absent.json') })
  t.is(r.status, 0, r.stderr)
  const list = JSON.parse(r.stdout) as { items: Array<{ name: string, self: boolean }> }
  t.is(list.items.find(m => m.self)?.name, 'p2')
  const none = shoal(['--server', '127.0.2.2:7070', 'members'], { SHOAL_TOKEN: token, SHOAL_CONFIG: join(dir, 'absent.json') })
  t.is(none.status, 1)
  t.regex(none.stderr, /^shoal: cannot reach any server \(http:\/\/127\.0\.2\.2:7070: connection refused\)\n$/)
  const wrong = shoal(['--server', '127.0.2.3:7070', 'members'], { SHOAL_TOKEN: 'wrong-token-wrong-token', SHOAL_CONFIG: join(dir, 'absent.json') })
  t.is(wrong.status, 1)
  t.regex(wrong.stderr, /^shoal: the server rejected the token \(401\)/)
})
