// The columns kubectl shows for each kind, as the API server computes them
// for `Accept: application/json;as=Table;g=meta.k8s.io;v=v1` (priority 0 by
// default, 1 only with -o wide), and the pure cell helpers (a pod's status
// text, a service's ports, a node's roles, ages) that `shoal get` and
// `shoal describe` print with too. Pure functions over KObjects.
// May import: ./k8s.ts.
import type { KObject } from './k8s.ts'

type Json = Record<string, unknown>

function isRecord (v: unknown): v is Json {
  return typeof v === 'object' && v !== null && !Array.isArray(v)
}

/** The value at a dotted path, or undefined. */
export function field (obj: unknown, path: string): unknown {
  let v = obj
  for (const part of path.split('.')) v = isRecord(v) ? v[part] : undefined
  return v
}

export function num (v: unknown): number {
  return typeof v === 'number' && Number.isFinite(v) ? v : 0
}

export function str (v: unknown, none = '<none>'): string {
  return typeof v === 'string' && v !== '' ? v : typeof v === 'number' ? String(v) : none
}

export function records (v: unknown): Json[] {
  return Array.isArray(v) ? v.filter(isRecord) : []
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

/** Age of an ISO time at `now`; `<unknown>` when it cannot be parsed. */
export function ageOf (iso: unknown, now: number): string {
  const t = typeof iso === 'string' ? Date.parse(iso) : NaN
  return Number.isNaN(t) ? '<unknown>' : humanAge(now - t)
}

/** What kubectl's STATUS column says of a pod: Terminating, a container's waiting or terminated reason, else the phase. */
export function podStatus (o: KObject): string {
  if (o.metadata.deletionTimestamp !== undefined) return 'Terminating'
  for (const c of records(field(o, 'status.containerStatuses'))) {
    const waiting = field(c, 'state.waiting.reason')
    if (typeof waiting === 'string' && waiting !== '') return waiting
    const terminated = field(c, 'state.terminated.reason')
    if (typeof terminated === 'string' && terminated !== '' && field(o, 'status.phase') !== 'Succeeded') return terminated
  }
  return str(field(o, 'status.reason'), str(field(o, 'status.phase'), 'Unknown'))
}

/** READY and RESTARTS of a pod: `1/2` and the sum of its containers' restarts. */
export function podReadiness (o: KObject): { ready: string, restarts: number } {
  const statuses = records(field(o, 'status.containerStatuses'))
  const total = Math.max(records(field(o, 'spec.containers')).length, statuses.length)
  const ready = statuses.filter(c => c.ready === true).length
  return { ready: `${ready}/${total}`, restarts: statuses.reduce((n, c) => n + num(c.restartCount), 0) }
}

export function servicePorts (o: KObject): string {
  const ports = records(field(o, 'spec.ports')).map(p =>
    `${num(p.port)}${p.nodePort !== undefined ? `:${num(p.nodePort)}` : ''}/${str(p.protocol, 'TCP')}`)
  return ports.length > 0 ? ports.join(',') : '<none>'
}

export function serviceExternalIP (o: KObject): string {
  const ingress = records(field(o, 'status.loadBalancer.ingress')).map(i => str(i.ip, str(i.hostname)))
  const external = Array.isArray(field(o, 'spec.externalIPs')) ? (field(o, 'spec.externalIPs') as unknown[]).map(x => str(x)) : []
  const ext = [...ingress, ...external]
  return ext.length > 0 ? ext.join(',') : str(field(o, 'spec.type'), 'ClusterIP') === 'LoadBalancer' ? '<pending>' : '<none>'
}

/** `app=web,tier=db`, or `<none>`. */
export function selectorText (v: unknown): string {
  const entries = isRecord(v) ? Object.entries(v) : []
  return entries.length > 0 ? entries.map(([k, x]) => `${k}=${String(x)}`).join(',') : '<none>'
}

export function nodeStatus (o: KObject): string {
  const ready = records(field(o, 'status.conditions')).find(c => c.type === 'Ready')
  const base = ready === undefined ? 'Unknown' : ready.status === 'True' ? 'Ready' : ready.status === 'False' ? 'NotReady' : 'Unknown'
  return field(o, 'spec.unschedulable') === true ? `${base},SchedulingDisabled` : base
}

export function nodeRoles (o: KObject): string {
  const roles = Object.keys(o.metadata.labels ?? {})
    .filter(k => k.startsWith('node-role.kubernetes.io/')).map(k => k.slice('node-role.kubernetes.io/'.length)).filter(r => r !== '')
  return roles.length > 0 ? roles.sort().join(',') : '<none>'
}

export function nodeAddress (o: KObject, type: string): string {
  return str(records(field(o, 'status.addresses')).find(a => a.type === type)?.address)
}

export function endpointsText (o: KObject): string {
  const all: string[] = []
  for (const s of records(o.subsets)) {
    const ports = records(s.ports)
    for (const a of records(s.addresses)) {
      if (ports.length === 0) all.push(str(a.ip))
      for (const p of ports) all.push(`${str(a.ip)}:${num(p.port)}`)
    }
  }
  if (all.length === 0) return '<none>'
  return all.length > 3 ? `${all.slice(0, 3).join(',')} + ${all.length - 3} more...` : all.join(',')
}

/** When an event last happened: lastTimestamp, else eventTime, else its creation. */
export function eventTime (o: KObject): string | undefined {
  const t = [o.lastTimestamp, o.eventTime, o.firstTimestamp, o.metadata.creationTimestamp].find(v => typeof v === 'string' && v !== '')
  return t as string | undefined
}

export function eventObject (o: KObject): string {
  return `${str(field(o, 'involvedObject.kind'), '').toLowerCase()}/${str(field(o, 'involvedObject.name'), '')}`
}

export function containerList (o: KObject, path: string, what: 'name' | 'image'): string {
  const names = records(field(o, path)).map(c => str(c[what]))
  return names.length > 0 ? names.join(',') : '<none>'
}

export function dataCount (o: KObject): number {
  return Object.keys(isRecord(o.data) ? o.data : {}).length + Object.keys(isRecord(o.binaryData) ? o.binaryData : {}).length
}

/** One column of a meta.k8s.io/v1 Table, with how to compute its cell. */
export interface TableColumn {
  name: string
  type: 'string' | 'integer' | 'date'
  /** 'name' for the column that holds the object's name */
  format?: string
  description: string
  /** 0: always shown; 1: only with -o wide */
  priority: 0 | 1
  cell: (o: KObject, now: number) => string | number
}

const col = (name: string, cell: TableColumn['cell'], opts: { type?: TableColumn['type'], priority?: 0 | 1, format?: string, description?: string } = {}): TableColumn => ({
  name,
  type: opts.type ?? 'string',
  ...(opts.format !== undefined ? { format: opts.format } : {}),
  description: opts.description ?? name,
  priority: opts.priority ?? 0,
  cell
})

const NAME = col('Name', o => o.metadata.name ?? '', { format: 'name', description: 'Name must be unique within a namespace.' })
const AGE = col('Age', (o, now) => ageOf(o.metadata.creationTimestamp, now), { description: 'CreationTimestamp is a timestamp representing the server time when this object was created.' })
const wide = { priority: 1 as const }
const TEMPLATE = 'spec.template.spec.containers'

/** The -o wide columns of Deployments and ReplicaSets: the template's containers and images, and the selector. */
function workloadWide (): TableColumn[] {
  return [
    col('Containers', o => containerList(o, TEMPLATE, 'name'), wide),
    col('Images', o => containerList(o, TEMPLATE, 'image'), wide),
    col('Selector', o => selectorText(field(o, 'spec.selector.matchLabels')), wide)
  ]
}

/** The columns per kind, as kube-apiserver's printers define them. */
export const TABLE_COLUMNS: Record<string, TableColumn[]> = {
  Pod: [
    NAME,
    col('Ready', o => podReadiness(o).ready, { description: 'The aggregate readiness state of this pod for accepting traffic.' }),
    col('Status', podStatus, { description: 'The aggregate status of the containers in this pod.' }),
    col('Restarts', o => podReadiness(o).restarts, { type: 'integer', description: 'The number of times the containers in this pod have been restarted.' }),
    AGE,
    col('IP', o => str(field(o, 'status.podIP')), { ...wide, description: 'IP address allocated to the pod.' }),
    col('Node', o => str(field(o, 'spec.nodeName')), { ...wide, description: 'Name of the Node the pod is assigned to.' }),
    col('Nominated Node', o => str(field(o, 'status.nominatedNodeName')), wide),
    col('Readiness Gates', o => {
      const gates = records(field(o, 'spec.readinessGates'))
      return gates.length === 0 ? '<none>' : `${gates.filter(g => records(field(o, 'status.conditions')).some(c => c.type === g.conditionType && c.status === 'True')).length}/${gates.length}`
    }, wide)
  ],
  Deployment: [
    NAME,
    col('Ready', o => `${num(field(o, 'status.readyReplicas'))}/${num(field(o, 'spec.replicas'))}`),
    col('Up-to-date', o => num(field(o, 'status.updatedReplicas')), { type: 'integer' }),
    col('Available', o => num(field(o, 'status.availableReplicas')), { type: 'integer' }),
    AGE,
    ...workloadWide()
  ],
  ReplicaSet: [
    NAME,
    col('Desired', o => num(field(o, 'spec.replicas')), { type: 'integer' }),
    col('Current', o => num(field(o, 'status.replicas')), { type: 'integer' }),
    col('Ready', o => num(field(o, 'status.readyReplicas')), { type: 'integer' }),
    AGE,
    ...workloadWide()
  ],
  Service: [
    NAME,
    col('Type', o => str(field(o, 'spec.type'), 'ClusterIP')),
    col('Cluster-IP', o => str(field(o, 'spec.clusterIP'))),
    col('External-IP', serviceExternalIP),
    col('Port(s)', servicePorts),
    AGE,
    col('Selector', o => selectorText(field(o, 'spec.selector')), wide)
  ],
  Endpoints: [NAME, col('Endpoints', endpointsText), AGE],
  Node: [
    NAME,
    col('Status', nodeStatus),
    col('Roles', nodeRoles),
    AGE,
    col('Version', o => str(field(o, 'status.nodeInfo.kubeletVersion'), '')),
    col('Internal-IP', o => nodeAddress(o, 'InternalIP'), wide),
    col('External-IP', o => nodeAddress(o, 'ExternalIP'), wide),
    col('OS-Image', o => str(field(o, 'status.nodeInfo.osImage'), '<unknown>'), wide),
    col('Kernel-Version', o => str(field(o, 'status.nodeInfo.kernelVersion'), '<unknown>'), wide),
    col('Container-Runtime', o => str(field(o, 'status.nodeInfo.containerRuntimeVersion'), '<unknown>'), wide)
  ],
  Namespace: [NAME, col('Status', o => str(field(o, 'status.phase'), 'Active')), AGE],
  ConfigMap: [NAME, col('Data', dataCount, { type: 'integer' }), AGE],
  Secret: [NAME, col('Type', o => str(o.type, 'Opaque')), col('Data', dataCount, { type: 'integer' }), AGE],
  Event: [
    col('Last Seen', (o, now) => ageOf(eventTime(o), now)),
    col('Type', o => str(o.type, 'Normal')),
    col('Reason', o => str(o.reason, '')),
    col('Object', eventObject),
    col('Subobject', o => str(field(o, 'involvedObject.fieldPath'), ''), wide),
    col('Source', o => str(field(o, 'source.component'), str(o.reportingComponent, '')), wide),
    col('Message', o => str(o.message, '').replace(/\s*\n\s*/g, ' ')),
    col('First Seen', (o, now) => ageOf(str(o.firstTimestamp, str(o.eventTime, o.metadata.creationTimestamp ?? '')), now), wide),
    col('Count', o => Math.max(1, num(o.count)), { ...wide, type: 'integer' }),
    col('Name', o => o.metadata.name ?? '', { ...wide, format: 'name' })
  ]
}

/** NAME and AGE, for a kind without its own columns. */
export const DEFAULT_TABLE_COLUMNS: TableColumn[] = [NAME, AGE]

export function columnsOf (kind: string): TableColumn[] {
  return TABLE_COLUMNS[kind] ?? DEFAULT_TABLE_COLUMNS
}
