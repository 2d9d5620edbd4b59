// daemon/lifecycle/startable.ts: a list starts in order and stops in the
// reverse, every beforeStop first; a failed start stops what had started;
// a component started when ready retries behind the start-up and is stopped
// only if it started.
import test from 'ava'
import { opened, startAll, startWhenReady, stopAll } from '../../daemon/lifecycle/startable.ts'
import type { Startable } from '../../daemon/lifecycle/startable.ts'

function recorder (calls: string[], name: string, opts: { failStart?: boolean, failStop?: boolean, beforeStop?: boolean } = {}): Startable {
  const c: Startable = {
    start: async () => {
      calls.push(`start ${name}`)
      if (opts.failStart === true) throw new Error(`${name} cannot start`)
    },
    stop: () => {
      calls.push(`stop ${name}`)
      if (opts.failStop === true) throw new Error(`${name} cannot stop`)
    }
  }
  if (opts.beforeStop === true) c.beforeStop = () => { calls.push(`beforeStop ${name}`) }
  return c
}

test('a list starts in order and stops in the reverse, every beforeStop before any stop', async t => {
  const calls: string[] = []
  const list = [recorder(calls, 'a', { beforeStop: true }), recorder(calls, 'b'), recorder(calls, 'c', { beforeStop: true })]
  await startAll(list)
  await stopAll(list)
  t.deepEqual(calls, ['start a', 'start b', 'start c', 'beforeStop c', 'beforeStop a', 'stop c', 'stop b', 'stop a'])
})

test('a failed start stops what had started, in reverse, and the start error goes on', async t => {
  const calls: string[] = []
  const list = [recorder(calls, 'a', { beforeStop: true }), recorder(calls, 'b'), recorder(calls, 'c', { failStart: true }), recorder(calls, 'd')]
  await t.throwsAsync(startAll(list), { message: 'c cannot start' })
  t.deepEqual(calls, ['start a', 'start b', 'start c', 'beforeStop a', 'stop b', 'stop a'])
})

test('a failed stop does not keep the others from stopping; its error comes out at the end', async t => {
  const calls: string[] = []
  const list = [recorder(calls, 'a'), recorder(calls, 'b', { failStop: true }), recorder(calls, 'c')]
  await startAll(list)
  await t.throwsAsync(stopAll(list), { message: 'b cannot stop' })
  t.deepEqual(calls.slice(3), ['stop c', 'stop b', 'stop a'])
})

test('opened: nothing to start, closed on stop', async t => {
  let closed = 0
  const c = opened(() => { closed++ })
  await startAll([c])
  t.is(closed, 0)
  await stopAll([c])
  t.is(closed, 1)
})

test('startWhenReady: start returns at once; the component starts after ready succeeds, retrying both', async t => {
  const calls: string[] = []
  let readyCalls = 0
  let startCalls = 0
  let pauses = 0
  let started!: () => void
  const startedOnce = new Promise<void>(resolve => { started = resolve })
  const component: Startable = {
    start: () => {
      startCalls++
      if (startCalls === 1) throw new Error('not yet')
      calls.push('start kubelet')
      started()
    },
    stop: () => { calls.push('stop kubelet') }
  }
  const wrapped = startWhenReady(component, {
    ready: async () => {
      readyCalls++
      if (readyCalls === 1) throw new Error('not caught up')
    },
    pause: async () => { pauses++ }
  })
  await startAll([wrapped])
  await startedOnce
  t.is(readyCalls, 3, 'ready failed once, then succeeded before each start attempt')
  t.is(startCalls, 2, 'the first start failed and was retried')
  t.is(pauses, 2)
  await stopAll([wrapped])
  t.deepEqual(calls, ['start kubelet', 'stop kubelet'])
})

test('startWhenReady: stopped before it could start, the component is never stopped and the retries end', async t => {
  const calls: string[] = []
  let release!: () => void
  const paused = new Promise<void>(resolve => { release = resolve })
  let attempts = 0
  const wrapped = startWhenReady(recorder(calls, 'kubelet'), {
    ready: async () => {
      attempts++
      throw new Error('no leader')
    },
    pause: async () => { await paused }
  })
  await startAll([wrapped])
  await stopAll([wrapped])
  release()
  await new Promise(resolve => setImmediate(resolve))
  t.is(attempts, 1, 'no attempt after stop')
  t.deepEqual(calls, [])
})
