// The chaos suite's report: chaos-report.md (verdict, checks, the fault
// timeline, leader changes, the longest time with no acknowledged write,
// the errors clients saw) and chaos-report.svg, a hand-drawn timeline of
// the faults, the leader of each term and acknowledged writes per second.
// May import: ./checks.ts, ./faults.ts, ./workload.ts (types).
import { mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import type { CheckResult, LeaderChange } from './checks.ts'
import { isPartition as isPartitionKind } from './faults.ts'
import type { FaultKind } from './faults.ts'
import type { Tally } from './workload.ts'

export interface FaultRecord {
  kind: FaultKind
  /** ms of the run */
  start: number
  end: number
  /** peer names, or the sides of a partition */
  targets: string[]
  note?: string
}

export interface ReportData {
  peers: number
  minutes: number
  seed: number
  command: string
  ok: boolean
  checks: CheckResult[]
  /** the fault phase, and when every peer had applied a write after healing (ms of the run; 0: never) */
  phase: { start: number, end: number, healed: number }
  totalMs: number
  faults: FaultRecord[]
  leaders: LeaderChange[]
  tally: Tally
  ackTimes: number[]
  kv: { ok: number, unknown: number, none: number } | undefined
  kvAcked: number
  kvHistory: number
  objects: { created: number, scaled: number, rolledOut: number, configMaps: number, unknown: number, refused: number } | undefined
  service: { ok: number, errors: number } | undefined
  notes: string[]
}

export interface Gap { ms: number, from: number, to: number }

/** The longest stretch of the fault phase with no acknowledged write (its edges count as bounds). */
export function longestGap (ackTimes: number[], start: number, end: number): Gap {
  const times = [start, ...ackTimes.filter(t => t >= start && t <= end).sort((a, b) => a - b), end]
  let best: Gap = { ms: 0, from: start, to: start }
  for (let i = 1; i < times.length; i++) {
    const from = times[i - 1] as number
    const to = times[i] as number
    if (to - from > best.ms) best = { ms: to - from, from, to }
  }
  return best
}

const s = (ms: number): string => (ms / 1000).toFixed(1)

export function writeReport (outDir: string, d: ReportData): { reportPath: string, svgPath: string, longestGapMs: number } {
  const gap = d.phase.end > d.phase.start ? longestGap(d.ackTimes, d.phase.start, d.phase.end) : { ms: 0, from: 0, to: 0 }
  const during = d.faults.filter(f => f.start < gap.to && f.end > gap.from).map(f => `${f.kind} (${f.targets.join(' ')})`)
  const errors = [...d.tally.totals].filter(([name]) => name !== 'acked writes' && name !== 'service ok' && name !== 'service errors').sort((a, b) => b[1] - a[1])
  const lines = [
    '# Shoal chaos report',
    '',
    `**Verdict: ${d.ok ? 'PASS' : 'FAIL'}** — ${d.peers} peers, ${d.minutes} min, seed ${d.seed}. Replay: \`${d.command}\``,
    '',
    `Fault phase ${s(d.phase.start)}–${s(d.phase.end)} s of the run; healed and caught up at ${d.phase.healed > 0 ? `${s(d.phase.healed)} s` : 'never'}; run ${s(d.totalMs)} s in all. Times are seconds since the run started.`,
    '',
    '## Checks',
    '',
    '| check | verdict | detail |',
    '|---|---|---|',
    ...d.checks.map(c => `| ${c.name} | ${c.ok ? 'pass' : '**FAIL**'} | ${cell(c.detail)} |`),
    '',
    '## Availability',
    '',
    `Longest unavailability (longest gap with no acknowledged KV write during the fault phase): **${s(gap.ms)} s**, ${s(gap.from)}–${s(gap.to)} s${during.length > 0 ? `, during ${during.join(', ')}` : ''}.`,
    '',
    `KV: ${d.kv?.ok ?? 0} operations answered, ${d.kv?.unknown ?? 0} with unknown outcome, ${d.kv?.none ?? 0} refused; ${d.ackTimes.length} writes acknowledged (${d.kvAcked} of them unique keys checked for durability); ${d.kvHistory} operations in the checked history.`,
    `Objects: ${d.objects?.created ?? 0} Deployments created, ${d.objects?.scaled ?? 0} scaled, ${d.objects?.rolledOut ?? 0} rolled out, ${d.objects?.configMaps ?? 0} ConfigMaps; ${d.objects?.unknown ?? 0} writes with unknown outcome, ${d.objects?.refused ?? 0} refused.`,
    `Service: ${d.service?.ok ?? 0} requests answered, ${d.service?.errors ?? 0} failed${d.service !== undefined && d.service.ok + d.service.errors > 0 ? ` (${(100 * d.service.errors / (d.service.ok + d.service.errors)).toFixed(1)} %)` : ''}.`,
    '',
    '## Errors seen by clients',
    '',
    errors.length === 0 ? 'None.' : '| client and error | count |\n|---|---|\n' + errors.map(([name, n]) => `| ${name} | ${n} |`).join('\n'),
    '',
    '## Faults',
    '',
    '| start | end | fault | targets | note |',
    '|---|---|---|---|---|',
    ...d.faults.map(f => `| ${s(f.start)} | ${s(f.end)} | ${f.kind} | ${f.targets.join(' ')} | ${cell(f.note ?? '')} |`),
    '',
    '## Leader changes',
    '',
    `${d.leaders.length} (term, leader) pairs seen.`,
    '',
    '| seen at | term | leader |',
    '|---|---|---|',
    ...d.leaders.map(l => `| ${s(l.t)} | ${l.term} | ${l.leader} |`),
    '',
    ...(d.notes.length > 0 ? ['## Notes', '', ...d.notes.map(n => `- ${n}`), ''] : []),
    '![timeline](chaos-report.svg)',
    ''
  ]
  mkdirSync(outDir, { recursive: true })
  const reportPath = join(outDir, 'chaos-report.md')
  const svgPath = join(outDir, 'chaos-report.svg')
  writeFileSync(reportPath, lines.join('\n'))
  writeFileSync(svgPath, svg(d, gap))
  return { reportPath, svgPath, longestGapMs: gap.ms }
}

const cell = (text: string): string => text.replaceAll('|', '\\|').replaceAll('\n', ' ').slice(0, 600)

const esc = (text: string): string => text.replaceAll('&', '&amp;').replaceAll('<', '&lt;').replaceAll('>', '&gt;')

const FAULT_COLOURS: Record<string, string> = {
  kill: '#d62728', 'kill-leader': '#a50f15', 'kill-minority': '#ff7f0e',
  pause: '#9467bd', 'pause-leader': '#6a3d9a',
  'partition-minority': '#1f77b4', 'partition-leader-minority': '#08519c', 'partition-bridge': '#17becf', 'isolate-leader': '#2ca02c'
}
const PEER_COLOURS = ['#4e79a7', '#f28e2b', '#e15759', '#76b7b2', '#59a14f', '#edc948', '#b07aa1', '#ff9da7']

/** Three lanes over the run's time: faults, the leader by term, acknowledged writes (and service errors) per second. */
function svg (d: ReportData, gap: Gap): string {
  const width = 1100
  const left = 120
  const right = 20
  const endMs = Math.max(d.totalMs, d.phase.end, 1)
  const x = (ms: number): number => left + (width - left - right) * Math.min(1, Math.max(0, ms / endMs))
  const out: string[] = []
  const faultTop = 40
  const faultRows = 3
  const leaderTop = faultTop + faultRows * 22 + 30
  const chartTop = leaderTop + 60
  const chartHeight = 140
  const height = chartTop + chartHeight + 60
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" font-family="sans-serif" font-size="11">`)
  out.push(`<rect width="${width}" height="${height}" fill="white"/>`)
  out.push(`<text x="10" y="20" font-size="14" font-weight="bold">Shoal chaos: ${d.peers} peers, seed ${d.seed}, ${d.ok ? 'PASS' : 'FAIL'}; longest unavailability ${s(gap.ms)} s</text>`)
  // the fault phase and the longest gap
  out.push(`<rect x="${x(d.phase.start)}" y="${faultTop - 8}" width="${Math.max(0, x(d.phase.end) - x(d.phase.start))}" height="${chartTop + chartHeight - faultTop + 8}" fill="#f4f4f4"/>`)
  if (gap.ms > 0) out.push(`<rect x="${x(gap.from)}" y="${chartTop}" width="${Math.max(1, x(gap.to) - x(gap.from))}" height="${chartHeight}" fill="#ffe0e0"><title>longest gap with no acknowledged write: ${s(gap.ms)} s</title></rect>`)
  // lane 1: faults, staggered over rows so that labels do not collide
  out.push(`<text x="10" y="${faultTop + 14}">faults</text>`)
  d.faults.forEach((f, i) => {
    const y = faultTop + (i % faultRows) * 22
    const colour = FAULT_COLOURS[f.kind] ?? '#888'
    out.push(`<rect x="${x(f.start)}" y="${y}" width="${Math.max(2, x(f.end) - x(f.start))}" height="18" fill="${colour}" opacity="0.45"><title>${esc(`${f.kind} ${f.targets.join(' ')} ${s(f.start)}–${s(f.end)} s ${f.note ?? ''}`)}</title></rect>`)
    const label = isPartitionKind(f.kind) ? f.kind.replace('partition-', 'part-') : `${f.kind} ${f.targets.join(',')}`
    out.push(`<text x="${x(f.start) + 2}" y="${y + 13}" fill="#111" font-size="10">${esc(label)}</text>`)
  })
  // lane 2: the leader of each term, from when it was first seen to the next change
  out.push(`<text x="10" y="${leaderTop + 14}">leader (term)</text>`)
  const names = [...new Set(d.leaders.map(l => l.leader))].sort()
  d.leaders.forEach((l, i) => {
    const next = d.leaders[i + 1]?.t ?? endMs
    const colour = PEER_COLOURS[names.indexOf(l.leader) % PEER_COLOURS.length] ?? '#888'
    out.push(`<rect x="${x(l.t)}" y="${leaderTop}" width="${Math.max(1, x(next) - x(l.t))}" height="20" fill="${colour}" stroke="white" stroke-width="0.5"><title>${esc(`term ${l.term}: ${l.leader} from ${s(l.t)} s`)}</title></rect>`)
    if (x(next) - x(l.t) > 30) out.push(`<text x="${x(l.t) + 2}" y="${leaderTop + 14}" fill="white">${esc(l.leader)} (${l.term})</text>`)
  })
  names.forEach((n, i) => {
    out.push(`<rect x="${left + i * 70}" y="${leaderTop + 26}" width="10" height="10" fill="${PEER_COLOURS[i % PEER_COLOURS.length] ?? '#888'}"/><text x="${left + i * 70 + 14}" y="${leaderTop + 35}">${esc(n)}</text>`)
  })
  // lane 3: acknowledged writes per second, service errors per second below the axis
  const acks = d.tally.perSecond.get('acked writes') ?? []
  const svcErrors = d.tally.perSecond.get('service errors') ?? []
  const max = Math.max(1, ...acks)
  out.push(`<text x="10" y="${chartTop + 14}">acked writes/s</text>`)
  out.push(`<text x="10" y="${chartTop + 28}" fill="#666">(max ${max})</text>`)
  out.push(`<line x1="${left}" y1="${chartTop + chartHeight}" x2="${width - right}" y2="${chartTop + chartHeight}" stroke="#333"/>`)
  const barWidth = Math.max(1, x(1000) - x(0) - 0.5)
  acks.forEach((n, sec) => {
    if (n === 0) return
    const h = chartHeight * n / max
    out.push(`<rect x="${x(sec * 1000)}" y="${chartTop + chartHeight - h}" width="${barWidth}" height="${h}" fill="#4e79a7"/>`)
  })
  const errMax = Math.max(1, ...svcErrors)
  svcErrors.forEach((n, sec) => {
    if (n === 0) return
    out.push(`<rect x="${x(sec * 1000)}" y="${chartTop + chartHeight + 1}" width="${barWidth}" height="${20 * n / errMax}" fill="#d62728"/>`)
  })
  out.push(`<text x="10" y="${chartTop + chartHeight + 14}" fill="#d62728">service errors/s</text>`)
  // the time axis
  const axisY = chartTop + chartHeight + 40
  for (let t = 0; t <= endMs; t += 30_000) {
    out.push(`<line x1="${x(t)}" y1="${axisY - 5}" x2="${x(t)}" y2="${axisY}" stroke="#333"/><text x="${x(t) - 8}" y="${axisY + 12}">${t / 1000} s</text>`)
  }
  out.push(`<line x1="${left}" y1="${axisY - 5}" x2="${width - right}" y2="${axisY - 5}" stroke="#333"/>`)
  out.push('</svg>')
  return out.join('\n') + '\n'
}
