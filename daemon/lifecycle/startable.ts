// Owns the lifecycle of the daemon's components, in the style of
// js-libp2p's Startable: the Startable interface (start, stop and an
// optional beforeStop), startAll and stopAll, which start an ordered list
// and stop it in reverse (a failed start stops what already started, in
// reverse, before the error goes on), and two adapters: `opened`, for what
// its factory already opened, and `startWhenReady`, for a component started
// behind the start-up once something it needs is true. Any component may
// import it; it imports nothing of ours.

export interface Startable {
  start: () => void | Promise<void>
  /**
   * Called on every started component, the last started first, before any
   * of them stops: for work that needs the others still running (a Raft
   * leader handing over).
   */
  beforeStop?: () => void | Promise<void>
  stop: () => void | Promise<void>
}

/**
 * Starts the components in order. If one fails, those already started are
 * stopped (beforeStop, then stop, the last started first) and the start's
 * error is rethrown; an error while stopping them is dropped for it.
 */
export async function startAll (components: readonly Startable[]): Promise<void> {
  const started: Startable[] = []
  for (const c of components) {
    try {
      await c.start()
    } catch (err) {
      await stopAll(started).catch(() => {})
      throw err
    }
    started.push(c)
  }
}

/**
 * Calls beforeStop on every component, then stop on every component, each
 * time the last of the list first. One that fails does not keep the others
 * from stopping; the first error is rethrown at the end.
 */
export async function stopAll (components: readonly Startable[]): Promise<void> {
  const reversed = [...components].reverse()
  const errors: unknown[] = []
  for (const c of reversed) {
    try { await c.beforeStop?.() } catch (err) { errors.push(err) }
  }
  for (const c of reversed) {
    try { await c.stop() } catch (err) { errors.push(err) }
  }
  if (errors.length > 0) throw errors[0]
}

/** Something its factory already opened (a database, a listening host): nothing to start, and `close` to stop it. */
export function opened (close: () => void | Promise<void>): Startable {
  return { start: () => {}, stop: close }
}

export interface StartWhenReadyOptions {
  /** must succeed before each start attempt (a read barrier, say) */
  ready: () => Promise<unknown>
  /** waits between failed attempts */
  pause: () => Promise<void>
}

/**
 * Starts `component` behind the start-up, so that the components after it
 * need not wait: once `ready()` resolves, it is started; a failure of either
 * is retried after `pause()` until one attempt succeeds or stop is called.
 * stop ends the retries and stops the component only if its start
 * succeeded.
 */
export function startWhenReady (component: Startable, options: StartWhenReadyOptions): Startable {
  let stopping = false
  let started = false
  const attempt = async (): Promise<void> => {
    while (!stopping) {
      try {
        await options.ready()
        await component.start()
        started = true
        return
      } catch {
        await options.pause()
      }
    }
  }
  return {
    start: () => { void attempt() },
    beforeStop: async () => { if (started) await component.beforeStop?.() },
    stop: async () => {
      stopping = true
      if (started) await component.stop()
    }
  }
}
