// The kubelet with the Docker runtime, over an in-process store and a real
// Docker engine (test/helpers/docker.ts): pods as containers joined to a
// pause sandbox on Shoal's own bridge network. Each test is its own node
// (its own network and labels) and removes what it made.
import test from 'ava'
import { randomBytes } from 'node:crypto'
import { systemClock } from '../../daemon/clock/clock.ts'
import { DockerRuntime } from '../../daemon/kubelet/docker-runtime.ts'
import type { Kubelet } from '../../daemon/kubelet/kubelet.ts'
import { createLogger } from '../../daemon/log/log.ts'
import { configMap, NOW, pod, ref } from '../../daemon/store/testing.ts'
import type { KObject } from '../../protocol/k8s.ts'
import { containersOf, dockerTests, removeNode, TEST_IMAGE } from '../helpers/docker.ts'
import type { Engine } from '../helpers/docker.ts'
import { expectCrashLoop, getPod, kubeletEnv, main, waitFor } from '../helpers/kubelet.ts'
import type { KubeletEnv, Obj } from '../helpers/kubelet.ts'
import type { ExecutionContext } from 'ava'

const { dtest, engine } = await dockerTests(test)

interface DockerEnv extends KubeletEnv { node: string, start: () => Promise<Kubelet>, runtime: () => DockerRuntime }

async function dockerEnv (t: ExecutionContext): Promise<DockerEnv> {
  const { docker } = engine as Engine
  const node = `dk-${randomBytes(3).toString('hex')}`
  // ava runs teardowns last-registered first: this one after kubeletEnv's, which stops the kubelets.
  t.teardown(async () => { await removeNode(docker, node) })
  const e = await kubeletEnv(t, node)
  let last: DockerRuntime | undefined
  const runtime = (): DockerRuntime => (last = new DockerRuntime({ nodeName: node, docker, clock: systemClock, log: createLogger('silent', 'test'), pollMs: 500 }))
  return { ...e, node, runtime: () => last ?? runtime(), start: async () => await e.kubelet({ runtime: runtime() }) }
}

function dpod (node: string, name: string, containers: Obj[], extra: Obj = {}): KObject {
  const p = pod(name, { nodeName: node })
  return { ...p, spec: { nodeName: node, terminationGracePeriodSeconds: 1, containers: containers.map(c => ({ image: TEST_IMAGE, ...c })), ...extra } }
}

const HTTPD = ['sh', '-c', 'mkdir -p /www && echo hello > /www/index.html && exec httpd -f -p 8080 -h /www']

dtest('a busybox httpd pod runs: Running, its own address on the pod network, and it answers HTTP there', async t => {
  const e = await dockerEnv(t)
  await e.start()
  e.h.create(dpod(e.node, 'web', [{ name: 'httpd', command: HTTPD }]))
  const p = await waitFor('Running', () => getPod(e.h, 'web')?.status?.phase === 'Running' && getPod(e.h, 'web'), 60_000)
  const ip = p.status.podIP as string
  t.regex(ip, /^10\./)
  t.regex(main(p)?.containerID, /^docker:\/\/[0-9a-f]{64}$/)
  t.regex(main(p)?.imageID, /^sha256:/)
  const body = await waitFor('an HTTP answer', async () => {
    try {
      const res = await fetch(`http://${ip}:8080/`, { signal: AbortSignal.timeout(2000) })
      return await res.text()
    } catch { return undefined }
  }, 30_000)
  t.is(body.trim(), 'hello')
  const cs = await containersOf((engine as Engine).docker, e.node, p.metadata.uid)
  t.deepEqual(cs.map(c => c.Labels['shoal.role']).sort(), ['container', 'sandbox'])
})

dtest('a container that exits 1 with restartPolicy Always: growing restart counts and CrashLoopBackOff', async t => {
  const e = await dockerEnv(t)
  await e.start()
  e.h.create(dpod(e.node, 'crash', [{ name: 'main', command: ['sh', '-c', 'echo boom; exit 1'] }]))
  await expectCrashLoop(t, e.h, 'crash')
  const k = await e.runtime()
  t.regex(await k.logs((await k.listContainers()).filter(r => r.containerName === 'main').at(-1)!.id), /boom/)
})

dtest('a failing liveness probe restarts the container; a failing readiness probe keeps the pod not Ready', async t => {
  const e = await dockerEnv(t)
  await e.start()
  e.h.create(dpod(e.node, 'sick', [{ name: 'main', command: ['sleep', '600'], livenessProbe: { exec: { command: ['cat', '/tmp/healthy'] }, periodSeconds: 1, failureThreshold: 1 } }]))
  e.h.create(dpod(e.node, 'unready', [{ name: 'main', command: HTTPD, readinessProbe: { httpGet: { path: '/', port: 9999 }, periodSeconds: 1 } }]))
  const sick = await waitFor('a liveness restart', () => { const c = main(getPod(e.h, 'sick')); return c !== undefined && c.restartCount >= 1 && c }, 60_000)
  t.true(sick.lastState.terminated.exitCode === 137 || sick.lastState.terminated.exitCode === 143, String(sick.lastState.terminated.exitCode))
  const unready = await waitFor('unready Running', () => { const p = getPod(e.h, 'unready'); return p?.status?.phase === 'Running' && main(p)?.started === true && p })
  await new Promise(resolve => setTimeout(resolve, 2500))
  const again = getPod(e.h, 'unready') as Obj
  t.is(main(again)?.ready, false)
  t.is(again.status.conditions.find((c: Obj) => c.type === 'Ready')?.status, 'False')
  t.is(main(again)?.restartCount, 0, 'readiness never restarts')
  t.truthy(unready)
})

dtest('a ConfigMap mounted as a file is readable inside; the memory limit is set on the container; exec returns the exit status', async t => {
  const e = await dockerEnv(t)
  const k = await e.start()
  e.h.create(configMap('cfg', { 'app.conf': 'mode=docker\n' }))
  e.h.create(dpod(e.node, 'conf', [{
    name: 'main',
    command: ['sleep', '600'],
    volumeMounts: [{ name: 'cfg', mountPath: '/etc/app' }],
    resources: { limits: { memory: '48Mi', cpu: '250m' } }
  }], { volumes: [{ name: 'cfg', configMap: { name: 'cfg' } }] }))
  const p = await waitFor('Running', () => getPod(e.h, 'conf')?.status?.phase === 'Running' && getPod(e.h, 'conf'), 60_000)
  const cat = await k.exec('default', 'conf', 'main', ['cat', '/etc/app/app.conf'])
  t.is(cat.exitCode, 0, cat.stderr)
  t.is(cat.stdout, 'mode=docker\n')
  const info = await (engine as Engine).docker.getContainer(String(main(p)?.containerID).replace('docker://', '')).inspect()
  t.is(info.HostConfig.Memory, 48 * 1024 * 1024)
  t.is(info.HostConfig.NanoCpus, 250_000_000)
  const cg = await k.exec('default', 'conf', 'main', ['sh', '-c', 'cat /sys/fs/cgroup/memory.max 2>/dev/null || cat /sys/fs/cgroup/memory/memory.limit_in_bytes'])
  t.is(cg.stdout.trim(), String(48 * 1024 * 1024), 'the kernel enforces it')
  const fail = await k.exec('default', 'conf', 'main', ['sh', '-c', 'echo out; echo err >&2; exit 7'])
  t.deepEqual(fail, { exitCode: 7, stdout: 'out\n', stderr: 'err\n' })
})

dtest('deleting a pod removes its containers and sandbox', async t => {
  const e = await dockerEnv(t)
  await e.start()
  e.h.create(dpod(e.node, 'gone', [{ name: 'a', command: ['sleep', '600'] }, { name: 'b', command: HTTPD }]))
  const p = await waitFor('Running', () => getPod(e.h, 'gone')?.status?.phase === 'Running' && getPod(e.h, 'gone'), 60_000)
  const made = await containersOf((engine as Engine).docker, e.node, p.metadata.uid)
  t.is(made.length, 3, made.map(c => `${c.Names.join()} ${c.State} ${c.Status}`).join('; '))
  e.h.ok(e.h.apply({ op: 'delete', ref: ref('pods', 'gone', 'default'), now: NOW }))
  await waitFor('no containers', async () => (await containersOf((engine as Engine).docker, e.node, p.metadata.uid)).length === 0, 60_000)
  t.pass()
})

dtest('a restarted kubelet adopts the containers it left running: same ids, no duplicates', async t => {
  const e = await dockerEnv(t)
  const first = await e.start()
  e.h.create(dpod(e.node, 'keep', [{ name: 'main', command: HTTPD }]))
  const p = await waitFor('Running', () => getPod(e.h, 'keep')?.status?.phase === 'Running' && getPod(e.h, 'keep'), 60_000)
  const before = (await containersOf((engine as Engine).docker, e.node, p.metadata.uid)).map(c => c.Id).sort()
  await first.stop()
  const second = await e.start()
  await new Promise(resolve => setTimeout(resolve, 1500))
  const after = (await containersOf((engine as Engine).docker, e.node, p.metadata.uid)).map(c => c.Id).sort()
  t.deepEqual(after, before)
  const again = getPod(e.h, 'keep') as Obj
  t.is(main(again)?.containerID, main(p)?.containerID)
  t.is(main(again)?.restartCount, 0)
  t.is(again.status.podIP, p.status.podIP)
  t.is((await second.exec('default', 'keep', 'main', ['true'])).exitCode, 0)
})

dtest('a missing image gives ErrImagePull, then ImagePullBackOff, and the kubelet carries on', async t => {
  const e = await dockerEnv(t)
  await e.start()
  e.h.create(dpod(e.node, 'noimage', [{ name: 'main', image: 'registry.invalid/shoal/none:1', command: ['true'] }]))
  const seen = new Set<string>()
  await waitFor('ErrImagePull and ImagePullBackOff', () => {
    const w = main(getPod(e.h, 'noimage'))?.state?.waiting
    if (w?.reason !== undefined) seen.add(w.reason)
    return seen.has('ErrImagePull') && seen.has('ImagePullBackOff')
  }, 60_000).catch(() => undefined)
  t.true(seen.has('ErrImagePull'), [...seen].join(', '))
  t.true(seen.has('ImagePullBackOff'), [...seen].join(', '))
  t.regex(main(getPod(e.h, 'noimage'))?.state?.waiting?.message ?? '', /registry\.invalid\/shoal\/none:1/)
  const never = dpod(e.node, 'never', [{ name: 'main', image: 'shoal-test/absent:1', imagePullPolicy: 'Never', command: ['true'] }])
  e.h.create(never)
  const w = await waitFor('ErrImageNeverPull', () => main(getPod(e.h, 'never'))?.state?.waiting?.reason === 'ErrImageNeverPull' && main(getPod(e.h, 'never')))
  t.regex(w.state.waiting.message, /not present with pull policy of Never/)
  // It still runs other pods.
  e.h.create(dpod(e.node, 'fine', [{ name: 'main', command: ['sleep', '600'] }]))
  await waitFor('Running', () => getPod(e.h, 'fine')?.status?.phase === 'Running', 60_000)
})

dtest('logs follow a container as it writes, and end when it exits; tailLines gives the last lines', async t => {
  const e = await dockerEnv(t)
  const k = await e.start()
  e.h.create(dpod(e.node, 'ticker', [{ name: 'main', command: ['sh', '-c', 'i=0; while [ $i -lt 20 ]; do echo line $i; i=$((i+1)); sleep 0.1; done'] }], { restartPolicy: 'Never' }))
  await waitFor('Running or done', () => ['Running', 'Succeeded'].includes(getPod(e.h, 'ticker')?.status?.phase) || undefined, 60_000)
  const stream = await k.logStream('default', 'ticker', 'main', { follow: true })
  let text = ''
  for await (const chunk of stream) text += String(chunk)
  t.deepEqual(text.trim().split('\n'), Array.from({ length: 20 }, (_, i) => `line ${i}`))
  await waitFor('Succeeded', () => getPod(e.h, 'ticker')?.status?.phase === 'Succeeded')
  t.is(await k.logs('default', 'ticker', 'main', { tailLines: 2 }), 'line 18\nline 19\n')
})
