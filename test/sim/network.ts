// The simulated network: every message takes 1..maxDelay ticks, drawn per
// message, so messages reorder; while faults are on, some are lost and some
// arrive twice; partitions and one-way cuts drop what crosses them on
// arrival. A lost snapshot is not forgotten: like a transport whose stream
// broke, the network reports it to the sender after the delay, so that the
// sender can tell its core (snapshotSent). All choices come from the
// simulation's Rng.
// May import: protocol/, daemon/clock, ./checkers.ts.
import type { RaftMessage, SnapshotMessage } from '../../protocol/raft.ts'
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

interface InFlight {
  m: RaftMessage
  /** a dropped snapshot, travelling only to be reported lost */
  lost: boolean
}

export class SimNetwork {
  /** false in the liveness phase: delays stay, loss and duplication stop */
  faulty = true
  sent = 0
  delivered = 0
  private readonly rng: Rng
  private readonly faults: NetworkFaults
  private readonly stormLimit: number
  /** messages by the tick they arrive (or, for a lost snapshot, are reported lost) */
  private readonly inflight = new Map<number, InFlight[]>()
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
    if (this.faulty && this.chance(this.faults.dropRate)) {
      if (m.type === 'snapshot') this.enqueue(m, now, true)
      return
    }
    this.enqueue(m, now, false)
    if (this.faulty && this.chance(this.faults.duplicateRate)) this.enqueue(m, now, false)
  }

  /**
   * The messages arriving at `now`, in random order, minus those a partition
   * drops; and the snapshots lost on the way that are due to be reported.
   */
  arrivals (now: number): { arrived: RaftMessage[], lostSnapshots: SnapshotMessage[] } {
    const due = this.inflight.get(now)
    const arrived: RaftMessage[] = []
    const lostSnapshots: SnapshotMessage[] = []
    if (due === undefined) return { arrived, lostSnapshots }
    this.inflight.delete(now)
    this.inflightCount -= due.length
    for (let i = due.length - 1; i > 0; i--) {
      const j = Math.floor(this.rng.next() * (i + 1))
      const t = due[i] as InFlight
      due[i] = due[j] as InFlight
      due[j] = t
    }
    for (const { m, lost } of due) {
      if (!lost && !this.isCut(m.from, m.to)) arrived.push(m)
      else if (m.type === 'snapshot') lostSnapshots.push(m)
    }
    return { arrived, lostSnapshots }
  }

  isolate (id: string): void { this.groups = new Map([[id, 1]]) }

  /** Puts each node in group 0 or 1. */
  split (groups: ReadonlyMap<string, number>): void { this.groups = new Map(groups) }

  cut (from: string, to: string): void { this.cuts.add(`${from}>${to}`) }

  heal (): void {
    this.groups = new Map()
    this.cuts = new Set()
  }

  private enqueue (m: RaftMessage, now: number, lost: boolean): void {
    if (++this.inflightCount > this.stormLimit) {
      throw new CheckFailure(`message storm: more than ${this.stormLimit} messages in flight`)
    }
    const at = now + 1 + Math.floor(this.rng.next() * this.faults.maxDelay)
    const bucket = this.inflight.get(at)
    if (bucket === undefined) this.inflight.set(at, [{ m, lost }])
    else bucket.push({ m, lost })
  }

  private isCut (from: string, to: string): boolean {
    return (this.groups.get(from) ?? 0) !== (this.groups.get(to) ?? 0) || this.cuts.has(`${from}>${to}`)
  }

  private chance (p: number): boolean { return p > 0 && this.rng.next() < p }
}
