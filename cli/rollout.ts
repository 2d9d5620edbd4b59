// `shoal rollout status|history|undo`: a workload's progress, its revisions
// and rollback to one of them, as kubectl does them. What differs by kind
// is one entry of ROLLOUT_KINDS: Deployments keep their revisions as the
// ReplicaSets they own and go back with a merge patch of the template;
// DaemonSets and StatefulSets keep ControllerRevisions and go back with the
// revision's data as a strategic merge patch (`$patch: replace` on the
// template).
// May import: protocol/, ./kube.ts, ./client.ts, ./objects.ts, ./printers.ts, ./output.ts, ./manifests.ts, ./errors.ts, ./io.ts, commander, ms.
import { CONTROLLER_REVISION, DAEMON_SET, DEPLOYMENT, REPLICA_SET, STATEFUL_SET } from '../protocol/kinds.ts'
import ms from 'ms'
import { Command, Option } from 'commander'
import type { DaemonSet, Deployment, StatefulSet } from '../protocol/apps-v1.ts'
import { objectsOf } from '../protocol/k8s-columns.ts'
import type { KObject, LabelSelector, ResourceType } from '../protocol/k8s.ts'
import { isPlainObject, jsonEqual } from '../protocol/json.ts'
import { formatLabelSelector } from '../protocol/selector.ts'
import { Kube, MERGE_PATCH, REVISION_ANNOTATION, STRATEGIC_MERGE_PATCH, collectionPath, connect, linkedSignal, namespaceOf, objectPath, query, targets } from './kube.ts'
import { CliError, EXIT_USAGE } from './errors.ts'
import type { Io } from './io.ts'
import { mergePatchBetween } from './manifests.ts'
import { withKind } from './objects.ts'
import { renderTable } from './output.ts'
import { typeLabel } from './printers.ts'

const CHANGE_CAUSE = 'kubernetes.io/change-cause'

/** One line of a rollout's progress, and whether the rollout is done. */
export interface RolloutStatus { message: string, done: boolean }

/** One revision of a workload: its number, the object that keeps it (a ReplicaSet or a ControllerRevision). */
export interface Revision { revision: number, object: KObject }

/** A patch for the API: its body and content type. */
interface Patch { body: unknown, contentType: string }

/** What `rollout` needs of a kind. */
interface RolloutKind {
  type: ResourceType
  /** kubectl's status viewer: the line to print and whether it is done; throws when the rollout failed */
  status: (obj: KObject) => RolloutStatus
  /** the object's revisions, oldest first */
  revisions: (kube: Kube, obj: KObject) => Promise<Revision[]>
  /** the patch that puts `rev`'s template back; undefined when the object already has it */
  undo: (obj: KObject, rev: Revision) => Patch | undefined
  /** the error when there is no revision before the current one */
  noPrevious: (name: string) => string
}

/** A count from the server's answer: one that is not a number counts as none. */
function count (v: number | undefined): number {
  return typeof v === 'number' ? v : 0
}

/** kubectl's rollout status for a Deployment. */
export function deploymentRolloutStatus (d: Deployment): RolloutStatus {
  const name = d.metadata.name ?? ''
  const generation = d.metadata.generation ?? 0
  const observed = Number(d.status?.observedGeneration ?? 0)
  if (generation > observed) return { message: 'Waiting for deployment spec update to be observed...', done: false }
  if (objectsOf(d.status?.conditions).some(c => c.type === 'Progressing' && c.reason === 'ProgressDeadlineExceeded')) {
    throw new CliError(`deployment "${name}" exceeded its progress deadline`)
  }
  const desired = typeof d.spec?.replicas === 'number' ? d.spec.replicas : 1
  const updated = count(d.status?.updatedReplicas)
  const replicas = count(d.status?.replicas)
  const available = count(d.status?.availableReplicas)
  if (updated < desired) return { message: `Waiting for deployment "${name}" rollout to finish: ${updated} out of ${desired} new replicas have been updated...`, done: false }
  if (replicas > updated) return { message: `Waiting for deployment "${name}" rollout to finish: ${replicas - updated} old replicas are pending termination...`, done: false }
  if (available < updated) return { message: `Waiting for deployment "${name}" rollout to finish: ${available} of ${updated} updated replicas are available...`, done: false }
  return { message: `deployment "${name}" successfully rolled out`, done: true }
}

/** kubectl's rollout status for a DaemonSet: updated, then available, out of desiredNumberScheduled. */
export function daemonSetRolloutStatus (ds: DaemonSet): RolloutStatus {
  const name = ds.metadata.name ?? ''
  const strategy = ds.spec?.updateStrategy?.type ?? 'RollingUpdate'
  if (strategy !== 'RollingUpdate') throw new CliError('rollout status is only available for RollingUpdate strategy type')
  if ((ds.metadata.generation ?? 0) > Number(ds.status?.observedGeneration ?? 0)) return { message: 'Waiting for daemon set spec update to be observed...', done: false }
  const desired = count(ds.status?.desiredNumberScheduled)
  const updated = count(ds.status?.updatedNumberScheduled)
  const available = count(ds.status?.numberAvailable)
  if (updated < desired) return { message: `Waiting for daemon set "${name}" rollout to finish: ${updated} out of ${desired} new pods have been updated...`, done: false }
  if (available < desired) return { message: `Waiting for daemon set "${name}" rollout to finish: ${available} of ${desired} updated pods are available...`, done: false }
  return { message: `daemon set "${name}" successfully rolled out`, done: true }
}

/**
 * kubectl's rollout status for a StatefulSet: every replica ready, then with
 * a partition (always there once defaulted) replicas - partition updated,
 * else the current revision caught up with the update revision.
 */
export function statefulSetRolloutStatus (sts: StatefulSet): RolloutStatus {
  const strategy = sts.spec?.updateStrategy
  if ((strategy?.type ?? 'RollingUpdate') !== 'RollingUpdate') throw new CliError('rollout status is only available for RollingUpdate strategy type')
  const observed = Number(sts.status?.observedGeneration ?? 0)
  if (observed === 0 || (sts.metadata.generation ?? 0) > observed) return { message: 'Waiting for statefulset spec update to be observed...', done: false }
  const replicas = sts.spec?.replicas
  const ready = count(sts.status?.readyReplicas)
  if (typeof replicas === 'number' && ready < replicas) return { message: `Waiting for ${replicas - ready} pods to be ready...`, done: false }
  const updated = count(sts.status?.updatedReplicas)
  if (strategy?.rollingUpdate !== undefined) {
    const partition = strategy.rollingUpdate.partition
    if (typeof replicas === 'number' && typeof partition === 'number' && updated < replicas - partition) {
      return { message: `Waiting for partitioned roll out to finish: ${updated} out of ${replicas - partition} new pods have been updated...`, done: false }
    }
    return { message: `partitioned roll out complete: ${updated} new pods have been updated...`, done: true }
  }
  const current = sts.status?.currentRevision ?? ''
  const update = sts.status?.updateRevision ?? ''
  if (update !== current) return { message: `waiting for statefulset rolling update to complete ${updated} pods at revision ${update}...`, done: false }
  return { message: `statefulset rolling update complete ${count(sts.status?.currentReplicas)} pods at revision ${current}...`, done: true }
}

/** The objects of `type` in `owner`'s namespace that `owner` controls and its selector selects. */
async function owned (kube: Kube, type: ResourceType, owner: KObject, selector: LabelSelector | undefined): Promise<KObject[]> {
  const labelSelector = isPlainObject(selector) ? formatLabelSelector(selector) : undefined
  const list = await kube.list(collectionPath(type, owner.metadata.namespace) + query({ labelSelector }))
  const uid = owner.metadata.uid
  return list.items.filter(o => (o.metadata.ownerReferences ?? []).some(r => r.kind === owner.kind && (uid !== undefined && r.uid !== '' ? r.uid === uid : r.name === owner.metadata.name)))
}

function byRevision (revs: Revision[]): Revision[] {
  return revs.filter(r => Number.isSafeInteger(r.revision)).sort((a, b) => a.revision - b.revision)
}

/**
 * A workload that keeps ControllerRevisions (DaemonSets; StatefulSets
 * too): history from them, undo as kubectl does it, the revision's data
 * as a strategic merge patch, skipped when the template already matches.
 */
function controllerRevisionKind (type: ResourceType, status: (obj: KObject) => RolloutStatus): RolloutKind {
  return {
    type,
    status,
    revisions: async (kube, obj) => {
      const spec = obj.spec as { selector?: LabelSelector } | undefined
      const revs = await owned(kube, CONTROLLER_REVISION, obj, spec?.selector)
      return byRevision(revs.map(r => withKind(CONTROLLER_REVISION, r)).map(r => ({ revision: r.revision, object: r })))
    },
    undo: (obj, rev) => {
      const data = (rev.object as { data?: unknown }).data
      const template = isPlainObject(data) && isPlainObject(data.spec) && isPlainObject(data.spec.template) ? { ...data.spec.template } : undefined
      if (template !== undefined) delete template.$patch
      const current = (obj.spec as { template?: unknown } | undefined)?.template
      if (template !== undefined && jsonEqual(template, current)) return undefined
      return { body: data, contentType: STRATEGIC_MERGE_PATCH }
    },
    noPrevious: () => 'no last revision to roll back to'
  }
}

const deploymentKind: RolloutKind = {
  type: DEPLOYMENT,
  status: obj => deploymentRolloutStatus(withKind(DEPLOYMENT, obj)),
  revisions: async (kube, obj) => {
    const d = withKind(DEPLOYMENT, obj)
    const sets = (await owned(kube, REPLICA_SET, d, d.spec?.selector)).map(rs => withKind(REPLICA_SET, rs))
    return byRevision(sets.map(rs => ({ revision: Number(rs.metadata.annotations?.[REVISION_ANNOTATION] ?? NaN), object: rs })))
  },
  undo: (obj, rev) => {
    const template = structuredClone(withKind(REPLICA_SET, rev.object).spec?.template)
    // The controller adds this label to each replica set's template; the deployment's template has none.
    const labels = template?.metadata?.labels
    if (isPlainObject(labels)) delete labels['pod-template-hash']
    const patch = mergePatchBetween(withKind(DEPLOYMENT, obj).spec?.template, template)
    return JSON.stringify(patch) === '{}' ? undefined : { body: { spec: { template: patch } }, contentType: MERGE_PATCH }
  },
  noPrevious: name => `no rollout history found for deployment "${name}"`
}

/** The kinds `rollout` works on, by kind name. */
const ROLLOUT_KINDS: Readonly<Record<string, RolloutKind>> = {
  Deployment: deploymentKind,
  DaemonSet: controllerRevisionKind(DAEMON_SET, obj => daemonSetRolloutStatus(withKind(DAEMON_SET, obj))),
  StatefulSet: controllerRevisionKind(STATEFUL_SET, obj => statefulSetRolloutStatus(withKind(STATEFUL_SET, obj)))
}

const KIND_NAMES = Object.values(ROLLOUT_KINDS).map(k => k.type.plural).join(', ')
const TARGET_HELP = 'KIND/NAME: deploy/NAME, ds/NAME, sts/NAME'

/** The workload a rollout command names, with its entry in ROLLOUT_KINDS. */
export function rolloutTarget (first: string, rest: string[]): { type: ResourceType, name: string, kind: RolloutKind } {
  const [target] = targets(first, rest.slice(0, first.includes('/') ? 0 : 1))
  if (target === undefined) throw new CliError(`name the workload: ${TARGET_HELP}`, EXIT_USAGE)
  const kind = ROLLOUT_KINDS[target.type.kind]
  if (kind === undefined) throw new CliError(`rollout works on ${KIND_NAMES}, not ${target.type.plural}`, EXIT_USAGE)
  return { ...target, kind }
}

export function addRolloutCommands (program: Command, io: Io, nsOption: () => Option): void {
  const rollout = program.command('rollout').description(`follow, list and undo the rollouts of a workload (${KIND_NAMES})`)
  addStatusCommand(rollout, io, nsOption)
  addHistoryCommand(rollout, io, nsOption)
  addUndoCommand(rollout, io, nsOption)
}

function addStatusCommand (rollout: Command, io: Io, nsOption: () => Option): void {
  rollout.command('status')
    .description('wait until the rollout finishes, printing its progress')
    .argument('<target>', TARGET_HELP)
    .argument('[name]')
    .addOption(nsOption())
    .option('--timeout <duration>', 'give up after this long, e.g. 60s or 5m (0: wait for ever)', '0')
    .action(async (target: string, name: string | undefined, opts: { namespace?: string, timeout: string }, cmd: Command) => {
      const timeoutMs = /^\d+$/.test(opts.timeout) ? Number(opts.timeout) * 1000 : ms(opts.timeout as ms.StringValue)
      if (typeof timeoutMs !== 'number' || !Number.isFinite(timeoutMs) || timeoutMs < 0) throw new CliError(`--timeout must be a duration such as 60s or 5m, not "${opts.timeout}"`, EXIT_USAGE)
      const w = rolloutTarget(target, name !== undefined ? [name] : [])
      const ns = namespaceOf(w.type, opts)
      const kube = await connect(cmd, io)
      await followRollout(kube, io, w, ns, timeoutMs)
    })
}

/**
 * Prints the workload's rollout status each time it changes, until the
 * rollout is done, fails, times out (timeoutMs, 0 for never) or io.signal
 * aborts: a read, then a watch from there, both again whenever the server
 * ends the watch.
 */
async function followRollout (kube: Kube, io: Io, w: { type: ResourceType, name: string, kind: RolloutKind }, ns: string | undefined, timeoutMs: number): Promise<void> {
  const controller = linkedSignal(io, timeoutMs)
  let last = ''
  let done = false
  const check = (obj: KObject): void => {
    const s = w.kind.status(obj)
    if (s.message !== last) io.stdout.write(`${s.message}\n`)
    last = s.message
    if (s.done) {
      done = true
      controller.abort()
    }
  }
  try {
    while (!done) {
      const obj = await kube.object(objectPath(w.type, ns, w.name))
      check(obj)
      if (done) break
      let failure: unknown
      await kube.watch(collectionPath(w.type, ns) + query({ watch: '1', fieldSelector: `metadata.name=${w.name}`, resourceVersion: obj.metadata.resourceVersion }), e => {
        if (e.type === 'DELETED') failure = new CliError(`${w.type.kind.toLowerCase()} "${w.name}" was deleted`)
        else {
          try { check(e.object) } catch (err) { failure = err }
        }
        if (failure !== undefined) controller.abort()
      }, controller.signal)
      if (failure !== undefined) throw failure
      if (done) break
      if (controller.signal.aborted) {
        const reason: unknown = controller.signal.reason
        throw reason instanceof CliError ? reason : new CliError('interrupted before the rollout finished')
      }
      // The server ended the watch: look again after a breath, as kubectl does.
      await new Promise(resolve => setTimeout(resolve, 500))
    }
  } finally {
    controller.abort()
  }
}

function addHistoryCommand (rollout: Command, io: Io, nsOption: () => Option): void {
  rollout.command('history')
    .description('list the revisions (a deployment\'s replica sets, a daemon set\'s or stateful set\'s controller revisions)')
    .argument('<target>', TARGET_HELP)
    .argument('[name]')
    .addOption(nsOption())
    .action(async (target: string, name: string | undefined, opts: { namespace?: string }, cmd: Command) => {
      const w = rolloutTarget(target, name !== undefined ? [name] : [])
      const kube = await connect(cmd, io)
      const obj = await kube.object(objectPath(w.type, namespaceOf(w.type, opts), w.name))
      const revs = await w.kind.revisions(kube, withKind(w.type, obj))
      io.stdout.write(`${typeLabel(w.type)}/${w.name}\n` + renderTable(['REVISION', 'CHANGE-CAUSE'],
        revs.map(r => [String(r.revision), r.object.metadata.annotations?.[CHANGE_CAUSE] ?? '<none>'])))
    })
}

function addUndoCommand (rollout: Command, io: Io, nsOption: () => Option): void {
  rollout.command('undo')
    .description('roll back to the previous revision, or to --to-revision')
    .argument('<target>', TARGET_HELP)
    .argument('[name]')
    .addOption(nsOption())
    .option('--to-revision <n>', 'the revision to go back to (default: the one before the current)', '0')
    .action(async (target: string, name: string | undefined, opts: { namespace?: string, toRevision: string }, cmd: Command) => {
      const to = /^\d{1,9}$/.test(opts.toRevision) ? Number(opts.toRevision) : NaN
      if (Number.isNaN(to)) throw new CliError(`--to-revision must be a non-negative integer, not "${opts.toRevision}"`, EXIT_USAGE)
      const w = rolloutTarget(target, name !== undefined ? [name] : [])
      const path = objectPath(w.type, namespaceOf(w.type, opts), w.name)
      const kube = await connect(cmd, io)
      const obj = withKind(w.type, await kube.object(path))
      const revs = await w.kind.revisions(kube, obj)
      const chosen = to > 0 ? revs.find(r => r.revision === to) : revs.at(-2)
      if (chosen === undefined) throw new CliError(to > 0 ? `unable to find specified revision ${to} in history` : w.kind.noPrevious(w.name))
      const patch = w.kind.undo(obj, chosen)
      if (patch === undefined) {
        io.stdout.write(`${typeLabel(w.type)}/${w.name} skipped rollback (current template already matches revision ${chosen.revision})\n`)
        return
      }
      await kube.send('PATCH', path, patch.body, patch.contentType)
      io.stdout.write(`${typeLabel(w.type)}/${w.name} rolled back\n`)
    })
}
