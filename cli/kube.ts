// Talking to the Kubernetes-layout API for the kubectl-like commands: REST
// paths per resource type, the client wrapper (Kube), resolving names and
// kinds from the command line (`all`: the kinds in the registry's `all`
// category), the pods a workload controls, and collecting per-object failures.
// May import: protocol/, ./client.ts, ./errors.ts, ./io.ts, ./target.ts, commander.
import { KINDS, kindOfName, POD } from '../protocol/kinds.ts'
import { Command } from 'commander'
import type { KObject, ResourceType } from '../protocol/k8s.ts'
import { isPlainObject } from '../protocol/json.ts'
import { ApiClient, HttpStatusError, OutcomeUnknownError, UnreachableError } from './client.ts'
import type { Attempt, Method } from './client.ts'
import { CliError, EXIT_FAILED, EXIT_USAGE, describeAttempt } from './errors.ts'
import type { Io } from './io.ts'
import { resolveTarget } from './target.ts'
import type { GlobalOptions, Target } from './target.ts'

export const MERGE_PATCH = 'application/merge-patch+json'

export const STRATEGIC_MERGE_PATCH = 'application/strategic-merge-patch+json'

export const REVISION_ANNOTATION = 'deployment.kubernetes.io/revision'

export function isKObject (v: unknown): v is KObject {
  return isPlainObject(v) && isPlainObject(v.metadata)
}

function isKObjectList (v: unknown): v is KObject[] {
  return Array.isArray(v) && v.every(isKObject)
}

/** A list answer, decoded: its items and its resourceVersion (if it gave one). */
export interface ListAnswer { items: KObject[], resourceVersion: string | undefined }

/** A change a watch reported. BOOKMARK and ERROR events are not passed on: no command acts on them. */
export interface ObjectEvent { type: 'ADDED' | 'MODIFIED' | 'DELETED', object: KObject }

export function basePath (t: ResourceType): string {
  return t.group === '' ? `/api/${t.version}` : `/apis/${t.group}/${t.version}`
}

/** The collection: in `ns` for a namespaced type, across all namespaces when `ns` is undefined. */
export function collectionPath (t: ResourceType, ns: string | undefined): string {
  return `${basePath(t)}${t.namespaced && ns !== undefined ? `/namespaces/${encodeURIComponent(ns)}` : ''}/${t.plural}`
}

export function objectPath (t: ResourceType, ns: string | undefined, name: string): string {
  return `${collectionPath(t, ns)}/${encodeURIComponent(name)}`
}

export function query (params: Record<string, string | undefined>): string {
  const q = new URLSearchParams()
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== '') q.set(k, v)
  const s = q.toString()
  return s === '' ? '' : `?${s}`
}

/** The API as the k8s commands use it; every failure becomes a CliError carrying what was tried. */
export class Kube {
  readonly client: ApiClient
  readonly trace: string[]
  readonly skipped: Attempt[] = []
  constructor (target: Target, trace: string[]) {
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

  async list (path: string): Promise<ListAnswer> {
    const body = await this.send('GET', path)
    const items = isPlainObject(body) ? body.items : undefined
    if (!isKObjectList(items)) throw new CliError(`the server answered ${path} with something that is not a list`, EXIT_FAILED, this.trace)
    const resourceVersion = isPlainObject(body) && isPlainObject(body.metadata) ? body.metadata.resourceVersion : undefined
    return { items, resourceVersion: typeof resourceVersion === 'string' ? resourceVersion : undefined }
  }

  async watch (path: string, onEvent: (e: ObjectEvent) => void, signal: AbortSignal): Promise<void> {
    try {
      await this.client.stream(path, v => {
        if (!isPlainObject(v) || !isKObject(v.object)) return
        const type = v.type
        if (type === 'ADDED' || type === 'MODIFIED' || type === 'DELETED') onEvent({ type, object: v.object })
      }, signal)
    } catch (err) {
      this.fail(err)
    }
  }
}

export async function connect (cmd: Command, io: Io): Promise<Kube> {
  const trace: string[] = []
  return new Kube(await resolveTarget(cmd.optsWithGlobals<GlobalOptions>(), io.env, trace), trace)
}

/** Errors about single objects: each printed as it comes, the last one ending the run with exit 1. */
export class Failures {
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

export function resourceType (name: string): ResourceType {
  const t = kindOfName(name)
  if (t === undefined) throw new CliError(`the server doesn't have a resource type "${name}"`, EXIT_USAGE)
  return t
}

/** The types a name on the command line means: one kind, or, for `all`, every kind in the `all` category (kubectl get all). */
export function resourceTypes (name: string): ResourceType[] {
  if (name.toLowerCase() === 'all') return KINDS.filter(k => k.categories.includes('all'))
  return [resourceType(name)]
}

/** The pods in `o`'s namespace that `selector` matches and `o` controls, as kubectl describe counts a workload's pods. */
export async function controlledPods (kube: Kube, o: KObject, selector: string): Promise<KObject[]> {
  const list = await kube.list(collectionPath(POD, o.metadata.namespace) + query({ labelSelector: selector }))
  return list.items.filter(p => (p.metadata.ownerReferences ?? []).some(r => r.controller === true && r.uid === o.metadata.uid))
}

/** `KIND NAME...` or `KIND/NAME...` as pairs of type and name. */
export function targets (first: string, rest: string[]): Array<{ type: ResourceType, name: string }> {
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

export function namespaceOf (type: ResourceType, opts: { namespace?: string }): string | undefined {
  return type.namespaced ? opts.namespace ?? 'default' : undefined
}

export function linkedSignal (io: Io, timeoutMs?: number): AbortController {
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

export function nowOf (io: Io): number {
  return (io.now ?? Date.now)()
}
