// The kubelet and pods that finished for good (a Job's, kept until the Job
// goes, with its finalizer or without): never started again, their address
// given back to the node's range (a node runs far more pods in its life than
// a /24 has addresses) while their logs stay readable, and a pod held by a
// finalizer when deleted is stopped and ends Failed.
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import test from 'ava'
import { NOW, pod, ref } from '../../daemon/store/testing.ts'
import type { KObject } from '../../protocol/k8s.ts'
import { getPod, kubeletEnv, waitFor } from '../helpers/kubelet.ts'
import type { Obj } from '../helpers/kubelet.ts'

const NODE = 'node-f'

function runPod (name: string, command: string[], extra: Obj = {}, meta: Obj = {}): KObject {
  const p = pod(name, { nodeName: NODE })
  return { ...p, metadata: { ...p.metadata, ...meta }, spec: { nodeName: NODE, restartPolicy: 'Never', containers: [{ name: 'main', image: 'busybox:1.36', command }], ...extra } }
}

test('a Succeeded pod is not run again, gives its address back and keeps its logs and status', async t => {
  const e = await kubeletEnv(t, NODE)
  const k = await e.kubelet()
  const created = e.h.create(runPod('once', ['sh', '-c', 'echo done'], {}, { finalizers: ['batch.kubernetes.io/job-tracking'] }))
  const uid = created.metadata.uid ?? ''
  const done = await waitFor('Succeeded', () => getPod(e.h, 'once')?.status?.phase === 'Succeeded' && getPod(e.h, 'once'))
  const ip = done.status.podIP as string
  t.truthy(ip)
  await waitFor('the address back in the pool', async () => {
    const ipam = JSON.parse(await readFile(join(e.dir, 'pods', 'ipam.json'), 'utf8')) as Obj
    return ipam.allocations[uid] === undefined
  })
  await new Promise(resolve => setTimeout(resolve, 500))
  const records = (await k.runtime.listContainers()).filter(r => r.podUid === uid)
  t.is(records.length, 1, 'started once, never again')
  t.is(getPod(e.h, 'once')?.status?.podIP, ip, 'its status keeps the address it had')
  t.is(getPod(e.h, 'once')?.status?.phase, 'Succeeded')
  t.is((await k.logs('default', 'once', 'main')).trim(), 'done')
  // A Succeeded pod whose finalizer goes is left alone; deleted, it goes.
  e.h.ok(e.h.apply({ op: 'patch', ref: ref('pods', 'once', 'default'), patchType: 'merge', patch: { metadata: { finalizers: null } }, now: NOW }))
  e.h.ok(e.h.apply({ op: 'delete', ref: ref('pods', 'once', 'default'), now: NOW }))
  await waitFor('its directory removed', async () => !(await k.runtime.listSandboxes()).includes(uid))
})

test('a running pod deleted while a finalizer holds it is stopped and ends Failed', async t => {
  const e = await kubeletEnv(t, NODE)
  await e.kubelet()
  e.h.create(runPod('held', ['sleep', '30'], { terminationGracePeriodSeconds: 1 }, { finalizers: ['batch.kubernetes.io/job-tracking'] }))
  await waitFor('Running', () => getPod(e.h, 'held')?.status?.phase === 'Running')
  e.h.ok(e.h.apply({ op: 'delete', ref: ref('pods', 'held', 'default'), now: NOW }))
  const p = await waitFor('Failed', () => getPod(e.h, 'held')?.status?.phase === 'Failed' && getPod(e.h, 'held'), 15_000)
  t.truthy(p.metadata.deletionTimestamp)
  t.is(p.status.containerStatuses[0].state.terminated.exitCode, 143)
})
