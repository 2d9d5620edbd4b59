// Structured logs: one JSON line per event, to stderr, through pino.
import { pino } from 'pino'
import type { Logger as PinoLogger } from 'pino'

export type Logger = PinoLogger
export const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'] as const
export type LogLevel = typeof LOG_LEVELS[number]

export function createLogger (level: LogLevel, name: string): Logger {
  return pino({ level, base: { peer: name } }, pino.destination({ fd: 2, sync: true }))
}
