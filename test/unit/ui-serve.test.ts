// The UI's static files (daemon/ui/serve.ts) on a bare HTTP server: listed
// files are served (and kept once read); unknown paths, however many and
// however long, are 404s that leave nothing behind (issue #14: 4,000
// requests for unknown 8 KB paths once kept 32 MiB).
import { randomBytes } from 'node:crypto'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import test from 'ava'
import { serveUi, uiCacheSize } from '../../daemon/ui/serve.ts'

async function start (t: import('ava').ExecutionContext): Promise<string> {
  const server = createServer((req, res) => {
    if (!serveUi(req, res)) { res.writeHead(418); res.end() }
  })
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  t.teardown(async () => {
    server.closeAllConnections()
    await new Promise<void>(resolve => server.close(() => { resolve() }))
  })
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`
}

test('unknown paths are 404s and the cache does not grow; listed files are served and kept once', async t => {
  const url = await start(t)
  for (const path of ['/ui/', '/ui/app.js', '/ui/vendor/preact/preact.mjs', '/ui/vendor/yaml/index.js', '/ui/vendor/croner/croner.js', '/ui/cron.js']) {
    const res = await fetch(url + path)
    t.is(res.status, 200, path)
    await res.arrayBuffer()
  }
  const served = uiCacheSize()
  t.true(served >= 4)
  // 1,000 unknown 8 KB paths (and a few that try to leave the folders): all 404s, nothing kept.
  const unknown = Array.from({ length: 1000 }, () => `/ui/${randomBytes(4096).toString('hex')}`)
  unknown.push('/ui/vendor/preact/../package.json', '/ui/..%2fserve.ts', '/ui/%00', '/ui/%E0%A4%A', '/ui/.hidden', '/ui/vendor/nope/x.js', '/ui/serve.ts')
  for (let i = 0; i < unknown.length; i += 50) {
    const answers = await Promise.all(unknown.slice(i, i + 50).map(async path => {
      const res = await fetch(url + path)
      return { path, status: res.status, text: await res.text() }
    }))
    for (const a of answers) {
      t.is(a.status, 404, a.path)
      t.true(a.text.length < 300, 'the 404 does not echo a long path whole')
    }
  }
  t.is(uiCacheSize(), served)
  // A served file is read once: asking again keeps the size.
  await (await fetch(url + '/ui/app.js')).arrayBuffer()
  t.is(uiCacheSize(), served)
})
