// `--runtime native` for real: one shoald (127.0.161.2) whose kubelet runs
// pods from OCI images in native sandboxes, and Debian's docker-registry on
// 127.0.162.2 (one open, one behind htpasswd, each on its own port). The
// image is built here from the host's static busybox: its Entrypoint serves
// /www with `busybox httpd` on the pod's address (POD_IP:8080, not every
// address of the host, since the sandbox shares the host's network) and it
// has no USER, so it must run as nobody. Checked: the pod runs and answers
// HTTP; exec is not uid 0 and the hostname is the pod's name; / is the
// image's and the peer's data directory is out of reach; a configMap volume
// is mounted read-only; a wrong pull secret leaves the container waiting
// with ErrImagePull / ImagePullBackOff and the registry's words, the right
// one runs; a restarted shoald adopts the running container. Without root,
// a usable sandbox host or docker-registry the tests
// are skipped (failed in CI). Every container's cgroup is emptied and
// removed in teardown (a SIGKILLed shoald leaves its sandboxes running).
import test from 'ava'
import { existsSync, readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { detectCgroups } from '../../daemon/kubelet/native/cgroups.ts'
import type { CgroupLayout } from '../../daemon/kubelet/native/cgroups.ts'
import { mountsUnder } from '../../daemon/kubelet/native/rootfs.ts'
import { killStale } from '../../daemon/kubelet/native-runtime.ts'
import type { KObject } from '../../protocol/k8s.ts'
import { api, restartPeer, waitFor } from '../helpers/cluster.ts'
import type { Peer } from '../helpers/cluster.ts'
import { busyboxRootLayer, imageOf, pushImage } from '../helpers/oci-build.ts'
import type { BuiltImage } from '../helpers/oci-build.ts'
import { startRegistry } from '../helpers/oci-registry.ts'
import { nativeProblem, nativeTest } from '../helpers/native.ts'
import { startNativePeer, stopNativePeer } from '../helpers/native-peer.ts'
import type { NativePeer } from '../helpers/native-peer.ts'
import type { Registry } from '../helpers/oci-registry.ts'

const PEER_IP = '127.0.161.2'
const REGISTRY_IP = '127.0.162.2'
const USER = { username: 'shoal', password: 'right-password' }
const INDEX = '<h1>served from the image</h1>\n'

// The test's own timers are ref'd, but the daemon clock used by killStale is not: keep the process alive meanwhile.
const alive = setInterval(() => {}, 1000)
test.after.always(() => { clearInterval(alive) })

const problem = nativeProblem

/** busybox and the applets the test uses, /www/index.html, and no USER. */
async function httpdImage (): Promise<BuiltImage> {
  const applets = ['sh', 'httpd', 'id', 'hostname', 'ls', 'cat', 'echo', 'head', 'tail', 'pwd', 'sleep']
  const tar = await busyboxRootLayer(applets, [
    { name: 'www/', type: 'directory', mode: 0o755 },
    { name: 'www/index.html', body: INDEX }
  ])
  return imageOf([{ tar, compression: 'gzip' }], 'amd64', {
    Entrypoint: ['/bin/sh', '-c', 'exec busybox httpd -f -p "$POD_IP:8080" -h /www'],
    Env: ['PATH=/bin']
  })
}

let open: Registry | undefined
let locked: Registry | undefined
let peer: Peer | undefined
let native: NativePeer | undefined
let layout: CgroupLayout | undefined

test.before(async () => {
  if (problem !== undefined) return
  layout = detectCgroups()
  ;[open, locked] = await Promise.all([startRegistry({ ip: REGISTRY_IP }), startRegistry({ ip: REGISTRY_IP, htpasswd: USER })])
  const image = await httpdImage()
  await pushImage({ url: open.url }, 'busybox-httpd', 'latest', image)
  await pushImage({ url: locked.url, auth: USER }, 'busybox-httpd', 'latest', image)
  native = await startNativePeer('native-runtime', PEER_IP, ['--allow-privileged'])
  peer = native.peer
})

test.after.always(async () => {
  await stopNativePeer(native, layout)
  await open?.stop()
  await locked?.stop()
})

function podOf (name: string, spec: Record<string, unknown>): KObject {
  return { apiVersion: 'v1', kind: 'Pod', metadata: { name, namespace: 'default' }, spec: { terminationGracePeriodSeconds: 1, ...spec } }
}

async function create (path: string, obj: unknown): Promise<void> {
  const r = await api(peer!, 'POST', `/api/v1/namespaces/default/${path}`, obj)
  if (r.status !== 201) throw new Error(`POST ${path}: ${r.status} ${JSON.stringify(r.body)}`)
}

async function running (name: string, timeoutMs = 30_000): Promise<any> {
  return await waitFor(`${name} Running`, async () => {
    const p = (await api(peer!, 'GET', `/api/v1/namespaces/default/pods/${name}`)).body
    const state = p.status?.containerStatuses?.[0]?.state
    if (state?.terminated !== undefined) throw new Error(`${name} ended: ${JSON.stringify(state)}`)
    return p.status?.phase === 'Running' && p.status?.podIP !== undefined && state?.running !== undefined && p
  }, timeoutMs, 200)
}

async function exec (name: string, ...argv: string[]): Promise<{ exitCode: number, stdout: string, stderr: string }> {
  const query = argv.map(a => `command=${encodeURIComponent(a)}`).join('&')
  const r = await api(peer!, 'POST', `/api/v1/namespaces/default/pods/${name}/exec?${query}`)
  if (r.status !== 200) throw new Error(`exec ${argv.join(' ')} in ${name}: ${r.status} ${JSON.stringify(r.body)}`)
  return r.body
}

nativeTest('an image with only `image:` runs isolated: HTTP on POD_IP, not root, its own hostname and root, a read-only configMap', async t => {
  t.timeout(60_000)
  await create('configmaps', { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'site' }, data: { greeting: 'hello from a configMap\n' } })
  await create('pods', podOf('web', {
    containers: [{ name: 'httpd', image: `${open!.host}/busybox-httpd`, volumeMounts: [{ name: 'site', mountPath: '/config', readOnly: true }] }],
    volumes: [{ name: 'site', configMap: { name: 'site' } }]
  }))
  const pod = await running('web')
  t.regex(pod.status.podIP, /^127\./)
  t.regex(pod.status.containerStatuses[0].containerID, /^native:\/\//)

  const body = await waitFor('HTTP at POD_IP:8080', async () => {
    const res = await fetch(`http://${pod.status.podIP}:8080/`, { signal: AbortSignal.timeout(2000) })
    return res.ok && await res.text()
  }, 10_000, 200)
  t.is(body, INDEX)

  const uid = await exec('web', 'id', '-u')
  t.is(uid.exitCode, 0, uid.stderr)
  t.is(uid.stdout.trim(), '65534', 'an image without USER runs as nobody, never root')
  t.is((await exec('web', 'id', '-G')).stdout.trim(), '65534', 'no other groups')
  t.is((await exec('web', 'hostname')).stdout.trim(), 'web')

  const ls = await exec('web', 'ls', '/')
  t.deepEqual(ls.stdout.split('\n').filter(l => l !== '').sort(), ['bin', 'config', 'dev', 'etc', 'proc', 'tmp', 'www'])
  const dataDir = join(native!.dir, 'p1')
  const outside = await exec('web', 'ls', dataDir)
  t.not(outside.exitCode, 0, `the peer's data directory ${dataDir} is not reachable from the container`)
  // /proc/1/root/.. stays in the container's root: its own /etc/hostname (the kubelet writes it), and no host file such as /etc/os-release.
  const escape = await exec('web', 'cat', '/proc/1/root/../../etc/hostname')
  t.is(escape.stdout, 'web\n', escape.stderr)
  t.not((await exec('web', 'cat', '/proc/1/root/../../etc/os-release')).exitCode, 0)

  const config = await exec('web', 'cat', '/config/greeting')
  t.is(config.stdout, 'hello from a configMap\n')
  const write = await exec('web', 'sh', '-c', 'echo x > /config/new')
  t.not(write.exitCode, 0)
  t.regex(write.stderr, /Read-only file system/)
})

nativeTest('image pull secrets: a wrong one leaves the container waiting with the registry\'s message, the right one runs', async t => {
  t.timeout(60_000)
  const secret = (name: string, password: string): KObject => ({
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: { name },
    type: 'kubernetes.io/dockerconfigjson',
    data: {
      '.dockerconfigjson': Buffer.from(JSON.stringify({ auths: { [locked!.host]: { auth: Buffer.from(`${USER.username}:${password}`).toString('base64') } } })).toString('base64')
    }
  } as unknown as KObject)
  await create('secrets', secret('wrong-pull', 'wrong-password'))
  await create('secrets', secret('right-pull', USER.password))
  const image = `${locked!.host}/busybox-httpd`
  await create('pods', podOf('locked-wrong', { containers: [{ name: 'httpd', image }], imagePullSecrets: [{ name: 'wrong-pull' }] }))
  const waiting = await waitFor('locked-wrong waiting on its image', async () => {
    const p = (await api(peer!, 'GET', '/api/v1/namespaces/default/pods/locked-wrong')).body
    const w = p.status?.containerStatuses?.[0]?.state?.waiting
    return w !== undefined && ['ErrImagePull', 'ImagePullBackOff'].includes(w.reason) && w
  }, 20_000, 200)
  t.regex(waiting.message, /authentication required/, 'the registry\'s own message')

  await create('pods', podOf('locked-right', { containers: [{ name: 'httpd', image }], imagePullSecrets: [{ name: 'right-pull' }] }))
  const pod = await running('locked-right')
  const body = await waitFor('HTTP at POD_IP:8080', async () => {
    const res = await fetch(`http://${pod.status.podIP}:8080/`, { signal: AbortSignal.timeout(2000) })
    return res.ok && await res.text()
  }, 10_000, 200)
  t.is(body, INDEX)
})

nativeTest('command, env, workingDir and an explicit runAsUser: 0 as Kubernetes resolves them; a memory limit OOM-kills; deletion removes the root and the cgroup', async t => {
  t.timeout(60_000)
  await create('pods', podOf('as-root', {
    restartPolicy: 'Never',
    securityContext: { runAsUser: 0 },
    containers: [{
      name: 'main',
      image: `${open!.host}/busybox-httpd`,
      command: ['sh', '-c', 'id -u; pwd; echo "$PATH $GREETING"; touch /www/mine; exec sleep 600'],
      workingDir: '/www',
      env: [{ name: 'GREETING', value: 'hi' }]
    }]
  }))
  const pod = await running('as-root')
  const id = String(pod.status.containerStatuses[0].containerID).replace(/^native:\/\//, '')
  const logs = await waitFor('as-root\'s output', async () => {
    const r = await api(peer!, 'GET', '/api/v1/namespaces/default/pods/as-root/log')
    return typeof r.body === 'string' && r.body.split('\n').length >= 4 && r.body
  }, 10_000, 200)
  t.is(logs, '0\n/www\n/bin hi\n', 'uid 0 when the pod asks for it; the container\'s workingDir and env')

  const dir = join(native!.dir, 'p1', 'native', 'roots', id)
  const root = join(dir, 'rootfs')
  t.true(existsSync(join(root, 'www', 'index.html')), 'the container\'s root holds the image')
  await waitFor('the container\'s file', () => existsSync(join(root, 'www', 'mine')), 10_000, 100)
  const images = join(native!.dir, 'p1', 'images', 'roots')
  const unpacked = readdirSync(images).filter(n => !n.startsWith('tmp-'))
  t.true(unpacked.length > 0 && unpacked.every(n => existsSync(join(images, n, 'www', 'index.html')) && !existsSync(join(images, n, 'www', 'mine'))),
    'what the container writes stays out of the image\'s unpacked layers, which every container of the image starts from')
  if ((await mountsUnder(dir)).includes(root)) t.true(existsSync(join(dir, 'upper', 'www', 'mine')), 'an overlay: the write is in the container\'s upper layer')
  t.is((await api(peer!, 'DELETE', '/api/v1/namespaces/default/pods/as-root')).status, 200)
  await waitFor('as-root gone', async () => (await api(peer!, 'GET', '/api/v1/namespaces/default/pods/as-root')).status === 404, 20_000, 200)
  await waitFor('the container\'s root removed', () => !existsSync(dir), 10_000, 100)
  t.false(readFileSync('/proc/self/mountinfo', 'utf8').includes(` ${root} `), 'and nothing is left mounted there')
  const cgroups = layout!.version === 2 ? [join(layout!.root, 'shoal', id)] : Object.values(layout!.mounts).map(m => join(m, 'shoal', id))
  t.false(cgroups.some(d => existsSync(d)), 'its cgroup is gone')

  await create('pods', podOf('hungry', {
    restartPolicy: 'Never',
    containers: [{ name: 'main', image: `${open!.host}/busybox-httpd`, command: ['sh', '-c', 'head -c 200m /dev/zero | tail'], resources: { limits: { memory: '32Mi' } } }]
  }))
  const terminated = await waitFor('hungry terminated', async () => {
    const p = (await api(peer!, 'GET', '/api/v1/namespaces/default/pods/hungry')).body
    return p.status?.containerStatuses?.[0]?.state?.terminated
  }, 20_000, 200)
  t.is(terminated.reason, 'OOMKilled')
  t.is(terminated.exitCode, 137)
})

nativeTest('a restarted shoald adopts its sandboxes: the same container keeps serving, and exec still enters it', async t => {
  t.timeout(60_000)
  const before = await running('web')
  const containerID = before.status.containerStatuses[0].containerID
  await peer!.kill()
  peer = native!.peer = await restartPeer(peer!)
  const id = String(containerID).replace(/^native:\/\//, '')
  await waitFor('web adopted', () => peer!.events().some(e => e.event === 'kubelet.container.adopted' && e.id === id), 30_000, 100)
  const after = await running('web')
  t.is(after.status.containerStatuses[0].containerID, containerID, 'the same container')
  t.is(after.status.containerStatuses[0].restartCount, before.status.containerStatuses[0].restartCount)
  t.is(after.status.podIP, before.status.podIP, 'the pod keeps its address')
  const body = await waitFor('HTTP at POD_IP:8080', async () => {
    const res = await fetch(`http://${after.status.podIP}:8080/`, { signal: AbortSignal.timeout(2000) })
    return res.ok && await res.text()
  }, 10_000, 200)
  t.is(body, INDEX)
  const hostname = await exec('web', 'hostname')
  t.is(hostname.exitCode, 0, hostname.stderr)
  t.is(hostname.stdout.trim(), 'web')
})
