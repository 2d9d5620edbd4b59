// fast-check generators of realistic Kubernetes objects for the property
// tests and fuzzers (test/unit/determinism.test.ts, test/integration/api-fuzz.test.ts):
// a manifest of every kind in protocol/kinds.ts, mostly valid and drawn from
// small pools of names, namespaces, labels and uids so that sequences of
// writes meet each other (updates find what creates made, owner references
// name real uids, selectors match labels); plus strings that are hard on
// parsers, nesting builders and mutations that turn a good object bad.
import fc from 'fast-check'

export type Obj = Record<string, unknown>

/** Names shared by every kind, so that writes collide; `x.y` is a subdomain but not a label. */
export const NAMES = ['web', 'db', 'a', 'b-1', 'x.y'] as const
/** Namespaces: the bootstrapped ones, one a test may create (team), one that never exists (ghost). */
export const NAMESPACES = ['default', 'team', 'kube-system', 'ghost'] as const
/** The uids creates are given, so that owner references and preconditions can name them. */
export const UIDS = ['uid-1', 'uid-2', 'uid-3', 'uid-4', 'uid-5'] as const

const pick = <T>(xs: readonly T[]): fc.Arbitrary<T> => fc.constantFrom(...xs)
/** One of `good` nine times in ten, else one of `bad`: most objects stay valid, and every field is sometimes wrong. */
const mostly = <T, U>(good: readonly T[], bad: readonly U[]): fc.Arbitrary<T | U> => fc.oneof({ weight: 9, arbitrary: pick(good) }, { weight: 1, arbitrary: pick(bad) })

/** Strings that break parsers: lone surrogates, NUL, RTL marks, emoji, combining marks, `..`, `__proto__`. */
export const nastyString: fc.Arbitrary<string> = fc.oneof(
  { weight: 3, arbitrary: fc.string({ unit: 'binary', maxLength: 12 }) },
  { weight: 2, arbitrary: pick(['\uD800', 'a\uDC00b', '\u0000', '\u202Eevil', '🐳🐳', 'e\u0301', '..', '.', '__proto__', 'constructor', '%zz', '%', '/', 'a/b', '\n', ' ', '', '-', 'A', 'ä', '𝔘']) },
  { weight: 1, arbitrary: fc.string({ unit: fc.integer({ min: 0, max: 0xffff }).map(c => String.fromCharCode(c)), maxLength: 6 }) }
)

/** A name: mostly from the pool, sometimes invalid, overlong or strange. */
export const nameArb: fc.Arbitrary<string> = fc.oneof(
  { weight: 30, arbitrary: pick(NAMES) },
  { weight: 1, arbitrary: pick(['Bad_Name', '', '-x', 'x-', 'a'.repeat(64), 'a'.repeat(254), '0abc']) },
  { weight: 1, arbitrary: nastyString }
)

export const namespaceArb: fc.Arbitrary<string> = fc.oneof(
  { weight: 30, arbitrary: pick(NAMESPACES) },
  { weight: 1, arbitrary: nastyString }
)

const labelValue = fc.oneof({ weight: 40, arbitrary: pick(['web', 'db', 'prod', 'v1', '']) }, { weight: 1, arbitrary: nastyString })
const labelKey = fc.oneof({ weight: 40, arbitrary: pick(['app', 'tier', 'example.com/team', 'env']) }, { weight: 1, arbitrary: nastyString })
export const labelsArb: fc.Arbitrary<Record<string, string>> = fc.dictionary(labelKey, labelValue, { maxKeys: 3, noNullPrototype: true })

const port = mostly([80, 443, 8080, 53, 9090], [0, -1, 65536, 1.5, 2 ** 31])
const intOrString = fc.oneof(port, mostly(['http', 'metrics'], ['Bad Name', '']))
const quantity = mostly(['100m', '1', '0.5', '128Mi', '2Gi', '1e3'], ['lots', '', '1.2.3', 5])

const probe = fc.oneof(
  fc.record({ httpGet: fc.record({ path: pick(['/', '/healthz']), port: intOrString }), periodSeconds: mostly([1, 10, 30], [-1]) }, { requiredKeys: ['httpGet'] }),
  fc.record({ tcpSocket: fc.record({ port: intOrString }) }),
  fc.record({ exec: fc.record({ command: fc.array(pick(['cat', '/tmp/ready', 'true']), { maxLength: 2 }) }) })
).chain(p => fc.oneof({ weight: 20, arbitrary: fc.constant<Obj>(p) }, { weight: 1, arbitrary: fc.constant<Obj>({ ...p, tcpSocket: { port: 1 } }) }, { weight: 1, arbitrary: fc.constant<Obj>({}) }))

const container = fc.record({
  name: mostly(['web', 'main', 'sidecar'], ['Bad', '']),
  image: mostly(['nginx:1.25', 'busybox', 'busybox:latest', 'registry.local:5000/app@sha256:ab12'], ['', ' ']),
  command: fc.array(pick(['sh', '-c', 'sleep 3600', 'echo ü']), { maxLength: 3 }),
  ports: fc.array(fc.record({ containerPort: port, name: mostly(['http', 'metrics'], ['Bad_Port']), protocol: mostly(['TCP', 'UDP', 'SCTP'], ['ICMP']) }, { requiredKeys: ['containerPort'] }), { maxLength: 1 }),
  env: fc.array(fc.record({ name: mostly(['MODE', 'PORT'], ['']), value: labelValue }, { requiredKeys: ['name'] }), { maxLength: 2 }),
  resources: fc.record({ requests: fc.dictionary(pick(['cpu', 'memory']), quantity, { maxKeys: 2, noNullPrototype: true }), limits: fc.dictionary(pick(['cpu', 'memory']), quantity, { maxKeys: 2, noNullPrototype: true }) }, { requiredKeys: [] }),
  volumeMounts: fc.oneof({ weight: 6, arbitrary: fc.constant([]) }, { weight: 1, arbitrary: fc.array(fc.record({ name: mostly(['data'], ['config', 'missing']), mountPath: mostly(['/data'], ['']) }), { maxLength: 1 }) }),
  readinessProbe: probe,
  imagePullPolicy: mostly(['Always', 'IfNotPresent', 'Never'], ['Sometimes']),
  securityContext: fc.record({ runAsUser: fc.integer({ min: 0, max: 1000 }), privileged: fc.boolean() }, { requiredKeys: [] })
}, { requiredKeys: ['name', 'image'] })

const volume = fc.oneof(
  fc.record({ name: pick(['data', 'scratch']), emptyDir: fc.record({ sizeLimit: quantity }, { requiredKeys: [] }) }),
  fc.record({ name: pick(['config', 'data']), configMap: fc.record({ name: pick(NAMES), defaultMode: mostly([0o644, 0o400, 0o777], [0o1777, -1]), items: fc.array(fc.record({ key: pick(['a', 'b']), path: mostly(['a.txt', 'sub/b'], ['../x', '/abs', 'a/../../x']) }), { maxLength: 2 }) }, { requiredKeys: ['name'] }) }),
  fc.record({ name: pick(['secret', 'config']), secret: fc.record({ secretName: pick(NAMES), optional: fc.boolean() }, { requiredKeys: ['secretName'] }) }),
  fc.record({ name: pick(['host']), hostPath: fc.record({ path: mostly(['/var/log', '/'], ['relative/path', '']), type: pick(['Directory', 'DirectoryOrCreate', '']) }, { requiredKeys: ['path'] }) })
)

export const podSpecArb: fc.Arbitrary<Obj> = fc.record({
  containers: fc.array(container, { minLength: 1, maxLength: 2 }),
  initContainers: fc.array(container, { maxLength: 1 }),
  volumes: fc.array(volume, { maxLength: 2 }),
  nodeName: pick(['p1', 'p2', 'node-a']),
  nodeSelector: labelsArb,
  restartPolicy: mostly(['Always', 'Always', 'Always', 'OnFailure', 'Never'], ['Sometimes']),
  terminationGracePeriodSeconds: fc.integer({ min: 0, max: 60 }),
  tolerations: fc.array(fc.record({ key: pick(['node.kubernetes.io/not-ready', 'dedicated']), operator: mostly(['Exists', 'Equal'], ['Maybe']), effect: pick(['NoSchedule', 'NoExecute']) }, { requiredKeys: [] }), { maxLength: 1 }),
  hostNetwork: fc.boolean()
}, { requiredKeys: ['containers'] })

const ownerRef = fc.record({ apiVersion: pick(['apps/v1', 'v1']), kind: pick(['Deployment', 'ReplicaSet', 'ConfigMap']), name: pick(NAMES), uid: pick(UIDS), controller: fc.boolean(), blockOwnerDeletion: fc.boolean() }, { requiredKeys: ['apiVersion', 'kind', 'name', 'uid'] })

/** metadata for a namespaced (`namespace` set) or cluster-scoped object */
function metaArb (namespaced: boolean, name: fc.Arbitrary<string> = nameArb): fc.Arbitrary<Obj> {
  return fc.record({
    name,
    ...(namespaced ? { namespace: namespaceArb } : {}),
    labels: labelsArb,
    annotations: fc.dictionary(labelKey, fc.oneof(labelValue, fc.string({ maxLength: 40 })), { maxKeys: 2, noNullPrototype: true }),
    ownerReferences: fc.array(ownerRef, { maxLength: 2 }),
    finalizers: fc.array(pick(['example.com/hold', 'foregroundDeletion', 'kubernetes']), { maxLength: 1 }),
    generateName: pick(['web-', 'job-']),
    uid: pick(UIDS)
  }, { requiredKeys: ['name', ...(namespaced ? ['namespace' as const] : [])] })
}

const selector = fc.oneof(
  { weight: 12, arbitrary: fc.record({ matchLabels: fc.constant({ app: 'web' }) }) },
  { weight: 1, arbitrary: fc.record({ matchLabels: labelsArb, matchExpressions: fc.array(fc.record({ key: labelKey, operator: pick(['In', 'NotIn', 'Exists', 'DoesNotExist', 'Near']), values: fc.array(labelValue, { maxLength: 2 }) }), { maxLength: 1 }) }, { requiredKeys: [] }) }
)

function workloadSpec (deployment: boolean): fc.Arbitrary<Obj> {
  return fc.record({
    // not 2 ** 31 - 1: a valid count that makes the ReplicaSet controller create pods without end (no quota yet), which would swamp the live fuzzer
    replicas: fc.oneof({ weight: 12, arbitrary: fc.integer({ min: 0, max: 5 }) }, { weight: 1, arbitrary: pick([-1, 2 ** 31, 1.5]) }),
    selector,
    template: fc.record({ metadata: fc.record({ labels: fc.oneof({ weight: 12, arbitrary: fc.constant({ app: 'web' }) }, { weight: 1, arbitrary: labelsArb }) }), spec: podSpecArb.map(spec => ({ ...spec, restartPolicy: 'Always' })) }),
    minReadySeconds: mostly([0, 5], [-1]),
    ...(deployment
      ? {
          strategy: fc.oneof(
            fc.constant({ type: 'Recreate' }),
            fc.record({ type: fc.constant('RollingUpdate'), rollingUpdate: fc.record({ maxSurge: fc.oneof(mostly(['25%', '0%'], ['150%', 'x']), fc.integer({ min: 0, max: 2 })), maxUnavailable: fc.oneof(pick(['25%', '0%']), fc.integer({ min: 1, max: 2 })) }) })
          ),
          revisionHistoryLimit: mostly([0, 10], [-1]),
          paused: fc.boolean()
        }
      : {})
  }, { requiredKeys: ['selector', 'template'] })
}

const b64 = mostly(['aGVsbG8=', 'd29ybGQ=', ''], ['not base64!', 'YQ'])
const dataKey = fc.oneof({ weight: 40, arbitrary: pick(['a', 'b', 'config.yaml', '.env']) }, { weight: 1, arbitrary: pick(['.', '..', 'a/b', '']) }, { weight: 1, arbitrary: nastyString })

/** A manifest of each kind Shoal serves, keyed by kind. */
export const manifestArbs: Record<string, fc.Arbitrary<Obj>> = {
  Namespace: fc.record({ apiVersion: fc.constant('v1'), kind: fc.constant('Namespace'), metadata: metaArb(false, fc.oneof({ weight: 6, arbitrary: pick(['team', 'ghost', 'other']) }, { weight: 1, arbitrary: nameArb })), spec: fc.record({ finalizers: fc.array(pick(['kubernetes']), { maxLength: 1 }) }) }, { requiredKeys: ['apiVersion', 'kind', 'metadata'] }),
  Node: fc.record({
    apiVersion: fc.constant('v1'),
    kind: fc.constant('Node'),
    metadata: metaArb(false, mostly(['node-a', 'node-b', 'p1'], ['Bad_Node'])),
    spec: fc.record({ unschedulable: fc.boolean(), podCIDR: mostly(['10.244.1.0/24', '10.244.2.0/24'], ['nonsense']), taints: fc.array(fc.record({ key: mostly(['dedicated'], ['bad key!']), value: labelValue, effect: mostly(['NoSchedule', 'NoExecute'], ['Sometimes']) }, { requiredKeys: ['key'] }), { maxLength: 1 }) }, { requiredKeys: [] }),
    status: fc.record({ capacity: fc.record({ cpu: quantity, memory: quantity, pods: pick(['110']) }), conditions: fc.array(fc.record({ type: pick(['Ready']), status: pick(['True', 'False', 'Unknown']) }), { maxLength: 1 }) }, { requiredKeys: [] })
  }, { requiredKeys: ['apiVersion', 'kind', 'metadata'] }),
  Pod: fc.record({ apiVersion: fc.constant('v1'), kind: fc.constant('Pod'), metadata: metaArb(true), spec: podSpecArb }, { requiredKeys: ['apiVersion', 'kind', 'metadata', 'spec'] }),
  Service: fc.record({
    apiVersion: fc.constant('v1'),
    kind: fc.constant('Service'),
    metadata: metaArb(true),
    spec: fc.record({
      type: mostly(['ClusterIP', 'ClusterIP', 'NodePort', 'LoadBalancer'], ['ExternalName']),
      selector: labelsArb,
      ports: fc.array(fc.record({ name: mostly(['http', 'https'], ['Bad']), port, targetPort: intOrString, protocol: pick(['TCP', 'UDP']), nodePort: mostly([30080, 30081], [29999, 32768]) }, { requiredKeys: ['port'] }), { minLength: 1, maxLength: 2 }),
      clusterIP: mostly(['None', '10.96.0.10', '10.96.0.11', ''], ['999.1.1.1', '10.0.0.1']),
      sessionAffinity: pick(['None', 'ClientIP'])
    }, { requiredKeys: ['ports'] })
  }, { requiredKeys: ['apiVersion', 'kind', 'metadata', 'spec'] }).chain(svc => fc.oneof({ weight: 9, arbitrary: fc.constant(withoutStrayNodePorts(svc)) }, { weight: 1, arbitrary: fc.constant(svc) })),
  Endpoints: fc.record({ apiVersion: fc.constant('v1'), kind: fc.constant('Endpoints'), metadata: metaArb(true), subsets: fc.array(fc.record({ addresses: fc.array(fc.record({ ip: pick(['10.244.1.5', '10.244.2.7', 'bogus']), nodeName: pick(['p1', 'p2']) }, { requiredKeys: ['ip'] }), { maxLength: 2 }), ports: fc.array(fc.record({ name: pick(['http']), port }, { requiredKeys: ['port'] }), { maxLength: 1 }) }), { maxLength: 1 }) }, { requiredKeys: ['apiVersion', 'kind', 'metadata'] }),
  ConfigMap: fc.record({ apiVersion: fc.constant('v1'), kind: fc.constant('ConfigMap'), metadata: metaArb(true), data: fc.dictionary(dataKey, fc.oneof(labelValue, fc.string({ maxLength: 60 })), { maxKeys: 3, noNullPrototype: true }), binaryData: fc.dictionary(dataKey, b64, { maxKeys: 2, noNullPrototype: true }), immutable: fc.boolean() }, { requiredKeys: ['apiVersion', 'kind', 'metadata'] }),
  Secret: fc.record({ apiVersion: fc.constant('v1'), kind: fc.constant('Secret'), metadata: metaArb(true), data: fc.dictionary(dataKey, b64, { maxKeys: 3, noNullPrototype: true }), stringData: fc.dictionary(dataKey, labelValue, { maxKeys: 2, noNullPrototype: true }), type: mostly(['Opaque', 'kubernetes.io/tls'], ['']), immutable: fc.boolean() }, { requiredKeys: ['apiVersion', 'kind', 'metadata'] }),
  Event: fc.record({ apiVersion: fc.constant('v1'), kind: fc.constant('Event'), metadata: metaArb(true), involvedObject: fc.record({ kind: mostly(['Pod', 'Deployment'], ['']), name: pick(NAMES), namespace: pick(NAMESPACES), uid: pick(UIDS) }, { requiredKeys: ['kind'] }), reason: pick(['Scheduled', 'Pulled', 'BackOff']), message: fc.string({ maxLength: 40 }), type: mostly(['Normal', 'Warning'], ['Fatal']), count: mostly([1, 3], [-1]) }, { requiredKeys: ['apiVersion', 'kind', 'metadata', 'involvedObject'] }),
  Deployment: fc.record({ apiVersion: fc.constant('apps/v1'), kind: fc.constant('Deployment'), metadata: metaArb(true), spec: workloadSpec(true) }, { requiredKeys: ['apiVersion', 'kind', 'metadata', 'spec'] }),
  ReplicaSet: fc.record({ apiVersion: fc.constant('apps/v1'), kind: fc.constant('ReplicaSet'), metadata: metaArb(true), spec: workloadSpec(false) }, { requiredKeys: ['apiVersion', 'kind', 'metadata', 'spec'] }),
  ...batchAndSetArbs()
}

/** A Job's spec: small counts (the live fuzzer runs what it makes), the modes and policies, sometimes wrong. */
function jobSpec (): fc.Arbitrary<Obj> {
  return fc.record({
    completions: mostly([1, 2, 3], [-1]),
    parallelism: mostly([1, 2], [-1, 1.5]),
    backoffLimit: mostly([0, 2, 6], [-1]),
    activeDeadlineSeconds: mostly([30, 600], [0]),
    ttlSecondsAfterFinished: mostly([0, 60], [-1]),
    completionMode: mostly(['NonIndexed', 'Indexed'], ['Sometimes']),
    suspend: fc.boolean(),
    podFailurePolicy: fc.record({ rules: fc.array(fc.record({ action: mostly(['FailJob', 'Ignore', 'Count'], ['Explode']), onExitCodes: fc.record({ operator: pick(['In', 'NotIn']), values: fc.array(fc.integer({ min: 0, max: 3 }), { maxLength: 2 }) }) }), { maxLength: 1 }) }),
    template: fc.record({ metadata: fc.record({ labels: fc.constant({ app: 'web' }) }), spec: podSpecArb.chain(spec => mostly(['Never', 'OnFailure'], ['Always']).map(restartPolicy => ({ ...spec, restartPolicy }))) })
  }, { requiredKeys: ['template'] })
}

/** Jobs, CronJobs, DaemonSets, StatefulSets, ReplicationControllers, PodDisruptionBudgets and ControllerRevisions. */
function batchAndSetArbs (): Record<string, fc.Arbitrary<Obj>> {
  const top = (apiVersion: string, kind: string): { apiVersion: fc.Arbitrary<string>, kind: fc.Arbitrary<string>, metadata: fc.Arbitrary<Obj> } =>
    ({ apiVersion: fc.constant(apiVersion), kind: fc.constant(kind), metadata: metaArb(true) })
  const required = { requiredKeys: ['apiVersion', 'kind', 'metadata', 'spec'] as Array<'apiVersion' | 'kind' | 'metadata' | 'spec'> }
  const podTemplate = fc.record({ metadata: fc.record({ labels: fc.constant({ app: 'web' }) }), spec: podSpecArb.map(spec => ({ ...spec, restartPolicy: 'Always' })) })
  return {
    Job: fc.record({ ...top('batch/v1', 'Job'), spec: jobSpec() }, required),
    CronJob: fc.record({
      ...top('batch/v1', 'CronJob'),
      spec: fc.record({
        schedule: mostly(['*/5 * * * *', '@hourly', '0 3 * * 1-5'], ['* * * * * *', 'TZ=UTC 0 * * * *', '61 * * * *', '']),
        timeZone: mostly(['Etc/UTC', 'Europe/Berlin'], ['Mars/Olympus']),
        concurrencyPolicy: mostly(['Allow', 'Forbid', 'Replace'], ['Sometimes']),
        suspend: fc.boolean(),
        startingDeadlineSeconds: mostly([10, 200], [-5]),
        successfulJobsHistoryLimit: mostly([0, 3], [-1]),
        jobTemplate: fc.record({ spec: jobSpec() })
      }, { requiredKeys: ['schedule', 'jobTemplate'] })
    }, required),
    DaemonSet: fc.record({
      ...top('apps/v1', 'DaemonSet'),
      spec: fc.record({
        selector,
        template: podTemplate,
        updateStrategy: fc.oneof(fc.constant({ type: 'OnDelete' }), fc.record({ type: fc.constant('RollingUpdate'), rollingUpdate: fc.record({ maxUnavailable: mostly([1, '10%'], [0, 'x']), maxSurge: mostly([0], [1, '200%']) }) }))
      }, { requiredKeys: ['selector', 'template'] })
    }, required),
    StatefulSet: fc.record({
      ...top('apps/v1', 'StatefulSet'),
      spec: fc.record({
        replicas: mostly([0, 1, 3], [-1]),
        serviceName: pick(['web', 'db']),
        selector,
        template: podTemplate,
        podManagementPolicy: mostly(['OrderedReady', 'Parallel'], ['Random']),
        updateStrategy: fc.record({ type: mostly(['RollingUpdate', 'OnDelete'], ['Now']), rollingUpdate: fc.record({ partition: mostly([0, 2], [-1]) }) }, { requiredKeys: ['type'] }),
        volumeClaimTemplates: fc.array(fc.constant({ metadata: { name: 'data' } }), { maxLength: 1 })
      }, { requiredKeys: ['selector', 'template'] })
    }, required),
    ReplicationController: fc.record({
      ...top('v1', 'ReplicationController'),
      spec: fc.record({ replicas: mostly([0, 1, 2], [-1]), selector: fc.oneof(fc.constant({ app: 'web' }), labelsArb), template: podTemplate }, { requiredKeys: ['template'] })
    }, required),
    PodDisruptionBudget: fc.record({
      ...top('policy/v1', 'PodDisruptionBudget'),
      spec: fc.record({ minAvailable: mostly([1, '50%'], ['x', -1]), maxUnavailable: mostly([1, '25%'], ['101%']), selector, unhealthyPodEvictionPolicy: mostly(['IfHealthyBudget', 'AlwaysAllow'], ['Never']) }, { requiredKeys: [] })
    }, required),
    ControllerRevision: fc.record({ ...top('apps/v1', 'ControllerRevision'), data: fc.jsonValue({ maxDepth: 2 }), revision: mostly([1, 2], [-1]) }, { requiredKeys: ['apiVersion', 'kind', 'metadata', 'revision'] })
  }
}

/** A Service whose ports name NodePorts only when its type has them. */
function withoutStrayNodePorts (svc: Obj): Obj {
  const spec = svc.spec as Obj
  if (spec.type === 'NodePort' || spec.type === 'LoadBalancer') return svc
  return { ...svc, spec: { ...spec, ports: (spec.ports as Obj[]).map(({ nodePort: _, ...p }) => p) } }
}

/** The REST name of each kind above, with its group: what an ObjectRef or a URL names. */
export const RESOURCES: Record<string, { group: string, resource: string, namespaced: boolean }> = {
  Namespace: { group: '', resource: 'namespaces', namespaced: false },
  Node: { group: '', resource: 'nodes', namespaced: false },
  Pod: { group: '', resource: 'pods', namespaced: true },
  Service: { group: '', resource: 'services', namespaced: true },
  Endpoints: { group: '', resource: 'endpoints', namespaced: true },
  ConfigMap: { group: '', resource: 'configmaps', namespaced: true },
  Secret: { group: '', resource: 'secrets', namespaced: true },
  Event: { group: '', resource: 'events', namespaced: true },
  Deployment: { group: 'apps', resource: 'deployments', namespaced: true },
  ReplicaSet: { group: 'apps', resource: 'replicasets', namespaced: true },
  Job: { group: 'batch', resource: 'jobs', namespaced: true },
  CronJob: { group: 'batch', resource: 'cronjobs', namespaced: true },
  DaemonSet: { group: 'apps', resource: 'daemonsets', namespaced: true },
  StatefulSet: { group: 'apps', resource: 'statefulsets', namespaced: true },
  ReplicationController: { group: '', resource: 'replicationcontrollers', namespaced: true },
  PodDisruptionBudget: { group: 'policy', resource: 'poddisruptionbudgets', namespaced: true },
  ControllerRevision: { group: 'apps', resource: 'controllerrevisions', namespaced: true }
}

export const KIND_NAMES = Object.keys(manifestArbs)

/** Any kind's manifest, as a user would write it. */
export const manifestArb: fc.Arbitrary<Obj> = fc.oneof(...KIND_NAMES.map(k => manifestArbs[k] as fc.Arbitrary<Obj>))

/** A status a controller or kubelet might write, for any kind. */
export const statusArb: fc.Arbitrary<Obj> = fc.oneof(
  fc.record({ phase: pick(['Pending', 'Running', 'Succeeded', 'Failed', 'Terminating']), podIP: pick(['10.244.1.5', '']), conditions: fc.array(fc.record({ type: pick(['Ready', 'Available']), status: pick(['True', 'False']) }), { maxLength: 2 }) }, { requiredKeys: [] }),
  fc.record({ replicas: fc.integer({ min: 0, max: 5 }), readyReplicas: fc.integer({ min: 0, max: 5 }), observedGeneration: fc.integer({ min: 0, max: 9 }) }, { requiredKeys: [] }),
  fc.record({ loadBalancer: fc.constant({}) }),
  fc.jsonValue({ maxDepth: 3 }).map(v => ({ extra: v }))
)

/** Merge patches: labels and finalizers set and cleared, replicas, data, status, a name change (refused), any JSON. */
export const mergePatchArb = fc.oneof(
  fc.record({ metadata: fc.record({ labels: fc.dictionary(pick(['app', 'tier', 'x']), fc.oneof(pick(['web', 'db']), fc.constant(null)), { maxKeys: 2, noNullPrototype: true }), finalizers: fc.oneof(fc.constant(null), fc.array(pick(['example.com/hold']), { maxLength: 1 })) }, { requiredKeys: [] }) }),
  fc.record({ spec: fc.record({ replicas: fc.oneof(fc.integer({ min: -1, max: 6 }), fc.constant(null)), paused: fc.boolean() }, { requiredKeys: [] }) }),
  fc.record({ data: fc.dictionary(pick(['a', 'b', '..']), fc.oneof(fc.string({ maxLength: 8 }), fc.constant(null)), { maxKeys: 2, noNullPrototype: true }) }),
  fc.record({ status: statusArb }),
  fc.record({ metadata: fc.record({ name: nameArb, namespace: namespaceArb }, { requiredKeys: [] }) }),
  fc.jsonValue({ maxDepth: 3 })
)
/** Strategic merge patches: containers merged by name, `$patch` and `$deleteFromPrimitiveList` directives, and merge patches. */
export const strategicPatchArb = fc.oneof(
  fc.record({ spec: fc.record({ template: fc.record({ spec: fc.record({ containers: fc.array(fc.record({ name: pick(['web', 'sidecar', 'new']), image: pick(['nginx:2', 'envoy:2']), $patch: pick(['delete', 'replace', 'merge']) }, { requiredKeys: ['name'] }), { maxLength: 2 }) }) }) }) }),
  fc.record({ metadata: fc.record({ finalizers: fc.array(pick(['example.com/hold', 'b']), { maxLength: 2 }), '$deleteFromPrimitiveList/finalizers': fc.array(pick(['example.com/hold']), { maxLength: 1 }) }, { requiredKeys: [] }) }),
  fc.record({ $patch: pick(['replace', 'delete', 'bogus']), metadata: fc.constant({ name: 'web' }) }, { requiredKeys: ['$patch'] }),
  mergePatchArb
)
const pointer = pick(['/metadata/labels/x', '/metadata/labels', '/spec/replicas', '/data/a', '/data/b', '/spec/template/spec/containers/0/image',
  '/spec/template/spec/containers/-', '/metadata/name', '/metadata/finalizers/0', '/metadata/finalizers', '/a~1b', '/~2', '', '/', 'no-slash', '/status', '/spec/containers/0'])
/** JSON patches (RFC 6902): every op, pointers that exist, do not, or are malformed; or not a list at all. */
export const jsonPatchArb = fc.oneof(
  { weight: 6, arbitrary: fc.array(fc.record({ op: pick(['add', 'remove', 'replace', 'move', 'copy', 'test', 'frob']), path: pointer, from: pointer, value: fc.oneof(fc.jsonValue({ maxDepth: 2 }), pick(['web', 3, ['example.com/hold']])) }, { requiredKeys: ['op', 'path'] }), { maxLength: 3 }) },
  { weight: 1, arbitrary: fc.jsonValue({ maxDepth: 2 }) }
)

/**
 * One change that makes a good object bad, or strange: at the `at`-th node
 * of the object (in a fixed walk order) set a value, remove it, or change its
 * type. Applied by `mutate`, deterministically, so that a counterexample
 * prints as the object plus a few small mutations.
 */
export interface Mutation { at: number, op: 'set' | 'delete' | 'wrap' | 'stringify', value?: unknown }

export const mutationArb: fc.Arbitrary<Mutation> = fc.record({
  at: fc.nat(200),
  op: pick(['set', 'set', 'delete', 'wrap', 'stringify'] as const),
  value: fc.oneof(fc.jsonValue({ maxDepth: 2 }), nastyString, pick([null, -1, 2 ** 53, 1e308, -0, '']))
}, { requiredKeys: ['at', 'op'] })

/** `value` with `mutations` applied to a copy. */
export function mutate<T> (value: T, mutations: readonly Mutation[]): T {
  const root = { v: structuredClone(value) } as Obj
  for (const m of mutations) {
    // Every (parent, key) slot under the root, in a fixed order.
    const slots: Array<[Obj | unknown[], string | number]> = []
    const stack: unknown[] = [root]
    while (stack.length > 0 && slots.length <= m.at) {
      const node = stack.pop()
      if (Array.isArray(node)) node.forEach((x, i) => { slots.push([node, i]); stack.push(x) })
      else if (typeof node === 'object' && node !== null) for (const [k, x] of Object.entries(node)) { slots.push([node as Obj, k]); stack.push(x) }
    }
    const slot = slots[m.at % Math.max(1, slots.length)]
    if (slot === undefined) continue
    const [parent, key] = slot
    const cur = (parent as Record<string | number, unknown>)[key]
    const next = m.op === 'set' ? m.value : m.op === 'wrap' ? [cur] : m.op === 'stringify' ? JSON.stringify(cur) ?? 'undefined' : undefined
    if (m.op === 'delete') {
      if (Array.isArray(parent)) parent.splice(key as number, 1)
      else delete parent[key as string]
    } else {
      (parent as Record<string | number, unknown>)[key] = next
    }
  }
  return root.v as T
}

/** `depth` levels of maps and lists (alternating) around `leaf`: `{}` counts one level. */
export function nested (depth: number, leaf: unknown = 'x'): unknown {
  let v = leaf
  for (let i = 0; i < depth; i++) v = i % 2 === 0 ? { a: v } : [v]
  return v
}

/** `depth` levels of maps only, `{a:{a:…}}`, so that a JSON pointer `/a/a/…` reaches inside. */
export function nestedMaps (depth: number, leaf: unknown = 'x'): unknown {
  let v = leaf
  for (let i = 0; i < depth; i++) v = { a: v }
  return v
}
