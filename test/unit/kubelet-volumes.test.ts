// configMap and secret volumes as Kubernetes' atomic writer lays them out
// (`..data` swapped to a new timestamped directory, a link per key), and a
// pod that plants links in its volume: the kubelet's refresh never writes
// outside the volume. The process runtime, over an in-process store.
import { mkdir, mkdtemp, readdir, readFile, readlink, rm, stat, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import test from 'ava'
import { Volumes } from '../../daemon/kubelet/volumes.ts'
import { configMap, NOW, pod, ref, StoreHarness } from '../../daemon/store/testing.ts'
import type { Pod } from '../../protocol/core-v1.ts'
import type { KObject } from '../../protocol/k8s.ts'
import { FakeClock } from '../helpers/fake-clock.ts'
import { getPod, kubeletEnv, waitFor } from '../helpers/kubelet.ts'
import type { Obj } from '../helpers/kubelet.ts'

const NODE = 'node-volumes'

function runPod (name: string, containers: Obj[], extra: Obj = {}): KObject {
  const p = pod(name, { nodeName: NODE })
  return { ...p, spec: { nodeName: NODE, terminationGracePeriodSeconds: 2, containers: containers.map(c => ({ image: 'busybox:1.36', ...c })), ...extra } }
}

async function readText (file: string): Promise<string | undefined> {
  try { return await readFile(file, 'utf8') } catch { return undefined }
}

test('the atomic layout: ..data points at a timestamped directory, each key links through it, a refresh swaps it', async t => {
  const dir = await mkdtemp(join(tmpdir(), 'shoal-volumes-'))
  t.teardown(async () => { await rm(dir, { recursive: true, force: true }) })
  const h = new StoreHarness()
  h.create(configMap('settings', { greeting: 'hello', mode: 'prod' }))
  const clock = new FakeClock(Date.parse('2026-12-03T09:12:47Z'))
  const volumes = new Volumes(h.store, dir, clock)
  const p = { ...pod('p'), metadata: { name: 'p', namespace: 'default', uid: '6c0e5a8e-2f1c-4a4e-9d55-3a1f0b8c2d11' }, spec: { containers: [], volumes: [{ name: 'cfg', configMap: { name: 'settings', items: [{ key: 'greeting', path: 'greeting' }, { key: 'mode', path: 'nested/mode', mode: 0o600 }] } }] } } as unknown as Pod
  const paths = await volumes.setUp(p)
  const vol = join(dir, 'pods', p.metadata.uid!, 'volumes', 'cfg')
  t.is(paths.get('cfg'), vol)
  const first = await readlink(join(vol, '..data'))
  t.regex(first, /^\.\.2026_12_03_09_12_47\.[A-Za-z0-9]{6}$/)
  t.is(await readlink(join(vol, 'greeting')), '..data/greeting')
  t.is(await readlink(join(vol, 'nested')), '..data/nested')
  t.is(await readText(join(vol, 'greeting')), 'hello')
  t.is(await readText(join(vol, 'nested', 'mode')), 'prod')
  t.is((await stat(join(vol, 'nested', 'mode'))).mode & 0o777, 0o600)
  t.is((await stat(join(vol, 'greeting'))).mode & 0o777, 0o644)

  // Unchanged: nothing is rewritten.
  await volumes.setUp(p)
  t.is(await readlink(join(vol, '..data')), first)

  // Changed: a new directory, ..data swapped to it, the old one gone, a key that went away unlinked.
  clock.advance(1000)
  h.ok(h.apply({ op: 'patch', ref: ref('configmaps', 'settings', 'default'), patchType: 'merge', patch: { data: { greeting: 'bonjour' } }, now: NOW }))
  const p2 = { ...p, spec: { containers: [], volumes: [{ name: 'cfg', configMap: { name: 'settings', items: [{ key: 'greeting', path: 'greeting' }] } }] } } as unknown as Pod
  await volumes.setUp(p2)
  const second = await readlink(join(vol, '..data'))
  t.regex(second, /^\.\.2026_12_03_09_12_48\./)
  t.is(await readText(join(vol, 'greeting')), 'bonjour')
  t.deepEqual((await readdir(vol)).sort(), ['..data', second, 'greeting'].sort())

  // configMap and secret volumes are mounted read-only, whatever the pod asks.
  const mounts = volumes.mountsOf({ name: 'c', volumeMounts: [{ name: 'cfg', mountPath: '/etc/cfg' }] }, paths)
  t.deepEqual(mounts, [{ name: 'cfg', mountPath: '/etc/cfg', hostPath: vol, readOnly: true }])
})

test('a pod that plants links in its configMap volume: the refresh writes nothing outside the volume', async t => {
  const e = await kubeletEnv(t, NODE)
  await e.kubelet()
  // What the pod's links point at, outside its volume.
  const outside = await mkdtemp(join(tmpdir(), 'shoal-outside-'))
  t.teardown(async () => { await rm(outside, { recursive: true, force: true }) })
  await mkdir(join(outside, 'dir'))
  for (const f of ['file', 'tmpfile', 'dir/mode', 'dir/greeting']) await writeFile(join(outside, f), 'untouched')
  const before = { top: (await readdir(outside)).sort(), dir: (await readdir(join(outside, 'dir'))).sort() }

  e.h.create(configMap('settings', { greeting: 'hello', mode: 'prod' }))
  // The pod replaces the key's link, the nested directory, ..data itself, and
  // plants the names an older kubelet wrote through (`greeting.tmp`, `..data_tmp`).
  const plant = [
    `rm -f cfg/greeting; ln -s ${join(outside, 'file')} cfg/greeting`,
    `ln -s ${join(outside, 'tmpfile')} cfg/greeting.tmp`,
    `rm -rf cfg/nested; ln -s ${join(outside, 'dir')} cfg/nested`,
    `ln -sfn ${join(outside, 'dir')} cfg/..data_tmp`,
    `rm -f cfg/..data; ln -s ${join(outside, 'dir')} cfg/..data`,
    'touch planted'
  ].join('; ')
  const created = e.h.create(runPod('planter', [{
    name: 'main',
    command: ['sh', '-c', `${plant}; sleep 60`],
    volumeMounts: [{ name: 'cfg', mountPath: '/cfg' }]
  }], { volumes: [{ name: 'cfg', configMap: { name: 'settings', items: [{ key: 'greeting', path: 'greeting' }, { key: 'mode', path: 'nested/mode' }] } }] }))
  const uid = created.metadata.uid ?? ''
  await waitFor('the links planted', async () => await stat(join(e.dir, 'pods', uid, 'main', 'planted')).then(() => true, () => false))
  t.is(getPod(e.h, 'planter')?.status?.phase, 'Running')

  e.h.ok(e.h.apply({ op: 'patch', ref: ref('configmaps', 'settings', 'default'), patchType: 'merge', patch: { data: { greeting: 'bonjour', mode: 'dev' } }, now: NOW }))
  const vol = join(e.dir, 'pods', uid, 'volumes', 'cfg')
  await waitFor('the refresh', async () => await readText(join(vol, 'greeting')) === 'bonjour')

  for (const f of ['file', 'tmpfile', 'dir/mode', 'dir/greeting']) t.is(await readText(join(outside, f)), 'untouched', f)
  t.deepEqual({ top: (await readdir(outside)).sort(), dir: (await readdir(join(outside, 'dir'))).sort() }, before)
  // The volume is the kubelet's again: its links, through its own ..data.
  t.is(await readlink(join(vol, 'greeting')), '..data/greeting')
  t.is(await readlink(join(vol, 'nested')), '..data/nested')
  t.regex(await readlink(join(vol, '..data')), /^\.\.\d{4}_/)
  t.is(await readText(join(vol, 'nested', 'mode')), 'dev', 'every file swapped at once')
})

test('downwardAPI and projected volumes: the pod\'s fields and resources, and several sources in one directory; a label change rewrites them at once', async t => {
  const dir = await mkdtemp(join(tmpdir(), 'shoal-volumes-'))
  t.teardown(async () => { await rm(dir, { recursive: true, force: true }) })
  const h = new StoreHarness()
  h.create(configMap('settings', { greeting: 'hello' }))
  h.create({ apiVersion: 'v1', kind: 'Secret', metadata: { name: 'creds', namespace: 'default' }, data: { user: Buffer.from('admin').toString('base64') } } as unknown as KObject)
  const clock = new FakeClock(Date.parse('2026-12-03T09:12:47Z'))
  const volumes = new Volumes(h.store, dir, clock)
  const downward = [
    { path: 'name', fieldRef: { fieldPath: 'metadata.name' } },
    { path: 'labels', fieldRef: { fieldPath: 'metadata.labels' } },
    { path: 'tier', fieldRef: { fieldPath: 'metadata.labels[\'tier\']' } },
    { path: 'cpu_limit', resourceFieldRef: { containerName: 'app', resource: 'limits.cpu', divisor: '1m' } },
    { path: 'mem_request', resourceFieldRef: { containerName: 'app', resource: 'requests.memory', divisor: '1Mi' } }
  ]
  const p = {
    ...pod('p'),
    metadata: { name: 'p', namespace: 'default', uid: '6c0e5a8e-2f1c-4a4e-9d55-3a1f0b8c2d12', labels: { tier: 'web', app: 'shop' } },
    spec: {
      containers: [{ name: 'app', resources: { limits: { cpu: '500m', memory: '128Mi' }, requests: { memory: '64Mi' } } }],
      volumes: [
        { name: 'info', downwardAPI: { items: downward } },
        { name: 'all', projected: { defaultMode: 0o440, sources: [{ configMap: { name: 'settings' } }, { secret: { name: 'creds', items: [{ key: 'user', path: 'secret/user' }] } }, { downwardAPI: { items: [{ path: 'ns', fieldRef: { fieldPath: 'metadata.namespace' } }] } }] } }
      ]
    }
  } as unknown as Pod
  await volumes.setUp(p)
  const info = join(dir, 'pods', p.metadata.uid!, 'volumes', 'info')
  t.is(await readText(join(info, 'name')), 'p')
  t.is(await readText(join(info, 'labels')), 'app="shop"\ntier="web"')
  t.is(await readText(join(info, 'tier')), 'web')
  t.is(await readText(join(info, 'cpu_limit')), '500')
  t.is(await readText(join(info, 'mem_request')), '64')
  const all = join(dir, 'pods', p.metadata.uid!, 'volumes', 'all')
  t.is(await readText(join(all, 'greeting')), 'hello')
  t.is(await readText(join(all, 'secret', 'user')), 'admin')
  t.is(await readText(join(all, 'ns')), 'default')
  t.is((await stat(join(all, 'greeting'))).mode & 0o777, 0o440, 'the projection\'s defaultMode')
  const mounts = volumes.mountsOf({ name: 'app', volumeMounts: [{ name: 'info', mountPath: '/etc/info' }, { name: 'all', mountPath: '/etc/all' }] }, await volumes.setUp(p))
  t.true(mounts.every(m => m.readOnly), 'mounted read-only, as configMap and secret volumes are')

  const before = await readlink(join(info, '..data'))
  clock.advance(1000)
  await volumes.setUp({ ...p, metadata: { ...p.metadata, labels: { tier: 'api', app: 'shop' } } } as Pod)
  t.not(await readlink(join(info, '..data')), before, 'a new ..data, swapped in one rename')
  t.is(await readText(join(info, 'labels')), 'app="shop"\ntier="api"')
  t.is(await readText(join(info, 'tier')), 'api')
})
