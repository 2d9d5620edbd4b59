// Deterministic simulation of a Raft cluster: N machines (./host.ts), each a
// core behind shoald's own host loop (daemon/raft/ready-loop.ts) with a
// key-value state machine and snapshots, on a simulated network
// (./network.ts), with every choice drawn from one seeded Rng. A safety
// phase injects faults (crashes, partitions, loss, reordering, slow disks)
// while an autopilot changes the membership and hands leadership around,
// clients (./clients.ts) write and read through the leaders, and the
// checkers in ./checkers.ts watch every step; a liveness phase then heals
// everything and demands a commit within a bound, and the clients' history
// must be linearizable. A failure throws SimFailure, whose message carries
// the seed and the command that replays it exactly.
// May import: protocol/, daemon/clock, daemon/raft, and this folder.
import { decode, encode } from '../../protocol/codec.ts'
import { isRaftMessage } from '../../protocol/raft.ts'
import type { ClusterConfig, RaftMessage, SnapshotMessage } from '../../protocol/raft.ts'
import { pick, seededRng } from '../../daemon/clock/clock.ts'
import type { Rng } from '../../daemon/clock/clock.ts'
import { encodeClusterConfig, NotLeaderError, RaftCore } from '../../daemon/raft/core.ts'
import type { ConfigChange } from '../../daemon/raft/core.ts'
import { RAFT_DEFAULTS } from '../../daemon/raft/config.ts'
import { Checkers, CheckFailure, entryKey } from './checkers.ts'
import { Clients } from './clients.ts'
import type { ClientWorld } from './clients.ts'
import { SimHost } from './host.ts'
import type { CoreSettings, HostContext, ProposalOutcome } from './host.ts'
import { checkLinearizable, kvModel } from './linearizability.ts'
import { SimNetwork } from './network.ts'
import { describeMessage as describe } from './describe.ts'

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

/** Membership, snapshots and leadership transfer, drawn per seed unless given. */
export interface FeatureConfig {
  /** voters at the start; the rest start as learners or outside the config */
  initialVoters: number
  /** nodes that start as learners (after the voters) */
  initialLearners: number
  /** every disk starts with the config entry at index 1, as daemon/main.ts writes it; else the core's `peers` */
  bootstrap: boolean
  /** chance per tick in the safety phase that the leader is asked for a membership change */
  configChangeRate: number
  /** chance per tick in the safety phase that the leader is asked to hand over */
  transferRate: number
  /** applied entries between snapshots; Infinity for never */
  snapshotEvery: number
  /** entries kept behind a snapshot */
  keepEntries: number
  /** clients issuing put, cas and get */
  clients: number
  keys: number
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
  /** chance per tick that a bare proposal goes in (a burst of 1 to 4), besides the clients' */
  proposeRate?: number
  /** fixed faults; by default each seed draws its own */
  faults?: Partial<FaultConfig>
  /** fixed features; by default each seed draws its own */
  features?: Partial<FeatureConfig>
  /** record every message in the trace, for replaying one seed by hand */
  traceMessages?: boolean
}

export interface SimReport {
  seed: number
  nodes: number
  ticks: number
  /** core settings, features and faults this seed drew */
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
  configChanges: number
  transfers: number
  snapshotsTaken: number
  snapshotsInstalled: number
  /** client ops in the checked history, reads among them, and writes of unknown outcome */
  clientOps: number
  clientReads: number
  clientUnknown: number
  /** ticks from healing to the liveness proposal's acknowledgement */
  livenessCommitTicks: number
  /** what the liveness phase allowed for each of its two steps */
  livenessBoundTicks: number
  /** ticks from healing until every node in the final config applied it */
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
/** The byte caps of every third seed: an append of about two entries, a pipeline of about six. */
const BYTE_CAPPED = { maxBatchBytes: 100, maxInflightBytes: 300 }

export class Simulation {
  readonly seed: number
  private readonly rng: Rng
  private readonly options: Required<Omit<SimOptions, 'faults' | 'features'>>
  private readonly faults: FaultConfig
  private readonly features: FeatureConfig
  private readonly settings: CoreSettings
  private readonly nodes: SimHost[] = []
  private readonly ids: string[]
  private readonly checkers: Checkers
  private readonly clients: Clients
  private now = 0
  /** false once the liveness phase begins */
  private faulty = true
  private readonly network: SimNetwork
  private readonly trace: string[] = []
  private proposalCounter = 0
  private readonly stats = { crashes: 0, partitions: 0, proposals: 0, configChanges: 0, transfers: 0 }
  private readonly encoder = new TextEncoder()
  /** the incarnation of the sender of each snapshot in flight, so a late report goes to no later one */
  private readonly snapshotSenders = new WeakMap<RaftMessage, number>()

  constructor (options: SimOptions) {
    this.seed = options.seed
    this.rng = seededRng(options.seed)
    this.options = {
      safetyTicks: 600,
      livenessTicks: 150,
      proposeRate: 0.1,
      traceMessages: false,
      ...options
    }
    const n = options.nodes
    this.ids = Array.from({ length: n }, (_, i) => `n${i + 1}`)
    this.settings = {
      electionTicks: 10,
      heartbeatTicks: this.draw([1, 1, 2, 3]),
      maxInflight: this.draw([1, 2, 4, 64]),
      maxBatchEntries: this.draw([1, 4, 64]),
      // Every third seed also caps appends and the pipeline by bytes, tightly
      // enough that entries of a few dozen bytes meet both caps. Chosen by
      // the seed, not drawn, so that every seed draws what it always drew.
      ...(options.seed % 3 === 0 ? BYTE_CAPPED : { maxBatchBytes: RAFT_DEFAULTS.maxBatchBytes, maxInflightBytes: RAFT_DEFAULTS.maxInflightBytes }),
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
      maxDown: Math.ceil(n / 2),
      downTicks: [5, 60],
      partitionRate: this.draw([0.005, 0.01, 0.02]),
      healRate: this.draw([0.01, 0.03, 0.05]),
      skipTickRate: this.draw([0, 0.05]),
      deferReadyRate: this.draw([0, 0.1, 0.3]),
      ...options.faults
    }
    const changing = this.chance(0.6)
    const initialVoters = changing ? 1 + Math.floor(this.rng.next() * n) : n
    this.features = {
      initialVoters,
      initialLearners: Math.floor(this.rng.next() * (n - initialVoters + 1)),
      bootstrap: initialVoters < n || this.chance(0.5),
      configChangeRate: changing ? this.draw([0.01, 0.02, 0.05]) : 0,
      transferRate: this.draw([0, 0.005, 0.02]),
      snapshotEvery: this.draw([20, 50, 100, 200, Infinity]),
      keepEntries: this.draw([0, 2, 5, 20]),
      clients: 3 + Math.floor(this.rng.next() * 3),
      keys: 2 + Math.floor(this.rng.next() * 3),
      ...options.features
    }
    const f = this.features
    if (f.configChangeRate > 0 && !this.settings.preVote && !this.settings.checkQuorum) {
      // A removed voter that missed its removal campaigns for ever; without
      // both protections it deposes every leader (thesis 4.2.3), a liveness
      // loss Raft accepts; keep one protection on.
      this.settings.checkQuorum = true
    }
    const voters = this.ids.slice(0, f.initialVoters)
    const initialConfig: ClusterConfig = { voters, learners: this.ids.slice(f.initialVoters, f.initialVoters + f.initialLearners) }
    if (!f.bootstrap && (initialConfig.learners.length > 0 || voters.length < n)) {
      throw new Error('a simulation without bootstrap starts with every node a voter')
    }
    this.checkers = new Checkers(f.configChangeRate > 0 ? undefined : voters)
    this.network = new SimNetwork(this.rng, this.faults, n)
    this.clients = new Clients(this.rng, { clients: f.clients, keys: f.keys, rate: 0.15, timeout: 120, submitWait: 60 })
    const ctx: HostContext = {
      peers: this.ids,
      settings: this.settings,
      checkers: this.checkers,
      snapshotEvery: f.snapshotEvery,
      keepEntries: f.keepEntries,
      send: (m, from) => {
        if (m.type === 'snapshot') this.snapshotSenders.set(m, from.incarnation)
        this.network.send(m, this.now)
      }
    }
    const configEntry = { term: 1, index: 1, kind: 'config' as const, data: encodeClusterConfig(initialConfig) }
    for (const id of this.ids) {
      const node = new SimHost(id, ctx)
      if (f.bootstrap) node.bootstrap(configEntry)
      this.nodes.push(node)
      this.start(node)
    }
  }

  /** Runs both phases, then checks the clients' history; throws SimFailure on any violation. */
  run (): SimReport {
    try {
      for (let i = 0; i < this.options.safetyTicks; i++) this.step()
      this.checkers.checkAll(this.nodes)
      this.healAll()
      const healedAt = this.now
      const bound = this.livenessBound()
      const { committedAt, index, leader } = this.awaitLivenessCommit(bound)
      const convergedAt = this.awaitConvergence(index, bound, leader)
      this.checkers.checkAll(this.nodes)
      this.checkHistory()
      const history = this.clients.history
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
        snapshotsTaken: this.nodes.reduce((s, n) => s + n.snapshotsTaken, 0),
        snapshotsInstalled: this.nodes.reduce((s, n) => s + n.snapshotsInstalled, 0),
        clientOps: history.length,
        clientReads: this.clients.reads,
        clientUnknown: this.clients.unknown,
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

  /** (5) Linearizability of what the clients saw; outcomes still out are unknown. */
  private checkHistory (): void {
    for (const node of this.nodes) node.settleAll()
    this.clients.finish()
    const result = checkLinearizable(kvModel, this.clients.history, { timeoutMs: 10_000 })
    if (!result.ok && result.timedOut !== true) {
      throw new CheckFailure(`linearizability: the clients' history has no legal order\n${result.explanation ?? ''}`)
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
    if (faulty && this.chance(this.features.configChangeRate)) this.changeConfig()
    if (faulty && this.chance(this.features.transferRate)) this.transfer()
    this.clients.tick(this.clientWorld, faulty)
    for (const node of this.nodes) {
      if (node.core === undefined) continue
      if (faulty && this.chance(this.faults.deferReadyRate)) continue
      node.processReadies()
    }
    if (this.now % 50 === 0) this.checkers.checkAll(this.nodes)
  }

  private deliver (): void {
    const { arrived, lostSnapshots } = this.network.arrivals(this.now)
    for (const m of lostSnapshots) this.snapshotDone(m, false)
    for (const sent of arrived) {
      const node = this.nodes.find(n => n.id === sent.to)
      if (node?.core === undefined) {
        if (sent.type === 'snapshot') this.snapshotDone(sent, false)
        continue
      }
      // Some messages cross the wire codec, so a shape the guard refuses or
      // msgpack mangles shows up here rather than in production.
      const m = this.chance(0.1) ? decode(encode(sent), isRaftMessage, 'raft message') : sent
      this.network.delivered++
      if (this.options.traceMessages) this.log(`deliver ${describe(m)}`)
      this.observe(node, () => (node.core as RaftCore).step(m))
      if (sent.type === 'snapshot') this.snapshotDone(sent, true)
    }
  }

  /** The sender's transport learns how a snapshot went, if the sender is the incarnation that sent it. */
  private snapshotDone (m: SnapshotMessage, ok: boolean): void {
    const sender = this.nodes.find(n => n.id === m.from)
    const core = sender?.core
    if (sender === undefined || core === undefined || this.snapshotSenders.get(m) !== sender.incarnation) return
    if (this.options.traceMessages) this.log(`snapshot ${m.from}>${m.to} ${m.meta.index} ${ok ? 'sent' : 'lost'}`)
    this.observe(sender, () => core.snapshotSent(m.to, ok))
  }

  // --- clients, autopilot ---

  private readonly clientWorld: ClientWorld = {
    now: () => this.now,
    leader: () => pick(this.rng, this.nodes.filter(n => n.core?.role === 'leader')),
    propose: (node, data, done) => this.proposeOn(node, data, done),
    readIndex: (node, ctx, key, done) => {
      if (node.core === undefined) return false
      let asked = false
      this.observe(node, () => { asked = node.readIndex(ctx, key, done) })
      return asked
    }
  }

  /** Proposes to a node that believes it leads (now and then to any node); returns the index, if it took it. */
  private propose (data?: Uint8Array): { node: SimHost, index: number, term: number } | undefined {
    const leaders = this.nodes.filter(n => n.core?.role === 'leader')
    // Now and then a client asks a follower, which must refuse.
    const asked = this.faulty && this.chance(0.05) ? pick(this.rng, this.nodes.filter(n => n.core !== undefined)) : pick(this.rng, leaders)
    if (asked?.core === undefined) return undefined
    data ??= this.encoder.encode(`p${++this.proposalCounter}`)
    const at = this.proposeOn(asked, data)
    return at === undefined ? undefined : { node: asked, ...at }
  }

  private proposeOn (node: SimHost, data: Uint8Array, done?: (outcome: ProposalOutcome) => void): { index: number, term: number } | undefined {
    const core = node.core
    if (core === undefined) return undefined
    const wasLeader = core.role === 'leader'
    const handingOver = core.transferee !== undefined
    let result: ReturnType<RaftCore['propose']> | undefined
    this.observe(node, () => { result = core.propose(data) })
    if (result === undefined || result instanceof NotLeaderError) {
      if (wasLeader && !handingOver) throw new CheckFailure(`${node.id}: a leader refused a proposal`)
      return undefined
    }
    if (!wasLeader) throw new CheckFailure(`${node.id}: a ${core.role} accepted a proposal`)
    this.stats.proposals++
    node.track(result, data, done)
    this.log(`propose ${node.id} -> ${result.index}@${result.term}`)
    return { index: result.index, term: result.term }
  }

  /** The autopilot: one random single-server change on a node that believes it leads. */
  private changeConfig (): void {
    const leader = pick(this.rng, this.nodes.filter(n => n.core?.role === 'leader'))
    const core = leader?.core
    if (leader === undefined || core === undefined) return
    const { voters, learners } = core.clusterConfig
    const id = pick(this.rng, this.ids.filter(i => i !== leader.id)) as string
    let type: ConfigChange['type']
    if (voters.includes(id)) type = voters.length > 2 || this.chance(0.3) ? (this.chance(0.5) ? 'demote' : 'remove') : 'promote'
    else if (learners.includes(id)) type = this.chance(0.7) ? 'promote' : 'remove'
    else type = 'add-learner'
    let result: ReturnType<RaftCore['changeConfig']> | undefined
    this.observe(leader, () => { result = core.changeConfig({ type, id }) })
    if (result instanceof Error) {
      if (this.options.traceMessages) this.log(`config ${type} ${id} on ${leader.id} refused: ${result.message}`)
      return
    }
    if (result === undefined) return
    this.stats.configChanges++
    this.log(`config ${type} ${id} on ${leader.id} -> ${result.index}@${result.term}`)
  }

  private transfer (): void {
    const leader = pick(this.rng, this.nodes.filter(n => n.core?.role === 'leader'))
    const core = leader?.core
    if (leader === undefined || core === undefined) return
    const to = this.chance(0.7) ? undefined : pick(this.rng, core.clusterConfig.voters)
    let chosen: string | undefined
    this.observe(leader, () => { chosen = core.transferLeadership(to) })
    if (chosen === undefined) return
    this.stats.transfers++
    this.log(`transfer ${leader.id} -> ${chosen}`)
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
    // Peers whose connection to it drops may notice at once (leaderUnreachable).
    for (const peer of this.nodes) {
      const core = peer.core
      if (core === undefined || !this.chance(0.5)) continue
      this.observe(peer, () => { core.leaderUnreachable(node.id) })
    }
  }

  private start (node: SimHost): void {
    const core = node.start(seededRng(Math.floor(this.rng.next() * 2 ** 32)))
    if (node.incarnation > 1) this.log(`restart ${node.id} at term ${core.term}, commit ${core.commitIndex}, snapshot ${node.storage.snapshotMeta().index}`)
  }

  private healAll (): void {
    this.faulty = false
    this.network.faulty = false
    this.network.heal()
    for (const node of this.nodes) {
      if (node.core === undefined) this.start(node)
    }
    this.log('liveness phase: network healed, every node up, no more faults or config changes')
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
    // Without PreVote, a voter whose log is behind keeps bumping the term
    // and splitting the vote with the one that can win; with two voters and
    // slow links that can last several election timeouts (seed 19894 of 3
    // nodes took about 250 ticks). shoald always runs with PreVote.
    const elections = this.settings.preVote ? 1 : 3
    // With the byte caps, an append may carry a single entry.
    const batch = this.settings.maxBatchBytes === BYTE_CAPPED.maxBatchBytes ? 1 : this.settings.maxBatchEntries
    return this.options.livenessTicks * elections + Math.ceil(outstanding / batch) * roundTrip
  }

  private awaitLivenessCommit (ticks: number): { committedAt: number, index: number, leader: SimHost } {
    const bound = this.now + ticks
    let marker: { node: SimHost, index: number, term: number, incarnation: number, key: string } | undefined
    while (this.now < bound) {
      this.step()
      if (marker !== undefined && this.checkers.isAcknowledged(marker.index, marker.key)) {
        return { committedAt: this.now, index: marker.index, leader: marker.node }
      }
      // A leader of an older term may not have heard of the newer one yet.
      const newest = this.nodes.reduce((t, n) => n.core?.role === 'leader' ? Math.max(t, n.core.term) : t, 0)
      const stale = marker === undefined || marker.node.core?.role !== 'leader' ||
        marker.node.core.term !== marker.term || marker.node.incarnation !== marker.incarnation || marker.term < newest
      if (stale) {
        const leader = this.nodes.find(n => n.core?.role === 'leader' && n.core.term === newest && n.core.transferee === undefined)
        if (leader === undefined) continue
        const data = this.encoder.encode(`liveness-${this.now}`)
        const p = this.proposeOn(leader, data)
        if (p !== undefined) {
          marker = { ...p, node: leader, incarnation: leader.incarnation, key: entryKey({ term: p.term, index: p.index, kind: 'normal', data }) }
        }
      }
    }
    const roles = this.nodes.map(n => `${n.id}:${n.core?.role ?? 'down'}@${n.core?.term ?? '-'}`).join(' ')
    throw new CheckFailure(`liveness: no proposal committed within ${ticks} ticks of healing (${roles})`)
  }

  /** Every node in the leader's committed config applies the index; nodes outside it get nothing new. */
  private awaitConvergence (index: number, ticks: number, leader: SimHost): number {
    const bound = this.now + ticks
    for (;;) {
      const config = leader.core?.clusterConfig ?? { voters: this.ids, learners: [] }
      const members = this.nodes.filter(n => config.voters.includes(n.id) || config.learners.includes(n.id))
      if (members.every(n => n.appliedIndex >= index)) return this.now
      if (this.now >= bound) {
        const applied = members.map(n => `${n.id}:${n.appliedIndex}`).join(' ')
        throw new CheckFailure(`liveness: not every member applied index ${index} within ${ticks} more ticks (${applied})`)
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
    const x = this.features
    return `heartbeat=${s.heartbeatTicks} inflight=${s.maxInflight} batch=${s.maxBatchEntries} batchBytes=${s.maxBatchBytes} inflightBytes=${s.maxInflightBytes} ` +
      `preVote=${s.preVote} checkQuorum=${s.checkQuorum} ` +
      `voters=${x.initialVoters} learners=${x.initialLearners} bootstrap=${x.bootstrap} configRate=${x.configChangeRate} ` +
      `transferRate=${x.transferRate} snapshotEvery=${x.snapshotEvery} keep=${x.keepEntries} clients=${x.clients} keys=${x.keys} ` +
      `drop=${f.dropRate} dup=${f.duplicateRate} delay<=${f.maxDelay} crash=${f.crashRate} ` +
      `partition=${f.partitionRate} heal=${f.healRate} skip=${f.skipTickRate} defer=${f.deferReadyRate}`
  }
}

/** Runs one seed; throws SimFailure on a violation. */
export function simulate (options: SimOptions): SimReport {
  return new Simulation(options).run()
}
