// Runs the Raft simulation from the command line: one seed to replay a
// failure with its trace, or a range of seeds to hunt for one.
//   node test/sim/run.ts --nodes 3 --seed 42 [--trace]
//   node test/sim/run.ts --nodes 5 --from 1 --count 1000
// May import: this folder.
import { parseArgs } from 'node:util'
import { SimFailure, simulate } from './sim.ts'
import type { SimReport } from './sim.ts'

const { values } = parseArgs({
  options: {
    nodes: { type: 'string', default: '3' },
    seed: { type: 'string' },
    from: { type: 'string', default: '1' },
    count: { type: 'string', default: '100' },
    trace: { type: 'boolean', default: false }
  }
})

const nodes = Number(values.nodes)
const seeds = values.seed !== undefined
  ? [Number(values.seed)]
  : Array.from({ length: Number(values.count) }, (_, i) => Number(values.from) + i)

let failures = 0
const reports: SimReport[] = []
const started = performance.now()
for (const seed of seeds) {
  try {
    reports.push(simulate({ seed, nodes, traceMessages: values.trace }))
  } catch (err) {
    if (!(err instanceof SimFailure)) throw err
    failures++
    console.error(err.message)
  }
}
const ms = performance.now() - started
if (seeds.length === 1 && reports[0] !== undefined) console.log(reports[0])
const worst = reports.reduce((m, r) => Math.max(m, r.livenessCommitTicks), 0)
const worstConverge = reports.reduce((m, r) => Math.max(m, r.livenessConvergeTicks), 0)
const acked = reports.reduce((s, r) => s + r.acknowledged, 0)
console.log(`${seeds.length} seeds, ${nodes} nodes, ${failures} failed, ${acked} acknowledged, ` +
  `liveness commit <= ${worst} ticks, converge <= ${worstConverge} ticks, ${(ms / seeds.length).toFixed(1)} ms/seed`)
if (seeds.length > 1) {
  const slowest = [...reports].sort((a, b) => b.livenessCommitTicks - a.livenessCommitTicks).slice(0, 5)
  console.log('slowest to commit after healing: ' + slowest.map(r => `seed ${r.seed} (${r.livenessCommitTicks} ticks)`).join(', '))
}
process.exitCode = failures > 0 ? 1 : 0
