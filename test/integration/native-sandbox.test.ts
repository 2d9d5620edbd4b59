// The native sandbox (daemon/kubelet/native/) for real: namespaces, pivot
// into a busybox root (test/helpers/native-rootfs.ts), uid, hostname,
// volumes, and the cgroup's limits, usage, OOM kill and removal. Needs root,
// util-linux unshare, a static busybox and cgroups: without them each test
// is skipped with the reason in its title, except in CI (CI=true), where
// they fail. No network is used: the sandbox makes no network traffic.
// Every sandbox is killed within 10 s and in teardown, and its cgroup removed.
import test from 'ava'
import type { ExecutionContext } from 'ava'
import { randomBytes } from 'node:crypto'
import { chmodSync, closeSync, existsSync, mkdirSync, openSync, readFileSync, renameSync, symlinkSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { systemClock } from '../../daemon/clock/clock.ts'
import { Cgroup, detectCgroups } from '../../daemon/kubelet/native/cgroups.ts'
import type { CgroupLayout } from '../../daemon/kubelet/native/cgroups.ts'
import { execRunner } from '../../daemon/kubelet/native/host-shell.ts'
import { mountsUnder } from '../../daemon/kubelet/native/rootfs.ts'
import { checkSandboxHost, makeDevTemplate, startSandbox } from '../../daemon/kubelet/native/sandbox.ts'
import type { RunningSandbox, SandboxExit, SandboxSpec } from '../../daemon/kubelet/native/sandbox.ts'
import { waitFor } from '../helpers/cluster.ts'
import { makeRootfs } from '../helpers/native-rootfs.ts'
import type { TestRootfs } from '../helpers/native-rootfs.ts'

const BOUND_MS = 10_000

// The system clock's timers are unref'd (a daemon's servers keep it alive): while a sandbox's exit waits
// on one (the cgroup emptied, then removed), this handle keeps the test process from looking idle to ava.
const alive = setInterval(() => {}, 1000)
test.after.always(() => { clearInterval(alive) })

function hostProblem (): { layout: CgroupLayout } | string {
  const host = checkSandboxHost()
  if (host !== true) return host
  try {
    return { layout: detectCgroups() }
  } catch (err) {
    return (err as Error).message
  }
}
const host = hostProblem()

/** A test that needs the sandbox; skipped (or, in CI, failed) with the reason when this host cannot run it. */
function sandboxTest (title: string, fn: (t: ExecutionContext, layout: CgroupLayout) => Promise<void>): void {
  if (typeof host === 'string') {
    if (process.env.CI === 'true') test(title, t => { t.fail(`the native sandbox cannot run here: ${host}`) })
    else test.skip(`${title} (skipped: ${host})`, () => {})
    return
  }
  test(title, async t => { await fn(t, host.layout) })
}

function rootfs (t: ExecutionContext): TestRootfs {
  const fs = makeRootfs()
  t.teardown(fs.cleanup)
  return fs
}

interface Run { sandbox: RunningSandbox, exit: Promise<SandboxExit>, stdout: () => string, stderr: () => string }

/** Starts a sandbox with sensible defaults, bounded to BOUND_MS and killed in teardown. */
async function run (t: ExecutionContext, layout: CgroupLayout, fs: TestRootfs, spec: Partial<SandboxSpec> & Pick<SandboxSpec, 'argv'>): Promise<Run> {
  const sandbox = await startSandbox(layout, {
    id: `ntest-${randomBytes(4).toString('hex')}`,
    rootfs: fs.root,
    hostname: 'my-pod',
    uid: 1000,
    gid: 1000,
    env: { PATH: '/bin' },
    limits: { memoryBytes: 64 * 1024 * 1024, pids: 64, cpuLimitMillis: 1000, cpuRequestMillis: 100 },
    ...spec
  }, systemClock)
  let out = ''
  let err = ''
  sandbox.stdout?.on('data', (b: Buffer) => { out += b.toString('utf8') })
  sandbox.stderr?.on('data', (b: Buffer) => { err += b.toString('utf8') })
  const timer = setTimeout(() => { void sandbox.kill() }, BOUND_MS)
  t.teardown(async () => {
    clearTimeout(timer)
    await sandbox.kill()
    await sandbox.exited
  })
  const exit = sandbox.exited.then(e => {
    clearTimeout(timer)
    return e
  })
  return { sandbox, exit, stdout: () => out, stderr: () => err }
}

/** Runs `script` under /bin/sh and waits for the exit; the cgroup must be gone by then. */
async function sh (t: ExecutionContext, layout: CgroupLayout, fs: TestRootfs, script: string, spec: Partial<SandboxSpec> = {}): Promise<{ exit: SandboxExit, stdout: string, stderr: string }> {
  const r = await run(t, layout, fs, { argv: ['sh', '-c', script], ...spec })
  const exit = await r.exit
  t.false(r.sandbox.cgroup.exists(), 'the cgroup is removed once the container has exited')
  t.is(exit.cleanupError, undefined)
  return { exit, stdout: r.stdout(), stderr: r.stderr() }
}

sandboxTest('the workload has no_new_privs: a setuid binary in its root would gain it nothing', async (t, layout) => {
  const fs = rootfs(t)
  const r = await sh(t, layout, fs, 'while read -r k v; do [ "$k" = NoNewPrivs: ] && echo "$v"; done < /proc/self/status')
  t.is(r.stdout, '1\n', r.stderr)
})

sandboxTest('the workload runs as the requested uid and gid, with no other groups, under the pod name', async (t, layout) => {
  const fs = rootfs(t)
  const r = await sh(t, layout, fs, 'id -u; id -g; id -G; hostname', { uid: 1234, gid: 2345 })
  t.is(r.stdout, '1234\n2345\n2345\nmy-pod\n', r.stderr)
  t.is(r.exit.exitCode, 0)
  t.is(r.exit.reason, 'Completed')
})

sandboxTest('the root filesystem is all it sees: nothing outside it is reachable', async (t, layout) => {
  const fs = rootfs(t)
  writeFileSync(join(fs.base, 'marker'), 'outside\n')
  mkdirSync(join(fs.base, 'data-dir'))
  writeFileSync(join(fs.base, 'data-dir', 'secret'), 'the daemon\'s data\n')
  const script = [
    'ls /',
    'cat ../../marker && echo REACHED',
    `cat ${join(fs.base, 'marker')} && echo REACHED`,
    `cat ${join(fs.base, 'data-dir', 'secret')} && echo REACHED`,
    'cat /proc/1/root/../../marker && echo REACHED',
    'echo done'
  ].join('\n')
  // As root, so that no permission (only the mount namespace) stands in the way.
  const r = await sh(t, layout, fs, script, { uid: 0, gid: 0 })
  t.is(r.exit.exitCode, 0, r.stderr)
  t.deepEqual(r.stdout.split('\n').filter(l => l !== ''), ['bin', 'dev', 'etc', 'proc', 'tmp', 'done'])
  t.false(r.stdout.includes('REACHED'))
  t.false(r.stdout.includes('outside') || r.stdout.includes('data'))
})

sandboxTest('/dev from the peer\'s template is the same as one the sandbox makes, read-only even to root; /dev/shm is the container\'s own', async (t, layout) => {
  const fs = rootfs(t)
  const made = await makeDevTemplate(join(fs.base, 'dev-template'), execRunner())
  t.is(made.problem, undefined)
  t.is(made.dir, join(fs.base, 'dev-template'))
  t.deepEqual(await makeDevTemplate(join(fs.base, 'dev-template'), execRunner()), made, 'one already there is used as it is')
  const script = [
    'for d in null zero full random urandom tty; do [ -c /dev/$d ] && echo $d; done',
    'echo x > /dev/null && echo null-writable',
    'head -c 5 /dev/zero | wc -c',
    '[ "$(stat -c %N /dev/fd)" = "\'/dev/fd\' -> \'/proc/self/fd\'" ] && echo fd-link',
    'touch /dev/planted 2>/dev/null && echo PLANTED',
    'echo s > /dev/shm/f && cat /dev/shm/f',
    'grep -c " /dev/shm tmpfs .*size=65536k" /proc/mounts'
  ].join('; ')
  // the last: one /dev/shm, of 64 MiB as Docker's
  const expected = ['null', 'zero', 'full', 'random', 'urandom', 'tty', 'null-writable', '5', 'fd-link', 's', '1', '']
  const own = await sh(t, layout, fs, script)
  t.deepEqual(own.stdout.split('\n'), expected, own.stderr)
  for (const uid of [1000, 0]) {
    const shared = await sh(t, layout, fs, script, { devTemplate: made.dir as string, uid, gid: uid })
    t.deepEqual(shared.stdout.split('\n'), expected, `uid ${uid}: ${shared.stderr}`)
  }
  t.false(existsSync(join(fs.base, 'dev-template', 'planted')))
  t.false(existsSync(join(fs.base, 'dev-template', 'shm', 'f')), 'the shm a container writes is its own tmpfs')
  chmodSync(join(fs.base, 'dev-template'), 0o777)
  t.regex((await makeDevTemplate(join(fs.base, 'dev-template'), execRunner())).problem ?? '', /not a \/dev template/, 'a directory anyone can write is not used')
})

sandboxTest('as root, /proc/sys and /proc/sysrq-trigger are read-only; as another user the kernel refuses the writes anyway', async (t, layout) => {
  const fs = rootfs(t)
  const script = 'echo 1 > /proc/sys/kernel/hostname 2>/dev/null && echo WROTE-SYS; echo h > /proc/sysrq-trigger 2>/dev/null && echo WROTE-SYSRQ; hostname'
  for (const uid of [0, 1000]) {
    const r = await sh(t, layout, fs, script, { uid, gid: uid })
    t.is(r.stdout, 'my-pod\n', `uid ${uid}: ${r.stderr}`)
  }
})

sandboxTest('a volume given as a descriptor is mounted as it was opened: a link swapped in afterwards is not followed, and no descriptor reaches the workload', async (t, layout) => {
  const fs = rootfs(t)
  mkdirSync(join(fs.base, 'vol'))
  writeFileSync(join(fs.base, 'vol', 'inside'), 'the volume\n')
  mkdirSync(join(fs.base, 'staging'))
  const fd = openSync(join(fs.base, 'vol'), 0o10000000) // O_PATH
  t.teardown(() => { closeSync(fd) })
  // The race a pod could win between a path check and the mount: the checked directory swapped for a link to the host's /etc.
  renameSync(join(fs.base, 'vol'), join(fs.base, 'vol-moved'))
  symlinkSync('/etc', join(fs.base, 'vol'))
  const r = await sh(t, layout, fs, 'ls /data; cat /data/inside; ls /proc/self/fd | tr "\\n" " "', {
    mounts: [{ hostPath: join(fs.base, 'vol'), containerPath: '/data', readOnly: true, fd }],
    volumeStaging: join(fs.base, 'staging')
  })
  t.is(r.exit.exitCode, 0, r.stderr)
  const [listing, content, fds] = r.stdout.split('\n')
  t.is(listing, 'inside', 'the directory that was opened, not the host\'s /etc')
  t.is(content, 'the volume')
  t.deepEqual(fds?.trim().split(' '), ['0', '1', '2', '3'], 'stdio and ls\'s own directory: descriptor 6 (an O_PATH way into the host\'s tree) was closed')
  await waitFor('the staging mount to go', async () => (await mountsUnder(join(fs.base, 'staging'))).length === 0, 10_000)
  t.deepEqual(await mountsUnder(join(fs.base, 'staging')), [], 'nothing of it is left mounted on the host')
})

sandboxTest('/proc shows only the container: its first process is pid 1', async (t, layout) => {
  const fs = rootfs(t)
  const r = await sh(t, layout, fs, 'echo pid $$; sleep 5 & ls -d /proc/[0-9]*; cat /proc/1/cmdline | tr "\\0" " "; echo; kill $!')
  t.is(r.exit.exitCode, 0, r.stderr)
  const lines = r.stdout.split('\n')
  t.is(lines[0], 'pid 1')
  const pids = lines.filter(l => l.startsWith('/proc/'))
  // the shell (1), the sleep and the ls; the host has hundreds
  t.true(pids.includes('/proc/1'))
  t.true(pids.length <= 3, pids.join(' '))
  t.true(r.stdout.includes('/bin/sh -c echo pid $$'), 'pid 1 is the workload itself')
})

sandboxTest('the environment, working directory and argv are exactly the given ones', async (t, layout) => {
  const fs = rootfs(t)
  const r = await sh(t, layout, fs, 'pwd; tr "\\0" "\\n" < /proc/1/environ; echo "args:$0:$1"', {
    argv: ['sh', '-c', 'pwd; tr "\\0" "\\n" < /proc/1/environ; echo "args:$0:$1"', 'zero', 'it has spaces; and $(no expansion)'],
    env: { PATH: '/bin', GREETING: 'hello world', '-odd.name': 'x=y' },
    workingDir: '/work/dir'
  })
  t.is(r.exit.exitCode, 0, r.stderr)
  const inTmp = await sh(t, layout, fs, 'pwd', { workingDir: '/tmp/scratch/here' })
  t.is(inTmp.stdout, '/tmp/scratch/here\n', inTmp.stderr)
  t.deepEqual(r.stdout.split('\n'), ['/work/dir', 'PATH=/bin', 'GREETING=hello world', '-odd.name=x=y', 'args:zero:it has spaces; and $(no expansion)', ''])
})

sandboxTest('a read-only volume cannot be written; a read-write one can, and the host sees the file', async (t, layout) => {
  const fs = rootfs(t)
  const ro = join(fs.base, 'vol-ro')
  const rw = join(fs.base, 'vol-rw')
  const cache = join(fs.base, 'vol-cache')
  for (const dir of [ro, rw, cache]) {
    mkdirSync(dir)
    chmodSync(dir, 0o777)
  }
  writeFileSync(join(ro, 'config'), 'from the host\n')
  writeFileSync(join(fs.base, 'one-file'), 'a single file\n')
  const r = await sh(t, layout, fs, [
    'cat /etc/config-vol/config',
    'echo no > /etc/config-vol/new && echo WROTE-RO',
    'echo hello > /data/out && echo wrote-rw',
    'echo cached > /tmp/cache/c && echo wrote-tmp-volume',
    'cat /etc/one/file.txt'
  ].join('\n'), {
    mounts: [
      { hostPath: ro, containerPath: '/etc/config-vol', readOnly: true },
      { hostPath: rw, containerPath: '/data', readOnly: false },
      { hostPath: cache, containerPath: '/tmp/cache', readOnly: false },
      { hostPath: join(fs.base, 'one-file'), containerPath: '/etc/one/file.txt', readOnly: true }
    ]
  })
  t.is(r.stdout, 'from the host\nwrote-rw\nwrote-tmp-volume\na single file\n')
  t.regex(r.stderr, /Read-only file system/)
  t.false(existsSync(join(ro, 'new')))
  t.is(readFileSync(join(rw, 'out'), 'utf8'), 'hello\n')
  t.is(readFileSync(join(cache, 'c'), 'utf8'), 'cached\n')
  t.is(r.exit.exitCode, 0)
})

sandboxTest('a container that uses more memory than its limit is OOM-killed, and says so', async (t, layout) => {
  const fs = rootfs(t)
  const r = await sh(t, layout, fs, 'head -c 200m /dev/zero | tail', { limits: { memoryBytes: 32 * 1024 * 1024 } })
  t.true(r.exit.oomKilled, JSON.stringify(r.exit))
  t.is(r.exit.reason, 'OOMKilled')
  t.is(r.exit.exitCode, 137)
})

sandboxTest('forks stop at the pids limit', async (t, layout) => {
  const fs = rootfs(t)
  const r = await sh(t, layout, fs, 'for i in $(seq 100); do sleep 30 & echo $i; done; echo never', { limits: { pids: 20 } })
  const started = r.stdout.split('\n').filter(l => /^\d+$/.test(l)).map(Number)
  t.false(r.stdout.includes('never'))
  t.regex(r.stderr, /can't fork/)
  t.true(started.length >= 5 && started.length < 20, `${started.length} sleeps started under pids.max 20`)
  t.not(r.exit.exitCode, 0)
})

sandboxTest('a fork bomb is held at the pids limit until it is killed', async (t, layout) => {
  const fs = rootfs(t)
  const r = await run(t, layout, fs, { argv: ['sh', '-c', '(b() { b & b; }; b) 2>/dev/null & exec sleep 30'], limits: { pids: 20 } })
  let most = 0
  for (let i = 0; i < 20; i++) {
    most = Math.max(most, (await r.sandbox.cgroup.processes()).length)
    await new Promise(resolve => setTimeout(resolve, 50))
  }
  t.true(most > 1 && most <= 20, `at most ${most} processes at once under pids.max 20`)
  t.true((await r.sandbox.cgroup.pidsLimitHits() ?? 1) > 0, 'forks were refused')
  const killedAt = Date.now()
  await r.sandbox.kill()
  const exit = await r.exit
  t.true(Date.now() - killedAt < 5000)
  t.is(exit.exitCode, 137)
  t.false(r.sandbox.cgroup.exists())
})

sandboxTest('CPU time used reads back as a positive number; stop kills a pid 1 that ignores SIGTERM', async (t, layout) => {
  const fs = rootfs(t)
  const r = await run(t, layout, fs, { argv: ['sh', '-c', 'i=0; while [ $i -lt 30000 ]; do i=$((i+1)); done; echo counted; exec sleep 30'] })
  t.true(await r.sandbox.started)
  for (let i = 0; i < 200 && !r.stdout().includes('counted'); i++) await new Promise(resolve => setTimeout(resolve, 25))
  t.is(r.stdout(), 'counted\n')
  const live = await r.sandbox.usage()
  t.true(live.cpuNanos > 0, 'usage while running')
  t.true(live.memoryBytes > 0)
  const stoppedAt = Date.now()
  const exit = await r.sandbox.stop(200)
  t.true(Date.now() - stoppedAt < 5000)
  t.true(exit.usage.cpuNanos >= live.cpuNanos, `final ${exit.usage.cpuNanos} ns`)
  t.is(exit.exitCode, 137, 'pid 1 ignores SIGTERM, so it was killed after the grace period')
  t.is(exit.reason, 'Error')
})

sandboxTest('a command that is not in the root is a StartError, and nothing is left behind', async (t, layout) => {
  const fs = rootfs(t)
  const r = await sh(t, layout, fs, '', { argv: ['no-such-command'] })
  t.is(r.exit.reason, 'StartError')
  t.regex(r.exit.message ?? '', /no-such-command: executable file not found/)
})

sandboxTest('a mount point through a symbolic link in the root is refused before anything starts', async (t, layout) => {
  const fs = rootfs(t)
  const { symlinkSync } = await import('node:fs')
  symlinkSync(fs.base, join(fs.root, 'escape'))
  const vol = join(fs.base, 'vol')
  mkdirSync(vol)
  await t.throwsAsync(run(t, layout, fs, { argv: ['true'], mounts: [{ hostPath: vol, containerPath: '/escape/x', readOnly: false }] }), { name: 'RootfsPathError' })
  t.false(existsSync(join(fs.base, 'x')), 'nothing was created outside the root')
})

sandboxTest('a cgroup gets its limits written, takes a process, and is removed', async (t, layout) => {
  const name = `ntest-${randomBytes(4).toString('hex')}`
  const cg = await Cgroup.create(layout, name, { memoryBytes: 48 * 1024 * 1024, cpuLimitMillis: 250, cpuRequestMillis: 500, pids: 33 })
  t.teardown(async () => { await cg.killAll(systemClock); await cg.remove(systemClock) })
  const read = (controller: 'memory' | 'cpu' | 'pids', file: string): string => readFileSync(join(cg.dir(controller), file), 'utf8').trim()
  if (layout.version === 1) {
    t.is(read('memory', 'memory.limit_in_bytes'), String(48 * 1024 * 1024))
    t.is(read('cpu', 'cpu.cfs_quota_us'), '25000')
    t.is(read('cpu', 'cpu.cfs_period_us'), '100000')
    t.is(read('cpu', 'cpu.shares'), '512')
  } else {
    t.is(read('memory', 'memory.max'), String(48 * 1024 * 1024))
    t.is(read('cpu', 'cpu.max'), '25000 100000')
    t.is(read('cpu', 'cpu.weight'), '20')
  }
  t.is(read('pids', 'pids.max'), '33')
  const { spawn } = await import('node:child_process')
  const child = spawn('/usr/bin/busybox', ['sleep', '10'], { stdio: 'ignore' })
  t.teardown(() => { child.kill('SIGKILL') })
  await cg.addProcess(child.pid as number)
  t.deepEqual(await cg.processes(), [child.pid])
  t.deepEqual(await cg.oomEvents().then(e => e.oomKills ?? 0), 0)
  await t.throwsAsync(cg.remove(undefined), { name: 'CgroupError' }, 'a cgroup with a process in it is busy')
  t.true(await cg.killAll(systemClock))
  await cg.remove(systemClock)
  t.false(cg.exists())
})
