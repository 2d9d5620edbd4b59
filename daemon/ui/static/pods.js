// The Pods view: every pod with phase, node, address, restarts and age,
// filtered by namespace (here) and label selector (by the server); and one
// pod's page: its containers, its log followed live (a streamed
// `log?follow=true` answer), its Events (a watch with a field selector) and
// delete.
// May import: preact/hooks, ./api.js, ./ui.js.
import { useEffect, useRef, useState } from 'preact/hooks'
import { request, streamText } from './api.js'
import { Badge, ErrorNote, READ_ONLY, Table, age, canWrite, clock, html, useAction, useFollow, useNow } from './ui.js'

const LOG_KEEP = 256 * 1024

const restarts = (/** @type {any} */ p) => (p.status?.containerStatuses ?? []).reduce((s, c) => s + (c.restartCount ?? 0), 0)

/** The phase, or why a pod is not running (CrashLoopBackOff, Terminating), as kubectl shows it. */
export function podStatus (/** @type {any} */ p) {
  if (p.metadata.deletionTimestamp !== undefined) return 'Terminating'
  for (const c of p.status?.containerStatuses ?? []) {
    const reason = c.state?.waiting?.reason ?? c.state?.terminated?.reason
    if (reason !== undefined && reason !== 'Completed' && p.status?.phase !== 'Succeeded') return reason
  }
  return p.status?.phase ?? 'Pending'
}

const podHash = (/** @type {string} */ ns, /** @type {string} */ name, /** @type {URLSearchParams} */ params) => {
  const q = new URLSearchParams(params)
  q.set('pod', `${ns}/${name}`)
  return `#/pods?${q}`
}

function Logs ({ pod }) {
  const containers = (pod.spec?.containers ?? []).map(c => c.name)
  const [container, setContainer] = useState(containers[0])
  const [text, setText] = useState('')
  const [phase, setPhase] = useState('following')
  const [error, setError] = useState(/** @type {string | undefined} */ (undefined))
  const [round, setRound] = useState(0)
  const pre = useRef(/** @type {HTMLPreElement | null} */ (null))
  const base = `/api/v1/namespaces/${encodeURIComponent(pod.metadata.namespace)}/pods/${encodeURIComponent(pod.metadata.name)}/log`
  useEffect(() => {
    const controller = new AbortController()
    setText('')
    setError(undefined)
    setPhase('following')
    let buffered = ''
    const q = new URLSearchParams({ follow: 'true', tailLines: '1000', ...(container !== undefined ? { container } : {}) })
    streamText(`${base}?${q}`, chunk => {
      buffered = (buffered + chunk).slice(-LOG_KEEP)
      setText(buffered)
    }, controller.signal).then(
      () => setPhase('ended'),
      err => { if (!controller.signal.aborted) { setError(err.message); setPhase('ended') } })
    return () => controller.abort()
  }, [base, container, round])
  useEffect(() => {
    const el = pre.current
    if (el !== null) el.scrollTop = el.scrollHeight
  }, [text])
  return html`<section aria-labelledby="logs-h">
    <h2 id="logs-h">Logs</h2>
    <div class="toolbar">
      ${containers.length > 1 ? html`<label>Container <select value=${container} onChange=${e => setContainer(e.currentTarget.value)}>
        ${containers.map(c => html`<option value=${c}>${c}</option>`)}</select></label>` : null}
      <span role="status">${phase === 'following' ? 'Following live…' : 'The log stream ended.'}</span>
      ${phase === 'ended' ? html`<button type="button" class="secondary" onClick=${() => setRound(round + 1)}>Follow again</button>` : null}
    </div>
    <${ErrorNote} error=${error} />
    <pre class="logs" ref=${pre} tabindex="0" aria-label=${`Log of ${pod.metadata.name}`} data-testid="logs">${text}</pre>
  </section>`
}

function PodEvents ({ pod }) {
  const q = new URLSearchParams({ fieldSelector: `involvedObject.name=${pod.metadata.name}` })
  const events = useFollow(`/api/v1/namespaces/${encodeURIComponent(pod.metadata.namespace)}/events?${q}`)
  const sorted = [...events.items].sort((a, b) => (b.lastTimestamp ?? '').localeCompare(a.lastTimestamp ?? ''))
  return html`<${ErrorNote} error=${events.error} />
    <${Table} caption="Events" head=${['Last seen', 'Type', 'Reason', 'Message', 'Count']} empty=${events.synced && sorted.length === 0 ? 'No events.' : false}>
      ${sorted.map(e => html`<tr>
        <td>${e.lastTimestamp ? clock(e.lastTimestamp) : '—'}</td>
        <td><${Badge} state=${e.type === 'Warning' ? 'warning' : 'normal'} label=${e.type ?? 'Normal'} /></td>
        <th scope="row">${e.reason}</th>
        <td>${e.message}</td>
        <td>${e.count ?? 1}</td>
      </tr>`)}
    <//>`
}

function DeleteButton ({ pod, onDeleted }) {
  const [confirming, setConfirming] = useState(false)
  const action = useAction()
  const path = `/api/v1/namespaces/${encodeURIComponent(pod.metadata.namespace)}/pods/${encodeURIComponent(pod.metadata.name)}`
  const title = canWrite() ? undefined : READ_ONLY
  if (!confirming) {
    return html`<button type="button" class="danger" disabled=${!canWrite()} title=${title} onClick=${() => setConfirming(true)}>Delete pod</button>`
  }
  return html`<span class="confirm">Delete ${pod.metadata.name}?
    <button type="button" class="danger" disabled=${!canWrite() || action.busy} onClick=${() => action.run(async () => { await request('DELETE', path); onDeleted() })}>Yes, delete</button>
    <button type="button" class="secondary" onClick=${() => setConfirming(false)}>Cancel</button>
    <${ErrorNote} error=${action.error} /></span>`
}

function PodPage ({ ns, name, pods, params }) {
  const pod = pods.items.find(p => p.metadata.namespace === ns && p.metadata.name === name)
  const back = new URLSearchParams(params)
  back.delete('pod')
  const backHref = `#/pods${back.size > 0 ? `?${back}` : ''}`
  if (pod === undefined) {
    return html`<section><h1>Pod ${name}</h1><p>${pods.synced ? 'This pod does not exist (any more).' : 'Loading…'}</p><a href=${backHref}>Back to the pods</a></section>`
  }
  return html`<section aria-labelledby="pod-h" data-testid="pod-page">
    <p><a href=${backHref}>← All pods</a></p>
    <h1 id="pod-h">Pod ${pod.metadata.name}</h1>
    <dl class="facts">
      <div><dt>Namespace</dt><dd>${pod.metadata.namespace}</dd></div>
      <div><dt>Status</dt><dd><${Badge} state=${podStatus(pod)} /></dd></div>
      <div><dt>Node</dt><dd>${pod.spec?.nodeName ?? '—'}</dd></div>
      <div><dt>Address</dt><dd>${pod.status?.podIP ?? '—'}</dd></div>
      <div><dt>Restarts</dt><dd>${restarts(pod)}</dd></div>
      <div><dt>Images</dt><dd>${(pod.spec?.containers ?? []).map(c => c.image).join(', ')}</dd></div>
    </dl>
    <${DeleteButton} pod=${pod} onDeleted=${() => { location.hash = backHref }} />
    <${Logs} pod=${pod} key=${pod.metadata.uid} />
    <h2>Events</h2>
    <${PodEvents} pod=${pod} />
  </section>`
}

export function PodsView ({ params }) {
  const now = useNow()
  const selector = params.get('selector') ?? ''
  const ns = params.get('ns') ?? ''
  const pods = useFollow(`/api/v1/pods${selector !== '' ? `?labelSelector=${encodeURIComponent(selector)}` : ''}`)
  const setParam = (/** @type {string} */ k, /** @type {string} */ v) => {
    const q = new URLSearchParams(params)
    if (v === '') q.delete(k)
    else q.set(k, v)
    location.hash = `#/pods${q.size > 0 ? `?${q}` : ''}`
  }
  const open = params.get('pod')
  if (open !== null) {
    const [podNs = '', podName = ''] = open.split('/')
    return html`<${PodPage} ns=${podNs} name=${podName} pods=${pods} params=${params} />`
  }
  const namespaces = [...new Set(pods.items.map(p => p.metadata.namespace))].sort()
  const shown = pods.items.filter(p => ns === '' || p.metadata.namespace === ns)
    .sort((a, b) => `${a.metadata.namespace}/${a.metadata.name}`.localeCompare(`${b.metadata.namespace}/${b.metadata.name}`))
  return html`<section aria-labelledby="pods-h">
    <h1 id="pods-h">Pods</h1>
    <form class="filters" key=${selector} onSubmit=${e => { e.preventDefault(); setParam('selector', String(new FormData(e.currentTarget).get('selector') ?? '').trim()) }}>
      <label>Namespace
        <select value=${ns} onChange=${e => setParam('ns', e.currentTarget.value)}>
          <option value="">all</option>
          ${[...new Set([...namespaces, ...(ns !== '' ? [ns] : [])])].map(n => html`<option value=${n}>${n}</option>`)}
        </select>
      </label>
      <label>Label selector
        <input type="text" name="selector" placeholder="app=web,tier!=db" defaultValue=${selector} spellcheck="false" />
      </label>
      <button type="submit" class="secondary">Filter</button>
    </form>
    <${ErrorNote} error=${pods.error} />
    <${Table} caption=${`Pods (${shown.length})`} head=${['Name', 'Namespace', 'Status', 'Node', 'Address', 'Restarts', 'Age']} empty=${pods.synced && shown.length === 0 ? 'No pods match.' : false}>
      ${shown.map(p => html`<tr data-testid="pod-row" data-name=${p.metadata.name} data-phase=${p.status?.phase ?? 'Pending'}>
        <th scope="row"><a href=${podHash(p.metadata.namespace, p.metadata.name, params)}>${p.metadata.name}</a></th>
        <td>${p.metadata.namespace}</td>
        <td><${Badge} state=${podStatus(p)} /></td>
        <td>${p.spec?.nodeName ?? '—'}</td>
        <td>${p.status?.podIP ?? '—'}</td>
        <td>${restarts(p)}</td>
        <td>${age(p.metadata.creationTimestamp, now)}</td>
      </tr>`)}
    <//>
  </section>`
}
