// The UI's entry: sign-in with the API token, the page's frame (cluster
// bar, navigation, main area) and the views, picked by the URL's hash
// (#/cluster, #/nodes, #/workloads, #/pods, #/services, #/events, #/apply).
// May import: preact, preact/hooks, ./api.js, ./ui.js and the view modules.
import { render } from 'preact'
import { useEffect, useRef, useState } from 'preact/hooks'
import { ApiError, saveToken, session, signIn, stopAll } from './api.js'
import { ApplyView } from './apply.js'
import { ClusterBar, ClusterView, clearHistory, useCluster } from './cluster.js'
import { EventsView } from './events.js'
import { NodesView } from './nodes.js'
import { PodsView } from './pods.js'
import { ServicesView } from './services.js'
import { html } from './ui.js'
import { WorkloadsView } from './workloads.js'

const VIEWS = [
  { id: 'cluster', title: 'Cluster', view: ClusterView },
  { id: 'nodes', title: 'Nodes', view: NodesView },
  { id: 'workloads', title: 'Workloads', view: WorkloadsView },
  { id: 'pods', title: 'Pods', view: PodsView },
  { id: 'services', title: 'Services', view: ServicesView },
  { id: 'events', title: 'Events', view: EventsView },
  { id: 'apply', title: 'Apply', view: ApplyView }
]

/** The route in the hash: a view id and its query (#/pods?ns=default&pod=web-1). */
function parseHash () {
  const [path = '', query = ''] = location.hash.replace(/^#\/?/, '').split('?')
  const view = VIEWS.find(v => v.id === path) ?? VIEWS[0]
  return { view, params: new URLSearchParams(query) }
}

function useRoute () {
  const [route, setRoute] = useState(parseHash())
  useEffect(() => {
    const on = () => setRoute(parseHash())
    addEventListener('hashchange', on)
    return () => removeEventListener('hashchange', on)
  }, [])
  return route
}

function SignIn ({ onSignedIn, notice }) {
  const [token, setToken] = useState('')
  const [error, setError] = useState(notice)
  const [busy, setBusy] = useState(false)
  const submit = async (/** @type {Event} */ e) => {
    e.preventDefault()
    const t = token.trim()
    if (t === '') { setError('Paste the cluster\'s API token.'); return }
    setBusy(true)
    setError(undefined)
    try {
      const role = await signIn(t)
      saveToken(t)
      onSignedIn(role)
    } catch (err) {
      setError(err instanceof ApiError && err.code === 401
        ? 'Wrong token: this cluster does not accept it. Use the contents of admin.token (or viewer.token for read-only access) from a peer\'s data directory.'
        : err instanceof ApiError ? `The peer refused: ${err.message}` : 'Cannot reach this peer\'s API.')
    } finally {
      setBusy(false)
    }
  }
  return html`<main id="main" class="signin">
    <h1>Shoal</h1>
    <form onSubmit=${submit} aria-describedby="signin-help">
      <label for="token">API token</label>
      <input id="token" name="token" type="password" autocomplete="off" spellcheck="false" required
        value=${token} onInput=${e => setToken(e.currentTarget.value)} aria-invalid=${error !== undefined ? 'true' : 'false'} aria-describedby="signin-error" />
      <p id="signin-help" class="muted">The token is in <code>admin.token</code> or, for read-only access, <code>viewer.token</code> in a peer's data directory. It stays in this tab only.</p>
      <button type="submit" disabled=${busy}>${busy ? 'Signing in…' : 'Sign in'}</button>
      <p id="signin-error" class="error" role="alert">${error ?? ''}</p>
    </form>
  </main>`
}

function Shell ({ role, onSignOut }) {
  const cluster = useCluster()
  const { view, params } = useRoute()
  const main = useRef(null)
  const View = view.view
  useEffect(() => { document.title = `${view.title} · Shoal` }, [view])
  return html`<a class="skip" href="#main" onClick=${e => { e.preventDefault(); main.current?.focus() }}>Skip to content</a>
    <header class="top">
      <div class="brand"><span class="logo" aria-hidden="true">◆</span> Shoal</div>
      <${ClusterBar} cluster=${cluster} />
      <div class="session">
        <span class=${`badge badge-role-${role}`} data-testid="role">${role === 'admin' ? 'admin' : 'read-only'}</span>
        <button type="button" class="secondary" onClick=${onSignOut}>Sign out</button>
      </div>
    </header>
    <nav aria-label="Views">
      <ul>${VIEWS.map(v => html`<li><a href=${`#/${v.id}`} aria-current=${v === view ? 'page' : undefined}>${v.title}</a></li>`)}</ul>
    </nav>
    <main id="main" tabindex="-1" ref=${main}>
      ${role === 'viewer' ? html`<p class="notice">Signed in with the read-only token: you see everything, and every action is disabled.</p>` : null}
      <${View} cluster=${cluster} params=${params} />
    </main>`
}

function App () {
  const [role, setRole] = useState(/** @type {'admin' | 'viewer' | undefined} */ (undefined))
  const [checking, setChecking] = useState(session.token !== '')
  const [notice, setNotice] = useState(/** @type {string | undefined} */ (undefined))

  const signOut = (/** @type {string | undefined} */ why) => {
    stopAll()
    saveToken('')
    clearHistory()
    session.role = undefined
    setRole(undefined)
    setNotice(why)
  }
  session.onRejected = message => { if (session.role !== undefined) signOut(`Signed out: the API no longer accepts this token (${message}).`) }

  useEffect(() => {
    if (session.token === '') return
    signIn(session.token).then(r => { session.role = r; setRole(r) }, () => { saveToken('') }).finally(() => setChecking(false))
  }, [])

  if (checking) return html`<main id="main" class="signin"><p>Signing in…</p></main>`
  if (role === undefined) return html`<${SignIn} notice=${notice} onSignedIn=${r => { session.role = r; setNotice(undefined); setRole(r) }} />`
  return html`<${Shell} role=${role} onSignOut=${() => signOut(undefined)} />`
}

render(html`<${App} />`, document.getElementById('app'))
