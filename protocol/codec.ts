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
