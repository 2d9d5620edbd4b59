// Server-side apply (PATCH with `application/apply-patch+yaml`, as
// `kubectl apply --server-side` sends it), an approximation of Kubernetes':
// each manager owns the set of fields it last applied, kept in
// metadata.managedFields as FieldsV1 (`f:spec`, `k:{"name":"web"}` for list
// items with a merge key, `.` for the item itself; other lists are atomic).
// An apply creates the object if it is absent; otherwise the applied fields
// are merged into the live object (a strategic merge), and fields this
// manager applied before but no longer does are removed unless another
// manager owns them. A field another manager owns with a different value is
// a 409 Conflict naming the field and the manager, unless `force=true`,
// which takes the field over. Computed here from the local replica and
// written as an update guarded by the resourceVersion read, retried when
// another write got in between, so the store needs no new command.
// May import: protocol/, daemon/store/types.ts, command.ts and patch.ts, daemon/raft/replicator.ts, ./http.ts.
import type { StatusBody } from '../../protocol/api.ts'
import { apiVersionOf } from '../../protocol/k8s.ts'
import type { KObject, ManagedFieldsEntry, ResourceType } from '../../protocol/k8s.ts'
import { isPlainObject, jsonBoundPassed, jsonEqual, MAX_JSON_DEPTH } from '../../protocol/json.ts'
import type { JsonObject } from '../../protocol/json.ts'
import { applyStrategicPatch, mergeKeyOf, PatchError } from '../store/patch.ts'
import type { ObjectRef, StoreReader, StoreResult, StoreWriter } from '../store/types.ts'
import { HttpError } from './http.ts'
import type { BodyObject } from './http.ts'

/** A field path as FieldsV1 tokens, e.g. ['f:spec', 'f:template', 'f:spec', 'f:containers', 'k:{"name":"web"}', 'f:image']. */
type FieldPath = string[]

/** Metadata fields the server sets: nobody owns them. */
const SERVER_METADATA = new Set(['name', 'namespace', 'uid', 'resourceVersion', 'generation', 'creationTimestamp', 'deletionTimestamp', 'deletionGracePeriodSeconds', 'managedFields', 'generateName', 'selfLink'])
const RETRIES = 8

/** The field names on the way to a value (no list keys), as mergeKeyOf takes them. */
function namesOf (path: FieldPath): string[] {
  return path.filter(t => t.startsWith('f:')).map(t => t.slice(2))
}

/** The leaf fields `applied` sets. */
export function fieldSet (applied: KObject): FieldPath[] {
  const out: FieldPath[] = []
  const walk = (v: unknown, path: FieldPath): void => {
    if (isPlainObject(v)) {
      const entries = Object.entries(v).filter(([k]) => !(path.length === 0 && (k === 'apiVersion' || k === 'kind' || k === 'status')) &&
        !(path.length === 1 && path[0] === 'f:metadata' && SERVER_METADATA.has(k)))
      // An empty map is a value of its own; a map with only server-set fields (metadata: {name}) is nothing.
      if (Object.keys(v).length === 0 && path.length > 0) out.push(path)
      for (const [k, x] of entries) walk(x, [...path, `f:${k}`])
      return
    }
    if (Array.isArray(v)) {
      const key = mergeKeyOf(namesOf(path))
      if (key !== undefined && key !== 'set' && v.length > 0 && v.every(e => isPlainObject(e) && e[key] !== undefined)) {
        for (const e of v.filter(isPlainObject)) {
          const item = [...path, `k:${JSON.stringify({ [key]: e[key] })}`]
          out.push([...item, '.'])
          for (const [k, x] of Object.entries(e)) walk(x, [...item, `f:${k}`])
        }
        return
      }
    }
    out.push(path)
  }
  walk(applied, [])
  return out
}

/** FieldsV1 of a set of paths. */
export function toFieldsV1 (paths: FieldPath[]): JsonObject {
  const root: JsonObject = {}
  for (const p of paths) {
    let node = root
    for (const t of p) {
      const child = node[t]
      if (isPlainObject(child)) {
        node = child
      } else {
        const fresh: JsonObject = {}
        node[t] = fresh
        node = fresh
      }
    }
  }
  return root
}

/** The paths of a FieldsV1 tree (every node without children, and every `.`). */
export function fromFieldsV1 (fields: unknown): FieldPath[] {
  const out: FieldPath[] = []
  const walk = (node: unknown, path: FieldPath): void => {
    const children = isPlainObject(node) ? Object.entries(node) : []
    if (children.length === 0 && path.length > 0) { out.push(path); return }
    for (const [k, v] of children) walk(v, [...path, k])
  }
  walk(fields, [])
  return out
}

/** The value at a path in an object (undefined when absent); a `.` path is the list item itself. */
function valueAt (obj: unknown, path: FieldPath): unknown {
  let v = obj
  for (const t of path) {
    if (t === '.') return v
    if (t.startsWith('f:')) {
      v = isPlainObject(v) ? v[t.slice(2)] : undefined
    } else if (t.startsWith('k:')) {
      const key: unknown = JSON.parse(t.slice(2))
      const [name, want] = isPlainObject(key) ? Object.entries(key)[0] ?? [] : []
      v = Array.isArray(v) ? v.find(e => isPlainObject(e) && name !== undefined && jsonEqual(e[name], want)) : undefined
    } else {
      return undefined
    }
  }
  return v
}

/** Removes the field (or list item, for a `.` path) at `path`; nothing if it is not there. */
function removeAt (obj: JsonObject, path: FieldPath): void {
  const last = path[path.length - 1]
  if (last === undefined) return
  if (last === '.') {
    const item = path[path.length - 2] ?? ''
    const list = valueAt(obj, path.slice(0, -2))
    const target = valueAt(obj, path.slice(0, -1))
    if (Array.isArray(list) && target !== undefined && item.startsWith('k:')) list.splice(list.indexOf(target), 1)
    return
  }
  const parent = valueAt(obj, path.slice(0, -1))
  if (isPlainObject(parent) && last.startsWith('f:')) delete parent[last.slice(2)]
}

function dotted (path: FieldPath): string {
  return path.filter(t => t !== '.').map(t => t.startsWith('f:') ? `.${t.slice(2)}` : `[${t.slice(2).replace(/^\{"?|"?\}$/g, '').replace(/":"?/, '=').replace(/"$/, '')}]`).join('')
}

export interface ApplyConflict { manager: string, field: string }

/** The 409 Kubernetes answers for apply conflicts, with one cause per field. */
export function conflictStatus (type: ResourceType, name: string, conflicts: ApplyConflict[]): StatusBody & { details: unknown } {
  const lines = conflicts.map(c => `conflict with "${c.manager}": ${c.field}`)
  const message = conflicts.length === 1
    ? `Apply failed with 1 conflict: ${lines[0] ?? ''}`
    : `Apply failed with ${conflicts.length} conflicts: ${lines.join('\n')}`
  return {
    kind: 'Status',
    apiVersion: 'v1',
    status: 'Failure',
    message,
    reason: 'Conflict',
    code: 409,
    details: {
      name,
      ...(type.group !== '' ? { group: type.group } : {}),
      kind: type.plural,
      causes: conflicts.map(c => ({ reason: 'FieldManagerConflict', message: `conflict with "${c.manager}"`, field: c.field }))
    }
  }
}

function entriesOf (obj: KObject): ManagedFieldsEntry[] {
  // not validated by the store: whatever a client sent
  const mf: unknown = obj.metadata.managedFields
  return Array.isArray(mf) ? mf.filter((e): e is ManagedFieldsEntry => isPlainObject(e) && typeof e.manager === 'string' && isPlainObject(e.fieldsV1)) : []
}

/**
 * The object an apply by `manager` of `applied` onto `live` makes, or the
 * conflicts that stop it. Pure.
 */
export function mergeApply (live: KObject, applied: KObject, manager: string, force: boolean, now: string): { object: KObject } | { conflicts: ApplyConflict[] } {
  const mine = fieldSet(applied)
  const mineKeys = new Set(mine.map(p => JSON.stringify(p)))
  const entries = entriesOf(live)
  const others = entries.filter(e => !(e.manager === manager && e.operation === 'Apply'))
  const conflicts: ApplyConflict[] = []
  const taken = new Map<ManagedFieldsEntry, Set<string>>()
  for (const e of others) {
    for (const p of fromFieldsV1(e.fieldsV1)) {
      const k = JSON.stringify(p)
      // The same value is no conflict: both managers own the field then.
      if (!mineKeys.has(k) || jsonEqual(valueAt(live, p), valueAt(applied, p))) continue
      if (force) {
        let s = taken.get(e)
        if (s === undefined) taken.set(e, s = new Set())
        s.add(k)
      } else {
        conflicts.push({ manager: e.manager, field: dotted(p) })
      }
    }
  }
  if (conflicts.length > 0) return { conflicts }

  const patched = applyStrategicPatch(structuredClone(live), { ...structuredClone(applied), apiVersion: live.apiVersion, kind: live.kind })
  // A strategic merge of two objects is an object, with the live object's apiVersion and kind.
  if (!isPlainObject(patched) || !isPlainObject(patched.metadata)) throw new Error('server-side apply: the merged object is not an object')
  const merged: KObject = { ...patched, apiVersion: live.apiVersion, kind: live.kind, metadata: patched.metadata }
  // What this manager applied last time and no longer does goes, unless someone else holds it.
  const before = entries.find(e => e.manager === manager && e.operation === 'Apply')
  const othersHold = new Set(others.flatMap(e => fromFieldsV1(e.fieldsV1).map(p => JSON.stringify(p))))
  const dropped = (before === undefined ? [] : fromFieldsV1(before.fieldsV1)).filter(p => !mineKeys.has(JSON.stringify(p)) && !othersHold.has(JSON.stringify(p)))
  for (const p of dropped.sort((a, b) => b.length - a.length)) removeAt(merged, p)

  const next: ManagedFieldsEntry[] = []
  for (const e of entries) {
    if (e === before) continue
    const lost = taken.get(e)
    if (lost === undefined) {
      next.push(e)
      continue
    }
    const kept = fromFieldsV1(e.fieldsV1).filter(p => !lost.has(JSON.stringify(p)))
    if (kept.length > 0) next.push({ ...e, fieldsV1: toFieldsV1(kept) })
  }
  next.push({ manager, operation: 'Apply', apiVersion: live.apiVersion, time: now, fieldsType: 'FieldsV1', fieldsV1: toFieldsV1(mine) })
  merged.metadata.managedFields = next
  return { object: merged }
}

export interface ApplyRequest {
  store: StoreReader
  writer: StoreWriter
  type: ResourceType
  ref: ObjectRef
  /** the request body: its apiVersion and kind are checked here */
  applied: BodyObject
  manager: string
  force: boolean
  dryRun: boolean
  now: string
  uid: () => string
}

/**
 * managedFields mirror the applied fields a few levels down
 * (metadata.managedFields[i].fieldsV1.f:…), so an applied object within the
 * API's depth bound can make one the store refuses: say so here, clearly.
 */
function checkDepth (object: KObject): void {
  if (jsonBoundPassed(object, MAX_JSON_DEPTH) === undefined) return
  throw new HttpError(422, 'Invalid', `the applied object, with its metadata.managedFields, would nest more than ${MAX_JSON_DEPTH} levels deep`)
}

/** Runs an apply: the HTTP code and body to answer with. */
export async function serverSideApply (r: ApplyRequest): Promise<{ code: number, body: unknown }> {
  const { type, ref } = r
  const expected = apiVersionOf(type)
  if (r.applied.apiVersion !== expected || r.applied.kind !== type.kind) {
    throw new HttpError(400, 'BadRequest', `the applied object must have apiVersion ${expected} and kind ${type.kind} (got ${String(r.applied.apiVersion)} ${String(r.applied.kind)})`)
  }
  const applied: KObject = { ...r.applied, apiVersion: expected, kind: type.kind }
  if (applied.metadata.name !== undefined && applied.metadata.name !== ref.name) {
    throw new HttpError(400, 'BadRequest', `the name of the object (${applied.metadata.name}) does not match the name in the path (${ref.name})`)
  }
  if (type.namespaced && applied.metadata.namespace !== undefined && applied.metadata.namespace !== ref.namespace) {
    throw new HttpError(400, 'BadRequest', `the namespace of the object (${applied.metadata.namespace}) does not match the namespace of the request (${ref.namespace ?? ''})`)
  }
  applied.metadata.name = ref.name
  if (type.namespaced && ref.namespace !== undefined) applied.metadata.namespace = ref.namespace
  if (r.manager === '') throw new HttpError(400, 'BadRequest', 'fieldManager is required for apply requests')
  const dry = r.dryRun ? { dryRun: true } : {}
  for (let attempt = 0; ; attempt++) {
    const live = r.store.get(type, ref.namespace, ref.name)
    let result: StoreResult
    let created = false
    if (live === undefined) {
      const object = structuredClone(applied)
      object.metadata.managedFields = [{ manager: r.manager, operation: 'Apply', apiVersion: expected, time: r.now, fieldsType: 'FieldsV1', fieldsV1: toFieldsV1(fieldSet(applied)) }]
      checkDepth(object)
      result = await r.writer.write({ op: 'create', object, uid: r.uid(), now: r.now, ...dry })
      created = true
    } else {
      let merged: ReturnType<typeof mergeApply>
      try {
        merged = mergeApply(live, applied, r.manager, r.force, r.now)
      } catch (err) {
        // What was applied does not merge with what is there (a list whose items should merge by a key holds something else): the client's error.
        if (err instanceof PatchError) throw new HttpError(err.code, err.code === 400 ? 'BadRequest' : 'Invalid', `server-side apply: ${err.message}`)
        throw err
      }
      if ('conflicts' in merged) return { code: 409, body: conflictStatus(type, ref.name, merged.conflicts) }
      merged.object.metadata.resourceVersion = live.metadata.resourceVersion
      checkDepth(merged.object)
      result = await r.writer.write({ op: 'update', object: merged.object, now: r.now, ...dry })
    }
    if (result.ok) return { code: created ? 201 : 200, body: result.object }
    // Another write came between the read and this one: read again.
    const raced = created ? result.status.reason === 'AlreadyExists' : result.status.code === 409 || result.status.code === 404
    if (!raced || attempt >= RETRIES) throw new HttpError(result.status.code, result.status.reason, result.status.message)
  }
}
