// Manifests for `shoal apply` and `delete -f`: reading multi-document YAML
// or JSON from files, directories or standard input, placing each object in
// its namespace, and comparing a manifest with what the server holds.
// May import: protocol/, ./errors.ts, ./io.ts, yaml.
import { kindOf } from '../protocol/kinds.ts'
import { readFile, readdir, stat } from 'node:fs/promises'
import { join } from 'node:path'
import { parseAllDocuments } from 'yaml'
import type { KObject, ResourceType } from '../protocol/k8s.ts'
import { isPlainObject } from '../protocol/json.ts'
import type { JsonObject } from '../protocol/json.ts'
import { CliError, EXIT_USAGE } from './errors.ts'
import type { Io } from './io.ts'

export interface Manifest { file: string, obj: KObject }

export async function readAllText (input: AsyncIterable<Uint8Array | string>): Promise<string> {
  const chunks: Buffer[] = []
  for await (const c of input) chunks.push(typeof c === 'string' ? Buffer.from(c, 'utf8') : Buffer.from(c))
  return Buffer.concat(chunks).toString('utf8')
}

/** Every object in FILE, DIR (its .yaml, .yml and .json files) or `-`, with `kind: List` unpacked. */
export async function loadManifests (paths: string[] | undefined, io: Io): Promise<Manifest[]> {
  if (paths === undefined || paths.length === 0) throw new CliError('-f FILE is required (a file, a directory, or - for standard input)', EXIT_USAGE)
  const files: Array<{ file: string, text: string }> = []
  for (const p of paths) {
    if (p === '-') {
      files.push({ file: '<stdin>', text: await readAllText(io.stdin ?? process.stdin) })
      continue
    }
    try {
      if ((await stat(p)).isDirectory()) {
        const names = (await readdir(p)).filter(n => /\.(ya?ml|json)$/.test(n)).sort()
        for (const n of names) files.push({ file: join(p, n), text: await readFile(join(p, n), 'utf8') })
      } else files.push({ file: p, text: await readFile(p, 'utf8') })
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code
      throw new CliError(`cannot read ${p}: ${code === 'ENOENT' ? 'no such file or directory' : code ?? (err as Error).message}`)
    }
  }
  const out: Manifest[] = []
  for (const { file, text } of files) {
    for (const doc of parseAllDocuments(text)) {
      const bad = doc.errors[0]
      if (bad !== undefined) throw new CliError(`${file}: ${bad.message.split('\n')[0]?.replace(/:$/, '') ?? 'not valid YAML'}`)
      const value: unknown = doc.toJS()
      if (value === null || value === undefined) continue
      const items = isPlainObject(value) && typeof value.kind === 'string' && value.kind.endsWith('List') && Array.isArray(value.items) ? value.items : [value]
      for (const item of items) {
        if (!isPlainObject(item) || typeof item.apiVersion !== 'string' || typeof item.kind !== 'string') throw new CliError(`${file}: an object without apiVersion and kind`)
        const metadata = item.metadata
        if (!isPlainObject(metadata) || typeof metadata.name !== 'string' || metadata.name === '') throw new CliError(`${file}: a ${item.kind} without metadata.name`)
        // The rest is the server's to validate.
        out.push({ file, obj: { ...item, apiVersion: item.apiVersion, kind: item.kind, metadata } })
      }
    }
  }
  return out
}

/** The type of a manifest's object and where it goes, or a CliError naming the kind and file. */
export function placeManifest (m: Manifest, opts: { namespace?: string }): { type: ResourceType, ns: string | undefined, obj: KObject } {
  const type = kindOf(m.obj.apiVersion, m.obj.kind)
  if (type === undefined) throw new CliError(`${m.file}: no kind "${m.obj.kind}" in version "${m.obj.apiVersion}" is known to Shoal (object "${m.obj.metadata.name ?? ''}")`)
  const own = m.obj.metadata.namespace
  if (type.namespaced && own !== undefined && opts.namespace !== undefined && own !== opts.namespace) {
    throw new CliError(`${m.file}: the namespace from the provided object "${own}" does not match the namespace "${opts.namespace}"; the -n flag must agree with the manifest`)
  }
  const ns = type.namespaced ? own ?? opts.namespace ?? 'default' : undefined
  const { namespace: _, ...meta } = m.obj.metadata
  return { type, ns, obj: { ...m.obj, metadata: ns !== undefined ? { ...meta, namespace: ns } : meta } }
}

/** Whether every field the manifest gives has the same value in the server's object. */
export function isContainedIn (manifest: unknown, server: unknown): boolean {
  if (isPlainObject(manifest)) return isPlainObject(server) && Object.entries(manifest).every(([k, v]) => isContainedIn(v, server[k]))
  if (Array.isArray(manifest)) return Array.isArray(server) && manifest.length === server.length && manifest.every((v, i) => isContainedIn(v, server[i]))
  return manifest === server
}

/** A JSON merge patch that turns `from` into `to` (removed keys set to null, lists replaced whole). */
export function mergePatchBetween (from: unknown, to: unknown): unknown {
  if (!isPlainObject(from) || !isPlainObject(to)) return to
  const patch: JsonObject = {}
  for (const k of Object.keys(from)) if (!(k in to)) patch[k] = null
  for (const [k, v] of Object.entries(to)) if (JSON.stringify(from[k]) !== JSON.stringify(v)) patch[k] = mergePatchBetween(from[k], v)
  return patch
}
