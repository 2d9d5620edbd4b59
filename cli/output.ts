// How `shoal` prints: kubectl-like borderless tables, pretty JSON, and short
// ages ("5s", "3m", "2h", "4d"). Pure functions; main.ts does the writing.
import Table from 'cli-table3'
import type { MemberList, MemberView, RaftServerView, RaftStatusView } from '../protocol/api.ts'
import type { MemberState } from '../protocol/membership.ts'
import type { KvListView, KvPairView } from '../protocol/kv.ts'
import { ageOf } from '../protocol/k8s-columns.ts'

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
    ageOf(m.lastSeen, now),
    ageOf(m.startedAt, now)
  ]
}

function text (v: unknown): string {
  return typeof v === 'string' && v !== '' ? v : '<none>'
}

export const KV_COLUMNS = ['KEY', 'MODIFY-INDEX', 'CREATE-INDEX', 'VALUE']
/** VALUE is cut to this many characters in `shoal kv ls`. */
export const KV_VALUE_WIDTH = 40

/** A value for a table cell: UTF-8 text cut to `width` characters (with "…"), a binary one as its size. */
export function shortValue (pair: KvPairView, width = KV_VALUE_WIDTH): string {
  if (pair.encoding === 'base64') return `<binary, ${Buffer.from(pair.value, 'base64').length} bytes>`
  const chars = [...pair.value]
  return chars.length > width ? chars.slice(0, width - 1).join('') + '…' : pair.value
}

/** The `shoal kv ls` table, in the server's (key) order. */
export function renderKvList (list: KvListView): string {
  return renderTable(KV_COLUMNS, list.items.map(p => [p.key, String(p.modifyIndex), String(p.createIndex), shortValue(p)]))
}

export type ClusterRole = 'leader' | 'voter' | 'learner' | 'none'

/** One row of `shoal cluster status`. */
export interface ClusterMemberView {
  name: string
  /** the Raft server id, when the member is in the configuration */
  id?: string
  role: ClusterRole
  /** the membership state; `unknown` for a Raft server that membership does not list */
  state: MemberState | 'unknown'
  matchIndex?: number
  lag?: number
  api: string
  /** the peer that answered */
  self: boolean
}

/** What `shoal cluster status -o json` prints. */
export interface ClusterStatusView {
  kind: 'ClusterStatus'
  leader?: { id: string, name?: string, api?: string }
  term: number
  commitIndex: number
  /** whether MATCH and LAG come from the leader (else they are unknown) */
  fromLeader: boolean
  members: ClusterMemberView[]
}

/**
 * Joins the answering peer's Raft status, the leader's (when it could be
 * read: only it knows match and lag) and the member list. A Raft server is
 * matched to a member by id (the peer id), else by name.
 */
export function clusterStatus (local: RaftStatusView, leader: RaftStatusView | undefined, members: MemberList): ClusterStatusView {
  const source = leader ?? local
  const leaderId = source.leader?.id ?? (source.role === 'leader' ? source.id : undefined)
  const servers: Array<{ server: RaftServerView, role: 'voter' | 'learner' }> = [
    ...source.voters.map(server => ({ server, role: 'voter' as const })),
    ...source.learners.map(server => ({ server, role: 'learner' as const }))
  ]
  const used = new Set<RaftServerView>()
  const row = (server: RaftServerView | undefined, role: 'voter' | 'learner' | undefined): Pick<ClusterMemberView, 'id' | 'role' | 'matchIndex' | 'lag'> => {
    if (server === undefined || role === undefined) return { role: 'none' }
    used.add(server)
    const matchIndex = leader !== undefined ? server.matchIndex : undefined
    const lag = leader === undefined ? undefined : server.lag ?? (matchIndex !== undefined ? Math.max(0, source.commitIndex - matchIndex) : undefined)
    return {
      id: server.id,
      role: server.id === leaderId ? 'leader' : role,
      ...(matchIndex !== undefined ? { matchIndex } : {}),
      ...(lag !== undefined ? { lag } : {})
    }
  }
  const rows: ClusterMemberView[] = members.items.map(m => {
    const found = servers.find(s => s.server.id === m.peerId) ?? servers.find(s => s.server.name !== undefined && s.server.name === m.name)
    return { name: m.name, ...row(found?.server, found?.role), state: m.state, api: m.api, self: m.self === true }
  })
  for (const { server, role } of servers) {
    if (used.has(server)) continue
    rows.push({ name: server.name ?? server.id, ...row(server, role), state: 'unknown', api: server.api ?? '', self: server.id === local.id })
  }
  rows.sort((a, b) => a.name < b.name ? -1 : a.name > b.name ? 1 : 0)
  return {
    kind: 'ClusterStatus',
    ...(source.leader !== undefined ? { leader: source.leader } : {}),
    term: source.term,
    commitIndex: source.commitIndex,
    fromLeader: leader !== undefined,
    members: rows
  }
}

export const CLUSTER_COLUMNS = ['NAME', 'ROLE', 'STATE', 'MATCH', 'LAG', 'API']

export function renderClusterStatus (view: ClusterStatusView): string {
  const leader = view.leader === undefined
    ? '<none> (no leader is known; an election may be under way)'
    : `${view.leader.name ?? view.leader.id}${view.leader.api !== undefined ? ` (${view.leader.api})` : ''}`
  const head = `Leader:         ${leader}\nTerm:           ${view.term}\nCommit index:   ${view.commitIndex}\n\n`
  const num = (n: number | undefined): string => n === undefined ? '-' : String(n)
  return head + renderTable(CLUSTER_COLUMNS, view.members.map(m => [
    m.self ? `${m.name}*` : m.name, m.role, m.state, num(m.matchIndex), num(m.lag), text(m.api)
  ]))
}

export function renderJson (value: unknown): string {
  return JSON.stringify(value, null, 2) + '\n'
}
