// Cluster key, API token, identity and flag handling, on 127.0.1.x.
import test from 'ava'
import { spawnSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { statSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { SHOALD, startPeer, stopAll, tempDir, waitFor } from '../helpers/cluster.ts'
import type { Peer } from '../helpers/cluster.ts'

const peers: Peer[] = []
const dir = tempDir('security')
test.after.always(async () => { await stopAll(peers, dir) })

function shoald (args: string[]): { status: number | null, stderr: string, stdout: string } {
  const r = spawnSync(process.execPath, [SHOALD, ...args], { encoding: 'utf8', timeout: 20_000 })
  return { status: r.status, stderr: r.stderr, stdout: r.stdout }
}

test.serial('a peer with another cluster key is never listed, and both sides say why', async t => {
  const first = await startPeer({ ip: '127.0.1.2', name: 'keeper', dataDir: join(dir, 'keeper'), args: ['--log-level', 'debug'] })
  peers.push(first)
  const wrongKey = join(dir, 'wrong.key')
  writeFileSync(wrongKey, `/key/swarm/psk/1.0.0/\n/base16/\n${randomBytes(32).toString('hex')}`)
  const intruder = await startPeer({ ip: '127.0.1.3', name: 'intruder', dataDir: join(dir, 'intruder'), join: [first.addr], clusterKey: wrongKey })
  peers.push(intruder)
  await waitFor('the intruder to log its failed join', () => intruder.events().some(e => e.event === 'join.failed'), 15_000)
  await waitFor('the keeper to log the failed handshake', () => first.events().some(e => e.event === 'handshake.failed'), 30_000)
    .catch((err: Error) => { throw new Error(`${err.message}; abandoned handshakes: ${JSON.stringify(first.events().filter(e => e.event === 'handshake.abandoned').slice(0, 3))}`) })
  const said = intruder.events().find(e => e.event === 'handshake.failed')
  t.regex(String(said?.msg), /^outbound connection to \/ip4\/127\.0\.1\.2\/tcp\/7946 failed its handshake: the other peer has a different cluster key/)
  t.regex(String(first.events().find(e => e.event === 'handshake.failed')?.msg), /^inbound connection from \/ip4\/127\.[\d.]+\/tcp\/\d+ failed its handshake: the other peer has a different cluster key/)
  // Give gossip and retries time to misbehave, then check nothing leaked.
  await new Promise(resolve => setTimeout(resolve, 2500))
  t.deepEqual((await first.members()).map(m => m.name), ['keeper'])
  t.true(intruder.running, 'the intruder keeps retrying rather than crashing')
  await intruder.kill()
})

test.serial('the API needs the bearer token, except /healthz', async t => {
  const first = peers[0]!
  const health = await fetch(`${first.apiUrl}/healthz`)
  t.is(health.status, 200)
  const none = await fetch(`${first.apiUrl}/shoal/v1/members`)
  t.is(none.status, 401)
  const body = await none.json() as { kind: string, message: string }
  t.is(body.kind, 'Status')
  t.regex(body.message, /bearer token/)
  const wrong = await fetch(`${first.apiUrl}/shoal/v1/members`, { headers: { authorization: 'Bearer not-the-token-at-all' } })
  t.is(wrong.status, 401)
  const right = await fetch(`${first.apiUrl}/shoal/v1/members`, { headers: { authorization: `Bearer ${first.token()}` } })
  t.is(right.status, 200)
  const missing = await fetch(`${first.apiUrl}/shoal/v1/nope`, { headers: { authorization: `Bearer ${first.token()}` } })
  t.is(missing.status, 404)
  const post = await fetch(`${first.apiUrl}/shoal/v1/members`, { method: 'POST', body: '{}', headers: { authorization: `Bearer ${first.token()}` } })
  t.is(post.status, 405)
})

test.serial('secrets are made at first start with mode 0600, and a joiner receives the token', async t => {
  const first = peers[0]!
  for (const f of ['peer.key', 'cluster.key', 'admin.token']) {
    t.is(statSync(join(dir, 'keeper', f)).mode & 0o777, 0o600, f)
  }
  const joiner = await startPeer({ ip: '127.0.1.4', name: 'joiner', dataDir: join(dir, 'joiner'), join: [first.addr], clusterKey: join(dir, 'keeper', 'cluster.key') })
  peers.push(joiner)
  await waitFor('the joiner to receive the token', () => joiner.token() === first.token())
  t.is(statSync(join(dir, 'joiner', 'admin.token')).mode & 0o777, 0o600)
  // The token comes in the join handshake; the member list fills from gossip a moment later.
  let names: string[] = []
  await waitFor('the joiner to list both members', async () => {
    names = (await joiner.members()).map(m => m.name).sort()
    return names.length === 2
  }).catch(() => {})
  t.deepEqual(names, ['joiner', 'keeper'])
  await joiner.kill('SIGTERM')
})

test.serial('a restart with the same data directory keeps the peer id', async t => {
  const first = peers[0]!
  const before = (await first.members()).find(m => m.self)!
  await first.kill('SIGTERM')
  const again = await startPeer({ ip: '127.0.1.2', name: 'keeper', dataDir: join(dir, 'keeper') })
  peers.push(again)
  const after = (await again.members()).find(m => m.self)!
  t.is(after.peerId, before.peerId)
  t.is(after.incarnation, before.incarnation + 1)
})

test('bad flags and values exit with status 2 and one clear line', t => {
  const key = join(dir, 'garbage.key')
  writeFileSync(key, 'not a key')
  const cases: Array<[string[], RegExp]> = [
    [['--bogus'], /unknown option '--bogus'/],
    [['--api', 'nope'], /--api: "nope" is not HOST:PORT/],
    [['--listen', 'garbage'], /--listen: "garbage" is not a TCP multiaddr/],
    [['--join', '/ip4/1.2.3.4/udp/5'], /--join: .* is not a TCP multiaddr/],
    [['--heartbeat-interval', 'soon'], /--heartbeat-interval: "soon" is not a duration/],
    [['--probe-after', '10ms'], /probe delay/],
    [['--name', 'Bad_Name'], /--name: "Bad_Name" is not a valid name/],
    [['--log-level', 'loud'], /--log-level: "loud" is not one of/],
    [['--config', join(dir, 'absent.yaml')], /--config: cannot read/],
    [['extra-argument'], /too many arguments/],
    [['--data-dir', join(dir, 'flags1'), '--listen', '/ip4/127.0.1.9/tcp/7946', '--api', '127.0.1.9:7070', '--cluster-key', key], /is not a cluster key/],
    [['--data-dir', join(dir, 'flags2'), '--listen', '/ip4/127.0.1.9/tcp/7946', '--api', '127.0.1.9:7070', '--join', '/ip4/127.0.1.2/tcp/7946'], /--join needs the cluster's key/]
  ]
  for (const [args, message] of cases) {
    const r = shoald(args)
    t.is(r.status, 2, `${args.join(' ')} exits 2 (stderr: ${r.stderr})`)
    t.regex(r.stderr, message, args.join(' '))
    t.is(r.stderr.trim().split('\n').length, 1, `${args.join(' ')} prints one line`)
    t.notRegex(r.stderr, /\n\s+at /, 'no stack trace')
  }
})

test.serial('an address in use is one clear line and exit status 1', t => {
  const r = shoald(['--data-dir', join(dir, 'busy'), '--listen', '/ip4/127.0.1.2/tcp/7946', '--api', '127.0.1.9:7070', '--client-config', 'none'])
  t.is(r.status, 1)
  t.regex(r.stderr, /\nshoald: cannot listen on \/ip4\/127\.0\.1\.2\/tcp\/7946: the address is in use\n$/)
  t.notRegex(r.stderr, /\n\s+at /, 'no stack trace')
  const api = shoald(['--data-dir', join(dir, 'busy2'), '--listen', '/ip4/127.0.1.9/tcp/7946', '--api', '127.0.1.2:7070', '--client-config', 'none'])
  t.is(api.status, 1)
  t.regex(api.stderr, /\nshoald: cannot serve the API on 127\.0\.1\.2:7070: EADDRINUSE\n$/)
})

test('--help and --version exit 0', t => {
  const help = shoald(['--help'])
  t.is(help.status, 0)
  t.regex(help.stdout, /--cluster-key <file>/)
  t.regex(help.stdout, /--heartbeat-interval <duration>/)
  const version = shoald(['--version'])
  t.is(version.status, 0)
  t.regex(version.stdout, /^0\.1\.0/)
})

test.serial('options can come from a YAML config file', async t => {
  const cfg = join(dir, 'shoald.yaml')
  writeFileSync(cfg, [
    `data-dir: ${join(dir, 'fromfile')}`,
    'name: from-file',
    'listen: /ip4/127.0.1.5/tcp/7946',
    'api: 127.0.1.5:7070',
    `client-config: ${join(dir, 'fromfile-client.json')}`,
    'heartbeat-interval: 500ms'
  ].join('\n'))
  const bad = join(dir, 'bad.yaml')
  writeFileSync(bad, 'nmae: typo\n')
  const r = shoald(['--config', bad])
  t.is(r.status, 2)
  t.regex(r.stderr, /unknown option "nmae"/)
  const { Peer } = await import('../helpers/cluster.ts')
  const peer = new Peer({ ip: '127.0.1.5', name: 'from-file', dataDir: join(dir, 'fromfile'), args: ['--config', cfg] })
  peers.push(peer)
  await waitFor('the peer configured by file to start', () => peer.events().some(e => e.event === 'started'))
  const res = await fetch('http://127.0.1.5:7070/shoal/v1/members', { headers: { authorization: `Bearer ${peer.token()}` } })
  t.is(res.status, 200)
})
