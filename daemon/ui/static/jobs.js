// The Workloads view's Jobs and CronJobs: each Job's status (as kubectl's
// STATUS column words it), its completions as a progress bar and N/M, and
// its duration; each CronJob's schedule and time zone, whether it is
// suspended, its active Jobs, its last schedule and its next run (./cron.js).
// Both from watches.
// May import: ./ui.js, ./cron.js.
import { nextRun } from './cron.js'
import { Badge, ErrorNote, Table, age, clock, html, useFollow, useNow } from './ui.js'

const n = (/** @type {unknown} */ v) => typeof v === 'number' ? v : 0
const byKey = (a, b) => `${a.metadata.namespace}/${a.metadata.name}`.localeCompare(`${b.metadata.namespace}/${b.metadata.name}`)

/** kubectl's STATUS of a Job (protocol/k8s-columns.ts jobStatus). */
export function jobStatus (/** @type {any} */ j) {
  const has = (/** @type {string} */ type) => (j.status?.conditions ?? []).some(c => c.type === type && c.status === 'True')
  for (const type of ['Complete', 'Failed']) if (has(type)) return type
  if (j.metadata.deletionTimestamp !== undefined) return 'Terminating'
  for (const type of ['FailureTarget', 'Suspended', 'SuccessCriteriaMet']) if (has(type)) return type
  return 'Running'
}

/** Start to completion, or to now while the Job runs; '—' before it starts. */
function duration (/** @type {any} */ j, /** @type {number} */ now) {
  const start = j.status?.startTime
  if (start === undefined) return '—'
  const end = j.status?.completionTime !== undefined ? Date.parse(j.status.completionTime) : now
  return age(start, end)
}

function Completions ({ j }) {
  const succeeded = n(j.status?.succeeded)
  const want = j.spec?.completions
  if (typeof want !== 'number') return html`<span data-testid="completions">${succeeded}/1${n(j.spec?.parallelism) > 1 ? ` of ${j.spec.parallelism}` : ''}</span>`
  return html`<span class="usage">
    <progress value=${Math.min(succeeded, want)} max=${Math.max(want, 1)} aria-label=${`Completions of ${j.metadata.name}`}></progress>
    <span data-testid="completions">${succeeded}/${want}</span>
  </span>`
}

function JobRow ({ j, now }) {
  const status = jobStatus(j)
  const badge = status === 'Complete' ? 'done' : status === 'Failed' ? 'failed' : status === 'Running' ? 'progressing' : status
  return html`<tr data-testid="job-row" data-name=${j.metadata.name}>
    <th scope="row">${j.metadata.name}</th>
    <td>${j.metadata.namespace}</td>
    <td data-testid="status"><${Badge} state=${badge} label=${status} /></td>
    <td><${Completions} j=${j} /></td>
    <td>${n(j.status?.active)} active, ${n(j.status?.failed)} failed</td>
    <td data-testid="duration">${duration(j, now)}</td>
    <td>${age(j.metadata.creationTimestamp, now)}</td>
  </tr>`
}

/** When a CronJob runs next: `in 4m (12:05:00)`, or why it does not. */
function NextRun ({ cj, now }) {
  if (cj.spec?.suspend === true) return html`<span class="muted">suspended</span>`
  const next = nextRun(cj.spec?.schedule, cj.spec?.timeZone, now)
  if (next === undefined) return html`<span class="muted">—</span>`
  return html`<time datetime=${new Date(next).toISOString()} title=${new Date(next).toString()}>in ${age(new Date(now).toISOString(), next)} (${clock(next)})</time>`
}

function CronJobRow ({ cj, now }) {
  const last = cj.status?.lastScheduleTime
  return html`<tr data-testid="cronjob-row" data-name=${cj.metadata.name}>
    <th scope="row">${cj.metadata.name}</th>
    <td>${cj.metadata.namespace}</td>
    <td><code data-testid="schedule">${cj.spec?.schedule}</code>${cj.spec?.timeZone !== undefined ? html` <span class="muted">${cj.spec.timeZone}</span>` : ''}</td>
    <td>${cj.spec?.suspend === true ? html`<${Badge} state="suspended" label="Suspended" />` : 'No'}</td>
    <td>${(cj.status?.active ?? []).length}</td>
    <td>${last === undefined ? 'never' : html`<time datetime=${last}>${age(last, now)} ago</time>`}</td>
    <td data-testid="next-run"><${NextRun} cj=${cj} now=${now} /></td>
    <td>${age(cj.metadata.creationTimestamp, now)}</td>
  </tr>`
}

export function JobsSection () {
  const now = useNow(5000)
  const jobs = useFollow('/apis/batch/v1/jobs')
  const cronJobs = useFollow('/apis/batch/v1/cronjobs')
  const js = [...jobs.items].sort(byKey)
  const cjs = [...cronJobs.items].sort(byKey)
  return html`<${ErrorNote} error=${jobs.error ?? cronJobs.error} />
    <${Table} caption=${`CronJobs (${cjs.length})`} head=${['Name', 'Namespace', 'Schedule', 'Suspended', 'Active', 'Last schedule', 'Next run', 'Age']} empty=${cronJobs.synced && cjs.length === 0 ? 'No CronJobs.' : false}>
      ${cjs.map(cj => html`<${CronJobRow} cj=${cj} now=${now} />`)}
    <//>
    <${Table} caption=${`Jobs (${js.length})`} head=${['Name', 'Namespace', 'Status', 'Completions', 'Pods', 'Duration', 'Age']} empty=${jobs.synced && js.length === 0 ? 'No Jobs: apply one from the Apply view.' : false}>
      ${js.map(j => html`<${JobRow} j=${j} now=${now} />`)}
    <//>`
}
