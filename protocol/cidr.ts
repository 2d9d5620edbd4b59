// IPv4 addresses and ranges as numbers: the service and pod ranges that
// shoald's flags take, the cluster's network ConfigMap carries and the
// store allocates from all parse here, so that the three agree.
// May import: nothing.

/** An IPv4 range: its network address as a number, its size, and the CIDR it came from. */
export interface CidrRange { base: number, size: number, cidr: string }

export function ipToInt (ip: string): number | undefined {
  const parts = ip.split('.')
  if (parts.length !== 4 || parts.some(p => !/^\d{1,3}$/.test(p) || Number(p) > 255)) return undefined
  return parts.reduce((a, p) => a * 256 + Number(p), 0)
}

export function intToIp (n: number): string {
  return [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join('.')
}

/** An IPv4 CIDR's network and size; undefined if it is not one (or is smaller than a /28). */
export function parseCidr (cidr: string): CidrRange | undefined {
  const m = /^([0-9.]+)\/(\d{1,2})$/.exec(cidr)
  const ip = m === null ? undefined : ipToInt(m[1] as string)
  const bits = Number(m?.[2])
  if (ip === undefined || bits > 28 || bits < 8) return undefined
  const size = 2 ** (32 - bits)
  return { base: Math.floor(ip / size) * size, size, cidr }
}

/** A pod range: an IPv4 CIDR from /8 to /24 (it is split into a /24 per node). */
export function parsePodCidr (cidr: string): CidrRange | undefined {
  const r = parseCidr(cidr)
  return r !== undefined && r.size >= 256 ? r : undefined
}
