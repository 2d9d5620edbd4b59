// The wire form of store commands: STORE_TAG then msgpackr of a
// StoreCommand, the guard that checks a decoded command's shape, and the
// bootstrap commands that create the system namespaces.
// May import: protocol/, ./types.ts.
import { decode, encode, isObject, isString } from '../../protocol/codec.ts'
import { SYSTEM_NAMESPACES } from '../../protocol/k8s.ts'
import type { KObject } from '../../protocol/k8s.ts'
import { STORE_TAG } from './types.ts'
import type { ObjectRef, StoreCommand } from './types.ts'

const absent = (v: unknown): boolean => v === undefined || v === null
const optString = (v: unknown): boolean => absent(v) || isString(v)
const optBool = (v: unknown): boolean => absent(v) || typeof v === 'boolean'

function isKObject (v: unknown): v is KObject {
  return isObject(v) && isString(v.apiVersion) && isString(v.kind) && isObject(v.metadata)
}

function isRef (v: unknown): v is ObjectRef {
  return isObject(v) && isString(v.group) && isString(v.resource) && isString(v.name) && optString(v.namespace)
}

export function isStoreCommand (v: unknown): v is StoreCommand {
  if (!isObject(v) || !isString(v.now) || !optBool(v.dryRun)) return false
  const sub = v.subresource
  switch (v.op) {
    case 'create': return isKObject(v.object) && isString(v.uid) && v.uid !== ''
    case 'update': return isKObject(v.object) && (absent(sub) || sub === 'status' || sub === 'scale') && (absent(v.ref) || isRef(v.ref))
    case 'patch':
      return isRef(v.ref) && (v.patchType === 'merge' || v.patchType === 'strategic' || v.patchType === 'json') &&
        Object.hasOwn(v, 'patch') && (absent(sub) || sub === 'status' || sub === 'scale')
    case 'delete': {
      const pre = v.preconditions
      const policy = v.propagationPolicy
      return isRef(v.ref) && (absent(pre) || (isObject(pre) && optString(pre.uid) && optString(pre.resourceVersion))) &&
        (absent(policy) || policy === 'Background' || policy === 'Foreground' || policy === 'Orphan')
    }
    default: return false
  }
}

/** The bytes to propose through Raft for `cmd`; what ResourceStore.apply decodes. */
export function encodeStoreCommand (cmd: StoreCommand): Uint8Array {
  const body = encode(cmd)
  const bytes = new Uint8Array(body.length + 1)
  bytes[0] = STORE_TAG
  bytes.set(body, 1)
  return bytes
}

/** Decodes a command's bytes; throws (DecodeError or Error) when they are not one. */
export function decodeStoreCommand (bytes: Uint8Array): StoreCommand {
  if (bytes[0] !== STORE_TAG) throw new Error(`store command: tag ${String(bytes[0])} is not ${STORE_TAG}`)
  return decode(bytes.subarray(1), isStoreCommand, 'store command')
}

/**
 * The creates of the system namespaces (default, kube-system, …), one uid
 * each from `uids`, for the first leader to propose when they are missing.
 */
export function bootstrapCommands (now: string, uids: string[]): StoreCommand[] {
  if (uids.length < SYSTEM_NAMESPACES.length) throw new Error(`bootstrapCommands: ${SYSTEM_NAMESPACES.length} uids needed, got ${uids.length}`)
  return SYSTEM_NAMESPACES.map((name, i) => ({
    op: 'create' as const,
    object: { apiVersion: 'v1', kind: 'Namespace', metadata: { name } },
    uid: uids[i] as string,
    now
  }))
}
