// The apps group's kinds (`/apis/apps/v1`) as Shoal stores and serves them,
// in the shapes of k8s.io/api/apps/v1. Only the fields Shoal reads or writes
// are typed; the store keeps every other valid field as it came.
// May import: ./k8s.ts, ./core-v1.ts, ./selector.ts.
import type { IntOrString, PodTemplateSpec, Scale } from './core-v1.ts'
import type { LabelSelector, ObjectMeta, TypedObject } from './k8s.ts'
import { formatLabelSelector } from './selector.ts'

export interface WorkloadCondition {
  type: string
  status: 'True' | 'False' | 'Unknown'
  reason?: string
  message?: string
  lastUpdateTime?: string
  lastTransitionTime?: string
}

export interface DeploymentStrategy {
  type?: 'RollingUpdate' | 'Recreate'
  rollingUpdate?: { maxSurge?: IntOrString, maxUnavailable?: IntOrString }
}

export interface DeploymentSpec {
  replicas?: number
  selector: LabelSelector
  template: PodTemplateSpec
  strategy?: DeploymentStrategy
  minReadySeconds?: number
  revisionHistoryLimit?: number
  progressDeadlineSeconds?: number
  paused?: boolean
}

export interface DeploymentStatus {
  observedGeneration?: number
  replicas?: number
  updatedReplicas?: number
  readyReplicas?: number
  availableReplicas?: number
  unavailableReplicas?: number
  conditions?: WorkloadCondition[]
  collisionCount?: number
}

export type Deployment = TypedObject<'apps/v1', 'Deployment'> & { spec?: DeploymentSpec, status?: DeploymentStatus }

export interface ReplicaSetSpec {
  replicas?: number
  selector: LabelSelector
  template?: PodTemplateSpec
  minReadySeconds?: number
}

export interface ReplicaSetStatus {
  replicas: number
  fullyLabeledReplicas?: number
  readyReplicas?: number
  availableReplicas?: number
  observedGeneration?: number
  conditions?: WorkloadCondition[]
}

export type ReplicaSet = TypedObject<'apps/v1', 'ReplicaSet'> & { spec?: ReplicaSetSpec, status?: ReplicaSetStatus }

/** The autoscaling/v1 Scale of a Deployment or ReplicaSet: what the scale subresource serves and takes. */
export function scaleOf (obj: Deployment | ReplicaSet): Scale {
  const meta: ObjectMeta = {}
  // only the fields that are set, so that no undefined reaches msgpack
  for (const f of ['name', 'namespace', 'uid', 'resourceVersion', 'creationTimestamp'] as const) {
    const v = obj.metadata[f]
    if (v !== undefined) meta[f] = v
  }
  const replicas = obj.spec?.replicas
  const current = obj.status?.replicas
  return {
    apiVersion: 'autoscaling/v1',
    kind: 'Scale',
    metadata: meta,
    spec: { replicas: typeof replicas === 'number' ? replicas : 0 },
    status: { replicas: typeof current === 'number' ? current : 0, selector: formatLabelSelector(obj.spec?.selector ?? {}) }
  }
}

/** The kinds with a scale subresource. */
export function isScalable (obj: { apiVersion: string, kind: string }): obj is Deployment | ReplicaSet {
  return obj.apiVersion === 'apps/v1' && (obj.kind === 'Deployment' || obj.kind === 'ReplicaSet')
}
