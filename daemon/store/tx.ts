// A write transaction over the store's objects: the changes and watch events
// of one command, applied to the committed maps only when the command
// succeeds and is not a dry run. Reads see the transaction's own writes.
// May import: protocol/.
import type { KObject, ResourceType } from '../../protocol/k8s.ts'

export type ChangeType = 'ADDED' | 'MODIFIED' | 'DELETED'

export interface Change { type: ResourceType, event: ChangeType, object: KObject, old?: KObject }

export interface Stored { type: ResourceType, key: string, object: KObject }

/** `apps/deployments`, `/pods`: one map of objects per type. */
export function typeKey (t: { group: string, plural: string }): string {
  return `${t.group}/${t.plural}`
}

/** `namespace/name`, or `/name` for cluster-scoped objects; sorts as Kubernetes lists. */
export function objectKey (namespace: string | undefined, name: string): string {
  return `${namespace ?? ''}/${name}`
}

export type ObjectMaps = Map<string, Map<string, KObject>>

/**
 * Owner uid → the objects whose ownerReferences name it (`typeKey` and
 * `objectKey`), kept beside the committed maps so that a delete finds its
 * dependents without reading every object. It is derived from the maps
 * alone, so every replica has the same one.
 */
export class OwnerIndex {
  private readonly byOwner = new Map<string, Map<string, [string, string]>>()

  static of (maps: ObjectMaps): OwnerIndex {
    const index = new OwnerIndex()
    for (const [tk, m] of maps) for (const [key, obj] of m) index.add(tk, key, obj)
    return index
  }

  add (tk: string, key: string, obj: KObject): void {
    for (const uid of ownerUids(obj)) {
      let deps = this.byOwner.get(uid)
      if (deps === undefined) this.byOwner.set(uid, deps = new Map())
      deps.set(`${tk}\n${key}`, [tk, key])
    }
  }

  delete (tk: string, key: string, obj: KObject): void {
    for (const uid of ownerUids(obj)) {
      const deps = this.byOwner.get(uid)
      deps?.delete(`${tk}\n${key}`)
      if (deps?.size === 0) this.byOwner.delete(uid)
    }
  }

  dependents (uid: string): Iterable<[string, string]> {
    return this.byOwner.get(uid)?.values() ?? []
  }
}

function ownerUids (obj: KObject): string[] {
  return (obj.metadata.ownerReferences ?? []).map(r => r.uid).filter((u): u is string => typeof u === 'string')
}

export class Tx {
  readonly changes: Change[] = []
  private readonly base: ObjectMaps
  private readonly owners: OwnerIndex
  /** typeKey → objectKey → object, or null for a removal */
  private readonly writes = new Map<string, Map<string, KObject | null>>()
  /** the owners the objects written here name (a superset: a later write may drop one; dependents() checks) */
  private readonly written = new OwnerIndex()

  constructor (base: ObjectMaps, owners: OwnerIndex) {
    this.base = base
    this.owners = owners
  }

  /** The object of `type` at `key`; objects are kept by type, so it is a T. */
  get<T extends KObject> (type: ResourceType<T>, key: string): T | undefined {
    const w = this.writes.get(typeKey(type))?.get(key)
    if (w !== undefined) return (w ?? undefined) as T | undefined
    return this.base.get(typeKey(type))?.get(key) as T | undefined
  }

  put (type: ResourceType, key: string, object: KObject, event: 'ADDED' | 'MODIFIED', old?: KObject): void {
    this.write(type, key, object)
    this.changes.push(old === undefined ? { type, event, object } : { type, event, object, old })
  }

  remove (type: ResourceType, key: string, object: KObject): void {
    this.write(type, key, null)
    this.changes.push({ type, event: 'DELETED', object })
  }

  private write (type: ResourceType, key: string, object: KObject | null): void {
    const tk = typeKey(type)
    if (object !== null) this.written.add(tk, key, object)
    let m = this.writes.get(tk)
    if (m === undefined) this.writes.set(tk, m = new Map())
    m.set(key, object)
  }

  /** Every object of the given types as the transaction sees them, sorted by type then key: deterministic. */
  all (types: readonly ResourceType[]): Stored[] {
    const out: Stored[] = []
    for (const type of types) {
      const tk = typeKey(type)
      const merged = new Map(this.base.get(tk) ?? [])
      for (const [k, v] of this.writes.get(tk) ?? []) {
        if (v === null) merged.delete(k)
        else merged.set(k, v)
      }
      const keys = [...merged.keys()].sort()
      for (const key of keys) out.push({ type, key, object: merged.get(key) as KObject })
    }
    return out
  }

  /**
   * The objects of `types` whose ownerReferences name `uid`, as the
   * transaction sees them, sorted as all() sorts: the committed ones from
   * the owner index, and any this transaction wrote.
   */
  dependents (uid: string, types: readonly ResourceType[]): Stored[] {
    const keysByType = new Map<string, Set<string>>()
    const add = ([tk, key]: [string, string]): void => {
      let keys = keysByType.get(tk)
      if (keys === undefined) keysByType.set(tk, keys = new Set())
      keys.add(key)
    }
    for (const c of this.owners.dependents(uid)) add(c)
    for (const c of this.written.dependents(uid)) add(c)
    const out: Stored[] = []
    for (const type of types) {
      const keys = keysByType.get(typeKey(type))
      if (keys === undefined) continue
      for (const key of [...keys].sort()) {
        const object = this.get(type, key)
        if (object !== undefined && ownerUids(object).includes(uid)) out.push({ type, key, object })
      }
    }
    return out
  }

  /** Applies the writes to `base`, and keeps the owner index in step. */
  commit (): void {
    for (const [tk, m] of this.writes) {
      let target = this.base.get(tk)
      if (target === undefined) this.base.set(tk, target = new Map())
      for (const [k, v] of m) {
        const old = target.get(k)
        if (old !== undefined) this.owners.delete(tk, k, old)
        if (v === null) {
          target.delete(k)
        } else {
          target.set(k, v)
          this.owners.add(tk, k, v)
        }
      }
    }
  }
}
