// The one registry of the kinds Shoal serves. Each entry says where the kind
// lives in the REST layout (group, version, plural), what users may call it
// (singular, short names), its scope, verbs, subresources and categories,
// and carries its printer columns. Discovery, the API router, the store, the
// CLI's name resolution, the table printers and the backup tool read this;
// the store's validation and defaulting are keyed by the same entries
// (protocol/validation.ts). Adding a kind is: its type (core-v1.ts,
// apps-v1.ts, …), an entry here, its validation, and a controller if it has
// behaviour.
// May import: ./k8s.ts, ./core-v1.ts, ./apps-v1.ts, ./k8s-columns.ts.
import type { Deployment, ReplicaSet } from './apps-v1.ts'
import type { ConfigMap, Endpoints, Event, Namespace, Node, Pod, Secret, Service } from './core-v1.ts'
import { columnsOf } from './k8s-columns.ts'
import type { TableColumn } from './k8s-columns.ts'
import { apiVersionOf } from './k8s.ts'
import type { KObject, ResourceType } from './k8s.ts'

export type Verb = 'create' | 'delete' | 'get' | 'list' | 'patch' | 'update' | 'watch'

/** A kind Shoal serves: a typed ResourceType plus what discovery and the printers need. */
export interface Kind<T extends KObject = KObject> extends ResourceType<T> {
  verbs: readonly Verb[]
  /** `kubectl get all` lists the kinds in the `all` category */
  categories: readonly string[]
  /** kubectl's columns (`kubectl get`, `-o wide`), served as meta.k8s.io Tables */
  columns: readonly TableColumn[]
}

const ALL_VERBS: readonly Verb[] = ['create', 'delete', 'get', 'list', 'patch', 'update', 'watch']

function kind<T extends KObject> (apiVersion: string, k: string, plural: string, opts: { namespaced: boolean, shortNames?: string[], subresources?: string[], categories?: string[] }): Kind<T> {
  const slash = apiVersion.indexOf('/')
  return {
    group: slash < 0 ? '' : apiVersion.slice(0, slash),
    version: apiVersion.slice(slash + 1),
    kind: k,
    plural,
    singular: k.toLowerCase(),
    namespaced: opts.namespaced,
    shortNames: opts.shortNames ?? [],
    subresources: opts.subresources ?? [],
    verbs: ALL_VERBS,
    categories: opts.categories ?? [],
    columns: columnsOf(k)
  }
}

export const NAMESPACE = kind<Namespace>('v1', 'Namespace', 'namespaces', { namespaced: false, shortNames: ['ns'], subresources: ['status'] })
export const NODE = kind<Node>('v1', 'Node', 'nodes', { namespaced: false, shortNames: ['no'], subresources: ['status'] })
export const POD = kind<Pod>('v1', 'Pod', 'pods', { namespaced: true, shortNames: ['po'], subresources: ['status'], categories: ['all'] })
export const SERVICE = kind<Service>('v1', 'Service', 'services', { namespaced: true, shortNames: ['svc'], subresources: ['status'], categories: ['all'] })
export const ENDPOINTS = kind<Endpoints>('v1', 'Endpoints', 'endpoints', { namespaced: true, shortNames: ['ep'] })
export const CONFIG_MAP = kind<ConfigMap>('v1', 'ConfigMap', 'configmaps', { namespaced: true, shortNames: ['cm'] })
export const SECRET = kind<Secret>('v1', 'Secret', 'secrets', { namespaced: true })
export const EVENT = kind<Event>('v1', 'Event', 'events', { namespaced: true, shortNames: ['ev'] })
export const DEPLOYMENT = kind<Deployment>('apps/v1', 'Deployment', 'deployments', { namespaced: true, shortNames: ['deploy'], subresources: ['status', 'scale'], categories: ['all'] })
export const REPLICA_SET = kind<ReplicaSet>('apps/v1', 'ReplicaSet', 'replicasets', { namespaced: true, shortNames: ['rs'], subresources: ['status', 'scale'], categories: ['all'] })

/** Every kind Shoal serves, in discovery order. */
export const KINDS: readonly Kind[] = [NAMESPACE, NODE, POD, SERVICE, ENDPOINTS, CONFIG_MAP, SECRET, EVENT, DEPLOYMENT, REPLICA_SET] as readonly Kind[]

/** The kind for an apiVersion and kind, if Shoal serves it. */
export function kindOf (apiVersion: string, kindName: string): Kind | undefined {
  return KINDS.find(t => t.kind === kindName && apiVersionOf(t) === apiVersion)
}

/** The kind for a REST group and plural, if Shoal serves it. */
export function kindOfResource (group: string, plural: string): Kind | undefined {
  return KINDS.find(t => t.group === group && t.plural === plural)
}

/** The kind a user means by a name such as 'po', 'pods', 'pod', 'Pod', 'deploy' or 'deployments.apps'. */
export function kindOfName (name: string): Kind | undefined {
  const [base, group] = name.toLowerCase().split(/\.(.*)/s) as [string, string | undefined]
  return KINDS.find(t => (group === undefined || t.group === group) &&
    (t.plural === base || t.singular === base || t.kind.toLowerCase() === base || t.shortNames.includes(base)))
}
