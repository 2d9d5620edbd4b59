// The DaemonSet controller (leader only), after Kubernetes' daemon
// controller: one pod per eligible Node (one that passes the template's
// nodeSelector, required node affinity and taints, with the tolerations
// every daemon pod gets), created unbound with a required node affinity on
// metadata.name so that the scheduler binds it there; pods on nodes that
// should no longer run one (an untolerated NoExecute taint, a selector that
// stopped matching, a Node that is gone) are deleted; failed pods are
// deleted, with back-off per node, and replaced. Templates are kept as
// ControllerRevisions (./revision.ts): pods carry their revision's hash
// (controller-revision-hash) and pod-template-generation, RollingUpdate
// replaces old pods within maxUnavailable (deleting first) or maxSurge
// (the new pod first, the old one once the new one is available), OnDelete
// only when the user deletes them. Status (desired, current, misscheduled,
// ready, updated, available and unavailable counts, observedGeneration) is
// written only when it changes.
// May import: protocol/, daemon/store/types.ts, ./framework.ts, daemon/workqueue, ./hash.ts, ./replicaset.ts, ./revision.ts, ./deployment.ts.
import { CONTROLLER_REVISION_HASH } from '../../protocol/apps-v1.ts'
import type { ControllerRevision, DaemonSet, DaemonSetStatus } from '../../protocol/apps-v1.ts'
import type { Node, Pod, PodSpec, PodTemplateSpec, Toleration } from '../../protocol/core-v1.ts'
import { CONTROLLER_REVISION, DAEMON_SET, NODE, POD } from '../../protocol/kinds.ts'
import type { ObjectMeta, WatchEvent } from '../../protocol/k8s.ts'
import {
  effectiveTaints, matchesRequiredNodeAffinity, nodeIdentity, TAINT_DISK_PRESSURE, TAINT_MEMORY_PRESSURE,
  TAINT_NETWORK_UNAVAILABLE, TAINT_NOT_READY, TAINT_PID_PRESSURE, TAINT_UNREACHABLE, TAINT_UNSCHEDULABLE, untolerated
} from '../../protocol/scheduling.ts'
import { matchLabelSelector } from '../../protocol/selector.ts'
import type { Watch } from '../store/types.ts'
import { keyOf, splitKey, WorkQueue } from '../workqueue/queue.ts'
import { resolveIntOrPercent } from './deployment.ts'
import type { Controller, ControllerContext } from './framework.ts'
import { canonicalJson } from './hash.ts'
import { controllerRefOf, createPodFor, deletePodFor, isPodReady, mustWrite, numberOr, ownerRefTo, podAvailableIn, podRef } from './replicaset.ts'
import { ownedRevisions, pruneRevisions, revisionData, revisionHash, revisionRef, syncRevision } from './revision.ts'

/** The label with the DaemonSet's template generation when the pod was made. */
export const POD_TEMPLATE_GENERATION = 'pod-template-generation'
/** Where Kubernetes' API server keeps an apps/v1 DaemonSet's template generation (read if present). */
export const TEMPLATE_GENERATION_ANNOTATION = 'deprecated.daemonset.template.generation'

/** Kubernetes' failed-pod back-off: 1 s, doubling to 15 min. */
const FAILED_BACKOFF_MS = 1000
const FAILED_BACKOFF_MAX_MS = 15 * 60_000

/**
 * The tolerations Kubernetes adds to every daemon pod
 * (AddOrUpdateDaemonPodTolerations): it stays through not-ready and
 * unreachable (NoExecute) and runs despite pressure, cordon and, with the
 * host's network, an unavailable pod network (NoSchedule).
 */
export function daemonPodTolerations (spec: PodSpec | undefined): Toleration[] {
  const add: Toleration[] = [
    { key: TAINT_NOT_READY, operator: 'Exists', effect: 'NoExecute' },
    { key: TAINT_UNREACHABLE, operator: 'Exists', effect: 'NoExecute' },
    { key: TAINT_DISK_PRESSURE, operator: 'Exists', effect: 'NoSchedule' },
    { key: TAINT_MEMORY_PRESSURE, operator: 'Exists', effect: 'NoSchedule' },
    { key: TAINT_PID_PRESSURE, operator: 'Exists', effect: 'NoSchedule' },
    { key: TAINT_UNSCHEDULABLE, operator: 'Exists', effect: 'NoSchedule' }
  ]
  if (spec?.hostNetwork === true) add.push({ key: TAINT_NETWORK_UNAVAILABLE, operator: 'Exists', effect: 'NoSchedule' })
  let out: Toleration[] = Array.isArray(spec?.tolerations) ? spec.tolerations.filter(t => typeof t === 'object' && t !== null) : []
  for (const t of add) {
    // AddOrUpdateTolerationInPodSpec: one with the same key, operator, value and effect is replaced
    const same = (x: Toleration): boolean => (x.key ?? '') === t.key && (x.operator ?? 'Equal') === t.operator && (x.value ?? '') === '' && (x.effect ?? '') === t.effect
    out = out.some(same) ? out.map(x => same(x) ? t : x) : [...out, t]
  }
  return out
}

/** Kubernetes' NodeShouldRunDaemonPod: whether a new pod belongs on `node`, and whether one there may stay. */
export function nodeShouldRunDaemonPod (node: Node, template: PodTemplateSpec | undefined): { shouldRun: boolean, shouldContinueRunning: boolean } {
  const spec = template?.spec
  const name = node.metadata.name ?? ''
  const pinned = spec?.nodeName
  if (typeof pinned === 'string' && pinned !== '' && pinned !== name) return { shouldRun: false, shouldContinueRunning: false }
  if (!matchesRequiredNodeAffinity(spec, nodeIdentity(node))) return { shouldRun: false, shouldContinueRunning: false }
  const taints = effectiveTaints(node)
  const tolerations = daemonPodTolerations(spec)
  if (untolerated(taints, tolerations) === undefined) return { shouldRun: true, shouldContinueRunning: true }
  return { shouldRun: false, shouldContinueRunning: untolerated(taints, tolerations, t => t.effect === 'NoExecute') === undefined }
}

/** The node a daemon pod is for: its spec.nodeName, or the metadata.name its required node affinity names ('' for neither). */
export function targetNodeOf (pod: Pod): string {
  const bound = pod.spec?.nodeName
  if (typeof bound === 'string' && bound !== '') return bound
  const terms = pod.spec?.affinity?.nodeAffinity?.requiredDuringSchedulingIgnoredDuringExecution?.nodeSelectorTerms
  for (const term of Array.isArray(terms) ? terms : []) {
    for (const f of Array.isArray(term?.matchFields) ? term.matchFields : []) {
      if (f?.key === 'metadata.name' && f.operator === 'In' && Array.isArray(f.values) && f.values.length === 1) return String(f.values[0])
    }
  }
  return ''
}

/** The DaemonSet's template generation: the annotation Kubernetes keeps, else its generation. */
export function templateGeneration (ds: DaemonSet): number {
  const n = Number(ds.metadata.annotations?.[TEMPLATE_GENERATION_ANNOTATION])
  return Number.isSafeInteger(n) && n > 0 ? n : ds.metadata.generation ?? 1
}

/** The pod for `node`: the template with the daemon tolerations, the revision's labels and a required affinity for that node alone. */
export function daemonPodFor (ds: DaemonSet, node: string, hash: string): Pod {
  const template = structuredClone(ds.spec?.template ?? {}) as PodTemplateSpec
  const tmeta = template.metadata ?? {}
  const spec = (template.spec ?? { containers: [] }) as PodSpec
  spec.tolerations = daemonPodTolerations(spec)
  // ReplaceDaemonSetPodNodeNameNodeAffinity: the node's term replaces the required ones (the node matched them)
  const affinity = typeof spec.affinity === 'object' && spec.affinity !== null ? spec.affinity : {}
  const nodeAffinity = typeof affinity.nodeAffinity === 'object' && affinity.nodeAffinity !== null ? affinity.nodeAffinity : {}
  spec.affinity = {
    ...affinity,
    nodeAffinity: { ...nodeAffinity, requiredDuringSchedulingIgnoredDuringExecution: { nodeSelectorTerms: [{ matchFields: [{ key: 'metadata.name', operator: 'In', values: [node] }] }] } }
  }
  const metadata: ObjectMeta = {
    generateName: `${ds.metadata.name ?? 'ds'}-`,
    namespace: ds.metadata.namespace ?? 'default',
    labels: { ...(tmeta.labels ?? {}), [POD_TEMPLATE_GENERATION]: String(templateGeneration(ds)), [CONTROLLER_REVISION_HASH]: hash },
    ownerReferences: [ownerRefTo(ds)]
  }
  if (tmeta.annotations !== undefined) metadata.annotations = tmeta.annotations
  if (tmeta.finalizers !== undefined) metadata.finalizers = tmeta.finalizers
  return { apiVersion: 'v1', kind: 'Pod', metadata, spec }
}

/** maxSurge and maxUnavailable as pod counts of `desired` (percentages round up, as Kubernetes'); both 0 becomes 0 and 1. */
export function daemonFenceposts (ds: DaemonSet, desired: number): { maxSurge: number, maxUnavailable: number } {
  const strategy = ds.spec?.updateStrategy
  if (strategy?.type !== undefined && strategy.type !== 'RollingUpdate') return { maxSurge: 0, maxUnavailable: 0 }
  const ru = strategy?.rollingUpdate ?? {}
  const maxSurge = resolveIntOrPercent(ru.maxSurge ?? 0, desired, true)
  const maxUnavailable = resolveIntOrPercent(ru.maxUnavailable ?? 1, desired, true)
  return desired > 0 && maxSurge === 0 && maxUnavailable === 0 ? { maxSurge: 0, maxUnavailable: 1 } : { maxSurge, maxUnavailable }
}

/** Whether the DaemonSet surges (AllowsSurge: a non-zero maxSurge, counted against one node). */
function allowsSurge (ds: DaemonSet): boolean {
  return (ds.spec?.updateStrategy?.type ?? 'RollingUpdate') === 'RollingUpdate' && daemonFenceposts(ds, 1).maxSurge > 0
}

function isTerminal (p: Pod): boolean {
  return p.status?.phase === 'Succeeded' || p.status?.phase === 'Failed'
}

/** Scheduled first, then oldest, then by name: Kubernetes' podByCreationTimestampAndPhase. */
function oldestFirst (a: Pod, b: Pod): number {
  const bound = (p: Pod): number => (p.spec?.nodeName ?? '') !== '' ? 0 : 1
  return bound(a) - bound(b) ||
    (a.metadata.creationTimestamp ?? '').localeCompare(b.metadata.creationTimestamp ?? '') ||
    (a.metadata.name ?? '').localeCompare(b.metadata.name ?? '')
}

/** One pass's view: the DaemonSet, its revision hash, its nodes and its pods by the node they are for. */
interface View {
  ds: DaemonSet
  key: string
  hash: string
  nodes: Node[]
  /** node name ('' for none) → its daemon pods, oldest first */
  byNode: Map<string, Pod[]>
  /** ms, from the controller's clock */
  now: number
}

/** Old and new (current hash) pods on a node, not being deleted; undefined when there is more than one of either. */
function updatedPodsOnNode (pods: Pod[], hash: string): { newPod?: Pod, oldPod?: Pod } | undefined {
  let newPod: Pod | undefined
  let oldPod: Pod | undefined
  for (const p of pods) {
    if (p.metadata.deletionTimestamp !== undefined) continue
    if (p.metadata.labels?.[CONTROLLER_REVISION_HASH] === hash) {
      if (newPod !== undefined) return undefined
      newPod = p
    } else {
      if (oldPod !== undefined) return undefined
      oldPod = p
    }
  }
  return { ...(newPod !== undefined ? { newPod } : {}), ...(oldPod !== undefined ? { oldPod } : {}) }
}

export interface DaemonSetControllerOptions {
  /** most pods created per reconcile of one DaemonSet (default 250, as Kubernetes' burst) */
  burst?: number
  /** first delay between deleting a node's failed daemon pods (default 1 s, doubling to 15 min) */
  failedBackoffMs?: number
  /** first retry delay of the work queue (default 50 ms) */
  baseDelayMs?: number
}

export class DaemonSetController implements Controller {
  readonly name = 'daemonset-controller'
  private readonly burst: number
  private readonly failedBackoffMs: number
  private readonly baseDelayMs: number | undefined
  private queue: WorkQueue | undefined
  private watches: Watch[] = []
  /** `<ds key>/<node>` → the back-off before that node's next failed pod is deleted */
  private readonly failedBackoff = new Map<string, { delayMs: number, at: number }>()

  constructor (opts: DaemonSetControllerOptions = {}) {
    this.burst = Math.max(1, opts.burst ?? 250)
    this.failedBackoffMs = opts.failedBackoffMs ?? FAILED_BACKOFF_MS
    this.baseDelayMs = opts.baseDelayMs
  }

  start (ctx: ControllerContext): void {
    this.stop()
    const queue: WorkQueue = this.queue = new WorkQueue({
      clock: ctx.clock,
      log: ctx.log,
      name: this.name,
      reconcile: async (key: string): Promise<boolean> => await this.reconcile(ctx, queue, key),
      ...(this.baseDelayMs === undefined ? {} : { baseDelayMs: this.baseDelayMs })
    })
    const all = (): void => { for (const ds of ctx.store.list(DAEMON_SET, {}).items) queue.add(keyOf(ds)) }
    this.watches.push(ctx.store.watch(DAEMON_SET, {}, e => { if (e.type !== 'ERROR' && e.type !== 'BOOKMARK') queue.add(keyOf(e.object)) }))
    this.watches.push(ctx.store.watch(POD, {}, e => { this.onPod(ctx, queue, e) }))
    this.watches.push(ctx.store.watch(NODE, {}, e => { if (e.type !== 'ERROR' && e.type !== 'BOOKMARK') all() }))
    this.watches.push(ctx.store.watch(CONTROLLER_REVISION, {}, e => {
      if (e.type === 'ERROR' || e.type === 'BOOKMARK') return
      const owner = controllerRefOf(e.object)
      if (owner?.kind === 'DaemonSet') queue.add(`${e.object.metadata.namespace ?? 'default'}/${owner.name}`)
    }))
  }

  stop (): void {
    for (const w of this.watches) w.stop()
    this.watches = []
    this.queue?.stop()
    this.queue = undefined
    this.failedBackoff.clear()
  }

  /** A pod wakes its DaemonSet, or (an orphan) every DaemonSet that could adopt it. */
  private onPod (ctx: ControllerContext, queue: WorkQueue, e: WatchEvent<Pod>): void {
    if (e.type === 'ERROR' || e.type === 'BOOKMARK') return
    const pod = e.object
    const ns = pod.metadata.namespace ?? 'default'
    const owner = controllerRefOf(pod)
    if (owner !== undefined) {
      if (owner.kind === 'DaemonSet') queue.add(`${ns}/${owner.name}`)
      return
    }
    if (e.type === 'DELETED' || isTerminal(pod) || pod.metadata.deletionTimestamp !== undefined) return
    for (const ds of ctx.store.list(DAEMON_SET, { namespace: ns }).items) {
      if (ds.spec?.selector !== undefined && matchLabelSelector(ds.spec.selector, pod.metadata.labels)) queue.add(keyOf(ds))
    }
  }

  private async reconcile (ctx: ControllerContext, queue: WorkQueue, key: string): Promise<boolean> {
    const { namespace, name } = splitKey(key)
    const ds = ctx.store.get(DAEMON_SET, namespace, name)
    if (ds === undefined || ds.metadata.deletionTimestamp !== undefined) {
      for (const k of this.failedBackoff.keys()) if (k.startsWith(`${key}/`)) this.failedBackoff.delete(k)
      return true
    }
    const hash = await this.currentRevision(ctx, ds)
    if (hash === undefined) return true // a name collision: status.collisionCount went up, which queues it again
    let ok = await this.claim(ctx, ds)
    if (!(await this.manage(ctx, queue, this.view(ctx, ds, key, hash)))) ok = false
    if ((ds.spec?.updateStrategy?.type ?? 'RollingUpdate') === 'RollingUpdate') {
      if (!(await this.rollingUpdate(ctx, this.view(ctx, ds, key, hash)))) ok = false
    }
    if (!(await this.cleanupHistory(ctx, ds))) ok = false
    if (!(await this.writeStatus(ctx, queue, this.view(ctx, ds, key, hash)))) ok = false
    return ok
  }

  /** The pass's view from the replica as it is now (after this pass's writes, which are applied here before they resolve). */
  private view (ctx: ControllerContext, ds: DaemonSet, key: string, hash: string): View {
    const uid = ds.metadata.uid ?? ''
    const byNode = new Map<string, Pod[]>()
    for (const p of ctx.store.list(POD, { namespace: ds.metadata.namespace ?? 'default' }).items) {
      if (controllerRefOf(p)?.uid !== uid) continue
      // a finished pod on its way out: nothing more to do with it
      if (isTerminal(p) && p.metadata.deletionTimestamp !== undefined) continue
      const node = targetNodeOf(p)
      byNode.set(node, [...(byNode.get(node) ?? []), p])
    }
    for (const pods of byNode.values()) pods.sort(oldestFirst)
    const nodes = ctx.store.list(NODE, {}).items.sort((a, b) => (a.metadata.name ?? '').localeCompare(b.metadata.name ?? ''))
    return { ds, key, hash, nodes, byNode, now: ctx.clock.now() }
  }

  /**
   * Makes sure the template has the newest ControllerRevision and answers
   * its hash, which the pods carry; undefined after a name collision with
   * a revision that is not this DaemonSet's (collisionCount is raised, and
   * the next pass names the revision anew).
   */
  private async currentRevision (ctx: ControllerContext, ds: DaemonSet): Promise<string | undefined> {
    const template = ds.spec?.template
    const data = canonicalJson(revisionData(template))
    if (!ownedRevisions(ctx, ds).some(r => canonicalJson(r.data) === data)) {
      const collisions = numberOr(ds.status?.collisionCount)
      const clash = ctx.store.get(CONTROLLER_REVISION, ds.metadata.namespace ?? 'default', `${ds.metadata.name ?? ''}-${revisionHash(template, collisions)}`)
      if (clash !== undefined) {
        if (controllerRefOf(clash) === undefined && canonicalJson(clash.data) === data && matchLabelSelector(ds.spec?.selector ?? {}, clash.metadata.labels)) {
          await this.adoptRevision(ctx, ds, clash)
        } else {
          const status = { ...this.statusOf(ds), collisionCount: collisions + 1 }
          await mustWrite(ctx, { op: 'update', subresource: 'status', object: { ...ds, status }, now: ctx.now() })
          return undefined
        }
      }
    }
    const { update } = await syncRevision(ctx, ds)
    return update.metadata.labels?.[CONTROLLER_REVISION_HASH] ?? revisionHash(template, numberOr(ds.status?.collisionCount))
  }

  private async adoptRevision (ctx: ControllerContext, ds: DaemonSet, rev: ControllerRevision): Promise<void> {
    await mustWrite(ctx, {
      op: 'patch',
      ref: revisionRef(rev.metadata.namespace ?? 'default', rev.metadata.name ?? ''),
      patchType: 'merge',
      patch: { metadata: { resourceVersion: rev.metadata.resourceVersion, ownerReferences: [...(rev.metadata.ownerReferences ?? []), ownerRefTo(ds)] } },
      now: ctx.now()
    })
  }

  private statusOf (ds: DaemonSet): DaemonSetStatus {
    const s: Partial<DaemonSetStatus> = typeof ds.status === 'object' && ds.status !== null ? ds.status : {}
    return { currentNumberScheduled: 0, numberMisscheduled: 0, desiredNumberScheduled: 0, numberReady: 0, ...s }
  }

  /** Adopts matching orphan pods and releases owned pods whose labels stopped matching; false if a write failed. */
  private async claim (ctx: ControllerContext, ds: DaemonSet): Promise<boolean> {
    const uid = ds.metadata.uid ?? ''
    const selector = ds.spec?.selector ?? {}
    let ok = true
    for (const pod of ctx.store.list(POD, { namespace: ds.metadata.namespace ?? 'default' }).items) {
      const owner = controllerRefOf(pod)
      const matches = matchLabelSelector(selector, pod.metadata.labels)
      let refs: unknown
      if (owner?.uid === uid && !matches) {
        const rest = (pod.metadata.ownerReferences ?? []).filter(r => r.uid !== uid)
        refs = rest.length === 0 ? null : rest
      } else if (owner === undefined && matches && !isTerminal(pod) && pod.metadata.deletionTimestamp === undefined) {
        refs = [...(pod.metadata.ownerReferences ?? []), ownerRefTo(ds)]
      } else {
        continue
      }
      try {
        await mustWrite(ctx, { op: 'patch', ref: podRef(pod), patchType: 'merge', patch: { metadata: { resourceVersion: pod.metadata.resourceVersion, ownerReferences: refs } }, now: ctx.now() }, true)
      } catch {
        ok = false
      }
    }
    return ok
  }

  /**
   * Kubernetes' manage: which nodes need a pod and which pods must go
   * (podsShouldBeOnNode for every node; every pod for a node that does not
   * exist, or for none), then those creations and deletions.
   */
  private async manage (ctx: ControllerContext, queue: WorkQueue, v: View): Promise<boolean> {
    const create: string[] = []
    const remove: Pod[] = []
    const rest = new Map(v.byNode)
    for (const node of v.nodes) {
      const name = node.metadata.name ?? ''
      const pods = rest.get(name) ?? []
      rest.delete(name)
      this.podsShouldBeOnNode(ctx, queue, v, node, pods, create, remove)
    }
    for (const pods of rest.values()) remove.push(...pods.filter(p => p.metadata.deletionTimestamp === undefined))
    return await this.syncNodes(ctx, v.ds, remove, create, v.hash)
  }

  private podsShouldBeOnNode (ctx: ControllerContext, queue: WorkQueue, v: View, node: Node, pods: Pod[], create: string[], remove: Pod[]): void {
    const name = node.metadata.name ?? ''
    const { shouldRun, shouldContinueRunning } = nodeShouldRunDaemonPod(node, v.ds.spec?.template)
    if (shouldRun && pods.length === 0) {
      create.push(name)
      return
    }
    if (!shouldContinueRunning) {
      remove.push(...pods.filter(p => p.metadata.deletionTimestamp === undefined))
      return
    }
    const running: Pod[] = []
    for (const p of pods) {
      if (p.metadata.deletionTimestamp !== undefined) continue
      if (p.status?.phase === 'Failed') {
        if (this.failedPodMayGo(ctx, queue, v, name)) {
          void ctx.events.record({ object: v.ds, type: 'Warning', reason: 'FailedDaemonPod', message: `Found failed daemon pod ${p.metadata.namespace ?? 'default'}/${p.metadata.name ?? ''} on node ${name}, will try to kill it`, component: this.name })
          remove.push(p)
        }
      } else if (p.status?.phase === 'Succeeded') {
        remove.push(p)
      } else {
        running.push(p)
      }
    }
    if (!allowsSurge(v.ds)) {
      // one pod per node: the oldest stays
      remove.push(...running.slice(1))
      return
    }
    if (running.length === 0) {
      if (shouldRun) create.push(name)
      return
    }
    this.pruneSurge(v, running, remove)
  }

  /**
   * Surging: at most the oldest new and the oldest old pod stay; the old
   * one goes once it is not ready or the new one is available.
   */
  private pruneSurge (v: View, running: Pod[], remove: Pod[]): void {
    if (running.length <= 1) return
    let oldestNew: Pod | undefined
    let oldestOld: Pod | undefined
    for (const p of running) {
      const isNew = p.metadata.labels?.[CONTROLLER_REVISION_HASH] === v.hash
      if (isNew && oldestNew === undefined) oldestNew = p
      else if (!isNew && oldestOld === undefined) oldestOld = p
      else remove.push(p)
    }
    if (oldestNew === undefined || oldestOld === undefined) return
    if (!isPodReady(oldestOld) || this.available(v, oldestNew)) remove.push(oldestOld)
  }

  /** Ready for minReadySeconds. */
  private available (v: View, p: Pod): boolean {
    return podAvailableIn(p, numberOr(v.ds.spec?.minReadySeconds), v.now) === 0
  }

  /** Kubernetes' failedPodsBackoff: whether this node's failed pod may be deleted now (else the key comes back when it may). */
  private failedPodMayGo (ctx: ControllerContext, queue: WorkQueue, v: View, node: string): boolean {
    const k = `${v.key}/${node}`
    const now = ctx.clock.now()
    const entry = this.failedBackoff.get(k)
    if (entry !== undefined && now - entry.at < entry.delayMs) {
      queue.addAfter(v.key, entry.delayMs - (now - entry.at))
      return false
    }
    const expired = entry === undefined || now - entry.at > 2 * FAILED_BACKOFF_MAX_MS
    this.failedBackoff.set(k, { delayMs: expired ? this.failedBackoffMs : Math.min(entry.delayMs * 2, FAILED_BACKOFF_MAX_MS), at: now })
    return true
  }

  /** Creates a pod for each of `nodes` (slow-start batches, at most `burst`) and deletes `pods`; false if a write failed. */
  private async syncNodes (ctx: ControllerContext, ds: DaemonSet, pods: Pod[], nodes: string[], hash: string): Promise<boolean> {
    let ok = true
    let left = nodes.slice(0, this.burst)
    for (let batch = 1; left.length > 0 && ok; batch *= 2) {
      const now = left.slice(0, batch)
      left = left.slice(batch)
      const results = await Promise.all(now.map(async node => await createPodFor(ctx, ds, daemonPodFor(ds, node, hash), this.name)))
      if (results.includes(false)) ok = false
    }
    if (nodes.length > this.burst) ok = false // the rest next time, after the back-off
    const results = await Promise.all(pods.map(async pod => await deletePodFor(ctx, ds, pod, this.name)))
    return ok && !results.includes(false)
  }

  /** Nodes that should run a pod, each with its pods (none for a node that has none yet). */
  private desiredNodes (v: View): Array<{ node: Node, pods: Pod[] }> {
    return v.nodes.filter(n => nodeShouldRunDaemonPod(n, v.ds.spec?.template).shouldRun)
      .map(node => ({ node, pods: v.byNode.get(node.metadata.name ?? '') ?? [] }))
  }

  /** Kubernetes' rollingUpdate: old pods replaced within maxUnavailable, or within maxSurge. */
  private async rollingUpdate (ctx: ControllerContext, v: View): Promise<boolean> {
    const desired = this.desiredNodes(v)
    const { maxSurge, maxUnavailable } = daemonFenceposts(v.ds, desired.length)
    // every node with pods, and every node that should have some
    const names = new Set([...desired.map(d => d.node.metadata.name ?? ''), ...[...v.byNode.keys()].filter(n => v.nodes.some(x => x.metadata.name === n))])
    const nodes = [...names].sort()
    if (maxSurge === 0) return await this.syncNodes(ctx, v.ds, this.replaceWithin(v, nodes, maxUnavailable), [], v.hash)
    const { remove, create } = this.surgeWithin(v, nodes, maxSurge, desired.length)
    return await this.syncNodes(ctx, v.ds, remove, create, v.hash)
  }

  /** Without surge: the old pods to delete now so that no more than maxUnavailable nodes are without an available new pod. */
  private replaceWithin (v: View, nodes: string[], maxUnavailable: number): Pod[] {
    let unavailable = 0
    const replace: Pod[] = []
    const candidates: Pod[] = []
    for (const name of nodes) {
      const on = updatedPodsOnNode(v.byNode.get(name) ?? [], v.hash)
      if (on === undefined || (on.oldPod === undefined) === (on.newPod === undefined)) {
        // excess pods, none, or both: manage's business; counted as unavailable
        unavailable++
      } else if (on.newPod !== undefined) {
        if (!this.available(v, on.newPod)) unavailable++
      } else if (on.oldPod !== undefined) {
        if (!this.available(v, on.oldPod)) {
          replace.push(on.oldPod)
          unavailable++
        } else if (unavailable < maxUnavailable) {
          candidates.push(on.oldPod)
        }
      }
    }
    const room = Math.min(Math.max(0, maxUnavailable - unavailable), candidates.length)
    return [...replace, ...candidates.slice(0, room)]
  }

  /** With surge: new pods next to old ones (at most maxSurge at a time for available old pods), and the old ones that may go. */
  private surgeWithin (v: View, nodes: string[], maxSurge: number, desired: number): { remove: Pod[], create: string[] } {
    const remove: Pod[] = []
    const notRunHere: Pod[] = []
    const allowed: string[] = []
    const candidates: string[] = []
    let surging = 0
    let available = 0
    for (const name of nodes) {
      const on = updatedPodsOnNode(v.byNode.get(name) ?? [], v.hash)
      if (on === undefined) { surging++; continue }
      const { oldPod, newPod } = on
      const counted = oldPod ?? newPod
      if (counted !== undefined && this.available(v, counted)) available++
      if (oldPod === undefined) continue
      const node = v.nodes.find(n => n.metadata.name === name)
      const shouldRun = node !== undefined && nodeShouldRunDaemonPod(node, v.ds.spec?.template).shouldRun
      if (newPod === undefined) {
        if (!this.available(v, oldPod)) {
          if (shouldRun) allowed.push(name)
          else remove.push(oldPod)
        } else if (!shouldRun) {
          notRunHere.push(oldPod)
        } else if (surging < maxSurge) {
          candidates.push(name)
        }
      } else if (this.available(v, newPod)) {
        remove.push(oldPod)
      } else {
        surging++
      }
    }
    // pods on nodes that no longer want one go only while as many others are available as are wanted
    remove.push(...notRunHere.slice(0, Math.max(0, Math.min(available - desired, notRunHere.length))))
    const room = Math.min(Math.max(0, maxSurge - surging), candidates.length)
    return { remove, create: [...allowed, ...candidates.slice(0, room)] }
  }

  /** Deletes revisions beyond revisionHistoryLimit, keeping those that live pods run. */
  private async cleanupHistory (ctx: ControllerContext, ds: DaemonSet): Promise<boolean> {
    const uid = ds.metadata.uid ?? ''
    const hashes = new Set(ctx.store.list(POD, { namespace: ds.metadata.namespace ?? 'default' }).items
      .filter(p => controllerRefOf(p)?.uid === uid)
      .map(p => p.metadata.labels?.[CONTROLLER_REVISION_HASH] ?? ''))
    const revisions = ownedRevisions(ctx, ds)
    const live = new Set(revisions.filter(r => hashes.has(r.metadata.labels?.[CONTROLLER_REVISION_HASH] ?? '')).map(r => r.metadata.name ?? ''))
    try {
      await pruneRevisions(ctx, revisions, live, numberOr(ds.spec?.revisionHistoryLimit, 10))
      return true
    } catch {
      return false
    }
  }

  /** Kubernetes' updateDaemonSetStatus, from the replica after this pass's writes; written only if it changed. */
  private async writeStatus (ctx: ControllerContext, queue: WorkQueue, v: View): Promise<boolean> {
    const now = ctx.clock.now()
    const minReady = numberOr(v.ds.spec?.minReadySeconds)
    let desired = 0
    let current = 0
    let misscheduled = 0
    let ready = 0
    let available = 0
    let updated = 0
    let recheckMs: number | undefined
    for (const node of v.nodes) {
      const pods = v.byNode.get(node.metadata.name ?? '') ?? []
      if (!nodeShouldRunDaemonPod(node, v.ds.spec?.template).shouldRun) {
        if (pods.length > 0) misscheduled++
        continue
      }
      desired++
      const pod = pods[0]
      if (pod === undefined) continue
      current++
      const inMs = podAvailableIn(pod, minReady, now)
      if (inMs !== undefined) {
        ready++
        if (inMs === 0) available++
        else recheckMs = Math.min(recheckMs ?? Infinity, inMs)
      }
      if (pod.metadata.labels?.[CONTROLLER_REVISION_HASH] === v.hash) updated++
    }
    if (recheckMs !== undefined) queue.addAfter(v.key, recheckMs + 1)
    const fresh = ctx.store.get(DAEMON_SET, v.ds.metadata.namespace ?? 'default', v.ds.metadata.name ?? '')
    if (fresh === undefined || fresh.metadata.uid !== v.ds.metadata.uid) return true
    const old = this.statusOf(fresh)
    const status: DaemonSetStatus = {
      ...old,
      desiredNumberScheduled: desired,
      currentNumberScheduled: current,
      numberMisscheduled: misscheduled,
      numberReady: ready,
      updatedNumberScheduled: updated,
      numberAvailable: available,
      numberUnavailable: desired - available,
      observedGeneration: v.ds.metadata.generation ?? 1
    }
    if (canonicalJson(status) === canonicalJson(fresh.status ?? {})) return true
    try {
      await mustWrite(ctx, { op: 'update', subresource: 'status', object: { ...fresh, status }, now: ctx.now() }, true)
      return true
    } catch {
      return false
    }
  }
}
