// Test support for the resource store: a store driven by a log index of its
// own, and builders of realistic objects. Used by test/unit/store-*.test.ts
// and by other components' tests that need a populated store.
// May import: protocol/, ./store.ts, ./types.ts.
import type { KObject } from '../../protocol/k8s.ts'
import { bootstrapCommands, encodeStoreCommand, ResourceStore } from './store.ts'
import type { ResourceStoreOptions } from './store.ts'
import type { ObjectRef, StoreCommand, StoreResult } from './types.ts'

export const NOW = '2025-01-01T00:00:00Z'

/** A ResourceStore plus the next log index, bootstrapped with the system namespaces. */
export class StoreHarness {
  readonly store: ResourceStore
  index = 0
  private uids = 0
  /** every command applied, in order, for replaying into another store */
  readonly log: StoreCommand[] = []

  constructor (opts: ResourceStoreOptions & { bootstrap?: boolean } = {}) {
    this.store = new ResourceStore(opts)
    if (opts.bootstrap !== false) for (const c of bootstrapCommands(NOW, ['ns-1', 'ns-2', 'ns-3', 'ns-4'])) this.apply(c)
  }

  /** Applies `cmd` at the next index; typed, like StoreWriter, by the kind the command writes. */
  apply<T extends KObject = KObject> (cmd: StoreCommand): StoreResult<T> {
    this.log.push(cmd)
    return this.store.apply(++this.index, encodeStoreCommand(cmd)) as StoreResult<T>
  }

  /** Creates `object` with a fresh uid; throws unless it worked. */
  create (object: KObject): KObject {
    return this.ok(this.apply({ op: 'create', object, uid: `uid-${++this.uids}`, now: NOW }))
  }

  tryCreate (object: KObject, extra: { dryRun?: boolean } = {}): StoreResult {
    return this.apply({ op: 'create', object, uid: `uid-${++this.uids}`, now: NOW, ...extra })
  }

  ok (r: StoreResult): KObject {
    if (!r.ok) throw new Error(`expected success, got ${r.status.code}: ${r.status.message}`)
    return r.object
  }
}

export function ref (resource: string, name: string, namespace?: string, group = ''): ObjectRef {
  return namespace === undefined ? { group, resource, name } : { group, resource, name, namespace }
}

export function deployment (name: string, opts: { labels?: Record<string, string>, replicas?: number, namespace?: string } = {}): KObject {
  const labels = opts.labels ?? { app: name }
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name, namespace: opts.namespace ?? 'default', labels },
    spec: {
      ...(opts.replicas === undefined ? {} : { replicas: opts.replicas }),
      selector: { matchLabels: labels },
      template: {
        metadata: { labels },
        spec: {
          containers: [
            { name: 'web', image: 'nginx:1.25', ports: [{ containerPort: 80 }], env: [{ name: 'MODE', value: 'prod' }] },
            { name: 'sidecar', image: 'envoy:1.30' }
          ]
        }
      }
    }
  }
}

export function pod (name: string, opts: { labels?: Record<string, string>, namespace?: string, nodeName?: string } = {}): KObject {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, namespace: opts.namespace ?? 'default', ...(opts.labels === undefined ? {} : { labels: opts.labels }) },
    spec: { containers: [{ name: 'main', image: 'busybox:1.36' }], ...(opts.nodeName === undefined ? {} : { nodeName: opts.nodeName }) }
  }
}

export function configMap (name: string, data: Record<string, string>, namespace = 'default'): KObject {
  return { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name, namespace }, data }
}

export function namespace (name: string): KObject {
  return { apiVersion: 'v1', kind: 'Namespace', metadata: { name } }
}
