// The kubelet's probes and volumes with the process runtime, over an
// in-process store: real processes in a temp dir, on loopback pod IPs.
import { readFile, rm, stat } from 'node:fs/promises'
import { join } from 'node:path'
import test from 'ava'
import type { ExecutionContext } from 'ava'
import { Prober } from '../../daemon/kubelet/probes.ts'
import type { ContainerRecord } from '../../daemon/kubelet/runtime.ts'
import { createLogger } from '../../daemon/log/log.ts'
import { configMap, NOW, pod, ref, StoreHarness } from '../../daemon/store/testing.ts'
import type { KObject } from '../../protocol/k8s.ts'
import { FakeClock } from '../helpers/fake-clock.ts'
import { getPod, kubeletEnv, main, waitFor } from '../helpers/kubelet.ts'
import type { Obj } from '../helpers/kubelet.ts'

// A node (and so a pod range) of its own: these pods listen on their IPs, and test files run side by side.
const NODE = 'node-probes'
const POD_TYPE = { group: '', version: 'v1', kind: 'Pod', plural: 'pods', singular: 'pod', namespaced: true, shortNames: [], subresources: [] }

function runPod (name: string, containers: Obj[], extra: Obj = {}): KObject {
  const p = pod(name, { nodeName: NODE })
  return { ...p, spec: { nodeName: NODE, terminationGracePeriodSeconds: 2, containers: containers.map(c => ({ image: 'busybox:1.36', ...c })), ...extra } }
}

function condition (p: Obj | undefined, type: string): string | undefined {
  return (p?.status?.conditions as Obj[] | undefined)?.find(c => c.type === type)?.status
}

/** Every status of pod `name` the store saw, in order. */
function history (t: ExecutionContext, h: StoreHarness, name: string): Obj[] {
  const seen: Obj[] = []
  const w = h.store.watch(POD_TYPE, {}, ev => {
    const o = ev.object as Obj
    if (o.metadata?.name === name && o.status !== undefined) seen.push(o.status)
  })
  t.teardown(() => { w.stop() })
  return seen
}

async function readText (file: string): Promise<string | undefined> {
  try { return await readFile(file, 'utf8') } catch { return undefined }
}

// ---- probes ----------------------------------------------------------------

test('an httpGet readiness probe on a named port: Ready only once the server answers, and no status writes while nothing changes', async t => {
  const e = await kubeletEnv(t, NODE)
  await e.kubelet()
  const seen = history(t, e.h, 'web')
  // The server listens on the pod IP only after 1.5 s.
  const server = 'setTimeout(() => require("http").createServer((q, r) => { r.statusCode = q.url === "/healthz" ? 200 : 404; r.end("ok") }).listen(8080, process.env.POD_IP), 1500)'
  e.h.create(runPod('web', [{
    name: 'main',
    command: [process.execPath, '-e', server],
    ports: [{ name: 'http', containerPort: 8080 }],
    readinessProbe: { httpGet: { path: '/healthz', port: 'http' }, periodSeconds: 1 }
  }]))
  const ready = await waitFor('Ready', () => condition(getPod(e.h, 'web'), 'Ready') === 'True' && getPod(e.h, 'web'))
  t.true(main(ready)?.ready)
  t.is(condition(ready, 'ContainersReady'), 'True')
  t.true(seen.some(s => s.containerStatuses?.[0]?.state?.running !== undefined && s.containerStatuses[0].ready === false && s.conditions.find((c: Obj) => c.type === 'Ready')?.status === 'False'),
    'running but not ready before the server answered')
  // Probes keep succeeding every second; none of that is a status write.
  const writes = seen.length
  await new Promise(resolve => setTimeout(resolve, 2500))
  t.is(seen.length, writes)
  t.is(main(getPod(e.h, 'web'))?.restartCount, 0)
})

test('a readiness probe that starts failing makes the pod not Ready, without a restart', async t => {
  const e = await kubeletEnv(t, NODE)
  await e.kubelet()
  e.h.create(runPod('flaky', [{
    name: 'main',
    command: ['sh', '-c', 'touch ok; sleep 60'],
    readinessProbe: { exec: { command: ['test', '-f', 'ok'] }, periodSeconds: 1, failureThreshold: 1 }
  }]))
  const created = await waitFor('Ready', () => condition(getPod(e.h, 'flaky'), 'Ready') === 'True' && getPod(e.h, 'flaky'))
  await rm(join(e.dir, 'pods', created.metadata.uid, 'main', 'ok'))
  await waitFor('not Ready', () => condition(getPod(e.h, 'flaky'), 'Ready') === 'False')
  t.false(main(getPod(e.h, 'flaky'))?.ready)
  t.truthy(main(getPod(e.h, 'flaky'))?.state?.running)
  t.is(main(getPod(e.h, 'flaky'))?.restartCount, 0)
})

test('a failing liveness exec probe restarts the container', async t => {
  const e = await kubeletEnv(t, NODE)
  await e.kubelet()
  e.h.create(runPod('sick', [{
    name: 'main',
    command: ['sleep', '60'],
    livenessProbe: { exec: { command: ['sh', '-c', 'exit 1'] }, periodSeconds: 1, failureThreshold: 2 }
  }]))
  const cs = await waitFor('2 restarts', () => { const c = main(getPod(e.h, 'sick')); return c !== undefined && c.restartCount >= 2 && c })
  t.true(cs.restartCount >= 2)
  const last = await waitFor('lastState', () => main(getPod(e.h, 'sick'))?.lastState?.terminated as Obj | undefined)
  t.is(last.reason, 'Error')
  t.is(last.exitCode, 143, 'killed with SIGTERM')
  t.is(getPod(e.h, 'sick')?.status?.phase, 'Running')
})

test('a failing tcpSocket liveness probe restarts the container; restartPolicy Never leaves it Failed', async t => {
  const e = await kubeletEnv(t, NODE)
  await e.kubelet()
  e.h.create(runPod('closed', [{
    name: 'main',
    command: ['sleep', '60'],
    livenessProbe: { tcpSocket: { port: 9 }, periodSeconds: 1, failureThreshold: 1 }
  }], { restartPolicy: 'Never' }))
  const p = await waitFor('Failed', () => getPod(e.h, 'closed')?.status?.phase === 'Failed' && getPod(e.h, 'closed'))
  t.is(main(p)?.restartCount, 0)
  t.is(main(p)?.state?.terminated?.exitCode, 143)
})

test('a startup probe holds off liveness (and readiness) until it succeeds', async t => {
  const e = await kubeletEnv(t, NODE)
  await e.kubelet()
  const seen = history(t, e.h, 'slow')
  // Healthy only after 2 s; unhealthy again 3 s later.
  e.h.create(runPod('slow', [{
    name: 'main',
    command: ['sh', '-c', 'rm -f healthy; sleep 2; touch healthy; sleep 3; rm healthy; sleep 60'],
    startupProbe: { exec: { command: ['test', '-f', 'healthy'] }, periodSeconds: 1, failureThreshold: 30 },
    livenessProbe: { exec: { command: ['test', '-f', 'healthy'] }, periodSeconds: 1, failureThreshold: 1 },
    readinessProbe: { exec: { command: ['true'] }, periodSeconds: 1 }
  }]))
  const started = await waitFor('started', () => main(getPod(e.h, 'slow'))?.started === true && main(getPod(e.h, 'slow')))
  t.is(started.restartCount, 0, 'liveness did not run before the startup probe succeeded')
  t.true(seen.some(s => s.containerStatuses?.[0]?.state?.running !== undefined && s.containerStatuses[0].started === false && s.containerStatuses[0].ready === false))
  await waitFor('Ready', () => condition(getPod(e.h, 'slow'), 'Ready') === 'True')
  // Once started, liveness runs: the file goes, the container is restarted.
  await waitFor('a restart', () => (main(getPod(e.h, 'slow'))?.restartCount ?? 0) >= 1)
  t.pass()
})

test('Prober thresholds on a fake clock: readiness needs successThreshold, liveness fails after failureThreshold', async t => {
  const clock = new FakeClock()
  const results: number[] = []
  let changes = 0
  const prober = new Prober({
    clock,
    log: createLogger('silent', 'test'),
    exec: async () => ({ exitCode: results.shift() ?? 0, stdout: '', stderr: '' }),
    onChange: () => { changes++ }
  })
  t.teardown(() => { prober.stop() })
  const rec: ContainerRecord = { id: 'c1', podUid: 'u', podNamespace: 'default', podName: 'p', containerName: 'main', attempt: 0, state: 'running', startedAt: clock.now() }
  const container = {
    name: 'main',
    readinessProbe: { exec: { command: ['x'] }, initialDelaySeconds: 5, periodSeconds: 2, successThreshold: 2 }
  }
  const turn = async (ms: number): Promise<void> => {
    clock.advance(ms)
    for (let i = 0; i < 5; i++) await new Promise(resolve => setImmediate(resolve))
  }
  t.deepEqual(prober.ensure('default/p', '127.0.0.1', container, rec), { started: true, ready: false })
  await turn(4000)
  t.is(changes, 0, 'nothing probed before initialDelaySeconds')
  await turn(1000) // first success
  t.false(prober.ensure('default/p', '127.0.0.1', container, rec).ready)
  await turn(2000) // second success
  t.true(prober.ensure('default/p', '127.0.0.1', container, rec).ready)
  t.is(changes, 1)
  await turn(10_000) // more successes: no change, no call
  t.is(changes, 1)

  const live = { name: 'main', livenessProbe: { exec: { command: ['x'] }, periodSeconds: 1, failureThreshold: 3 } }
  const rec2 = { ...rec, id: 'c2' }
  t.deepEqual(prober.ensure('default/p', '127.0.0.1', live, rec2), { started: true, ready: true })
  prober.retain('u', new Set(['c2']))
  results.push(1, 1, 0, 1, 1, 1)
  await turn(1000)
  await turn(1000)
  await turn(1000) // a success resets the count
  await turn(1000)
  await turn(1000)
  t.is(prober.ensure('default/p', '127.0.0.1', live, rec2).failed, undefined)
  await turn(1000)
  t.regex(prober.ensure('default/p', '127.0.0.1', live, rec2).failed ?? '', /^Liveness probe failed: command exited with 1/)
})

// ---- volumes ---------------------------------------------------------------

test('a configMap volume: ContainerCreating while it is missing, then its files, refreshed when it changes', async t => {
  const e = await kubeletEnv(t, NODE)
  const k = await e.kubelet()
  const created = e.h.create(runPod('cfg', [{
    name: 'main',
    command: ['sh', '-c', 'cat etc/config/greeting; echo; cat "$SHOAL_VOLUME_CONFIG/nested/mode"; echo; sleep 60'],
    volumeMounts: [{ name: 'config', mountPath: '/etc/config' }]
  }], { volumes: [{ name: 'config', configMap: { name: 'settings', items: [{ key: 'greeting', path: 'greeting' }, { key: 'mode', path: 'nested/mode' }] } }] }))
  const waiting = await waitFor('waiting', () => main(getPod(e.h, 'cfg'))?.state?.waiting as Obj | undefined)
  t.is(waiting.reason, 'ContainerCreating')
  t.regex(waiting.message, /configmap "settings" not found/)
  e.h.create(configMap('settings', { greeting: 'hello', mode: 'prod', unused: 'x' }))
  await waitFor('Running', () => getPod(e.h, 'cfg')?.status?.phase === 'Running')
  t.is(await waitFor('log', async () => { const s = await k.logs('default', 'cfg', 'main'); return s.split('\n').length >= 3 && s }), 'hello\nprod\n')
  const dir = join(e.dir, 'pods', created.metadata.uid ?? '', 'volumes', 'config')
  t.false(await stat(join(dir, 'unused')).then(() => true, () => false), 'only the listed items')
  e.h.ok(e.h.apply({ op: 'patch', ref: ref('configmaps', 'settings', 'default'), patchType: 'merge', patch: { data: { greeting: 'bonjour' } }, now: NOW }))
  await waitFor('the refreshed file', async () => await readText(join(dir, 'greeting')) === 'bonjour')
  t.is(main(getPod(e.h, 'cfg'))?.restartCount, 0)
})

test('a secret volume: values decoded from base64, defaultMode honoured', async t => {
  const e = await kubeletEnv(t, NODE)
  const k = await e.kubelet()
  e.h.create({ apiVersion: 'v1', kind: 'Secret', metadata: { name: 'creds', namespace: 'default' }, data: { password: Buffer.from('s3cr3t!').toString('base64') } })
  const created = e.h.create(runPod('sec', [{
    name: 'main',
    command: ['sh', '-c', 'cat /dev/null run/secrets/password; echo; sleep 60'],
    volumeMounts: [{ name: 'creds', mountPath: '/run/secrets', readOnly: true }]
  }], { volumes: [{ name: 'creds', secret: { secretName: 'creds', defaultMode: 0o400 } }] }))
  await waitFor('Running', () => getPod(e.h, 'sec')?.status?.phase === 'Running')
  // The whole line: the value, then echo's newline (a read between the two would see half).
  t.is(await waitFor('log', async () => { const s = await k.logs('default', 'sec', 'main'); return s.endsWith('\n') && s }), 's3cr3t!\n')
  const file = join(e.dir, 'pods', created.metadata.uid ?? '', 'volumes', 'creds', 'password')
  t.is((await stat(file)).mode & 0o777, 0o400)
})

test('an emptyDir shared by two containers, removed with the pod', async t => {
  const e = await kubeletEnv(t, NODE)
  const k = await e.kubelet()
  const created = e.h.create(runPod('pair', [
    { name: 'writer', command: ['sh', '-c', 'echo hi from writer > shared/msg; sleep 60'], volumeMounts: [{ name: 'scratch', mountPath: '/shared' }] },
    { name: 'reader', command: ['sh', '-c', 'while [ ! -f "$SHOAL_VOLUME_SCRATCH/msg" ]; do sleep 0.1; done; cat data/msg; sleep 60'], volumeMounts: [{ name: 'scratch', mountPath: '/data' }] }
  ], { volumes: [{ name: 'scratch', emptyDir: {} }] }))
  await waitFor('Running', () => getPod(e.h, 'pair')?.status?.phase === 'Running')
  t.is(await waitFor('log', async () => { const s = await k.logs('default', 'pair', 'reader'); return s !== '' && s }), 'hi from writer\n')
  const dir = join(e.dir, 'pods', created.metadata.uid ?? '', 'volumes', 'scratch')
  t.is(await readText(join(dir, 'msg')), 'hi from writer\n')
  e.h.ok(e.h.apply({ op: 'delete', ref: ref('pods', 'pair', 'default'), now: NOW }))
  await waitFor('the volume to go', async () => await stat(dir).then(() => false, () => true), 10_000)
  t.pass()
})

test('an optional missing configMap gives an empty volume; a missing item key keeps the pod ContainerCreating', async t => {
  const e = await kubeletEnv(t, NODE)
  await e.kubelet()
  e.h.create(configMap('partial', { present: 'yes' }))
  e.h.create(runPod('opt', [{ name: 'main', command: ['sh', '-c', 'ls cfg; sleep 60'], volumeMounts: [{ name: 'cfg', mountPath: '/cfg' }] }], { volumes: [{ name: 'cfg', configMap: { name: 'absent', optional: true } }] }))
  e.h.create(runPod('nokey', [{ name: 'main', command: ['sleep', '60'], volumeMounts: [{ name: 'cfg', mountPath: '/cfg' }] }], { volumes: [{ name: 'cfg', configMap: { name: 'partial', items: [{ key: 'absent', path: 'a' }] } }] }))
  await waitFor('opt Running', () => getPod(e.h, 'opt')?.status?.phase === 'Running')
  const waiting = await waitFor('waiting', () => main(getPod(e.h, 'nokey'))?.state?.waiting as Obj | undefined)
  t.is(waiting.reason, 'ContainerCreating')
  t.regex(waiting.message, /non-existent config key: absent/)
  t.is(getPod(e.h, 'nokey')?.status?.phase, 'Pending')
})
