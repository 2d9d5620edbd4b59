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

/**
 * Objects and lists nest at most this deep in anything a client writes or
 * the store keeps (`{}` is one level, `{"a":{}}` two). Kubernetes' decoders
 * cap nesting too; this bound keeps every recursive walk of an object (the
 * patches, validation, freezing, cloning, encoding) far from the stack's end,
 * so that applying a command never depends on how deep the stack already is.
 */
export const MAX_JSON_DEPTH = 100

/**
 * Which bound `value` passes, or undefined if neither: 'depth' when objects
 * and lists nest deeper than `maxDepth`, 'size' when its expanded size
 * passes `maxBytes`. The size counted is a lower bound on any encoding of
 * the value (a byte per value, plus the length of each string and key, and
 * of each byte array), so that a value refused here would be refused once
 * encoded too. Iterative, so no input can exhaust the stack; and it stops at
 * the first bound passed, so a value that shares subtrees (YAML aliases) or
 * has cycles costs at most about `maxBytes` steps.
 */
export function jsonBoundPassed (value: unknown, maxDepth: number, maxBytes = Infinity): 'depth' | 'size' | undefined {
  if (!isContainer(value)) return sizeOf(value) > maxBytes ? 'size' : undefined
  // Only objects and arrays are stacked; scalars are counted where they are met.
  const containers: object[] = [value]
  const depths: number[] = [1]
  let bytes = 0
  for (;;) {
    const c = containers.pop()
    const depth = depths.pop()
    if (c === undefined || depth === undefined) return undefined
    if (depth > maxDepth) return 'depth'
    bytes += 1
    if (Array.isArray(c)) {
      for (const x of c) {
        if (isContainer(x)) { containers.push(x); depths.push(depth + 1) } else bytes += sizeOf(x)
      }
    } else {
      for (const k in c) {
        if (!Object.hasOwn(c, k)) continue
        const x = (c as JsonObject)[k]
        bytes += k.length + 1
        if (isContainer(x)) { containers.push(x); depths.push(depth + 1) } else bytes += sizeOf(x)
      }
    }
    if (bytes > maxBytes) return 'size'
  }
}

function isContainer (v: unknown): v is object {
  return typeof v === 'object' && v !== null && !(v instanceof Uint8Array)
}

/** A scalar's share of the lower bound: a byte, and a string's or byte array's length. */
function sizeOf (v: unknown): number {
  return typeof v === 'string' ? v.length + 1 : v instanceof Uint8Array ? v.byteLength + 1 : 1
}
