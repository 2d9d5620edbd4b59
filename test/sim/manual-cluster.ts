// A hand-driven Raft cluster for focused tests: the test decides who ticks
// and which messages arrive, and every host follows the Ready contract
// (install a snapshot, persist, send, apply, advance) synchronously, as
// daemon/raft/node.ts does: snapshot messages carry the sender's stored
// snapshot, and `compact` takes one. The state machine here is the list of
// applied entries; a snapshot's data is empty.
// May import: protocol/, daemon/clock, daemon/raft.
import type { ClusterConfig, Entry, RaftMessage } from '../../protocol/raft.ts'
import { seededRng } from '../../daemon/clock/clock.ts'
import type { RaftConfig } from '../../daemon/raft/config.ts'
import { decodeClusterConfig, encodeClusterConfig, RaftCore } from '../../daemon/raft/core.ts'
import { MemoryStorage } from '../../daemon/raft/storage.ts'

export interface ManualNode {
  id: string
  core: RaftCore
  storage: MemoryStorage
  applied: Entry[]
  /** the last index applied, or restored from a snapshot */
  appliedIndex: number
  /** the config as of appliedIndex */
  appliedConfig: ClusterConfig
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
        while (n.core.hasReady()) {
          again = true
          const rd = n.core.ready()
          if (rd.snapshot !== undefined) {
            n.storage.installSnapshot(rd.snapshot)
            n.appliedIndex = rd.snapshot.meta.index
            n.appliedConfig = rd.snapshot.meta.config
          }
          n.storage.append(rd.entries)
          if (rd.hardState !== undefined) n.storage.setHardState(rd.hardState)
          for (const m of rd.messages) {
            if (this.lost(m)) continue
            if (m.type === 'snapshot') {
              const snap = n.storage.snapshot()
              this.queue.push({ ...m, meta: snap.meta, data: snap.data })
            } else {
              this.queue.push(m)
            }
          }
          for (const e of rd.committed) {
            n.applied.push(e)
            n.appliedIndex = e.index
            if (e.kind === 'config') n.appliedConfig = decodeClusterConfig(e.data)
          }
          n.core.advance(rd)
          this.readStates.push(...rd.readStates.map(r => ({ id: n.id, ...r })))
          this.droppedReads.push(...rd.droppedReads.map(ctx => ({ id: n.id, ctx })))
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
    const snap = storage.snapshot()
    const core = new RaftCore({ id, peers: this.ids, rng: seededRng(this.seed++), storage, applied: snap.meta.index, ...this.options, ...options })
    const appliedConfig = snap.meta.index > 0 ? snap.meta.config : { voters: this.ids, learners: [] }
    return { id, core, storage, applied: [], appliedIndex: snap.meta.index, appliedConfig }
  }
}
