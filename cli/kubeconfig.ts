// `shoal kubeconfig`: a kubeconfig for kubectl and Kubernetes clients with
// one cluster and one context per member (every peer serves the whole API),
// the admin token as the user, and the peer the CLI talked to as the current
// context. kubectl sends a token only over TLS, so each cluster entry is the
// peer's https:// address with its self-signed certificate pinned as the CA.
// What is pinned is what the members gossip, not what the network presents:
// the member list (from the peer the CLI trusts) carries each member's
// certificate fingerprint, and the certificate fetched from a member's API
// port is used only if its fingerprint is that one.
// May import: protocol/, ./kube.ts, ./errors.ts, ./io.ts, commander, yaml.
import { X509Certificate } from 'node:crypto'
import { connect as tlsConnect } from 'node:tls'
import { Command, Option } from 'commander'
import { stringify } from 'yaml'
import { API_PREFIX } from '../protocol/api.ts'
import type { MemberView } from '../protocol/api.ts'
import { isPlainObject } from '../protocol/json.ts'
import { certificateFingerprint, isFingerprint } from '../protocol/tls.ts'
import { connect } from './kube.ts'
import { CliError, EXIT_FAILED } from './errors.ts'
import type { Io } from './io.ts'

const CERT_TIMEOUT_MS = 3000

/** host and port of a member's API; an unspecified host (0.0.0.0) is replaced by the address it gossips. */
export function apiHostPort (m: Pick<MemberView, 'api' | 'addrs'>): { host: string, port: number } | undefined {
  const match = /^\[?([^\]]*)\]?:(\d+)$/.exec(m.api)
  if (match === null) return undefined
  let host = match[1] ?? ''
  if (host === '' || host === '0.0.0.0' || host === '::') {
    const ip = (m.addrs ?? []).map(a => /^\/ip[46]\/([^/]+)\//.exec(a)?.[1]).find(a => a !== undefined && a !== '0.0.0.0' && a !== '::')
    if (ip === undefined) return undefined
    host = ip
  }
  return { host, port: Number(match[2]) }
}

/**
 * The PEM certificate a peer's API presents over TLS, unchecked: the caller
 * compares its fingerprint (pinnedCertificate) before trusting it.
 */
export async function fetchCertificate (host: string, port: number, timeoutMs = CERT_TIMEOUT_MS): Promise<string> {
  return await new Promise((resolve, reject) => {
    // Self-signed: no chain to check. The fingerprint is what makes it trusted.
    const socket = tlsConnect({ host, port, rejectUnauthorized: false, ...(/^[\d.:]+$/.test(host) ? {} : { servername: host }) }, () => {
      const raw = socket.getPeerCertificate().raw
      socket.end()
      if (raw === undefined) { reject(new Error('the peer presented no certificate')); return }
      resolve(new X509Certificate(raw).toString())
    })
    socket.setTimeout(timeoutMs, () => { socket.destroy(new Error(`no TLS answer within ${timeoutMs}ms`)) })
    socket.on('error', reject)
  })
}

/** A certificate presented by a peer whose fingerprint is not the one its member record gossips. */
export class FingerprintMismatchError extends Error {
  override name = 'FingerprintMismatchError'
}

/** The certificate at host:port, if its SHA-256 fingerprint is `expected` (the one the member gossips); else throws saying which it was. */
export async function pinnedCertificate (host: string, port: number, expected: string, timeoutMs = CERT_TIMEOUT_MS): Promise<string> {
  const pem = await fetchCertificate(host, port, timeoutMs)
  const presented = certificateFingerprint(pem)
  if (presented !== expected) throw new FingerprintMismatchError(`${host}:${port} presented a certificate with SHA-256 ${presented}, not the ${expected} the member gossips`)
  return pem
}

export interface KubeconfigPeer { name: string, server: string, ca: string }

/** An entry of the member list that has a name and an API address and has not left (the rest of it is not relied on). */
function isJoinedMember (m: unknown): m is Pick<MemberView, 'name' | 'api' | 'addrs' | 'self' | 'apiFingerprint'> {
  return isPlainObject(m) && typeof m.name === 'string' && typeof m.api === 'string' && m.state !== 'left' &&
    (m.addrs === undefined || Array.isArray(m.addrs)) && (m.apiFingerprint === undefined || typeof m.apiFingerprint === 'string')
}

/** The kubeconfig document: one cluster and context per peer, one user. */
export function kubeconfigDocument (peers: KubeconfigPeer[], current: string, token: string, prefix: string): unknown {
  const user = `${prefix}admin`
  return {
    apiVersion: 'v1',
    kind: 'Config',
    preferences: {},
    clusters: peers.map(p => ({ name: `${prefix}${p.name}`, cluster: { server: p.server, 'certificate-authority-data': Buffer.from(p.ca).toString('base64') } })),
    users: [{ name: user, user: { token } }],
    contexts: peers.map(p => ({ name: `${prefix}${p.name}`, context: { cluster: `${prefix}${p.name}`, user, namespace: 'default' } })),
    'current-context': `${prefix}${current}`
  }
}

export function addKubeconfigCommand (program: Command, io: Io): void {
  program.command('kubeconfig')
    .description('print a kubeconfig for kubectl: one context per peer, the admin token, TLS pinned to each peer\'s certificate')
    .addOption(new Option('--prefix <text>', 'prefix of the cluster, context and user names').default('shoal-'))
    .addHelpText('after', `
Save it and point kubectl at it:
  shoal kubeconfig > ~/.kube/shoal.yaml
  export KUBECONFIG=~/.kube/shoal.yaml
  kubectl get nodes                      # the peer shoal talked to
  kubectl --context shoal-p2 get pods    # any other peer: each serves the whole API
Each peer's certificate is pinned only if its SHA-256 fingerprint is the one
the member gossips (GET /shoal/v1/members, apiFingerprint). Peers that do not
answer over TLS, gossip no fingerprint, or present another certificate are
left out (a line on stderr says which and why).`)
    .action(async (opts: { prefix: string }, cmd: Command) => {
      const kube = await connect(cmd, io)
      const body = await kube.send('GET', `${API_PREFIX}/members`)
      if (!isPlainObject(body) || !Array.isArray(body.items)) throw new CliError('the server answered the member list with something else', EXIT_FAILED, kube.trace)
      const members = body.items.filter(isJoinedMember)
        .sort((a, b) => a.name < b.name ? -1 : a.name > b.name ? 1 : 0)
      const self = members.find(m => m.self)
      const peers: KubeconfigPeer[] = []
      await Promise.all(members.map(async m => {
        const at = apiHostPort(m)
        if (at === undefined) {
          io.stderr.write(`shoal: left out ${m.name}: its API address "${m.api}" has no usable host\n`)
          return
        }
        if (!isFingerprint(m.apiFingerprint)) {
          io.stderr.write(`shoal: left out ${m.name}: it gossips no API certificate fingerprint (a shoald older than this CLI?)\n`)
          return
        }
        try {
          const ca = await pinnedCertificate(at.host, at.port, m.apiFingerprint)
          const host = at.host.includes(':') ? `[${at.host}]` : at.host
          peers.push({ name: m.name, server: `https://${host}:${at.port}`, ca })
        } catch (err) {
          const why = err instanceof FingerprintMismatchError ? err.message : `no TLS certificate from ${at.host}:${at.port} (${(err as Error).message})`
          io.stderr.write(`shoal: left out ${m.name}: ${why}\n`)
        }
      }))
      peers.sort((a, b) => a.name < b.name ? -1 : a.name > b.name ? 1 : 0)
      const current = peers.find(p => p.name === self?.name) ?? peers[0]
      if (current === undefined) throw new CliError('no peer presented the certificate its member record gossips (see the lines above)', EXIT_FAILED, kube.trace)
      io.stdout.write(stringify(kubeconfigDocument(peers, current.name, kube.client.token, opts.prefix)))
    })
}
