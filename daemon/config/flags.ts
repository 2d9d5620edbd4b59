// shoald's flags and config file. Every flag can also be given in a YAML (or
// JSON) file named by --config, under the same name; flags win over the file.
import { readFileSync } from 'node:fs'
import { hostname } from 'node:os'
import { resolve } from 'node:path'
import { Command, CommanderError, Option } from 'commander'
import ms from 'ms'
import { multiaddr } from '@multiformats/multiaddr'
import { parse as parseYaml } from 'yaml'
import { VERSION } from '../../protocol/version.ts'
import { MAX_COMMAND_BYTES } from '../../protocol/raft.ts'
import { LOG_LEVELS } from '../log/log.ts'
import type { LogLevel } from '../log/log.ts'
import { DEFAULT_MEMBERSHIP_CONFIG, validateMembershipConfig } from '../membership/config.ts'
import type { MembershipConfig } from '../membership/config.ts'
import { defaultClientConfigPath } from './client-config.ts'
import { parseCidr, parsePodCidr } from '../../protocol/cidr.ts'
import { isLoopbackHost } from '../../protocol/tls.ts'

export interface DaemonConfig {
  dataDir: string
  name: string
  listen: string[]
  apiHost: string
  apiPort: number
  /** plain HTTP on the API port: refused (required) or served next to TLS (optional); by default required unless --api is loopback */
  apiTls: 'required' | 'optional'
  join: string[]
  clusterKeyFile?: string
  logLevel: LogLevel
  membership: MembershipConfig
  raft: RaftFlags
  /** the largest KV value accepted, in bytes */
  kvMaxValueBytes: number
  /** caps on the API's watches (daemon/api/watch.ts WatchLimits; these defaults are its DEFAULT_WATCH_LIMITS) */
  watchLimits: WatchFlags
  /** how long a dead member's pods wait before they are replaced elsewhere */
  podEvictionGraceMs: number
  /** where to write the CLI's config at first start; undefined for nowhere */
  clientConfig?: string
  /**
   * the pod runtime: docker, native (OCI images in sandboxes, no Docker), process (host processes; `--runtime host`
   * on the command line, `process` its older name), or auto (docker when an engine answers, else native when this
   * host can run sandboxes, else host processes)
   */
  runtime: 'auto' | 'docker' | 'process' | 'native'
  /** the Docker runtime's sandbox image; undefined for the built-in one */
  pauseImage?: string
  /**
   * the only host directories (absolute) that the native runtime lets pods
   * mount as hostPath volumes, symbolic links resolved; empty: none. The
   * process and Docker runtimes do not check it.
   */
  allowHostPath: string[]
  /**
   * whether the native runtime runs a pod that asks for uid 0 (runAsUser: 0
   * or privileged): with no user namespace yet, that is the host's root
   */
  allowPrivileged: boolean
  /** --image-gc-delay */
  imageGcDelayMs: number
  /** the cluster's service range (used by the first leader only); undefined: by runtime */
  serviceCidr?: string
  /** the cluster's pod range, split into a /24 per node (used by the first leader only); undefined: by runtime */
  podCidr?: string
  clusterDomain: string
  /** the port of this peer's DNS server (on its own address and the DNS service's) */
  dnsPort: number
  /** resolvers ('ip:port') for names outside the cluster domain */
  dnsUpstream: string[]
  /** how often a backup of this peer's replica goes into <data-dir>/backups; undefined: never */
  snapshotIntervalMs?: number
  /** how many scheduled backups are kept */
  snapshotRetain: number
  /** a backup file to start a new cluster from (the data directory must be new) */
  restore?: string
  /** make this peer the only voter of its own log (after losing quorum for good) */
  recover: boolean
}

export const RUNTIMES = ['auto', 'docker', 'native', 'host', 'process'] as const

export interface WatchFlags {
  /** open watches one token may hold on this peer */
  maxPerToken: number
  /** open watches one client address may hold on this peer */
  maxPerClient: number
  /** bytes a watch's client may leave unread before the watch is dropped */
  bufferBytes: number
}

export interface RaftFlags {
  /** target voter count; undefined: 3, or 5 once there are 5 healthy peers */
  voters?: number
  tickMs: number
  electionTicks: number
  /** a voter dead this long is replaced */
  deadVoterGraceMs: number
  /** applied entries between snapshots */
  snapshotEntries: number
}

/** A bad flag or value: shoald prints the message and exits with status 2. */
export class UsageError extends Error {
  override name = 'UsageError'
}

const NAME_PATTERN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/

export function defaultName (): string {
  const h = hostname().toLowerCase().replace(/[^a-z0-9.-]/g, '-').replace(/^[-.]+|[-.]+$/g, '')
  return h.length > 0 ? h.slice(0, 253) : 'shoal'
}

function parseDuration (flag: string, value: string): number {
  const n = ms(value as ms.StringValue)
  if (typeof n !== 'number' || !Number.isFinite(n) || n <= 0) throw new UsageError(`--${flag}: "${value}" is not a duration (try 500ms, 2s, 1h)`)
  return n
}

function parseMultiaddr (flag: string, value: string): string {
  try {
    const ma = multiaddr(value)
    if (!/^\/(ip4|ip6|dns4|dns6|dns)\/[^/]+\/tcp\/\d+/.test(ma.toString())) throw new Error('not a TCP address')
    return ma.toString()
  } catch (err) {
    throw new UsageError(`--${flag}: "${value}" is not a TCP multiaddr like /ip4/10.0.0.1/tcp/7946 (${(err as Error).message})`)
  }
}

export function parseHostPort (flag: string, value: string): { host: string, port: number } {
  const m = /^(\[[0-9a-fA-F:]+\]|[^:]+):(\d{1,5})$/.exec(value)
  const port = m === null ? NaN : Number(m[2])
  if (m === null || port < 0 || port > 65535) throw new UsageError(`--${flag}: "${value}" is not HOST:PORT`)
  return { host: (m[1] ?? '').replace(/^\[|\]$/g, ''), port }
}

const DURATION_FLAGS: Array<[string, keyof MembershipConfig, string]> = [
  ['heartbeat-interval', 'heartbeatIntervalMs', 'how often this peer gossips its heartbeat'],
  ['probe-after', 'probeAfterMs', 'silence before a member is probed directly'],
  ['probe-timeout', 'probeTimeoutMs', 'how long a direct probe may take'],
  ['suspect-timeout', 'suspectTimeoutMs', 'how long a member stays suspect before it is dead'],
  ['reap-after', 'reapAfterMs', 'how long dead and left members stay listed'],
  ['reconnect-interval', 'reconnectIntervalMs', 'how often a dead member is tried again']
]

/** An exact duration string that ms() reads back to the same number (ms() itself rounds: 2500 → "3s"). */
export function formatDuration (msValue: number): string {
  for (const [unit, size] of [['d', 86_400_000], ['h', 3_600_000], ['m', 60_000], ['s', 1000]] as const) {
    if (msValue >= size && msValue % size === 0) return `${msValue / size}${unit}`
  }
  return `${msValue}ms`
}

export function buildCommand (): Command {
  const cmd = new Command('shoald')
    .description('the Shoal daemon: one per machine, no masters')
    .version(VERSION, '--version')
    .addOption(new Option('--config <file>', 'read these same options from a YAML or JSON file'))
    .addOption(new Option('--data-dir <dir>', 'where this peer keeps its state').default('./.shoal'))
    .addOption(new Option('--name <name>', 'the member name (DNS-1123)').default(defaultName(), 'the hostname'))
    .addOption(new Option('--listen <multiaddr>', 'libp2p listen address (repeatable)').argParser(collect).default(undefined, '/ip4/0.0.0.0/tcp/7946'))
    .addOption(new Option('--api <host:port>', 'the HTTP API address').default('127.0.0.1:7070'))
    .addOption(new Option('--api-tls <mode>', 'required: the API answers plain HTTP with 400, TLS only; optional: it serves both').default(undefined, 'required unless --api is a loopback address'))
    .addOption(new Option('--join <multiaddr>', 'any peer\'s address, with or without /p2p/<id> (repeatable)').argParser(collect))
    .addOption(new Option('--cluster-key <file>', 'the cluster\'s key, copied from any peer\'s <data-dir>/cluster.key'))
    .addOption(new Option('--log-level <level>', 'trace, debug, info, warn, error, fatal or silent').default('info'))
    .addOption(new Option('--client-config <file>', 'where to write the CLI\'s config at first start ("none" to skip)').default(defaultClientConfigPath(), '~/.config/shoal/config.json'))
  for (const [flag, key, help] of DURATION_FLAGS) {
    cmd.addOption(new Option(`--${flag} <duration>`, help).default(formatDuration(DEFAULT_MEMBERSHIP_CONFIG[key])))
  }
  cmd.addOption(new Option('--voters <n>', 'how many peers vote in the Raft log (odd); the rest are learners').default('auto', '3, or 5 from 5 peers on'))
  cmd.addOption(new Option('--raft-tick <duration>', 'the Raft clock\'s tick; heartbeats go every 2 ticks').default('50ms'))
  cmd.addOption(new Option('--election-ticks <n>', 'ticks without a leader before a peer campaigns (randomised up to twice this)').default('10'))
  cmd.addOption(new Option('--dead-voter-grace <duration>', 'how long a voter may be dead before autopilot replaces it').default('5s'))
  cmd.addOption(new Option('--snapshot-entries <n>', 'applied log entries between state snapshots').default('10000'))
  cmd.addOption(new Option('--pod-eviction-grace <duration>', 'how long a dead member\'s pods wait before they are replaced elsewhere').default('2s'))
  cmd.addOption(new Option('--runtime <kind>', 'how pods run: docker, native (OCI images in sandboxes, without Docker; needs root), host (host processes, for trusted workloads only; also called process), or auto (docker when an engine answers at DOCKER_HOST, else native when this host can run sandboxes, else host)').default('auto'))
  cmd.addOption(new Option('--allow-privileged', 'with --runtime native: run containers that ask for uid 0 (runAsUser: 0 or privileged: true); without a user namespace that is the host\'s root, so by default such a container is refused'))
  cmd.addOption(new Option('--image-gc-delay <duration>', 'with --runtime native: how long an image no container has started from stays in the cache').default('3m'))
  cmd.addOption(new Option('--allow-host-path <dir>', 'with --runtime native: a directory whose files and subdirectories pods may mount as hostPath volumes (repeatable; default: none, and a pod mounting any other host path waits with CreateContainerConfigError); the host and Docker runtimes do not check it').argParser(collect))
  cmd.addOption(new Option('--pause-image <image>', 'the Docker runtime\'s pod sandbox image (default: one Shoal makes, x86-64)'))
  cmd.addOption(new Option('--service-cidr <cidr>', 'the range Service addresses come from; read by the cluster\'s first leader only').default(undefined, '127.96.0.0/16, or 10.96.0.0/16 with the Docker runtime'))
  cmd.addOption(new Option('--pod-cidr <cidr>', 'the range pod addresses come from, a /24 per node; read by the cluster\'s first leader only').default(undefined, '127.64.0.0/10, or 10.128.0.0/10 with the Docker runtime'))
  cmd.addOption(new Option('--cluster-domain <domain>', 'the DNS domain of Services (<svc>.<ns>.svc.<domain>)').default('cluster.local'))
  cmd.addOption(new Option('--dns-port <port>', 'the port of this peer\'s DNS server, on its API address and the DNS service\'s address (0: no DNS)').default('53'))
  cmd.addOption(new Option('--dns-upstream <ip:port>', 'where names outside the cluster domain are forwarded (repeatable; default: answered NXDOMAIN)').argParser(collect))
  cmd.addOption(new Option('--kv-max-value <bytes>', 'the largest cluster-KV value accepted (e.g. 512KiB, 1MiB)').default('512KiB'))
  cmd.addOption(new Option('--max-watches-per-token <n>', 'open API watches one token may hold on this peer; more get 429').default('256'))
  cmd.addOption(new Option('--max-watches-per-ip <n>', 'open API watches one client address may hold on this peer; more get 429').default('64'))
  cmd.addOption(new Option('--watch-buffer <bytes>', 'how much a watch\'s client may leave unread before the watch is dropped (it lists again)').default('4MiB'))
  cmd.addOption(new Option('--gossip-rate <n>', 'the most heartbeats the whole cluster gossips per second; intervals stretch beyond it').default(String(DEFAULT_MEMBERSHIP_CONFIG.gossipRate)))
  cmd.addOption(new Option('--snapshot-interval <duration>', 'write a backup of this peer\'s state into <data-dir>/backups this often (default: never)'))
  cmd.addOption(new Option('--snapshot-retain <n>', 'how many scheduled backups to keep; the oldest go first').default('24'))
  cmd.addOption(new Option('--restore <file>', 'start a new cluster from a backup (shoal backup); --data-dir must be new or empty'))
  cmd.addOption(new Option('--recover', 'after losing quorum for good: make this peer the only voter of its own log, keeping every entry it holds'))
  cmd.exitOverride().configureOutput({ writeErr: () => {} }).allowExcessArguments(false)
  return cmd
}

function collect (value: string, previous: string[] | undefined): string[] {
  return [...(previous ?? []), value]
}

function camel (flag: string): string {
  return flag.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase())
}

function readConfigFile (path: string, known: Set<string>): Record<string, unknown> {
  let text: string
  try {
    text = readFileSync(path, 'utf8')
  } catch (err) {
    throw new UsageError(`--config: cannot read ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`)
  }
  let doc: unknown
  try {
    doc = parseYaml(text)
  } catch (err) {
    throw new UsageError(`--config: ${path} is not valid YAML: ${(err as Error).message.split('\n')[0]}`)
  }
  if (doc === null || doc === undefined) return {}
  if (typeof doc !== 'object' || Array.isArray(doc)) throw new UsageError(`--config: ${path} must hold a mapping of option names to values`)
  const out: Record<string, unknown> = {}
  for (const [key, value] of Object.entries(doc)) {
    if (!known.has(key) || key === 'config') throw new UsageError(`--config: ${path}: unknown option "${key}"`)
    if (key === 'join' || key === 'listen' || key === 'dns-upstream' || key === 'allow-host-path') {
      const list = Array.isArray(value) ? value : [value]
      if (!list.every(v => typeof v === 'string')) throw new UsageError(`--config: ${path}: "${key}" must be a string or a list of strings`)
      out[camel(key)] = list
    } else {
      if (typeof value !== 'string' && typeof value !== 'number') throw new UsageError(`--config: ${path}: "${key}" must be a string`)
      out[camel(key)] = String(value)
    }
  }
  return out
}

/**
 * Parses argv (without node and the script). Throws UsageError for bad input,
 * and CommanderError with exitCode 0 for --help and --version.
 */
export function parseDaemonArgs (argv: string[]): DaemonConfig {
  const pick = readFlags(argv)
  const name = pick<string>('name')
  if (!NAME_PATTERN.test(name) || name.length > 253) throw new UsageError(`--name: "${name}" is not a valid name (lowercase letters, digits, '-' and '.')`)
  const listen = (pick<string[] | undefined>('listen') ?? ['/ip4/0.0.0.0/tcp/7946']).map(v => parseMultiaddr('listen', v))
  const join = (pick<string[] | undefined>('join') ?? []).map(v => parseMultiaddr('join', v))
  const api = parseHostPort('api', pick<string>('api'))
  const apiTls = parseApiTls(pick<string | undefined>('api-tls'), api.host)
  const logLevel = pick<string>('log-level')
  if (!(LOG_LEVELS as readonly string[]).includes(logLevel)) throw new UsageError(`--log-level: "${logLevel}" is not one of ${LOG_LEVELS.join(', ')}`)
  const membership = parseMembershipFlags(pick)
  const raft = parseRaftFlags(pick)
  const kvMaxValueBytes = parseBytes('kv-max-value', pick<string>('kv-max-value'))
  // a value rides in one log entry, with its key and framing
  if (kvMaxValueBytes > MAX_COMMAND_BYTES - 64 * 1024) throw new UsageError(`--kv-max-value: at most ${MAX_COMMAND_BYTES - 64 * 1024} bytes (one log entry is at most ${MAX_COMMAND_BYTES})`)
  const watchLimits: WatchFlags = {
    maxPerToken: parseCount('max-watches-per-token', pick<string>('max-watches-per-token'), 1),
    maxPerClient: parseCount('max-watches-per-ip', pick<string>('max-watches-per-ip'), 1),
    bufferBytes: parseBytes('watch-buffer', pick<string>('watch-buffer'))
  }
  const podEvictionGraceMs = parseDuration('pod-eviction-grace', pick<string>('pod-eviction-grace'))
  const clientConfig = pick<string>('client-config')
  const clusterKeyFile = pick<string | undefined>('cluster-key')
  const runtime = pick<string>('runtime')
  if (!(RUNTIMES as readonly string[]).includes(runtime)) throw new UsageError(`--runtime: "${runtime}" is not one of ${RUNTIMES.join(', ')}`)
  const pauseImage = pick<string | undefined>('pause-image')
  const allowHostPath = (pick<string[] | undefined>('allow-host-path') ?? []).map(dir => {
    if (dir === '' || dir.includes('\0')) throw new UsageError(`--allow-host-path: ${JSON.stringify(dir)} is not a directory`)
    return resolve(dir)
  })
  const network = parseNetworkFlags(pick)
  const backups = parseBackupFlags(pick, join)
  return {
    dataDir: resolve(pick<string>('data-dir')),
    name,
    listen,
    apiHost: api.host,
    apiPort: api.port,
    apiTls,
    join,
    ...(clusterKeyFile !== undefined ? { clusterKeyFile: resolve(clusterKeyFile) } : {}),
    logLevel: logLevel as LogLevel,
    membership,
    raft,
    kvMaxValueBytes,
    watchLimits,
    podEvictionGraceMs,
    runtime: (runtime === 'host' ? 'process' : runtime) as DaemonConfig['runtime'],
    ...(pauseImage !== undefined ? { pauseImage } : {}),
    allowHostPath,
    allowPrivileged: [true, 'true'].includes(pick<boolean | string | undefined>('allow-privileged') as boolean | string),
    imageGcDelayMs: parseDuration('image-gc-delay', pick<string>('image-gc-delay')),
    ...network,
    ...backups,
    ...(clientConfig !== 'none' ? { clientConfig: resolve(clientConfig) } : {})
  }
}

/** The value of a flag, by its long name without the dashes ('log-level'). */
type PickFlag = <T>(flag: string) => T

/** Parses argv and reads --config; a flag given on the command line wins, and a file value wins over a default. */
function readFlags (argv: string[]): PickFlag {
  const cmd = buildCommand()
  try {
    cmd.parse(argv, { from: 'user' })
  } catch (err) {
    if (err instanceof CommanderError && err.exitCode === 0) throw err
    if (err instanceof CommanderError) throw new UsageError(err.message.replace(/^error: /, ''))
    throw err
  }
  const flags = cmd.opts<Record<string, unknown>>()
  const known = new Set(cmd.options.map(o => o.long?.replace(/^--/, '') ?? ''))
  const fromFile = typeof flags.config === 'string' ? readConfigFile(flags.config, known) : {}
  return <T>(flag: string): T => {
    const key = camel(flag)
    const source = cmd.getOptionValueSource(key)
    return (source === 'cli' || !(key in fromFile) ? flags[key] : fromFile[key]) as T
  }
}

/** --api-tls; by default TLS is required wherever the API can be reached from another host (a bearer token in the clear is lost). */
function parseApiTls (value: string | undefined, apiHost: string): DaemonConfig['apiTls'] {
  if (value === undefined) return isLoopbackHost(apiHost) ? 'optional' : 'required'
  if (value !== 'required' && value !== 'optional') throw new UsageError(`--api-tls: "${value}" is not required or optional`)
  return value
}

/** The gossip timings and rate, checked together by validateMembershipConfig. */
function parseMembershipFlags (pick: PickFlag): MembershipConfig {
  const membership = { ...DEFAULT_MEMBERSHIP_CONFIG }
  for (const [flag, key] of DURATION_FLAGS) membership[key] = parseDuration(flag, pick<string>(flag))
  const rate = Number(pick<string>('gossip-rate'))
  if (!Number.isFinite(rate) || rate <= 0) throw new UsageError(`--gossip-rate: "${pick<string>('gossip-rate')}" is not a positive number`)
  membership.gossipRate = rate
  try {
    validateMembershipConfig(membership)
  } catch (err) {
    throw new UsageError((err as Error).message)
  }
  return membership
}

/** The cluster's Service and pod ranges, its DNS domain, and this peer's DNS server. */
function parseNetworkFlags (pick: PickFlag): Pick<DaemonConfig, 'serviceCidr' | 'podCidr' | 'clusterDomain' | 'dnsPort' | 'dnsUpstream'> {
  const serviceCidr = pick<string | undefined>('service-cidr')
  if (serviceCidr !== undefined && parseCidr(serviceCidr) === undefined) throw new UsageError(`--service-cidr: "${serviceCidr}" is not an IPv4 range from /8 to /28 like 10.96.0.0/16`)
  const podCidr = pick<string | undefined>('pod-cidr')
  if (podCidr !== undefined && parsePodCidr(podCidr) === undefined) throw new UsageError(`--pod-cidr: "${podCidr}" is not an IPv4 range from /8 to /24 like 10.128.0.0/10`)
  const clusterDomain = pick<string>('cluster-domain')
  if (!NAME_PATTERN.test(clusterDomain)) throw new UsageError(`--cluster-domain: "${clusterDomain}" is not a valid domain`)
  const dnsPort = Number(pick<string>('dns-port'))
  if (!Number.isInteger(dnsPort) || dnsPort < 0 || dnsPort > 65535) throw new UsageError(`--dns-port: "${pick<string>('dns-port')}" is not a port (0 turns DNS off)`)
  const dnsUpstream = (pick<string[] | undefined>('dns-upstream') ?? []).map(v => {
    let hp
    try {
      hp = parseHostPort('dns-upstream', /:\d+$/.test(v) ? v : `${v}:53`)
    } catch {
      throw new UsageError(`--dns-upstream: "${v}" is not IP or IP:PORT`)
    }
    return `${hp.host}:${hp.port}`
  })
  return {
    ...(serviceCidr !== undefined ? { serviceCidr } : {}),
    ...(podCidr !== undefined ? { podCidr } : {}),
    clusterDomain,
    dnsPort,
    dnsUpstream
  }
}

/** Scheduled backups, and starting over from a backup (--restore) or from this peer's own log (--recover). */
function parseBackupFlags (pick: PickFlag, join: string[]): Pick<DaemonConfig, 'snapshotIntervalMs' | 'snapshotRetain' | 'restore' | 'recover'> {
  const snapshotIntervalText = pick<string | undefined>('snapshot-interval')
  const snapshotIntervalMs = snapshotIntervalText !== undefined ? parseDuration('snapshot-interval', snapshotIntervalText) : undefined
  if (snapshotIntervalMs !== undefined && snapshotIntervalMs < 1000) throw new UsageError(`--snapshot-interval: at least 1s, got ${snapshotIntervalText ?? ''}`)
  const snapshotRetain = parseCount('snapshot-retain', pick<string>('snapshot-retain'), 1)
  const restoreFile = pick<string | undefined>('restore')
  const recover = pick<boolean | string | undefined>('recover')
  const recovering = recover === true || recover === 'true'
  if (restoreFile !== undefined && recovering) throw new UsageError('--restore and --recover do not go together: --restore starts a new cluster, --recover keeps this peer\'s log')
  if ((restoreFile !== undefined || recovering) && join.length > 0) throw new UsageError(`${restoreFile !== undefined ? '--restore' : '--recover'} starts a cluster of one: it does not go with --join (the others join it)`)
  return {
    ...(snapshotIntervalMs !== undefined ? { snapshotIntervalMs } : {}),
    snapshotRetain,
    ...(restoreFile !== undefined ? { restore: resolve(restoreFile) } : {}),
    recover: recovering
  }
}

function parseCount (flag: string, value: string, min: number): number {
  const n = Number(value)
  if (!/^\d+$/.test(String(value).trim()) || !Number.isSafeInteger(n) || n < min) throw new UsageError(`--${flag}: "${value}" is not a whole number of at least ${min}`)
  return n
}

function parseBytes (flag: string, value: string): number {
  const m = /^(\d+)\s*(B|KiB|MiB|KB|MB|k|m)?$/i.exec(String(value).trim())
  if (m === null) throw new UsageError(`--${flag}: "${value}" is not a size (try 524288, 512KiB or 1MiB)`)
  const unit = (m[2] ?? 'B').toLowerCase()
  const scale = unit.startsWith('k') ? 1024 : unit.startsWith('m') ? 1024 * 1024 : 1
  const n = Number(m[1]) * scale
  if (n < 1 || n > 64 * 1024 * 1024) throw new UsageError(`--${flag}: "${value}" must be between 1 byte and 64MiB`)
  return n
}

function parseRaftFlags (pick: <T>(flag: string) => T): RaftFlags {
  const votersText = String(pick<string>('voters'))
  let voters: number | undefined
  if (votersText !== 'auto') {
    voters = parseCount('voters', votersText, 1)
    if (voters % 2 === 0) throw new UsageError(`--voters: ${voters} is even; an odd count tolerates as many failures with one peer less`)
  }
  const tickMs = parseDuration('raft-tick', pick<string>('raft-tick'))
  if (tickMs < 5 || tickMs > 10_000) throw new UsageError(`--raft-tick: must be between 5ms and 10s, got ${pick<string>('raft-tick')}`)
  const electionTicks = parseCount('election-ticks', pick<string>('election-ticks'), 3)
  const deadVoterGraceMs = parseDuration('dead-voter-grace', pick<string>('dead-voter-grace'))
  const snapshotEntries = parseCount('snapshot-entries', pick<string>('snapshot-entries'), 10)
  return { ...(voters !== undefined ? { voters } : {}), tickMs, electionTicks, deadVoterGraceMs, snapshotEntries }
}

export function helpText (): string {
  return buildCommand().helpInformation()
}
