// Pod IPs: one address per pod out of the node's range, handed out in
// turn (a re-created pod gets a new address, not the one just freed) and
// persisted in <dataDir>/pods/ipam.json so that a restarted daemon keeps
// every running pod's address. The process runtime's ranges are loopback
// (on Linux all of 127.0.0.0/8 reaches lo, so binding needs no privilege);
// the Docker runtime asks the engine for the address picked here.
// May import: node built-ins.
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises'
import { dirname } from 'node:path'

/**
 * A node's default pod range, a /24 picked by a hash of its name (and
 * `attempt`, for another pick when one is taken): 127.64.0.0/10 for the
 * process runtime (loopback, no privilege needed), 10.128.0.0/10 for Docker
 * (a bridge network cannot use loopback addresses).
 */
export function defaultPodCidr (nodeName: string, runtime: 'process' | 'docker' = 'process', attempt = 0): string {
  let h = 0x811c9dc5
  for (const ch of Buffer.from(attempt === 0 ? nodeName : `${nodeName}#${attempt}`)) h = Math.imul(h ^ ch, 0x01000193) >>> 0
  return `${runtime === 'process' ? 127 : 10}.${64 * (runtime === 'process' ? 1 : 2) + h % 64}.${(h >>> 6) % 256}.0/24`
}

function ipToInt (ip: string): number {
  const parts = ip.split('.').map(Number)
  if (parts.length !== 4 || parts.some(p => !Number.isInteger(p) || p < 0 || p > 255)) throw new Error(`invalid IPv4 address "${ip}"`)
  return parts.reduce((a, p) => a * 256 + p, 0)
}

function intToIp (n: number): string {
  return [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join('.')
}

/** The usable range of a CIDR: network+2 .. broadcast-1 (network+1 is kept for the node, as a bridge would). */
export function cidrRange (cidr: string): { first: number, last: number } {
  const m = /^([0-9.]+)\/([0-9]{1,2})$/.exec(cidr)
  const bits = Number(m?.[2])
  if (m === null || bits > 30) throw new Error(`invalid pod CIDR "${cidr}": expected an IPv4 a.b.c.d/n with n <= 30`)
  const size = 2 ** (32 - bits)
  const network = Math.floor(ipToInt(m[1] as string) / size) * size
  return { first: network + 2, last: network + size - 2 }
}

interface IpamFile { cidr: string, allocations: Record<string, string>, next?: number }

export class Ipam {
  private readonly file: string
  private readonly cidr: string
  private readonly range: { first: number, last: number }
  private allocations = new Map<string, string>()
  /** where the next search starts: after the last address given, so that a re-created pod gets a new one */
  private next = 0
  /** writes are chained so that the file never goes back in time */
  private saving: Promise<void> = Promise.resolve()

  constructor (file: string, cidr: string) {
    this.file = file
    this.cidr = cidr
    this.range = cidrRange(cidr)
  }

  async load (): Promise<void> {
    let text: string
    try {
      text = await readFile(this.file, 'utf8')
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return
      throw err
    }
    const saved = JSON.parse(text) as IpamFile
    // Addresses from another range (the CIDR changed) stay with their pods until those go.
    this.allocations = new Map(Object.entries(saved.allocations ?? {}))
    if (saved.cidr === this.cidr && saved.next !== undefined && Number.isInteger(saved.next)) this.next = saved.next
  }

  get (uid: string): string | undefined { return this.allocations.get(uid) }

  uids (): string[] { return [...this.allocations.keys()] }

  async allocate (uid: string): Promise<string> {
    const had = this.allocations.get(uid)
    if (had !== undefined) return had
    const used = new Set(this.allocations.values())
    const size = this.range.last - this.range.first + 1
    for (let i = 0; i < size; i++) {
      const offset = (this.next + i) % size
      const ip = intToIp(this.range.first + offset)
      if (used.has(ip)) continue
      this.allocations.set(uid, ip)
      this.next = (offset + 1) % size
      await this.save()
      return ip
    }
    throw new Error(`no free pod IP in ${this.cidr} (${used.size} in use)`)
  }

  async free (uid: string): Promise<void> {
    if (this.allocations.delete(uid)) await this.save()
  }

  private async save (): Promise<void> {
    const body: IpamFile = { cidr: this.cidr, allocations: Object.fromEntries(this.allocations), next: this.next }
    const next = this.saving.then(async () => {
      await mkdir(dirname(this.file), { recursive: true })
      const tmp = `${this.file}.tmp`
      await writeFile(tmp, JSON.stringify(body))
      await rename(tmp, this.file)
    })
    this.saving = next.catch(() => undefined)
    await next
  }
}
