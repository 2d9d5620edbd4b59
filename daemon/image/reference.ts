// Image references as Docker reads them: `busybox`, `user/app:1.0`,
// `host:5000/path/app@sha256:…`. The first component names a registry only
// when it holds a `.` or a `:` or is `localhost`; otherwise the image is on
// Docker Hub, whose single-component names live under `library/`. Pure
// functions: the grammar is distribution's reference/regexp.go, less the
// IPv6 hosts and digest algorithms other than sha256 (the only one the
// content store verifies).
// May import: libraries (tar-stream) and `node:` built-ins only.

/** Docker Hub's canonical name, and the host that serves its API. */
export const DOCKER_HUB = 'docker.io'
export const DOCKER_HUB_API = 'registry-1.docker.io'

export interface ImageReference {
  /** `docker.io`, `quay.io`, `127.0.0.1:5000`: the name credentials are looked up by. */
  registry: string
  /** The host (and port) the distribution API is served on; Docker Hub's differs from its name. */
  apiHost: string
  /** `library/busybox`, `team/app`. */
  repository: string
  /** Absent only when the reference names a digest alone. */
  tag?: string
  /** `sha256:<64 hex>`; when present it, not the tag, is what is pulled. */
  digest?: string
}

export class InvalidReferenceError extends Error {
  override name = 'InvalidReferenceError'
}

const COMPONENT = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/
const DOMAIN_PART = '(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])'
const DOMAIN = new RegExp(`^${DOMAIN_PART}(?:\\.${DOMAIN_PART})*(?::[0-9]+)?$`)
const TAG = /^[\w][\w.-]{0,127}$/
export const DIGEST = /^sha256:[0-9a-f]{64}$/
const MAX_NAME = 255

/** Parses `text` with Docker's defaults (Docker Hub, `library/`, `latest`), or throws InvalidReferenceError. */
export function parseReference (text: string): ImageReference {
  const bad = (why: string): never => { throw new InvalidReferenceError(`invalid image reference ${JSON.stringify(text)}: ${why}`) }
  if (text.length === 0) bad('it is empty')
  if (text !== text.trim()) bad('it has leading or trailing spaces')

  let rest = text
  let digest: string | undefined
  const at = rest.indexOf('@')
  if (at >= 0) {
    digest = rest.slice(at + 1)
    rest = rest.slice(0, at)
    if (!DIGEST.test(digest)) bad('a digest must be sha256: and 64 lowercase hex digits')
  }
  let tag: string | undefined
  const colon = rest.lastIndexOf(':')
  // A colon after the last slash starts the tag; before it, it is a registry's port.
  if (colon > rest.lastIndexOf('/')) {
    tag = rest.slice(colon + 1)
    rest = rest.slice(0, colon)
    if (!TAG.test(tag)) bad(`tag ${JSON.stringify(tag)} is not 1 to 128 letters, digits, _, . or - (not starting with . or -)`)
  }
  if (rest.length === 0) bad('it has no repository name')

  const slash = rest.indexOf('/')
  const first = slash < 0 ? '' : rest.slice(0, slash)
  let registry = DOCKER_HUB
  let path = rest
  if (slash >= 0 && (first.includes('.') || first.includes(':') || first === 'localhost')) {
    if (!DOMAIN.test(first)) bad(`${JSON.stringify(first)} is not a registry host[:port]`)
    registry = first === 'index.docker.io' ? DOCKER_HUB : first
    path = rest.slice(slash + 1)
  }
  if (path.length > MAX_NAME) bad(`the repository name is longer than ${MAX_NAME} characters`)
  const components = path.split('/')
  for (const c of components) {
    if (c.length === 0) bad('the repository name has an empty component')
    if (c !== c.toLowerCase() && COMPONENT.test(c.toLowerCase())) bad('the repository name must be lowercase')
    if (!COMPONENT.test(c)) bad(`${JSON.stringify(c)} is not a repository name component (lowercase letters and digits, separated by ., _, __ or -)`)
  }
  if (registry === DOCKER_HUB && components.length === 1) path = `library/${path}`

  const ref: ImageReference = { registry, apiHost: registry === DOCKER_HUB ? DOCKER_HUB_API : registry, repository: path }
  if (digest !== undefined) ref.digest = digest
  if (tag !== undefined) ref.tag = tag
  else if (digest === undefined) ref.tag = 'latest'
  return ref
}

/** The fully qualified form: `docker.io/library/busybox:latest`, `host/app@sha256:…`. */
export function formatReference (ref: ImageReference): string {
  return `${ref.registry}/${ref.repository}${ref.tag !== undefined ? `:${ref.tag}` : ''}${ref.digest !== undefined ? `@${ref.digest}` : ''}`
}

/** What the manifest is fetched by: the digest when there is one, else the tag. */
export function manifestSelector (ref: ImageReference): string {
  return ref.digest ?? ref.tag ?? 'latest'
}
