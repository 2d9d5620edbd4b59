// The kubectl-like commands of `shoal` (apply, get, describe, delete, scale,
// logs, exec, create namespace, create job --from, cordon, uncordon, drain, events, rollout) over the
// Kubernetes REST layout: paths per resource type, manifests read from YAML
// or JSON, Status errors as one line. Errors about one object of many are
// printed and the others still done (as kubectl does); the run then exits 1.
// Talking to the API is in ./kube.ts, manifests in ./manifests.ts, rollouts
// in ./rollout.ts, draining a node in ./drain.ts, `shoal kubeconfig` in ./kubeconfig.ts.
// May import: protocol/, ./kube.ts, ./kubeconfig.ts, ./manifests.ts, ./rollout.ts, ./drain.ts,
// ./objects.ts, ./printers.ts, ./describe-workloads.ts, ./output.ts, ./errors.ts, ./io.ts, commander, yaml.
import { CRON_JOB, EVENT, JOB, NODE, kindOfName } from '../protocol/kinds.ts'
import type { CronJob, Job } from '../protocol/batch-v1.ts'
import { Command, Option } from 'commander'
import { stringify } from 'yaml'
import type { Event } from '../protocol/core-v1.ts'
import type { KObject, ResourceType } from '../protocol/k8s.ts'
import { isPlainObject } from '../protocol/json.ts'
import { Failures, Kube, MERGE_PATCH, STRATEGIC_MERGE_PATCH, collectionPath, connect, controlledPods, linkedSignal, namespaceOf, nowOf, objectPath, query, resourceType, resourceTypes, targets } from './kube.ts'
import { podSelectorOf } from './describe-workloads.ts'
import { CliError, EXIT_FAILED, EXIT_USAGE } from './errors.ts'
import type { Io } from './io.ts'
import { isContainedIn, loadManifests, placeManifest } from './manifests.ts'
import { withKind } from './objects.ts'
import { renderJson } from './output.ts'
import { objectName, renderDescribe, renderObjects, tableRows, typeLabel } from './printers.ts'
import { addKubeconfigCommand } from './kubeconfig.ts'
import { addRolloutCommands } from './rollout.ts'
import { DEFAULT_DRAIN_TIMEOUT, drainPods, parseDrainTimeout, parseGracePeriod } from './drain.ts'

const GET_OUTPUTS = ['wide', 'json', 'yaml', 'name']
const CASCADE: Record<string, string> = { background: 'Background', foreground: 'Foreground', orphan: 'Orphan' }

interface GetOptions { namespace?: string, allNamespaces?: boolean, selector?: string, fieldSelector?: string, output?: string, watch?: boolean }

async function runGet (kinds: string, names: string[], opts: GetOptions, cmd: Command, io: Io): Promise<void> {
  const output = opts.output ?? ''
  if (output !== '' && !GET_OUTPUTS.includes(output)) throw new CliError(`-o must be wide, json, yaml or name, not "${output}"`, EXIT_USAGE)
  const byName = names.length > 0 || kinds.includes('/')
  const wanted = byName ? targets(kinds, names) : []
  const types = byName ? [...new Set(wanted.map(w => w.type))] : [...new Set(kinds.split(',').filter(k => k !== '').flatMap(resourceTypes))]
  if (byName && !kinds.includes('/') && kinds.includes(',')) throw new CliError('give one kind with names, or KIND/NAME for each', EXIT_USAGE)
  if (types.length === 0) throw new CliError('name a resource type, e.g. shoal get pods', EXIT_USAGE)
  if (opts.watch === true && types.length !== 1) throw new CliError('-w watches one resource type at a time', EXIT_USAGE)
  const allNs = opts.allNamespaces === true
  const kube = await connect(cmd, io)
  const failures = new Failures(io)
  const groups: Array<{ type: ResourceType, items: KObject[] }> = []
  let resourceVersion: string | undefined
  for (const type of types) {
    const ns = allNs ? undefined : namespaceOf(type, opts)
    if (byName) {
      const items: KObject[] = []
      for (const w of wanted.filter(x => x.type === type)) {
        try {
          items.push(withKind(type, await kube.object(objectPath(type, namespaceOf(type, opts), w.name))))
        } catch (err) { failures.add(err) }
      }
      groups.push({ type, items })
    } else {
      const list = await kube.list(collectionPath(type, ns) + query({ labelSelector: opts.selector, fieldSelector: opts.fieldSelector }))
      resourceVersion = list.resourceVersion
      groups.push({ type, items: list.items.map(o => withKind(type, o)) })
    }
  }
  const all = groups.flatMap(g => g.items)
  const now = nowOf(io)
  const tableOpts = (type: ResourceType): { wide: boolean, withNamespace: boolean, withKind: boolean, now: number } =>
    ({ wide: output === 'wide', withNamespace: allNs && type.namespaced, withKind: types.length > 1, now })
  if (output === 'json' || output === 'yaml') {
    const single = byName && wanted.length === 1 && all.length === 1
    const value = single ? all[0] : { apiVersion: 'v1', kind: 'List', metadata: { resourceVersion: '' }, items: all }
    io.stdout.write(output === 'json' ? renderJson(value) : stringify(value))
  } else if (output === 'name') {
    for (const g of groups) for (const o of g.items) io.stdout.write(`${objectName(g.type, o)}\n`)
  } else if (all.length > 0) {
    io.stdout.write(groups.filter(g => g.items.length > 0).map(g => renderObjects(g.type, g.items, tableOpts(g.type))).join('\n'))
  }
  if (all.length === 0 && failures.pending === undefined && output !== 'json' && output !== 'yaml') {
    const scope = allNs || types.every(t => !t.namespaced) ? '' : ` in ${opts.namespace ?? 'default'} namespace`
    io.stderr.write(`No resources found${scope}.\n`)
  }
  failures.finish()
  const [type] = types
  if (opts.watch !== true || type === undefined) return
  const ns = allNs ? undefined : namespaceOf(type, opts)
  const fieldSelector = byName ? [`metadata.name=${wanted[0]?.name ?? ''}`, ...(opts.fieldSelector !== undefined ? [opts.fieldSelector] : [])].join(',') : opts.fieldSelector
  const path = collectionPath(type, ns) + query({ watch: '1', resourceVersion, labelSelector: opts.selector, fieldSelector })
  const controller = linkedSignal(io)
  let headerShown = all.length > 0 || output !== ''
  await kube.watch(path, e => {
    const o = withKind(type, e.object)
    if (output === 'json') io.stdout.write(renderJson(o))
    else if (output === 'yaml') io.stdout.write(`---\n${stringify(o)}`)
    else if (output === 'name') io.stdout.write(`${objectName(type, o)}\n`)
    else {
      const { head, rows } = tableRows(type, [o], { ...tableOpts(type), now: nowOf(io) })
      const lines = renderObjectsLines(head, rows)
      io.stdout.write((headerShown ? lines.slice(1) : lines).join('\n') + '\n')
      headerShown = true
    }
  }, controller.signal)
  controller.abort()
}

/**
 * `logs -f`: prints the log as it arrives from the first server that answers,
 * until the server ends it (the container ended) or io.signal aborts. Only
 * the headers are under the client's timeout; a 5xx or an unreachable server
 * moves on to the next one, a 4xx is the answer.
 */
async function followLogs (kube: Kube, path: string, io: Io): Promise<void> {
  const controller = linkedSignal(io)
  let last = ''
  try {
    for (const server of kube.client.servers) {
      if (controller.signal.aborted) return
      const headers = new AbortController()
      const timer = setTimeout(() => { headers.abort(new Error(`no answer within ${kube.client.timeoutMs} ms`)) }, kube.client.timeoutMs)
      let res: Response
      try {
        res = await kube.client.fetch(server + path, {
          headers: { authorization: `Bearer ${kube.client.token}`, accept: 'text/plain' },
          signal: AbortSignal.any([controller.signal, headers.signal])
        })
      } catch (err) {
        if (controller.signal.aborted) return
        const cause = (err as Error).cause
        last = `${server}: ${cause instanceof Error ? cause.message : (err as Error).message}`
        kube.trace.push(`tried ${last}`)
        continue
      } finally {
        clearTimeout(timer)
      }
      if (res.status >= 400) {
        const text = await res.text().catch(() => '')
        let message = text.trim() === '' ? res.statusText : text.trim()
        try {
          const status: unknown = JSON.parse(text)
          if (isPlainObject(status) && typeof status.message === 'string') message = status.message
        } catch {}
        kube.trace.push(`${server} answered ${res.status}`)
        if (res.status < 500) throw new CliError(message, EXIT_FAILED, kube.trace)
        last = `${server}: ${res.status} ${message}`
        continue
      }
      if (res.body === null) return
      const decoder = new TextDecoder()
      try {
        for await (const chunk of res.body) io.stdout.write(decoder.decode(chunk, { stream: true }))
        io.stdout.write(decoder.decode())
      } catch (err) {
        if (controller.signal.aborted) return
        throw new CliError(`the log stream from ${server} broke: ${(err as Error).message}`, EXIT_FAILED, kube.trace)
      }
      return
    }
    throw new CliError(`no server could stream the log (${last})`, EXIT_FAILED, kube.trace)
  } finally {
    controller.abort()
  }
}

/** A header and rows as aligned lines, for rows printed one at a time under -w. */
function renderObjectsLines (head: string[], rows: string[][]): string[] {
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map(r => (r[i] ?? '').length)))
  return [head, ...rows].map(r => r.map((c, i) => c.padEnd(widths[i] ?? 0)).join('   ').trimEnd())
}

async function eventsFor (kube: Kube, type: ResourceType, o: KObject): Promise<Event[]> {
  const name = o.metadata.name ?? ''
  const ns = o.metadata.namespace
  const selector = [`involvedObject.name=${name}`, `involvedObject.kind=${type.kind}`, ...(ns !== undefined ? [`involvedObject.namespace=${ns}`] : [])].join(',')
  const path = collectionPath(EVENT, ns)
  try {
    return (await kube.list(path + query({ fieldSelector: selector }))).items.map(e => withKind(EVENT, e))
  } catch (err) {
    // A server that does not index these fields: filter here.
    if (!(err instanceof CliError)) throw err
    const all = (await kube.list(path)).items.map(e => withKind(EVENT, e))
    return all.filter(e => e.involvedObject?.name === name && e.involvedObject.kind === type.kind &&
      (ns === undefined || e.involvedObject.namespace === undefined || e.involvedObject.namespace === ns))
  }
}

/** The answer to an exec (Shoal's own: exitCode, stdout, stderr), each part defaulted when missing or not of its type. */
function execResultOf (body: unknown): { exitCode: number, stdout: string, stderr: string } {
  const { exitCode, stdout, stderr } = isPlainObject(body) ? body : {}
  return {
    exitCode: typeof exitCode === 'number' ? exitCode : 0,
    stdout: typeof stdout === 'string' ? stdout : '',
    stderr: typeof stderr === 'string' ? stderr : ''
  }
}

async function setUnschedulable (kube: Kube, io: Io, node: string, unschedulable: boolean): Promise<void> {
  const path = objectPath(NODE, undefined, node)
  const current = withKind(NODE, await kube.object(path))
  const verb = unschedulable ? 'cordoned' : 'uncordoned'
  if ((current.spec?.unschedulable === true) === unschedulable) {
    io.stdout.write(`node/${node} already ${verb}\n`)
    return
  }
  await kube.send('PATCH', path, { spec: { unschedulable } }, MERGE_PATCH)
  io.stdout.write(`node/${node} ${verb}\n`)
}

export function addK8sCommands (program: Command, io: Io): void {
  addApplyCommand(program, io)
  addGetCommand(program, io)
  addDescribeCommand(program, io)
  addDeleteCommand(program, io)
  addScaleCommand(program, io)
  addLogsCommand(program, io)
  addExecCommand(program, io)
  addCreateCommands(program, io)
  addNodeCommands(program, io)
  addEventsCommand(program, io)
  addRolloutCommands(program, io, nsOption)
  addKubeconfigCommand(program, io)
}

function nsOption (): Option {
  return new Option('-n, --namespace <namespace>', 'the namespace (default: "default")')
}

function fileOption (): Option {
  return new Option('-f, --filename <path>', 'a YAML or JSON file, a directory of them, or - for standard input (repeatable)').argParser((v: string, prev: string[] | undefined) => [...(prev ?? []), v])
}

function addApplyCommand (program: Command, io: Io): void {
  program.command('apply')
    .description('create or update the objects in manifests (kubectl apply)')
    .addOption(fileOption())
    .addOption(nsOption())
    .action(async (opts: { filename?: string[], namespace?: string }, cmd: Command) => {
      const manifests = await loadManifests(opts.filename, io)
      const kube = await connect(cmd, io)
      const failures = new Failures(io)
      for (const m of manifests) {
        try {
          const { type, ns, obj } = placeManifest(m, opts)
          const name = obj.metadata.name ?? ''
          const path = objectPath(type, ns, name)
          const existing = await kube.find(path)
          if (existing === undefined) {
            await kube.send('POST', collectionPath(type, ns), obj)
            io.stdout.write(`${objectName(type, obj)} created\n`)
          } else if (isContainedIn(obj, existing)) {
            io.stdout.write(`${objectName(type, obj)} unchanged\n`)
          } else {
            await kube.send('PATCH', path, obj, STRATEGIC_MERGE_PATCH)
            io.stdout.write(`${objectName(type, obj)} configured\n`)
          }
        } catch (err) { failures.add(err) }
      }
      failures.finish()
    })
}

function addGetCommand (program: Command, io: Io): void {
  program.command('get')
    .description('list objects of one or more kinds as kubectl get does')
    .argument('<kinds>', 'KIND[,KIND2], or KIND/NAME')
    .argument('[names...]')
    .addOption(nsOption())
    .option('-A, --all-namespaces', 'across all namespaces')
    .option('-l, --selector <selector>', 'a label selector, e.g. app=web,tier!=db')
    .option('--field-selector <selector>', 'a field selector, e.g. spec.nodeName=n1')
    .option('-o, --output <format>', 'wide, json, yaml or name')
    .option('-w, --watch', 'after listing, print changes as they happen (until Ctrl-C)')
    .action(async (kinds: string, names: string[], opts: GetOptions, cmd: Command) => { await runGet(kinds, names, opts, cmd, io) })
}

function addDescribeCommand (program: Command, io: Io): void {
  program.command('describe')
    .description('show an object and its events, for people')
    .argument('<kind>', 'KIND, or KIND/NAME')
    .argument('[names...]')
    .addOption(nsOption())
    .action(async (kind: string, names: string[], opts: { namespace?: string }, cmd: Command) => {
      const wanted = targets(kind, names)
      if (wanted.length === 0) throw new CliError('name the object: shoal describe KIND NAME', EXIT_USAGE)
      const kube = await connect(cmd, io)
      const failures = new Failures(io)
      let first = true
      for (const w of wanted) {
        try {
          const o = await kube.object(objectPath(w.type, namespaceOf(w.type, opts), w.name))
          const events = await eventsFor(kube, w.type, o)
          const selector = podSelectorOf(o)
          const pods = selector === undefined ? [] : await controlledPods(kube, o, selector)
          io.stdout.write((first ? '' : '\n\n') + renderDescribe(w.type, o, events, nowOf(io), pods))
          first = false
        } catch (err) { failures.add(err) }
      }
      failures.finish()
    })
}

function addDeleteCommand (program: Command, io: Io): void {
  program.command('delete')
    .description('delete objects by kind and name, or those in manifests')
    .argument('[kind]', 'KIND, or KIND/NAME')
    .argument('[names...]')
    .addOption(fileOption())
    .addOption(nsOption())
    .option('--cascade <policy>', 'background, foreground or orphan: what happens to the objects it owns', 'background')
    .action(async (kind: string | undefined, names: string[], opts: { filename?: string[], namespace?: string, cascade: string }, cmd: Command) => {
      const policy = CASCADE[opts.cascade]
      if (policy === undefined) throw new CliError(`--cascade must be background, foreground or orphan, not "${opts.cascade}"`, EXIT_USAGE)
      let wanted: Array<{ type: ResourceType, ns: string | undefined, name: string }>
      if (opts.filename !== undefined) {
        if (kind !== undefined) throw new CliError('give either -f or KIND NAME, not both', EXIT_USAGE)
        const manifests = await loadManifests(opts.filename, io)
        wanted = manifests.map(m => { const p = placeManifest(m, opts); return { type: p.type, ns: p.ns, name: p.obj.metadata.name ?? '' } })
      } else {
        if (kind === undefined) throw new CliError('name what to delete: shoal delete KIND NAME, or -f FILE', EXIT_USAGE)
        wanted = targets(kind, names).map(w => ({ ...w, ns: namespaceOf(w.type, opts) }))
        if (wanted.length === 0) throw new CliError(`resource(s) were provided, but no name was specified: shoal delete ${kind} NAME`, EXIT_USAGE)
      }
      const kube = await connect(cmd, io)
      const failures = new Failures(io)
      for (const w of wanted) {
        try {
          await kube.send('DELETE', objectPath(w.type, w.ns, w.name) + query({ propagationPolicy: policy }))
          io.stdout.write(`${typeLabel(w.type)} "${w.name}" deleted\n`)
        } catch (err) { failures.add(err) }
      }
      failures.finish()
    })
}

function addScaleCommand (program: Command, io: Io): void {
  program.command('scale')
    .description('set the number of replicas of a deployment or replica set')
    .argument('<target>', 'KIND/NAME, or KIND')
    .argument('[name]')
    .requiredOption('--replicas <n>', 'the new number of replicas')
    .addOption(nsOption())
    .action(async (target: string, name: string | undefined, opts: { replicas: string, namespace?: string }, cmd: Command) => {
      const replicas = /^\d{1,9}$/.test(opts.replicas) ? Number(opts.replicas) : NaN
      if (Number.isNaN(replicas)) throw new CliError(`--replicas must be a non-negative integer, not "${opts.replicas}"`, EXIT_USAGE)
      const [w] = targets(target, name !== undefined ? [name] : [])
      if (w === undefined) throw new CliError('name what to scale: shoal scale deploy/NAME --replicas N', EXIT_USAGE)
      if (!w.type.subresources.includes('scale')) throw new CliError(`${w.type.plural} cannot be scaled`, EXIT_USAGE)
      const kube = await connect(cmd, io)
      await kube.send('PATCH', `${objectPath(w.type, namespaceOf(w.type, opts), w.name)}/scale`, { spec: { replicas } }, MERGE_PATCH)
      io.stdout.write(`${typeLabel(w.type)}/${w.name} scaled\n`)
    })
}

function addLogsCommand (program: Command, io: Io): void {
  program.command('logs')
    .description('print the logs of a pod\'s container, wherever it runs')
    .argument('<pod>', 'NAME or pod/NAME')
    .addOption(nsOption())
    .option('-c, --container <name>', 'the container (needed when the pod has several)')
    .option('--tail <n>', 'only the last N lines')
    .option('-p, --previous', 'the previous, terminated instance of the container')
    .option('-f, --follow', 'keep printing what the container writes, until it ends (or Ctrl-C)')
    .action(async (pod: string, opts: { namespace?: string, container?: string, tail?: string, previous?: boolean, follow?: boolean }, cmd: Command) => {
      const name = pod.replace(/^(pods?|po)\//, '')
      if (opts.tail !== undefined && !/^\d{1,9}$/.test(opts.tail)) throw new CliError(`--tail must be a non-negative integer, not "${opts.tail}"`, EXIT_USAGE)
      const type = resourceType('pods')
      const kube = await connect(cmd, io)
      const params = query({ container: opts.container, tailLines: opts.tail, previous: opts.previous === true ? 'true' : undefined, follow: opts.follow === true ? 'true' : undefined })
      if (opts.follow === true) {
        await followLogs(kube, `${objectPath(type, namespaceOf(type, opts), name)}/log${params}`, io)
        return
      }
      try {
        const res = await kube.client.request('GET', `${objectPath(type, namespaceOf(type, opts), name)}/log${params}`, undefined, undefined, { text: true })
        io.stdout.write(String(res.body))
      } catch (err) {
        kube.fail(err)
      }
    })
}

function addExecCommand (program: Command, io: Io): void {
  program.command('exec')
    .description('run a command in a pod\'s container and print its output; exits with the command\'s status')
    .argument('<pod>', 'NAME or pod/NAME')
    .argument('<command...>', 'the command and its arguments (after --)')
    .addOption(nsOption())
    .option('-c, --container <name>', 'the container (needed when the pod has several)')
    .action(async (pod: string, command: string[], opts: { namespace?: string, container?: string }, cmd: Command) => {
      const name = pod.replace(/^(pods?|po)\//, '')
      const type = resourceType('pods')
      const kube = await connect(cmd, io)
      const params = new URLSearchParams()
      if (opts.container !== undefined) params.set('container', opts.container)
      for (const c of command) params.append('command', c)
      const body = execResultOf(await kube.send('POST', `${objectPath(type, namespaceOf(type, opts), name)}/exec?${params.toString()}`))
      io.stdout.write(body.stdout)
      io.stderr.write(body.stderr)
      if (body.exitCode !== 0) throw new CliError(`command terminated with exit code ${body.exitCode}`, Math.min(255, Math.max(1, body.exitCode)))
    })
}

function addCreateCommands (program: Command, io: Io): void {
  const create = program.command('create').description('create an object from the command line')
  create.command('namespace')
    .alias('ns')
    .description('create a namespace')
    .argument('<name>')
    .action(async (name: string, _opts: unknown, cmd: Command) => {
      const type = resourceType('namespaces')
      const kube = await connect(cmd, io)
      await kube.send('POST', collectionPath(type, undefined), { apiVersion: 'v1', kind: 'Namespace', metadata: { name } })
      io.stdout.write(`namespace/${name} created\n`)
    })
  create.command('job')
    .description('create a job from a cron job\'s template, now (kubectl create job NAME --from=cronjob/NAME)')
    .argument('<name>')
    .option('--from <cronjob>', 'the cron job to take the template from: cronjob/NAME')
    .addOption(nsOption())
    .action(async (name: string, opts: { from?: string, namespace?: string }, cmd: Command) => {
      const from = cronJobOf(opts.from)
      const ns = opts.namespace ?? 'default'
      const kube = await connect(cmd, io)
      const cj = withKind(CRON_JOB, await kube.object(objectPath(CRON_JOB, ns, from)))
      await kube.send('POST', collectionPath(JOB, ns), jobFromCronJob(cj, name, ns))
      io.stdout.write(`${typeLabel(JOB)}/${name} created\n`)
    })
}

/** The cron job `--from` names: `cronjob/NAME` (or `cj/`, `cronjobs/`, `cronjob.batch/`). */
function cronJobOf (from: string | undefined): string {
  if (from === undefined) throw new CliError('create job needs --from=cronjob/NAME (the cron job whose template to run)', EXIT_USAGE)
  const [kind = '', name = ''] = from.split(/\/(.*)/s)
  if (!from.includes('/') || kind === '' || name === '') throw new CliError(`--from must be of the form <resource>/<name>, e.g. cronjob/nightly, not "${from}"`, EXIT_USAGE)
  const type = kindOfName(kind)
  if (type !== CRON_JOB) throw new CliError(`--from: unknown object type ${kind}: only cronjob/NAME can be instantiated`, EXIT_USAGE)
  return name
}

/** What kubectl create job --from makes: the template's labels, annotations and spec, marked manual, owned by the cron job. */
export function jobFromCronJob (cj: CronJob, name: string, namespace: string): Job {
  const template = cj.spec?.jobTemplate ?? {}
  return {
    apiVersion: 'batch/v1',
    kind: 'Job',
    metadata: {
      name,
      namespace,
      annotations: { 'cronjob.kubernetes.io/instantiate': 'manual', ...(template.metadata?.annotations ?? {}) },
      ...(template.metadata?.labels !== undefined ? { labels: template.metadata.labels } : {}),
      // controller, without blockOwnerDeletion, as kubectl sets it
      ownerReferences: [{ apiVersion: 'batch/v1', kind: 'CronJob', name: cj.metadata.name ?? '', uid: cj.metadata.uid ?? '', controller: true }]
    },
    ...(template.spec !== undefined ? { spec: template.spec } : {})
  }
}

/** cordon, uncordon and drain: whether new pods may land on a node, and moving its pods elsewhere. */
function addNodeCommands (program: Command, io: Io): void {
  program.command('cordon')
    .description('mark a node unschedulable: no new pods are placed on it')
    .argument('<node>')
    .action(async (node: string, _opts: unknown, cmd: Command) => { await setUnschedulable(await connect(cmd, io), io, node, true) })

  program.command('uncordon')
    .description('mark a node schedulable again')
    .argument('<node>')
    .action(async (node: string, _opts: unknown, cmd: Command) => { await setUnschedulable(await connect(cmd, io), io, node, false) })

  program.command('drain')
    .description('cordon a node, then evict its pods (DaemonSet and mirror pods aside) so that their controllers place them elsewhere, within their PodDisruptionBudgets')
    .argument('<node>')
    .option('--timeout <duration>', 'give up when pods are still there after this long, e.g. 90s or 10m (0: wait for ever, as kubectl drain does)', DEFAULT_DRAIN_TIMEOUT)
    .option('--grace-period <seconds>', "seconds each pod gets to stop (-1: the pod's own terminationGracePeriodSeconds)", '-1')
    .action(async (node: string, opts: { timeout: string, gracePeriod?: string }, cmd: Command) => {
      const timeoutMs = parseDrainTimeout(opts.timeout)
      const gracePeriodSeconds = parseGracePeriod(opts.gracePeriod)
      const kube = await connect(cmd, io)
      await setUnschedulable(kube, io, node, true)
      await drainPods(kube, io, node, { timeoutMs, ...(gracePeriodSeconds !== undefined ? { gracePeriodSeconds } : {}) })
      io.stdout.write(`node/${node} drained\n`)
    })
}

function addEventsCommand (program: Command, io: Io): void {
  program.command('events')
    .description('list events, oldest first, as kubectl get events does')
    .addOption(nsOption())
    .option('-A, --all-namespaces', 'across all namespaces')
    .action(async (opts: { namespace?: string, allNamespaces?: boolean }, cmd: Command) => {
      const type = resourceType('events')
      const kube = await connect(cmd, io)
      const allNs = opts.allNamespaces === true
      const list = await kube.list(collectionPath(type, allNs ? undefined : opts.namespace ?? 'default'))
      if (list.items.length === 0) {
        io.stderr.write(`No resources found${allNs ? '' : ` in ${opts.namespace ?? 'default'} namespace`}.\n`)
        return
      }
      io.stdout.write(renderObjects(type, list.items, { withNamespace: allNs, now: nowOf(io) }))
    })
}
