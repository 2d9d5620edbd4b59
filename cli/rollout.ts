// `shoal rollout status|history|undo`: a Deployment's progress, its
// revisions (from the ReplicaSets it owns) and rollback to one of them.
// May import: protocol/, ./kube.ts, ./client.ts, ./objects.ts, ./printers.ts, ./output.ts, ./manifests.ts, ./errors.ts, ./io.ts, commander, ms.
import { DEPLOYMENT, REPLICA_SET } from '../protocol/kinds.ts'
import ms from 'ms'
import { Command, Option } from 'commander'
import type { Deployment, ReplicaSet } from '../protocol/apps-v1.ts'
import { objectsOf } from '../protocol/k8s-columns.ts'
import type { ResourceType } from '../protocol/k8s.ts'
import { isPlainObject } from '../protocol/json.ts'
import { Kube, MERGE_PATCH, REVISION_ANNOTATION, collectionPath, connect, linkedSignal, namespaceOf, objectPath, query, targets } from './kube.ts'
import { CliError, EXIT_USAGE } from './errors.ts'
import type { Io } from './io.ts'
import { mergePatchBetween } from './manifests.ts'
import { withKind } from './objects.ts'
import { renderTable } from './output.ts'
import { typeLabel } from './printers.ts'

/** kubectl's rollout status for a Deployment: the line to print, and whether the rollout is done. */
export function deploymentRolloutStatus (d: Deployment): { message: string, done: boolean } {
  const name = d.metadata.name ?? ''
  const generation = d.metadata.generation ?? 0
  const observed = Number(d.status?.observedGeneration ?? 0)
  if (generation > observed) return { message: 'Waiting for deployment spec update to be observed...', done: false }
  if (objectsOf(d.status?.conditions).some(c => c.type === 'Progressing' && c.reason === 'ProgressDeadlineExceeded')) {
    throw new CliError(`deployment "${name}" exceeded its progress deadline`)
  }
  // The server's answer: a count that is not a number counts as none.
  const n = (v: number | undefined): number => typeof v === 'number' ? v : 0
  const desired = typeof d.spec?.replicas === 'number' ? d.spec.replicas : 1
  const updated = n(d.status?.updatedReplicas)
  const replicas = n(d.status?.replicas)
  const available = n(d.status?.availableReplicas)
  if (updated < desired) return { message: `Waiting for deployment "${name}" rollout to finish: ${updated} out of ${desired} new replicas have been updated...`, done: false }
  if (replicas > updated) return { message: `Waiting for deployment "${name}" rollout to finish: ${replicas - updated} old replicas are pending termination...`, done: false }
  if (available < updated) return { message: `Waiting for deployment "${name}" rollout to finish: ${available} of ${updated} updated replicas are available...`, done: false }
  return { message: `deployment "${name}" successfully rolled out`, done: true }
}

export function deploymentTarget (first: string, rest: string[]): { type: ResourceType, name: string } {
  const [target] = targets(first, rest.slice(0, first.includes('/') ? 0 : 1))
  if (target === undefined) throw new CliError('name the deployment: deploy/NAME', EXIT_USAGE)
  if (target.type.kind !== 'Deployment') throw new CliError(`rollout works on deployments, not ${target.type.plural}`, EXIT_USAGE)
  return target
}

export interface Revision { revision: number, rs: ReplicaSet }

export async function revisions (kube: Kube, type: ResourceType, d: Deployment): Promise<Revision[]> {
  const match = d.spec?.selector?.matchLabels
  const selector = isPlainObject(match) ? Object.entries(match).map(([k, v]) => `${k}=${String(v)}`).join(',') : undefined
  const list = await kube.list(collectionPath(REPLICA_SET, d.metadata.namespace) + query({ labelSelector: selector }))
  return list.items.map(rs => withKind(REPLICA_SET, rs))
    .filter(rs => (rs.metadata.ownerReferences ?? []).some(r => r.kind === type.kind && (d.metadata.uid !== undefined && r.uid !== '' ? r.uid === d.metadata.uid : r.name === d.metadata.name)))
    .map(rs => ({ revision: Number(rs.metadata.annotations?.[REVISION_ANNOTATION] ?? NaN), rs }))
    .filter(r => Number.isSafeInteger(r.revision))
    .sort((a, b) => a.revision - b.revision)
}

export function addRolloutCommands (program: Command, io: Io, nsOption: () => Option): void {
  const rollout = program.command('rollout').description('follow, list and undo the rollouts of a deployment')
  addStatusCommand(rollout, io, nsOption)
  addHistoryCommand(rollout, io, nsOption)
  addUndoCommand(rollout, io, nsOption)
}

function addStatusCommand (rollout: Command, io: Io, nsOption: () => Option): void {
  rollout.command('status')
    .description('wait until the deployment\'s rollout finishes, printing its progress')
    .argument('<target>', 'deploy/NAME')
    .argument('[name]')
    .addOption(nsOption())
    .option('--timeout <duration>', 'give up after this long, e.g. 60s or 5m (0: wait for ever)', '0')
    .action(async (target: string, name: string | undefined, opts: { namespace?: string, timeout: string }, cmd: Command) => {
      const timeoutMs = /^\d+$/.test(opts.timeout) ? Number(opts.timeout) * 1000 : ms(opts.timeout as ms.StringValue)
      if (typeof timeoutMs !== 'number' || !Number.isFinite(timeoutMs) || timeoutMs < 0) throw new CliError(`--timeout must be a duration such as 60s or 5m, not "${opts.timeout}"`, EXIT_USAGE)
      const w = deploymentTarget(target, name !== undefined ? [name] : [])
      const ns = namespaceOf(w.type, opts)
      const kube = await connect(cmd, io)
      await followRollout(kube, io, w, ns, timeoutMs)
    })
}

/**
 * Prints the deployment's rollout status each time it changes, until the
 * rollout is done, fails, times out (timeoutMs, 0 for never) or io.signal
 * aborts: a read, then a watch from there, both again whenever the server
 * ends the watch.
 */
async function followRollout (kube: Kube, io: Io, w: { type: ResourceType, name: string }, ns: string | undefined, timeoutMs: number): Promise<void> {
  const controller = linkedSignal(io, timeoutMs)
  let last = ''
  let done = false
  const check = (d: Deployment): void => {
    const s = deploymentRolloutStatus(d)
    if (s.message !== last) io.stdout.write(`${s.message}\n`)
    last = s.message
    if (s.done) {
      done = true
      controller.abort()
    }
  }
  try {
    while (!done) {
      const d = withKind(DEPLOYMENT, await kube.object(objectPath(w.type, ns, w.name)))
      check(d)
      if (done) break
      let failure: unknown
      await kube.watch(collectionPath(w.type, ns) + query({ watch: '1', fieldSelector: `metadata.name=${w.name}`, resourceVersion: d.metadata.resourceVersion }), e => {
        if (e.type === 'DELETED') failure = new CliError(`deployment "${w.name}" was deleted`)
        else {
          try { check(withKind(DEPLOYMENT, e.object)) } catch (err) { failure = err }
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
    .description('list the deployment\'s revisions (from the replica sets it owns)')
    .argument('<target>', 'deploy/NAME')
    .argument('[name]')
    .addOption(nsOption())
    .action(async (target: string, name: string | undefined, opts: { namespace?: string }, cmd: Command) => {
      const w = deploymentTarget(target, name !== undefined ? [name] : [])
      const kube = await connect(cmd, io)
      const d = withKind(DEPLOYMENT, await kube.object(objectPath(w.type, namespaceOf(w.type, opts), w.name)))
      const revs = await revisions(kube, w.type, d)
      io.stdout.write(`${typeLabel(w.type)}/${w.name}\n` + renderTable(['REVISION', 'CHANGE-CAUSE'],
        revs.map(r => [String(r.revision), r.rs.metadata.annotations?.['kubernetes.io/change-cause'] ?? '<none>'])))
    })
}

function addUndoCommand (rollout: Command, io: Io, nsOption: () => Option): void {
  rollout.command('undo')
    .description('roll the deployment back to its previous revision, or to --to-revision')
    .argument('<target>', 'deploy/NAME')
    .argument('[name]')
    .addOption(nsOption())
    .option('--to-revision <n>', 'the revision to go back to (default: the one before the current)', '0')
    .action(async (target: string, name: string | undefined, opts: { namespace?: string, toRevision: string }, cmd: Command) => {
      const to = /^\d{1,9}$/.test(opts.toRevision) ? Number(opts.toRevision) : NaN
      if (Number.isNaN(to)) throw new CliError(`--to-revision must be a non-negative integer, not "${opts.toRevision}"`, EXIT_USAGE)
      const w = deploymentTarget(target, name !== undefined ? [name] : [])
      const path = objectPath(w.type, namespaceOf(w.type, opts), w.name)
      const kube = await connect(cmd, io)
      const d = withKind(DEPLOYMENT, await kube.object(path))
      const revs = await revisions(kube, w.type, d)
      const chosen = to > 0 ? revs.find(r => r.revision === to) : revs.at(-2)
      if (chosen === undefined) throw new CliError(to > 0 ? `unable to find specified revision ${to} in history` : `no rollout history found for deployment "${w.name}"`)
      const template = structuredClone(chosen.rs.spec?.template)
      // The controller adds this label to each replica set's template; the deployment's template has none.
      const labels = template?.metadata?.labels
      if (isPlainObject(labels)) delete labels['pod-template-hash']
      const current = d.spec?.template
      if (JSON.stringify(mergePatchBetween(current, template)) === '{}') {
        io.stdout.write(`${typeLabel(w.type)}/${w.name} skipped rollback (current template already matches revision ${chosen.revision})\n`)
        return
      }
      await kube.send('PATCH', path, { spec: { template: mergePatchBetween(current, template) } }, MERGE_PATCH)
      io.stdout.write(`${typeLabel(w.type)}/${w.name} rolled back\n`)
    })
}
