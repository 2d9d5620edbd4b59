// Running a command from an integration test (kubectl, shoal): asynchronously,
// so that the test's own timers keep running, and bounded in time.
import { spawn } from 'node:child_process'

export interface Run { code: number | null, stdout: string, stderr: string }

/** Starts `cmd`, killed after `timeoutMs`; `done` resolves when it exits, `live` shows its output so far. */
export function start (cmd: string, args: string[], env: NodeJS.ProcessEnv = process.env, timeoutMs = 60_000): { done: Promise<Run>, live: () => Run } {
  const child = spawn(cmd, args, { env, stdio: ['ignore', 'pipe', 'pipe'] })
  const out: Run = { code: null, stdout: '', stderr: '' }
  child.stdout.setEncoding('utf8').on('data', (s: string) => { out.stdout += s })
  child.stderr.setEncoding('utf8').on('data', (s: string) => { out.stderr += s })
  const timer = setTimeout(() => { child.kill('SIGKILL') }, timeoutMs)
  const done = new Promise<Run>(resolve => {
    child.on('close', code => {
      clearTimeout(timer)
      out.code = code
      resolve({ ...out })
    })
  })
  return { done, live: () => ({ ...out }) }
}

/** Runs `cmd` to its end (killed after `timeoutMs`) and answers its exit code and output. */
export async function run (cmd: string, args: string[], env: NodeJS.ProcessEnv = process.env, timeoutMs = 60_000): Promise<Run> {
  return await start(cmd, args, env, timeoutMs).done
}
