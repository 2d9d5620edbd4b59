// How `shoal get`, `events` and `describe` print Kubernetes objects: the
// columns kubectl shows per kind (plus -o wide's), resource names such as
// `deployment.apps/web`, and the describe text. Pure functions over KObjects.
// May import: protocol/k8s.ts, ./output.ts, yaml.
import { stringify } from 'yaml'
import type { KObject, ResourceType } from '../protocol/k8s.ts'
import { ageSince, renderTable } from './output.ts'

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

function num (v: unknown): number {
  return typeof v === 'number' && Number.isFinite(v) ? v : 0
}

function str (v: unknown, none = '<none>'): string {
  return typeof v === 'string' && v !== '' ? v : typeof v === 'number' ? String(v) : none
}

function records (v: unknown): Json[] {
  return Array.isArray(v) ? v.filter(isRecord) : []
}

/** `deployment.apps` or `pod`: how kubectl names a type in its messages. */
export function typeLabel (type: ResourceType): string {
  return type.group === '' ? type.kind.toLowerCase() : `${type.kind.toLowerCase()}.${type.group}`
}

/** `deployment.apps/web`, as `-o name` and apply print it. */
export function objectName (type: ResourceType, obj: KObject): string {
  return `${typeLabel(type)}/${obj.metadata.name ?? ''}`
}

interface Columns {
  head: string[]
  row: (o: KObject, now: number) => string[]
  wideHead?: string[]
  wide?: (o: KObject) => string[]
}

function podStatus (o: KObject): string {
  if (o.metadata.deletionTimestamp !== undefined) return 'Terminating'
  for (const c of records(field(o, 'status.containerStatuses'))) {
    const waiting = field(c, 'state.waiting.reason')
    if (typeof waiting === 'string' && waiting !== '') return waiting
    const terminated = field(c, 'state.terminated.reason')
    if (typeof terminated === 'string' && terminated !== '' && field(o, 'status.phase') !== 'Succeeded') return terminated
  }
  return str(field(o, 'status.reason'), str(field(o, 'status.phase'), 'Unknown'))
}

function servicePorts (o: KObject): string {
  const ports = records(field(o, 'spec.ports')).map(p =>
    `${num(p.port)}${p.nodePort !== undefined ? `:${num(p.nodePort)}` : ''}/${str(p.protocol, 'TCP')}`)
  return ports.length > 0 ? ports.join(',') : '<none>'
}

function selectorText (v: unknown): string {
  const entries = isRecord(v) ? Object.entries(v) : []
  return entries.length > 0 ? entries.map(([k, x]) => `${k}=${String(x)}`).join(',') : '<none>'
}

function nodeStatus (o: KObject): string {
  const ready = records(field(o, 'status.conditions')).find(c => c.type === 'Ready')
  const base = ready === undefined ? 'Unknown' : ready.status === 'True' ? 'Ready' : ready.status === 'False' ? 'NotReady' : 'Unknown'
  return field(o, 'spec.unschedulable') === true ? `${base},SchedulingDisabled` : base
}

function nodeRoles (o: KObject): string {
  const roles = Object.keys(o.metadata.labels ?? {})
    .filter(k => k.startsWith('node-role.kubernetes.io/')).map(k => k.slice('node-role.kubernetes.io/'.length)).filter(r => r !== '')
  return roles.length > 0 ? roles.sort().join(',') : '<none>'
}

function endpointsText (o: KObject): string {
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

function eventObject (o: KObject): string {
  return `${str(field(o, 'involvedObject.kind'), '').toLowerCase()}/${str(field(o, 'involvedObject.name'), '')}`
}

function containerList (o: KObject, path: string, what: 'name' | 'image'): string {
  const names = records(field(o, path)).map(c => str(c[what]))
  return names.length > 0 ? names.join(',') : '<none>'
}

const AGE = (o: KObject, now: number): string => ageSince(o.metadata.creationTimestamp, now)
const NAME = (o: KObject): string => o.metadata.name ?? ''

const COLUMNS: Record<string, Columns> = {
  Pod: {
    head: ['NAME', 'READY', 'STATUS', 'RESTARTS', 'AGE'],
    row: (o, now) => {
      const statuses = records(field(o, 'status.containerStatuses'))
      const total = Math.max(records(field(o, 'spec.containers')).length, statuses.length)
      const ready = statuses.filter(c => c.ready === true).length
      const restarts = statuses.reduce((n, c) => n + num(c.restartCount), 0)
      return [NAME(o), `${ready}/${total}`, podStatus(o), String(restarts), AGE(o, now)]
    },
    wideHead: ['IP', 'NODE'],
    wide: o => [str(field(o, 'status.podIP')), str(field(o, 'spec.nodeName'))]
  },
  Deployment: {
    head: ['NAME', 'READY', 'UP-TO-DATE', 'AVAILABLE', 'AGE'],
    row: (o, now) => [NAME(o), `${num(field(o, 'status.readyReplicas'))}/${num(field(o, 'spec.replicas'))}`,
      String(num(field(o, 'status.updatedReplicas'))), String(num(field(o, 'status.availableReplicas'))), AGE(o, now)],
    wideHead: ['CONTAINERS', 'IMAGES', 'SELECTOR'],
    wide: o => [containerList(o, 'spec.template.spec.containers', 'name'), containerList(o, 'spec.template.spec.containers', 'image'), selectorText(field(o, 'spec.selector.matchLabels'))]
  },
  ReplicaSet: {
    head: ['NAME', 'DESIRED', 'CURRENT', 'READY', 'AGE'],
    row: (o, now) => [NAME(o), String(num(field(o, 'spec.replicas'))), String(num(field(o, 'status.replicas'))), String(num(field(o, 'status.readyReplicas'))), AGE(o, now)],
    wideHead: ['CONTAINERS', 'IMAGES', 'SELECTOR'],
    wide: o => [containerList(o, 'spec.template.spec.containers', 'name'), containerList(o, 'spec.template.spec.containers', 'image'), selectorText(field(o, 'spec.selector.matchLabels'))]
  },
  Service: {
    head: ['NAME', 'TYPE', 'CLUSTER-IP', 'EXTERNAL-IP', 'PORT(S)', 'AGE'],
    row: (o, now) => {
      const ingress = records(field(o, 'status.loadBalancer.ingress')).map(i => str(i.ip, str(i.hostname)))
      const external = Array.isArray(field(o, 'spec.externalIPs')) ? (field(o, 'spec.externalIPs') as unknown[]).map(x => str(x)) : []
      const ext = [...ingress, ...external]
      const type = str(field(o, 'spec.type'), 'ClusterIP')
      return [NAME(o), type, str(field(o, 'spec.clusterIP')), ext.length > 0 ? ext.join(',') : type === 'LoadBalancer' ? '<pending>' : '<none>', servicePorts(o), AGE(o, now)]
    },
    wideHead: ['SELECTOR'],
    wide: o => [selectorText(field(o, 'spec.selector'))]
  },
  Node: {
    head: ['NAME', 'STATUS', 'ROLES', 'AGE', 'VERSION'],
    row: (o, now) => [NAME(o), nodeStatus(o), nodeRoles(o), AGE(o, now), str(field(o, 'status.nodeInfo.kubeletVersion'), '')],
    wideHead: ['INTERNAL-IP'],
    wide: o => [str(records(field(o, 'status.addresses')).find(a => a.type === 'InternalIP')?.address)]
  },
  Namespace: {
    head: ['NAME', 'STATUS', 'AGE'],
    row: (o, now) => [NAME(o), str(field(o, 'status.phase'), 'Active'), AGE(o, now)]
  },
  ConfigMap: {
    head: ['NAME', 'DATA', 'AGE'],
    row: (o, now) => [NAME(o), String(Object.keys(isRecord(o.data) ? o.data : {}).length + Object.keys(isRecord(o.binaryData) ? o.binaryData : {}).length), AGE(o, now)]
  },
  Secret: {
    head: ['NAME', 'TYPE', 'DATA', 'AGE'],
    row: (o, now) => [NAME(o), str(o.type, 'Opaque'), String(Object.keys(isRecord(o.data) ? o.data : {}).length), AGE(o, now)]
  },
  Endpoints: {
    head: ['NAME', 'ENDPOINTS', 'AGE'],
    row: (o, now) => [NAME(o), endpointsText(o), AGE(o, now)]
  },
  Event: {
    head: ['LAST SEEN', 'TYPE', 'REASON', 'OBJECT', 'MESSAGE'],
    row: (o, now) => [ageSince(eventTime(o), now), str(o.type, 'Normal'), str(o.reason, ''), eventObject(o), str(o.message, '').replace(/\s*\n\s*/g, ' ')]
  }
}

const DEFAULT_COLUMNS: Columns = { head: ['NAME', 'AGE'], row: (o, now) => [NAME(o), AGE(o, now)] }

export interface TableOptions {
  wide?: boolean
  /** a NAMESPACE column first */
  withNamespace?: boolean
  /** `pod/web` in the NAME column, as kubectl does when several kinds are printed */
  withKind?: boolean
  now: number
}

/** Header and rows for objects of one type. */
export function tableRows (type: ResourceType, items: KObject[], opts: TableOptions): { head: string[], rows: string[][] } {
  const cols = COLUMNS[type.kind] ?? DEFAULT_COLUMNS
  const wide = opts.wide === true && cols.wide !== undefined
  const head = [...(opts.withNamespace === true ? ['NAMESPACE'] : []), ...cols.head, ...(wide ? cols.wideHead ?? [] : [])]
  const rows = items.map(o => {
    const row = cols.row(o, opts.now)
    if (opts.withKind === true && type.kind !== 'Event') row[0] = `${typeLabel(type)}/${row[0] ?? ''}`
    return [...(opts.withNamespace === true ? [o.metadata.namespace ?? ''] : []), ...row, ...(wide ? cols.wide?.(o) ?? [] : [])]
  })
  return { head, rows }
}

/** A kubectl-like table; events are ordered by when they last happened, others as the server listed them. */
export function renderObjects (type: ResourceType, items: KObject[], opts: TableOptions): string {
  const sorted = type.kind === 'Event'
    ? [...items].sort((a, b) => (Date.parse(eventTime(a) ?? '') || 0) - (Date.parse(eventTime(b) ?? '') || 0))
    : items
  const { head, rows } = tableRows(type, sorted, opts)
  return renderTable(head, rows)
}

function mapLines (label: string, m: Record<string, string> | undefined): string {
  const entries = Object.entries(m ?? {}).sort(([a], [b]) => a < b ? -1 : a > b ? 1 : 0)
  if (entries.length === 0) return `${pad(label)}<none>\n`
  return entries.map(([k, v], i) => `${pad(i === 0 ? label : '')}${k}=${v}\n`).join('')
}

function pad (label: string): string {
  return label === '' ? ' '.repeat(16) : `${label}:`.padEnd(16)
}

function line (label: string, value: unknown): string {
  return `${pad(label)}${str(value)}\n`
}

function indent (text: string, by: string): string {
  return text.trimEnd().split('\n').map(l => `${by}${l}`).join('\n') + '\n'
}

function containersText (containers: Json[]): string {
  if (containers.length === 0) return 'Containers:     <none>\n'
  let out = 'Containers:\n'
  for (const c of containers) {
    out += `  ${str(c.name)}:\n    Image:        ${str(c.image)}\n`
    const ports = records(c.ports).map(p => `${num(p.containerPort)}/${str(p.protocol, 'TCP')}`)
    if (ports.length > 0) out += `    Port:         ${ports.join(', ')}\n`
    const env = records(c.env)
    if (env.length > 0) out += '    Environment:\n' + env.map(e => `      ${str(e.name)}:  ${str(e.value, '')}\n`).join('')
  }
  return out
}

function conditionsText (o: KObject): string {
  const conditions = records(field(o, 'status.conditions'))
  if (conditions.length === 0) return ''
  return 'Conditions:\n' + indent(renderTable(['Type', 'Status', 'Reason'], conditions.map(c => [str(c.type), str(c.status), str(c.reason)])), '  ')
}

function kindDetails (o: KObject): string {
  switch (o.kind) {
    case 'Pod':
      return line('Node', field(o, 'spec.nodeName')) + line('Status', podStatus(o)) + line('IP', field(o, 'status.podIP')) +
        line('Controlled By', (() => { const c = (o.metadata.ownerReferences ?? []).find(r => r.controller === true); return c !== undefined ? `${c.kind}/${c.name}` : undefined })()) +
        containersText(records(field(o, 'spec.containers'))) + conditionsText(o)
    case 'Deployment':
    case 'ReplicaSet': {
      const desired = num(field(o, 'spec.replicas'))
      const total = num(field(o, 'status.replicas'))
      const available = num(field(o, 'status.availableReplicas'))
      const replicas = o.kind === 'Deployment'
        ? `${desired} desired | ${num(field(o, 'status.updatedReplicas'))} updated | ${total} total | ${available} available | ${Math.max(0, total - available)} unavailable`
        : `${total} current / ${desired} desired`
      return line('Selector', selectorText(field(o, 'spec.selector.matchLabels'))) + line('Replicas', replicas) +
        (o.kind === 'Deployment' ? line('StrategyType', str(field(o, 'spec.strategy.type'), 'RollingUpdate')) : '') +
        'Pod Template:\n' + mapLines('  Labels', field(o, 'spec.template.metadata.labels') as Record<string, string> | undefined) +
        indent(containersText(records(field(o, 'spec.template.spec.containers'))), '  ') + conditionsText(o)
    }
    case 'Service':
      return line('Selector', selectorText(field(o, 'spec.selector'))) + line('Type', str(field(o, 'spec.type'), 'ClusterIP')) +
        line('IP', field(o, 'spec.clusterIP')) + records(field(o, 'spec.ports')).map(p =>
        line('Port', `${str(p.name)}  ${num(p.port)}/${str(p.protocol, 'TCP')}`) + line('TargetPort', p.targetPort)).join('')
    case 'Node':
      return line('Roles', nodeRoles(o)) + line('Unschedulable', String(field(o, 'spec.unschedulable') === true)) + conditionsText(o) +
        (records(field(o, 'status.addresses')).length > 0
          ? 'Addresses:\n' + records(field(o, 'status.addresses')).map(a => `  ${str(a.type)}:  ${str(a.address)}\n`).join('')
          : '')
    case 'Namespace':
      return line('Status', str(field(o, 'status.phase'), 'Active'))
    case 'ConfigMap':
    case 'Secret': {
      const data = isRecord(o.data) ? o.data : {}
      const body = Object.keys(data).sort().map(k => o.kind === 'Secret'
        ? `${k}:  ${Buffer.from(str(data[k], ''), 'base64').length} bytes\n`
        : `${k}:\n----\n${str(data[k], '')}\n`).join('')
      return (o.kind === 'Secret' ? line('Type', str(o.type, 'Opaque')) : '') + `\nData\n====\n${body}`
    }
    default: {
      const rest: Json = {}
      for (const [k, v] of Object.entries(o)) if (!['apiVersion', 'kind', 'metadata'].includes(k)) rest[k] = v
      return Object.keys(rest).length > 0 ? stringify(rest).replace(/^(\w)/gm, (c: string) => c.toUpperCase()) : ''
    }
  }
}

/** `shoal describe`: the object's metadata, its kind's key fields, and its events (oldest first). */
export function renderDescribe (type: ResourceType, o: KObject, events: KObject[], now: number): string {
  let out = line('Name', o.metadata.name)
  if (type.namespaced) out += line('Namespace', o.metadata.namespace)
  out += mapLines('Labels', o.metadata.labels) + mapLines('Annotations', o.metadata.annotations)
  out += line('CreationTimestamp', o.metadata.creationTimestamp)
  out += kindDetails(o)
  if (events.length === 0) return out + 'Events:         <none>\n'
  const sorted = [...events].sort((a, b) => (Date.parse(eventTime(a) ?? '') || 0) - (Date.parse(eventTime(b) ?? '') || 0))
  const rows = sorted.map(e => [str(e.type, 'Normal'), str(e.reason, ''), ageSince(eventTime(e), now),
    str(field(e, 'source.component'), str(e.reportingComponent, '')), str(e.message, '').replace(/\s*\n\s*/g, ' ')])
  return out + 'Events:\n' + indent(renderTable(['Type', 'Reason', 'Age', 'From', 'Message'], rows), '  ')
}
