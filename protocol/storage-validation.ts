// Defaults and validation of the storage kinds (PersistentVolume,
// PersistentVolumeClaim, StorageClass), as the Kubernetes API server applies
// them: required fields, enums, one volume source, a local volume only with
// node affinity, what an update may change. Shoal serves Filesystem volumes
// only: volumeMode Block is refused with a 422 that says so.
// May import: ./k8s.ts, ./json.ts, ./status.ts, ./quantity.ts, ./validation.ts.
import type { KObject } from './k8s.ts'
import { jsonEqual } from './json.ts'
import { parseQuantity } from './quantity.ts'
import { fieldError } from './status.ts'
import { checkEnum, checkLabelSelector, listAt, objAt } from './validation.ts'
import type { Obj } from './validation.ts'

export const ACCESS_MODES = ['ReadWriteOnce', 'ReadOnlyMany', 'ReadWriteMany', 'ReadWriteOncePod']

function checkAccessModes (v: unknown, path: string, errors: string[]): void {
  const modes = Array.isArray(v) ? v : []
  if (modes.length === 0) { errors.push(fieldError(path, 'Required')); return }
  modes.forEach((m, i) => { checkEnum(m, ACCESS_MODES, `${path}[${i}]`, errors) })
  if (modes.includes('ReadWriteOncePod') && modes.length > 1) errors.push(fieldError(path, 'Forbidden', undefined, 'may not use ReadWriteOncePod with other access modes'))
}

function checkStorage (v: unknown, path: string, errors: string[]): void {
  if (v === undefined) { errors.push(fieldError(path, 'Required')); return }
  let n: number
  try { n = parseQuantity(v as string | number) } catch { errors.push(fieldError(path, 'Invalid', v, 'must be a quantity')); return }
  if (!(n > 0)) errors.push(fieldError(path, 'Invalid', v, 'must be greater than zero'))
}

function checkVolumeMode (v: unknown, path: string, errors: string[]): void {
  if (v === 'Block') errors.push(fieldError(path, 'Unsupported', v, 'Shoal serves Filesystem volumes only'))
  else checkEnum(v, ['Filesystem'], path, errors)
}

export function defaultPersistentVolume (obj: KObject): void {
  const spec = objAt(obj, 'spec')
  if (spec === undefined) return
  spec.persistentVolumeReclaimPolicy ??= 'Retain'
  spec.volumeMode ??= 'Filesystem'
}

export function validatePersistentVolume (obj: KObject, errors: string[]): void {
  const spec = objAt(obj, 'spec')
  if (spec === undefined) { errors.push(fieldError('spec', 'Required')); return }
  checkStorage(objAt(spec, 'capacity')?.storage, 'spec.capacity[storage]', errors)
  checkAccessModes(spec.accessModes, 'spec.accessModes', errors)
  checkEnum(spec.persistentVolumeReclaimPolicy, ['Retain', 'Delete'], 'spec.persistentVolumeReclaimPolicy', errors)
  checkVolumeMode(spec.volumeMode, 'spec.volumeMode', errors)
  const sources = ['local', 'hostPath'].filter(k => spec[k] !== undefined)
  if (sources.length === 0) errors.push(fieldError('spec', 'Required', undefined, 'must specify a volume type (Shoal serves local and hostPath volumes)'))
  if (sources.length > 1) errors.push(fieldError(`spec.${sources[1] as string}`, 'Forbidden', undefined, 'may not specify more than 1 volume type'))
  for (const k of sources) {
    const p = objAt(spec, k)?.path
    if (typeof p !== 'string' || p === '') errors.push(fieldError(`spec.${k}.path`, 'Required'))
    else if (!p.startsWith('/')) errors.push(fieldError(`spec.${k}.path`, 'Invalid', p, 'must be an absolute path'))
    else if (p.split('/').includes('..')) errors.push(fieldError(`spec.${k}.path`, 'Invalid', p, "must not contain '..'"))
  }
  const terms = listAt(objAt(objAt(spec, 'nodeAffinity') ?? {}, 'required'), 'nodeSelectorTerms')
  if (spec.local !== undefined && terms.length === 0) errors.push(fieldError('spec.nodeAffinity', 'Required', undefined, 'Local volume requires node affinity'))
  const claim = objAt(spec, 'claimRef')
  if (claim !== undefined && (typeof claim.name !== 'string' || claim.name === '')) errors.push(fieldError('spec.claimRef.name', 'Required'))
}

/** What a PersistentVolume update may not change: its source and, once set, its node affinity. */
export function validatePersistentVolumeUpdate (cur: KObject, next: KObject, errors: string[]): void {
  const a = objAt(cur, 'spec') ?? {}
  const b = objAt(next, 'spec') ?? {}
  for (const f of ['local', 'hostPath', 'volumeMode']) if (!jsonEqual(a[f], b[f])) errors.push(fieldError(`spec.${f}`, 'Invalid', b[f], 'field is immutable'))
  if (a.nodeAffinity !== undefined && !jsonEqual(a.nodeAffinity, b.nodeAffinity)) errors.push(fieldError('spec.nodeAffinity', 'Invalid', b.nodeAffinity, 'field is immutable once set'))
}

export function defaultPersistentVolumeClaim (obj: KObject): void {
  const spec = objAt(obj, 'spec')
  if (spec === undefined) return
  spec.volumeMode ??= 'Filesystem'
}

export function validatePersistentVolumeClaim (obj: KObject, errors: string[]): void {
  const spec = objAt(obj, 'spec')
  if (spec === undefined) { errors.push(fieldError('spec', 'Required')); return }
  checkAccessModes(spec.accessModes, 'spec.accessModes', errors)
  checkStorage(objAt(objAt(spec, 'resources') ?? {}, 'requests')?.storage, 'spec.resources[storage]', errors)
  checkVolumeMode(spec.volumeMode, 'spec.volumeMode', errors)
  const selector = objAt(spec, 'selector')
  if (selector !== undefined) checkLabelSelector(selector, 'spec.selector', errors)
}

/**
 * What a claim update may not change: everything of its spec but the
 * requested storage (which may only grow: expansion), and the volume name
 * and class once set (the binder sets them on an unbound claim).
 */
export function validatePersistentVolumeClaimUpdate (cur: KObject, next: KObject, errors: string[]): void {
  const a = objAt(cur, 'spec') ?? {}
  const b = objAt(next, 'spec') ?? {}
  for (const f of ['accessModes', 'selector', 'volumeMode']) if (!jsonEqual(a[f], b[f])) errors.push(fieldError(`spec.${f}`, 'Forbidden', undefined, 'spec is immutable after creation except resources.requests for bound claims'))
  for (const f of ['volumeName', 'storageClassName']) {
    if (a[f] !== undefined && a[f] !== '' && !jsonEqual(a[f], b[f])) errors.push(fieldError(`spec.${f}`, 'Forbidden', undefined, 'spec is immutable after creation except resources.requests for bound claims'))
  }
  const before = storageOf(a)
  const after = storageOf(b)
  if (before !== undefined && after !== undefined && after < before) errors.push(fieldError('spec.resources.requests.storage', 'Forbidden', undefined, 'field can not be less than previous value'))
}

function storageOf (spec: Obj): number | undefined {
  const v = objAt(objAt(spec, 'resources') ?? {}, 'requests')?.storage
  try { return v === undefined ? undefined : parseQuantity(v as string | number) } catch { return undefined }
}

export function defaultStorageClass (obj: KObject): void {
  const sc = obj as Obj
  sc.reclaimPolicy ??= 'Delete'
  sc.volumeBindingMode ??= 'Immediate'
}

export function validateStorageClass (obj: KObject, errors: string[]): void {
  const sc = obj as Obj
  if (typeof sc.provisioner !== 'string' || sc.provisioner === '') errors.push(fieldError('provisioner', 'Required'))
  checkEnum(sc.reclaimPolicy, ['Retain', 'Delete'], 'reclaimPolicy', errors)
  checkEnum(sc.volumeBindingMode, ['Immediate', 'WaitForFirstConsumer'], 'volumeBindingMode', errors)
}

/** What a StorageClass update may not change (all but its metadata, mount options and allowVolumeExpansion). */
export function validateStorageClassUpdate (cur: KObject, next: KObject, errors: string[]): void {
  const a = cur as Obj
  const b = next as Obj
  for (const f of ['provisioner', 'parameters', 'reclaimPolicy', 'volumeBindingMode']) {
    if (!jsonEqual(a[f], b[f])) errors.push(fieldError(f, 'Forbidden', undefined, 'updates to ' + f + ' are forbidden.'))
  }
}
