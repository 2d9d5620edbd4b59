// The resource store's interface: the commands that go through the Raft log,
// what applying one returns, and the read side (get, list, watch) that the
// API server and the controllers use on every peer's local replica.
// store.ts implements it (ResourceStore).
// May import: protocol/.
import { POD } from '../../protocol/kinds.ts'
import type { StatusBody } from '../../protocol/api.ts'
import type { KObject, ResourceType, WatchEvent } from '../../protocol/k8s.ts'

/** Every store command's bytes start with this tag (the KV's start with 1). */
export const STORE_TAG = 2

export type PatchType = 'merge' | 'strategic' | 'json'

/** Which object a command or read is about. `namespace` only for namespaced types. */
export interface ObjectRef {
  group: string
  /** the REST plural, e.g. 'pods' */
  resource: string
  namespace?: string
  name: string
}

/**
 * A write. Everything that is not deterministic (the uid of a new object,
 * the time) is chosen by the proposer and carried in the command, so that
 * every peer applies it to the same result.
 */
export type StoreCommand =
  /** `object.metadata.name` or `generateName` must be set; `uid` and `now` go into the new object */
  | { op: 'create', object: KObject, uid: string, now: string, dryRun?: boolean }
  /**
   * replaces spec and metadata (or, with subresource 'status', only status); a set metadata.resourceVersion must match (else 409).
   * With subresource 'scale', `object` is an autoscaling/v1 Scale and `ref` names the Deployment or ReplicaSet it scales.
   */
  | { op: 'update', object: KObject, now: string, subresource?: 'status' | 'scale', ref?: ObjectRef, dryRun?: boolean }
  | { op: 'patch', ref: ObjectRef, patchType: PatchType, patch: unknown, now: string, subresource?: 'status' | 'scale', dryRun?: boolean }
  | {
    op: 'delete'
    ref: ObjectRef
    now: string
    preconditions?: { uid?: string, resourceVersion?: string }
    propagationPolicy?: 'Background' | 'Foreground' | 'Orphan'
    dryRun?: boolean
  }
  /**
   * A pod's binding, as Kubernetes' pods/binding subresource does it:
   * spec.nodeName set to `node` and the PodScheduled condition True, in one
   * entry; 409 if the pod already has a node or is being deleted.
   */
  | { op: 'bind', ref: ObjectRef, node: string, now: string, preconditions?: { uid?: string }, dryRun?: boolean }
  /**
   * The eviction subresource of the pod `ref` names (./evict.ts): deleted as
   * by 'delete', unless the PodDisruptionBudget that covers it allows no
   * disruption (429) or several do (500); the budget's disruptionsAllowed is
   * spent and the pod recorded in its disruptedPods in the same entry.
   */
  | {
    op: 'evict'
    ref: ObjectRef
    now: string
    preconditions?: { uid?: string, resourceVersion?: string }
    gracePeriodSeconds?: number
    dryRun?: boolean
  }

/**
 * What applying a command returned: the object as stored (for a delete,
 * the object as it was, or with deletionTimestamp set if finalizers hold
 * it), or a Kubernetes Status with the code (400, 404, 409, 410, 422).
 */
export type StoreResult<T extends KObject = KObject> = { ok: true, object: T } | { ok: false, status: StatusBody }

export interface ListOptions {
  namespace?: string
  /** equality- and set-based, as in Kubernetes: `app=web,tier!=db,env in (a,b),!legacy` */
  labelSelector?: string
  /** `metadata.name`, `metadata.namespace`, `spec.nodeName`, `status.phase`, with = == != */
  fieldSelector?: string
}

export interface WatchOptions extends ListOptions {
  /** events after this resourceVersion; undefined or '0': from now (after sending the current objects as ADDED) */
  resourceVersion?: string
}

/** The resourceVersion asked for is older than the history kept: 410 Gone. */
export class GoneError extends Error {
  override name = 'GoneError'
}

export interface Watch {
  stop: () => void
}

/**
 * The read side, served from the local replica. Typed by the kind:
 * `get(POD, ns, name)` is a `Pod`. Objects are frozen as stored: copy
 * before changing one.
 */
export interface StoreReader {
  /** the applied index, as a resourceVersion */
  resourceVersion: () => string
  /** `namespace` is ignored for cluster-scoped kinds */
  get: <T extends KObject>(type: ResourceType<T>, namespace: string | undefined, name: string) => T | undefined
  /** throws BadSelectorError */
  list: <T extends KObject>(type: ResourceType<T>, opts?: ListOptions) => { items: T[], resourceVersion: string }
  /**
   * Calls `onEvent` for every change, in order, as the log is applied.
   * Throws GoneError if opts.resourceVersion is older than the history kept,
   * BadSelectorError for a bad selector.
   */
  watch: <T extends KObject>(type: ResourceType<T>, opts: WatchOptions, onEvent: (e: WatchEvent<T>) => void) => Watch
}

/**
 * The write side: a command proposed through the Raft log, answered once it
 * is committed and applied on this peer. Rejects with the replicator's
 * errors (NoLeaderError, ProposalTimeoutError, NotLeaderError).
 * `T` is the kind of the object the command writes.
 */
export interface StoreWriter {
  write: <T extends KObject = KObject>(cmd: StoreCommand) => Promise<StoreResult<T>>
}
