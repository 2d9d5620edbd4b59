// Kubernetes resource quantities ("250m", "1", "0.5", "128Mi", "1Gi",
// "500M", "1e3", plain bytes) as numbers: the scheduler's fit checks and the
// kubelet's container limits read them the same way.
// May import: nothing.

export class QuantityError extends Error {
  override name = 'QuantityError'
}

const QUANTITY = /^([+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+))(?:[eE]([+-]?[0-9]+)|(Ki|Mi|Gi|Ti|Pi|Ei|n|u|m|k|M|G|T|P|E))?$/

const SUFFIX: Record<string, number> = {
  n: 1e-9,
  u: 1e-6,
  m: 1e-3,
  k: 1e3,
  M: 1e6,
  G: 1e9,
  T: 1e12,
  P: 1e15,
  E: 1e18,
  Ki: 2 ** 10,
  Mi: 2 ** 20,
  Gi: 2 ** 30,
  Ti: 2 ** 40,
  Pi: 2 ** 50,
  Ei: 2 ** 60
}

/** The value of a quantity in base units (cores, bytes, pods); throws QuantityError for a malformed one. */
export function parseQuantity (q: string | number): number {
  if (typeof q === 'number') {
    if (!Number.isFinite(q)) throw new QuantityError(`quantity ${q} is not finite`)
    return q
  }
  const m = QUANTITY.exec(q.trim())
  if (m === null) throw new QuantityError(`quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$': ${JSON.stringify(q)}`)
  const base = Number(m[1])
  if (m[2] !== undefined) return base * 10 ** Number(m[2])
  if (m[3] !== undefined) return base * (SUFFIX[m[3]] as number)
  return base
}

/** CPU in millicores, rounded up as Kubernetes' MilliValue does; 0 for an absent or malformed value. */
export function cpuMillis (q: unknown): number {
  return quantityOr0(q, 1000)
}

/** Memory (or any integer resource) in whole units, rounded up; 0 for an absent or malformed value. */
export function bytesOf (q: unknown): number {
  return quantityOr0(q, 1)
}

function quantityOr0 (q: unknown, scale: number): number {
  if (typeof q !== 'string' && typeof q !== 'number') return 0
  try {
    // Round away float noise before rounding up: 0.1 cores is 100m, not 101m.
    const v = parseQuantity(q) * scale
    return Math.ceil(Math.round(v * 1e6) / 1e6)
  } catch {
    return 0
  }
}
