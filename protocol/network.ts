// The cluster network's shared shapes. Its settings: the ConfigMap
// kube-system/shoal-cluster (serviceCIDR, podCIDR, clusterDomain, dnsIP),
// written once by the first leader (daemon/controllers/nodes.ts), read by
// the store's allocator and by every peer's network, and the DNS service's
// address in the service range. And the wire shapes of the service proxy's
// tunnel (`/shoal/tunnel/1.0.0`): one msgpack request frame naming the
// endpoint, one answer frame, then raw bytes both ways; for UDP
// (`udp: true`) those bytes are datagrams, each a u16 big-endian length and
// its payload.
// May import: ./codec.ts, ./cidr.ts.
import { intToIp, parseCidr } from './cidr.ts'
import type { CidrRange } from './cidr.ts'
import { isNumber, isObject, isString } from './codec.ts'

/** The ConfigMap that holds the cluster's network settings. */
export const CLUSTER_CONFIG = { namespace: 'kube-system', name: 'shoal-cluster' } as const
export const DEFAULT_SERVICE_CIDR = '127.96.0.0/16'
/** Addresses at the start of the service range that are never handed out (the 10th is the DNS service's). */
export const RESERVED_SERVICE_IPS = 10

/** The cluster DNS service's address: the 10th of the service range. */
export function dnsServiceIp (serviceCidr: string): string {
  const r = parseCidr(serviceCidr) ?? parseCidr(DEFAULT_SERVICE_CIDR) as CidrRange
  return intToIp(r.base + RESERVED_SERVICE_IPS)
}

export const TUNNEL_PROTOCOL = '/shoal/tunnel/1.0.0'

export interface TunnelRequest { ip: string, port: number, udp?: boolean }
export type TunnelAnswer = { ok: true } | { ok: false, message: string }

export function isTunnelRequest (v: unknown): v is TunnelRequest {
  return isObject(v) && isString(v.ip) && v.ip.length <= 64 && isNumber(v.port) && Number.isInteger(v.port) && v.port > 0 && v.port < 65536 &&
    (v.udp === undefined || typeof v.udp === 'boolean')
}

/** One datagram as it crosses a UDP tunnel. */
export function datagramFrame (payload: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(2 + payload.length)
  out.writeUInt16BE(payload.length, 0)
  out.set(payload, 2)
  return out
}

/** Splits a UDP tunnel's byte stream back into datagrams: feed it chunks, it calls `onDatagram` for each whole one. */
export function datagramReader (onDatagram: (payload: Buffer) => void): (chunk: Buffer) => void {
  let pending: Buffer = Buffer.alloc(0)
  return chunk => {
    pending = pending.length === 0 ? chunk : Buffer.concat([pending, chunk])
    while (pending.length >= 2) {
      const len = pending.readUInt16BE(0)
      if (pending.length < 2 + len) break
      onDatagram(pending.subarray(2, 2 + len))
      pending = pending.subarray(2 + len)
    }
  }
}

export function isTunnelAnswer (v: unknown): v is TunnelAnswer {
  return isObject(v) && (v.ok === true || (v.ok === false && isString(v.message)))
}
