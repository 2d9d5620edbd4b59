// What the viewer token may see of Secrets: their metadata only. The
// viewer's requests read the store through secretsAsMetadata, so every read
// path (get, list, watch, and the Tables made from them) hands out Secrets
// without `data` and `stringData`, and without kubectl's last-applied
// annotation, which holds a copy of them. The admin token reads them whole.
// May import: protocol/, daemon/store/types.ts.
import type { KObject, ResourceType } from '../../protocol/k8s.ts'
import type { StoreReader } from '../store/types.ts'

/** kubectl's client-side apply keeps the whole applied manifest here, data included. */
const LAST_APPLIED = 'kubectl.kubernetes.io/last-applied-configuration'

function isSecrets (type: ResourceType): boolean {
  return type.group === '' && type.kind === 'Secret'
}

/**
 * The Secret without its data; one copy per stored object, so that every
 * viewer's watch of one change writes the same object (watch.ts serializes
 * an object once for all the watchers it goes to).
 */
const stripped = new WeakMap<object, KObject>()
function metadataOnly<T extends KObject> (secret: T): T {
  const known = stripped.get(secret)
  if (known !== undefined) return known as T
  const { data: _data, stringData: _stringData, ...rest } = secret as KObject & { data?: unknown, stringData?: unknown }
  const annotations = secret.metadata.annotations
  const out = (annotations !== undefined && Object.hasOwn(annotations, LAST_APPLIED)
    ? { ...rest, metadata: { ...secret.metadata, annotations: Object.fromEntries(Object.entries(annotations).filter(([k]) => k !== LAST_APPLIED)) } }
    : rest) as T
  stripped.set(secret, out)
  return out
}

/** `store` as the viewer token reads it: Secrets come without their data; everything else as it is. */
export function secretsAsMetadata (store: StoreReader): StoreReader {
  return {
    resourceVersion: () => store.resourceVersion(),
    get: (type, namespace, name) => {
      const obj = store.get(type, namespace, name)
      return obj !== undefined && isSecrets(type) ? metadataOnly(obj) : obj
    },
    list: (type, opts) => {
      const list = store.list(type, opts)
      return isSecrets(type) ? { ...list, items: list.items.map(metadataOnly) } : list
    },
    watch: (type, opts, onEvent) => isSecrets(type)
      ? store.watch(type, opts, e => { onEvent(e.type === 'ERROR' ? e : { type: e.type, object: metadataOnly(e.object) }) })
      : store.watch(type, opts, onEvent)
  }
}
