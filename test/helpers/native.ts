// Whether this host can run the native runtime's tests (root, the real
// docker-registry, unshare and a static busybox, cgroups), and a test
// declaration that skips with the reason outside CI and fails in CI.
// May import: daemon/kubelet/native/, ./oci-registry.ts, ava.
import test from 'ava'
import type { ExecutionContext } from 'ava'
import { detectCgroups } from '../../daemon/kubelet/native/cgroups.ts'
import { checkSandboxHost } from '../../daemon/kubelet/native/sandbox.ts'
import { registryMissing } from './oci-registry.ts'

function hostProblem (): string | undefined {
  if (process.getuid?.() !== 0) return 'not root'
  const missing = registryMissing()
  if (missing !== undefined) return missing
  const host = checkSandboxHost()
  if (host !== true) return host
  try { detectCgroups() } catch (err) { return (err as Error).message }
  return undefined
}

/** why the native runtime's tests cannot run here, or undefined */
export const nativeProblem = hostProblem()

/** A serial test that needs the native runtime: skipped with the reason outside CI, failed in CI. */
export function nativeTest (title: string, fn: (t: ExecutionContext) => Promise<void>): void {
  if (nativeProblem !== undefined) {
    if (process.env.CI === 'true') test(title, t => { t.fail(`the native runtime cannot run here: ${nativeProblem}`) })
    else test.skip(`${title} (skipped: ${nativeProblem})`, () => {})
    return
  }
  test.serial(title, fn)
}
