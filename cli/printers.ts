// How `shoal get`, `events` and `describe` print Kubernetes objects: the
// columns kubectl shows per kind (plus -o wide's), resource names such as
// `deployment.apps/web`, and the describe text. Pure functions over KObjects.
// The cell helpers are shared with the API server's Table answers (protocol/k8s-columns.ts).
// May import: protocol/k8s.ts, protocol/k8s-columns.ts, ./output.ts, yaml.
import { NAMESPACE } from '../protocol/kinds.ts'
import { stringify } from 'yaml'
import {
  ageOf, containerList, dataCount, endpointsText, eventObject, eventTime, field, nodeAddress, nodeRoles, nodeStatus, num, podReadiness,
  podStatus, records, selectorText, serviceExternalIP, servicePorts, str
} from '../protocol/k8s-columns.ts'
import type { KObject, ResourceType } from '../protocol/k8s.ts'
import { renderTable } from './output.ts'

type Json = Record<string, unknown>

function isRecord (v: unknown): v is Json {
  return typeof v === 'object' && v !== null && !Array.isArray(v)
}

export { field, eventTime }

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

const AGE = (o: KObject, now: number): string => ageOf(o.metadata.creationTimestamp, now)
const NAME = (o: KObject): string => o.metadata.name ?? ''

const COLUMNS: Record<string, Columns> = {
  Pod: {
    head: ['NAME', 'READY', 'STATUS', 'RESTARTS', 'AGE'],
    row: (o, now) => {
      const { ready, restarts } = podReadiness(o)
      return [NAME(o), ready, podStatus(o), String(restarts), AGE(o, now)]
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
    row: (o, now) => [NAME(o), str(field(o, 'spec.type'), 'ClusterIP'), str(field(o, 'spec.clusterIP')), serviceExternalIP(o), servicePorts(o), AGE(o, now)],
    wideHead: ['SELECTOR'],
    wide: o => [selectorText(field(o, 'spec.selector'))]
  },
  Node: {
    head: ['NAME', 'STATUS', 'ROLES', 'AGE', 'VERSION'],
    row: (o, now) => [NAME(o), nodeStatus(o), nodeRoles(o), AGE(o, now), str(field(o, 'status.nodeInfo.kubeletVersion'), '')],
    wideHead: ['INTERNAL-IP'],
    wide: o => [nodeAddress(o, 'InternalIP')]
  },
  Namespace: {
    head: ['NAME', 'STATUS', 'AGE'],
    row: (o, now) => [NAME(o), str(field(o, 'status.phase'), 'Active'), AGE(o, now)]
  },
  ConfigMap: {
    head: ['NAME', 'DATA', 'AGE'],
    row: (o, now) => [NAME(o), String(dataCount(o)), AGE(o, now)]
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
    row: (o, now) => [ageOf(eventTime(o), now), str(o.type, 'Normal'), str(o.reason, ''), eventObject(o), str(o.message, '').replace(/\s*\n\s*/g, ' ')]
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
  const rows = sorted.map(e => [str(e.type, 'Normal'), str(e.reason, ''), ageOf(eventTime(e), now),
    str(field(e, 'source.component'), str(e.reportingComponent, '')), str(e.message, '').replace(/\s*\n\s*/g, ' ')])
  return out + 'Events:\n' + indent(renderTable(['Type', 'Reason', 'Age', 'From', 'Message'], rows), '  ')
}
