// What the API says about itself, as kubectl and client libraries read it:
// the discovery documents (/api, /apis, /apis/{group}, /api/v1,
// /apis/{group}/{version}) with kind, verbs, short names, categories and
// subresources of every type, and a minimal OpenAPI v3 (/openapi/v3 and one
// document per group version). Aggregated discovery
// (`as=APIGroupDiscoveryList`) is declined by answering the plain form as
// application/json, which kubectl takes as "fall back to the legacy
// documents". The OpenAPI documents list, for each type, its paths and a
// PATCH operation that takes `fieldValidation` (so kubectl lets the server
// validate instead of downloading schemas) and no strategic merge patch
// (so client-side apply computes its patches from kubectl's built-in types
// instead of from schemas Shoal does not publish). /openapi/v2 (which
// kubectl before 1.27 and the fallbacks of later ones read, as protobuf) is
// an empty document: no paths and no definitions, so kubectl validates
// nothing on the client and computes patches from its built-in types.
// May import: protocol/.
import { KINDS } from '../../protocol/kinds.ts'
import { createHash } from 'node:crypto'
import type { ResourceType } from '../../protocol/k8s.ts'
import type { Kind } from '../../protocol/kinds.ts'

/** What a discovery or OpenAPI path answers: a JSON body, raw bytes of a type, or a 404's message. */
export type DiscoveryAnswer = { body: unknown } | { bytes: Buffer, contentType: string } | { notFound: string }


function groupVersion (group: string, version: string): string {
  return group === '' ? version : `${group}/${version}`
}

function resourceList (group: string, version: string, types: readonly Kind[]): unknown {
  return {
    kind: 'APIResourceList',
    apiVersion: 'v1',
    groupVersion: groupVersion(group, version),
    resources: types.flatMap(t => [
      {
        name: t.plural,
        singularName: t.singular,
        namespaced: t.namespaced,
        kind: t.kind,
        verbs: t.verbs,
        ...(t.shortNames.length > 0 ? { shortNames: t.shortNames } : {}),
        ...(t.categories.length > 0 ? { categories: t.categories } : {})
      },
      ...t.subresources.map(sub => sub === 'eviction'
        // kubectl drain finds the Eviction's group and version here (CheckEvictionSupport)
        ? { name: `${t.plural}/eviction`, singularName: '', namespaced: t.namespaced, group: 'policy', version: 'v1', kind: 'Eviction', verbs: ['create'] }
        : {
            name: `${t.plural}/${sub}`,
            singularName: '',
            namespaced: t.namespaced,
            kind: sub === 'scale' ? 'Scale' : t.kind,
            ...(sub === 'scale' ? { group: 'autoscaling', version: 'v1' } : {}),
            verbs: ['get', 'patch', 'update']
          }),
      ...(t.kind === 'Pod'
        ? [
            { name: 'pods/log', singularName: '', namespaced: true, kind: 'Pod', verbs: ['get'] },
            { name: 'pods/exec', singularName: '', namespaced: true, kind: 'PodExecOptions', verbs: ['create', 'get'] }
          ]
        : [])
    ])
  }
}

function groupOf (group: string): unknown {
  const versions = [...new Set(KINDS.filter(t => t.group === group).map(t => t.version))]
  const gvs = versions.map(v => ({ groupVersion: `${group}/${v}`, version: v }))
  return { kind: 'APIGroup', apiVersion: 'v1', name: group, versions: gvs, preferredVersion: gvs[0] }
}

/** The discovery document at /api, /apis, /apis/{group}, /api/{version} or /apis/{group}/{version} (path segments). */
export function discovery (segments: string[]): DiscoveryAnswer {
  if (segments.length === 1 && segments[0] === 'api') {
    return { body: { kind: 'APIVersions', versions: [...new Set(KINDS.filter(t => t.group === '').map(t => t.version))], serverAddressByClientCIDRs: [{ clientCIDR: '0.0.0.0/0', serverAddress: '' }] } }
  }
  if (segments.length === 1 && segments[0] === 'apis') {
    const groups = [...new Set(KINDS.filter(t => t.group !== '').map(t => t.group))]
    return { body: { kind: 'APIGroupList', apiVersion: 'v1', groups: groups.map(groupOf) } }
  }
  const group = segments[0] === 'api' ? '' : segments[1] ?? ''
  const version = segments[0] === 'api' ? segments[1] : segments[2]
  if (segments[0] === 'apis' && version === undefined) {
    if (!KINDS.some(t => t.group === group)) return { notFound: `the server could not find the requested resource (API group ${group})` }
    return { body: groupOf(group) }
  }
  const types = KINDS.filter(t => t.group === group && t.version === version)
  if (types.length === 0) return { notFound: `the server could not find the requested resource (API ${groupVersion(group, version ?? '')})` }
  return { body: resourceList(group, version ?? '', types) }
}

// ---- OpenAPI v3 ------------------------------------------------------------

function gvPath (t: ResourceType): string {
  return t.group === '' ? `api/${t.version}` : `apis/${t.group}/${t.version}`
}

const query = (name: string, description: string, type = 'string'): unknown => ({ name, in: 'query', description, schema: { type, uniqueItems: true } })
const OBJECT = { schema: { type: 'object' } }
const JSON_ANSWER = { 200: { description: 'OK', content: { 'application/json': OBJECT } } }

function pathsOf (t: ResourceType): Record<string, unknown> {
  const gvk = { group: t.group, version: t.version, kind: t.kind }
  const base = `/${gvPath(t)}${t.namespaced ? '/namespaces/{namespace}' : ''}/${t.plural}`
  const params = [
    { name: 'name', in: 'path', required: true, schema: { type: 'string' } },
    ...(t.namespaced ? [{ name: 'namespace', in: 'path', required: true, schema: { type: 'string' } }] : [])
  ]
  const op = (action: string, extra: Record<string, unknown> = {}): unknown => ({
    operationId: `${action}${t.kind}`,
    'x-kubernetes-action': action,
    'x-kubernetes-group-version-kind': gvk,
    responses: JSON_ANSWER,
    ...extra
  })
  const writeParams = [query('dryRun', 'All: validate without storing'), query('fieldManager', 'the name of the actor making the change'), query('fieldValidation', 'Ignore, Warn or Strict: Shoal refuses unknown fields by name')]
  const collectionParams = t.namespaced ? [params[1]] : []
  return {
    [base]: {
      parameters: collectionParams,
      get: op('list', { parameters: [query('labelSelector', 'label selector'), query('fieldSelector', 'field selector'), query('watch', 'stream changes', 'boolean'), query('resourceVersion', 'resource version')] }),
      post: op('post', { parameters: writeParams, requestBody: { content: { 'application/json': OBJECT, 'application/yaml': OBJECT } } })
    },
    [`${base}/{name}`]: {
      parameters: params,
      get: op('get'),
      put: op('put', { parameters: writeParams, requestBody: { content: { 'application/json': OBJECT, 'application/yaml': OBJECT } } }),
      delete: op('delete', { parameters: [query('dryRun', 'All: validate without deleting'), query('propagationPolicy', 'Foreground, Background or Orphan')] }),
      patch: op('patch', {
        parameters: [...writeParams, query('force', 'take over fields other managers own (server-side apply only)', 'boolean')],
        requestBody: { content: { 'application/apply-patch+yaml': OBJECT, 'application/json-patch+json': OBJECT, 'application/merge-patch+json': OBJECT } }
      })
    }
  }
}

function openApiDocument (path: string, types: ResourceType[]): unknown {
  return {
    openapi: '3.0.0',
    info: { title: 'Shoal', version: path },
    paths: Object.assign({}, ...types.map(pathsOf)),
    components: { schemas: {} }
  }
}

const GV_PATHS = [...new Set(KINDS.map(gvPath))]
const DOCUMENTS = new Map(GV_PATHS.map(p => [p, openApiDocument(p, KINDS.filter(t => gvPath(t) === p))]))
const HASHES = new Map([...DOCUMENTS].map(([p, d]) => [p, createHash('sha512').update(JSON.stringify(d)).digest('hex').toUpperCase()]))

/** Whether a path is an OpenAPI document's. */
export function isOpenApiPath (path: string): boolean {
  return path === '/openapi/v2' || path === '/openapi/v3' || path.startsWith('/openapi/v3/')
}

/** The protobuf content type of OpenAPI v2 (gnostic's openapi_v2.Document), as client-go asks for it. */
export const OPENAPI_V2_PROTOBUF = 'application/com.github.proto-openapi.spec.v2@v1.0+protobuf'

/** A length-delimited protobuf field (wire type 2) with a length below 128. */
function pbField (n: number, bytes: Buffer): Buffer {
  if (bytes.length > 127) throw new Error('pbField: only short fields')
  return Buffer.concat([Buffer.from([(n << 3) | 2, bytes.length]), bytes])
}

const V2_INFO = { title: 'Shoal', version: 'v1.30.0' }
/** Document{swagger: "2.0", info: Info{title, version}, paths: {}, definitions: {}} in protobuf. */
const OPENAPI_V2_PB = Buffer.concat([
  pbField(1, Buffer.from('2.0')),
  pbField(2, Buffer.concat([pbField(1, Buffer.from(V2_INFO.title)), pbField(2, Buffer.from(V2_INFO.version))])),
  pbField(8, Buffer.alloc(0)),
  pbField(9, Buffer.alloc(0))
])

/**
 * /openapi/v2: the empty document (protobuf when asked, else JSON);
 * /openapi/v3: the index of group-version documents; /openapi/v3/{gv}: one of them.
 */
export function openApi (path: string, accept = ''): DiscoveryAnswer {
  if (path === '/openapi/v2') {
    // Answered as kube-apiserver does: Go's MIME parser refuses the '@' of the requested type.
    if (accept.includes(OPENAPI_V2_PROTOBUF)) return { bytes: OPENAPI_V2_PB, contentType: 'application/com.github.proto-openapi.spec.v2.v1.0+protobuf' }
    return { body: { swagger: '2.0', info: V2_INFO, paths: {}, definitions: {} } }
  }
  if (path === '/openapi/v3') {
    return { body: { paths: Object.fromEntries(GV_PATHS.map(p => [p, { serverRelativeURL: `/openapi/v3/${p}?hash=${HASHES.get(p) ?? ''}` }])) } }
  }
  const doc = DOCUMENTS.get(path.slice('/openapi/v3/'.length))
  if (path.startsWith('/openapi/v3/') && doc !== undefined) return { body: doc }
  return { notFound: `the server could not find the requested resource (${path})` }
}


