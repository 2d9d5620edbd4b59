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

export class Tx {
  readonly changes: Change[] = []
  private readonly base: ObjectMaps
  /** typeKey → objectKey → object, or null for a removal */
  private readonly writes = new Map<string, Map<string, KObject | null>>()

  constructor (base: ObjectMaps) {
    this.base = base
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

  /** Applies the writes to `base`. */
  commit (): void {
    for (const [tk, m] of this.writes) {
      let target = this.base.get(tk)
      if (target === undefined) this.base.set(tk, target = new Map())
      for (const [k, v] of m) {
        if (v === null) target.delete(k)
        else target.set(k, v)
      }
    }
  }
}
