// The Workloads view's DaemonSets (desired, current, ready, up to date and
// available pods, node selector), StatefulSets (ready of desired, current
// and updated replicas, their Service) and PodDisruptionBudgets (the budget,
// the disruptions allowed now, healthy pods against desired). From watches.
// May import: ./ui.js.
import { Badge, ErrorNote, Table, age, html, labelsText, useFollow, useNow } from './ui.js'

const n = (/** @type {unknown} */ v) => typeof v === 'number' ? v : 0
const byKey = (a, b) => `${a.metadata.namespace}/${a.metadata.name}`.localeCompare(`${b.metadata.namespace}/${b.metadata.name}`)
const selectorText = (/** @type {any} */ s) => labelsText(s?.matchLabels) || (s?.matchExpressions?.length > 0 ? 'expressions' : '—')

/** `3 / 3` ready of wanted, as a badge whose word says whether all are. */
function ReadyOf ({ ready, want }) {
  return html`<${Badge} state=${ready >= want ? 'ready' : 'progressing'} label=${`${ready} / ${want}`} />`
}

function DaemonSetRow ({ ds, now }) {
  const s = ds.status ?? {}
  return html`<tr data-testid="daemonset-row" data-name=${ds.metadata.name}>
    <th scope="row">${ds.metadata.name}</th>
    <td>${ds.metadata.namespace}</td>
    <td data-testid="desired">${n(s.desiredNumberScheduled)}</td>
    <td>${n(s.currentNumberScheduled)}</td>
    <td data-testid="ready"><${ReadyOf} ready=${n(s.numberReady)} want=${n(s.desiredNumberScheduled)} /></td>
    <td>${n(s.updatedNumberScheduled)}</td>
    <td>${n(s.numberAvailable)}</td>
    <td>${labelsText(ds.spec?.template?.spec?.nodeSelector) || 'any node'}</td>
    <td>${age(ds.metadata.creationTimestamp, now)}</td>
  </tr>`
}

function StatefulSetRow ({ sts, now }) {
  const want = typeof sts.spec?.replicas === 'number' ? sts.spec.replicas : 1
  return html`<tr data-testid="statefulset-row" data-name=${sts.metadata.name}>
    <th scope="row">${sts.metadata.name}</th>
    <td>${sts.metadata.namespace}</td>
    <td data-testid="ready"><${ReadyOf} ready=${n(sts.status?.readyReplicas)} want=${want} /></td>
    <td>${n(sts.status?.currentReplicas)}</td>
    <td>${n(sts.status?.updatedReplicas)}</td>
    <td>${sts.spec?.serviceName || '—'}</td>
    <td>${age(sts.metadata.creationTimestamp, now)}</td>
  </tr>`
}

function PdbRow ({ pdb, now }) {
  const spec = pdb.spec ?? {}
  const s = pdb.status ?? {}
  const budget = spec.minAvailable !== undefined ? `min available ${spec.minAvailable}` : spec.maxUnavailable !== undefined ? `max unavailable ${spec.maxUnavailable}` : '—'
  return html`<tr data-testid="pdb-row" data-name=${pdb.metadata.name}>
    <th scope="row">${pdb.metadata.name}</th>
    <td>${pdb.metadata.namespace}</td>
    <td>${budget}</td>
    <td>${selectorText(spec.selector)}</td>
    <td data-testid="allowed"><${Badge} state=${n(s.disruptionsAllowed) > 0 ? 'ready' : 'warning'} label=${String(n(s.disruptionsAllowed))} /></td>
    <td>${n(s.currentHealthy)} / ${n(s.desiredHealthy)} (of ${n(s.expectedPods)})</td>
    <td>${age(pdb.metadata.creationTimestamp, now)}</td>
  </tr>`
}

export function SetsSection () {
  const now = useNow(5000)
  const daemonSets = useFollow('/apis/apps/v1/daemonsets')
  const statefulSets = useFollow('/apis/apps/v1/statefulsets')
  const dss = [...daemonSets.items].sort(byKey)
  const stss = [...statefulSets.items].sort(byKey)
  return html`<${ErrorNote} error=${daemonSets.error ?? statefulSets.error} />
    <${Table} caption=${`DaemonSets (${dss.length})`} head=${['Name', 'Namespace', 'Desired', 'Current', 'Ready', 'Up to date', 'Available', 'Node selector', 'Age']} empty=${daemonSets.synced && dss.length === 0 ? 'No DaemonSets.' : false}>
      ${dss.map(ds => html`<${DaemonSetRow} ds=${ds} now=${now} />`)}
    <//>
    <${Table} caption=${`StatefulSets (${stss.length})`} head=${['Name', 'Namespace', 'Ready', 'Current', 'Updated', 'Service', 'Age']} empty=${statefulSets.synced && stss.length === 0 ? 'No StatefulSets.' : false}>
      ${stss.map(sts => html`<${StatefulSetRow} sts=${sts} now=${now} />`)}
    <//>`
}

export function BudgetsSection () {
  const now = useNow(5000)
  const budgets = useFollow('/apis/policy/v1/poddisruptionbudgets')
  const pdbs = [...budgets.items].sort(byKey)
  return html`<${ErrorNote} error=${budgets.error} />
    <${Table} caption=${`PodDisruptionBudgets (${pdbs.length})`} head=${['Name', 'Namespace', 'Budget', 'Selector', 'Allowed disruptions', 'Healthy / desired', 'Age']} empty=${budgets.synced && pdbs.length === 0 ? 'No PodDisruptionBudgets: drains evict freely.' : false}>
      ${pdbs.map(pdb => html`<${PdbRow} pdb=${pdb} now=${now} />`)}
    <//>`
}
