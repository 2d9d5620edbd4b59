// What every view shares: the `html` template tag (htm over Preact), the
// useFollow hook over api.js's informers, a clock hook for ages, small
// components (a scrollable table, an error note, a state badge) and
// formatting (ages, Kubernetes quantities, bytes).
// May import: preact, preact/hooks, htm, ./api.js.
import { h } from 'preact'
import { useEffect, useState } from 'preact/hooks'
import htm from 'htm'
import { follow, session } from './api.js'

export const html = htm.bind(h)

/** @returns {{ items: any[], error?: string, synced: boolean }} the collection at `path`, kept current (nothing while path is undefined) */
export function useFollow (/** @type {string | undefined} */ path) {
  const [state, setState] = useState({ items: [], error: undefined, synced: false })
  useEffect(() => {
    setState({ items: [], error: undefined, synced: false })
    if (path === undefined) return
    return follow(path, setState)
  }, [path])
  return state
}

/** The current time, refreshed every `ms`, for ages. */
export function useNow (ms = 1000) {
  const [now, setNow] = useState(Date.now())
  useEffect(() => {
    const t = setInterval(() => setNow(Date.now()), ms)
    return () => clearInterval(t)
  }, [ms])
  return now
}

/** Whether this session may change things; actions are disabled otherwise. */
export const canWrite = () => session.role === 'admin'
export const READ_ONLY = 'read-only token: this action is disabled'

/** kubectl's short ages: 42s, 5m, 3h, 2d. */
export function age (/** @type {string | undefined} */ since, now = Date.now()) {
  if (since === undefined) return '—'
  const s = Math.max(0, Math.floor((now - Date.parse(since)) / 1000))
  if (s < 120) return `${s}s`
  if (s < 7200) return `${Math.floor(s / 60)}m`
  if (s < 172800) return `${Math.floor(s / 3600)}h`
  return `${Math.floor(s / 86400)}d`
}

export function clock (/** @type {string | number} */ t) {
  return new Date(t).toLocaleTimeString([], { hour12: false })
}

const SUFFIXES = { n: 1e-9, u: 1e-6, m: 1e-3, k: 1e3, M: 1e6, G: 1e9, T: 1e12, P: 1e15, E: 1e18, Ki: 2 ** 10, Mi: 2 ** 20, Gi: 2 ** 30, Ti: 2 ** 40, Pi: 2 ** 50, Ei: 2 ** 60 }

/** A Kubernetes quantity ("250m", "128Mi", "1e3", 2) as a number; 0 when absent or unreadable. */
export function quantity (/** @type {unknown} */ q) {
  if (typeof q === 'number') return q
  if (typeof q !== 'string') return 0
  const m = /^([+-]?[0-9.]+(?:[eE][+-]?\d+)?)([a-zA-Z]*)$/.exec(q.trim())
  if (m === null) return 0
  const factor = m[2] === '' ? 1 : SUFFIXES[m[2]]
  return factor === undefined ? 0 : Number(m[1]) * factor
}

export function bytes (/** @type {number} */ n) {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB']
  let i = 0
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i++ }
  return `${n >= 10 || i === 0 ? Math.round(n) : n.toFixed(1)} ${units[i]}`
}

export function cores (/** @type {number} */ n) {
  return n < 1 && n > 0 ? `${Math.round(n * 1000)}m` : `${Number(n.toFixed(2))}`
}

export const labelsText = (/** @type {Record<string, string> | undefined} */ labels) =>
  Object.entries(labels ?? {}).map(([k, v]) => `${k}=${v}`).join(', ')

/** A colored badge that also says its state in words (color is never the only signal). */
export function Badge ({ state, label }) {
  return html`<span class="badge badge-${String(state).replace(/[^a-z-]/gi, '').toLowerCase()}">${label ?? state}</span>`
}

export function ErrorNote ({ error }) {
  if (error === undefined || error === '') return null
  return html`<p class="error" role="alert">${error}</p>`
}

/** A table that scrolls sideways on a narrow screen; `head` are the column names. */
export function Table ({ caption, head, children, empty }) {
  return html`<div class="table-wrap" tabindex="0" role="region" aria-label=${caption}>
    <table>
      <caption>${caption}</caption>
      <thead><tr>${head.map(c => html`<th scope="col">${c}</th>`)}</tr></thead>
      <tbody>${children}</tbody>
    </table>
    ${empty ? html`<p class="muted">${typeof empty === 'string' ? empty : 'Nothing here yet.'}</p>` : null}
  </div>`
}

/** The rows of a view, busy state and error of one action at a time. */
export function useAction () {
  const [busy, setBusy] = useState(false)
  const [error, setError] = useState(undefined)
  const [done, setDone] = useState(undefined)
  const run = async (/** @type {() => Promise<string | void>} */ action) => {
    setBusy(true)
    setError(undefined)
    setDone(undefined)
    try {
      const message = await action()
      if (typeof message === 'string') setDone(message)
    } catch (err) {
      setError(err instanceof Error ? err.message : String(err))
    } finally {
      setBusy(false)
    }
  }
  return { busy, error, done, run }
}
