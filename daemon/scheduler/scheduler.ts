// Shoal's scheduler: a Controller on the leader that binds pending pods
// (no spec.nodeName, not being deleted, no scheduling gates) to nodes, with
// Kubernetes' default filters (Ready, cordon, taints, node selector and
// affinity, host ports, resource fit, topology spread constraints, inter-pod
// affinity and anti-affinity) and scores (least allocated, spreading of
// siblings or the pod's own spread constraints, preferred node affinity,
// preferred inter-pod affinity). It
// works in batches: every pending pod in one pass, in creation order, each
// decision counted against the nodes at once so that the next pod of the
// batch sees it. Pods no node can take wait, with PodScheduled=False and a
// FailedScheduling event, until a node or pod changes (or retryMs passes);
// a gated pod waits with PodScheduled=False, reason SchedulingGated.
// It also evicts pods from nodes with NoExecute taints they do not
// tolerate (after their tolerationSeconds).
// May import: protocol/, daemon/controllers/framework.ts, daemon/workqueue, daemon/store/types.ts, daemon/clock, ./*.
import type { Namespace, Node, Pod, PodCondition } from '../../protocol/core-v1.ts'
import { jsonEqual } from '../../protocol/json.ts'
import { NAMESPACE, NODE, POD } from '../../protocol/kinds.ts'
import type { WatchEvent } from '../../protocol/k8s.ts'
import { every } from '../clock/clock.ts'
import type { TimerHandle } from '../clock/clock.ts'
import { WorkQueue } from '../workqueue/queue.ts'
import type { Controller, ControllerContext } from '../controllers/framework.ts'
import type { StoreResult, Watch } from '../store/types.ts'
import { account, emptyNode, isTerminated, podInfoOf, podKey, setNodeObject } from './model.ts'
import type { NodeInfo, PodInfo } from './model.ts'
import { filterNode, leastAllocatedScore, noExecuteDeadline, nodeAffinityScores, spreadScore, unschedulableMessage } from './plugins.ts'
import { PodIndex } from './index.ts'
import { filterInterPod, preFilterInterPod, scoreInterPod } from './interpod.ts'
import { filterSpread, preFilterSpread, scoreSpread } from './spread.ts'

export const SCHEDULER_NAME = 'default-scheduler'
export const GATED_MESSAGE = 'Scheduling is blocked due to non-empty scheduling gates'

export interface SchedulerOptions {
  /** pods whose spec.schedulerName is this are ours (default 'default-scheduler') */
  schedulerName?: string
  /** unschedulable pods are tried again at least this often, changes or not (default 5 s) */
  retryMs?: number
  /** delay before a pod whose binding write failed is tried again (default 200 ms) */
  bindRetryMs?: number
  /**
   * a pending pod's Unschedulable message that only changed (the condition
   * is already there) is written at most this often, and only if the pod is
   * still pending then (default 5 s): while nodes come and go, the counts in
   * the message change on every pass, and writing each would cost one
   * replicated write per pending pod per pass
   */
  messageRefreshMs?: number
  /** score weights (defaults: least allocated 1, spreading 2, as Kubernetes weighs NodeResourcesFit and PodTopologySpread) */
  leastAllocatedWeight?: number
  spreadWeight?: number
  /** weights of preferred node affinity and of inter-pod affinity (default 2 each, as Kubernetes) */
  nodeAffinityWeight?: number
  interPodAffinityWeight?: number
  /** longest the scheduler computes before yielding to the event loop (default 20 ms) */
  sliceMs?: number
}


function conditionOf (p: Pod, type: string): PodCondition | undefined {
  const conds = p.status?.conditions
  // A status is only checked to be an object: its conditions may be anything.
  return Array.isArray(conds) ? conds.find(c => c?.type === type) : undefined
}

function nodeNameOf (p: Pod): string {
  return p.spec?.nodeName ?? ''
}

export class Scheduler implements Controller {
  readonly name = 'scheduler'
  private readonly opts: Required<SchedulerOptions>
  private ctx: ControllerContext | undefined
  private watches: Watch[] = []
  private stopRetry: (() => void) | undefined
  private timer: TimerHandle | undefined
  private bindRetryTimer: TimerHandle | undefined
  private refreshTimer: TimerHandle | undefined
  private evictions: WorkQueue | undefined
  private running = false
  private stopped = true
  private seq = 0

  /** every pod not yet deleted */
  private readonly pods = new Map<string, PodInfo>()
  private readonly nodes = new Map<string, NodeInfo>()
  /** nodes that have a Node object, by name; rebuilt when one comes or goes */
  private candidates: NodeInfo[] | undefined
  /** pending pods to try in the next pass */
  private readonly active = new Set<string>()
  /** pending pods no node could take, waiting for a change */
  private readonly parked = new Set<string>()
  /** pods whose binding write is in flight, with the node they are counted on */
  private readonly assumed = new Map<string, string>()
  private readonly retryBind = new Set<string>()
  /** the FailedScheduling message last written per pod, so an unchanged one is not written again */
  private readonly lastMessage = new Map<string, string>()
  /** pods whose Unschedulable message changed, with the new one, written at the next refresh */
  private readonly staleMessage = new Map<string, string>()
  /** when a NoExecute taint without timeAdded was first seen */
  private readonly taintSeen = new Map<string, number>()
  /** namespace labels, for namespaceSelector */
  private readonly namespaces = new Map<string, Record<string, string>>()
  /** per-node counts for the inter-pod plugins, kept with every account() */
  private readonly index = new PodIndex(this.pods, this.nodes, ns => this.namespaces.get(ns))
  /** parked pods that another pod's arrival may help (required pod affinity, DoNotSchedule spread) */
  private readonly waitsOnPods = new Set<string>()
  /** pods bound since start (for throughput reports) */
  bound = 0

  constructor (opts: SchedulerOptions = {}) {
    this.opts = {
      schedulerName: SCHEDULER_NAME,
      retryMs: 5000,
      bindRetryMs: 200,
      messageRefreshMs: 5000,
      leastAllocatedWeight: 1,
      spreadWeight: 2,
      nodeAffinityWeight: 2,
      interPodAffinityWeight: 2,
      sliceMs: 20,
      ...opts
    }
  }

  start (ctx: ControllerContext): void {
    this.stop()
    this.ctx = ctx
    this.stopped = false
    this.evictions = new WorkQueue({ clock: ctx.clock, log: ctx.log, name: 'taint-eviction', reconcile: async key => await this.evict(key) })
    this.watches.push(ctx.store.watch(NODE, {}, e => { this.guard(() => { this.onNode(e) }) }))
    this.watches.push(ctx.store.watch(NAMESPACE, {}, e => { this.guard(() => { this.onNamespace(e) }) }))
    this.watches.push(ctx.store.watch(POD, {}, e => { this.guard(() => { this.onPod(e) }) }))
    this.stopRetry = every(ctx.clock, this.opts.retryMs, () => { this.unparkAll() })
    this.kick()
  }

  stop (): void {
    this.stopped = true
    for (const w of this.watches) w.stop()
    this.watches = []
    this.stopRetry?.()
    this.stopRetry = undefined
    this.evictions?.stop()
    this.evictions = undefined
    if (this.ctx !== undefined) {
      if (this.timer !== undefined) this.ctx.clock.clearTimeout(this.timer)
      if (this.bindRetryTimer !== undefined) this.ctx.clock.clearTimeout(this.bindRetryTimer)
      if (this.refreshTimer !== undefined) this.ctx.clock.clearTimeout(this.refreshTimer)
    }
    this.timer = this.bindRetryTimer = this.refreshTimer = undefined
    this.pods.clear()
    this.nodes.clear()
    this.candidates = undefined
    this.active.clear()
    this.parked.clear()
    this.assumed.clear()
    this.retryBind.clear()
    this.lastMessage.clear()
    this.taintSeen.clear()
    this.index.clear()
    this.namespaces.clear()
    this.waitsOnPods.clear()
  }

  /** How many pods wait for a node (tried next, or parked as unschedulable). */
  get pendingCount (): number { return this.active.size + this.parked.size }

  private guard (fn: () => void): void {
    try {
      fn()
    } catch (err) {
      this.ctx?.log.error({ event: 'scheduler.bug', err: (err as Error).stack }, `scheduler: ${(err as Error).message}`)
    }
  }

  // ---- the cache, from watches ----------------------------------------------

  private node (name: string): NodeInfo {
    let n = this.nodes.get(name)
    if (n === undefined) this.nodes.set(name, n = emptyNode(name))
    return n
  }

  private onNode (e: WatchEvent<Node>): void {
    if (e.type !== 'ADDED' && e.type !== 'MODIFIED' && e.type !== 'DELETED') return
    const obj = e.object
    const name = obj.metadata.name ?? ''
    const n = this.node(name)
    const labels = n.labels
    setNodeObject(n, e.type === 'DELETED' ? undefined : obj)
    if (!jsonEqual(labels, n.labels)) this.index.forgetDomains()
    if (n.object === undefined && n.pods.size === 0) this.nodes.delete(name)
    this.candidates = undefined
    if (n.hardTaints.some(t => t.effect === 'NoExecute')) for (const key of n.pods) this.evictions?.add(key)
    this.unparkAll()
  }

  private isPending (p: PodInfo): boolean {
    const o = p.object
    const schedulerName = o.spec?.schedulerName
    return nodeNameOf(o) === '' && !p.gated && o.metadata.deletionTimestamp === undefined && !isTerminated(o) &&
      (schedulerName === undefined || schedulerName === this.opts.schedulerName) && !this.assumed.has(p.key)
  }

  private onPod (e: WatchEvent<Pod>): void {
    if (e.type !== 'ADDED' && e.type !== 'MODIFIED' && e.type !== 'DELETED') return
    const obj = e.object
    const key = podKey(obj)
    let old = this.pods.get(key)
    if (old !== undefined && old.uid !== (obj.metadata.uid ?? '')) {
      // the same name, a new pod: forget the old one first
      this.forget(old)
      old = undefined
    }
    if (e.type === 'DELETED') {
      if (old !== undefined) this.forget(old)
      return
    }
    const info = podInfoOf(obj, old?.seq ?? ++this.seq)
    const nodeName = nodeNameOf(obj)
    const target = isTerminated(obj) ? '' : nodeName !== '' ? nodeName : this.assumed.get(key) ?? ''
    if (old !== undefined && old.countedOn !== '') this.count(this.node(old.countedOn), old, -1)
    if (target !== '') this.count(this.node(target), info, 1)
    info.countedOn = target
    this.pods.set(key, info)
    if (old !== undefined && old.countedOn !== '' && target === '') this.unparkAll()
    if (this.waitsOnPods.size > 0 && target !== '' && (old?.countedOn !== target || !jsonEqual(old.labels, info.labels))) this.wakeWaitingOnPods()
    if (this.isPending(info)) {
      const changed = old === undefined || old.object.metadata.generation !== obj.metadata.generation || info.owner !== old.owner
      if (changed || !this.parked.has(key)) {
        this.parked.delete(key)
        this.active.add(key)
        this.kick()
      }
    } else {
      this.active.delete(key)
      this.parked.delete(key)
      if (info.gated && nodeName === '') this.markGated(info)
      if (nodeName !== '') {
        this.lastMessage.delete(key)
        this.staleMessage.delete(key)
        if (this.nodes.get(nodeName)?.hardTaints.some(t => t.effect === 'NoExecute') === true) this.evictions?.add(key)
      }
    }
  }

  private forget (p: PodInfo): void {
    if (p.countedOn !== '') {
      const n = this.node(p.countedOn)
      this.count(n, p, -1)
      if (n.object === undefined && n.pods.size === 0) this.nodes.delete(n.name)
      this.unparkAll()
    }
    this.pods.delete(p.key)
    this.active.delete(p.key)
    this.parked.delete(p.key)
    this.waitsOnPods.delete(p.key)
    this.lastMessage.delete(p.key)
    this.staleMessage.delete(p.key)
  }

  /** Counts a pod on a node (or off it) in the node's aggregates and in the inter-pod index. */
  private count (n: NodeInfo, p: PodInfo, sign: 1 | -1): void {
    account(n, p, sign)
    this.index.count(n, p, sign)
  }

  /** A pod came to a node (or changed labels there): parked pods with pod affinity or spread constraints try again. */
  private wakeWaitingOnPods (): void {
    if (this.waitsOnPods.size === 0) return
    for (const key of this.waitsOnPods) {
      if (this.parked.delete(key)) this.active.add(key)
    }
    this.waitsOnPods.clear()
    this.kick()
  }

  private onNamespace (e: WatchEvent<Namespace>): void {
    if (e.type !== 'ADDED' && e.type !== 'MODIFIED' && e.type !== 'DELETED') return
    const name = e.object.metadata.name ?? ''
    const labels = e.type === 'DELETED' ? undefined : e.object.metadata.labels ?? {}
    if (jsonEqual(this.namespaces.get(name), labels)) return
    if (labels === undefined) this.namespaces.delete(name)
    else this.namespaces.set(name, labels)
    // namespaceSelectors may now select other pods
    this.index.forgetMatches()
    this.unparkAll()
  }

  private unparkAll (): void {
    if (this.parked.size === 0) return
    for (const key of this.parked) this.active.add(key)
    this.parked.clear()
    this.kick()
  }

  private candidateNodes (): NodeInfo[] {
    if (this.candidates === undefined) {
      this.candidates = [...this.nodes.values()].filter(n => n.object !== undefined).sort((a, b) => a.name < b.name ? -1 : a.name > b.name ? 1 : 0)
      this.index.setCandidates(this.candidates)
    }
    return this.candidates
  }

  // ---- scheduling passes ----------------------------------------------------

  private kick (): void {
    if (this.stopped || this.running || this.timer !== undefined || this.active.size === 0 || this.ctx === undefined) return
    // one timer turn first, so that a burst of new pods lands in one batch
    this.timer = this.ctx.clock.setTimeout(() => {
      this.timer = undefined
      void this.run()
    }, 0)
  }

  private async run (): Promise<void> {
    if (this.running || this.stopped) return
    this.running = true
    try {
      while (!this.stopped && this.active.size > 0) {
        const batch: PodInfo[] = []
        for (const key of this.active) {
          const p = this.pods.get(key)
          if (p !== undefined) batch.push(p)
        }
        this.active.clear()
        batch.sort((a, b) => a.seq - b.seq)
        await this.scheduleBatch(batch)
      }
    } catch (err) {
      this.ctx?.log.error({ event: 'scheduler.bug', err: (err as Error).stack }, `scheduler pass failed: ${(err as Error).message}`)
    } finally {
      this.running = false
    }
    this.kick()
  }

  /** Decides every pod of the batch, then writes the bindings and the failures concurrently. */
  private async scheduleBatch (batch: PodInfo[]): Promise<void> {
    if (this.ctx === undefined) return
    const clock = this.ctx.clock
    const nodes = this.candidateNodes()
    const writes: Array<Promise<void>> = []
    const feasible: NodeInfo[] = []
    let sliceStart = clock.now()
    for (const [i, p] of batch.entries()) {
      // A big batch is decided in slices, so that Raft's heartbeats and the API keep running meanwhile.
      if ((i & 63) === 63 && clock.now() - sliceStart >= this.opts.sliceMs) {
        await new Promise<void>(resolve => { clock.setTimeout(resolve, 0) })
        sliceStart = clock.now()
      }
      if (this.stopped) return
      if (this.pods.get(p.key) !== p || !this.isPending(p)) continue
      const reasons = new Map<string, number>()
      const node = this.place(p, nodes, feasible, reasons)
      if (node !== undefined) {
        this.assume(p, node)
        writes.push(this.bind(p, node))
      } else {
        this.parked.add(p.key)
        if ((p.podAffinity?.requiredAffinity.length ?? 0) > 0 || p.spread?.some(c => c.hard) === true) this.waitsOnPods.add(p.key)
        writes.push(this.markUnschedulable(p, nodes.length, reasons))
      }
    }
    await Promise.all(writes)
  }

  /** The best node for `p`, or undefined (with the reasons each node gave in `reasons`). */
  private place (p: PodInfo, nodes: NodeInfo[], feasible: NodeInfo[], reasons: Map<string, number>): NodeInfo | undefined {
    const add = (r: string): void => { reasons.set(r, (reasons.get(r) ?? 0) + 1) }
    feasible.length = 0
    // undefined for a pod that no inter-pod rule concerns: most pods
    const spread = preFilterSpread(p, nodes, this.index)
    const interPod = preFilterInterPod(p, this.index)
    let maxSiblings = 0
    for (const n of nodes) {
      if (!filterNode(p, n, add)) continue
      // PodTopologySpread, then InterPodAffinity: last, as in Kubernetes' default profile
      const why = (spread === undefined ? undefined : filterSpread(spread, n)) ?? (interPod === undefined ? undefined : filterInterPod(interPod, n))
      if (why !== undefined) { add(why); continue }
      feasible.push(n)
      const s = n.owners.get(p.owner) ?? 0
      if (s > maxSiblings) maxSiblings = s
    }
    return feasible.length <= 1 ? feasible[0] : this.best(p, feasible, nodes, maxSiblings)
  }

  /** The feasible node with the highest weighted score. */
  private best (p: PodInfo, feasible: NodeInfo[], nodes: NodeInfo[], maxSiblings: number): NodeInfo | undefined {
    const extra = this.extraScores(p, feasible, nodes)
    let best: NodeInfo | undefined
    let bestScore = -Infinity
    const wl = this.opts.leastAllocatedWeight
    // a pod's own topologySpreadConstraints replace the spreading of siblings, as in Kubernetes
    const ws = p.spread === undefined ? this.opts.spreadWeight : 0
    // nodes are in name order and only a higher score wins: ties go to the first name
    for (let i = 0; i < feasible.length; i++) {
      const n = feasible[i] as NodeInfo
      const score = wl * leastAllocatedScore(p, n) + (ws === 0 ? 0 : ws * spreadScore(p, n, maxSiblings)) + (extra === undefined ? 0 : extra[i] as number)
      if (score > bestScore) {
        bestScore = score
        best = n
      }
    }
    return best
  }

  /** The weighted sum of the scores only some pods have (preferred node and pod affinity, spread constraints), or undefined. */
  private extraScores (p: PodInfo, feasible: NodeInfo[], nodes: NodeInfo[]): Float64Array | undefined {
    const parts: Array<[number, Float64Array | undefined]> = [
      [this.opts.nodeAffinityWeight, nodeAffinityScores(p, feasible)],
      [this.opts.interPodAffinityWeight, scoreInterPod(p, feasible, this.index)],
      [this.opts.spreadWeight, p.spread === undefined ? undefined : scoreSpread(p, feasible, nodes, this.index)]
    ]
    let sum: Float64Array | undefined
    for (const [w, scores] of parts) {
      if (scores === undefined) continue
      sum ??= new Float64Array(feasible.length)
      for (let i = 0; i < scores.length; i++) sum[i] = (sum[i] as number) + w * (scores[i] as number)
    }
    return sum
  }

  private assume (p: PodInfo, n: NodeInfo): void {
    if (p.countedOn !== '') this.count(this.node(p.countedOn), p, -1)
    this.count(n, p, 1)
    p.countedOn = n.name
    this.assumed.set(p.key, n.name)
    this.wakeWaitingOnPods()
  }

  private async bind (p: PodInfo, n: NodeInfo): Promise<void> {
    const ctx = this.ctx
    if (ctx === undefined) return
    const ref = { group: '', resource: 'pods', namespace: p.namespace, name: p.name }
    // One entry: the node and PodScheduled=True together, as a Binding does.
    const r = await ctx.write<Pod>({ op: 'bind', ref, node: n.name, preconditions: { uid: p.uid }, now: ctx.now() }).catch(failed)
    if (this.stopped || this.ctx !== ctx) return
    this.assumed.delete(p.key)
    const cur = this.pods.get(p.key)
    if (r.ok) {
      this.bound++
      this.lastMessage.delete(p.key)
      this.staleMessage.delete(p.key)
      void ctx.events.record({ object: r.object, type: 'Normal', reason: 'Scheduled', message: `Successfully assigned ${p.namespace}/${p.name} to ${n.name}`, component: this.opts.schedulerName })
      return
    }
    ctx.log.debug({ event: 'scheduler.bind-failed', pod: p.key, node: n.name, err: r.status.message }, `binding ${p.key} to ${n.name} failed: ${r.status.message}`)
    if (cur === undefined) return
    if (nodeNameOf(cur.object) === '' && cur.countedOn !== '') {
      this.count(this.node(cur.countedOn), cur, -1)
      cur.countedOn = ''
    }
    if (this.isPending(cur)) this.retryLater(cur.key)
  }

  private retryLater (key: string): void {
    const ctx = this.ctx
    if (ctx === undefined) return
    this.retryBind.add(key)
    if (this.bindRetryTimer !== undefined) return
    this.bindRetryTimer = ctx.clock.setTimeout(() => {
      this.bindRetryTimer = undefined
      for (const k of this.retryBind) {
        const p = this.pods.get(k)
        if (p !== undefined && this.isPending(p)) this.active.add(k)
      }
      this.retryBind.clear()
      this.kick()
    }, this.opts.bindRetryMs)
  }

  private async markUnschedulable (p: PodInfo, nodeCount: number, reasons: Map<string, number>): Promise<void> {
    const ctx = this.ctx
    if (ctx === undefined) return
    const message = nodeCount === 0 ? 'no nodes available to schedule pods' : unschedulableMessage(nodeCount, reasons)
    if (this.lastMessage.get(p.key) === message) return
    this.lastMessage.set(p.key, message)
    const cond = conditionOf(p.object, 'PodScheduled')
    if (cond?.status === 'False' && cond.reason === 'Unschedulable') {
      this.staleMessage.delete(p.key)
      if (cond.message === message) return
      // Only the message changed: written at the next refresh, if the pod still waits then.
      this.staleMessage.set(p.key, message)
      if (this.refreshTimer === undefined) this.refreshTimer = ctx.clock.setTimeout(() => { this.refreshMessages() }, this.opts.messageRefreshMs)
      return
    }
    await this.writeUnschedulable(p, message)
  }

  private refreshMessages (): void {
    this.refreshTimer = undefined
    const stale = [...this.staleMessage]
    this.staleMessage.clear()
    for (const [key, message] of stale) {
      const p = this.pods.get(key)
      if (p !== undefined && this.parked.has(key) && this.isPending(p) && this.lastMessage.get(key) === message) void this.writeUnschedulable(p, message)
    }
  }

  /** PodScheduled=False, reason Unschedulable, with a FailedScheduling Event. */
  private async writeUnschedulable (p: PodInfo, message: string): Promise<void> {
    const ctx = this.ctx
    if (ctx === undefined) return
    void ctx.events.record({ object: p.object, type: 'Warning', reason: 'FailedScheduling', message, component: this.opts.schedulerName })
    const ok = await this.writeScheduledCondition(p, { type: 'PodScheduled', status: 'False', reason: 'Unschedulable', message, lastProbeTime: ctx.now(), lastTransitionTime: ctx.now() })
    // Not written: forget it, so the next pass writes it again.
    if (!ok && this.lastMessage.get(p.key) === message) this.lastMessage.delete(p.key)
  }

  /** A gated pod gets PodScheduled=False, reason SchedulingGated, as Kubernetes' API server gives it. */
  private markGated (p: PodInfo): void {
    const ctx = this.ctx
    const cond = conditionOf(p.object, 'PodScheduled')
    if (ctx === undefined || cond?.reason === 'SchedulingGated' || this.lastMessage.get(p.key) === GATED_MESSAGE) return
    this.lastMessage.set(p.key, GATED_MESSAGE)
    void this.writeScheduledCondition(p, { type: 'PodScheduled', status: 'False', reason: 'SchedulingGated', message: GATED_MESSAGE, lastProbeTime: null, lastTransitionTime: ctx.now() }).then(ok => {
      if (!ok && this.lastMessage.get(p.key) === GATED_MESSAGE) this.lastMessage.delete(p.key)
    })
  }

  private async writeScheduledCondition (p: PodInfo, condition: PodCondition): Promise<boolean> {
    const ctx = this.ctx
    if (ctx === undefined) return false
    const ref = { group: '', resource: 'pods', namespace: p.namespace, name: p.name }
    const r = await ctx.write({ op: 'patch', ref, subresource: 'status', patchType: 'strategic', patch: { status: { conditions: [condition] } }, now: ctx.now() }).catch(failed)
    return r.ok
  }

  // ---- NoExecute taint eviction ---------------------------------------------

  /** Deletes the pod if its node has a NoExecute taint it does not tolerate (or no longer, after tolerationSeconds). */
  private async evict (key: string): Promise<boolean> {
    const ctx = this.ctx
    const p = this.pods.get(key)
    if (ctx === undefined || p === undefined || p.object.metadata.deletionTimestamp !== undefined) return true
    const n = this.nodes.get(nodeNameOf(p.object))
    if (n?.object === undefined) return true
    const now = ctx.clock.now()
    const { deadline, taint: culprit } = noExecuteDeadline(p, n, now, this.taintSeen)
    if (culprit === undefined) return true
    if (deadline > now) {
      this.evictions?.addAfter(key, deadline - now)
      return true
    }
    const r = await ctx.write({
      op: 'delete',
      ref: { group: '', resource: 'pods', namespace: p.namespace, name: p.name },
      now: ctx.now(),
      preconditions: { uid: p.uid }
    }).catch(failed)
    if (!r.ok && r.status.code !== 404 && r.status.code !== 409) return false
    if (r.ok) {
      ctx.log.info({ event: 'scheduler.evicted', pod: key, node: n.name, taint: culprit.key }, `evicted ${key} from ${n.name}: NoExecute taint ${culprit.key}`)
      void ctx.events.record({ object: p.object, type: 'Normal', reason: 'TaintManagerEviction', message: `Marking for deletion Pod ${key}`, component: 'taint-eviction-controller' })
    }
    return true
  }
}

/** A write that threw (no leader, a timeout): a failed result, with no object. */
function failed (err: unknown): StoreResult<never> {
  return { ok: false, status: { apiVersion: 'v1', kind: 'Status', status: 'Failure', message: (err as Error).message, reason: 'InternalError', code: 500 } }
}
