// Deterministic simulation of a Raft cluster: N machines (./host.ts), each a
// core behind a host loop that follows the Ready contract, on a simulated
// network (./network.ts), with every choice drawn from one seeded Rng. A
// safety phase injects faults while the checkers in ./checkers.ts watch
// every step; a liveness phase then heals everything and demands a commit
// within a bound. A failure throws SimFailure, whose message carries the
// seed and the command that replays it exactly.
// May import: protocol/, daemon/clock, daemon/raft, and this folder.
import { decode, encode } from '../../protocol/codec.ts'
import { isRaftMessage } from '../../protocol/raft.ts'
import type { RaftMessage } from '../../protocol/raft.ts'
import { pick, seededRng } from '../../daemon/clock/clock.ts'
import type { Rng } from '../../daemon/clock/clock.ts'
import { NotLeaderError, RaftCore } from '../../daemon/raft/core.ts'
import { Checkers, CheckFailure, entryKey } from './checkers.ts'
import { SimHost } from './host.ts'
import type { CoreSettings } from './host.ts'
import { SimNetwork } from './network.ts'

export interface FaultConfig {
  /** chance each message is lost */
  dropRate: number
  /** chance each message is delivered twice */
  duplicateRate: number
  /** each delivery takes 1..maxDelay ticks, drawn per message, so messages reorder */
  maxDelay: number
  /** chance per tick that one running node crashes */
  crashRate: number
  /** most nodes down at once */
  maxDown: number
  /** a crashed node stays down this many ticks, drawn uniformly */
  downTicks: readonly [number, number]
  /** chance per tick that a partition begins (isolate one, split in two, or cut one direction of a link) */
  partitionRate: number
  /** chance per tick that every partition heals */
  healRate: number
  /** chance per node per tick that its clock skips a tick (drift, a paused process) */
  skipTickRate: number
  /** chance per node per tick that its host leaves the Ready for later (a slow disk) */
  deferReadyRate: number
}

export interface SimOptions {
  seed: number
  nodes: number
  /** ticks of the faulty phase */
  safetyTicks?: number
  /**
   * after healing, a new proposal must commit within this many ticks plus
   * the time to ship the outstanding log, and every node apply it within as
   * many again
   */
  livenessTicks?: number
  /** chance per tick that a client proposes (a burst of 1 to 4 proposals) */
  proposeRate?: number
  /** fixed faults; by default each seed draws its own */
  faults?: Partial<FaultConfig>
  /** record every message in the trace, for replaying one seed by hand */
  traceMessages?: boolean
}

export interface SimReport {
  seed: number
  nodes: number
  ticks: number
  /** core settings and faults this seed drew */
  settings: string
  messagesSent: number
  messagesDelivered: number
  crashes: number
  partitions: number
  /** terms in which some node was leader */
  leaderTerms: number
  proposals: number
  acknowledged: number
  /** highest index applied anywhere */
  applied: number
  /** ticks from healing to the liveness proposal's acknowledgement */
  livenessCommitTicks: number
  /** what the liveness phase allowed for each of its two steps */
  livenessBoundTicks: number
  /** ticks from healing until every node applied it */
  livenessConvergeTicks: number
}

export class SimFailure extends Error {
  override name = 'SimFailure'
  readonly seed: number
  readonly nodes: number
  readonly tick: number

  constructor (seed: number, nodes: number, tick: number, what: string, trace: readonly string[]) {
    super(`raft simulation failed: seed=${seed} nodes=${nodes} tick=${tick}: ${what}\n` +
      `  replay: node test/sim/run.ts --nodes ${nodes} --seed ${seed} --trace\n` +
      '  last events:\n' + trace.map(l => `    ${l}`).join('\n'))
    this.seed = seed
    this.nodes = nodes
    this.tick = tick
  }
}

const TRACE_LINES = 60

export class Simulation {
  readonly seed: number
  private readonly rng: Rng
  private readonly options: Required<Omit<SimOptions, 'faults'>>
  private readonly faults: FaultConfig
  private readonly settings: CoreSettings
  private readonly nodes: SimHost[] = []
  private readonly ids: string[]
  private readonly checkers: Checkers
  private now = 0
  /** false once the liveness phase begins */
  private faulty = true
  private readonly network: SimNetwork
  private readonly trace: string[] = []
  private proposalCounter = 0
  private readonly stats = { crashes: 0, partitions: 0, proposals: 0 }
  private readonly encoder = new TextEncoder()

  constructor (options: SimOptions) {
    this.seed = options.seed
    this.rng = seededRng(options.seed)
    this.options = {
      safetyTicks: 600,
      livenessTicks: 150,
      proposeRate: 0.2,
      traceMessages: false,
      ...options
    }
    this.ids = Array.from({ length: options.nodes }, (_, i) => `n${i + 1}`)
    this.settings = {
      electionTicks: 10,
      heartbeatTicks: this.draw([1, 1, 2, 3]),
      maxInflight: this.draw([1, 2, 4, 64]),
      maxBatchEntries: this.draw([1, 4, 64]),
      // Mostly as deployed; now and then without the protections, whose
      // absence may cost liveness but never safety.
      preVote: this.draw([true, true, true, false]),
      checkQuorum: this.draw([true, true, true, false])
    }
    this.faults = {
      dropRate: this.draw([0, 0.02, 0.1, 0.2]),
      duplicateRate: this.draw([0, 0.05, 0.1]),
      maxDelay: this.draw([1, 2, 3]),
      crashRate: this.draw([0.005, 0.01, 0.02]),
      maxDown: Math.ceil(options.nodes / 2),
      downTicks: [5, 60],
      partitionRate: this.draw([0.005, 0.01, 0.02]),
      healRate: this.draw([0.01, 0.03, 0.05]),
      skipTickRate: this.draw([0, 0.05]),
      deferReadyRate: this.draw([0, 0.1, 0.3]),
      ...options.faults
    }
    this.checkers = new Checkers(options.nodes)
    this.network = new SimNetwork(this.rng, this.faults, options.nodes)
    const ctx = {
      peers: this.ids,
      settings: this.settings,
      checkers: this.checkers,
      send: (m: RaftMessage) => { this.network.send(m, this.now) }
    }
    for (const id of this.ids) {
      const node = new SimHost(id, ctx)
      this.nodes.push(node)
      this.start(node)
    }
  }

  /** Runs both phases; throws SimFailure on any violation. */
  run (): SimReport {
    try {
      for (let i = 0; i < this.options.safetyTicks; i++) this.step()
      this.checkers.checkAll(this.nodes)
      this.healAll()
      const healedAt = this.now
      const bound = this.livenessBound()
      const { committedAt, index } = this.awaitLivenessCommit(bound)
      const convergedAt = this.awaitConvergence(index, bound)
      this.checkers.checkAll(this.nodes)
      return {
        seed: this.seed,
        nodes: this.nodes.length,
        ticks: this.now,
        settings: this.describeSettings(),
        ...this.stats,
        messagesSent: this.network.sent,
        messagesDelivered: this.network.delivered,
        leaderTerms: this.checkers.leaderTerms(),
        acknowledged: this.checkers.acknowledged(),
        applied: this.checkers.highestApplied(),
        livenessCommitTicks: committedAt - healedAt,
        livenessBoundTicks: bound,
        livenessConvergeTicks: convergedAt - healedAt
      }
    } catch (err) {
      if (err instanceof SimFailure) throw err
      const what = err instanceof CheckFailure ? err.message : `exception: ${(err as Error).stack ?? String(err)}`
      throw new SimFailure(this.seed, this.nodes.length, this.now, what, [`settings: ${this.describeSettings()}`, ...this.trace])
    }
  }

  // --- one tick of the world ---

  private step (): void {
    const faulty = this.faulty
    this.now++
    if (faulty) this.injectFaults()
    for (const node of this.nodes) {
      if (node.core === undefined && node.downUntil <= this.now) this.start(node)
    }
    this.deliver()
    for (const node of this.nodes) {
      if (node.core === undefined) continue
      if (faulty && this.chance(this.faults.skipTickRate)) continue
      this.observe(node, () => (node.core as RaftCore).tick())
    }
    if (faulty && this.chance(this.options.proposeRate)) {
      const burst = 1 + Math.floor(this.rng.next() * 4)
      for (let i = 0; i < burst; i++) this.propose()
    }
    for (const node of this.nodes) {
      if (node.core === undefined) continue
      if (faulty && this.chance(this.faults.deferReadyRate)) continue
      node.processReadies()
    }
    if (this.now % 50 === 0) this.checkers.checkAll(this.nodes)
  }

  private deliver (): void {
    for (let m of this.network.arrivals(this.now)) {
      const node = this.nodes.find(n => n.id === m.to)
      if (node?.core === undefined) continue
      // Some messages cross the wire codec, so a shape the guard refuses or
      // msgpack mangles shows up here rather than in production.
      if (this.chance(0.1)) m = decode(encode(m), isRaftMessage, 'raft message')
      this.network.delivered++
      if (this.options.traceMessages) this.log(`deliver ${describe(m)}`)
      const message = m
      this.observe(node, () => (node.core as RaftCore).step(message))
    }
  }

  // --- clients ---

  /** Proposes to a node that believes it leads; returns the index, if it took it. */
  private propose (data?: Uint8Array): { node: SimHost, index: number, term: number } | undefined {
    const leaders = this.nodes.filter(n => n.core?.role === 'leader')
    // Now and then a client asks a follower, which must refuse.
    const asked = this.faulty && this.chance(0.05) ? pick(this.rng, this.nodes.filter(n => n.core !== undefined)) : pick(this.rng, leaders)
    if (asked?.core === undefined) return undefined
    data ??= this.encoder.encode(`p${++this.proposalCounter}`)
    const core = asked.core
    const wasLeader = core.role === 'leader'
    let result: ReturnType<RaftCore['propose']> | undefined
    this.observe(asked, () => { result = core.propose(data) })
    if (result === undefined || result instanceof NotLeaderError) {
      if (wasLeader) throw new CheckFailure(`${asked.id}: a leader refused a proposal`)
      return undefined
    }
    if (!wasLeader) throw new CheckFailure(`${asked.id}: a ${core.role} accepted a proposal`)
    this.stats.proposals++
    asked.pending.set(result.index, { term: result.term, key: entryKey({ term: result.term, index: result.index, kind: 'normal', data }) })
    this.log(`propose ${asked.id} -> ${result.index}@${result.term}`)
    return { node: asked, index: result.index, term: result.term }
  }

  // --- faults ---

  private injectFaults (): void {
    const up = this.nodes.filter(n => n.core !== undefined)
    const down = this.nodes.length - up.length
    if (down < this.faults.maxDown && this.chance(this.faults.crashRate)) {
      const victim = this.target(up)
      if (victim !== undefined) this.crash(victim)
    }
    if (this.network.partitioned && this.chance(this.faults.healRate)) {
      this.network.heal()
      this.log('heal network')
    }
    if (this.chance(this.faults.partitionRate)) this.partition()
  }

  private partition (): void {
    this.stats.partitions++
    const kind = this.rng.next()
    if (kind < 0.4) {
      const id = (this.target(this.nodes) as SimHost).id
      this.network.isolate(id)
      this.log(`isolate ${id}`)
    } else if (kind < 0.8) {
      const groups = new Map(this.ids.map(id => [id, this.chance(0.5) ? 1 : 0]))
      this.network.split(groups)
      this.log(`split ${this.ids.map(id => `${id}:${groups.get(id) ?? 0}`).join(' ')}`)
    } else {
      const from = pick(this.rng, this.ids) as string
      const to = pick(this.rng, this.ids.filter(id => id !== from)) as string
      this.network.cut(from, to)
      this.log(`cut ${from}>${to}`)
    }
  }

  /**
   * Half the time a fault goes for a node that believes it leads: the
   * interesting histories (an old leader's uncommitted tail meeting a newer
   * leader's log) need leaders to fall often.
   */
  private target (candidates: readonly SimHost[]): SimHost | undefined {
    const leaders = candidates.filter(n => n.core?.role === 'leader')
    return pick(this.rng, leaders.length > 0 && this.chance(0.5) ? leaders : candidates)
  }

  private crash (node: SimHost): void {
    this.stats.crashes++
    const r = this.rng.next()
    const point = r < 0.2 ? 'persist' : r < 0.4 ? 'send' : undefined
    const lost = node.crash(point, this.chance(0.5))
    const [min, max] = this.faults.downTicks
    node.downUntil = this.now + min + Math.floor(this.rng.next() * (max - min + 1))
    this.log(`crash ${node.id}${point === undefined ? '' : ` after ${point}`}${lost ? ', losing unsynced commit' : ''} until ${node.downUntil}`)
  }

  private start (node: SimHost): void {
    const core = node.start(seededRng(Math.floor(this.rng.next() * 2 ** 32)))
    if (node.incarnation > 1) this.log(`restart ${node.id} at term ${core.term}, commit ${core.commitIndex}`)
  }

  private healAll (): void {
    this.faulty = false
    this.network.faulty = false
    this.network.heal()
    for (const node of this.nodes) {
      if (node.core === undefined) this.start(node)
    }
    this.log('liveness phase: network healed, every node up, no more faults')
  }

  // --- liveness ---

  /**
   * Ticks allowed for each liveness step: livenessTicks to elect a leader
   * and commit, plus the time to ship the log that is outstanding at the
   * heal, one batch per round trip (pipelining may not help: reordering
   * sends followers back to probing).
   */
  private livenessBound (): number {
    const cores = this.nodes.map(n => n.core as RaftCore)
    const outstanding = Math.max(...cores.map(c => c.lastIndex)) - Math.min(...cores.map(c => c.commitIndex)) + 1
    const roundTrip = 2 * this.faults.maxDelay + 2
    return this.options.livenessTicks + Math.ceil(outstanding / this.settings.maxBatchEntries) * roundTrip
  }

  private awaitLivenessCommit (ticks: number): { committedAt: number, index: number } {
    const bound = this.now + ticks
    let marker: { node: SimHost, index: number, term: number, incarnation: number, key: string } | undefined
    while (this.now < bound) {
      this.step()
      if (marker !== undefined && this.checkers.isAcknowledged(marker.index, marker.key)) {
        return { committedAt: this.now, index: marker.index }
      }
      const stale = marker === undefined || marker.node.core?.role !== 'leader' ||
        marker.node.core.term !== marker.term || marker.node.incarnation !== marker.incarnation
      if (stale) {
        const data = this.encoder.encode(`liveness-${this.now}`)
        const p = this.propose(data)
        if (p !== undefined) {
          marker = { ...p, incarnation: p.node.incarnation, key: entryKey({ term: p.term, index: p.index, kind: 'normal', data }) }
        }
      }
    }
    const roles = this.nodes.map(n => `${n.id}:${n.core?.role ?? 'down'}@${n.core?.term ?? '-'}`).join(' ')
    throw new CheckFailure(`liveness: no proposal committed within ${ticks} ticks of healing (${roles})`)
  }

  private awaitConvergence (index: number, ticks: number): number {
    const bound = this.now + ticks
    for (;;) {
      if (this.nodes.every(n => n.applied.length >= index)) return this.now
      if (this.now >= bound) {
        const applied = this.nodes.map(n => `${n.id}:${n.applied.length}`).join(' ')
        throw new CheckFailure(`liveness: not every node applied index ${index} within ${ticks} more ticks (${applied})`)
      }
      this.step()
    }
  }

  // --- helpers ---

  /** Runs a call into a core, then checks the invariants that can change with it. */
  private observe (node: SimHost, call: () => void): void {
    const core = node.core as RaftCore
    const before = `${core.role}@${core.term}`
    call()
    const after = `${core.role}@${core.term}`
    if (after !== before) this.log(`${node.id} ${before} -> ${after}`)
    this.checkers.onStep(node, core)
  }

  private chance (p: number): boolean { return p > 0 && this.rng.next() < p }

  private draw<T> (items: readonly T[]): T { return pick(this.rng, items) as T }

  private log (line: string): void {
    this.trace.push(`t${this.now} ${line}`)
    if (this.trace.length > TRACE_LINES * 2) this.trace.splice(0, this.trace.length - TRACE_LINES)
  }

  private describeSettings (): string {
    const f = this.faults
    const s = this.settings
    return `heartbeat=${s.heartbeatTicks} inflight=${s.maxInflight} batch=${s.maxBatchEntries} ` +
      `preVote=${s.preVote} checkQuorum=${s.checkQuorum} ` +
      `drop=${f.dropRate} dup=${f.duplicateRate} delay<=${f.maxDelay} crash=${f.crashRate} ` +
      `partition=${f.partitionRate} heal=${f.healRate} skip=${f.skipTickRate} defer=${f.deferReadyRate}`
  }
}

function describe (m: RaftMessage): string {
  const head = `${m.type} ${m.from}>${m.to} t${m.term}`
  switch (m.type) {
    case 'vote': return `${head}${m.preVote ? ' pre' : ''} last=${m.lastLogIndex}@${m.lastLogTerm}`
    case 'vote-response': return `${head}${m.preVote ? ' pre' : ''} ${m.granted ? 'granted' : 'refused'}`
    case 'append': return `${head} prev=${m.prevLogIndex}@${m.prevLogTerm} n=${m.entries.length} commit=${m.commit}`
    case 'append-response': return m.success
      ? `${head} match=${m.matchIndex}`
      : `${head} rejected=${m.rejectedIndex} hint=${m.hint.conflictIndex}@${m.hint.conflictTerm ?? '-'}`
    case 'timeout-now': return head
    case 'snapshot': return `${head} snap=${m.meta.index}@${m.meta.term}`
  }
}

/** Runs one seed; throws SimFailure on a violation. */
export function simulate (options: SimOptions): SimReport {
  return new Simulation(options).run()
}
