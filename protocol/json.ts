// Plain JSON values as they come out of JSON.parse, msgpackr or a request
// body: the one plain-object guard and the one deep equality that the
// guards, the store's patches, the API and the CLI all use.
// May import: nothing.

/** Any JSON value; `unknown` so that every use narrows it first. */
export type Json = unknown

/** A JSON object: its fields, each any JSON value. */
export type JsonObject = Record<string, Json>

/** True for a non-null object that is not an array (prototypes are not checked). */
export function isPlainObject (v: unknown): v is JsonObject {
  return typeof v === 'object' && v !== null && !Array.isArray(v)
}

/** Deep equality of JSON values (object key order does not matter; an undefined field is an absent one). */
export function jsonEqual (a: Json, b: Json): boolean {
  if (a === b) return true
  if (Array.isArray(a)) return Array.isArray(b) && a.length === b.length && a.every((x, i) => jsonEqual(x, b[i]))
  if (isPlainObject(a) && isPlainObject(b)) {
    const ka = Object.keys(a).filter(k => a[k] !== undefined)
    const kb = Object.keys(b).filter(k => b[k] !== undefined)
    return ka.length === kb.length && ka.every(k => Object.hasOwn(b, k) && jsonEqual(a[k], b[k]))
  }
  return false
}
