// The core group's kinds (`/api/v1`) as Shoal stores and serves them, in the
// shapes of k8s.io/api/core/v1: field names and optionality as there. Only the
// fields Shoal reads or writes are typed; the store keeps every other valid
// field as it came. A `status` is written by Shoal's own components.
// May import: ./k8s.ts.
import type { LabelSelector, ObjectMeta, TypedObject } from './k8s.ts'

/** `intstr.IntOrString`: a port number or name, a count or a percentage. */
export type IntOrString = number | string

/** A resource quantity such as `100m`, `64Mi` or `1`; protocol/quantity.ts reads it. */
export type Quantity = string | number

export type ResourceList = Record<string, Quantity>

// ---- Pod ---------------------------------------------------------------------

export interface ObjectKeySelector { name?: string, key: string, optional?: boolean }

export interface EnvVarSource {
  configMapKeyRef?: ObjectKeySelector
  secretKeyRef?: ObjectKeySelector
  fieldRef?: { apiVersion?: string, fieldPath: string }
  resourceFieldRef?: { containerName?: string, resource: string, divisor?: Quantity }
}

export interface EnvVar { name: string, value?: string, valueFrom?: EnvVarSource }

export interface EnvFromSource {
  prefix?: string
  configMapRef?: { name?: string, optional?: boolean }
  secretRef?: { name?: string, optional?: boolean }
}

export interface ContainerPort {
  name?: string
  containerPort: number
  hostPort?: number
  hostIP?: string
  protocol?: Protocol
}

export type Protocol = 'TCP' | 'UDP' | 'SCTP'

export interface ResourceRequirements { requests?: ResourceList, limits?: ResourceList }

export interface VolumeMount { name: string, mountPath: string, subPath?: string, readOnly?: boolean }

export interface HTTPHeader { name: string, value: string }

export interface Probe {
  httpGet?: { path?: string, port: IntOrString, host?: string, scheme?: 'HTTP' | 'HTTPS', httpHeaders?: HTTPHeader[] }
  tcpSocket?: { port: IntOrString, host?: string }
  exec?: { command?: string[] }
  grpc?: { port: number, service?: string }
  initialDelaySeconds?: number
  periodSeconds?: number
  timeoutSeconds?: number
  failureThreshold?: number
  successThreshold?: number
  terminationGracePeriodSeconds?: number
}

export interface Container {
  name: string
  image?: string
  command?: string[]
  args?: string[]
  workingDir?: string
  env?: EnvVar[]
  envFrom?: EnvFromSource[]
  ports?: ContainerPort[]
  resources?: ResourceRequirements
  volumeMounts?: VolumeMount[]
  livenessProbe?: Probe
  readinessProbe?: Probe
  startupProbe?: Probe
  /** only on an init container, only 'Always': a sidecar, kept running beside the app containers */
  restartPolicy?: 'Always'
  imagePullPolicy?: 'Always' | 'IfNotPresent' | 'Never'
  securityContext?: Record<string, unknown>
  lifecycle?: Record<string, unknown>
  stdin?: boolean
  tty?: boolean
  terminationMessagePath?: string
  terminationMessagePolicy?: string
}

export interface KeyToPath { key: string, path: string, mode?: number }

/** One file of a downwardAPI volume (or projection): a field of the pod, or a container's resource. */
export interface DownwardAPIVolumeFile {
  path: string
  fieldRef?: { apiVersion?: string, fieldPath: string }
  resourceFieldRef?: { containerName?: string, resource: string, divisor?: Quantity }
  mode?: number
}

/** One source of a projected volume (serviceAccountToken is refused until Shoal has service account tokens). */
export interface VolumeProjection {
  configMap?: { name?: string, items?: KeyToPath[], optional?: boolean }
  secret?: { name?: string, items?: KeyToPath[], optional?: boolean }
  downwardAPI?: { items?: DownwardAPIVolumeFile[] }
  serviceAccountToken?: { audience?: string, expirationSeconds?: number, path: string }
}

export interface Volume {
  name: string
  emptyDir?: { medium?: string, sizeLimit?: Quantity }
  configMap?: { name?: string, items?: KeyToPath[], defaultMode?: number, optional?: boolean }
  secret?: { secretName?: string, items?: KeyToPath[], defaultMode?: number, optional?: boolean }
  hostPath?: { path: string, type?: string }
  downwardAPI?: { items?: DownwardAPIVolumeFile[], defaultMode?: number }
  projected?: { sources?: VolumeProjection[], defaultMode?: number }
}

export interface NodeSelectorRequirement { key: string, operator: 'In' | 'NotIn' | 'Exists' | 'DoesNotExist' | 'Gt' | 'Lt', values?: string[] }

export interface NodeSelectorTerm { matchExpressions?: NodeSelectorRequirement[], matchFields?: NodeSelectorRequirement[] }

export interface Affinity {
  nodeAffinity?: {
    requiredDuringSchedulingIgnoredDuringExecution?: { nodeSelectorTerms: NodeSelectorTerm[] }
    preferredDuringSchedulingIgnoredDuringExecution?: Array<{ weight: number, preference: NodeSelectorTerm }>
  }
  podAffinity?: PodAffinity
  podAntiAffinity?: PodAffinity
}

/**
 * Pods (selected by labels, in the namespaces named or selected; the pod's
 * own when neither is given) that must (or should) share, or not share, a
 * topology domain (the value of the node label topologyKey) with this pod.
 */
export interface PodAffinityTerm {
  labelSelector?: LabelSelector
  namespaces?: string[]
  /** `{}` selects every namespace */
  namespaceSelector?: LabelSelector
  topologyKey: string
  /** label keys whose values (this pod's) are added to labelSelector as `In` */
  matchLabelKeys?: string[]
  /** label keys whose values (this pod's) are added to labelSelector as `NotIn` */
  mismatchLabelKeys?: string[]
}

export interface WeightedPodAffinityTerm { weight: number, podAffinityTerm: PodAffinityTerm }

/** Both podAffinity and podAntiAffinity have this shape. */
export interface PodAffinity {
  requiredDuringSchedulingIgnoredDuringExecution?: PodAffinityTerm[]
  preferredDuringSchedulingIgnoredDuringExecution?: WeightedPodAffinityTerm[]
}

/** How matching pods must (DoNotSchedule) or should (ScheduleAnyway) spread over the values of topologyKey. */
export interface TopologySpreadConstraint {
  maxSkew: number
  topologyKey: string
  whenUnsatisfiable: 'DoNotSchedule' | 'ScheduleAnyway'
  labelSelector?: LabelSelector
  minDomains?: number
  /** whether the pod's nodeSelector and node affinity limit the nodes counted (default Honor) */
  nodeAffinityPolicy?: 'Honor' | 'Ignore'
  /** whether nodes with taints the pod does not tolerate are counted (default Ignore) */
  nodeTaintsPolicy?: 'Honor' | 'Ignore'
  matchLabelKeys?: string[]
}

export type TaintEffect = 'NoSchedule' | 'PreferNoSchedule' | 'NoExecute'

export interface Toleration {
  key?: string
  operator?: 'Exists' | 'Equal'
  value?: string
  effect?: TaintEffect | ''
  tolerationSeconds?: number
}

export interface PodReadinessGate { conditionType: string }

export interface PodSpec {
  containers: Container[]
  initContainers?: Container[]
  volumes?: Volume[]
  nodeSelector?: Record<string, string>
  affinity?: Affinity
  tolerations?: Toleration[]
  restartPolicy?: 'Always' | 'OnFailure' | 'Never'
  terminationGracePeriodSeconds?: number
  activeDeadlineSeconds?: number
  nodeName?: string
  hostNetwork?: boolean
  hostname?: string
  subdomain?: string
  dnsPolicy?: string
  serviceAccountName?: string
  serviceAccount?: string
  automountServiceAccountToken?: boolean
  imagePullSecrets?: Array<{ name?: string }>
  securityContext?: Record<string, unknown>
  priority?: number
  priorityClassName?: string
  schedulerName?: string
  enableServiceLinks?: boolean
  readinessGates?: PodReadinessGate[]
  topologySpreadConstraints?: TopologySpreadConstraint[]
  /** the pod is not scheduled while any is left; they can only be removed */
  schedulingGates?: Array<{ name: string }>
}

export type ConditionStatus = 'True' | 'False' | 'Unknown'

export interface PodCondition {
  type: string
  status: ConditionStatus
  reason?: string
  message?: string
  lastProbeTime?: string | null
  lastTransitionTime?: string
}

export interface ContainerStateWaiting { reason?: string, message?: string }
export interface ContainerStateRunning { startedAt?: string }
export interface ContainerStateTerminated {
  exitCode: number
  signal?: number
  reason?: string
  message?: string
  startedAt?: string
  finishedAt?: string
  containerID?: string
}

/** At most one of the three is set; `{}` in a lastState means none. */
export interface ContainerState {
  waiting?: ContainerStateWaiting
  running?: ContainerStateRunning
  terminated?: ContainerStateTerminated
}

export interface ContainerStatus {
  name: string
  state?: ContainerState
  lastState?: ContainerState
  ready: boolean
  restartCount: number
  image: string
  imageID: string
  containerID?: string
  started?: boolean
}

export type PodPhase = 'Pending' | 'Running' | 'Succeeded' | 'Failed' | 'Unknown'

export interface PodIP { ip: string }

export interface PodStatus {
  phase?: PodPhase
  conditions?: PodCondition[]
  message?: string
  reason?: string
  nominatedNodeName?: string
  hostIP?: string
  hostIPs?: PodIP[]
  podIP?: string
  podIPs?: PodIP[]
  startTime?: string
  initContainerStatuses?: ContainerStatus[]
  containerStatuses?: ContainerStatus[]
  qosClass?: string
}

export type Pod = TypedObject<'v1', 'Pod'> & { spec?: PodSpec, status?: PodStatus }

/** A pod template, as Deployments and ReplicaSets carry it. */
export interface PodTemplateSpec { metadata?: ObjectMeta, spec?: PodSpec }

// ---- Service and Endpoints ---------------------------------------------------

export interface ServicePort {
  name?: string
  protocol?: Protocol
  appProtocol?: string
  port: number
  targetPort?: IntOrString
  nodePort?: number
}

export type ServiceType = 'ClusterIP' | 'NodePort' | 'LoadBalancer' | 'ExternalName'

export interface ServiceSpec {
  type?: ServiceType
  selector?: Record<string, string>
  ports?: ServicePort[]
  clusterIP?: string
  clusterIPs?: string[]
  externalName?: string
  sessionAffinity?: 'None' | 'ClientIP'
  sessionAffinityConfig?: { clientIP?: { timeoutSeconds?: number } }
  externalTrafficPolicy?: string
  internalTrafficPolicy?: string
  externalIPs?: string[]
  loadBalancerIP?: string
  publishNotReadyAddresses?: boolean
  ipFamilies?: string[]
  ipFamilyPolicy?: string
}

export interface ServiceStatus { loadBalancer?: { ingress?: Array<{ ip?: string, hostname?: string }> } }

export type Service = TypedObject<'v1', 'Service'> & { spec?: ServiceSpec, status?: ServiceStatus }

export interface ObjectReference {
  kind?: string
  namespace?: string
  name?: string
  uid?: string
  apiVersion?: string
  resourceVersion?: string
  fieldPath?: string
}

export interface EndpointAddress { ip: string, hostname?: string, nodeName?: string, targetRef?: ObjectReference }

export interface EndpointPort { name?: string, port: number, protocol?: Protocol, appProtocol?: string }

export interface EndpointSubset {
  addresses?: EndpointAddress[]
  notReadyAddresses?: EndpointAddress[]
  ports?: EndpointPort[]
}

export type Endpoints = TypedObject<'v1', 'Endpoints'> & { subsets?: EndpointSubset[] }

// ---- Node and Namespace -----------------------------------------------------

export interface Taint { key: string, value?: string, effect: TaintEffect, timeAdded?: string }

export interface NodeSpec {
  unschedulable?: boolean
  taints?: Taint[]
  podCIDR?: string
  podCIDRs?: string[]
  providerID?: string
}

export interface NodeCondition {
  type: string
  status: ConditionStatus
  reason?: string
  message?: string
  lastHeartbeatTime?: string
  lastTransitionTime?: string
}

export interface NodeAddress { type: 'InternalIP' | 'ExternalIP' | 'Hostname' | string, address: string }

export interface NodeSystemInfo {
  machineID?: string
  kernelVersion?: string
  osImage?: string
  containerRuntimeVersion?: string
  kubeletVersion?: string
  kubeProxyVersion?: string
  operatingSystem?: string
  architecture?: string
}

export interface NodeStatus {
  capacity?: ResourceList
  allocatable?: ResourceList
  conditions?: NodeCondition[]
  addresses?: NodeAddress[]
  nodeInfo?: NodeSystemInfo
  daemonEndpoints?: { kubeletEndpoint?: { Port: number } }
}

export type Node = TypedObject<'v1', 'Node'> & { spec?: NodeSpec, status?: NodeStatus }

export type Namespace = TypedObject<'v1', 'Namespace'> & {
  spec?: { finalizers?: string[] }
  status?: { phase?: 'Active' | 'Terminating' }
}

// ---- ConfigMap, Secret, Event -------------------------------------------

export type ConfigMap = TypedObject<'v1', 'ConfigMap'> & {
  data?: Record<string, string>
  /** base64 in JSON; msgpack may carry bytes */
  binaryData?: Record<string, string | Uint8Array>
  immutable?: boolean
}

export type Secret = TypedObject<'v1', 'Secret'> & {
  /** base64-encoded values */
  data?: Record<string, string>
  /** write-only: merged into data on write */
  stringData?: Record<string, string>
  type?: string
  immutable?: boolean
}

export type Event = TypedObject<'v1', 'Event'> & {
  involvedObject: ObjectReference
  reason?: string
  message?: string
  source?: { component?: string, host?: string }
  firstTimestamp?: string
  lastTimestamp?: string
  eventTime?: string | null
  count?: number
  type?: 'Normal' | 'Warning' | string
  action?: string
  reportingComponent?: string
  reportingInstance?: string
}

/** autoscaling/v1 Scale, the body of the scale subresource. */
export type Scale = TypedObject<'autoscaling/v1', 'Scale'> & {
  spec?: { replicas?: number }
  status?: { replicas: number, selector?: string }
}

// ---- ReplicationController ---------------------------------------------------

export interface ReplicationControllerSpec {
  replicas?: number
  minReadySeconds?: number
  /** a plain label map, not a LabelSelector; defaults to the template's labels */
  selector?: Record<string, string>
  template?: PodTemplateSpec
}

export interface ReplicationControllerStatus {
  replicas: number
  fullyLabeledReplicas?: number
  readyReplicas?: number
  availableReplicas?: number
  observedGeneration?: number
  conditions?: Array<{ type: string, status: ConditionStatus, reason?: string, message?: string, lastTransitionTime?: string }>
}

export type ReplicationController = TypedObject<'v1', 'ReplicationController'> & { spec?: ReplicationControllerSpec, status?: ReplicationControllerStatus }

// ---- Storage -----------------------------------------------------------------

export type PersistentVolumeAccessMode = 'ReadWriteOnce' | 'ReadOnlyMany' | 'ReadWriteMany' | 'ReadWriteOncePod'

export interface PersistentVolumeSpec {
  capacity?: ResourceList
  accessModes?: PersistentVolumeAccessMode[]
  persistentVolumeReclaimPolicy?: 'Retain' | 'Delete' | 'Recycle'
  storageClassName?: string
  volumeMode?: 'Filesystem' | 'Block'
  mountOptions?: string[]
  /** the claim this volume is bound to (or reserved for) */
  claimRef?: { apiVersion?: string, kind?: string, namespace?: string, name?: string, uid?: string, resourceVersion?: string }
  /** the nodes that can reach the volume (required for a local volume) */
  nodeAffinity?: { required?: { nodeSelectorTerms: NodeSelectorTerm[] } }
  /** a directory on one node */
  local?: { path: string, fsType?: string }
  hostPath?: { path: string, type?: string }
}

export interface PersistentVolumeStatus {
  phase?: 'Pending' | 'Available' | 'Bound' | 'Released' | 'Failed'
  message?: string
  reason?: string
  lastPhaseTransitionTime?: string
}

export type PersistentVolume = TypedObject<'v1', 'PersistentVolume'> & { spec?: PersistentVolumeSpec, status?: PersistentVolumeStatus }

export interface PersistentVolumeClaimSpec {
  accessModes?: PersistentVolumeAccessMode[]
  resources?: { requests?: ResourceList, limits?: ResourceList }
  storageClassName?: string
  volumeName?: string
  selector?: LabelSelector
  volumeMode?: 'Filesystem' | 'Block'
}

export interface PersistentVolumeClaimStatus {
  phase?: 'Pending' | 'Bound' | 'Lost'
  accessModes?: PersistentVolumeAccessMode[]
  capacity?: ResourceList
  conditions?: Array<{ type: string, status: string, reason?: string, message?: string, lastTransitionTime?: string }>
}

export type PersistentVolumeClaim = TypedObject<'v1', 'PersistentVolumeClaim'> & { spec?: PersistentVolumeClaimSpec, status?: PersistentVolumeClaimStatus }
