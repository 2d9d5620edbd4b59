// Where the servers and the token come from: --server, else SHOAL_SERVER,
// else the client config file (which shoald writes at first start); --token,
// else SHOAL_TOKEN, else the config file. Every command that talks to a peer
// resolves its target here.
// May import: protocol/client-config.ts, ./client.ts, ./errors.ts.
import { readFile } from 'node:fs/promises'
import { defaultClientConfigPath, isClientConfig } from '../protocol/client-config.ts'
import { parseServerUrl } from './client.ts'
import { CliError, EXIT_FAILED, EXIT_USAGE } from './errors.ts'

/** The global flags, as every subcommand sees them (optsWithGlobals). */
export interface GlobalOptions {
  server?: string[]
  token?: string
  config?: string
  verbose?: boolean
}

export const NO_SERVER_MESSAGE = 'no server: pass --server, set SHOAL_SERVER, or start shoald on this host'

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
