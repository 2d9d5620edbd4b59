// `shoal describe` for the workload kinds beyond Deployments and
// ReplicaSets, in kubectl describe's layout: Jobs, CronJobs (with the next
// scheduled run, protocol/cron.ts), DaemonSets, StatefulSets,
// ReplicationControllers and PodDisruptionBudgets; and which pods a
// workload's `Pods Status` line counts (those its selector matches). Pure
// functions over the typed kinds; ./printers.ts calls them.
// May import: protocol/, ./describe-text.ts.
import { CRON_JOB, DAEMON_SET, JOB, POD_DISRUPTION_BUDGET, REPLICATION_CONTROLLER, STATEFUL_SET } from '../protocol/kinds.ts'
import type { DaemonSet, StatefulSet } from '../protocol/apps-v1.ts'
import type { CronJob, Job, JobSpec } from '../protocol/batch-v1.ts'
import type { Pod, ReplicationController } from '../protocol/core-v1.ts'
import { nextScheduledTime } from '../protocol/cron.ts'
import { humanDuration, jobDuration, num, objectsOf, selectorText, str } from '../protocol/k8s-columns.ts'
import { isOfType } from '../protocol/k8s.ts'
import type { KObject, LabelSelector } from '../protocol/k8s.ts'
import { isPlainObject } from '../protocol/json.ts'
import type { PodDisruptionBudget } from '../protocol/policy-v1.ts'
import { formatLabelSelector } from '../protocol/selector.ts'
import { conditionsText, controlledByLine, line, podsStatusLine, podTemplateText, timeText } from './describe-text.ts'

const orUnset = (v: unknown): string | number => typeof v === 'number' ? v : '<unset>'

/** A LabelSelector in kubectl's string form; `<none>` when it selects by nothing, `<unset>` when there is none. */
function labelSelectorText (sel: LabelSelector | undefined): string {
  if (sel === undefined || !isPlainObject(sel)) return '<unset>'
  const { matchLabels, matchExpressions } = sel as LabelSelector
  return str(formatLabelSelector({ matchLabels: isPlainObject(matchLabels) ? matchLabels : {}, matchExpressions: objectsOf(matchExpressions) }))
}

/** The label selector (string form) of the pods a workload's `Pods Status` counts; undefined for a kind without that line. */
export function podSelectorOf (o: KObject): string | undefined {
  let text: string | undefined
  if (isOfType(DAEMON_SET, o) || isOfType(STATEFUL_SET, o)) text = labelSelectorText(o.spec?.selector)
  else if (isOfType(REPLICATION_CONTROLLER, o)) text = selectorText(o.spec?.selector)
  return text === undefined || text.startsWith('<') ? undefined : text
}

function jobSpecLines (spec: JobSpec | undefined): string {
  return line('Parallelism', orUnset(spec?.parallelism)) + line('Completions', orUnset(spec?.completions)) +
    line('Completion Mode', str(spec?.completionMode, 'NonIndexed')) + line('Suspend', String(spec?.suspend === true)) +
    (typeof spec?.backoffLimit === 'number' ? line('Backoff Limit', spec.backoffLimit) : '') +
    (typeof spec?.ttlSecondsAfterFinished === 'number' ? line('TTL Seconds After Finished', spec.ttlSecondsAfterFinished) : '')
}

function jobStatusLines (o: Job, now: number): string {
  const st = o.status
  const started = typeof st?.startTime === 'string'
  const ready = typeof st?.ready === 'number' ? ` (${st.ready} Ready)` : ''
  return (started ? line('Start Time', timeText(st?.startTime)) : '') +
    (typeof st?.completionTime === 'string' ? line('Completed At', timeText(st.completionTime)) : '') +
    (started ? line('Duration', jobDuration(o, now)) : '') +
    (typeof o.spec?.activeDeadlineSeconds === 'number' ? line('Active Deadline Seconds', `${o.spec.activeDeadlineSeconds}s`) : '') +
    line('Pods Statuses', `${num(st?.active)} Active${ready} / ${num(st?.succeeded)} Succeeded / ${num(st?.failed)} Failed`) +
    (o.spec?.completionMode === 'Indexed' ? line('Completed Indexes', str(st?.completedIndexes)) : '')
}

function jobDetails (o: Job, now: number): string {
  return line('Selector', labelSelectorText(o.spec?.selector)) + controlledByLine(o) + jobSpecLines(o.spec) +
    jobStatusLines(o, now) + podTemplateText(o.spec?.template) + conditionsText(o.status?.conditions)
}

/** When the CronJob next runs: the time and how far off, or why it will not. */
function nextScheduleText (o: CronJob, now: number): string {
  if (o.spec?.suspend === true) return '<none> (suspended)'
  const next = typeof o.spec?.schedule === 'string' ? nextScheduledTime(o.spec.schedule, o.spec.timeZone, now) : undefined
  return next === undefined ? '<none>' : `${timeText(new Date(next).toISOString())} (in ${humanDuration(next - now)})`
}

function cronJobDetails (o: CronJob, now: number): string {
  const spec = o.spec
  const job = spec?.jobTemplate?.spec
  const deadline = spec?.startingDeadlineSeconds
  const active = objectsOf(o.status?.active).map(r => str(r.name))
  return line('Schedule', str(spec?.schedule, '')) + line('Time Zone', str(spec?.timeZone, '<unset>')) +
    line('Concurrency Policy', str(spec?.concurrencyPolicy, 'Allow')) + line('Suspend', spec?.suspend === true ? 'True' : 'False') +
    line('Successful Job History Limit', orUnset(spec?.successfulJobsHistoryLimit)) + line('Failed Job History Limit', orUnset(spec?.failedJobsHistoryLimit)) +
    line('Starting Deadline Seconds', typeof deadline === 'number' ? `${deadline}s` : '<unset>') +
    line('Selector', labelSelectorText(job?.selector)) + line('Parallelism', orUnset(job?.parallelism)) + line('Completions', orUnset(job?.completions)) +
    podTemplateText(job?.template) +
    line('Last Schedule Time', typeof o.status?.lastScheduleTime === 'string' ? timeText(o.status.lastScheduleTime) : '<unset>') +
    line('Active Jobs', active.length > 0 ? active.join(', ') : '<none>') + line('Next Schedule', nextScheduleText(o, now))
}

function daemonSetDetails (o: DaemonSet, pods: Pod[]): string {
  const st = o.status
  return line('Selector', labelSelectorText(o.spec?.selector)) + line('Node-Selector', selectorText(o.spec?.template?.spec?.nodeSelector)) +
    `Desired Number of Nodes Scheduled: ${num(st?.desiredNumberScheduled)}\n` +
    `Current Number of Nodes Scheduled: ${num(st?.currentNumberScheduled)}\n` +
    `Number of Nodes Scheduled with Up-to-date Pods: ${num(st?.updatedNumberScheduled)}\n` +
    `Number of Nodes Scheduled with Available Pods: ${num(st?.numberAvailable)}\n` +
    `Number of Nodes Misscheduled: ${num(st?.numberMisscheduled)}\n` +
    podsStatusLine(pods) + podTemplateText(o.spec?.template)
}

function statefulSetDetails (o: StatefulSet, pods: Pod[]): string {
  const strategy = o.spec?.updateStrategy
  const rolling = isPlainObject(strategy?.rollingUpdate) ? strategy.rollingUpdate : undefined
  const replicas = typeof o.spec?.replicas === 'number' ? o.spec.replicas : 1
  return line('Selector', labelSelectorText(o.spec?.selector)) + line('Replicas', `${replicas} desired | ${num(o.status?.replicas)} total`) +
    line('Update Strategy', str(strategy?.type, 'RollingUpdate')) +
    (typeof rolling?.partition === 'number' ? line('Partition', rolling.partition, 1) : '') +
    (rolling?.maxUnavailable !== undefined ? line('MaxUnavailable', String(rolling.maxUnavailable), 1) : '') +
    podsStatusLine(pods) + podTemplateText(o.spec?.template)
}

function replicationControllerDetails (o: ReplicationController, pods: Pod[]): string {
  const replicas = typeof o.spec?.replicas === 'number' ? o.spec.replicas : 1
  return line('Selector', selectorText(o.spec?.selector)) + line('Replicas', `${num(o.status?.replicas)} current / ${replicas} desired`) +
    podsStatusLine(pods) + podTemplateText(o.spec?.template) + conditionsText(o.status?.conditions)
}

function pdbDetails (o: PodDisruptionBudget): string {
  const spec = o.spec
  const st = o.status
  const budget = spec?.minAvailable !== undefined
    ? line('Min available', String(spec.minAvailable))
    : spec?.maxUnavailable !== undefined ? line('Max unavailable', String(spec.maxUnavailable)) : ''
  return budget + line('Selector', labelSelectorText(spec?.selector)) + 'Status:\n' +
    line('Allowed disruptions', num(st?.disruptionsAllowed), 2) + line('Current', num(st?.currentHealthy), 2) +
    line('Desired', num(st?.desiredHealthy), 2) + line('Total', num(st?.expectedPods), 2)
}

/** The kind's own describe lines, or undefined for a kind this file does not describe. */
export function workloadKindDetails (o: KObject, now: number, pods: Pod[]): string | undefined {
  if (isOfType(JOB, o)) return jobDetails(o, now)
  if (isOfType(CRON_JOB, o)) return cronJobDetails(o, now)
  if (isOfType(DAEMON_SET, o)) return daemonSetDetails(o, pods)
  if (isOfType(STATEFUL_SET, o)) return statefulSetDetails(o, pods)
  if (isOfType(REPLICATION_CONTROLLER, o)) return replicationControllerDetails(o, pods)
  if (isOfType(POD_DISRUPTION_BUDGET, o)) return pdbDetails(o)
  return undefined
}
