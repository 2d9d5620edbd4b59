// The chaos suite's faults: the seeded schedule (what happens when, drawn
// up front so that a seed replays the same sequence whatever the cluster
// does), and the means: SIGKILL and restart, SIGSTOP and SIGCONT, and
// network partitions as iptables DROP rules between the peers' loopback
// addresses. Every rule carries the comment shoal-chaos-<runId> and is
// removed by listing the rules with that comment, never by position.
// May import: daemon/clock (seededRng).
import { execFileSync } from 'node:child_process'
import { seededRng } from '../../daemon/clock/clock.ts'
import type { Rng } from '../../daemon/clock/clock.ts'

export const FAULT_KINDS = [
  'kill', 'kill-leader', 'kill-minority', 'pause', 'pause-leader',
  'partition-minority', 'partition-leader-minority', 'partition-bridge', 'isolate-leader'
] as const
export type FaultKind = typeof FAULT_KINDS[number]

export const isPartition = (kind: FaultKind): boolean => kind.startsWith('partition') || kind === 'isolate-leader'

export interface PlannedFault {
  /** ms after the fault phase starts (the engine never starts one early, and may start it late) */
  at: number
  kind: FaultKind
  /** how long the fault holds before it is healed */
  holdMs: number
  /** random numbers for choosing the victims when the fault starts */
  picks: number[]
}

/**
 * Faults one after another over `durationMs`: a quiet start, then each kind
 * once in a shuffled order, again and again, held 3 to 9 s with 3 to 7 s of
 * calm between. Nothing is planned to be held past durationMs - 5 s.
 */
export function planFaults (seed: number, durationMs: number): PlannedFault[] {
  const rng = seededRng(seed)
  const out: PlannedFault[] = []
  let bag: FaultKind[] = []
  let at = 4000
  for (;;) {
    if (bag.length === 0) bag = shuffle(rng, [...FAULT_KINDS])
    const kind = bag.pop() as FaultKind
    const holdMs = Math.round(3000 + rng.next() * 6000)
    const picks = Array.from({ length: 8 }, () => rng.next())
    if (at + holdMs > durationMs - 5000) break
    out.push({ at, kind, holdMs, picks })
    at += holdMs + Math.round(3000 + rng.next() * 4000)
  }
  return out
}

function shuffle<T> (rng: Rng, items: T[]): T[] {
  for (let i = items.length - 1; i > 0; i--) {
    const j = Math.floor(rng.next() * (i + 1))
    const tmp = items[i] as T
    items[i] = items[j] as T
    items[j] = tmp
  }
  return items
}

/** `count` distinct items, chosen with the given random numbers (reused cyclically). */
export function choose<T> (items: readonly T[], count: number, picks: number[]): T[] {
  const pool = [...items]
  const out: T[] = []
  for (let i = 0; i < count && pool.length > 0; i++) {
    const r = picks[i % Math.max(1, picks.length)] ?? 0
    out.push(pool.splice(Math.floor(r * pool.length), 1)[0] as T)
  }
  return out
}

/** The largest number of voters that may fail while a majority of n stays. */
export const minority = (n: number): number => Math.floor((n - 1) / 2)

/**
 * DROP rules on INPUT between two sets of loopback addresses, both ways
 * (loopback traffic passes INPUT on the receiving side, so one chain
 * covers it). Each rule matches one source and one destination address
 * and carries this run's comment.
 */
export class Firewall {
  readonly comment: string
  /** undefined: usable; else why partitions are skipped */
  readonly unavailable: string | undefined

  constructor (runId: string) {
    this.comment = `shoal-chaos-${runId}`
    this.unavailable = probe()
  }

  /** Cuts every address in `a` off from every address in `b`. */
  cut (a: string[], b: string[]): void {
    if (this.unavailable !== undefined) throw new Error(`partitions unavailable: ${this.unavailable}`)
    for (const x of a) {
      for (const y of b) {
        if (x === y) continue
        for (const [src, dst] of [[x, y], [y, x]] as const) {
          iptables(['-I', 'INPUT', '-s', src, '-d', dst, '-m', 'comment', '--comment', this.comment, '-j', 'DROP'])
        }
      }
    }
  }

  /** This run's rules, as `iptables -S` prints them. */
  rules (): string[] {
    if (this.unavailable !== undefined) return []
    return iptables(['-S', 'INPUT']).split('\n').filter(line => line.split(/\s+/).includes(this.comment))
  }

  /** Removes every rule with this run's comment; synchronous, so that exit handlers can call it. Returns how many. */
  heal (): number {
    let removed = 0
    for (let round = 0; round < 3; round++) {
      const rules = this.rules()
      if (rules.length === 0) return removed
      for (const rule of rules) {
        const args = rule.trim().split(/\s+/)
        if (args[0] !== '-A') continue
        try {
          iptables(['-D', ...args.slice(1)])
          removed++
        } catch { /* gone already; listed again next round */ }
      }
    }
    const left = this.rules()
    if (left.length > 0) throw new Error(`could not remove iptables rules: ${left.join('; ')}`)
    return removed
  }
}

function iptables (args: string[]): string {
  // -w: wait for the xtables lock rather than fail when another program holds it.
  return execFileSync('iptables', ['-w', '5', ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 15_000 })
}

function probe (): string | undefined {
  if (process.getuid?.() !== 0) return 'not root (iptables needs CAP_NET_ADMIN)'
  try {
    iptables(['-S', 'INPUT'])
    return undefined
  } catch (err) {
    return `iptables does not work here: ${((err as { stderr?: string }).stderr ?? (err as Error).message).trim().split('\n')[0] ?? ''}`
  }
}
