// The `shoal` program: its commands and flags, and how every failure becomes
// one `shoal: ` line and an exit status (0 ok, 1 failed, 2 bad usage; the
// errors are ./errors.ts's, where the servers and the token come from is
// ./target.ts). Runs in-process for the tests. Only cli/bin.ts imports it.
// May import: protocol/, every cli file, commander.
import { Command, CommanderError, Option } from 'commander'
import { API_PREFIX } from '../protocol/api.ts'
import { VERSION } from '../protocol/version.ts'
import type { MemberList, RaftStatusView } from '../protocol/api.ts'
import type { KvListView, KvPairView, KvWriteView } from '../protocol/kv.ts'
import { defaultClientConfigPath } from '../protocol/client-config.ts'
import { isPlainObject } from '../protocol/json.ts'
import { ApiClient, HttpStatusError, OutcomeUnknownError, UnreachableError, parseServerUrl } from './client.ts'
import type { Attempt, Method } from './client.ts'
import { CliError, describeAttempt, EXIT_FAILED, EXIT_OK, EXIT_USAGE } from './errors.ts'
import type { Io } from './io.ts'
import { resolveTarget } from './target.ts'
import type { GlobalOptions } from './target.ts'
import { OUTPUT_FORMATS, clusterStatus, renderClusterStatus, renderJson, renderKvList, renderMembers } from './output.ts'
import { addK8sCommands } from './k8s.ts'
import { addBackupCommands } from './backup.ts'

function collect (value: string, previous: string[] | undefined): string[] {
  return [...(previous ?? []), value]
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
  return isPlainObject(v) && v.kind === 'MemberList' && Array.isArray(v.items) &&
    v.items.every(m => isPlainObject(m) && typeof m.name === 'string')
}

function isKvPair (v: unknown): v is KvPairView {
  return isPlainObject(v) && typeof v.key === 'string' && typeof v.value === 'string' && typeof v.modifyIndex === 'number' && typeof v.createIndex === 'number'
}

function isKvList (v: unknown): v is KvListView {
  return isPlainObject(v) && v.kind === 'KvList' && Array.isArray(v.items) && v.items.every(isKvPair)
}

function isKvWrite (v: unknown): v is KvWriteView {
  return isPlainObject(v) && typeof v.index === 'number'
}

function isRaftStatus (v: unknown): v is RaftStatusView {
  return isPlainObject(v) && v.kind === 'RaftStatus' && typeof v.term === 'number' && typeof v.commitIndex === 'number' &&
    Array.isArray(v.voters) && Array.isArray(v.learners)
}

function outputFormat<F extends string> (value: string, allowed: readonly F[]): F {
  const format = allowed.find(f => f === value)
  if (format === undefined) throw new CliError(`-o must be ${allowed.slice(0, -1).join(', ')} or ${allowed.at(-1) ?? ''}`, EXIT_USAGE)
  return format
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
    .addOption(new Option('--api-cert <file>', 'trust only this API certificate for https:// servers (a peer\'s <data-dir>/api.crt; default: $SHOAL_API_CERT, else the config file\'s fingerprints)'))
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
      const output = outputFormat(cmdOpts.output, OUTPUT_FORMATS)
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
      const output = outputFormat(cmdOpts.output, OUTPUT_FORMATS)
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
      const output = outputFormat(cmdOpts.output, OUTPUT_FORMATS)
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
