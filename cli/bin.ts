#!/usr/bin/env node
// shoal's entry point: run main with the real process, keep its exit status.
import { main } from './main.ts'

// `shoal members | head -1` closes the pipe early: that is not an error to report.
process.stdout.on('error', (err: NodeJS.ErrnoException) => {
  if (err.code === 'EPIPE') process.exit(process.exitCode ?? 0)
  throw err
})

process.exitCode = await main(process.argv.slice(2), { stdout: process.stdout, stderr: process.stderr, env: process.env })
