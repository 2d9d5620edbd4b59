// A pod's volumes as host directories, and its containers' mounts of them.
// emptyDir: <dataDir>/pods/<uid>/volumes/<name> (it goes with the sandbox).
// configMap / secret: the same place, one file per key (or per items[].path)
// holding the value (a Secret's data decoded from base64), with defaultMode
// or the item's mode; setUp rewrites files whose content changed, so calling
// it again refreshes them, and a ConfigMap or Secret deleted later leaves the
// files as they are. hostPath: the path itself (created for
// DirectoryOrCreate). A runtime turns each Mount into what it can: the
// process runtime links it into the container's working directory.
// May import: protocol/, daemon/store/types.ts, ./runtime.ts.
import { CONFIG_MAP, SECRET } from '../../protocol/kinds.ts'
import { chmod, mkdir, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises'
import { dirname, join, normalize } from 'node:path'
import type { Container, KeyToPath, Pod, Volume } from '../../protocol/core-v1.ts'
import type { StoreReader } from '../store/types.ts'
import type { Mount } from './runtime.ts'

/** A configMap or secret volume's source, whichever it is. */
interface Projection { items?: KeyToPath[], defaultMode?: number, optional?: boolean }

export class VolumeError extends Error {
  override name = 'VolumeError'
}

/** A relative path that stays inside its directory. */
function inside (path: string, what: string): string {
  const p = normalize(path)
  if (p.startsWith('/') || p === '..' || p.startsWith('../')) throw new VolumeError(`${what} "${path}" must be a relative path inside the volume`)
  return p
}

/** Writes `content` to `file` (atomically) unless it already holds it; sets its mode. */
async function put (file: string, content: Buffer, mode: number): Promise<void> {
  let same = false
  try { same = (await readFile(file)).equals(content) } catch {}
  await mkdir(dirname(file), { recursive: true })
  if (!same) {
    await writeFile(`${file}.tmp`, content, { mode })
    await rename(`${file}.tmp`, file)
  }
  await chmod(file, mode)
}

/** Every file under `dir`, relative to it. */
async function filesUnder (dir: string, prefix = ''): Promise<string[]> {
  const out: string[] = []
  let entries
  try { entries = await readdir(join(dir, prefix), { withFileTypes: true }) } catch { return out }
  for (const d of entries) {
    const rel = prefix === '' ? d.name : join(prefix, d.name)
    if (d.isDirectory()) out.push(...await filesUnder(dir, rel))
    else out.push(rel)
  }
  return out
}

export class Volumes {
  private readonly store: StoreReader
  private readonly dataDir: string

  constructor (store: StoreReader, dataDir: string) {
    this.store = store
    this.dataDir = dataDir
  }

  /** The host directory of each of the pod's volumes, set up or refreshed; throws VolumeError when one cannot be. */
  async setUp (pod: Pod): Promise<Map<string, string>> {
    const uid = pod.metadata.uid ?? ''
    const namespace = pod.metadata.namespace ?? 'default'
    const paths = new Map<string, string>()
    for (const v of pod.spec?.volumes ?? []) {
      const dir = join(this.dataDir, 'pods', uid, 'volumes', inside(v.name, 'volume name'))
      if (v.hostPath !== undefined) {
        const path = v.hostPath.path
        if (!path.startsWith('/')) throw new VolumeError(`hostPath "${path}" of volume "${v.name}" is not absolute`)
        if (v.hostPath.type === 'DirectoryOrCreate') await mkdir(path, { recursive: true })
        paths.set(v.name, path)
      } else if (v.emptyDir !== undefined) {
        await mkdir(dir, { recursive: true })
        paths.set(v.name, dir)
      } else if (v.configMap !== undefined || v.secret !== undefined) {
        await this.project(v, namespace, dir)
        paths.set(v.name, dir)
      } else {
        const kind = Object.keys(v).find(k => k !== 'name') ?? 'none'
        throw new VolumeError(`volume "${v.name}": type ${kind} is not supported by this kubelet`)
      }
    }
    return paths
  }

  /** Writes a configMap or secret volume's files into `dir`, and removes those of keys that went away. */
  private async project (v: Volume, namespace: string, dir: string): Promise<void> {
    const secret = v.secret !== undefined
    const src: Projection = v.secret ?? v.configMap ?? {}
    const objName = v.secret !== undefined ? v.secret.secretName ?? '' : v.configMap?.name ?? ''
    const obj = secret ? this.store.get(SECRET, namespace, objName) : this.store.get(CONFIG_MAP, namespace, objName)
    const what = secret ? 'secret' : 'configmap'
    if (obj === undefined) {
      if (src.optional !== true) throw new VolumeError(`MountVolume.SetUp failed for volume "${v.name}" : ${what} "${objName}" not found`)
      await mkdir(dir, { recursive: true })
      return
    }
    const data = new Map<string, Buffer>()
    for (const [k, val] of Object.entries(obj.data ?? {})) data.set(k, Buffer.from(val, secret ? 'base64' : 'utf8'))
    if (obj.kind === 'Secret') for (const [k, val] of Object.entries(obj.stringData ?? {})) data.set(k, Buffer.from(val, 'utf8'))
    else for (const [k, val] of Object.entries(obj.binaryData ?? {})) data.set(k, typeof val === 'string' ? Buffer.from(val, 'base64') : Buffer.from(val))
    const mode = src.defaultMode ?? 0o644
    const files = new Map<string, { content: Buffer, mode: number }>()
    if (src.items !== undefined && src.items.length > 0) {
      for (const item of src.items) {
        const content = data.get(item.key)
        if (content === undefined) {
          if (src.optional === true) continue
          throw new VolumeError(`MountVolume.SetUp failed for volume "${v.name}" : ${what} references non-existent ${secret ? 'secret' : 'config'} key: ${item.key}`)
        }
        files.set(inside(item.path, 'item path'), { content, mode: item.mode ?? mode })
      }
    } else {
      for (const [k, content] of data) files.set(inside(k, 'key'), { content, mode })
    }
    await mkdir(dir, { recursive: true })
    for (const [rel, f] of files) await put(join(dir, rel), f.content, f.mode)
    // Keys that went away go too.
    for (const rel of await filesUnder(dir)) if (!files.has(rel)) await rm(join(dir, rel), { force: true })
  }

  /** Removes the pod's volume directories (emptyDir, configMap, secret; never a hostPath). */
  async tearDown (podUid: string): Promise<void> {
    await rm(join(this.dataDir, 'pods', podUid, 'volumes'), { recursive: true, force: true })
  }

  /** The container's mounts over the pod's volume paths; throws VolumeError for a mount of an unknown volume. */
  mountsOf (container: Container, paths: Map<string, string>): Mount[] {
    return (container.volumeMounts ?? []).map(m => {
      const hostPath = paths.get(m.name)
      if (hostPath === undefined) throw new VolumeError(`volumeMount "${m.name}" of container "${container.name}" names no volume of the pod`)
      const path = m.subPath === undefined || m.subPath === '' ? hostPath : join(hostPath, inside(m.subPath, 'subPath'))
      return { name: m.name, mountPath: m.mountPath, hostPath: path, readOnly: m.readOnly === true }
    })
  }
}
