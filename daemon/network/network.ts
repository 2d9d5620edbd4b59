// This peer's part of the cluster network, once the cluster's settings are
// known (the ConfigMap kube-system/shoal-cluster, from the log): a local
// route for a service range outside loopback (`ip route replace local
// <cidr> dev lo`, so that this host owns every service address and
// containers reach them through their gateway; it needs CAP_NET_ADMIN, and
// is left in place at exit for the other peers on the host), and the DNS
// server on this peer's own address and on the DNS service's address
// (shared with the other peers on the host through SO_REUSEPORT). It tells
// the kubelet what resolver pods get.
// May import: protocol/, daemon/store/types.ts, daemon/log, ./dns.ts.
import { CONFIG_MAP } from '../../protocol/kinds.ts'
import { execFile } from 'node:child_process'
import { promisify } from 'node:util'
import type { ConfigMap } from '../../protocol/core-v1.ts'
import type { Logger } from '../log/log.ts'
import { parseCidr } from '../../protocol/cidr.ts'
import { CLUSTER_CONFIG } from '../../protocol/network.ts'
import type { StoreReader, Watch } from '../store/types.ts'
import { DnsServer } from './dns.ts'

const run = promisify(execFile)

export interface ClusterSettings { serviceCidr: string, domain: string, dnsIP: string }

export interface ClusterNetworkOptions {
  store: StoreReader
  /** this peer's own address (its API host); 0.0.0.0 or :: for none in particular */
  ownAddress: string
  /** 0: no DNS server */
  dnsPort: number
  upstream: string[]
  log: Logger
  /** called once the service range has been routed here (addresses that failed to bind may now) */
  onRoute?: () => void
}

export function settingsOf (cm: ConfigMap | undefined): ClusterSettings | undefined {
  const data = cm?.data
  if (data?.serviceCIDR === undefined || data.dnsIP === undefined) return undefined
  return { serviceCidr: data.serviceCIDR, domain: data.clusterDomain ?? 'cluster.local', dnsIP: data.dnsIP }
}

export class ClusterNetwork {
  private readonly opts: ClusterNetworkOptions
  private watch: Watch | undefined
  private current: ClusterSettings | undefined
  private readonly dns: DnsServer[] = []
  private stopped = false

  constructor (opts: ClusterNetworkOptions) { this.opts = opts }

  get settings (): ClusterSettings | undefined { return this.current }

  /** The resolver process pods are told about (SHOAL_DNS), once the DNS server runs. */
  dnsAddress (): string | undefined {
    return this.current !== undefined && this.opts.dnsPort !== 0 ? `${this.current.dnsIP}:${this.opts.dnsPort}` : undefined
  }

  /** A Docker or native pod's resolver and search path (the resolver must be on port 53). */
  podDns (namespace: string): { servers: string[], search: string[] } | undefined {
    const s = this.current
    if (s === undefined || this.opts.dnsPort !== 53) return undefined
    return { servers: [s.dnsIP], search: [`${namespace}.svc.${s.domain}`, `svc.${s.domain}`, s.domain] }
  }

  start (): void {
    this.watch = this.opts.store.watch(CONFIG_MAP, { fieldSelector: `metadata.name=${CLUSTER_CONFIG.name}` }, e => {
      if (e.type === 'ERROR' || this.current !== undefined) return
      const obj = e.object
      if (obj.metadata.namespace !== CLUSTER_CONFIG.namespace) return
      const s = settingsOf(obj)
      if (s === undefined) return
      this.current = s
      void this.bringUp(s)
    })
  }

  async stop (): Promise<void> {
    this.stopped = true
    this.watch?.stop()
    await Promise.all(this.dns.map(async d => { await d.stop() }))
  }

  private async bringUp (s: ClusterSettings): Promise<void> {
    const { log } = this.opts
    const range = parseCidr(s.serviceCidr)
    if (range !== undefined && Math.floor(range.base / 2 ** 24) !== 127) {
      try {
        await run('ip', ['route', 'replace', 'local', s.serviceCidr, 'dev', 'lo'])
        log.info({ event: 'network.route', cidr: s.serviceCidr }, `this host now owns the service range ${s.serviceCidr}`)
        this.opts.onRoute?.()
      } catch (err) {
        log.warn({ event: 'network.route-failed', cidr: s.serviceCidr, err: (err as Error).message.split('\n')[0] }, `cannot route the service range ${s.serviceCidr} to this host (it needs CAP_NET_ADMIN): service addresses will not answer here`)
      }
    }
    if (this.opts.dnsPort === 0 || this.stopped) return
    const hosts = [s.dnsIP, ...(['0.0.0.0', '::', ''].includes(this.opts.ownAddress) || this.opts.ownAddress === s.dnsIP ? [] : [this.opts.ownAddress])]
    for (const host of hosts) {
      const server = new DnsServer({ store: this.opts.store, domain: s.domain, listen: [{ host, port: this.opts.dnsPort }], upstream: this.opts.upstream, log })
      try {
        await server.start()
        this.dns.push(server)
        log.info({ event: 'dns.listening', address: `${host}:${this.opts.dnsPort}` }, `cluster DNS on ${host}:${this.opts.dnsPort}`)
      } catch (err) {
        log.warn({ event: 'dns.listen-failed', address: `${host}:${this.opts.dnsPort}`, err: (err as Error).message }, (err as Error).message)
      }
      if (this.stopped) await server.stop()
    }
  }
}
