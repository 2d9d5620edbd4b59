// The one registry of the kinds Shoal serves. Each entry says where the kind
// lives in the REST layout (group, version, plural), what users may call it
// (singular, short names), its scope, verbs, subresources and categories,
// and carries its printer columns. Discovery, the API router, the store, the
// CLI's name resolution, the table printers and the backup tool read this.
// Each entry also carries what the store checks on every write: the kind's
// schema (./schema.ts), its name rule, and its defaulting and validation
// hooks (./validation.ts). Adding a kind is: its type (core-v1.ts,
// apps-v1.ts, …), an entry here with its schema and hooks, and a controller
// if it has behaviour. Nothing else switches on kind names.
// May import: ./k8s.ts, ./core-v1.ts, ./apps-v1.ts, ./batch-v1.ts, ./policy-v1.ts, ./storage-v1.ts, ./k8s-columns.ts, ./schema.ts, ./validation.ts, ./workload-validation.ts, ./storage-validation.ts.
import type { ControllerRevision, DaemonSet, Deployment, ReplicaSet, StatefulSet } from './apps-v1.ts'
import type { CronJob, Job } from './batch-v1.ts'
import type { ConfigMap, Endpoints, Event, Namespace, Node, PersistentVolume, PersistentVolumeClaim, Pod, ReplicationController, Secret, Service } from './core-v1.ts'
import type { StorageClass } from './storage-v1.ts'
import type { PodDisruptionBudget } from './policy-v1.ts'
import { columnsOf } from './k8s-columns.ts'
import type { TableColumn } from './k8s-columns.ts'
import { apiVersionOf } from './k8s.ts'
import type { KObject, ResourceType } from './k8s.ts'
import * as schemas from './schema.ts'
import type { Schema } from './schema.ts'
import * as v from './validation.ts'
import * as w from './workload-validation.ts'
import * as st from './storage-validation.ts'
import type { KindRules, NameRule } from './validation.ts'

export type Verb = 'create' | 'delete' | 'get' | 'list' | 'patch' | 'update' | 'watch'

/** A kind Shoal serves: a typed ResourceType plus what discovery and the printers need. */
export interface Kind<T extends KObject = KObject> extends ResourceType<T>, KindRules {
  verbs: readonly Verb[]
  /** `kubectl get all` lists the kinds in the `all` category */
  categories: readonly string[]
  /** kubectl's columns (`kubectl get`, `-o wide`), served as meta.k8s.io Tables */
  columns: readonly TableColumn[]
  /** the shape every stored object of the kind has: unknown fields and wrong JSON types are refused */
  schema: Schema
  nameRule: NameRule
  /** fills, in place, what Kubernetes defaults when a user leaves it out */
  defaults?: (obj: KObject) => void
  /** appends field errors (./status.ts fieldError) for a well-shaped object Kubernetes would refuse */
  validate?: (obj: KObject, errors: string[]) => void
  /** appends field errors for a change from `cur` to `next` that an update may not make (immutable fields) */
  validateUpdate?: (cur: KObject, next: KObject, errors: string[]) => void
}

const ALL_VERBS: readonly Verb[] = ['create', 'delete', 'get', 'list', 'patch', 'update', 'watch']

interface KindOptions {
  namespaced: boolean
  schema: Schema
  nameRule?: NameRule
  shortNames?: string[]
  subresources?: string[]
  categories?: string[]
  defaults?: (obj: KObject) => void
  validate?: (obj: KObject, errors: string[]) => void
  validateUpdate?: (cur: KObject, next: KObject, errors: string[]) => void
}

function kind<T extends KObject> (apiVersion: string, k: string, plural: string, opts: KindOptions): Kind<T> {
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
    columns: columnsOf(k),
    schema: opts.schema,
    nameRule: opts.nameRule ?? 'dns1123-subdomain',
    ...(opts.defaults !== undefined ? { defaults: opts.defaults } : {}),
    ...(opts.validate !== undefined ? { validate: opts.validate } : {}),
    ...(opts.validateUpdate !== undefined ? { validateUpdate: opts.validateUpdate } : {})
  }
}

export const NAMESPACE = kind<Namespace>('v1', 'Namespace', 'namespaces', {
  namespaced: false, shortNames: ['ns'], subresources: ['status'], schema: schemas.namespaceSchema, nameRule: 'dns1123-label', defaults: v.defaultNamespace
})
export const NODE = kind<Node>('v1', 'Node', 'nodes', {
  namespaced: false, shortNames: ['no'], subresources: ['status'], schema: schemas.nodeSchema, validate: v.validateNode
})
export const POD = kind<Pod>('v1', 'Pod', 'pods', {
  namespaced: true, shortNames: ['po'], subresources: ['status', 'eviction'], categories: ['all'], schema: schemas.podSchema, defaults: v.defaultPod, validate: v.validatePod, validateUpdate: v.validatePodUpdate
})
export const SERVICE = kind<Service>('v1', 'Service', 'services', {
  namespaced: true, shortNames: ['svc'], subresources: ['status'], categories: ['all'], schema: schemas.serviceSchema, nameRule: 'dns1035-label', defaults: v.defaultService, validate: v.validateService
})
export const ENDPOINTS = kind<Endpoints>('v1', 'Endpoints', 'endpoints', {
  namespaced: true, shortNames: ['ep'], schema: schemas.endpointsSchema
})
export const CONFIG_MAP = kind<ConfigMap>('v1', 'ConfigMap', 'configmaps', {
  namespaced: true, shortNames: ['cm'], schema: schemas.configMapSchema, validate: v.validateConfigMap, validateUpdate: v.validateDataUpdate
})
export const SECRET = kind<Secret>('v1', 'Secret', 'secrets', {
  namespaced: true, schema: schemas.secretSchema, defaults: v.defaultSecret, validate: v.validateSecret, validateUpdate: v.validateDataUpdate
})
export const EVENT = kind<Event>('v1', 'Event', 'events', {
  namespaced: true, shortNames: ['ev'], schema: schemas.eventSchema, defaults: v.defaultEvent, validate: v.validateEvent
})
export const DEPLOYMENT = kind<Deployment>('apps/v1', 'Deployment', 'deployments', {
  namespaced: true, shortNames: ['deploy'], subresources: ['status', 'scale'], categories: ['all'], schema: schemas.deploymentSchema, defaults: v.defaultDeployment, validate: v.validateWorkload, validateUpdate: v.validateWorkloadUpdate
})
export const REPLICA_SET = kind<ReplicaSet>('apps/v1', 'ReplicaSet', 'replicasets', {
  namespaced: true, shortNames: ['rs'], subresources: ['status', 'scale'], categories: ['all'], schema: schemas.replicaSetSchema, defaults: v.defaultReplicaSet, validate: v.validateWorkload, validateUpdate: v.validateWorkloadUpdate
})

export const DAEMON_SET = kind<DaemonSet>('apps/v1', 'DaemonSet', 'daemonsets', {
  namespaced: true, shortNames: ['ds'], subresources: ['status'], categories: ['all'], schema: schemas.daemonSetSchema, defaults: w.defaultDaemonSet, validate: w.validateDaemonSet, validateUpdate: v.validateWorkloadUpdate
})
export const STATEFUL_SET = kind<StatefulSet>('apps/v1', 'StatefulSet', 'statefulsets', {
  namespaced: true, shortNames: ['sts'], subresources: ['status', 'scale'], categories: ['all'], schema: schemas.statefulSetSchema, defaults: w.defaultStatefulSet, validate: w.validateStatefulSet, validateUpdate: w.validateStatefulSetUpdate
})
export const CONTROLLER_REVISION = kind<ControllerRevision>('apps/v1', 'ControllerRevision', 'controllerrevisions', {
  namespaced: true, schema: schemas.controllerRevisionSchema, validate: w.validateControllerRevision, validateUpdate: w.validateControllerRevisionUpdate
})
export const REPLICATION_CONTROLLER = kind<ReplicationController>('v1', 'ReplicationController', 'replicationcontrollers', {
  namespaced: true, shortNames: ['rc'], subresources: ['status', 'scale'], categories: ['all'], schema: schemas.replicationControllerSchema, defaults: w.defaultReplicationController, validate: w.validateReplicationController
})
export const JOB = kind<Job>('batch/v1', 'Job', 'jobs', {
  namespaced: true, subresources: ['status'], categories: ['all'], schema: schemas.jobSchema, defaults: w.defaultJob, validate: w.validateJob, validateUpdate: w.validateJobUpdate
})
export const CRON_JOB = kind<CronJob>('batch/v1', 'CronJob', 'cronjobs', {
  namespaced: true, shortNames: ['cj'], subresources: ['status'], categories: ['all'], schema: schemas.cronJobSchema, defaults: w.defaultCronJob, validate: w.validateCronJob
})
export const PERSISTENT_VOLUME = kind<PersistentVolume>('v1', 'PersistentVolume', 'persistentvolumes', {
  namespaced: false, shortNames: ['pv'], subresources: ['status'], schema: schemas.persistentVolumeSchema, defaults: st.defaultPersistentVolume, validate: st.validatePersistentVolume, validateUpdate: st.validatePersistentVolumeUpdate
})
export const PERSISTENT_VOLUME_CLAIM = kind<PersistentVolumeClaim>('v1', 'PersistentVolumeClaim', 'persistentvolumeclaims', {
  namespaced: true, shortNames: ['pvc'], subresources: ['status'], schema: schemas.persistentVolumeClaimSchema, defaults: st.defaultPersistentVolumeClaim, validate: st.validatePersistentVolumeClaim, validateUpdate: st.validatePersistentVolumeClaimUpdate
})
export const STORAGE_CLASS = kind<StorageClass>('storage.k8s.io/v1', 'StorageClass', 'storageclasses', {
  namespaced: false, shortNames: ['sc'], schema: schemas.storageClassSchema, defaults: st.defaultStorageClass, validate: st.validateStorageClass, validateUpdate: st.validateStorageClassUpdate
})
export const POD_DISRUPTION_BUDGET = kind<PodDisruptionBudget>('policy/v1', 'PodDisruptionBudget', 'poddisruptionbudgets', {
  namespaced: true, shortNames: ['pdb'], subresources: ['status'], schema: schemas.podDisruptionBudgetSchema, validate: w.validatePodDisruptionBudget
})

/** Every kind Shoal serves, in discovery order. */
export const KINDS: readonly Kind[] = [
  NAMESPACE, NODE, POD, SERVICE, ENDPOINTS, CONFIG_MAP, SECRET, EVENT, REPLICATION_CONTROLLER,
  DEPLOYMENT, REPLICA_SET, DAEMON_SET, STATEFUL_SET, CONTROLLER_REVISION, JOB, CRON_JOB, POD_DISRUPTION_BUDGET,
  PERSISTENT_VOLUME, PERSISTENT_VOLUME_CLAIM, STORAGE_CLASS
] as readonly Kind[]

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
