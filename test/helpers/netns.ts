// Network namespaces a test makes for itself, as separate hosts: each with
// its own loopback and one address on a bridge in the root namespace that
// has no other link (so nothing leaves the machine). The test process
// reaches them over the bridge. Everything is removed by cleanup(), which
// is safe to call twice. Needs root (CAP_NET_ADMIN) and iproute2.
import { execFileSync, spawnSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'

export interface Hosts {
  /** namespace names, one per host */
  names: string[]
  /** each host's address on the bridge */
  ips: string[]
  cleanup: () => void
}

function sh (args: string[]): void {
  execFileSync(args[0] as string, args.slice(1), { stdio: ['ignore', 'ignore', 'pipe'] })
}

/** Whether namespaces can be made here (root and `ip`), or why not. */
export function netnsAvailable (): true | string {
  if (process.getuid?.() !== 0) return 'network namespaces need root'
  const r = spawnSync('ip', ['netns', 'list'], { encoding: 'utf8' })
  return r.status === 0 ? true : `ip netns does not work here: ${(r.stderr ?? '').trim() || String(r.error)}`
}

/** `n` hosts on 10.251.<k>.0/24 (k from a random id), .2 upwards; the bridge is .1. */
export function makeHosts (n: number): Hosts {
  const id = randomBytes(2).toString('hex')
  const k = 1 + parseInt(id, 16) % 250
  const bridge = `shb${id}`
  const names: string[] = []
  const ips: string[] = []
  const comment = `shoal-netns-${id}`
  const cleanup = (): void => {
    for (const ns of names) spawnSync('ip', ['netns', 'delete', ns])
    spawnSync('ip', ['link', 'delete', bridge])
    // Docker sets FORWARD to DROP, and bridged traffic passes iptables where br_netfilter is loaded.
    for (;;) {
      const r = spawnSync('iptables', ['-D', 'FORWARD', '-i', bridge, '-o', bridge, '-j', 'ACCEPT', '-m', 'comment', '--comment', comment])
      if (r.status !== 0) break
    }
  }
  try {
    sh(['ip', 'link', 'add', bridge, 'type', 'bridge'])
    sh(['ip', 'addr', 'add', `10.251.${k}.1/24`, 'dev', bridge])
    sh(['ip', 'link', 'set', bridge, 'up'])
    spawnSync('iptables', ['-I', 'FORWARD', '-i', bridge, '-o', bridge, '-j', 'ACCEPT', '-m', 'comment', '--comment', comment])
    for (let i = 0; i < n; i++) {
      const ns = `shoal-${id}-${i + 1}`
      const veth = `shv${id}${i + 1}`
      const ip = `10.251.${k}.${i + 2}`
      sh(['ip', 'netns', 'add', ns])
      names.push(ns)
      sh(['ip', 'link', 'add', veth, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns])
      sh(['ip', 'link', 'set', veth, 'master', bridge])
      sh(['ip', 'link', 'set', veth, 'up'])
      sh(['ip', 'netns', 'exec', ns, 'ip', 'link', 'set', 'lo', 'up'])
      sh(['ip', 'netns', 'exec', ns, 'ip', 'addr', 'add', `${ip}/24`, 'dev', 'eth0'])
      sh(['ip', 'netns', 'exec', ns, 'ip', 'link', 'set', 'eth0', 'up'])
      ips.push(ip)
    }
  } catch (err) {
    cleanup()
    throw err
  }
  return { names, ips, cleanup }
}

/** Runs a Node script inside a namespace and returns its stdout (throws on failure). */
export function nodeIn (ns: string, script: string, timeoutMs = 60_000): string {
  return execFileSync('ip', ['netns', 'exec', ns, process.execPath, '-e', script], { encoding: 'utf8', timeout: timeoutMs })
}
