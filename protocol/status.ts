// Kubernetes Status bodies for the resource store's failures, with the codes
// and reasons Kubernetes uses, and the field errors that make up a 422.
// May import: protocol/.
import type { StatusBody } from './api.ts'
import type { ResourceType } from './k8s.ts'

export function statusOf (code: number, reason: string, message: string): StatusBody {
  return { kind: 'Status', apiVersion: 'v1', status: 'Failure', message, reason, code }
}

/** `pods` or `deployments.apps`, as Kubernetes names a resource in messages. */
export function qualifiedResource (t: ResourceType): string {
  return t.group === '' ? t.plural : `${t.plural}.${t.group}`
}

/** `Pod` or `Deployment.apps`, as Kubernetes names a kind in 422 messages. */
export function qualifiedKind (t: { kind: string, group: string }): string {
  return t.group === '' ? t.kind : `${t.kind}.${t.group}`
}

export const badRequest = (message: string): StatusBody => statusOf(400, 'BadRequest', message)
export const forbidden = (message: string): StatusBody => statusOf(403, 'Forbidden', message)
export const notFound = (t: ResourceType, name: string): StatusBody =>
  statusOf(404, 'NotFound', `${qualifiedResource(t)} "${name}" not found`)
export const alreadyExists = (t: ResourceType, name: string): StatusBody =>
  statusOf(409, 'AlreadyExists', `${qualifiedResource(t)} "${name}" already exists`)
export const conflict = (t: ResourceType, name: string, why: string): StatusBody =>
  statusOf(409, 'Conflict', `Operation cannot be fulfilled on ${qualifiedResource(t)} "${name}": ${why}`)
export const MODIFIED_CONFLICT = 'the object has been modified; please apply your changes to the latest version and try again'

/** One field error, rendered as Kubernetes' field.Error does. */
export function fieldError (path: string, kind: 'Required' | 'Invalid' | 'Unsupported' | 'Unknown' | 'Duplicate' | 'Forbidden' | 'NotFound' | 'TooMany', value?: unknown, detail?: string): string {
  const v = showValue(value)
  switch (kind) {
    case 'Required': return `${path}: Required value${detail !== undefined ? `: ${detail}` : ''}`
    case 'Invalid': return `${path}: Invalid value: ${v}${detail !== undefined ? `: ${detail}` : ''}`
    case 'Unsupported': return `${path}: Unsupported value: ${v}${detail !== undefined ? `: ${detail}` : ''}`
    case 'Unknown': return `${path}: unknown field`
    case 'Duplicate': return `${path}: Duplicate value: ${v}`
    case 'Forbidden': return `${path}: Forbidden${detail !== undefined ? `: ${detail}` : ''}`
    case 'NotFound': return `${path}: Not found: ${v}`
    case 'TooMany': return `${path}: Too many${detail !== undefined ? `: ${detail}` : ''}`
  }
}

function showValue (v: unknown): string {
  if (typeof v === 'string') return JSON.stringify(v)
  if (typeof v === 'number' || typeof v === 'boolean') return String(v)
  try { return JSON.stringify(v) ?? 'null' } catch { return String(v) }
}

/** A 422 Invalid naming every field error, one inline, several in brackets, as Kubernetes does. */
export function invalid (kind: { kind: string, group: string }, name: string, errors: string[]): StatusBody {
  const list = errors.length === 1 ? errors[0] : `[${errors.join(', ')}]`
  return statusOf(422, 'Invalid', `${qualifiedKind(kind)} "${name}" is invalid: ${list}`)
}
