// The cluster's health: members (GET /shoal/v1/members) and the Raft view
// (GET /shoal/v1/raft), polled every second since neither has a watch; the
// history of leader changes, kept in this browser tab; the cluster bar at
// the top of every view and the Cluster view with each member's state,
// Raft role, match index and lag.
// May import: preact/hooks, ./api.js, ./ui.js.
import { useEffect, useState } from 'preact/hooks'
import { request } from './api.js'
import { Badge, ErrorNote, Table, age, clock, html, useNow } from './ui.js'

const HISTORY_KEY = 'shoal.leaders'
const HISTORY_MAX = 20

/**
 * @typedef {{ members: any[], raft: any, error?: string, at: number,
 *   history: Array<{ at: number, term: number, leader?: string }> }} ClusterState
 */

/** @type {ClusterState} */
let state = { members: [], raft: undefined, error: undefined, at: 0, history: readHistory() }
const listeners = new Set()
let timer

function readHistory () {
  try { return JSON.parse(sessionStorage.getItem(HISTORY_KEY) ?? '[]') } catch { return [] }
}

/** Notes a new leader (or none), or the same leader in a new term. */
function record (/** @type {any} */ raft) {
  const last = state.history[0]
  const leader = raft.leader?.name ?? raft.leader?.id
  if (last !== undefined && last.leader === leader && (leader === undefined || last.term === raft.term)) return state.history
  const history = [{ at: Date.now(), term: raft.term, leader }, ...state.history].slice(0, HISTORY_MAX)
  sessionStorage.setItem(HISTORY_KEY, JSON.stringify(history))
  return history
}

/** The leader's view (every peer's match index and lag), fetched through this peer; it never holds up a poll. */
let leaderView = /** @type {any} */ (undefined)
let askingLeader = false

function askLeader () {
  if (askingLeader) return
  askingLeader = true
  request('GET', '/shoal/v1/raft?view=leader').then(v => { leaderView = v }, () => { leaderView = undefined }).finally(() => { askingLeader = false })
}

async function poll () {
  askLeader()
  const [members, raft] = await Promise.allSettled([request('GET', '/shoal/v1/members'), request('GET', '/shoal/v1/raft')])
  const errors = [members, raft].filter(r => r.status === 'rejected').map(r => r.reason?.message ?? String(r.reason))
  const local = raft.status === 'fulfilled' ? raft.value : undefined
  // The leader's view where it is as new as this peer's own (same term, same leader); this peer's own otherwise.
  const view = local !== undefined && leaderView !== undefined && leaderView.term === local.term && leaderView.id === local.leader?.id ? leaderView : local
  state = {
    members: members.status === 'fulfilled' ? members.value.items : state.members,
    raft: view ?? state.raft,
    error: errors.length > 0 ? errors.join('; ') : undefined,
    at: Date.now(),
    history: local !== undefined ? record(local) : state.history
  }
  for (const l of listeners) l(state)
}

/** Polls while anyone listens: once a second, never two polls at once. */
function start () {
  const loop = async () => {
    try { await poll() } catch { /* reported in state */ }
    if (listeners.size > 0) timer = setTimeout(loop, 1000)
    else timer = undefined
  }
  if (timer === undefined) timer = setTimeout(loop, 0)
}

/** @returns {ClusterState} */
export function useCluster () {
  const [s, setS] = useState(state)
  useEffect(() => {
    listeners.add(setS)
    start()
    return () => { listeners.delete(setS) }
  }, [])
  return s
}

export function clearHistory () {
  sessionStorage.removeItem(HISTORY_KEY)
  state = { ...state, history: [] }
}

/** leader, voter, learner or '—' for a member, from the answering peer's Raft view. */
export function raftRole (/** @type {any} */ raft, /** @type {any} */ m) {
  if (raft === undefined) return '—'
  const is = (/** @type {any} */ s) => s.id === m.peerId || (s.name !== undefined && s.name === m.name)
  if (raft.leader !== undefined && is(raft.leader)) return 'leader'
  if (raft.voters.some(is)) return 'voter'
  if (raft.learners.some(is)) return 'learner'
  return '—'
}

function replication (/** @type {any} */ raft, /** @type {any} */ m) {
  return [...(raft?.voters ?? []), ...(raft?.learners ?? [])].find(s => s.id === m.peerId || s.name === m.name)
}

const STATE_ORDER = { alive: 0, suspect: 1, dead: 2, left: 3 }
const byName = (a, b) => a.name.localeCompare(b.name)

/** The bar on top of every view: who leads, in which term, and each member's state. */
export function ClusterBar ({ cluster }) {
  const { raft, members } = cluster
  const leader = raft?.leader?.name ?? raft?.leader?.id
  const last = cluster.history[0]
  return html`<section class="cluster-bar" aria-label="Cluster status">
    <p class="leader" role="status">
      ${leader !== undefined
        ? html`Leader <strong data-testid="leader">${leader}</strong>`
        : html`<strong class="warn" data-testid="leader">no leader</strong>`}
      <span class="sep">term <strong data-testid="term">${raft?.term ?? '—'}</strong></span>
      <span class="sep">commit ${raft?.commitIndex ?? '—'}</span>
      ${last !== undefined && cluster.history.length > 1 ? html`<span class="sep muted">since ${clock(last.at)}</span>` : null}
    </p>
    <ul class="members" aria-label="Members">
      ${[...members].sort(byName).map(m => html`<li data-testid="member" data-name=${m.name} data-state=${m.state}>
        <${Badge} state=${m.state} label=${`${m.name}: ${m.state}${raftRole(raft, m) === 'leader' ? ' (leader)' : ''}`} />
      </li>`)}
    </ul>
    <${ErrorNote} error=${cluster.error} />
  </section>`
}

export function ClusterView ({ cluster }) {
  const now = useNow()
  const { raft, members } = cluster
  const leads = raft?.role === 'leader'
  const sorted = [...members].sort((a, b) => (STATE_ORDER[a.state] ?? 9) - (STATE_ORDER[b.state] ?? 9) || byName(a, b))
  return html`<section aria-labelledby="cluster-h">
    <h1 id="cluster-h">Cluster</h1>
    ${raft !== undefined ? html`<dl class="facts">
      <div><dt>Log as seen by</dt><dd>${raft.name} (${raft.role})</dd></div>
      <div><dt>Term</dt><dd>${raft.term}</dd></div>
      <div><dt>Commit index</dt><dd>${raft.commitIndex}</dd></div>
      <div><dt>Applied index</dt><dd>${raft.appliedIndex}</dd></div>
      <div><dt>Last index</dt><dd>${raft.lastIndex}</dd></div>
      <div><dt>Snapshot index</dt><dd>${raft.snapshotIndex}</dd></div>
    </dl>` : null}
    <${Table} caption=${`Members (${members.length})`} head=${['Name', 'State', 'Raft role', 'Match index', 'Lag', 'API', 'Version', 'Last seen', 'Up']}>
      ${sorted.map(m => {
        const r = replication(raft, m)
        return html`<tr data-testid="member-row" data-name=${m.name}>
          <th scope="row">${m.name}${m.self ? html` <span class="muted">(this peer)</span>` : null}</th>
          <td><${Badge} state=${m.state} /></td>
          <td><${Badge} state=${`role-${raftRole(raft, m)}`} label=${raftRole(raft, m)} /></td>
          <td>${r?.matchIndex ?? '—'}</td>
          <td>${r?.lag ?? '—'}</td>
          <td>${m.api}</td>
          <td>${m.version}</td>
          <td>${age(m.lastSeen, now)} ago</td>
          <td>${age(m.startedAt, now)}</td>
        </tr>`
      })}
    <//>
    ${!leads && raft !== undefined ? html`<p class="muted">Match index and lag are known by the leader; this page is served by ${raft.name}, a ${raft.role}.</p>` : null}
    <h2>Leader changes</h2>
    ${cluster.history.length === 0
      ? html`<p class="muted">None seen yet.</p>`
      : html`<ol class="history" data-testid="leader-history">
        ${cluster.history.map(e => html`<li><time datetime=${new Date(e.at).toISOString()}>${clock(e.at)}</time> ${e.leader !== undefined ? html`<strong>${e.leader}</strong> leads, term ${e.term}` : html`<strong class="warn">no leader</strong> (term ${e.term})`}</li>`)}
      </ol>`}
    <p class="muted">Kept in this tab since it opened; polled every second from the peer that serves this page.</p>
  </section>`
}
