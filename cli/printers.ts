// How `shoal get`, `events` and `describe` print Kubernetes objects: the
// columns kubectl shows per kind (plus -o wide's), resource names such as
// `deployment.apps/web`, and the describe text. Pure functions over the
// typed kinds (objects of a listed type are taken as it, ./objects.ts).
// The cell helpers are shared with the API server's Table answers (protocol/k8s-columns.ts);
// describe's layout is ./describe-text.ts, the newer workload kinds' describe ./describe-workloads.ts.
// May import: protocol/, ./objects.ts, ./output.ts, ./describe-text.ts, ./describe-workloads.ts, yaml.
import { CONFIG_MAP, DEPLOYMENT, EVENT, kindOfResource, NAMESPACE, NODE, POD, REPLICA_SET, SECRET, SERVICE } from '../protocol/kinds.ts'
import { stringify } from 'yaml'
import type { Deployment, ReplicaSet } from '../protocol/apps-v1.ts'
import type { ConfigMap, Event, Node, Pod, Secret, Service } from '../protocol/core-v1.ts'
import { ageOf, DEFAULT_TABLE_COLUMNS, eventTime, nodeRoles, num, objectsOf, podStatus, selectorText, str } from '../protocol/k8s-columns.ts'
import type { KObject, ResourceType } from '../protocol/k8s.ts'
import { isPlainObject } from '../protocol/json.ts'
import type { JsonObject } from '../protocol/json.ts'
import { withKind } from './objects.ts'
import { isOfType } from '../protocol/k8s.ts'
import { renderTable } from './output.ts'
import { alignTabs, conditionsText, containersText, controlledByLine, indent, line, mapLines, podTemplateText } from './describe-text.ts'
import { workloadKindDetails } from './describe-workloads.ts'

export { eventTime }

/** `deployment.apps` or `pod`: how kubectl names a type in its messages. */
export function typeLabel (type: ResourceType): string {
  return type.group === '' ? type.kind.toLowerCase() : `${type.kind.toLowerCase()}.${type.group}`
}

/** `deployment.apps/web`, as `-o name` and apply print it. */
export function objectName (type: ResourceType, obj: KObject): string {
  return `${typeLabel(type)}/${obj.metadata.name ?? ''}`
}

export interface TableOptions {
  wide?: boolean
  /** a NAMESPACE column first */
  withNamespace?: boolean
  /** `pod/web` in the NAME column, as kubectl does when several kinds are printed */
  withKind?: boolean
  now: number
}

/** Header and rows for objects of one type: the registry's columns (protocol/kinds.ts), as kubectl prints them. */
export function tableRows (type: ResourceType, items: KObject[], opts: TableOptions): { head: string[], rows: string[][] } {
  const columns = (kindOfResource(type.group, type.plural)?.columns ?? DEFAULT_TABLE_COLUMNS).filter(c => c.priority === 0 || opts.wide === true)
  const head = [...(opts.withNamespace === true ? ['NAMESPACE'] : []), ...columns.map(c => c.name.toUpperCase())]
  const rows = items.map(o => {
    const typed = withKind(type, o)
    const row = columns.map(c => String(c.cell(typed, opts.now)))
    if (opts.withKind === true && type.kind !== 'Event') row[0] = `${typeLabel(type)}/${row[0] ?? ''}`
    return [...(opts.withNamespace === true ? [o.metadata.namespace ?? ''] : []), ...row]
  })
  return { head, rows }
}

/** A kubectl-like table; events are ordered by when they last happened, others as the server listed them. */
export function renderObjects (type: ResourceType, items: KObject[], opts: TableOptions): string {
  const sorted = type.kind === 'Event' ? byEventTime(items.map(o => withKind(EVENT, o))) : items
  const { head, rows } = tableRows(type, sorted, opts)
  return renderTable(head, rows)
}

/** Events, oldest first by when they last happened. */
function byEventTime (events: Event[]): Event[] {
  const at = (e: Event): number => Date.parse(eventTime(e) ?? '') || 0
  return [...events].sort((a, b) => at(a) - at(b))
}

function podDetails (o: Pod): string {
  const controller = (o.metadata.ownerReferences ?? []).find(r => r.controller === true)
  return line('Node', o.spec?.nodeName) + line('Status', podStatus(o)) + line('IP', o.status?.podIP) +
    line('Controlled By', controller !== undefined ? `${controller.kind}/${controller.name}` : undefined) +
    containersText(o.spec?.containers) + conditionsText(o.status?.conditions)
}

function workloadDetails (o: Deployment | ReplicaSet): string {
  const desired = num(o.spec?.replicas)
  const total = num(o.status?.replicas)
  const available = num(o.status?.availableReplicas)
  const replicas = o.kind === 'Deployment'
    ? `${desired} desired | ${num(o.status?.updatedReplicas)} updated | ${total} total | ${available} available | ${Math.max(0, total - available)} unavailable`
    : `${total} current / ${desired} desired`
  return line('Selector', selectorText(o.spec?.selector?.matchLabels)) + line('Replicas', replicas) +
    (o.kind === 'Deployment' ? line('StrategyType', str(o.spec?.strategy?.type, 'RollingUpdate')) : controlledByLine(o)) +
    podTemplateText(o.spec?.template) + conditionsText(o.status?.conditions)
}

function serviceDetails (o: Service): string {
  return line('Selector', selectorText(o.spec?.selector)) + line('Type', str(o.spec?.type, 'ClusterIP')) +
    line('IP', o.spec?.clusterIP) + objectsOf(o.spec?.ports).map(p =>
    line('Port', `${str(p.name)}  ${num(p.port)}/${str(p.protocol, 'TCP')}`) + line('TargetPort', p.targetPort)).join('')
}

function nodeDetails (o: Node): string {
  const addresses = objectsOf(o.status?.addresses)
  return line('Roles', nodeRoles(o)) + line('Unschedulable', String(o.spec?.unschedulable === true)) + conditionsText(o.status?.conditions) +
    (addresses.length > 0 ? 'Addresses:\n' + addresses.map(a => line(str(a.type), a.address, 1)).join('') : '')
}

function dataDetails (o: ConfigMap | Secret): string {
  const data = isPlainObject(o.data) ? o.data : {}
  const body = Object.keys(data).sort().map(k => o.kind === 'Secret'
    ? line(k, `${Buffer.from(str(data[k], ''), 'base64').length} bytes`)
    : `${k}:\n----\n${str(data[k], '')}\n`).join('')
  return (o.kind === 'Secret' ? line('Type', str(o.type, 'Opaque')) : '') + `\nData\n====\n${body}`
}

/** A kind without its own details: every top-level field but the envelope, as YAML. */
function otherDetails (o: KObject): string {
  const rest: JsonObject = {}
  for (const [k, v] of Object.entries(o)) if (!['apiVersion', 'kind', 'metadata'].includes(k)) rest[k] = v
  return Object.keys(rest).length > 0 ? stringify(rest).replace(/^(\w)/gm, (c: string) => c.toUpperCase()) : ''
}

function kindDetails (o: KObject, now: number, pods: Pod[]): string {
  const workload = workloadKindDetails(o, now, pods)
  if (workload !== undefined) return workload
  if (isOfType(POD, o)) return podDetails(o)
  if (isOfType(DEPLOYMENT, o) || isOfType(REPLICA_SET, o)) return workloadDetails(o)
  if (isOfType(SERVICE, o)) return serviceDetails(o)
  if (isOfType(NODE, o)) return nodeDetails(o)
  if (isOfType(NAMESPACE, o)) return line('Status', str(o.status?.phase, 'Active'))
  if (isOfType(CONFIG_MAP, o) || isOfType(SECRET, o)) return dataDetails(o)
  return otherDetails(o)
}

/**
 * `shoal describe`: the object's metadata, its kind's key fields, and its
 * events (oldest first); `pods` are the workload's own, for its `Pods Status`
 * (./describe-workloads.ts podSelectorOf says which kinds have one).
 */
export function renderDescribe (type: ResourceType, o: KObject, events: Event[], now: number, pods: KObject[] = []): string {
  let out = line('Name', o.metadata.name)
  if (type.namespaced) out += line('Namespace', o.metadata.namespace)
  out += mapLines('Labels', o.metadata.labels) + mapLines('Annotations', o.metadata.annotations)
  out += line('CreationTimestamp', o.metadata.creationTimestamp)
  out += kindDetails(o, now, pods.map(p => withKind(POD, p)))
  if (events.length === 0) return alignTabs(out + line('Events', '<none>'))
  const rows = byEventTime(events).map(e => [str(e.type, 'Normal'), str(e.reason, ''), ageOf(eventTime(e), now),
    str(e.source?.component, str(e.reportingComponent, '')), str(e.message, '').replace(/\s*\n\s*/g, ' ')])
  return alignTabs(out) + 'Events:\n' + indent(renderTable(['Type', 'Reason', 'Age', 'From', 'Message'], rows), '  ')
}
