// Where the servers, the token and the trusted certificates come from:
// --server, else SHOAL_SERVER, else the client config file (which shoald
// writes at first start); --token, else SHOAL_TOKEN, else the config file;
// --api-cert, else SHOAL_API_CERT, else the config file's fingerprints.
// Every command that talks to a peer resolves its target here.
// May import: protocol/client-config.ts, protocol/tls.ts, ./client.ts, ./errors.ts, ./tls.ts.
import { readFile } from 'node:fs/promises'
import { defaultClientConfigPath, isClientConfig } from '../protocol/client-config.ts'
import { certificateFingerprint, normalizeFingerprint } from '../protocol/tls.ts'
import { parseServerUrl } from './client.ts'
import { CliError, EXIT_FAILED, EXIT_USAGE } from './errors.ts'
import type { Trust } from './tls.ts'

/** The global flags, as every subcommand sees them (optsWithGlobals). */
export interface GlobalOptions {
  server?: string[]
  token?: string
  config?: string
  /** a PEM file holding the API certificate to trust (a peer's <data-dir>/api.crt) */
  apiCert?: string
  verbose?: boolean
}

/** What every command talks to: servers in order, the token, and the certificates trusted for https://. */
export interface Target { servers: string[], token: string, trust: Trust }

export const NO_SERVER_MESSAGE = 'no server: pass --server, set SHOAL_SERVER, or start shoald on this host'

/** Servers as a list, accepting commas everywhere so that `--server a,b` and SHOAL_SERVER=a,b agree. */
function splitServers (values: string[]): string[] {
  return values.flatMap(v => v.split(',')).map(v => v.trim()).filter(v => v !== '')
}

function nonEmpty (v: string | undefined): string | undefined {
  return v !== undefined && v !== '' ? v : undefined
}

/** The file's servers, token and fingerprints; undefined when it does not exist and nobody asked for it by name. */
async function readClientConfig (path: string, required: boolean): Promise<{ servers: string[], token: string, fingerprints: string[] } | undefined> {
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
  const fingerprints = (doc.fingerprints ?? []).map(f => {
    const canonical = normalizeFingerprint(f)
    if (canonical === undefined) throw new CliError(`the config file ${path}: "${f.slice(0, 100)}" is not a SHA-256 fingerprint (64 hex digits, colons optional)`)
    return canonical
  })
  return { servers: doc.servers, token: doc.token, fingerprints }
}

/** The fingerprint of the certificate in a PEM file (--api-cert). */
async function fingerprintOfFile (path: string, from: string): Promise<string> {
  let text: string
  try {
    text = await readFile(path, 'utf8')
  } catch (err) {
    throw new CliError(`${from}: cannot read ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`)
  }
  try {
    return certificateFingerprint(text)
  } catch {
    throw new CliError(`${from}: ${path} does not hold a PEM certificate (a peer's <data-dir>/api.crt)`)
  }
}

/** --server, else SHOAL_SERVER, else the config file; --token, else SHOAL_TOKEN, else the config file; the trust likewise. */
export async function resolveTarget (opts: GlobalOptions, env: NodeJS.ProcessEnv, trace: string[]): Promise<Target> {
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

  const certFile = nonEmpty(opts.apiCert) ?? nonEmpty(env.SHOAL_API_CERT)
  let fingerprints: string[] | undefined
  if (certFile !== undefined) {
    fingerprints = [await fingerprintOfFile(certFile, opts.apiCert !== undefined ? '--api-cert' : 'SHOAL_API_CERT')]
    trace.push(`trusting the certificate in ${certFile} (SHA-256 ${fingerprints[0] ?? ''})`)
  }

  const path = opts.config ?? defaultClientConfigPath(env)
  // A file named with --config is always read, so a typo in its name is not silently ignored;
  // it is also read for its fingerprints when an https:// server needs them.
  const needTrust = fingerprints === undefined && (servers === undefined || servers.some(s => s.startsWith('https://')))
  if (opts.config !== undefined || servers === undefined || token === undefined || needTrust) {
    const file = await readClientConfig(path, opts.config !== undefined)
    if (file === undefined) trace.push(`config file ${path}: not found`)
    else {
      trace.push(`config file ${path}: ${file.servers.length} server(s)${file.token !== '' ? ', a token' : ', no token'}, ${file.fingerprints.length} fingerprint(s)`)
      if (servers === undefined && file.servers.length > 0) servers = parse(file.servers, `the config file ${path}`, EXIT_FAILED)
      if (token === undefined && file.token !== '') token = file.token
      if (fingerprints === undefined && file.fingerprints.length > 0) fingerprints = file.fingerprints
    }
  }
  if (servers === undefined || servers.length === 0) throw new CliError(NO_SERVER_MESSAGE, EXIT_FAILED, trace)
  if (token === undefined) throw new CliError(`no token: pass --token, set SHOAL_TOKEN, or put it in ${path} (shoald writes it there at first start)`, EXIT_FAILED, trace)
  if (servers.some(s => s.startsWith('https://'))) {
    trace.push(fingerprints === undefined ? 'https:// checked against the system\'s CAs (no pinned fingerprints)' : `https:// pinned to ${fingerprints.length} fingerprint(s)`)
  }
  return { servers, token, trust: { fingerprints: fingerprints ?? [] } }
}
