// Kubelet tests over an in-process store: a temp data dir, kubelets with the
// process runtime and short back-off, and clean-up of every process they
// started; plus small readers of pod status.
import { POD } from '../../protocol/kinds.ts'
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { ExecutionContext } from 'ava'
import { systemClock } from '../../daemon/clock/clock.ts'
import { Kubelet } from '../../daemon/kubelet/kubelet.ts'
import type { KubeletOptions } from '../../daemon/kubelet/kubelet.ts'
import { createLogger } from '../../daemon/log/log.ts'
import { ref, StoreHarness } from '../../daemon/store/testing.ts'
import { waitFor as waitForSlowly } from './cluster.ts'

export type Obj = Record<string, any>

export interface KubeletEnv { h: StoreHarness, dir: string, kubelet: (extra?: Partial<KubeletOptions>) => Promise<Kubelet> }

/** A store, a temp data dir, and kubelets for `node` over them; every process they started is killed at the end. */
export async function kubeletEnv (t: ExecutionContext, node: string): Promise<KubeletEnv> {
  const dir = await mkdtemp(join(tmpdir(), `shoal-kubelet-${node}-`))
  const h = new StoreHarness()
  const kubelets: Kubelet[] = []
  t.teardown(async () => {
    for (const k of kubelets) await k.stop()
    await killAll(dir)
    await rm(dir, { recursive: true, force: true, maxRetries: 10, retryDelay: 50 })
  })
  return {
    h,
    dir,
    kubelet: async (extra = {}) => {
      const k = new Kubelet({
        nodeName: node, dataDir: dir, store: h.store, write: async cmd => h.apply(cmd), clock: systemClock,
        log: createLogger('silent', 'test'), backoffBaseMs: 200, statusIntervalMs: 20, ...extra
      })
      kubelets.push(k)
      await k.start()
      return k
    }
  }
}

/** SIGKILLs the process group of every container the process runtime recorded under `dir`. */
export async function killAll (dir: string): Promise<void> {
  let files: string[] = []
  try { files = await readdir(join(dir, 'containers')) } catch {}
  for (const f of files.filter(f => f.endsWith('.json'))) {
    const rec = JSON.parse(await readFile(join(dir, 'containers', f), 'utf8')) as { pid?: number }
    if (rec.pid !== undefined) try { process.kill(-rec.pid, 'SIGKILL') } catch {}
  }
}

/** cluster.ts's waitFor, polling every 25 ms and giving up after 20 s by default. */
export async function waitFor<T> (what: string, fn: () => Promise<T | undefined | false> | T | undefined | false, ms = 20_000): Promise<T> {
  return await waitForSlowly(what, fn, ms, 25)
}

export function getPod (h: StoreHarness, name: string): Obj | undefined {
  return h.store.get(POD, 'default', name) as Obj | undefined
}

/** The first container's status. */
export function main (p: Obj | undefined): Obj | undefined {
  return p?.status?.containerStatuses?.[0]
}

/**
 * Waits for pod `name`'s main container to have restarted 3 times, asserting
 * that it went through CrashLoopBackOff and that its last termination was
 * exit 1 with reason Error (the docker and native kubelet tests' crash loop).
 */
export async function expectCrashLoop (t: ExecutionContext, h: StoreHarness, name: string): Promise<Obj> {
  const seen = new Set<string>()
  const cs = await waitFor('3 restarts', () => {
    const c = main(getPod(h, name))
    if (c?.state?.waiting?.reason !== undefined) seen.add(c.state.waiting.reason)
    return c !== undefined && c.restartCount >= 3 && c
  }, 60_000)
  t.true(seen.has('CrashLoopBackOff'), [...seen].join(', '))
  const last = await waitFor('lastState', () => main(getPod(h, name))?.lastState?.terminated as Obj | undefined)
  t.is(last.exitCode, 1)
  t.is(last.reason, 'Error')
  return cs
}
