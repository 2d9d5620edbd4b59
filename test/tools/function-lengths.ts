// Prints the longest functions (by lines, signature to closing brace) in the
// given folders: `node test/tools/function-lengths.ts daemon cli [--top 15]`.
// A measure for reviews and closing notes, not a test. Node strips the types
// (keeping every position), acorn parses what is left.
import { readdirSync, readFileSync, statSync } from 'node:fs'
import { stripTypeScriptTypes } from 'node:module'
import { join } from 'node:path'
import { parse } from 'acorn'
import { full } from 'acorn-walk'

function files (dir: string): string[] {
  return readdirSync(dir).flatMap(name => {
    const path = join(dir, name)
    if (statSync(path).isDirectory()) return name === 'node_modules' || name === 'static' ? [] : files(path)
    return name.endsWith('.ts') ? [path] : []
  })
}

const args = process.argv.slice(2)
const topAt = args.indexOf('--top')
const top = topAt >= 0 ? Number(args[topAt + 1]) : 15
const roots = args.filter((a, i) => !a.startsWith('--') && (topAt < 0 || i !== topAt + 1))
const found: Array<{ where: string, lines: number }> = []
for (const file of roots.flatMap(files)) {
  const js = stripTypeScriptTypes(readFileSync(file, 'utf8'))
  const ast = parse(js, { ecmaVersion: 'latest', sourceType: 'module', locations: true })
  full(ast, node => {
    if (node.type === 'FunctionDeclaration' || node.type === 'FunctionExpression' || node.type === 'ArrowFunctionExpression') {
      const loc = node.loc as { start: { line: number }, end: { line: number } }
      found.push({ where: `${file}:${loc.start.line}`, lines: loc.end.line - loc.start.line + 1 })
    }
  })
}
found.sort((a, b) => b.lines - a.lines)
for (const f of found.slice(0, top)) console.log(`${String(f.lines).padStart(5)}  ${f.where}`)
