// The member table and failure detector: a synchronous core with no I/O.
// Inputs are heartbeats, leaves, syncs, probe results and lost connections;
// outputs are the probes and dials the driver must make, and state changes.
// The clock and the randomness are injected (see daemon/clock).
import type { MemberRecord, MemberSnapshot, MemberState } from '../../protocol/membership.ts'
import type { Clock, Rng } from '../clock/clock.ts'
import { pick } from '../clock/clock.ts'
import type { MembershipConfig } from './config.ts'
import { probeDelay } from './config.ts'

export interface Member {
  record: MemberRecord
  state: MemberState
  /** local ms time of the last evidence of life */
  lastSeen: number
  /** local ms time the current state began */
  stateSince: number
  /** local ms time a probe went out, if one is in flight */
  probingSince?: number
  /** local ms time of the last failed probe */
  lastProbeFailure?: number
  /** true once this peer has heard the member itself (a heartbeat, or an answer to a probe) */
  heard?: boolean
}

export interface StateChange {
  peerId: string
  name: string
  from: MemberState | undefined
  /** `reaped` when a tombstone is dropped from the table */
  to: MemberState | 'reaped'
  reason: string
}

/** What the driver must do after an input. */
export interface Effects {
  /** ping these peers directly and report with probeResult() */
  probe: string[]
  /** dial these newly learned members and sync with them */
  connect: string[]
  /** members that this peer learned of for the first time from a sync */
  learned: MemberSnapshot[]
  changes: StateChange[]
}

/** The driver reports every probe within this (a dial and a ping, each with a timeout). */
const PROBE_LOST_MS = 10_000

/**
 * A member known only from other peers' word gets this long before this peer
 * probes it for silence: its heartbeats may take a while to reach a peer
 * that is not yet in its gossip mesh, and a handshake with it may be slow on
 * a busy host. A closed connection is still probed at once.
 */
const UNHEARD_GRACE_MS = 10_000

const emptyEffects = (): Effects => ({ probe: [], connect: [], learned: [], changes: [] })

function newer (a: MemberRecord, b: MemberRecord): boolean {
  return a.incarnation > b.incarnation || (a.incarnation === b.incarnation && a.seq > b.seq)
}

export class MemberTable {
  private readonly members = new Map<string, Member>()
  private self: MemberRecord
  private nextReconnect: number
  private readonly config: MembershipConfig
  private readonly clock: Clock
  private readonly rng: Rng

  constructor (self: MemberRecord, config: MembershipConfig, clock: Clock, rng: Rng) {
    this.self = self
    this.config = config
    this.clock = clock
    this.rng = rng
    this.nextReconnect = clock.now() + config.reconnectIntervalMs
  }

  get selfRecord (): MemberRecord { return this.self }

  /** Replaces this peer's own record (a new heartbeat of ours). */
  updateSelf (record: MemberRecord): void { this.self = record }

  get (peerId: string): Member | undefined { return this.members.get(peerId) }

  /** Every known member, this peer first. */
  list (): Member[] {
    const now = this.clock.now()
    const self: Member = { record: this.self, state: 'alive', lastSeen: now, stateSince: this.self.startedAt }
    return [self, ...[...this.members.values()].sort((a, b) => a.record.name.localeCompare(b.record.name))]
  }

  snapshot (): MemberSnapshot[] {
    return this.list().map(m => ({ record: m.record, state: m.state }))
  }

  count (state: MemberState): number {
    return this.list().filter(m => m.state === state).length
  }

  heartbeat (record: MemberRecord): Effects {
    const fx = emptyEffects()
    this.observeAlive(record, 'heartbeat', fx)
    const m = this.members.get(record.peerId)
    if (m !== undefined && m.state === 'alive') m.heard = true
    return fx
  }

  leave (peerId: string, incarnation: number): Effects {
    const fx = emptyEffects()
    const m = this.members.get(peerId)
    if (m === undefined || m.state === 'left' || incarnation < m.record.incarnation) return fx
    this.transition(m, 'left', 'the member left', fx)
    return fx
  }

  /** Members as another peer sees them (push-pull or announce). */
  sync (snapshots: MemberSnapshot[]): Effects {
    const fx = emptyEffects()
    for (const { record, state } of snapshots) {
      if (record.peerId === this.self.peerId) continue
      const known = this.members.get(record.peerId)
      if (known === undefined) {
        fx.learned.push({ record, state })
        if (state === 'alive' || state === 'suspect') {
          this.observeAlive(record, 'learned from a peer', fx)
        } else {
          const now = this.clock.now()
          // Not trusted as evidence of life: it goes in as the tombstone it is.
          this.members.set(record.peerId, { record, state, lastSeen: now, stateSince: now })
          fx.changes.push({ peerId: record.peerId, name: record.name, from: undefined, to: state, reason: 'learned from a peer' })
        }
        continue
      }
      if (state === 'left') {
        if (record.incarnation >= known.record.incarnation && known.state !== 'left') {
          known.record = record
          this.transition(known, 'left', 'a peer saw it leave', fx)
        }
      } else if ((state === 'alive' || state === 'suspect') && newer(record, known.record)) {
        // Second-hand but newer than anything we have: the member spoke recently.
        this.observeAlive(record, 'newer record from a peer', fx)
      }
      // A second-hand `dead` is never taken: this peer's own detector decides.
    }
    return fx
  }

  probeResult (peerId: string, ok: boolean): Effects {
    const fx = emptyEffects()
    const m = this.members.get(peerId)
    if (m === undefined) return fx
    const now = this.clock.now()
    delete m.probingSince
    if (ok) {
      m.lastSeen = now
      m.heard = true
      if (m.state === 'suspect' || m.state === 'dead') this.transition(m, 'alive', 'it answered a probe', fx)
    } else {
      m.lastProbeFailure = now
      if (m.state === 'alive') this.transition(m, 'suspect', 'it did not answer a probe', fx)
    }
    return fx
  }

  /** The last connection to a member closed: check on it now rather than later. */
  disconnected (peerId: string): Effects {
    const fx = emptyEffects()
    const m = this.members.get(peerId)
    if (m !== undefined && m.state === 'alive') this.startProbe(m, fx)
    return fx
  }

  tick (): Effects {
    const fx = emptyEffects()
    const now = this.clock.now()
    const c = this.config
    for (const m of [...this.members.values()]) {
      if (m.probingSince !== undefined && now - m.probingSince > PROBE_LOST_MS) {
        delete m.probingSince // the driver lost the result; try again
      }
      switch (m.state) {
        case 'alive':
          if (now - m.lastSeen >= (m.heard === true ? probeDelay(c, m.record.heartbeatMs) : Math.max(UNHEARD_GRACE_MS, probeDelay(c, m.record.heartbeatMs)))) this.startProbe(m, fx)
          break
        case 'suspect':
          if (now - m.stateSince >= c.suspectTimeoutMs) {
            this.transition(m, 'dead', `no heartbeat or probe answer for ${now - m.lastSeen} ms`, fx)
          } else if (m.lastProbeFailure === undefined || now - m.lastProbeFailure >= c.probeTimeoutMs / 2) {
            this.startProbe(m, fx)
          }
          break
        case 'dead':
        case 'left':
          if (now - m.stateSince >= c.reapAfterMs) {
            this.members.delete(m.record.peerId)
            fx.changes.push({ peerId: m.record.peerId, name: m.record.name, from: m.state, to: 'reaped', reason: 'tombstone expired' })
          }
          break
      }
    }
    if (now >= this.nextReconnect) {
      this.nextReconnect = now + c.reconnectIntervalMs
      const dead = [...this.members.values()].filter(m => m.state === 'dead' && m.probingSince === undefined)
      const target = pick(this.rng, dead)
      if (target !== undefined) this.startProbe(target, fx)
    }
    return fx
  }

  private observeAlive (record: MemberRecord, reason: string, fx: Effects): void {
    if (record.peerId === this.self.peerId) return
    const now = this.clock.now()
    const m = this.members.get(record.peerId)
    if (m === undefined) {
      this.members.set(record.peerId, { record, state: 'alive', lastSeen: now, stateSince: now })
      fx.changes.push({ peerId: record.peerId, name: record.name, from: undefined, to: 'alive', reason })
      fx.connect.push(record.peerId)
      return
    }
    if (!newer(record, m.record)) return // a duplicate or a late, reordered message
    if (m.state === 'left' && record.incarnation <= m.record.incarnation) return // said before it left
    const restarted = record.incarnation > m.record.incarnation
    m.record = record
    m.lastSeen = now
    if (m.state !== 'alive') {
      this.transition(m, 'alive', restarted ? `${reason} (restarted)` : reason, fx)
      if (restarted) fx.connect.push(record.peerId)
    }
  }

  private startProbe (m: Member, fx: Effects): void {
    if (m.probingSince !== undefined) return
    m.probingSince = this.clock.now()
    fx.probe.push(m.record.peerId)
  }

  private transition (m: Member, to: MemberState, reason: string, fx: Effects): void {
    const from = m.state
    if (from === to) return
    m.state = to
    m.stateSince = this.clock.now()
    if (to === 'left' || to === 'alive') delete m.lastProbeFailure
    if (to === 'dead') delete m.probingSince // a probe still out may answer, but a dead member is retried on its own schedule
    fx.changes.push({ peerId: m.record.peerId, name: m.record.name, from, to, reason })
  }
}
