// The import-rule checker: reads every import of protocol/, cli/ and daemon/
// with the TypeScript compiler (a SourceFile's `imports`: import and export
// declarations, `import type`, dynamic `import()` and `import('…')` types),
// resolves relative specifiers to repository paths, and reports each one
// that test/import-rules.ts does not allow.
// Run it by hand on any checkout: `node test/helpers/check-imports.ts [root]`.
import path from 'node:path'
import { API } from 'typescript/unstable/sync'
import type { FileSystem } from 'typescript/unstable/fs'
import { SyntaxKind } from 'typescript/unstable/ast'
import type { Node } from 'typescript/unstable/ast'
import { IMPORT_RULES, IMPORTED_ONLY_BY } from '../import-rules.ts'
import type { ImportTarget } from '../import-rules.ts'

/** The folders whose files are checked. */
export const CHECKED_ROOTS = ['protocol', 'cli', 'daemon'] as const

/** One relative import of one checked file, as repository paths. */
export interface ImportEdge {
  /** the importing file, e.g. `daemon/kubelet/kubelet.ts` */
  file: string
  /** 1-based */
  line: number
  specifier: string
  /** the imported file, e.g. `daemon/controllers/framework.ts` */
  target: string
  /** `import type`, `export type`, every named binding `type`, or an `import('…')` type */
  typeOnly: boolean
}

export interface ImportGraph {
  /** every checked file */
  files: string[]
  edges: ImportEdge[]
}

export interface Rules {
  mayImport: Readonly<Record<string, readonly ImportTarget[]>>
  importedOnlyBy: Readonly<Record<string, readonly string[]>>
}

export const REPO_RULES: Rules = { mayImport: IMPORT_RULES, importedOnlyBy: IMPORTED_ONLY_BY }

function isChecked (rel: string): boolean {
  return CHECKED_ROOTS.some(r => within(rel, r))
}

/** `p` is `key` or inside the folder `key`. */
function within (p: string, key: string): boolean {
  return p === key || p.startsWith(key + '/')
}

// Node shapes as the compiler's AST gives them; only what is read here.
interface ImportClauseLike { isTypeOnly?: boolean, name?: Node, namedBindings?: Node & { elements?: ReadonlyArray<{ isTypeOnly?: boolean }> } }
interface ParentLike { kind: SyntaxKind, parent?: ParentLike, isTypeOnly?: boolean, importClause?: ImportClauseLike, exportClause?: Node & { elements?: ReadonlyArray<{ isTypeOnly?: boolean }> } }

function allTypeOnly (elements: ReadonlyArray<{ isTypeOnly?: boolean }> | undefined): boolean {
  return elements !== undefined && elements.length > 0 && elements.every(e => e.isTypeOnly === true)
}

/** Whether the import that `specifier` belongs to brings in types only (erased at run time). */
function isTypeOnlyImport (specifier: Node): boolean {
  const parent = specifier.parent as unknown as ParentLike | undefined
  if (parent === undefined) return false
  switch (parent.kind) {
    case SyntaxKind.ImportDeclaration: {
      const clause = parent.importClause
      if (clause === undefined) return false // a side-effect import
      if (clause.isTypeOnly === true) return true
      return clause.name === undefined && allTypeOnly(clause.namedBindings?.elements)
    }
    case SyntaxKind.ExportDeclaration:
      return parent.isTypeOnly === true || allTypeOnly(parent.exportClause?.elements)
    case SyntaxKind.LiteralType:
      return parent.parent?.kind === SyntaxKind.ImportType
    default:
      return parent.isTypeOnly === true
  }
}

/**
 * Every relative import of every file under protocol/, cli/ and daemon/ in
 * the project of `<root>/tsconfig.json`. `fs` replaces the disk (tests give
 * an in-memory tree).
 */
export function readImportGraph (root: string, fs?: FileSystem): ImportGraph {
  const api = new API({ cwd: root, ...(fs !== undefined ? { fs } : {}) })
  try {
    const snapshot = api.updateSnapshot({ openProjects: [path.posix.join(root, 'tsconfig.json')] })
    const project = snapshot.getProjects()[0]
    if (project === undefined) throw new Error(`no TypeScript project at ${root}/tsconfig.json`)
    const files: string[] = []
    const edges: ImportEdge[] = []
    for (const fileName of project.program.getSourceFileNames()) {
      const rel = path.relative(root, fileName).split(path.sep).join('/')
      if (rel.startsWith('..') || !isChecked(rel)) continue
      const source = project.program.getSourceFile(fileName)
      if (source === undefined) continue
      files.push(rel)
      for (const node of source.imports) {
        const specifier = (node as unknown as { text: string }).text
        if (!specifier.startsWith('./') && !specifier.startsWith('../')) continue // a library or a built-in
        edges.push({
          file: rel,
          line: source.getLineAndCharacterOfPosition(node.end).line + 1,
          specifier,
          target: path.posix.normalize(path.posix.join(path.posix.dirname(rel), specifier)),
          typeOnly: isTypeOnlyImport(node)
        })
      }
    }
    return { files: files.sort(), edges }
  } finally {
    api.close()
  }
}

/** The keys of `rules.mayImport` that a file falls under, shortest (its component) first. */
function keysOf (file: string, rules: Rules): string[] {
  return Object.keys(rules.mayImport).filter(k => within(file, k)).sort((a, b) => a.length - b.length)
}

/** What the rules allow `edge`: 'yes', 'types' (only as `import type`) or 'no'. */
function allowance (edge: ImportEdge, keys: string[], rules: Rules): 'yes' | 'types' | 'no' {
  let types = false
  for (const key of keys) {
    // A folder key is a component: its files may import each other.
    if (!key.endsWith('.ts') && within(edge.target, key)) return 'yes'
    for (const t of rules.mayImport[key] ?? []) {
      if (typeof t === 'string') {
        if (within(edge.target, t)) return 'yes'
      } else if (within(edge.target, t.path)) {
        types = true
      }
    }
  }
  return types ? 'types' : 'no'
}

/** One line per broken rule, sorted: `file:line: imports target, which component may not import`. */
export function checkImports (graph: ImportGraph, rules: Rules = REPO_RULES): string[] {
  const violations: string[] = []
  for (const file of graph.files) {
    if (keysOf(file, rules).length === 0) violations.push(`${file}: belongs to no component of test/import-rules.ts`)
  }
  for (const edge of graph.edges) {
    const keys = keysOf(edge.file, rules)
    if (keys.length === 0) continue // reported above
    const component = keys[0] as string
    const where = `${edge.file}:${edge.line}`
    const allowed = allowance(edge, keys, rules)
    if (allowed === 'no') violations.push(`${where}: imports ${edge.target}, which ${component} may not import`)
    else if (allowed === 'types' && !edge.typeOnly) violations.push(`${where}: imports ${edge.target}, which ${component} may import only with \`import type\``)
    const only = rules.importedOnlyBy[edge.target]
    if (only !== undefined && !only.includes(edge.file)) violations.push(`${where}: imports ${edge.target}, which only ${only.join(', ')} may import`)
  }
  return violations.sort((a, b) => a.localeCompare(b, 'en', { numeric: true }))
}

/** The import cycles among the files `include` picks: each strongly connected set of two or more files, sorted. */
export function importCycles (graph: ImportGraph, include: (file: string) => boolean): string[][] {
  const next = new Map<string, string[]>()
  for (const e of graph.edges) {
    if (include(e.file) && include(e.target)) next.set(e.file, [...(next.get(e.file) ?? []), e.target])
  }
  // Tarjan's strongly connected components.
  const index = new Map<string, number>()
  const low = new Map<string, number>()
  const stack: string[] = []
  const onStack = new Set<string>()
  const cycles: string[][] = []
  const connect = (v: string): void => {
    index.set(v, index.size)
    low.set(v, index.get(v) as number)
    stack.push(v)
    onStack.add(v)
    for (const w of next.get(v) ?? []) {
      if (!index.has(w)) {
        connect(w)
        low.set(v, Math.min(low.get(v) as number, low.get(w) as number))
      } else if (onStack.has(w)) {
        low.set(v, Math.min(low.get(v) as number, index.get(w) as number))
      }
    }
    if (low.get(v) !== index.get(v)) return
    const component: string[] = []
    let w: string
    do {
      w = stack.pop() as string
      onStack.delete(w)
      component.push(w)
    } while (w !== v)
    if (component.length > 1) cycles.push(component.sort())
  }
  for (const v of next.keys()) if (!index.has(v)) connect(v)
  return cycles.sort((a, b) => (a[0] ?? '').localeCompare(b[0] ?? ''))
}

if (import.meta.main) {
  const root = path.resolve(process.argv[2] ?? '.')
  const violations = checkImports(readImportGraph(root))
  for (const v of violations) process.stdout.write(v + '\n')
  process.stdout.write(`${violations.length} import rule violation(s) in ${root}\n`)
  process.exitCode = violations.length === 0 ? 0 : 1
}
