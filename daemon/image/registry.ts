// A client for the OCI distribution API over fetch: manifests (an index or a
// Docker manifest list resolved to this machine's platform), blobs (redirects
// followed), and the registry's auth (Basic, or a Bearer token from the realm
// its WWW-Authenticate names). Plain http is used for loopback registries
// (localhost, 127.0.0.0/8, [::1]) and for those listed as insecure; every
// other registry is https. Every failure is a PullError carrying the
// registry's own message, which the kubelet shows as ErrImagePull. Pull
// secrets are read by `credentialsFor` (kubernetes.io/dockerconfigjson).
// May import: libraries (tar-stream) and `node:` built-ins only.
import { createHash } from 'node:crypto'
import { DIGEST, DOCKER_HUB } from './reference.ts'

export const MEDIA_OCI_INDEX = 'application/vnd.oci.image.index.v1+json'
export const MEDIA_OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json'
export const MEDIA_DOCKER_LIST = 'application/vnd.docker.distribution.manifest.list.v2+json'
export const MEDIA_DOCKER_MANIFEST = 'application/vnd.docker.distribution.manifest.v2+json'
const ACCEPT = [MEDIA_OCI_INDEX, MEDIA_OCI_MANIFEST, MEDIA_DOCKER_LIST, MEDIA_DOCKER_MANIFEST].join(', ')
/** A manifest bigger than this is refused (distribution's own limit is 4 MiB). */
const MAX_MANIFEST_BYTES = 4 << 20

export interface Credentials { username: string, password: string }

/** The kubelet's reasons: a failed pull, or a pull refused by imagePullPolicy Never. */
export type PullReason = 'ErrImagePull' | 'ErrImageNeverPull'

export class PullError extends Error {
  override name = 'PullError'
  readonly reason: PullReason
  /** The HTTP status, when a registry answered. */
  readonly status: number | undefined
  /** The first error code in the registry's body (`UNAUTHORIZED`, `MANIFEST_UNKNOWN`, …). */
  readonly code: string | undefined
  constructor (message: string, opts: { status?: number, code?: string, reason?: PullReason, cause?: unknown } = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause })
    this.status = opts.status
    this.code = opts.code
    this.reason = opts.reason ?? 'ErrImagePull'
  }
}

export interface Platform { os: string, architecture: string, variant?: string }

const ARCH: Partial<Record<string, string>> = { x64: 'amd64', arm64: 'arm64', arm: 'arm', ia32: '386', ppc64: 'ppc64le', s390x: 's390x', riscv64: 'riscv64' }

/** linux and process.arch in OCI's names (x64 → amd64). */
export function hostPlatform (): Platform {
  return { os: 'linux', architecture: ARCH[process.arch] ?? process.arch }
}

export interface Descriptor { mediaType: string, digest: string, size: number, urls?: string[], platform?: Platform, annotations?: Record<string, string> }

export interface ImageManifest { schemaVersion: number, mediaType?: string, config: Descriptor, layers: Descriptor[] }

/** An image manifest as resolved: its digest, its bytes (stored as they came), and the index it came through, if any. */
export interface ResolvedManifest { digest: string, mediaType: string, bytes: Buffer, manifest: ImageManifest, index?: { digest: string, bytes: Buffer } }

export interface RegistryOptions {
  credentials?: Credentials
  /** Registries (`host[:port]`) reached over plain http although not loopback. */
  insecure?: readonly string[]
  /** For tests: a fetch that counts or fails requests. */
  fetch?: typeof fetch
  /** Each request's limit; a layer's download is one request. Default 10 minutes. */
  timeoutMs?: number
}

/** `http` for loopback and insecure registries, `https` otherwise. */
export function schemeFor (host: string, insecure: readonly string[] = []): 'http' | 'https' {
  if (insecure.includes(host)) return 'http'
  const name = host.startsWith('[') ? host.slice(0, host.indexOf(']') + 1) : host.replace(/:[0-9]+$/, '')
  if (name === 'localhost' || name === '[::1]' || /^127\.[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}$/.test(name)) return 'http'
  return 'https'
}

export interface Challenge { scheme: string, params: Record<string, string> }

/** `Bearer realm="https://auth",service="reg",scope="repository:a:pull"` → scheme and params. */
export function parseChallenge (header: string): Challenge | undefined {
  const m = /^\s*([A-Za-z]+)\s*(.*)$/.exec(header)
  if (m === null) return undefined
  const params: Record<string, string> = {}
  const re = /([A-Za-z_]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^,\s]*))\s*,?\s*/g
  for (let p = re.exec(m[2] ?? ''); p !== null && p[0] !== ''; p = re.exec(m[2] ?? '')) {
    params[(p[1] ?? '').toLowerCase()] = p[2] !== undefined ? p[2].replace(/\\(.)/g, '$1') : (p[3] ?? '')
  }
  return { scheme: (m[1] ?? '').toLowerCase(), params }
}

/** The registry's own words from a `{"errors":[{"code","message"}]}` body, if it has them. */
export function registryMessage (body: string): { code?: string, message?: string } {
  try {
    const parsed = JSON.parse(body) as { errors?: Array<{ code?: unknown, message?: unknown }> }
    const first = Array.isArray(parsed.errors) ? parsed.errors[0] : undefined
    if (first === undefined) return {}
    const out: { code?: string, message?: string } = {}
    if (typeof first.code === 'string') out.code = first.code
    if (typeof first.message === 'string') out.message = first.message
    return out
  } catch {
    return {}
  }
}

const HUB_ALIASES = [DOCKER_HUB, 'index.docker.io', 'registry-1.docker.io', 'https://index.docker.io/v1/', 'https://index.docker.io/v1', 'https://registry-1.docker.io']

/**
 * The credentials for `registry` in a pull secret's `.dockerconfigjson`
 * (its text, or the parsed object): an `auths` entry keyed by the host, or
 * by a URL naming it, with `auth` (base64 of user:password) or
 * `username` and `password`. Docker Hub is found under any of its aliases.
 */
export function credentialsFor (dockerConfig: string | unknown, registry: string): Credentials | undefined {
  let config: unknown = dockerConfig
  if (typeof dockerConfig === 'string') {
    try { config = JSON.parse(dockerConfig) } catch { throw new PullError('the pull secret\'s .dockerconfigjson is not JSON') }
  }
  if (typeof config !== 'object' || config === null) return undefined
  const auths = (config as { auths?: unknown }).auths
  if (typeof auths !== 'object' || auths === null) return undefined
  const wanted = registry === DOCKER_HUB || registry === 'index.docker.io' ? HUB_ALIASES : [registry]
  for (const [key, entry] of Object.entries(auths as Record<string, unknown>)) {
    const host = key.replace(/^[a-z]+:\/\//, '').replace(/\/.*$/, '')
    if (!wanted.includes(key) && !wanted.includes(host)) continue
    if (typeof entry !== 'object' || entry === null) continue
    const e = entry as { auth?: unknown, username?: unknown, password?: unknown }
    if (typeof e.auth === 'string' && e.auth !== '') {
      const plain = Buffer.from(e.auth, 'base64').toString('utf8')
      const colon = plain.indexOf(':')
      if (colon > 0) return { username: plain.slice(0, colon), password: plain.slice(colon + 1) }
    }
    if (typeof e.username === 'string' && typeof e.password === 'string') return { username: e.username, password: e.password }
  }
  return undefined
}

export function sha256 (bytes: Uint8Array): string {
  return `sha256:${createHash('sha256').update(bytes).digest('hex')}`
}

function platformName (p: Platform | undefined): string {
  if (p === undefined) return 'unknown'
  return `${p.os}/${p.architecture}${p.variant !== undefined && p.variant !== '' ? `/${p.variant}` : ''}`
}

/** One registry, one repository's pulls: the authorization a challenge earned is reused for the client's life. */
export class RegistryClient {
  private readonly base: string
  private readonly fetchFn: typeof fetch
  private readonly timeoutMs: number
  private authorization: string | undefined
  readonly apiHost: string
  private readonly repository: string
  private readonly opts: RegistryOptions

  constructor (apiHost: string, repository: string, opts: RegistryOptions = {}) {
    this.apiHost = apiHost
    this.repository = repository
    this.opts = opts
    this.base = `${schemeFor(apiHost, opts.insecure)}://${apiHost}/v2/${repository}`
    this.fetchFn = opts.fetch ?? fetch
    this.timeoutMs = opts.timeoutMs ?? 600_000
  }

  /** The image manifest for `selector` (a tag or a digest), through an index to `platform` when it is one. */
  async resolve (selector: string, platform: Platform = hostPlatform()): Promise<ResolvedManifest> {
    const first = await this.manifest(selector)
    if (first.mediaType !== MEDIA_OCI_INDEX && first.mediaType !== MEDIA_DOCKER_LIST) return this.asImage(first)
    const list = first.json as { manifests?: Descriptor[] }
    const offered = Array.isArray(list.manifests) ? list.manifests : []
    const matching = offered.filter(d => d.platform?.os === platform.os && d.platform.architecture === platform.architecture &&
      (platform.variant === undefined || d.platform.variant === undefined || d.platform.variant === platform.variant))
    const chosen = matching[0]
    if (chosen === undefined) {
      const names = offered.map(d => platformName(d.platform)).filter(n => n !== 'unknown/unknown')
      throw new PullError(`${this.repository}:${selector} has no image for ${platformName(platform)}; it offers ${names.length === 0 ? 'none' : names.join(', ')}`)
    }
    if (!DIGEST.test(chosen.digest)) throw new PullError(`the index of ${this.repository}:${selector} names a digest this client cannot verify: ${chosen.digest}`)
    const image = this.asImage(await this.manifest(chosen.digest))
    image.index = { digest: first.digest, bytes: first.bytes }
    return image
  }

  /** A manifest's bytes, checked against its digest when fetched by one. */
  async manifest (selector: string): Promise<{ digest: string, mediaType: string, bytes: Buffer, json: unknown }> {
    const res = await this.request(`${this.base}/manifests/${selector}`, { accept: ACCEPT }, `manifest ${selector}`)
    const declared = Number(res.headers.get('content-length') ?? '0')
    if (declared > MAX_MANIFEST_BYTES) throw new PullError(`the manifest ${selector} of ${this.repository} is ${declared} bytes, more than ${MAX_MANIFEST_BYTES}`)
    const bytes = Buffer.from(await res.arrayBuffer())
    if (bytes.length > MAX_MANIFEST_BYTES) throw new PullError(`the manifest ${selector} of ${this.repository} is more than ${MAX_MANIFEST_BYTES} bytes`)
    const digest = sha256(bytes)
    if (DIGEST.test(selector) && digest !== selector) throw new PullError(`the manifest ${selector} of ${this.repository} arrived with digest ${digest}`)
    let json: unknown
    try { json = JSON.parse(bytes.toString('utf8')) } catch { throw new PullError(`the manifest ${selector} of ${this.repository} is not JSON`) }
    const inBody = (json as { mediaType?: unknown }).mediaType
    const header = (res.headers.get('content-type') ?? '').split(';')[0]?.trim() ?? ''
    const mediaType = typeof inBody === 'string' && inBody !== '' ? inBody : header
    return { digest, mediaType, bytes, json }
  }

  /** A blob's response, its body not yet read; redirects (to a CDN, say) are followed. */
  async blob (digest: string): Promise<Response> {
    if (!DIGEST.test(digest)) throw new PullError(`blob digest ${JSON.stringify(digest)} is not sha256: and 64 hex digits`)
    return await this.request(`${this.base}/blobs/${digest}`, {}, `blob ${digest}`)
  }

  private asImage (m: { digest: string, mediaType: string, bytes: Buffer, json: unknown }): ResolvedManifest {
    if (m.mediaType !== MEDIA_OCI_MANIFEST && m.mediaType !== MEDIA_DOCKER_MANIFEST) {
      throw new PullError(`${this.repository}@${m.digest} is a ${m.mediaType === '' ? 'manifest of no media type' : m.mediaType}, not an OCI or Docker v2 image manifest`)
    }
    const manifest = m.json as ImageManifest
    const ok = (d: unknown): boolean => typeof d === 'object' && d !== null && typeof (d as Descriptor).digest === 'string' && DIGEST.test((d as Descriptor).digest) && typeof (d as Descriptor).mediaType === 'string'
    if (!ok(manifest.config) || !Array.isArray(manifest.layers) || !manifest.layers.every(ok)) {
      throw new PullError(`the manifest ${m.digest} of ${this.repository} has a config or layer without a sha256 digest and media type`)
    }
    return { digest: m.digest, mediaType: m.mediaType, bytes: m.bytes, manifest }
  }

  /** GET `url`, authenticating once on a 401 as its challenge asks. */
  private async request (url: string, headers: Record<string, string>, what: string): Promise<Response> {
    let res = await this.get(url, headers, what)
    if (res.status === 401) {
      const challenge = parseChallenge(res.headers.get('www-authenticate') ?? '')
      const body = await res.text()
      if (challenge === undefined) throw this.failure(res, body, what)
      await this.authenticate(challenge, res, body, what)
      res = await this.get(url, headers, what)
    }
    if (!res.ok) throw this.failure(res, await res.text().catch(() => ''), what)
    return res
  }

  private async get (url: string, headers: Record<string, string>, what: string): Promise<Response> {
    const h: Record<string, string> = { ...headers }
    if (this.authorization !== undefined) h.authorization = this.authorization
    try {
      return await this.fetchFn(url, { headers: h, redirect: 'follow', signal: AbortSignal.timeout(this.timeoutMs) })
    } catch (err) {
      throw new PullError(`cannot reach ${this.apiHost} for ${this.repository} ${what}: ${(err as Error).cause instanceof Error ? ((err as Error).cause as Error).message : (err as Error).message}`, { cause: err })
    }
  }

  private async authenticate (challenge: Challenge, res: Response, body: string, what: string): Promise<void> {
    const creds = this.opts.credentials
    const basic = creds === undefined ? undefined : `Basic ${Buffer.from(`${creds.username}:${creds.password}`).toString('base64')}`
    if (challenge.scheme === 'basic') {
      // Already sent them, or have none: the registry's 401 is the answer.
      if (basic === undefined || this.authorization === basic) throw this.failure(res, body, what)
      this.authorization = basic
      return
    }
    if (challenge.scheme !== 'bearer' || challenge.params.realm === undefined) throw this.failure(res, body, what)
    const realm = new URL(challenge.params.realm)
    if (challenge.params.service !== undefined) realm.searchParams.set('service', challenge.params.service)
    realm.searchParams.set('scope', challenge.params.scope ?? `repository:${this.repository}:pull`)
    let tokenRes: Response
    try {
      tokenRes = await this.fetchFn(realm, { headers: basic === undefined ? {} : { authorization: basic }, signal: AbortSignal.timeout(Math.min(this.timeoutMs, 60_000)) })
    } catch (err) {
      throw new PullError(`cannot reach ${realm.host} for a token to pull ${this.repository}: ${(err as Error).message}`, { cause: err })
    }
    const tokenBody = await tokenRes.text()
    if (!tokenRes.ok) throw this.failure(tokenRes, tokenBody, `token from ${realm.host}`)
    let token: unknown
    try {
      const parsed = JSON.parse(tokenBody) as { token?: unknown, access_token?: unknown }
      token = parsed.token ?? parsed.access_token
    } catch { /* reported below */ }
    if (typeof token !== 'string' || token === '') throw new PullError(`the token server ${realm.host} answered without a token`, { status: tokenRes.status })
    if (this.authorization === `Bearer ${token}`) throw this.failure(res, body, what)
    this.authorization = `Bearer ${token}`
  }

  private failure (res: Response, body: string, what: string): PullError {
    const said = registryMessage(body)
    const words = said.message ?? (body.trim().slice(0, 200) || res.statusText)
    const opts: { status: number, code?: string } = { status: res.status }
    if (said.code !== undefined) opts.code = said.code
    return new PullError(`${this.apiHost}/${this.repository} ${what}: ${res.status}${said.code !== undefined ? ` ${said.code}` : ''}: ${words}`, opts)
  }
}
