// Native sidecars (Kubernetes 1.29): init containers with restartPolicy
// Always start in their turn among the init containers, keep running beside
// the app containers, are restarted whenever they exit, are not counted for
// the pod's completion and are stopped after the app containers (process
// runtime, in-process store).
import { readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import test from 'ava'
import { NOW, pod, ref, StoreHarness } from '../../daemon/store/testing.ts'
import type { KObject } from '../../protocol/k8s.ts'
import { getPod, kubeletEnv, main, waitFor } from '../helpers/kubelet.ts'
import type { Obj } from '../helpers/kubelet.ts'

const NODE = 'node-a'

/** A container running `script` under sh; `extra` adds fields (restartPolicy, probes). */
function sh (name: string, script: string, extra: Obj = {}): Obj {
  return { name, image: 'busybox:1.36', command: ['sh', '-c', script], ...extra }
}

function sidecarPod (name: string, initContainers: Obj[], app: string, extra: Obj = {}): KObject {
  const p = pod(name, { nodeName: NODE })
  return { ...p, spec: { nodeName: NODE, initContainers, containers: [sh('main', app)], ...extra } }
}

function condition (p: Obj | undefined, type: string): Obj | undefined {
  return (p?.status?.conditions as Obj[] | undefined)?.find(c => c.type === type)
}

function initStatus (p: Obj | undefined, name: string): Obj | undefined {
  return (p?.status?.initContainerStatuses as Obj[] | undefined)?.find(s => s.name === name)
}

/** The pod's shared file `order` (each container's working dir is <pod dir>/<container>). */
async function order (dir: string, created: KObject): Promise<string> {
  try { return await readFile(join(dir, 'pods', created.metadata.uid ?? '', 'order'), 'utf8') } catch { return '' }
}

/** A sidecar that appends `line` to ../order when it starts and `<line>-term` when it is stopped, then runs until then. */
function loggingSidecar (name: string, line: string, extra: Obj = {}): Obj {
  return sh(name, `trap 'echo ${line}-term >> ../order; exit 0' TERM; echo ${line} >> ../order; while :; do sleep 0.1; done`, { restartPolicy: 'Always', ...extra })
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

test('a sidecar starts in its turn; the next init container waits for its startup probe; it runs beside the app', async t => {
  const e = await kubeletEnv(t, NODE)
  await e.kubelet()
  const hist = history(e.h, 'side')
  t.teardown(hist.stop)
  const created = e.h.create(sidecarPod('side', [
    sh('init-1', 'sleep 0.2; [ -f ../order ] && exit 9; echo one >> ../order'),
    // Started only once its file exists, a second or so after it runs.
    sh('proxy', 'sleep 0.5; echo side >> ../order; touch up; while :; do sleep 0.1; done', { restartPolicy: 'Always', startupProbe: { exec: { command: ['test', '-f', 'up'] }, periodSeconds: 1, failureThreshold: 10 } }),
    sh('init-2', 'grep -q side ../order || exit 9; echo two >> ../order')
  ], 'echo app >> ../order; sleep 30'))
  await waitFor('the app line', async () => (await order(e.dir, created)).endsWith('app\n'))
  t.is(await order(e.dir, created), 'one\nside\ntwo\napp\n')
  const p = await waitFor('Ready', () => condition(getPod(e.h, 'side'), 'Ready')?.status === 'True' && getPod(e.h, 'side'))
  t.is(p.status.phase, 'Running')
  t.deepEqual((p.status.initContainerStatuses as Obj[]).map(s => s.name), ['init-1', 'proxy', 'init-2'])
  const side = initStatus(p, 'proxy') as Obj
  t.truthy(side.state.running)
  t.is(side.started, true)
  t.is(side.ready, true)
  t.is(side.restartCount, 0)
  t.is(initStatus(p, 'init-2')?.state.terminated?.exitCode, 0)
  t.is(condition(p, 'Initialized')?.status, 'True')
  // While the sidecar waited for its startup probe: Pending, started false, init-2 not yet run.
  const waiting = hist.seen.filter(s => s.initContainerStatuses?.[1]?.state?.running !== undefined && s.initContainerStatuses[1].started === false)
  t.true(waiting.length > 0)
  for (const s of waiting) {
    t.is(s.phase, 'Pending')
    t.is(s.initContainerStatuses[2].state.waiting?.reason, 'PodInitializing')
  }
})

test('the pod is Ready only while its sidecar is', async t => {
  const e = await kubeletEnv(t, NODE)
  await e.kubelet()
  const created = e.h.create(sidecarPod('gate', [
    sh('proxy', 'while :; do sleep 0.1; done', { restartPolicy: 'Always', readinessProbe: { exec: { command: ['test', '-f', '../ready'] }, periodSeconds: 1 } })
  ], 'sleep 30'))
  const p = await waitFor('main running', () => main(getPod(e.h, 'gate'))?.ready === true && getPod(e.h, 'gate'))
  await new Promise(resolve => setTimeout(resolve, 1200))
  t.is(condition(getPod(e.h, 'gate'), 'Ready')?.status, 'False', 'the sidecar is not ready yet')
  t.is(initStatus(getPod(e.h, 'gate'), 'proxy')?.ready, false)
  t.is(p.status.phase, 'Running')
  await writeFile(join(e.dir, 'pods', created.metadata.uid ?? '', 'ready'), '')
  await waitFor('Ready', () => condition(getPod(e.h, 'gate'), 'Ready')?.status === 'True')
  t.is(initStatus(getPod(e.h, 'gate'), 'proxy')?.ready, true)
})

test('a sidecar that exits is restarted, whatever the pod\'s restartPolicy', async t => {
  const e = await kubeletEnv(t, NODE)
  await e.kubelet()
  e.h.create(sidecarPod('flaky', [sh('proxy', 'sleep 0.2; exit 1', { restartPolicy: 'Always' })], 'sleep 30', { restartPolicy: 'Never' }))
  const p = await waitFor('two restarts', () => (initStatus(getPod(e.h, 'flaky'), 'proxy')?.restartCount ?? 0) >= 2 && getPod(e.h, 'flaky'))
  const side = initStatus(p, 'proxy') as Obj
  t.is(side.lastState.terminated?.exitCode, 1)
  t.is(p.status.phase, 'Running')
  t.truthy(main(p)?.state?.running)
  t.is(main(p)?.restartCount, 0)
})

test('a Job-like pod (restartPolicy Never) is Succeeded when its app exits 0; its sidecars are stopped, the last first', async t => {
  const e = await kubeletEnv(t, NODE)
  const k = await e.kubelet()
  const created = e.h.create(sidecarPod('job', [loggingSidecar('side-1', 's1'), loggingSidecar('side-2', 's2')],
    'until grep -q s2 ../order; do sleep 0.1; done; sleep 0.3; echo done', { restartPolicy: 'Never' }))
  const p = await waitFor('Succeeded', () => getPod(e.h, 'job')?.status?.phase === 'Succeeded' && getPod(e.h, 'job'))
  t.is(main(p)?.state?.terminated?.exitCode, 0)
  for (const name of ['side-1', 'side-2']) {
    t.truthy(initStatus(p, name)?.state?.terminated, `${name} was stopped`)
    t.is(initStatus(p, name)?.restartCount, 0, `${name} was not restarted`)
  }
  t.is(condition(p, 'Ready')?.status, 'False')
  t.is(await order(e.dir, created), 's1\ns2\ns2-term\ns1-term\n')
  const recs = (await k.runtime.listContainers()).filter(r => r.podUid === created.metadata.uid)
  t.deepEqual(recs.map(r => `${r.containerName}:${r.state}`).sort(), ['main:exited', 'side-1:exited', 'side-2:exited'])
  t.is(await k.logs('default', 'job', 'main'), 'done\n')
  // Nothing starts again.
  await new Promise(resolve => setTimeout(resolve, 500))
  t.is((await k.runtime.listContainers()).filter(r => r.podUid === created.metadata.uid && r.state === 'running').length, 0)
})

test('a failing app with restartPolicy Never fails the pod and stops its sidecar', async t => {
  const e = await kubeletEnv(t, NODE)
  const k = await e.kubelet()
  const created = e.h.create(sidecarPod('bad', [loggingSidecar('side', 's')], 'sleep 0.3; exit 3', { restartPolicy: 'Never' }))
  const p = await waitFor('Failed', () => getPod(e.h, 'bad')?.status?.phase === 'Failed' && getPod(e.h, 'bad'))
  t.is(main(p)?.state?.terminated?.exitCode, 3)
  await waitFor('the sidecar stopped', async () => (await k.runtime.listContainers()).filter(r => r.podUid === created.metadata.uid).every(r => r.state === 'exited'))
})

test('a deleted pod has its app containers stopped before its sidecars', async t => {
  const e = await kubeletEnv(t, NODE)
  await e.kubelet()
  const app = "trap 'echo main-term >> ../order; exit 0' TERM; echo main >> ../order; while :; do sleep 0.1; done"
  const p = sidecarPod('held', [loggingSidecar('side', 's')], app, { terminationGracePeriodSeconds: 5 })
  // A finalizer keeps the pod (and its directory) while the kubelet stops it.
  const created = e.h.create({ ...p, metadata: { ...p.metadata, finalizers: ['test.shoal.dev/hold'] } })
  await waitFor('Running', () => main(getPod(e.h, 'held'))?.state?.running !== undefined)
  await waitFor('the app line', async () => (await order(e.dir, created)).endsWith('main\n'))
  e.h.ok(e.h.apply({ op: 'delete', ref: ref('pods', 'held', 'default'), now: NOW }))
  await waitFor('both stopped', async () => (await order(e.dir, created)).endsWith('-term\n') && (await order(e.dir, created)).split('\n').length === 5)
  t.is(await order(e.dir, created), 's\nmain\nmain-term\ns-term\n')
})
