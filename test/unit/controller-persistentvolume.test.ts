// The PersistentVolume binder over an in-process store: an unbound claim
// gets the smallest Available volume that fits it (class, access modes,
// storage, selector), in Kubernetes' order (the volume's claimRef, then the
// claim's volumeName, then the phases); a volume pre-bound by claimRef or
// named by volumeName goes to that claim only; the default StorageClass is
// given to a claim without one; a WaitForFirstConsumer claim waits; a
// volume whose claim is deleted is Released (Retain) or Failed (Delete).
import test from 'ava'
import { PersistentVolumeController } from '../../daemon/controllers/persistentvolume.ts'
import { NOW, ref } from '../../daemon/store/testing.ts'
import type { StoreHarness } from '../../daemon/store/testing.ts'
import { PERSISTENT_VOLUME, PERSISTENT_VOLUME_CLAIM } from '../../protocol/kinds.ts'
import type { KObject } from '../../protocol/k8s.ts'
import { startControllers } from '../helpers/controllers.ts'

function volume (h: StoreHarness, name: string, storage: string, extra: Record<string, unknown> = {}, labels?: Record<string, string>): KObject {
  return h.create({ apiVersion: 'v1', kind: 'PersistentVolume', metadata: { name, ...(labels !== undefined ? { labels } : {}) }, spec: { capacity: { storage }, accessModes: ['ReadWriteOnce'], hostPath: { path: `/mnt/${name}` }, storageClassName: 'manual', ...extra } })
}

function claim (h: StoreHarness, name: string, storage: string, extra: Record<string, unknown> = {}): KObject {
  return h.create({ apiVersion: 'v1', kind: 'PersistentVolumeClaim', metadata: { name, namespace: 'default' }, spec: { accessModes: ['ReadWriteOnce'], resources: { requests: { storage } }, storageClassName: 'manual', ...extra } })
}

const pv = (h: StoreHarness, name: string): any => h.store.get(PERSISTENT_VOLUME, '', name)
const pvc = (h: StoreHarness, name: string): any => h.store.get(PERSISTENT_VOLUME_CLAIM, 'default', name)

test('an unbound claim gets the smallest volume that fits; both go Bound, the claim with the volume\'s capacity and modes', async t => {
  const env = startControllers([new PersistentVolumeController()])
  t.teardown(() => { env.stop() })
  const { h } = env
  volume(h, 'big', '100Gi')
  volume(h, 'small', '5Gi')
  volume(h, 'tiny', '1Gi')
  volume(h, 'other-class', '5Gi', { storageClassName: 'fast' })
  volume(h, 'read-only', '5Gi', { accessModes: ['ReadOnlyMany'] })
  await env.settle()
  t.true(['big', 'small', 'tiny'].every(n => pv(h, n)?.status?.phase === 'Available'), 'the volumes Available')
  claim(h, 'data', '3Gi')
  await env.settle()
  t.true(pvc(h, 'data')?.status?.phase === 'Bound' && pv(h, 'small')?.status?.phase === 'Bound', 'the claim Bound')
  t.is(pvc(h, 'data').spec.volumeName, 'small')
  t.deepEqual(pvc(h, 'data').status.capacity, { storage: '5Gi' })
  t.deepEqual(pvc(h, 'data').status.accessModes, ['ReadWriteOnce'])
  t.is(pv(h, 'small').spec.claimRef.uid, pvc(h, 'data').metadata.uid)
  t.is(pv(h, 'big').status.phase, 'Available')

  // A claim nothing fits waits; a volume that fits, created later, is bound to it.
  claim(h, 'huge', '500Gi')
  await env.settle()
  t.true(pvc(h, 'huge')?.status?.phase === 'Pending', 'the claim Pending')
  volume(h, 'huge-pv', '1Ti')
  await env.settle()
  t.true(pvc(h, 'huge')?.spec?.volumeName === 'huge-pv' && pvc(h, 'huge')?.status?.phase === 'Bound', 'the late volume bound')

  // Deleting a claim releases a Retain volume, and fails a Delete one (nothing provisioned it).
  h.ok(h.apply({ op: 'delete', ref: ref('persistentvolumeclaims', 'data', 'default'), now: NOW }))
  await env.settle()
  t.true(pv(h, 'small')?.status?.phase === 'Released', 'small Released')
  t.is(pv(h, 'small').spec.claimRef.name, 'data', 'a Released volume keeps its claimRef: it is not bound again by itself')
  volume(h, 'deletable', '2Gi', { persistentVolumeReclaimPolicy: 'Delete' })
  claim(h, 'short', '2Gi')
  await env.settle()
  t.true(pvc(h, 'short')?.spec?.volumeName === 'deletable' && pvc(h, 'short')?.status?.phase === 'Bound', 'short Bound')
  h.ok(h.apply({ op: 'delete', ref: ref('persistentvolumeclaims', 'short', 'default'), now: NOW }))
  await env.settle()
  t.true(pv(h, 'deletable')?.status?.phase === 'Failed', 'deletable Failed')
  t.regex(pv(h, 'deletable').status.message, /Shoal deletes only the volumes it provisioned/)
})

test('pre-bound volumes and claims, selectors, the default class, and WaitForFirstConsumer', async t => {
  const env = startControllers([new PersistentVolumeController()])
  t.teardown(() => { env.stop() })
  const { h } = env
  volume(h, 'reserved', '10Gi', { claimRef: { namespace: 'default', name: 'mine' } })
  volume(h, 'plain', '10Gi')
  claim(h, 'stranger', '1Gi')
  await env.settle()
  t.true(pvc(h, 'stranger')?.status?.phase === 'Bound', 'the stranger bound')
  t.is(pvc(h, 'stranger').spec.volumeName, 'plain', 'a volume reserved for another claim is not taken')
  claim(h, 'mine', '1Gi')
  await env.settle()
  t.true(pvc(h, 'mine')?.spec?.volumeName === 'reserved' && pvc(h, 'mine')?.status?.phase === 'Bound', 'mine bound to its reserved volume')

  volume(h, 'labelled', '10Gi', {}, { tier: 'gold' })
  volume(h, 'unlabelled', '5Gi')
  claim(h, 'picky', '1Gi', { selector: { matchLabels: { tier: 'gold' } } })
  await env.settle()
  t.true(pvc(h, 'picky')?.spec?.volumeName === 'labelled', 'picky bound')

  volume(h, 'named', '1Gi')
  claim(h, 'by-name', '1Gi', { volumeName: 'named' })
  await env.settle()
  t.true(pvc(h, 'by-name')?.status?.phase === 'Bound' && pv(h, 'named')?.spec?.claimRef?.name === 'by-name', 'by-name bound')

  h.create({ apiVersion: 'storage.k8s.io/v1', kind: 'StorageClass', metadata: { name: 'later', annotations: { 'storageclass.kubernetes.io/is-default-class': 'true' } }, provisioner: 'shoal.io/local', volumeBindingMode: 'WaitForFirstConsumer' } as unknown as KObject)
  h.create({ apiVersion: 'v1', kind: 'PersistentVolumeClaim', metadata: { name: 'classless', namespace: 'default' }, spec: { accessModes: ['ReadWriteOnce'], resources: { requests: { storage: '1Gi' } } } })
  await env.settle()
  t.true(pvc(h, 'classless')?.spec?.storageClassName === 'later', 'the default class given')
  volume(h, 'later-pv', '1Gi', { storageClassName: 'later' })
  await env.settle()
  t.true(pvc(h, 'classless')?.status?.phase === 'Pending', 'a WaitForFirstConsumer claim waits')
  t.is(pvc(h, 'classless').spec.volumeName, undefined)
  t.is(pv(h, 'later-pv').spec.claimRef, undefined)
})
