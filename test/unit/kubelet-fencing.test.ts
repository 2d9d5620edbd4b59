// The kubelet's part in "at most one incarnation of a StatefulSet pod":
// a deleted pod that holds its name (STOPPED_BY_KUBELET_FINALIZER) keeps it
// until its containers have stopped, then the kubelet lets go; cut off from
// the cluster for fenceAfterMs, the kubelet stops such pods (and only
// those), and starts them again once the cluster answers.
import test from 'ava'
import type { ExecutionContext } from 'ava'
import { STOPPED_BY_KUBELET_FINALIZER } from '../../protocol/apps-v1.ts'
import { POD } from '../../protocol/kinds.ts'
import type { KObject } from '../../protocol/k8s.ts'
import type { Kubelet } from '../../daemon/kubelet/kubelet.ts'
import { NOW, pod, ref } from '../../daemon/store/testing.ts'
import { getPod, kubeletEnv, main, waitFor } from '../helpers/kubelet.ts'

const NODE = 'node-f'

function heldPod (name: string, command: string[], held = true): KObject {
  const p = pod(name, { nodeName: NODE })
  return {
    ...p,
    metadata: { ...p.metadata, ...(held ? { finalizers: [STOPPED_BY_KUBELET_FINALIZER] } : {}) },
    spec: { nodeName: NODE, terminationGracePeriodSeconds: 5, containers: [{ name: 'main', image: 'busybox:1.36', command }] }
  }
}

/**
 * The environment, kept alive (a ref'd timer) until every teardown has run:
 * the runtime's timers and children are unref'd, and the kubelet's stop
 * waits for the held pods' containers to end.
 */
async function env (t: ExecutionContext): ReturnType<typeof kubeletEnv> {
  const keep = setInterval(() => {}, 1000)
  t.teardown(() => { clearInterval(keep) })
  return await kubeletEnv(t, NODE)
}

function groupAlive (pid: number): boolean {
  try {
    process.kill(-pid, 0)
    return true
  } catch {
    return false
  }
}

async function runningPid (k: Kubelet, uid: string): Promise<number | undefined> {
  return (await k.runtime.listContainers()).find(r => r.podUid === uid && r.state === 'running')?.pid
}

test('a deleted pod that holds its name is removed only once its containers have stopped', async t => {
  const e = await env(t)
  const k = await e.kubelet()
  // Takes a while to stop after SIGTERM.
  const created = e.h.create(heldPod('web-0', ['sh', '-c', 'trap "sleep 1; exit 0" TERM; while true; do sleep 0.1; done']))
  const uid = created.metadata.uid ?? ''
  await waitFor('running', () => main(getPod(e.h, 'web-0'))?.ready === true)
  const pid = await runningPid(k, uid)
  if (pid === undefined) throw new Error('no pid')
  let aliveWhenGone: boolean | undefined
  const w = e.h.store.watch(POD, {}, ev => {
    if (ev.type === 'DELETED' && ev.object.metadata.name === 'web-0') aliveWhenGone = groupAlive(pid)
  })
  t.teardown(() => { w.stop() })
  e.h.ok(e.h.apply({ op: 'delete', ref: ref('pods', 'web-0', 'default'), now: NOW }))
  t.truthy(getPod(e.h, 'web-0')?.metadata.deletionTimestamp, 'held: terminating, not gone')
  await new Promise(resolve => setTimeout(resolve, 400))
  t.truthy(getPod(e.h, 'web-0'), 'still there while its container stops')
  await waitFor('gone', () => getPod(e.h, 'web-0') === undefined, 15_000)
  t.is(aliveWhenGone, false, 'the name was freed only after the process had exited')
})

test('cut off from the cluster, the kubelet stops the pods that hold a name, and starts them again when it is back', async t => {
  const e = await env(t)
  let connected = true
  const k = await e.kubelet({ fenceAfterMs: 1500, confirmContact: async () => { if (!connected) throw new Error('no leader') } })
  const held = e.h.create(heldPod('db-0', ['sh', '-c', 'sleep 60']))
  const plain = e.h.create(heldPod('cache', ['sh', '-c', 'sleep 60'], false))
  await waitFor('both running', () => main(getPod(e.h, 'db-0'))?.ready === true && main(getPod(e.h, 'cache'))?.ready === true)
  const plainPid = await runningPid(k, plain.metadata.uid ?? '')
  connected = false
  await waitFor('the held pod stopped', async () => await runningPid(k, held.metadata.uid ?? '') === undefined, 10_000)
  t.is(await runningPid(k, plain.metadata.uid ?? ''), plainPid, 'a pod that holds no name keeps running')
  connected = true
  await waitFor('the held pod runs again', async () => await runningPid(k, held.metadata.uid ?? '') !== undefined, 15_000)
  t.truthy(getPod(e.h, 'db-0'))
})

test('a graceful stop stops the pods that hold a name and leaves the others for the next start to adopt', async t => {
  const e = await env(t)
  const k = await e.kubelet()
  const held = e.h.create(heldPod('db-0', ['sh', '-c', 'sleep 60']))
  const plain = e.h.create(heldPod('cache', ['sh', '-c', 'sleep 60'], false))
  await waitFor('both running', () => main(getPod(e.h, 'db-0'))?.ready === true && main(getPod(e.h, 'cache'))?.ready === true)
  const heldPid = await runningPid(k, held.metadata.uid ?? '')
  const plainPid = await runningPid(k, plain.metadata.uid ?? '')
  if (heldPid === undefined || plainPid === undefined) throw new Error('no pid')
  await k.stop()
  t.is((await k.runtime.listContainers()).find(r => r.podUid === held.metadata.uid)?.state, 'exited', 'the pod that holds a name was stopped')
  await waitFor('its process group gone', () => !groupAlive(heldPid), 3000)
  t.true(groupAlive(plainPid), 'the other keeps running')
})
