// The Events view: the cluster's Events as a live stream (a watch over all
// namespaces), newest first, the latest 300.
// May import: ./ui.js.
import { Badge, ErrorNote, Table, clock, html, useFollow } from './ui.js'

const SHOWN = 300
const when = (/** @type {any} */ e) => e.lastTimestamp ?? e.eventTime ?? e.firstTimestamp ?? e.metadata.creationTimestamp ?? ''

export function EventsView () {
  const events = useFollow('/api/v1/events')
  const sorted = [...events.items].sort((a, b) => when(b).localeCompare(when(a))).slice(0, SHOWN)
  return html`<section aria-labelledby="events-h">
    <h1 id="events-h">Events</h1>
    <p class="muted">Live: new events appear at the top as they happen.</p>
    <${ErrorNote} error=${events.error} />
    <${Table} caption=${`Events (${events.items.length}${events.items.length > SHOWN ? `, the latest ${SHOWN} shown` : ''})`} head=${['Last seen', 'Namespace', 'Object', 'Type', 'Reason', 'Message', 'Count']} empty=${events.synced && sorted.length === 0 ? 'No events.' : false}>
      ${sorted.map(e => html`<tr>
        <td>${when(e) !== '' ? html`<time datetime=${when(e)}>${clock(when(e))}</time>` : '—'}</td>
        <td>${e.metadata.namespace}</td>
        <th scope="row">${e.involvedObject?.kind?.toLowerCase()}/${e.involvedObject?.name}</th>
        <td><${Badge} state=${e.type === 'Warning' ? 'warning' : 'normal'} label=${e.type ?? 'Normal'} /></td>
        <td>${e.reason}</td>
        <td>${e.message}</td>
        <td>${e.count ?? 1}</td>
      </tr>`)}
    <//>
  </section>`
}
