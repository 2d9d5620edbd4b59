// CronJob schedule skew: how late after its scheduled time a CronJob's Job
// appears. Three real shoald peers (127.0.152.5-7, process runtime), N
// CronJobs (default 20) every minute for M scheduled minutes (default 3).
// Each Job carries its scheduled time (the
// batch.kubernetes.io/cronjob-scheduled-timestamp annotation); the skew is
// taken two ways: its creationTimestamp minus the scheduled time (what
// Kubernetes' cronjob_controller_job_creation_skew measures; 1 s resolution),
// and the wall-clock time a watch on each peer received the Job minus the
// scheduled time (ms resolution; the peers and this client share the host's
// clock). Goal: p99 ≤ 1 s.
// May import: test/helpers/cluster.ts, ./load.ts, ./stats.ts.
import { performance } from 'node:perf_hooks'
import { api, startCluster, stopAll, waitFor, waitForLeader } from '../helpers/cluster.ts'
import { watchEvents } from './load.ts'
import { max, percentile, sleep } from './stats.ts'

const IPS = ['127.0.152.5', '127.0.152.6', '127.0.152.7']
const SCHEDULED = 'batch.kubernetes.io/cronjob-scheduled-timestamp'

export interface SkewStats { min: number, p50: number, p99: number, max: number }

export interface CronJobFigures {
  cronJobs: number
  minutes: number
  /** Jobs seen (cronJobs × minutes when every run was made) */
  jobs: number
  /** creationTimestamp − scheduled time, ms (1 s resolution) */
  created: SkewStats
  /** arrival at a watch on the leader − scheduled time, ms */
  watchLeader: SkewStats
  /** arrival at a watch on the last peer to see it − scheduled time, ms */
  watchAllPeers: SkewStats
  /** Jobs made twice for one scheduled time (must be 0) */
  duplicates: number
}

function stats (xs: number[]): SkewStats {
  return { min: Math.min(...xs), p50: percentile(xs, 50), p99: percentile(xs, 99), max: max(xs) }
}

export async function measureCronJobSkew (opts: { cronJobs?: number, minutes?: number, log: (line: string) => void }): Promise<CronJobFigures> {
  const n = opts.cronJobs ?? 20
  const minutes = opts.minutes ?? 3
  const { dir, peers } = await startCluster('benchcron', IPS)
  const stops: Array<() => void> = []
  try {
    const leader = await waitForLeader(peers, 60_000)
    // Per Job name: its scheduled time, creationTimestamp, and when each peer's watch saw it.
    const seen = new Map<string, { scheduled: number, created: number, arrivals: Map<number, number> }>()
    let duplicates = 0
    const names = new Set<string>()
    for (const [i, peer] of peers.entries()) {
      stops.push(await watchEvents(`${peer.apiUrl}/apis/batch/v1/namespaces/default/jobs?watch=1`, peer.token(), (e, at) => {
        if (e.type !== 'ADDED') return
        const meta = e.object.metadata as { name: string, uid?: string, creationTimestamp?: string, annotations?: Record<string, string> }
        const stamp = meta.annotations?.[SCHEDULED]
        if (stamp === undefined) return
        if (i === 0) {
          if (names.has(meta.name)) duplicates++
          names.add(meta.name)
        }
        const entry = seen.get(meta.name) ?? { scheduled: Date.parse(stamp), created: Date.parse(meta.creationTimestamp ?? ''), arrivals: new Map() }
        entry.arrivals.set(i, performance.timeOrigin + at)
        seen.set(meta.name, entry)
      }))
    }
    const leaderIndex = peers.indexOf(leader)
    // Start just after a minute boundary, so that no CronJob is created across one.
    const toBoundary = 60_000 - (Date.now() % 60_000)
    if (toBoundary < 10_000) await sleep(toBoundary + 1000)
    const firstRun = Math.ceil(Date.now() / 60_000) * 60_000
    for (let i = 0; i < n; i++) {
      const r = await api(leader, 'POST', '/apis/batch/v1/namespaces/default/cronjobs', {
        apiVersion: 'batch/v1',
        kind: 'CronJob',
        metadata: { name: `skew-${i}` },
        spec: {
          schedule: '*/1 * * * *',
          successfulJobsHistoryLimit: minutes,
          jobTemplate: { spec: { template: { spec: { restartPolicy: 'Never', terminationGracePeriodSeconds: 1, containers: [{ name: 'c', image: 'busybox', command: ['true'] }] } } } }
        }
      })
      if (r.status !== 201) throw new Error(`creating skew-${i}: ${r.status} ${JSON.stringify(r.body)}`)
    }
    const lastRun = firstRun + (minutes - 1) * 60_000
    opts.log(`  cronjob: ${n} CronJobs every minute; runs at ${new Date(firstRun).toISOString()} … ${new Date(lastRun).toISOString()}`)
    const complete = (): boolean => [...seen.values()].filter(s => s.scheduled >= firstRun && s.scheduled <= lastRun && s.arrivals.size === peers.length).length >= n * minutes
    await waitFor(`${n * minutes} Jobs seen by every peer`, complete, lastRun - Date.now() + 30_000, 200)
    const runs = [...seen.values()].filter(s => s.scheduled >= firstRun && s.scheduled <= lastRun)
    const figures: CronJobFigures = {
      cronJobs: n,
      minutes,
      jobs: runs.length,
      created: stats(runs.map(s => s.created - s.scheduled)),
      watchLeader: stats(runs.map(s => (s.arrivals.get(leaderIndex) as number) - s.scheduled)),
      watchAllPeers: stats(runs.map(s => Math.max(...s.arrivals.values()) - s.scheduled)),
      duplicates
    }
    opts.log(`  cronjob: ${figures.jobs} Jobs; watch on the leader p50 ${figures.watchLeader.p50.toFixed(0)} ms, p99 ${figures.watchLeader.p99.toFixed(0)} ms; every peer p99 ${figures.watchAllPeers.p99.toFixed(0)} ms; creationTimestamp p99 ${figures.created.p99} ms`)
    return figures
  } finally {
    for (const s of stops) s()
    await stopAll(peers, dir)
  }
}

// `node test/bench/cronjob.ts [cronJobs] [minutes]` prints the figures.
if (import.meta.main) {
  const [cronJobs, minutes] = process.argv.slice(2).map(Number)
  const figures = await measureCronJobSkew({
    ...(cronJobs !== undefined && Number.isFinite(cronJobs) ? { cronJobs } : {}),
    ...(minutes !== undefined && Number.isFinite(minutes) ? { minutes } : {}),
    log: line => { process.stderr.write(line + '\n') }
  })
  process.stdout.write(JSON.stringify(figures, null, 2) + '\n')
}
