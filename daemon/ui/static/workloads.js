// The Workloads view, one section at a time (#/workloads?show=…), so that
// the page holds at most two watches and a browser's six connections to a
// peer are never used up: Deployments (desired, updated, ready, available,
// rollout status as `kubectl rollout status` words it, a scale control on
// the scale subresource, the revision history from the ReplicaSets they own
// and rollback as `kubectl rollout undo` does it: the chosen ReplicaSet's
// template, minus pod-template-hash, merge-patched into the Deployment),
// then every ReplicaSet; Jobs and CronJobs (./jobs.js); DaemonSets and
// StatefulSets, and PodDisruptionBudgets (./sets.js). All from watches.
// May import: preact/hooks, ./api.js, ./ui.js, ./jobs.js, ./sets.js.
import { useEffect, useState } from 'preact/hooks'
import { MERGE_PATCH, request } from './api.js'
import { JobsSection } from './jobs.js'
import { BudgetsSection, SetsSection } from './sets.js'
import { Badge, ErrorNote, READ_ONLY, Table, age, canWrite, html, labelsText, useAction, useFollow, useNow } from './ui.js'

const REVISION = 'deployment.kubernetes.io/revision'
const revisionOf = (/** @type {any} */ rs) => Number(rs.metadata.annotations?.[REVISION] ?? 0)
const n = (/** @type {unknown} */ v) => typeof v === 'number' ? v : 0

/** kubectl's rollout status line, and whether the rollout is done. */
export function rolloutStatus (/** @type {any} */ d) {
  const name = d.metadata.name
  if ((d.metadata.generation ?? 0) > n(d.status?.observedGeneration)) return { message: 'Waiting for the spec update to be observed…', done: false }
  if ((d.status?.conditions ?? []).some(c => c.type === 'Progressing' && c.reason === 'ProgressDeadlineExceeded')) return { message: `deployment "${name}" exceeded its progress deadline`, done: false }
  const desired = typeof d.spec?.replicas === 'number' ? d.spec.replicas : 1
  const updated = n(d.status?.updatedReplicas)
  const replicas = n(d.status?.replicas)
  const available = n(d.status?.availableReplicas)
  if (updated < desired) return { message: `${updated} of ${desired} new replicas updated`, done: false }
  if (replicas > updated) return { message: `${replicas - updated} old replicas pending termination`, done: false }
  if (available < updated) return { message: `${available} of ${updated} updated replicas available`, done: false }
  return { message: 'successfully rolled out', done: true }
}

/** The JSON merge patch that turns `from` into `to` (RFC 7386: null removes a key; lists are replaced whole). */
export function mergePatchBetween (/** @type {any} */ from, /** @type {any} */ to) {
  const isMap = (/** @type {any} */ v) => typeof v === 'object' && v !== null && !Array.isArray(v)
  if (!isMap(from) || !isMap(to)) return to
  /** @type {Record<string, unknown>} */
  const patch = {}
  for (const k of Object.keys(from)) if (!(k in to)) patch[k] = null
  for (const [k, v] of Object.entries(to)) {
    if (JSON.stringify(from[k]) === JSON.stringify(v)) continue
    patch[k] = isMap(from[k]) && isMap(v) ? mergePatchBetween(from[k], v) : v
  }
  return patch
}

const deploymentPath = (/** @type {any} */ d) => `/apis/apps/v1/namespaces/${encodeURIComponent(d.metadata.namespace)}/deployments/${encodeURIComponent(d.metadata.name)}`

function ScaleControl ({ d }) {
  const desired = typeof d.spec?.replicas === 'number' ? d.spec.replicas : 1
  const [value, setValue] = useState(String(desired))
  useEffect(() => setValue(String(desired)), [desired])
  const action = useAction()
  const id = `scale-${d.metadata.namespace}-${d.metadata.name}`
  const scale = (/** @type {number} */ replicas) => action.run(async () => {
    if (!Number.isSafeInteger(replicas) || replicas < 0) throw new Error('Replicas must be a whole number, 0 or more.')
    await request('PATCH', `${deploymentPath(d)}/scale`, { body: { spec: { replicas } }, contentType: MERGE_PATCH })
  })
  const disabled = !canWrite() || action.busy
  const title = canWrite() ? undefined : READ_ONLY
  return html`<form class="inline" onSubmit=${e => { e.preventDefault(); scale(Number(value)) }}>
    <label for=${id} class="visually-hidden">Replicas of ${d.metadata.name}</label>
    <input id=${id} type="number" min="0" max="1000" step="1" inputmode="numeric" value=${value} onInput=${e => setValue(e.currentTarget.value)} disabled=${disabled} title=${title} />
    <button type="submit" disabled=${disabled} title=${title}>Scale</button>
    <${ErrorNote} error=${action.error} />
  </form>`
}

function History ({ d, replicaSets }) {
  const action = useAction()
  const owned = replicaSets
    .filter(rs => (rs.metadata.ownerReferences ?? []).some(o => o.uid === d.metadata.uid))
    .sort((a, b) => revisionOf(b) - revisionOf(a))
  const current = d.metadata.annotations?.[REVISION]
  const rollback = (/** @type {any} */ rs) => action.run(async () => {
    const template = structuredClone(rs.spec.template)
    // The controller adds this label to each ReplicaSet's template; the Deployment's has none.
    if (template.metadata?.labels !== undefined) delete template.metadata.labels['pod-template-hash']
    const patch = mergePatchBetween(d.spec.template, template)
    if (Object.keys(patch).length === 0) return `Already at revision ${revisionOf(rs)}.`
    await request('PATCH', deploymentPath(d), { body: { spec: { template: patch } }, contentType: MERGE_PATCH })
    return `Rolling back to revision ${revisionOf(rs)}.`
  })
  return html`<${Table} caption=${`Revisions of ${d.metadata.name}`} head=${['Revision', 'ReplicaSet', 'Images', 'Replicas', 'Age', 'Action']} empty=${owned.length === 0 ? 'No ReplicaSets yet.' : false}>
      ${owned.map(rs => {
        const isCurrent = String(revisionOf(rs)) === current
        return html`<tr>
          <th scope="row">${revisionOf(rs)}${isCurrent ? ' (current)' : ''}</th>
          <td>${rs.metadata.name}</td>
          <td>${(rs.spec.template?.spec?.containers ?? []).map(c => c.image).join(', ')}</td>
          <td>${n(rs.status?.readyReplicas)} / ${n(rs.spec.replicas)}</td>
          <td>${age(rs.metadata.creationTimestamp)}</td>
          <td><button type="button" class="secondary" disabled=${!canWrite() || isCurrent || action.busy} title=${canWrite() ? undefined : READ_ONLY}
            onClick=${() => rollback(rs)}>Roll back to ${revisionOf(rs)}</button></td>
        </tr>`
      })}
    <//>
    <${ErrorNote} error=${action.error} />
    ${action.done ? html`<p role="status">${action.done}</p>` : null}`
}

function DeploymentsSection () {
  const now = useNow(5000)
  const deployments = useFollow('/apis/apps/v1/deployments')
  const replicaSets = useFollow('/apis/apps/v1/replicasets')
  const [open, setOpen] = useState(/** @type {string | undefined} */ (undefined))
  const byKey = (a, b) => `${a.metadata.namespace}/${a.metadata.name}`.localeCompare(`${b.metadata.namespace}/${b.metadata.name}`)
  const ds = [...deployments.items].sort(byKey)
  const rss = [...replicaSets.items].sort(byKey)
  return html`<${ErrorNote} error=${deployments.error ?? replicaSets.error} />
    <${Table} caption=${`Deployments (${ds.length})`} head=${['Name', 'Namespace', 'Desired', 'Updated', 'Ready', 'Available', 'Rollout', 'Age', 'Scale', 'History']} empty=${deployments.synced && ds.length === 0 ? 'No Deployments: apply one from the Apply view.' : false}>
      ${ds.map(d => {
        const key = `${d.metadata.namespace}/${d.metadata.name}`
        const status = rolloutStatus(d)
        return html`<tr data-testid="deployment-row" data-name=${d.metadata.name}>
          <th scope="row">${d.metadata.name}</th>
          <td>${d.metadata.namespace}</td>
          <td data-testid="desired">${typeof d.spec?.replicas === 'number' ? d.spec.replicas : 1}</td>
          <td>${n(d.status?.updatedReplicas)}</td>
          <td data-testid="ready">${n(d.status?.readyReplicas)}</td>
          <td>${n(d.status?.availableReplicas)}</td>
          <td><${Badge} state=${status.done ? 'done' : 'progressing'} label=${status.message} /></td>
          <td>${age(d.metadata.creationTimestamp, now)}</td>
          <td><${ScaleControl} d=${d} /></td>
          <td><button type="button" class="secondary" aria-expanded=${open === key ? 'true' : 'false'} onClick=${() => setOpen(open === key ? undefined : key)}>${open === key ? 'Hide' : 'Show'} history</button></td>
        </tr>`
      })}
    <//>
    ${ds.filter(d => `${d.metadata.namespace}/${d.metadata.name}` === open).map(d => html`<${History} d=${d} replicaSets=${rss} />`)}
    <${Table} caption=${`ReplicaSets (${rss.length})`} head=${['Name', 'Namespace', 'Desired', 'Current', 'Ready', 'Revision', 'Selector', 'Age']} empty=${replicaSets.synced && rss.length === 0}>
      ${rss.map(rs => html`<tr>
        <th scope="row">${rs.metadata.name}</th>
        <td>${rs.metadata.namespace}</td>
        <td>${n(rs.spec?.replicas)}</td>
        <td>${n(rs.status?.replicas)}</td>
        <td>${n(rs.status?.readyReplicas)}</td>
        <td>${rs.metadata.annotations?.[REVISION] ?? '—'}</td>
        <td>${labelsText(rs.spec?.selector?.matchLabels)}</td>
        <td>${age(rs.metadata.creationTimestamp, now)}</td>
      </tr>`)}
    <//>`
}

const SECTIONS = [
  { id: 'deployments', title: 'Deployments', view: DeploymentsSection },
  { id: 'jobs', title: 'Jobs & CronJobs', view: JobsSection },
  { id: 'sets', title: 'DaemonSets & StatefulSets', view: SetsSection },
  { id: 'budgets', title: 'Disruption budgets', view: BudgetsSection }
]

export function WorkloadsView ({ params }) {
  const section = SECTIONS.find(s => s.id === params?.get('show')) ?? SECTIONS[0]
  const Section = section.view
  return html`<section aria-labelledby="workloads-h">
    <h1 id="workloads-h">Workloads</h1>
    <nav class="subnav" aria-label="Workload kinds">
      <ul>${SECTIONS.map(s => html`<li><a href=${`#/workloads?show=${s.id}`} aria-current=${s === section ? 'page' : undefined}>${s.title}</a></li>`)}</ul>
    </nav>
    <${Section} />
  </section>`
}
