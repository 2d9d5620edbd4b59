// Autopilot: the leader keeps the voter set healthy with no operator. Every
// member that membership sees alive joins as a learner; caught-up learners
// are promoted until the voter count reaches its target; a voter that
// membership has reported dead for longer than a grace period (or that left)
// is removed, and a learner takes its place. One single-server change at a
// time, and only on the leader. plan() is pure; Autopilot drives it.
// May import: protocol/, daemon/clock, daemon/log, and this folder.
import type { MemberState } from '../../protocol/membership.ts'
import type { ClusterConfig } from '../../protocol/raft.ts'
import type { Clock } from '../clock/clock.ts'
import { every } from '../clock/clock.ts'
import type { Logger } from '../log/log.ts'
import type { ConfigChange } from './core.ts'
import type { RaftNode } from './node.ts'

/** What autopilot needs of the Raft node. */
export type AutopilotNode = Pick<RaftNode, 'id' | 'isLeader' | 'configChangePending' | 'clusterConfig' | 'commitIndex' | 'matchIndex' | 'changeConfig'>

export interface MemberHealth {
  state: MemberState
  /** ms time the state began */
  since: number
}

export interface PlanInput {
  self: string
  config: ClusterConfig
  commitIndex: number
  /** the leader's matchIndex for a server, if known */
  match: (id: string) => number | undefined
  /** membership's view, by peer id */
  members: ReadonlyMap<string, MemberHealth>
  now: number
  /** configured voter count; undefined: 3, or 5 from 5 healthy peers on */
  targetVoters: number | undefined
  deadGraceMs: number
  /** a learner this far behind commit or less counts as caught up */
  maxLag: number
}

export interface PlannedChange {
  change: ConfigChange
  reason: string
}

/** The largest odd number not above n (at least 1). */
function oddAtMost (n: number): number {
  return Math.max(1, n % 2 === 1 ? n : n - 1)
}

/** The next change to make, if any. */
export function plan (input: PlanInput): PlannedChange | undefined {
  const { self, config, members, now } = input
  const health = (id: string): MemberHealth | undefined => id === self ? { state: 'alive', since: 0 } : members.get(id)
  // Gone: left, or dead beyond the grace period. Unknown and suspect are not
  // gone: a new leader's membership may not have heard from everyone yet.
  const gone = (id: string): boolean => {
    const h = health(id)
    return h !== undefined && (h.state === 'left' || (h.state === 'dead' && now - h.since >= input.deadGraceMs))
  }
  const alive = (id: string): boolean => health(id)?.state === 'alive'
  const inConfig = new Set([...config.voters, ...config.learners])
  const healthyCount = [...new Set([...inConfig, ...[...members.keys()].filter(alive), self])].filter(alive).length
  const target = input.targetVoters ?? (healthyCount >= 5 ? 5 : 3)
  // Promote up to the target, but never to an even count: an even count
  // tolerates no more failures than the odd count below it.
  const desired = Math.min(target, oddAtMost(healthyCount))
  const liveVoters = config.voters.filter(v => !gone(v))

  if (liveVoters.length < desired) {
    const candidates = config.learners
      .filter(l => alive(l) && (input.match(l) ?? 0) > 0 && (input.match(l) ?? 0) >= input.commitIndex - input.maxLag)
      .sort((a, b) => (input.match(b) ?? 0) - (input.match(a) ?? 0) || (a < b ? -1 : 1))
    const best = candidates[0]
    if (best !== undefined) return { change: { type: 'promote', id: best }, reason: `${liveVoters.length} healthy voters, want ${desired}` }
  }
  const goneVoter = config.voters.find(v => v !== self && gone(v))
  if (goneVoter !== undefined) {
    return { change: { type: 'remove', id: goneVoter }, reason: `voter is ${health(goneVoter)?.state}` }
  }
  const newcomer = [...members.keys()].filter(id => alive(id) && !inConfig.has(id)).sort()[0]
  if (newcomer !== undefined) return { change: { type: 'add-learner', id: newcomer }, reason: 'new member' }
  const goneLearner = config.learners.find(gone)
  if (goneLearner !== undefined) return { change: { type: 'remove', id: goneLearner }, reason: `learner is ${health(goneLearner)?.state}` }
  if (config.voters.length > target) {
    // More than the target (it was lowered, or a repair overshot): demote
    // the least useful voter, never this one. Healthy voters are never
    // demoted just to make the count odd.
    const surplus = config.voters
      .filter(v => v !== self)
      .sort((a, b) => Number(alive(a)) - Number(alive(b)) || (input.match(a) ?? 0) - (input.match(b) ?? 0) || (a < b ? -1 : 1))[0]
    if (surplus !== undefined) return { change: { type: 'demote', id: surplus }, reason: `${config.voters.length} voters, want ${target}` }
  }
  return undefined
}

export interface AutopilotInit {
  node: AutopilotNode
  members: () => ReadonlyMap<string, MemberHealth>
  clock: Clock
  log: Logger
  describe: (id: string) => string
  targetVoters?: number
  deadGraceMs?: number
  intervalMs?: number
  maxLag?: number
}

export class Autopilot {
  private readonly init: AutopilotInit
  private stopTimer: (() => void) | undefined
  private busy = false

  constructor (init: AutopilotInit) { this.init = init }

  start (): void {
    this.stopTimer = every(this.init.clock, this.init.intervalMs ?? 250, () => { void this.run() })
  }

  stop (): void { this.stopTimer?.() }

  private async run (): Promise<void> {
    const { node } = this.init
    if (this.busy || !node.isLeader() || node.configChangePending()) return
    const planned = plan({
      self: node.id,
      config: node.clusterConfig(),
      commitIndex: node.commitIndex(),
      match: id => node.matchIndex(id),
      members: this.init.members(),
      now: this.init.clock.now(),
      targetVoters: this.init.targetVoters,
      deadGraceMs: this.init.deadGraceMs ?? 5000,
      maxLag: this.init.maxLag ?? 100
    })
    if (planned === undefined) return
    this.busy = true
    const { change, reason } = planned
    const who = this.init.describe(change.id)
    try {
      await node.changeConfig(change)
      this.init.log.info({ event: 'autopilot.change', change: change.type, id: change.id, reason }, `autopilot: ${change.type} ${who} (${reason})`)
    } catch (err) {
      this.init.log.debug({ event: 'autopilot.deferred', change: change.type, id: change.id, err: (err as Error).message }, `autopilot: ${change.type} ${who} deferred: ${(err as Error).message}`)
    } finally {
      this.busy = false
    }
  }
}
