// The UI's side of the API: the bearer token (kept in sessionStorage), the
// token's role, requests whose Kubernetes Status errors become readable
// messages, list-then-watch informers over `?watch=1` streams (shared by
// path, resumed from the last resourceVersion, relisted on 410 Gone), and
// streamed text (followed logs). Only same-origin requests.
// May import: nothing (the browser's fetch and streams).

const TOKEN_KEY = 'shoal.token'

export const session = {
  token: sessionStorage.getItem(TOKEN_KEY) ?? '',
  /** @type {'admin' | 'viewer' | undefined} */
  role: undefined,
  /** called when the API rejects the token mid-session */
  onRejected: (/** @type {string} */ _message) => {}
}

export function saveToken (/** @type {string} */ token) {
  session.token = token
  if (token === '') sessionStorage.removeItem(TOKEN_KEY)
  else sessionStorage.setItem(TOKEN_KEY, token)
}

export class ApiError extends Error {
  /** @param {number} code @param {string} reason @param {string} message */
  constructor (code, reason, message) {
    super(message)
    this.name = 'ApiError'
    this.code = code
    this.reason = reason
  }
}

const sleep = (/** @type {number} */ ms) => new Promise(resolve => setTimeout(resolve, ms))

function headers (/** @type {Record<string, string>} */ extra = {}) {
  return { authorization: `Bearer ${session.token}`, ...extra }
}

/** A failed response as an ApiError carrying the server's Status message. */
async function errorOf (/** @type {Response} */ res, reportRejection = true) {
  const text = await res.text().catch(() => '')
  let message = text.trim() || res.statusText
  let reason = ''
  try {
    const status = JSON.parse(text)
    if (typeof status.message === 'string') message = status.message
    if (typeof status.reason === 'string') reason = status.reason
  } catch { /* not a Status */ }
  if (res.status === 401 && reportRejection) session.onRejected(message)
  return new ApiError(res.status, reason, message)
}

/**
 * One API call; resolves to the parsed JSON answer (or text), rejects with
 * an ApiError for any status outside 2xx and a TypeError when the peer is
 * unreachable.
 * @param {string} method @param {string} path
 * @param {{ body?: unknown, contentType?: string, signal?: AbortSignal, token?: string }} [opts]
 */
export async function request (method, path, opts = {}) {
  return (await call(method, path, opts)).body
}

/**
 * As request, with the answer's status code too (201 Created or 200).
 * @param {string} method @param {string} path
 * @param {{ body?: unknown, contentType?: string, signal?: AbortSignal, token?: string }} [opts]
 * @returns {Promise<{ status: number, body: any }>}
 */
export async function call (method, path, opts = {}) {
  const init = {
    method,
    headers: { authorization: `Bearer ${opts.token ?? session.token}`, ...(opts.body !== undefined ? { 'content-type': opts.contentType ?? 'application/json' } : {}) },
    ...(opts.body !== undefined ? { body: typeof opts.body === 'string' ? opts.body : JSON.stringify(opts.body) } : {}),
    ...(opts.signal !== undefined ? { signal: opts.signal } : {})
  }
  const res = await fetch(path, init)
  if (!res.ok) throw await errorOf(res, opts.token === undefined)
  const text = await res.text()
  try { return { status: res.status, body: JSON.parse(text) } } catch { return { status: res.status, body: text } }
}

export const MERGE_PATCH = 'application/merge-patch+json'
export const APPLY_PATCH = 'application/apply-patch+yaml'

/**
 * Checks a token and finds its role. GET /shoal/v1/whoami answers it where
 * the API has it; otherwise a PATCH with a media type no PATCH accepts
 * tells the two apart without changing anything: the read-only token gets
 * 403 before the body is looked at, the admin token 415.
 * @param {string} token @returns {Promise<'admin' | 'viewer'>}
 */
export async function signIn (token) {
  await request('GET', '/shoal/v1/members', { token })
  try {
    const who = await request('GET', '/shoal/v1/whoami', { token })
    if (who?.role === 'admin' || who?.role === 'viewer') return who.role
  } catch (err) {
    if (!(err instanceof ApiError) || err.code === 401) throw err
  }
  try {
    await request('PATCH', '/api/v1/namespaces/default?dryRun=All', { token, body: '{}', contentType: 'text/plain' })
    return 'admin'
  } catch (err) {
    if (err instanceof ApiError && err.code === 403) return 'viewer'
    if (err instanceof ApiError && err.code !== 401) return 'admin'
    throw err
  }
}

/** Reads newline-delimited text from a streamed body, one callback per line. */
async function readLines (/** @type {ReadableStream<Uint8Array>} */ body, /** @type {(line: string) => boolean | void} */ onLine) {
  const reader = body.pipeThrough(new TextDecoderStream()).getReader()
  let partial = ''
  for (;;) {
    const { value, done } = await reader.read()
    if (done) return
    partial += value
    const lines = partial.split('\n')
    partial = lines.pop() ?? ''
    for (const line of lines) {
      if (line.trim() !== '' && onLine(line) === false) {
        await reader.cancel()
        return
      }
    }
  }
}

export const keyOf = (/** @type {any} */ o) => `${o.metadata.namespace ?? ''}/${o.metadata.name}`

/**
 * One collection kept current: a list, then a watch from its
 * resourceVersion, re-opened from the last event seen when the stream ends
 * or fails, and a fresh list after 410 Gone.
 */
class Informer {
  /** @param {string} path a collection path, with or without a query */
  constructor (path) {
    this.path = path
    /** @type {Map<string, any>} */
    this.items = new Map()
    /** @type {Set<(state: { items: any[], error?: string, synced: boolean }) => void>} */
    this.listeners = new Set()
    this.error = undefined
    this.synced = false
    this.controller = new AbortController()
    this.scheduled = false
    this.run()
  }

  state () {
    return { items: [...this.items.values()], error: this.error, synced: this.synced }
  }

  /** Tells the listeners, at most once per 50 ms burst. */
  emit () {
    if (this.scheduled) return
    this.scheduled = true
    setTimeout(() => {
      this.scheduled = false
      const s = this.state()
      for (const l of this.listeners) l(s)
    }, 50)
  }

  async run () {
    const signal = this.controller.signal
    let rv
    let failures = 0
    const sep = this.path.includes('?') ? '&' : '?'
    while (!signal.aborted) {
      try {
        if (rv === undefined) {
          const list = await request('GET', this.path, { signal })
          this.items = new Map(list.items.map(o => [keyOf(o), o]))
          rv = list.metadata?.resourceVersion
          this.synced = true
          this.error = undefined
          this.emit()
        }
        const res = await fetch(`${this.path}${sep}watch=1&resourceVersion=${encodeURIComponent(rv ?? '')}`, { headers: headers(), signal })
        if (res.status === 410) { rv = undefined; continue }
        if (!res.ok || res.body === null) throw await errorOf(res)
        if (this.error !== undefined) { this.error = undefined; this.emit() }
        failures = 0
        await readLines(res.body, line => {
          const e = JSON.parse(line)
          if (e.type === 'ERROR') {
            if (e.object?.code === 410) rv = undefined
            else this.error = e.object?.message ?? 'the watch failed'
            this.emit()
            return false
          }
          if (e.object?.metadata?.resourceVersion !== undefined) rv = e.object.metadata.resourceVersion
          if (e.type === 'ADDED' || e.type === 'MODIFIED') this.items.set(keyOf(e.object), e.object)
          else if (e.type === 'DELETED') this.items.delete(keyOf(e.object))
          else return
          this.emit()
        })
      } catch (err) {
        if (signal.aborted) return
        this.error = err instanceof ApiError ? err.message : 'the peer does not answer; retrying'
        if (err instanceof ApiError && err.code === 400) { this.emit(); return }
        failures++
        this.emit()
      }
      // A watch the server closed is re-opened at once; a failing one backs off.
      await sleep(failures > 0 ? Math.min(5000, 250 * 2 ** failures) : 100)
    }
  }

  stop () { this.controller.abort() }
}

/** @type {Map<string, Informer>} */
const informers = new Map()

/**
 * Follows a collection; `onChange` gets the whole current list after every
 * burst of changes. Returns the function that stops following; the stream
 * closes when its last follower stops (a browser holds only six
 * connections to a peer, so no stream stays open for nothing).
 * @param {string} path @param {(state: { items: any[], error?: string, synced: boolean }) => void} onChange
 */
export function follow (path, onChange) {
  let inf = informers.get(path)
  if (inf === undefined) {
    inf = new Informer(path)
    informers.set(path, inf)
  }
  inf.listeners.add(onChange)
  if (inf.synced || inf.error !== undefined) onChange(inf.state())
  const mine = inf
  return () => {
    mine.listeners.delete(onChange)
    if (mine.listeners.size === 0) {
      mine.stop()
      if (informers.get(path) === mine) informers.delete(path)
    }
  }
}

/** Stops every stream (sign-out). */
export function stopAll () {
  for (const inf of informers.values()) inf.stop()
  informers.clear()
}

/**
 * Streams a text response (a followed log) to `onText` until it ends or
 * `signal` aborts; rejects with an ApiError on an error status.
 * @param {string} path @param {(text: string) => void} onText @param {AbortSignal} signal
 */
export async function streamText (path, onText, signal) {
  const res = await fetch(path, { headers: headers(), signal })
  if (!res.ok || res.body === null) throw await errorOf(res)
  const reader = res.body.pipeThrough(new TextDecoderStream()).getReader()
  for (;;) {
    const { value, done } = await reader.read()
    if (done) return
    onText(value)
  }
}
