// Label and field selectors: parsing Kubernetes' string syntax
// (`app=web,tier!=db,env in (a,b),!legacy`; `metadata.name=x,status.phase!=Running`)
// into matchers, and matching the structured LabelSelector that Deployments
// and ReplicaSets carry. Bad syntax throws BadSelectorError (a 400).
// May import: ./k8s.ts.
import type { KObject, LabelSelector, LabelSelectorRequirement } from './k8s.ts'

/** A selector or other list option that cannot be parsed: a 400 with this message. */
export class BadSelectorError extends Error {
  override name = 'BadSelectorError'
}

type Requirement =
  | { key: string, op: '=' | '!=', value: string }
  | { key: string, op: 'in' | 'notin', values: string[] }
  | { key: string, op: 'exists' | '!' }

export type LabelMatcher = (labels: Record<string, string> | undefined) => boolean

const NAME_PART = /^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$/
const DNS1123_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/

/** Why `key` is not a valid label (or annotation) key, or undefined. */
export function labelKeyError (key: string): string | undefined {
  const slash = key.indexOf('/')
  const name = slash < 0 ? key : key.slice(slash + 1)
  if (slash >= 0) {
    const prefix = key.slice(0, slash)
    if (prefix.length === 0 || prefix.length > 253 || !DNS1123_SUBDOMAIN.test(prefix)) return 'prefix part must be a lowercase RFC 1123 subdomain of at most 253 characters'
  }
  if (name.length === 0 || name.length > 63 || !NAME_PART.test(name)) {
    return "name part must consist of at most 63 alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character"
  }
  return undefined
}

/** Why `value` is not a valid label value, or undefined. */
export function labelValueError (value: string): string | undefined {
  if (value === '') return undefined
  if (value.length > 63 || !NAME_PART.test(value)) {
    return "a valid label must be an empty string or consist of at most 63 alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character"
  }
  return undefined
}

function matches (r: Requirement, labels: Record<string, string>): boolean {
  const has = Object.hasOwn(labels, r.key)
  const v = labels[r.key]
  switch (r.op) {
    case '=': return has && v === r.value
    case '!=': return !has || v !== r.value
    case 'in': return has && r.values.includes(v as string)
    case 'notin': return !has || !r.values.includes(v as string)
    case 'exists': return has
    case '!': return !has
  }
}

/** Parses a label selector string; '' or undefined selects everything. */
export function parseLabelSelector (text: string | undefined): LabelMatcher {
  const reqs = parseRequirements(text ?? '')
  return labels => reqs.every(r => matches(r, labels ?? {}))
}

function parseRequirements (text: string): Requirement[] {
  const reqs: Requirement[] = []
  let i = 0
  const fail = (why: string): never => { throw new BadSelectorError(`unable to parse requirement: ${why} in label selector "${text}"`) }
  const ws = (): void => { while (i < text.length && /\s/.test(text[i] as string)) i++ }
  const word = (): string => {
    const start = i
    while (i < text.length && !/[\s,=!()]/.test(text[i] as string)) i++
    return text.slice(start, i)
  }
  const checkKey = (key: string): void => {
    const why = key === '' ? 'key is empty' : labelKeyError(key)
    if (why !== undefined) fail(`invalid label key "${key}": ${why}`)
  }
  const checkValue = (value: string): void => {
    const why = labelValueError(value)
    if (why !== undefined) fail(`invalid label value "${value}": ${why}`)
  }
  ws()
  if (i >= text.length) return reqs
  for (;;) {
    ws()
    if (text[i] === '!') {
      i++
      ws()
      const key = word()
      checkKey(key)
      reqs.push({ key, op: '!' })
    } else {
      const key = word()
      checkKey(key)
      ws()
      if (i >= text.length || text[i] === ',') {
        reqs.push({ key, op: 'exists' })
      } else if (text.startsWith('==', i) || text[i] === '=' || text.startsWith('!=', i)) {
        const op = text.startsWith('!=', i) ? '!=' : '='
        i += text.startsWith('==', i) || op === '!=' ? 2 : 1
        ws()
        const value = word()
        checkValue(value)
        reqs.push({ key, op, value })
      } else {
        const op = word()
        if (op !== 'in' && op !== 'notin') fail(`found '${op === '' ? text[i] : op}', expected: '=', '!=', '==', 'in', 'notin'`)
        ws()
        if (text[i] !== '(') fail("found no '(' after the operator")
        i++
        const values: string[] = []
        for (;;) {
          ws()
          const value = word()
          checkValue(value)
          values.push(value)
          ws()
          if (text[i] === ',') { i++; continue }
          if (text[i] === ')') { i++; break }
          fail("expected ',' or ')' in the set of values")
        }
        reqs.push({ key, op: op as 'in' | 'notin', values })
      }
    }
    ws()
    if (i >= text.length) return reqs
    if (text[i] !== ',') fail(`found '${text[i] as string}', expected ','`)
    i++
  }
}

/** The fields a field selector may name, for every kind. */
const FIELDS = ['metadata.name', 'metadata.namespace', 'spec.nodeName', 'status.phase']
/** Extra fields per kind, as Kubernetes serves them. */
const KIND_FIELDS: Record<string, string[]> = {
  Event: ['involvedObject.kind', 'involvedObject.name', 'involvedObject.namespace', 'involvedObject.uid', 'reason', 'type', 'source'],
  Secret: ['type'],
  Node: ['spec.unschedulable']
}

export type FieldMatcher = (obj: KObject) => boolean

function fieldValue (obj: KObject, path: string): string {
  let at: unknown = obj
  for (const part of path.split('.')) {
    if (typeof at !== 'object' || at === null) return ''
    at = (at as Record<string, unknown>)[part]
  }
  if (path === 'source' && typeof at === 'object' && at !== null) at = (at as Record<string, unknown>).component
  return at === undefined || at === null ? '' : String(at)
}

/** Parses a field selector (`a=b,c!=d`) for objects of `kind`; '' or undefined selects everything. */
export function parseFieldSelector (text: string | undefined, kind: string): FieldMatcher {
  const tests: Array<{ field: string, negate: boolean, value: string }> = []
  for (const raw of (text ?? '').split(',')) {
    const term = raw.trim()
    if (term === '') {
      if ((text ?? '').trim() !== '') throw new BadSelectorError(`invalid field selector "${text}": empty term`)
      continue
    }
    const m = /^([A-Za-z0-9_.]+)\s*(==|!=|=)\s*(.*)$/.exec(term)
    if (m === null) throw new BadSelectorError(`invalid field selector "${term}": expected field=value, field==value or field!=value`)
    const [, field, op, value] = m as unknown as [string, string, string, string]
    if (!FIELDS.includes(field) && !(KIND_FIELDS[kind]?.includes(field) ?? false)) {
      throw new BadSelectorError(`field label not supported: ${field}`)
    }
    tests.push({ field, negate: op === '!=', value: value.trim() })
  }
  return obj => tests.every(t => (fieldValue(obj, t.field) === t.value) !== t.negate)
}

/**
 * Whether `labels` match a structured selector: every matchLabels pair and
 * every matchExpressions requirement. An empty selector matches everything
 * (callers that want "nothing" for a missing selector check for that).
 * An unknown operator matches nothing.
 */
export function matchLabelSelector (selector: LabelSelector, labels: Record<string, string> | undefined): boolean {
  const have = labels ?? {}
  for (const [k, v] of Object.entries(selector.matchLabels ?? {})) if (have[k] !== v || !Object.hasOwn(have, k)) return false
  for (const e of selector.matchExpressions ?? []) {
    const has = Object.hasOwn(have, e.key)
    const values = e.values ?? []
    switch (e.operator) {
      case 'In': if (!has || !values.includes(have[e.key] as string)) return false; break
      case 'NotIn': if (has && values.includes(have[e.key] as string)) return false; break
      case 'Exists': if (!has) return false; break
      case 'DoesNotExist': if (has) return false; break
      default: return false
    }
  }
  return true
}

/** A structured selector as the string form (`status.selector` of a Scale). */
export function formatLabelSelector (selector: LabelSelector): string {
  const parts: string[] = []
  for (const [k, v] of Object.entries(selector.matchLabels ?? {})) parts.push(`${k}=${v}`)
  for (const e of selector.matchExpressions ?? []) {
    if (e.operator === 'In') parts.push(`${e.key} in (${(e.values ?? []).join(',')})`)
    else if (e.operator === 'NotIn') parts.push(`${e.key} notin (${(e.values ?? []).join(',')})`)
    else if (e.operator === 'Exists') parts.push(e.key)
    else if (e.operator === 'DoesNotExist') parts.push(`!${e.key}`)
  }
  return parts.join(',')
}
