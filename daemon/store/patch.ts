// The three patch types the API accepts: JSON merge patch (RFC 7386),
// Kubernetes strategic merge patch (lists of containers, ports, env, volumes
// and mounts merged by key; `$patch` directives), and JSON patch (RFC 6902).
// Pure functions over plain JSON values; they never mutate their inputs.
// A patch that cannot apply throws PatchError.
// May import: protocol/json.ts.
import { isPlainObject, jsonEqual } from '../../protocol/json.ts'
import type { Json, JsonObject } from '../../protocol/json.ts'

/** A patch that is malformed (400) or does not apply to the object (422). */
export class PatchError extends Error {
  override name = 'PatchError'
  readonly code: 400 | 422
  constructor (message: string, code: 400 | 422) {
    super(message)
    this.code = code
  }
}

function clone<T> (v: T): T {
  return v === undefined ? v : structuredClone(v)
}

// ---- RFC 7386 --------------------------------------------------------------

export function applyMergePatch (target: Json, patch: Json): Json {
  if (!isPlainObject(patch)) return clone(patch)
  const out: JsonObject = isPlainObject(target) ? { ...target } : {}
  for (const [k, v] of Object.entries(patch)) {
    if (v === null) delete out[k]
    else out[k] = applyMergePatch(out[k], v)
  }
  return out
}

// ---- strategic merge patch -------------------------------------------------

/**
 * The merge key of the list at `path` (field names from the root, without
 * indices), or undefined for a list that a patch replaces. 'set' for a list
 * of strings merged as a set (finalizers).
 */
export function mergeKeyOf (path: string[]): string | undefined {
  const field = path[path.length - 1]
  const parent = path[path.length - 2]
  switch (field) {
    case 'containers': case 'initContainers': case 'ephemeralContainers':
    case 'env': case 'volumes': case 'imagePullSecrets':
      return 'name'
    case 'volumeMounts': return 'mountPath'
    case 'ports':
      if (parent === 'containers' || parent === 'initContainers') return 'containerPort'
      if (path.length === 2 && parent === 'spec') return 'port'
      return undefined
    case 'ownerReferences': return 'uid'
    case 'conditions': return 'type'
    case 'finalizers': return parent === 'metadata' ? 'set' : undefined
    default: return undefined
  }
}

function stripDirectives (v: Json): Json {
  if (Array.isArray(v)) return v.filter(x => !(isPlainObject(x) && x.$patch !== undefined && Object.keys(x).length === 1)).map(stripDirectives)
  if (!isPlainObject(v)) return v
  const out: JsonObject = {}
  for (const [k, x] of Object.entries(v)) {
    if (k.startsWith('$')) continue
    out[k] = stripDirectives(x)
  }
  return out
}

/** Applies a strategic merge patch to `original`, as the API server does for Shoal's kinds. */
export function applyStrategicPatch (original: Json, patch: Json): Json {
  if (!isPlainObject(patch)) throw new PatchError('a strategic merge patch must be a JSON object', 400)
  return strategicObject(isPlainObject(original) ? original : {}, patch, [])
}

function strategicObject (original: JsonObject, patch: JsonObject, path: string[]): JsonObject {
  const directive = patch.$patch
  if (directive === 'replace') return stripDirectives(patch) as JsonObject
  if (directive !== undefined && directive !== 'merge') {
    throw new PatchError(`unknown patch directive "${String(directive)}" at ${path.join('.') || 'the root'}`, 400)
  }
  const out: JsonObject = { ...original }
  for (const [k, v] of Object.entries(patch)) {
    if (k === '$patch' || k.startsWith('$setElementOrder/') || k === '$retainKeys') continue
    if (k.startsWith('$deleteFromPrimitiveList/')) {
      const field = k.slice('$deleteFromPrimitiveList/'.length)
      if (!Array.isArray(v)) throw new PatchError(`${k} must be a list`, 400)
      const cur = out[field]
      if (Array.isArray(cur)) out[field] = cur.filter(x => !v.some(d => jsonEqual(d, x)))
      continue
    }
    if (v === null) { delete out[k]; continue }
    const sub = [...path, k]
    if (isPlainObject(v)) {
      if (v.$patch === 'delete') { delete out[k]; continue }
      out[k] = strategicObject(isPlainObject(out[k]) ? out[k] as JsonObject : {}, v, sub)
    } else if (Array.isArray(v)) {
      out[k] = strategicList(Array.isArray(out[k]) ? out[k] as Json[] : [], v, sub)
    } else {
      out[k] = v
    }
  }
  return out
}

function strategicList (original: Json[], patch: Json[], path: string[]): Json[] {
  if (patch.some(x => isPlainObject(x) && x.$patch === 'replace')) return stripDirectives(patch) as Json[]
  const key = mergeKeyOf(path)
  if (key === undefined) return stripDirectives(patch) as Json[]
  if (key === 'set') {
    const out = [...original]
    for (const x of patch) if (!out.some(o => jsonEqual(o, x))) out.push(clone(x))
    return out
  }
  const out = [...original]
  for (const item of patch) {
    if (!isPlainObject(item)) throw new PatchError(`${path.join('.')}: list items must be objects with the merge key "${key}"`, 400)
    if (!Object.hasOwn(item, key)) throw new PatchError(`${path.join('.')}: map ${JSON.stringify(item)} does not contain declared merge key: ${key}`, 400)
    const at = out.findIndex(o => isPlainObject(o) && jsonEqual(o[key], item[key]))
    if (item.$patch === 'delete') {
      if (at >= 0) out.splice(at, 1)
      continue
    }
    if (at >= 0) out[at] = strategicObject(out[at] as JsonObject, item, path)
    else out.push(stripDirectives(item))
  }
  return out
}

// ---- RFC 6902 --------------------------------------------------------------

interface Op { op: string, path: string, value?: Json, from?: string }

function parsePointer (pointer: string): string[] {
  if (pointer === '') return []
  if (!pointer.startsWith('/')) throw new PatchError(`invalid JSON pointer "${pointer}": must start with /`, 400)
  return pointer.slice(1).split('/').map(s => s.replace(/~1/g, '/').replace(/~0/g, '~'))
}

function arrayIndex (arr: Json[], token: string, forAdd: boolean, pointer: string): number {
  if (forAdd && token === '-') return arr.length
  if (!/^(0|[1-9][0-9]*)$/.test(token)) throw new PatchError(`invalid array index "${token}" in "${pointer}"`, 422)
  const i = Number(token)
  if (i > arr.length || (!forAdd && i === arr.length)) throw new PatchError(`array index ${i} out of bounds in "${pointer}"`, 422)
  return i
}

/** The parent container of the target and the last token; the document is already a private copy. */
function locate (doc: Json, pointer: string): { parent: Json, token: string } {
  const tokens = parsePointer(pointer)
  const last = tokens.pop()
  if (last === undefined) throw new PatchError('the root cannot be the target of this operation', 422)
  let at = doc
  for (const t of tokens) {
    if (Array.isArray(at)) at = at[arrayIndex(at, t, false, pointer)]
    else if (isPlainObject(at) && Object.hasOwn(at, t)) at = at[t]
    else throw new PatchError(`path "${pointer}" does not exist`, 422)
  }
  if (!Array.isArray(at) && !isPlainObject(at)) throw new PatchError(`path "${pointer}" does not exist`, 422)
  return { parent: at, token: last }
}

function getAt (doc: Json, pointer: string): Json {
  let at = doc
  for (const t of parsePointer(pointer)) {
    if (Array.isArray(at)) at = at[arrayIndex(at, t, false, pointer)]
    else if (isPlainObject(at) && Object.hasOwn(at, t)) at = at[t]
    else throw new PatchError(`path "${pointer}" does not exist`, 422)
  }
  return at
}

function addAt (doc: Json, pointer: string, value: Json): Json {
  if (pointer === '') return value
  const { parent, token } = locate(doc, pointer)
  if (Array.isArray(parent)) parent.splice(arrayIndex(parent, token, true, pointer), 0, value)
  else (parent as JsonObject)[token] = value
  return doc
}

function removeAt (doc: Json, pointer: string): Json {
  const { parent, token } = locate(doc, pointer)
  if (Array.isArray(parent)) parent.splice(arrayIndex(parent, token, false, pointer), 1)
  else if (Object.hasOwn(parent as JsonObject, token)) delete (parent as JsonObject)[token]
  else throw new PatchError(`path "${pointer}" does not exist`, 422)
  return doc
}

function isOp (v: Json): v is Op {
  return isPlainObject(v) && typeof v.op === 'string' && typeof v.path === 'string'
}

/** Applies an RFC 6902 JSON patch: the operations in order, all or nothing. */
export function applyJsonPatch (original: Json, ops: Json): Json {
  if (!Array.isArray(ops)) throw new PatchError('a JSON patch must be a list of operations', 400)
  let doc = clone(original)
  for (const op of ops) {
    if (!isOp(op)) throw new PatchError(`invalid JSON patch operation ${JSON.stringify(op)}: needs "op" and "path"`, 400)
    const needsValue = op.op === 'add' || op.op === 'replace' || op.op === 'test'
    if (needsValue && !Object.hasOwn(op, 'value')) throw new PatchError(`JSON patch "${op.op}" at "${op.path}" has no value`, 400)
    const needsFrom = op.op === 'move' || op.op === 'copy'
    if (needsFrom && typeof op.from !== 'string') throw new PatchError(`JSON patch "${op.op}" at "${op.path}" has no from`, 400)
    switch (op.op) {
      case 'add': doc = addAt(doc, op.path, clone(op.value)); break
      case 'remove': doc = removeAt(doc, op.path); break
      case 'replace':
        getAt(doc, op.path)
        doc = op.path === '' ? clone(op.value) : addAt(removeAt(doc, op.path), op.path, clone(op.value))
        break
      case 'test':
        if (!jsonEqual(getAt(doc, op.path), op.value)) throw new PatchError(`JSON patch test failed at "${op.path}"`, 422)
        break
      case 'move': {
        const from = op.from as string
        if (op.path.startsWith(from + '/')) throw new PatchError(`cannot move "${from}" into its own child "${op.path}"`, 422)
        const value = getAt(doc, from)
        doc = addAt(removeAt(doc, from), op.path, value)
        break
      }
      case 'copy': doc = addAt(doc, op.path, clone(getAt(doc, op.from as string))); break
      default: throw new PatchError(`unknown JSON patch operation "${op.op}"`, 400)
    }
  }
  return doc
}
