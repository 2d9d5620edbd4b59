// The native runtime's pure pieces: the kubelet's CPU conversions, reading
// cgroup v1 mounts from mountinfo, detecting v2 from a directory, keyed
// cgroup files, the setup script's argument layout, container paths, and
// the ELF check that tells a static busybox from a dynamic one.
import test from 'ava'
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { cpuQuotaUs, cpuShares, cpuWeight, describeCgroups, detectCgroups, isCgroupName, keyedValue, v1Mounts } from '../../daemon/kubelet/native/cgroups.ts'
import { containerPathParts, ensureInRoot } from '../../daemon/kubelet/native/rootfs.ts'
import { elfInterpreter } from '../../daemon/kubelet/native/sandbox.ts'
import { setupArgv } from '../../daemon/kubelet/native/setup-script.ts'

function tempDir (t: { teardown: (fn: () => void) => void }): string {
  const dir = mkdtempSync(join(tmpdir(), 'shoal-native-unit-'))
  t.teardown(() => { rmSync(dir, { recursive: true, force: true }) })
  return dir
}

test('CPU quota, shares and weight follow the kubelet', t => {
  t.is(cpuQuotaUs(500), 50_000)
  t.is(cpuQuotaUs(2000), 200_000)
  t.is(cpuQuotaUs(1), 1000, 'at least 1 ms per period')
  t.is(cpuShares(1000), 1024)
  t.is(cpuShares(250), 256)
  t.is(cpuShares(1), 2, 'at least 2')
  t.is(cpuShares(0), 2)
  t.is(cpuShares(1_000_000), 262_144, 'at most 262144')
  t.is(cpuWeight(2), 1)
  t.is(cpuWeight(1024), 39)
  t.is(cpuWeight(262_144), 10_000)
})

test('v1 controller mounts are read from mountinfo, co-mounted ones included', t => {
  const mountinfo = [
    '25 21 0:22 / /sys/fs/cgroup ro,nosuid - tmpfs tmpfs ro,mode=755',
    '28 25 0:25 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid - cgroup cgroup rw,cpu,cpuacct',
    '29 25 0:26 / /sys/fs/cgroup/memory rw,nosuid - cgroup cgroup rw,memory',
    '30 25 0:27 / /sys/fs/cgroup/pids rw,nosuid - cgroup cgroup rw,pids',
    '31 25 0:28 / /sys/fs/cgroup/unified rw,nosuid - cgroup2 cgroup2 rw',
    '32 25 0:29 / /mnt/with\\040space rw - cgroup cgroup rw,cpuset'
  ].join('\n')
  t.deepEqual(v1Mounts(mountinfo), {
    cpu: '/sys/fs/cgroup/cpu,cpuacct',
    cpuacct: '/sys/fs/cgroup/cpu,cpuacct',
    memory: '/sys/fs/cgroup/memory',
    pids: '/sys/fs/cgroup/pids'
  })
  const layout = detectCgroups({ root: '/nonexistent', mountinfo })
  t.is(layout.version, 1)
  t.regex(describeCgroups(layout), /^cgroup v1 \(memory at \/sys\/fs\/cgroup\/memory/)
  t.throws(() => detectCgroups({ root: '/nonexistent', mountinfo: mountinfo.split('\n').slice(0, 2).join('\n') }), { message: /no memory, pids controller mounted/ })
})

test('v2 is detected by cgroup.controllers, and must offer memory, cpu and pids', t => {
  const dir = tempDir(t)
  writeFileSync(join(dir, 'cgroup.controllers'), 'cpuset cpu io memory hugetlb pids rdma misc\n')
  t.deepEqual(detectCgroups({ root: dir }), { version: 2, root: dir })
  t.regex(describeCgroups({ version: 2, root: dir }), /^cgroup v2 at /)
  writeFileSync(join(dir, 'cgroup.controllers'), 'cpuset io\n')
  t.throws(() => detectCgroups({ root: dir }), { message: /lacks the memory, cpu, pids controller/ })
})

test('keyed cgroup files and cgroup names', t => {
  t.is(keyedValue('oom_kill_disable 0\nunder_oom 0\noom_kill 3\n', 'oom_kill'), 3)
  t.is(keyedValue('low 0\nhigh 0\nmax 12\noom 2\noom_kill 1\n', 'oom_kill'), 1)
  t.is(keyedValue('usage_usec 4500\nuser_usec 3000\n', 'usage_usec'), 4500)
  t.is(keyedValue('oom_kill_disable 0\n', 'oom_kill'), undefined)
  t.true(isCgroupName('pod-1.c_2'))
  for (const bad of ['', '.', '..', 'a/b', '-x', 'x'.repeat(129)]) t.false(isCgroupName(bad), bad)
})

test('the setup script gets every value as its own argument, in the order it shifts them', t => {
  t.deepEqual(setupArgv({
    root: '/r', hostname: 'p', uid: 1, gid: 2, workingDir: '/w', path: '/bin',
    mounts: [{ hostPath: '/h', containerPath: '/c', readOnly: true, kind: 'dir' }],
    env: { A: 'x y', B: '$(z)' },
    argv: ['sh', '-c', 'echo; rm -rf /']
  }), ['/r', 'p', '1', '2', '/w', '/bin', '', '1', '/h', '/c', 'ro', 'dir', 'sh', '2', 'A=x y', 'B=$(z)', '-c', 'echo; rm -rf /'])
  t.is(setupArgv({ root: '/r', hostname: 'p', uid: 1, gid: 2, workingDir: '/', path: '', dev: '/d', mounts: [], env: {}, argv: ['x'] })[6], '/d')
  t.throws(() => setupArgv({ root: '/r', hostname: 'p', uid: 0, gid: 0, workingDir: '/', path: '', mounts: [], env: {}, argv: [] }))
})

test('container paths are absolute and stay inside the root', async t => {
  t.deepEqual(containerPathParts('/a//b/./c/'), ['a', 'b', 'c'])
  t.is(typeof containerPathParts('a/b'), 'string')
  t.is(typeof containerPathParts('/a/../b'), 'string')
  t.is(typeof containerPathParts('/'), 'string')
  const root = tempDir(t)
  t.is(await ensureInRoot(root, '/x/y'), join(root, 'x', 'y'))
  t.is(await ensureInRoot(root, '/x/y/file', 'file'), join(root, 'x', 'y', 'file'))
  t.is(readFileSync(join(root, 'x', 'y', 'file'), 'utf8'), '')
  mkdirSync(join(root, 'outside-target'))
  symlinkSync('/tmp', join(root, 'link'))
  await t.throwsAsync(ensureInRoot(root, '/link/z'), { name: 'RootfsPathError', message: /symbolic link/ })
  await t.throwsAsync(ensureInRoot(root, '/x/y/file/z'), { name: 'RootfsPathError', message: /not a directory/ })
})

test('the ELF check finds a dynamic executable\'s interpreter, and refuses what is not ELF', t => {
  const dir = tempDir(t)
  writeFileSync(join(dir, 'script'), '#!/bin/sh\n')
  t.is(elfInterpreter(join(dir, 'script')), undefined)
  t.is(elfInterpreter(join(dir, 'missing')), undefined)
  const interp = elfInterpreter('/bin/ls')
  t.true(typeof interp === 'string' && interp.startsWith('/'), `ls is dynamic: ${String(interp)}`)
})
