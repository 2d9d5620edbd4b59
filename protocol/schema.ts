// Which fields each kind Shoal stores may have, and of what JSON type: the
// shape check that rejects unknown fields (`spec.containers[0].imagePullSecretz:
// unknown field`) and wrong types before the semantic checks in validate.ts.
// Opaque parts (securityContext, lifecycle, status) are accepted as objects.
// Each kind's entry in ./kinds.ts carries its schema.
// May import: ./status.ts, ./json.ts.
import { isPlainObject } from './json.ts'
import type { JsonObject } from './json.ts'
import { fieldError } from './status.ts'

export type Schema =
  /** `int` is any safe integer (int64 fields); `int32` one that fits Kubernetes' int32 fields */
  | 'string' | 'int' | 'int32' | 'bool' | 'number' | 'intOrString' | 'quantity'
  /** any JSON object, unchecked inside */
  | 'object'
  /** any JSON value */
  | 'any'
  | { fields: Record<string, Schema> }
  | { list: Schema }
  | { map: Schema }

const o = (fields: Record<string, Schema>): Schema => ({ fields })
const l = (item: Schema): Schema => ({ list: item })
const m = (value: Schema): Schema => ({ map: value })

const labelSelector = o({
  matchLabels: m('string'),
  matchExpressions: l(o({ key: 'string', operator: 'string', values: l('string') }))
})

const ownerReference = o({ apiVersion: 'string', kind: 'string', name: 'string', uid: 'string', controller: 'bool', blockOwnerDeletion: 'bool' })

export const objectMeta = o({
  name: 'string',
  generateName: 'string',
  namespace: 'string',
  uid: 'string',
  resourceVersion: 'string',
  generation: 'int',
  creationTimestamp: 'string',
  deletionTimestamp: 'string',
  deletionGracePeriodSeconds: 'int',
  labels: m('string'),
  annotations: m('string'),
  ownerReferences: l(ownerReference),
  finalizers: l('string'),
  managedFields: 'any'
})

const keySelector = o({ name: 'string', key: 'string', optional: 'bool' })
const envVar = o({
  name: 'string',
  value: 'string',
  valueFrom: o({
    configMapKeyRef: keySelector,
    secretKeyRef: keySelector,
    fieldRef: o({ apiVersion: 'string', fieldPath: 'string' }),
    resourceFieldRef: o({ containerName: 'string', resource: 'string', divisor: 'quantity' })
  })
})
const envFrom = o({
  prefix: 'string',
  configMapRef: o({ name: 'string', optional: 'bool' }),
  secretRef: o({ name: 'string', optional: 'bool' })
})
const httpHeader = o({ name: 'string', value: 'string' })
const probe = o({
  httpGet: o({ path: 'string', port: 'intOrString', host: 'string', scheme: 'string', httpHeaders: l(httpHeader) }),
  tcpSocket: o({ port: 'intOrString', host: 'string' }),
  exec: o({ command: l('string') }),
  grpc: o({ port: 'int', service: 'string' }),
  initialDelaySeconds: 'int32',
  periodSeconds: 'int32',
  timeoutSeconds: 'int32',
  failureThreshold: 'int32',
  successThreshold: 'int32',
  terminationGracePeriodSeconds: 'int'
})

export const container = o({
  name: 'string',
  image: 'string',
  command: l('string'),
  args: l('string'),
  workingDir: 'string',
  env: l(envVar),
  envFrom: l(envFrom),
  ports: l(o({ name: 'string', containerPort: 'int', hostPort: 'int', hostIP: 'string', protocol: 'string' })),
  resources: o({ requests: m('quantity'), limits: m('quantity') }),
  volumeMounts: l(o({ name: 'string', mountPath: 'string', subPath: 'string', readOnly: 'bool' })),
  livenessProbe: probe,
  readinessProbe: probe,
  startupProbe: probe,
  restartPolicy: 'string',
  imagePullPolicy: 'string',
  securityContext: 'object',
  lifecycle: 'object',
  stdin: 'bool',
  tty: 'bool',
  terminationMessagePath: 'string',
  terminationMessagePolicy: 'string'
})

const keyToPath = l(o({ key: 'string', path: 'string', mode: 'int32' }))
const downwardFiles = l(o({
  path: 'string',
  fieldRef: o({ apiVersion: 'string', fieldPath: 'string' }),
  resourceFieldRef: o({ containerName: 'string', resource: 'string', divisor: 'quantity' }),
  mode: 'int32'
}))
const volume = o({
  name: 'string',
  emptyDir: o({ medium: 'string', sizeLimit: 'quantity' }),
  configMap: o({ name: 'string', items: keyToPath, defaultMode: 'int32', optional: 'bool' }),
  secret: o({ secretName: 'string', items: keyToPath, defaultMode: 'int32', optional: 'bool' }),
  hostPath: o({ path: 'string', type: 'string' }),
  downwardAPI: o({ items: downwardFiles, defaultMode: 'int32' }),
  projected: o({
    sources: l(o({
      configMap: o({ name: 'string', items: keyToPath, optional: 'bool' }),
      secret: o({ name: 'string', items: keyToPath, optional: 'bool' }),
      downwardAPI: o({ items: downwardFiles }),
      serviceAccountToken: o({ audience: 'string', expirationSeconds: 'int', path: 'string' })
    })),
    defaultMode: 'int32'
  })
})

const nodeSelectorTerm = o({
  matchExpressions: l(o({ key: 'string', operator: 'string', values: l('string') })),
  matchFields: l(o({ key: 'string', operator: 'string', values: l('string') }))
})
const podAffinityTerm = o({
  labelSelector,
  namespaces: l('string'),
  namespaceSelector: labelSelector,
  topologyKey: 'string',
  matchLabelKeys: l('string'),
  mismatchLabelKeys: l('string')
})
const podAffinity = o({
  requiredDuringSchedulingIgnoredDuringExecution: l(podAffinityTerm),
  preferredDuringSchedulingIgnoredDuringExecution: l(o({ weight: 'int32', podAffinityTerm }))
})
const topologySpreadConstraint = o({
  maxSkew: 'int32',
  topologyKey: 'string',
  whenUnsatisfiable: 'string',
  labelSelector,
  minDomains: 'int32',
  nodeAffinityPolicy: 'string',
  nodeTaintsPolicy: 'string',
  matchLabelKeys: l('string')
})
const affinity = o({
  nodeAffinity: o({
    requiredDuringSchedulingIgnoredDuringExecution: o({ nodeSelectorTerms: l(nodeSelectorTerm) }),
    preferredDuringSchedulingIgnoredDuringExecution: l(o({ weight: 'int32', preference: nodeSelectorTerm }))
  }),
  podAffinity,
  podAntiAffinity: podAffinity
})
const toleration = o({ key: 'string', operator: 'string', value: 'string', effect: 'string', tolerationSeconds: 'int' })

export const podSpec = o({
  containers: l(container),
  initContainers: l(container),
  volumes: l(volume),
  nodeSelector: m('string'),
  affinity,
  tolerations: l(toleration),
  restartPolicy: 'string',
  terminationGracePeriodSeconds: 'int',
  activeDeadlineSeconds: 'int',
  nodeName: 'string',
  hostNetwork: 'bool',
  hostname: 'string',
  subdomain: 'string',
  dnsPolicy: 'string',
  serviceAccountName: 'string',
  serviceAccount: 'string',
  automountServiceAccountToken: 'bool',
  imagePullSecrets: l(o({ name: 'string' })),
  securityContext: 'object',
  priority: 'int32',
  priorityClassName: 'string',
  schedulerName: 'string',
  enableServiceLinks: 'bool',
  topologySpreadConstraints: l(topologySpreadConstraint),
  schedulingGates: l(o({ name: 'string' }))
})

const podTemplate = o({ metadata: objectMeta, spec: podSpec })

const serviceSpec = o({
  type: 'string',
  selector: m('string'),
  ports: l(o({ name: 'string', port: 'int', targetPort: 'intOrString', protocol: 'string', nodePort: 'int', appProtocol: 'string' })),
  clusterIP: 'string',
  clusterIPs: l('string'),
  sessionAffinity: 'string',
  sessionAffinityConfig: o({ clientIP: o({ timeoutSeconds: 'int' }) }),
  externalTrafficPolicy: 'string',
  internalTrafficPolicy: 'string',
  externalIPs: l('string'),
  loadBalancerIP: 'string',
  publishNotReadyAddresses: 'bool',
  ipFamilies: l('string'),
  ipFamilyPolicy: 'string'
})

const deploymentSpec = o({
  replicas: 'int32',
  selector: labelSelector,
  template: podTemplate,
  strategy: o({ type: 'string', rollingUpdate: o({ maxSurge: 'intOrString', maxUnavailable: 'intOrString' }) }),
  minReadySeconds: 'int32',
  revisionHistoryLimit: 'int32',
  progressDeadlineSeconds: 'int32',
  paused: 'bool'
})

const replicaSetSpec = o({ replicas: 'int32', selector: labelSelector, template: podTemplate, minReadySeconds: 'int32' })

const endpointAddress = o({ ip: 'string', hostname: 'string', nodeName: 'string', targetRef: 'object' })
const endpointSubset = o({
  addresses: l(endpointAddress),
  notReadyAddresses: l(endpointAddress),
  ports: l(o({ name: 'string', port: 'int', protocol: 'string', appProtocol: 'string' }))
})

const top = { apiVersion: 'string', kind: 'string', metadata: objectMeta } as const

// The top-level schema of each kind, carried by its entry in ./kinds.ts.
// Status is a free-form object everywhere: only Shoal's components write it.
export const namespaceSchema = o({ ...top, spec: o({ finalizers: l('string') }), status: 'object' })
export const nodeSchema = o({
  ...top,
  spec: o({
    unschedulable: 'bool',
    taints: l(o({ key: 'string', value: 'string', effect: 'string', timeAdded: 'string' })),
    podCIDR: 'string',
    podCIDRs: l('string'),
    providerID: 'string'
  }),
  status: 'object'
})
export const podSchema = o({ ...top, spec: podSpec, status: 'object' })
export const serviceSchema = o({ ...top, spec: serviceSpec, status: 'object' })
export const endpointsSchema = o({ ...top, subsets: l(endpointSubset) })
export const configMapSchema = o({ ...top, data: m('string'), binaryData: m('any'), immutable: 'bool' })
export const secretSchema = o({ ...top, data: m('string'), stringData: m('string'), type: 'string', immutable: 'bool' })
export const eventSchema = o({
  ...top,
  involvedObject: o({ kind: 'string', namespace: 'string', name: 'string', uid: 'string', apiVersion: 'string', resourceVersion: 'string', fieldPath: 'string' }),
  reason: 'string',
  message: 'string',
  source: o({ component: 'string', host: 'string' }),
  firstTimestamp: 'string',
  lastTimestamp: 'string',
  eventTime: 'string',
  count: 'int32',
  type: 'string',
  action: 'string',
  related: 'object',
  reportingComponent: 'string',
  reportingInstance: 'string',
  series: 'object'
})
export const deploymentSchema = o({ ...top, spec: deploymentSpec, status: 'object' })
export const replicaSetSchema = o({ ...top, spec: replicaSetSpec, status: 'object' })

const jobSpec = o({
  parallelism: 'int32',
  completions: 'int32',
  activeDeadlineSeconds: 'int',
  podFailurePolicy: o({
    rules: l(o({
      action: 'string',
      onExitCodes: o({ containerName: 'string', operator: 'string', values: l('int32') }),
      onPodConditions: l(o({ type: 'string', status: 'string' }))
    }))
  }),
  successPolicy: o({ rules: l(o({ succeededIndexes: 'string', succeededCount: 'int32' })) }),
  backoffLimit: 'int32',
  backoffLimitPerIndex: 'int32',
  maxFailedIndexes: 'int32',
  selector: labelSelector,
  manualSelector: 'bool',
  template: podTemplate,
  ttlSecondsAfterFinished: 'int32',
  completionMode: 'string',
  suspend: 'bool',
  podReplacementPolicy: 'string',
  managedBy: 'string'
})
export const jobSchema = o({ ...top, spec: jobSpec, status: 'object' })
export const cronJobSchema = o({
  ...top,
  spec: o({
    schedule: 'string',
    timeZone: 'string',
    startingDeadlineSeconds: 'int',
    concurrencyPolicy: 'string',
    suspend: 'bool',
    jobTemplate: o({ metadata: objectMeta, spec: jobSpec }),
    successfulJobsHistoryLimit: 'int32',
    failedJobsHistoryLimit: 'int32'
  }),
  status: 'object'
})
export const daemonSetSchema = o({
  ...top,
  spec: o({
    selector: labelSelector,
    template: podTemplate,
    updateStrategy: o({ type: 'string', rollingUpdate: o({ maxUnavailable: 'intOrString', maxSurge: 'intOrString' }) }),
    minReadySeconds: 'int32',
    revisionHistoryLimit: 'int32'
  }),
  status: 'object'
})
export const statefulSetSchema = o({
  ...top,
  spec: o({
    replicas: 'int32',
    selector: labelSelector,
    template: podTemplate,
    volumeClaimTemplates: l('object'),
    serviceName: 'string',
    podManagementPolicy: 'string',
    updateStrategy: o({ type: 'string', rollingUpdate: o({ partition: 'int32', maxUnavailable: 'intOrString' }) }),
    revisionHistoryLimit: 'int32',
    minReadySeconds: 'int32',
    persistentVolumeClaimRetentionPolicy: o({ whenDeleted: 'string', whenScaled: 'string' }),
    ordinals: o({ start: 'int32' })
  }),
  status: 'object'
})
export const controllerRevisionSchema = o({ ...top, data: 'any', revision: 'int' })
export const replicationControllerSchema = o({
  ...top,
  spec: o({ replicas: 'int32', minReadySeconds: 'int32', selector: m('string'), template: podTemplate }),
  status: 'object'
})
export const podDisruptionBudgetSchema = o({
  ...top,
  spec: o({ minAvailable: 'intOrString', maxUnavailable: 'intOrString', selector: labelSelector, unhealthyPodEvictionPolicy: 'string' }),
  status: 'object'
})

const QUANTITY = /^[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+|Ki|Mi|Gi|Ti|Pi|Ei|n|u|m|k|M|G|T|P|E)?$/

function typeName (s: Schema): string {
  switch (s) {
    case 'string': return 'string'
    case 'int': return 'integer'
    case 'int32': return 'int32'
    case 'bool': return 'boolean'
    case 'number': return 'number'
    case 'intOrString': return 'integer or string'
    case 'quantity': return 'quantity'
    case 'object': return 'object'
    case 'any': return 'any'
  }
  if ('fields' in s || 'map' in s) return 'object'
  return 'list'
}

/** A JSON object, and not bytes (msgpack decodes binary to a Uint8Array, an object too). */
function isObjectValue (v: unknown): v is JsonObject {
  return isPlainObject(v) && !(v instanceof Uint8Array)
}

const INT32_MIN = -2147483648
const INT32_MAX = 2147483647

/**
 * Appends to `errors` every unknown field and every value of the wrong JSON
 * type under `value`, with Kubernetes-style paths (`spec.containers[0].name`).
 * A null field counts as absent (Kubernetes drops nulls on decode); a null
 * item of a list is an error, as Kubernetes refuses it.
 */
export function checkShape (value: unknown, schema: Schema, path: string, errors: string[]): void {
  if (value === null || value === undefined || schema === 'any') return
  const wrong = (): void => { errors.push(fieldError(path, 'Invalid', value, `must be of type ${typeName(schema)}`)) }
  switch (schema) {
    case 'string': if (typeof value !== 'string') wrong(); return
    case 'int': if (!Number.isSafeInteger(value)) wrong(); return
    case 'int32':
      if (!Number.isSafeInteger(value)) errors.push(fieldError(path, 'Invalid', value, 'must be of type integer'))
      else if ((value as number) < INT32_MIN || (value as number) > INT32_MAX) wrong()
      return
    case 'bool': if (typeof value !== 'boolean') wrong(); return
    case 'number': if (typeof value !== 'number' || !Number.isFinite(value)) wrong(); return
    case 'intOrString': if (typeof value !== 'string' && !Number.isSafeInteger(value)) wrong(); return
    case 'quantity':
      if (typeof value === 'number' ? !Number.isFinite(value) : typeof value !== 'string' || !QUANTITY.test(value)) {
        errors.push(fieldError(path, 'Invalid', value, "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"))
      }
      return
    case 'object': if (!isObjectValue(value)) wrong(); return
  }
  if ('list' in schema) {
    if (!Array.isArray(value)) { wrong(); return }
    value.forEach((item, i) => {
      if (item === null || item === undefined) errors.push(fieldError(`${path}[${i}]`, 'Invalid', null, `must be of type ${typeName(schema.list)}`))
      else checkShape(item, schema.list, `${path}[${i}]`, errors)
    })
    return
  }
  if (!isObjectValue(value)) { wrong(); return }
  if ('map' in schema) {
    for (const [k, v] of Object.entries(value)) checkShape(v, schema.map, `${path}[${k}]`, errors)
    return
  }
  for (const [k, v] of Object.entries(value)) {
    const sub = path === '' ? k : `${path}.${k}`
    const field = schema.fields[k]
    if (field === undefined) errors.push(fieldError(sub, 'Unknown'))
    else checkShape(v, field, sub, errors)
  }
}

const accessModes = l('string')
export const persistentVolumeSchema = o({
  ...top,
  spec: o({
    capacity: m('quantity'),
    accessModes,
    persistentVolumeReclaimPolicy: 'string',
    storageClassName: 'string',
    volumeMode: 'string',
    mountOptions: l('string'),
    claimRef: o({ apiVersion: 'string', kind: 'string', namespace: 'string', name: 'string', uid: 'string', resourceVersion: 'string', fieldPath: 'string' }),
    nodeAffinity: o({ required: o({ nodeSelectorTerms: l(nodeSelectorTerm) }) }),
    local: o({ path: 'string', fsType: 'string' }),
    hostPath: o({ path: 'string', type: 'string' })
  }),
  status: 'object'
})
export const persistentVolumeClaimSchema = o({
  ...top,
  spec: o({
    accessModes,
    resources: o({ requests: m('quantity'), limits: m('quantity') }),
    storageClassName: 'string',
    volumeName: 'string',
    selector: labelSelector,
    volumeMode: 'string'
  }),
  status: 'object'
})
export const storageClassSchema = o({
  ...top,
  provisioner: 'string',
  parameters: m('string'),
  reclaimPolicy: 'string',
  volumeBindingMode: 'string',
  allowVolumeExpansion: 'bool',
  mountOptions: l('string'),
  allowedTopologies: l(o({ matchLabelExpressions: l(o({ key: 'string', values: l('string') })) }))
})
