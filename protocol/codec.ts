// msgpackr framing shared by every wire message and stored record.
// Decoding never trusts the bytes: each message type has a guard that checks
// its shape, and a message that fails it is a DecodeError, not a crash.
import { Packr } from 'msgpackr'

const packr = new Packr({ useRecords: false, mapsAsObjects: true })

export class DecodeError extends Error {
  override name = 'DecodeError'
}

export function encode (value: unknown): Uint8Array {
  return packr.pack(value)
}

export function decode<T> (bytes: Uint8Array, guard: (v: unknown) => v is T, what: string): T {
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
