// The invariants the simulator checks while it runs: election safety, log
// matching, state machine safety (the same entry applied at each index, and
// the same state machine contents at each applied index, so that a replica
// restored from a snapshot is compared too), leader completeness, that
// acknowledged entries are never lost or changed, and that persisted votes
// and terms never go back. Logs may be compacted: checks read only what each
// disk still holds. Each check throws CheckFailure; the simulator adds the seed.
// May import: protocol/, daemon/raft.
import type { Entry, HardState } from '../../protocol/raft.ts'
import type { RaftCore } from '../../daemon/raft/core.ts'
import type { MemoryStorage } from '../../daemon/raft/storage.ts'

export class CheckFailure extends Error {
  override name = 'CheckFailure'
}

/** What the checkers see of a simulated node. */
export interface SimNodeView {
  id: string
  /** what survives a crash */
  storage: MemoryStorage
  /** grows by one at every start */
  incarnation: number
  /** the last index this incarnation's state machine applied (or restored from a snapshot) */
  appliedIndex: number
}

const keys = new WeakMap<Entry, string>()

/** An entry's identity: index, term, kind and payload. */
export function entryKey (e: Entry): string {
  let key = keys.get(e)
  if (key === undefined) {
    key = `${e.index}@${e.term}:${e.kind}:${Buffer.from(e.data.buffer, e.data.byteOffset, e.data.byteLength).toString('hex')}`
    keys.set(e, key)
  }
  return key
}

export class Checkers {
  private readonly leaders = new Map<number, string>()
  /** every entry ever persisted anywhere, by "index@term": its key and the term before it */
  private readonly persisted = new Map<string, string>()
  /** the first entry applied at each index, by any node */
  private readonly appliedAt = new Map<number, string>()
  private readonly acked = new Map<number, string>()
  private readonly hardStates = new Map<string, HardState>()
  /** how many indexes had been applied anywhere when each term's leader won */
  private readonly appliedBeforeTerm = new Map<number, number>()
  /** the state machine's hash after applying each index, as the first node to reach it saw it */
  private readonly stateAt = new Map<number, string>()
  /**
   * The voters whose majority must hold every acknowledged entry; undefined
   * once membership may change, as the majority then moves (leader
   * completeness and state machine safety still cover durability).
   */
  staticVoters: readonly string[] | undefined

  constructor (staticVoters?: readonly string[]) {
    this.staticVoters = staticVoters
  }

  leaderTerms (): number { return this.leaders.size }
  acknowledged (): number { return this.acked.size }
  highestApplied (): number { return this.appliedAt.size }
  isAcknowledged (index: number, key: string): boolean { return this.acked.get(index) === key }

  /** (1) Election safety: at most one leader per term, ever. */
  onStep (node: SimNodeView, core: RaftCore): void {
    if (core.role !== 'leader') return
    const leader = this.leaders.get(core.term)
    if (leader === undefined) {
      this.leaders.set(core.term, node.id)
      this.appliedBeforeTerm.set(core.term, this.appliedAt.size)
    } else if (leader !== node.id) {
      throw new CheckFailure(`election safety: ${leader} and ${node.id} both lead term ${core.term}`)
    }
  }

  /**
   * (4) Leader completeness, checked when a new leader's log is on disk (its
   * noop persisted, so everything before it is too): it holds every entry
   * that anyone applied before it won. Entries applied since may come from a
   * newer term this leader has not heard of.
   */
  onLeaderNoopPersisted (node: SimNodeView, term: number): void {
    const before = this.appliedBeforeTerm.get(term) ?? 0
    const first = node.storage.firstIndex()
    for (let i = first; i <= before; i++) {
      const applied = this.appliedAt.get(i) as string
      const held = node.storage.lastIndex() >= i ? entryKey(node.storage.entries(i, i + 1)[0] as Entry) : 'nothing'
      if (held !== applied) throw new CheckFailure(`leader completeness: ${node.id}, leader of term ${term}, holds ${held} at ${i} where ${applied} was applied`)
    }
  }

  /** A vote, once on disk, stands for its term; terms never go back, even across a crash. */
  onPersistHardState (node: SimNodeView, hs: HardState): void {
    const prev = this.hardStates.get(node.id)
    if (prev !== undefined) {
      if (hs.term < prev.term) throw new CheckFailure(`${node.id}: persisted term went back from ${prev.term} to ${hs.term}`)
      if (hs.term === prev.term && prev.votedFor !== undefined && hs.votedFor !== prev.votedFor) {
        throw new CheckFailure(`${node.id}: persisted vote in term ${hs.term} changed from ${prev.votedFor} to ${hs.votedFor ?? 'none'}`)
      }
      if (hs.commit < prev.commit) throw new CheckFailure(`${node.id}: persisted commit went back from ${prev.commit} to ${hs.commit}`)
    }
    this.hardStates.set(node.id, hs)
  }

  /**
   * A crash lost the writes made since the last sync. Only a commit may be
   * lost so: a term or a vote must be synced before anyone hears of it.
   */
  onUnsyncedLost (node: SimNodeView, synced: HardState): void {
    const lost = this.hardStates.get(node.id)
    if (lost !== undefined && (lost.term !== synced.term || lost.votedFor !== synced.votedFor)) {
      throw new CheckFailure(`${node.id}: term ${lost.term} and vote ${lost.votedFor ?? 'none'} were written without a sync ` +
        `(the disk still says term ${synced.term}, vote ${synced.votedFor ?? 'none'})`)
    }
    this.hardStates.set(node.id, synced)
  }

  /**
   * (2) Log matching, incrementally: an (index, term) names one entry and one
   * predecessor term wherever it appears, which by induction makes every
   * two logs that share an (index, term) identical up to it.
   */
  onPersistEntries (node: SimNodeView, entries: readonly Entry[]): void {
    const first = node.storage.firstIndex()
    for (const e of entries) {
      if (e.index < first) continue // a snapshot covers it; storage dropped it
      const id = `${e.index}@${e.term}`
      const value = `${node.storage.term(e.index - 1)}|${entryKey(e)}`
      const known = this.persisted.get(id)
      if (known === undefined) this.persisted.set(id, value)
      else if (known !== value) throw new CheckFailure(`log matching: ${node.id} persisted ${id} as ${value}, seen elsewhere as ${known}`)
    }
  }

  /** (3) State machine safety, and acknowledged entries stay put; applying is in order. */
  onApply (node: SimNodeView, e: Entry, key: string): void {
    if (e.index !== node.appliedIndex + 1) {
      throw new CheckFailure(`${node.id}: applied index ${e.index} after ${node.appliedIndex}`)
    }
    const acked = this.acked.get(e.index)
    if (acked !== undefined && acked !== key) {
      throw new CheckFailure(`acknowledged entry lost: ${node.id} applied ${key} where ${acked} was acknowledged`)
    }
    const first = this.appliedAt.get(e.index)
    if (first === undefined) this.appliedAt.set(e.index, key)
    else if (first !== key) throw new CheckFailure(`state machine safety: ${node.id} applied ${key} where another applied ${first}`)
  }

  /** (3) State machine safety by contents: every replica is in the same state after the same index. */
  onState (node: SimNodeView, index: number, hash: string): void {
    const first = this.stateAt.get(index)
    if (first === undefined) this.stateAt.set(index, hash)
    else if (first !== hash) throw new CheckFailure(`state machine safety: ${node.id} at index ${index} holds ${hash} where another held ${first}`)
  }

  onAcknowledge (e: Entry, key: string): void {
    this.acked.set(e.index, key)
  }

  /** The checks too costly for every step: run every few ticks and at the end of each phase. */
  checkAll (nodes: readonly SimNodeView[]): void {
    for (let a = 0; a < nodes.length; a++) {
      for (let b = a + 1; b < nodes.length; b++) this.checkPair(nodes[a] as SimNodeView, nodes[b] as SimNodeView)
    }
    this.checkDurable(nodes)
    this.checkCommittedPrefix(nodes)
  }

  /** (2) Log matching, pairwise over what each node persisted. */
  private checkPair (a: SimNodeView, b: SimNodeView): void {
    const first = Math.max(a.storage.firstIndex(), b.storage.firstIndex())
    let i = Math.min(a.storage.lastIndex(), b.storage.lastIndex())
    while (i >= first && a.storage.term(i) !== b.storage.term(i)) i--
    if (i < first) return
    const ea = a.storage.entries(first, i + 1)
    const eb = b.storage.entries(first, i + 1)
    for (let j = 0; j <= i - first; j++) {
      const ka = entryKey(ea[j] as Entry)
      const kb = entryKey(eb[j] as Entry)
      if (ka !== kb) throw new CheckFailure(`log matching: ${a.id} and ${b.id} agree at ${i}@${a.storage.term(i)} but differ at ${j + first}: ${ka} vs ${kb}`)
    }
  }

  /** The safety promise: an acknowledged entry is in the persisted log of a majority. */
  private checkDurable (nodes: readonly SimNodeView[]): void {
    const voters = this.staticVoters
    if (voters === undefined) return
    const quorum = Math.floor(voters.length / 2) + 1
    const held = nodes.filter(n => voters.includes(n.id))
    for (const [index, key] of this.acked) {
      let holders = 0
      for (const n of held) {
        // A snapshot at or past the index stands for it (its contents are checked by onState).
        if (n.storage.snapshotMeta().index >= index) holders++
        else if (n.storage.lastIndex() >= index && n.storage.firstIndex() <= index && entryKey(n.storage.entries(index, index + 1)[0] as Entry) === key) holders++
      }
      if (holders < quorum) throw new CheckFailure(`durability: acknowledged ${key} is persisted on ${holders} of ${voters.length} voters`)
    }
  }

  /** What a node persisted as committed agrees with what anyone applied. */
  private checkCommittedPrefix (nodes: readonly SimNodeView[]): void {
    for (const n of nodes) {
      const commit = n.storage.hardState().commit
      if (commit > n.storage.lastIndex()) throw new CheckFailure(`${n.id}: persisted commit ${commit} is past its log (${n.storage.lastIndex()})`)
      const entries = commit >= n.storage.firstIndex() ? n.storage.entries(n.storage.firstIndex(), commit + 1) : []
      for (const e of entries) {
        const applied = this.appliedAt.get(e.index)
        if (applied !== undefined && applied !== entryKey(e)) {
          throw new CheckFailure(`state machine safety: ${n.id} committed ${entryKey(e)} where ${applied} was applied`)
        }
      }
    }
  }
}
