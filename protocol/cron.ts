// CronJob schedules: the standard 5-field syntax and the `@hourly`-style
// macros, in a time zone, read by the maintained `croner` parser. Kubernetes
// (robfig/cron's standard parser) takes exactly 5 fields, so croner's
// optional seconds and years fields are refused here, and so is a `TZ=` or
// `CRON_TZ=` prefix (spec.timeZone says the zone instead).
// May import: nothing of Shoal's.
import { Cron } from 'croner'

const MACROS: Record<string, string> = {
  '@yearly': '0 0 1 1 *',
  '@annually': '0 0 1 1 *',
  '@monthly': '0 0 1 * *',
  '@weekly': '0 0 * * 0',
  '@daily': '0 0 * * *',
  '@midnight': '0 0 * * *',
  '@hourly': '0 * * * *'
}

/** The 5-field pattern a schedule means, or an Error saying why it is not one. */
function patternOf (schedule: string): string | Error {
  const s = schedule.trim()
  if (/^(CRON_)?TZ=/.test(s)) return new Error('cannot use TZ or CRON_TZ in schedule, use timeZone field instead')
  if (s.startsWith('@')) return MACROS[s.toLowerCase()] ?? new Error(`unrecognized descriptor: ${s}`)
  const fields = s.split(/\s+/).filter(f => f !== '')
  if (fields.length !== 5) return new Error(`expected exactly 5 fields, found ${fields.length}: ${s}`)
  return fields.join(' ')
}

/** Why a time zone name is not one the runtime knows; undefined if it is. */
export function timeZoneError (tz: string): string | undefined {
  if (tz === '' || tz.trim() !== tz) return 'unknown time zone ' + tz
  try {
    // eslint-disable-next-line no-new
    new Intl.DateTimeFormat('en-US', { timeZone: tz })
    return undefined
  } catch {
    return `unknown time zone ${tz}`
  }
}

function cronOf (schedule: string, timeZone: string | undefined): Cron | Error {
  const pattern = patternOf(schedule)
  if (pattern instanceof Error) return pattern
  try {
    return new Cron(pattern, { paused: true, ...(timeZone !== undefined ? { timezone: timeZone } : { timezone: 'UTC' }) })
  } catch (err) {
    return new Error((err as Error).message.replace(/^CronPattern: /, ''))
  }
}

/** Why a schedule is not a valid 5-field cron schedule (or macro); undefined if it is. */
export function scheduleError (schedule: string): string | undefined {
  const c = cronOf(schedule, undefined)
  return c instanceof Error ? c.message : undefined
}

/**
 * The scheduled times (ms) after `afterMs` (exclusive) up to `untilMs`
 * (inclusive), at most `limit` of them, for a valid schedule in `timeZone`
 * (UTC when undefined). Throws on an invalid schedule.
 */
export function scheduledTimes (schedule: string, timeZone: string | undefined, afterMs: number, untilMs: number, limit: number): number[] {
  const c = cronOf(schedule, timeZone)
  if (c instanceof Error) throw c
  const out: number[] = []
  let from = new Date(afterMs)
  while (out.length < limit) {
    const next = c.nextRun(from)
    if (next === null || next.getTime() > untilMs) break
    out.push(next.getTime())
    from = next
  }
  return out
}

/** The first scheduled time after `afterMs`, or undefined if there is none. */
export function nextScheduledTime (schedule: string, timeZone: string | undefined, afterMs: number): number | undefined {
  const c = cronOf(schedule, timeZone)
  if (c instanceof Error) return undefined
  return c.nextRun(new Date(afterMs))?.getTime()
}
