// The pod-template hash that names a Deployment's ReplicaSets and labels
// their pods (`pod-template-hash`), and the canonical JSON it is computed
// over. Stable across peers and restarts: FNV-32a of the template with
// sorted keys, written as Kubernetes writes it (the decimal digits mapped
// onto its vowel-free alphabet), so at most 10 characters.
// May import: protocol/ (types).
import type { PodTemplateSpec } from '../../protocol/core-v1.ts'

/** Kubernetes' alphabet for generated strings: no vowels, no look-alikes. */
const SAFE_ALPHABET = 'bcdfghjklmnpqrstvwxz2456789'

/** JSON with object keys sorted and undefined fields dropped: equal values give equal text. */
export function canonicalJson (v: unknown): string {
  if (v === null || typeof v !== 'object') return JSON.stringify(v) ?? 'null'
  if (Array.isArray(v)) return `[${v.map(x => x === undefined ? 'null' : canonicalJson(x)).join(',')}]`
  const entries = Object.entries(v as Record<string, unknown>).filter(([, x]) => x !== undefined).sort(([a], [b]) => a < b ? -1 : a > b ? 1 : 0)
  return `{${entries.map(([k, x]) => `${JSON.stringify(k)}:${canonicalJson(x)}`).join(',')}}`
}

/** 32-bit FNV-1a of the UTF-8 bytes of `text`. */
export function fnv32a (text: string): number {
  let h = 0x811c9dc5
  for (const b of new TextEncoder().encode(text)) {
    h ^= b
    h = Math.imul(h, 0x01000193) >>> 0
  }
  return h >>> 0
}

/**
 * The hash of a pod template; `collisionCount` (from a Deployment's status)
 * changes it when two templates collide on a ReplicaSet name.
 */
export function podTemplateHash (template: PodTemplateSpec, collisionCount = 0): string {
  const text = canonicalJson(template) + (collisionCount > 0 ? `#${collisionCount}` : '')
  let out = ''
  for (const ch of String(fnv32a(text))) out += SAFE_ALPHABET.charAt(ch.charCodeAt(0) % SAFE_ALPHABET.length)
  return out
}
