// The runtime's host shell (daemon/kubelet/native/host-shell.ts): arguments
// reach the applet exactly as given, whatever shell syntax they hold; a
// failure rejects with the applet's own words; a closed shell is started
// again. Needs the host's busybox (a static one, as the native runtime does).
import test from 'ava'
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { HostShell } from '../../daemon/kubelet/native/host-shell.ts'

const BUSYBOX = '/usr/bin/busybox'
const missing = existsSync(BUSYBOX) ? undefined : `${BUSYBOX} is missing (apt install busybox-static)`
const shellTest = missing === undefined ? test : process.env.CI === 'true' ? (title: string) => { test(title, t => { t.fail(missing) }) } : (title: string) => { test.skip(`${title} (skipped: ${missing})`, () => {}) }

shellTest('arguments arrive as they are, shell syntax and all; commands run in order; a failure carries the applet\'s message', async t => {
  const dir = mkdtempSync(join(tmpdir(), 'shoal-host-shell-'))
  t.teardown(() => { rmSync(dir, { recursive: true, force: true }) })
  const shell = new HostShell(BUSYBOX)
  t.teardown(() => { shell.close() })
  const odd = join(dir, 'a b; $(touch PWNED) `x` "q" \' *')
  writeFileSync(join(dir, 'src'), 'content\n')
  await Promise.all([
    shell.run('cp', join(dir, 'src'), odd),
    shell.run('cp', odd, join(dir, 'second'))
  ])
  t.is(readFileSync(odd, 'utf8'), 'content\n')
  t.is(readFileSync(join(dir, 'second'), 'utf8'), 'content\n', 'the second command ran after the first')
  t.false(existsSync('PWNED') || existsSync(join(dir, 'PWNED')))
  const err = await t.throwsAsync(shell.run('cp', join(dir, 'nothing-here'), join(dir, 'x')))
  t.regex(err?.message ?? '', /^busybox cp .*nothing-here.*: exit 1: cp: can't stat/)
  await t.throwsAsync(shell.run('cp', 'a\nb', 'c'), { message: /newline/ })
  await shell.run('cp', join(dir, 'src'), join(dir, 'after-error'))
  t.true(existsSync(join(dir, 'after-error')), 'the shell goes on after a failure')
  shell.close()
  await shell.run('cp', join(dir, 'src'), join(dir, 'after-close'))
  t.true(existsSync(join(dir, 'after-close')), 'a closed shell is started again')
})

shellTest('a command that does not answer in time kills the shell (failing with why), and the next command gets a new one', async t => {
  const dir = mkdtempSync(join(tmpdir(), 'shoal-host-shell-'))
  t.teardown(() => { rmSync(dir, { recursive: true, force: true }) })
  const shell = new HostShell(BUSYBOX, { timeoutMs: 300 })
  t.teardown(() => { shell.close() })
  // The system clock's timers do not hold the process: this does, meanwhile.
  const alive = setInterval(() => {}, 1000)
  t.teardown(() => { clearInterval(alive) })
  const started = Date.now()
  const err = await t.throwsAsync(shell.run('sleep', '30'))
  t.regex(err?.message ?? '', /^busybox sleep 30: the host shell did not answer sleep 30 within 0\.3 s and was killed$/)
  t.true(Date.now() - started < 10_000, 'well before the sleep would have ended')
  writeFileSync(join(dir, 'src'), 'x')
  await shell.run('cp', join(dir, 'src'), join(dir, 'dst'))
  t.is(readFileSync(join(dir, 'dst'), 'utf8'), 'x')
})
