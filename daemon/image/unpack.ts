// Applying an image's layers, in order, to a root directory: gzip, zstd
// (when this Node's zlib has it) or plain tar, told apart by their magic
// bytes; OCI whiteouts (`.wh.NAME` removes NAME, `.wh..wh..opq` empties a
// directory of what earlier layers put there); regular files with their
// modes, directories, symlinks and hard links. A layer is untrusted input:
// an entry whose path is absolute or climbs with `..`, whose parent in the
// root is a symlink (planted by an earlier entry or layer), or whose hard
// link names such a path is refused with UnsafeLayerError. Symlinks in the
// root are never followed: each parent is checked with lstat, files are
// opened with O_NOFOLLOW, and a symlink's own target is stored as it is
// (it means something only inside the container). Devices and FIFOs are
// skipped. Owners are chowned when running as root and always reported.
// May import: libraries (tar-stream) and `node:` built-ins only.
import { constants, createReadStream } from 'node:fs'
import { chmod, link, lchown, lstat, lutimes, mkdir, open, readdir, rm, statfs, symlink } from 'node:fs/promises'
import type { FileHandle } from 'node:fs/promises'
import { join } from 'node:path'
import { pipeline } from 'node:stream/promises'
import zlib from 'node:zlib'
import { extract } from 'tar-stream'
import type { Header } from 'tar-stream'

export class UnsafeLayerError extends Error {
  override name = 'UnsafeLayerError'
}

export class LayerFormatError extends Error {
  override name = 'LayerFormatError'
}

export interface UnpackOptions {
  /** chown entries to their uid and gid; defaults to whether this process is root. */
  chown?: boolean
  /**
   * Free space the unpacking leaves on the root's file system: a file that
   * would take it below this is refused (LayerFormatError) before it is
   * written, so an image whose layers decompress to more than the disk has
   * (a gzip bomb) stops short of filling it. Default: 5 % of the file
   * system (ext4 keeps about as much for root by default).
   */
  minFreeBytes?: number
}

/** What a layer did that the caller may want: owners (for a later chown or an idmap) and entries skipped. */
export interface LayerReport {
  /** Path (relative to the root) → owner, for entries not owned by 0:0. */
  owners: Map<string, { uid: number, gid: number }>
  skipped: string[]
}

export type Compression = 'gzip' | 'zstd' | 'none'

/** gzip and zstd by their magic bytes; anything else is taken as a plain tar. */
export function detectCompression (head: Uint8Array): Compression {
  if (head[0] === 0x1f && head[1] === 0x8b) return 'gzip'
  if (head[0] === 0x28 && head[1] === 0xb5 && head[2] === 0x2f && head[3] === 0xfd) return 'zstd'
  return 'none'
}

const zstdDecompress = (zlib as unknown as { createZstdDecompress?: () => NodeJS.ReadWriteStream }).createZstdDecompress

/** Whether this Node can read zstd layers (Node 22.15+, 24). */
export function zstdSupported (): boolean {
  return typeof zstdDecompress === 'function'
}

/** Applies the layer files in order to `root` (created if missing). */
export async function unpackLayers (root: string, layerFiles: readonly string[], opts: UnpackOptions = {}): Promise<LayerReport> {
  await mkdir(root, { recursive: true, mode: 0o755 })
  const report: LayerReport = { owners: new Map(), skipped: [] }
  for (const file of layerFiles) await applyLayerFile(root, file, opts, report)
  return report
}

/** Applies one layer file (compressed or not) to `root`. */
export async function applyLayerFile (root: string, file: string, opts: UnpackOptions = {}, report: LayerReport = { owners: new Map(), skipped: [] }): Promise<LayerReport> {
  const fh = await open(file, 'r')
  const head = Buffer.alloc(4)
  try { await fh.read(head, 0, 4, 0) } finally { await fh.close() }
  const compression = detectCompression(head)
  const streams: Array<NodeJS.ReadableStream | NodeJS.ReadWriteStream> = [createReadStream(file)]
  if (compression === 'gzip') streams.push(zlib.createGunzip())
  if (compression === 'zstd') {
    if (zstdDecompress === undefined) throw new LayerFormatError(`${file} is zstd-compressed and this Node's zlib cannot read zstd`)
    streams.push(zstdDecompress())
  }
  await applyLayer(root, streams, opts, report)
  return report
}

/** Splits a tar name into components, refusing absolute names and `..`. */
export function safeComponents (name: string, what: string): string[] {
  if (name.startsWith('/')) throw new UnsafeLayerError(`${what} ${JSON.stringify(name)} is absolute`)
  const parts = name.split('/').filter(p => p !== '' && p !== '.')
  if (parts.includes('..')) throw new UnsafeLayerError(`${what} ${JSON.stringify(name)} climbs with ..`)
  if (parts.some(p => p.includes('\0'))) throw new UnsafeLayerError(`${what} ${JSON.stringify(name)} holds a NUL byte`)
  return parts
}

/**
 * Makes sure every parent of `parts` in `root` is a real directory,
 * creating missing ones; a symlink or a file on the way is refused.
 */
async function ensureParents (root: string, parts: readonly string[], name: string, created: Set<string>): Promise<void> {
  let path = root
  for (let i = 0; i < parts.length - 1; i++) {
    path = join(path, parts[i] as string)
    const st = await lstat(path).catch(() => undefined)
    if (st === undefined) {
      await mkdir(path, { mode: 0o755 })
      created.add(parts.slice(0, i + 1).join('/'))
      continue
    }
    if (st.isSymbolicLink()) throw new UnsafeLayerError(`entry ${JSON.stringify(name)} goes through the symlink ${parts.slice(0, i + 1).join('/')}`)
    if (!st.isDirectory()) throw new UnsafeLayerError(`entry ${JSON.stringify(name)} goes through ${parts.slice(0, i + 1).join('/')}, which is not a directory`)
  }
}

/** Applies one tar to `root`: `source` is its byte stream, then any decompressors, piped in order. */
export async function applyLayer (root: string, source: Array<NodeJS.ReadableStream | NodeJS.ReadWriteStream>, opts: UnpackOptions = {}, report: LayerReport = { owners: new Map(), skipped: [] }): Promise<LayerReport> {
  const chown = opts.chown ?? process.getuid?.() === 0
  const tar = extract()
  // Paths this layer wrote: a whiteout applies only to what earlier layers put there.
  const created = new Set<string>()
  const opaque: string[] = []
  const dirModes = new Map<string, number>()
  const space = new SpaceGuard(root, opts.minFreeBytes)
  const feeding = (pipeline as unknown as (...streams: unknown[]) => Promise<void>)(...source, tar)
  const applying = (async () => {
    try {
      for await (const entry of tar) {
        const h: Header = entry.header
        try {
          await applyEntry(h, entry as unknown as AsyncIterable<Buffer>)
        } finally {
          entry.resume()
        }
      }
    } catch (err) {
      tar.destroy() // ends the decompressors too: pipeline settles
      throw err
    }
  })()

  async function applyEntry (h: Header, body: AsyncIterable<Buffer>): Promise<void> {
    const parts = safeComponents(h.name, 'entry')
    if (parts.length === 0) {
      if (h.type === 'directory') dirModes.set('', (h.mode ?? 0o755) & 0o7777)
      return
    }
    const rel = parts.join('/')
    const base = parts[parts.length - 1] as string
    await ensureParents(root, parts, h.name, created)
    const path = join(root, ...parts)
    const parentRel = parts.slice(0, -1).join('/')

    if (base === '.wh..wh..opq') { opaque.push(parentRel); return }
    if (base.startsWith('.wh.')) {
      const target = parts.slice(0, -1).concat(base.slice(4))
      const targetRel = target.join('/')
      if (base === '.wh.' || base === '.wh..' || base === '.wh...') throw new UnsafeLayerError(`whiteout ${JSON.stringify(h.name)} names nothing, the directory itself or its parent`)
      if (!created.has(targetRel)) await rm(join(root, ...target), { recursive: true, force: true })
      return
    }

    const existing = await lstat(path).catch(() => undefined)
    if (existing !== undefined && !(existing.isDirectory() && h.type === 'directory')) {
      await rm(path, { recursive: true, force: true })
    }
    created.add(rel)
    const mode = (h.mode ?? 0o644) & 0o7777
    switch (h.type) {
      case 'directory':
        if (existing === undefined || !existing.isDirectory()) await mkdir(path, { mode: 0o755 })
        dirModes.set(rel, mode)
        break
      case 'file':
      case 'contiguous-file': {
        await space.take(h.size ?? 0, h.name)
        const fh = await open(path, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o600)
        try {
          await writeAll(fh, body)
          // chown before chmod: a chown clears the setuid and setgid bits
          if (chown) await fh.chown(h.uid ?? 0, h.gid ?? 0)
          await fh.chmod(mode)
        } finally {
          await fh.close()
        }
        break
      }
      case 'symlink':
        if (h.linkname === undefined || h.linkname === null || h.linkname === '') throw new LayerFormatError(`symlink ${JSON.stringify(h.name)} has no target`)
        await symlink(h.linkname, path)
        break
      case 'link': {
        const target = safeComponents(h.linkname ?? '', `hard link ${JSON.stringify(h.name)} to`)
        if (target.length === 0) throw new UnsafeLayerError(`hard link ${JSON.stringify(h.name)} names the root`)
        await ensureParents(root, target, h.linkname ?? '', new Set())
        const targetPath = join(root, ...target)
        const st = await lstat(targetPath).catch(() => undefined)
        if (st === undefined) throw new LayerFormatError(`hard link ${JSON.stringify(h.name)} names ${JSON.stringify(h.linkname)}, which the root does not have`)
        if (st.isDirectory()) throw new UnsafeLayerError(`hard link ${JSON.stringify(h.name)} names the directory ${JSON.stringify(h.linkname)}`)
        await link(targetPath, path)
        return // a hard link shares its target's mode, owner and times
      }
      default:
        created.delete(rel)
        report.skipped.push(`${rel} (${h.type ?? 'unknown type'})`)
        return
    }
    const uid = h.uid ?? 0
    const gid = h.gid ?? 0
    if (uid !== 0 || gid !== 0) report.owners.set(rel, { uid, gid })
    if (chown && h.type !== 'file' && h.type !== 'contiguous-file') await lchown(path, uid, gid)
    if (h.mtime !== undefined && h.type !== 'directory') await lutimes(path, h.mtime, h.mtime).catch(() => undefined)
  }

  const [applied, fed] = await Promise.allSettled([applying, feeding])
  const failed = applied.status === 'rejected' ? applied : fed.status === 'rejected' ? fed : undefined
  if (failed !== undefined) {
    const err = failed.reason as Error
    throw err instanceof UnsafeLayerError || err instanceof LayerFormatError ? err : new LayerFormatError(`the layer is not a readable tar: ${err.message}`, { cause: err })
  }

  // Opaque directories: drop what earlier layers left in them, keep this layer's own entries.
  for (const dirRel of opaque) await hideLower(root, dirRel, created)
  // Modes last, deepest first, so that a read-only directory did not stop the writes into it.
  // Both walk paths the layer may have changed since: a directory later replaced by a symlink (to the
  // host's /, say) must not be followed, so every component is checked again first.
  for (const [rel, mode] of [...dirModes].sort((a, b) => b[0].length - a[0].length)) {
    if (await realDirectory(root, rel)) await chmod(rel === '' ? root : join(root, ...rel.split('/')), mode)
  }
  return report
}

/** Whether `rel` under `root` is a directory reached through directories only, no symlink on the way. */
async function realDirectory (root: string, rel: string): Promise<boolean> {
  let path = root
  for (const part of rel === '' ? [] : rel.split('/')) {
    path = join(path, part)
    const st = await lstat(path).catch(() => undefined)
    if (st === undefined || st.isSymbolicLink() || !st.isDirectory()) return false
  }
  return true
}

/** Removes from `dirRel` every entry that this layer did not create, recursing into those it did. */
async function hideLower (root: string, dirRel: string, created: ReadonlySet<string>): Promise<void> {
  if (!(await realDirectory(root, dirRel))) return
  const dir = dirRel === '' ? root : join(root, ...dirRel.split('/'))
  for (const child of await readdir(dir)) {
    const childRel = dirRel === '' ? child : `${dirRel}/${child}`
    if (!created.has(childRel)) await rm(join(dir, child), { recursive: true, force: true })
    else await hideLower(root, childRel, created)
  }
}

/** Asks the file system for its free space every 64 MiB of file bodies (and before any file that big), refusing what would leave less than the reserve. */
class SpaceGuard {
  private readonly root: string
  private readonly reserve: number | undefined
  private sinceCheck = Infinity
  private free = 0
  private min = 0

  constructor (root: string, reserve: number | undefined) {
    this.root = root
    this.reserve = reserve
  }

  async take (bytes: number, name: string): Promise<void> {
    this.sinceCheck += bytes
    if (this.sinceCheck >= 64 * 2 ** 20 || bytes > this.free - this.min) {
      const fs = await statfs(this.root)
      this.free = fs.bavail * fs.bsize
      this.min = this.reserve ?? fs.blocks * fs.bsize * 0.05
      this.sinceCheck = bytes
    }
    if (this.free - bytes < this.min) {
      throw new LayerFormatError(`${name} (${bytes} bytes) would leave less than ${Math.round(this.min / 2 ** 20)} MiB free on the disk that holds ${this.root}; the image is not unpacked`)
    }
    this.free -= bytes
  }
}

async function writeAll (fh: FileHandle, body: AsyncIterable<Buffer>): Promise<void> {
  for await (const chunk of body) {
    let off = 0
    while (off < chunk.length) off += (await fh.write(chunk, off, chunk.length - off)).bytesWritten
  }
}
