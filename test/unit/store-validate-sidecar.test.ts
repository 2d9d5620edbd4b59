// Issue 15's rules of a pod write: a container's restartPolicy (native
// sidecars: init containers only, Always only) and the default service
// account, which updates of pods stored before it existed must not trip on.
import test from 'ava'
import { kindOf, POD } from '../../protocol/kinds.ts'
import type { Kind } from '../../protocol/kinds.ts'
import type { KObject } from '../../protocol/k8s.ts'
import { defaultObject, validateObject, validatePodUpdate } from '../../protocol/validation.ts'
import { deployment, NOW, pod, StoreHarness } from '../../daemon/store/testing.ts'

const typeOf = (o: KObject): Kind => kindOf(o.apiVersion, o.kind) as Kind
const check = (o: KObject): string | undefined => {
  const copy = structuredClone(o)
  return validateObject(defaultObject(copy, typeOf(copy)), typeOf(copy))?.message
}
const withContainers = (spec: Record<string, unknown>): KObject => ({ ...pod('x'), spec: { containers: [{ name: 'a', image: 'b' }], ...spec } })

test('restartPolicy Always is allowed on init containers only, and only Always', t => {
  t.is(check(withContainers({ initContainers: [{ name: 'side', image: 'b', restartPolicy: 'Always' }] })), undefined)
  t.is(check(withContainers({ initContainers: [{ name: 'side', image: 'b', restartPolicy: 'OnFailure' }] })),
    'Pod "x" is invalid: spec.initContainers[0].restartPolicy: Unsupported value: "OnFailure": supported values: "Always"')
  t.is(check(withContainers({ containers: [{ name: 'a', image: 'b', restartPolicy: 'Always' }] })),
    'Pod "x" is invalid: spec.containers[0].restartPolicy: Forbidden: may not be set for non-init containers')
  const d = deployment('web')
  const template = (d.spec as any).template
  template.spec.containers[0].restartPolicy = 'Always'
  t.is(check(d), 'Deployment.apps "web" is invalid: spec.template.spec.containers[0].restartPolicy: Forbidden: may not be set for non-init containers')
})

test('a pod\'s service account defaults to default; the deprecated serviceAccount mirrors it', t => {
  const h = new StoreHarness()
  const spec = (o: KObject): Record<string, unknown> => o.spec as Record<string, unknown>
  const plain = h.create(pod('plain'))
  t.is(spec(plain).serviceAccountName, 'default')
  t.is(spec(plain).serviceAccount, 'default')
  const named = h.create({ ...pod('named'), spec: { ...spec(pod('named')), serviceAccountName: 'robot' } })
  t.is(spec(named).serviceAccount, 'robot')
  const old = h.create({ ...pod('old'), spec: { ...spec(pod('old')), serviceAccount: 'legacy' } })
  t.is(spec(old).serviceAccountName, 'legacy')
  // Templates are not pods: they stay as written (a default there would roll every Deployment).
  t.is((h.create(deployment('web')).spec as any).template.spec.serviceAccountName, undefined)
})

test('an update of a pod stored before the default existed is accepted; changing the account is not', t => {
  // As stored by an older Shoal: no serviceAccountName.
  const cur: KObject = { ...pod('p'), metadata: { name: 'p', namespace: 'default', uid: 'u1', resourceVersion: '5' }, spec: { containers: [{ name: 'main', image: 'busybox:1.36' }] } }
  defaultObject(cur, POD)
  delete (cur.spec as Record<string, unknown>).serviceAccountName
  delete (cur.spec as Record<string, unknown>).serviceAccount
  const update = (change: (spec: any) => void): string[] => {
    const next = structuredClone(cur)
    change(next.spec)
    defaultObject(next, POD)
    const errors: string[] = []
    validatePodUpdate(cur, next, errors)
    return errors
  }
  t.deepEqual(update(s => { s.containers[0].image = 'busybox:1.37' }), [])
  t.deepEqual(update(() => {}), [])
  t.is(update(s => { s.serviceAccountName = 'robot' }).length, 1)
  // Through the store: a pod updated as a client would (image only).
  const h = new StoreHarness()
  const stored = h.create(pod('q'))
  const next = structuredClone(stored);
  (next.spec as any).containers[0].image = 'busybox:1.37'
  h.ok(h.apply({ op: 'update', object: next, now: NOW }))
})
