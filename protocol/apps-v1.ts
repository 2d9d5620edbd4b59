// The apps group's kinds (`/apis/apps/v1`) as Shoal stores and serves them,
// in the shapes of k8s.io/api/apps/v1. Only the fields Shoal reads or writes
// are typed; the store keeps every other valid field as it came.
// May import: ./k8s.ts, ./core-v1.ts.
import type { IntOrString, PodTemplateSpec } from './core-v1.ts'
import type { LabelSelector, TypedObject } from './k8s.ts'

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
