// msgpackr framing shared by every wire message and stored record.
// Decoding never trusts the bytes: they are scanned first, without
// recursion (./msgpack-scan.ts), and must be one value of plain data (maps
// with string keys, arrays, strings, numbers, booleans, nil, byte arrays and
// msgpackr's `undefined`) nested at most MAX_DECODE_DEPTH deep. Every other
// msgpackr extension (records, structured-clone references and so cycles,
// Set, Map, Error, RegExp, Date, typed arrays, BigInt) is refused before the
// decoder sees it, and 64-bit integers decode as numbers, never BigInt.
// Then each message type has a guard that checks its shape, and a message
// that fails either is a DecodeError, not a crash: it costs its stream.
// May import: ./json.ts, ./msgpack-scan.ts.
import { Packr } from 'msgpackr'
import { msgpackShapeError } from './msgpack-scan.ts'

const packr = new Packr({ useRecords: false, mapsAsObjects: true, structuredClone: false, int64AsType: 'number' })

/**
 * How deep maps and arrays may nest in anything decoded (`{}` is one level).
 * The store keeps objects at most MAX_JSON_DEPTH (100) deep, and no message
 * or record wraps one in more than a few levels; a deeper frame is malformed.
 */
export const MAX_DECODE_DEPTH = 128

export class DecodeError extends Error {
  override name = 'DecodeError'
}

export function encode (value: unknown): Uint8Array {
  return packr.pack(value)
}

/**
 * The bytes of encode({ ...head, [key]: items }), made `slice` items at a
 * time with `pause()` between slices: a large state (the store's objects)
 * is encoded without holding the event loop for the whole of it. The items
 * must not change meanwhile (the store's are frozen).
 */
export async function encodeInSlices (head: Record<string, unknown>, key: string, items: readonly unknown[], pause: () => Promise<void>, slice = 256): Promise<Uint8Array> {
  if (Object.hasOwn(head, key)) throw new Error('encodeInSlices: the head has the items\' key')
  // The head and the key as encode() writes them (its own map header), up to the array, which is empty here.
  const prefix = packr.pack({ ...head, [key]: [] })
  if (prefix[prefix.length - 1] !== 0x90) throw new Error('encodeInSlices: the items\' key must come last')
  const chunks: Uint8Array[] = [Uint8Array.prototype.slice.call(prefix, 0, prefix.length - 1)]
  const n = items.length
  chunks.push(n < 16 ? Uint8Array.of(0x90 | n) : n < 0x10000 ? Uint8Array.of(0xdc, n >> 8, n & 0xff) : Uint8Array.of(0xdd, n >>> 24, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff))
  for (let i = 0; i < n; i += slice) {
    if (i > 0) await pause()
    const part = items.slice(i, i + slice)
    // a slice encoded as an array, without its array header: its items' bytes, one after another
    // (packr.pack answers a view into a buffer it reuses: each piece is copied out)
    const bytes = packr.pack(part)
    const header = part.length < 16 ? 1 : part.length < 0x10000 ? 3 : 5
    chunks.push(Uint8Array.prototype.slice.call(bytes, header))
  }
  let length = 0
  for (const c of chunks) length += c.length
  const out = new Uint8Array(length)
  let at = 0
  for (const c of chunks) { out.set(c, at); at += c.length }
  return out
}

export interface DecodeOptions {
  /** maps and arrays nested deeper than this are refused (default MAX_DECODE_DEPTH) */
  maxDepth?: number
}

export function decode<T> (bytes: Uint8Array, guard: (v: unknown) => v is T, what: string, opts: DecodeOptions = {}): T {
  const shape = msgpackShapeError(bytes, opts.maxDepth ?? MAX_DECODE_DEPTH)
  if (shape !== undefined) throw new DecodeError(`${what}: not plain msgpack data (${shape.message})`)
  let value: unknown
  try {
    value = packr.unpack(bytes)
  } catch (err) {
    throw new DecodeError(`${what}: not msgpack (${(err as Error).message})`)
  }
  if (!guard(value)) throw new DecodeError(`${what}: unexpected shape`)
  return value
}

export type Guard<T> = (v: unknown) => v is T

/** The guards' name for protocol/json.ts's isPlainObject (a non-null object that is not an array). */
export { isPlainObject as isObject } from './json.ts'

export function isString (v: unknown): v is string { return typeof v === 'string' }
export function isNumber (v: unknown): v is number { return typeof v === 'number' && Number.isFinite(v) }
export function isStringArray (v: unknown): v is string[] {
  return Array.isArray(v) && v.every(isString)
}
