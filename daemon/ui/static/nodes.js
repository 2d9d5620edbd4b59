// The Nodes view: each Node's Ready condition, capacity against what its
// pods request, its pod count, and cordon/uncordon (a merge patch of
// spec.unschedulable). Nodes and pods come from watches.
// May import: ./api.js, ./ui.js.
import { MERGE_PATCH, request } from './api.js'
import { Badge, ErrorNote, READ_ONLY, Table, age, bytes, canWrite, cores, html, quantity, useAction, useFollow, useNow } from './ui.js'

/** Whether a pod still holds its node's resources. */
export const holdsResources = (/** @type {any} */ p) => p.status?.phase !== 'Succeeded' && p.status?.phase !== 'Failed'

/** The sum of a pod's container requests (init containers run one at a time: their largest counts, as in Kubernetes). */
function requests (/** @type {any} */ pod) {
  const sum = { cpu: 0, memory: 0 }
  for (const c of pod.spec?.containers ?? []) {
    sum.cpu += quantity(c.resources?.requests?.cpu)
    sum.memory += quantity(c.resources?.requests?.memory)
  }
  for (const c of pod.spec?.initContainers ?? []) {
    sum.cpu = Math.max(sum.cpu, quantity(c.resources?.requests?.cpu))
    sum.memory = Math.max(sum.memory, quantity(c.resources?.requests?.memory))
  }
  return sum
}

function Usage ({ label, used, total, format }) {
  const pct = total > 0 ? Math.min(100, Math.round(used / total * 100)) : 0
  return html`<div class="usage">
    <span>${format(used)} / ${format(total)} ${label}</span>
    <meter min="0" max="100" value=${pct} high="85" optimum="0" aria-label=${`${label} requested: ${pct}%`}>${pct}%</meter>
  </div>`
}

function CordonButton ({ node }) {
  const action = useAction()
  const cordoned = node.spec?.unschedulable === true
  const toggle = () => action.run(async () => {
    await request('PATCH', `/api/v1/nodes/${encodeURIComponent(node.metadata.name)}`, { body: { spec: { unschedulable: cordoned ? null : true } }, contentType: MERGE_PATCH })
  })
  return html`<button type="button" class="secondary" onClick=${toggle} disabled=${!canWrite() || action.busy} title=${canWrite() ? undefined : READ_ONLY}
    aria-label=${`${cordoned ? 'Uncordon' : 'Cordon'} ${node.metadata.name}`}>${cordoned ? 'Uncordon' : 'Cordon'}</button>
    <${ErrorNote} error=${action.error} />`
}

export function NodesView () {
  const now = useNow(5000)
  const nodes = useFollow('/api/v1/nodes')
  const pods = useFollow('/api/v1/pods')
  const byNode = new Map()
  for (const p of pods.items) {
    const n = p.spec?.nodeName
    if (n === undefined || !holdsResources(p)) continue
    const e = byNode.get(n) ?? { pods: 0, cpu: 0, memory: 0 }
    const r = requests(p)
    e.pods++
    e.cpu += r.cpu
    e.memory += r.memory
    byNode.set(n, e)
  }
  const sorted = [...nodes.items].sort((a, b) => a.metadata.name.localeCompare(b.metadata.name))
  return html`<section aria-labelledby="nodes-h">
    <h1 id="nodes-h">Nodes</h1>
    <${ErrorNote} error=${nodes.error ?? pods.error} />
    <${Table} caption=${`Nodes (${sorted.length})`} head=${['Name', 'Ready', 'Schedulable', 'CPU requested', 'Memory requested', 'Pods', 'Address', 'Age', 'Action']} empty=${nodes.synced && sorted.length === 0}>
      ${sorted.map(n => {
        const ready = (n.status?.conditions ?? []).find(c => c.type === 'Ready')
        const cap = n.status?.allocatable ?? n.status?.capacity ?? {}
        const used = byNode.get(n.metadata.name) ?? { pods: 0, cpu: 0, memory: 0 }
        const address = (n.status?.addresses ?? []).find(a => a.type === 'InternalIP')?.address ?? '—'
        return html`<tr data-testid="node-row" data-name=${n.metadata.name}>
          <th scope="row">${n.metadata.name}</th>
          <td><${Badge} state=${ready?.status === 'True' ? 'ready' : 'notready'} label=${ready?.status === 'True' ? 'Ready' : `NotReady${ready?.reason ? ` (${ready.reason})` : ''}`} /></td>
          <td>${n.spec?.unschedulable === true ? html`<${Badge} state="cordoned" label="cordoned" />` : 'yes'}</td>
          <td><${Usage} label="cores" used=${used.cpu} total=${quantity(cap.cpu)} format=${cores} /></td>
          <td><${Usage} label="memory" used=${used.memory} total=${quantity(cap.memory)} format=${bytes} /></td>
          <td>${used.pods} / ${cap.pods ?? '—'}</td>
          <td>${address}</td>
          <td>${age(n.metadata.creationTimestamp, now)}</td>
          <td><${CordonButton} node=${n} /></td>
        </tr>`
      })}
    <//>
  </section>`
}
