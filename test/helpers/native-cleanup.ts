// What a killed peer's (or a stopped kubelet's) native sandboxes leave
// behind, cleaned up for the tests and benchmarks; no ava here, so that the
// benchmarks can import it.
// May import: daemon/kubelet/native-runtime.ts, daemon/kubelet/native/, daemon/clock.
import { readdir } from 'node:fs/promises'
import { join } from 'node:path'
import { systemClock } from '../../daemon/clock/clock.ts'
import { killStale } from '../../daemon/kubelet/native-runtime.ts'
import type { CgroupLayout } from '../../daemon/kubelet/native/cgroups.ts'
/**
 * A SIGKILLed shoald (or a stopped kubelet) leaves its native containers
 * running: kills each one recorded under the peer's data directory
 * `dataDir` and removes its cgroup.
 */
export async function killNativeContainers (dataDir: string, layout: CgroupLayout): Promise<void> {
  let files: string[] = []
  try { files = await readdir(join(dataDir, 'native', 'containers')) } catch {}
  for (const f of files.filter(f => f.endsWith('.json'))) await killStale(layout, f.slice(0, -'.json'.length), systemClock)
}
