// The kubectl-like commands of `shoal` (apply, get, describe, delete, scale,
// create namespace, cordon, uncordon, drain, events, rollout) over the
// Kubernetes REST layout: paths per resource type, manifests read from YAML
// or JSON, Status errors as one line. Errors about one object of many are
// printed and the others still done (as kubectl does); the run then exits 1.
// May import: protocol/k8s.ts, ./client.ts, ./printers.ts, ./output.ts,
// ./main.ts (CliError, Io, resolveTarget: used only inside functions, so the
// import cycle with main.ts is harmless), commander, yaml, ms.
import { readFile, readdir, stat } from 'node:fs/promises'
import { join } from 'node:path'
import { Command, Option } from 'commander'
import ms from 'ms'
import { parseAllDocuments, stringify } from 'yaml'
import { apiVersionOf, typeOfKind, typeOfName } from '../protocol/k8s.ts'
import type { KList, KObject, ResourceType, WatchEvent } from '../protocol/k8s.ts'
import { ApiClient, HttpStatusError, OutcomeUnknownError, UnreachableError } from './client.ts'
import type { Attempt, Method } from './client.ts'
import { CliError, EXIT_FAILED, EXIT_USAGE, describeAttempt, resolveTarget } from './main.ts'
import type { GlobalOptions, Io } from './main.ts'
import { renderJson, renderTable } from './output.ts'
import { field, objectName, renderDescribe, renderObjects, tableRows, typeLabel } from './printers.ts'

export const MERGE_PATCH = 'application/merge-patch+json'
export const STRATEGIC_MERGE_PATCH = 'application/strategic-merge-patch+json'
export const REVISION_ANNOTATION = 'deployment.kubernetes.io/revision'
const GET_OUTPUTS = ['wide', 'json', 'yaml', 'name']
const CASCADE: Record<string, string> = { background: 'Background', foreground: 'Foreground', orphan: 'Orphan' }

type Json = Record<string, unknown>

function isRecord (v: unknown): v is Json {
  return typeof v === 'object' && v !== null && !Array.isArray(v)
}

function isKObject (v: unknown): v is KObject {
  return isRecord(v) && isRecord(v.metadata)
}

function basePath (t: ResourceType): string {
  return t.group === '' ? `/api/${t.version}` : `/apis/${t.group}/${t.version}`
}

/** The collection: in `ns` for a namespaced type, across all namespaces when `ns` is undefined. */
export function collectionPath (t: ResourceType, ns: string | undefined): string {
  return `${basePath(t)}${t.namespaced && ns !== undefined ? `/namespaces/${encodeURIComponent(ns)}` : ''}/${t.plural}`
}

export function objectPath (t: ResourceType, ns: string | undefined, name: string): string {
  return `${collectionPath(t, ns)}/${encodeURIComponent(name)}`
}

function query (params: Record<string, string | undefined>): string {
  const q = new URLSearchParams()
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== '') q.set(k, v)
  const s = q.toString()
  return s === '' ? '' : `?${s}`
}

/** The API as the k8s commands use it; every failure becomes a CliError carrying what was tried. */
class Kube {
  readonly client: ApiClient
  readonly trace: string[]
  readonly skipped: Attempt[] = []
  constructor (target: { servers: string[], token: string }, trace: string[]) {
    this.trace = trace
    this.client = new ApiClient({ ...target, onSkip: a => { this.skipped.push(a) } })
  }

  fail (err: unknown): never {
    const tried = [...this.trace, ...this.skipped.map(a => `tried ${describeAttempt(a)}`)]
    if (err instanceof UnreachableError) throw new CliError(err.message, EXIT_FAILED, tried)
    if (err instanceof OutcomeUnknownError) throw new CliError(err.message, EXIT_FAILED, [...tried, ...err.attempts.slice(-1).map(a => `failed ${describeAttempt(a)}`)])
    if (err instanceof HttpStatusError) {
      tried.push(`${err.server} answered ${err.code} ${err.reason}`)
      if (err.code === 401) throw new CliError(`the server rejected the token (401): ${err.message}`, EXIT_FAILED, tried)
      throw new CliError(err.message, EXIT_FAILED, tried)
    }
    throw err
  }

  async send (method: Method, path: string, body?: unknown, contentType?: string): Promise<unknown> {
    try {
      const encoded = body === undefined ? undefined : Buffer.from(JSON.stringify(body), 'utf8')
      const res = await this.client.request(method, path, encoded, contentType ?? (body !== undefined ? 'application/json' : undefined))
      return res.body
    } catch (err) {
      this.fail(err)
    }
  }

  /** The object, or undefined when the server says 404. */
  async find (path: string): Promise<KObject | undefined> {
    try {
      const res = await this.client.request('GET', path)
      if (!isKObject(res.body)) throw new CliError(`${res.server} answered ${path} with something that is not an object`)
      return res.body
    } catch (err) {
      if (err instanceof HttpStatusError && err.code === 404) return undefined
      this.fail(err)
    }
  }

  async object (path: string): Promise<KObject> {
    const body = await this.send('GET', path)
    if (!isKObject(body)) throw new CliError(`the server answered ${path} with something that is not an object`, EXIT_FAILED, this.trace)
    return body
  }

  async list (path: string): Promise<KList> {
    const body = await this.send('GET', path)
    if (!isRecord(body) || !Array.isArray(body.items) || !body.items.every(isKObject)) throw new CliError(`the server answered ${path} with something that is not a list`, EXIT_FAILED, this.trace)
    return body as unknown as KList
  }

  async watch (path: string, onEvent: (e: WatchEvent) => void, signal: AbortSignal): Promise<void> {
    try {
      await this.client.stream(path, v => {
        if (isRecord(v) && typeof v.type === 'string' && isRecord(v.object)) onEvent(v as unknown as WatchEvent)
      }, signal)
    } catch (err) {
      this.fail(err)
    }
  }
}

async function connect (cmd: Command, io: Io): Promise<Kube> {
  const trace: string[] = []
  return new Kube(await resolveTarget(cmd.optsWithGlobals<GlobalOptions>(), io.env, trace), trace)
}

/** Errors about single objects: each printed as it comes, the last one ending the run with exit 1. */
class Failures {
  readonly io: Io
  pending: string | undefined
  constructor (io: Io) { this.io = io }
  add (err: unknown): void {
    if (!(err instanceof CliError)) throw err
    if (this.pending !== undefined) this.io.stderr.write(`shoal: ${this.pending}\n`)
    this.pending = err.message
  }

  finish (): void {
    if (this.pending !== undefined) throw new CliError(this.pending, EXIT_FAILED)
  }
}

function resourceType (name: string): ResourceType {
  const t = typeOfName(name)
  if (t === undefined) throw new CliError(`the server doesn't have a resource type "${name}"`, EXIT_USAGE)
  return t
}

/** `KIND NAME...` or `KIND/NAME...` as pairs of type and name. */
function targets (first: string, rest: string[]): Array<{ type: ResourceType, name: string }> {
  if (first.includes('/')) {
    return [first, ...rest].map(arg => {
      const [kind = '', name = ''] = arg.split(/\/(.*)/s)
      if (name === '' || !arg.includes('/')) throw new CliError(`there is no need to specify a resource type as a separate argument when passing arguments in resource/name form (got "${arg}")`, EXIT_USAGE)
      return { type: resourceType(kind), name }
    })
  }
  const type = resourceType(first)
  return rest.map(name => ({ type, name }))
}

function namespaceOf (type: ResourceType, opts: { namespace?: string }): string | undefined {
  return type.namespaced ? opts.namespace ?? 'default' : undefined
}

interface Manifest { file: string, obj: KObject }

async function readAllText (input: AsyncIterable<Uint8Array | string>): Promise<string> {
  const chunks: Buffer[] = []
  for await (const c of input) chunks.push(typeof c === 'string' ? Buffer.from(c, 'utf8') : Buffer.from(c))
  return Buffer.concat(chunks).toString('utf8')
}

/** Every object in FILE, DIR (its .yaml, .yml and .json files) or `-`, with `kind: List` unpacked. */
async function loadManifests (paths: string[] | undefined, io: Io): Promise<Manifest[]> {
  if (paths === undefined || paths.length === 0) throw new CliError('-f FILE is required (a file, a directory, or - for standard input)', EXIT_USAGE)
  const files: Array<{ file: string, text: string }> = []
  for (const p of paths) {
    if (p === '-') {
      files.push({ file: '<stdin>', text: await readAllText(io.stdin ?? process.stdin) })
      continue
    }
    try {
      if ((await stat(p)).isDirectory()) {
        const names = (await readdir(p)).filter(n => /\.(ya?ml|json)$/.test(n)).sort()
        for (const n of names) files.push({ file: join(p, n), text: await readFile(join(p, n), 'utf8') })
      } else files.push({ file: p, text: await readFile(p, 'utf8') })
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code
      throw new CliError(`cannot read ${p}: ${code === 'ENOENT' ? 'no such file or directory' : code ?? (err as Error).message}`)
    }
  }
  const out: Manifest[] = []
  for (const { file, text } of files) {
    for (const doc of parseAllDocuments(text)) {
      const bad = doc.errors[0]
      if (bad !== undefined) throw new CliError(`${file}: ${bad.message.split('\n')[0]?.replace(/:$/, '') ?? 'not valid YAML'}`)
      const value: unknown = doc.toJS()
      if (value === null || value === undefined) continue
      const items = isRecord(value) && typeof value.kind === 'string' && value.kind.endsWith('List') && Array.isArray(value.items) ? value.items : [value]
      for (const item of items) {
        if (!isRecord(item) || typeof item.apiVersion !== 'string' || typeof item.kind !== 'string') throw new CliError(`${file}: an object without apiVersion and kind`)
        if (!isRecord(item.metadata) || typeof item.metadata.name !== 'string' || item.metadata.name === '') throw new CliError(`${file}: a ${item.kind} without metadata.name`)
        out.push({ file, obj: item as KObject })
      }
    }
  }
  return out
}

/** The type of a manifest's object and where it goes, or a CliError naming the kind and file. */
function placeManifest (m: Manifest, opts: { namespace?: string }): { type: ResourceType, ns: string | undefined, obj: KObject } {
  const type = typeOfKind(m.obj.apiVersion, m.obj.kind)
  if (type === undefined) throw new CliError(`${m.file}: no kind "${m.obj.kind}" in version "${m.obj.apiVersion}" is known to Shoal (object "${m.obj.metadata.name ?? ''}")`)
  const own = m.obj.metadata.namespace
  if (type.namespaced && own !== undefined && opts.namespace !== undefined && own !== opts.namespace) {
    throw new CliError(`${m.file}: the namespace from the provided object "${own}" does not match the namespace "${opts.namespace}"; the -n flag must agree with the manifest`)
  }
  const ns = type.namespaced ? own ?? opts.namespace ?? 'default' : undefined
  const { namespace: _, ...meta } = m.obj.metadata
  return { type, ns, obj: { ...m.obj, metadata: ns !== undefined ? { ...meta, namespace: ns } : meta } }
}

/** Whether every field the manifest gives has the same value in the server's object. */
export function isContainedIn (manifest: unknown, server: unknown): boolean {
  if (isRecord(manifest)) return isRecord(server) && Object.entries(manifest).every(([k, v]) => isContainedIn(v, server[k]))
  if (Array.isArray(manifest)) return Array.isArray(server) && manifest.length === server.length && manifest.every((v, i) => isContainedIn(v, server[i]))
  return manifest === server
}

/** A JSON merge patch that turns `from` into `to` (removed keys set to null, lists replaced whole). */
export function mergePatchBetween (from: unknown, to: unknown): unknown {
  if (!isRecord(from) || !isRecord(to)) return to
  const patch: Json = {}
  for (const k of Object.keys(from)) if (!(k in to)) patch[k] = null
  for (const [k, v] of Object.entries(to)) if (JSON.stringify(from[k]) !== JSON.stringify(v)) patch[k] = mergePatchBetween(from[k], v)
  return patch
}

function withKind (type: ResourceType, o: KObject): KObject {
  return { ...o, apiVersion: apiVersionOf(type), kind: type.kind }
}

function linkedSignal (io: Io, timeoutMs?: number): AbortController {
  const controller = new AbortController()
  const timer = timeoutMs !== undefined && timeoutMs > 0 ? setTimeout(() => { controller.abort(new CliError('timed out waiting for the condition')) }, timeoutMs) : undefined
  const onAbort = (): void => { controller.abort() }
  io.signal?.addEventListener('abort', onAbort, { once: true })
  if (io.signal?.aborted === true) controller.abort()
  controller.signal.addEventListener('abort', () => {
    clearTimeout(timer)
    io.signal?.removeEventListener('abort', onAbort)
  }, { once: true })
  return controller
}

function nowOf (io: Io): number {
  return (io.now ?? Date.now)()
}

interface GetOptions { namespace?: string, allNamespaces?: boolean, selector?: string, fieldSelector?: string, output?: string, watch?: boolean }

async function runGet (kinds: string, names: string[], opts: GetOptions, cmd: Command, io: Io): Promise<void> {
  const output = opts.output ?? ''
  if (output !== '' && !GET_OUTPUTS.includes(output)) throw new CliError(`-o must be wide, json, yaml or name, not "${output}"`, EXIT_USAGE)
  const byName = names.length > 0 || kinds.includes('/')
  const wanted = byName ? targets(kinds, names) : []
  const types = byName ? [...new Set(wanted.map(w => w.type))] : kinds.split(',').filter(k => k !== '').map(resourceType)
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
      resourceVersion = list.metadata?.resourceVersion
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
  if (opts.watch !== true) return
  const type = types[0] as ResourceType
  const ns = allNs ? undefined : namespaceOf(type, opts)
  const fieldSelector = byName ? [`metadata.name=${wanted[0]?.name ?? ''}`, ...(opts.fieldSelector !== undefined ? [opts.fieldSelector] : [])].join(',') : opts.fieldSelector
  const path = collectionPath(type, ns) + query({ watch: '1', resourceVersion, labelSelector: opts.selector, fieldSelector })
  const controller = linkedSignal(io)
  let headerShown = all.length > 0 || output !== ''
  await kube.watch(path, e => {
    if (!isKObject(e.object) || e.type === 'BOOKMARK' || e.type === 'ERROR') return
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

/** A header and rows as aligned lines, for rows printed one at a time under -w. */
function renderObjectsLines (head: string[], rows: string[][]): string[] {
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map(r => (r[i] ?? '').length)))
  return [head, ...rows].map(r => r.map((c, i) => c.padEnd(widths[i] ?? 0)).join('   ').trimEnd())
}

async function eventsFor (kube: Kube, type: ResourceType, o: KObject): Promise<KObject[]> {
  const name = o.metadata.name ?? ''
  const eventType = resourceType('events')
  const ns = o.metadata.namespace
  const selector = [`involvedObject.name=${name}`, `involvedObject.kind=${type.kind}`, ...(ns !== undefined ? [`involvedObject.namespace=${ns}`] : [])].join(',')
  const path = collectionPath(eventType, ns)
  try {
    return (await kube.list(path + query({ fieldSelector: selector }))).items
  } catch (err) {
    // A server that does not index these fields: filter here.
    if (!(err instanceof CliError)) throw err
    const all = (await kube.list(path)).items
    return all.filter(e => field(e, 'involvedObject.name') === name && field(e, 'involvedObject.kind') === type.kind &&
      (ns === undefined || field(e, 'involvedObject.namespace') === undefined || field(e, 'involvedObject.namespace') === ns))
  }
}

async function setUnschedulable (kube: Kube, io: Io, node: string, unschedulable: boolean): Promise<void> {
  const type = resourceType('nodes')
  const path = objectPath(type, undefined, node)
  const current = await kube.object(path)
  const verb = unschedulable ? 'cordoned' : 'uncordoned'
  if ((field(current, 'spec.unschedulable') === true) === unschedulable) {
    io.stdout.write(`node/${node} already ${verb}\n`)
    return
  }
  await kube.send('PATCH', path, { spec: { unschedulable } }, MERGE_PATCH)
  io.stdout.write(`node/${node} ${verb}\n`)
}

/** kubectl's rollout status for a Deployment: the line to print, and whether the rollout is done. */
export function deploymentRolloutStatus (d: KObject): { message: string, done: boolean } {
  const name = d.metadata.name ?? ''
  const generation = d.metadata.generation ?? 0
  const observed = Number(field(d, 'status.observedGeneration') ?? 0)
  if (generation > observed) return { message: 'Waiting for deployment spec update to be observed...', done: false }
  const conditions = Array.isArray(field(d, 'status.conditions')) ? field(d, 'status.conditions') as unknown[] : []
  if (conditions.some(c => isRecord(c) && c.type === 'Progressing' && c.reason === 'ProgressDeadlineExceeded')) {
    throw new CliError(`deployment "${name}" exceeded its progress deadline`)
  }
  const n = (p: string): number => { const v = field(d, p); return typeof v === 'number' ? v : 0 }
  const desired = typeof field(d, 'spec.replicas') === 'number' ? n('spec.replicas') : 1
  const updated = n('status.updatedReplicas')
  const replicas = n('status.replicas')
  const available = n('status.availableReplicas')
  if (updated < desired) return { message: `Waiting for deployment "${name}" rollout to finish: ${updated} out of ${desired} new replicas have been updated...`, done: false }
  if (replicas > updated) return { message: `Waiting for deployment "${name}" rollout to finish: ${replicas - updated} old replicas are pending termination...`, done: false }
  if (available < updated) return { message: `Waiting for deployment "${name}" rollout to finish: ${available} of ${updated} updated replicas are available...`, done: false }
  return { message: `deployment "${name}" successfully rolled out`, done: true }
}

function deploymentTarget (first: string, rest: string[]): { type: ResourceType, name: string } {
  const [target] = targets(first, rest.slice(0, first.includes('/') ? 0 : 1))
  if (target === undefined) throw new CliError('name the deployment: deploy/NAME', EXIT_USAGE)
  if (target.type.kind !== 'Deployment') throw new CliError(`rollout works on deployments, not ${target.type.plural}`, EXIT_USAGE)
  return target
}

interface Revision { revision: number, rs: KObject }

async function revisions (kube: Kube, type: ResourceType, d: KObject): Promise<Revision[]> {
  const rsType = resourceType('replicasets')
  const match = field(d, 'spec.selector.matchLabels')
  const selector = isRecord(match) ? Object.entries(match).map(([k, v]) => `${k}=${String(v)}`).join(',') : undefined
  const list = await kube.list(collectionPath(rsType, d.metadata.namespace) + query({ labelSelector: selector }))
  return list.items
    .filter(rs => (rs.metadata.ownerReferences ?? []).some(r => r.kind === type.kind && (d.metadata.uid !== undefined && r.uid !== '' ? r.uid === d.metadata.uid : r.name === d.metadata.name)))
    .map(rs => ({ revision: Number(rs.metadata.annotations?.[REVISION_ANNOTATION] ?? NaN), rs }))
    .filter(r => Number.isSafeInteger(r.revision))
    .sort((a, b) => a.revision - b.revision)
}

export function addK8sCommands (program: Command, io: Io): void {
  const nsOption = (): Option => new Option('-n, --namespace <namespace>', 'the namespace (default: "default")')
  const fileOption = (): Option => new Option('-f, --filename <path>', 'a YAML or JSON file, a directory of them, or - for standard input (repeatable)').argParser((v: string, prev: string[] | undefined) => [...(prev ?? []), v])

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
          io.stdout.write((first ? '' : '\n\n') + renderDescribe(w.type, o, events, nowOf(io)))
          first = false
        } catch (err) { failures.add(err) }
      }
      failures.finish()
    })

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

  program.command('cordon')
    .description('mark a node unschedulable: no new pods are placed on it')
    .argument('<node>')
    .action(async (node: string, _opts: unknown, cmd: Command) => { await setUnschedulable(await connect(cmd, io), io, node, true) })

  program.command('uncordon')
    .description('mark a node schedulable again')
    .argument('<node>')
    .action(async (node: string, _opts: unknown, cmd: Command) => { await setUnschedulable(await connect(cmd, io), io, node, false) })

  program.command('drain')
    .description('cordon a node, then delete the pods on it so that their controllers place them elsewhere')
    .argument('<node>')
    .action(async (node: string, _opts: unknown, cmd: Command) => {
      const kube = await connect(cmd, io)
      await setUnschedulable(kube, io, node, true)
      const pods = resourceType('pods')
      const list = await kube.list(collectionPath(pods, undefined) + query({ fieldSelector: `spec.nodeName=${node}` }))
      const failures = new Failures(io)
      for (const p of list.items) {
        const name = p.metadata.name ?? ''
        try {
          await kube.send('DELETE', objectPath(pods, p.metadata.namespace ?? 'default', name))
          io.stdout.write(`pod/${name} deleted\n`)
        } catch (err) { failures.add(err) }
      }
      failures.finish()
      io.stdout.write(`node/${node} drained\n`)
    })

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

  addRolloutCommands(program, io, nsOption)
}

function addRolloutCommands (program: Command, io: Io, nsOption: () => Option): void {
  const rollout = program.command('rollout').description('follow, list and undo the rollouts of a deployment')

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
      const controller = linkedSignal(io, timeoutMs)
      let last = ''
      let done = false
      const check = (d: KObject): void => {
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
          const d = await kube.object(objectPath(w.type, ns, w.name))
          check(d)
          if (done) break
          let failure: unknown
          await kube.watch(collectionPath(w.type, ns) + query({ watch: '1', fieldSelector: `metadata.name=${w.name}`, resourceVersion: d.metadata.resourceVersion }), e => {
            if (e.type === 'DELETED') failure = new CliError(`deployment "${w.name}" was deleted`)
            else if ((e.type === 'ADDED' || e.type === 'MODIFIED') && isKObject(e.object)) {
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
    })

  rollout.command('history')
    .description('list the deployment\'s revisions (from the replica sets it owns)')
    .argument('<target>', 'deploy/NAME')
    .argument('[name]')
    .addOption(nsOption())
    .action(async (target: string, name: string | undefined, opts: { namespace?: string }, cmd: Command) => {
      const w = deploymentTarget(target, name !== undefined ? [name] : [])
      const kube = await connect(cmd, io)
      const d = await kube.object(objectPath(w.type, namespaceOf(w.type, opts), w.name))
      const revs = await revisions(kube, w.type, d)
      io.stdout.write(`${typeLabel(w.type)}/${w.name}\n` + renderTable(['REVISION', 'CHANGE-CAUSE'],
        revs.map(r => [String(r.revision), r.rs.metadata.annotations?.['kubernetes.io/change-cause'] ?? '<none>'])))
    })

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
      const d = await kube.object(path)
      const revs = await revisions(kube, w.type, d)
      const chosen = to > 0 ? revs.find(r => r.revision === to) : revs.at(-2)
      if (chosen === undefined) throw new CliError(to > 0 ? `unable to find specified revision ${to} in history` : `no rollout history found for deployment "${w.name}"`)
      const template = structuredClone(field(chosen.rs, 'spec.template'))
      // The controller adds this label to each replica set's template; the deployment's template has none.
      const labels = field(template, 'metadata.labels')
      if (isRecord(labels)) delete labels['pod-template-hash']
      const current = field(d, 'spec.template')
      if (JSON.stringify(mergePatchBetween(current, template)) === '{}') {
        io.stdout.write(`${typeLabel(w.type)}/${w.name} skipped rollback (current template already matches revision ${chosen.revision})\n`)
        return
      }
      await kube.send('PATCH', path, { spec: { template: mergePatchBetween(current, template) } }, MERGE_PATCH)
      io.stdout.write(`${typeLabel(w.type)}/${w.name} rolled back\n`)
    })
}
