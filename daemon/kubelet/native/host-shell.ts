// Owns running the runtime's short host commands (busybox's mount, umount,
// cp and mknod) without starting a process from shoald for each: starting
// one blocks shoald's event loop for the fork of a large process and until
// the child has exec'd, tens of milliseconds on a loaded machine, twice per
// container start. A HostShell is one long-lived busybox shell, started
// once, that reads commands on its stdin and runs them one after another,
// answering each with a line on its stdout. Each argument is a line of its
// own, read with `IFS= read -r` and passed as "$@": nothing is ever parsed
// as shell. Only busybox's applets run (the shell puts busybox first).
// If the shell dies, the commands waiting fail and the next one starts a
// new shell; a command that has not answered within the timeout (a mount
// stuck on a dead file system) kills the shell, so that it cannot hold up
// every container start after it. The shell ends when shoald closes its
// stdin (or exits).
// May import: daemon/clock.
import { execFile, spawn } from 'node:child_process'
import type { ChildProcessWithoutNullStreams } from 'node:child_process'
import { promisify } from 'node:util'
import { systemClock } from '../../clock/clock.ts'
import type { Clock, TimerHandle } from '../../clock/clock.ts'

/** Runs one busybox applet with its arguments; rejects with its output when it fails. */
export type AppletRunner = (applet: string, ...args: string[]) => Promise<void>

interface Waiter { resolve: () => void, reject: (err: Error) => void, what: string, timer: TimerHandle }

const LOOP = [
  'B=$1',
  'while IFS= read -r n; do',
  '  set --',
  '  while [ "$n" -gt 0 ]; do IFS= read -r a || exit 0; set -- "$@" "$a"; n=$((n - 1)); done',
  '  if out=$("$B" "$@" 2>&1 </dev/null); then echo ok; else c=$?; printf "err %s %s\\n" "$c" "$(printf %s "$out" | tr "\\n" " ")"; fi',
  'done'
].join('\n')

export class HostShell {
  private readonly busybox: string
  private readonly clock: Clock
  private readonly timeoutMs: number
  /** the shell, and the commands it has been given and not answered, in order */
  private current: { child: ChildProcessWithoutNullStreams, waiting: Waiter[], why?: string } | undefined

  /** `timeoutMs`: how long one command may take (default 10 minutes, for a copy of a large image). */
  constructor (busybox = '/usr/bin/busybox', opts: { clock?: Clock, timeoutMs?: number } = {}) {
    this.busybox = busybox
    this.clock = opts.clock ?? systemClock
    this.timeoutMs = opts.timeoutMs ?? 600_000
  }

  /** Runs `busybox applet args…` in the shell; rejects with the applet's output (one line) when it fails. */
  readonly run: AppletRunner = async (applet, ...args) => {
    const argv = [applet, ...args]
    for (const a of argv) if (a.includes('\n') || a.includes('\0')) throw new Error(`${JSON.stringify(a)}: an argument with a newline or a NUL byte cannot be passed`)
    const shell = this.started()
    return await new Promise<void>((resolve, reject) => {
      const what = argv.join(' ')
      // Commands run one after another: this one's time starts when it is given, so a queue of them shares the bound.
      const timer = this.clock.setTimeout(() => {
        shell.why = `did not answer ${what} within ${this.timeoutMs / 1000} s and was killed`
        // the whole group: the command too, not only the shell that waits for it
        const pid = shell.child.pid
        if (pid === undefined || pid <= 0) return
        try { process.kill(-pid, 'SIGKILL') } catch { shell.child.kill('SIGKILL') }
      }, this.timeoutMs)
      shell.waiting.push({ resolve, reject, what, timer })
      shell.child.stdin.write(`${argv.length}\n${argv.join('\n')}\n`)
    })
  }

  /** Ends the shell once it has answered what it was given; the next command starts another. */
  close (): void {
    this.current?.child.stdin.end()
    this.current = undefined
  }

  private started (): { child: ChildProcessWithoutNullStreams, waiting: Waiter[], why?: string } {
    if (this.current !== undefined) return this.current
    const child = spawn(this.busybox, ['sh', '-c', LOOP, 'shoal-host-shell', this.busybox], { cwd: '/', env: { PATH: '/usr/sbin:/usr/bin:/sbin:/bin' }, stdio: ['pipe', 'pipe', 'pipe'], detached: true })
    const shell: { child: ChildProcessWithoutNullStreams, waiting: Waiter[], why?: string } = { child, waiting: [] }
    this.current = shell
    let partial = ''
    child.stdin.on('error', () => {})
    child.stderr.resume()
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      const lines = (partial + chunk).split('\n')
      partial = lines.pop() ?? ''
      for (const line of lines) {
        const w = shell.waiting.shift()
        if (w === undefined) continue
        this.clock.clearTimeout(w.timer)
        if (line === 'ok') w.resolve()
        else w.reject(new Error(`busybox ${w.what}: ${line.replace(/^err (\d+) /, 'exit $1: ').trim()}`))
      }
    })
    const gone = (why: string): void => {
      if (this.current === shell) this.current = undefined
      for (const w of shell.waiting.splice(0)) {
        this.clock.clearTimeout(w.timer)
        w.reject(new Error(`busybox ${w.what}: the host shell ${shell.why ?? why}`))
      }
    }
    child.once('error', err => { gone(`could not run: ${err.message}`) })
    // 'close', not 'exit': every answer it wrote has been read by then
    child.once('close', (code, signal) => { gone(`exited (${signal ?? code})`) })
    return shell
  }
}

/** An AppletRunner that starts a process per command (tests and one-off tools, where the event loop does not matter). */
export function execRunner (busybox = '/usr/bin/busybox'): AppletRunner {
  const run = promisify(execFile)
  return async (applet, ...args) => {
    await run(busybox, [applet, ...args], { env: {}, timeout: 600_000 })
  }
}
