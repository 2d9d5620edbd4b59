// How every failure of `shoal` ends: one `shoal: <message>` line (and, with
// --verbose, the details under it) and an exit status: 0 ok, 1 failed, 2 bad
// usage. Every command file throws these; main.ts turns them into output.
// May import: ./client.ts (the Attempt type).
import type { Attempt } from './client.ts'

export const EXIT_OK = 0
export const EXIT_FAILED = 1
export const EXIT_USAGE = 2

/** Ends the run with one `shoal: <message>` line; `details` are printed under it with --verbose. */
export class CliError extends Error {
  override name = 'CliError'
  readonly exitCode: number
  readonly details: string[]
  constructor (message: string, exitCode: number = EXIT_FAILED, details: string[] = []) {
    super(message)
    this.exitCode = exitCode
    this.details = details
  }
}

/** One failed try at one server, as --verbose prints it. */
export function describeAttempt (a: Attempt): string {
  return `${a.server}: ${a.reason} after ${a.elapsedMs}ms (${a.detail})`
}
