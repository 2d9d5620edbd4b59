// The disruption controller (leader only), after Kubernetes' own: keeps each
// PodDisruptionBudget's status, which the eviction subresource
// (daemon/store/evict.ts) reads and spends. For maxUnavailable, or a
// percentage minAvailable, the expected pods are the sum of the scale of
// the matching pods' controllers (a Deployment through its ReplicaSet, a
// ReplicaSet, a StatefulSet, a ReplicationController); for an integer
// minAvailable, the count of matching pods. desiredHealthy follows from it,
// currentHealthy counts the ready pods that are neither terminating nor
// recently evicted, and disruptionsAllowed = max(0, currentHealthy -
// desiredHealthy) (0 while no pod is expected). disruptedPods keeps evicted
// pods that still exist for two minutes, then the budget is re-checked.
// A pod whose controller cannot be found fails the sync safe: no
// disruptions allowed, condition SyncFailed. Status is written only when it
// changes, with the resourceVersion it was computed from, so an eviction
// applied in between makes the write conflict and the pass run again.
// May import: protocol/, daemon/store/types.ts, ./framework.ts, daemon/workqueue, ./hash.ts, ./replicaset.ts, ./deployment.ts.
import type { Deployment, ReplicaSet, StatefulSet } from '../../protocol/apps-v1.ts'
import type { Pod, ReplicationController } from '../../protocol/core-v1.ts'
import { DEPLOYMENT, POD, POD_DISRUPTION_BUDGET, REPLICA_SET, REPLICATION_CONTROLLER, STATEFUL_SET } from '../../protocol/kinds.ts'
import type { KObject, ResourceType, WatchEvent } from '../../protocol/k8s.ts'
import {
  budgetSelects, DELETION_TIMEOUT_MS, disruptionAllowedCondition, DISRUPTION_ALLOWED, SYNC_FAILED, withCondition
} from '../../protocol/policy-v1.ts'
import type { PodDisruptionBudget, PodDisruptionBudgetStatus } from '../../protocol/policy-v1.ts'
import type { Watch } from '../store/types.ts'
import { keyOf, splitKey, WorkQueue } from '../workqueue/queue.ts'
import { resolveIntOrPercent } from './deployment.ts'
import type { Controller, ControllerContext } from './framework.ts'
import { canonicalJson } from './hash.ts'
import { controllerRefOf, isPodReady, mustWrite, numberOr } from './replicaset.ts'

const COMPONENT = 'disruption-controller'

/** The budget's counts, or why they could not be had. */
type Expected = { expectedPods: number, desiredHealthy: number, unmanaged: string[] } | { error: string }

/** The controllers whose scale counts, as the disruption controller's finders, in their order. */
const SCALED_KINDS: ReadonlyArray<ResourceType<KObject>> = [DEPLOYMENT, REPLICA_SET, STATEFUL_SET, REPLICATION_CONTROLLER]

export interface DisruptionControllerOptions {
  /** first retry delay of the work queue (default 50 ms) */
  baseDelayMs?: number
}

export class DisruptionController implements Controller {
  readonly name = COMPONENT
  private readonly baseDelayMs: number | undefined
  private queue: WorkQueue | undefined
  private watches: Watch[] = []

  constructor (opts: DisruptionControllerOptions = {}) {
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
    this.watches.push(ctx.store.watch(POD_DISRUPTION_BUDGET, {}, e => {
      if (e.type !== 'ERROR' && e.type !== 'BOOKMARK') queue.add(keyOf(e.object))
    }))
    // A pod, or a change of a controller's scale, may change any budget of its namespace (labels can move a pod between budgets).
    const wakeNamespace = (e: WatchEvent<KObject>): void => {
      if (e.type === 'ERROR' || e.type === 'BOOKMARK') return
      const namespace = e.object.metadata.namespace ?? 'default'
      for (const pdb of ctx.store.list(POD_DISRUPTION_BUDGET, { namespace }).items) queue.add(keyOf(pdb))
    }
    this.watches.push(ctx.store.watch(POD, {}, wakeNamespace))
    // A controller's status changes with its pods, which wake the budgets already: only a new generation (its spec, so its scale) counts.
    const generations = new Map<string, number | undefined>()
    for (const kind of SCALED_KINDS) {
      this.watches.push(ctx.store.watch(kind, {}, e => {
        if (e.type === 'ERROR' || e.type === 'BOOKMARK') return
        const uid = e.object.metadata.uid ?? ''
        const seen = generations.get(uid)
        if (e.type === 'DELETED') generations.delete(uid)
        else generations.set(uid, e.object.metadata.generation)
        if (e.type === 'MODIFIED' && seen === e.object.metadata.generation) return
        wakeNamespace(e)
      }))
    }
  }

  stop (): void {
    for (const w of this.watches) w.stop()
    this.watches = []
    this.queue?.stop()
    this.queue = undefined
  }

  private async reconcile (ctx: ControllerContext, queue: WorkQueue, key: string): Promise<boolean> {
    const { namespace = 'default', name } = splitKey(key)
    // Everything read at once, from one state of the replica.
    const pdb = ctx.store.get(POD_DISRUPTION_BUDGET, namespace, name)
    if (pdb === undefined || pdb.metadata.deletionTimestamp !== undefined) return true
    const pods = ctx.store.list(POD, { namespace }).items.filter(p => budgetSelects(pdb, p.metadata.labels))
    const expected = expectedCounts(ctx, pdb, pods)
    const nowMs = ctx.clock.now()
    const now = ctx.now()
    const old: Partial<PodDisruptionBudgetStatus> = typeof pdb.status === 'object' && pdb.status !== null ? pdb.status : {}
    let status: PodDisruptionBudgetStatus
    if ('error' in expected) {
      // failSafe: nothing may be disrupted while the budget cannot be computed.
      status = {
        ...old,
        disruptionsAllowed: 0,
        currentHealthy: numberOr(old.currentHealthy),
        desiredHealthy: numberOr(old.desiredHealthy),
        expectedPods: numberOr(old.expectedPods)
      }
      status.conditions = withCondition(old.conditions, {
        type: DISRUPTION_ALLOWED, status: 'False', reason: SYNC_FAILED, message: expected.error,
        ...(old.observedGeneration !== undefined ? { observedGeneration: old.observedGeneration } : {})
      }, now)
    } else {
      const { disrupted, recheckMs } = disruptedPods(pods, old.disruptedPods, nowMs)
      if (recheckMs !== undefined) queue.addAfter(key, recheckMs + 1)
      const currentHealthy = pods.filter(p => p.metadata.deletionTimestamp === undefined && disrupted[p.metadata.name ?? ''] === undefined && isPodReady(p)).length
      const allowed = currentHealthy - expected.desiredHealthy
      status = {
        observedGeneration: pdb.metadata.generation ?? 1,
        disruptionsAllowed: expected.expectedPods <= 0 || allowed <= 0 ? 0 : allowed,
        currentHealthy,
        desiredHealthy: expected.desiredHealthy,
        expectedPods: expected.expectedPods,
        ...(Object.keys(disrupted).length > 0 ? { disruptedPods: disrupted } : {}),
        ...(old.conditions !== undefined ? { conditions: old.conditions } : {})
      }
      status.conditions = disruptionAllowedCondition(status, now)
    }
    if (canonicalJson(status) === canonicalJson(old)) return true
    if ('error' in expected) {
      void ctx.events.record({ object: pdb, type: 'Warning', reason: 'CalculateExpectedPodCountFailed', message: `Failed to calculate the number of expected pods: ${expected.error}`, component: COMPONENT })
    } else if (pods.length === 0) {
      void ctx.events.record({ object: pdb, type: 'Normal', reason: 'NoPods', message: 'No matching pods found', component: COMPONENT })
    } else if (expected.unmanaged.length > 0) {
      void ctx.events.record({ object: pdb, type: 'Warning', reason: 'UnmanagedPods', message: `Pods selected by this PodDisruptionBudget were found to be unmanaged (${expected.unmanaged.slice(0, 5).join(', ')}). As a result, the status of the PDB cannot be calculated correctly, which may result in undefined behavior. To account for these pods please set ".spec.minAvailable" field of the PDB to an integer value.`, component: COMPONENT })
    }
    try {
      // The object as read carries its resourceVersion: a write (an eviction) since then is a conflict, and the key is retried.
      await mustWrite(ctx, { op: 'update', subresource: 'status', object: { ...pdb, status }, now }, true)
      return true
    } catch {
      return false
    }
  }
}

/** expectedPods and desiredHealthy as getExpectedPodCount computes them. */
function expectedCounts (ctx: ControllerContext, pdb: PodDisruptionBudget, pods: Pod[]): Expected {
  const spec = pdb.spec ?? {}
  if (spec.maxUnavailable !== undefined && spec.maxUnavailable !== null) {
    const scale = expectedScale(ctx, pods)
    if ('error' in scale) return scale
    const maxUnavailable = resolveIntOrPercent(spec.maxUnavailable, scale.count, true)
    return { expectedPods: scale.count, desiredHealthy: Math.max(0, scale.count - maxUnavailable), unmanaged: scale.unmanaged }
  }
  const min = spec.minAvailable
  if (typeof min === 'number') return { expectedPods: pods.length, desiredHealthy: min, unmanaged: [] }
  if (typeof min === 'string') {
    const scale = expectedScale(ctx, pods)
    if ('error' in scale) return scale
    return { expectedPods: scale.count, desiredHealthy: resolveIntOrPercent(min, scale.count, true), unmanaged: scale.unmanaged }
  }
  return { expectedPods: 0, desiredHealthy: 0, unmanaged: [] }
}

/**
 * The sum of the scale of the pods' controllers, each counted once (a
 * Deployment's ReplicaSets count as the Deployment); pods without a
 * controller are listed, and one whose controller cannot be found is an error.
 */
function expectedScale (ctx: ControllerContext, pods: Pod[]): { count: number, unmanaged: string[] } | { error: string } {
  const scales = new Map<string, number>()
  const unmanaged: string[] = []
  for (const pod of pods) {
    const ref = controllerRefOf(pod)
    if (ref === undefined) {
      unmanaged.push(pod.metadata.name ?? '')
      continue
    }
    if (scales.has(ref.uid)) continue
    const found = controllerScale(ctx, pod.metadata.namespace ?? 'default', ref.kind, ref.name, ref.uid)
    if (found === undefined) return { error: `found no controllers for pod "${pod.metadata.name ?? ''}"` }
    scales.set(found.uid, found.scale)
  }
  let count = 0
  for (const n of scales.values()) count += n
  return { count, unmanaged }
}

/** The controller a pod's controllerRef names, by uid, as a scale: a ReplicaSet that a Deployment controls stands for the Deployment. */
function controllerScale (ctx: ControllerContext, namespace: string, kind: string, name: string, uid: string): { uid: string, scale: number } | undefined {
  const replicas = (obj: { spec?: { replicas?: number } }): number => numberOr(obj.spec?.replicas, 1)
  if (kind === 'ReplicaSet') {
    const rs = ctx.store.get<ReplicaSet>(REPLICA_SET, namespace, name)
    if (rs === undefined || rs.metadata.uid !== uid) return undefined
    const owner = controllerRefOf(rs)
    if (owner?.kind !== 'Deployment') return { uid, scale: replicas(rs) }
    const d = ctx.store.get<Deployment>(DEPLOYMENT, namespace, owner.name)
    return d === undefined || d.metadata.uid !== owner.uid ? undefined : { uid: owner.uid, scale: replicas(d) }
  }
  const type = kind === 'StatefulSet' ? STATEFUL_SET : kind === 'ReplicationController' ? REPLICATION_CONTROLLER : undefined
  if (type === undefined) return undefined
  const obj = ctx.store.get<StatefulSet | ReplicationController>(type, namespace, name)
  return obj === undefined || obj.metadata.uid !== uid ? undefined : { uid, scale: replicas(obj) }
}

/**
 * The evicted pods still counted as about to go: those that still exist,
 * are not terminating, and were evicted less than DELETION_TIMEOUT_MS ago;
 * and when the first of them expires.
 */
function disruptedPods (pods: Pod[], recorded: unknown, nowMs: number): { disrupted: Record<string, string>, recheckMs?: number } {
  const disrupted: Record<string, string> = {}
  if (typeof recorded !== 'object' || recorded === null) return { disrupted }
  const entries = recorded as Record<string, unknown>
  let recheckMs: number | undefined
  for (const pod of pods) {
    const name = pod.metadata.name ?? ''
    const at = Object.hasOwn(entries, name) ? entries[name] : undefined
    if (pod.metadata.deletionTimestamp !== undefined || typeof at !== 'string') continue
    const expires = Date.parse(at) + DELETION_TIMEOUT_MS
    if (Number.isNaN(expires) || expires < nowMs) continue
    disrupted[name] = at
    recheckMs = Math.min(recheckMs ?? Infinity, expires - nowMs)
  }
  return recheckMs === undefined ? { disrupted } : { disrupted, recheckMs }
}
