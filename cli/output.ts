// How `shoal` prints: kubectl-like borderless tables, pretty JSON, and short
// ages ("5s", "3m", "2h", "4d"). Pure functions; main.ts does the writing.
import Table from 'cli-table3'
import type { MemberList, MemberView } from '../protocol/api.ts'

export const OUTPUT_FORMATS = ['table', 'json'] as const
export type OutputFormat = typeof OUTPUT_FORMATS[number]

// Every box character blank and 3 spaces between columns: the look of
// `kubectl get`, which people already know how to read and to grep.
const BORDERLESS = {
  top: '',
  'top-mid': '',
  'top-left': '',
  'top-right': '',
  bottom: '',
  'bottom-mid': '',
  'bottom-left': '',
  'bottom-right': '',
  left: '',
  'left-mid': '',
  mid: '',
  'mid-mid': '',
  right: '',
  'right-mid': '',
  middle: '   '
}

/** Rows of plain text, left aligned, the first row being the header. No trailing spaces. */
export function renderTable (head: string[], rows: string[][]): string {
  // style.head/border empty: cli-table3 colours nothing, whatever the terminal.
  const table = new Table({
    head,
    chars: BORDERLESS,
    style: { head: [], border: [], 'padding-left': 0, 'padding-right': 0, compact: true }
  })
  for (const row of rows) table.push(row.map(clean))
  return table.toString().split('\n').map(line => line.trimEnd()).join('\n') + '\n'
}

// The text comes from a server: never let it move the cursor or recolour the
// terminal, and never let it break a row in two.
function clean (text: string): string {
  return text.replace(/[\u0000-\u001f\u007f-\u009f]/g, '?')
}

/**
 * kubectl's short human duration: whole seconds under a minute, whole minutes
 * under an hour, hours under a day, days under a year, then years.
 */
export function formatAge (ms: number): string {
  // A little clock skew between peers must not print "-2s".
  const s = Math.floor(Math.max(0, ms) / 1000)
  if (s < 60) return `${s}s`
  const m = Math.floor(s / 60)
  if (m < 60) return `${m}m`
  const h = Math.floor(m / 60)
  if (h < 24) return `${h}h`
  const d = Math.floor(h / 24)
  if (d < 365) return `${d}d`
  return `${Math.floor(d / 365)}y`
}

/** Age of an ISO time at `now`; `<unknown>` when it cannot be parsed. */
export function ageSince (iso: unknown, now: number): string {
  const t = typeof iso === 'string' ? Date.parse(iso) : NaN
  return Number.isNaN(t) ? '<unknown>' : formatAge(now - t)
}

export const MEMBER_COLUMNS = ['NAME', 'STATE', 'ADDRESS', 'API', 'LAST SEEN', 'AGE']

/** The `shoal members` table, sorted by name; the answering peer's name ends in `*`. */
export function renderMembers (list: MemberList, now: number): string {
  const items = [...list.items].sort((a, b) => a.name < b.name ? -1 : a.name > b.name ? 1 : 0)
  return renderTable(MEMBER_COLUMNS, items.map(m => memberRow(m, now)))
}

function memberRow (m: MemberView, now: number): string[] {
  const first = Array.isArray(m.addrs) ? m.addrs[0] : undefined
  return [
    m.self === true ? `${m.name}*` : m.name,
    text(m.state),
    typeof first === 'string' && first !== '' ? first : text(m.api),
    text(m.api),
    ageSince(m.lastSeen, now),
    ageSince(m.startedAt, now)
  ]
}

function text (v: unknown): string {
  return typeof v === 'string' && v !== '' ? v : '<none>'
}

export function renderJson (value: unknown): string {
  return JSON.stringify(value, null, 2) + '\n'
}
