// A hand-driven Raft cluster for focused tests: the test decides who ticks
// and which messages arrive, and every host runs shoald's host loop
// (daemon/raft/ready-loop.ts: install a snapshot, persist, send, apply,
// advance) synchronously on a MemoryStorage: snapshot messages carry the
// sender's stored snapshot, and `compact` takes one. The state machine here
// is the list of applied entries; a snapshot's data is empty.
// May import: protocol/, daemon/clock, daemon/raft.
import type { ClusterConfig, Entry, RaftMessage } from '../../protocol/raft.ts'
import { seededRng } from '../../daemon/clock/clock.ts'
import type { RaftConfig } from '../../daemon/raft/config.ts'
import { encodeClusterConfig } from '../../daemon/raft/core.ts'
import type { RaftCore } from '../../daemon/raft/core.ts'
import { ReadyLoop } from '../../daemon/raft/ready-loop.ts'
import type { ReadyLoopInit } from '../../daemon/raft/ready-loop.ts'
import { MemoryStorage } from '../../daemon/raft/storage.ts'
import type { StateMachine } from '../../daemon/raft/state-machine.ts'

/** Applies nothing: what a node applied is the list of entries the loop reports. */
const NOTHING: StateMachine = { apply: () => undefined, snapshot: () => new Uint8Array(0), restore: () => {} }

export class ManualNode {
  readonly id: string
  readonly storage: MemoryStorage
  readonly loop: ReadyLoop
  /** every entry applied since the node (re)started */
  readonly applied: Entry[] = []

  constructor (id: string, storage: MemoryStorage, init: Omit<ReadyLoopInit, 'storage' | 'stateMachine' | 'snapshotEntries' | 'keepEntries'>) {
    this.id = id
    this.storage = storage
    const events = init.events ?? {}
    this.loop = new ReadyLoop({
      ...init,
      storage,
      stateMachine: NOTHING,
      snapshotEntries: Infinity,
      keepEntries: 0,
      events: { ...events, applied: (e, result) => { this.applied.push(e); events.applied?.(e, result) } }
    })
  }

  get core (): RaftCore { return this.loop.core }
  /** the last index applied, or restored from a snapshot */
  get appliedIndex (): number { return this.loop.appliedIndex }
  /** the config as of appliedIndex */
  get appliedConfig (): ClusterConfig { return this.loop.appliedConfig }
}

type Options = Partial<Omit<RaftConfig, 'id' | 'peers' | 'rng' | 'storage'>>

export class ManualCluster {
  readonly nodes = new Map<string, ManualNode>()
  readonly ids: string[]
  /** sent and not yet delivered, oldest first */
  queue: RaftMessage[] = []
  /** every message delivered so far */
  readonly delivered: RaftMessage[] = []
  /** confirmed reads (ReadIndex) handed out by any node, in order */
  readonly readStates: Array<{ id: string, ctx: number, index: number }> = []
  /** reads dropped by any node, in order */
  readonly droppedReads: Array<{ id: string, ctx: number }> = []
  /** nodes cut off from everyone: messages from or to them are lost */
  readonly isolated = new Set<string>()
  /** one-way cuts, "from>to": messages along them are lost */
  readonly cut = new Set<string>()
  private seed: number
  private readonly options: Options

  /**
   * With `bootstrap`, every disk starts with that config as entry 1 (term 1,
   * committed), as daemon/main.ts writes it; otherwise every node is a voter.
   */
  constructor (count: number, options: Options = {}, seed = 1, bootstrap?: ClusterConfig) {
    this.ids = Array.from({ length: count }, (_, i) => `n${i + 1}`)
    this.seed = seed
    this.options = options
    for (const id of this.ids) {
      const storage = new MemoryStorage()
      if (bootstrap !== undefined) {
        storage.append([{ term: 1, index: 1, kind: 'config', data: encodeClusterConfig(bootstrap) }])
        storage.setHardState({ term: 1, commit: 1 })
      }
      this.nodes.set(id, this.makeNode(id, storage))
    }
  }

  /** Takes a snapshot at the node's applied index and compacts its log, keeping `keep` entries. */
  compact (id: string, keep = 0): void {
    const n = this.node(id)
    const index = n.appliedIndex
    n.storage.saveSnapshot({ meta: { index, term: n.storage.term(index), config: n.appliedConfig }, data: new Uint8Array(0) }, index - keep)
  }

  node (id: string): ManualNode { return this.nodes.get(id) as ManualNode }
  core (id: string): RaftCore { return this.node(id).core }

  /** Restarts a node from what it persisted, losing everything else. */
  restart (id: string, options: Options = {}): void {
    this.queue = this.queue.filter(m => m.to !== id)
    this.nodes.set(id, this.makeNode(id, this.node(id).storage, options))
  }

  /** Runs every host loop until no node has a Ready left. */
  flush (): void {
    for (let again = true; again;) {
      again = false
      for (const n of this.nodes.values()) {
        while (n.loop.hasReady()) {
          again = true
          if (n.loop.processReady() !== undefined) throw new Error('a MemoryStorage is synchronous, yet the host loop waited')
        }
      }
    }
  }

  tick (ids: readonly string[] = this.ids, times = 1): void {
    for (let i = 0; i < times; i++) {
      for (const id of ids) this.core(id).tick()
      this.flush()
    }
  }

  /**
   * Delivers queued messages in order, including the ones they cause, until
   * none is left or `until` holds after a delivery. Messages `keep` refuses
   * are dropped.
   */
  deliver (keep: (m: RaftMessage) => boolean = () => true, until?: () => boolean): void {
    this.flush()
    for (let n = 0; this.queue.length > 0; n++) {
      if (n > 100_000) throw new Error('messages never stop')
      const m = this.queue.shift() as RaftMessage
      if (this.lost(m) || !keep(m)) continue
      this.delivered.push(m)
      this.core(m.to).step(m)
      this.flush()
      if (until?.() === true) return
    }
  }

  /** Ticks every node and delivers everything, `times` over. */
  run (times: number, ids: readonly string[] = this.ids): void {
    for (let i = 0; i < times; i++) {
      this.tick(ids)
      this.deliver()
    }
  }

  /** Ticks only `id` until it campaigns, then delivers everything, or until `until` holds. */
  campaign (id: string, until?: () => boolean): void {
    const core = this.core(id)
    for (let i = 0; i < 1000 && core.role === 'follower'; i++) this.tick([id])
    this.deliver(undefined, until)
  }

  leaders (): ManualNode[] {
    return [...this.nodes.values()].filter(n => n.core.role === 'leader')
  }

  private lost (m: RaftMessage): boolean {
    return this.isolated.has(m.from) || this.isolated.has(m.to) || this.cut.has(`${m.from}>${m.to}`)
  }

  private makeNode (id: string, storage: MemoryStorage, options: Options = {}): ManualNode {
    return new ManualNode(id, storage, {
      raft: { id, peers: this.ids, rng: seededRng(this.seed++), ...this.options, ...options },
      send: m => { if (!this.lost(m)) this.queue.push(m) },
      events: {
        reads: (confirmed, dropped) => {
          this.readStates.push(...confirmed.map(r => ({ id, ...r })))
          this.droppedReads.push(...dropped.map(ctx => ({ id, ctx })))
        }
      }
    })
  }
}
