// What Kubernetes refuses and Shoal once stored (issue 14): ConfigMap and
// Secret keys `.` and `..`, file modes beyond 0777, item paths that leave
// their volume, relative host paths, replica counts beyond int32, and null
// items inside lists.
import test from 'ava'
import { DEPLOYMENT, kindOf, POD } from '../../protocol/kinds.ts'
import type { Kind } from '../../protocol/kinds.ts'
import type { KObject } from '../../protocol/k8s.ts'
import { defaultObject, validateObject } from '../../protocol/validation.ts'
import { deployment, NOW, pod, ref, StoreHarness } from '../../daemon/store/testing.ts'

const typeOf = (o: KObject): Kind => kindOf(o.apiVersion, o.kind) as Kind
const check = (o: KObject): string | undefined => {
  const copy = structuredClone(o)
  return validateObject(defaultObject(copy, typeOf(copy)), typeOf(copy))?.message
}
const cm = (data: Record<string, string>, binaryData?: Record<string, string>): KObject =>
  ({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'c', namespace: 'default' }, data, ...(binaryData !== undefined ? { binaryData } : {}) })
const secret = (data: Record<string, string>): KObject =>
  ({ apiVersion: 'v1', kind: 'Secret', metadata: { name: 's', namespace: 'default' }, data })
const withVolume = (volume: Record<string, unknown>): KObject =>
  ({ ...pod('x'), spec: { containers: [{ name: 'a', image: 'b' }], volumes: [{ name: 'v', ...volume }] } })

test('ConfigMap and Secret keys may not be `.` or `..`, nor start with `..`', t => {
  t.is(check(cm({ '.': 'x' })), 'ConfigMap "c" is invalid: data: Invalid value: ".": must not be \'.\'')
  t.is(check(cm({ '..': 'x' })), 'ConfigMap "c" is invalid: data: Invalid value: "..": must not be \'..\'')
  t.is(check(cm({ '..data': 'x' })), 'ConfigMap "c" is invalid: data: Invalid value: "..data": must not start with \'..\'')
  t.is(check(cm({}, { '..': 'eA==' })), 'ConfigMap "c" is invalid: binaryData: Invalid value: "..": must not be \'..\'')
  t.is(check(secret({ '..': 'eA==' })), 'Secret "s" is invalid: data: Invalid value: "..": must not be \'..\'')
  t.is(check(secret({ '.': 'eA==' })), 'Secret "s" is invalid: data: Invalid value: ".": must not be \'.\'')
  t.is(check({ ...secret({}), stringData: { '..': 'x' } }), 'Secret "s" is invalid: data: Invalid value: "..": must not be \'..\'')
  t.is(check(cm({ 'a.b': 'x', '.hidden': 'y', 'x..y': 'z' })), undefined)
})

test('defaultMode and items[].mode are between 0 and 0777', t => {
  t.is(check(withVolume({ configMap: { name: 'c', defaultMode: 0o1000 } })),
    'Pod "x" is invalid: spec.volumes[0].configMap.defaultMode: Invalid value: 512: must be a number between 0 and 0777 (octal), both inclusive')
  t.is(check(withVolume({ secret: { secretName: 's', defaultMode: -1 } })),
    'Pod "x" is invalid: spec.volumes[0].secret.defaultMode: Invalid value: -1: must be a number between 0 and 0777 (octal), both inclusive')
  t.is(check(withVolume({ secret: { secretName: 's', items: [{ key: 'k', path: 'p', mode: 0o4755 }] } })),
    'Pod "x" is invalid: spec.volumes[0].secret.items[0].mode: Invalid value: 2541: must be a number between 0 and 0777 (octal), both inclusive')
  t.regex(check(withVolume({ configMap: { name: 'c', defaultMode: 2 ** 40 } })) ?? '', /defaultMode: Invalid value: 1099511627776: must be of type int32/)
  t.is(check(withVolume({ configMap: { name: 'c', defaultMode: 0o777, items: [{ key: 'k', path: 'p', mode: 0 }] } })), undefined)
})

test('items[].path is relative and never leaves the volume', t => {
  const items = (path: string): KObject => withVolume({ configMap: { name: 'c', items: [{ key: 'k', path }] } })
  t.is(check(items('/etc/passwd')), 'Pod "x" is invalid: spec.volumes[0].configMap.items[0].path: Invalid value: "/etc/passwd": must be a relative path')
  t.is(check(items('../../x')), 'Pod "x" is invalid: spec.volumes[0].configMap.items[0].path: Invalid value: "../../x": must not contain \'..\'')
  t.is(check(items('a/../../x')), 'Pod "x" is invalid: spec.volumes[0].configMap.items[0].path: Invalid value: "a/../../x": must not contain \'..\'')
  t.is(check(items('..data')), 'Pod "x" is invalid: spec.volumes[0].configMap.items[0].path: Invalid value: "..data": must not start with \'..\'')
  t.is(check(items('')), 'Pod "x" is invalid: spec.volumes[0].configMap.items[0].path: Required value')
  t.is(check(withVolume({ secret: { secretName: 's', items: [{ key: '', path: 'p' }] } })), 'Pod "x" is invalid: spec.volumes[0].secret.items[0].key: Required value')
  t.is(check(items('nested/dir/file.conf')), undefined)
  t.is(check(items('a..b')), undefined)
})

test('a hostPath is absolute, without `..`, of a known type', t => {
  t.is(check(withVolume({ hostPath: { path: 'var/log' } })), 'Pod "x" is invalid: spec.volumes[0].hostPath.path: Invalid value: "var/log": must be an absolute path')
  t.is(check(withVolume({ hostPath: { path: '/var/../etc' } })), 'Pod "x" is invalid: spec.volumes[0].hostPath.path: Invalid value: "/var/../etc": must not contain \'..\'')
  t.regex(check(withVolume({ hostPath: { path: '/var/log', type: 'Folder' } })) ?? '', /spec\.volumes\[0\]\.hostPath\.type: Unsupported value: "Folder"/)
  t.is(check(withVolume({ hostPath: { path: '/var/log', type: 'DirectoryOrCreate' } })), undefined)
  // In a Deployment's template too.
  const d = deployment('web')
  ;(d.spec as any).template.spec.volumes = [{ name: 'v', hostPath: { path: 'rel' } }]
  t.is(check(d), 'Deployment.apps "web" is invalid: spec.template.spec.volumes[0].hostPath.path: Invalid value: "rel": must be an absolute path')
})

test('downwardAPI and projected volumes: the fields Kubernetes allows in a file, one projection per source, and no service account token yet', t => {
  const file = (item: Record<string, unknown>): KObject => withVolume({ downwardAPI: { items: [{ path: 'f', ...item }] } })
  t.is(check(file({ fieldRef: { fieldPath: 'metadata.labels' } })), undefined)
  t.is(check(file({ fieldRef: { fieldPath: 'metadata.annotations[\'a.b/c\']' } })), undefined)
  t.is(check(file({ resourceFieldRef: { containerName: 'c', resource: 'limits.memory', divisor: '1Mi' } })), undefined)
  t.regex(check(file({ fieldRef: { fieldPath: 'status.podIP' } })) ?? '', /spec\.volumes\[0\]\.downwardAPI\.items\[0\]\.fieldRef\.fieldPath: Unsupported value: "status\.podIP": supported values/)
  t.regex(check(file({ resourceFieldRef: { resource: 'limits.gpu' } })) ?? '', /resourceFieldRef\.resource: Unsupported value: "limits\.gpu"/)
  t.regex(check(file({ fieldRef: { fieldPath: 'metadata.name' }, resourceFieldRef: { resource: 'limits.cpu' } })) ?? '', /items\[0\]: Invalid value: .*can not be specified simultaneously/)
  t.regex(check(file({ path: '../x', fieldRef: { fieldPath: 'metadata.name' } })) ?? '', /items\[0\]\.path: Invalid value: "\.\.\/x": must not contain '\.\.'/)
  const projected = (sources: unknown[]): KObject => withVolume({ projected: { sources } })
  t.is(check(projected([{ configMap: { name: 'c' } }, { secret: { name: 's', items: [{ key: 'k', path: 'p' }] } }, { downwardAPI: { items: [{ path: 'n', fieldRef: { fieldPath: 'metadata.name' } }] } }])), undefined)
  t.regex(check(projected([{ configMap: { name: 'c' }, secret: { name: 's' } }])) ?? '', /projected\.sources\[0\]: Forbidden: must specify exactly one projection/)
  t.regex(check(projected([{ serviceAccountToken: { path: 'token' } }])) ?? '', /projected\.sources\[0\]\.serviceAccountToken: Forbidden: Shoal does not issue service account tokens yet/)
  t.regex(check(withVolume({ projected: { sources: [] }, emptyDir: {} })) ?? '', /may not specify more than 1 volume type/)
})

test('replicas above 2^31-1 are refused for Deployments, ReplicaSets and the scale subresource', t => {
  t.is(check(deployment('web', { replicas: 2 ** 31 })), 'Deployment.apps "web" is invalid: spec.replicas: Invalid value: 2147483648: must be of type int32')
  t.is(check(deployment('web', { replicas: 2 ** 31 - 1 })), undefined)
  const rs: KObject = { ...deployment('web', { replicas: 2 ** 53 - 1 }), kind: 'ReplicaSet' }
  delete (rs.spec as Record<string, unknown>).strategy
  t.is(check(rs), 'ReplicaSet.apps "web" is invalid: spec.replicas: Invalid value: 9007199254740991: must be of type int32')

  const h = new StoreHarness()
  h.create(deployment('web', { replicas: 2 }))
  const scale = (replicas: unknown) => h.apply({ op: 'patch', ref: ref('deployments', 'web', 'default', 'apps'), patchType: 'merge', patch: { spec: { replicas } }, subresource: 'scale', now: NOW })
  t.like(scale(2 ** 31), { ok: false, status: { code: 422, message: 'Scale.autoscaling "web" is invalid: spec.replicas: Invalid value: 2147483648: must be less than or equal to 2147483647' } })
  t.like(scale(-1), { ok: false, status: { code: 422, message: 'Scale.autoscaling "web" is invalid: spec.replicas: Invalid value: -1: must be greater than or equal to 0' } })
  t.like(scale('many'), { ok: false, status: { code: 422 } })
  t.is((h.store.get(DEPLOYMENT, 'default', 'web')?.spec as { replicas: number }).replicas, 2)
  t.like(scale(2 ** 31 - 1), { ok: true })
  t.is((h.store.get(DEPLOYMENT, 'default', 'web')?.spec as { replicas: number }).replicas, 2 ** 31 - 1)
})

test('a null item inside a list is refused; a null field still counts as absent', t => {
  const p = (spec: Record<string, unknown>): KObject => ({ ...pod('x'), spec: { containers: [{ name: 'a', image: 'b' }], ...spec } })
  t.is(check(p({ containers: [{ name: 'a', image: 'b' }, null] })), 'Pod "x" is invalid: spec.containers[1]: Invalid value: null: must be of type object')
  t.is(check(p({ containers: [{ name: 'a', image: 'b', ports: [null] }] })), 'Pod "x" is invalid: spec.containers[0].ports[0]: Invalid value: null: must be of type object')
  t.is(check(p({ tolerations: [null] })), 'Pod "x" is invalid: spec.tolerations[0]: Invalid value: null: must be of type object')
  t.is(check(p({ containers: [{ name: 'a', image: 'b', args: ['x', null] }] })), 'Pod "x" is invalid: spec.containers[0].args[1]: Invalid value: null: must be of type string')
  t.is(check({ ...pod('x'), metadata: { name: 'x', namespace: 'default', finalizers: [null] } as unknown as KObject['metadata'] }), 'Pod "x" is invalid: metadata.finalizers[0]: Invalid value: null: must be of type string')
  // A null field is absent, as before.
  t.is(check(p({ tolerations: null, nodeSelector: null, volumes: null })), undefined)
  t.is(check(p({ containers: [{ name: 'a', image: 'b', ports: null, env: null }] })), undefined)
  // Through the store: nothing is stored.
  const h = new StoreHarness()
  t.like(h.tryCreate(p({ containers: [{ name: 'a', image: 'b' }, null] })), { ok: false, status: { code: 422 } })
  t.is(h.store.get(POD, 'default', 'x'), undefined)
})
