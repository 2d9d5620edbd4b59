// The columns kubectl shows for each kind, as the API server computes them
// for `Accept: application/json;as=Table;g=meta.k8s.io;v=v1` (priority 0 by
// default, 1 only with -o wide), and the pure cell helpers (a pod's status
// text, a service's ports, a node's roles, ages) that `shoal get` and
// `shoal describe` print with too. Pure functions over the typed kinds
// that tolerate malformed values (a status is not validated by the store,
// and the CLI prints objects from the network): lists are read through
// objectsOf, scalars through str and num.
// May import: ./k8s.ts, ./core-v1.ts, ./apps-v1.ts, ./batch-v1.ts, ./policy-v1.ts (types), ./storage-v1.ts, ./json.ts.
import type { ControllerRevision, DaemonSet, Deployment, ReplicaSet, StatefulSet } from './apps-v1.ts'
import type { CronJob, Job } from './batch-v1.ts'
import type { ConfigMap, Container, Endpoints, Event, Namespace, Node, PersistentVolume, PersistentVolumeClaim, Pod, ReplicationController, Secret, Service } from './core-v1.ts'
import { isDefaultClass } from './storage-v1.ts'
import type { StorageClass } from './storage-v1.ts'
import type { PodDisruptionBudget } from './policy-v1.ts'
import type { KObject } from './k8s.ts'
import { isPlainObject } from './json.ts'

export function num (v: unknown): number {
  return typeof v === 'number' && Number.isFinite(v) ? v : 0
}

export function str (v: unknown, none = '<none>'): string {
  return typeof v === 'string' && v !== '' ? v : typeof v === 'number' ? String(v) : none
}

/**
 * kubectl's short human duration: whole seconds under a minute, whole minutes
 * under an hour, hours under a day, days under a year, then years.
 */
export function humanAge (ms: number): string {
  // A little clock skew between peers must not print "-2s".
  const s = Math.floor(Math.max(0, ms) / 1000)
  if (s < 60) return `${s}s`
  const m = Math.floor(s / 60)
  if (m < 60) return `${m}m`
  const h = Math.floor(m / 60)
  if (h < 24) return `${h}h`
  const d = Math.floor(h / 24)
  if (d < 365) return `${d}d`
  return `${Math.floor(d / 365)}y`
}

/**
 * apimachinery's HumanDuration, which kubectl prints a Job's DURATION with:
 * seconds under 2 minutes, `4m3s` under 10 minutes, minutes under 3 hours,
 * `3h5m` under 8 hours, hours under 2 days, `2d5h` under 8 days, days under
 * 2 years, `2y10d` under 8 years, then years.
 */
export function humanDuration (ms: number): string {
  const s = Math.floor(ms / 1000)
  if (s < -1) return '<invalid>'
  if (s < 0) return '0s'
  if (s < 120) return `${s}s`
  const m = Math.floor(s / 60)
  const pair = (a: number, ua: string, b: number, ub: string): string => b === 0 ? `${a}${ua}` : `${a}${ua}${b}${ub}`
  if (m < 10) return pair(m, 'm', s % 60, 's')
  if (m < 180) return `${m}m`
  const h = Math.floor(m / 60)
  if (h < 8) return pair(h, 'h', m % 60, 'm')
  if (h < 48) return `${h}h`
  if (h < 24 * 8) return pair(Math.floor(h / 24), 'd', h % 24, 'h')
  if (h < 24 * 365 * 2) return `${Math.floor(h / 24)}d`
  if (h < 24 * 365 * 8) return pair(Math.floor(h / 24 / 365), 'y', Math.floor(h / 24) % 365, 'd')
  return `${Math.floor(h / 24 / 365)}y`
}

/** Age of an ISO time at `now`; `<unknown>` when it cannot be parsed. */
export function ageOf (iso: unknown, now: number): string {
  const t = typeof iso === 'string' ? Date.parse(iso) : NaN
  return Number.isNaN(t) ? '<unknown>' : humanAge(now - t)
}

/**
 * The objects of a list that may be malformed: [] for anything but a list,
 * and without the items that are not objects. The cells read every list
 * through this: a status is not validated by the store, and the CLI prints
 * what the network gave it.
 */
export function objectsOf<T extends object> (v: readonly T[] | undefined): T[] {
  return Array.isArray(v) ? v.filter((x): x is T => isPlainObject(x)) : []
}

/** What kubectl's STATUS column says of a pod: Terminating, a container's waiting or terminated reason, else the phase. */
export function podStatus (o: Pod): string {
  if (o.metadata.deletionTimestamp !== undefined) return 'Terminating'
  for (const c of objectsOf(o.status?.containerStatuses)) {
    const waiting = c.state?.waiting?.reason
    if (typeof waiting === 'string' && waiting !== '') return waiting
    const terminated = c.state?.terminated?.reason
    if (typeof terminated === 'string' && terminated !== '' && o.status?.phase !== 'Succeeded') return terminated
  }
  return str(o.status?.reason, str(o.status?.phase, 'Unknown'))
}

/** READY and RESTARTS of a pod: `1/2` and the sum of its containers' restarts. */
export function podReadiness (o: Pod): { ready: string, restarts: number } {
  const statuses = objectsOf(o.status?.containerStatuses)
  const total = Math.max(objectsOf(o.spec?.containers).length, statuses.length)
  const ready = statuses.filter(c => c.ready === true).length
  return { ready: `${ready}/${total}`, restarts: statuses.reduce((n, c) => n + num(c.restartCount), 0) }
}

/** READINESS GATES of a pod: how many of its gates' conditions are True, of how many gates. */
function podReadinessGates (o: Pod): string {
  const gates = objectsOf(o.spec?.readinessGates)
  const conditions = objectsOf(o.status?.conditions)
  return gates.length === 0 ? '<none>' : `${gates.filter(g => conditions.some(c => c.type === g.conditionType && c.status === 'True')).length}/${gates.length}`
}

export function servicePorts (o: Service): string {
  const ports = objectsOf(o.spec?.ports).map(p =>
    `${num(p.port)}${p.nodePort !== undefined ? `:${num(p.nodePort)}` : ''}/${str(p.protocol, 'TCP')}`)
  return ports.length > 0 ? ports.join(',') : '<none>'
}

export function serviceExternalIP (o: Service): string {
  const ingress = objectsOf(o.status?.loadBalancer?.ingress).map(i => str(i.ip, str(i.hostname)))
  const externalIPs = o.spec?.externalIPs
  const external = Array.isArray(externalIPs) ? externalIPs.map(x => str(x)) : []
  const ext = [...ingress, ...external]
  return ext.length > 0 ? ext.join(',') : str(o.spec?.type, 'ClusterIP') === 'LoadBalancer' ? '<pending>' : '<none>'
}

/** `app=web,tier=db`, or `<none>`. */
export function selectorText (v: Record<string, string> | undefined): string {
  const entries = isPlainObject(v) ? Object.entries(v) : []
  return entries.length > 0 ? entries.map(([k, x]) => `${k}=${String(x)}`).join(',') : '<none>'
}

export function nodeStatus (o: Node): string {
  const ready = objectsOf(o.status?.conditions).find(c => c.type === 'Ready')
  const base = ready === undefined ? 'Unknown' : ready.status === 'True' ? 'Ready' : ready.status === 'False' ? 'NotReady' : 'Unknown'
  return o.spec?.unschedulable === true ? `${base},SchedulingDisabled` : base
}

export function nodeRoles (o: KObject): string {
  const roles = Object.keys(o.metadata.labels ?? {})
    .filter(k => k.startsWith('node-role.kubernetes.io/')).map(k => k.slice('node-role.kubernetes.io/'.length)).filter(r => r !== '')
  return roles.length > 0 ? roles.sort().join(',') : '<none>'
}

export function nodeAddress (o: Node, type: string): string {
  return str(objectsOf(o.status?.addresses).find(a => a.type === type)?.address)
}

export function endpointsText (o: Endpoints): string {
  const all: string[] = []
  for (const s of objectsOf(o.subsets)) {
    const ports = objectsOf(s.ports)
    for (const a of objectsOf(s.addresses)) {
      if (ports.length === 0) all.push(str(a.ip))
      for (const p of ports) all.push(`${str(a.ip)}:${num(p.port)}`)
    }
  }
  if (all.length === 0) return '<none>'
  return all.length > 3 ? `${all.slice(0, 3).join(',')} + ${all.length - 3} more...` : all.join(',')
}

/** When an event last happened: lastTimestamp, else eventTime, else its creation. */
export function eventTime (o: Event): string | undefined {
  return [o.lastTimestamp, o.eventTime, o.firstTimestamp, o.metadata.creationTimestamp].find((v): v is string => typeof v === 'string' && v !== '')
}

export function eventObject (o: Event): string {
  return `${str(o.involvedObject?.kind, '').toLowerCase()}/${str(o.involvedObject?.name, '')}`
}

/** The names or images of containers, comma-separated, or `<none>`. */
export function containerList (containers: readonly Container[] | undefined, what: 'name' | 'image'): string {
  const names = objectsOf(containers).map(c => str(c[what]))
  return names.length > 0 ? names.join(',') : '<none>'
}

/** How many keys a ConfigMap or Secret holds (data and binaryData). */
export function dataCount (o: { data?: object, binaryData?: object }): number {
  return Object.keys(isPlainObject(o.data) ? o.data : {}).length + Object.keys(isPlainObject(o.binaryData) ? o.binaryData : {}).length
}

/** One column of a meta.k8s.io/v1 Table, with how to compute its cell from an object of kind T. */
export interface TableColumn<T extends KObject = KObject> {
  name: string
  type: 'string' | 'integer' | 'date'
  /** 'name' for the column that holds the object's name */
  format?: string
  description: string
  /** 0: always shown; 1: only with -o wide */
  priority: 0 | 1
  cell: (o: T, now: number) => string | number
}

function col<T extends KObject = KObject> (name: string, cell: TableColumn<T>['cell'], opts: { type?: TableColumn['type'], priority?: 0 | 1, format?: string, description?: string } = {}): TableColumn<T> {
  return {
    name,
    type: opts.type ?? 'string',
    ...(opts.format !== undefined ? { format: opts.format } : {}),
    description: opts.description ?? name,
    priority: opts.priority ?? 0,
    cell
  }
}

/**
 * A kind's columns as columns of any object: each cell first checks that the
 * object is of the kind (the registry gives a kind only its own columns, so
 * the check always holds; an object of another kind would get empty cells).
 */
export function forKind<T extends KObject> (kind: T['kind'], columns: Array<TableColumn<T>>): TableColumn[] {
  const isOfKind = (o: KObject): o is T => o.kind === kind
  return columns.map(c => ({ ...c, cell: (o: KObject, now: number) => isOfKind(o) ? c.cell(o, now) : '' }))
}

const NAME = col('Name', o => o.metadata.name ?? '', { format: 'name', description: 'Name must be unique within a namespace.' })
const AGE = col('Age', (o, now) => ageOf(o.metadata.creationTimestamp, now), { description: 'CreationTimestamp is a timestamp representing the server time when this object was created.' })
const wide = { priority: 1 as const }

/** The -o wide columns of Deployments, ReplicaSets, DaemonSets and Jobs: the template's containers and images, and the selector. */
function workloadWide<T extends Deployment | ReplicaSet | DaemonSet | Job> (): Array<TableColumn<T>> {
  return [
    col<T>('Containers', o => containerList(o.spec?.template?.spec?.containers, 'name'), wide),
    col<T>('Images', o => containerList(o.spec?.template?.spec?.containers, 'image'), wide),
    col<T>('Selector', o => selectorText(o.spec?.selector?.matchLabels), wide)
  ]
}

function hasCondition (o: Job, type: string): boolean {
  return objectsOf(o.status?.conditions).some(c => c.type === type && c.status === 'True')
}

/** kubectl's STATUS of a Job. */
export function jobStatus (o: Job): string {
  if (hasCondition(o, 'Complete')) return 'Complete'
  if (hasCondition(o, 'Failed')) return 'Failed'
  if (o.metadata.deletionTimestamp !== undefined) return 'Terminating'
  if (hasCondition(o, 'FailureTarget')) return 'FailureTarget'
  if (hasCondition(o, 'Suspended')) return 'Suspended'
  if (hasCondition(o, 'SuccessCriteriaMet')) return 'SuccessCriteriaMet'
  return 'Running'
}

/** kubectl's COMPLETIONS of a Job: `3/5`, or `3/1 of 4` for a work queue with parallelism 4. */
export function jobCompletions (o: Job): string {
  const succeeded = num(o.status?.succeeded)
  if (typeof o.spec?.completions === 'number') return `${succeeded}/${o.spec.completions}`
  const parallelism = num(o.spec?.parallelism)
  return parallelism > 1 ? `${succeeded}/1 of ${parallelism}` : `${succeeded}/1`
}

/** kubectl's DURATION of a Job: start to completion, or to now while it runs. */
export function jobDuration (o: Job, now: number): string {
  const start = typeof o.status?.startTime === 'string' ? Date.parse(o.status.startTime) : NaN
  if (Number.isNaN(start)) return ''
  const end = typeof o.status?.completionTime === 'string' ? Date.parse(o.status.completionTime) : now
  return humanDuration((Number.isNaN(end) ? now : end) - start)
}

/** CONTROLLER of a ControllerRevision: `daemonset.apps/name`. */
function revisionController (o: ControllerRevision): string {
  const ref = objectsOf(o.metadata.ownerReferences).find(r => r.controller === true)
  if (ref === undefined) return '<none>'
  const group = typeof ref.apiVersion === 'string' && ref.apiVersion.includes('/') ? ref.apiVersion.slice(0, ref.apiVersion.indexOf('/')) : ''
  return `${String(ref.kind).toLowerCase()}${group === '' ? '' : '.' + group}/${String(ref.name)}`
}

const intOrNA = (v: unknown): string => typeof v === 'number' || (typeof v === 'string' && v !== '') ? String(v) : 'N/A'

/** The columns per kind, as kube-apiserver's printers define them. */
export const TABLE_COLUMNS: Record<string, TableColumn[]> = {
  Pod: forKind<Pod>('Pod', [
    NAME,
    col('Ready', o => podReadiness(o).ready, { description: 'The aggregate readiness state of this pod for accepting traffic.' }),
    col('Status', podStatus, { description: 'The aggregate status of the containers in this pod.' }),
    col('Restarts', o => podReadiness(o).restarts, { type: 'integer', description: 'The number of times the containers in this pod have been restarted.' }),
    AGE,
    col('IP', o => str(o.status?.podIP), { ...wide, description: 'IP address allocated to the pod.' }),
    col('Node', o => str(o.spec?.nodeName), { ...wide, description: 'Name of the Node the pod is assigned to.' }),
    col('Nominated Node', o => str(o.status?.nominatedNodeName), wide),
    col('Readiness Gates', podReadinessGates, wide)
  ]),
  Deployment: forKind<Deployment>('Deployment', [
    NAME,
    col('Ready', o => `${num(o.status?.readyReplicas)}/${num(o.spec?.replicas)}`),
    col('Up-to-date', o => num(o.status?.updatedReplicas), { type: 'integer' }),
    col('Available', o => num(o.status?.availableReplicas), { type: 'integer' }),
    AGE,
    ...workloadWide<Deployment>()
  ]),
  ReplicaSet: forKind<ReplicaSet>('ReplicaSet', [
    NAME,
    col('Desired', o => num(o.spec?.replicas), { type: 'integer' }),
    col('Current', o => num(o.status?.replicas), { type: 'integer' }),
    col('Ready', o => num(o.status?.readyReplicas), { type: 'integer' }),
    AGE,
    ...workloadWide<ReplicaSet>()
  ]),
  DaemonSet: forKind<DaemonSet>('DaemonSet', [
    NAME,
    col('Desired', o => num(o.status?.desiredNumberScheduled), { type: 'integer' }),
    col('Current', o => num(o.status?.currentNumberScheduled), { type: 'integer' }),
    col('Ready', o => num(o.status?.numberReady), { type: 'integer' }),
    col('Up-to-date', o => num(o.status?.updatedNumberScheduled), { type: 'integer' }),
    col('Available', o => num(o.status?.numberAvailable), { type: 'integer' }),
    col('Node Selector', o => selectorText(o.spec?.template?.spec?.nodeSelector)),
    AGE,
    ...workloadWide<DaemonSet>()
  ]),
  StatefulSet: forKind<StatefulSet>('StatefulSet', [
    NAME,
    col('Ready', o => `${num(o.status?.readyReplicas)}/${num(o.spec?.replicas)}`),
    AGE,
    col('Containers', o => containerList(o.spec?.template?.spec?.containers, 'name'), wide),
    col('Images', o => containerList(o.spec?.template?.spec?.containers, 'image'), wide)
  ]),
  ControllerRevision: forKind<ControllerRevision>('ControllerRevision', [
    NAME,
    col('Controller', revisionController),
    col('Revision', o => num(o.revision), { type: 'integer' }),
    AGE
  ]),
  ReplicationController: forKind<ReplicationController>('ReplicationController', [
    NAME,
    col('Desired', o => num(o.spec?.replicas), { type: 'integer' }),
    col('Current', o => num(o.status?.replicas), { type: 'integer' }),
    col('Ready', o => num(o.status?.readyReplicas), { type: 'integer' }),
    AGE,
    col('Containers', o => containerList(o.spec?.template?.spec?.containers, 'name'), wide),
    col('Images', o => containerList(o.spec?.template?.spec?.containers, 'image'), wide),
    col('Selector', o => selectorText(o.spec?.selector), wide)
  ]),
  Job: forKind<Job>('Job', [
    NAME,
    col('Status', jobStatus),
    col('Completions', jobCompletions),
    col('Duration', jobDuration),
    AGE,
    ...workloadWide<Job>()
  ]),
  CronJob: forKind<CronJob>('CronJob', [
    NAME,
    col('Schedule', o => str(o.spec?.schedule, '')),
    col('Timezone', o => str(o.spec?.timeZone)),
    col('Suspend', o => o.spec?.suspend === true ? 'True' : 'False'),
    col('Active', o => objectsOf(o.status?.active).length, { type: 'integer' }),
    col('Last Schedule', (o, now) => typeof o.status?.lastScheduleTime === 'string' ? ageOf(o.status.lastScheduleTime, now) : '<none>'),
    AGE,
    col('Containers', o => containerList(o.spec?.jobTemplate?.spec?.template?.spec?.containers, 'name'), wide),
    col('Images', o => containerList(o.spec?.jobTemplate?.spec?.template?.spec?.containers, 'image'), wide),
    col('Selector', o => selectorText(o.spec?.jobTemplate?.spec?.selector?.matchLabels), wide)
  ]),
  PodDisruptionBudget: forKind<PodDisruptionBudget>('PodDisruptionBudget', [
    NAME,
    col('Min Available', o => intOrNA(o.spec?.minAvailable)),
    col('Max Unavailable', o => intOrNA(o.spec?.maxUnavailable)),
    col('Allowed Disruptions', o => num(o.status?.disruptionsAllowed), { type: 'integer' }),
    AGE
  ]),
  PersistentVolume: forKind<PersistentVolume>('PersistentVolume', [
    NAME,
    col('Capacity', o => str(o.spec?.capacity?.storage)),
    col('Access Modes', o => accessModes(o.spec?.accessModes)),
    col('Reclaim Policy', o => str(o.spec?.persistentVolumeReclaimPolicy, '')),
    col('Status', o => str(o.status?.phase, '')),
    col('Claim', o => o.spec?.claimRef?.name !== undefined ? `${o.spec.claimRef.namespace ?? ''}/${o.spec.claimRef.name}` : ''),
    col('StorageClass', o => str(o.spec?.storageClassName, '')),
    col('VolumeAttributesClass', () => '<unset>'),
    col('Reason', o => str(o.status?.reason, '')),
    AGE,
    col('VolumeMode', o => str(o.spec?.volumeMode, 'Filesystem'), wide)
  ]),
  PersistentVolumeClaim: forKind<PersistentVolumeClaim>('PersistentVolumeClaim', [
    NAME,
    col('Status', o => str(o.status?.phase, 'Pending')),
    col('Volume', o => str(o.spec?.volumeName, '')),
    col('Capacity', o => str(o.status?.capacity?.storage, '')),
    col('Access Modes', o => accessModes(o.status?.accessModes)),
    col('StorageClass', o => str(o.spec?.storageClassName, '')),
    col('VolumeAttributesClass', () => '<unset>'),
    AGE,
    col('VolumeMode', o => str(o.spec?.volumeMode, 'Filesystem'), wide)
  ]),
  StorageClass: forKind<StorageClass>('StorageClass', [
    col('Name', o => `${o.metadata.name ?? ''}${isDefaultClass(o) ? ' (default)' : ''}`, { format: 'name', description: 'Name must be unique within a namespace.' }),
    col('Provisioner', o => str(o.provisioner)),
    col('ReclaimPolicy', o => str(o.reclaimPolicy, 'Delete')),
    col('VolumeBindingMode', o => str(o.volumeBindingMode, 'Immediate')),
    col('AllowVolumeExpansion', o => String(o.allowVolumeExpansion === true)),
    AGE
  ]),
  Service: forKind<Service>('Service', [
    NAME,
    col('Type', o => str(o.spec?.type, 'ClusterIP')),
    col('Cluster-IP', o => str(o.spec?.clusterIP)),
    col('External-IP', serviceExternalIP),
    col('Port(s)', servicePorts),
    AGE,
    col('Selector', o => selectorText(o.spec?.selector), wide)
  ]),
  Endpoints: forKind<Endpoints>('Endpoints', [NAME, col('Endpoints', endpointsText), AGE]),
  Node: forKind<Node>('Node', [
    NAME,
    col('Status', nodeStatus),
    col('Roles', nodeRoles),
    AGE,
    col('Version', o => str(o.status?.nodeInfo?.kubeletVersion, '')),
    col('Internal-IP', o => nodeAddress(o, 'InternalIP'), wide),
    col('External-IP', o => nodeAddress(o, 'ExternalIP'), wide),
    col('OS-Image', o => str(o.status?.nodeInfo?.osImage, '<unknown>'), wide),
    col('Kernel-Version', o => str(o.status?.nodeInfo?.kernelVersion, '<unknown>'), wide),
    col('Container-Runtime', o => str(o.status?.nodeInfo?.containerRuntimeVersion, '<unknown>'), wide)
  ]),
  Namespace: forKind<Namespace>('Namespace', [NAME, col('Status', o => str(o.status?.phase, 'Active')), AGE]),
  ConfigMap: forKind<ConfigMap>('ConfigMap', [NAME, col<ConfigMap>('Data', dataCount, { type: 'integer' }), AGE]),
  Secret: forKind<Secret>('Secret', [NAME, col('Type', o => str(o.type, 'Opaque')), col<Secret>('Data', dataCount, { type: 'integer' }), AGE]),
  Event: forKind<Event>('Event', [
    col('Last Seen', (o, now) => ageOf(eventTime(o), now)),
    col('Type', o => str(o.type, 'Normal')),
    col('Reason', o => str(o.reason, '')),
    col('Object', eventObject),
    col('Subobject', o => str(o.involvedObject?.fieldPath, ''), wide),
    col('Source', o => str(o.source?.component, str(o.reportingComponent, '')), wide),
    col('Message', o => str(o.message, '').replace(/\s*\n\s*/g, ' ')),
    col('First Seen', (o, now) => ageOf(str(o.firstTimestamp, str(o.eventTime, o.metadata.creationTimestamp ?? '')), now), wide),
    col('Count', o => Math.max(1, num(o.count)), { ...wide, type: 'integer' }),
    col('Name', o => o.metadata.name ?? '', { ...wide, format: 'name' })
  ])
}

/** NAME and AGE, for a kind without its own columns. */
export const DEFAULT_TABLE_COLUMNS: TableColumn[] = [NAME, AGE]

/** kubectl's access modes cell: RWO, ROX, RWX, RWOP joined by commas. */
function accessModes (modes: unknown): string {
  const short: Record<string, string> = { ReadWriteOnce: 'RWO', ReadOnlyMany: 'ROX', ReadWriteMany: 'RWX', ReadWriteOncePod: 'RWOP' }
  return (Array.isArray(modes) ? modes : []).map(m => short[String(m)] ?? String(m)).join(',')
}

export function columnsOf (kind: string): TableColumn[] {
  return TABLE_COLUMNS[kind] ?? DEFAULT_TABLE_COLUMNS
}
