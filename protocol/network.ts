// The wire shapes of the service proxy's tunnel (`/shoal/tunnel/1.0.0`):
// one msgpack request frame naming the endpoint, one answer frame, then
// raw bytes both ways.
// May import: ./codec.ts.
import { isNumber, isObject, isString } from './codec.ts'

export const TUNNEL_PROTOCOL = '/shoal/tunnel/1.0.0'

export interface TunnelRequest { ip: string, port: number }
export type TunnelAnswer = { ok: true } | { ok: false, message: string }

export function isTunnelRequest (v: unknown): v is TunnelRequest {
  return isObject(v) && isString(v.ip) && v.ip.length <= 64 && isNumber(v.port) && Number.isInteger(v.port) && v.port > 0 && v.port < 65536
}

export function isTunnelAnswer (v: unknown): v is TunnelAnswer {
  return isObject(v) && (v.ok === true || (v.ok === false && isString(v.message)))
}
