// Container records on disk, one JSON file per container, shared by the
// process and native runtimes: written through a temporary file and a
// rename (mode 0600), and read back at start, an unreadable one logged and
// skipped.
// May import: daemon/log.
import { readdir, readFile, rename, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import type { Logger } from '../log/log.ts'

/** Every record in `dir` (`<id>.json`), in directory order; unreadable ones are logged and skipped. */
export async function loadRecords<T> (dir: string, log: Logger): Promise<T[]> {
  const out: T[] = []
  for (const file of await readdir(dir)) {
    if (!file.endsWith('.json')) continue
    try {
      out.push(JSON.parse(await readFile(join(dir, file), 'utf8')) as T)
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
