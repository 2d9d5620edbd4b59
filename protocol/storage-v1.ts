// The storage.k8s.io group's kinds (`/apis/storage.k8s.io/v1`):
// StorageClass, in the shape of k8s.io/api/storage/v1.
// May import: ./k8s.ts.
import type { TypedObject } from './k8s.ts'

/** The annotation that makes a StorageClass the one claims without a storageClassName get. */
export const DEFAULT_CLASS_ANNOTATION = 'storageclass.kubernetes.io/is-default-class'

export type StorageClass = TypedObject<'storage.k8s.io/v1', 'StorageClass'> & {
  provisioner: string
  parameters?: Record<string, string>
  reclaimPolicy?: 'Retain' | 'Delete'
  volumeBindingMode?: 'Immediate' | 'WaitForFirstConsumer'
  allowVolumeExpansion?: boolean
  mountOptions?: string[]
  allowedTopologies?: Array<{ matchLabelExpressions?: Array<{ key: string, values: string[] }> }>
}

/** Whether the class is marked as the default one. */
export function isDefaultClass (sc: StorageClass): boolean {
  return sc.metadata.annotations?.[DEFAULT_CLASS_ANNOTATION] === 'true'
}
