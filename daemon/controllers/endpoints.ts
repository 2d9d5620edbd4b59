// The Endpoints controller, on the leader: for every Service with a
// selector, an Endpoints object of the same name lists the addresses of the
// matching pods that have one (ready ones in `addresses`, the others in
// `notReadyAddresses`) and the service's ports resolved against the pods'
// container ports (a named targetPort is looked up by name). An address
// carries the pod's hostname when the pod's subdomain is the service (how a
// headless service names a StatefulSet's pods). Written only when it changes.
// May import: protocol/, daemon/store/types.ts, ./framework.ts, daemon/workqueue.
import type { EndpointAddress, EndpointPort, Endpoints, EndpointSubset, Pod, Service } from '../../protocol/core-v1.ts'
import { ENDPOINTS, POD, SERVICE } from '../../protocol/kinds.ts'
import { matchLabelSelector } from '../../protocol/selector.ts'
import type { Watch } from '../store/types.ts'
import type { Controller, ControllerContext } from './framework.ts'
import { keyOf, splitKey, WorkQueue } from '../workqueue/queue.ts'

function podReady (pod: Pod): boolean {
  return (pod.status?.conditions ?? []).some(c => c.type === 'Ready' && c.status === 'True')
}

function podIp (pod: Pod): string | undefined {
  // A status is only checked to be an object: podIP may be anything.
  const ip = pod.status?.podIP
  return typeof ip === 'string' && ip !== '' ? ip : undefined
}

/** The Endpoints subsets for a service and its pods (pure, for tests). */
export function subsetsFor (service: Service, pods: Pod[]): EndpointSubset[] {
  const ports = service.spec?.ports ?? []
  const withIp = pods.flatMap(pod => {
    const ip = podIp(pod)
    return ip !== undefined && pod.metadata.deletionTimestamp === undefined ? [{ pod, ip }] : []
  })
  if (withIp.length === 0 || ports.length === 0) return []
  // Pods may name their ports differently: group pods by the resolved port list.
  const groups = new Map<string, { ports: EndpointPort[], ready: EndpointAddress[], notReady: EndpointAddress[] }>()
  for (const { pod, ip } of withIp) {
    const containerPorts = (pod.spec?.containers ?? []).flatMap(c => c.ports ?? [])
    const resolved = ports.map((sp): EndpointPort | undefined => {
      const target = sp.targetPort ?? sp.port
      const port = typeof target === 'number' ? target : containerPorts.find(cp => cp.name === target)?.containerPort
      return port === undefined ? undefined : { ...(sp.name !== undefined ? { name: sp.name } : {}), port, protocol: sp.protocol ?? 'TCP' }
    }).filter(p => p !== undefined)
    if (resolved.length === 0) continue
    const key = JSON.stringify(resolved)
    let g = groups.get(key)
    if (g === undefined) {
      g = { ports: resolved, ready: [], notReady: [] }
      groups.set(key, g)
    }
    const nodeName = pod.spec?.nodeName
    // As Kubernetes: the pod's hostname, when its subdomain names this service (a StatefulSet's stable DNS name).
    const hostname = pod.spec?.hostname
    const named = typeof hostname === 'string' && hostname !== '' && pod.spec?.subdomain === service.metadata.name
    const address: EndpointAddress = {
      ip,
      ...(named ? { hostname } : {}),
      ...(nodeName !== undefined ? { nodeName } : {}),
      targetRef: { kind: 'Pod', namespace: pod.metadata.namespace, name: pod.metadata.name, uid: pod.metadata.uid }
    }
    if (podReady(pod)) g.ready.push(address)
    else g.notReady.push(address)
  }
  const byIp = (a: EndpointAddress, b: EndpointAddress): number => a.ip.localeCompare(b.ip)
  return [...groups.values()].map(g => ({
    ...(g.ready.length > 0 ? { addresses: g.ready.sort(byIp) } : {}),
    ...(g.notReady.length > 0 ? { notReadyAddresses: g.notReady.sort(byIp) } : {}),
    ports: g.ports
  }))
}

export class EndpointsController implements Controller {
  readonly name = 'endpoints'
  private ctx: ControllerContext | undefined
  private queue: WorkQueue | undefined
  private watches: Watch[] = []

  start (ctx: ControllerContext): void {
    this.ctx = ctx
    const queue = new WorkQueue({ clock: ctx.clock, log: ctx.log, name: this.name, reconcile: async key => await this.reconcile(key) })
    this.queue = queue
    this.watches.push(ctx.store.watch(SERVICE, {}, e => { if (e.type !== 'ERROR') queue.add(keyOf(e.object)) }))
    this.watches.push(ctx.store.watch(POD, {}, e => {
      if (e.type === 'ERROR') return
      const pod = e.object
      // Every service in the pod's namespace whose selector matches it (before or after the change).
      for (const svc of ctx.store.list(SERVICE, { namespace: pod.metadata.namespace ?? 'default' }).items) {
        const selector = svc.spec?.selector
        if (selector !== undefined && Object.keys(selector).length > 0 && matchLabelSelector({ matchLabels: selector }, pod.metadata.labels)) queue.add(keyOf(svc))
      }
    }))
  }

  stop (): void {
    for (const w of this.watches) w.stop()
    this.watches = []
    this.queue?.stop()
    this.ctx = undefined
  }

  private async reconcile (key: string): Promise<boolean> {
    const ctx = this.ctx
    if (ctx === undefined) return true
    const { namespace = 'default', name } = splitKey(key)
    const service = ctx.store.get(SERVICE, namespace, name)
    const current = ctx.store.get(ENDPOINTS, namespace, name)
    const selector = service?.spec?.selector
    if (service === undefined || selector === undefined || Object.keys(selector).length === 0) {
      // No service (or no selector: its endpoints are the user's): leave a user's Endpoints alone, remove ours.
      if (current !== undefined && service === undefined && current.metadata.labels?.['shoal.dev/managed-by'] === 'endpoints-controller') {
        const r = await ctx.write({ op: 'delete', ref: { group: '', resource: 'endpoints', namespace, name }, now: ctx.now() })
        return r.ok || r.status.code === 404
      }
      return true
    }
    const pods = ctx.store.list(POD, { namespace }).items.filter(p => matchLabelSelector({ matchLabels: selector }, p.metadata.labels))
    const subsets = subsetsFor(service, pods)
    if (current !== undefined && JSON.stringify(current.subsets ?? []) === JSON.stringify(subsets)) return true
    const object: Endpoints = {
      apiVersion: 'v1',
      kind: 'Endpoints',
      metadata: { name, namespace, labels: { ...(service.metadata.labels ?? {}), 'shoal.dev/managed-by': 'endpoints-controller' } },
      subsets
    }
    const r = current === undefined
      ? await ctx.write({ op: 'create', object, uid: ctx.uid(), now: ctx.now() })
      : await ctx.write({ op: 'update', object: { ...object, metadata: { ...object.metadata, resourceVersion: current.metadata.resourceVersion } }, now: ctx.now() })
    return r.ok
  }
}
