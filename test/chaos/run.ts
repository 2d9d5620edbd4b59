// The chaos suite from the command line:
//   npm run chaos -- --peers 5 --minutes 3 --seed 42
// Exit status 0 when every check passes, 1 when one fails (the seed and the
// command that replays the schedule are printed), 2 for bad arguments.
// Writes chaos-report.md and chaos-report.svg in the working directory.
// May import: this folder.
import { parseArgs } from 'node:util'
import { MAX_PEERS, MIN_PEERS, runChaos } from './suite.ts'

const USAGE = `usage: npm run chaos -- [--peers N (${MIN_PEERS}-${MAX_PEERS}, default 5)] [--minutes M (default 3)] [--seed S (default: random)] [--out DIR]`

function usage (message: string): never {
  console.error(`chaos: ${message}\n${USAGE}`)
  process.exit(2)
}

let values: { peers?: string, minutes?: string, seed?: string, out?: string, help?: boolean }
try {
  values = parseArgs({
    options: {
      peers: { type: 'string', default: '5' },
      minutes: { type: 'string', default: '3' },
      seed: { type: 'string' },
      out: { type: 'string' },
      help: { type: 'boolean', short: 'h' }
    },
    strict: true,
    allowPositionals: false
  }).values
} catch (err) {
  usage((err as Error).message)
}
if (values.help === true) {
  console.log(USAGE)
  process.exit(0)
}
const peers = Number(values.peers)
const minutes = Number(values.minutes)
const seed = values.seed === undefined ? Math.floor(Math.random() * 2 ** 31) : Number(values.seed)
if (!Number.isInteger(peers) || peers < MIN_PEERS || peers > MAX_PEERS) usage(`--peers must be a whole number from ${MIN_PEERS} to ${MAX_PEERS}, not "${values.peers ?? ''}"`)
if (!Number.isFinite(minutes) || minutes <= 0 || minutes > 24 * 60) usage(`--minutes must be a positive number of minutes, not "${values.minutes ?? ''}"`)
if (!Number.isSafeInteger(seed) || seed < 0) usage(`--seed must be a whole number, not "${values.seed ?? ''}"`)

// A crash still runs the suite's exit handler, which removes the iptables rules and kills the peers.
const crash = (err: unknown): void => {
  console.error(`chaos: crashed (seed ${seed}): ${(err as Error)?.stack ?? String(err)}`)
  process.exit(1)
}
process.on('uncaughtException', crash)
process.on('unhandledRejection', crash)

const result = await runChaos({ peers, minutes, seed, ...(values.out !== undefined ? { outDir: values.out } : {}) })
if (!result.ok) {
  for (const c of result.checks.filter(c => !c.ok)) console.error(`chaos: failed check: ${c.name}: ${c.detail}`)
  console.error(`chaos: seed ${seed}; replay with: ${result.command}`)
}
process.exit(result.ok ? 0 : 1)
