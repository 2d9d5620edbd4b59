// How the native runtime turns a container and its image's config into what
// a sandbox runs (daemon/kubelet/native/container-config.ts): Kubernetes'
// command/args rules, env precedence, limits, and the user, never root unless
// the pod asks. Plain functions over a temporary root; no root needed.
import test from 'ava'
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { hostnameOf, limitsOf, NOBODY, resolveArgv, resolveEnv, resolveUser, UserError } from '../../daemon/kubelet/native/container-config.ts'
import type { Container, Pod } from '../../protocol/core-v1.ts'

const IMAGE = { entrypoint: ['/bin/ep'], cmd: ['--from-image'], env: ['PATH=/bin', 'A=image', 'B=image'], user: '', workingDir: '/app' }

test('command replaces Entrypoint and drops Cmd; args replace Cmd; neither keeps both', t => {
  t.deepEqual(resolveArgv({}, IMAGE), ['/bin/ep', '--from-image'])
  t.deepEqual(resolveArgv({ args: ['--mine'] }, IMAGE), ['/bin/ep', '--mine'])
  t.deepEqual(resolveArgv({ command: ['/bin/sh'] }, IMAGE), ['/bin/sh'])
  t.deepEqual(resolveArgv({ command: ['/bin/sh'], args: ['-c', 'x'] }, IMAGE), ['/bin/sh', '-c', 'x'])
  t.deepEqual(resolveArgv({}, { ...IMAGE, entrypoint: [], cmd: [] }), [])
})

test('env: the image\'s, overridden by the kubelet\'s; HOME defaults to /', t => {
  t.deepEqual(resolveEnv(IMAGE.env, { B: 'pod', C: 'pod' }), { PATH: '/bin', A: 'image', B: 'pod', C: 'pod', HOME: '/' })
  t.is(resolveEnv(['HOME=/root', 'X=a=b'], {}).X, 'a=b')
})

test('limits: memory, cpu limit and request (the limit when no request), and pids', t => {
  t.deepEqual(limitsOf({ resources: { limits: { memory: '64Mi', cpu: '500m' }, requests: { cpu: '100m' } } }), { pids: 1024, memoryBytes: 64 * 1024 * 1024, cpuLimitMillis: 500, cpuRequestMillis: 100 })
  t.deepEqual(limitsOf({ resources: { limits: { cpu: '1' } } }, 50), { pids: 50, cpuLimitMillis: 1000, cpuRequestMillis: 1000 })
  t.deepEqual(limitsOf({}), { pids: 1024 })
})

test('hostname: spec.hostname, else the pod\'s name', t => {
  t.is(hostnameOf({ metadata: { name: 'web-0' }, spec: { containers: [] } } as unknown as Pod), 'web-0')
  t.is(hostnameOf({ metadata: { name: 'web-0' }, spec: { hostname: 'h', containers: [] } } as unknown as Pod), 'h')
})

function root (t: import('ava').ExecutionContext): string {
  const dir = mkdtempSync(join(tmpdir(), 'shoal-native-config-'))
  t.teardown(() => { rmSync(dir, { recursive: true, force: true }) })
  mkdirSync(join(dir, 'etc'))
  writeFileSync(join(dir, 'etc', 'passwd'), 'root:x:0:0::/root:/bin/sh\napp:x:1000:1001::/app:/bin/sh\n')
  writeFileSync(join(dir, 'etc', 'group'), 'root:x:0:\nstaff:x:50:\n')
  return dir
}

const pod = (spec: Record<string, unknown> = {}): Pod => ({ metadata: { name: 'p' }, spec: { containers: [], ...spec } } as unknown as Pod)
const container = (securityContext?: Record<string, unknown>): Container => ({ name: 'c', ...(securityContext !== undefined ? { securityContext } : {}) })

test('user: an image that would run as root runs as nobody; uid 0 only when the pod asks', async t => {
  const r = root(t)
  t.deepEqual(await resolveUser(pod(), container(), '', r), { uid: NOBODY, gid: NOBODY })
  t.deepEqual(await resolveUser(pod(), container(), 'root', r), { uid: NOBODY, gid: NOBODY })
  t.deepEqual(await resolveUser(pod(), container(), '0:0', r), { uid: NOBODY, gid: NOBODY })
  t.deepEqual(await resolveUser(pod(), container({ runAsUser: 0 }), '', r), { uid: 0, gid: 0 })
  t.deepEqual(await resolveUser(pod({ securityContext: { runAsUser: 0 } }), container(), '', r), { uid: 0, gid: 0 })
  t.deepEqual(await resolveUser(pod(), container({ privileged: true }), '', r), { uid: 0, gid: 0 })
})

test('user: the image\'s User by number or name, groups from /etc/group; runAsUser/runAsGroup win, the container\'s over the pod\'s', async t => {
  const r = root(t)
  t.deepEqual(await resolveUser(pod(), container(), 'app', r), { uid: 1000, gid: 1001 })
  t.deepEqual(await resolveUser(pod(), container(), '1000', r), { uid: 1000, gid: 1001 })
  t.deepEqual(await resolveUser(pod(), container(), 'app:staff', r), { uid: 1000, gid: 50 })
  t.deepEqual(await resolveUser(pod(), container(), '4242:4343', r), { uid: 4242, gid: 4343 })
  t.deepEqual(await resolveUser(pod(), container(), '4242', r), { uid: 4242, gid: NOBODY })
  t.deepEqual(await resolveUser(pod({ securityContext: { runAsUser: 7, runAsGroup: 8 } }), container({ runAsUser: 9 }), 'app', r), { uid: 9, gid: 8 })
  await t.throwsAsync(resolveUser(pod(), container(), 'ghost', r), { instanceOf: UserError })
  await t.throwsAsync(resolveUser(pod(), container(), 'app:ghosts', r), { instanceOf: UserError })
})

test('user: an /etc/passwd that is a symbolic link (to the host\'s, say) is not read', async t => {
  const r = root(t)
  rmSync(join(r, 'etc', 'passwd'))
  symlinkSync('/etc/passwd', join(r, 'etc', 'passwd'))
  await t.throwsAsync(resolveUser(pod(), container(), 'root', r), { instanceOf: UserError })
})
