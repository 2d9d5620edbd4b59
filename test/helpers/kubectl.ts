// The installed kubectl against a test cluster, with the kubeconfig that
// `shoal kubeconfig` prints (a context per peer, HTTPS pinned to each
// peer's certificate), under a HOME and a cache of the test's own.
// May import: ./cluster.ts, ./run.ts.
import { spawnSync } from 'node:child_process'
import { mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { SHOAL } from './cluster.ts'
import type { Peer } from './cluster.ts'
import { run } from './run.ts'
import type { Run } from './run.ts'

/** Whether a kubectl is on PATH (a test that needs one fails without it in CI, and is skipped elsewhere). */
export const HAS_KUBECTL = spawnSync('kubectl', ['version', '--client'], { encoding: 'utf8' }).status === 0

/** Lines of kubectl's stderr that are warnings (or discovery failures). */
export function kubectlWarnings (stderr: string): string[] {
  return stderr.split('\n').filter(l => /warning/i.test(l) || /couldn't get resource list/.test(l) || /^[EW]\d{4} /.test(l))
}

/** kubectl with the kubeconfig `peer` hands out, written under `dir`; throws when `shoal kubeconfig` fails. */
export async function kubectlAgainst (peer: Peer, dir: string): Promise<{ kubectl: (args: string[], timeoutMs?: number) => Promise<Run>, home: string, kubeconfig: string }> {
  const home = join(dir, 'home')
  mkdirSync(home, { recursive: true })
  const made = await run(process.execPath, [SHOAL, '--server', peer.apiUrl, '--token', peer.token(), 'kubeconfig'], { ...process.env, HOME: home })
  if (made.code !== 0) throw new Error(`shoal kubeconfig failed: ${made.stderr}`)
  const kubeconfig = join(dir, 'kubeconfig')
  writeFileSync(kubeconfig, made.stdout)
  const env = { ...process.env, HOME: home, KUBECONFIG: kubeconfig }
  return { kubectl: async (args, timeoutMs) => await run('kubectl', ['--cache-dir', join(home, 'cache'), ...args], env, timeoutMs), home, kubeconfig }
}
