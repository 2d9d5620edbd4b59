// `shoal kv` and `shoal cluster status` run in-process against the real API
// server on 127.0.0.1, with a KvStore behind a FakeReplicator: output, exit
// statuses, CAS conflicts, usage errors, and which failures are retried on
// another server.
import { Readable } from 'node:stream'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import test from 'ava'
import type { ExecutionContext } from 'ava'
import type { RaftStatusView } from '../../protocol/api.ts'
import type { Member } from '../../daemon/membership/table.ts'
import { ApiClient } from '../../cli/client.ts'
import { main } from '../../cli/main.ts'
import type { ClusterStatusView } from '../../cli/output.ts'
import { startTestApi } from '../helpers/fake-replicator.ts'
import type { TestApi } from '../helpers/fake-replicator.ts'

interface Run { code: number, stdout: string, stderr: string }

/** Runs `shoal` against one test API, or against several servers that share `token`. */
async function shoal (t: ExecutionContext, api: TestApi | { servers: string[], token: string }, argv: string[], stdin?: string): Promise<Run> {
  const dir = await mkdtemp(join(tmpdir(), 'shoal-cli-kv-'))
  t.teardown(async () => { await rm(dir, { recursive: true, force: true }) })
  const servers = 'servers' in api ? api.servers : [api.url]
  const token = api.token
  let stdout = ''
  let stderr = ''
  const code = await main(['--server', servers.join(','), '--token', token, ...argv], {
    stdout: { write: (s: string) => { stdout += s } },
    stderr: { write: (s: string) => { stderr += s } },
    env: { SHOAL_CONFIG: join(dir, 'config.json') },
    ...(stdin !== undefined ? { stdin: Readable.from([Buffer.from(stdin)]) } : {})
  })
  return { code, stdout, stderr }
}

/** Exactly one `shoal: ` line on stderr and nothing on stdout; returns the line. */
function errorLine (t: ExecutionContext, r: Run): string {
  t.is(r.stdout, '')
  t.regex(r.stderr, /^shoal: [^\n]+\n$/)
  return r.stderr.trimEnd()
}

function member (name: string, state: Member['state'], api: string): Member {
  return {
    record: { name, peerId: `peer-${name}`, addrs: [], api, version: '0.1.0', capacity: { cpu: 1, memory: 1 }, startedAt: 0, incarnation: 1, seq: 1, heartbeatMs: 1000 },
    state,
    lastSeen: 0,
    stateSince: 0
  }
}

test('kv put, get, ls and del', async t => {
  const api = await startTestApi(t)
  const put = await shoal(t, api, ['kv', 'put', 'app/name', 'shoal'])
  t.deepEqual(put, { code: 0, stdout: '"app/name" written at index 1\n', stderr: '' })
  t.is((await shoal(t, api, ['kv', 'put', 'app/mode', 'fast'])).code, 0)
  t.is((await shoal(t, api, ['kv', 'put', 'other', 'x'.repeat(60)])).code, 0)
  t.truthy(api.kv.get('app/name'), 'the key went through percent-encoded and came out whole')

  t.deepEqual(await shoal(t, api, ['kv', 'get', 'app/name']), { code: 0, stdout: 'shoal\n', stderr: '' })
  const json = await shoal(t, api, ['kv', 'get', 'app/name', '-o', 'json'])
  t.deepEqual(JSON.parse(json.stdout), { key: 'app/name', value: 'shoal', createIndex: 1, modifyIndex: 1 })
  t.is((await shoal(t, api, ['kv', 'get', 'app/name', '--consistent'])).code, 0)
  t.is(api.raft.readBarriers, 1)

  const ls = await shoal(t, api, ['kv', 'ls'])
  t.is(ls.code, 0)
  t.deepEqual(ls.stdout.split('\n'), [
    'KEY        MODIFY-INDEX   CREATE-INDEX   VALUE',
    'app/mode   2              2              fast',
    'app/name   1              1              shoal',
    `other      3              3              ${'x'.repeat(39)}…`,
    ''
  ])
  const lsApp = await shoal(t, api, ['kv', 'ls', 'app/', '-o', 'json'])
  t.deepEqual(JSON.parse(lsApp.stdout).items.map((i: { key: string }) => i.key), ['app/mode', 'app/name'])

  t.deepEqual(await shoal(t, api, ['kv', 'del', 'app/mode']), { code: 0, stdout: '"app/mode" deleted at index 4\n', stderr: '' })
  const missing = await shoal(t, api, ['kv', 'get', 'app/mode'])
  t.is(missing.code, 1)
  t.is(errorLine(t, missing), 'shoal: no such key: "app/mode"')
})

test('kv put - reads the value from stdin, bytes and all', async t => {
  const api = await startTestApi(t)
  const r = await shoal(t, api, ['kv', 'put', 'motd', '-'], 'line one\nline two\n')
  t.is(r.code, 0)
  t.is(new TextDecoder().decode(api.kv.get('motd')?.value), 'line one\nline two\n')
  t.is((await shoal(t, api, ['kv', 'get', 'motd'])).stdout, 'line one\nline two\n', 'no second newline')
})

test('a binary value needs -o json with kv get, and shows its size in kv ls', async t => {
  const api = await startTestApi(t)
  await fetch(`${api.url}/shoal/v1/kv/bin`, { method: 'PUT', body: new Uint8Array([0xff, 0, 1]), headers: { authorization: `Bearer ${api.token}` } })
  const r = await shoal(t, api, ['kv', 'get', 'bin'])
  t.is(r.code, 1)
  t.is(errorLine(t, r), 'shoal: the value of "bin" is not UTF-8 text; -o json shows it in base64')
  t.is(JSON.parse((await shoal(t, api, ['kv', 'get', 'bin', '-o', 'json'])).stdout).encoding, 'base64')
  t.regex((await shoal(t, api, ['kv', 'ls'])).stdout, /\nbin +1 +1 +<binary, 3 bytes>\n/)
})

test('a failed --cas prints the server\'s message and exits 1', async t => {
  const api = await startTestApi(t)
  t.is((await shoal(t, api, ['kv', 'put', 'lock', 'a', '--cas', '0'])).code, 0)
  const again = await shoal(t, api, ['kv', 'put', 'lock', 'b', '--cas', '0'])
  t.is(again.code, 1)
  t.is(errorLine(t, again), 'shoal: compare-and-set failed: key "lock" has modifyIndex 1, not 0')
  const del = await shoal(t, api, ['kv', 'del', 'lock', '--cas', '7'])
  t.is(del.code, 1)
  t.is(errorLine(t, del), 'shoal: compare-and-set failed: key "lock" has modifyIndex 1, not 7')
  t.is((await shoal(t, api, ['kv', 'del', 'lock', '--cas', '1'])).code, 0)
})

test('bad input is one line and exit 2, before any request', async t => {
  const api = await startTestApi(t)
  const cases: Array<[string[], string]> = [
    [['kv', 'put', 'k', 'v', '--cas', 'x'], 'shoal: --cas must be a non-negative integer (a modifyIndex, or 0 for "only if absent"), not "x"'],
    [['kv', 'put', 'k', 'v', '--cas', '-1'], 'shoal: --cas must be a non-negative integer (a modifyIndex, or 0 for "only if absent"), not "-1"'],
    [['kv', 'del', 'k', '--cas', '1.5'], 'shoal: --cas must be a non-negative integer (a modifyIndex, or 0 for "only if absent"), not "1.5"'],
    [['kv', 'get'], 'shoal: missing required argument \'key\''],
    [['kv', 'put', 'k'], 'shoal: missing required argument \'value\''],
    [['kv', 'get', ''], 'shoal: the key is empty'],
    [['kv', 'get', '..'], 'shoal: the key may not be ".."'],
    [['kv', 'get', 'k', '-o', 'table'], 'shoal: -o must be text or json'],
    [['kv', 'ls', '-o', 'yaml'], 'shoal: -o must be table or json'],
    [['cluster', 'status', '-o', 'text'], 'shoal: -o must be table or json']
  ]
  for (const [argv, line] of cases) {
    const r = await shoal(t, api, argv)
    t.is(r.code, 2, argv.join(' '))
    t.is(errorLine(t, r), line)
  }
  t.is(api.raft.proposals, 0)
})

test('a key over 1 KiB is the server\'s 400, one line, exit 1', async t => {
  const api = await startTestApi(t)
  const r = await shoal(t, api, ['kv', 'put', 'k'.repeat(1025), 'v'])
  t.is(r.code, 1)
  t.is(errorLine(t, r), 'shoal: 400 the key is 1025 bytes long; the most is 1024 bytes of UTF-8')
})

test('a write moves on from a refused connection and from a 503, not from a 504', async t => {
  const good = await startTestApi(t)
  const noLeader = await startTestApi(t, { token: good.token })
  noLeader.raft.failure = { kind: 'no-leader' }
  const dead = await startTestApi(t, { token: good.token })
  dead.server.closeAllConnections()
  await new Promise<void>(resolve => dead.server.close(() => { resolve() }))

  const r = await shoal(t, { servers: [dead.url, noLeader.url, good.url], token: good.token }, ['--verbose', 'kv', 'put', 'k', 'v'])
  t.is(r.code, 0)
  t.is(r.stdout, '"k" written at index 1\n')
  t.regex(r.stderr, /skipped http:\/\/127\.0\.0\.1:\d+: connection refused/)
  t.regex(r.stderr, /skipped http:\/\/127\.0\.0\.1:\d+: 503 no leader is elected yet/)
  t.is(noLeader.raft.proposals, 1)
  t.truthy(good.kv.get('k'))

  const timeout = await startTestApi(t, { token: good.token })
  timeout.raft.failure = { kind: 'timeout' }
  const other = await startTestApi(t, { token: good.token })
  const r2 = await shoal(t, { servers: [timeout.url, other.url], token: good.token }, ['kv', 'put', 'k', 'v'])
  t.is(r2.code, 1)
  t.regex(errorLine(t, r2), /^shoal: http:\/\/127\.0\.0\.1:\d+: 504 .*the write may or may not have been applied$/)
  t.is(timeout.raft.proposals, 1)
  t.is(other.raft.proposals, 0, 'not retried elsewhere')
})

test('a 503 naming the leader sends the write there', async t => {
  const leader = await startTestApi(t)
  const follower = await startTestApi(t, { token: leader.token })
  follower.raft.failure = { kind: 'not-leader', leaderApi: leader.hostPort }
  const r = await shoal(t, { servers: [follower.url], token: leader.token }, ['kv', 'put', 'k', 'v'])
  t.is(r.code, 0)
  t.truthy(leader.kv.get('k'))
  t.is(follower.kv.get('k'), undefined)
})

test('a GET is retried after Retry-After while there is no leader', async t => {
  const api = await startTestApi(t)
  await shoal(t, api, ['kv', 'put', 'k', 'v'])
  api.raft.failure = { kind: 'no-leader', retryAfterSeconds: 1 }
  setTimeout(() => { api.raft.failure = { kind: 'none' } }, 300)
  const client = new ApiClient({ servers: [api.url], token: api.token })
  const res = await client.get('/shoal/v1/kv/k?consistent')
  t.is((res.body as { value: string }).value, 'v')
  t.is(api.raft.readBarriers, 2)
})

function followerStatus (leader: TestApi): RaftStatusView {
  return {
    kind: 'RaftStatus',
    id: 'peer-b',
    name: 'b',
    role: 'follower',
    term: 4,
    leader: { id: 'peer-a', name: 'a', api: leader.hostPort },
    commitIndex: 9,
    appliedIndex: 9,
    lastIndex: 9,
    snapshotIndex: 0,
    voters: [{ id: 'peer-a', name: 'a' }, { id: 'peer-b', name: 'b' }, { id: 'peer-c', name: 'c' }],
    learners: [{ id: 'peer-d', name: 'd' }]
  }
}

function leaderStatus (leader: TestApi): RaftStatusView {
  return {
    kind: 'RaftStatus',
    id: 'peer-a',
    name: 'a',
    role: 'leader',
    term: 4,
    leader: { id: 'peer-a', name: 'a', api: leader.hostPort },
    commitIndex: 10,
    appliedIndex: 10,
    lastIndex: 10,
    snapshotIndex: 0,
    voters: [
      { id: 'peer-a', name: 'a', matchIndex: 10, lag: 0 },
      { id: 'peer-b', name: 'b', matchIndex: 9, lag: 1 },
      { id: 'peer-c', name: 'c', matchIndex: 4 }
    ],
    learners: [{ id: 'peer-d', name: 'd', matchIndex: 10, lag: 0 }]
  }
}

function members (apis: Record<string, string>): () => Member[] {
  return () => [
    member('a', 'alive', apis.a ?? ''),
    member('b', 'alive', apis.b ?? ''),
    member('c', 'suspect', apis.c ?? ''),
    member('d', 'alive', apis.d ?? ''),
    member('e', 'left', apis.e ?? '')
  ]
}

test('cluster status from the leader: a table and json', async t => {
  const apis = { a: '127.0.0.1:7070', b: '127.0.0.1:1', c: '127.0.0.1:2', d: '127.0.0.1:3', e: '127.0.0.1:4' }
  const api = await startTestApi(t, { members: members(apis) })
  api.raft.statusOverride = leaderStatus(api)
  const r = await shoal(t, api, ['cluster', 'status'])
  t.is(r.stderr, '')
  t.is(r.code, 0)
  t.deepEqual(r.stdout.split('\n'), [
    `Leader:         a (${api.hostPort})`,
    'Term:           4',
    'Commit index:   10',
    '',
    'NAME   ROLE      STATE     MATCH   LAG   API',
    `a*     leader    alive     10      0     ${apis.a}`,
    'b      voter     alive     9       1     127.0.0.1:1',
    'c      voter     suspect   4       6     127.0.0.1:2',
    'd      learner   alive     10      0     127.0.0.1:3',
    'e      none      left      -       -     127.0.0.1:4',
    ''
  ])
  const json = JSON.parse((await shoal(t, api, ['cluster', 'status', '-o', 'json'])).stdout) as ClusterStatusView
  t.is(json.kind, 'ClusterStatus')
  t.is(json.term, 4)
  t.is(json.commitIndex, 10)
  t.true(json.fromLeader)
  t.deepEqual(json.members.map(m => [m.name, m.role, m.state, m.matchIndex, m.lag]), [
    ['a', 'leader', 'alive', 10, 0],
    ['b', 'voter', 'alive', 9, 1],
    ['c', 'voter', 'suspect', 4, 6],
    ['d', 'learner', 'alive', 10, 0],
    ['e', 'none', 'left', undefined, undefined]
  ])
})

test('cluster status from a follower asks the leader for match and lag, and shows "-" if it cannot', async t => {
  const leader = await startTestApi(t)
  leader.raft.statusOverride = leaderStatus(leader)
  const follower = await startTestApi(t, { members: members({ a: leader.hostPort }), token: leader.token })
  follower.raft.statusOverride = followerStatus(leader)
  const r = await shoal(t, follower, ['cluster', 'status'])
  t.is(r.code, 0)
  t.regex(r.stdout, /^Leader: +a \(127\.0\.0\.1:\d+\)\nTerm: +4\nCommit index: +10\n/)
  t.regex(r.stdout, /\nb +voter +alive +9 +1 /)
  t.regex(r.stdout, /\nc +voter +suspect +4 +6 /)
  t.regex(r.stdout, /\ne +none +left +- +- /)

  // The leader's API is unreachable: the follower's view, without match and lag.
  const dead = followerStatus(leader)
  follower.raft.statusOverride = { ...dead, leader: { id: 'peer-a', name: 'a', api: '127.0.0.1:1' } }
  const r2 = await shoal(t, follower, ['cluster', 'status', '-o', 'json'])
  t.is(r2.code, 0)
  const view = JSON.parse(r2.stdout) as ClusterStatusView
  t.false(view.fromLeader)
  t.is(view.commitIndex, 9)
  t.deepEqual(view.members.find(m => m.name === 'b'), { name: 'b', id: 'peer-b', role: 'voter', state: 'alive', api: '', self: false })
  t.is(view.members.find(m => m.name === 'a')?.role, 'leader')
})
