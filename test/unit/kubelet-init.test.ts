// The kubelet runs init containers one at a time, in order, to completion,
// before the app containers (process runtime, in-process store).
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import test from 'ava'
import { pod, StoreHarness } from '../../daemon/store/testing.ts'
import type { KObject } from '../../protocol/k8s.ts'
import { getPod, kubeletEnv, main, waitFor } from '../helpers/kubelet.ts'
import type { Obj } from '../helpers/kubelet.ts'

const NODE = 'node-a'

function runPod (name: string, command: string[] | undefined, extra: Obj = {}): KObject {
  const p = pod(name, { nodeName: NODE })
  return { ...p, spec: { nodeName: NODE, containers: [{ name: 'main', image: 'busybox:1.36', ...(command === undefined ? {} : { command }) }], ...extra } }
}

function initPod (name: string, init: string[], app: string, extra: Obj = {}): KObject {
  const p = pod(name, { nodeName: NODE })
  return {
    ...p,
    spec: {
      nodeName: NODE,
      initContainers: init.map((script, i) => ({ name: `init-${i + 1}`, image: 'busybox:1.36', command: ['sh', '-c', script] })),
      containers: [{ name: 'main', image: 'busybox:1.36', command: ['sh', '-c', app] }],
      ...extra
    }
  }
}

function condition (p: Obj | undefined, type: string): Obj | undefined {
  return (p?.status?.conditions as Obj[] | undefined)?.find(c => c.type === type)
}

/** Every status the pod goes through, as the store's watch sees it. */
function history (h: StoreHarness, name: string): { seen: Obj[], stop: () => void } {
  const seen: Obj[] = []
  const w = h.store.watch({ group: '', version: 'v1', kind: 'Pod', plural: 'pods', singular: 'pod', namespaced: true, shortNames: [], subresources: [] }, {}, ev => {
    const o = ev.object as Obj
    if (o.metadata?.name === name && o.status !== undefined) seen.push(structuredClone(o.status))
  })
  return { seen, stop: () => { w.stop() } }
}

// Each container's working dir is <pod dir>/<container>: `../order` is shared by the pod's containers.
const INIT_1 = 'sleep 0.3; [ -f ../order ] && exit 9; echo one >> ../order'
const INIT_2 = 'sleep 0.3; [ "$(cat ../order)" = one ] || exit 9; echo two >> ../order'
const APP = 'echo app >> ../order; cat ../order; sleep 30'

test('init containers run in order, each to completion, before the app container', async t => {
  const e = await kubeletEnv(t, NODE)
  const k = await e.kubelet()
  const hist = history(e.h, 'init')
  t.teardown(hist.stop)
  const created = e.h.create(initPod('init', [INIT_1, INIT_2], APP))
  const p = await waitFor('Running', () => getPod(e.h, 'init')?.status?.phase === 'Running' && main(getPod(e.h, 'init'))?.state?.running !== undefined && getPod(e.h, 'init'))
  // Running comes before the app container's first line is written: wait for it, then check the order.
  const order = join(e.dir, 'pods', created.metadata.uid ?? '', 'order')
  t.is(await waitFor('app line', async () => { const s = await readFile(order, 'utf8'); return s.endsWith('app\n') && s }), 'one\ntwo\napp\n')
  t.is(await waitFor('log', async () => { const s = await k.logs('default', 'init', 'main'); return s.endsWith('app\n') && s }), 'one\ntwo\napp\n')

  const inits = p.status.initContainerStatuses as Obj[]
  t.deepEqual(inits.map(s => s.name), ['init-1', 'init-2'])
  for (const s of inits) {
    t.is(s.state.terminated?.exitCode, 0)
    t.is(s.state.terminated?.reason, 'Completed')
    t.is(s.restartCount, 0)
    t.is(s.ready, true)
  }
  t.is(condition(p, 'Initialized')?.status, 'True')

  // While initializing: Pending, Initialized False (ContainersNotInitialized), the app waiting in PodInitializing.
  const during = hist.seen.filter(s => (s.conditions as Obj[] | undefined)?.find(c => c.type === 'Initialized')?.status === 'False')
  t.true(during.length > 0)
  for (const s of during) {
    t.is(s.phase, 'Pending')
    t.is((s.conditions as Obj[]).find(c => c.type === 'Initialized')?.reason, 'ContainersNotInitialized')
    t.is(s.containerStatuses[0].state.waiting?.reason, 'PodInitializing')
  }
  // init-2 was seen running while init-1 had completed and the app still waited.
  t.true(during.some(s => s.initContainerStatuses[0].state.terminated?.exitCode === 0 && s.initContainerStatuses[1].state.running !== undefined))
  // Never two init containers running at once.
  t.false(hist.seen.some(s => ((s.initContainerStatuses ?? []) as Obj[]).filter(c => c.state.running !== undefined).length > 1))
})

test('a failing init container with restartPolicy Never fails the pod; the app never starts', async t => {
  const e = await kubeletEnv(t, NODE)
  const k = await e.kubelet()
  const created = e.h.create(initPod('broken', [INIT_1, 'exit 4', INIT_2], APP, { restartPolicy: 'Never' }))
  const p = await waitFor('Failed', () => getPod(e.h, 'broken')?.status?.phase === 'Failed' && getPod(e.h, 'broken'))
  const inits = p.status.initContainerStatuses as Obj[]
  t.is(inits[0]?.state.terminated?.exitCode, 0)
  t.is(inits[1]?.state.terminated?.exitCode, 4)
  t.is(inits[1]?.state.terminated?.reason, 'Error')
  t.is(inits[1]?.ready, false)
  t.is(inits[2]?.state.waiting?.reason, 'PodInitializing')
  t.is(condition(p, 'Initialized')?.status, 'False')
  t.is(main(p)?.state?.waiting?.reason, 'PodInitializing')
  await new Promise(resolve => setTimeout(resolve, 500))
  const names = (await k.runtime.listContainers()).filter(r => r.podUid === created.metadata.uid).map(r => r.containerName).sort()
  t.deepEqual(names, ['init-1', 'init-2'], 'only the first two ran')
  t.is(await readFile(join(e.dir, 'pods', created.metadata.uid ?? '', 'order'), 'utf8'), 'one\n')
})

test('a failing init container with restartPolicy OnFailure is retried; then the app runs', async t => {
  const e = await kubeletEnv(t, NODE)
  await e.kubelet()
  const created = e.h.create(initPod('retry', ['[ -f ran ] && { echo one >> ../order; exit 0; }; touch ran; exit 2'], APP, { restartPolicy: 'OnFailure' }))
  const p = await waitFor('Running', () => main(getPod(e.h, 'retry'))?.state?.running !== undefined && getPod(e.h, 'retry'))
  const init = (p.status.initContainerStatuses as Obj[])[0] as Obj
  t.is(init.restartCount, 1)
  t.is(init.lastState.terminated?.exitCode, 2)
  t.is(init.state.terminated?.exitCode, 0)
  // Running comes before the app container's first line is written: wait for it, then check the order.
  const order = join(e.dir, 'pods', created.metadata.uid ?? '', 'order')
  t.is(await waitFor('app line', async () => { const s = await readFile(order, 'utf8'); return s.endsWith('app\n') && s }), 'one\napp\n')
})

test('a restarted kubelet does not run completed init containers again', async t => {
  const e = await kubeletEnv(t, NODE)
  const k1 = await e.kubelet()
  const created = e.h.create(initPod('again', [INIT_1, INIT_2], APP))
  await waitFor('Running', () => main(getPod(e.h, 'again'))?.state?.running !== undefined)
  const before = getPod(e.h, 'again')
  await k1.stop()
  const k2 = await e.kubelet()
  await new Promise(resolve => setTimeout(resolve, 800))
  const recs = (await k2.runtime.listContainers()).filter(r => r.podUid === created.metadata.uid)
  t.deepEqual(recs.map(r => `${r.containerName}:${r.attempt}:${r.state}`).sort(), ['init-1:0:exited', 'init-2:0:exited', 'main:0:running'])
  t.deepEqual(getPod(e.h, 'again')?.status, before?.status)

  // Without the init records (say, cleaned up), running app containers mean init is done.
  await k2.stop()
  for (const r of recs.filter(r => r.containerName.startsWith('init-'))) await k2.runtime.removeContainer(r.id)
  const k3 = await e.kubelet()
  await new Promise(resolve => setTimeout(resolve, 800))
  const left = (await k3.runtime.listContainers()).filter(r => r.podUid === created.metadata.uid)
  t.deepEqual(left.map(r => `${r.containerName}:${r.state}`), ['main:running'])
  t.is(await readFile(join(e.dir, 'pods', created.metadata.uid ?? '', 'order'), 'utf8'), 'one\ntwo\napp\n')
  t.is(getPod(e.h, 'again')?.status?.phase, 'Running')
  t.is(condition(getPod(e.h, 'again'), 'Initialized')?.status, 'True')
})
