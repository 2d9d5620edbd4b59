// Pulling an image: the reference parsed, the pull policy applied, the
// manifest resolved (through an index to this platform), the config and
// layers fetched into the content store unless present, and the image
// recorded; then `unpackTo` lays the layers out as a root filesystem. The
// component's entry point: the kubelet will hold one ImagePuller per node.
// Not yet checked: the layers' diff_ids (the sha256 of each uncompressed tar)
// against the config; the compressed digests are verified.
// May import: libraries (tar-stream) and `node:` built-ins only.
import { randomBytes } from 'node:crypto'
import { mkdir, readdir, rename, rm, stat, statfs } from 'node:fs/promises'
import { join } from 'node:path'
import { ContentStore } from './content.ts'
import type { CachedImage, GcResult } from './content.ts'
import { formatReference, manifestSelector, parseReference } from './reference.ts'
import type { ImageReference } from './reference.ts'
import { hostPlatform, PullError, RegistryClient } from './registry.ts'
import type { Credentials, Descriptor, Platform } from './registry.ts'
import { unpackLayers } from './unpack.ts'
import type { LayerReport, UnpackOptions } from './unpack.ts'

export type PullPolicy = 'Always' | 'IfNotPresent' | 'Never'

/** Kubernetes' default: Always for `:latest` or no tag, IfNotPresent otherwise (a digest included). */
export function defaultPullPolicy (ref: ImageReference): PullPolicy {
  return ref.digest === undefined && (ref.tag === undefined || ref.tag === 'latest') ? 'Always' : 'IfNotPresent'
}

/** The parts of an image's config that running it needs, in the CRI's words. */
export interface ImageConfig { entrypoint: string[], cmd: string[], env: string[], user: string, workingDir: string }

export interface PulledImage extends CachedImage {
  config: ImageConfig
  /** The layer blobs in the cache, bottom first. */
  layerPaths: string[]
  /** True when no request was made: the policy let the cached image stand. */
  fromCache: boolean
}

export interface PullerOptions {
  /** The cache's directory (blobs and images.json). */
  cacheDir: string
  /** Registries (`host[:port]`) reached over plain http although not loopback. */
  insecure?: readonly string[]
  /** The platform chosen from an index; defaults to linux and this machine's architecture. */
  platform?: Platform
  /** Layers fetched at once. Default 3, as Docker does. */
  concurrentDownloads?: number
  /** Each request's limit. Default 10 minutes. */
  timeoutMs?: number
  /** For tests: a fetch that counts or fails requests. */
  fetch?: typeof fetch
}

export interface PullOptions {
  /** The credentials for the reference's registry, or a lookup by registry (`credentialsFor` over pull secrets). */
  credentials?: Credentials | ((registry: string) => Credentials | undefined)
  /** Default: `defaultPullPolicy` of the reference. */
  policy?: PullPolicy
  platform?: Platform
}

const LAYER_TYPES = new Set([
  'application/vnd.oci.image.layer.v1.tar',
  'application/vnd.oci.image.layer.v1.tar+gzip',
  'application/vnd.oci.image.layer.v1.tar+zstd',
  'application/vnd.oci.image.layer.nondistributable.v1.tar',
  'application/vnd.oci.image.layer.nondistributable.v1.tar+gzip',
  'application/vnd.oci.image.layer.nondistributable.v1.tar+zstd',
  'application/vnd.docker.image.rootfs.diff.tar.gzip',
  'application/vnd.docker.image.rootfs.foreign.diff.tar.gzip'
])

export class ImagePuller {
  readonly content: ContentStore
  private readonly opts: PullerOptions
  /** unpackings under way, by root directory */
  private readonly unpacking = new Map<string, Promise<string>>()
  /** the run settings of each image config read, by its digest */
  private readonly configs = new Map<string, ImageConfig>()
  /** each unpacking's temporary directory, by root directory */
  private readonly tmpOf = new Map<string, string>()

  constructor (opts: PullerOptions) {
    this.opts = opts
    this.content = new ContentStore(opts.cacheDir)
  }

  /** Pulls `reference` as its policy says; every failure to pull is a PullError (a malformed reference an InvalidReferenceError). */
  async pull (reference: string, opts: PullOptions = {}): Promise<PulledImage> {
    const ref = parseReference(reference)
    const name = formatReference(ref)
    const policy = opts.policy ?? defaultPullPolicy(ref)
    const platform = opts.platform ?? this.opts.platform ?? hostPlatform()
    const platformKey = `${platform.os}/${platform.architecture}${platform.variant !== undefined ? `/${platform.variant}` : ''}`
    if (policy !== 'Always') {
      const cached = await this.content.lookup(name, platformKey)
      if (cached !== undefined) return await this.describe(cached, true)
      if (policy === 'Never') throw new PullError(`${name} is not in the image cache and the pull policy is Never`, { reason: 'ErrImageNeverPull' })
    }
    const credentials = typeof opts.credentials === 'function' ? opts.credentials(ref.registry) : opts.credentials
    const client = new RegistryClient(ref.apiHost, ref.repository, {
      ...(credentials !== undefined ? { credentials } : {}),
      ...(this.opts.insecure !== undefined ? { insecure: this.opts.insecure } : {}),
      ...(this.opts.fetch !== undefined ? { fetch: this.opts.fetch } : {}),
      ...(this.opts.timeoutMs !== undefined ? { timeoutMs: this.opts.timeoutMs } : {})
    })
    const resolved = await client.resolve(manifestSelector(ref), platform)
    const { manifest } = resolved
    for (const layer of manifest.layers) {
      if (!LAYER_TYPES.has(layer.mediaType)) throw new PullError(`${name} has a layer of media type ${layer.mediaType}, which this runtime cannot unpack`)
    }
    if (resolved.index !== undefined) await this.content.put(resolved.index.digest, resolved.index.bytes)
    await this.content.put(resolved.digest, resolved.bytes)
    await this.fetchBlobs(client, name, [manifest.config, ...manifest.layers])
    const image: CachedImage = {
      reference: name,
      platform: platformKey,
      manifestDigest: resolved.digest,
      configDigest: manifest.config.digest,
      layers: manifest.layers.map(l => ({ digest: l.digest, mediaType: l.mediaType, size: l.size }))
    }
    if (resolved.index !== undefined) image.indexDigest = resolved.index.digest
    const described = await this.describe(image, false)
    await this.content.record(image)
    return described
  }

  /** Lays the image's layers out in `dir` (created if missing), bottom first. */
  async unpackTo (image: CachedImage, dir: string, opts: UnpackOptions = {}): Promise<LayerReport> {
    return await unpackLayers(dir, image.layers.map(l => this.content.blobPath(l.digest)), opts)
  }

  /**
   * The image's layers laid out once, in `<cacheDir>/roots/<manifest hex>`,
   * for containers to start from (an overlay's lower directory, or the
   * source of a copy); nobody may write to it. Unpacked into a temporary
   * directory and renamed into place, so a root present is a root whole;
   * callers asking at once share one unpacking.
   */
  async rootOf (image: CachedImage): Promise<string> {
    const dir = this.content.rootPath(image.manifestDigest)
    let making = this.unpacking.get(dir)
    if (making === undefined) {
      making = (async () => {
        if (await isDirectory(dir)) return dir
        const tmp = join(this.content.root, 'roots', `tmp-${randomBytes(6).toString('hex')}`)
        this.tmpOf.set(dir, tmp)
        try {
          await this.unpackTo(image, tmp)
          await rename(tmp, dir)
        } catch (err) {
          await rm(tmp, { recursive: true, force: true })
          // another process of this cache (there is one per peer, but a test may share one) got there first
          if (await isDirectory(dir)) return dir
          throw err
        }
        return dir
      })()
      this.unpacking.set(dir, making)
      const done = (): void => { this.unpacking.delete(dir); this.tmpOf.delete(dir) }
      void making.then(done, done)
    }
    return await making
  }

  /** Forgets the images whose manifest digest is not in `inUse`, deleting the blobs only they named and their unpacked roots. */
  async gc (inUse: ReadonlySet<string>): Promise<GcResult> {
    const result = await this.content.gc(inUse)
    const busy = new Set(this.tmpOf.values())
    const roots = join(this.content.root, 'roots')
    for (const name of await readdir(roots).catch(() => [] as string[])) {
      // an unpacking of this process under way renames its directory into place when done; one of an earlier process never will
      if (name.startsWith('tmp-') && !busy.has(join(roots, name))) await rm(join(roots, name), { recursive: true, force: true })
    }
    return result
  }

  /** The blobs not yet cached, `concurrentDownloads` at a time, each verified as it is written. */
  private async fetchBlobs (client: RegistryClient, name: string, blobs: readonly Descriptor[]): Promise<void> {
    const missing: Descriptor[] = []
    for (const d of blobs) if (!missing.some(m => m.digest === d.digest) && !await this.content.has(d.digest)) missing.push(d)
    // Each blob is held to its descriptor's size while it downloads: what they add up to must leave 5 % of the disk free.
    const needed = missing.reduce((n, d) => n + (typeof d.size === 'number' ? d.size : 0), 0)
    if (needed > 0) {
      await mkdir(this.content.root, { recursive: true })
      const fs = await statfs(this.content.root)
      const keep = fs.blocks * fs.bsize * 0.05
      if (fs.bavail * fs.bsize - needed < keep) {
        throw new PullError(`${name}: its ${missing.length} missing blobs (${Math.round(needed / 2 ** 20)} MiB) would leave less than ${Math.round(keep / 2 ** 20)} MiB free on the disk that holds ${this.content.root}`)
      }
    }
    let next = 0
    // The first failure stops the workers from starting more; the pull fails once all have stopped, with nothing half-written.
    let failure: PullError | undefined
    const worker = async (): Promise<void> => {
      while (failure === undefined && next < missing.length) {
        const d = missing[next++] as Descriptor
        try {
          const res = await client.blob(d.digest)
          if (res.body === null) throw new PullError(`${name}: blob ${d.digest} came with no body`)
          await this.content.put(d.digest, res.body, typeof d.size === 'number' ? d.size : undefined)
        } catch (err) {
          failure ??= err instanceof PullError ? err : new PullError(`${name}: blob ${d.digest}: ${(err as Error).message}`, { cause: err })
        }
      }
    }
    const workers = Math.max(1, Math.min(this.opts.concurrentDownloads ?? 3, missing.length))
    await Promise.all(Array.from({ length: workers }, worker))
    if (failure !== undefined) throw failure
  }

  private async describe (image: CachedImage, fromCache: boolean): Promise<PulledImage> {
    // A config is named by its digest, so what was read once stays true.
    let config = this.configs.get(image.configDigest)
    if (config === undefined) {
      let raw: unknown
      try {
        raw = JSON.parse((await this.content.readBlob(image.configDigest)).toString('utf8'))
      } catch (err) {
        throw new PullError(`${image.reference}: its config ${image.configDigest} is not JSON`, { cause: err })
      }
      config = imageConfig(raw)
      this.configs.set(image.configDigest, config)
    }
    return { ...image, config: structuredClone(config), layerPaths: image.layers.map(l => this.content.blobPath(l.digest)), fromCache }
  }
}

async function isDirectory (path: string): Promise<boolean> {
  return await stat(path).then(st => st.isDirectory(), () => false)
}

/** The run settings of an OCI (or Docker) image config; fields absent or of the wrong type read as empty. */
export function imageConfig (raw: unknown): ImageConfig {
  const c = typeof raw === 'object' && raw !== null ? (raw as { config?: unknown }).config : undefined
  const o = (typeof c === 'object' && c !== null ? c : {}) as Record<string, unknown>
  const strings = (v: unknown): string[] => Array.isArray(v) ? v.filter((s): s is string => typeof s === 'string') : []
  return {
    entrypoint: strings(o.Entrypoint),
    cmd: strings(o.Cmd),
    env: strings(o.Env),
    user: typeof o.User === 'string' ? o.User : '',
    workingDir: typeof o.WorkingDir === 'string' ? o.WorkingDir : ''
  }
}
