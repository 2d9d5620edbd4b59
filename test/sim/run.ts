// Runs the Raft simulation from the command line: one seed to replay a
// failure with its trace, or a range of seeds to hunt for one.
//   node test/sim/run.ts --nodes 3 --seed 42 [--trace]
//   node test/sim/run.ts --nodes 5 --from 1 --seeds 1000     (--count is the same as --seeds)
//   npm run sim -- --seeds 100000
// May import: this folder.
import { parseArgs } from 'node:util'
import { SimFailure, simulate } from './sim.ts'
import type { SimReport } from './sim.ts'

const { values } = parseArgs({
  options: {
    nodes: { type: 'string', default: '3' },
    seed: { type: 'string' },
    from: { type: 'string', default: '1' },
    seeds: { type: 'string' },
    count: { type: 'string' },
    trace: { type: 'boolean', default: false }
  }
})

const nodes = Number(values.nodes)
const count = Number(values.seeds ?? values.count ?? 100)
const seeds = values.seed !== undefined
  ? [Number(values.seed)]
  : Array.from({ length: count }, (_, i) => Number(values.from) + i)

let failures = 0
const failed: number[] = []
const reports: SimReport[] = []
const started = performance.now()
for (const seed of seeds) {
  try {
    reports.push(simulate({ seed, nodes, traceMessages: values.trace }))
  } catch (err) {
    if (!(err instanceof SimFailure)) throw err
    failures++
    failed.push(seed)
    console.error(err.message)
  }
}
const ms = performance.now() - started
if (seeds.length === 1 && reports[0] !== undefined) console.log(reports[0])
const sum = (f: (r: SimReport) => number): number => reports.reduce((s, r) => s + f(r), 0)
const max = (f: (r: SimReport) => number): number => reports.reduce((m, r) => Math.max(m, f(r)), 0)
console.log(`${seeds.length} seeds, ${nodes} nodes, ${failures} failed, ${sum(r => r.acknowledged)} acknowledged, ` +
  `liveness commit <= ${max(r => r.livenessCommitTicks)} ticks, converge <= ${max(r => r.livenessConvergeTicks)} ticks`)
console.log(`clients: ${sum(r => r.clientOps)} ops checked linearizable (${sum(r => r.clientReads)} reads, ${sum(r => r.clientUnknown)} of unknown outcome); ` +
  `${sum(r => r.configChanges)} config changes, ${sum(r => r.transfers)} transfers, ` +
  `${sum(r => r.snapshotsTaken)} snapshots taken, ${sum(r => r.snapshotsInstalled)} installed`)
if (seeds.length > 1) {
  const slowest = [...reports].sort((a, b) => b.livenessCommitTicks - a.livenessCommitTicks).slice(0, 5)
  console.log('slowest to commit after healing: ' + slowest.map(r => `seed ${r.seed} (${r.livenessCommitTicks} ticks)`).join(', '))
}
if (failed.length > 0) {
  console.log(`failing seeds: ${failed.slice(0, 20).join(', ')}${failed.length > 20 ? ', …' : ''}`)
  console.log(`replay one: node test/sim/run.ts --nodes ${nodes} --seed ${failed[0] ?? 0} --trace`)
}
console.log(`${(ms / seeds.length).toFixed(1)} ms/seed, ${(seeds.length / (ms / 1000)).toFixed(0)} seeds/s`)
process.exitCode = failures > 0 ? 1 : 0
