// The `shoal` CLI run in-process against fake API servers on 127.0.0.1:
// output, failover, error lines and exit codes, where servers and the token
// come from.
import { createServer } from 'node:http'
import type { IncomingMessage, Server, ServerResponse } from 'node:http'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import test from 'ava'
import type { ExecutionContext } from 'ava'
import type { MemberList, MemberView, StatusBody } from '../../protocol/api.ts'
import { ApiClient, HttpStatusError, UnreachableError, parseServerUrl } from '../../cli/client.ts'
import { main } from '../../cli/main.ts'
import { NO_SERVER_MESSAGE } from '../../cli/target.ts'
import { renderTable } from '../../cli/output.ts'
import { humanAge as formatAge } from '../../protocol/k8s-columns.ts'

const NOW = Date.parse('2025-06-01T12:00:00.000Z')
const TOKEN = 's3cret-token'

function iso (msAgo: number): string {
  return new Date(NOW - msAgo).toISOString()
}

function member (name: string, over: Partial<MemberView> = {}): MemberView {
  return {
    name,
    peerId: `12D3Koo-${name}`,
    addrs: [`/ip4/127.0.0.2/tcp/${7946 + name.length}`],
    api: `127.0.0.2:${7070 + name.length}`,
    state: 'alive',
    lastSeen: iso(1000),
    startedAt: iso(4 * 86_400_000),
    version: '0.1.0',
    capacity: { cpu: 4, memory: 8 << 30 },
    incarnation: 1,
    self: false,
    ...over
  }
}

const LIST: MemberList = {
  kind: 'MemberList',
  items: [
    member('zeta', { state: 'suspect', lastSeen: iso(5_000), startedAt: iso(3 * 60_000 + 59_000) }),
    member('alpha', { self: true, lastSeen: iso(0), startedAt: iso(2 * 3_600_000 + 10) }),
    member('mid', { state: 'dead', addrs: [], api: '10.0.0.9:7070', lastSeen: iso(4 * 86_400_000) })
  ]
}

function status (code: number, reason: string, message: string): StatusBody {
  return { kind: 'Status', apiVersion: 'v1', status: 'Failure', message, reason, code }
}

interface Fake {
  url: string
  hostPort: string
  requests: Array<{ path: string, authorization: string | undefined }>
  close: () => Promise<void>
}

type Handler = (req: IncomingMessage, res: ServerResponse) => void

function json (res: ServerResponse, code: number, body: unknown): void {
  res.writeHead(code, { 'content-type': 'application/json' })
  res.end(JSON.stringify(body, null, 2) + '\n')
}

/** The real API's behaviour by default: bearer token, then the member list. */
const apiHandler: Handler = (req, res) => {
  if (req.headers.authorization !== `Bearer ${TOKEN}`) {
    json(res, 401, status(401, 'Unauthorized', 'missing or wrong bearer token (send Authorization: Bearer <token>)'))
  } else if (req.url === '/shoal/v1/members') {
    json(res, 200, LIST)
  } else {
    json(res, 404, status(404, 'NotFound', `no such path: ${req.url ?? ''}`))
  }
}

async function fake (t: ExecutionContext, handler: Handler = apiHandler): Promise<Fake> {
  const requests: Fake['requests'] = []
  const server: Server = createServer((req, res) => {
    requests.push({ path: req.url ?? '', authorization: req.headers.authorization })
    handler(req, res)
  })
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as { port: number }
  const close = async (): Promise<void> => {
    server.closeAllConnections()
    await new Promise<void>(resolve => server.close(() => { resolve() }))
  }
  t.teardown(close)
  return { url: `http://127.0.0.1:${port}`, hostPort: `127.0.0.1:${port}`, requests, close }
}

/** A URL where nothing listens: a port that was just opened and closed. */
async function deadUrl (t: ExecutionContext): Promise<string> {
  const f = await fake(t)
  await f.close()
  return f.url
}

async function tempDir (t: ExecutionContext): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'shoal-cli-test-'))
  t.teardown(async () => { await rm(dir, { recursive: true, force: true }) })
  return dir
}

interface Run { code: number, stdout: string, stderr: string }

/** Runs `shoal` with only the env given, and SHOAL_CONFIG in a fresh temp dir so ~/.config is never read. */
async function shoal (t: ExecutionContext, argv: string[], env: Record<string, string> = {}): Promise<Run> {
  const configPath = env.SHOAL_CONFIG ?? join(await tempDir(t), 'config.json')
  let stdout = ''
  let stderr = ''
  const code = await main(argv, {
    stdout: { write: (s: string) => { stdout += s } },
    stderr: { write: (s: string) => { stderr += s } },
    env: { ...env, SHOAL_CONFIG: configPath },
    now: () => NOW
  })
  return { code, stdout, stderr }
}

/** Exactly one `shoal: ` line on stderr, nothing on stdout, and that line. */
function errorLine (t: ExecutionContext, r: Run): string {
  t.is(r.stdout, '')
  t.regex(r.stderr, /^shoal: [^\n]+\n$/)
  t.notRegex(r.stderr, /\n\s+at /)
  return r.stderr.trimEnd()
}

test('members prints a borderless table sorted by name, marking the answering peer', async t => {
  const api = await fake(t)
  const r = await shoal(t, ['members', '--server', api.hostPort, '--token', TOKEN])
  t.is(r.stderr, '')
  t.is(r.code, 0)
  t.deepEqual(r.stdout.split('\n'), [
    'NAME     STATE     ADDRESS                   API              LAST SEEN   AGE',
    'alpha*   alive     /ip4/127.0.0.2/tcp/7951   127.0.0.2:7075   0s          2h',
    'mid      dead      10.0.0.9:7070             10.0.0.9:7070    4d          4d',
    'zeta     suspect   /ip4/127.0.0.2/tcp/7950   127.0.0.2:7074   5s          3m',
    ''
  ])
  t.deepEqual(api.requests, [{ path: '/shoal/v1/members', authorization: `Bearer ${TOKEN}` }])
})

test('members -o json prints the server\'s MemberList unchanged', async t => {
  const api = await fake(t)
  for (const flags of [['-o', 'json'], ['--output=json'], ['-ojson']]) {
    const r = await shoal(t, ['--server', api.url, '--token', TOKEN, 'members', ...flags])
    t.is(r.code, 0, flags.join(' '))
    t.deepEqual(JSON.parse(r.stdout), LIST)
    t.true(r.stdout.startsWith('{\n  "kind": "MemberList"'), 'pretty-printed')
  }
})

test('members fails over from a dead server and from a 5xx to a live one', async t => {
  const dead = await deadUrl(t)
  const broken = await fake(t, (_req, res) => { json(res, 503, status(503, 'Unavailable', 'shutting down')) })
  const api = await fake(t)
  const r = await shoal(t, ['members', '--server', dead, '--server', broken.hostPort, '--server', api.hostPort, '--token', TOKEN])
  t.is(r.stderr, '')
  t.is(r.code, 0)
  t.regex(r.stdout, /^NAME +STATE/)
  t.regex(r.stdout, /\nzeta +suspect/)
  t.is(broken.requests.length, 1)
  t.is(api.requests.length, 1)
})

test('--verbose tells which server was skipped even when another answered', async t => {
  const dead = await deadUrl(t)
  const api = await fake(t)
  const r = await shoal(t, ['members', '--verbose', '--server', `${dead},${api.hostPort}`, '--token', TOKEN])
  t.is(r.code, 0)
  t.regex(r.stderr, new RegExp(`^shoal: skipped ${dead}: connection refused after \\d+ms \\(ECONNREFUSED`))
  t.regex(r.stdout, /alpha\*/)
})

test('a 4xx is final: the next server is not tried', async t => {
  const first = await fake(t, (req, res) => { json(res, 404, status(404, 'NotFound', `no such path: ${req.url ?? ''}`)) })
  const second = await fake(t)
  const r = await shoal(t, ['members', '--server', first.url, '--server', second.url, '--token', TOKEN])
  t.is(r.code, 1)
  t.is(errorLine(t, r), 'shoal: 404 no such path: /shoal/v1/members')
  t.is(first.requests.length, 1)
  t.is(second.requests.length, 0)
})

test('a 401 says the token was rejected, with the server\'s message, and is not retried', async t => {
  const first = await fake(t)
  const second = await fake(t)
  const r = await shoal(t, ['members', '--server', first.url, '--server', second.url, '--token', 'wrong'])
  t.is(r.code, 1)
  t.is(errorLine(t, r), 'shoal: the server rejected the token (401): missing or wrong bearer token (send Authorization: Bearer <token>)')
  t.deepEqual(first.requests, [{ path: '/shoal/v1/members', authorization: 'Bearer wrong' }])
  t.is(second.requests.length, 0)
})

test('a 4xx without a Status body still gives one line', async t => {
  const api = await fake(t, (_req, res) => { res.writeHead(403, { 'content-type': 'text/plain' }); res.end('go away\nnow\n') })
  const r = await shoal(t, ['members', '--server', api.url, '--token', TOKEN])
  t.is(r.code, 1)
  t.is(errorLine(t, r), 'shoal: 403 go away now')
})

test('no server reachable: one line naming each server and why', async t => {
  const a = await deadUrl(t)
  const b = await fake(t, (_req, res) => { json(res, 500, status(500, 'InternalError', 'internal error; see the peer\'s log')) })
  const r = await shoal(t, ['members', '--token', TOKEN], { SHOAL_SERVER: `${a}, ${b.hostPort}` })
  t.is(r.code, 1)
  t.is(errorLine(t, r), `shoal: cannot reach any server (${a}: connection refused, ${b.url}: 500 internal error; see the peer's log)`)
})

test('--verbose adds the detail of each try under the error line', async t => {
  const a = await deadUrl(t)
  const r = await shoal(t, ['--verbose', 'members', '--server', a, '--token', TOKEN])
  t.is(r.code, 1)
  const lines = r.stderr.trimEnd().split('\n')
  t.is(lines[0], `shoal: cannot reach any server (${a}: connection refused)`)
  t.true(lines.slice(1).every(l => l.startsWith('  ')))
  t.true(lines.includes(`  servers from --server: ${a}`))
  t.regex(r.stderr, new RegExp(`\n  tried ${a}: connection refused after \\d+ms \\(ECONNREFUSED: connect ECONNREFUSED`))
})

test('a server answering 200 without JSON is skipped', async t => {
  const other = await fake(t, (_req, res) => { res.writeHead(200, { 'content-type': 'text/html' }); res.end('<html>hi</html>') })
  const api = await fake(t)
  const r = await shoal(t, ['members', '--server', other.url, '--server', api.url, '--token', TOKEN])
  t.is(r.code, 0)
  t.regex(r.stdout, /alpha\*/)
})

test('a 200 that is not a MemberList is an error, not a crash', async t => {
  const api = await fake(t, (_req, res) => { json(res, 200, { kind: 'Something' }) })
  const r = await shoal(t, ['members', '--server', api.url, '--token', TOKEN])
  t.is(r.code, 1)
  t.is(errorLine(t, r), `shoal: ${api.url} answered with something that is not a MemberList`)
})

test('no server configured: exit 1 with the hint', async t => {
  const r = await shoal(t, ['members', '--token', TOKEN])
  t.is(r.code, 1)
  t.is(errorLine(t, r), `shoal: ${NO_SERVER_MESSAGE}`)
  t.is(NO_SERVER_MESSAGE, 'no server: pass --server, set SHOAL_SERVER, or start shoald on this host')
})

test('no token: exit 1 before any request', async t => {
  const api = await fake(t)
  const r = await shoal(t, ['members', '--server', api.url])
  t.is(r.code, 1)
  t.regex(errorLine(t, r), /^shoal: no token: pass --token, set SHOAL_TOKEN, or put it in .*config\.json/)
  t.is(api.requests.length, 0)
})

test('unknown options and commands are usage errors (exit 2)', async t => {
  const cases: Array<[string[], string]> = [
    [['--bogus'], 'shoal: unknown option \'--bogus\''],
    [['members', '--bogus'], 'shoal: unknown option \'--bogus\''],
    [['nodes'], 'shoal: unknown command \'nodes\''],
    [['members', 'extra'], 'shoal: too many arguments for \'members\'. Expected 0 arguments but got 1.'],
    [['members', '--server'], 'shoal: option \'--server <url>\' argument missing'],
    [['members', '--server', 'not a url', '--token', TOKEN], 'shoal: --server: "not a url" is not host:port or an http(s) URL'],
    [['members', '--server', 'ftp://host:21', '--token', TOKEN], 'shoal: --server: "ftp://host:21": only http:// and https:// are supported']
  ]
  for (const [argv, line] of cases) {
    const r = await shoal(t, argv)
    t.is(r.code, 2, argv.join(' '))
    t.is(errorLine(t, r), line)
  }
})

test('-o yaml is a usage error, and no request is sent', async t => {
  const api = await fake(t)
  const r = await shoal(t, ['members', '-o', 'yaml', '--server', api.url, '--token', TOKEN])
  t.is(r.code, 2)
  t.is(errorLine(t, r), 'shoal: -o must be table or json')
  t.is(api.requests.length, 0)
})

test('the config file gives servers and token when flags and env do not', async t => {
  const dir = await tempDir(t)
  const api = await fake(t)
  const dead = await deadUrl(t)
  const config = join(dir, 'config.json')
  await writeFile(config, JSON.stringify({ servers: [dead, api.url], token: TOKEN }))
  const r = await shoal(t, ['members'], { SHOAL_CONFIG: config })
  t.is(r.stderr, '')
  t.is(r.code, 0)
  t.regex(r.stdout, /^NAME/)
  t.deepEqual(api.requests, [{ path: '/shoal/v1/members', authorization: `Bearer ${TOKEN}` }])

  // --config names another file, ahead of SHOAL_CONFIG.
  const other = join(dir, 'other.json')
  await writeFile(other, JSON.stringify({ servers: [api.hostPort], token: 'from-other' }))
  const r2 = await shoal(t, ['--config', other, 'members'], { SHOAL_CONFIG: config })
  t.is(r2.code, 1)
  t.regex(r2.stderr, /rejected the token/)
  t.is(api.requests[1]?.authorization, 'Bearer from-other')
})

test('flags win over env, env wins over the config file', async t => {
  const dir = await tempDir(t)
  const config = join(dir, 'config.json')
  const fromFile = await fake(t)
  const fromEnv = await fake(t)
  const fromFlag = await fake(t)
  await writeFile(config, JSON.stringify({ servers: [fromFile.url], token: 'file-token' }))

  await shoal(t, ['members'], { SHOAL_CONFIG: config, SHOAL_SERVER: fromEnv.url, SHOAL_TOKEN: 'env-token' })
  t.deepEqual(fromEnv.requests.map(r => r.authorization), ['Bearer env-token'])

  await shoal(t, ['members', '--server', fromFlag.url, '--token', TOKEN], { SHOAL_CONFIG: config, SHOAL_SERVER: fromEnv.url, SHOAL_TOKEN: 'env-token' })
  t.deepEqual(fromFlag.requests.map(r => r.authorization), [`Bearer ${TOKEN}`])

  // Servers from env, token still from the file.
  await shoal(t, ['members'], { SHOAL_CONFIG: config, SHOAL_SERVER: fromEnv.hostPort })
  t.is(fromEnv.requests[1]?.authorization, 'Bearer file-token')
  t.is(fromFile.requests.length, 0)
})

test('a malformed config file is one line naming the file, and never shows its content', async t => {
  const dir = await tempDir(t)
  const config = join(dir, 'config.json')
  await writeFile(config, '{"servers": ["http://127.0.0.1:7070"], "token": "leak-me-not" oops}')
  const r = await shoal(t, ['members'], { SHOAL_CONFIG: config })
  t.is(r.code, 1)
  const line = errorLine(t, r)
  t.true(line.startsWith(`shoal: the config file ${config} is not valid JSON`), line)
  t.false(line.includes('leak-me-not'))

  await writeFile(config, JSON.stringify({ servers: 'http://127.0.0.1:7070', token: 'x' }))
  const r2 = await shoal(t, ['members'], { SHOAL_CONFIG: config })
  t.is(r2.code, 1)
  t.is(errorLine(t, r2), `shoal: the config file ${config} must hold {"servers": ["http://host:port", ...], "token": "..."}`)
})

test('a missing default config file is fine when flags give what is needed, a missing --config file is not', async t => {
  const api = await fake(t)
  const r = await shoal(t, ['members', '--server', api.url, '--token', TOKEN])
  t.is(r.code, 0)
  const missing = join(await tempDir(t), 'nope.json')
  const r2 = await shoal(t, ['--config', missing, 'members', '--server', api.url, '--token', TOKEN])
  t.is(r2.code, 1)
  t.is(errorLine(t, r2), `shoal: cannot read the config file ${missing}: no such file`)
})

test('--help, members --help and --version exit 0 on stdout', async t => {
  const help = await shoal(t, ['--help'])
  t.is(help.code, 0)
  t.is(help.stderr, '')
  t.regex(help.stdout, /^Usage: shoal \[options\] \[command\]/)
  t.regex(help.stdout, /--server <url>/)
  t.regex(help.stdout, /members/)

  const membersHelp = await shoal(t, ['members', '--help'])
  t.is(membersHelp.code, 0)
  t.regex(membersHelp.stdout, /^Usage: shoal members \[options\]/)
  t.regex(membersHelp.stdout, /-o, --output <format>/)
  t.regex(membersHelp.stdout, /a "\*" after it marks the peer that answered/)
  t.regex(membersHelp.stdout, /Global Options:[\s\S]*--token/)

  const version = await shoal(t, ['--version'])
  t.deepEqual(version, { code: 0, stdout: '0.1.0\n', stderr: '' })

  const bare = await shoal(t, [])
  t.is(bare.code, 0)
  t.regex(bare.stdout, /^Usage: shoal/)
})

test('the client gives up on a silent server after its timeout and tries the next', async t => {
  const silent = await fake(t, () => { /* never answers */ })
  const api = await fake(t)
  const skipped: string[] = []
  const client = new ApiClient({ servers: [silent.url, api.url], token: TOKEN, timeoutMs: 200, onSkip: a => { skipped.push(`${a.server}: ${a.reason}`) } })
  const started = Date.now()
  const res = await client.get('/shoal/v1/members')
  t.true(Date.now() - started < 2000)
  t.is(res.server, api.url)
  t.deepEqual(res.body, LIST)
  t.deepEqual(skipped, [`${silent.url}: timed out after 0.2s`])

  const alone = new ApiClient({ servers: [silent.url], token: TOKEN, timeoutMs: 100 })
  const err = await t.throwsAsync(alone.get('/shoal/v1/members'), { instanceOf: UnreachableError })
  t.is(err?.message, `cannot reach any server (${silent.url}: timed out after 0.1s)`)
})

test('the client reports a 4xx as HttpStatusError with the Status fields', async t => {
  const api = await fake(t)
  const client = new ApiClient({ servers: [api.url], token: TOKEN })
  const err = await t.throwsAsync(client.get('/shoal/v1/nothing'), { instanceOf: HttpStatusError })
  t.is(err?.code, 404)
  t.is(err?.reason, 'NotFound')
  t.is(err?.message, 'no such path: /shoal/v1/nothing')
})

test('server URLs: host:port gets http:// on loopback and https:// elsewhere, URLs are kept without a trailing slash', t => {
  t.is(parseServerUrl('127.0.0.2:7070'), 'http://127.0.0.2:7070')
  t.is(parseServerUrl('localhost:7070'), 'http://localhost:7070')
  t.is(parseServerUrl('node-1.lan:7070'), 'https://node-1.lan:7070')
  t.is(parseServerUrl('10.0.0.1:7070'), 'https://10.0.0.1:7070')
  t.is(parseServerUrl('[::1]:7070'), 'http://[::1]:7070')
  t.is(parseServerUrl('http://10.0.0.1:7070'), 'http://10.0.0.1:7070', 'a scheme given is kept')
  t.is(parseServerUrl('http://127.0.0.1:7070/'), 'http://127.0.0.1:7070')
  t.is(parseServerUrl('https://shoal.example.com'), 'https://shoal.example.com')
  t.is(parseServerUrl('https://proxy.example.com/shoal/'), 'https://proxy.example.com/shoal')
  for (const bad of ['localhost', '127.0.0.1:', '127.0.0.1:99999', 'host:0', 'ftp://x:1', 'http://', 'http://u:p@host:1', 'a b:1', '']) {
    t.throws(() => parseServerUrl(bad), undefined, bad)
  }
})

test('ages read like kubectl\'s', t => {
  t.is(formatAge(0), '0s')
  t.is(formatAge(-3000), '0s')
  t.is(formatAge(59_999), '59s')
  t.is(formatAge(60_000), '1m')
  t.is(formatAge(3_599_999), '59m')
  t.is(formatAge(3_600_000), '1h')
  t.is(formatAge(86_399_999), '23h')
  t.is(formatAge(4 * 86_400_000), '4d')
  t.is(formatAge(400 * 86_400_000), '1y')
})

test('table cells cannot carry terminal escapes or line breaks', t => {
  t.is(renderTable(['A', 'B'], [['x\u001b[31m', 'y\nz']]), 'A        B\nx?[31m   y?z\n')
})
