// Server-side apply: field sets as FieldsV1, the merge of an apply into the
// live object, removal of fields a manager stops applying, conflicts with
// another manager (and force), and the PATCH route over the real API.
import test from 'ava'
import type { KObject } from '../../protocol/k8s.ts'
import { fieldSet, fromFieldsV1, mergeApply, toFieldsV1 } from '../../daemon/api/apply.ts'
import { startK8sTestApi } from '../helpers/k8s-api.ts'

const NOW = '2025-01-01T00:00:00Z'

const deploy = (image: string, replicas?: number, extra: Record<string, string> = {}): KObject => ({
  apiVersion: 'apps/v1',
  kind: 'Deployment',
  metadata: { name: 'web', namespace: 'default', labels: { app: 'web', ...extra } },
  spec: {
    ...(replicas !== undefined ? { replicas } : {}),
    selector: { matchLabels: { app: 'web' } },
    template: { metadata: { labels: { app: 'web' } }, spec: { containers: [{ name: 'web', image }] } }
  }
})

test('field sets: leaves, list items by merge key, FieldsV1 round trip', t => {
  const paths = fieldSet(deploy('nginx', 2))
  const fields = toFieldsV1(paths)
  t.deepEqual(fields, {
    'f:metadata': { 'f:labels': { 'f:app': {} } },
    'f:spec': {
      'f:replicas': {},
      'f:selector': { 'f:matchLabels': { 'f:app': {} } },
      'f:template': {
        'f:metadata': { 'f:labels': { 'f:app': {} } },
        'f:spec': { 'f:containers': { 'k:{"name":"web"}': { '.': {}, 'f:name': {}, 'f:image': {} } } }
      }
    }
  })
  t.deepEqual(fromFieldsV1(fields).map(p => p.join('/')).sort(), paths.map(p => p.join('/')).sort())
})

test('an apply merges into the live object and drops what the manager no longer applies', t => {
  const first = mergeApply({ ...deploy('nginx', 2), status: { replicas: 2 } }, deploy('nginx', 2, { tier: 'front' }), 'a', false, NOW)
  if (!('object' in first)) throw new Error('conflict')
  t.deepEqual(first.object.metadata.labels, { app: 'web', tier: 'front' })
  // Manager a stops applying the tier label and replicas: they go; status stays.
  const second = mergeApply(first.object, deploy('nginx:2'), 'a', false, NOW)
  if (!('object' in second)) throw new Error('conflict')
  t.deepEqual(second.object.metadata.labels, { app: 'web' })
  t.is((second.object.spec as any).replicas, undefined)
  t.is((second.object.spec as any).template.spec.containers[0].image, 'nginx:2')
  t.deepEqual(second.object.status, { replicas: 2 })
  t.deepEqual((second.object.metadata as any).managedFields.map((e: any) => [e.manager, e.operation]), [['a', 'Apply']])
})

test('another manager\'s field with another value is a conflict, unless forced; the same value is shared', t => {
  const a = mergeApply(deploy('nginx', 2), deploy('nginx', 2), 'a', false, NOW)
  if (!('object' in a)) throw new Error('conflict')
  const clash = mergeApply(a.object, deploy('nginx', 5), 'b', false, NOW)
  t.deepEqual('conflicts' in clash ? clash.conflicts : [], [{ manager: 'a', field: '.spec.replicas' }])
  const same = mergeApply(a.object, deploy('nginx', 2), 'b', false, NOW)
  t.true('object' in same, 'applying the same values shares the fields')
  const forced = mergeApply(a.object, deploy('nginx', 5), 'b', true, NOW)
  if (!('object' in forced)) throw new Error('conflict')
  t.is((forced.object.spec as any).replicas, 5)
  const owners = (forced.object.metadata as any).managedFields as Array<{ manager: string, fieldsV1: unknown }>
  const aFields = fromFieldsV1(owners.find(e => e.manager === 'a')?.fieldsV1).map(p => p.join('/'))
  t.false(aFields.includes('f:spec/f:replicas'), 'force takes the field from a')
  t.true(aFields.includes('f:spec/f:template/f:spec/f:containers/k:{"name":"web"}/f:image'), 'a keeps what did not conflict')
})

test('PATCH with application/apply-patch+yaml creates, updates and reports conflicts as kubectl expects', async t => {
  const api = await startK8sTestApi(t)
  const apply = async (body: string, query: string): Promise<{ status: number, body: any }> => {
    const res = await fetch(`${api.plainUrl}/api/v1/namespaces/default/configmaps/conf?${query}`, {
      method: 'PATCH',
      headers: { authorization: `Bearer ${api.token}`, 'content-type': 'application/apply-patch+yaml' },
      body
    })
    return { status: res.status, body: await res.json() }
  }
  const yaml = (x: string): string => `apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: conf\ndata:\n  x: "${x}"\n  z: "2"\n`
  const created = await apply(yaml('1'), 'fieldManager=one')
  t.is(created.status, 201)
  t.deepEqual(created.body.data, { x: '1', z: '2' })
  t.is((await apply(yaml('1'), 'fieldManager=one')).status, 200)
  const conflict = await apply(yaml('9'), 'fieldManager=two')
  t.is(conflict.status, 409)
  t.is(conflict.body.reason, 'Conflict')
  t.is(conflict.body.message, 'Apply failed with 1 conflict: conflict with "one": .data.x')
  t.deepEqual(conflict.body.details.causes, [{ reason: 'FieldManagerConflict', message: 'conflict with "one"', field: '.data.x' }])
  const forced = await apply(yaml('9'), 'fieldManager=two&force=true')
  t.is(forced.status, 200)
  t.is(forced.body.data.x, '9')
  t.is((await apply(yaml('1'), '')).status, 400, 'fieldManager is required')
  const dry = await apply(yaml('5'), 'fieldManager=two&dryRun=All')
  t.is(dry.body.data.x, '5')
  t.is((await (await fetch(`${api.plainUrl}/api/v1/namespaces/default/configmaps/conf`, { headers: { authorization: `Bearer ${api.token}` } })).json() as any).data.x, '9', 'a dry run stores nothing')
})
