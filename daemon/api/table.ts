// Server-side printing, as kubectl asks for it: a get, list or watch sent
// with `Accept: application/json;as=Table;v=v1;g=meta.k8s.io` is answered
// with a meta.k8s.io Table whose columns are kubectl's (protocol/k8s-columns.ts)
// and whose rows carry the object, its metadata only, or nothing
// (`includeObject=Object|Metadata|None`; Metadata by default, as in
// Kubernetes). Pure functions; k8s.ts does the answering.
// May import: protocol/.
import type { KObject, TypedObject } from '../../protocol/k8s.ts'
import type { Kind } from '../../protocol/kinds.ts'

export type IncludeObject = 'Object' | 'Metadata' | 'None'

export interface TableColumnDefinition {
  name: string
  type: string
  format: string
  description: string
  priority: number
}

/** meta.k8s.io's PartialObjectMetadata: an object's metadata alone. */
export type PartialObjectMetadata = TypedObject<string, 'PartialObjectMetadata'>

export interface TableRow {
  cells: Array<string | number>
  object?: KObject | PartialObjectMetadata
}

export interface Table {
  kind: 'Table'
  apiVersion: string
  metadata: { resourceVersion?: string }
  columnDefinitions: TableColumnDefinition[]
  rows: TableRow[]
}

/**
 * The Table version an Accept header asks for ('v1' or 'v1beta1'), or
 * undefined when it prefers plain JSON. Media ranges are taken in order, as
 * kubectl lists its preferences; a range Shoal cannot serve is skipped.
 */
export function tableAccept (accept: string | undefined): 'v1' | 'v1beta1' | undefined {
  if (accept === undefined) return undefined
  for (const range of accept.split(',')) {
    const [type = '', ...rawParams] = range.split(';').map(s => s.trim())
    const params = new Map(rawParams.map(p => {
      const i = p.indexOf('=')
      return i < 0 ? [p.toLowerCase(), ''] : [p.slice(0, i).trim().toLowerCase(), p.slice(i + 1).trim().replace(/^"|"$/g, '')]
    }))
    const as = params.get('as')
    if (as === undefined) {
      if (['application/json', 'application/*', '*/*', 'application/yaml'].includes(type.toLowerCase())) return undefined
      continue
    }
    if (type.toLowerCase() !== 'application/json' || as !== 'Table' || params.get('g') !== 'meta.k8s.io') continue
    const v = params.get('v')
    if (v === 'v1' || v === 'v1beta1') return v
  }
  return undefined
}

/** The includeObject query parameter; anything else is a 400 (the caller's message). */
export function includeObjectOf (value: string | null): IncludeObject | undefined {
  if (value === null || value === '') return 'Metadata'
  return value === 'Object' || value === 'Metadata' || value === 'None' ? value : undefined
}

function partialMetadata (o: KObject, version: string): PartialObjectMetadata {
  return { kind: 'PartialObjectMetadata', apiVersion: `meta.k8s.io/${version}`, metadata: o.metadata }
}

/** The Table of `items` (one row each), with the column definitions unless `withColumns` is false. */
export function toTable (type: Kind, items: readonly KObject[], opts: { now: number, includeObject: IncludeObject, version?: 'v1' | 'v1beta1', resourceVersion?: string, withColumns?: boolean }): Table {
  const version = opts.version ?? 'v1'
  const columns = type.columns
  return {
    kind: 'Table',
    apiVersion: `meta.k8s.io/${version}`,
    metadata: opts.resourceVersion !== undefined ? { resourceVersion: opts.resourceVersion } : {},
    columnDefinitions: opts.withColumns === false
      ? []
      : columns.map(c => ({ name: c.name, type: c.type, format: c.format ?? '', description: c.description, priority: c.priority })),
    rows: items.map(o => ({
      cells: columns.map(c => c.cell(o, opts.now)),
      ...(opts.includeObject === 'Object' ? { object: o } : opts.includeObject === 'Metadata' ? { object: partialMetadata(o, version) } : {})
    }))
  }
}
