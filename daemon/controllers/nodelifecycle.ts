// Node lifecycle on the leader: the pods bound to a node whose member
// membership reports dead (for longer than the eviction grace period, 2 s
// by default) or left (at once) are deleted, so that their ReplicaSets
// replace them and the scheduler binds the replacements elsewhere. The
// Node's Ready condition itself is kept by ./nodes.ts.
// May import: protocol/, daemon/clock, daemon/store/types.ts, ./framework.ts.
import { typeOfKind } from '../../protocol/k8s.ts'
import type { KObject, ResourceType } from '../../protocol/k8s.ts'
import { every } from '../clock/clock.ts'
import type { Watch } from '../store/types.ts'
import type { Controller, ControllerContext } from './framework.ts'
import { WorkQueue } from './framework.ts'

const POD = typeOfKind('v1', 'Pod') as ResourceType
const NODE = typeOfKind('v1', 'Node') as ResourceType

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
  private stopTimer: (() => void) | undefined

  constructor (opts: NodeLifecycleOptions = {}) {
    this.graceMs = opts.evictionGraceMs ?? 2000
    this.intervalMs = opts.intervalMs ?? 250
  }

  start (ctx: ControllerContext): void {
    this.ctx = ctx
    const queue = new WorkQueue({ clock: ctx.clock, log: ctx.log, name: this.name, reconcile: async node => await this.reconcile(node) })
    this.queue = queue
    this.watch = ctx.store.watch(NODE, {}, e => { if (e.type !== 'ERROR') queue.add((e.object as KObject).metadata.name ?? '') })
    const tick = (): void => {
      for (const m of ctx.members()) if (m.state === 'dead' || m.state === 'left') queue.add(m.name)
    }
    tick()
    this.stopTimer = every(ctx.clock, this.intervalMs, tick)
  }

  stop (): void {
    this.stopTimer?.()
    this.watch?.stop()
    this.queue?.stop()
    this.ctx = undefined
  }

  /** Deletes the pods of a node whose member is gone; false (retry) if a delete failed. */
  private async reconcile (node: string): Promise<boolean> {
    const ctx = this.ctx
    if (ctx === undefined) return true
    const member = ctx.members().find(m => m.name === node)
    if (member === undefined) return true // not (yet) known to membership: nothing to judge by
    const gone = member.state === 'left' || (member.state === 'dead' && ctx.clock.now() - member.since >= this.graceMs)
    if (!gone) {
      if (member.state === 'dead') this.queue?.addAfter(node, Math.max(10, this.graceMs - (ctx.clock.now() - member.since)))
      return true
    }
    const pods = ctx.store.list(POD, { fieldSelector: `spec.nodeName=${node}` }).items
      .filter(p => p.metadata.deletionTimestamp === undefined)
    if (pods.length === 0) return true
    const results = await Promise.all(pods.map(async p => {
      const r = await ctx.write({ op: 'delete', ref: { group: '', resource: 'pods', namespace: p.metadata.namespace ?? 'default', name: p.metadata.name ?? '' }, now: ctx.now() })
      if (r.ok) {
        void ctx.events.record({ object: p, type: 'Warning', reason: 'NodeNotReady', message: `node ${node} is ${member.state}: the pod is deleted so that it runs elsewhere`, component: 'node-controller' })
      }
      return r.ok || r.status.code === 404
    }))
    ctx.log.info({ event: 'node.evicted', node, pods: pods.length }, `node ${node} is ${member.state}: ${pods.length} pod(s) deleted to run elsewhere`)
    return results.every(Boolean)
  }
}
