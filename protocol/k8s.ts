// Kubernetes-shaped objects as Shoal stores and serves them: type and object
// metadata, the resource types Shoal knows (with their REST names, short
// names and scope), watch events and list envelopes. The store, the API
// server, the controllers and the CLI all speak these.
// May import: only ./codec.ts and ./api.ts.
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
}

/** Any stored object; kind-specific fields (spec, status, data, …) are checked by the store's validation. */
export interface KObject {
  apiVersion: string
  kind: string
  metadata: ObjectMeta
  [field: string]: unknown
}

export interface ListMeta { resourceVersion: string, continue?: string }

export interface KList { apiVersion: string, kind: string, metadata: ListMeta, items: KObject[] }

export type WatchEventType = 'ADDED' | 'MODIFIED' | 'DELETED' | 'BOOKMARK' | 'ERROR'

/** One line of a `?watch=1` stream; an ERROR carries a Status (410 Gone when the resourceVersion was compacted). */
export interface WatchEvent { type: WatchEventType, object: KObject | StatusBody }

/** A resource type: where it lives in the REST layout and what it is called. */
export interface ResourceType {
  /** '' for the core group (`/api/v1`), else e.g. 'apps' (`/apis/apps/v1`) */
  group: string
  version: string
  kind: string
  /** the REST name, e.g. 'pods' */
  plural: string
  singular: string
  namespaced: boolean
  shortNames: string[]
  /** subresources served: 'status', 'scale' */
  subresources: string[]
}

export const RESOURCE_TYPES: readonly ResourceType[] = [
  { group: '', version: 'v1', kind: 'Namespace', plural: 'namespaces', singular: 'namespace', namespaced: false, shortNames: ['ns'], subresources: ['status'] },
  { group: '', version: 'v1', kind: 'Node', plural: 'nodes', singular: 'node', namespaced: false, shortNames: ['no'], subresources: ['status'] },
  { group: '', version: 'v1', kind: 'Pod', plural: 'pods', singular: 'pod', namespaced: true, shortNames: ['po'], subresources: ['status'] },
  { group: '', version: 'v1', kind: 'Service', plural: 'services', singular: 'service', namespaced: true, shortNames: ['svc'], subresources: ['status'] },
  { group: '', version: 'v1', kind: 'Endpoints', plural: 'endpoints', singular: 'endpoints', namespaced: true, shortNames: ['ep'], subresources: [] },
  { group: '', version: 'v1', kind: 'ConfigMap', plural: 'configmaps', singular: 'configmap', namespaced: true, shortNames: ['cm'], subresources: [] },
  { group: '', version: 'v1', kind: 'Secret', plural: 'secrets', singular: 'secret', namespaced: true, shortNames: [], subresources: [] },
  { group: '', version: 'v1', kind: 'Event', plural: 'events', singular: 'event', namespaced: true, shortNames: ['ev'], subresources: [] },
  { group: 'apps', version: 'v1', kind: 'Deployment', plural: 'deployments', singular: 'deployment', namespaced: true, shortNames: ['deploy'], subresources: ['status', 'scale'] },
  { group: 'apps', version: 'v1', kind: 'ReplicaSet', plural: 'replicasets', singular: 'replicaset', namespaced: true, shortNames: ['rs'], subresources: ['status', 'scale'] }
]

/** apiVersion as written in objects: 'v1' or 'apps/v1'. */
export function apiVersionOf (t: ResourceType): string {
  return t.group === '' ? t.version : `${t.group}/${t.version}`
}

/** The type for an apiVersion and kind, if Shoal has it. */
export function typeOfKind (apiVersion: string, kind: string): ResourceType | undefined {
  return RESOURCE_TYPES.find(t => t.kind === kind && apiVersionOf(t) === apiVersion)
}

/** The type for a REST group and plural, if Shoal has it. */
export function typeOfResource (group: string, plural: string): ResourceType | undefined {
  return RESOURCE_TYPES.find(t => t.group === group && t.plural === plural)
}

/** The type a user means by a name such as 'po', 'pods', 'pod', 'Pod', 'deploy' or 'deployments.apps'. */
export function typeOfName (name: string): ResourceType | undefined {
  const [base, group] = name.toLowerCase().split(/\.(.*)/s) as [string, string | undefined]
  return RESOURCE_TYPES.find(t => (group === undefined || t.group === group) &&
    (t.plural === base || t.singular === base || t.kind.toLowerCase() === base || t.shortNames.includes(base)))
}

/** A time as Kubernetes writes it in objects: RFC 3339, UTC, whole seconds. */
export function rfc3339 (ms: number): string {
  return new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z')
}

/** Namespaces made at bootstrap, as in Kubernetes. */
export const SYSTEM_NAMESPACES = ['default', 'kube-system', 'kube-public', 'kube-node-lease'] as const
