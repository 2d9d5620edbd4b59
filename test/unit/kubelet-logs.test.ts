// ProcessRuntime.logStream (`logs -f`): the backlog with tailLines, then
// what the container writes next, polled on a fake clock; the stream ends
// after the container exits, and destroying it stops the polling.
import { statSync } from 'node:fs'
import { appendFile, mkdtemp, rm, truncate, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import type { Readable } from 'node:stream'
import test from 'ava'
import type { ExecutionContext } from 'ava'
import type { TimerHandle } from '../../daemon/clock/clock.ts'
import { readLog, rotateIfLarge } from '../../daemon/kubelet/log-follower.ts'
import { ProcessRuntime } from '../../daemon/kubelet/process-runtime.ts'
import type { ContainerRecord } from '../../daemon/kubelet/runtime.ts'
import { createLogger } from '../../daemon/log/log.ts'
import type { Pod } from '../../protocol/core-v1.ts'
import { FakeClock } from '../helpers/fake-clock.ts'
import { killAll } from '../helpers/kubelet.ts'

/** A fake clock that also counts the timers still pending. */
class CountingClock extends FakeClock {
  readonly pending = new Set<number>()
  override setTimeout (fn: () => void, ms: number): TimerHandle {
    const handle = super.setTimeout(() => { this.pending.delete(id); fn() }, ms) as { id: number }
    const id = handle.id
    this.pending.add(id)
    return handle
  }

  override clearTimeout (handle: TimerHandle): void {
    this.pending.delete((handle as { id: number }).id)
    super.clearTimeout(handle)
  }
}

function sizeOf (file: string): number {
  try { return statSync(file).size } catch { return 0 }
}

const sleep = async (ms: number): Promise<void> => { await new Promise(resolve => setTimeout(resolve, ms)) }

/** Moves the fake clock on in 200 ms steps, letting real I/O run between them, until `done` holds (or 15 s pass). */
async function until (clock: FakeClock, what: string, done: () => boolean): Promise<void> {
  for (let i = 0; i < 1500; i++) {
    if (done()) return
    clock.advance(200)
    await sleep(10)
  }
  throw new Error(`timed out waiting for ${what}`)
}

/** Everything the stream gives, as it comes; `ended` once it ends. */
function collect (stream: Readable): { text: () => string, ended: () => boolean } {
  let text = ''
  let ended = false
  stream.on('data', (b: Buffer) => { text += b.toString() })
  stream.on('end', () => { ended = true })
  stream.on('close', () => { ended = true })
  return { text: () => text, ended: () => ended }
}

async function setup (t: ExecutionContext): Promise<{ runtime: ProcessRuntime, clock: CountingClock, start: (script: string) => Promise<ContainerRecord>, logFile: (rec: ContainerRecord) => string }> {
  const dir = await mkdtemp(join(tmpdir(), 'shoal-logs-'))
  const clock = new CountingClock()
  const runtime = new ProcessRuntime({ dataDir: dir, nodeName: 'node-a', clock, log: createLogger('silent', 'test') })
  await runtime.init()
  t.teardown(async () => {
    runtime.close()
    await killAll(dir)
    await rm(dir, { recursive: true, force: true, maxRetries: 10, retryDelay: 50 })
  })
  let n = 0
  return {
    runtime,
    clock,
    start: async script => {
      const name = `p${++n}`
      const p: Pod = { apiVersion: 'v1', kind: 'Pod', metadata: { name, namespace: 'default', uid: `uid-${n}` }, spec: { nodeName: 'node-a', containers: [{ name: 'main', image: 'busybox:1.36' }] } }
      await runtime.ensureSandbox(p)
      return await runtime.startContainer(p, { name: 'main', command: ['sh', '-c', script] }, 0, { env: {} })
    },
    logFile: rec => join(dir, 'pods', rec.podUid, 'main', '0.log')
  }
}

async function exited (runtime: ProcessRuntime, id: string): Promise<void> {
  for (let i = 0; i < 1500; i++) {
    if ((await runtime.listContainers()).find(r => r.id === id)?.state === 'exited') return
    await sleep(10)
  }
  throw new Error(`container ${id} did not exit`)
}

test('the backlog, whole or tailed, and without follow the stream ends there', async t => {
  const { runtime, clock, start } = await setup(t)
  const rec = await start('for i in 1 2 3 4 5; do echo line $i; done')
  await exited(runtime, rec.id)
  const all = collect(await runtime.logStream(rec.id, { follow: false }))
  await until(clock, 'the whole log', all.ended)
  t.is(all.text(), 'line 1\nline 2\nline 3\nline 4\nline 5\n')
  const two = collect(await runtime.logStream(rec.id, { tailLines: 2, follow: false }))
  await until(clock, 'the tail', two.ended)
  t.is(two.text(), 'line 4\nline 5\n')
  const none = collect(await runtime.logStream(rec.id, { tailLines: 0, follow: false }))
  await until(clock, 'an empty tail', none.ended)
  t.is(none.text(), '')
  // Following a container that has already exited gives its log, then ends.
  const after = collect(await runtime.logStream(rec.id, { tailLines: 1, follow: true }))
  await until(clock, 'the end of an exited container\'s log', after.ended)
  t.is(after.text(), 'line 5\n')
  await t.throwsAsync(runtime.logStream('nope', { follow: true }), { message: /no container nope/ })
})

test('follow gives what is appended, starts over after a rotation, and ends once the container exits', async t => {
  const { runtime, clock, start, logFile } = await setup(t)
  const rec = await start('echo first; echo second; while [ ! -f stop ]; do sleep 0.05; done')
  const file = logFile(rec)
  await until(clock, 'the first output', () => sizeOf(file) >= 'first\nsecond\n'.length)
  const s = collect(await runtime.logStream(rec.id, { tailLines: 1, follow: true }))
  await until(clock, 'the backlog', () => s.text() === 'second\n')
  await appendFile(file, 'third\n')
  await until(clock, 'appended output', () => s.text() === 'second\nthird\n')
  // A rotation truncates the file: reading starts over from 0.
  await truncate(file, 0)
  await appendFile(file, 'new\n')
  await until(clock, 'output after a rotation', () => s.text() === 'second\nthird\nnew\n')
  t.false(s.ended())
  await appendFile(file, 'last words\n')
  await writeFile(join(dirname(file), 'stop'), '')
  await until(clock, 'the end of the stream', s.ended)
  t.is(s.text(), 'second\nthird\nnew\nlast words\n')
})

test('a process that writes as it runs is followed to its end', async t => {
  const { runtime, clock, start } = await setup(t)
  const rec = await start('i=0; while [ $i -lt 5 ]; do echo tick $i; i=$((i+1)); sleep 0.05; done')
  const s = collect(await runtime.logStream(rec.id, { follow: true }))
  await until(clock, 'the end of the stream', s.ended)
  t.is(s.text(), 'tick 0\ntick 1\ntick 2\ntick 3\ntick 4\n')
})

test('destroying the stream stops its polling', async t => {
  const { runtime, clock, start } = await setup(t)
  const rec = await start('echo hello; exec sleep 60')
  const baseline = clock.pending.size
  const stream = await runtime.logStream(rec.id, { follow: true })
  const s = collect(stream)
  await until(clock, 'the output', () => s.text() === 'hello\n')
  await until(clock, 'a poll timer', () => clock.pending.size > baseline)
  stream.destroy()
  t.is(clock.pending.size, baseline)
  // Time goes on: nothing polls the file any more, and nothing more comes.
  for (let i = 0; i < 5; i++) {
    clock.advance(200)
    await sleep(10)
  }
  t.is(clock.pending.size, baseline)
  t.true(stream.destroyed)
})

test('a slow reader is not read ahead of: reading waits while the buffer is full', async t => {
  const { runtime, clock, start, logFile } = await setup(t)
  const rec = await start('exec sleep 60')
  const file = logFile(rec)
  const baseline = clock.pending.size
  const stream = await runtime.logStream(rec.id, { follow: true })
  stream.on('readable', () => {})
  stream.pause()
  await until(clock, 'the (empty) backlog read and a poll timer set', () => clock.pending.size > baseline)
  // Nobody reads: 1 MiB appended must not all be pulled into memory.
  await appendFile(file, Buffer.alloc(1024 * 1024, 0x61))
  for (let i = 0; i < 20; i++) {
    clock.advance(200)
    await sleep(10)
  }
  t.true(stream.readableLength <= 2 * 64 * 1024, `buffered ${stream.readableLength} bytes`)
  let total = 0
  stream.removeAllListeners('readable')
  stream.on('data', (b: Buffer) => { total += b.length })
  stream.resume()
  await until(clock, 'all of it', () => total === 1024 * 1024)
  stream.destroy()
  t.pass()
})

test('rotateIfLarge moves a log past the limit to .log.1 and empties it in place; readLog reads both, oldest first', async t => {
  const dir = await mkdtemp(join(tmpdir(), 'shoal-rotate-'))
  t.teardown(async () => { await rm(dir, { recursive: true, force: true }) })
  const file = join(dir, '0.log')
  await writeFile(file, 'a'.repeat(40) + '\n')
  t.false(await rotateIfLarge(file, 64), 'under the limit: left alone')
  await appendFile(file, 'b'.repeat(40) + '\n')
  t.true(await rotateIfLarge(file, 64))
  t.is(sizeOf(file), 0)
  await appendFile(file, 'new\n')
  t.is((await readLog(file)).toString(), 'a'.repeat(40) + '\n' + 'b'.repeat(40) + '\n' + 'new\n')
  await appendFile(file, 'c'.repeat(70) + '\n')
  t.true(await rotateIfLarge(file, 64))
  t.is((await readLog(file)).toString(), 'new\n' + 'c'.repeat(70) + '\n', 'a second rotation replaces the older .log.1')
  t.false(await rotateIfLarge(join(dir, 'missing.log'), 64), 'a log not there yet is not an error')
})
