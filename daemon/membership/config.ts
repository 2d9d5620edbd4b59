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
}

export const DEFAULT_MEMBERSHIP_CONFIG: MembershipConfig = {
  heartbeatIntervalMs: 1000,
  probeAfterMs: 2500,
  probeTimeoutMs: 500,
  suspectTimeoutMs: 1000,
  reapAfterMs: 24 * 60 * 60 * 1000,
  reconnectIntervalMs: 10_000,
  tickMs: 100
}

export class ConfigError extends Error {
  override name = 'ConfigError'
}

export function validateMembershipConfig (c: MembershipConfig): MembershipConfig {
  const positive: Array<keyof MembershipConfig> = ['heartbeatIntervalMs', 'probeAfterMs', 'probeTimeoutMs', 'suspectTimeoutMs', 'reapAfterMs', 'reconnectIntervalMs', 'tickMs']
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
