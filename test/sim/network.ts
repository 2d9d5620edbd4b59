// The simulated network: every message takes 1..maxDelay ticks, drawn per
// message, so messages reorder; while faults are on, some are lost and some
// arrive twice; partitions and one-way cuts drop what crosses them on
// arrival. All choices come from the simulation's Rng.
// May import: protocol/, daemon/clock, ./checkers.ts.
import type { RaftMessage } from '../../protocol/raft.ts'
import type { Rng } from '../../daemon/clock/clock.ts'
import { CheckFailure } from './checkers.ts'

export interface NetworkFaults {
  dropRate: number
  duplicateRate: number
  maxDelay: number
}

/**
 * A healthy cluster keeps at most a few hundred messages in flight per
 * node; a feedback loop between cores grows without bound and would
 * otherwise hang the run.
 */
const STORM_MESSAGES_PER_NODE = 500

export class SimNetwork {
  /** false in the liveness phase: delays stay, loss and duplication stop */
  faulty = true
  sent = 0
  delivered = 0
  private readonly rng: Rng
  private readonly faults: NetworkFaults
  private readonly stormLimit: number
  /** messages by the tick they arrive */
  private readonly inflight = new Map<number, RaftMessage[]>()
  private inflightCount = 0
  /** partition group per node: nodes in different groups cannot talk */
  private groups = new Map<string, number>()
  /** one-way cuts, "from>to" */
  private cuts = new Set<string>()

  constructor (rng: Rng, faults: NetworkFaults, nodes: number) {
    this.rng = rng
    this.faults = faults
    this.stormLimit = STORM_MESSAGES_PER_NODE * nodes
  }

  get partitioned (): boolean { return this.groups.size > 0 || this.cuts.size > 0 }

  send (m: RaftMessage, now: number): void {
    this.sent++
    if (this.faulty && this.chance(this.faults.dropRate)) return
    this.enqueue(m, now)
    if (this.faulty && this.chance(this.faults.duplicateRate)) this.enqueue(m, now)
  }

  /** The messages arriving at `now`, in random order, minus those a partition drops. */
  arrivals (now: number): RaftMessage[] {
    const due = this.inflight.get(now)
    if (due === undefined) return []
    this.inflight.delete(now)
    this.inflightCount -= due.length
    for (let i = due.length - 1; i > 0; i--) {
      const j = Math.floor(this.rng.next() * (i + 1))
      const t = due[i] as RaftMessage
      due[i] = due[j] as RaftMessage
      due[j] = t
    }
    return due.filter(m => !this.isCut(m.from, m.to))
  }

  isolate (id: string): void { this.groups = new Map([[id, 1]]) }

  /** Puts each node in group 0 or 1. */
  split (groups: ReadonlyMap<string, number>): void { this.groups = new Map(groups) }

  cut (from: string, to: string): void { this.cuts.add(`${from}>${to}`) }

  heal (): void {
    this.groups = new Map()
    this.cuts = new Set()
  }

  private enqueue (m: RaftMessage, now: number): void {
    if (++this.inflightCount > this.stormLimit) {
      throw new CheckFailure(`message storm: more than ${this.stormLimit} messages in flight`)
    }
    const at = now + 1 + Math.floor(this.rng.next() * this.faults.maxDelay)
    const bucket = this.inflight.get(at)
    if (bucket === undefined) this.inflight.set(at, [m])
    else bucket.push(m)
  }

  private isCut (from: string, to: string): boolean {
    return (this.groups.get(from) ?? 0) !== (this.groups.get(to) ?? 0) || this.cuts.has(`${from}>${to}`)
  }

  private chance (p: number): boolean { return p > 0 && this.rng.next() < p }
}
