// Owns preparing paths inside a container's root filesystem from the host,
// before the container starts: the mount points (proc, tmp, dev, each
// volume's containerPath) and the working directory are created here, and
// no component of them may be a symbolic link. A link planted in the root
// (an image's, or a previous container's that shared the root) would
// otherwise make the host-side mkdir, or the bind mount that the setup
// script makes before pivoting into the root, act on a host path outside it.
// May import: nothing outside this folder.
import { lstat, mkdir, writeFile } from 'node:fs/promises'
import { isAbsolute, join, posix } from 'node:path'

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
