// The storage kinds through the installed kubectl against two real peers
// (127.0.173.2-3): PersistentVolume, PersistentVolumeClaim and StorageClass
// manifests written as the Kubernetes documentation writes them are
// applied, `kubectl get pv,pvc,sc` prints kubectl's columns from either
// peer, and what Kubernetes refuses is refused with its message (a local
// volume without node affinity, a Block volume, a claim that shrinks, an
// update of a class's provisioner); the binder gives the claim its volume.
// Provisioning and pods that mount claims are not here yet (issue 17).
import test from 'ava'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { api, startCluster, stopAll, waitFor, waitForLeader } from '../helpers/cluster.ts'
import type { Peer } from '../helpers/cluster.ts'
import { HAS_KUBECTL, kubectlAgainst } from '../helpers/kubectl.ts'
import type { Run } from '../helpers/run.ts'

const IPS = ['127.0.173.2', '127.0.173.3']
const CI = process.env.CI === 'true'

const MANIFESTS = `apiVersion: storage.k8s.io/v1
kind: StorageClass
metadata:
  name: fast
  annotations:
    storageclass.kubernetes.io/is-default-class: "true"
provisioner: shoal.io/local
volumeBindingMode: WaitForFirstConsumer
allowVolumeExpansion: true
---
apiVersion: v1
kind: PersistentVolume
metadata:
  name: task-pv-volume
  labels:
    type: local
spec:
  storageClassName: manual
  capacity:
    storage: 10Gi
  accessModes:
    - ReadWriteOnce
  hostPath:
    path: "/mnt/data"
---
apiVersion: v1
kind: PersistentVolume
metadata:
  name: example-pv
spec:
  capacity:
    storage: 100Gi
  volumeMode: Filesystem
  accessModes:
  - ReadWriteOnce
  persistentVolumeReclaimPolicy: Delete
  storageClassName: local-storage
  local:
    path: /mnt/disks/ssd1
  nodeAffinity:
    required:
      nodeSelectorTerms:
      - matchExpressions:
        - key: kubernetes.io/hostname
          operator: In
          values:
          - example-node
---
apiVersion: v1
kind: PersistentVolumeClaim
metadata:
  name: task-pv-claim
spec:
  storageClassName: manual
  accessModes:
    - ReadWriteOnce
  resources:
    requests:
      storage: 3Gi
`

const maybe = HAS_KUBECTL || CI ? test : test.skip

maybe('kubectl applies and lists PersistentVolumes, PersistentVolumeClaims and StorageClasses; what Kubernetes refuses is refused', async t => {
  if (!HAS_KUBECTL) { t.fail('kubectl is not installed; CI must have it'); return }
  t.timeout(120_000)
  const { dir, peers } = await startCluster('storage-kinds', IPS)
  t.teardown(async () => { await stopAll(peers, dir) })
  await waitForLeader(peers, 60_000)
  const first = peers[0] as Peer
  const { kubectl: run } = await kubectlAgainst(first, dir)
  const kubectl = async (...args: string[]): Promise<Run> => await run(args)
  const file = (name: string, text: string): string => { const p = join(dir, name); writeFileSync(p, text); return p }

  const applied = await kubectl('apply', '-f', file('storage.yaml', MANIFESTS))
  t.is(applied.code, 0, applied.stderr)
  t.is(applied.stdout, 'storageclass.storage.k8s.io/fast created\npersistentvolume/task-pv-volume created\npersistentvolume/example-pv created\npersistentvolumeclaim/task-pv-claim created\n')
  t.is(applied.stderr, '')

  const pv = await kubectl('--context', 'shoal-p2', 'get', 'pv')
  t.is(pv.code, 0, pv.stderr)
  t.is(pv.stderr, '')
  const pvLines = pv.stdout.trimEnd().split('\n')
  t.regex(pvLines[0] ?? '', /^NAME\s+CAPACITY\s+ACCESS MODES\s+RECLAIM POLICY\s+STATUS\s+CLAIM\s+STORAGECLASS\s+VOLUMEATTRIBUTESCLASS\s+REASON\s+AGE$/)
  t.regex(pv.stdout, /\nexample-pv\s+100Gi\s+RWO\s+Delete\s+(Available\s+)?local-storage\s+<unset>/)
  t.regex(pv.stdout, /\ntask-pv-volume\s+10Gi\s+RWO\s+Retain\s+\S+\s+(default\/task-pv-claim\s+)?manual\s+<unset>/, 'a reclaim policy defaults to Retain')
  // The binder gives the claim the one volume of its class that fits.
  const pvc = await waitFor('the claim Bound', async () => { const r = await kubectl('get', 'pvc'); return /\sBound\s/.test(r.stdout) && r }, 30_000, 200)
  t.regex(pvc.stdout, /^NAME\s+STATUS\s+VOLUME\s+CAPACITY\s+ACCESS MODES\s+STORAGECLASS\s+VOLUMEATTRIBUTESCLASS\s+AGE\ntask-pv-claim\s+Bound\s+task-pv-volume\s+10Gi\s+RWO\s+manual\s+<unset>\s+\d+s\n$/)
  t.regex((await kubectl('--context', 'shoal-p2', 'get', 'pv', 'task-pv-volume')).stdout, /\ntask-pv-volume\s+10Gi\s+RWO\s+Retain\s+Bound\s+default\/task-pv-claim\s+manual\s/)
  const sc = await kubectl('get', 'sc')
  t.regex(sc.stdout, /^NAME\s+PROVISIONER\s+RECLAIMPOLICY\s+VOLUMEBINDINGMODE\s+ALLOWVOLUMEEXPANSION\s+AGE\nfast \(default\)\s+shoal\.io\/local\s+Delete\s+WaitForFirstConsumer\s+true\s+\d+s\n$/)
  const all = await kubectl('get', 'pv,pvc,sc', '-o', 'name')
  t.is(all.stdout, 'persistentvolume/example-pv\npersistentvolume/task-pv-volume\npersistentvolumeclaim/task-pv-claim\nstorageclass.storage.k8s.io/fast\n')

  // Refused as the API server refuses them.
  const noAffinity = await kubectl('apply', '-f', file('bad-local.yaml', 'apiVersion: v1\nkind: PersistentVolume\nmetadata: {name: bad}\nspec:\n  capacity: {storage: 1Gi}\n  accessModes: [ReadWriteOnce]\n  local: {path: /mnt/x}\n'))
  t.not(noAffinity.code, 0)
  t.regex(noAffinity.stderr, /spec\.nodeAffinity: Required value: Local volume requires node affinity/)
  const block = await kubectl('apply', '-f', file('block.yaml', 'apiVersion: v1\nkind: PersistentVolumeClaim\nmetadata: {name: blk}\nspec:\n  volumeMode: Block\n  accessModes: [ReadWriteOnce]\n  resources: {requests: {storage: 1Gi}}\n'))
  t.regex(block.stderr, /spec\.volumeMode: Unsupported value: "Block": Shoal serves Filesystem volumes only/)
  const shrink = await kubectl('patch', 'pvc', 'task-pv-claim', '--type', 'merge', '-p', '{"spec":{"resources":{"requests":{"storage":"1Gi"}}}}')
  t.regex(shrink.stderr, /spec\.resources\.requests\.storage: Forbidden: field can not be less than previous value/)
  const grow = await kubectl('patch', 'pvc', 'task-pv-claim', '--type', 'merge', '-p', '{"spec":{"resources":{"requests":{"storage":"5Gi"}}}}')
  t.is(grow.code, 0, grow.stderr)
  const provisioner = await kubectl('patch', 'sc', 'fast', '--type', 'merge', '-p', '{"provisioner":"other"}')
  t.regex(provisioner.stderr, /provisioner: Forbidden: updates to provisioner are forbidden/)
  t.is((await api(first, 'GET', '/apis/storage.k8s.io/v1')).status, 200, 'the group is discovered')
})
