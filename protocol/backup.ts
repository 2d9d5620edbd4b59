// The backup file format: writing it as a stream of pieces, reading it back
// from a stream with every check (magic, format, checksum, truncation), and
// summarising the state it holds. The layout, all integers big-endian:
//   "SHOALBAK"  u32 H  H bytes of msgpack header (BackupHeader)
//   body frames: u32 n (1..CHUNK_BYTES) then n bytes, ended by u32 0
//   "SHOALEND"  32 bytes: sha256 of everything before "SHOALEND"
// The body is the RoutedStateMachine's snapshot, byte for byte.
// It lives in protocol/ because `shoal backup` reads these files too.
// May import: ./codec.ts, node: built-ins.
import { createHash } from 'node:crypto'
import type { Hash } from 'node:crypto'
import { constants as bufferConstants } from 'node:buffer'
import { decode, encode, isNumber, isObject, isString } from './codec.ts'

export const BACKUP_MAGIC = 'SHOALBAK'
export const TRAILER_MAGIC = 'SHOALEND'
export const BACKUP_FORMAT = 1
/** body bytes per frame: large enough to cost little, small enough to stream */
export const CHUNK_BYTES = 256 * 1024
const MAX_HEADER_BYTES = 64 * 1024
const DIGEST_BYTES = 32

export interface BackupHeader {
  format: number
  /** the cluster the state comes from (see clusterIdOf) */
  clusterId: string
  /** the log index and term the state was taken at */
  index: number
  term: number
  /** RFC 3339 */
  createdAt: string
  /** the Shoal version that wrote it */
  version: string
  /** the member that took it */
  peer: string
  /** the body's length */
  bodyBytes: number
}

function isHeader (v: unknown): v is BackupHeader {
  return isObject(v) && isNumber(v.format) && isString(v.clusterId) && isNumber(v.index) && isNumber(v.term) &&
    isString(v.createdAt) && isString(v.version) && isString(v.peer) && isNumber(v.bodyBytes) &&
    Number.isSafeInteger(v.bodyBytes) && v.bodyBytes >= 0
}

/** A file that is not a whole, intact backup this Shoal can read; the message says which. */
export class BackupFormatError extends Error {
  override name = 'BackupFormatError'
}

/**
 * The cluster's id: derived from the cluster key, so every peer of a
 * cluster agrees on it with nothing stored, a restored cluster (new key)
 * gets a new one, and the id reveals nothing of the key.
 */
export function clusterIdOf (psk: Uint8Array): string {
  return createHash('sha256').update('shoal cluster id\0').update(psk).digest('hex').slice(0, 32)
}

function u32 (n: number): Uint8Array {
  const out = new Uint8Array(4)
  new DataView(out.buffer).setUint32(0, n)
  return out
}

export function encodeHeader (header: BackupHeader): Uint8Array {
  return encode(header)
}

/** The whole file's length, known before it is written (for Content-Length and progress). */
export function backupFileBytes (headerBytes: number, bodyBytes: number): number {
  const frames = Math.ceil(bodyBytes / CHUNK_BYTES)
  return BACKUP_MAGIC.length + 4 + headerBytes + frames * 4 + bodyBytes + 4 + TRAILER_MAGIC.length + DIGEST_BYTES
}

/**
 * The file as pieces, in order, hashed as they go. Body pieces are views of
 * `body`, never copies, so a writer holds the state once.
 */
export function * backupPieces (header: BackupHeader, body: Uint8Array, encodedHeader = encodeHeader(header)): Generator<Uint8Array> {
  if (header.bodyBytes !== body.length) throw new Error(`backup header says ${header.bodyBytes} body bytes, the body has ${body.length}`)
  const hash = createHash('sha256')
  const out = (piece: Uint8Array): Uint8Array => { hash.update(piece); return piece }
  yield out(Buffer.from(BACKUP_MAGIC, 'latin1'))
  yield out(u32(encodedHeader.length))
  yield out(encodedHeader)
  for (let at = 0; at < body.length; at += CHUNK_BYTES) {
    const chunk = body.subarray(at, Math.min(body.length, at + CHUNK_BYTES))
    yield out(u32(chunk.length))
    yield out(chunk)
  }
  yield out(u32(0))
  yield Buffer.from(TRAILER_MAGIC, 'latin1')
  yield hash.digest()
}

/** Pulls exact byte counts out of a stream of chunks, hashing what it hands out while asked to. */
class ByteReader {
  private readonly source: AsyncIterator<Uint8Array>
  private buf: Uint8Array = new Uint8Array(0)
  private pos = 0
  /** bytes handed out so far */
  consumed = 0
  hash: Hash | undefined = createHash('sha256')

  constructor (source: AsyncIterable<Uint8Array>) {
    this.source = source[Symbol.asyncIterator]()
  }

  private async fill (): Promise<boolean> {
    while (this.pos >= this.buf.length) {
      const next = await this.source.next()
      if (next.done === true) return false
      this.buf = next.value
      this.pos = 0
    }
    return true
  }

  /** Copies exactly `n` bytes into `target` at `offset` (or only hashes them without a target); throws on a short stream. */
  async readInto (n: number, target: Uint8Array | undefined, offset: number, where: string): Promise<void> {
    let left = n
    while (left > 0) {
      if (!(await this.fill())) throw new BackupFormatError(`truncated: the file ends after ${this.consumed} bytes, in the ${where}`)
      const take = Math.min(left, this.buf.length - this.pos)
      const piece = this.buf.subarray(this.pos, this.pos + take)
      this.hash?.update(piece)
      target?.set(piece, offset + (n - left))
      this.pos += take
      this.consumed += take
      left -= take
    }
  }

  async read (n: number, where: string): Promise<Uint8Array> {
    const out = new Uint8Array(n)
    await this.readInto(n, out, 0, where)
    return out
  }

  async u32 (where: string): Promise<number> {
    return new DataView((await this.read(4, where)).buffer).getUint32(0)
  }

  async atEnd (): Promise<boolean> {
    return !(await this.fill())
  }
}

export interface ReadBackup {
  header: BackupHeader
  /** the state (empty when read with keepBody false) */
  body: Uint8Array
  /** the file's length and its sha256 (hex) */
  fileBytes: number
  sha256: string
}

/**
 * Reads and checks a whole backup from a stream of chunks. The body is
 * copied into one buffer of the size the header gives (keepBody false only
 * checks it). Throws BackupFormatError naming what is wrong.
 */
export async function readBackup (source: AsyncIterable<Uint8Array>, opts: { keepBody?: boolean } = {}): Promise<ReadBackup> {
  const r = new ByteReader(source)
  const magic = Buffer.from(await r.read(BACKUP_MAGIC.length, 'magic')).toString('latin1')
  if (magic !== BACKUP_MAGIC) throw new BackupFormatError('not a Shoal backup (no SHOALBAK magic at the start)')
  const headerBytes = await r.u32('header')
  if (headerBytes === 0 || headerBytes > MAX_HEADER_BYTES) throw new BackupFormatError(`corrupted: a header of ${headerBytes} bytes`)
  const raw = await r.read(headerBytes, 'header')
  let header: BackupHeader
  try {
    header = decode(raw, isHeader, 'backup header')
  } catch {
    throw new BackupFormatError('corrupted: the header cannot be decoded')
  }
  if (header.format !== BACKUP_FORMAT) throw new BackupFormatError(`format ${header.format} is not one this Shoal reads (${BACKUP_FORMAT}); written by Shoal ${header.version}`)
  if (header.bodyBytes > bufferConstants.MAX_LENGTH) throw new BackupFormatError(`corrupted: a body of ${header.bodyBytes} bytes`)
  const keep = opts.keepBody !== false
  const body = new Uint8Array(keep ? header.bodyBytes : 0)
  let at = 0
  for (;;) {
    const n = await r.u32('body')
    if (n === 0) break
    if (n > CHUNK_BYTES || at + n > header.bodyBytes) throw new BackupFormatError(`corrupted: a body frame of ${n} bytes at body offset ${at} (the body has ${header.bodyBytes})`)
    await r.readInto(n, keep ? body : undefined, at, 'body')
    at += n
  }
  if (at !== header.bodyBytes) throw new BackupFormatError(`corrupted: the body has ${at} bytes, the header says ${header.bodyBytes}`)
  const digest = (r.hash as Hash).digest()
  r.hash = undefined
  const trailer = Buffer.from(await r.read(TRAILER_MAGIC.length, 'trailer')).toString('latin1')
  if (trailer !== TRAILER_MAGIC) throw new BackupFormatError('corrupted: no SHOALEND trailer after the body')
  const stored = await r.read(DIGEST_BYTES, 'checksum')
  if (!(await r.atEnd())) throw new BackupFormatError('corrupted: bytes follow the trailer')
  if (Buffer.compare(Buffer.from(stored), digest) !== 0) throw new BackupFormatError('corrupted: the sha256 checksum does not match the contents')
  return { header, body, fileBytes: r.consumed, sha256: digest.toString('hex') }
}

/** What a backup holds: objects per kind, KV keys. */
export interface BackupSummary {
  kinds: Record<string, number>
  objects: number
  kvKeys: number
}

function isRouted (v: unknown): v is { v: 1, parts: Record<string, unknown> } {
  return isObject(v) && v.v === 1 && isObject(v.parts)
}

function isStorePart (v: unknown): v is { objects: unknown[] } {
  return isObject(v) && Array.isArray(v.objects)
}

function isKvPart (v: unknown): v is { entries: unknown[] } {
  return isObject(v) && Array.isArray(v.entries)
}

/**
 * Decodes the body (the routed snapshot of the store, tag 2, and the KV,
 * tag 1) just enough to count what it holds. Throws BackupFormatError if it
 * is not a state snapshot.
 */
export function summarize (body: Uint8Array): BackupSummary {
  try {
    const routed = decode(body, isRouted, 'state snapshot')
    const { store, kv } = routed.parts
    if (!(store instanceof Uint8Array) || !(kv instanceof Uint8Array)) throw new Error('parts missing')
    const objects = decode(store, isStorePart, 'store snapshot').objects
    const kinds: Record<string, number> = {}
    for (const o of objects) {
      // [group, plural, object]
      const obj = Array.isArray(o) ? o[2] as unknown : undefined
      const kind = isObject(obj) && isString(obj.kind) ? obj.kind : Array.isArray(o) && isString(o[1]) ? o[1] : '(unknown)'
      kinds[kind] = (kinds[kind] ?? 0) + 1
    }
    const kvKeys = decode(kv, isKvPart, 'KV snapshot').entries.length
    return { kinds, objects: objects.length, kvKeys }
  } catch (err) {
    throw new BackupFormatError(`corrupted: the body is not a Shoal state snapshot (${(err as Error).message})`)
  }
}
