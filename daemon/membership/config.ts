// Timings of the failure detector, with defaults, presets and validation.

export interface MembershipConfig {
  /**
   * How often this peer publishes its heartbeat. Every other timing is
   * measured against it. Default 1 s.
   */
  heartbeatIntervalMs: number
  /**
   * How long a member may stay silent (no heartbeat, no successful probe)
   * before this peer probes it directly with a libp2p ping. A closed
   * connection to the member triggers a probe at once, whatever this says.
   * Default 2.5 heartbeats, so one lost heartbeat costs nothing.
   */
  probeAfterMs: number
  /** How long a direct probe may take before it counts as failed. Default 500 ms. */
  probeTimeoutMs: number
  /**
   * How long a member stays `suspect` (after a failed probe) before it is
   * declared `dead`. Any newer heartbeat or successful probe in that window
   * makes it `alive` again. Default 1 s.
   */
  suspectTimeoutMs: number
  /** How long `dead` and `left` members stay listed as tombstones. Default 24 h, as Serf. */
  reapAfterMs: number
  /**
   * How often this peer tries to reach one random `dead` member again, so
   * that two halves of a healed partition find each other. Default 10 s.
   */
  reconnectIntervalMs: number
  /** How often the detector re-evaluates every member. Default 100 ms. */
  tickMs: number
  /**
   * The most heartbeats the whole cluster gossips per second. Each peer's
   * interval is stretched to (alive members / this) seconds when that is
   * longer than heartbeatIntervalMs, so a peer's gossip work stays flat as
   * the cluster grows (the probe delay stretches with it). A crash is still
   * seen at once through the closed connection. Default 5: heartbeats every
   * second up to 5 members, every 2 s at 10, every 10 s at 50. Each
   * heartbeat a second in the cluster costs every peer about 0.2 % of a core
   * (libp2p's pnet, Noise and Yamux in JavaScript), hence the budget.
   */
  gossipRate: number
}

export const DEFAULT_MEMBERSHIP_CONFIG: MembershipConfig = {
  heartbeatIntervalMs: 1000,
  probeAfterMs: 2500,
  probeTimeoutMs: 500,
  suspectTimeoutMs: 1000,
  reapAfterMs: 24 * 60 * 60 * 1000,
  reconnectIntervalMs: 10_000,
  tickMs: 100,
  gossipRate: 5
}

/** This peer's heartbeat interval in a cluster of `alive` members. */
export function heartbeatInterval (c: MembershipConfig, alive: number): number {
  return Math.max(c.heartbeatIntervalMs, Math.ceil(alive / c.gossipRate * 1000))
}

/** How long a member that heartbeats every `memberHeartbeatMs` may be silent before a probe. */
export function probeDelay (c: MembershipConfig, memberHeartbeatMs: number): number {
  return c.probeAfterMs * Math.max(1, memberHeartbeatMs / c.heartbeatIntervalMs)
}

export class ConfigError extends Error {
  override name = 'ConfigError'
}

export function validateMembershipConfig (c: MembershipConfig): MembershipConfig {
  const positive: Array<keyof MembershipConfig> = ['heartbeatIntervalMs', 'probeAfterMs', 'probeTimeoutMs', 'suspectTimeoutMs', 'reapAfterMs', 'reconnectIntervalMs', 'tickMs', 'gossipRate']
  for (const key of positive) {
    if (!Number.isFinite(c[key]) || c[key] <= 0) throw new ConfigError(`membership: ${key} must be a positive duration, got ${c[key]}`)
  }
  if (c.probeAfterMs < c.heartbeatIntervalMs) {
    throw new ConfigError(`membership: the probe delay (${c.probeAfterMs} ms) must be at least one heartbeat interval (${c.heartbeatIntervalMs} ms)`)
  }
  if (c.tickMs > c.probeTimeoutMs) {
    throw new ConfigError(`membership: the tick (${c.tickMs} ms) must not exceed the probe timeout (${c.probeTimeoutMs} ms)`)
  }
  return c
}
