// The image cache: blobs by content (`blobs/sha256/<hex>`) and the images
// pulled into it (`images.json`: reference and platform → manifest, config and layer
// digests). A blob is written to a temporary file while its sha256 is
// computed, and renamed into place only when the digest matches, so a blob
// present is a blob verified; one already present is not fetched again.
// `roots/<hex>` holds an image unpacked (ImagePuller.rootOf), named by its
// manifest's digest. `gc` deletes the images not kept, every blob no kept
// image names and the roots of the images deleted.
// One ContentStore per directory and process: its writes of images.json are
// serialized in memory.
// May import: libraries (tar-stream) and `node:` built-ins only.
import { createHash, randomBytes } from 'node:crypto'
import { createWriteStream } from 'node:fs'
import { mkdir, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { Readable, Transform } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { DIGEST } from './reference.ts'

export class ContentError extends Error {
  override name = 'ContentError'
}

export interface LayerRecord { digest: string, mediaType: string, size: number }

/** One image in the cache, as `pull` recorded it. */
export interface CachedImage {
  /** The fully qualified reference it was pulled by; with `platform`, the record's key. */
  reference: string
  /** The platform asked for (`linux/amd64`): one reference to an index is one image per platform. */
  platform: string
  /** The image manifest's digest: what `gc` keeps images by. */
  manifestDigest: string
  /** The index the manifest was chosen from, when the reference named one. */
  indexDigest?: string
  configDigest: string
  layers: LayerRecord[]
}

/** `images` is keyed by `reference platform`. */
interface ImagesFile { version: 1, images: Record<string, CachedImage> }

export interface GcResult { removedImages: string[], removedBlobs: string[] }

/** images.json's key: an index's reference holds one image per platform. */
function imageKey (reference: string, platform: string): string {
  return `${reference} ${platform}`
}

export class ContentStore {
  readonly root: string
  private chain: Promise<unknown> = Promise.resolve()

  constructor (root: string) {
    this.root = root
  }

  blobPath (digest: string): string {
    if (!DIGEST.test(digest)) throw new ContentError(`not a sha256 digest: ${JSON.stringify(digest)}`)
    return join(this.root, 'blobs', 'sha256', digest.slice('sha256:'.length))
  }

  /** Where the image of this manifest is kept unpacked (ImagePuller.rootOf). */
  rootPath (manifestDigest: string): string {
    if (!DIGEST.test(manifestDigest)) throw new ContentError(`not a sha256 digest: ${JSON.stringify(manifestDigest)}`)
    return join(this.root, 'roots', manifestDigest.slice('sha256:'.length))
  }

  async has (digest: string): Promise<boolean> {
    try {
      return (await stat(this.blobPath(digest))).isFile()
    } catch {
      return false
    }
  }

  /**
   * Stores `body` as blob `digest` unless it is there already; returns its
   * path. A body whose sha256 (or size, when `size` is given) differs is
   * refused and leaves nothing behind.
   */
  async put (digest: string, body: AsyncIterable<Uint8Array> | ReadableStream<Uint8Array> | Uint8Array, size?: number): Promise<string> {
    const path = this.blobPath(digest)
    if (await this.has(digest)) return path
    const dir = join(this.root, 'blobs', 'sha256')
    await mkdir(dir, { recursive: true })
    const tmp = join(this.root, 'tmp', `${digest.slice(7, 19)}-${randomBytes(6).toString('hex')}`)
    await mkdir(join(this.root, 'tmp'), { recursive: true })
    const hash = createHash('sha256')
    let written = 0
    const count = new Transform({
      transform (chunk: Buffer, _enc, done) {
        written += chunk.length
        if (size !== undefined && written > size) { done(new ContentError(`blob ${digest} is larger than the ${size} bytes its descriptor says`)); return }
        hash.update(chunk)
        done(null, chunk)
      }
    })
    const source = body instanceof Uint8Array
      ? Readable.from([body])
      : body instanceof ReadableStream ? Readable.fromWeb(body as import('node:stream/web').ReadableStream<Uint8Array>) : Readable.from(body)
    try {
      await pipeline(source, count, createWriteStream(tmp, { mode: 0o644 }))
      const got = `sha256:${hash.digest('hex')}`
      if (got !== digest) throw new ContentError(`blob ${digest} arrived with digest ${got}`)
      if (size !== undefined && written !== size) throw new ContentError(`blob ${digest} is ${written} bytes, not the ${size} its descriptor says`)
      await rename(tmp, path)
    } catch (err) {
      await rm(tmp, { force: true })
      throw err
    }
    return path
  }

  async readBlob (digest: string): Promise<Buffer> {
    return await readFile(this.blobPath(digest))
  }

  /** The image recorded under `reference` for `platform`, if all its blobs are still present. */
  async lookup (reference: string, platform: string): Promise<CachedImage | undefined> {
    const image = (await this.readImages()).images[imageKey(reference, platform)]
    if (image === undefined) return undefined
    for (const d of [image.manifestDigest, image.configDigest, ...image.layers.map(l => l.digest)]) {
      if (!await this.has(d)) return undefined
    }
    return image
  }

  async images (): Promise<CachedImage[]> {
    return Object.values((await this.readImages()).images)
  }

  async record (image: CachedImage): Promise<void> {
    await this.serialized(async () => {
      const file = await this.readImages()
      file.images[imageKey(image.reference, image.platform)] = image
      await this.writeImages(file)
    })
  }

  /**
   * Forgets the images whose manifest digest is not in `inUse`, then
   * deletes every blob (and leftover temporary file) that no remaining
   * image names.
   */
  async gc (inUse: ReadonlySet<string>): Promise<GcResult> {
    return await this.serialized(async () => {
      const file = await this.readImages()
      const removedImages: string[] = []
      const keep = new Set<string>()
      for (const [key, image] of Object.entries(file.images)) {
        if (!inUse.has(image.manifestDigest)) {
          removedImages.push(image.reference)
          delete file.images[key]
          continue
        }
        for (const d of [image.manifestDigest, image.configDigest, ...image.layers.map(l => l.digest)]) keep.add(d)
        if (image.indexDigest !== undefined) keep.add(image.indexDigest)
      }
      await this.writeImages(file)
      const removedBlobs: string[] = []
      const dir = join(this.root, 'blobs', 'sha256')
      for (const hex of await readdir(dir).catch(() => [] as string[])) {
        const digest = `sha256:${hex}`
        if (keep.has(digest)) continue
        await rm(join(dir, hex), { force: true, recursive: true })
        removedBlobs.push(digest)
      }
      await rm(join(this.root, 'tmp'), { force: true, recursive: true })
      // The unpacked roots of the images forgotten (ImagePuller.gc removes the unpackings left half-done).
      const kept = new Set([...Object.values(file.images)].map(i => i.manifestDigest.slice('sha256:'.length)))
      for (const name of await readdir(join(this.root, 'roots')).catch(() => [] as string[])) {
        if (!kept.has(name) && !name.startsWith('tmp-')) await rm(join(this.root, 'roots', name), { force: true, recursive: true })
      }
      return { removedImages: removedImages.sort(), removedBlobs: removedBlobs.sort() }
    })
  }

  private async serialized<T> (work: () => Promise<T>): Promise<T> {
    const run = this.chain.then(work, work)
    this.chain = run.catch(() => undefined)
    return await run
  }

  /** images.json as last read or written: this store is its only writer */
  private imagesFile: ImagesFile | undefined

  /** A copy of images.json, read from the disk once. */
  private async readImages (): Promise<ImagesFile> {
    if (this.imagesFile !== undefined) return structuredClone(this.imagesFile)
    let text: string
    try {
      text = await readFile(join(this.root, 'images.json'), 'utf8')
    } catch {
      return { version: 1, images: {} }
    }
    const parsed = JSON.parse(text) as Partial<ImagesFile>
    if (parsed.version !== 1 || typeof parsed.images !== 'object' || parsed.images === null) {
      throw new ContentError(`${join(this.root, 'images.json')} is not an image list of version 1`)
    }
    this.imagesFile = { version: 1, images: parsed.images }
    return structuredClone(this.imagesFile)
  }

  private async writeImages (file: ImagesFile): Promise<void> {
    await mkdir(this.root, { recursive: true })
    const tmp = join(this.root, `images.json.${randomBytes(6).toString('hex')}`)
    await writeFile(tmp, JSON.stringify(file, null, 1) + '\n', { mode: 0o644 })
    await rename(tmp, join(this.root, 'images.json'))
    this.imagesFile = structuredClone(file)
  }
}
