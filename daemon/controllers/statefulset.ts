// The StatefulSet controller (leader only), as Kubernetes' is: pods with
// stable names `<set>-<ordinal>` for the ordinals spec.ordinals.start …
// start + replicas - 1, each with spec.hostname (its name) and
// spec.subdomain (spec.serviceName), so that a headless Service gives it a
// stable DNS name, and the labels statefulset.kubernetes.io/pod-name,
// apps.kubernetes.io/pod-index and controller-revision-hash (the name of
// the ControllerRevision it was made from, as Kubernetes does for
// StatefulSets).
// OrderedReady: ordinal i is created only once every lower one is Running,
// Ready and available for minReadySeconds; scale-down removes the highest
// ordinal first, one at a time, waiting for each to be gone. Parallel: all
// at once. A failed (or finished) pod is deleted and made again under the
// same name. Updates: RollingUpdate replaces the pods whose revision is not
// the update revision, highest ordinal first, only those at index >=
// partition, one at a time (or maxUnavailable at a time) and each only once
// the ones above it are healthy again; OnDelete makes new pods at the update
// revision and leaves the rest to the user. Revisions are ControllerRevisions
// (./revision.ts), pruned to revisionHistoryLimit. Status: replicas,
// readyReplicas, availableReplicas, currentReplicas, updatedReplicas,
// currentRevision, updateRevision, collisionCount, observedGeneration; once
// every pod is updated and ready, currentRevision := updateRevision.
// persistentVolumeClaimRetentionPolicy is stored only: Shoal has no PVCs.
// At most one incarnation per name: every pod it makes carries
// STOPPED_BY_KUBELET_FINALIZER, so a deleted pod keeps its name until the
// kubelet that ran it has stopped its containers and taken the finalizer
// off. This controller takes it off itself for a pod that was never bound,
// and for one whose peer membership declared dead or left (or that has no
// member) once fenceAfterMs + its grace period + a margin have passed since:
// by then a peer that is cut off from the cluster has stopped the pod itself
// (the kubelet's fencing). See docs/decisions/2026-12-03-statefulsets.md.
// May import: protocol/, daemon/store/types.ts, daemon/clock, daemon/workqueue, ./framework.ts, ./hash.ts, ./replicaset.ts, ./revision.ts, ./deployment.ts.
import { CONTROLLER_REVISION_HASH, POD_INDEX, STATEFUL_POD_FENCE_MS, STATEFUL_SET_POD_NAME, STOPPED_BY_KUBELET_FINALIZER } from '../../protocol/apps-v1.ts'
import type { ControllerRevision, StatefulSet, StatefulSetStatus } from '../../protocol/apps-v1.ts'
import type { Pod, PodTemplateSpec } from '../../protocol/core-v1.ts'
import { CONTROLLER_REVISION, POD, STATEFUL_SET } from '../../protocol/kinds.ts'
import type { ObjectMeta, WatchEvent } from '../../protocol/k8s.ts'
import { matchLabelSelector } from '../../protocol/selector.ts'
import { every } from '../clock/clock.ts'
import type { Watch } from '../store/types.ts'
import { keyOf, splitKey, WorkQueue } from '../workqueue/queue.ts'
import { resolveIntOrPercent } from './deployment.ts'
import type { Controller, ControllerContext } from './framework.ts'
import { canonicalJson } from './hash.ts'
import { controllerRefOf, isPodReady, mustWrite, numberOr, ownerRefTo, podAvailableIn, podRef } from './replicaset.ts'
import { ownedRevisions, pruneRevisions, revisionData, revisionHash, syncRevision, templateOf } from './revision.ts'

const COMPONENT = 'statefulset-controller'

/** A pod name's parent and ordinal (`web-2`: web, 2), as Kubernetes parses it; ordinal -1 if it has none. */
export function parseOrdinal (name: string): { parent: string, ordinal: number } {
  const m = /^(.*)-([0-9]+)$/.exec(name)
  if (m === null) return { parent: '', ordinal: -1 }
  const ordinal = Number(m[2])
  return Number.isSafeInteger(ordinal) ? { parent: m[1] ?? '', ordinal } : { parent: '', ordinal: -1 }
}

function isTerminating (pod: Pod): boolean {
  return pod.metadata.deletionTimestamp !== undefined
}

/** Running and Ready, as Kubernetes' isRunningAndReady. */
function isRunningAndReady (pod: Pod): boolean {
  return pod.status?.phase === 'Running' && isPodReady(pod)
}

/** Running, and ready for minReadySeconds: 0; the ms until it will be; undefined if not running and ready. */
function availableIn (pod: Pod, minReadySeconds: number, nowMs: number): number | undefined {
  return pod.status?.phase === 'Running' ? podAvailableIn(pod, minReadySeconds, nowMs) : undefined
}

function isHealthy (pod: Pod): boolean {
  return isRunningAndReady(pod) && !isTerminating(pod)
}

function isFinished (pod: Pod): boolean {
  return pod.status?.phase === 'Failed' || pod.status?.phase === 'Succeeded'
}

function revisionOf (pod: Pod): string | undefined {
  return pod.metadata.labels?.[CONTROLLER_REVISION_HASH]
}

function hasFinalizer (pod: Pod): boolean {
  return (pod.metadata.finalizers ?? []).includes(STOPPED_BY_KUBELET_FINALIZER)
}

/** The pod for ordinal `ordinal` of `set`, from `template`, labelled with the revision `revision`. */
export function statefulPod (set: StatefulSet, template: PodTemplateSpec, revision: string, ordinal: number): Pod {
  const name = `${set.metadata.name ?? ''}-${ordinal}`
  const tmeta = template.metadata ?? {}
  const metadata: ObjectMeta = {
    name,
    namespace: set.metadata.namespace ?? 'default',
    labels: { ...structuredClone(tmeta.labels ?? {}), [STATEFUL_SET_POD_NAME]: name, [POD_INDEX]: String(ordinal), [CONTROLLER_REVISION_HASH]: revision },
    ownerReferences: [ownerRefTo(set)],
    finalizers: [STOPPED_BY_KUBELET_FINALIZER]
  }
  if (tmeta.annotations !== undefined) metadata.annotations = structuredClone(tmeta.annotations)
  const spec = structuredClone(template.spec ?? { containers: [] })
  spec.hostname = name
  const service = set.spec?.serviceName
  if (typeof service === 'string' && service !== '') spec.subdomain = service
  return { apiVersion: 'v1', kind: 'Pod', metadata, spec }
}

/** What one pass knows of a set: its pods by index and those outside the range. */
interface SetView {
  set: StatefulSet
  key: string
  start: number
  /** by index (ordinal - start); undefined: not there yet */
  replicas: Array<Pod | undefined>
  /** pods outside the range, highest ordinal first */
  condemned: Pod[]
  current: ControllerRevision
  update: ControllerRevision
  monotonic: boolean
  minReadySeconds: number
}

export interface StatefulSetControllerOptions {
  /** first retry delay of the work queue (default 50 ms) */
  baseDelayMs?: number
  /** how long a cut-off kubelet takes at most to stop its StatefulSet pods, less their grace period (default STATEFUL_POD_FENCE_MS) */
  fenceAfterMs?: number
  /** added to fenceAfterMs and the grace period before a dead peer's pod is given up (default 5 s) */
  releaseMarginMs?: number
  /** how often the pods of dead peers are looked at (default 1 s) */
  intervalMs?: number
}

export class StatefulSetController implements Controller {
  readonly name = COMPONENT
  private readonly baseDelayMs: number | undefined
  private readonly fenceAfterMs: number
  private readonly releaseMarginMs: number
  private readonly intervalMs: number
  private queue: WorkQueue | undefined
  private podQueue: WorkQueue | undefined
  private watches: Watch[] = []
  private stopTimer: (() => void) | undefined
  /** when this leader first saw each node with no member of its name */
  private readonly missingSince = new Map<string, number>()
  /** the deleted pods that still carry the finalizer */
  private readonly held = new Set<string>()

  constructor (opts: StatefulSetControllerOptions = {}) {
    this.baseDelayMs = opts.baseDelayMs
    this.fenceAfterMs = opts.fenceAfterMs ?? STATEFUL_POD_FENCE_MS
    this.releaseMarginMs = opts.releaseMarginMs ?? 5000
    this.intervalMs = opts.intervalMs ?? 1000
  }

  start (ctx: ControllerContext): void {
    this.stop()
    const delay = this.baseDelayMs === undefined ? {} : { baseDelayMs: this.baseDelayMs }
    const queue: WorkQueue = this.queue = new WorkQueue({ clock: ctx.clock, log: ctx.log, name: COMPONENT, reconcile: async key => await this.reconcile(ctx, queue, key), ...delay })
    const podQueue: WorkQueue = this.podQueue = new WorkQueue({ clock: ctx.clock, log: ctx.log, name: `${COMPONENT}-finalizer`, reconcile: async key => await this.releaseIfGone(ctx, podQueue, key), ...delay })
    this.watches.push(ctx.store.watch(STATEFUL_SET, {}, e => {
      if (e.type !== 'ERROR' && e.type !== 'BOOKMARK') queue.add(keyOf(e.object))
    }))
    this.watches.push(ctx.store.watch(POD, {}, e => { this.onPod(ctx, queue, podQueue, e) }))
    this.watches.push(ctx.store.watch(CONTROLLER_REVISION, {}, e => {
      if (e.type === 'ERROR' || e.type === 'BOOKMARK') return
      const owner = controllerRefOf(e.object)
      if (owner?.kind === 'StatefulSet') queue.add(`${e.object.metadata.namespace ?? 'default'}/${owner.name}`)
    }))
    // Membership changes are not watch events: look at the held pods now and then.
    this.stopTimer = every(ctx.clock, this.intervalMs, () => { for (const k of this.held) podQueue.add(k) })
  }

  stop (): void {
    for (const w of this.watches) w.stop()
    this.watches = []
    this.stopTimer?.()
    this.stopTimer = undefined
    this.queue?.stop()
    this.podQueue?.stop()
    this.queue = undefined
    this.podQueue = undefined
    this.missingSince.clear()
    this.held.clear()
  }

  /** A pod wakes its controlling set, or (an orphan) the set its name and labels say could adopt it; a held, deleted one, the finalizer queue. */
  private onPod (ctx: ControllerContext, queue: WorkQueue, podQueue: WorkQueue, e: WatchEvent<Pod>): void {
    if (e.type === 'ERROR' || e.type === 'BOOKMARK') return
    const pod = e.object
    const ns = pod.metadata.namespace ?? 'default'
    if (e.type !== 'DELETED' && isTerminating(pod) && hasFinalizer(pod)) {
      this.held.add(keyOf(pod))
      podQueue.add(keyOf(pod))
    } else {
      this.held.delete(keyOf(pod))
    }
    const owner = controllerRefOf(pod)
    if (owner !== undefined) {
      if (owner.kind === 'StatefulSet') queue.add(`${ns}/${owner.name}`)
      return
    }
    if (e.type === 'DELETED' || isTerminating(pod)) return
    const { parent } = parseOrdinal(pod.metadata.name ?? '')
    const set = ctx.store.get(STATEFUL_SET, ns, parent)
    if (set?.spec !== undefined && matchLabelSelector(set.spec.selector ?? {}, pod.metadata.labels)) queue.add(keyOf(set))
  }

  // ---- the finalizer ---------------------------------------------------------

  /**
   * Takes STOPPED_BY_KUBELET_FINALIZER off a deleted pod that never ran
   * (no node), or whose node's member has been dead, left or missing for
   * long enough that the peer has fenced itself. A pod on a live peer is
   * left to its kubelet.
   */
  private async releaseIfGone (ctx: ControllerContext, podQueue: WorkQueue, key: string): Promise<boolean> {
    const { namespace, name } = splitKey(key)
    const pod = ctx.store.get(POD, namespace, name)
    if (pod === undefined || !isTerminating(pod) || !hasFinalizer(pod)) return true
    const node = pod.spec?.nodeName ?? ''
    let why = 'it was never bound to a node'
    if (node !== '') {
      const member = ctx.members().find(m => m.name === node)
      let since: number
      if (member === undefined) {
        since = this.missingSince.get(node) ?? ctx.clock.now()
        this.missingSince.set(node, since)
      } else if (member.state === 'dead' || member.state === 'left') {
        this.missingSince.delete(node)
        since = member.since
      } else {
        // Alive (or only suspect): its kubelet stops the pod and takes the finalizer off.
        this.missingSince.delete(node)
        return true
      }
      const graceMs = numberOr(pod.spec?.terminationGracePeriodSeconds, 30) * 1000
      const wait = since + this.fenceAfterMs + graceMs + this.releaseMarginMs - ctx.clock.now()
      if (wait > 0) {
        podQueue.addAfter(key, wait + 1)
        return true
      }
      why = `node ${node} is ${member?.state ?? 'not a member'} and has had time to stop it`
    }
    const finalizers = (pod.metadata.finalizers ?? []).filter(f => f !== STOPPED_BY_KUBELET_FINALIZER)
    await mustWrite(ctx, {
      op: 'patch',
      ref: podRef(pod),
      patchType: 'merge',
      patch: { metadata: { resourceVersion: pod.metadata.resourceVersion, finalizers: finalizers.length === 0 ? null : finalizers } },
      now: ctx.now()
    }, true)
    ctx.log.info({ event: 'statefulset.pod.released', pod: key, node }, `pod ${key} released: ${why}`)
    return true
  }

  // ---- the set -----------------------------------------------------------------

  private async reconcile (ctx: ControllerContext, queue: WorkQueue, key: string): Promise<boolean> {
    const { namespace, name } = splitKey(key)
    const set = ctx.store.get(STATEFUL_SET, namespace, name)
    if (set === undefined || set.metadata.deletionTimestamp !== undefined || set.spec === undefined) return true
    if (await this.bumpOnCollision(ctx, set)) return true
    const { update, revisions } = await syncRevision(ctx, set)
    const current = revisions.find(r => r.metadata.name === set.status?.currentRevision) ?? update
    const pods = await this.claimPods(ctx, set)
    const view = this.viewOf(set, key, pods, current, update)
    let ok = true
    try {
      await this.sync(ctx, view)
    } catch (err) {
      ctx.log.debug({ event: 'statefulset.sync.failed', set: key, err: (err as Error).message }, `statefulset ${key}: ${(err as Error).message}`)
      ok = false
    }
    const live = new Set([current.metadata.name ?? '', update.metadata.name ?? '', ...pods.map(p => revisionOf(p) ?? '')])
    await pruneRevisions(ctx, ownedRevisions(ctx, set), live, numberOr(set.spec.revisionHistoryLimit, 10))
    return await this.writeStatus(ctx, queue, key, current, update) && ok
  }

  /**
   * When the name the current template would get is taken by another
   * revision (another template, or not ours), bump status.collisionCount,
   * as Kubernetes does, so that the next pass picks another name.
   */
  private async bumpOnCollision (ctx: ControllerContext, set: StatefulSet): Promise<boolean> {
    const ns = set.metadata.namespace ?? 'default'
    const count = numberOr(set.status?.collisionCount)
    const name = `${set.metadata.name ?? ''}-${revisionHash(set.spec?.template, count)}`
    const taken = ctx.store.get(CONTROLLER_REVISION, ns, name)
    if (taken === undefined) return false
    if (controllerRefOf(taken)?.uid === set.metadata.uid && canonicalJson(taken.data) === canonicalJson(revisionData(set.spec?.template))) return false
    const status: StatefulSetStatus = { replicas: 0, ...set.status, collisionCount: count + 1 }
    await mustWrite(ctx, { op: 'update', subresource: 'status', object: { ...set, status }, now: ctx.now() }, true)
    return true
  }

  /** This set's pods: its own (released if they stop matching) and adopted orphans named like its pods. */
  private async claimPods (ctx: ControllerContext, set: StatefulSet): Promise<Pod[]> {
    const ns = set.metadata.namespace ?? 'default'
    const uid = set.metadata.uid ?? ''
    const selector = set.spec?.selector ?? {}
    const claimed: Pod[] = []
    for (const pod of ctx.store.list(POD, { namespace: ns }).items) {
      if (parseOrdinal(pod.metadata.name ?? '').parent !== set.metadata.name) continue
      const owner = controllerRefOf(pod)
      const matches = matchLabelSelector(selector, pod.metadata.labels)
      if (owner?.uid === uid) {
        if (matches) claimed.push(pod)
        else await this.patchPod(ctx, pod, { ownerReferences: dropRef(pod, uid) })
      } else if (owner === undefined && matches && !isTerminating(pod)) {
        const adopted = await this.patchPod(ctx, pod, {
          ownerReferences: [...(pod.metadata.ownerReferences ?? []), ownerRefTo(set)],
          finalizers: [...new Set([...(pod.metadata.finalizers ?? []), STOPPED_BY_KUBELET_FINALIZER])]
        })
        if (adopted !== undefined) claimed.push(adopted)
      }
    }
    return claimed
  }

  private viewOf (set: StatefulSet, key: string, pods: Pod[], current: ControllerRevision, update: ControllerRevision): SetView {
    const start = numberOr(set.spec?.ordinals?.start)
    const count = numberOr(set.spec?.replicas, 1)
    const replicas: Array<Pod | undefined> = Array.from({ length: count }, () => undefined)
    const condemned: Pod[] = []
    for (const pod of pods) {
      const { ordinal } = parseOrdinal(pod.metadata.name ?? '')
      if (ordinal >= start && ordinal < start + count) replicas[ordinal - start] = pod
      else if (ordinal >= 0) condemned.push(pod)
    }
    condemned.sort((a, b) => parseOrdinal(b.metadata.name ?? '').ordinal - parseOrdinal(a.metadata.name ?? '').ordinal)
    return { set, key, start, replicas, condemned, current, update, monotonic: set.spec?.podManagementPolicy !== 'Parallel', minReadySeconds: numberOr(set.spec?.minReadySeconds) }
  }

  /** One pass of Kubernetes' updateStatefulSet: replicas, then the condemned, then the rolling update. */
  private async sync (ctx: ControllerContext, v: SetView): Promise<void> {
    const { replicas, condemned, monotonic } = v
    // The first unhealthy pod: a replica (one not made yet counts, as Kubernetes' placeholders do), else the lowest condemned one.
    const firstUnhealthy = replicas.some(p => p === undefined || !isHealthy(p)) ? undefined : [...condemned].reverse().find(p => !isHealthy(p))
    for (let i = 0; i < replicas.length; i++) {
      if (await this.processReplica(ctx, v, i) && monotonic) return
    }
    for (const pod of condemned) {
      if (await this.processCondemned(ctx, v, pod, firstUnhealthy) && monotonic) return
    }
    const strategy = v.set.spec?.updateStrategy
    if (strategy?.type === 'OnDelete') return
    await this.rollingUpdate(ctx, v)
  }

  /** Makes, replaces or waits for the replica at index `i`; true when a monotonic pass must stop here. */
  private async processReplica (ctx: ControllerContext, v: SetView, i: number): Promise<boolean> {
    const pod = v.replicas[i]
    if (pod === undefined) {
      v.replicas[i] = await this.createPod(ctx, v, v.start + i)
      return true
    }
    if (isFinished(pod)) {
      // Made again under the same name once the old one is gone (the delete wakes the set).
      if (!isTerminating(pod)) await this.deletePod(ctx, v.set, pod, `${pod.status?.phase ?? ''} pod`)
      return true
    }
    if (v.monotonic) {
      if (isTerminating(pod) || !isRunningAndReady(pod)) return true
      const inMs = availableIn(pod, v.minReadySeconds, ctx.clock.now())
      if (inMs === undefined || inMs > 0) {
        if (inMs !== undefined) this.queue?.addAfter(v.key, inMs + 1)
        return true
      }
    }
    if (!isTerminating(pod)) {
      const fixed = await this.fixIdentity(ctx, v, pod, v.start + i)
      if (fixed !== undefined) v.replicas[i] = fixed
    }
    return false
  }

  /** Scales down one pod beyond the range; true when a monotonic pass must stop here. */
  private async processCondemned (ctx: ControllerContext, v: SetView, pod: Pod, firstUnhealthy: Pod | undefined): Promise<boolean> {
    if (isTerminating(pod)) return true
    if (v.monotonic && pod !== firstUnhealthy) {
      const inMs = availableIn(pod, v.minReadySeconds, ctx.clock.now())
      if (!isRunningAndReady(pod) || inMs === undefined) return true
      if (inMs > 0) {
        this.queue?.addAfter(v.key, inMs + 1)
        return true
      }
    }
    await this.deletePod(ctx, v.set, pod, 'scale down')
    return true
  }

  /**
   * RollingUpdate: deletes the highest pod at index >= partition that is not
   * at the update revision, once those above it are healthy (it is made
   * again at the update revision); with maxUnavailable, as many as that
   * allows beside the replicas already unavailable.
   */
  private async rollingUpdate (ctx: ControllerContext, v: SetView): Promise<void> {
    const ru = v.set.spec?.updateStrategy?.rollingUpdate
    const partition = numberOr(ru?.partition)
    const updateName = v.update.metadata.name
    const outdated = (p: Pod | undefined): p is Pod => p !== undefined && revisionOf(p) !== updateName && !isTerminating(p)
    if (ru?.maxUnavailable === undefined) {
      for (let target = v.replicas.length - 1; target >= partition; target--) {
        const pod = v.replicas[target]
        if (outdated(pod)) {
          await this.deletePod(ctx, v.set, pod, 'update')
          return
        }
        if (pod === undefined || !isHealthy(pod)) return
      }
      return
    }
    const maxUnavailable = Math.max(1, resolveIntOrPercent(ru.maxUnavailable, v.replicas.length, false))
    const now = ctx.clock.now()
    const unavailable = v.replicas.filter(p => p === undefined || isTerminating(p) || availableIn(p, v.minReadySeconds, now) !== 0).length
    let budget = maxUnavailable - unavailable
    for (let target = v.replicas.length - 1; target >= partition && budget > 0; target--) {
      const pod = v.replicas[target]
      if (!outdated(pod)) continue
      await this.deletePod(ctx, v.set, pod, 'update')
      budget--
    }
  }

  /** A new pod for `ordinal`: at the current revision below the partition of a RollingUpdate, else at the update revision. */
  private async createPod (ctx: ControllerContext, v: SetView, ordinal: number): Promise<Pod> {
    const strategy = v.set.spec?.updateStrategy
    const atCurrent = strategy?.type !== 'OnDelete' && ordinal - v.start < numberOr(strategy?.rollingUpdate?.partition)
    const rev = atCurrent ? v.current : v.update
    const template = (atCurrent ? templateOf(v.current) : undefined) ?? v.set.spec?.template ?? {}
    const pod = statefulPod(v.set, template, rev.metadata.name ?? '', ordinal)
    const name = pod.metadata.name ?? ''
    try {
      const created = await mustWrite<Pod>(ctx, { op: 'create', object: pod, uid: ctx.uid(), now: ctx.now() })
      void ctx.events.record({ object: v.set, type: 'Normal', reason: 'SuccessfulCreate', message: `create Pod ${name} in StatefulSet ${v.set.metadata.name ?? ''} successful`, component: COMPONENT })
      return created
    } catch (err) {
      void ctx.events.record({ object: v.set, type: 'Warning', reason: 'FailedCreate', message: `create Pod ${name} in StatefulSet ${v.set.metadata.name ?? ''} failed error: ${(err as Error).message}`, component: COMPONENT })
      throw err
    }
  }

  private async deletePod (ctx: ControllerContext, set: StatefulSet, pod: Pod, why: string): Promise<void> {
    const name = pod.metadata.name ?? ''
    try {
      await mustWrite(ctx, { op: 'delete', ref: podRef(pod), now: ctx.now(), preconditions: { uid: pod.metadata.uid ?? '' } }, true)
      ctx.log.debug({ event: 'statefulset.pod.deleted', pod: name, why }, `statefulset ${set.metadata.name ?? ''}: deleted ${name} (${why})`)
      void ctx.events.record({ object: set, type: 'Normal', reason: 'SuccessfulDelete', message: `delete Pod ${name} in StatefulSet ${set.metadata.name ?? ''} successful`, component: COMPONENT })
    } catch (err) {
      void ctx.events.record({ object: set, type: 'Warning', reason: 'FailedDelete', message: `delete Pod ${name} in StatefulSet ${set.metadata.name ?? ''} failed error: ${(err as Error).message}`, component: COMPONENT })
      throw err
    }
  }

  /** Puts back the identity labels and the finalizer of a pod that lost them (as Kubernetes' updateIdentity). */
  private async fixIdentity (ctx: ControllerContext, v: SetView, pod: Pod, ordinal: number): Promise<Pod | undefined> {
    const name = pod.metadata.name ?? ''
    const labels = pod.metadata.labels ?? {}
    const labelsOk = labels[STATEFUL_SET_POD_NAME] === name && labels[POD_INDEX] === String(ordinal)
    if (labelsOk && hasFinalizer(pod)) return undefined
    return await this.patchPod(ctx, pod, {
      labels: { ...labels, [STATEFUL_SET_POD_NAME]: name, [POD_INDEX]: String(ordinal) },
      finalizers: [...new Set([...(pod.metadata.finalizers ?? []), STOPPED_BY_KUBELET_FINALIZER])]
    })
  }

  /** A merge patch of the pod's metadata at its resourceVersion; undefined if it failed (retried on the next pass). */
  private async patchPod (ctx: ControllerContext, pod: Pod, metadata: Record<string, unknown>): Promise<Pod | undefined> {
    try {
      return await mustWrite<Pod>(ctx, { op: 'patch', ref: podRef(pod), patchType: 'merge', patch: { metadata: { resourceVersion: pod.metadata.resourceVersion, ...metadata } }, now: ctx.now() }, true)
    } catch {
      return undefined
    }
  }

  /** Recounts from the replica (after this pass's writes) and writes status if it changed. */
  private async writeStatus (ctx: ControllerContext, queue: WorkQueue, key: string, current: ControllerRevision, update: ControllerRevision): Promise<boolean> {
    const { namespace, name } = splitKey(key)
    const set = ctx.store.get(STATEFUL_SET, namespace, name)
    if (set?.spec === undefined) return true
    const uid = set.metadata.uid ?? ''
    const pods = ctx.store.list(POD, { namespace }).items.filter(p => controllerRefOf(p)?.uid === uid && parseOrdinal(p.metadata.name ?? '').parent === name)
    const minReadySeconds = numberOr(set.spec.minReadySeconds)
    const now = ctx.clock.now()
    const status: StatefulSetStatus = {
      ...(set.status ?? {}),
      observedGeneration: set.metadata.generation ?? 1,
      replicas: pods.length,
      readyReplicas: 0,
      availableReplicas: 0,
      currentReplicas: 0,
      updatedReplicas: 0,
      currentRevision: current.metadata.name ?? '',
      updateRevision: update.metadata.name ?? '',
      collisionCount: numberOr(set.status?.collisionCount)
    }
    let recheck: number | undefined
    for (const p of pods) {
      if (isRunningAndReady(p)) {
        status.readyReplicas = (status.readyReplicas ?? 0) + 1
        const inMs = availableIn(p, minReadySeconds, now)
        if (inMs === 0) status.availableReplicas = (status.availableReplicas ?? 0) + 1
        else if (inMs !== undefined) recheck = Math.min(recheck ?? Infinity, inMs)
      }
      if (isTerminating(p)) continue
      if (revisionOf(p) === status.currentRevision) status.currentReplicas = (status.currentReplicas ?? 0) + 1
      if (revisionOf(p) === status.updateRevision) status.updatedReplicas = (status.updatedReplicas ?? 0) + 1
    }
    if (recheck !== undefined) queue.addAfter(key, recheck + 1)
    // The rollout is complete: every pod is at the update revision and ready.
    if (status.updatedReplicas === status.replicas && status.readyReplicas === status.replicas) {
      status.currentReplicas = status.updatedReplicas
      status.currentRevision = status.updateRevision
    }
    if (canonicalJson(status) === canonicalJson(set.status ?? {})) return true
    try {
      await mustWrite(ctx, { op: 'update', subresource: 'status', object: { ...set, status }, now: ctx.now() }, true)
      return true
    } catch {
      return false
    }
  }
}

function dropRef (pod: Pod, uid: string): Pod['metadata']['ownerReferences'] | null {
  const refs = (pod.metadata.ownerReferences ?? []).filter(r => r.uid !== uid)
  return refs.length === 0 ? null : refs
}
