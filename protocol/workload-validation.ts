// Defaulting and validation of the workload kinds beyond Deployments and
// ReplicaSets: Jobs and CronJobs (batch/v1), DaemonSets, StatefulSets and
// ControllerRevisions (apps/v1), ReplicationControllers (v1) and
// PodDisruptionBudgets (policy/v1), as Kubernetes' API server does them.
// Pure, over untrusted JSON, like ./validation.ts, whose pod-spec, selector
// and percentage checks it reuses. Each kind's entry in ./kinds.ts carries
// these hooks.
// May import: ./k8s.ts, ./json.ts, ./status.ts, ./validation.ts, ./cron.ts, ./batch-v1.ts.
import type { KObject } from './k8s.ts'
import { jsonEqual } from './json.ts'
import { fieldError } from './status.ts'
import {
  checkEnum, checkIntOrPercent, checkLabelSelector, checkNonNegative, checkPodSpec, checkReplicas, checkWorkload,
  defaultPodSpec, defaultTemplate, listAt, objAt
} from './validation.ts'
import type { Obj } from './validation.ts'
import { scheduleError, timeZoneError } from './cron.ts'

const INT32_MAX = 2147483647

/** The labels Kubernetes gives a Job's pods (and its generated selector). */
export const JOB_CONTROLLER_UID = 'batch.kubernetes.io/controller-uid'
export const JOB_NAME = 'batch.kubernetes.io/job-name'

// ---- Job and CronJob -----------------------------------------------------------

function defaultJobSpec (spec: Obj): void {
  if (spec.completions === undefined && spec.parallelism === undefined) {
    spec.completions = 1
    spec.parallelism = 1
  }
  spec.parallelism ??= 1
  spec.backoffLimit ??= spec.backoffLimitPerIndex !== undefined ? INT32_MAX : 6
  spec.completionMode ??= 'NonIndexed'
  spec.suspend ??= false
  spec.manualSelector ??= false
  spec.podReplacementPolicy ??= spec.podFailurePolicy !== undefined ? 'Failed' : 'TerminatingOrFailed'
  defaultTemplate(spec)
}

/**
 * Kubernetes' Job defaults, and the selector it generates from the Job's
 * uid (the store sets the uid before defaulting a create) unless
 * manualSelector is set: the pods are labelled with the uid and the name.
 */
export function defaultJob (obj: KObject): void {
  const spec = objAt(obj, 'spec')
  if (spec === undefined) return
  defaultJobSpec(spec)
  const uid = obj.metadata.uid
  const name = obj.metadata.name
  if (spec.manualSelector === true || spec.selector !== undefined || typeof uid !== 'string' || typeof name !== 'string') return
  const template = objAt(spec, 'template')
  if (template === undefined) return
  const meta = objAt(template, 'metadata') ?? (template.metadata = {}) as Obj
  const labels = objAt(meta, 'labels') ?? (meta.labels = {}) as Obj
  Object.assign(labels, { [JOB_CONTROLLER_UID]: uid, [JOB_NAME]: name, 'controller-uid': uid, 'job-name': name })
  spec.selector = { matchLabels: { [JOB_CONTROLLER_UID]: uid } }
}

export function defaultCronJob (obj: KObject): void {
  const spec = objAt(obj, 'spec')
  if (spec === undefined) return
  spec.concurrencyPolicy ??= 'Allow'
  spec.suspend ??= false
  spec.successfulJobsHistoryLimit ??= 3
  spec.failedJobsHistoryLimit ??= 1
  const jobSpec = objAt(objAt(spec, 'jobTemplate') ?? {}, 'spec')
  if (jobSpec !== undefined) defaultTemplate(jobSpec)
}

function checkPodFailurePolicy (policy: Obj, path: string, restartPolicy: unknown, errors: string[]): void {
  if (restartPolicy !== 'Never') errors.push(fieldError('spec.template.spec.restartPolicy', 'Invalid', restartPolicy, 'only "Never" is supported when podFailurePolicy is specified'))
  listAt(policy, 'rules').forEach((r, i) => {
    const at = `${path}.rules[${i}]`
    checkEnum(r.action, ['FailJob', 'FailIndex', 'Ignore', 'Count'], `${at}.action`, errors)
    if (r.action === undefined) errors.push(fieldError(`${at}.action`, 'Required'))
    const codes = objAt(r, 'onExitCodes')
    const conditions = listAt(r, 'onPodConditions')
    if ((codes === undefined) === (conditions.length === 0)) errors.push(fieldError(at, 'Invalid', undefined, 'specifying one of OnExitCodes and OnPodConditions is required'))
    if (codes !== undefined) {
      checkEnum(codes.operator, ['In', 'NotIn'], `${at}.onExitCodes.operator`, errors)
      const values = Array.isArray(codes.values) ? codes.values : []
      if (values.length === 0) errors.push(fieldError(`${at}.onExitCodes.values`, 'Required'))
      if (codes.operator === 'In' && values.includes(0)) errors.push(fieldError(`${at}.onExitCodes.values`, 'Invalid', 0, 'must not be 0 for the In operator'))
    }
    conditions.forEach((c, j) => {
      if (typeof c.type !== 'string' || c.type === '') errors.push(fieldError(`${at}.onPodConditions[${j}].type`, 'Required'))
      checkEnum(c.status ?? 'True', ['True', 'False', 'Unknown'], `${at}.onPodConditions[${j}].status`, errors)
    })
  })
}

/** A Job's spec, or a CronJob's job template's (`path` is where it sits; `selectorRequired` for a Job). */
function checkJobSpec (spec: Obj | undefined, path: string, selectorRequired: boolean, errors: string[]): void {
  if (spec === undefined) { errors.push(fieldError(path, 'Required')); return }
  for (const f of ['parallelism', 'completions', 'backoffLimit', 'ttlSecondsAfterFinished', 'backoffLimitPerIndex', 'maxFailedIndexes']) checkNonNegative(spec[f], `${path}.${f}`, errors)
  if (typeof spec.activeDeadlineSeconds === 'number' && spec.activeDeadlineSeconds <= 0) errors.push(fieldError(`${path}.activeDeadlineSeconds`, 'Invalid', spec.activeDeadlineSeconds, 'must be greater than 0'))
  checkEnum(spec.completionMode, ['NonIndexed', 'Indexed'], `${path}.completionMode`, errors)
  checkEnum(spec.podReplacementPolicy, ['TerminatingOrFailed', 'Failed'], `${path}.podReplacementPolicy`, errors)
  const indexed = spec.completionMode === 'Indexed'
  if (indexed && typeof spec.completions !== 'number') errors.push(fieldError(`${path}.completions`, 'Required', undefined, 'when completion mode is Indexed'))
  if (!indexed && spec.backoffLimitPerIndex !== undefined) errors.push(fieldError(`${path}.backoffLimitPerIndex`, 'Forbidden', undefined, 'requires indexed completion mode'))
  const template = objAt(spec, 'template')
  if (template === undefined) { errors.push(fieldError(`${path}.template`, 'Required')); return }
  const selector = objAt(spec, 'selector')
  if (selector !== undefined) checkLabelSelector(selector, `${path}.selector`, errors)
  else if (selectorRequired) errors.push(fieldError(`${path}.selector`, 'Required'))
  const podSpec = objAt(template, 'spec')
  checkPodSpec(podSpec, `${path}.template.spec`, errors)
  if (podSpec === undefined) return
  if (podSpec.restartPolicy === 'Always' || podSpec.restartPolicy === undefined) {
    errors.push(fieldError(`${path}.template.spec.restartPolicy`, 'Required', undefined, 'valid values: "OnFailure", "Never"'))
  }
  const pfp = objAt(spec, 'podFailurePolicy')
  if (pfp !== undefined) checkPodFailurePolicy(pfp, `${path}.podFailurePolicy`, podSpec.restartPolicy, errors)
  const sp = objAt(spec, 'successPolicy')
  if (sp !== undefined) {
    if (!indexed) errors.push(fieldError(`${path}.successPolicy`, 'Invalid', undefined, 'requires indexed completion mode'))
    listAt(sp, 'rules').forEach((r, i) => {
      if (r.succeededIndexes === undefined && r.succeededCount === undefined) errors.push(fieldError(`${path}.successPolicy.rules[${i}]`, 'Required', undefined, 'at least one of succeededCount or succeededIndexes must be specified'))
      if (typeof r.succeededIndexes === 'string' && parseIndexes(r.succeededIndexes) === undefined) errors.push(fieldError(`${path}.successPolicy.rules[${i}].succeededIndexes`, 'Invalid', r.succeededIndexes, 'error parsing succeededIndexes'))
    })
  }
}

export function validateJob (obj: KObject, errors: string[]): void {
  const spec = objAt(obj, 'spec')
  checkJobSpec(spec, 'spec', true, errors)
  const selector = objAt(spec ?? {}, 'selector')
  const labels = objAt(objAt(objAt(spec ?? {}, 'template') ?? {}, 'metadata') ?? {}, 'labels') ?? {}
  const matchLabels = objAt(selector ?? {}, 'matchLabels') ?? {}
  if (selector !== undefined && Object.entries(matchLabels).some(([k, v]) => labels[k] !== v)) {
    errors.push(fieldError('spec.template.metadata.labels', 'Invalid', labels, '`selector` does not match template `labels`'))
  }
}

export function validateCronJob (obj: KObject, errors: string[]): void {
  const spec = objAt(obj, 'spec')
  if (spec === undefined) { errors.push(fieldError('spec', 'Required')); return }
  if (typeof obj.metadata.name === 'string' && obj.metadata.name.length > 52) errors.push(fieldError('metadata.name', 'Invalid', obj.metadata.name, 'must be no more than 52 characters'))
  if (typeof spec.schedule !== 'string' || spec.schedule === '') errors.push(fieldError('spec.schedule', 'Required'))
  else {
    const why = scheduleError(spec.schedule)
    if (why !== undefined) errors.push(fieldError('spec.schedule', 'Invalid', spec.schedule, why))
  }
  if (typeof spec.timeZone === 'string') {
    const why = timeZoneError(spec.timeZone)
    if (why !== undefined) errors.push(fieldError('spec.timeZone', 'Invalid', spec.timeZone, why))
  }
  checkEnum(spec.concurrencyPolicy, ['Allow', 'Forbid', 'Replace'], 'spec.concurrencyPolicy', errors)
  for (const f of ['startingDeadlineSeconds', 'successfulJobsHistoryLimit', 'failedJobsHistoryLimit']) checkNonNegative(spec[f], `spec.${f}`, errors)
  checkJobSpec(objAt(objAt(spec, 'jobTemplate') ?? {}, 'spec'), 'spec.jobTemplate.spec', false, errors)
}

const IMMUTABLE_JOB_FIELDS = ['selector', 'completionMode', 'podFailurePolicy', 'successPolicy', 'backoffLimitPerIndex', 'manualSelector']

/** What a Job update may not change: its selector, template (unless suspended), completions, mode and policies. */
export function validateJobUpdate (cur: KObject, next: KObject, errors: string[]): void {
  const a = objAt(cur, 'spec') ?? {}
  const b = objAt(next, 'spec') ?? {}
  for (const f of IMMUTABLE_JOB_FIELDS) if (!jsonEqual(a[f], b[f])) errors.push(fieldError(`spec.${f}`, 'Invalid', b[f], 'field is immutable'))
  if (!jsonEqual(a.completions, b.completions) && !(b.completionMode === 'Indexed' && b.completions === b.parallelism)) errors.push(fieldError('spec.completions', 'Invalid', b.completions, 'field is immutable'))
  if (!jsonEqual(a.template, b.template) && a.suspend !== true) errors.push(fieldError('spec.template', 'Invalid', b.template, 'field is immutable'))
}

/** An interval list such as `0,2-4,7` as sorted, disjoint [first, last] pairs; undefined if malformed. */
export function parseIndexes (s: string): Array<[number, number]> | undefined {
  if (s.trim() === '') return []
  const out: Array<[number, number]> = []
  for (const part of s.split(',')) {
    const m = /^(\d+)(?:-(\d+))?$/.exec(part.trim())
    if (m === null) return undefined
    const first = Number(m[1])
    const last = m[2] === undefined ? first : Number(m[2])
    if (last < first || (out.length > 0 && first <= (out.at(-1) as [number, number])[1])) return undefined
    out.push([first, last])
  }
  return out
}

// ---- DaemonSet, StatefulSet, ControllerRevision ------------------------------------

export function defaultDaemonSet (obj: KObject): void {
  const spec = objAt(obj, 'spec')
  if (spec === undefined) return
  spec.revisionHistoryLimit ??= 10
  const strategy = objAt(spec, 'updateStrategy') ?? (spec.updateStrategy = {}) as Obj
  strategy.type ??= 'RollingUpdate'
  if (strategy.type === 'RollingUpdate') {
    const ru = objAt(strategy, 'rollingUpdate') ?? (strategy.rollingUpdate = {}) as Obj
    ru.maxUnavailable ??= 1
    ru.maxSurge ??= 0
  }
  defaultTemplate(spec)
}

export function validateDaemonSet (obj: KObject, errors: string[]): void {
  const spec = objAt(obj, 'spec')
  checkWorkload(spec, 'DaemonSet', errors)
  const strategy = objAt(spec ?? {}, 'updateStrategy')
  if (strategy === undefined) return
  checkEnum(strategy.type, ['RollingUpdate', 'OnDelete'], 'spec.updateStrategy.type', errors)
  const ru = objAt(strategy, 'rollingUpdate')
  if (ru === undefined) return
  const surge = checkIntOrPercent(ru.maxSurge, 'spec.updateStrategy.rollingUpdate.maxSurge', errors)
  const unavailable = checkIntOrPercent(ru.maxUnavailable, 'spec.updateStrategy.rollingUpdate.maxUnavailable', errors)
  if (!surge && !unavailable) errors.push(fieldError('spec.updateStrategy.rollingUpdate.maxUnavailable', 'Invalid', ru.maxUnavailable, 'may not be 0 when `maxSurge` is 0'))
  if (surge && ru.maxSurge !== undefined && unavailable && ru.maxUnavailable !== undefined && ru.maxSurge !== 0 && ru.maxSurge !== '0%' && ru.maxUnavailable !== 0 && ru.maxUnavailable !== '0%') {
    errors.push(fieldError('spec.updateStrategy.rollingUpdate.maxSurge', 'Invalid', ru.maxSurge, 'may not be set when maxUnavailable is non-zero'))
  }
}

export function defaultStatefulSet (obj: KObject): void {
  const spec = objAt(obj, 'spec')
  if (spec === undefined) return
  spec.replicas ??= 1
  spec.podManagementPolicy ??= 'OrderedReady'
  spec.revisionHistoryLimit ??= 10
  const strategy = objAt(spec, 'updateStrategy') ?? (spec.updateStrategy = {}) as Obj
  strategy.type ??= 'RollingUpdate'
  if (strategy.type === 'RollingUpdate') {
    const ru = objAt(strategy, 'rollingUpdate') ?? (strategy.rollingUpdate = {}) as Obj
    ru.partition ??= 0
  }
  const retention = objAt(spec, 'persistentVolumeClaimRetentionPolicy') ?? (spec.persistentVolumeClaimRetentionPolicy = {}) as Obj
  retention.whenDeleted ??= 'Retain'
  retention.whenScaled ??= 'Retain'
  defaultTemplate(spec)
}

export function validateStatefulSet (obj: KObject, errors: string[]): void {
  const spec = objAt(obj, 'spec')
  checkWorkload(spec, 'StatefulSet', errors)
  if (spec === undefined) return
  checkEnum(spec.podManagementPolicy, ['OrderedReady', 'Parallel'], 'spec.podManagementPolicy', errors)
  if (listAt(spec, 'volumeClaimTemplates').length > 0) {
    errors.push(fieldError('spec.volumeClaimTemplates', 'Forbidden', undefined, 'Shoal does not serve PersistentVolumeClaims yet, so volumeClaimTemplates cannot be made; use an emptyDir or hostPath volume in the pod template instead'))
  }
  const strategy = objAt(spec, 'updateStrategy')
  if (strategy !== undefined) {
    checkEnum(strategy.type, ['RollingUpdate', 'OnDelete'], 'spec.updateStrategy.type', errors)
    const ru = objAt(strategy, 'rollingUpdate')
    if (ru !== undefined && strategy.type === 'OnDelete') errors.push(fieldError('spec.updateStrategy.rollingUpdate', 'Invalid', undefined, 'only allowed for updateStrategy \'RollingUpdate\''))
    if (ru !== undefined) {
      checkNonNegative(ru.partition, 'spec.updateStrategy.rollingUpdate.partition', errors)
      if (ru.maxUnavailable !== undefined && !checkIntOrPercent(ru.maxUnavailable, 'spec.updateStrategy.rollingUpdate.maxUnavailable', errors)) {
        errors.push(fieldError('spec.updateStrategy.rollingUpdate.maxUnavailable', 'Invalid', ru.maxUnavailable, 'must be greater than 0'))
      }
    }
  }
  const retention = objAt(spec, 'persistentVolumeClaimRetentionPolicy')
  if (retention !== undefined) {
    checkEnum(retention.whenDeleted, ['Retain', 'Delete'], 'spec.persistentVolumeClaimRetentionPolicy.whenDeleted', errors)
    checkEnum(retention.whenScaled, ['Retain', 'Delete'], 'spec.persistentVolumeClaimRetentionPolicy.whenScaled', errors)
  }
  const start = objAt(spec, 'ordinals')?.start
  checkNonNegative(start, 'spec.ordinals.start', errors)
}

/** Kubernetes lets a StatefulSet update change only replicas, ordinals, template, updateStrategy, the retention policy, minReadySeconds and revisionHistoryLimit. */
export function validateStatefulSetUpdate (cur: KObject, next: KObject, errors: string[]): void {
  const a = objAt(cur, 'spec') ?? {}
  const b = objAt(next, 'spec') ?? {}
  const mutable = new Set(['replicas', 'ordinals', 'template', 'updateStrategy', 'persistentVolumeClaimRetentionPolicy', 'minReadySeconds', 'revisionHistoryLimit'])
  const fields = new Set([...Object.keys(a), ...Object.keys(b)].filter(f => !mutable.has(f)))
  if ([...fields].some(f => !jsonEqual(a[f], b[f]))) {
    errors.push(fieldError('spec', 'Forbidden', undefined, 'updates to statefulset spec for fields other than \'replicas\', \'ordinals\', \'template\', \'updateStrategy\', \'persistentVolumeClaimRetentionPolicy\' and \'minReadySeconds\' are forbidden'))
  }
}

export function validateControllerRevision (obj: KObject, errors: string[]): void {
  if (typeof obj.revision !== 'number') errors.push(fieldError('revision', 'Required'))
  else checkNonNegative(obj.revision, 'revision', errors)
}

export function validateControllerRevisionUpdate (cur: KObject, next: KObject, errors: string[]): void {
  if (!jsonEqual(cur.data, next.data)) errors.push(fieldError('data', 'Invalid', undefined, 'field is immutable'))
}

// ---- ReplicationController -------------------------------------------------------------

export function defaultReplicationController (obj: KObject): void {
  const spec = objAt(obj, 'spec')
  if (spec === undefined) return
  spec.replicas ??= 1
  const labels = objAt(objAt(objAt(spec, 'template') ?? {}, 'metadata') ?? {}, 'labels')
  if (spec.selector === undefined && labels !== undefined) spec.selector = { ...labels }
  const podSpec = objAt(objAt(spec, 'template') ?? {}, 'spec')
  if (podSpec !== undefined) defaultPodSpec(podSpec)
}

export function validateReplicationController (obj: KObject, errors: string[]): void {
  const spec = objAt(obj, 'spec')
  if (spec === undefined) { errors.push(fieldError('spec', 'Required')); return }
  if (spec.replicas !== undefined) checkReplicas(spec.replicas, 'spec.replicas', errors)
  checkNonNegative(spec.minReadySeconds, 'spec.minReadySeconds', errors)
  const selector = objAt(spec, 'selector') ?? {}
  if (Object.keys(selector).length === 0) errors.push(fieldError('spec.selector', 'Required'))
  const template = objAt(spec, 'template')
  if (template === undefined) { errors.push(fieldError('spec.template', 'Required')); return }
  const labels = objAt(objAt(template, 'metadata') ?? {}, 'labels') ?? {}
  if (Object.entries(selector).some(([k, v]) => labels[k] !== v)) errors.push(fieldError('spec.template.metadata.labels', 'Invalid', labels, '`selector` does not match template `labels`'))
  const podSpec = objAt(template, 'spec')
  checkPodSpec(podSpec, 'spec.template.spec', errors)
  if (podSpec !== undefined) checkEnum(podSpec.restartPolicy, ['Always'], 'spec.template.spec.restartPolicy', errors)
}

// ---- PodDisruptionBudget ---------------------------------------------------------------

export function validatePodDisruptionBudget (obj: KObject, errors: string[]): void {
  const spec = objAt(obj, 'spec')
  if (spec === undefined) return
  if (spec.minAvailable !== undefined && spec.maxUnavailable !== undefined) errors.push(fieldError('spec', 'Invalid', undefined, 'minAvailable and maxUnavailable cannot be both set'))
  checkIntOrPercent(spec.minAvailable, 'spec.minAvailable', errors)
  checkIntOrPercent(spec.maxUnavailable, 'spec.maxUnavailable', errors)
  checkLabelSelector(objAt(spec, 'selector'), 'spec.selector', errors)
  checkEnum(spec.unhealthyPodEvictionPolicy, ['IfHealthyBudget', 'AlwaysAllow'], 'spec.unhealthyPodEvictionPolicy', errors)
}
