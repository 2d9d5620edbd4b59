// The `shoal` program: its commands and flags, where the servers and the
// token come from, and how every failure becomes one `shoal: ` line and an
// exit status (0 ok, 1 failed, 2 bad usage). Runs in-process for the tests.
import { readFile } from 'node:fs/promises'
import { Command, CommanderError, Option } from 'commander'
import { API_PREFIX } from '../protocol/api.ts'
import { VERSION } from '../protocol/version.ts'
import type { MemberList } from '../protocol/api.ts'
import { defaultClientConfigPath, isClientConfig } from '../protocol/client-config.ts'
import { ApiClient, HttpStatusError, UnreachableError, parseServerUrl } from './client.ts'
import type { Attempt } from './client.ts'
import { OUTPUT_FORMATS, renderJson, renderMembers } from './output.ts'
import type { OutputFormat } from './output.ts'

export interface Io {
  stdout: { write: (text: string) => unknown }
  stderr: { write: (text: string) => unknown }
  env: NodeJS.ProcessEnv
  /** the clock that ages are computed from; Date.now unless a test fixes it */
  now?: () => number
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

interface GlobalOptions {
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
async function resolveTarget (opts: GlobalOptions, env: NodeJS.ProcessEnv, trace: string[]): Promise<{ servers: string[], token: string }> {
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

function describeAttempt (a: Attempt): string {
  return `${a.server}: ${a.reason} after ${a.elapsedMs}ms (${a.detail})`
}

/** The API's answer, or a CliError carrying what was tried. */
async function request (opts: GlobalOptions, io: Io, path: string, trace: string[]): Promise<{ server: string, body: unknown }> {
  const target = await resolveTarget(opts, io.env, trace)
  const skipped: Attempt[] = []
  const client = new ApiClient({ ...target, onSkip: a => { skipped.push(a) } })
  try {
    const res = await client.get(path)
    // A skipped server is worth knowing about even when another one answered.
    if (opts.verbose === true) for (const a of skipped) io.stderr.write(`shoal: skipped ${describeAttempt(a)}\n`)
    return res
  } catch (err) {
    const tried = [...trace, ...skipped.map(a => `tried ${describeAttempt(a)}`)]
    if (err instanceof UnreachableError) throw new CliError(err.message, EXIT_FAILED, tried)
    if (err instanceof HttpStatusError) {
      tried.push(`${err.server} answered ${err.code} ${err.reason}`)
      if (err.code === 401) throw new CliError(`the server rejected the token (401): ${err.message}`, EXIT_FAILED, tried)
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

  return program
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
