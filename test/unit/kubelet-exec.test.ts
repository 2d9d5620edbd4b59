// Exec in the process runtime: stdout and stderr are each kept up to
// EXEC_OUTPUT_LIMIT (1 MiB) with a marker that says how much the command
// wrote; the rest is read and dropped, so the command still ends with its
// own exit code (issue #14: 200 MB of stdout once took 0.9 GB).
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import test from 'ava'
import { systemClock } from '../../daemon/clock/clock.ts'
import { ProcessRuntime } from '../../daemon/kubelet/process-runtime.ts'
import { EXEC_OUTPUT_LIMIT, ExecOutput } from '../../daemon/kubelet/runtime.ts'
import { createLogger } from '../../daemon/log/log.ts'
import type { Pod } from '../../protocol/core-v1.ts'
import { killAll } from '../helpers/kubelet.ts'

test('a command that writes 24 MiB to stdout and 3 MiB to stderr answers with 1 MiB of each and a marker', async t => {
  const dir = await mkdtemp(join(tmpdir(), 'shoal-exec-'))
  const runtime = new ProcessRuntime({ dataDir: dir, nodeName: 'node-a', clock: systemClock, log: createLogger('silent', 'test') })
  await runtime.init()
  t.teardown(async () => {
    runtime.close()
    await killAll(dir)
    await rm(dir, { recursive: true, force: true, maxRetries: 10, retryDelay: 50 })
  })
  const pod: Pod = { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'p', namespace: 'default', uid: 'uid-exec' }, spec: { nodeName: 'node-a', containers: [{ name: 'main', image: 'busybox:1.36' }] } }
  await runtime.ensureSandbox(pod)
  const rec = await runtime.startContainer(pod, { name: 'main', command: ['sleep', '60'] }, 0, { env: {} })

  const out = 24 * 1024 * 1024
  const err = 3 * 1024 * 1024
  const r = await runtime.exec(rec.id, ['sh', '-c', `head -c ${out} /dev/zero | tr '\\0' a; head -c ${err} /dev/zero | tr '\\0' b >&2; exit 3`], 60_000)
  t.is(r.exitCode, 3)
  t.is(r.stdout, 'a'.repeat(EXEC_OUTPUT_LIMIT) + `\n[shoal: output truncated: the command wrote ${out} bytes; the first ${EXEC_OUTPUT_LIMIT} are kept]\n`)
  t.is(r.stderr, 'b'.repeat(EXEC_OUTPUT_LIMIT) + `\n[shoal: output truncated: the command wrote ${err} bytes; the first ${EXEC_OUTPUT_LIMIT} are kept]\n`)

  // Output within the limit is whole and unmarked.
  const small = await runtime.exec(rec.id, ['sh', '-c', 'printf héllo; printf oops >&2'], 10_000)
  t.deepEqual(small, { exitCode: 0, stdout: 'héllo', stderr: 'oops' })
})

test('ExecOutput keeps the first bytes across chunks and counts the rest', t => {
  const o = new ExecOutput(10)
  o.add(Buffer.from('0123456'))
  o.add(Buffer.from('789abc'))
  o.add(Buffer.from('def'))
  t.is(o.text(), '0123456789\n[shoal: output truncated: the command wrote 16 bytes; the first 10 are kept]\n')
  const whole = new ExecOutput(10)
  whole.add(Buffer.from('0123456789'))
  t.is(whole.text(), '0123456789')
  // A character split across chunks is put back together.
  const split = new ExecOutput(10)
  const e = Buffer.from('é')
  split.add(e.subarray(0, 1))
  split.add(e.subarray(1))
  t.is(split.text(), 'é')
})
