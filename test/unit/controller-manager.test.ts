// The ControllerManager's start on a new leader: controllers start only once
// the `ready` round (main.ts: a ReadIndex, so that the replica has applied
// what was committed before this term) has answered; a failed round is tried
// again at the next poll; a manager stopped meanwhile starts nothing; and
// beforeStop stops the controllers before the Raft node hands over.
import test from 'ava'
import { ControllerManager } from '../../daemon/controllers/framework.ts'
import type { Controller } from '../../daemon/controllers/framework.ts'
import { createLogger } from '../../daemon/log/log.ts'
import { StoreHarness } from '../../daemon/store/testing.ts'
import { FakeClock } from '../helpers/fake-clock.ts'

function probe (): Controller & { starts: number, stops: number } {
  return { name: 'probe', starts: 0, stops: 0, start () { this.starts++ }, stop () { this.stops++ } }
}

function manager (ready: () => Promise<unknown>, c: Controller, leader = { on: true }): { m: ControllerManager, clock: FakeClock } {
  const h = new StoreHarness()
  const clock = new FakeClock()
  const m = new ControllerManager({
    store: h.store,
    writer: { write: async cmd => h.apply(cmd) },
    isLeader: () => leader.on,
    members: () => [],
    clock,
    log: createLogger('silent', 'test'),
    controllers: [c],
    ready
  })
  return { m, clock }
}

const tick = async (): Promise<void> => { for (let i = 0; i < 5; i++) await new Promise(resolve => setImmediate(resolve)) }

test('controllers start once the ready round answers, not before', async t => {
  const c = probe()
  let answer: (() => void) | undefined
  let asked = 0
  const { m, clock } = manager(async () => { asked++; await new Promise<void>(resolve => { answer = resolve }) }, c)
  m.start()
  clock.advance(1000)
  await tick()
  t.is(c.starts, 0, 'not while the replica may lag')
  t.is(asked, 1, 'one round at a time')
  answer?.()
  await tick()
  t.is(c.starts, 1)
  m.stop()
  t.is(c.stops, 1)
})

test('a failed ready round is tried again at the next poll; a stopped manager starts nothing', async t => {
  const c = probe()
  let fail = true
  const { m, clock } = manager(async () => { if (fail) throw new Error('not caught up') }, c)
  m.start()
  await tick()
  t.is(c.starts, 0)
  fail = false
  clock.advance(200)
  await tick()
  t.is(c.starts, 1)
  m.stop()

  const d = probe()
  let answer: (() => void) | undefined
  const other = manager(async () => { await new Promise<void>(resolve => { answer = resolve }) }, d)
  other.m.start()
  other.m.stop()
  answer?.()
  await tick()
  t.is(d.starts, 0)
})

test('beforeStop stops the controllers', async t => {
  const c = probe()
  const { m } = manager(async () => {}, c)
  m.start()
  await tick()
  t.is(c.starts, 1)
  m.beforeStop()
  t.is(c.stops, 1)
  m.stop()
  t.is(c.stops, 1, 'stopped once')
})
