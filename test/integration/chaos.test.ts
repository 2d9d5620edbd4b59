// The chaos suite (test/chaos/) in CI: five real shoald peers on
// 127.0.30.2-6 for a bounded run (3 minutes unless SHOAL_CHAOS_MINUTES says
// otherwise; a fixed seed unless SHOAL_CHAOS_SEED does) with kills, pauses
// and partitions under a KV, Deployment and Service workload; every check
// must pass. A failure names the seed and the command that replays it.
import test from 'ava'
import { runChaos } from '../chaos/suite.ts'

const MINUTES = Number(process.env.SHOAL_CHAOS_MINUTES ?? 3)
const SEED = Number(process.env.SHOAL_CHAOS_SEED ?? 20260611)

test('chaos: kills, pauses and partitions under load leave a consistent, converged cluster', async t => {
  t.timeout(8 * 60_000)
  const result = await runChaos({ peers: 5, minutes: MINUTES, seed: SEED, log: line => { t.log(line) } })
  const failed = result.checks.filter(c => !c.ok)
  t.deepEqual(failed, [], `replay with: ${result.command}`)
  t.true(result.checks.length >= 8, 'every check ran')
  t.log(`longest unavailability ${(result.longestUnavailableMs / 1000).toFixed(2)} s; report in ${result.reportPath}`)
})
