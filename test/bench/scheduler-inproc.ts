// The scheduler alone, in this process, against an in-process store (no
// Raft, no HTTP): N pending pods onto M nodes, then the same with half the
// pods carrying required podAntiAffinity on kubernetes.io/hostname (groups
// of at most M pods per label value, so that every pod fits). Each figure
// is the time from the scheduler's start to every pod bound, its Scheduled
// event written. Run: node test/bench/scheduler-inproc.ts [pods] [nodes] [runs]
// May import: daemon/, protocol/.
import { performance } from 'node:perf_hooks'
import { systemClock } from '../../daemon/clock/clock.ts'
import { rfc3339 } from '../../daemon/controllers/framework.ts'
import type { ControllerContext } from '../../daemon/controllers/framework.ts'
import { createLogger } from '../../daemon/log/log.ts'
import { EventRecorder } from '../../daemon/record/recorder.ts'
import { Scheduler } from '../../daemon/scheduler/scheduler.ts'
import { StoreHarness } from '../../daemon/store/testing.ts'
import type { StoreCommand, StoreResult } from '../../daemon/store/types.ts'
import type { KObject } from '../../protocol/k8s.ts'

function node (name: string): KObject {
  const alloc = { cpu: '64', memory: '256Gi', pods: '110' }
  return {
    apiVersion: 'v1',
    kind: 'Node',
    metadata: { name, labels: { 'kubernetes.io/hostname': name } },
    status: { capacity: alloc, allocatable: alloc, conditions: [{ type: 'Ready', status: 'True' }] }
  }
}

/** Pod i; with `anti`, the even ones carry required anti-affinity within group (i/2) mod groups. */
function pod (i: number, anti: boolean, groups: number): KObject {
  const spec: Record<string, unknown> = { containers: [{ name: 'c', image: 'busybox', resources: { requests: { cpu: '10m', memory: '16Mi' } } }] }
  let labels: Record<string, string> = { app: 'bench' }
  if (anti && i % 2 === 0) {
    const group = `g${Math.floor(i / 2) % groups}`
    labels = { app: 'bench-anti', group }
    spec.affinity = { podAntiAffinity: { requiredDuringSchedulingIgnoredDuringExecution: [{ labelSelector: { matchLabels: { group } }, topologyKey: 'kubernetes.io/hostname' }] } }
  }
  return { apiVersion: 'v1', kind: 'Pod', metadata: { name: `bench-${i}`, namespace: 'default', labels }, spec }
}

async function once (pods: number, nodes: number, anti: boolean): Promise<number> {
  const h = new StoreHarness()
  for (let i = 0; i < nodes; i++) h.create(node(`sim-${i}`))
  const groups = Math.ceil(pods / 2 / nodes)
  for (let i = 0; i < pods; i++) h.create(pod(i, anti, groups))
  const write = async <T extends KObject = KObject>(cmd: StoreCommand): Promise<StoreResult<T>> => h.apply<T>(cmd)
  const ctx: ControllerContext = {
    store: h.store,
    write,
    clock: systemClock,
    log: createLogger('silent', 'bench'),
    members: () => [],
    events: new EventRecorder(write, systemClock),
    uid: (() => { let n = 0; return () => `u-${++n}` })(),
    now: () => rfc3339(systemClock.now())
  }
  const s = new Scheduler()
  const t0 = performance.now()
  s.start(ctx)
  while (s.bound < pods) {
    if (performance.now() - t0 > 120_000) throw new Error(`only ${s.bound} of ${pods} bound in 120 s`)
    await new Promise(resolve => setTimeout(resolve, 5))
  }
  const seconds = (performance.now() - t0) / 1000
  s.stop()
  return pods / seconds
}

const [pods, nodes, runs] = [Number(process.argv[2] ?? 10_000), Number(process.argv[3] ?? 500), Number(process.argv[4] ?? 3)]
for (const anti of process.env.ONLY === 'anti' ? [true] : process.env.ONLY === 'plain' ? [false] : [false, true]) {
  const rates: number[] = []
  for (let r = 0; r < runs; r++) rates.push(await once(pods, nodes, anti))
  rates.sort((a, b) => a - b)
  const label = anti ? `${pods / 2} of them with required podAntiAffinity (hostname, groups of ≤ ${nodes})` : 'no affinity'
  process.stdout.write(`${pods} pods onto ${nodes} nodes, ${label}: median ${rates[Math.floor(rates.length / 2)]?.toFixed(0)} pods/s, worst ${rates[0]?.toFixed(0)} pods/s (${rates.map(x => x.toFixed(0)).join(', ')})\n`)
}
