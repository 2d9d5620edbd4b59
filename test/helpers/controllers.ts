// Controller tests over an in-process store: a ControllerContext on a
// StoreHarness and a manual clock, controllers started on it, and settle(),
// which lets their queues drain (moving the clock 60 ms a turn) until the
// store stops changing.
import { rfc3339 } from '../../daemon/controllers/framework.ts'
import { EventRecorder } from '../../daemon/record/recorder.ts'
import type { Controller, ControllerContext, MemberHealthView } from '../../daemon/controllers/framework.ts'
import { createLogger } from '../../daemon/log/log.ts'
import { StoreHarness } from '../../daemon/store/testing.ts'
import type { StoreCommand, StoreResult } from '../../daemon/store/types.ts'
import type { KObject } from '../../protocol/k8s.ts'
import { FakeClock } from './fake-clock.ts'

export function controllerContext (h: StoreHarness, clock: FakeClock, members: MemberHealthView[] = []): ControllerContext {
  let uids = 0
  const write = async <T extends KObject = KObject>(cmd: StoreCommand): Promise<StoreResult<T>> => h.apply<T>(cmd)
  return {
    store: h.store,
    write,
    clock,
    log: createLogger('silent', 'test'),
    members: () => members,
    events: new EventRecorder(write, clock),
    uid: () => `ctl-${++uids}`,
    now: () => rfc3339(clock.now())
  }
}

export interface ControllerEnv { h: StoreHarness, clock: FakeClock, settle: () => Promise<void>, stop: () => void }

/** A store, a context over it and `controllers` started on it. */
export function startControllers (controllers: Controller[], start = '2025-01-01T00:00:00Z'): ControllerEnv {
  const h = new StoreHarness()
  const clock = new FakeClock(Date.parse(start))
  const ctx = controllerContext(h, clock)
  for (const c of controllers) c.start(ctx)
  const settle = async (): Promise<void> => {
    let last = ''
    let stable = 0
    for (let i = 0; i < 1000 && stable < 5; i++) {
      await new Promise(resolve => setImmediate(resolve))
      clock.advance(60)
      const rv = h.store.resourceVersion()
      stable = rv === last ? stable + 1 : 0
      last = rv
    }
  }
  return { h, clock, settle, stop: () => { for (const c of controllers) c.stop() } }
}
