// Small OCI images built in-process for the image tests, and pushing them
// with the distribution API. The busybox image has three layers: busybox
// and its applets (gzip), then a layer that whites out a file and makes a
// directory opaque (zstd when this Node can write it, else gzip), then a
// plain tar. The index offers it as linux/amd64 and a one-file image as
// linux/arm64.
import { createHash } from 'node:crypto'
import { readFileSync } from 'node:fs'
import zlib from 'node:zlib'
import { pack } from 'tar-stream'
import type { Header } from 'tar-stream'

export const BUSYBOX = '/usr/bin/busybox'
export const APPLETS = ['sh', 'ls', 'cat', 'echo', 'true']

export interface LayerEntry extends Partial<Header> { name: string, body?: string | Buffer }

export interface Blob { digest: string, mediaType: string, bytes: Buffer }

export interface BuiltImage {
  /** Config and layers, to push before the manifest. */
  blobs: Blob[]
  manifest: Blob
  config: Record<string, unknown>
}

export interface BuiltIndex { images: BuiltImage[], index: Blob }

export function digestOf (bytes: Uint8Array): string {
  return `sha256:${createHash('sha256').update(bytes).digest('hex')}`
}

/** A tar of `entries`, in order. */
export async function tarOf (entries: readonly LayerEntry[]): Promise<Buffer> {
  const p = pack()
  const chunks: Buffer[] = []
  p.on('data', (c: unknown) => { chunks.push(c as Buffer) })
  const done = new Promise<void>((resolve, reject) => { p.on('end', resolve); p.on('error', reject) })
  for (const { body, ...header } of entries) {
    await new Promise<void>((resolve, reject) => {
      const cb = (err?: Error | null): void => { if (err != null) reject(err); else resolve() }
      if (header.type === undefined || header.type === 'file') p.entry({ mode: 0o644, ...header }, body ?? '', cb)
      else p.entry(header, cb)
    })
  }
  p.finalize()
  await done
  return Buffer.concat(chunks)
}

const zstdCompress = (zlib as unknown as { zstdCompressSync?: (b: Buffer) => Buffer }).zstdCompressSync

export function canZstd (): boolean { return typeof zstdCompress === 'function' }

export type LayerCompression = 'gzip' | 'zstd' | 'none'

export function layerBlob (tar: Buffer, compression: LayerCompression): Blob {
  if (compression === 'gzip') {
    const bytes = zlib.gzipSync(tar)
    return { digest: digestOf(bytes), mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', bytes }
  }
  if (compression === 'zstd') {
    if (zstdCompress === undefined) throw new Error('this Node has no zstd')
    const bytes = zstdCompress(tar)
    return { digest: digestOf(bytes), mediaType: 'application/vnd.oci.image.layer.v1.tar+zstd', bytes }
  }
  return { digest: digestOf(tar), mediaType: 'application/vnd.oci.image.layer.v1.tar', bytes: tar }
}

function json (value: unknown, mediaType: string): Blob {
  const bytes = Buffer.from(JSON.stringify(value))
  return { digest: digestOf(bytes), mediaType, bytes }
}

/** An OCI image of `layers` (tar and compression) and the given run config. */
export function imageOf (layers: Array<{ tar: Buffer, compression: LayerCompression }>, architecture: string, run: Record<string, unknown>): BuiltImage {
  const blobs = layers.map(l => layerBlob(l.tar, l.compression))
  const config = {
    architecture,
    os: 'linux',
    config: run,
    rootfs: { type: 'layers', diff_ids: layers.map(l => digestOf(l.tar)) },
    history: layers.map(() => ({ created_by: 'test/helpers/oci-build.ts' }))
  }
  const configBlob = json(config, 'application/vnd.oci.image.config.v1+json')
  const manifest = json({
    schemaVersion: 2,
    mediaType: 'application/vnd.oci.image.manifest.v1+json',
    config: { mediaType: configBlob.mediaType, digest: configBlob.digest, size: configBlob.bytes.length },
    layers: blobs.map(b => ({ mediaType: b.mediaType, digest: b.digest, size: b.bytes.length }))
  }, 'application/vnd.oci.image.manifest.v1+json')
  return { blobs: [configBlob, ...blobs], manifest, config }
}

/**
 * One layer of a minimal root: the host's static busybox in /bin with a link
 * per applet, /etc/passwd with root and nobody, a 1777 /tmp, and `extra`.
 */
export async function busyboxRootLayer (applets: readonly string[], extra: readonly LayerEntry[] = []): Promise<Buffer> {
  return await tarOf([
    { name: 'bin/', type: 'directory', mode: 0o755 },
    { name: 'bin/busybox', mode: 0o755, body: readFileSync(BUSYBOX) },
    ...applets.map(a => ({ name: `bin/${a}`, type: 'symlink' as const, linkname: 'busybox' })),
    { name: 'etc/', type: 'directory', mode: 0o755 },
    { name: 'etc/passwd', body: 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534::/:/bin/sh\n' },
    { name: 'tmp/', type: 'directory', mode: 0o1777 },
    ...extra
  ])
}

export const BUSYBOX_RUN = {
  User: '1000:1000',
  Entrypoint: ['/bin/sh', '-c'],
  Cmd: ['echo hello'],
  Env: ['PATH=/bin', 'GREETING=hello'],
  WorkingDir: '/app'
}

/** busybox with a whiteout, an opaque directory, a hard link and an owner. */
export async function busyboxImage (): Promise<BuiltImage> {
  const base = await tarOf([
    { name: 'bin/', type: 'directory', mode: 0o755 },
    { name: 'bin/busybox', mode: 0o755, body: readFileSync(BUSYBOX) },
    ...APPLETS.map(a => ({ name: `bin/${a}`, type: 'symlink' as const, linkname: 'busybox' })),
    { name: 'bin/busybox-hard', type: 'link', linkname: 'bin/busybox' },
    { name: 'etc/', type: 'directory', mode: 0o755 },
    { name: 'etc/passwd', body: 'root:x:0:0:root:/root:/bin/sh\nuser:x:1000:1000::/app:/bin/sh\n' },
    { name: 'etc/removed-later', body: 'whited out by layer 2\n' },
    { name: 'cache/', type: 'directory', mode: 0o755 },
    { name: 'cache/old-1', body: 'old\n' },
    { name: 'cache/old-dir/', type: 'directory', mode: 0o755 },
    { name: 'cache/old-dir/old-2', body: 'old\n' },
    { name: 'tmp/', type: 'directory', mode: 0o1777 }
  ])
  const change = await tarOf([
    { name: 'etc/.wh.removed-later', body: '' },
    { name: 'cache/.wh..wh..opq', body: '' },
    { name: 'cache/new', body: 'new\n' },
    { name: 'app/', type: 'directory', mode: 0o755, uid: 1000, gid: 1000 },
    { name: 'app/hello.txt', body: 'hello from layer 2\n', uid: 1000, gid: 1000 }
  ])
  const plain = await tarOf([{ name: 'app/layer-3', body: 'plain tar\n', mode: 0o600 }])
  return imageOf([
    { tar: base, compression: 'gzip' },
    { tar: change, compression: canZstd() ? 'zstd' : 'gzip' },
    { tar: plain, compression: 'none' }
  ], 'amd64', BUSYBOX_RUN)
}

/** A one-file image standing for another architecture. */
export async function arm64Image (): Promise<BuiltImage> {
  const tar = await tarOf([{ name: 'arch.txt', body: 'arm64\n' }])
  return imageOf([{ tar, compression: 'gzip' }], 'arm64', { Cmd: ['/arch'] })
}

export function indexOf (entries: Array<{ image: BuiltImage, architecture: string }>): BuiltIndex {
  const index = json({
    schemaVersion: 2,
    mediaType: 'application/vnd.oci.image.index.v1+json',
    manifests: entries.map(e => ({
      mediaType: e.image.manifest.mediaType,
      digest: e.image.manifest.digest,
      size: e.image.manifest.bytes.length,
      platform: { os: 'linux', architecture: e.architecture }
    }))
  }, 'application/vnd.oci.image.index.v1+json')
  return { images: entries.map(e => e.image), index }
}

export interface PushTarget { url: string, auth?: { username: string, password: string } }

function headers (target: PushTarget, extra: Record<string, string> = {}): Record<string, string> {
  if (target.auth === undefined) return extra
  return { ...extra, authorization: `Basic ${Buffer.from(`${target.auth.username}:${target.auth.password}`).toString('base64')}` }
}

async function ok (res: Response, what: string): Promise<Response> {
  if (!res.ok) throw new Error(`${what}: ${res.status} ${await res.text()}`)
  return res
}

/** POST an upload, then PUT the bytes with ?digest= (a monolithic upload in two requests). */
export async function pushBlob (target: PushTarget, repo: string, blob: Blob): Promise<void> {
  const head = await fetch(`${target.url}/v2/${repo}/blobs/${blob.digest}`, { method: 'HEAD', headers: headers(target) })
  if (head.ok) return
  const start = await ok(await fetch(`${target.url}/v2/${repo}/blobs/uploads/`, { method: 'POST', headers: headers(target) }), `start upload of ${blob.digest}`)
  await start.arrayBuffer()
  const location = new URL(start.headers.get('location') ?? '', target.url)
  location.searchParams.set('digest', blob.digest)
  const put = await ok(await fetch(location, {
    method: 'PUT',
    headers: headers(target, { 'content-type': 'application/octet-stream', 'content-length': String(blob.bytes.length) }),
    body: blob.bytes
  }), `upload ${blob.digest}`)
  await put.arrayBuffer()
}

/** PUT a manifest (or index) under `tagOrDigest`. */
export async function pushManifest (target: PushTarget, repo: string, tagOrDigest: string, manifest: Blob): Promise<void> {
  const res = await ok(await fetch(`${target.url}/v2/${repo}/manifests/${tagOrDigest}`, {
    method: 'PUT', headers: headers(target, { 'content-type': manifest.mediaType }), body: manifest.bytes
  }), `push manifest ${repo}:${tagOrDigest}`)
  await res.arrayBuffer()
}

export async function pushImage (target: PushTarget, repo: string, tag: string, image: BuiltImage): Promise<void> {
  for (const b of image.blobs) await pushBlob(target, repo, b)
  await pushManifest(target, repo, tag, image.manifest)
}

/** Its images by digest, then the index under `tag`. */
export async function pushIndex (target: PushTarget, repo: string, tag: string, built: BuiltIndex): Promise<void> {
  for (const image of built.images) await pushImage(target, repo, image.manifest.digest, image)
  await pushManifest(target, repo, tag, built.index)
}
