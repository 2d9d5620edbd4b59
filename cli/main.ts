// The `shoal` program: its commands and flags, where the servers and the
// token come from, and how every failure becomes one `shoal: ` line and an
// exit status (0 ok, 1 failed, 2 bad usage). Runs in-process for the tests.
import { readFile } from 'node:fs/promises'
import { Command, CommanderError, Option } from 'commander'
import { API_PREFIX } from '../protocol/api.ts'
import { VERSION } from '../protocol/version.ts'
import type { MemberList, RaftStatusView } from '../protocol/api.ts'
import type { KvListView, KvPairView, KvWriteView } from '../protocol/kv.ts'
import { defaultClientConfigPath, isClientConfig } from '../protocol/client-config.ts'
import { ApiClient, HttpStatusError, OutcomeUnknownError, UnreachableError, parseServerUrl } from './client.ts'
import type { Attempt, Method } from './client.ts'
import { OUTPUT_FORMATS, clusterStatus, renderClusterStatus, renderJson, renderKvList, renderMembers } from './output.ts'
import type { OutputFormat } from './output.ts'
import { addK8sCommands } from './k8s.ts'
import { addBackupCommands } from './backup.ts'

export interface Io {
  stdout: { write: (text: string) => unknown }
  stderr: { write: (text: string) => unknown }
  env: NodeJS.ProcessEnv
  /** the clock that ages are computed from; Date.now unless a test fixes it */
  now?: () => number
  /** where `shoal kv put KEY -` reads the value; process.stdin unless a test gives one */
  stdin?: AsyncIterable<Uint8Array | string>
  /** ends watches (`get -w`, `rollout status`) when aborted; a test's bound, where a user has Ctrl-C */
  signal?: AbortSignal
}

export const EXIT_OK = 0
export const EXIT_FAILED = 1
export const EXIT_USAGE = 2

export const NO_SERVER_MESSAGE = 'no server: pass --server, set SHOAL_SERVER, or start shoald on this host'

/** Ends the run with one `shoal: <message>` line; `details` are printed under it with --verbose. */
export class CliError extends Error {
  override name = 'CliError'
  readonly exitCode: number
  readonly details: string[]
  constructor (message: string, exitCode: number = EXIT_FAILED, details: string[] = []) {
    super(message)
    this.exitCode = exitCode
    this.details = details
  }
}

export interface GlobalOptions {
  server?: string[]
  token?: string
  config?: string
  verbose?: boolean
}


function collect (value: string, previous: string[] | undefined): string[] {
  return [...(previous ?? []), value]
}

/** Servers as a list, accepting commas everywhere so that `--server a,b` and SHOAL_SERVER=a,b agree. */
function splitServers (values: string[]): string[] {
  return values.flatMap(v => v.split(',')).map(v => v.trim()).filter(v => v !== '')
}

function nonEmpty (v: string | undefined): string | undefined {
  return v !== undefined && v !== '' ? v : undefined
}

/** The file's servers and token; undefined when it does not exist and nobody asked for it by name. */
async function readClientConfig (path: string, required: boolean): Promise<{ servers: string[], token: string } | undefined> {
  let text: string
  try {
    text = await readFile(path, 'utf8')
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code
    if (code === 'ENOENT' && !required) return undefined
    throw new CliError(`cannot read the config file ${path}: ${code === 'ENOENT' ? 'no such file' : code ?? (err as Error).message}`)
  }
  let doc: unknown
  try {
    doc = JSON.parse(text)
  } catch (err) {
    // Only the position: JSON.parse quotes the text around the error, and this file holds the admin token.
    const where = /at position \d+(?: \(line \d+ column \d+\))?/.exec((err as Error).message)
    throw new CliError(`the config file ${path} is not valid JSON${where !== null ? ` (${where[0]})` : ''}`)
  }
  if (!isClientConfig(doc)) throw new CliError(`the config file ${path} must hold {"servers": ["http://host:port", ...], "token": "..."}`)
  return { servers: doc.servers, token: doc.token }
}

/** --server, else SHOAL_SERVER, else the config file; --token, else SHOAL_TOKEN, else the config file. */
export async function resolveTarget (opts: GlobalOptions, env: NodeJS.ProcessEnv, trace: string[]): Promise<{ servers: string[], token: string }> {
  const parse = (values: string[], from: string, exitCode: number): string[] => values.map(v => {
    try {
      return parseServerUrl(v)
    } catch (err) {
      throw new CliError(`${from}: ${(err as Error).message}`, exitCode)
    }
  })

  let servers: string[] | undefined
  if (opts.server !== undefined && splitServers(opts.server).length > 0) {
    servers = parse(splitServers(opts.server), '--server', EXIT_USAGE)
    trace.push(`servers from --server: ${servers.join(', ')}`)
  } else if (nonEmpty(env.SHOAL_SERVER) !== undefined && splitServers([env.SHOAL_SERVER ?? '']).length > 0) {
    servers = parse(splitServers([env.SHOAL_SERVER ?? '']), 'SHOAL_SERVER', EXIT_USAGE)
    trace.push(`servers from SHOAL_SERVER: ${servers.join(', ')}`)
  }
  let token = nonEmpty(opts.token)
  if (token !== undefined) trace.push('token from --token')
  else {
    token = nonEmpty(env.SHOAL_TOKEN)
    if (token !== undefined) trace.push('token from SHOAL_TOKEN')
  }

  const path = opts.config ?? defaultClientConfigPath(env)
  // A file named with --config is always read, so a typo in its name is not silently ignored.
  if (opts.config !== undefined || servers === undefined || token === undefined) {
    const file = await readClientConfig(path, opts.config !== undefined)
    if (file === undefined) trace.push(`config file ${path}: not found`)
    else {
      trace.push(`config file ${path}: ${file.servers.length} server(s)${file.token !== '' ? ', a token' : ', no token'}`)
      if (servers === undefined && file.servers.length > 0) servers = parse(file.servers, `the config file ${path}`, EXIT_FAILED)
      if (token === undefined && file.token !== '') token = file.token
    }
  }
  if (servers === undefined || servers.length === 0) throw new CliError(NO_SERVER_MESSAGE, EXIT_FAILED, trace)
  if (token === undefined) throw new CliError(`no token: pass --token, set SHOAL_TOKEN, or put it in ${path} (shoald writes it there at first start)`, EXIT_FAILED, trace)
  return { servers, token }
}

export function describeAttempt (a: Attempt): string {
  return `${a.server}: ${a.reason} after ${a.elapsedMs}ms (${a.detail})`
}

interface RequestInit {
  method?: Method
  body?: Uint8Array
  /** ask these servers (already parsed) instead of the configured ones */
  servers?: string[]
  /** 4xx codes whose message is printed alone (404 "no such key", 409 a failed CAS) */
  bare?: number[]
}

/** The API's answer, or a CliError carrying what was tried. */
async function request (opts: GlobalOptions, io: Io, path: string, trace: string[], init: RequestInit = {}): Promise<{ server: string, body: unknown }> {
  const target = await resolveTarget(opts, io.env, trace)
  const skipped: Attempt[] = []
  const client = new ApiClient({ ...target, ...(init.servers !== undefined ? { servers: init.servers } : {}), onSkip: a => { skipped.push(a) } })
  try {
    const res = await client.request(init.method ?? 'GET', path, init.body)
    // A skipped server is worth knowing about even when another one answered.
    if (opts.verbose === true) for (const a of skipped) io.stderr.write(`shoal: skipped ${describeAttempt(a)}\n`)
    return res
  } catch (err) {
    const tried = [...trace, ...skipped.map(a => `tried ${describeAttempt(a)}`)]
    if (err instanceof UnreachableError) throw new CliError(err.message, EXIT_FAILED, tried)
    if (err instanceof OutcomeUnknownError) throw new CliError(err.message, EXIT_FAILED, [...tried, ...err.attempts.slice(-1).map(a => `failed ${describeAttempt(a)}`)])
    if (err instanceof HttpStatusError) {
      tried.push(`${err.server} answered ${err.code} ${err.reason}`)
      if (err.code === 401) throw new CliError(`the server rejected the token (401): ${err.message}`, EXIT_FAILED, tried)
      if (init.bare?.includes(err.code) === true) throw new CliError(err.message, EXIT_FAILED, tried)
      throw new CliError(`${err.code} ${err.message}`, EXIT_FAILED, tried)
    }
    throw err
  }
}

function isMemberList (v: unknown): v is MemberList {
  if (typeof v !== 'object' || v === null) return false
  const l = v as Record<string, unknown>
  return l.kind === 'MemberList' && Array.isArray(l.items) &&
    l.items.every(m => typeof m === 'object' && m !== null && typeof (m as Record<string, unknown>).name === 'string')
}

function isRecord (v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v)
}

function isKvPair (v: unknown): v is KvPairView {
  return isRecord(v) && typeof v.key === 'string' && typeof v.value === 'string' && typeof v.modifyIndex === 'number' && typeof v.createIndex === 'number'
}

function isKvList (v: unknown): v is KvListView {
  return isRecord(v) && v.kind === 'KvList' && Array.isArray(v.items) && v.items.every(isKvPair)
}

function isKvWrite (v: unknown): v is KvWriteView {
  return isRecord(v) && typeof v.index === 'number'
}

function isRaftStatus (v: unknown): v is RaftStatusView {
  return isRecord(v) && v.kind === 'RaftStatus' && typeof v.term === 'number' && typeof v.commitIndex === 'number' &&
    Array.isArray(v.voters) && Array.isArray(v.learners)
}

function outputFormat (value: string, allowed: readonly string[]): string {
  if (!allowed.includes(value)) throw new CliError(`-o must be ${allowed.slice(0, -1).join(', ')} or ${allowed.at(-1) ?? ''}`, EXIT_USAGE)
  return value
}

/** A key as a path segment. `.` and `..` would be folded away by URL parsing, so they are refused here as the server refuses them. */
function keyPath (key: string): string {
  if (key === '') throw new CliError('the key is empty', EXIT_USAGE)
  if (key === '.' || key === '..') throw new CliError(`the key may not be "${key}"`, EXIT_USAGE)
  return `${API_PREFIX}/kv/${encodeURIComponent(key)}`
}

function casQuery (cas: string | undefined): string {
  if (cas === undefined) return ''
  const n = /^\d{1,16}$/.test(cas) ? Number(cas) : NaN
  if (!Number.isSafeInteger(n)) throw new CliError(`--cas must be a non-negative integer (a modifyIndex, or 0 for "only if absent"), not "${cas}"`, EXIT_USAGE)
  return `?cas=${n}`
}

async function readAll (input: AsyncIterable<Uint8Array | string>): Promise<Uint8Array> {
  const chunks: Buffer[] = []
  for await (const chunk of input) chunks.push(typeof chunk === 'string' ? Buffer.from(chunk, 'utf8') : Buffer.from(chunk))
  return Buffer.concat(chunks)
}

function buildProgram (io: Io, out: { helpOnStderr: string }): Command {
  // Output and exit handling first: subcommands copy them when they are created.
  const program = new Command('shoal')
    .exitOverride()
    .configureOutput({
      writeOut: s => { io.stdout.write(s) },
      writeErr: s => { out.helpOnStderr += s },
      // Commander's own error text would be a second, differently shaped line: main prints it instead.
      outputError: () => {}
    })
    .configureHelp({ showGlobalOptions: true })
    .description('the Shoal command-line client: talks to the HTTP API of any shoald peer')
    .version(VERSION, '--version', 'print the version')
    .addOption(new Option('--server <url>', 'a peer\'s API, host:port or http(s)://host:port (repeatable, or comma-separated; tried in order)').argParser(collect))
    .addOption(new Option('--token <token>', 'the cluster\'s admin token'))
    .addOption(new Option('--config <file>', `the client config file (default: ${defaultClientConfigPath(io.env)})`))
    .option('--verbose', 'on errors, say which servers were tried and why each failed')
    .addHelpText('after', `
Without --server, servers come from SHOAL_SERVER (comma-separated), else from
the config file. Without --token, the token comes from SHOAL_TOKEN, else from
the config file. shoald writes the config file at first start; SHOAL_CONFIG
names another one.

A server that cannot be reached within 3s, or that answers 5xx, is skipped for
the next one. Exit status: 0 ok, 1 failed, 2 bad usage.`)

  program.command('members')
    .description('list the members of the cluster, as the answering peer sees them')
    .addOption(new Option('-o, --output <format>', 'table or json').default('table'))
    .addHelpText('after', `
Columns: NAME (a "*" after it marks the peer that answered), STATE (alive,
suspect, dead or left), ADDRESS (the member's first libp2p address, else its
API), API (host:port), LAST SEEN (time since the answering peer last heard
from it), AGE (time since the member's current incarnation started).
-o json prints the server's MemberList unchanged.`)
    .action(async (cmdOpts: { output: string }, cmd: Command) => {
      if (!(OUTPUT_FORMATS as readonly string[]).includes(cmdOpts.output)) throw new CliError('-o must be table or json', EXIT_USAGE)
      const output = cmdOpts.output as OutputFormat
      const opts = cmd.optsWithGlobals<GlobalOptions>()
      const trace: string[] = []
      const res = await request(opts, io, `${API_PREFIX}/members`, trace)
      if (!isMemberList(res.body)) throw new CliError(`${res.server} answered with something that is not a MemberList`, EXIT_FAILED, trace)
      io.stdout.write(output === 'json' ? renderJson(res.body) : renderMembers(res.body, (io.now ?? Date.now)()))
    })

  addKvCommands(program, io)
  addClusterCommands(program, io)
  addK8sCommands(program, io)
  addBackupCommands(program, io)
  return program
}

function addKvCommands (program: Command, io: Io): void {
  const kv = program.command('kv')
    .description('read and write the cluster\'s replicated key-value store')
    .addHelpText('after', `
Writes go through the Raft leader, wherever it is; reads are served by the
answering peer from its copy (add --consistent for a linearizable read).
Keys are 1 to 1024 bytes of UTF-8; values up to 512 KiB unless the peers
are configured otherwise. --cas N makes a write conditional on the key's
modifyIndex being N (0: only if the key does not exist); a failed CAS says
the current modifyIndex and exits 1.`)

  kv.command('get')
    .description('print the value of a key')
    .argument('<key>')
    .option('--consistent', 'a linearizable read: the peer first catches up with the leader\'s commit index')
    .addOption(new Option('-o, --output <format>', 'text (the value only) or json (the KvPair with its indexes)').default('text'))
    .action(async (key: string, cmdOpts: { consistent?: boolean, output: string }, cmd: Command) => {
      const output = outputFormat(cmdOpts.output, ['text', 'json'])
      const path = keyPath(key) + (cmdOpts.consistent === true ? '?consistent' : '')
      const trace: string[] = []
      const res = await request(cmd.optsWithGlobals<GlobalOptions>(), io, path, trace, { bare: [404] })
      if (!isKvPair(res.body)) throw new CliError(`${res.server} answered with something that is not a KvPair`, EXIT_FAILED, trace)
      if (output === 'json') {
        io.stdout.write(renderJson(res.body))
        return
      }
      if (res.body.encoding === 'base64') throw new CliError(`the value of ${JSON.stringify(key)} is not UTF-8 text; -o json shows it in base64`)
      // A newline ends the output unless the value already ends with one.
      io.stdout.write(res.body.value.endsWith('\n') ? res.body.value : `${res.body.value}\n`)
    })

  kv.command('put')
    .description('set a key (VALUE "-" reads the value from standard input)')
    .argument('<key>')
    .argument('<value>')
    .option('--cas <index>', 'only if the key\'s modifyIndex is this (0: only if the key does not exist)')
    .action(async (key: string, value: string, cmdOpts: { cas?: string }, cmd: Command) => {
      const path = keyPath(key) + casQuery(cmdOpts.cas)
      const body = value === '-' ? await readAll(io.stdin ?? process.stdin) : Buffer.from(value, 'utf8')
      const trace: string[] = []
      const res = await request(cmd.optsWithGlobals<GlobalOptions>(), io, path, trace, { method: 'PUT', body, bare: [409] })
      if (!isKvWrite(res.body)) throw new CliError(`${res.server} answered with something that is not a KvWrite`, EXIT_FAILED, trace)
      io.stdout.write(`${JSON.stringify(key)} written at index ${res.body.index}\n`)
    })

  kv.command('del')
    .description('delete a key (deleting a missing key is not an error, unless --cas says otherwise)')
    .argument('<key>')
    .option('--cas <index>', 'only if the key\'s modifyIndex is this')
    .action(async (key: string, cmdOpts: { cas?: string }, cmd: Command) => {
      const path = keyPath(key) + casQuery(cmdOpts.cas)
      const trace: string[] = []
      const res = await request(cmd.optsWithGlobals<GlobalOptions>(), io, path, trace, { method: 'DELETE', bare: [409] })
      if (!isKvWrite(res.body)) throw new CliError(`${res.server} answered with something that is not a KvWrite`, EXIT_FAILED, trace)
      io.stdout.write(`${JSON.stringify(key)} deleted at index ${res.body.index}\n`)
    })

  kv.command('ls')
    .description('list the keys that start with PREFIX (all keys without it), sorted')
    .argument('[prefix]')
    .option('--consistent', 'a linearizable read')
    .addOption(new Option('-o, --output <format>', 'table or json').default('table'))
    .addHelpText('after', `
Columns: KEY, MODIFY-INDEX, CREATE-INDEX, VALUE (shortened; a value that is
not UTF-8 shows as its size). -o json prints the server's KvList.`)
    .action(async (prefix: string | undefined, cmdOpts: { consistent?: boolean, output: string }, cmd: Command) => {
      const output = outputFormat(cmdOpts.output, OUTPUT_FORMATS) as OutputFormat
      const query = [
        ...(prefix !== undefined && prefix !== '' ? [`prefix=${encodeURIComponent(prefix)}`] : []),
        ...(cmdOpts.consistent === true ? ['consistent'] : [])
      ]
      const path = `${API_PREFIX}/kv/${query.length > 0 ? `?${query.join('&')}` : ''}`
      const trace: string[] = []
      const res = await request(cmd.optsWithGlobals<GlobalOptions>(), io, path, trace)
      if (!isKvList(res.body)) throw new CliError(`${res.server} answered with something that is not a KvList`, EXIT_FAILED, trace)
      io.stdout.write(output === 'json' ? renderJson(res.body) : renderKvList(res.body))
    })
}

function addClusterCommands (program: Command, io: Io): void {
  const cluster = program.command('cluster').description('the replicated log and its members')
  cluster.command('status')
    .description('the leader, term and commit index, and every member\'s role and replication')
    .addOption(new Option('-o, --output <format>', 'table or json').default('table'))
    .addHelpText('after', `
Columns: NAME ("*" marks the peer that answered), ROLE (leader, voter,
learner or none), STATE (membership: alive, suspect, dead or left), MATCH
(the last log index the leader knows the member holds), LAG (commit index
minus MATCH), API. Only the leader knows MATCH and LAG: when another peer
answers, the leader's API is asked for them too ("-" if it cannot be).`)
    .action(async (cmdOpts: { output: string }, cmd: Command) => {
      const output = outputFormat(cmdOpts.output, OUTPUT_FORMATS) as OutputFormat
      const opts = cmd.optsWithGlobals<GlobalOptions>()
      const trace: string[] = []
      const raft = await request(opts, io, `${API_PREFIX}/raft`, trace)
      if (!isRaftStatus(raft.body)) throw new CliError(`${raft.server} answered with something that is not a RaftStatus`, EXIT_FAILED, trace)
      // The member list from the same peer, so that "*" and the raft view agree.
      const members = await request(opts, io, `${API_PREFIX}/members`, trace, { servers: [raft.server] })
      if (!isMemberList(members.body)) throw new CliError(`${members.server} answered with something that is not a MemberList`, EXIT_FAILED, trace)
      let leaderStatus: RaftStatusView | undefined = raft.body.role === 'leader' ? raft.body : undefined
      const leaderApi = raft.body.leader?.api
      if (leaderStatus === undefined && leaderApi !== undefined && leaderApi !== '') {
        // Best effort: only the leader knows match and lag.
        try {
          const base = parseServerUrl(leaderApi)
          const leader = await request(opts, io, `${API_PREFIX}/raft`, [], { servers: [raft.server.startsWith('https://') ? base.replace(/^http:/, 'https:') : base] })
          if (isRaftStatus(leader.body) && leader.body.role === 'leader') leaderStatus = leader.body
        } catch (err) {
          if (opts.verbose === true) io.stderr.write(`shoal: could not read the leader's status from ${leaderApi}: ${(err as Error).message}\n`)
        }
      }
      const view = clusterStatus(raft.body, leaderStatus, members.body)
      io.stdout.write(output === 'json' ? renderJson(view) : renderClusterStatus(view))
    })
}

/** Runs `shoal` with argv (without node and the script) and returns the exit status. Never throws. */
export async function main (argv: string[], io: Io): Promise<number> {
  const out = { helpOnStderr: '' }
  let program: Command | undefined
  try {
    program = buildProgram(io, out)
    await program.parseAsync(argv, { from: 'user' })
    return EXIT_OK
  } catch (err) {
    const verbose = program?.opts<GlobalOptions>().verbose === true
    if (err instanceof CommanderError) {
      if (err.code === 'commander.help' && out.helpOnStderr !== '') {
        // Bare `shoal`: like kubectl, print the help as if asked for it.
        io.stdout.write(out.helpOnStderr)
        return EXIT_OK
      }
      if (err.exitCode === 0) return EXIT_OK
      io.stderr.write(`shoal: ${err.message.replace(/^error: /, '').replace(/\s*\n\s*/g, ' ').trim()}\n`)
      return EXIT_USAGE
    }
    if (err instanceof CliError) {
      io.stderr.write(`shoal: ${err.message}\n`)
      if (verbose) for (const line of err.details) io.stderr.write(`  ${line}\n`)
      return err.exitCode
    }
    io.stderr.write(`shoal: internal error: ${(err as Error)?.message ?? String(err)}\n`)
    if (verbose && err instanceof Error && err.stack !== undefined) io.stderr.write(err.stack + '\n')
    return EXIT_FAILED
  }
}
