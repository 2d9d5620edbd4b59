#!/usr/bin/env node
// shoald's entry point: parse flags, start, and stop cleanly on SIGTERM/SIGINT.
import { CommanderError } from 'commander'
import { helpText, parseDaemonArgs, UsageError } from './config/flags.ts'
import type { DaemonConfig } from './config/flags.ts'
import { startDaemon } from './main.ts'
import { KeyError } from './p2p/keys.ts'

let config: DaemonConfig
try {
  config = parseDaemonArgs(process.argv.slice(2))
} catch (err) {
  if (err instanceof CommanderError && err.exitCode === 0) {
    if (err.code === 'commander.helpDisplayed' || err.code === 'commander.help') process.stdout.write(helpText())
    else process.stdout.write(err.message.endsWith('\n') ? err.message : err.message + '\n')
    process.exit(0)
  }
  process.stderr.write(`shoald: ${(err as Error).message}\n`)
  process.exit(err instanceof UsageError ? 2 : 1)
}

try {
  const daemon = await startDaemon(config)
  // A daemon never dies of one bad request or one broken stream: log and go on.
  process.on('uncaughtException', (err) => { daemon.log.error({ event: 'uncaught', err: err.stack }, `uncaught error: ${err.message}`) })
  process.on('unhandledRejection', (err) => { daemon.log.error({ event: 'unhandled', err: (err as Error)?.stack ?? String(err) }, `unhandled rejection: ${(err as Error)?.message ?? String(err)}`) })
  let signalled = false
  const onSignal = (signal: string): void => {
    if (signalled) process.exit(1)
    signalled = true
    daemon.log.info({ event: 'signal', signal }, `received ${signal}`)
    const hardStop = setTimeout(() => { process.exit(1) }, 10_000)
    hardStop.unref()
    daemon.stop().then(() => process.exit(0), () => process.exit(1))
  }
  process.on('SIGTERM', () => { onSignal('SIGTERM') })
  process.on('SIGINT', () => { onSignal('SIGINT') })
} catch (err) {
  process.stderr.write(`shoald: ${(err as Error).message}\n`)
  process.exit(err instanceof KeyError ? 2 : 1)
}
