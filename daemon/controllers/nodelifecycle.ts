// Node lifecycle on the leader: the pods bound to a node whose member
// membership reports dead (for longer than the eviction grace period, 2 s
// by default) or left (at once) are deleted, so that their ReplicaSets
// replace them and the scheduler binds the replacements elsewhere. The
// Node's Ready condition itself is kept by ./nodes.ts.
// May import: protocol/, daemon/clock, daemon/store/types.ts, ./framework.ts, daemon/workqueue.
import type { Pod } from '../../protocol/core-v1.ts'
import type { WatchEvent } from '../../protocol/k8s.ts'
import { NODE, POD } from '../../protocol/kinds.ts'
import { every } from '../clock/clock.ts'
import type { Watch } from '../store/types.ts'
import type { Controller, ControllerContext } from './framework.ts'
import { WorkQueue } from '../workqueue/queue.ts'

/** how long a Node with no member waits before its pods are replaced elsewhere */
const MISSING_GRACE_MS = 30_000

export interface NodeLifecycleOptions {
  /** how long a dead member's pods wait before they are replaced (default 2 s) */
  evictionGraceMs?: number
  /** how often members are looked at (default 250 ms) */
  intervalMs?: number
}

export class NodeLifecycleController implements Controller {
  readonly name = 'node-lifecycle'
  private readonly graceMs: number
  private readonly intervalMs: number
  private ctx: ControllerContext | undefined
  private queue: WorkQueue | undefined
  private watch: Watch | undefined
  private podWatch: Watch | undefined
  /** the pods bound to each node, by namespace/name: a node's eviction reads them, not every pod */
  private readonly podsByNode = new Map<string, Map<string, Pod>>()
  private stopTimer: (() => void) | undefined
  /** when this leader first saw each Node with no member of its name */
  private readonly missingSince = new Map<string, number>()

  constructor (opts: NodeLifecycleOptions = {}) {
    this.graceMs = opts.evictionGraceMs ?? 2000
    this.intervalMs = opts.intervalMs ?? 250
  }

  start (ctx: ControllerContext): void {
    this.ctx = ctx
    const queue = new WorkQueue({ clock: ctx.clock, log: ctx.log, name: this.name, reconcile: async node => await this.reconcile(node) })
    this.queue = queue
    this.watch = ctx.store.watch(NODE, {}, e => { if (e.type !== 'ERROR') queue.add(e.object.metadata.name ?? '') })
    this.podWatch = ctx.store.watch(POD, {}, e => { this.onPod(e) })
    const tick = (): void => {
      const members = ctx.members()
      for (const m of members) if (m.state === 'dead' || m.state === 'left') queue.add(m.name)
      const names = new Set(members.map(m => m.name))
      for (const n of ctx.store.list(NODE, {}).items) if (!names.has(n.metadata.name ?? '')) queue.add(n.metadata.name ?? '')
    }
    tick()
    this.stopTimer = every(ctx.clock, this.intervalMs, tick)
  }

  stop (): void {
    this.stopTimer?.()
    this.watch?.stop()
    this.podWatch?.stop()
    this.queue?.stop()
    this.ctx = undefined
    this.missingSince.clear()
    this.podsByNode.clear()
  }

  private onPod (e: WatchEvent<Pod>): void {
    if (e.type !== 'ADDED' && e.type !== 'MODIFIED' && e.type !== 'DELETED') return
    const key = `${e.object.metadata.namespace ?? ''}/${e.object.metadata.name ?? ''}`
    const node = e.object.spec?.nodeName ?? ''
    // a pod's node is set once, so a pod is only ever under one node
    if (e.type === 'DELETED' || e.object.metadata.deletionTimestamp !== undefined || node === '') {
      if (node === '') return
      const pods = this.podsByNode.get(node)
      pods?.delete(key)
      if (pods?.size === 0) this.podsByNode.delete(node)
      return
    }
    let pods = this.podsByNode.get(node)
    if (pods === undefined) this.podsByNode.set(node, pods = new Map())
    pods.set(key, e.object)
  }

  /** Deletes the pods of a node whose member is gone; false (retry) if a delete failed. */
  private async reconcile (node: string): Promise<boolean> {
    const ctx = this.ctx
    if (ctx === undefined) return true
    const member = ctx.members().find(m => m.name === node)
    if (member === undefined) {
      // No member of this name: after a restore, or one reaped long ago. A
      // peer may still be joining, so it gets a longer grace, counted from
      // when this leader first saw it missing.
      const since = this.missingSince.get(node) ?? ctx.clock.now()
      this.missingSince.set(node, since)
      if (ctx.clock.now() - since < Math.max(this.graceMs, MISSING_GRACE_MS)) return true
      return await this.evict(ctx, node, 'not a member')
    }
    this.missingSince.delete(node)
    const gone = member.state === 'left' || (member.state === 'dead' && ctx.clock.now() - member.since >= this.graceMs)
    if (!gone) {
      if (member.state === 'dead') this.queue?.addAfter(node, Math.max(10, this.graceMs - (ctx.clock.now() - member.since)))
      return true
    }
    return await this.evict(ctx, node, member.state)
  }

  private async evict (ctx: ControllerContext, node: string, why: string): Promise<boolean> {
    const pods = [...(this.podsByNode.get(node)?.values() ?? [])]
    if (pods.length === 0) return true
    const results = await Promise.all(pods.map(async p => {
      const r = await ctx.write({ op: 'delete', ref: { group: '', resource: 'pods', namespace: p.metadata.namespace ?? 'default', name: p.metadata.name ?? '' }, now: ctx.now() })
      if (r.ok) {
        void ctx.events.record({ object: p, type: 'Warning', reason: 'NodeNotReady', message: `node ${node} is ${why}: the pod is deleted so that it runs elsewhere`, component: 'node-controller' })
      }
      return r.ok || r.status.code === 404
    }))
    ctx.log.info({ event: 'node.evicted', node, pods: pods.length }, `node ${node} is ${why}: ${pods.length} pod(s) deleted to run elsewhere`)
    return results.every(Boolean)
  }
}
