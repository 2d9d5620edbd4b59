// A CronJob's next run in the browser, with the same parser the CronJob
// controller uses (croner, vendored under /ui/vendor/croner/) and the same
// reading of a schedule as protocol/cron.ts: exactly 5 fields or one of the
// @-macros, in spec.timeZone, UTC when it has none. The server has already
// checked the schedule; one this cannot read has no next run.
// May import: croner.
import { Cron } from 'croner'

const MACROS = {
  '@yearly': '0 0 1 1 *',
  '@annually': '0 0 1 1 *',
  '@monthly': '0 0 1 * *',
  '@weekly': '0 0 * * 0',
  '@daily': '0 0 * * *',
  '@midnight': '0 0 * * *',
  '@hourly': '0 * * * *'
}

/** The first scheduled time (ms) after `now`, or undefined. */
export function nextRun (/** @type {unknown} */ schedule, /** @type {unknown} */ timeZone, now = Date.now()) {
  if (typeof schedule !== 'string') return undefined
  const s = schedule.trim()
  const pattern = s.startsWith('@') ? MACROS[s.toLowerCase()] : s.split(/\s+/).length === 5 ? s : undefined
  if (pattern === undefined) return undefined
  try {
    const next = new Cron(pattern, { paused: true, timezone: typeof timeZone === 'string' ? timeZone : 'UTC' }).nextRun(new Date(now))
    return next === null ? undefined : next.getTime()
  } catch {
    return undefined
  }
}
