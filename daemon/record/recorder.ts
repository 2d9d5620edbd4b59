// Kubernetes Events, as client-go's tools/record writes them: repeats of
// one reason and message about one object are counted on one Event rather
// than written anew. Used by the controllers, the scheduler and the kubelet.
// A leaf: anyone may import it.
// May import: protocol/, daemon/store/types.ts, daemon/clock.
import { randomUUID } from 'node:crypto'
import { rfc3339 } from '../../protocol/k8s.ts'
import type { KObject } from '../../protocol/k8s.ts'
import type { Clock } from '../clock/clock.ts'
import type { StoreCommand, StoreResult } from '../store/types.ts'

export interface EventInput {
  /** the object the event is about */
  object: KObject
  type: 'Normal' | 'Warning'
  reason: string
  message: string
  /** who reports it, e.g. 'default-scheduler', 'deployment-controller' */
  component: string
}

/**
 * Records Kubernetes Events. The same reason and message about the same
 * object within the window updates one Event (count, lastTimestamp) rather
 * than writing a new one each time. Events are written best-effort: a lost
 * one is not retried.
 */
export class EventRecorder {
  private readonly write: (cmd: StoreCommand) => Promise<StoreResult>
  private readonly clock: Clock
  private readonly recent = new Map<string, { name: string, namespace: string, count: number, first: string }>()

  constructor (write: (cmd: StoreCommand) => Promise<StoreResult>, clock: Clock) {
    this.write = write
    this.clock = clock
  }

  async record (e: EventInput): Promise<void> {
    const now = rfc3339(this.clock.now())
    const meta = e.object.metadata
    const namespace = meta.namespace ?? 'default'
    const key = `${e.object.kind}/${namespace}/${meta.name ?? ''}/${e.reason}/${e.message}`
    const seen = this.recent.get(key)
    const involvedObject = { apiVersion: e.object.apiVersion, kind: e.object.kind, name: meta.name, namespace: meta.namespace, uid: meta.uid, resourceVersion: meta.resourceVersion }
    if (seen !== undefined) {
      seen.count++
      await this.write({
        op: 'patch',
        ref: { group: '', resource: 'events', namespace, name: seen.name },
        patchType: 'merge',
        patch: { count: seen.count, lastTimestamp: now },
        now
      }).catch(() => undefined)
      return
    }
    const name = `${meta.name ?? 'object'}.${randomUUID().replace(/-/g, '').slice(0, 16)}`
    this.recent.set(key, { name, namespace, count: 1, first: now })
    if (this.recent.size > 5000) this.recent.delete(this.recent.keys().next().value as string)
    await this.write({
      op: 'create',
      object: {
        apiVersion: 'v1',
        kind: 'Event',
        metadata: { name, namespace },
        involvedObject,
        reason: e.reason,
        message: e.message,
        type: e.type,
        count: 1,
        firstTimestamp: now,
        lastTimestamp: now,
        source: { component: e.component }
      },
      uid: randomUUID(),
      now
    }).catch(() => undefined)
  }
}
