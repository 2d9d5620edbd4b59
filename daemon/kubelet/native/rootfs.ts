// Owns each container's root filesystem on the host: made from its image's
// layers, unpacked once per image (ImagePuller.rootOf), as an overlay mount
// (that directory the read-only lower layer, a fresh upper one per
// container attempt) where the kernel allows, a copy of it otherwise; and
// removed with whatever is mounted there. The overlay is mounted in the
// host's namespace (the sandbox's namespace gets its own copy of the mount
// when it is made), so that a restarted shoald finds it; removeRoot
// unmounts it, and a root no record names is removed at start.
// It also prepares paths inside a root from the host, before the container
// starts: the mount points (proc, tmp, dev, each
// volume's containerPath) and the working directory are created here, and
// no component of them may be a symbolic link. A link planted in the root
// (an image's, or a previous container's that shared the root) would
// otherwise make the host-side mkdir, or the bind mount that the setup
// script makes before pivoting into the root, act on a host path outside it.
// The mount, umount and cp run through an AppletRunner (host-shell.ts).
// May import: nothing outside this folder.
import { constants } from 'node:fs'
import { lstat, mkdir, open, readFile, realpath, rm, unlink, writeFile } from 'node:fs/promises'
import { basename, dirname, isAbsolute, join, posix } from 'node:path'
import type { AppletRunner } from './host-shell.ts'

export class RootfsPathError extends Error {
  override name = 'RootfsPathError'
}

/** `path` (absolute, as the container sees it) as its components, or an error message. */
export function containerPathParts (path: string): string[] | string {
  if (!isAbsolute(path) || path.includes('\0')) return `${JSON.stringify(path)} is not an absolute path`
  const parts = path.split('/').filter(p => p !== '' && p !== '.')
  if (parts.includes('..')) return `${JSON.stringify(path)} has a '..' in it`
  if (posix.normalize(path) === '/' || parts.length === 0) return `${JSON.stringify(path)} is the root itself`
  return parts
}

/**
 * Makes `path` exist inside `root` as a directory (or, with kind 'file', an
 * empty file where nothing is yet), creating what is missing owned by the
 * caller, and returns its host path. Throws RootfsPathError when a component
 * is a symbolic link, or is not a directory where one is needed.
 */
export async function ensureInRoot (root: string, path: string, kind: 'dir' | 'file' = 'dir'): Promise<string> {
  const parts = containerPathParts(path)
  if (typeof parts === 'string') throw new RootfsPathError(parts)
  let host = root
  for (const [i, part] of parts.entries()) {
    host = join(host, part)
    const last = i === parts.length - 1
    let st
    try {
      st = await lstat(host)
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err
      if (last && kind === 'file') await writeFile(host, '', { flag: 'wx', mode: 0o644 })
      else await mkdir(host, { mode: 0o755 })
      continue
    }
    if (st.isSymbolicLink()) throw new RootfsPathError(`${path} in the root filesystem goes through a symbolic link (${host}); mount points may not`)
    if (!last && !st.isDirectory()) throw new RootfsPathError(`${path} in the root filesystem: ${host} is not a directory`)
    if (last && kind === 'dir' && !st.isDirectory()) throw new RootfsPathError(`${path} in the root filesystem is not a directory`)
  }
  return host
}

export type RootMode = 'overlay' | 'copy'

/** The directory under a container's own directory that is its root. */
export function rootIn (dir: string): string { return join(dir, 'rootfs') }

/**
 * Makes `dir` (which must not exist) a container's directory, with its root
 * at rootIn(dir): an overlay of `image` (lower, never written) with
 * `dir/upper` and `dir/work`, or a copy of `image`. Returns the root.
 * Throws when the mount or the copy fails, leaving `dir` for removeRoot.
 */
export async function makeRoot (image: string, dir: string, mode: RootMode, run: AppletRunner): Promise<string> {
  await mkdir(dir, { mode: 0o700 })
  const root = rootIn(dir)
  if (mode === 'copy') {
    // busybox cp -a: links copied as links, never followed; owners, modes and times kept
    await run('cp', '-a', image, root)
    return root
  }
  // The option string separates with ',' and ':': a path with either (or a backslash) cannot be named in it.
  for (const p of [image, dir]) if (/[,:\\\s]/.test(p)) throw new Error(`${p} has a character an overlay mount's options cannot hold`)
  await mkdir(join(dir, 'upper'), { mode: 0o755 })
  await mkdir(join(dir, 'work'), { mode: 0o700 })
  await mkdir(root, { mode: 0o755 })
  await run('mount', '-t', 'overlay', 'overlay', '-o', `lowerdir=${image},upperdir=${join(dir, 'upper')},workdir=${join(dir, 'work')}`, root)
  return root
}

/**
 * Unmounts whatever is mounted under `dir` (its root's overlay, volumes
 * still staged), lazily and deepest first (freed once no process holds
 * them), then removes `dir`.
 */
export async function removeRoot (dir: string, run: AppletRunner): Promise<void> {
  for (const point of await mountsUnder(dir)) await run('umount', '-l', point).catch(() => {})
  // A root still mounted is not followed into the image by rm: writes through an overlay reach only its upper layer.
  await rm(dir, { recursive: true, force: true })
}

/** The mount points strictly under `dir` in this process's namespace, deepest first; none when `dir` is a symbolic link. */
export async function mountsUnder (dir: string): Promise<string[]> {
  if ((await lstat(dir).catch(() => undefined))?.isDirectory() !== true) return []
  const parent = await realpath(dirname(dir)).catch(() => undefined)
  if (parent === undefined) return []
  const base = join(parent, basename(dir)) + '/'
  const info = await readFile('/proc/self/mountinfo', 'utf8').catch(() => '')
  const points = info.split('\n').map(line => line.split(' ')[4]).filter((p): p is string => p !== undefined).map(unescapeMountPath)
  return [...new Set(points.filter(p => p.startsWith(base)))].sort((a, b) => b.length - a.length)
}

/** mountinfo writes space, tab, newline and backslash as octal escapes. */
function unescapeMountPath (p: string): string {
  return p.replace(/\\([0-7]{3})/g, (_, oct: string) => String.fromCharCode(parseInt(oct, 8)))
}

/**
 * Writes `content` at `path` (absolute, in the container) inside `root`,
 * replacing a file or a symbolic link that is there (an image's
 * /etc/resolv.conf is often a link to a host path), never following one:
 * the directories must be real (ensureInRoot) and the file is opened with
 * O_NOFOLLOW. Only for a container's own root (an overlay's upper layer or
 * its copy); a directory in the way is left alone and reported.
 */
export async function writeInRoot (root: string, path: string, content: string): Promise<void> {
  const parts = containerPathParts(path)
  if (typeof parts === 'string') throw new RootfsPathError(parts)
  const dir = parts.length > 1 ? await ensureInRoot(root, '/' + parts.slice(0, -1).join('/')) : root
  const file = join(dir, parts[parts.length - 1] as string)
  const st = await lstat(file).catch(() => undefined)
  if (st?.isDirectory() === true) throw new RootfsPathError(`${path} in the root filesystem is a directory`)
  if (st?.isSymbolicLink() === true) await unlink(file)
  const fh = await open(file, constants.O_WRONLY | constants.O_CREAT | constants.O_TRUNC | constants.O_NOFOLLOW, 0o644)
  try {
    await fh.writeFile(content)
    await fh.chmod(0o644)
  } finally {
    await fh.close()
  }
}
