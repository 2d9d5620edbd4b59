// Membership: gossip heartbeats, push-pull sync on join and on meeting a new
// member, and the failure detector's probes, around the MemberTable core.
// Owns the member list; the API and (later) Raft's autopilot read it.
// May import: protocol/, daemon/p2p, daemon/clock, daemon/log.
import { TopicValidatorResult } from '@libp2p/gossipsub'
import type { PeerId } from '@libp2p/interface'
import { peerIdFromString } from '@libp2p/peer-id'
import { multiaddr } from '@multiformats/multiaddr'
import type { Multiaddr } from '@multiformats/multiaddr'
import { decode, encode } from '../../protocol/codec.ts'
import {
  isGossipMessage, isSyncMessage, MAX_SYNC_BYTES, MEMBERSHIP_TOPIC, SYNC_PROTOCOL
} from '../../protocol/membership.ts'
import type { MemberRecord, MemberSnapshot, SyncMessage, SyncResponse } from '../../protocol/membership.ts'
import type { Clock, Rng, TimerHandle } from '../clock/clock.ts'
import { every } from '../clock/clock.ts'
import type { Logger } from '../log/log.ts'
import type { ShoalHost } from '../p2p/host.ts'
import { request, serve, tell } from '../p2p/rpc.ts'
import type { MembershipConfig } from './config.ts'
import { heartbeatInterval } from './config.ts'
import { MemberTable } from './table.ts'
import type { Effects, Member, StateChange } from './table.ts'

/** Where membership gets and keeps the cluster-wide API tokens (admin, and read-only viewer). */
export interface TokenKeeper {
  get (): string | undefined
  /** called once, when a joining peer receives the token from the cluster */
  adopt (token: string): Promise<void>
  getViewer?: () => string | undefined
  adoptViewer?: (token: string) => Promise<void>
}

export interface MembershipInit {
  host: ShoalHost
  /** this peer's record, less the fields membership fills in (addrs, seq) */
  self: Omit<MemberRecord, 'addrs' | 'seq' | 'heartbeatMs'>
  config: MembershipConfig
  clock: Clock
  rng: Rng
  log: Logger
  join: string[]
  tokens: TokenKeeper
  /**
   * Whether the cluster has admitted a peer: it is a voter or a learner of
   * the Raft configuration this peer knows, so its join went through the
   * log. Only an admitted peer is handed the API tokens on a sync; holding
   * the cluster key is not enough (docs/decisions/2026-12-03-trust-model.md).
   */
  admitted: (peerId: string) => boolean
}

const RPC_TIMEOUT_MS = 3000
/** How long after learning of a member this peer connects to it (see connectLater). */
const MESH_DELAY_MS = 1000
const MAX_PARALLEL_DIALS = 8
const FAST_START_HEARTBEATS = 5
const ANNOUNCE_BATCH_MS = 20
const DIAL_TIMEOUT_MS = 10_000
/** How often a joined peer without the API tokens syncs again, waiting to be admitted. */
const ADMISSION_POLL_MS = 250

export class Membership {
  readonly table: MemberTable
  private readonly host: ShoalHost
  private readonly init: MembershipInit
  private readonly log: Logger
  private readonly stoppers: Array<() => void> = []
  private heartbeatTimer: TimerHandle | undefined
  private readonly joinFailuresLogged = new Set<string>()
  /** peer id → the addresses last written to the peer store */
  private readonly storedAddrs = new Map<string, string>()
  /** members with no connection, and for how many keepConnected rounds */
  private unconnectedRounds = new Map<string, number>()
  /** members learned of, to announce to the others in the next batch */
  private readonly toAnnounce = new Map<string, MemberSnapshot>()
  private announceTimer: TimerHandle | undefined
  /** members being dialled now */
  private readonly dialing = new Set<string>()
  /** members learned of whose connection is scheduled */
  private readonly pendingConnects = new Set<string>()
  private seq = 0
  private stopped = false
  private lastAliveCount = 1
  private joined: boolean
  private waitingLogged = false

  constructor (init: MembershipInit) {
    this.init = init
    this.host = init.host
    this.log = init.log
    this.joined = init.join.length === 0
    this.table = new MemberTable(this.nextRecord(), init.config, init.clock, init.rng)
  }

  list (): Member[] { return this.table.list() }

  async start (): Promise<void> {
    const { host, config, clock } = this.init
    await serve(host, SYNC_PROTOCOL, isSyncMessage, { maxBytes: MAX_SYNC_BYTES, timeoutMs: RPC_TIMEOUT_MS },
      async (msg, from) => await this.onSyncMessage(msg, from),
      (err, from) => { this.log.debug({ event: 'sync.error', from: from.toString(), err: err.message }) })
    const pubsub = host.services.pubsub
    pubsub.subscribe(MEMBERSHIP_TOPIC)
    // Gossipsub relays what its validator accepts. A leave is accepted (and so
    // relayed) only straight from the member it names: else that member,
    // handed a leave forged in its name, would relay it, and the next peer
    // would take it as coming straight from that member.
    pubsub.topicValidators.set(MEMBERSHIP_TOPIC, (from, m) => {
      try {
        const msg = decode(m.data, isGossipMessage, 'membership gossip')
        if (msg.type !== 'leave' || msg.peerId === from.toString()) return TopicValidatorResult.Accept
        this.log.debug({ event: 'gossip.leave-ignored', peerId: msg.peerId, from: from.toString() })
        return TopicValidatorResult.Ignore
      } catch {
        return TopicValidatorResult.Ignore
      }
    })
    pubsub.addEventListener('gossipsub:message', (evt) => {
      const { msg: m, propagationSource } = evt.detail
      if (m.topic !== MEMBERSHIP_TOPIC) return
      try {
        // Unsigned: only holders of the cluster key can reach the topic at all.
        const msg = decode(m.data, isGossipMessage, 'membership gossip')
        if (msg.type === 'heartbeat') {
          this.apply(this.table.heartbeat(msg.member))
        } else if (msg.peerId === propagationSource.toString()) {
          // A leave counts only from the member it names, straight from it (as
          // a sync leave must): a relayed one could be anyone's. The leaving
          // member also tells every member directly over sync.
          this.apply(this.table.leave(msg.peerId, msg.incarnation))
        } else {
          this.log.debug({ event: 'gossip.leave-ignored', peerId: msg.peerId, from: propagationSource.toString() })
        }
      } catch (err) {
        this.log.debug({ event: 'gossip.bad', err: (err as Error).message })
      }
    })
    host.addEventListener('peer:disconnect', (evt) => {
      this.log.debug({ event: 'peer.disconnected', peer: evt.detail.toString() })
      if (!this.stopped) this.apply(this.table.disconnected(evt.detail.toString()))
    })
    this.scheduleHeartbeat()
    this.stoppers.push(every(clock, config.tickMs, () => { this.apply(this.table.tick()) }))
    this.stoppers.push(every(clock, config.heartbeatIntervalMs, () => { this.keepConnected() }))
    this.publishHeartbeat()
    if (this.init.join.length > 0) {
      void this.joinLoop()
    }
  }

  /** Tells the cluster this peer is leaving, then stops gossiping. */
  async stop (): Promise<void> {
    if (this.stopped) return
    this.stopped = true
    for (const stop of this.stoppers) stop()
    if (this.heartbeatTimer !== undefined) this.init.clock.clearTimeout(this.heartbeatTimer)
    if (this.announceTimer !== undefined) this.init.clock.clearTimeout(this.announceTimer)
    const leave = { type: 'leave' as const, peerId: this.table.selfRecord.peerId, incarnation: this.table.selfRecord.incarnation }
    await this.host.services.pubsub.publish(MEMBERSHIP_TOPIC, encode(leave)).catch(() => {})
    const targets = this.table.list().filter(m => m.state === 'alive' && m.record.peerId !== leave.peerId)
    await Promise.allSettled(targets.map(async m =>
      await tell(this.host, peerIdFromString(m.record.peerId), SYNC_PROTOCOL, leave, { maxBytes: MAX_SYNC_BYTES, timeoutMs: 1000 })))
  }

  private nextRecord (): MemberRecord {
    const addrs = [...new Set(this.host.getMultiaddrs().map(a => a.decapsulateCode(421).toString()))]
    // A peer listening on every interface lists loopback too; other hosts
    // should try (and the CLI show) a routable address first.
    const loopback = (a: string): boolean => a.startsWith('/ip4/127.') || a.startsWith('/ip6/::1/')
    addrs.sort((a, b) => Number(loopback(a)) - Number(loopback(b)))
    return { ...this.init.self, addrs, seq: this.seq++, heartbeatMs: this.heartbeatMs() }
  }

  /** Publishes heartbeats at the interval the cluster's size calls for. */
  private scheduleHeartbeat (): void {
    this.heartbeatTimer = this.init.clock.setTimeout(() => {
      if (this.stopped) return
      this.publishHeartbeat()
      this.scheduleHeartbeat()
    }, this.heartbeatMs())
  }

  private heartbeatMs (): number {
    // A new member speaks up at the base rate for its first few heartbeats,
    // so that every peer hears of it soon even when an announce was lost.
    if (this.seq < FAST_START_HEARTBEATS) return this.init.config.heartbeatIntervalMs
    // The table does not exist yet while the constructor makes the first record.
    const table = this.table as MemberTable | undefined
    return heartbeatInterval(this.init.config, table?.count('alive') ?? 1)
  }

  private publishHeartbeat (): void {
    if (this.stopped) return
    const record = this.nextRecord()
    this.table.updateSelf(record)
    this.host.services.pubsub.publish(MEMBERSHIP_TOPIC, encode({ type: 'heartbeat', member: record }))
      .catch((err: Error) => { this.log.trace({ event: 'heartbeat.unsent', err: err.message }) })
  }

  private async onSyncMessage (msg: SyncMessage, from: PeerId): Promise<SyncResponse | undefined> {
    switch (msg.type) {
      case 'sync': {
        const fx = this.table.sync(msg.members)
        this.apply(fx)
        // Tell everyone else about members they may not have met yet, so a
        // burst of joins through one peer converges without waiting for gossip.
        if (fx.learned.length > 0) this.announce(fx.learned)
        // The tokens go only to a peer the cluster has admitted (it asks again until it is).
        const give = msg.wantToken && this.init.admitted(from.toString())
        if (msg.wantToken && !give) this.log.debug({ event: 'sync.token-withheld', peer: from.toString() }, 'a peer not admitted yet asked for the API tokens')
        const token = give ? this.init.tokens.get() : undefined
        const viewer = give ? this.init.tokens.getViewer?.() : undefined
        return {
          type: 'sync-response',
          members: this.table.snapshot(),
          ...(token !== undefined ? { adminToken: token } : {}),
          ...(viewer !== undefined ? { viewerToken: viewer } : {})
        }
      }
      case 'announce':
        this.apply(this.table.sync(msg.members))
        return undefined
      case 'leave':
        if (msg.peerId === from.toString()) this.apply(this.table.leave(msg.peerId, msg.incarnation))
        return undefined
      default:
        return undefined
    }
  }

  /**
   * Tells every alive member about members this peer just learned of. A
   * burst of joins is batched over a few milliseconds into one announce per
   * member, rather than one per join.
   */
  private announce (learned: MemberSnapshot[]): void {
    for (const snapshot of learned) this.toAnnounce.set(snapshot.record.peerId, snapshot)
    if (this.announceTimer !== undefined) return
    this.announceTimer = this.init.clock.setTimeout(() => {
      this.announceTimer = undefined
      const members = [...this.toAnnounce.values()]
      this.toAnnounce.clear()
      if (this.stopped) return
      const self = this.table.selfRecord.peerId
      for (const m of this.table.list()) {
        // A member is not told about itself; other repeats are ignored on arrival.
        if (m.state !== 'alive' || m.record.peerId === self) continue
        const news = members.filter(s => s.record.peerId !== m.record.peerId)
        if (news.length === 0) continue
        void tell(this.host, peerIdFromString(m.record.peerId), SYNC_PROTOCOL, { type: 'announce', members: news },
          { maxBytes: MAX_SYNC_BYTES, timeoutMs: RPC_TIMEOUT_MS }).catch(() => {})
      }
    }, ANNOUNCE_BATCH_MS)
  }

  /** Push-pull with one peer: send our view, take theirs (and the token if we lack it). */
  private async syncWith (target: PeerId | Multiaddr): Promise<void> {
    const wantToken = this.init.tokens.get() === undefined || (this.init.tokens.getViewer !== undefined && this.init.tokens.getViewer() === undefined)
    const answer = await request(this.host, target, SYNC_PROTOCOL,
      { type: 'sync', members: this.table.snapshot(), wantToken }, isSyncMessage,
      { maxBytes: MAX_SYNC_BYTES, timeoutMs: RPC_TIMEOUT_MS, dialTimeoutMs: DIAL_TIMEOUT_MS })
    if (answer.type !== 'sync-response') throw new Error(`unexpected ${answer.type} in answer to a sync`)
    if (wantToken && answer.adminToken !== undefined) await this.init.tokens.adopt(answer.adminToken)
    if (wantToken && answer.viewerToken !== undefined) await this.init.tokens.adoptViewer?.(answer.viewerToken)
    if (wantToken && answer.adminToken === undefined && !this.waitingLogged) {
      this.waitingLogged = true
      this.log.info({ event: 'join.awaiting-admission' }, 'waiting for the cluster to admit this peer to its log before it hands over the API tokens')
    }
    this.apply(this.table.sync(answer.members))
  }

  private async joinLoop (): Promise<void> {
    const retryMs = Math.max(250, this.init.config.heartbeatIntervalMs)
    while (!this.stopped) {
      const needJoin = !this.joined || this.host.getConnections().length === 0 || this.init.tokens.get() === undefined
      if (needJoin) {
        for (const addr of this.init.join) {
          if (this.stopped) return
          try {
            await this.syncWith(multiaddr(addr))
            if (!this.joined) this.log.info({ event: 'joined', via: addr }, `joined the cluster through ${addr}`)
            this.joined = true
            this.joinFailuresLogged.delete(addr)
            break
          } catch (err) {
            if (!this.joinFailuresLogged.has(addr)) {
              this.joinFailuresLogged.add(addr)
              this.log.warn({ event: 'join.failed', via: addr, err: (err as Error).message }, `cannot join through ${addr}: ${(err as Error).message}; retrying`)
            }
          }
        }
      }
      // Joined, the tokens come once the cluster admits this peer to its log,
      // a moment after its first sync: until then, ask again every ADMISSION_POLL_MS.
      const waitMs = !this.joined ? retryMs : this.init.tokens.get() === undefined ? ADMISSION_POLL_MS : retryMs * 5
      await new Promise<void>(resolve => this.init.clock.setTimeout(resolve, waitMs))
    }
  }

  /**
   * Connects to a member just learned of, a little later. Knowledge of a new
   * member spreads at once over connections that exist (the answer to a
   * join, and the announce that follows it); the full mesh, a Noise handshake
   * per pair, is built just after, so a burst of joins converges first and
   * handshakes later. When two members learn of each other at the same time,
   * the one with the lower peer id dials first and the other only if no
   * connection came, so each pair pays one handshake.
   */
  private connectLater (peerId: string): void {
    if (this.pendingConnects.has(peerId)) return
    this.pendingConnects.add(peerId)
    const first = this.table.selfRecord.peerId < peerId
    const delay = MESH_DELAY_MS * (first ? 1 : 2) + this.init.rng.next() * MESH_DELAY_MS / 2
    this.init.clock.setTimeout(() => {
      this.pendingConnects.delete(peerId)
      if (this.stopped) return
      const id = this.addressBook(peerId)
      if (!first && this.host.getConnections(id).length > 0) return
      this.connect(peerId, true)
    }, delay)
  }

  /**
   * Dials a member (and syncs with it if asked), with at most a few dials in
   * flight: a peer that meets fifty members at once must not start fifty
   * handshakes at once, time them all out on a busy CPU, and start again.
   * A member not dialled now is dialled by the next keepConnected round.
   */
  private connect (peerId: string, sync: boolean): void {
    if (this.dialing.has(peerId) || this.dialing.size >= MAX_PARALLEL_DIALS) return
    this.dialing.add(peerId)
    const id = this.addressBook(peerId)
    const done = (): void => { this.dialing.delete(peerId) }
    const attempt = sync
      ? this.syncWith(id)
      : this.host.dial(id, { signal: AbortSignal.timeout(DIAL_TIMEOUT_MS) })
    attempt.then(done, (err: Error) => {
      done()
      this.log.debug({ event: sync ? 'sync.failed' : 'dial.failed', peer: peerId, err: err.message })
    })
  }

  /**
   * Keeps a direct connection to every alive member, so that a crash is seen
   * at once as a closed connection rather than later as missed heartbeats.
   */
  private keepConnected (): void {
    const self = this.table.selfRecord.peerId
    const unconnected = new Map<string, number>()
    for (const m of this.table.list()) {
      const peerId = m.record.peerId
      if (m.state !== 'alive' || peerId === self || this.pendingConnects.has(peerId) || this.dialing.has(peerId)) continue
      const id = this.addressBook(peerId)
      if (this.host.getConnections(id).length > 0) continue
      // As in connectLater, the lower peer id dials; the other side steps in
      // only when a connection has been missing for a few rounds.
      const rounds = (this.unconnectedRounds.get(peerId) ?? 0) + 1
      unconnected.set(peerId, rounds)
      if (self > peerId && rounds < 3) continue
      this.log.debug({ event: 'peer.redial', peer: peerId, rounds })
      this.connect(peerId, false)
    }
    this.unconnectedRounds = unconnected
  }

  /** The member's peer id, with its advertised addresses in libp2p's peer store. */
  private addressBook (peerId: string): PeerId {
    const id = peerIdFromString(peerId)
    const m = this.table.get(peerId)
    if (m === undefined || m.record.addrs.length === 0) return id
    const key = m.record.addrs.join(' ')
    if (this.storedAddrs.get(peerId) === key) return id // unchanged: the peer store already has them
    this.storedAddrs.set(peerId, key)
    const addrs: Multiaddr[] = []
    for (const a of m.record.addrs) {
      try { addrs.push(multiaddr(a)) } catch { /* a malformed address is skipped */ }
    }
    void this.host.peerStore.merge(id, { multiaddrs: addrs }).catch(() => { this.storedAddrs.delete(peerId) })
    return id
  }

  private apply (fx: Effects): void {
    if (this.stopped) return
    for (const change of fx.changes) this.report(change)
    for (const peerId of fx.connect) this.connectLater(peerId)
    for (const peerId of fx.probe) {
      const id = this.addressBook(peerId)
      // A ping on a live connection must answer within the probe timeout; a
      // member with no connection gets time for a handshake first (a dead
      // process refuses the dial at once anyway).
      const connected = this.host.getConnections(id).length > 0
      const signal = AbortSignal.timeout(connected ? this.init.config.probeTimeoutMs : DIAL_TIMEOUT_MS)
      const sent = Date.now()
      this.host.services.ping.ping(id, { signal }).then(
        () => { this.apply(this.table.probeResult(peerId, true)) },
        (err: Error) => {
          this.log.debug({ event: 'probe.failed', peer: peerId, ms: Date.now() - sent, err: err.message })
          this.apply(this.table.probeResult(peerId, false))
        })
    }
  }

  private report (change: StateChange): void {
    const level = change.to === 'dead' || change.to === 'suspect' ? 'warn' : 'info'
    this.log[level]({ event: `member.${change.to}`, member: change.name, peerId: change.peerId, from: change.from, reason: change.reason },
      `member ${change.name} is ${change.to}: ${change.reason}`)
    const alive = this.table.count('alive')
    if (alive !== this.lastAliveCount) {
      this.lastAliveCount = alive
      this.log.info({ event: 'members.alive', alive }, `${alive} members alive`)
    }
  }
}
