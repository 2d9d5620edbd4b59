// ARCHITECTURE.md's import rules (test/import-rules.ts) over the real tree,
// and the checker shown to catch planted breaks in an in-memory tree.
import test from 'ava'
import { existsSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { createVirtualFileSystem } from 'typescript/unstable/fs'
import { checkImports, importCycles, readImportGraph } from '../helpers/check-imports.ts'
import type { ImportGraph } from '../helpers/check-imports.ts'
import { IMPORT_RULES, IMPORTED_ONLY_BY } from '../import-rules.ts'

const ROOT = fileURLToPath(new URL('../..', import.meta.url)).replace(/\/$/, '')

let repoGraph: ImportGraph | undefined
/** The tree's imports, read once for the tests that need them. */
function repo (): ImportGraph {
  repoGraph ??= readImportGraph(ROOT)
  return repoGraph
}

test('every import of protocol/, cli/ and daemon/ keeps to test/import-rules.ts', t => {
  const graph = repo()
  t.true(graph.files.includes('daemon/kubelet/kubelet.ts') && graph.edges.length > 100, 'the checker read the tree')
  t.deepEqual(checkImports(graph), [])
})

test('cli/ has no import cycles', t => {
  t.deepEqual(importCycles(repo(), f => f.startsWith('cli/')), [])
})

test('every folder and file the rules name exists', t => {
  const named = new Set<string>([...Object.keys(IMPORT_RULES), ...Object.keys(IMPORTED_ONLY_BY), ...Object.values(IMPORTED_ONLY_BY).flat()])
  for (const targets of Object.values(IMPORT_RULES)) for (const target of targets) named.add(typeof target === 'string' ? target : target.path)
  t.deepEqual([...named].filter(p => !existsSync(`${ROOT}/${p}`)), [])
})

const FIXTURE = '/fixture'

function fixture (files: Record<string, string>): ReturnType<typeof createVirtualFileSystem> {
  const tsconfig = { compilerOptions: { module: 'nodenext', allowImportingTsExtensions: true, noEmit: true, types: [] }, include: ['daemon', 'protocol', 'cli'] }
  return createVirtualFileSystem(Object.fromEntries([
    [`${FIXTURE}/tsconfig.json`, JSON.stringify(tsconfig)],
    ...Object.entries(files).map(([p, text]) => [`${FIXTURE}/${p}`, text])
  ]))
}

test('the checker reports planted forbidden imports, in every import form, and passes the allowed ones', t => {
  const fs = fixture({
    'protocol/k8s.ts': "import type { StoreReader } from '../daemon/store/types.ts'\nexport type KObject = { kind: string }\n",
    'protocol/codec.ts': "import { KObject } from './k8s.ts'\nexport const x = 1\n",
    'cli/k8s.ts': [
      "import { CliError } from './main.ts'",
      "import { x } from '../protocol/codec.ts'",
      "import { WorkQueue } from '../daemon/workqueue/queue.ts'"
    ].join('\n') + '\n',
    'cli/main.ts': "export class CliError extends Error {}\n",
    'cli/bin.ts': "import { CliError } from './main.ts'\n",
    'daemon/kubelet/kubelet.ts': [
      "import { WorkQueue } from '../controllers/framework.ts'",
      "import { serviceEnv } from '../network/dns.ts'",
      "import { Queue } from '../workqueue/queue.ts'",
      "import type { KObject } from '../../protocol/k8s.ts'",
      "import { resolveEnv } from './env.ts'",
      "import { rpc } from '../p2p/rpc.ts'",
      "// import { nothing } from '../ui/serve.ts'",
      "const text = \"import '../ui/serve.ts'\"",
      "type Model = typeof import('../scheduler/model.ts')",
      "export const later = async () => await import('../controllers/gc.ts')"
    ].join('\n') + '\n',
    'daemon/kubelet/env.ts': "export * from '../store/types.ts'\nexport { a } from '../store/patch.ts'\n",
    'daemon/kubelet/access.ts': "import { rpc } from '../p2p/rpc.ts'\nimport { Kubelet } from './kubelet.ts'\n",
    'daemon/config/flags.ts': "import { parseCidr } from '../store/allocate.ts'\nimport { keys } from '../p2p/keys.ts'\n",
    'daemon/api/server.ts': [
      "import { serveUi } from '../ui/serve.ts'",
      "import type { Member } from '../membership/table.ts'",
      "import { type TakeBackup } from '../backup/source.ts'",
      "import { memberList } from '../membership/table.ts'",
      "import { memberView } from './members.ts'"
    ].join('\n') + '\n',
    'daemon/api/members.ts': 'export const memberView = 1\n',
    'daemon/workqueue/queue.ts': "export { EventRecorder } from '../controllers/framework.ts'\n",
    'daemon/main.ts': "import { serveUi } from './ui/serve.ts'\nimport { Kubelet } from './kubelet/kubelet.ts'\n",
    'daemon/bin.ts': "const { main } = await import('./main.ts')\n",
    'daemon/gadget/gadget.ts': 'export const gadget = 1\n'
  })
  const graph = readImportGraph(FIXTURE, fs)
  t.deepEqual(checkImports(graph), [
    'cli/k8s.ts:1: imports cli/main.ts, which only cli/bin.ts may import',
    'cli/k8s.ts:3: imports daemon/workqueue/queue.ts, which cli may not import',
    'daemon/api/server.ts:1: imports daemon/ui/serve.ts, which daemon/api may not import',
    'daemon/api/server.ts:4: imports daemon/membership/table.ts, which daemon/api may import only with `import type`',
    'daemon/config/flags.ts:1: imports daemon/store/allocate.ts, which daemon/config may not import',
    'daemon/gadget/gadget.ts: belongs to no component of test/import-rules.ts',
    'daemon/kubelet/env.ts:2: imports daemon/store/patch.ts, which daemon/kubelet may not import',
    'daemon/kubelet/kubelet.ts:1: imports daemon/controllers/framework.ts, which daemon/kubelet may not import',
    'daemon/kubelet/kubelet.ts:2: imports daemon/network/dns.ts, which daemon/kubelet may not import',
    'daemon/kubelet/kubelet.ts:6: imports daemon/p2p/rpc.ts, which daemon/kubelet may not import',
    'daemon/kubelet/kubelet.ts:9: imports daemon/scheduler/model.ts, which daemon/kubelet may not import',
    'daemon/kubelet/kubelet.ts:10: imports daemon/controllers/gc.ts, which daemon/kubelet may not import',
    'daemon/workqueue/queue.ts:1: imports daemon/controllers/framework.ts, which daemon/workqueue may not import',
    'protocol/k8s.ts:1: imports daemon/store/types.ts, which protocol may not import'
  ])
})

test('the checker reports import cycles', t => {
  const graph = readImportGraph(FIXTURE, fixture({
    'cli/a.ts': "import { b } from './b.ts'\nexport const a = 1\n",
    'cli/b.ts': "import type { C } from './c.ts'\nexport const b = 1\n",
    'cli/c.ts': "import { a } from './a.ts'\nexport type C = number\n",
    'cli/d.ts': "import { a } from './a.ts'\n"
  }))
  t.deepEqual(importCycles(graph, f => f.startsWith('cli/')), [['cli/a.ts', 'cli/b.ts', 'cli/c.ts']])
})
