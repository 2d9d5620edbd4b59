// The CLI in process, as a test runs it: `shoal --server URL --token T …`
// with its output captured and its config file in a temporary directory
// removed after the test; `now` fixes the clock its ages are printed with.
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { ExecutionContext } from 'ava'
import { main } from '../../cli/main.ts'

export interface CliRun { code: number, stdout: string, stderr: string }

export async function runCli (t: ExecutionContext, server: string, token: string, argv: string[], now?: () => number): Promise<CliRun> {
  const dir = await mkdtemp(join(tmpdir(), 'shoal-cli-'))
  t.teardown(async () => { await rm(dir, { recursive: true, force: true }) })
  let stdout = ''
  let stderr = ''
  const code = await main(['--server', server, '--token', token, ...argv], {
    stdout: { write: (s: string) => { stdout += s } },
    stderr: { write: (s: string) => { stderr += s } },
    env: { SHOAL_CONFIG: join(dir, 'config.json') },
    ...(now !== undefined ? { now } : {})
  })
  return { code, stdout, stderr }
}
