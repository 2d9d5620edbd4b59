// The Apply view: YAML or JSON manifests (several documents, `---`
// between them, or a List) pasted into an editor, parsed in the browser by
// the yaml package (loaded only when this view opens) and applied one
// document at a time as a server-side apply (PATCH with
// application/apply-patch+yaml, field manager shoal-ui, force), which
// creates what is absent and updates what exists. The REST path of each
// kind comes from the API's discovery. The server's Status message is shown
// next to the document it refused.
// May import: preact/hooks, yaml (the vendored browser build), ./api.js, ./ui.js.
import { useState } from 'preact/hooks'
import { APPLY_PATCH, ApiError, call, request } from './api.js'
import { ErrorNote, READ_ONLY, canWrite, html } from './ui.js'

const FIELD_MANAGER = 'shoal-ui'

const EXAMPLE = `apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: default
spec:
  replicas: 2
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
      - name: web
        image: busybox
        command: ["sh", "-c", "echo hello from $POD_NAME; exec sleep 3600"]
`

/** @type {Promise<Map<string, { plural: string, namespaced: boolean, base: string }>> | undefined} */
let resources

/** apiVersion/kind → REST path pieces, from /api/v1 and every group's preferred version. */
function discover () {
  resources ??= (async () => {
    const map = new Map()
    const add = async (/** @type {string} */ gv, /** @type {string} */ base) => {
      const list = await request('GET', base)
      for (const r of list.resources ?? []) {
        if (!r.name.includes('/')) map.set(`${gv}/${r.kind}`, { plural: r.name, namespaced: r.namespaced, base })
      }
    }
    const groups = await request('GET', '/apis')
    await Promise.all([
      add('v1', '/api/v1'),
      ...(groups.groups ?? []).map(g => add(g.preferredVersion.groupVersion, `/apis/${g.preferredVersion.groupVersion}`))
    ])
    return map
  })()
  resources.catch(() => { resources = undefined })
  return resources
}

/** The objects in the editor's text, or the first parse error with its line. */
async function parseManifests (/** @type {string} */ text) {
  const { parseAllDocuments } = await import('yaml')
  const objects = []
  let i = 0
  for (const doc of parseAllDocuments(text)) {
    i++
    const err = doc.errors[0]
    if (err !== undefined) throw new Error(`document ${i}${err.linePos?.[0] ? `, line ${err.linePos[0].line}` : ''}: ${err.message.split('\n')[0]}`)
    const obj = doc.toJS()
    if (obj === null || obj === undefined) continue
    if (typeof obj !== 'object' || Array.isArray(obj)) throw new Error(`document ${i} is not an object`)
    if (typeof obj.kind === 'string' && obj.kind.endsWith('List') && Array.isArray(obj.items)) objects.push(...obj.items)
    else objects.push(obj)
  }
  return objects
}

/** Applies one object; resolves to the line to show, rejects with the server's message. */
async function applyOne (/** @type {any} */ obj, /** @type {string} */ defaultNs) {
  const name = obj.metadata?.name
  if (typeof obj.apiVersion !== 'string' || typeof obj.kind !== 'string') throw new Error('apiVersion and kind are required')
  if (typeof name !== 'string' || name === '') throw new Error('metadata.name is required')
  const r = (await discover()).get(`${obj.apiVersion}/${obj.kind}`)
  if (r === undefined) throw new Error(`this cluster does not serve ${obj.kind} in ${obj.apiVersion}`)
  let path = r.base
  if (r.namespaced) {
    const ns = obj.metadata.namespace ?? defaultNs
    path += `/namespaces/${encodeURIComponent(ns)}`
  }
  path += `/${r.plural}/${encodeURIComponent(name)}?fieldManager=${FIELD_MANAGER}&force=true`
  const res = await call('PATCH', path, { body: obj, contentType: APPLY_PATCH })
  const group = obj.apiVersion.includes('/') ? `.${obj.apiVersion.split('/')[0]}` : ''
  return `${obj.kind.toLowerCase()}${group}/${name} ${res.status === 201 ? 'created' : 'configured'}`
}

export function ApplyView () {
  const [text, setText] = useState(EXAMPLE)
  const [ns, setNs] = useState('default')
  const [busy, setBusy] = useState(false)
  const [parseError, setParseError] = useState(/** @type {string | undefined} */ (undefined))
  const [results, setResults] = useState(/** @type {Array<{ ok: boolean, line: string }>} */ ([]))
  const apply = async (/** @type {Event} */ e) => {
    e.preventDefault()
    setBusy(true)
    setParseError(undefined)
    setResults([])
    try {
      const objects = await parseManifests(text)
      if (objects.length === 0) throw new Error('there is nothing to apply')
      const out = []
      for (const obj of objects) {
        const what = `${obj?.kind ?? 'object'} ${obj?.metadata?.name ?? '(no name)'}`
        try {
          out.push({ ok: true, line: await applyOne(obj, ns.trim() || 'default') })
        } catch (err) {
          out.push({ ok: false, line: `${what}: ${err instanceof ApiError ? `${err.message} (${err.code})` : err.message}` })
        }
        setResults([...out])
      }
    } catch (err) {
      setParseError(`Not applied: ${err.message}`)
    } finally {
      setBusy(false)
    }
  }
  const disabled = !canWrite() || busy
  return html`<section aria-labelledby="apply-h">
    <h1 id="apply-h">Apply</h1>
    <form class="apply" onSubmit=${apply}>
      <label for="manifest">Manifests (YAML or JSON; separate documents with <code>---</code>)</label>
      <textarea id="manifest" rows="18" spellcheck="false" autocapitalize="off" value=${text} onInput=${e => setText(e.currentTarget.value)} aria-describedby="apply-help"></textarea>
      <p id="apply-help" class="muted">Each object is created if it is absent and updated if it exists (server-side apply as <code>${FIELD_MANAGER}</code>).</p>
      <label for="apply-ns">Namespace for objects that name none</label>
      <input id="apply-ns" type="text" value=${ns} onInput=${e => setNs(e.currentTarget.value)} spellcheck="false" />
      <div><button type="submit" disabled=${disabled} title=${canWrite() ? undefined : READ_ONLY}>${busy ? 'Applying…' : 'Apply'}</button></div>
    </form>
    <${ErrorNote} error=${parseError} />
    ${results.length > 0 ? html`<ul class="results" aria-live="polite" data-testid="apply-results">
      ${results.map(r => html`<li class=${r.ok ? 'ok' : 'error'}>${r.ok ? '✓ ' : '✗ '}${r.line}</li>`)}
    </ul>` : null}
  </section>`
}
