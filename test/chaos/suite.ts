// The chaos suite's engine: starts real shoald peers on 127.0.30.2 and up,
// sets up a web Deployment behind a Service, then runs the workload
// (workload.ts) while the seeded fault schedule (faults.ts) kills, pauses
// and partitions peers, one fault at a time and never more than a minority
// of them. Then it heals everything, runs the checks (checks.ts) and
// writes the report (report.ts). Whatever happens, the run ends with no
// iptables rule of its own, no paused or running peer and no pod process
// left: also on SIGINT, SIGTERM and process exit.
// May import: daemon/clock, test/helpers/cluster.ts, this folder.
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import type { KObject } from '../../protocol/k8s.ts'
import { killPodProcesses, restartPeer, startCluster, stopAll, waitFor, waitForLeader, api } from '../helpers/cluster.ts'
import type { Peer } from '../helpers/cluster.ts'
import {
  checkConvergence, checkKvAcked, checkKvLinearizable, checkNoOrphans, checkObjectsAcked, checkServiceAnswers,
  checkStateHashes, currentLeader, LeaderWatch, raftStatus
} from './checks.ts'
import type { CheckResult } from './checks.ts'
import { choose, Firewall, isPartition, minority, planFaults } from './faults.ts'
import type { PlannedFault } from './faults.ts'
import { writeReport } from './report.ts'
import type { FaultRecord } from './report.ts'
import { httpGet, KvWorkload, ObjectWorkload, ServiceLoad, sleep, Tally, webService } from './workload.ts'
import type { WorkloadContext } from './workload.ts'

export interface ChaosOptions {
  /** 3 to 7 peers */
  peers: number
  /** the budget of setup plus faults, in minutes (the checks after healing come on top, each bounded) */
  minutes: number
  seed: number
  /** where chaos-report.md and chaos-report.svg go (default: the working directory) */
  outDir?: string
  /** progress lines (default: console.log) */
  log?: (line: string) => void
}

export interface ChaosResult {
  ok: boolean
  checks: CheckResult[]
  seed: number
  /** the command that replays this schedule */
  command: string
  reportPath: string
  svgPath: string
  longestUnavailableMs: number
  /** the peers' data directories, kept when a check failed */
  keptDir?: string
}

export const MIN_PEERS = 3
export const MAX_PEERS = 7
const SERVICE_CIDR = '127.97.30.0/24'
const POD_CIDR = '127.99.32.0/21'
const CONVERGE_MS = 60_000

export function peerIps (n: number): string[] {
  return Array.from({ length: n }, (_, i) => `127.0.30.${i + 2}`)
}

export function replayCommand (opts: Pick<ChaosOptions, 'peers' | 'minutes' | 'seed'>): string {
  return `npm run chaos -- --peers ${opts.peers} --minutes ${opts.minutes} --seed ${opts.seed}`
}

export async function runChaos (opts: ChaosOptions): Promise<ChaosResult> {
  if (!Number.isInteger(opts.peers) || opts.peers < MIN_PEERS || opts.peers > MAX_PEERS) throw new RangeError(`peers must be ${MIN_PEERS} to ${MAX_PEERS}`)
  if (!(opts.minutes > 0)) throw new RangeError('minutes must be positive')
  const t0 = performance.now()
  const now = (): number => performance.now() - t0
  const say = opts.log ?? ((line: string) => { console.log(line) })
  const log = (line: string): void => { say(`[${(now() / 1000).toFixed(1).padStart(6)} s] ${line}`) }
  const command = replayCommand(opts)
  const outDir = opts.outDir ?? process.cwd()
  const firewall = new Firewall(`${opts.seed}-${process.pid}`)
  const notes: string[] = []
  if (firewall.unavailable !== undefined) {
    notes.push(`partitions skipped: ${firewall.unavailable}`)
    log(`partitions will be skipped: ${firewall.unavailable}`)
  }

  let peers: Peer[] = []
  let dir = ''
  const paused = new Set<Peer>()
  // The last resort, synchronous so that it also runs in an exit handler.
  const emergency = (): void => {
    try { firewall.heal() } catch (err) { console.error(`chaos: removing iptables rules failed: ${(err as Error).message}`) }
    for (const p of peers) {
      try { p.proc.kill('SIGCONT') } catch {}
      try { p.proc.kill('SIGKILL') } catch {}
    }
    if (dir !== '') try { killPodProcesses(dir) } catch {}
  }
  const onSignal = (signal: NodeJS.Signals): void => {
    emergency()
    console.error(`chaos: interrupted by ${signal}; replay with: ${command}${dir !== '' ? `; the peers' data directories are left in ${dir}` : ''}`)
    process.exit(signal === 'SIGINT' ? 130 : 143)
  }
  process.on('exit', emergency)
  process.once('SIGINT', onSignal)
  process.once('SIGTERM', onSignal)

  const tally = new Tally()
  const faults: FaultRecord[] = []
  const watch = new LeaderWatch()
  const checks: CheckResult[] = []
  const phase = { start: 0, end: 0, healed: 0 }
  let kv: KvWorkload | undefined
  let objects: ObjectWorkload | undefined
  let service: ServiceLoad | undefined
  let keepDir = false
  try {
    // ---- setup ----
    log(`starting ${opts.peers} peers on ${peerIps(opts.peers).join(', ')} (seed ${opts.seed})`)
    const started = await startCluster('chaos', peerIps(opts.peers), ['--service-cidr', SERVICE_CIDR, '--pod-cidr', POD_CIDR, '--dns-port', '0'])
    peers = started.peers
    dir = started.dir
    const leader0 = await waitForLeader(peers, 60_000)
    const voters = opts.peers >= 5 ? 5 : 3
    await waitFor(`${voters} voters`, async () => (await leader0.raft()).voters.length === voters || undefined, 60_000)
    await waitFor(`${opts.peers} Ready nodes`, async () => {
      const r = await api(leader0, 'GET', '/api/v1/nodes')
      return ((r.body.items ?? []) as KObject[]).filter(n => ((n.status as any)?.conditions ?? []).some((c: any) => c.type === 'Ready' && c.status === 'True')).length === opts.peers
    }, 60_000)
    log(`leader ${leader0.name}, ${voters} voters, ${opts.peers} Ready nodes`)
    watch.start(() => peers, now, opts.minutes * 60_000 + 10 * 60_000)

    const budgetEnd = opts.minutes * 60_000
    const ctx: WorkloadContext = { peers: () => peers, now, until: Infinity }
    objects = new ObjectWorkload(ctx, tally, opts.seed * 7 + 1)
    await waitFor('the web Deployment to be created', async () => { await objects?.createDeployment('web', 3); return objects?.deployments.get('web')?.created === 'acked' }, 60_000, 500)
    const svc = await waitFor('the web Service', async () => {
      const r = await api(leader0, 'POST', '/api/v1/namespaces/default/services', webService())
      if (r.status === 201) return r.body as KObject
      if (r.status === 409) return (await api(leader0, 'GET', '/api/v1/namespaces/default/services/web')).body as KObject
      return undefined
    }, 60_000, 500)
    const clusterIP = (svc.spec as { clusterIP: string }).clusterIP
    await waitFor('the web Service to answer', async () => { await httpGet(clusterIP, 80, 2000); return true }, 90_000, 500)
    log(`web Service on ${clusterIP}:80 answers`)

    // ---- faults under load ----
    phase.start = now()
    phase.end = Math.max(phase.start + 30_000, budgetEnd)
    ctx.until = phase.end
    const plan = planFaults(opts.seed, phase.end - phase.start)
    log(`fault phase: ${((phase.end - phase.start) / 1000).toFixed(0)} s, ${plan.length} faults planned`)
    kv = new KvWorkload(ctx, tally, opts.seed * 7 + 2)
    service = new ServiceLoad(ctx, tally)
    const work = Promise.all([kv.run(4), objects.run(), service.run(clusterIP, 2)])

    const restart = async (victim: Peer): Promise<void> => {
      for (let attempt = 1; ; attempt++) {
        const i = peers.indexOf(victim)
        const current = peers[i] as Peer
        if (current.running) return
        try {
          peers[i] = await restartPeer(current, peers.filter(p => p !== current).map(p => p.addr))
          return
        } catch (err) {
          log(`restarting ${current.name} failed (attempt ${attempt}): ${(err as Error).message.slice(0, 200)}`)
          if (attempt >= 3) throw err
          await sleep(1000)
        }
      }
    }

    const runFault = async (f: PlannedFault): Promise<void> => {
      const n = peers.length
      const leader = f.kind.includes('leader') ? await currentLeader(peers) : undefined
      const others = peers.filter(p => p !== leader)
      const record: FaultRecord = { kind: f.kind, start: now(), end: now(), targets: [] }
      faults.push(record)
      if (f.kind.includes('leader') && leader === undefined) record.note = 'no leader answered: a random peer instead'
      if (isPartition(f.kind) && firewall.unavailable !== undefined) {
        record.note = `skipped: ${firewall.unavailable}`
        log(`${f.kind} skipped`)
        return
      }
      const ip = (p: Peer): string => p.opts.ip
      switch (f.kind) {
        case 'kill':
        case 'kill-leader':
        case 'kill-minority': {
          const victims = f.kind === 'kill-minority'
            ? choose(peers, minority(n), f.picks)
            : [leader ?? choose(peers, 1, f.picks)[0] as Peer]
          record.targets = victims.map(p => p.name)
          log(`${f.kind}: SIGKILL ${record.targets.join(', ')} for ${(f.holdMs / 1000).toFixed(1)} s`)
          await Promise.all(victims.map(async v => { await v.kill('SIGKILL') }))
          await sleep(f.holdMs)
          await Promise.all(victims.map(async v => { await restart(v) }))
          break
        }
        case 'pause':
        case 'pause-leader': {
          const victim = leader ?? choose(peers, 1, f.picks)[0] as Peer
          record.targets = [victim.name]
          log(`${f.kind}: SIGSTOP ${victim.name} for ${(f.holdMs / 1000).toFixed(1)} s`)
          paused.add(victim)
          try {
            victim.proc.kill('SIGSTOP')
            await sleep(f.holdMs)
          } finally {
            victim.proc.kill('SIGCONT')
            paused.delete(victim)
          }
          break
        }
        default: {
          let sideA: Peer[]
          let sideB: Peer[]
          let bridge: Peer | undefined
          if (f.kind === 'partition-minority') {
            sideA = choose(others, 1 + Math.floor((f.picks[7] ?? 0) * minority(n)), f.picks)
            sideB = peers.filter(p => !sideA.includes(p))
          } else if (f.kind === 'partition-leader-minority') {
            sideA = [...(leader !== undefined ? [leader] : []), ...choose(others, minority(n) - (leader !== undefined ? 1 : 0), f.picks)]
            sideB = peers.filter(p => !sideA.includes(p))
          } else if (f.kind === 'isolate-leader') {
            sideA = [leader ?? choose(peers, 1, f.picks)[0] as Peer]
            sideB = peers.filter(p => !sideA.includes(p))
          } else {
            // a bridge: two sides that cannot see each other, and one peer that sees both
            bridge = choose(peers, 1, f.picks)[0] as Peer
            const rest = choose(peers.filter(p => p !== bridge), n - 1, f.picks.slice(1))
            sideA = rest.slice(0, Math.floor(rest.length / 2))
            sideB = rest.slice(Math.floor(rest.length / 2))
          }
          record.targets = [`{${sideA.map(p => p.name).join(',')}}`, `{${sideB.map(p => p.name).join(',')}}`]
          if (bridge !== undefined) record.note = `${bridge.name} bridges both sides`
          log(`${f.kind}: ${record.targets.join(' | ')}${bridge !== undefined ? ` (bridge ${bridge.name})` : ''} for ${(f.holdMs / 1000).toFixed(1)} s`)
          try {
            firewall.cut(sideA.map(ip), sideB.map(ip))
            await sleep(f.holdMs)
          } finally {
            firewall.heal()
          }
        }
      }
      record.end = now()
    }

    for (const f of plan) {
      const at = phase.start + f.at
      if (now() < at) await sleep(at - now())
      if (now() + f.holdMs > phase.end - 3000) break
      try {
        await runFault(f)
      } catch (err) {
        notes.push(`${f.kind} at ${(now() / 1000).toFixed(1)} s: ${(err as Error).message.slice(0, 300)}`)
        log(`fault ${f.kind} failed: ${(err as Error).message.slice(0, 300)}`)
      }
    }
    await work
    log(`workload done: ${kv.stats.ok} KV ops answered, ${kv.stats.unknown} unknown, ${kv.stats.none} refused; ${kv.acked.size} unique writes acked; service ${service.stats.ok} ok, ${service.stats.errors} errors`)

    // ---- heal ----
    firewall.heal()
    for (const p of paused) p.proc.kill('SIGCONT')
    paused.clear()
    for (const p of [...peers]) if (!p.running) await restart(p)
    const leader = await waitForLeader(peers, 60_000)
    const marker = await waitFor('a write after healing', async () => {
      const r = await (peers.find(p => p.running) ?? leader).call('PUT', '/shoal/v1/kv/chaos/final', 'healed', 8000)
      return r.status === 200 ? (r.json as { index: number }).index : undefined
    }, 60_000, 500)
    await waitFor('every peer to apply the write after healing', async () => {
      const views = await Promise.all(peers.map(async p => await raftStatus(p)))
      return views.every(v => v !== undefined && v.appliedIndex >= marker) || undefined
    }, 60_000)
    phase.healed = now()
    log(`healed: leader ${leader.name}; every peer applied index ${marker}`)

    // ---- checks ----
    const reader = (): Peer => peers.find(p => p.running) ?? leader
    const add = (c: CheckResult): void => {
      checks.push(c)
      log(`${c.ok ? 'PASS' : 'FAIL'} ${c.name}: ${c.detail.split('\n')[0] ?? ''}`)
    }
    add(await checkKvAcked(peers, kv.acked))
    add(await checkObjectsAcked(peers, objects))
    add(await checkConvergence(reader, CONVERGE_MS, now))
    add(await checkNoOrphans(peers, reader, 30_000))
    add(await checkServiceAnswers(clusterIP, 30_000))
    add(await checkStateHashes(peers, 30_000))
    await watch.stop()
    add(watch.check())
    add(checkKvLinearizable(kv.history))
  } catch (err) {
    checks.push({ name: 'the run completes', ok: false, detail: (err as Error).message })
    log(`FAIL the run did not complete: ${(err as Error).stack ?? String(err)}`)
  } finally {
    await watch.stop()
    const ok = checks.length > 0 && checks.every(c => c.ok)
    keepDir = !ok && dir !== ''
    try { firewall.heal() } catch (err) { notes.push(`removing iptables rules: ${(err as Error).message}`) }
    for (const p of peers) { try { p.proc.kill('SIGCONT') } catch {} }
    if (keepDir) {
      for (const p of peers) { try { writeFileSync(join(dir, `${p.name}.log`), p.lines.join('\n')) } catch {} }
      await stopAll(peers)
      killPodProcesses(dir)
    } else {
      await stopAll(peers, dir === '' ? undefined : dir)
    }
    process.off('exit', emergency)
    process.off('SIGINT', onSignal)
    process.off('SIGTERM', onSignal)
  }

  const ok = checks.length > 0 && checks.every(c => c.ok)
  const report = writeReport(outDir, {
    peers: opts.peers,
    minutes: opts.minutes,
    seed: opts.seed,
    command,
    ok,
    checks,
    phase,
    totalMs: now(),
    faults,
    leaders: watch.changes,
    tally,
    ackTimes: kv?.ackTimes ?? [],
    kv: kv?.stats,
    kvAcked: kv?.acked.size ?? 0,
    kvHistory: kv?.history.length ?? 0,
    objects: objects?.stats,
    service: service?.stats,
    notes
  })
  log(`report: ${report.reportPath}, ${report.svgPath}`)
  if (!ok) {
    say(`chaos: FAILED (seed ${opts.seed}): ${checks.filter(c => !c.ok).map(c => c.name).join('; ')}`)
    say(`chaos: replay the same schedule with: ${command}`)
    if (keepDir) say(`chaos: the peers' data directories and logs are kept in ${dir}`)
  } else {
    say(`chaos: passed (seed ${opts.seed}); longest unavailability ${(report.longestGapMs / 1000).toFixed(2)} s`)
  }
  return {
    ok,
    checks,
    seed: opts.seed,
    command,
    reportPath: report.reportPath,
    svgPath: report.svgPath,
    longestUnavailableMs: report.longestGapMs,
    ...(keepDir ? { keptDir: dir } : {})
  }
}
