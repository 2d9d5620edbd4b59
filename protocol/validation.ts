// Defaulting and validation of stored objects, as Kubernetes' API server
// does them for the fields Shoal supports: names, labels and annotations,
// pod specs and containers, services, deployments and replica sets, config
// maps, secrets, nodes and events. Each kind's hooks (`defaults`,
// `validate`) are exported here and carried by its entry in ./kinds.ts;
// defaultObject fills what a user may leave out, validateObject answers a
// 422 Status naming every bad field. Pure: the store runs them inside the
// log's apply, so every replica decides the same. They read untrusted JSON,
// which is why they work on plain records and not on the typed kinds.
// May import: ./api.ts, ./json.ts, ./k8s.ts, ./schema.ts, ./selector.ts, ./status.ts.
import { Buffer } from 'node:buffer'
import type { StatusBody } from './api.ts'
import type { KObject } from './k8s.ts'
import { checkShape } from './schema.ts'
import type { Schema } from './schema.ts'
import { labelKeyError, labelValueError, matchLabelSelector } from './selector.ts'
import type { LabelSelector } from './k8s.ts'
import { fieldError, invalid } from './status.ts'
import { isPlainObject, jsonEqual } from './json.ts'

export type Obj = Record<string, unknown>

export function objAt (parent: Obj, key: string): Obj | undefined {
  const v = parent[key]
  return isPlainObject(v) ? v : undefined
}
export function listAt (parent: Obj | undefined, key: string): Obj[] {
  const v = parent?.[key]
  return Array.isArray(v) ? v.filter(isPlainObject) : []
}

const DNS1123_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/
const DNS1035_LABEL = /^[a-z]([-a-z0-9]*[a-z0-9])?$/
const DNS1123_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/
const IANA_SVC_NAME = /^[a-z0-9]([a-z0-9-]{0,13}[a-z0-9])?$/
const CONFIG_KEY = /^[-._a-zA-Z0-9]+$/
const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/
const INT32_MAX = 2147483647
const FILE_MODE_ERROR = 'must be a number between 0 and 0777 (octal), both inclusive'

/**
 * Why a ConfigMap or Secret key is not one (Kubernetes' IsConfigMapKey): a
 * key becomes a file name in a volume, next to the kubelet's `..data` link.
 */
export function configKeyErrors (k: string): string[] {
  const errors: string[] = []
  if (k.length > 253) errors.push('must be no more than 253 characters')
  if (!CONFIG_KEY.test(k)) errors.push("a valid config key must consist of alphanumeric characters, '-', '_' or '.'")
  if (k === '.') errors.push("must not be '.'")
  else if (k === '..') errors.push("must not be '..'")
  else if (k.startsWith('..')) errors.push("must not start with '..'")
  return errors
}

/** Why a path inside a volume (items[].path) is not one: relative, no '..' element, not starting with '..'. */
function localPathErrors (p: string): string[] {
  const errors: string[] = []
  if (p.startsWith('/')) errors.push('must be a relative path')
  if (p.split('/').includes('..')) errors.push("must not contain '..'")
  else if (p.startsWith('..')) errors.push("must not start with '..'")
  return errors
}

/**
 * What a uid looks like: Shoal makes them with randomUUID, so every uid it
 * makes is a lowercase UUID; the rule is the wider shape those share (lower
 * case letters, digits and '-', at most 64, no '.' or '/'), so that a uid is
 * always safe as one element of a path (the kubelet's pod directories and
 * logs) and as a label value, whoever proposed the command that carries it.
 */
const UID = /^[a-z0-9]([-a-z0-9]{0,62}[a-z0-9])?$/

export function isUid (v: unknown): v is string {
  return typeof v === 'string' && UID.test(v)
}

export function dns1123LabelError (v: string): string | undefined {
  if (v.length > 63) return 'must be no more than 63 characters'
  if (!DNS1123_LABEL.test(v)) return "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc')"
  return undefined
}
export function dns1035LabelError (v: string): string | undefined {
  if (v.length > 63) return 'must be no more than 63 characters'
  if (!DNS1035_LABEL.test(v)) return "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123')"
  return undefined
}
export function dns1123SubdomainError (v: string): string | undefined {
  if (v.length > 253) return 'must be no more than 253 characters'
  if (!DNS1123_SUBDOMAIN.test(v)) return "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com')"
  return undefined
}

/** The rule a kind's names follow: most are DNS-1123 subdomains; Namespaces are labels, Services DNS-1035 labels. */
export type NameRule = 'dns1123-subdomain' | 'dns1123-label' | 'dns1035-label'

/** What validation needs of a kind; ./kinds.ts's Kind is one. */
export interface KindRules {
  group: string
  kind: string
  namespaced: boolean
  schema: Schema
  nameRule: NameRule
  defaults?: (obj: KObject) => void
  validate?: (obj: KObject, errors: string[]) => void
}

export function nameError (rule: NameRule, name: string): string | undefined {
  switch (rule) {
    case 'dns1123-label': return dns1123LabelError(name)
    case 'dns1035-label': return dns1035LabelError(name)
    case 'dns1123-subdomain': return dns1123SubdomainError(name)
  }
}

// ---- defaulting ------------------------------------------------------------

function defaultContainer (c: Obj): void {
  if (c.imagePullPolicy === undefined && typeof c.image === 'string') {
    const lastPart = c.image.slice(c.image.lastIndexOf('/') + 1)
    const digest = c.image.includes('@')
    const tag = lastPart.includes(':') ? lastPart.slice(lastPart.indexOf(':') + 1) : undefined
    c.imagePullPolicy = !digest && (tag === undefined || tag === 'latest') ? 'Always' : 'IfNotPresent'
  }
  for (const p of listAt(c, 'ports')) p.protocol ??= 'TCP'
  for (const key of ['livenessProbe', 'readinessProbe', 'startupProbe']) {
    const probe = objAt(c, key)
    if (probe === undefined) continue
    probe.timeoutSeconds ??= 1
    probe.periodSeconds ??= 10
    probe.successThreshold ??= 1
    probe.failureThreshold ??= 3
  }
  c.terminationMessagePath ??= '/dev/termination-log'
  c.terminationMessagePolicy ??= 'File'
}

export function defaultPodSpec (spec: Obj): void {
  spec.restartPolicy ??= 'Always'
  spec.terminationGracePeriodSeconds ??= 30
  spec.dnsPolicy ??= 'ClusterFirst'
  spec.schedulerName ??= 'default-scheduler'
  for (const c of listAt(spec, 'containers')) defaultContainer(c)
  for (const c of listAt(spec, 'initContainers')) defaultContainer(c)
  for (const v of listAt(spec, 'volumes')) {
    const cm = objAt(v, 'configMap')
    if (cm !== undefined) cm.defaultMode ??= 0o644
    const secret = objAt(v, 'secret')
    if (secret !== undefined) secret.defaultMode ??= 0o644
  }
}

export function defaultTemplate (spec: Obj): void {
  const template = objAt(spec, 'template')
  const podSpec = template === undefined ? undefined : objAt(template, 'spec')
  if (podSpec !== undefined) defaultPodSpec(podSpec)
}

/** A pod's service account, as Kubernetes' admission sets it ('default'); the deprecated serviceAccount mirrors it (v1). */
function defaultServiceAccount (spec: Obj): void {
  const given = [spec.serviceAccountName, spec.serviceAccount].find(v => v !== undefined && v !== null && v !== '') ?? 'default'
  if (typeof given === 'string') spec.serviceAccountName = spec.serviceAccount = given
}

export function defaultPod (obj: KObject): void {
  const spec = objAt(obj, 'spec')
  if (spec !== undefined) defaultPodSpec(spec)
  if (spec !== undefined) defaultServiceAccount(spec)
  if (obj.status === undefined) obj.status = { phase: 'Pending' }
}

export function defaultService (obj: KObject): void {
  const spec = objAt(obj, 'spec')
  if (spec === undefined) return
  spec.type ??= 'ClusterIP'
  spec.sessionAffinity ??= 'None'
  for (const p of listAt(spec, 'ports')) {
    p.protocol ??= 'TCP'
    p.targetPort ??= p.port
  }
}

export function defaultDeployment (obj: KObject): void {
  const spec = objAt(obj, 'spec')
  if (spec === undefined) return
  spec.replicas ??= 1
  spec.revisionHistoryLimit ??= 10
  spec.progressDeadlineSeconds ??= 600
  const strategy = objAt(spec, 'strategy') ?? (spec.strategy = {}) as Obj
  strategy.type ??= 'RollingUpdate'
  if (strategy.type === 'RollingUpdate') {
    const ru = objAt(strategy, 'rollingUpdate') ?? (strategy.rollingUpdate = {}) as Obj
    ru.maxSurge ??= '25%'
    ru.maxUnavailable ??= '25%'
  }
  defaultTemplate(spec)
}

export function defaultReplicaSet (obj: KObject): void {
  const spec = objAt(obj, 'spec')
  if (spec === undefined) return
  spec.replicas ??= 1
  defaultTemplate(spec)
}

export function defaultSecret (obj: KObject): void {
  obj.type ??= 'Opaque'
  const stringData = objAt(obj, 'stringData')
  if (stringData !== undefined) {
    // Kubernetes folds stringData into data on write and never stores it.
    const data = objAt(obj, 'data') ?? (obj.data = {}) as Obj
    for (const [k, v] of Object.entries(stringData)) if (typeof v === 'string') data[k] = Buffer.from(v, 'utf8').toString('base64')
    delete obj.stringData
  }
}

export function defaultNamespace (obj: KObject): void {
  if (!isPlainObject(obj.status)) obj.status = { phase: 'Active' }
}

export function defaultEvent (obj: KObject): void {
  obj.type ??= 'Normal'
  obj.count ??= 1
}

/**
 * Fills the fields Kubernetes defaults, in place, and returns the object.
 * Assumes a mutable copy of a decoded object. Shapes it does not expect it
 * leaves alone for validateObject to report.
 */
export function defaultObject (obj: KObject, kind: KindRules): KObject {
  kind.defaults?.(obj)
  return obj
}

// ---- validation ------------------------------------------------------------

function checkMeta (obj: KObject, type: KindRules, errors: string[]): void {
  const meta = obj.metadata
  if (typeof meta.name !== 'string' || meta.name === '') errors.push(fieldError('metadata.name', 'Required', undefined, 'name or generateName is required'))
  else {
    const why = nameError(type.nameRule, meta.name)
    if (why !== undefined) errors.push(fieldError('metadata.name', 'Invalid', meta.name, why))
  }
  if (type.namespaced) {
    if (typeof meta.namespace !== 'string' || meta.namespace === '') errors.push(fieldError('metadata.namespace', 'Required'))
    else {
      const why = dns1123LabelError(meta.namespace)
      if (why !== undefined) errors.push(fieldError('metadata.namespace', 'Invalid', meta.namespace, why))
    }
  } else if (meta.namespace !== undefined && meta.namespace !== '') {
    errors.push(fieldError('metadata.namespace', 'Forbidden', undefined, 'not allowed on this type'))
  }
  for (const [k, v] of Object.entries(meta.labels ?? {})) {
    const kw = labelKeyError(k)
    if (kw !== undefined) errors.push(fieldError('metadata.labels', 'Invalid', k, kw))
    const vw = typeof v === 'string' ? labelValueError(v) : undefined
    if (vw !== undefined) errors.push(fieldError(`metadata.labels[${k}]`, 'Invalid', v, vw))
  }
  let annotationBytes = 0
  for (const [k, v] of Object.entries(meta.annotations ?? {})) {
    const kw = labelKeyError(k)
    if (kw !== undefined) errors.push(fieldError('metadata.annotations', 'Invalid', k, kw))
    annotationBytes += k.length + (typeof v === 'string' ? Buffer.byteLength(v) : 0)
  }
  if (annotationBytes > 256 * 1024) errors.push(fieldError('metadata.annotations', 'TooMany', undefined, 'must have at most 262144 bytes'))
  ;(meta.ownerReferences ?? []).forEach((ref, i) => {
    for (const f of ['apiVersion', 'kind', 'name', 'uid'] as const) {
      if (typeof ref[f] !== 'string' || ref[f] === '') errors.push(fieldError(`metadata.ownerReferences[${i}].${f}`, 'Required'))
    }
  })
  if ((meta.ownerReferences ?? []).filter(r => r.controller === true).length > 1) {
    errors.push(fieldError('metadata.ownerReferences', 'Invalid', undefined, 'Only one reference can have Controller set to true'))
  }
}

function checkPort (v: unknown, path: string, errors: string[], allowZero = false): void {
  if (!Number.isSafeInteger(v) || (v as number) < (allowZero ? 0 : 1) || (v as number) > 65535) {
    errors.push(fieldError(path, 'Invalid', v, `must be between ${allowZero ? 0 : 1} and 65535, inclusive`))
  }
}

export function checkEnum (v: unknown, allowed: string[], path: string, errors: string[]): void {
  if (v !== undefined && !allowed.includes(v as string)) {
    errors.push(fieldError(path, 'Unsupported', v, `supported values: ${allowed.map(a => `"${a}"`).join(', ')}`))
  }
}

export function checkNonNegative (v: unknown, path: string, errors: string[]): void {
  if (typeof v === 'number' && v < 0) errors.push(fieldError(path, 'Invalid', v, 'must be greater than or equal to 0'))
}

function checkContainers (list: Obj[], path: string, volumes: Set<string>, errors: string[], init = false): void {
  const names = new Set<string>()
  list.forEach((c, i) => {
    const at = `${path}[${i}]`
    if (typeof c.name !== 'string' || c.name === '') errors.push(fieldError(`${at}.name`, 'Required'))
    else {
      const why = dns1123LabelError(c.name)
      if (why !== undefined) errors.push(fieldError(`${at}.name`, 'Invalid', c.name, why))
      if (names.has(c.name)) errors.push(fieldError(`${at}.name`, 'Duplicate', c.name))
      names.add(c.name)
    }
    if (typeof c.image !== 'string' || c.image.trim() === '') errors.push(fieldError(`${at}.image`, 'Required'))
    checkEnum(c.imagePullPolicy, ['Always', 'IfNotPresent', 'Never'], `${at}.imagePullPolicy`, errors)
    // A sidecar is an init container with restartPolicy Always (Kubernetes 1.29).
    if (init) checkEnum(c.restartPolicy ?? undefined, ['Always'], `${at}.restartPolicy`, errors)
    else if (c.restartPolicy !== undefined && c.restartPolicy !== null) errors.push(fieldError(`${at}.restartPolicy`, 'Forbidden', undefined, 'may not be set for non-init containers'))
    const portNames = new Set<string>()
    listAt(c, 'ports').forEach((p, j) => {
      const pat = `${at}.ports[${j}]`
      if (p.containerPort === undefined) errors.push(fieldError(`${pat}.containerPort`, 'Required'))
      else checkPort(p.containerPort, `${pat}.containerPort`, errors)
      if (p.hostPort !== undefined) checkPort(p.hostPort, `${pat}.hostPort`, errors, true)
      checkEnum(p.protocol, ['TCP', 'UDP', 'SCTP'], `${pat}.protocol`, errors)
      if (typeof p.name === 'string') {
        if (!IANA_SVC_NAME.test(p.name) || !/[a-z]/.test(p.name)) errors.push(fieldError(`${pat}.name`, 'Invalid', p.name, 'must be no more than 15 characters, contain only lowercase alphanumerics or "-", and contain at least one letter'))
        if (portNames.has(p.name)) errors.push(fieldError(`${pat}.name`, 'Duplicate', p.name))
        portNames.add(p.name)
      }
    })
    listAt(c, 'env').forEach((e, j) => {
      if (typeof e.name !== 'string' || e.name === '') errors.push(fieldError(`${at}.env[${j}].name`, 'Required'))
      if (e.value !== undefined && e.valueFrom !== undefined) errors.push(fieldError(`${at}.env[${j}].valueFrom`, 'Invalid', '', 'may not be specified when `value` is not empty'))
    })
    const mountPaths = new Set<string>()
    listAt(c, 'volumeMounts').forEach((vm, j) => {
      const vat = `${at}.volumeMounts[${j}]`
      if (typeof vm.name !== 'string' || vm.name === '') errors.push(fieldError(`${vat}.name`, 'Required'))
      else if (!volumes.has(vm.name)) errors.push(fieldError(`${vat}.name`, 'NotFound', vm.name))
      if (typeof vm.mountPath !== 'string' || vm.mountPath === '') errors.push(fieldError(`${vat}.mountPath`, 'Required'))
      else {
        if (mountPaths.has(vm.mountPath)) errors.push(fieldError(`${vat}.mountPath`, 'Invalid', vm.mountPath, 'must be unique'))
        mountPaths.add(vm.mountPath)
      }
    })
    for (const key of ['livenessProbe', 'readinessProbe', 'startupProbe']) {
      const probe = objAt(c, key)
      if (probe === undefined) continue
      const handlers = ['httpGet', 'tcpSocket', 'exec', 'grpc'].filter(h => probe[h] !== undefined)
      if (handlers.length !== 1) errors.push(fieldError(`${at}.${key}`, handlers.length === 0 ? 'Required' : 'Forbidden', undefined, 'must specify exactly one handler type'))
      for (const n of ['initialDelaySeconds', 'periodSeconds', 'timeoutSeconds', 'failureThreshold', 'successThreshold']) checkNonNegative(probe[n], `${at}.${key}.${n}`, errors)
    }
  })
}

/** A volume's hostPath, and a configMap's or secret's modes and item paths, as Kubernetes checks them. */
function checkVolumeSource (v: Obj, at: string, errors: string[]): void {
  const hostPath = objAt(v, 'hostPath')
  if (hostPath !== undefined) {
    const p = hostPath.path
    if (typeof p !== 'string' || p === '') errors.push(fieldError(`${at}.hostPath.path`, 'Required'))
    else {
      if (!p.startsWith('/')) errors.push(fieldError(`${at}.hostPath.path`, 'Invalid', p, 'must be an absolute path'))
      if (p.split('/').includes('..')) errors.push(fieldError(`${at}.hostPath.path`, 'Invalid', p, "must not contain '..'"))
    }
    checkEnum(hostPath.type, ['', 'DirectoryOrCreate', 'Directory', 'FileOrCreate', 'File', 'Socket', 'CharDevice', 'BlockDevice'], `${at}.hostPath.type`, errors)
  }
  const checkMode = (mode: unknown, path: string): void => {
    if (typeof mode === 'number' && (mode < 0 || mode > 0o777)) errors.push(fieldError(path, 'Invalid', mode, FILE_MODE_ERROR))
  }
  const checkPath = (p: unknown, path: string): void => {
    if (typeof p !== 'string' || p === '') errors.push(fieldError(path, 'Required'))
    else for (const why of localPathErrors(p)) errors.push(fieldError(path, 'Invalid', p, why))
  }
  const checkItems = (src: Obj, path: string): void => {
    listAt(src, 'items').forEach((item, i) => {
      const iat = `${path}.items[${i}]`
      if (typeof item.key !== 'string' || item.key === '') errors.push(fieldError(`${iat}.key`, 'Required'))
      checkPath(item.path, `${iat}.path`)
      checkMode(item.mode, `${iat}.mode`)
    })
  }
  const checkDownward = (src: Obj, path: string): void => {
    listAt(src, 'items').forEach((item, i) => {
      const iat = `${path}.items[${i}]`
      checkPath(item.path, `${iat}.path`)
      checkMode(item.mode, `${iat}.mode`)
      const field = objAt(item, 'fieldRef')
      const resource = objAt(item, 'resourceFieldRef')
      if ((field === undefined) === (resource === undefined)) errors.push(fieldError(iat, 'Invalid', undefined, 'fieldRef and resourceFieldRef can not be specified simultaneously, and one of them is required'))
      if (field !== undefined && (typeof field.fieldPath !== 'string' || !DOWNWARD_VOLUME_FIELD.test(field.fieldPath))) {
        errors.push(fieldError(`${iat}.fieldRef.fieldPath`, 'Unsupported', field.fieldPath, 'supported values: "metadata.annotations", "metadata.labels", "metadata.name", "metadata.namespace", "metadata.uid", and one label or annotation as metadata.labels[\'KEY\']'))
      }
      if (resource !== undefined && !DOWNWARD_RESOURCES.includes(resource.resource as string)) {
        errors.push(fieldError(`${iat}.resourceFieldRef.resource`, 'Unsupported', resource.resource, `supported values: ${DOWNWARD_RESOURCES.map(r => `"${r}"`).join(', ')}`))
      }
    })
  }
  for (const kind of ['configMap', 'secret']) {
    const src = objAt(v, kind)
    if (src === undefined) continue
    checkMode(src.defaultMode, `${at}.${kind}.defaultMode`)
    checkItems(src, `${at}.${kind}`)
  }
  const downward = objAt(v, 'downwardAPI')
  if (downward !== undefined) {
    checkMode(downward.defaultMode, `${at}.downwardAPI.defaultMode`)
    checkDownward(downward, `${at}.downwardAPI`)
  }
  const projected = objAt(v, 'projected')
  if (projected !== undefined) {
    checkMode(projected.defaultMode, `${at}.projected.defaultMode`)
    listAt(projected, 'sources').forEach((source, i) => {
      const sat = `${at}.projected.sources[${i}]`
      const kinds = ['configMap', 'secret', 'downwardAPI', 'serviceAccountToken'].filter(k => source[k] !== undefined)
      if (kinds.length !== 1) errors.push(fieldError(sat, kinds.length === 0 ? 'Required' : 'Forbidden', undefined, 'must specify exactly one projection'))
      for (const k of ['configMap', 'secret']) {
        const src = objAt(source, k)
        if (src !== undefined) checkItems(src, `${sat}.${k}`)
      }
      const d = objAt(source, 'downwardAPI')
      if (d !== undefined) checkDownward(d, `${sat}.downwardAPI`)
      if (source.serviceAccountToken !== undefined) {
        errors.push(fieldError(`${sat}.serviceAccountToken`, 'Forbidden', undefined, 'Shoal does not issue service account tokens yet'))
      }
    })
  }
}

/** The pod fields a downwardAPI volume file may hold, as Kubernetes allows them (status.podIP and the like only through env). */
const DOWNWARD_VOLUME_FIELD = /^(metadata\.(name|namespace|uid|labels|annotations)|metadata\.(labels|annotations)\['[^']*'\])$/
const DOWNWARD_RESOURCES = ['limits.cpu', 'limits.memory', 'limits.ephemeral-storage', 'requests.cpu', 'requests.memory', 'requests.ephemeral-storage']

export function checkPodSpec (spec: Obj | undefined, path: string, errors: string[]): void {
  if (spec === undefined) { errors.push(fieldError(path, 'Required')); return }
  const volumes = new Set<string>()
  listAt(spec, 'volumes').forEach((v, i) => {
    const at = `${path}.volumes[${i}]`
    if (typeof v.name !== 'string' || v.name === '') errors.push(fieldError(`${at}.name`, 'Required'))
    else {
      const why = dns1123LabelError(v.name)
      if (why !== undefined) errors.push(fieldError(`${at}.name`, 'Invalid', v.name, why))
      if (volumes.has(v.name)) errors.push(fieldError(`${at}.name`, 'Duplicate', v.name))
      volumes.add(v.name)
    }
    const sources = ['emptyDir', 'configMap', 'secret', 'hostPath', 'downwardAPI', 'projected'].filter(s => v[s] !== undefined)
    if (sources.length === 0) errors.push(fieldError(at, 'Required', undefined, 'must specify a volume type'))
    if (sources.length > 1) errors.push(fieldError(`${at}.${sources[1] as string}`, 'Forbidden', undefined, 'may not specify more than 1 volume type'))
    checkVolumeSource(v, at, errors)
  })
  const containers = listAt(spec, 'containers')
  if (containers.length === 0) errors.push(fieldError(`${path}.containers`, 'Required'))
  checkContainers(containers, `${path}.containers`, volumes, errors)
  checkContainers(listAt(spec, 'initContainers'), `${path}.initContainers`, volumes, errors, true)
  checkEnum(spec.restartPolicy, ['Always', 'OnFailure', 'Never'], `${path}.restartPolicy`, errors)
  // a pod's hostname and subdomain are DNS labels, as Kubernetes has them (a runtime hands the hostname to the kernel)
  for (const field of ['hostname', 'subdomain'] as const) {
    const v = spec[field]
    const why = typeof v === 'string' && v !== '' ? dns1123LabelError(v) : undefined
    if (why !== undefined) errors.push(fieldError(`${path}.${field}`, 'Invalid', v, why))
  }
  checkEnum(spec.dnsPolicy, ['ClusterFirst', 'ClusterFirstWithHostNet', 'Default', 'None'], `${path}.dnsPolicy`, errors)
  checkNonNegative(spec.terminationGracePeriodSeconds, `${path}.terminationGracePeriodSeconds`, errors)
  for (const [k, v] of Object.entries(objAt(spec, 'nodeSelector') ?? {})) {
    const why = labelKeyError(k) ?? (typeof v === 'string' ? labelValueError(v) : undefined)
    if (why !== undefined) errors.push(fieldError(`${path}.nodeSelector`, 'Invalid', k, why))
  }
  listAt(spec, 'tolerations').forEach((t, i) => {
    const at = `${path}.tolerations[${i}]`
    checkEnum(t.operator, ['Exists', 'Equal'], `${at}.operator`, errors)
    checkEnum(t.effect, ['NoSchedule', 'PreferNoSchedule', 'NoExecute'], `${at}.effect`, errors)
    if (t.operator === 'Exists' && typeof t.value === 'string' && t.value !== '') errors.push(fieldError(`${at}.operator`, 'Invalid', t.operator, 'value must be empty when `operator` is \'Exists\''))
    if (t.key === undefined && t.operator !== 'Exists') errors.push(fieldError(`${at}.operator`, 'Invalid', t.operator ?? '', 'operator must be Exists when `key` is empty, which means "match all values and all keys"'))
  })
  const nodeAffinity = objAt(objAt(spec, 'affinity') ?? {}, 'nodeAffinity')
  const required = objAt(nodeAffinity ?? {}, 'requiredDuringSchedulingIgnoredDuringExecution')
  const terms = listAt(required, 'nodeSelectorTerms')
  if (required !== undefined && terms.length === 0) errors.push(fieldError(`${path}.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms`, 'Required', undefined, 'must have at least one node selector term'))
  const nodeOps = ['In', 'NotIn', 'Exists', 'DoesNotExist', 'Gt', 'Lt']
  const checkTerm = (term: Obj, at: string): void => {
    listAt(term, 'matchExpressions').forEach((e, i) => { checkEnum(e.operator, nodeOps, `${at}.matchExpressions[${i}].operator`, errors) })
  }
  terms.forEach((t, i) => { checkTerm(t, `${path}.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms[${i}]`) })
  listAt(nodeAffinity, 'preferredDuringSchedulingIgnoredDuringExecution').forEach((p, i) => {
    const at = `${path}.affinity.nodeAffinity.preferredDuringSchedulingIgnoredDuringExecution[${i}]`
    if (!Number.isSafeInteger(p.weight) || (p.weight as number) < 1 || (p.weight as number) > 100) errors.push(fieldError(`${at}.weight`, 'Invalid', p.weight, 'must be in the range 1-100'))
    checkTerm(objAt(p, 'preference') ?? {}, `${at}.preference`)
  })
  checkSchedulingFields(spec, path, errors)
}

/** Label keys a term takes from the pod's own labels: valid keys, and only with a labelSelector. */
function checkLabelKeys (owner: Obj, field: string, path: string, errors: string[]): Set<string> {
  const keys = Array.isArray(owner[field]) ? owner[field].filter((k): k is string => typeof k === 'string') : []
  if (keys.length > 0 && objAt(owner, 'labelSelector') === undefined) errors.push(fieldError(`${path}.${field}`, 'Forbidden', undefined, 'must not be specified when labelSelector is not set'))
  keys.forEach((k, i) => {
    const why = labelKeyError(k)
    if (why !== undefined) errors.push(fieldError(`${path}.${field}[${i}]`, 'Invalid', k, why))
  })
  return new Set(keys)
}

/** A topologyKey: required, and a valid label key. */
function checkTopologyKey (v: unknown, path: string, errors: string[]): void {
  if (typeof v !== 'string' || v === '') { errors.push(fieldError(path, 'Required', undefined, 'can not be empty')); return }
  const why = labelKeyError(v)
  if (why !== undefined) errors.push(fieldError(path, 'Invalid', v, why))
}

/** A PodAffinityTerm, as Kubernetes' validatePodAffinityTerm. */
function checkPodAffinityTerm (term: Obj, path: string, errors: string[]): void {
  checkTopologyKey(term.topologyKey, `${path}.topologyKey`, errors)
  checkLabelSelector(objAt(term, 'labelSelector'), `${path}.labelSelector`, errors)
  checkLabelSelector(objAt(term, 'namespaceSelector'), `${path}.namespaceSelector`, errors)
  const namespaces = Array.isArray(term.namespaces) ? term.namespaces : []
  namespaces.forEach((ns, i) => {
    const why = typeof ns === 'string' ? dns1123LabelError(ns) : undefined
    if (why !== undefined) errors.push(fieldError(`${path}.namespaces[${i}]`, 'Invalid', ns, why))
  })
  const match = checkLabelKeys(term, 'matchLabelKeys', path, errors)
  for (const k of checkLabelKeys(term, 'mismatchLabelKeys', path, errors)) {
    if (match.has(k)) errors.push(fieldError(`${path}.matchLabelKeys`, 'Invalid', k, 'exists in both matchLabelKeys and mismatchLabelKeys'))
  }
}

/** A topologySpreadConstraint, as Kubernetes' validateTopologySpreadConstraints (one of them; `seen` finds duplicates). */
function checkSpreadConstraint (c: Obj, path: string, seen: Set<string>, errors: string[]): void {
  if (typeof c.maxSkew !== 'number' || c.maxSkew < 1) errors.push(fieldError(`${path}.maxSkew`, 'Invalid', c.maxSkew, 'must be greater than zero'))
  checkTopologyKey(c.topologyKey, `${path}.topologyKey`, errors)
  if (c.whenUnsatisfiable === undefined) errors.push(fieldError(`${path}.whenUnsatisfiable`, 'Required'))
  checkEnum(c.whenUnsatisfiable, ['DoNotSchedule', 'ScheduleAnyway'], `${path}.whenUnsatisfiable`, errors)
  const pair = `{${String(c.topologyKey)}, ${String(c.whenUnsatisfiable)}}`
  if (seen.has(pair)) errors.push(fieldError(path, 'Duplicate', pair))
  seen.add(pair)
  if (c.minDomains !== undefined && c.minDomains !== null) {
    if (typeof c.minDomains !== 'number' || c.minDomains < 1) errors.push(fieldError(`${path}.minDomains`, 'Invalid', c.minDomains, 'must be greater than zero'))
    else if (c.whenUnsatisfiable !== 'DoNotSchedule') errors.push(fieldError(`${path}.minDomains`, 'Invalid', c.minDomains, `can only use minDomains if whenUnsatisfiable=DoNotSchedule, not ${String(c.whenUnsatisfiable)}`))
  }
  checkEnum(c.nodeAffinityPolicy, ['Honor', 'Ignore'], `${path}.nodeAffinityPolicy`, errors)
  checkEnum(c.nodeTaintsPolicy, ['Honor', 'Ignore'], `${path}.nodeTaintsPolicy`, errors)
  const selector = objAt(c, 'labelSelector')
  checkLabelSelector(selector, `${path}.labelSelector`, errors)
  const selectorKeys = new Set([...Object.keys(objAt(selector ?? {}, 'matchLabels') ?? {}), ...listAt(selector, 'matchExpressions').map(e => e.key)])
  for (const k of checkLabelKeys(c, 'matchLabelKeys', path, errors)) {
    if (selectorKeys.has(k)) errors.push(fieldError(`${path}.matchLabelKeys`, 'Invalid', k, 'exists in both matchLabelKeys and labelSelector'))
  }
}

/** An update may remove scheduling gates, never add one (Kubernetes' validateOnlyDeletedSchedulingGates). */
function checkGatesOnlyRemoved (cur: Obj, next: Obj, errors: string[]): void {
  const had = new Set(listAt(cur, 'schedulingGates').map(g => g.name))
  listAt(next, 'schedulingGates').forEach((g, i) => {
    if (!had.has(g.name)) errors.push(fieldError(`spec.schedulingGates[${i}].name`, 'Forbidden', undefined, `only deletion is allowed, but found new scheduling gate '${String(g.name)}'`))
  })
}

/** Pod affinity and anti-affinity, topology spread constraints and scheduling gates. */
function checkSchedulingFields (spec: Obj, path: string, errors: string[]): void {
  const affinity = objAt(spec, 'affinity') ?? {}
  for (const kind of ['podAffinity', 'podAntiAffinity']) {
    const at = `${path}.affinity.${kind}`
    const a = objAt(affinity, kind)
    listAt(a, 'requiredDuringSchedulingIgnoredDuringExecution').forEach((t, i) => { checkPodAffinityTerm(t, `${at}.requiredDuringSchedulingIgnoredDuringExecution[${i}]`, errors) })
    listAt(a, 'preferredDuringSchedulingIgnoredDuringExecution').forEach((w, i) => {
      const wat = `${at}.preferredDuringSchedulingIgnoredDuringExecution[${i}]`
      if (!Number.isSafeInteger(w.weight) || (w.weight as number) < 1 || (w.weight as number) > 100) errors.push(fieldError(`${wat}.weight`, 'Invalid', w.weight, 'must be in the range 1-100'))
      const term = objAt(w, 'podAffinityTerm')
      if (term === undefined) errors.push(fieldError(`${wat}.podAffinityTerm`, 'Required'))
      else checkPodAffinityTerm(term, `${wat}.podAffinityTerm`, errors)
    })
  }
  const seen = new Set<string>()
  listAt(spec, 'topologySpreadConstraints').forEach((c, i) => { checkSpreadConstraint(c, `${path}.topologySpreadConstraints[${i}]`, seen, errors) })
  const gates = listAt(spec, 'schedulingGates')
  const names = new Set<string>()
  gates.forEach((g, i) => {
    const why = typeof g.name === 'string' && g.name !== '' ? labelKeyError(g.name) : 'name part must be non-empty'
    if (why !== undefined) errors.push(fieldError(`${path}.schedulingGates[${i}]`, 'Invalid', g.name, why))
    else if (names.has(g.name as string)) errors.push(fieldError(`${path}.schedulingGates[${i}]`, 'Duplicate', g.name))
    names.add(g.name as string)
  })
  if (gates.length > 0 && typeof spec.nodeName === 'string' && spec.nodeName !== '') errors.push(fieldError(`${path}.nodeName`, 'Forbidden', undefined, 'cannot be set until all schedulingGates have been cleared'))
}

export function checkLabelSelector (sel: Obj | undefined, path: string, errors: string[]): void {
  if (sel === undefined) return
  for (const [k, v] of Object.entries(objAt(sel, 'matchLabels') ?? {})) {
    const why = labelKeyError(k) ?? (typeof v === 'string' ? labelValueError(v) : undefined)
    if (why !== undefined) errors.push(fieldError(`${path}.matchLabels`, 'Invalid', k, why))
  }
  listAt(sel, 'matchExpressions').forEach((e, i) => {
    const at = `${path}.matchExpressions[${i}]`
    if (typeof e.key !== 'string' || labelKeyError(e.key) !== undefined) errors.push(fieldError(`${at}.key`, 'Invalid', e.key, 'must be a valid label key'))
    checkEnum(e.operator, ['In', 'NotIn', 'Exists', 'DoesNotExist'], `${at}.operator`, errors)
    const values = Array.isArray(e.values) ? e.values : []
    if ((e.operator === 'In' || e.operator === 'NotIn') && values.length === 0) errors.push(fieldError(`${at}.values`, 'Required', undefined, 'must be specified when `operator` is \'In\' or \'NotIn\''))
    if ((e.operator === 'Exists' || e.operator === 'DoesNotExist') && values.length > 0) errors.push(fieldError(`${at}.values`, 'Forbidden', undefined, 'may not be specified when `operator` is \'Exists\' or \'DoesNotExist\''))
  })
}

export function checkIntOrPercent (v: unknown, path: string, errors: string[]): boolean {
  if (v === undefined) return true
  if (typeof v === 'number') { checkNonNegative(v, path, errors); return v !== 0 }
  if (typeof v === 'string') {
    const m = /^([0-9]+)%$/.exec(v)
    if (m === null) { errors.push(fieldError(path, 'Invalid', v, "a valid percent string must be a numeric string followed by an ending '%'")); return true }
    if (Number(m[1]) > 100) errors.push(fieldError(path, 'Invalid', v, 'must not be greater than 100%'))
    return Number(m[1]) !== 0
  }
  return true
}

/** A replica count: an int32 that is not negative (the schema has checked it is an integer). */
export function checkReplicas (v: unknown, path: string, errors: string[]): void {
  if (typeof v !== 'number') return
  if (v < 0) errors.push(fieldError(path, 'Invalid', v, 'must be greater than or equal to 0'))
  else if (v > INT32_MAX) errors.push(fieldError(path, 'Invalid', v, `must be less than or equal to ${INT32_MAX}`))
}

export function checkWorkload (spec: Obj | undefined, kind: string, errors: string[]): void {
  if (spec === undefined) { errors.push(fieldError('spec', 'Required')); return }
  if (spec.replicas !== undefined) checkReplicas(spec.replicas, 'spec.replicas', errors)
  checkNonNegative(spec.minReadySeconds, 'spec.minReadySeconds', errors)
  const selector = objAt(spec, 'selector')
  const template = objAt(spec, 'template')
  if (selector === undefined) errors.push(fieldError('spec.selector', 'Required'))
  else {
    checkLabelSelector(selector, 'spec.selector', errors)
    const empty = Object.keys(objAt(selector, 'matchLabels') ?? {}).length === 0 && listAt(selector, 'matchExpressions').length === 0
    if (empty) errors.push(fieldError('spec.selector', 'Invalid', selector, `empty selector is invalid for ${kind.toLowerCase()}`))
    else if (template !== undefined) {
      const labels = objAt(objAt(template, 'metadata') ?? {}, 'labels') as Record<string, string> | undefined
      if (!matchLabelSelector(selector as LabelSelector, labels)) {
        errors.push(fieldError('spec.selector', 'Invalid', selector, 'selector does not match template labels'))
      }
    }
  }
  if (template === undefined) { errors.push(fieldError('spec.template', 'Required')); return }
  const templateMeta = objAt(template, 'metadata') ?? {}
  for (const [k, v] of Object.entries(objAt(templateMeta, 'labels') ?? {})) {
    const why = labelKeyError(k) ?? (typeof v === 'string' ? labelValueError(v) : undefined)
    if (why !== undefined) errors.push(fieldError('spec.template.metadata.labels', 'Invalid', k, why))
  }
  const podSpec = objAt(template, 'spec')
  checkPodSpec(podSpec, 'spec.template.spec', errors)
  if (podSpec !== undefined) checkEnum(podSpec.restartPolicy, ['Always'], 'spec.template.spec.restartPolicy', errors)
  if (kind !== 'Deployment') return
  checkNonNegative(spec.revisionHistoryLimit, 'spec.revisionHistoryLimit', errors)
  if (typeof spec.progressDeadlineSeconds === 'number' && typeof spec.minReadySeconds === 'number' && spec.progressDeadlineSeconds <= spec.minReadySeconds) {
    errors.push(fieldError('spec.progressDeadlineSeconds', 'Invalid', spec.progressDeadlineSeconds, 'must be greater than minReadySeconds'))
  }
  const strategy = objAt(spec, 'strategy')
  if (strategy === undefined) return
  checkEnum(strategy.type, ['RollingUpdate', 'Recreate'], 'spec.strategy.type', errors)
  const ru = objAt(strategy, 'rollingUpdate')
  if (strategy.type === 'Recreate' && ru !== undefined) errors.push(fieldError('spec.strategy.rollingUpdate', 'Forbidden', undefined, 'may not be specified when strategy `type` is \'Recreate\''))
  if (ru !== undefined) {
    const surge = checkIntOrPercent(ru.maxSurge, 'spec.strategy.rollingUpdate.maxSurge', errors)
    const unavailable = checkIntOrPercent(ru.maxUnavailable, 'spec.strategy.rollingUpdate.maxUnavailable', errors)
    if (!surge && !unavailable) errors.push(fieldError('spec.strategy.rollingUpdate.maxUnavailable', 'Invalid', ru.maxUnavailable, 'may not be 0 when `maxSurge` is 0'))
  }
}

function checkService (spec: Obj | undefined, errors: string[]): void {
  if (spec === undefined) { errors.push(fieldError('spec', 'Required')); return }
  checkEnum(spec.type, ['ClusterIP', 'NodePort', 'LoadBalancer'], 'spec.type', errors)
  checkEnum(spec.sessionAffinity, ['None', 'ClientIP'], 'spec.sessionAffinity', errors)
  checkEnum(spec.externalTrafficPolicy, ['Cluster', 'Local'], 'spec.externalTrafficPolicy', errors)
  const ports = listAt(spec, 'ports')
  if (ports.length === 0 && spec.clusterIP !== 'None') errors.push(fieldError('spec.ports', 'Required'))
  const names = new Set<string>()
  const seen = new Set<string>()
  ports.forEach((p, i) => {
    const at = `spec.ports[${i}]`
    if (ports.length > 1 && (typeof p.name !== 'string' || p.name === '')) errors.push(fieldError(`${at}.name`, 'Required'))
    if (typeof p.name === 'string' && p.name !== '') {
      const why = dns1123LabelError(p.name)
      if (why !== undefined) errors.push(fieldError(`${at}.name`, 'Invalid', p.name, why))
      if (names.has(p.name)) errors.push(fieldError(`${at}.name`, 'Duplicate', p.name))
      names.add(p.name)
    }
    if (p.port === undefined) errors.push(fieldError(`${at}.port`, 'Required'))
    else checkPort(p.port, `${at}.port`, errors)
    checkEnum(p.protocol, ['TCP', 'UDP', 'SCTP'], `${at}.protocol`, errors)
    const key = `${String(p.port)}/${String(p.protocol)}`
    if (seen.has(key)) errors.push(fieldError(at, 'Duplicate', { port: p.port, protocol: p.protocol }))
    seen.add(key)
    if (typeof p.targetPort === 'number') checkPort(p.targetPort, `${at}.targetPort`, errors)
    else if (typeof p.targetPort === 'string' && (!IANA_SVC_NAME.test(p.targetPort) || !/[a-z]/.test(p.targetPort))) {
      errors.push(fieldError(`${at}.targetPort`, 'Invalid', p.targetPort, 'must contain only lowercase alphanumerics or "-", at most 15 characters, and at least one letter'))
    }
    if (p.nodePort !== undefined) {
      if (spec.type !== 'NodePort' && spec.type !== 'LoadBalancer') errors.push(fieldError(`${at}.nodePort`, 'Forbidden', undefined, 'may not be used when `type` is \'ClusterIP\''))
      else if (!Number.isSafeInteger(p.nodePort) || (p.nodePort as number) < 30000 || (p.nodePort as number) > 32767) {
        errors.push(fieldError(`${at}.nodePort`, 'Invalid', p.nodePort, 'provided port is not in the valid range. The range of valid ports is 30000-32767'))
      }
    }
  })
  for (const [k, v] of Object.entries(objAt(spec, 'selector') ?? {})) {
    const why = labelKeyError(k) ?? (typeof v === 'string' ? labelValueError(v) : undefined)
    if (why !== undefined) errors.push(fieldError('spec.selector', 'Invalid', k, why))
  }
}

function checkDataKeys (data: Obj | undefined, path: string, base64: boolean, errors: string[]): void {
  for (const [k, v] of Object.entries(data ?? {})) {
    for (const why of configKeyErrors(k)) errors.push(fieldError(path, 'Invalid', k, why))
    if (base64 && typeof v === 'string' && (!BASE64.test(v) || v.length % 4 !== 0)) errors.push(fieldError(`${path}[${k}]`, 'Invalid', '<secret contents redacted>', 'must be base64-encoded'))
  }
}

export function validatePod (obj: KObject, errors: string[]): void {
  checkPodSpec(objAt(obj, 'spec'), 'spec', errors)
}

export function validateService (obj: KObject, errors: string[]): void {
  checkService(objAt(obj, 'spec'), errors)
}

export function validateWorkload (obj: KObject, errors: string[]): void {
  checkWorkload(objAt(obj, 'spec'), obj.kind, errors)
}

export function validateConfigMap (obj: KObject, errors: string[]): void {
  checkDataKeys(objAt(obj, 'data'), 'data', false, errors)
  checkDataKeys(objAt(obj, 'binaryData'), 'binaryData', false, errors)
  const dup = Object.keys(objAt(obj, 'binaryData') ?? {}).find(k => Object.hasOwn(objAt(obj, 'data') ?? {}, k))
  if (dup !== undefined) errors.push(fieldError('data', 'Invalid', dup, 'duplicate of key present in binaryData'))
}

export function validateSecret (obj: KObject, errors: string[]): void {
  checkDataKeys(objAt(obj, 'data'), 'data', true, errors)
  if (typeof obj.type === 'string' && obj.type === '') errors.push(fieldError('type', 'Required'))
}

export function validateNode (obj: KObject, errors: string[]): void {
  listAt(objAt(obj, 'spec'), 'taints').forEach((t, i) => {
    if (typeof t.key !== 'string' || labelKeyError(t.key) !== undefined) errors.push(fieldError(`spec.taints[${i}].key`, 'Invalid', t.key ?? '', 'must be a valid label key'))
    if (t.effect === undefined) errors.push(fieldError(`spec.taints[${i}].effect`, 'Required'))
    checkEnum(t.effect, ['NoSchedule', 'PreferNoSchedule', 'NoExecute'], `spec.taints[${i}].effect`, errors)
  })
}

export function validateEvent (obj: KObject, errors: string[]): void {
  const involved = objAt(obj, 'involvedObject')
  if (involved === undefined) errors.push(fieldError('involvedObject', 'Required'))
  else if (typeof involved.kind !== 'string' || involved.kind === '') errors.push(fieldError('involvedObject.kind', 'Required'))
  checkEnum(obj.type, ['Normal', 'Warning'], 'type', errors)
  if (typeof obj.count === 'number' && obj.count < 0) checkNonNegative(obj.count, 'count', errors)
}

/**
 * The 422 Status for an object that Kubernetes would refuse, naming every
 * bad field; undefined for a valid object. The kind's schema is checked
 * first (unknown fields, JSON types); only a well-shaped object goes on to
 * the metadata and the kind's own checks. Call after defaultObject.
 */
export function validateObject (obj: KObject, kind: KindRules): StatusBody | undefined {
  const errors: string[] = []
  checkShape(obj, kind.schema, '', errors)
  if (errors.length === 0) {
    checkMeta(obj, kind, errors)
    kind.validate?.(obj, errors)
  }
  if (errors.length === 0) return undefined
  return invalid(kind, obj.metadata.name ?? obj.metadata.generateName ?? '', errors)
}

// ---- updates -----------------------------------------------------------------
// What an update may not change, per kind (Kubernetes' ValidateUpdate).

/** Sets `key`, or deletes it for undefined, so that no undefined reaches msgpack. */
function setOpt (o: Obj, key: string, v: unknown): void {
  if (v === undefined || v === null) delete o[key]
  else o[key] = v
}

/** A pod spec with the fields an update may change taken from `next`, for comparing with next. */
function podComparable (spec: Obj, next: Obj): Obj {
  const out = structuredClone(spec)
  // A pod stored before a default existed gets it on update (the store defaults `next`): not a change.
  defaultPodSpec(out)
  defaultServiceAccount(out)
  const images = (list: unknown, from: unknown): void => {
    if (!Array.isArray(list) || !Array.isArray(from)) return
    list.forEach((c, i) => { if (isPlainObject(c) && isPlainObject(from[i])) setOpt(c, 'image', from[i].image) })
  }
  images(out.containers, next.containers)
  images(out.initContainers, next.initContainers)
  setOpt(out, 'activeDeadlineSeconds', next.activeDeadlineSeconds)
  setOpt(out, 'tolerations', next.tolerations)
  setOpt(out, 'schedulingGates', next.schedulingGates)
  if (out.nodeName === undefined || out.nodeName === '') setOpt(out, 'nodeName', next.nodeName)
  return out
}

export function validatePodUpdate (cur: KObject, next: KObject, errors: string[]): void {
  const curSpec = objAt(cur, 'spec') ?? {}
  const nextSpec = objAt(next, 'spec') ?? {}
  checkGatesOnlyRemoved(curSpec, nextSpec, errors)
  if (!jsonEqual(podComparable(curSpec, nextSpec), podComparable(nextSpec, nextSpec))) {
    errors.push(fieldError('spec', 'Forbidden', undefined, 'pod updates may not change fields other than `spec.containers[*].image`, `spec.initContainers[*].image`, `spec.activeDeadlineSeconds`, `spec.tolerations`, and `spec.nodeName` (only to set it)'))
  }
}

/** A Deployment's or ReplicaSet's selector is immutable in apps/v1. */
export function validateWorkloadUpdate (cur: KObject, next: KObject, errors: string[]): void {
  const before = objAt(cur, 'spec')?.selector
  const after = objAt(next, 'spec')?.selector
  if (!jsonEqual(before, after)) errors.push(fieldError('spec.selector', 'Invalid', after, 'field is immutable'))
}

/** An immutable ConfigMap or Secret keeps its data and stays immutable. */
export function validateDataUpdate (cur: KObject, next: KObject, errors: string[]): void {
  if (cur.immutable !== true) return
  if (!jsonEqual(cur.data, next.data) || !jsonEqual(cur.binaryData, next.binaryData)) errors.push(fieldError('data', 'Forbidden', undefined, 'field is immutable when `immutable` is set'))
  if (next.immutable !== true) errors.push(fieldError('immutable', 'Forbidden', undefined, 'field is immutable when `immutable` is set'))
}
