// A tiny in-memory Kubernetes-layout HTTP server on 127.0.0.1 for the CLI's
// tests: GET/list/watch, POST, PATCH (merge; strategic treated as merge with
// lists of named items merged by name), DELETE, the /scale subresource and,
// when asked, a pod's /eviction (listed in /api/v1 discovery),
// with label and field selectors, Status errors and bearer-token checks.
// It records every request so that tests can assert what the CLI sent.
// May import: node:http, protocol/k8s.ts, protocol/api.ts.
import { kindOf, kindOfResource } from '../../protocol/kinds.ts'
import { createServer } from 'node:http'
import type { IncomingMessage, ServerResponse } from 'node:http'
import type { ExecutionContext } from 'ava'
import type { StatusBody } from '../../protocol/api.ts'
import { apiVersionOf } from '../../protocol/k8s.ts'
import type { KObject, ResourceType, WatchEvent } from '../../protocol/k8s.ts'
import { isPlainObject } from '../../protocol/json.ts'
import type { JsonObject } from '../../protocol/json.ts'

export interface RecordedRequest {
  method: string
  path: string
  query: URLSearchParams
  contentType: string | undefined
  body: unknown
}

export interface FakeK8s {
  url: string
  token: string
  requests: RecordedRequest[]
  /** the stored object, by plural, namespace ('' if cluster-scoped) and name */
  get: (plural: string, namespace: string, name: string) => KObject | undefined
  /** stores an object as is (filling in metadata), telling watchers */
  put: (obj: KObject) => KObject
  /** field selectors the server refuses with 400, e.g. to test a client-side fallback */
  rejectFieldSelectors: Set<string>
  /** serve pods/eviction (and list it in /api/v1); off: the server predates it */
  evictions: boolean
  /** pods whose eviction is refused with a 429, as a disruption budget at 0 would */
  refuseEvictions: Set<string>
  /** called before every request is answered, e.g. to change state after N requests */
  onRequest?: (req: RecordedRequest) => void
  /** resolves when a watch request has been accepted (the next one, or any since the last call) */
  nextWatch: () => Promise<void>
}

function status (code: number, reason: string, message: string): StatusBody {
  return { kind: 'Status', apiVersion: 'v1', status: 'Failure', message, reason, code }
}

/** RFC 7386 merge patch; with `strategic`, lists of objects with a name are merged by name as Kubernetes does for containers. */
export function mergePatch (target: unknown, patch: unknown, strategic = false): unknown {
  if (!isPlainObject(patch)) {
    if (strategic && Array.isArray(patch) && Array.isArray(target) && patch.every(p => isPlainObject(p) && typeof p.name === 'string')) {
      const out = target.map(t => {
        const p = patch.find(q => isPlainObject(t) && (q as JsonObject).name === t.name)
        return p === undefined ? t : mergePatch(t, p, true)
      })
      for (const p of patch) if (!target.some(t => isPlainObject(t) && t.name === (p as JsonObject).name)) out.push(p)
      return out
    }
    return patch
  }
  const out: JsonObject = isPlainObject(target) ? { ...target } : {}
  for (const [k, v] of Object.entries(patch)) {
    if (v === null) delete out[k]
    else out[k] = mergePatch(out[k], v, strategic)
  }
  return out
}

function matchesLabels (obj: KObject, selector: string | null): boolean {
  if (selector === null || selector === '') return true
  const labels = obj.metadata.labels ?? {}
  return selector.split(',').every(term => {
    const ne = /^([^!=]+)!=(.*)$/.exec(term)
    if (ne !== null) return labels[ne[1] ?? ''] !== ne[2]
    const eq = /^([^=]+)==?(.*)$/.exec(term)
    if (eq !== null) return labels[eq[1] ?? ''] === eq[2]
    return labels[term] !== undefined
  })
}

function fieldOf (obj: KObject, path: string): unknown {
  let v: unknown = obj
  for (const part of path.split('.')) v = isPlainObject(v) ? v[part] : undefined
  return v
}

export async function startFakeK8s (t: ExecutionContext, token = 'k8s-token'): Promise<FakeK8s> {
  const store = new Map<string, KObject>()
  const watchers = new Set<{ type: ResourceType, namespace: string | undefined, query: URLSearchParams, res: ServerResponse }>()
  let rv = 0
  let uid = 0
  let watchWaiters: Array<() => void> = []
  let watchesSinceAsked = 0
  const key = (plural: string, ns: string, name: string): string => `${plural}/${ns}/${name}`

  const typeOf = (obj: KObject): ResourceType | undefined => kindOf(obj.apiVersion, obj.kind)

  const fieldsMatch = (obj: KObject, selector: string | null): boolean => {
    if (selector === null || selector === '') return true
    return selector.split(',').every(term => {
      const m = /^([^!=]+)(!=|==|=)(.*)$/.exec(term)
      if (m === null) return false
      const v = fieldOf(obj, m[1] ?? '')
      const s = v === undefined || v === null ? '' : String(v)
      return m[2] === '!=' ? s !== m[3] : s === m[3]
    })
  }

  const notify = (type: WatchEvent['type'], obj: KObject, plural: string): void => {
    for (const w of watchers) {
      if (w.type.plural !== plural) continue
      if (w.namespace !== undefined && obj.metadata.namespace !== w.namespace) continue
      if (!matchesLabels(obj, w.query.get('labelSelector')) || !fieldsMatch(obj, w.query.get('fieldSelector'))) continue
      w.res.write(JSON.stringify({ type, object: obj }) + '\n')
    }
  }

  const put = (obj: KObject): KObject => {
    const type = typeOf(obj)
    if (type === undefined) throw new Error(`fake-k8s: unknown kind ${obj.apiVersion} ${obj.kind}`)
    const ns = type.namespaced ? obj.metadata.namespace ?? 'default' : ''
    const k = key(type.plural, ns, obj.metadata.name ?? '')
    const old = store.get(k)
    const stored: KObject = structuredClone(obj)
    stored.metadata = {
      ...stored.metadata,
      ...(type.namespaced ? { namespace: ns } : {}),
      uid: stored.metadata.uid ?? old?.metadata.uid ?? `uid-${++uid}`,
      creationTimestamp: stored.metadata.creationTimestamp ?? old?.metadata.creationTimestamp ?? new Date().toISOString().replace(/\.\d+Z$/, 'Z'),
      resourceVersion: String(++rv),
      generation: old === undefined
        ? stored.metadata.generation ?? 1
        : JSON.stringify(old.spec) !== JSON.stringify(stored.spec) ? (old.metadata.generation ?? 1) + 1 : old.metadata.generation ?? 1
    }
    store.set(k, stored)
    notify(old === undefined ? 'ADDED' : 'MODIFIED', stored, type.plural)
    return stored
  }

  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => {
      const url = new URL(req.url ?? '/', 'http://fake')
      const text = Buffer.concat(chunks).toString('utf8')
      let body: unknown
      try {
        body = text === '' ? undefined : JSON.parse(text)
      } catch {
        body = text
      }
      const recorded: RecordedRequest = { method: req.method ?? 'GET', path: url.pathname, query: url.searchParams, contentType: req.headers['content-type'], body }
      fake.requests.push(recorded)
      fake.onRequest?.(recorded)
      const send = (code: number, value: unknown): void => {
        res.writeHead(code, { 'content-type': 'application/json' })
        res.end(JSON.stringify(value))
      }
      if (req.headers.authorization !== `Bearer ${token}`) {
        send(401, status(401, 'Unauthorized', 'Unauthorized'))
        return
      }
      // /api/v1/... or /apis/{group}/{version}/...
      const parts = url.pathname.split('/').filter(p => p !== '').map(decodeURIComponent)
      let group = ''
      let rest: string[]
      if (parts[0] === 'api' && parts[1] === 'v1' && parts.length === 2 && fake.evictions) {
        send(200, { kind: 'APIResourceList', apiVersion: 'v1', groupVersion: 'v1', resources: [{ name: 'pods/eviction', singularName: '', namespaced: true, group: 'policy', version: 'v1', kind: 'Eviction', verbs: ['create'] }] })
        return
      }
      if (parts[0] === 'api' && parts[1] === 'v1') rest = parts.slice(2)
      else if (parts[0] === 'apis' && parts.length >= 3) {
        group = parts[1] ?? ''
        rest = parts.slice(3)
      } else {
        send(404, status(404, 'NotFound', 'the server could not find the requested resource'))
        return
      }
      let namespace: string | undefined
      if (rest[0] === 'namespaces' && rest.length >= 3) {
        namespace = rest[1]
        rest = rest.slice(2)
      }
      const [plural = '', name, sub] = rest
      const type = kindOfResource(group, plural)
      if (type === undefined) {
        send(404, status(404, 'NotFound', 'the server could not find the requested resource'))
        return
      }
      const ns = type.namespaced ? namespace ?? '' : ''
      const notFound = (): void => { send(404, status(404, 'NotFound', `${type.plural}${type.group !== '' ? '.' + type.group : ''} "${name ?? ''}" not found`)) }
      const method = req.method ?? 'GET'

      if (name === undefined) {
        if (method === 'GET') {
          const fs = url.searchParams.get('fieldSelector')
          for (const f of (fs ?? '').split(',')) {
            const field = f.split(/!?=/)[0] ?? ''
            if (fake.rejectFieldSelectors.has(field)) {
              send(400, status(400, 'BadRequest', `field label not supported: ${field}`))
              return
            }
          }
          // In key order, as etcd lists them: by namespace, then name.
          const items = [...store.entries()].sort(([a], [b]) => a < b ? -1 : a > b ? 1 : 0)
            .filter(([k]) => k.startsWith(`${plural}/`) && (!type.namespaced || namespace === undefined || k.startsWith(`${plural}/${namespace}/`)))
            .map(([, o]) => o)
            .filter(o => matchesLabels(o, url.searchParams.get('labelSelector')) && fieldsMatch(o, fs))
          if (url.searchParams.get('watch') === '1' || url.searchParams.get('watch') === 'true') {
            res.writeHead(200, { 'content-type': 'application/json' })
            const w = { type, namespace: type.namespaced ? namespace : undefined, query: url.searchParams, res }
            watchers.add(w)
            res.on('close', () => { watchers.delete(w) })
            // Without a resourceVersion, as Kubernetes does: every existing object as ADDED first.
            if (url.searchParams.get('resourceVersion') === null) for (const o of items) res.write(JSON.stringify({ type: 'ADDED', object: o }) + '\n')
            watchesSinceAsked++
            const waiters = watchWaiters
            watchWaiters = []
            for (const w of waiters) w()
            return
          }
          send(200, { apiVersion: apiVersionOf(type), kind: `${type.kind}List`, metadata: { resourceVersion: String(rv) }, items })
          return
        }
        if (method === 'POST') {
          if (!isPlainObject(body) || !isPlainObject(body.metadata) || typeof body.metadata.name !== 'string') {
            send(422, status(422, 'Invalid', `${type.kind} is invalid: metadata.name: Required value`))
            return
          }
          const objNs = (body.metadata as JsonObject).namespace
          if (type.namespaced && objNs !== undefined && objNs !== namespace) {
            send(400, status(400, 'BadRequest', 'the namespace of the provided object does not match the namespace sent on the request'))
            return
          }
          if (store.has(key(plural, ns, body.metadata.name))) {
            send(409, status(409, 'AlreadyExists', `${type.plural} "${body.metadata.name}" already exists`))
            return
          }
          const obj = body as unknown as KObject
          send(201, put({ ...obj, metadata: { ...obj.metadata, ...(type.namespaced ? { namespace: ns } : {}) } }))
          return
        }
        send(405, status(405, 'MethodNotAllowed', 'method not allowed'))
        return
      }

      const k = key(plural, ns, name)
      const current = store.get(k)
      if (current === undefined) {
        notFound()
        return
      }
      if (sub === 'eviction' && plural === 'pods' && fake.evictions && method === 'POST') {
        if (fake.refuseEvictions.has(name)) {
          send(429, status(429, 'TooManyRequests', "Cannot evict pod as it would violate the pod's disruption budget."))
          return
        }
        store.delete(k)
        notify('DELETED', current, plural)
        send(201, { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Success' })
        return
      }
      if (sub === 'scale') {
        if (!type.subresources.includes('scale')) {
          notFound()
          return
        }
        const scale = (o: KObject): JsonObject => ({
          apiVersion: 'autoscaling/v1',
          kind: 'Scale',
          metadata: { name: o.metadata.name, namespace: o.metadata.namespace },
          spec: { replicas: fieldOf(o, 'spec.replicas') ?? 1 },
          status: { replicas: fieldOf(o, 'status.replicas') ?? 0 }
        })
        if (method === 'GET') send(200, scale(current))
        else if (method === 'PATCH' || method === 'PUT') {
          const replicas = fieldOf({ ...(body as JsonObject) } as KObject, 'spec.replicas')
          if (typeof replicas !== 'number') {
            send(422, status(422, 'Invalid', 'Scale is invalid: spec.replicas: Required value'))
            return
          }
          send(200, scale(put(mergePatch(current, { spec: { replicas } }) as KObject)))
        } else send(405, status(405, 'MethodNotAllowed', 'method not allowed'))
        return
      }
      if (method === 'GET') send(200, current)
      else if (method === 'PATCH') {
        const ct = req.headers['content-type'] ?? ''
        if (ct !== 'application/merge-patch+json' && ct !== 'application/strategic-merge-patch+json') {
          send(415, status(415, 'UnsupportedMediaType', `the body of the request was in an unknown format - accepted media types include: application/merge-patch+json, application/strategic-merge-patch+json; got "${ct}"`))
          return
        }
        const merged = mergePatch(current, body, ct === 'application/strategic-merge-patch+json') as KObject
        if (JSON.stringify(merged) === JSON.stringify(current)) send(200, current)
        else send(200, put(merged))
      } else if (method === 'DELETE') {
        store.delete(k)
        notify('DELETED', current, plural)
        send(200, current)
      } else send(405, status(405, 'MethodNotAllowed', 'method not allowed'))
    })
  })
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  const address = server.address()
  const port = typeof address === 'object' && address !== null ? address.port : 0
  const fake: FakeK8s = {
    url: `http://127.0.0.1:${port}`,
    token,
    requests: [],
    get: (plural, namespace, name) => store.get(key(plural, namespace, name)),
    put,
    rejectFieldSelectors: new Set(),
    evictions: false,
    refuseEvictions: new Set(),
    nextWatch: async () => {
      if (watchesSinceAsked > 0) {
        watchesSinceAsked = 0
        return
      }
      await new Promise<void>(resolve => { watchWaiters.push(() => { watchesSinceAsked = 0; resolve() }) })
    }
  }
  t.teardown(async () => {
    for (const w of watchers) w.res.end()
    server.closeAllConnections()
    await new Promise<void>(resolve => server.close(() => { resolve() }))
  })
  return fake
}
