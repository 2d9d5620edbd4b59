// The kubelet with the process runtime, over an in-process store: pods run
// as real processes in a temp dir, on loopback pod IPs.
import { readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import test from 'ava'
import { cidrRange, defaultPodCidr } from '../../daemon/kubelet/ipam.ts'
import { Kubelet } from '../../daemon/kubelet/kubelet.ts'
import { configMap, NOW, pod, ref, StoreHarness } from '../../daemon/store/testing.ts'
import type { KObject } from '../../protocol/k8s.ts'
import { getPod, kubeletEnv, main, waitFor } from '../helpers/kubelet.ts'
import type { Obj } from '../helpers/kubelet.ts'

const NODE = 'node-a'

function groupAlive (pid: number): boolean {
  try {
    process.kill(-pid, 0)
    return true
  } catch {
    return false
  }
}

function runPod (name: string, command: string[] | undefined, extra: Obj = {}): KObject {
  const p = pod(name, { nodeName: NODE })
  return { ...p, spec: { nodeName: NODE, containers: [{ name: 'main', image: 'busybox:1.36', ...(command === undefined ? {} : { command }) }], ...extra } }
}

async function pidOf (k: Kubelet, uid: string): Promise<number> {
  const recs = (await k.runtime.listContainers()).filter(r => r.podUid === uid && r.state === 'running')
  if (recs.length !== 1 || recs[0]?.pid === undefined) throw new Error(`expected one running container, got ${recs.length}`)
  return recs[0].pid
}

function ipInRange (ip: string, cidr: string): boolean {
  const n = ip.split('.').map(Number).reduce((a, p) => a * 256 + p, 0)
  const { first, last } = cidrRange(cidr)
  return n >= first && n <= last
}

test('a pod runs: Running, a pod IP in the node range, a running container, Ready', async t => {
  const e = await kubeletEnv(t, NODE)
  const k = await e.kubelet()
  const created = e.h.create(runPod('web', ['sh', '-c', 'sleep 30']))
  const p = await waitFor('Running', () => getPod(e.h, 'web')?.status?.phase === 'Running' && main(getPod(e.h, 'web'))?.ready === true && getPod(e.h, 'web'))
  t.true(ipInRange(p.status.podIP, defaultPodCidr(NODE)), `${p.status.podIP as string} in ${defaultPodCidr(NODE)}`)
  t.true((p.status.podIP as string).startsWith('127.'))
  t.deepEqual(p.status.podIPs, [{ ip: p.status.podIP }])
  t.is(p.status.hostIP, '127.0.0.1')
  t.truthy(p.status.startTime)
  const cs = main(p) as Obj
  t.truthy(cs.state.running?.startedAt)
  t.is(cs.restartCount, 0)
  t.is(cs.started, true)
  t.is(cs.image, 'busybox:1.36')
  t.regex(cs.containerID, /^process:\/\/[0-9a-f]+$/)
  const cond = Object.fromEntries((p.status.conditions as Obj[]).map(c => [c.type, c.status]))
  t.deepEqual(cond, { PodScheduled: 'True', Initialized: 'True', ContainersReady: 'True', Ready: 'True' })
  t.true(groupAlive(await pidOf(k, created.metadata.uid ?? '')))
})

test('two pods get different IPs; a given podCidr is used', async t => {
  const e = await kubeletEnv(t, NODE)
  await e.kubelet({ podCidr: '127.99.3.0/24' })
  e.h.create(runPod('a', ['sleep', '30']))
  e.h.create(runPod('b', ['sleep', '30']))
  const a = await waitFor('a IP', () => getPod(e.h, 'a')?.status?.podIP as string | undefined)
  const b = await waitFor('b IP', () => getPod(e.h, 'b')?.status?.podIP as string | undefined)
  t.not(a, b)
  t.true(ipInRange(a, '127.99.3.0/24') && ipInRange(b, '127.99.3.0/24'), `${a} ${b}`)
})

test('deleting a pod kills its process group and frees its IP', async t => {
  const e = await kubeletEnv(t, NODE)
  const k = await e.kubelet()
  const created = e.h.create(runPod('web', ['sh', '-c', 'sleep 30 & sleep 30'], { terminationGracePeriodSeconds: 5 }))
  await waitFor('Running', () => getPod(e.h, 'web')?.status?.phase === 'Running')
  const pid = await pidOf(k, created.metadata.uid ?? '')
  t.true(groupAlive(pid))
  e.h.ok(e.h.apply({ op: 'delete', ref: ref('pods', 'web', 'default'), now: NOW }))
  await waitFor('the process group to go', () => !groupAlive(pid), 10_000)
  await waitFor('the container to be removed', async () => (await k.runtime.listContainers()).length === 0)
  await waitFor('the IP to be freed', async () => (await k.runtime.listSandboxes()).length === 0)
  const ipam = JSON.parse(await readFile(join(e.dir, 'pods', 'ipam.json'), 'utf8')) as Obj
  t.deepEqual(ipam.allocations, {})
})

test('a container that ignores SIGTERM is killed after the grace period', async t => {
  const e = await kubeletEnv(t, NODE)
  const k = await e.kubelet()
  const created = e.h.create(runPod('stubborn', ['sh', '-c', 'trap "" TERM; sleep 60'], { terminationGracePeriodSeconds: 1 }))
  await waitFor('Running', () => getPod(e.h, 'stubborn')?.status?.phase === 'Running')
  const pid = await pidOf(k, created.metadata.uid ?? '')
  e.h.ok(e.h.apply({ op: 'delete', ref: ref('pods', 'stubborn', 'default'), now: NOW }))
  await waitFor('the process group to go', () => !groupAlive(pid), 10_000)
  t.pass()
})

test('a crashing container with restartPolicy Always restarts with back-off: CrashLoopBackOff', async t => {
  const e = await kubeletEnv(t, NODE)
  await e.kubelet({ backoffBaseMs: 150 })
  const reasons = new Set<string>()
  const w = e.h.store.watch({ group: '', version: 'v1', kind: 'Pod', plural: 'pods', singular: 'pod', namespaced: true, shortNames: [], subresources: [] }, {}, ev => {
    const r = main(ev.object as Obj)?.state?.waiting?.reason
    if (r !== undefined) reasons.add(r)
  })
  t.teardown(() => { w.stop() })
  e.h.create(runPod('crash', ['sh', '-c', 'exit 1']))
  const cs = await waitFor('3 restarts', () => { const c = main(getPod(e.h, 'crash')); return c !== undefined && c.restartCount >= 3 && c })
  t.true(reasons.has('CrashLoopBackOff'), [...reasons].join(','))
  t.is(getPod(e.h, 'crash')?.status?.phase, 'Running')
  const last = await waitFor('lastState', () => main(getPod(e.h, 'crash'))?.lastState?.terminated as Obj | undefined)
  t.is(last.exitCode, 1)
  t.is(last.reason, 'Error')
  t.true(cs.restartCount >= 3)
})

test('restartPolicy Never: exit 0 gives Succeeded, exit 3 gives Failed', async t => {
  const e = await kubeletEnv(t, NODE)
  await e.kubelet()
  e.h.create(runPod('ok', ['sh', '-c', 'exit 0'], { restartPolicy: 'Never' }))
  e.h.create(runPod('bad', ['sh', '-c', 'exit 3'], { restartPolicy: 'Never' }))
  const ok = await waitFor('Succeeded', () => getPod(e.h, 'ok')?.status?.phase === 'Succeeded' && getPod(e.h, 'ok'))
  t.is(main(ok)?.state?.terminated?.exitCode, 0)
  t.is(main(ok)?.state?.terminated?.reason, 'Completed')
  t.is(main(ok)?.restartCount, 0)
  const bad = await waitFor('Failed', () => getPod(e.h, 'bad')?.status?.phase === 'Failed' && getPod(e.h, 'bad'))
  t.is(main(bad)?.state?.terminated?.exitCode, 3)
  t.is(main(bad)?.restartCount, 0)
  const ready = (bad.status.conditions as Obj[]).find(c => c.type === 'Ready')
  t.is(ready?.status, 'False')
})

test('restartPolicy OnFailure restarts a failure and stops after success', async t => {
  const e = await kubeletEnv(t, NODE)
  await e.kubelet()
  // fails the first time, succeeds the second (the working dir persists across attempts)
  e.h.create(runPod('job', ['sh', '-c', 'if [ -f ran ]; then exit 0; fi; touch ran; exit 2'], { restartPolicy: 'OnFailure' }))
  const p = await waitFor('Succeeded', () => getPod(e.h, 'job')?.status?.phase === 'Succeeded' && getPod(e.h, 'job'))
  t.is(main(p)?.restartCount, 1)
  t.is(main(p)?.lastState?.terminated?.exitCode, 2)
})

test('a container without a command cannot run with the process runtime', async t => {
  const e = await kubeletEnv(t, NODE)
  await e.kubelet()
  e.h.create(runPod('nocmd', undefined, { restartPolicy: 'Never' }))
  const p = await waitFor('Failed', () => getPod(e.h, 'nocmd')?.status?.phase === 'Failed' && getPod(e.h, 'nocmd'))
  t.is(main(p)?.state?.terminated?.reason, 'ContainerCannotRun')
  t.is(main(p)?.state?.terminated?.message, 'the process runtime needs a command')
})

test('the environment: POD_NAME, POD_IP, values and ConfigMap keys; a missing ConfigMap waits', async t => {
  const e = await kubeletEnv(t, NODE)
  const k = await e.kubelet()
  const script = 'echo "$POD_NAME $POD_NAMESPACE $POD_IP $MODE $GREETING" > out.txt; sleep 30'
  const spec = (env: Obj[]): Obj => ({ containers: [{ name: 'main', image: 'x', command: ['sh', '-c', script], env }] })
  const created = e.h.create({ ...pod('envy', { nodeName: NODE }), spec: { nodeName: NODE, ...spec([{ name: 'MODE', value: 'prod' }, { name: 'GREETING', valueFrom: { configMapKeyRef: { name: 'cfg', key: 'greeting' } } }]) } })
  const waiting = await waitFor('CreateContainerConfigError', () => main(getPod(e.h, 'envy'))?.state?.waiting as Obj | undefined)
  t.is(waiting.reason, 'CreateContainerConfigError')
  t.is(getPod(e.h, 'envy')?.status?.phase, 'Pending')
  e.h.create(configMap('cfg', { greeting: 'hello' }))
  const p = await waitFor('Running', () => getPod(e.h, 'envy')?.status?.phase === 'Running' && getPod(e.h, 'envy'))
  const out = join(e.dir, 'pods', created.metadata.uid ?? '', 'main', 'out.txt')
  const text = await waitFor('out.txt', async () => { try { const s = await readFile(out, 'utf8'); return s.endsWith('\n') && s } catch { return undefined } })
  t.is(text, `envy default ${p.status.podIP as string} prod hello\n`)
  const r = await k.exec('default', 'envy', 'main', ['sh', '-c', 'echo $POD_NAME; exit 4'], 5000)
  t.deepEqual(r, { exitCode: 4, stdout: 'envy\n', stderr: '' })
})

test('logs: the current attempt and the previous one', async t => {
  const e = await kubeletEnv(t, NODE)
  const k = await e.kubelet({ backoffBaseMs: 60_000 })
  e.h.create(runPod('talk', ['sh', '-c', 'if [ -f ran ]; then echo second; sleep 30; fi; touch ran; echo first; echo bye; exit 1']))
  await waitFor('the restart', () => main(getPod(e.h, 'talk'))?.restartCount === 1 && main(getPod(e.h, 'talk'))?.state?.running !== undefined)
  t.is(await waitFor('log', async () => { const s = await k.logs('default', 'talk', 'main'); return s !== '' && s }), 'second\n')
  t.is(await k.logs('default', 'talk', 'main', { previous: true }), 'first\nbye\n')
  t.is(await k.logs('default', 'talk', 'main', { previous: true, tailLines: 1 }), 'bye\n')
})

test('a restarted kubelet adopts running containers: same pid, no duplicate, same restartCount', async t => {
  const e = await kubeletEnv(t, NODE)
  const k1 = await e.kubelet()
  const created = e.h.create(runPod('web', ['sh', '-c', 'while [ ! -f stop ]; do sleep 0.1; done; exit 3'], { restartPolicy: 'Never' }))
  const uid = created.metadata.uid ?? ''
  await waitFor('Running', () => getPod(e.h, 'web')?.status?.phase === 'Running')
  const pid = await pidOf(k1, uid)
  const before = getPod(e.h, 'web')
  await k1.stop()
  t.true(groupAlive(pid), 'stop() leaves the pod running')

  const k2 = await e.kubelet()
  await new Promise(resolve => setTimeout(resolve, 500))
  const recs = await k2.runtime.listContainers()
  t.is(recs.length, 1)
  t.is(recs[0]?.pid, pid)
  t.is(recs[0]?.state, 'running')
  t.deepEqual(getPod(e.h, 'web')?.status, before?.status, 'nothing to write: the status is the same')
  t.is(main(getPod(e.h, 'web'))?.restartCount, 0)

  // The adopted process is not our child: its exit code still comes through (the shim's file).
  await writeFile(join(e.dir, 'pods', uid, 'main', 'stop'), '')
  const p = await waitFor('Failed', () => getPod(e.h, 'web')?.status?.phase === 'Failed' && getPod(e.h, 'web'), 10_000)
  t.is(main(p)?.state?.terminated?.exitCode, 3)
  t.false(groupAlive(pid))
})

test('a restarted kubelet stops the containers of pods deleted while it was down', async t => {
  const e = await kubeletEnv(t, NODE)
  const k1 = await e.kubelet()
  const created = e.h.create(runPod('gone', ['sleep', '30'], { terminationGracePeriodSeconds: 2 }))
  await waitFor('Running', () => getPod(e.h, 'gone')?.status?.phase === 'Running')
  const pid = await pidOf(k1, created.metadata.uid ?? '')
  await k1.stop()
  e.h.ok(e.h.apply({ op: 'delete', ref: ref('pods', 'gone', 'default'), now: NOW }))
  t.true(groupAlive(pid))
  const k2 = await e.kubelet()
  await waitFor('the orphan to be killed', () => !groupAlive(pid), 10_000)
  await waitFor('its sandbox to go', async () => (await k2.runtime.listSandboxes()).length === 0 && (await k2.runtime.listContainers()).length === 0)
  t.pass()
})

test('pods bound to another node are not run', async t => {
  const e = await kubeletEnv(t, NODE)
  const k = await e.kubelet()
  const other = runPod('elsewhere', ['sleep', '30'])
  ;(other.spec as Obj).nodeName = 'node-b'
  e.h.create(other)
  e.h.create(runPod('here', ['sleep', '30']))
  await waitFor('here Running', () => getPod(e.h, 'here')?.status?.phase === 'Running')
  t.is((await k.runtime.listContainers()).length, 1)
  t.is(getPod(e.h, 'elsewhere')?.status?.phase, 'Pending')
})

test('a pod held by a finalizer is stopped on delete, and removed once the finalizer goes', async t => {
  const e = await kubeletEnv(t, NODE)
  const k = await e.kubelet()
  const held = runPod('held', ['sleep', '30'], { terminationGracePeriodSeconds: 2 })
  held.metadata.finalizers = ['example.com/hold']
  const created = e.h.create(held)
  await waitFor('Running', () => getPod(e.h, 'held')?.status?.phase === 'Running')
  const pid = await pidOf(k, created.metadata.uid ?? '')
  e.h.ok(e.h.apply({ op: 'delete', ref: ref('pods', 'held', 'default'), now: NOW }))
  t.truthy(getPod(e.h, 'held')?.metadata?.deletionTimestamp)
  await waitFor('the process group to go', () => !groupAlive(pid), 10_000)
  const cs = await waitFor('terminated', () => main(getPod(e.h, 'held'))?.state?.terminated as Obj | undefined)
  t.is(cs.exitCode, 143)
  t.is(main(getPod(e.h, 'held'))?.restartCount, 0, 'not restarted while being deleted')
  e.h.ok(e.h.apply({ op: 'patch', ref: ref('pods', 'held', 'default'), patchType: 'merge', patch: { metadata: { finalizers: null } }, now: NOW }))
  t.is(getPod(e.h, 'held'), undefined)
  await waitFor('its sandbox to go', async () => (await k.runtime.listSandboxes()).length === 0 && (await k.runtime.listContainers()).length === 0)
})

test('a re-created pod gets a new address: IPs are handed out in turn', async t => {
  const e = await kubeletEnv(t, NODE)
  await e.kubelet({ podCidr: '127.65.7.0/24' })
  e.h.create(runPod('first', ['sleep', '60']))
  const a = await waitFor('an IP', () => getPod(e.h, 'first')?.status?.podIP as string | undefined)
  e.h.ok(e.h.apply({ op: 'delete', ref: ref('pods', 'first', 'default'), now: NOW }))
  await new Promise(resolve => setTimeout(resolve, 1500))
  e.h.create(runPod('second', ['sleep', '60']))
  const b = await waitFor('an IP', () => getPod(e.h, 'second')?.status?.podIP as string | undefined)
  t.not(a, b)
})

test('after the replica installs a snapshot, the kubelet runs the pods it brought and stops the ones it removed', async t => {
  const e = await kubeletEnv(t, NODE)
  const k = await e.kubelet()
  e.h.create(runPod('old', ['sleep', '60']))
  await waitFor('old Running', () => getPod(e.h, 'old')?.status?.phase === 'Running')
  // The leader's state, further on: "old" is gone, "new" is bound here.
  const leader = new StoreHarness()
  leader.ok(leader.apply({ op: 'create', object: runPod('new', ['sleep', '60']), uid: 'uid-new', now: NOW }))
  e.h.index += 100
  e.h.store.restore(leader.store.snapshot(), e.h.index)
  await waitFor('new Running', () => getPod(e.h, 'new')?.status?.phase === 'Running')
  await waitFor('old stopped', async () => (await k.runtime.listContainers()).every(r => r.podName !== 'old'))
  t.is(getPod(e.h, 'old'), undefined)
})
