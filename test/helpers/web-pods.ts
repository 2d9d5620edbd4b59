// What the runtime cluster tests (docker-cluster, native-cluster) check of a
// Deployment `web` whose pods serve their own name over HTTP on port 8080
// and log `serving as <name>`: its Running pods, and that a pod answers on
// its address and that its log and exec work through a peer that does not
// run it. Also the CLI, run synchronously against one peer.
// May import: protocol/, ./cluster.ts, ava (types).
import type { ExecutionContext } from 'ava'
import { spawnSync } from 'node:child_process'
import type { KObject } from '../../protocol/k8s.ts'
import { api, SHOAL, waitFor } from './cluster.ts'
import type { Peer } from './cluster.ts'

export type WebPod = KObject & { spec: { nodeName?: string }, status?: { phase?: string, podIP?: string, containerStatuses?: Array<{ containerID?: string, restartCount?: number }> } }

/** The pods of app=web that are Running and not being deleted, as `peer` lists them. */
export async function runningWebPods (peer: Peer): Promise<WebPod[]> {
  const r = await api(peer, 'GET', '/api/v1/namespaces/default/pods?labelSelector=app%3Dweb')
  return ((r.body.items ?? []) as WebPod[]).filter(p => p.status?.phase === 'Running' && p.metadata.deletionTimestamp === undefined)
}

/** `shoal ARGS` against `peer`, bounded to 30 s. */
export function shoalSync (peer: Peer, args: string[]): { status: number | null, stdout: string, stderr: string } {
  const r = spawnSync(process.execPath, [SHOAL, '--server', peer.apiUrl, '--token', peer.token(), ...args], { encoding: 'utf8', timeout: 30_000 })
  return { status: r.status, stdout: r.stdout, stderr: r.stderr }
}

/** `pod` answers HTTP on its address with its name; its log and `exec` (exit status included) work through a peer that does not run it, which is returned. */
export async function checkWebPodAccess (t: ExecutionContext, pod: WebPod, peers: Peer[]): Promise<Peer> {
  const name = pod.metadata.name ?? ''
  const body = await waitFor('an HTTP answer', async () => (await fetch(`http://${pod.status?.podIP ?? ''}:8080/`, { signal: AbortSignal.timeout(2000) })).text(), 30_000)
  t.is(body.trim(), name)
  const other = peers.find(p => p.name !== pod.spec.nodeName) as Peer
  const logs = shoalSync(other, ['logs', name])
  t.is(logs.status, 0, logs.stderr)
  t.is(logs.stdout.trim(), `serving as ${name}`)
  const exec = shoalSync(other, ['exec', name, '--', 'sh', '-c', 'hostname; exit 4'])
  t.is(exec.status, 4, exec.stderr)
  t.is(exec.stdout.trim(), name)
  return other
}

/** Waits until `n` web pods are Running, none on `victim`, as a running peer among `survivors` lists them. */
export async function waitForWebPodsOff (survivors: Peer[], victim: Peer, n: number): Promise<WebPod[]> {
  return await waitFor(`${n} Running pods on the survivors`, async () => {
    const p = await runningWebPods(survivors.find(s => s.running) as Peer)
    return p.length === n && p.every(x => x.spec.nodeName !== victim.name) && p
  }, 120_000)
}
