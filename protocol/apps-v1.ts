// The apps group's kinds (`/apis/apps/v1`) as Shoal stores and serves them,
// in the shapes of k8s.io/api/apps/v1. Only the fields Shoal reads or writes
// are typed; the store keeps every other valid field as it came.
// May import: ./k8s.ts, ./core-v1.ts, ./selector.ts.
import type { IntOrString, PodTemplateSpec, ReplicationController, Scale } from './core-v1.ts'
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

export interface DaemonSetUpdateStrategy {
  type?: 'RollingUpdate' | 'OnDelete'
  rollingUpdate?: { maxUnavailable?: IntOrString, maxSurge?: IntOrString }
}

export interface DaemonSetSpec {
  selector: LabelSelector
  template: PodTemplateSpec
  updateStrategy?: DaemonSetUpdateStrategy
  minReadySeconds?: number
  revisionHistoryLimit?: number
}

export interface DaemonSetStatus {
  currentNumberScheduled: number
  numberMisscheduled: number
  desiredNumberScheduled: number
  numberReady: number
  observedGeneration?: number
  updatedNumberScheduled?: number
  numberAvailable?: number
  numberUnavailable?: number
  collisionCount?: number
  conditions?: WorkloadCondition[]
}

export type DaemonSet = TypedObject<'apps/v1', 'DaemonSet'> & { spec?: DaemonSetSpec, status?: DaemonSetStatus }

export interface StatefulSetUpdateStrategy {
  type?: 'RollingUpdate' | 'OnDelete'
  rollingUpdate?: { partition?: number, maxUnavailable?: IntOrString }
}

export interface StatefulSetSpec {
  replicas?: number
  selector: LabelSelector
  template: PodTemplateSpec
  /** PersistentVolumeClaims (refused until Shoal has volumes of that kind) */
  volumeClaimTemplates?: Array<Record<string, unknown>>
  serviceName?: string
  podManagementPolicy?: 'OrderedReady' | 'Parallel'
  updateStrategy?: StatefulSetUpdateStrategy
  revisionHistoryLimit?: number
  minReadySeconds?: number
  persistentVolumeClaimRetentionPolicy?: { whenDeleted?: 'Retain' | 'Delete', whenScaled?: 'Retain' | 'Delete' }
  ordinals?: { start?: number }
}

export interface StatefulSetStatus {
  observedGeneration?: number
  replicas: number
  readyReplicas?: number
  currentReplicas?: number
  updatedReplicas?: number
  currentRevision?: string
  updateRevision?: string
  collisionCount?: number
  conditions?: WorkloadCondition[]
  availableReplicas?: number
}

export type StatefulSet = TypedObject<'apps/v1', 'StatefulSet'> & { spec?: StatefulSetSpec, status?: StatefulSetStatus }

/** A snapshot of a DaemonSet's or StatefulSet's template, which `kubectl rollout history|undo` reads. */
export type ControllerRevision = TypedObject<'apps/v1', 'ControllerRevision'> & { data?: unknown, revision: number }

/** The label a DaemonSet's or StatefulSet's pods and revisions carry: the hash of their template's revision. */
export const CONTROLLER_REVISION_HASH = 'controller-revision-hash'

/** A StatefulSet pod's labels: its name and its ordinal, as Kubernetes sets them. */
export const STATEFUL_SET_POD_NAME = 'statefulset.kubernetes.io/pod-name'
export const POD_INDEX = 'apps.kubernetes.io/pod-index'

/**
 * The finalizer a StatefulSet pod carries so that its name is reused only
 * once its old incarnation is known to be gone: the kubelet running it takes
 * it off once the pod's containers have stopped; for a pod of a peer that
 * membership declared dead (or that left), the StatefulSet controller takes
 * it off after STATEFUL_POD_FENCE_MS plus the pod's grace period and a
 * margin, by when a peer that is cut off has stopped the pod itself.
 * See docs/decisions/2026-12-03-statefulsets.md.
 */
export const STOPPED_BY_KUBELET_FINALIZER = 'shoal.dev/stopped-by-kubelet'

/**
 * How long a kubelet may go without a confirmed round with the cluster (a
 * ReadIndex answered by a leader with a quorum) before it stops the pods
 * that carry STOPPED_BY_KUBELET_FINALIZER: every peer must use the same.
 */
export const STATEFUL_POD_FENCE_MS = 10_000

/** The autoscaling/v1 Scale of a Deployment, ReplicaSet, StatefulSet or ReplicationController: what the scale subresource serves and takes. */
export function scaleOf (obj: Deployment | ReplicaSet | StatefulSet | ReplicationController): Scale {
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
    status: { replicas: typeof current === 'number' ? current : 0, selector: formatLabelSelector(selectorOf(obj)) }
  }
}

/** A workload's selector as a LabelSelector (a ReplicationController's is a plain label map). */
function selectorOf (obj: Deployment | ReplicaSet | StatefulSet | ReplicationController): LabelSelector {
  if (obj.kind === 'ReplicationController') return { matchLabels: obj.spec?.selector ?? {} }
  return obj.spec?.selector ?? {}
}

/** The kinds with a scale subresource. */
export function isScalable (obj: { apiVersion: string, kind: string }): obj is Deployment | ReplicaSet | StatefulSet | ReplicationController {
  if (obj.apiVersion === 'v1') return obj.kind === 'ReplicationController'
  return obj.apiVersion === 'apps/v1' && (obj.kind === 'Deployment' || obj.kind === 'ReplicaSet' || obj.kind === 'StatefulSet')
}
