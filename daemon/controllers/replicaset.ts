// The ReplicaSet controller (leader only), which also serves v1
// ReplicationControllers (a label-map selector, otherwise the same
// machinery, as in Kubernetes): keeps each ReplicaSet's count of
// active pods at spec.replicas, creating pods from its template in slow-start
// batches and deleting the least useful surplus ones (unscheduled, then not
// ready, then newest); adopts matching orphans and releases pods whose labels
// no longer match; writes status (replicas, fullyLabeledReplicas,
// readyReplicas, availableReplicas, observedGeneration) only when it changes.
// Also the pod helpers the Deployment controller shares (ownership, readiness).
// May import: protocol/, daemon/store/types.ts, ./framework.ts, daemon/workqueue, ./hash.ts.
import type { ReplicaSet, ReplicaSetStatus } from '../../protocol/apps-v1.ts'
import type { Pod, PodCondition, ReplicationController } from '../../protocol/core-v1.ts'
import { POD, REPLICA_SET, REPLICATION_CONTROLLER } from '../../protocol/kinds.ts'
import type { KObject, LabelSelector, ObjectMeta, OwnerReference, TypedObject, WatchEvent } from '../../protocol/k8s.ts'
import { matchLabelSelector } from '../../protocol/selector.ts'
import type { ObjectRef, StoreCommand, Watch } from '../store/types.ts'
import { keyOf, splitKey, WorkQueue } from '../workqueue/queue.ts'
import type { Controller, ControllerContext } from './framework.ts'
import { canonicalJson } from './hash.ts'

export function rsRef (namespace: string | undefined, name: string): ObjectRef {
  return { group: 'apps', resource: 'replicasets', namespace: namespace ?? 'default', name }
}

export function podRef (pod: Pod): ObjectRef {
  return { group: '', resource: 'pods', namespace: pod.metadata.namespace ?? 'default', name: pod.metadata.name ?? '' }
}

/** The owner reference with controller: true, if any. */
export function controllerRefOf (obj: { metadata: ObjectMeta }): OwnerReference | undefined {
  return (obj.metadata.ownerReferences ?? []).find(r => r.controller === true)
}

/** Counted towards replicas: not terminating and not finished. */
export function isPodActive (pod: Pod): boolean {
  const phase = pod.status?.phase
  return pod.metadata.deletionTimestamp === undefined && phase !== 'Succeeded' && phase !== 'Failed'
}

function readyCondition (pod: Pod): PodCondition | undefined {
  const conditions = pod.status?.conditions
  // A status is only checked to be an object: conditions may be anything.
  return Array.isArray(conditions) ? conditions.find(c => c.type === 'Ready') : undefined
}

export function isPodReady (pod: Pod): boolean {
  return readyCondition(pod)?.status === 'True'
}

/**
 * 0 if the pod is available (ready for minReadySeconds), the ms until it
 * will be if it is ready but not yet for long enough, undefined if not ready.
 */
export function podAvailableIn (pod: Pod, minReadySeconds: number, nowMs: number): number | undefined {
  const c = readyCondition(pod)
  if (c?.status !== 'True') return undefined
  if (minReadySeconds <= 0) return 0
  const since = c.lastTransitionTime === undefined ? NaN : Date.parse(c.lastTransitionTime)
  if (Number.isNaN(since)) return 0
  return Math.max(0, since + minReadySeconds * 1000 - nowMs)
}

/** Counts of a set of active pods. `recheckMs`: when a ready pod becomes available, if one is waiting. */
export interface PodTally { replicas: number, ready: number, available: number, recheckMs?: number }

export function tallyPods (pods: Pod[], minReadySeconds: number, nowMs: number): PodTally {
  const t: PodTally = { replicas: 0, ready: 0, available: 0 }
  for (const p of pods) {
    if (!isPodActive(p)) continue
    t.replicas++
    const inMs = podAvailableIn(p, minReadySeconds, nowMs)
    if (inMs === undefined) continue
    t.ready++
    if (inMs === 0) t.available++
    else t.recheckMs = Math.min(t.recheckMs ?? Infinity, inMs)
  }
  return t
}

/** `v` if it is a finite number, else `fallback` (a left-out spec field; a status, which is only checked to be an object). */
export function numberOr (v: number | undefined, fallback = 0): number {
  return typeof v === 'number' && Number.isFinite(v) ? v : fallback
}

/** The pods that should go first when scaling down: unscheduled, pending, not ready, newest. */
export function deletionOrder (a: Pod, b: Pod): number {
  const assigned = (p: Pod): number => (p.spec?.nodeName ?? '') !== '' ? 1 : 0
  const phaseRank = (p: Pod): number => {
    const phase = p.status?.phase
    return phase === 'Pending' || phase === undefined ? 0 : phase === 'Unknown' ? 1 : 2
  }
  return assigned(a) - assigned(b) ||
    phaseRank(a) - phaseRank(b) ||
    Number(isPodReady(a)) - Number(isPodReady(b)) ||
    // newer first: a later creationTimestamp (then a later-written object) sorts earlier
    (b.metadata.creationTimestamp ?? '').localeCompare(a.metadata.creationTimestamp ?? '') ||
    Number(b.metadata.resourceVersion ?? 0) - Number(a.metadata.resourceVersion ?? 0) ||
    (b.metadata.name ?? '').localeCompare(a.metadata.name ?? '')
}

/** A failed write, so that the work queue retries the key with back-off. */
export class WriteFailedError extends Error {
  override name = 'WriteFailedError'
}

/**
 * Writes `cmd` (which writes a `T`) and answers the stored object; throws
 * WriteFailedError unless it worked (or, with `allowNotFound`, the object was
 * already gone: then undefined).
 */
export function mustWrite<T extends KObject = KObject> (ctx: ControllerContext, cmd: StoreCommand): Promise<T>
export function mustWrite<T extends KObject = KObject> (ctx: ControllerContext, cmd: StoreCommand, allowNotFound: boolean): Promise<T | undefined>
export async function mustWrite<T extends KObject = KObject> (ctx: ControllerContext, cmd: StoreCommand, allowNotFound = false): Promise<T | undefined> {
  const r = await ctx.write<T>(cmd)
  if (r.ok) return r.object
  if (allowNotFound && r.status.code === 404) return undefined
  throw new WriteFailedError(`${cmd.op}: ${r.status.code} ${r.status.message ?? ''}`)
}

/** A ReplicaSet or a ReplicationController: what this controller keeps at its count. */
export type ReplicatedSet = ReplicaSet | ReplicationController

/** Its selector as a LabelSelector (a ReplicationController's is a label map). */
export function setSelector (rs: ReplicatedSet): LabelSelector {
  return rs.kind === 'ReplicationController' ? { matchLabels: rs.spec?.selector ?? {} } : rs.spec?.selector ?? {}
}

/**
 * Creates `pod` for `owner` and records SuccessfulCreate on it (FailedCreate
 * and false if the write failed), as Kubernetes' pod control does.
 */
export async function createPodFor (ctx: ControllerContext, owner: TypedObject<string, string>, pod: Pod, component: string): Promise<boolean> {
  try {
    const made = await mustWrite<Pod>(ctx, { op: 'create', object: pod, uid: ctx.uid(), now: ctx.now() })
    void ctx.events.record({ object: owner, type: 'Normal', reason: 'SuccessfulCreate', message: `Created pod: ${made.metadata.name ?? ''}`, component })
    return true
  } catch (err) {
    void ctx.events.record({ object: owner, type: 'Warning', reason: 'FailedCreate', message: `Error creating: ${(err as Error).message}`, component })
    return false
  }
}

/** Deletes `pod` (this incarnation only) for `owner` and records SuccessfulDelete (FailedDelete and false if the write failed). */
export async function deletePodFor (ctx: ControllerContext, owner: TypedObject<string, string>, pod: Pod, component: string): Promise<boolean> {
  try {
    await mustWrite(ctx, { op: 'delete', ref: podRef(pod), now: ctx.now(), preconditions: { uid: pod.metadata.uid ?? '' } }, true)
    void ctx.events.record({ object: owner, type: 'Normal', reason: 'SuccessfulDelete', message: `Deleted pod: ${pod.metadata.name ?? ''}`, component })
    return true
  } catch (err) {
    void ctx.events.record({ object: owner, type: 'Warning', reason: 'FailedDelete', message: `Error deleting: ${(err as Error).message}`, component })
    return false
  }
}

export interface ReplicaSetControllerOptions {
  /** which kind it serves (default REPLICA_SET) */
  kind?: typeof REPLICA_SET | typeof REPLICATION_CONTROLLER
  /** most pods created or deleted per reconcile of one ReplicaSet (default 500, as Kubernetes' burst) */
  burst?: number
  /** first retry delay of the work queue (default 50 ms) */
  baseDelayMs?: number
}

export class ReplicaSetController implements Controller {
  readonly name: string
  private readonly kind: typeof REPLICA_SET | typeof REPLICATION_CONTROLLER
  private readonly burst: number
  private readonly baseDelayMs: number | undefined
  private ctx: ControllerContext | undefined
  private queue: WorkQueue | undefined
  private watches: Watch[] = []

  constructor (opts: ReplicaSetControllerOptions = {}) {
    this.kind = opts.kind ?? REPLICA_SET
    this.name = this.kind === REPLICA_SET ? 'replicaset-controller' : 'replication-controller'
    this.burst = Math.max(1, opts.burst ?? 500)
    this.baseDelayMs = opts.baseDelayMs
  }

  start (ctx: ControllerContext): void {
    this.stop()
    this.ctx = ctx
    const queue: WorkQueue = this.queue = new WorkQueue({
      clock: ctx.clock,
      log: ctx.log,
      name: this.name,
      reconcile: async (key: string): Promise<boolean> => await this.reconcile(ctx, queue, key),
      ...(this.baseDelayMs === undefined ? {} : { baseDelayMs: this.baseDelayMs })
    })
    this.watches.push(ctx.store.watch<ReplicatedSet>(this.kind, {}, e => {
      if (e.type !== 'ERROR' && e.type !== 'BOOKMARK') queue.add(keyOf(e.object))
    }))
    this.watches.push(ctx.store.watch(POD, {}, e => this.onPod(ctx, queue, e)))
  }

  stop (): void {
    for (const w of this.watches) w.stop()
    this.watches = []
    this.queue?.stop()
    this.queue = undefined
    this.ctx = undefined
  }

  /** A pod wakes its controlling ReplicaSet, or (an orphan) every ReplicaSet that could adopt it. */
  private onPod (ctx: ControllerContext, queue: WorkQueue, e: WatchEvent<Pod>): void {
    if (e.type === 'ERROR' || e.type === 'BOOKMARK') return
    const pod = e.object
    const ns = pod.metadata.namespace ?? 'default'
    const owner = controllerRefOf(pod)
    if (owner !== undefined) {
      if (owner.kind === this.kind.kind) queue.add(`${ns}/${owner.name}`)
      return
    }
    if (e.type === 'DELETED' || !isPodActive(pod)) return
    for (const rs of ctx.store.list<ReplicatedSet>(this.kind, { namespace: ns }).items) {
      if (rs.spec !== undefined && matchLabelSelector(setSelector(rs), pod.metadata.labels)) queue.add(keyOf(rs))
    }
  }

  private async reconcile (ctx: ControllerContext, queue: WorkQueue, key: string): Promise<boolean> {
    const { namespace, name } = splitKey(key)
    const rs = ctx.store.get<ReplicatedSet>(this.kind, namespace, name)
    if (rs === undefined || rs.metadata.deletionTimestamp !== undefined) return true
    const ns = rs.metadata.namespace ?? 'default'
    const uid = rs.metadata.uid ?? ''
    const selector = setSelector(rs)
    const replicas = numberOr(rs.spec?.replicas, 1)
    let ok = true

    // Claim: adopt matching orphans, release owned pods that stopped matching.
    const claimed: Pod[] = []
    for (const pod of ctx.store.list(POD, { namespace: ns }).items) {
      const owner = controllerRefOf(pod)
      const matches = matchLabelSelector(selector, pod.metadata.labels)
      if (owner?.uid === uid) {
        if (matches) claimed.push(pod)
        else if (!(await this.release(ctx, pod, uid))) ok = false
      } else if (owner === undefined && matches && isPodActive(pod)) {
        const adopted = await this.adopt(ctx, rs, pod)
        if (adopted === undefined) ok = false
        else claimed.push(adopted)
      }
    }

    const active = claimed.filter(isPodActive)
    const diff = active.length - replicas
    if (diff < 0) {
      if (!(await this.createPods(ctx, rs, Math.min(-diff, this.burst)))) ok = false
    } else if (diff > 0) {
      const victims = [...active].sort(deletionOrder).slice(0, Math.min(diff, this.burst))
      const results = await Promise.all(victims.map(async pod => await deletePodFor(ctx, rs, pod, this.name)))
      if (results.includes(false)) ok = false
    }

    if (!(await this.writeStatus(ctx, queue, key, ns, name))) ok = false
    return ok
  }

  /** Creates `count` pods in slow-start batches of 1, 2, 4, …, each batch concurrently; stops at the first failing batch. */
  private async createPods (ctx: ControllerContext, rs: ReplicatedSet, count: number): Promise<boolean> {
    let left = count
    let batch = 1
    while (left > 0) {
      const n = Math.min(batch, left)
      const results = await Promise.all(Array.from({ length: n }, async () => await createPodFor(ctx, rs, podFromTemplate(rs), this.name)))
      if (results.includes(false)) return false
      left -= n
      batch *= 2
    }
    return true
  }

  private async adopt (ctx: ControllerContext, rs: ReplicatedSet, pod: Pod): Promise<Pod | undefined> {
    try {
      return await mustWrite<Pod>(ctx, {
        op: 'patch',
        ref: podRef(pod),
        patchType: 'merge',
        patch: { metadata: { resourceVersion: pod.metadata.resourceVersion, ownerReferences: [...(pod.metadata.ownerReferences ?? []), ownerRefTo(rs)] } },
        now: ctx.now()
      })
    } catch {
      return undefined
    }
  }

  private async release (ctx: ControllerContext, pod: Pod, uid: string): Promise<boolean> {
    const refs = (pod.metadata.ownerReferences ?? []).filter(r => r.uid !== uid)
    try {
      await mustWrite(ctx, {
        op: 'patch',
        ref: podRef(pod),
        patchType: 'merge',
        patch: { metadata: { resourceVersion: pod.metadata.resourceVersion, ownerReferences: refs.length === 0 ? null : refs } },
        now: ctx.now()
      }, true)
      return true
    } catch {
      return false
    }
  }

  /** Recounts from the replica (after this pass's writes) and writes status if it changed. */
  private async writeStatus (ctx: ControllerContext, queue: WorkQueue, key: string, ns: string, name: string): Promise<boolean> {
    const rs = ctx.store.get<ReplicatedSet>(this.kind, ns, name)
    if (rs === undefined) return true
    const uid = rs.metadata.uid ?? ''
    const templateLabels = rs.spec?.template?.metadata?.labels ?? {}
    const pods = ctx.store.list(POD, { namespace: ns }).items.filter(p => controllerRefOf(p)?.uid === uid && isPodActive(p))
    const tally = tallyPods(pods, numberOr(rs.spec?.minReadySeconds), ctx.clock.now())
    if (tally.recheckMs !== undefined) queue.addAfter(key, tally.recheckMs + 1)
    const fullyLabeled = pods.filter(p => Object.entries(templateLabels).every(([k, v]) => p.metadata.labels?.[k] === v)).length
    const old: Partial<ReplicaSetStatus> = rs.status ?? {}
    const status: ReplicaSetStatus = {
      ...old,
      replicas: tally.replicas,
      fullyLabeledReplicas: fullyLabeled,
      readyReplicas: tally.ready,
      availableReplicas: tally.available,
      observedGeneration: rs.metadata.generation ?? 1
    }
    if (canonicalJson(status) === canonicalJson(old)) return true
    try {
      await mustWrite(ctx, { op: 'update', subresource: 'status', object: { ...rs, status }, now: ctx.now() }, true)
      return true
    } catch {
      return false
    }
  }
}

export function ownerRefTo (owner: TypedObject<string, string>): OwnerReference {
  return { apiVersion: owner.apiVersion, kind: owner.kind, name: owner.metadata.name ?? '', uid: owner.metadata.uid ?? '', controller: true, blockOwnerDeletion: true }
}

/** A new pod for `rs`: its template's labels, annotations and spec, a generated name, owned by it. */
export function podFromTemplate (rs: ReplicatedSet): Pod {
  const template = rs.spec?.template ?? {}
  const tmeta = template.metadata ?? {}
  const metadata: ObjectMeta = {
    generateName: `${rs.metadata.name ?? 'rs'}-`,
    namespace: rs.metadata.namespace ?? 'default',
    ownerReferences: [ownerRefTo(rs)]
  }
  if (tmeta.labels !== undefined) metadata.labels = structuredClone(tmeta.labels)
  if (tmeta.annotations !== undefined) metadata.annotations = structuredClone(tmeta.annotations)
  // Validation makes a stored ReplicaSet's template have a spec.
  return { apiVersion: 'v1', kind: 'Pod', metadata, ...(template.spec !== undefined ? { spec: structuredClone(template.spec) } : {}) }
}
