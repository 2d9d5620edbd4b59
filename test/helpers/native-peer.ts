// One shoald with the native runtime for the tests, started until it
// serves the default namespace, and stopped with what its sandboxes leave
// behind (they outlive a SIGKILLed shoald or a stopped kubelet); no ava
// here, so that the benchmarks can import it too.
// May import: daemon/kubelet/native-runtime.ts, daemon/kubelet/native/, daemon/clock, ./cluster.ts.
import { readdir } from 'node:fs/promises'
import { join } from 'node:path'
import { systemClock } from '../../daemon/clock/clock.ts'
import { killStale } from '../../daemon/kubelet/native-runtime.ts'
import type { CgroupLayout } from '../../daemon/kubelet/native/cgroups.ts'
import { execRunner } from '../../daemon/kubelet/native/host-shell.ts'
import { removeRoot } from '../../daemon/kubelet/native/rootfs.ts'
import { api, startCluster, stopAll, waitFor, waitForLeader, waitForReadyNodes } from './cluster.ts'
import type { Peer } from './cluster.ts'
/**
 * A SIGKILLed shoald (or a stopped kubelet) leaves its native containers
 * running: kills each one recorded under the peer's data directory
 * `dataDir`, removes its cgroup, and unmounts and removes its root.
 */
export async function killNativeContainers (dataDir: string, layout: CgroupLayout): Promise<void> {
  let files: string[] = []
  try { files = await readdir(join(dataDir, 'native', 'containers')) } catch {}
  for (const f of files.filter(f => f.endsWith('.json'))) await killStale(layout, f.slice(0, -'.json'.length), systemClock)
  // and the containers' roots, overlay mounts on the host that would keep the directory from being removed
  const roots = join(dataDir, 'native', 'roots')
  for (const id of await readdir(roots).catch(() => [] as string[])) await removeRoot(join(roots, id), execRunner())
}

/** `peer` is the one to stop: a test that restarts it puts the new one here. */
export interface NativePeer { peer: Peer, dir: string }

/** One peer named p1 on `ip` with `--runtime native` and `args`, once it has a leader, a Ready node and the default namespace. */
export async function startNativePeer (prefix: string, ip: string, args: string[]): Promise<NativePeer> {
  const cluster = await startCluster(prefix, [ip], ['--runtime', 'native', '--dns-port', '0', ...args])
  const peer = cluster.peers[0] as Peer
  await waitForLeader(cluster.peers, 30_000)
  await waitForReadyNodes(peer, 1, 30_000)
  await waitFor('the default namespace', async () => (await api(peer, 'GET', '/api/v1/namespaces/default')).status === 200, 30_000, 100)
  return { peer, dir: cluster.dir }
}

/** SIGKILLs the peer, then its sandboxes, and removes its directory. */
export async function stopNativePeer (p: NativePeer | undefined, layout: CgroupLayout | undefined): Promise<void> {
  if (p === undefined) return
  await p.peer.kill()
  if (layout !== undefined) await killNativeContainers(join(p.dir, 'p1'), layout)
  await stopAll([p.peer], p.dir)
}
