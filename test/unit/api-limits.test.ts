// The API's bounds on what a body parses to, over the real API server on an
// in-process store: objects nested more than 100 levels get a 400 that says
// so (JSON and YAML bodies, patches of every type, server-side apply), a
// YAML body whose aliases expand past what one write may be gets a 413
// (a 201 KB body once became a stored 20 MB object), and a write the log
// refuses as too large is a 413 as well. Nothing is stored in any of these.
import test from 'ava'
import fc from 'fast-check'
import { stringify as toYaml } from 'yaml'
import { jsonBoundPassed, MAX_JSON_DEPTH } from '../../protocol/json.ts'
import { jsonTextTooDeep } from '../../daemon/api/http.ts'
import type { KObject } from '../../protocol/k8s.ts'
import { CONFIG_MAP } from '../../protocol/kinds.ts'
import { CommandTooLargeError, MAX_COMMAND_BYTES } from '../../daemon/raft/replicator.ts'
import { startK8sTestApi } from '../helpers/k8s-api.ts'
import type { K8sTestApi } from '../helpers/k8s-api.ts'

const CONFIGMAPS = '/api/v1/namespaces/default/configmaps'

/** `levels` maps inside each other, a string at the bottom. */
function nested (levels: number): unknown {
  let v: unknown = 'bottom'
  for (let i = 0; i < levels; i++) v = { a: v }
  return v
}

/** A ConfigMap that nests `depth` levels deep in all (binaryData takes anything). */
function configMapOfDepth (name: string, depth: number): KObject {
  return { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name }, binaryData: { k: nested(depth - 2) } }
}

async function call (api: K8sTestApi, method: string, path: string, body: string, contentType = 'application/json'): Promise<{ status: number, body: any }> {
  const res = await fetch(`${api.plainUrl}${path}`, {
    method,
    headers: { authorization: `Bearer ${api.token}`, 'content-type': contentType },
    body,
    signal: AbortSignal.timeout(30_000)
  })
  const text = await res.text()
  try { return { status: res.status, body: JSON.parse(text) } } catch { return { status: res.status, body: text } }
}

const TOO_DEEP = /nests objects and lists more than 100 levels deep/

test('a body nested more than 100 levels is a 400 that says so, in JSON and in YAML; 100 levels are fine', async t => {
  const api = await startK8sTestApi(t)
  const fits = await call(api, 'POST', CONFIGMAPS, JSON.stringify(configMapOfDepth('fits', MAX_JSON_DEPTH)))
  t.is(fits.status, 201)
  for (const [what, body, type] of [
    ['101 levels of JSON', JSON.stringify(configMapOfDepth('deep', MAX_JSON_DEPTH + 1)), 'application/json'],
    ['1,550 levels of JSON (the case reported)', JSON.stringify(configMapOfDepth('deep', 1550)), 'application/json'],
    ['101 levels of YAML', toYaml(configMapOfDepth('deep', MAX_JSON_DEPTH + 1)), 'application/yaml'],
    ['a YAML alias of its own ancestor (a cycle)', 'apiVersion: v1\nkind: ConfigMap\nmetadata: {name: deep}\nbinaryData: &loop {k: [*loop]}\n', 'application/yaml'],
    ['1.5 million levels of JSON', '['.repeat(1_500_000) + ']'.repeat(1_500_000), 'application/json']
  ] as const) {
    const r = await call(api, 'POST', CONFIGMAPS, body, type)
    t.is(r.status, 400, what)
    t.like(r.body, { kind: 'Status', code: 400, reason: 'BadRequest' }, what)
    t.regex(r.body.message, TOO_DEEP, what)
  }
  t.is(api.store.get(CONFIG_MAP, 'default', 'deep'), undefined, 'nothing was stored')
})

test('patch bodies of every type, and server-side apply, are bounded the same way', async t => {
  const api = await startK8sTestApi(t)
  t.is((await call(api, 'POST', CONFIGMAPS, JSON.stringify({ metadata: { name: 'cm' }, data: { a: '1' } }))).status, 201)
  const before = api.store.get(CONFIG_MAP, 'default', 'cm')?.metadata.resourceVersion
  const deepPatch = { binaryData: { k: nested(MAX_JSON_DEPTH) } }
  for (const [type, body] of [
    ['application/merge-patch+json', JSON.stringify(deepPatch)],
    ['application/strategic-merge-patch+json', JSON.stringify(deepPatch)],
    ['application/json-patch+json', JSON.stringify([{ op: 'add', path: '/binaryData', value: nested(MAX_JSON_DEPTH) }])],
    ['application/apply-patch+yaml', toYaml({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'cm' }, ...deepPatch })]
  ] as const) {
    const r = await call(api, 'PATCH', `${CONFIGMAPS}/cm?fieldManager=test`, body, type)
    t.is(r.status, 400, type)
    t.regex(r.body.message, TOO_DEEP, type)
  }
  t.is(api.store.get(CONFIG_MAP, 'default', 'cm')?.metadata.resourceVersion, before, 'nothing changed')
})

test('server-side apply says so when managedFields would carry an object past the limit', async t => {
  const api = await startK8sTestApi(t)
  // Within the API's bound as sent; its FieldsV1, four levels down in metadata.managedFields, is not.
  const r = await call(api, 'PATCH', `${CONFIGMAPS}/ssa?fieldManager=test`, toYaml(configMapOfDepth('ssa', MAX_JSON_DEPTH)), 'application/apply-patch+yaml')
  t.is(r.status, 422)
  t.regex(r.body.message, /the applied object, with its metadata.managedFields, would nest more than 100 levels deep/)
  t.is(api.store.get(CONFIG_MAP, 'default', 'ssa'), undefined)
  const fits = await call(api, 'PATCH', `${CONFIGMAPS}/ssa?fieldManager=test`, toYaml(configMapOfDepth('ssa', MAX_JSON_DEPTH - 6)), 'application/apply-patch+yaml')
  t.is(fits.status, 201)
})

test('a small YAML body whose aliases expand past what one write may be is a 413, and nothing is stored', async t => {
  const api = await startK8sTestApi(t)
  // The report's case: about 201 KB of YAML, 99 aliases of a 200 KB string: some 20 MB once parsed.
  const big = 'x'.repeat(200 * 1024)
  const body = ['apiVersion: v1', 'kind: ConfigMap', 'metadata: {name: bomb}', 'data:', `  k0: &big "${big}"`,
    ...Array.from({ length: 99 }, (_, i) => `  k${i + 1}: *big`)].join('\n') + '\n'
  t.true(body.length < 210 * 1024)
  const r = await call(api, 'POST', CONFIGMAPS, body, 'application/yaml')
  t.is(r.status, 413)
  t.like(r.body, { kind: 'Status', code: 413, reason: 'RequestEntityTooLarge' })
  t.regex(r.body.message, new RegExp(`expands to more than ${MAX_COMMAND_BYTES} bytes once parsed`))
  t.is(api.store.get(CONFIG_MAP, 'default', 'bomb'), undefined)
  // A few aliases that stay small are fine.
  const few = ['apiVersion: v1', 'kind: ConfigMap', 'metadata: {name: few}', 'data:', '  a: &v "value"', '  b: *v'].join('\n') + '\n'
  t.is((await call(api, 'POST', CONFIGMAPS, few, 'application/yaml')).status, 201)
  t.deepEqual(api.store.get(CONFIG_MAP, 'default', 'few')?.data, { a: 'value', b: 'value' })
})

test('a write the log refuses as too large is a 413 with the sizes', async t => {
  const api = await startK8sTestApi(t)
  let proposals = 0
  api.raft.propose = async (command: Uint8Array) => {
    proposals++
    throw new CommandTooLargeError(command.byteLength + MAX_COMMAND_BYTES, MAX_COMMAND_BYTES)
  }
  for (const [method, path, body] of [
    ['POST', CONFIGMAPS, JSON.stringify({ metadata: { name: 'big' }, data: { a: '1' } })],
    ['PUT', `${CONFIGMAPS}/big`, JSON.stringify({ metadata: { name: 'big' }, data: { a: '1' } })],
    ['DELETE', `${CONFIGMAPS}/big`, '']
  ] as const) {
    const r = await call(api, method, path, body)
    t.is(r.status, 413, method)
    t.like(r.body, { kind: 'Status', code: 413, reason: 'RequestEntityTooLarge' }, method)
    t.regex(r.body.message, new RegExp(`bytes once encoded, more than the ${MAX_COMMAND_BYTES} bytes one write may be`), method)
  }
  t.is(proposals, 3)
})

test('the scan of JSON text agrees with the parsed value on depth, strings and escapes included (property)', t => {
  const tricky = fc.string({ unit: fc.constantFrom('[', ']', '{', '}', '"', '\\', 'a') })
  const value = fc.letrec(tie => ({
    node: fc.oneof({ depthSize: 'small' }, tricky, fc.integer(), fc.array(tie('node'), { maxLength: 3 }), fc.dictionary(tricky, tie('node'), { maxKeys: 3 }))
  })).node
  t.notThrows(() => {
    fc.assert(fc.property(value, fc.integer({ min: 0, max: 8 }), (v, max) =>
      jsonTextTooDeep(JSON.stringify(v), max) === (jsonBoundPassed(v, max) === 'depth')), { numRuns: 5000 })
  })
})
