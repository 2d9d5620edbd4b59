// A pod's volumes as host directories, and its containers' mounts of them.
// emptyDir: <dataDir>/pods/<uid>/volumes/<name> (it goes with the sandbox).
// configMap / secret / downwardAPI / projected: the same place, laid out as
// Kubernetes' atomic writer does it: the files (a Secret's data decoded from base64, with defaultMode
// or the item's mode) go into a fresh directory `..<timestamp>.<random>`,
// a `..data_tmp` link to it is renamed over `..data`, and each key (or the
// first element of each items[].path) is a link `key -> ..data/key`, made
// once. A refresh so swaps every file at once, and the kubelet never
// writes through a path the pod could have changed: it writes only into a
// directory it has just made, with O_EXCL|O_NOFOLLOW; it checks with lstat
// that the volume directory and the ones above it are real directories;
// and in the volume it only makes links and unlinks names (an unlink never
// follows a link), leaving alone any directory at a key's name that it did
// not make. A ConfigMap or Secret deleted later leaves the files as they
// are. hostPath: the path itself (created for DirectoryOrCreate). Given an
// allowlist (the native runtime's --allow-host-path), a container may mount a
// hostPath only under one of its directories, symbolic links resolved and no
// `..` in the path, else it waits with CreateContainerConfigError; nothing is
// created outside them. A runtime
// turns each Mount into what it can: the process runtime links it into the
// container's working directory; Docker binds it, read-only for configMap
// and secret volumes. (The process runtime runs pods as the daemon's user,
// so it isolates nothing; these rules keep the kubelet from being the one
// that writes outside a volume.)
// May import: protocol/, daemon/store/types.ts, daemon/clock, ./runtime.ts.
import { CONFIG_MAP, NODE, SECRET } from '../../protocol/kinds.ts'
import { createHash } from 'node:crypto'
import { constants } from 'node:fs'
import { chmod, lstat, mkdir, mkdtemp, open, readdir, readlink, realpath, rename, rm, symlink, unlink } from 'node:fs/promises'
import { basename, dirname, join, normalize, relative } from 'node:path'
import type { Container, DownwardAPIVolumeFile, KeyToPath, Pod, Volume } from '../../protocol/core-v1.ts'
import { bytesOf, cpuMillis } from '../../protocol/quantity.ts'
import { isUid } from '../../protocol/validation.ts'
import type { Clock } from '../clock/clock.ts'
import type { StoreReader } from '../store/types.ts'
import type { Mount } from './runtime.ts'

/** A configMap or secret volume's source, whichever it is. */
interface Projection { items?: KeyToPath[], defaultMode?: number, optional?: boolean }

/** One file of a projected volume, by its path inside the volume. */
type Payload = Map<string, { content: Buffer, mode: number }>

export class VolumeError extends Error {
  override name = 'VolumeError'
}

/** The path with its symbolic links resolved; for a path not there (yet), its nearest existing ancestor's, with the rest appended. */
async function resolveHostPath (path: string): Promise<string> {
  const rest: string[] = []
  for (let at = path; ; at = dirname(at)) {
    try {
      return join(await realpath(at), ...rest)
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT' || at === '/') throw err
      rest.unshift(basename(at))
    }
  }
}

/**
 * Why hostPath `path` may not be used under `allowed` (the --allow-host-path
 * directories), in one line; undefined when it may: it has no `..` element,
 * and with symbolic links resolved it is one of them or lies under one.
 */
export async function hostPathRefusal (path: string, allowed: readonly string[]): Promise<string | undefined> {
  const flag = `--allow-host-path (${allowed.length === 0 ? 'none is allowed' : `allowed: ${allowed.join(', ')}`})`
  if (!path.startsWith('/') || path.split('/').includes('..')) return `hostPath "${path}" must be an absolute path without "..", under a directory given with ${flag}`
  let real: string
  try {
    real = await resolveHostPath(path)
  } catch (err) {
    return `hostPath "${path}" cannot be resolved (${(err as NodeJS.ErrnoException).code ?? (err as Error).message}); it must lie under a directory given with ${flag}`
  }
  for (const dir of allowed) {
    const base = await realpath(dir).catch(() => undefined)
    if (base === undefined) continue
    if (real === base || real.startsWith(base === '/' ? '/' : `${base}/`)) return undefined
  }
  return `hostPath "${path}"${real !== path ? ` (${real})` : ''} is not under a directory given with ${flag}`
}

const DATA = '..data'
const DATA_TMP = '..data_tmp'
/** `..2026_12_03_09_12_47.Ab3xYz`, as mkdtemp finishes the prefix made by timestampDir. */
const TIMESTAMP_DIR = /^\.\.\d{4}_\d\d_\d\d_\d\d_\d\d_\d\d\.[A-Za-z0-9]{6}$/

/** A relative path that stays inside its directory. */
function inside (path: string, what: string): string {
  const p = normalize(path)
  if (p.startsWith('/') || p === '..' || p.startsWith('../')) throw new VolumeError(`${what} "${path}" must be a relative path inside the volume`)
  return p
}

/** A path of a projected volume's payload: inside it, and no element starting with `..` (the writer's own names). */
function payloadPath (path: string, what: string): string {
  const p = inside(path, what)
  if (p === '.' || p.split('/').some(part => part.startsWith('..'))) throw new VolumeError(`${what} "${path}" must not be '.' or have an element starting with '..'`)
  return p
}

function isMissing (err: unknown): boolean {
  return (err as NodeJS.ErrnoException).code === 'ENOENT'
}

async function lstatOrUndefined (path: string): Promise<Awaited<ReturnType<typeof lstat>> | undefined> {
  try { return await lstat(path) } catch (err) { if (isMissing(err)) return undefined; throw err }
}

function timestampDir (ms: number): string {
  const d = new Date(ms)
  const two = (n: number): string => String(n).padStart(2, '0')
  return `..${d.getUTCFullYear()}_${two(d.getUTCMonth() + 1)}_${two(d.getUTCDate())}_${two(d.getUTCHours())}_${two(d.getUTCMinutes())}_${two(d.getUTCSeconds())}.`
}

/** What a payload holds, for telling whether a refresh has anything to write. */
function digestOf (payload: Payload): string {
  const hash = createHash('sha256')
  for (const [path, f] of [...payload].sort(([a], [b]) => a < b ? -1 : a > b ? 1 : 0)) {
    hash.update(`${path}\0${f.mode}\0${f.content.length}\0`).update(f.content)
  }
  return hash.digest('hex')
}

/** Writes a new file, never through a link or over anything that is there. */
async function createFile (path: string, content: Buffer, mode: number): Promise<void> {
  const fh = await open(path, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, mode)
  try {
    await fh.writeFile(content)
    await fh.chmod(mode) // the umask took bits from the mode open used
  } finally {
    await fh.close()
  }
}

export class Volumes {
  private readonly store: StoreReader
  private readonly dataDir: string
  private readonly clock: Pick<Clock, 'now'>
  /** by projected volume directory: the payload's digest and the timestamped directory that holds it */
  private readonly written = new Map<string, { digest: string, dir: string }>()
  /** configMap and secret volume directories, which containers mount read-only */
  private readonly projected = new Set<string>()
  /** the only directories hostPath volumes may come from; undefined: any */
  private readonly allowHostPaths: readonly string[] | undefined

  constructor (store: StoreReader, dataDir: string, clock: Pick<Clock, 'now'>, allowHostPaths?: readonly string[]) {
    this.store = store
    this.dataDir = dataDir
    this.clock = clock
    this.allowHostPaths = allowHostPaths
  }

  /** The host directory of each of the pod's volumes, set up or refreshed; throws VolumeError when one cannot be. */
  async setUp (pod: Pod): Promise<Map<string, string>> {
    const uid = pod.metadata.uid ?? ''
    const namespace = pod.metadata.namespace ?? 'default'
    const paths = new Map<string, string>()
    for (const v of pod.spec?.volumes ?? []) {
      const name = inside(v.name, 'volume name')
      const dir = join(this.dataDir, 'pods', uid, 'volumes', name)
      if (v.hostPath !== undefined) {
        const path = v.hostPath.path
        if (!path.startsWith('/')) throw new VolumeError(`hostPath "${path}" of volume "${v.name}" is not absolute`)
        // A refused path is not made; checkHostPaths says why when a container mounts it.
        const refused = this.allowHostPaths !== undefined && await hostPathRefusal(path, this.allowHostPaths) !== undefined
        if (v.hostPath.type === 'DirectoryOrCreate' && !refused) await mkdir(path, { recursive: true })
        paths.set(v.name, path)
      } else if (v.emptyDir !== undefined) {
        await this.realDir(uid, name)
        paths.set(v.name, dir)
      } else if (v.configMap !== undefined || v.secret !== undefined || v.downwardAPI !== undefined || v.projected !== undefined) {
        const payload = this.payloadOf(v, pod, namespace)
        await this.writeAtomically(await this.realDir(uid, name), payload)
        this.projected.add(dir)
        paths.set(v.name, dir)
      } else {
        const kind = Object.keys(v).find(k => k !== 'name') ?? 'none'
        throw new VolumeError(`volume "${v.name}": type ${kind} is not supported by this kubelet`)
      }
    }
    return paths
  }

  /**
   * <dataDir>/pods/<uid>/volumes/<name>, made where missing, with every
   * directory from <dataDir>/pods down checked to be a real one and not a
   * link a pod put in its place.
   */
  private async realDir (uid: string, name: string): Promise<string> {
    let path = join(this.dataDir, 'pods')
    await mkdir(path, { recursive: true })
    if (!isUid(uid)) throw new VolumeError(`${JSON.stringify(uid)} is not a pod uid`)
    for (const part of [uid, 'volumes', name]) {
      if (part === '' || part.includes('/') || part === '.' || part === '..') throw new VolumeError(`"${part}" cannot name a volume directory`)
      path = join(path, part)
      let st = await lstatOrUndefined(path)
      if (st === undefined) {
        try { await mkdir(path) } catch (err) { if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err }
        st = await lstat(path)
      }
      if (!st.isDirectory()) throw new VolumeError(`${path} is not a directory the kubelet made; it will not write there`)
    }
    return path
  }

  /** Lays out a configMap or secret volume's files, or refreshes them. */
  /** The files of a configMap, secret, downwardAPI or projected volume (none for an optional object that is missing). */
  private payloadOf (v: Volume, pod: Pod, namespace: string): Payload {
    if (v.configMap !== undefined) return this.keysPayload(v.name, false, v.configMap.name ?? '', v.configMap, namespace, v.configMap.defaultMode ?? 0o644)
    if (v.secret !== undefined) return this.keysPayload(v.name, true, v.secret.secretName ?? '', v.secret, namespace, v.secret.defaultMode ?? 0o644)
    if (v.downwardAPI !== undefined) return this.downwardPayload(v.name, v.downwardAPI.items ?? [], pod, v.downwardAPI.defaultMode ?? 0o644)
    const mode = v.projected?.defaultMode ?? 0o644
    const payload: Payload = new Map()
    for (const source of v.projected?.sources ?? []) {
      let part: Payload = new Map()
      if (source.configMap !== undefined) part = this.keysPayload(v.name, false, source.configMap.name ?? '', source.configMap, namespace, mode)
      else if (source.secret !== undefined) part = this.keysPayload(v.name, true, source.secret.name ?? '', source.secret, namespace, mode)
      else if (source.downwardAPI !== undefined) part = this.downwardPayload(v.name, source.downwardAPI.items ?? [], pod, mode)
      else throw new VolumeError(`volume "${v.name}": a projection of this kind is not supported by this kubelet`)
      for (const [path, file] of part) payload.set(path, file)
    }
    return payload
  }

  /** A ConfigMap's or Secret's keys (or the items named) as files; a missing object or key is an error unless optional. */
  private keysPayload (volume: string, secret: boolean, objName: string, src: Projection, namespace: string, defaultMode: number): Payload {
    const obj = secret ? this.store.get(SECRET, namespace, objName) : this.store.get(CONFIG_MAP, namespace, objName)
    const what = secret ? 'secret' : 'configmap'
    const payload: Payload = new Map()
    if (obj === undefined) {
      if (src.optional !== true) throw new VolumeError(`MountVolume.SetUp failed for volume "${volume}" : ${what} "${objName}" not found`)
      return payload
    }
    const data = new Map<string, Buffer>()
    for (const [k, val] of Object.entries(obj.data ?? {})) data.set(k, Buffer.from(val, secret ? 'base64' : 'utf8'))
    if (obj.kind === 'Secret') for (const [k, val] of Object.entries(obj.stringData ?? {})) data.set(k, Buffer.from(val, 'utf8'))
    else for (const [k, val] of Object.entries(obj.binaryData ?? {})) data.set(k, typeof val === 'string' ? Buffer.from(val, 'base64') : Buffer.from(val))
    const mode = defaultMode & 0o777
    if (src.items !== undefined && src.items.length > 0) {
      for (const item of src.items) {
        const content = data.get(item.key)
        if (content === undefined) {
          if (src.optional === true) continue
          throw new VolumeError(`MountVolume.SetUp failed for volume "${volume}" : ${what} references non-existent ${secret ? 'secret' : 'config'} key: ${item.key}`)
        }
        payload.set(payloadPath(item.path, 'item path'), { content, mode: (item.mode ?? mode) & 0o777 })
      }
    } else {
      for (const [k, content] of data) payload.set(payloadPath(k, 'key'), { content, mode })
    }
    return payload
  }

  /**
   * The downward API's files: a field of the pod (its name, namespace, uid,
   * labels or annotations, all of them as `key="value"` lines sorted by
   * key, or one), or a container's resource (a limit that is not set is
   * the node's allocatable amount, a request that is not set its limit, as
   * Kubernetes has them), divided by the divisor and rounded up.
   */
  private downwardPayload (volume: string, items: DownwardAPIVolumeFile[], pod: Pod, defaultMode: number): Payload {
    const payload: Payload = new Map()
    const meta = pod.metadata
    for (const item of items) {
      let value: string
      if (item.fieldRef !== undefined) {
        const path = item.fieldRef.fieldPath
        const one = /^metadata\.(labels|annotations)\['(.*)'\]$/.exec(path)
        if (one !== null) value = (one[1] === 'labels' ? meta.labels : meta.annotations)?.[one[2] as string] ?? ''
        else if (path === 'metadata.labels' || path === 'metadata.annotations') {
          const map = (path === 'metadata.labels' ? meta.labels : meta.annotations) ?? {}
          value = Object.keys(map).sort().map(k => `${k}=${JSON.stringify(map[k])}`).join('\n')
        } else if (path === 'metadata.name') value = meta.name ?? ''
        else if (path === 'metadata.namespace') value = meta.namespace ?? ''
        else if (path === 'metadata.uid') value = meta.uid ?? ''
        else throw new VolumeError(`MountVolume.SetUp failed for volume "${volume}" : unsupported fieldPath ${path}`)
      } else if (item.resourceFieldRef !== undefined) {
        value = this.resourceValue(volume, pod, item.resourceFieldRef)
      } else {
        throw new VolumeError(`MountVolume.SetUp failed for volume "${volume}" : item ${item.path} has neither fieldRef nor resourceFieldRef`)
      }
      payload.set(payloadPath(item.path, 'item path'), { content: Buffer.from(value, 'utf8'), mode: (item.mode ?? defaultMode) & 0o777 })
    }
    return payload
  }

  private resourceValue (volume: string, pod: Pod, ref: NonNullable<DownwardAPIVolumeFile['resourceFieldRef']>): string {
    const containers = [...(pod.spec?.containers ?? []), ...(pod.spec?.initContainers ?? [])]
    const c = ref.containerName !== undefined && ref.containerName !== '' ? containers.find(x => x.name === ref.containerName) : pod.spec?.containers?.[0]
    if (c === undefined) throw new VolumeError(`MountVolume.SetUp failed for volume "${volume}" : no container "${ref.containerName ?? ''}" for resourceFieldRef ${ref.resource}`)
    const [kind, resource] = ref.resource.split('.') as [string, string]
    const node = this.store.get(NODE, '', pod.spec?.nodeName ?? '')
    const limit = c.resources?.limits?.[resource] ?? node?.status?.allocatable?.[resource]
    const amount = kind === 'limits' ? limit : c.resources?.requests?.[resource] ?? c.resources?.limits?.[resource]
    if (resource === 'cpu') return String(Math.ceil(cpuMillis(amount ?? 0) / cpuMillis(ref.divisor ?? '1')))
    return String(Math.ceil(bytesOf(amount ?? 0) / bytesOf(ref.divisor ?? '1')))
  }

  /** Kubernetes' AtomicWriter: a new timestamped directory, `..data` swapped to it, a link per top-level name. */
  private async writeAtomically (dir: string, payload: Payload): Promise<void> {
    const digest = digestOf(payload)
    const current = await this.currentDataDir(dir)
    const known = this.written.get(dir)
    let dataDir = current
    if (current === undefined || known === undefined || known.digest !== digest || known.dir !== current) {
      dataDir = await this.writeDataDir(dir, payload)
      await this.swapData(dir, dataDir)
      this.written.set(dir, { digest, dir: dataDir })
    }
    const names = new Set([...payload.keys()].map(p => p.split('/')[0] as string))
    await this.linkNames(dir, names)
    // Names that went away, and the old timestamped directories, go.
    for (const entry of await readdir(dir)) {
      const path = join(dir, entry)
      if (entry.startsWith('..')) {
        if (entry !== dataDir && TIMESTAMP_DIR.test(entry) && (await lstatOrUndefined(path))?.isDirectory() === true) await rm(path, { recursive: true, force: true })
      } else if (!names.has(entry) && await this.isOurLink(path, entry)) {
        await unlink(path)
      }
    }
  }

  /** The timestamped directory `..data` points at, if it is one the kubelet made. */
  private async currentDataDir (dir: string): Promise<string | undefined> {
    const st = await lstatOrUndefined(join(dir, DATA))
    if (st === undefined || !st.isSymbolicLink()) return undefined
    const target = await readlink(join(dir, DATA))
    if (!TIMESTAMP_DIR.test(target)) return undefined
    return (await lstatOrUndefined(join(dir, target)))?.isDirectory() === true ? target : undefined
  }

  /** Writes the payload into a directory made now; returns its name. */
  private async writeDataDir (dir: string, payload: Payload): Promise<string> {
    const made = await mkdtemp(join(dir, timestampDir(this.clock.now())))
    await chmod(made, 0o755)
    const dirs = new Set<string>()
    for (const [path, f] of payload) {
      // Parent directories inside the new directory, each made here (mkdir fails on anything there already).
      const parts = path.split('/')
      for (let i = 1; i < parts.length; i++) {
        const sub = parts.slice(0, i).join('/')
        if (dirs.has(sub)) continue
        await mkdir(join(made, sub), { mode: 0o755 })
        dirs.add(sub)
      }
      await createFile(join(made, path), f.content, f.mode)
    }
    return basename(made)
  }

  /** Points `..data` at `target` in one rename, never following what is at either name. */
  private async swapData (dir: string, target: string): Promise<void> {
    const tmp = join(dir, DATA_TMP)
    const stale = await lstatOrUndefined(tmp)
    if (stale !== undefined) {
      if (stale.isDirectory()) throw new VolumeError(`${tmp} is a directory the kubelet did not make; it will not refresh the volume`)
      await unlink(tmp)
    }
    await symlink(target, tmp)
    try {
      await rename(tmp, join(dir, DATA))
    } catch (err) {
      await unlink(tmp).catch(() => undefined)
      throw new VolumeError(`cannot point ${join(dir, DATA)} at the new files (${(err as NodeJS.ErrnoException).code ?? (err as Error).message}); it is not the kubelet's link`)
    }
  }

  /** Whether `path` is the link `name -> ..data/name` the kubelet makes. */
  private async isOurLink (path: string, name: string): Promise<boolean> {
    const st = await lstatOrUndefined(path)
    return st !== undefined && st.isSymbolicLink() && await readlink(path) === join(DATA, name)
  }

  /**
   * Makes `name -> ..data/name` for each name. Anything else at a name (a
   * link or file a pod put there) is unlinked first, which never follows
   * it; a directory there is left alone.
   */
  private async linkNames (dir: string, names: Set<string>): Promise<void> {
    for (const name of names) {
      const path = join(dir, name)
      if (await this.isOurLink(path, name)) continue
      const st = await lstatOrUndefined(path)
      if (st?.isDirectory() === true) continue
      if (st !== undefined) await unlink(path)
      await symlink(join(DATA, name), path)
    }
  }

  /** Removes the pod's volume directories (emptyDir, configMap, secret; never a hostPath). A link in them is removed, never followed. */
  async tearDown (podUid: string): Promise<void> {
    const volumes = join(this.dataDir, 'pods', podUid, 'volumes')
    for (const dir of [...this.projected]) {
      if (relative(volumes, dir).startsWith('..')) continue
      this.projected.delete(dir)
      this.written.delete(dir)
    }
    await rm(volumes, { recursive: true, force: true })
  }

  /** With an allowlist, throws VolumeError (a config error) for the first of the container's mounts of a hostPath volume that it does not allow. */
  async checkHostPaths (pod: Pod, mounts: readonly Mount[]): Promise<void> {
    if (this.allowHostPaths === undefined) return
    for (const m of mounts) {
      const volume = (pod.spec?.volumes ?? []).find(v => v.name === m.name)
      if (volume?.hostPath === undefined) continue
      const why = await hostPathRefusal(m.hostPath, this.allowHostPaths)
      if (why !== undefined) throw new VolumeError(`volume "${m.name}": ${why}`)
    }
  }

  /** The container's mounts over the pod's volume paths; throws VolumeError for a mount of an unknown volume. ConfigMaps and Secrets are always read-only. */
  mountsOf (container: Container, paths: Map<string, string>): Mount[] {
    return (container.volumeMounts ?? []).map(m => {
      const hostPath = paths.get(m.name)
      if (hostPath === undefined) throw new VolumeError(`volumeMount "${m.name}" of container "${container.name}" names no volume of the pod`)
      const path = m.subPath === undefined || m.subPath === '' ? hostPath : join(hostPath, inside(m.subPath, 'subPath'))
      return { name: m.name, mountPath: m.mountPath, hostPath: path, readOnly: m.readOnly === true || this.projected.has(hostPath) }
    })
  }
}
