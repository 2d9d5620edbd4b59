// A minimal root filesystem for the native sandbox's tests: the host's
// statically linked busybox as /bin/busybox, a link per applet the tests
// use, and empty /etc, /proc, /tmp and /dev. Everything lives in a fresh
// temporary directory, `base`; the root is base/root, so that a file put in
// base (a marker) is outside it. cleanup() unmounts nothing (the sandbox's
// mounts are in its own namespace) and removes the directory.
import { execFileSync } from 'node:child_process'
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, symlinkSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

export const ROOTFS_APPLETS = [
  'sh', 'id', 'hostname', 'cat', 'ls', 'sleep', 'echo', 'dd', 'head', 'tail', 'seq', 'mkdir', 'touch',
  'env', 'pwd', 'grep', 'wc', 'stat', 'true', 'false', 'yes', 'tr', 'mount', 'chroot', 'ps', 'test'
]

export interface TestRootfs {
  base: string
  root: string
  cleanup: () => void
}

export function makeRootfs (busybox = '/usr/bin/busybox'): TestRootfs {
  const base = mkdtempSync(join(tmpdir(), 'shoal-native-'))
  const root = join(base, 'root')
  for (const d of ['bin', 'etc', 'proc', 'tmp', 'dev']) mkdirSync(join(root, d), { recursive: true, mode: 0o755 })
  copyFileSync(busybox, join(root, 'bin', 'busybox'))
  execFileSync('chmod', ['0755', join(root, 'bin', 'busybox')])
  for (const a of ROOTFS_APPLETS) symlinkSync('busybox', join(root, 'bin', a))
  return { base, root, cleanup: () => { rmSync(base, { recursive: true, force: true }) } }
}
