// Kubernetes-shaped objects as Shoal stores and serves them: type and object
// metadata, the resource types Shoal knows (with their REST names, short
// names and scope), watch events and list envelopes. The store, the API
// server, the controllers and the CLI all speak these.
// May import: ./api.ts.
import type { StatusBody } from './api.ts'

export interface OwnerReference {
  apiVersion: string
  kind: string
  name: string
  uid: string
  controller?: boolean
  blockOwnerDeletion?: boolean
}

export interface ObjectMeta {
  name?: string
  generateName?: string
  namespace?: string
  uid?: string
  /** the Raft index of the last write to the object, as a decimal string */
  resourceVersion?: string
  /** bumped on every change of spec (not of status or metadata) */
  generation?: number
  /** RFC 3339, seconds precision, UTC */
  creationTimestamp?: string
  deletionTimestamp?: string
  deletionGracePeriodSeconds?: number
  labels?: Record<string, string>
  annotations?: Record<string, string>
  ownerReferences?: OwnerReference[]
  finalizers?: string[]
  /** server-side apply's field ownership (daemon/api/apply.ts) */
  managedFields?: ManagedFieldsEntry[]
}

export interface ManagedFieldsEntry {
  manager: string
  operation: 'Apply' | 'Update'
  apiVersion?: string
  time?: string
  fieldsType?: 'FieldsV1'
  fieldsV1: Record<string, unknown>
  subresource?: string
}

/** The structured selector of a Deployment, ReplicaSet or Service-like object. */
export interface LabelSelector {
  matchLabels?: Record<string, string>
  matchExpressions?: LabelSelectorRequirement[]
}

export interface LabelSelectorRequirement { key: string, operator: 'In' | 'NotIn' | 'Exists' | 'DoesNotExist' | string, values?: string[] }

/**
 * Any stored object, as generic code (the store, the API, backups) sees it;
 * a kind's own fields are checked by its validation. Code that knows the
 * kind uses the kind's type (Pod, Deployment, …), through a typed
 * ResourceType from protocol/kinds.ts.
 */
export interface KObject {
  apiVersion: string
  kind: string
  metadata: ObjectMeta
  [field: string]: unknown
}

/** The common part of every typed kind: `TypedObject<'v1', 'Pod'> & { spec?: PodSpec, … }`. */
export type TypedObject<V extends string, K extends string> = { apiVersion: V, kind: K, metadata: ObjectMeta }

export interface ListMeta { resourceVersion: string, continue?: string }

export interface KList<T extends KObject = KObject> { apiVersion: string, kind: string, metadata: ListMeta, items: T[] }

export type WatchEventType = 'ADDED' | 'MODIFIED' | 'DELETED' | 'BOOKMARK' | 'ERROR'

/** One line of a `?watch=1` stream; an ERROR carries a Status (410 Gone when the resourceVersion was compacted). */
export type WatchEvent<T extends KObject = KObject> =
  | { type: 'ADDED' | 'MODIFIED' | 'DELETED' | 'BOOKMARK', object: T }
  | { type: 'ERROR', object: StatusBody }

/**
 * A resource type: where it lives in the REST layout and what it is called.
 * `T` is the type of its objects (a phantom: it only guides the compiler),
 * so that `store.get(POD, ns, name)` is a `Pod`. protocol/kinds.ts has one
 * per kind Shoal serves.
 */
export interface ResourceType<T extends KObject = KObject> {
  /** '' for the core group (`/api/v1`), else e.g. 'apps' (`/apis/apps/v1`) */
  group: string
  version: string
  kind: string
  /** the REST name, e.g. 'pods' */
  plural: string
  singular: string
  namespaced: boolean
  shortNames: readonly string[]
  /** subresources served: 'status', 'scale', a pod's 'eviction' */
  subresources: readonly string[]
  /** never set: carries T */
  readonly objectType?: T
}

/** apiVersion as written in objects: 'v1' or 'apps/v1'. */
export function apiVersionOf (t: { group: string, version: string }): string {
  return t.group === '' ? t.version : `${t.group}/${t.version}`
}

/** Whether `o` is of `type`, by its apiVersion and kind: the one narrowing from KObject to a kind's type. */
export function isOfType<T extends KObject> (type: ResourceType<T>, o: KObject): o is T {
  return o.kind === type.kind && o.apiVersion === apiVersionOf(type)
}

/** A time as Kubernetes writes it in objects: RFC 3339, UTC, whole seconds. */
export function rfc3339 (ms: number): string {
  return new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z')
}

/** Namespaces made at bootstrap, as in Kubernetes. */
export const SYSTEM_NAMESPACES = ['default', 'kube-system', 'kube-public', 'kube-node-lease'] as const
