// Job throughput on three real shoald peers (127.0.151.12-14, process
// runtime): one Job of 1,000 one-second pods (`sleep 1`) with parallelism 50,
// timed from its create until its Complete condition, against the ideal of
// completions / parallelism × the pod's run time (20 s). Also: the Job's own
// startTime to completionTime, how full the 50 slots were kept (the mean of
// the active pods a watch on a follower sees, sampled every 100 ms), and the
// CPU each peer used during the run.
// `node test/bench/jobs.ts [runs]` prints the figures of each run and, for
// several runs, their median and worst. Each run also gives where a pod's
// time goes (the medians of scheduling, start, run and replacement), to tell
// the Job controller's part from the scheduler's and the kubelet's.
// May import: test/helpers/cluster.ts, ./load.ts, ./stats.ts.
import { performance } from 'node:perf_hooks'
import { api, startCluster, stopAll, waitFor, waitForLeader, waitForReadyNodes } from '../helpers/cluster.ts'
import type { Peer } from '../helpers/cluster.ts'
import { watchEvents } from './load.ts'
import { cpuMs, max, median, sleep } from './stats.ts'

const IPS = ['127.0.151.12', '127.0.151.13', '127.0.151.14']

export interface JobFigures {
  completions: number
  parallelism: number
  podSeconds: number
  /** create to the Complete condition, as a client sees it, in ms */
  wallMs: number
  /** completions / parallelism × podSeconds, in ms */
  idealMs: number
  /** status.startTime to status.completionTime (whole seconds, as Kubernetes writes them), in ms */
  statusMs: number
  succeeded: number
  failed: number
  /** pods the Job made (succeeded + failed; none more should exist) */
  pods: number
  /** mean active pods over the run, as a follower's watch saw them */
  meanActive: number
  maxActive: number
  /** CPU used by each peer during the run, in ms */
  cpuMs: number[]
  /** medians over the pods, as a follower saw them, in ms: created to bound (the scheduler), bound to Running (the kubelet starting it), Running to finished */
  bindMs: number
  startMs: number
  runMs: number
  /** median time from a pod finishing to the creation of the pod that took its slot (the Job controller's part, with the Raft rounds it waits for) */
  replaceMs: number
}

/** The medians of each step of a pod's life; the n-th finish frees the slot the (n + parallelism)-th pod takes. */
function phases (pods: Array<{ added: number, bound?: number, running?: number, finished?: number }>, parallelism: number): Pick<JobFigures, 'bindMs' | 'startMs' | 'runMs' | 'replaceMs'> {
  const step = (from: (p: typeof pods[number]) => number | undefined, to: (p: typeof pods[number]) => number | undefined): number =>
    median(pods.flatMap(p => { const a = from(p); const b = to(p); return a !== undefined && b !== undefined ? [b - a] : [] }))
  const added = pods.map(p => p.added).sort((a, b) => a - b)
  const finished = pods.flatMap(p => p.finished ?? []).sort((a, b) => a - b)
  const gaps = finished.flatMap((f, i) => { const next = added[i + parallelism]; return next !== undefined ? [next - f] : [] })
  return { bindMs: step(p => p.added, p => p.bound), startMs: step(p => p.bound, p => p.running), runMs: step(p => p.running, p => p.finished), replaceMs: median(gaps) }
}

export interface JobBenchOptions {
  log: (line: string) => void
  completions?: number
  parallelism?: number
  podSeconds?: number
}

export async function measureJobs (opts: JobBenchOptions): Promise<JobFigures> {
  const completions = opts.completions ?? 1000
  const parallelism = opts.parallelism ?? 50
  const podSeconds = opts.podSeconds ?? 1
  const { dir, peers } = await startCluster('benchjob', IPS, ['--dns-port', '0'])
  const stops: Array<() => void> = []
  try {
    const leader = await waitForLeader(peers, 60_000)
    await waitForReadyNodes(leader, 3)
    const follower = peers.find(p => p !== leader) as Peer
    // Active pods as a follower's replica shows them, and when each pod was made, ran and finished.
    const active = new Set<string>()
    const seen = new Map<string, { added: number, bound?: number, running?: number, finished?: number }>()
    stops.push(await watchEvents(`${follower.apiUrl}/api/v1/namespaces/default/pods?watch=1&labelSelector=batch.kubernetes.io%2Fjob-name%3Dbench`, follower.token(), (e, at) => {
      const o = e.object as { metadata: { name: string, deletionTimestamp?: string }, spec?: { nodeName?: string }, status?: { phase?: string } }
      const phase = o.status?.phase
      const t = seen.get(o.metadata.name) ?? { added: at }
      seen.set(o.metadata.name, t)
      if (o.spec?.nodeName !== undefined) t.bound ??= at
      if (phase === 'Running') t.running ??= at
      if (e.type === 'DELETED' || o.metadata.deletionTimestamp !== undefined || phase === 'Succeeded' || phase === 'Failed') {
        t.finished ??= at
        active.delete(o.metadata.name)
      } else {
        active.add(o.metadata.name)
      }
    }))
    const cpu0 = peers.map(p => cpuMs(p.proc.pid as number))
    const t0 = performance.now()
    const created = await api(leader, 'POST', '/apis/batch/v1/namespaces/default/jobs', {
      apiVersion: 'batch/v1',
      kind: 'Job',
      metadata: { name: 'bench' },
      spec: {
        completions,
        parallelism,
        template: { spec: { restartPolicy: 'Never', terminationGracePeriodSeconds: 1, containers: [{ name: 'c', image: 'busybox', command: ['sleep', String(podSeconds)] }] } }
      }
    })
    if (created.status !== 201) throw new Error(`creating the Job: ${created.status} ${JSON.stringify(created.body)}`)
    let samples = 0
    let sum = 0
    let maxActive = 0
    let done = false
    const sampler = (async () => {
      while (!done) {
        samples++
        sum += active.size
        maxActive = Math.max(maxActive, active.size)
        await sleep(100)
      }
    })()
    let lastLog = 0
    const job = await waitFor('the Job to finish', async () => {
      const r = await api(leader, 'GET', '/apis/batch/v1/namespaces/default/jobs/bench')
      const j = r.body
      if (performance.now() - lastLog > 5000) {
        lastLog = performance.now()
        opts.log(`  jobs: ${((performance.now() - t0) / 1000).toFixed(0)} s: ${j.status?.succeeded ?? 0} succeeded, ${j.status?.active ?? 0} active`)
      }
      return (j.status?.conditions ?? []).some((c: { type: string, status: string }) => (c.type === 'Complete' || c.type === 'Failed') && c.status === 'True') ? j : undefined
    }, Math.max(120_000, completions / parallelism * podSeconds * 10_000), 50)
    const wallMs = performance.now() - t0
    done = true
    await sampler
    const cpu = peers.map((p, i) => cpuMs(p.proc.pid as number) - (cpu0[i] as number))
    const pods = ((await api(leader, 'GET', '/api/v1/namespaces/default/pods?labelSelector=batch.kubernetes.io%2Fjob-name%3Dbench')).body.items ?? []) as unknown[]
    return {
      completions,
      parallelism,
      podSeconds,
      wallMs,
      idealMs: completions / parallelism * podSeconds * 1000,
      statusMs: Date.parse(job.status?.completionTime ?? '') - Date.parse(job.status?.startTime ?? ''),
      succeeded: job.status?.succeeded ?? 0,
      failed: job.status?.failed ?? 0,
      pods: pods.length,
      ...phases([...seen.values()], parallelism),
      meanActive: samples === 0 ? 0 : sum / samples,
      maxActive,
      cpuMs: cpu
    }
  } finally {
    for (const s of stops) s()
    await stopAll(peers, dir)
  }
}

// `node test/bench/jobs.ts [runs]` prints the figures (and, for several runs, the median and worst wall time).
if (import.meta.main) {
  const runs = Math.max(1, Number(process.argv[2] ?? 1))
  const all: JobFigures[] = []
  for (let i = 0; i < runs; i++) {
    const f = await measureJobs({ log: line => { process.stderr.write(line + '\n') } })
    all.push(f)
    process.stdout.write(JSON.stringify({ run: i + 1, ...f }) + '\n')
  }
  if (runs > 1) {
    const walls = all.map(f => f.wallMs)
    process.stdout.write(`wall time over ${runs} runs: median ${(median(walls) / 1000).toFixed(1)} s, worst ${(max(walls) / 1000).toFixed(1)} s (ideal ${((all[0] as JobFigures).idealMs / 1000).toFixed(1)} s)\n`)
  }
}
