// Time and randomness, injected into every core so that tests and the
// simulator can drive them deterministically. Only this file (and the
// composition root) touches the real clock, timers and Math.random.

export type TimerHandle = { readonly id: number } | ReturnType<typeof setTimeout>

export interface Clock {
  /** wall-clock milliseconds since the epoch */
  now (): number
  setTimeout (fn: () => void, ms: number): TimerHandle
  clearTimeout (handle: TimerHandle): void
}

export interface Rng {
  /** a float in [0, 1) */
  next (): number
}

export const systemClock: Clock = {
  now: () => Date.now(),
  setTimeout: (fn, ms) => {
    const t = setTimeout(fn, ms)
    t.unref?.()
    return t
  },
  clearTimeout: (h) => { clearTimeout(h as ReturnType<typeof setTimeout>) }
}

export const systemRng: Rng = { next: () => Math.random() }

/** A seeded PRNG (mulberry32): the same seed gives the same sequence. */
export function seededRng (seed: number): Rng {
  let a = seed >>> 0
  return {
    next () {
      a = (a + 0x6D2B79F5) >>> 0
      let t = a
      t = Math.imul(t ^ (t >>> 15), t | 1)
      t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
      return ((t ^ (t >>> 14)) >>> 0) / 4294967296
    }
  }
}

/** Pick one element uniformly, or undefined from an empty list. */
export function pick<T> (rng: Rng, items: readonly T[]): T | undefined {
  if (items.length === 0) return undefined
  return items[Math.floor(rng.next() * items.length)]
}

/** Calls `fn` every `ms` on the given clock until the returned stop is called. */
export function every (clock: Clock, ms: number, fn: () => void): () => void {
  let stopped = false
  let handle: TimerHandle | undefined
  const loop = (): void => {
    if (stopped) return
    fn()
    if (!stopped) handle = clock.setTimeout(loop, ms)
  }
  handle = clock.setTimeout(loop, ms)
  return () => {
    stopped = true
    if (handle !== undefined) clock.clearTimeout(handle)
  }
}
