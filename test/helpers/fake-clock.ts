// A manual clock for unit tests: time moves only when the test says so.
import type { Clock, TimerHandle } from '../../daemon/clock/clock.ts'

interface Timer { id: number, at: number, fn: () => void }

export class FakeClock implements Clock {
  private current: number
  private nextId = 1
  private timers: Timer[] = []

  constructor (start = 1_700_000_000_000) { this.current = start }

  now (): number { return this.current }

  setTimeout (fn: () => void, ms: number): TimerHandle {
    const timer = { id: this.nextId++, at: this.current + Math.max(0, ms), fn }
    this.timers.push(timer)
    return { id: timer.id }
  }

  clearTimeout (handle: TimerHandle): void {
    const id = (handle as { id: number }).id
    this.timers = this.timers.filter(t => t.id !== id)
  }

  /** Moves time forward, firing due timers in order. */
  advance (ms: number): void {
    const end = this.current + ms
    for (;;) {
      this.timers.sort((a, b) => a.at - b.at || a.id - b.id)
      const due = this.timers[0]
      if (due === undefined || due.at > end) break
      this.timers.shift()
      this.current = due.at
      due.fn()
    }
    this.current = end
  }
}
