// The Deployment controller (leader only), after Kubernetes' own: each
// Deployment owns ReplicaSets named `<name>-<pod-template-hash>`; the one
// whose template equals the Deployment's is the new one (reusing an old one
// is a rollback: it gets the next revision). RollingUpdate scales the new
// ReplicaSet up within maxSurge and the old ones down within maxUnavailable,
// counting available (ready) pods; Recreate scales the old ones to zero,
// waits for their pods to go, then scales the new one up. A change of
// replicas alone scales proportionally. Old ReplicaSets beyond
// revisionHistoryLimit are pruned once a rollout completes; paused
// Deployments only scale. Status and the revision annotation are written
// only when they change.
// May import: protocol/, daemon/store/types.ts, ./framework.ts, daemon/workqueue, ./hash.ts, ./replicaset.ts.
import type { Deployment, DeploymentStatus, ReplicaSet, ReplicaSetSpec, WorkloadCondition } from '../../protocol/apps-v1.ts'
import type { IntOrString, Pod, PodTemplateSpec } from '../../protocol/core-v1.ts'
import { DEPLOYMENT, POD, REPLICA_SET } from '../../protocol/kinds.ts'
import type { KObject, ObjectMeta, WatchEvent } from '../../protocol/k8s.ts'
import { matchLabelSelector } from '../../protocol/selector.ts'
import type { ObjectRef, Watch } from '../store/types.ts'
import { keyOf, splitKey, WorkQueue } from '../workqueue/queue.ts'
import type { Controller, ControllerContext } from './framework.ts'
import { canonicalJson, podTemplateHash } from './hash.ts'
import {
  controllerRefOf, mustWrite, numberOr, ownerRefTo, rsRef, tallyPods
} from './replicaset.ts'
import type { PodTally } from './replicaset.ts'


export const REVISION_ANNOTATION = 'deployment.kubernetes.io/revision'
export const DESIRED_REPLICAS_ANNOTATION = 'deployment.kubernetes.io/desired-replicas'
export const MAX_REPLICAS_ANNOTATION = 'deployment.kubernetes.io/max-replicas'
export const POD_TEMPLATE_HASH_LABEL = 'pod-template-hash'
/** Deployment annotations not copied onto its ReplicaSets, as in Kubernetes. */
const NOT_COPIED = new Set([REVISION_ANNOTATION, 'deployment.kubernetes.io/revision-history', 'kubectl.kubernetes.io/last-applied-configuration', DESIRED_REPLICAS_ANNOTATION, MAX_REPLICAS_ANNOTATION])

/** An owned ReplicaSet with its spec.replicas and a count of its pods; updated in place as this pass writes. */
interface RsView { rs: ReplicaSet, replicas: number, pods: PodTally }

interface DeploymentView { all: RsView[], newRS: RsView | undefined, old: RsView[] }

function deploymentRef (namespace: string | undefined, name: string): ObjectRef {
  return { group: 'apps', resource: 'deployments', namespace: namespace ?? 'default', name }
}

/** An int-or-percent of `total`; percentages round up for maxSurge and down for maxUnavailable. */
export function resolveIntOrPercent (v: IntOrString, total: number, roundUp: boolean): number {
  if (typeof v === 'number') return v
  if (typeof v === 'string') {
    const m = /^([0-9]+)%$/.exec(v)
    if (m !== null) {
      const x = Number(m[1]) * total / 100
      return roundUp ? Math.ceil(x) : Math.floor(x)
    }
    if (/^[0-9]+$/.test(v)) return Number(v)
  }
  return 0
}

/** maxSurge and maxUnavailable as pod counts (Recreate: 0 and 0; both 0 becomes 0 and 1, as Kubernetes). */
export function fenceposts (d: Deployment): { maxSurge: number, maxUnavailable: number } {
  const strategy = d.spec?.strategy ?? {}
  if (strategy.type === 'Recreate') return { maxSurge: 0, maxUnavailable: 0 }
  const ru = strategy.rollingUpdate ?? {}
  const replicas = numberOr(d.spec?.replicas, 1)
  const maxSurge = resolveIntOrPercent(ru.maxSurge ?? '25%', replicas, true)
  const maxUnavailable = resolveIntOrPercent(ru.maxUnavailable ?? '25%', replicas, false)
  return maxSurge === 0 && maxUnavailable === 0 ? { maxSurge: 0, maxUnavailable: 1 } : { maxSurge, maxUnavailable }
}

export function revisionOf (rs: ReplicaSet): number {
  const n = Number(rs.metadata.annotations?.[REVISION_ANNOTATION] ?? 0)
  return Number.isSafeInteger(n) && n > 0 ? n : 0
}

/** A template with the pod-template-hash label taken out, for comparing a ReplicaSet's with its Deployment's. */
function templateWithoutHash (template: PodTemplateSpec | undefined): string {
  const t = structuredClone(template ?? {})
  const meta = t.metadata
  const labels = meta?.labels
  if (labels !== undefined) {
    delete labels[POD_TEMPLATE_HASH_LABEL]
    if (Object.keys(labels).length === 0) delete meta?.labels
  }
  return canonicalJson(t)
}

function byCreation (a: RsView, b: RsView): number {
  return (a.rs.metadata.creationTimestamp ?? '').localeCompare(b.rs.metadata.creationTimestamp ?? '') ||
    Number(a.rs.metadata.resourceVersion ?? 0) - Number(b.rs.metadata.resourceVersion ?? 0) ||
    (a.rs.metadata.name ?? '').localeCompare(b.rs.metadata.name ?? '')
}

export interface DeploymentControllerOptions {
  /** first retry delay of the work queue (default 50 ms) */
  baseDelayMs?: number
}

export class DeploymentController implements Controller {
  readonly name = 'deployment-controller'
  private readonly baseDelayMs: number | undefined
  private queue: WorkQueue | undefined
  private watches: Watch[] = []

  constructor (opts: DeploymentControllerOptions = {}) {
    this.baseDelayMs = opts.baseDelayMs
  }

  start (ctx: ControllerContext): void {
    this.stop()
    const queue: WorkQueue = this.queue = new WorkQueue({
      clock: ctx.clock,
      log: ctx.log,
      name: this.name,
      reconcile: async (key: string): Promise<boolean> => await new Pass(ctx, queue, key, this.name).run(),
      ...(this.baseDelayMs === undefined ? {} : { baseDelayMs: this.baseDelayMs })
    })
    const live = <T extends KObject>(e: WatchEvent<T>): T | undefined => e.type === 'ERROR' || e.type === 'BOOKMARK' ? undefined : e.object
    this.watches.push(ctx.store.watch(DEPLOYMENT, {}, e => {
      const d = live(e)
      if (d !== undefined) queue.add(keyOf(d))
    }))
    this.watches.push(ctx.store.watch(REPLICA_SET, {}, e => {
      const rs = live(e)
      if (rs !== undefined) this.enqueueOwner(ctx, queue, rs)
    }))
    this.watches.push(ctx.store.watch(POD, {}, e => {
      const pod = live(e)
      const owner = pod === undefined ? undefined : controllerRefOf(pod)
      if (pod === undefined || owner?.kind !== 'ReplicaSet') return
      const rs = ctx.store.get(REPLICA_SET, pod.metadata.namespace, owner.name)
      if (rs !== undefined && rs.metadata.uid === owner.uid) this.enqueueOwner(ctx, queue, rs)
    }))
  }

  stop (): void {
    for (const w of this.watches) w.stop()
    this.watches = []
    this.queue?.stop()
    this.queue = undefined
  }

  /** A ReplicaSet wakes its Deployment, or (an orphan) the Deployments that could adopt it. */
  private enqueueOwner (ctx: ControllerContext, queue: WorkQueue, rs: ReplicaSet): void {
    const ns = rs.metadata.namespace ?? 'default'
    const owner = controllerRefOf(rs)
    if (owner !== undefined) {
      if (owner.kind === 'Deployment') queue.add(`${ns}/${owner.name}`)
      return
    }
    for (const d of ctx.store.list(DEPLOYMENT, { namespace: ns }).items) {
      const selector = d.spec?.selector
      if (selector !== undefined && matchLabelSelector(selector, rs.metadata.labels)) queue.add(keyOf(d))
    }
  }
}

/** One reconcile of one Deployment. Writes that fail throw, and the queue retries the key. */
class Pass {
  private readonly ctx: ControllerContext
  private readonly queue: WorkQueue
  private readonly key: string
  private readonly component: string
  private d!: Deployment
  private replicas = 0
  private maxSurge = 0
  private maxUnavailable = 0
  private minReadySeconds = 0

  constructor (ctx: ControllerContext, queue: WorkQueue, key: string, component: string) {
    this.ctx = ctx
    this.queue = queue
    this.key = key
    this.component = component
  }

  async run (): Promise<boolean> {
    const { namespace, name } = splitKey(this.key)
    const d = this.ctx.store.get(DEPLOYMENT, namespace, name)
    if (d === undefined || d.metadata.deletionTimestamp !== undefined) return true
    this.d = d
    const spec = d.spec
    this.replicas = numberOr(spec?.replicas, 1)
    this.minReadySeconds = numberOr(spec?.minReadySeconds)
    ;({ maxSurge: this.maxSurge, maxUnavailable: this.maxUnavailable } = fenceposts(d))
    await this.adoptOrphans()
    const view = this.load()
    const recreate = spec?.strategy?.type === 'Recreate'
    if (spec?.paused === true || this.isScalingEvent(view)) {
      await this.syncRevision(view)
      await this.scale(view)
      if (spec?.paused === true) await this.cleanup(view)
    } else if (recreate) {
      await this.rolloutRecreate(view)
    } else {
      await this.rolloutRolling(view)
    }
    await this.writeStatus()
    return true
  }

  // ---- reading ---------------------------------------------------------------

  /** The live ReplicaSets this Deployment controls, with their pods counted; the new one has its template. */
  private load (): DeploymentView {
    const ns = this.d.metadata.namespace ?? 'default'
    const uid = this.d.metadata.uid ?? ''
    const byRs = new Map<string, Pod[]>()
    for (const p of this.ctx.store.list(POD, { namespace: ns }).items) {
      const owner = controllerRefOf(p)
      if (owner === undefined) continue
      let list = byRs.get(owner.uid)
      if (list === undefined) byRs.set(owner.uid, list = [])
      list.push(p)
    }
    const now = this.ctx.clock.now()
    const all: RsView[] = this.ctx.store.list(REPLICA_SET, { namespace: ns }).items
      .filter(rs => controllerRefOf(rs)?.uid === uid && rs.metadata.deletionTimestamp === undefined)
      .map(rs => ({ rs, replicas: numberOr(rs.spec?.replicas, 1), pods: tallyPods(byRs.get(rs.metadata.uid ?? '') ?? [], this.minReadySeconds, now) }))
      .sort(byCreation)
    const want = templateWithoutHash(this.d.spec?.template)
    const newRS = all.find(v => templateWithoutHash(v.rs.spec?.template) === want)
    return { all, newRS, old: all.filter(v => v !== newRS) }
  }

  /** Pods of a ReplicaSet that count as available: no more than it is meant to have (the surplus is about to go). */
  private available (v: RsView): number {
    return Math.min(v.pods.available, v.replicas)
  }

  private isScalingEvent (view: DeploymentView): boolean {
    return view.all.some(v => {
      if (v.replicas <= 0) return false
      const desired = v.rs.metadata.annotations?.[DESIRED_REPLICAS_ANNOTATION]
      return desired !== undefined && Number(desired) !== this.replicas
    })
  }

  // ---- writing ReplicaSets ---------------------------------------------------

  private async adoptOrphans (): Promise<void> {
    const ns = this.d.metadata.namespace ?? 'default'
    const selector = this.d.spec?.selector ?? {}
    for (const rs of this.ctx.store.list(REPLICA_SET, { namespace: ns }).items) {
      if (controllerRefOf(rs) !== undefined || rs.metadata.deletionTimestamp !== undefined || !matchLabelSelector(selector, rs.metadata.labels)) continue
      await mustWrite(this.ctx, {
        op: 'patch',
        ref: rsRef(ns, rs.metadata.name ?? ''),
        patchType: 'merge',
        patch: { metadata: { resourceVersion: rs.metadata.resourceVersion, ownerReferences: [...(rs.metadata.ownerReferences ?? []), ownerRefTo(this.d)] } },
        now: this.ctx.now()
      })
    }
  }

  private nextRevision (view: DeploymentView): number {
    return Math.max(0, ...view.old.map(v => revisionOf(v.rs))) + 1
  }

  /** Gives an existing new ReplicaSet the next revision if an old one has a higher one (a rollback), and syncs minReadySeconds. */
  private async syncRevision (view: DeploymentView): Promise<void> {
    const v = view.newRS
    if (v === undefined) return
    const next = this.nextRevision(view)
    const cur = revisionOf(v.rs)
    const minReady = numberOr(v.rs.spec?.minReadySeconds)
    if (cur >= next && minReady === this.minReadySeconds) return
    const patch: { metadata: ObjectMeta, spec?: Partial<ReplicaSetSpec> } = { metadata: { resourceVersion: v.rs.metadata.resourceVersion, annotations: { [REVISION_ANNOTATION]: String(Math.max(cur, next)) } } }
    if (minReady !== this.minReadySeconds) patch.spec = { minReadySeconds: this.minReadySeconds }
    v.rs = await mustWrite<ReplicaSet>(this.ctx, { op: 'patch', ref: rsRef(v.rs.metadata.namespace, v.rs.metadata.name ?? ''), patchType: 'merge', patch, now: this.ctx.now() })
  }

  /** The new ReplicaSet, synced or created with `replicas`. */
  private async ensureNewRS (view: DeploymentView, replicas: number): Promise<RsView> {
    if (view.newRS !== undefined) {
      await this.syncRevision(view)
      return view.newRS
    }
    const d = this.d
    const status: DeploymentStatus = d.status ?? {}
    const collisionCount = numberOr(status.collisionCount)
    // Validation makes a stored Deployment have a spec with a template.
    const hash = podTemplateHash(d.spec?.template ?? {}, collisionCount)
    const template = structuredClone(d.spec?.template ?? {})
    const tmeta = (template.metadata ??= {})
    tmeta.labels = { ...tmeta.labels, [POD_TEMPLATE_HASH_LABEL]: hash }
    const selector = structuredClone(d.spec?.selector ?? {})
    selector.matchLabels = { ...selector.matchLabels, [POD_TEMPLATE_HASH_LABEL]: hash }
    const annotations: Record<string, string> = {}
    for (const [k, val] of Object.entries(d.metadata.annotations ?? {})) if (!NOT_COPIED.has(k)) annotations[k] = val
    annotations[REVISION_ANNOTATION] = String(this.nextRevision(view))
    annotations[DESIRED_REPLICAS_ANNOTATION] = String(this.replicas)
    annotations[MAX_REPLICAS_ANNOTATION] = String(this.replicas + this.maxSurge)
    const name = `${d.metadata.name ?? ''}-${hash}`
    const ns = d.metadata.namespace ?? 'default'
    const rs: ReplicaSet = {
      apiVersion: 'apps/v1',
      kind: 'ReplicaSet',
      metadata: { name, namespace: ns, labels: tmeta.labels, annotations, ownerReferences: [ownerRefTo(d)] },
      spec: { replicas, minReadySeconds: this.minReadySeconds, selector, template }
    }
    const r = await this.ctx.write<ReplicaSet>({ op: 'create', object: rs, uid: this.ctx.uid(), now: this.ctx.now() })
    if (!r.ok) {
      if (r.status.code === 409 && this.ctx.store.get(REPLICA_SET, ns, name) !== undefined) {
        // Another template hashed to the same name: change the hash and try again.
        await mustWrite(this.ctx, { op: 'update', subresource: 'status', object: { ...d, status: { ...status, collisionCount: collisionCount + 1 } }, now: this.ctx.now() })
      }
      throw new Error(`creating replica set ${name}: ${r.status.code} ${r.status.message ?? ''}`)
    }
    if (replicas > 0) this.event('ScalingReplicaSet', `Scaled up replica set ${name} to ${replicas}`)
    const v: RsView = { rs: r.object, replicas, pods: { replicas: 0, ready: 0, available: 0 } }
    view.newRS = v
    view.all.push(v)
    return v
  }

  /** Sets a ReplicaSet's replicas and its desired/max annotations; true if the replicas changed. */
  private async scaleRS (v: RsView, to: number): Promise<boolean> {
    const desired = String(this.replicas)
    const max = String(this.replicas + this.maxSurge)
    const ann = v.rs.metadata.annotations ?? {}
    if (v.replicas === to && ann[DESIRED_REPLICAS_ANNOTATION] === desired && ann[MAX_REPLICAS_ANNOTATION] === max) return false
    const from = v.replicas
    v.rs = await mustWrite<ReplicaSet>(this.ctx, {
      op: 'patch',
      ref: rsRef(v.rs.metadata.namespace, v.rs.metadata.name ?? ''),
      patchType: 'merge',
      patch: { metadata: { resourceVersion: v.rs.metadata.resourceVersion, annotations: { [DESIRED_REPLICAS_ANNOTATION]: desired, [MAX_REPLICAS_ANNOTATION]: max } }, spec: { replicas: to } },
      now: this.ctx.now()
    })
    v.replicas = to
    if (from === to) return false
    this.event('ScalingReplicaSet', `Scaled ${to > from ? 'up' : 'down'} replica set ${v.rs.metadata.name ?? ''} to ${to}${to > from ? '' : ` from ${from}`}`)
    return true
  }

  private event (reason: string, message: string): void {
    void this.ctx.events.record({ object: this.d, type: 'Normal', reason, message, component: this.component })
  }

  // ---- strategies ------------------------------------------------------------

  private async rolloutRolling (view: DeploymentView): Promise<void> {
    const total = view.all.reduce((n, v) => n + v.replicas, 0)
    const firstSize = Math.max(0, Math.min(this.replicas + this.maxSurge - total, this.replicas))
    const newRS = await this.ensureNewRS(view, firstSize)
    if (await this.reconcileNewRS(view, newRS)) return
    if (await this.reconcileOldRSes(view, newRS)) return
    if (this.complete(view)) await this.cleanup(view)
  }

  /** Scales the new ReplicaSet towards replicas, within maxSurge. */
  private async reconcileNewRS (view: DeploymentView, newRS: RsView): Promise<boolean> {
    if (newRS.replicas === this.replicas) return false
    if (newRS.replicas > this.replicas) return await this.scaleRS(newRS, this.replicas)
    const current = view.all.reduce((n, v) => n + v.replicas, 0)
    const maxTotal = this.replicas + this.maxSurge
    if (current >= maxTotal) return false
    const up = Math.min(maxTotal - current, this.replicas - newRS.replicas)
    return await this.scaleRS(newRS, newRS.replicas + up)
  }

  /** Scales old ReplicaSets down as far as maxUnavailable allows, unhealthy pods first. */
  private async reconcileOldRSes (view: DeploymentView, newRS: RsView): Promise<boolean> {
    const oldCount = view.old.reduce((n, v) => n + v.replicas, 0)
    if (oldCount === 0) return false
    const allCount = view.all.reduce((n, v) => n + v.replicas, 0)
    const minAvailable = this.replicas - this.maxUnavailable
    const newUnavailable = Math.max(0, newRS.replicas - this.available(newRS))
    const maxScaledDown = allCount - minAvailable - newUnavailable
    if (maxScaledDown <= 0) return false
    let cleaned = 0
    // Pods that are not available cost nothing to remove.
    for (const v of [...view.old].sort(byCreation)) {
      if (cleaned >= maxScaledDown) break
      if (v.replicas === 0) continue
      const unhealthy = v.replicas - this.available(v)
      if (unhealthy <= 0) continue
      const n = Math.min(maxScaledDown - cleaned, unhealthy)
      await this.scaleRS(v, v.replicas - n)
      cleaned += n
    }
    const availableNow = view.all.reduce((n, v) => n + this.available(v), 0)
    let scaled = 0
    if (availableNow > minAvailable) {
      const budget = availableNow - minAvailable
      for (const v of [...view.old].sort(byCreation)) {
        if (scaled >= budget) break
        if (v.replicas === 0) continue
        const n = Math.min(v.replicas, budget - scaled)
        await this.scaleRS(v, v.replicas - n)
        scaled += n
      }
    }
    return cleaned + scaled > 0
  }

  private async rolloutRecreate (view: DeploymentView): Promise<void> {
    await this.syncRevision(view)
    let scaledDown = false
    for (const v of view.old) if (v.replicas > 0 && await this.scaleRS(v, 0)) scaledDown = true
    if (scaledDown) return
    // Wait for every old pod (terminating ones included) to be gone.
    const ns = this.d.metadata.namespace ?? 'default'
    const oldUids = new Set(view.old.map(v => v.rs.metadata.uid ?? ''))
    const oldPods = this.ctx.store.list(POD, { namespace: ns }).items.filter(p => {
      const phase = p.status?.phase
      return oldUids.has(controllerRefOf(p)?.uid ?? '') && phase !== 'Succeeded' && phase !== 'Failed'
    })
    if (oldPods.length > 0) return
    if (view.newRS === undefined) {
      await this.ensureNewRS(view, this.replicas)
      return
    }
    if (await this.scaleRS(view.newRS, this.replicas)) return
    if (this.complete(view)) await this.cleanup(view)
  }

  /** A change of replicas alone: the only active ReplicaSet takes it, or it is shared in proportion to size. */
  private async scale (view: DeploymentView): Promise<void> {
    const active = view.all.filter(v => v.replicas > 0)
    const latest = view.newRS ?? view.old[view.old.length - 1]
    const target = active.length === 1 ? active[0] : active.length === 0 ? latest : undefined
    if (target !== undefined) {
      await this.scaleRS(target, this.replicas)
      return
    }
    const newRS = view.newRS
    if (newRS !== undefined && newRS.replicas === this.replicas && this.available(newRS) === this.replicas) {
      for (const v of view.old) await this.scaleRS(v, 0)
      return
    }
    const allowed = this.replicas > 0 ? this.replicas + this.maxSurge : 0
    const toAdd = allowed - active.reduce((n, v) => n + v.replicas, 0)
    // Larger first; among equals the newer first when growing, the older first when shrinking.
    const sorted = [...active].sort((a, b) => b.replicas - a.replicas || (toAdd > 0 ? byCreation(b, a) : byCreation(a, b)))
    const sizes = new Map<RsView, number>()
    let added = 0
    for (const v of sorted) {
      let share = 0
      if (toAdd !== 0) {
        const fraction = this.fraction(v)
        share = toAdd > 0 ? Math.min(fraction, toAdd - added) : Math.max(fraction, toAdd - added)
      }
      sizes.set(v, v.replicas + share)
      added += share
    }
    const first = sorted[0]
    if (first !== undefined && toAdd - added !== 0) sizes.set(first, Math.max(0, (sizes.get(first) ?? 0) + toAdd - added))
    for (const v of sorted) await this.scaleRS(v, Math.max(0, sizes.get(v) ?? v.replicas))
  }

  /** How much a ReplicaSet should grow (or shrink) for the new size, from the size it was made for. */
  private fraction (v: RsView): number {
    if (this.replicas === 0) return -v.replicas
    const target = this.replicas + this.maxSurge
    const annotated = Number(v.rs.metadata.annotations?.[MAX_REPLICAS_ANNOTATION] ?? numberOr(this.d.status?.replicas))
    if (!Number.isFinite(annotated) || annotated <= 0) return 0
    return Math.round(v.replicas * target / annotated) - v.replicas
  }

  private complete (view: DeploymentView): boolean {
    const newRS = view.newRS
    return newRS !== undefined && newRS.replicas === this.replicas && this.available(newRS) === this.replicas &&
      newRS.pods.replicas === this.replicas && view.old.every(v => v.replicas === 0 && v.pods.replicas === 0)
  }

  /** Deletes the oldest old ReplicaSets with nothing left in them, beyond revisionHistoryLimit. */
  private async cleanup (view: DeploymentView): Promise<void> {
    const limit = numberOr(this.d.spec?.revisionHistoryLimit, 10)
    const old = view.old.filter(v => v.rs.metadata.deletionTimestamp === undefined)
    const excess = old.length - limit
    if (excess <= 0) return
    const sorted = [...old].sort((a, b) => revisionOf(a.rs) - revisionOf(b.rs) || byCreation(a, b))
    for (const v of sorted.slice(0, excess)) {
      if (v.replicas !== 0 || v.pods.replicas !== 0 || numberOr(v.rs.status?.replicas) !== 0) continue
      await mustWrite(this.ctx, {
        op: 'delete',
        ref: rsRef(v.rs.metadata.namespace, v.rs.metadata.name ?? ''),
        now: this.ctx.now(),
        preconditions: { uid: v.rs.metadata.uid ?? '' },
        propagationPolicy: 'Background'
      }, true)
    }
  }

  // ---- status ----------------------------------------------------------------

  /** The revision annotation and status, from the replica as this pass left it; written if changed. */
  private async writeStatus (): Promise<void> {
    const ns = this.d.metadata.namespace ?? 'default'
    let d: Deployment | undefined = this.ctx.store.get(DEPLOYMENT, ns, this.d.metadata.name ?? '')
    if (d === undefined || d.metadata.uid !== this.d.metadata.uid) return
    this.d = d
    const view = this.load()
    const revision = view.newRS === undefined ? undefined : String(revisionOf(view.newRS.rs))
    if (revision !== undefined && revision !== '0' && d.metadata.annotations?.[REVISION_ANNOTATION] !== revision) {
      d = await mustWrite<Deployment>(this.ctx, {
        op: 'patch',
        ref: deploymentRef(ns, d.metadata.name ?? ''),
        patchType: 'merge',
        patch: { metadata: { resourceVersion: d.metadata.resourceVersion, annotations: { [REVISION_ANNOTATION]: revision } } },
        now: this.ctx.now()
      })
    }
    const sum = (f: (v: RsView) => number): number => view.all.reduce((n, v) => n + f(v), 0)
    const totalSpec = sum(v => v.replicas)
    const available = sum(v => v.pods.available)
    const recheck = Math.min(...view.all.map(v => v.pods.recheckMs ?? Infinity))
    if (Number.isFinite(recheck)) this.queue.addAfter(this.key, recheck + 1)
    const old: DeploymentStatus = d.status ?? {}
    const status: DeploymentStatus = {
      ...old,
      observedGeneration: d.metadata.generation ?? 1,
      replicas: sum(v => v.pods.replicas),
      updatedReplicas: view.newRS?.pods.replicas ?? 0,
      readyReplicas: sum(v => v.pods.ready),
      availableReplicas: available,
      unavailableReplicas: Math.max(0, totalSpec - available)
    }
    const newName = view.newRS?.rs.metadata.name ?? ''
    const paused = d.spec?.paused === true
    // A status is only checked to be an object: conditions may be anything.
    const conditions = Array.isArray(old.conditions) ? old.conditions : []
    const availableCond = available >= this.replicas - this.maxUnavailable
      ? this.condition(conditions, 'Available', 'True', 'MinimumReplicasAvailable', 'Deployment has minimum availability.')
      : this.condition(conditions, 'Available', 'False', 'MinimumReplicasUnavailable', 'Deployment does not have minimum availability.')
    const progressingCond = paused
      ? this.condition(conditions, 'Progressing', 'Unknown', 'DeploymentPaused', 'Deployment is paused')
      : this.complete(view) && status.replicas === this.replicas
        ? this.condition(conditions, 'Progressing', 'True', 'NewReplicaSetAvailable', `ReplicaSet "${newName}" has successfully progressed.`)
        : this.condition(conditions, 'Progressing', 'True', 'ReplicaSetUpdated', newName === '' ? 'Deployment is progressing.' : `ReplicaSet "${newName}" is progressing.`)
    status.conditions = [
      ...conditions.filter(c => c.type !== 'Available' && c.type !== 'Progressing'),
      availableCond,
      progressingCond
    ]
    if (canonicalJson(status) === canonicalJson(old)) return
    await mustWrite(this.ctx, { op: 'update', subresource: 'status', object: { ...d, status }, now: this.ctx.now() }, true)
  }

  /** The condition as wanted, keeping the old one (and its times) when nothing about it changed. */
  private condition (conditions: WorkloadCondition[], type: string, status: WorkloadCondition['status'], reason: string, message: string): WorkloadCondition {
    const cur = conditions.find(c => c.type === type)
    if (cur !== undefined && cur.status === status && cur.reason === reason && cur.message === message) return cur
    const now = this.ctx.now()
    return { type, status, reason, message, lastUpdateTime: now, lastTransitionTime: cur !== undefined && cur.status === status ? cur.lastTransitionTime : now }
  }
}
