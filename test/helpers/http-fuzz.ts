// The API fuzzer's pieces (test/integration/api-fuzz.test.ts): a fast-check
// generator of HTTP requests against Shoal's API (paths in the Kubernetes
// and Shoal layouts and around them, query strings, headers, bodies of every
// content type, three tokens), a client that sends one over node:http or, for
// bytes node:http will not put in a request line, over a raw socket, and the
// check of an answer: a well-formed Status for anything but success, never a
// 500, a 503 only with Retry-After, and a 4xx where the input was known bad.
import fc from 'fast-check'
import { Agent, request } from 'node:http'
import type { IncomingHttpHeaders } from 'node:http'
import { connect } from 'node:net'
import { stringify as yaml } from 'yaml'
import {
  jsonPatchArb, KIND_NAMES, manifestArb, manifestArbs, mergePatchArb, mutate, mutationArb, NAMES, nameArb, namespaceArb, nastyString, nested,
  RESOURCES, statusArb, strategicPatchArb
} from './arbitraries.ts'
import type { Obj } from './arbitraries.ts'

export type TokenKind = 'admin' | 'viewer' | 'none' | 'bad'

export interface FuzzRequest {
  /** which peer (0, 1, 2) */
  peer: number
  method: string
  /** the raw request target, path and query, sent as is */
  target: string
  token: TokenKind
  headers: Record<string, string>
  body?: Uint8Array
  /** what the body is, for the tally */
  bodyKind: string
  /** what the target is, for the tally */
  targetKind: string
  /** send over a raw socket (the target has bytes node:http refuses) */
  raw: boolean
  /** a watch or a follow: read the head and the first bytes, then hang up */
  streaming: boolean
  /** '4xx' when the input is known bad (and so must be refused with a 4xx) */
  expect: 'any' | '4xx'
  why?: string
}

export interface Answer {
  status: number
  headers: IncomingHttpHeaders
  body: Buffer
  /** the client hung up before the body ended: a stream (a watch, a follow), or more than it reads */
  streamed?: boolean
}

const pick = <T>(xs: readonly T[]): fc.Arbitrary<T> => fc.constantFrom(...xs)
const enc = (s: string): string => encodeURIComponent(s)

// ---- targets -----------------------------------------------------------------

/** Percent-encodings that are not valid: a lone %, bad hex, truncated or overlong UTF-8, NUL, encoded slashes and dots. */
const BAD_PERCENT = ['%', '%zz', '%E0%A4', '%C0%AF', '%ED%A0%80', '%FF', 'a%2', '%%41']
const ODD_PERCENT = ['%00', '%2F', '%2e%2e', '%2E', '%20', '%0A']

interface Segment { text: string, bad: boolean, kind: string }

const nameSegment: fc.Arbitrary<Segment> = fc.oneof(
  { weight: 20, arbitrary: pick(NAMES).map(n => ({ text: n, bad: false, kind: 'name' })) },
  { weight: 2, arbitrary: nastyString.map(s => ({ text: enc(s.isWellFormed() ? s : s.toWellFormed()), bad: false, kind: 'unicode' })) },
  { weight: 2, arbitrary: fc.tuple(pick(BAD_PERCENT), pick(['', 'web', 'x'])).map(([p, n]) => ({ text: n + p, bad: true, kind: 'bad-percent' })) },
  { weight: 1, arbitrary: pick(ODD_PERCENT).map(p => ({ text: `web${p}x`, bad: false, kind: 'odd-percent' })) },
  { weight: 1, arbitrary: pick([300, 5000, 12_000]).map(n => ({ text: 'a'.repeat(n), bad: false, kind: 'huge-name' })) },
  { weight: 1, arbitrary: pick(['..', '.', '', 'WEB', 'web ', 'web\u00e9']).map(t => ({ text: t, bad: false, kind: 'odd-name' })) },
  { weight: 1, arbitrary: fc.string({ unit: 'binary', minLength: 1, maxLength: 6 }).map(s => ({ text: s, bad: false, kind: 'raw-unicode' })) }
)

const SUBRESOURCES = ['status', 'scale', 'log', 'exec', 'binding', 'eviction', 'proxy', '']

/** Paths in the Kubernetes layout, built from the kinds' REST names. */
const k8sTarget: fc.Arbitrary<{ path: string, bad: boolean, kind: string, resource?: string }> = fc.record({
  kind: pick([...KIND_NAMES, 'Widget']),
  ns: fc.oneof({ weight: 8, arbitrary: namespaceArb.map(n => ({ text: n.isWellFormed() ? enc(n) : '%ED%A0%80', bad: !n.isWellFormed(), kind: 'ns' })) }, { weight: 1, arbitrary: nameSegment }),
  name: nameSegment,
  shape: pick(['collection', 'collection', 'all-namespaces', 'object', 'object', 'object', 'subresource']),
  sub: pick(SUBRESOURCES),
  version: fc.oneof({ weight: 9, arbitrary: fc.constant('v1') }, { weight: 1, arbitrary: pick(['v2', 'v1beta1', '']) })
}).map(({ kind, ns, name, shape, sub, version }) => {
  const r = RESOURCES[kind] ?? { group: 'example.com', resource: 'widgets', namespaced: true }
  const base = r.group === '' ? `/api/${version}` : `/apis/${r.group}/${version}`
  const coll = r.namespaced && shape !== 'all-namespaces' ? `${base}/namespaces/${ns.text}/${r.resource}` : `${base}/${r.resource}`
  const path = shape === 'collection' || shape === 'all-namespaces' ? coll : shape === 'object' ? `${coll}/${name.text}` : `${coll}/${name.text}/${sub}`
  const bad = ((r.namespaced && shape !== 'all-namespaces') && ns.bad) || (shape !== 'collection' && shape !== 'all-namespaces' && name.bad)
  return { path, bad, kind: `k8s:${shape}${name.kind !== 'name' && shape !== 'collection' ? `/${name.kind}` : ''}`, resource: r.resource }
})

const OTHER_PATHS = ['/', '/api', '/apis', '/api/v1', '/apis/apps', '/apis/apps/v1', '/apis/batch/v1', '/openapi/v2', '/openapi/v3',
  '/version', '/readyz', '/healthz', '/livez', '/metrics', '/shoal/v1/whoami', '/shoal/v1/members', '/shoal/v1/raft', '/shoal/v1/raft?view=leader',
  '/shoal/v1/debug/state-hash', '/shoal/v1/nope', '/ui/', '/ui/app.js', '/ui/style.css', '/ui/missing.js', '/ui/../admin.token', '/ui/%2e%2e/admin.token',
  '//api/v1', '/api/v1/', '/api//v1/namespaces', '/api/v1/namespaces/default/pods/', '*', 'http://evil.example/api/v1', '/shoal/v1/backup']

const otherTarget = fc.oneof(
  { weight: 6, arbitrary: pick(OTHER_PATHS).map(path => ({ path, bad: false, kind: `other:${path.slice(0, 24)}` })) },
  { weight: 3, arbitrary: fc.oneof(pick(['config/a', 'config/b', 'lock', '.', '..', '']), nastyString.map(s => enc(s.toWellFormed())), pick(BAD_PERCENT)).map(k => ({ path: `/shoal/v1/kv/${k}`, bad: BAD_PERCENT.includes(k), kind: 'kv' })) },
  { weight: 1, arbitrary: pick(BAD_PERCENT).map(p => ({ path: `/shoal/v1/${p}`, bad: false, kind: 'shoal-bad-percent' })) }
)

const QUERY_VALUES: Record<string, fc.Arbitrary<string>> = {
  labelSelector: fc.oneof(pick(['app=web', 'app!=web', 'app in (web,db)', 'tier notin (x)', '!legacy', 'app', 'app==web,tier=db', 'a in (', '!!', '=x', 'a=b=c', 'x in ()', 'app in (web', 'k'.repeat(400) + '=v']), nastyString),
  fieldSelector: fc.oneof(pick(['metadata.name=web', 'metadata.namespace!=default', 'spec.nodeName=fz1', 'status.phase=Running', 'bogus=1', 'metadata.name', '==', 'metadata.name=web,metadata.name!=x']), nastyString),
  watch: pick(['1', 'true', 'false', '0', 'yes', '']),
  resourceVersion: pick(['0', '1', '5', '99999999999', '-1', 'abc', '', '1e3']),
  resourceVersionMatch: pick(['NotOlderThan', 'Exact', 'bogus']),
  timeoutSeconds: pick(['1', '0', '2', '-5', 'x', '99999999999', '1.5']),
  allowWatchBookmarks: pick(['true', 'false']),
  dryRun: pick(['All', 'None', 'x', '']),
  fieldManager: fc.oneof(pick(['kubectl', 'shoal-fuzz', '', 'm'.repeat(200)]), nastyString),
  force: pick(['true', 'false', '1', 'x']),
  propagationPolicy: pick(['Background', 'Foreground', 'Orphan', 'Sideways', '']),
  gracePeriodSeconds: pick(['0', '30', '-1', 'x']),
  limit: pick(['1', '500', '0', '-1', 'x']),
  continue: pick(['abc', '']),
  pretty: pick(['true', '1']),
  container: pick(['web', 'main', 'nope']),
  follow: pick(['true', 'false']),
  tailLines: pick(['10', '-1', 'x']),
  command: pick(['true', 'echo', 'ls']),
  prefix: pick(['config/', '', '%zz']),
  cas: pick(['0', '1', '-1', 'x']),
  view: pick(['leader', 'x'])
}

const queryArb: fc.Arbitrary<{ text: string, streaming: boolean, bad: boolean }> = fc.array(
  fc.tuple(fc.oneof({ weight: 12, arbitrary: pick(Object.keys(QUERY_VALUES)) }, { weight: 1, arbitrary: pick(['x', '', '%zz', 'a%', '&&']) }), fc.nat(), fc.oneof({ weight: 12, arbitrary: fc.constant(true) }, { weight: 1, arbitrary: fc.constant(false) })),
  { maxLength: 3 }
).chain(pairs => fc.tuple(...pairs.map(([k]) => QUERY_VALUES[k] ?? fc.oneof(pick(BAD_PERCENT), nastyString))).map(values => {
  const parts = pairs.map(([k, , encoded], i) => `${k}=${encoded ? enc((values[i] ?? '').toWellFormed()) : (values[i] ?? '')}`)
  const has = (k: string, v: RegExp): boolean => pairs.some(([key], i) => key === k && v.test(values[i] ?? ''))
  return { text: parts.join('&'), streaming: has('watch', /^(1|true)$/) || has('follow', /^true$/), bad: false }
}))

// ---- bodies ------------------------------------------------------------------

const utf8 = (s: string): Uint8Array => new TextEncoder().encode(s)

/** A YAML document whose aliases expand `fanout`^`levels` times: small on the wire, large once parsed. */
function yamlBomb (levels: number, fanout: number): string {
  const lines = [`a0: &a0 [${Array.from({ length: fanout }, () => '"lol"').join(', ')}]`]
  for (let i = 1; i < levels; i++) lines.push(`a${i}: &a${i} [${Array.from({ length: fanout }, () => `*a${i - 1}`).join(', ')}]`)
  return `apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: bomb\n  namespace: default\nbinaryData:\n  ${lines.join('\n  ')}\n`
}

interface Body { bytes: Uint8Array, kind: string, contentType: string, bad: boolean }

const CONTENT_TYPES = ['application/json', 'application/yaml', 'application/apply-patch+yaml', 'application/merge-patch+json', 'application/json-patch+json',
  'application/strategic-merge-patch+json', 'text/plain', 'application/vnd.kubernetes.protobuf', 'multipart/form-data; boundary=x', 'application/json; charset=latin1', '', 'garbage/;;;']

const manifestBody: fc.Arbitrary<Body> = fc.tuple(manifestArb, fc.oneof({ weight: 3, arbitrary: fc.constant([]) }, { weight: 1, arbitrary: fc.array(mutationArb, { maxLength: 3 }) }), pick(['json', 'json', 'yaml'])).map(([m, muts, as]) => {
  const obj = mutate(m, muts)
  return as === 'json'
    ? { bytes: utf8(JSON.stringify(obj)), kind: 'manifest-json', contentType: 'application/json', bad: false }
    : { bytes: utf8(yaml(obj)), kind: 'manifest-yaml', contentType: 'application/yaml', bad: false }
})

const patchBody: fc.Arbitrary<Body> = fc.oneof(
  mergePatchArb.map(p => ({ bytes: utf8(JSON.stringify(p)), kind: 'patch-merge', contentType: 'application/merge-patch+json', bad: false })),
  strategicPatchArb.map(p => ({ bytes: utf8(JSON.stringify(p)), kind: 'patch-strategic', contentType: 'application/strategic-merge-patch+json', bad: false })),
  jsonPatchArb.map(p => ({ bytes: utf8(JSON.stringify(p)), kind: 'patch-json', contentType: 'application/json-patch+json', bad: false })),
  manifestArb.map(m => ({ bytes: utf8(yaml(m)), kind: 'apply', contentType: 'application/apply-patch+yaml', bad: false }))
)

const otherBody: fc.Arbitrary<Body> = fc.oneof(
  fc.record({ replicas: fc.oneof(fc.integer({ min: 0, max: 4 }), pick([-1, 2 ** 31, 0.5, 'x'])), name: pick(NAMES) }).map(({ replicas, name }) => ({ bytes: utf8(JSON.stringify({ apiVersion: 'autoscaling/v1', kind: 'Scale', metadata: { name, namespace: 'default' }, spec: { replicas } })), kind: 'scale', contentType: 'application/json', bad: false })),
  fc.record({ propagationPolicy: pick(['Background', 'Foreground', 'Orphan', 'Up']), gracePeriodSeconds: pick([0, 30, -1]), preconditions: fc.record({ uid: pick(['x', '']), resourceVersion: pick(['1', '']) }, { requiredKeys: [] }) }, { requiredKeys: [] }).map(o => ({ bytes: utf8(JSON.stringify({ kind: 'DeleteOptions', apiVersion: 'v1', ...o })), kind: 'delete-options', contentType: 'application/json', bad: false })),
  fc.tuple(pick(KIND_NAMES), pick(NAMES), statusArb).map(([k, name, status]) => ({ bytes: utf8(JSON.stringify({ apiVersion: RESOURCES[k]?.group === 'apps' ? 'apps/v1' : 'v1', kind: k, metadata: { name, namespace: 'default' }, status })), kind: 'status', contentType: 'application/json', bad: false })),
  fc.uint8Array({ maxLength: 64 }).map(b => ({ bytes: b, kind: 'kv-value', contentType: 'application/octet-stream', bad: false }))
)

/** Bodies no write may accept. */
const badBody: fc.Arbitrary<Body> = fc.oneof(
  fc.uint8Array({ minLength: 1, maxLength: 200 }).map(b => ({ bytes: Uint8Array.from([0x7b, ...b]), kind: 'garbage', contentType: 'application/json', bad: true })),
  pick(['{', '{"apiVersion":', 'NaN', '{"a":1}}', '\u0000', '{"metadata": {"name": "x", "name": "y"', ': : :', '- - [', '{{{{', '"\\ud800"']).map(s => ({ bytes: utf8(s), kind: 'truncated', contentType: 'application/json', bad: true })),
  fc.integer({ min: 101, max: 20_000 }).map(d => ({ bytes: utf8('['.repeat(d) + ']'.repeat(d)), kind: 'deep-json', contentType: 'application/json', bad: true })),
  fc.integer({ min: 101, max: 3000 }).map(d => ({ bytes: utf8(JSON.stringify({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'deep', namespace: 'default' }, binaryData: { k: nested(d) } })), kind: 'deep-manifest', contentType: 'application/json', bad: true })),
  fc.integer({ min: 101, max: 3000 }).map(d => ({ bytes: utf8(`apiVersion: v1\nkind: ConfigMap\nmetadata: {name: deep, namespace: default}\nbinaryData: {k: ${'['.repeat(d)}${']'.repeat(d)}}\n`), kind: 'deep-yaml', contentType: 'application/yaml', bad: true })),
  fc.tuple(fc.integer({ min: 6, max: 9 }), fc.integer({ min: 8, max: 12 })).map(([levels, fanout]) => ({ bytes: utf8(yamlBomb(levels, fanout)), kind: 'yaml-aliases', contentType: 'application/yaml', bad: true })),
  pick([3.5, 5]).map(mb => ({ bytes: utf8(JSON.stringify({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'huge', namespace: 'default' }, data: { k: 'x'.repeat(mb * 1024 * 1024) } })), kind: 'oversized', contentType: 'application/json', bad: true }))
)

/** Large but within the limits. */
const bigBody: fc.Arbitrary<Body> = pick([64, 256, 900]).map(kb => ({ bytes: utf8(JSON.stringify({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: `big-${kb}`, namespace: 'default' }, data: { k: 'é'.repeat(kb * 512) } })), kind: 'big', contentType: 'application/json', bad: false }))

const bodyArb: fc.Arbitrary<Body> = fc.oneof(
  { weight: 10, arbitrary: manifestBody },
  { weight: 6, arbitrary: patchBody },
  { weight: 3, arbitrary: otherBody },
  { weight: 3, arbitrary: badBody },
  { weight: 1, arbitrary: bigBody }
)

// ---- requests ----------------------------------------------------------------

const WRITES = ['POST', 'PUT', 'PATCH', 'DELETE']
const METHODS = ['GET', 'GET', 'GET', 'POST', 'POST', 'PUT', 'PATCH', 'PATCH', 'DELETE', 'HEAD', 'OPTIONS', 'TRACE', 'FOO']

/** Anything: a method, a target and a body drawn apart, so that most do not fit together. */
const looseRequestArb: fc.Arbitrary<FuzzRequest> = fc.record({
  peer: fc.nat(2),
  method: pick(METHODS),
  target: fc.oneof({ weight: 6, arbitrary: k8sTarget }, { weight: 2, arbitrary: otherTarget }),
  query: fc.oneof({ weight: 2, arbitrary: fc.constant({ text: '', streaming: false, bad: false }) }, { weight: 3, arbitrary: queryArb }),
  token: fc.oneof({ weight: 14, arbitrary: fc.constant<TokenKind>('admin') }, { weight: 3, arbitrary: fc.constant<TokenKind>('viewer') }, { weight: 2, arbitrary: fc.constant<TokenKind>('none') }, { weight: 1, arbitrary: fc.constant<TokenKind>('bad') }),
  body: bodyArb,
  contentType: fc.oneof({ weight: 12, arbitrary: fc.constant(undefined) }, { weight: 1, arbitrary: pick(CONTENT_TYPES) }),
  accept: fc.oneof({ weight: 8, arbitrary: fc.constant(undefined) }, { weight: 1, arbitrary: pick(['application/json', 'application/json;as=Table;v=v1;g=meta.k8s.io', 'application/json;as=Table;v=v1beta1;g=meta.k8s.io', 'application/yaml', '*/*', 'application/vnd.kubernetes.protobuf', 'text/html', ';;;']) }),
  extraHeader: fc.oneof({ weight: 10, arbitrary: fc.constant(undefined) }, { weight: 1, arbitrary: fc.tuple(pick(['x-forwarded-for', 'impersonate-user', 'content-encoding', 'expect', 'accept-encoding', 'x-shoal-leader']), pick(['gzip', '100-continue', 'admin', '1.2.3.4', 'x'.repeat(4000)])) })
}).map(r => {
  const hasBody = r.method === 'POST' || r.method === 'PUT' || r.method === 'PATCH' || (r.method === 'DELETE' && r.body.kind === 'delete-options')
  const path = r.target.path.includes('?') ? r.target.path + (r.query.text === '' ? '' : `&${r.query.text}`) : r.target.path + (r.query.text === '' ? '' : `?${r.query.text}`)
  const headers: Record<string, string> = {}
  const contentType = r.contentType ?? r.body.contentType
  if (hasBody && contentType !== '') headers['content-type'] = contentType
  if (r.accept !== undefined) headers.accept = r.accept
  if (r.extraHeader !== undefined) headers[r.extraHeader[0]] = r.extraHeader[1]
  const k8sWrite = r.target.kind.startsWith('k8s:') && (r.method === 'POST' || r.method === 'PUT' || r.method === 'PATCH')
  // Known bad, and so a 4xx whatever else is wrong: no token where one is needed, a bad percent-encoding in a Kubernetes
  // path, a write whose body no parser or limit accepts (with the content type it was made for).
  const isPublic = /^\/(healthz|readyz|version|livez|ui\/)/.test(path)
  const why = r.token === 'none' && !isPublic
    ? 'no token'
    : r.token === 'bad' && !isPublic
      ? 'a wrong token'
      : r.token === 'viewer' && WRITES.includes(r.method) && !isPublic
        ? 'a write with the viewer token'
        : r.target.bad
          ? 'a bad percent-encoding in the path'
          : k8sWrite && r.body.bad && r.contentType === undefined && r.token === 'admin'
            ? `a ${r.body.kind} body`
            : undefined
  // node:http puts only bytes 0x21-0xff in a request line; anything else goes over a raw socket.
  const raw = /[^\u0021-\u00ff]/.test(path) || !/^[A-Z]+$/.test(r.method)
  const req: FuzzRequest = {
    peer: r.peer,
    method: r.method,
    target: path,
    token: r.token,
    headers,
    bodyKind: hasBody ? r.body.kind : 'none',
    targetKind: r.target.kind,
    raw,
    streaming: r.query.streaming,
    expect: why === undefined ? 'any' : '4xx',
    ...(why === undefined ? {} : { why }),
    ...(hasBody ? { body: r.body.bytes } : {})
  }
  return req
})

/**
 * What a client means to do, as kubectl would send it: a manifest of one
 * kind written to its own path (create, get, list, update, patch of each
 * type, server-side apply, status, scale, delete, a short watch), now and
 * then with a mutated body, so that the writes succeed often enough to
 * build state for the others to meet.
 */
const coherentRequestArb: fc.Arbitrary<FuzzRequest> = pick(KIND_NAMES).chain(kind => fc.record({
  peer: fc.nat(2),
  op: pick(['create', 'create', 'create', 'get', 'list', 'update', 'patch', 'apply', 'status', 'scale', 'delete', 'watch'] as const),
  manifest: manifestArbs[kind] as fc.Arbitrary<Obj>,
  mutations: fc.oneof({ weight: 6, arbitrary: fc.constant([]) }, { weight: 1, arbitrary: fc.array(mutationArb, { minLength: 1, maxLength: 2 }) }),
  yamlBody: fc.boolean(),
  patch: fc.oneof(
    mergePatchArb.map(p => ({ p, type: 'application/merge-patch+json', kind: 'patch-merge' })),
    strategicPatchArb.map(p => ({ p, type: 'application/strategic-merge-patch+json', kind: 'patch-strategic' })),
    jsonPatchArb.map(p => ({ p, type: 'application/json-patch+json', kind: 'patch-json' }))
  ),
  status: statusArb,
  replicas: fc.oneof(fc.integer({ min: 0, max: 3 }), pick([-1, 2 ** 31, 'x'])),
  deleteQuery: pick(['', 'propagationPolicy=Foreground', 'propagationPolicy=Orphan', 'dryRun=All', 'gracePeriodSeconds=0']),
  listQuery: pick(['', 'labelSelector=app%3Dweb', 'fieldSelector=metadata.name%3Dweb', 'limit=2', 'labelSelector=app+in+(web%2Cdb)']),
  applyQuery: pick(['fieldManager=fuzz', 'fieldManager=fuzz&force=true', 'fieldManager=other', '', 'fieldManager=fuzz&dryRun=All']),
  token: fc.oneof({ weight: 10, arbitrary: fc.constant<TokenKind>('admin') }, { weight: 1, arbitrary: fc.constant<TokenKind>('viewer') })
}).map(r => {
  const res = RESOURCES[kind] as { group: string, resource: string, namespaced: boolean }
  const meta = (r.manifest.metadata ?? {}) as Obj
  const ns = typeof meta.namespace === 'string' ? meta.namespace : 'default'
  const name = typeof meta.name === 'string' ? meta.name : 'web'
  const base = res.group === '' ? '/api/v1' : `/apis/${res.group}/v1`
  const coll = res.namespaced ? `${base}/namespaces/${enc(ns.toWellFormed())}/${res.resource}` : `${base}/${res.resource}`
  const obj = `${coll}/${enc(name.toWellFormed())}`
  const body = mutate(r.manifest, r.mutations)
  const asBody = (v: unknown, yamlToo = true): { bytes: Uint8Array, type: string } => r.yamlBody && yamlToo ? { bytes: utf8(yaml(v)), type: 'application/yaml' } : { bytes: utf8(JSON.stringify(v)), type: 'application/json' }
  const request = (method: string, target: string, bodyKind: string, payload?: { bytes: Uint8Array, type: string }, streaming = false): FuzzRequest => ({
    peer: r.peer,
    method,
    target,
    token: r.token,
    headers: payload === undefined ? {} : { 'content-type': payload.type },
    bodyKind,
    targetKind: `coherent:${r.op}`,
    raw: false,
    streaming,
    ...(r.token === 'viewer' && WRITES.includes(method) ? { expect: '4xx' as const, why: 'a write with the viewer token' } : { expect: 'any' as const }),
    ...(payload === undefined ? {} : { body: payload.bytes })
  })
  const q = (query: string): string => query === '' ? '' : `?${query}`
  switch (r.op) {
    case 'create': return request('POST', coll, r.yamlBody ? 'manifest-yaml' : 'manifest-json', asBody(body))
    case 'get': return request('GET', obj, 'none')
    case 'list': return request('GET', coll + q(r.listQuery), 'none')
    case 'update': return request('PUT', obj, r.yamlBody ? 'manifest-yaml' : 'manifest-json', asBody(body))
    case 'patch': return request('PATCH', obj, r.patch.kind, { bytes: utf8(JSON.stringify(r.patch.p)), type: r.patch.type })
    case 'apply': return request('PATCH', obj + q(r.applyQuery), 'apply', { bytes: utf8(yaml(body)), type: 'application/apply-patch+yaml' })
    case 'status': return request('PUT', `${obj}/status`, 'status', asBody({ ...body, status: r.status }))
    case 'scale': return request('PUT', `${obj}/scale`, 'scale', asBody({ apiVersion: 'autoscaling/v1', kind: 'Scale', metadata: { name, namespace: ns }, spec: { replicas: r.replicas } }))
    case 'delete': return request('DELETE', obj + q(r.deleteQuery), 'none')
    case 'watch': return request('GET', `${coll}?watch=1&timeoutSeconds=1`, 'none', undefined, true)
  }
}))

export const requestArb: fc.Arbitrary<FuzzRequest> = fc.oneof({ weight: 1, arbitrary: coherentRequestArb }, { weight: 1, arbitrary: looseRequestArb })

// ---- sending -----------------------------------------------------------------

const MAX_READ = 2 * 1024 * 1024
/** The request each socket carried last, for a report of a hang. */
const lastOnSocket = new WeakMap<object, string>()
/** A body still coming this long after its head is a stream. */
const STREAM_AFTER_MS = 4000

export interface Target { host: string, port: number, tokens: Record<TokenKind, string | undefined> }

function authHeader (t: Target, kind: TokenKind): Record<string, string> {
  const token = t.tokens[kind]
  return token === undefined ? {} : { authorization: `Bearer ${token}` }
}

/** Sends `req` to `t`; resolves with the answer, or rejects when none came within `timeoutMs`. */
export async function send (agent: Agent, t: Target, req: FuzzRequest, timeoutMs: number): Promise<Answer> {
  return req.raw ? await sendRaw(t, req, timeoutMs) : await sendHttp(agent, t, req, timeoutMs)
}

async function sendHttp (agent: Agent, t: Target, req: FuzzRequest, timeoutMs: number): Promise<Answer> {
  return await new Promise<Answer>((resolve, reject) => {
    const headers = { ...req.headers, ...authHeader(t, req.token), ...(req.body !== undefined ? { 'content-length': String(req.body.length) } : {}) }
    let settled = false
    const r = request({ agent, host: t.host, port: t.port, method: req.method, path: req.target, headers }, res => {
      const chunks: Buffer[] = []
      let size = 0
      // A watch or a follow (whatever the query asked for) is read for a moment, then hung up on: its head and first bytes are what is checked.
      const streamTimer = setTimeout(() => { done(true); r.destroy() }, req.streaming ? 1200 : STREAM_AFTER_MS)
      const done = (streamed = false): void => {
        if (settled) return
        settled = true
        clearTimeout(timer)
        clearTimeout(streamTimer)
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks), ...(streamed ? { streamed } : {}) })
      }
      res.on('data', (c: Buffer) => {
        size += c.length
        if (size <= MAX_READ) chunks.push(c)
        else { done(true); r.destroy() }
      })
      res.on('end', () => { done() })
      res.on('aborted', () => { done() })
      res.on('error', () => { done() })
      res.on('close', () => { done() })
    })
    // When each step happened, to tell a server that never answered from a request that never left.
    const t0 = Date.now()
    const steps: string[] = []
    const step = (what: string): void => { steps.push(`${what} +${Date.now() - t0} ms`) }
    r.on('socket', socket => {
      const before = lastOnSocket.get(socket)
      step(socket.connecting ? 'new socket' : `reused socket (after ${before ?? '?'})`)
      lastOnSocket.set(socket, `${req.method} ${req.target.slice(0, 120)} ${req.bodyKind} ${JSON.stringify(req.headers).slice(0, 100)}`)
      if (socket.connecting) socket.once('connect', () => { step('connected') })
    })
    r.on('finish', () => { step('request sent') })
    const timer = setTimeout(() => {
      if (settled) return
      settled = true
      r.destroy()
      reject(new Error(`no answer within ${timeoutMs} ms (${steps.join(', ') || 'no socket'})`))
    }, timeoutMs)
    r.on('error', err => {
      if (settled) return
      settled = true
      clearTimeout(timer)
      reject(err)
    })
    if (req.body !== undefined) r.end(req.body)
    else r.end()
  })
}

/** One request written byte for byte on its own connection; the answer read until the server closes. */
async function sendRaw (t: Target, req: FuzzRequest, timeoutMs: number): Promise<Answer> {
  return await new Promise<Answer>((resolve, reject) => {
    const socket = connect({ host: t.host, port: t.port })
    const chunks: Buffer[] = []
    let size = 0
    const timer = setTimeout(() => { socket.destroy(); reject(new Error(`no answer within ${timeoutMs} ms (raw)`)) }, timeoutMs)
    const headers = { host: `${t.host}:${t.port}`, connection: 'close', ...req.headers, ...authHeader(t, req.token), ...(req.body !== undefined ? { 'content-length': String(req.body.length) } : {}) }
    const head = Buffer.concat([
      Buffer.from(`${req.method} `, 'latin1'), Buffer.from(req.target, 'utf8'), Buffer.from(' HTTP/1.1\r\n', 'latin1'),
      Buffer.from(Object.entries(headers).map(([k, v]) => `${k}: ${v}\r\n`).join('') + '\r\n', 'latin1')
    ])
    socket.on('connect', () => { socket.write(req.body === undefined ? head : Buffer.concat([head, req.body])) })
    socket.on('data', (c: Buffer) => { size += c.length; if (size <= MAX_READ) chunks.push(c) })
    const finish = (): void => {
      clearTimeout(timer)
      const all = Buffer.concat(chunks)
      const m = /^HTTP\/1\.[01] (\d{3})/.exec(all.subarray(0, 16).toString('latin1'))
      if (m === null) { reject(new Error(`not an HTTP answer: ${JSON.stringify(all.subarray(0, 60).toString('latin1'))}`)); return }
      const split = all.indexOf('\r\n\r\n')
      const headLines = all.subarray(0, split < 0 ? all.length : split).toString('latin1').split('\r\n').slice(1)
      const hdrs: IncomingHttpHeaders = {}
      for (const line of headLines) { const i = line.indexOf(':'); if (i > 0) hdrs[line.slice(0, i).toLowerCase()] = line.slice(i + 1).trim() }
      let body: Buffer = split < 0 ? Buffer.alloc(0) : all.subarray(split + 4)
      if (/chunked/i.test(String(hdrs['transfer-encoding'] ?? ''))) body = unchunk(body)
      resolve({ status: Number(m[1]), headers: hdrs, body })
    }
    socket.on('end', finish)
    socket.on('error', () => { if (chunks.length > 0) finish(); else { clearTimeout(timer); reject(new Error('connection reset with no answer (raw)')) } })
  })
}

function unchunk (b: Buffer): Buffer {
  const out: Buffer[] = []
  let pos = 0
  while (pos < b.length) {
    const eol = b.indexOf('\r\n', pos)
    if (eol < 0) break
    const n = parseInt(b.subarray(pos, eol).toString('latin1'), 16)
    if (!Number.isFinite(n) || n === 0) break
    out.push(b.subarray(eol + 2, eol + 2 + n))
    pos = eol + 2 + n + 2
  }
  return Buffer.concat(out)
}

// ---- checking ----------------------------------------------------------------

/** What is wrong with `answer` to `req`, or undefined. */
export function problemWith (req: FuzzRequest, answer: Answer): string | undefined {
  const { status } = answer
  if (status >= 500) {
    if (status === 503 && answer.headers['retry-after'] !== undefined) return undefined
    // A proposal that timed out under load: the outcome is unknown, and the answer says so.
    if (status === 504) return statusProblem(req, answer)
    return `answered ${status}`
  }
  if (status === 429 && answer.headers['retry-after'] === undefined) return 'a 429 without Retry-After'
  if (answer.streamed === true && status !== 200) return `answered ${status} with a body that did not end`
  if (req.expect === '4xx' && status < 400) return `${req.why ?? 'bad input'} was answered ${status}`
  // The UI's file server answers browsers in plain text (daemon/ui may not import protocol/): a 4xx is all it owes.
  if (status >= 400 && status < 500 && /^\/ui\//.test(req.target) && /^text\/plain/.test(String(answer.headers['content-type'] ?? ''))) return undefined
  if (status >= 400) return statusProblem(req, answer)
  if (status >= 200 && status < 300 && req.method !== 'HEAD' && answer.streamed !== true && /json/.test(String(answer.headers['content-type'] ?? '')) && answer.body.length < MAX_READ) {
    // One JSON document, or (a watch that ended: timeoutSeconds) one JSON event a line.
    const text = answer.body.toString('utf8')
    const parses = (t: string): boolean => { try { JSON.parse(t); return true } catch { return false } }
    if (!parses(text) && !text.split('\n').filter(l => l !== '').every(parses)) return `answered ${status} with a body that is not JSON`
  }
  return undefined
}

function statusProblem (req: FuzzRequest, answer: Answer): string | undefined {
  if (req.method === 'HEAD') return undefined
  let s: unknown
  try { s = JSON.parse(answer.body.toString('utf8')) } catch { return `answered ${answer.status} with a body that is not JSON: ${JSON.stringify(answer.body.subarray(0, 120).toString('utf8'))}` }
  const st = s as Record<string, unknown>
  if (st === null || typeof st !== 'object' || st.kind !== 'Status' || st.apiVersion !== 'v1' || st.status !== 'Failure' || st.code !== answer.status || typeof st.message !== 'string' || st.message === '' || typeof st.reason !== 'string') {
    return `answered ${answer.status} with something that is not a well-formed Status: ${JSON.stringify(answer.body.subarray(0, 200).toString('utf8'))}`
  }
  if (/\n\s+at /.test(st.message)) return `answered ${answer.status} with a stack trace in the message`
  return undefined
}

/** `req` on one line, for a report. */
export function describe (req: FuzzRequest): string {
  const body = req.body === undefined ? '' : ` body(${req.bodyKind}, ${req.body.length} B): ${JSON.stringify(Buffer.from(req.body.subarray(0, 160)).toString('utf8'))}`
  const target = req.target.length > 200 ? `${req.target.slice(0, 200)}…(${req.target.length} chars)` : req.target
  return `${req.method} ${target} [peer ${req.peer}, token ${req.token}${req.raw ? ', raw' : ''}] ${JSON.stringify(req.headers).slice(0, 200)}${body}`
}
