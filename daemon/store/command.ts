// The wire form of store commands: STORE_TAG then msgpackr of a
// StoreCommand, the scan of its bytes (no deeper than an object may nest)
// before they are decoded, the guard that checks a decoded command's shape,
// and the bootstrap commands that create the system namespaces.
// May import: protocol/, ./types.ts.
import { decode, DecodeError, encode, isObject, isString } from '../../protocol/codec.ts'
import { MAX_JSON_DEPTH } from '../../protocol/json.ts'
import { msgpackShapeError } from '../../protocol/msgpack-scan.ts'
import { SYSTEM_NAMESPACES } from '../../protocol/k8s.ts'
import { isUid } from '../../protocol/validation.ts'
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
    // A uid becomes a path on the kubelet that runs a pod: only one of the uid shape is taken, whoever proposed it.
    case 'create': return isKObject(v.object) && isUid(v.uid)
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
    case 'bind': {
      const pre = v.preconditions
      return isRef(v.ref) && isString(v.node) && v.node !== '' && (absent(pre) || (isObject(pre) && optString(pre.uid)))
    }
    case 'evict': {
      const pre = v.preconditions
      const grace = v.gracePeriodSeconds
      return isRef(v.ref) && (absent(pre) || (isObject(pre) && optString(pre.uid) && optString(pre.resourceVersion))) &&
        (absent(grace) || (Number.isSafeInteger(grace) && (grace as number) >= 0))
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

/**
 * How deep a command may nest: its object (or patch) one level below the
 * command itself, and that object at most MAX_JSON_DEPTH deep, as the API
 * lets through.
 */
export const MAX_COMMAND_DEPTH = MAX_JSON_DEPTH + 1

/**
 * Decodes a command's bytes; throws (DecodeError or Error) when they are not
 * one. The bytes are scanned first, without recursion, so that a command
 * nested too deeply (one proposed around the API) is refused the same way on
 * every peer and at every replay, before the decoder's recursion could fail
 * on one peer's stack and not on another's.
 */
export function decodeStoreCommand (bytes: Uint8Array): StoreCommand {
  if (bytes[0] !== STORE_TAG) throw new Error(`store command: tag ${String(bytes[0])} is not ${STORE_TAG}`)
  const body = bytes.subarray(1)
  const shape = msgpackShapeError(body, MAX_COMMAND_DEPTH)
  if (shape?.tooDeep === true) throw new DecodeError(`store command: the object or patch nests more than ${MAX_JSON_DEPTH} levels deep`)
  if (shape !== undefined) throw new DecodeError(`store command: ${shape.message}`)
  const cmd = decode(body, isStoreCommand, 'store command')
  // JSON has no bytes, and a stored object is frozen, which a byte array with elements cannot be: refused here, alike on every peer.
  if (holdsBytes(cmd)) throw new DecodeError('store command: it holds a byte array, which is not JSON')
  return cmd
}

/** Whether a byte array is anywhere inside `value`; iterative, like the scan. */
function holdsBytes (value: unknown): boolean {
  const stack: unknown[] = [value]
  while (stack.length > 0) {
    const v = stack.pop()
    if (v instanceof Uint8Array) return true
    if (typeof v === 'object' && v !== null) for (const x of Object.values(v)) stack.push(x)
  }
  return false
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
