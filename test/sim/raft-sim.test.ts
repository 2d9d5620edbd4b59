// The Raft simulation over many seeds: each seed runs a safety phase with
// crashes, partitions, loss, duplication and reordering under continuous
// invariant checks, then a liveness phase that must commit after healing.
// A failure names its seed and the command that replays it.
// SHOAL_SIM_FROM shifts the window of seeds, to explore beyond the usual ones.
import test from 'ava'
import { SimFailure, simulate } from './sim.ts'
import type { SimReport } from './sim.ts'

const from = Number(process.env.SHOAL_SIM_FROM ?? 1)

function runSeeds (nodes: number, count: number): { reports: SimReport[], failures: SimFailure[] } {
  const reports: SimReport[] = []
  const failures: SimFailure[] = []
  for (let seed = from; seed < from + count && failures.length < 3; seed++) {
    try {
      reports.push(simulate({ seed, nodes }))
    } catch (err) {
      if (!(err instanceof SimFailure)) throw err
      failures.push(err)
    }
  }
  return { reports, failures }
}

function summary (reports: readonly SimReport[]): string {
  const sum = (f: (r: SimReport) => number): number => reports.reduce((s, r) => s + f(r), 0)
  const max = (f: (r: SimReport) => number): number => reports.reduce((m, r) => Math.max(m, f(r)), 0)
  return `${reports.length} seeds: ${sum(r => r.acknowledged)} writes acknowledged, ${sum(r => r.crashes)} crashes, ` +
    `${sum(r => r.partitions)} partitions, ${sum(r => r.leaderTerms)} leader terms; after healing, commit within ` +
    `${max(r => r.livenessCommitTicks)} ticks and every node caught up within ${max(r => r.livenessConvergeTicks)}`
}

for (const [nodes, count] of [[3, 400], [5, 200]] as const) {
  test(`${nodes} nodes, ${count} seeds: safety under faults, then liveness`, t => {
    const { reports, failures } = runSeeds(nodes, count)
    for (const f of failures) t.log(f.message)
    t.deepEqual(failures.map(f => f.seed), [], 'failing seeds')
    t.true(reports.every(r => r.acknowledged > 0), 'every seed acknowledged some writes')
    t.log(summary(reports))
  })
}

test('a seed replays exactly', t => {
  t.deepEqual(simulate({ seed: 7, nodes: 5 }), simulate({ seed: 7, nodes: 5 }))
})

test('a failure names its seed and the command that replays it', t => {
  // No time to elect a leader before the liveness deadline.
  const err = t.throws(() => simulate({ seed: 42, nodes: 3, safetyTicks: 0, livenessTicks: 0 }), { instanceOf: SimFailure })
  t.is(err?.seed, 42)
  t.regex(err?.message ?? '', /seed=42 nodes=3 .*liveness/)
  t.regex(err?.message ?? '', /node test\/sim\/run\.ts --nodes 3 --seed 42 --trace/)
})
