// The API's TLS as shoald, the CLI and kubeconfig all see it: the SHA-256
// fingerprint that names a peer's API certificate (each member gossips its
// own; the CLI's config file and `shoal kubeconfig` pin them), and which API
// hosts are loopback (plain HTTP stays the default there; anywhere else the
// API requires TLS unless told otherwise).
import { X509Certificate } from 'node:crypto'
import { isIP } from 'node:net'

/** A fingerprint in its one canonical form: 32 bytes as uppercase hex pairs joined by colons (`openssl x509 -fingerprint -sha256`, Node's fingerprint256). */
const CANONICAL = /^[0-9A-F]{2}(:[0-9A-F]{2}){31}$/

export function isFingerprint (v: unknown): v is string {
  return typeof v === 'string' && CANONICAL.test(v)
}

/**
 * A fingerprint as a user may write it (any case, with or without colons,
 * an optional `sha256:` prefix) in canonical form; undefined if it is not one.
 */
export function normalizeFingerprint (text: string): string | undefined {
  const hex = text.trim().replace(/^sha-?256[:=\s]\s*/i, '').replace(/[:\s]/g, '').toUpperCase()
  if (!/^[0-9A-F]{64}$/.test(hex)) return undefined
  return hex.match(/../g)?.join(':')
}

/** The SHA-256 fingerprint of a certificate (PEM text or DER bytes), canonical. */
export function certificateFingerprint (cert: string | Uint8Array): string {
  return new X509Certificate(typeof cert === 'string' ? cert : Buffer.from(cert)).fingerprint256
}

/** A loopback host: 127.0.0.0/8, ::1 (also IPv4-mapped), or localhost. Traffic to it never leaves the machine. */
export function isLoopbackHost (host: string): boolean {
  const h = host.trim().replace(/^\[|\]$/g, '').toLowerCase()
  if (h === 'localhost' || h.endsWith('.localhost')) return true
  const v4 = h.replace(/^::ffff:/, '')
  if (isIP(v4) === 4) return v4.startsWith('127.')
  return isIP(h) === 6 && new URL(`http://[${h}]/`).hostname === '[::1]'
}
