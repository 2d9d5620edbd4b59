// Container records on disk, one JSON file per container, shared by the
// process and native runtimes: written through a temporary file and a
// rename (mode 0600), and read back at start, an unreadable one logged and
// skipped, a whole temporary one (a rename a kill cut off) taken.
// May import: daemon/log.
import { readdir, readFile, rename, rm, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import type { Logger } from '../log/log.ts'

/**
 * Every record in `dir` (`<id>.json`), in directory order; unreadable ones
 * are logged and skipped. A whole `<id>.json.tmp` is a write that a killed
 * shoald did not get to rename: it is newer than `<id>.json`, so it is the
 * record, and the rename is finished now (a container started just before
 * the kill would otherwise run on with no record, unknown to the restarted
 * runtime). A partial one is removed.
 */
export async function loadRecords<T> (dir: string, log: Logger): Promise<T[]> {
  const out: T[] = []
  const files = await readdir(dir)
  const read = async (file: string): Promise<T> => JSON.parse(await readFile(join(dir, file), 'utf8')) as T
  /** the `<id>.json` names a whole temporary file was renamed over */
  const recovered = new Set<string>()
  for (const tmp of files.filter(f => f.endsWith('.json.tmp'))) {
    const file = tmp.slice(0, -'.tmp'.length)
    try {
      const rec = await read(tmp)
      await rename(join(dir, tmp), join(dir, file))
      recovered.add(file)
      out.push(rec)
    } catch {
      await rm(join(dir, tmp), { force: true })
    }
  }
  for (const file of files) {
    if (!file.endsWith('.json') || recovered.has(file)) continue
    try {
      out.push(await read(file))
    } catch (err) {
      log.warn({ event: 'kubelet.runtime.bad-record', file, err: (err as Error).message }, `ignoring unreadable container record ${file}`)
    }
  }
  return out
}

/** Writes `rec` to `file` whole or not at all. */
export async function saveRecord (file: string, rec: unknown): Promise<void> {
  await writeFile(`${file}.tmp`, JSON.stringify(rec), { mode: 0o600 })
  await rename(`${file}.tmp`, file)
}
