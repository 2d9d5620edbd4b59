// The web UI in a real browser (Debian's Chromium through playwright-core)
// against three real shoald peers on 127.0.19.2-4, the page served by a
// peer that does not lead: sign-in (and a wrong token's message), the three
// members and the leader, a Deployment applied from the editor whose pods
// appear, scaled from the UI, a pod's log followed live, a read-only token
// that sees everything with every action disabled, the page's weight and
// origin of every request, a phone-sized layout, and the leader SIGKILLed:
// the open page shows the new leader and the dead member without a reload.
// Screenshots go to test-artifacts/. Without /usr/bin/chromium the tests
// are skipped, or fail when CI=true.
import test from 'ava'
import type { ExecutionContext } from 'ava'
import { mkdirSync, readFileSync } from 'node:fs'
import { request } from 'node:http'
import { join } from 'node:path'
import type { Browser, BrowserContext, Page } from 'playwright-core'
import { ROOT, api, startCluster, stopAll, waitFor, waitForLeader } from '../helpers/cluster.ts'
import type { Peer } from '../helpers/cluster.ts'
import { browserMissing, launchBrowser, recordTraffic } from '../helpers/browser.ts'
import type { Traffic } from '../helpers/browser.ts'

const IPS = ['127.0.19.2', '127.0.19.3', '127.0.19.4']
const ARTIFACTS = join(ROOT, 'test-artifacts')
const MAX_UI_BYTES = 300 * 1024

const MANIFEST = `apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: default
spec:
  replicas: 2
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      terminationGracePeriodSeconds: 1
      containers:
      - name: web
        image: busybox
        command: ["sh", "-c", "echo hello from $POD_NAME; i=0; while true; do i=$((i+1)); echo tick $i; sleep 1; done"]
`

const missing = browserMissing()
const run = missing !== undefined && process.env.CI !== 'true' ? test.serial.skip : test.serial
if (missing !== undefined) console.warn(`ui.test.ts: ${missing}${process.env.CI === 'true' ? '' : '; skipping the browser tests'}`)

interface World {
  dir: string
  peers: Peer[]
  leader: Peer
  /** the peer whose /ui the browser opens; not the leader, so that it survives step 5 */
  ui: Peer
  /** the browser's side; absent where there is no browser (the serving test runs anyway) */
  browser: Browser
  /** the signed-in admin page, open from the first browser test to the last */
  page: Page
  traffic: Traffic
  contexts: BrowserContext[]
}
let world: World | undefined
let cluster: { dir: string, peers: Peer[] } | undefined

test.before(async () => {
  if (missing !== undefined && process.env.CI === 'true') throw new Error(`the UI tests need a browser under CI: ${missing}`)
  mkdirSync(ARTIFACTS, { recursive: true })
  const { dir, peers } = await startCluster('ui', IPS)
  cluster = { dir, peers }
  const leader = await waitForLeader(peers, 60_000)
  await waitFor('three Ready nodes', async () => {
    const r = await api(leader, 'GET', '/api/v1/nodes')
    const ready = (r.body.items ?? []).filter((n: any) => (n.status?.conditions ?? []).some((c: any) => c.type === 'Ready' && c.status === 'True'))
    return ready.length === 3
  }, 30_000)
  const ui = peers.find(p => p !== leader)!
  if (missing !== undefined) {
    world = { dir, peers, leader, ui } as World
    return
  }
  const browser = await launchBrowser()
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 } })
  const page = await context.newPage()
  const traffic = await recordTraffic(page)
  world = { dir, peers, leader, ui, browser, page, traffic, contexts: [context] }
})

test.after.always(async () => {
  for (const c of world?.contexts ?? []) await c.close().catch(() => {})
  await world?.browser?.close().catch(() => {})
  if (cluster !== undefined) await stopAll(cluster.peers, cluster.dir)
})

function w (): World {
  if (world === undefined) throw new Error('the cluster did not start')
  return world
}

async function signIn (page: Page, ui: Peer, token: string): Promise<void> {
  await page.goto(`${ui.apiUrl}/ui/`)
  try {
    await page.getByLabel('API token').fill(token, { timeout: 15_000 })
  } catch (err) {
    await page.screenshot({ path: join(ARTIFACTS, 'ui-signin-failed.png') }).catch(() => {})
    throw new Error(`no sign-in form: ${(err as Error).message}; the page: ${(await page.content()).slice(0, 2000)}`)
  }
  await page.getByRole('button', { name: 'Sign in' }).click()
}

async function newPage (viewport: { width: number, height: number }): Promise<{ page: Page, traffic: Traffic }> {
  const context = await w().browser.newContext({ viewport })
  w().contexts.push(context)
  const page = await context.newPage()
  return { page, traffic: await recordTraffic(page) }
}

/** Every request went to the peer that served the page: nothing to a CDN, nothing off loopback. */
function assertLocal (t: ExecutionContext, traffic: Traffic, ui: Peer): void {
  const origin = new URL(ui.apiUrl).origin
  const elsewhere = traffic.urls.filter(u => !u.startsWith('data:') && new URL(u).origin !== origin)
  t.deepEqual(elsewhere, [], 'requests that left the peer')
  t.true(traffic.urls.every(u => u.startsWith('data:') || /^127\./.test(new URL(u).hostname)))
}

test.serial('every peer serves the UI without a token: compressed, cached, nothing outside its folders', async t => {
  const { ui, peers } = w()
  for (const p of peers) {
    const res = await fetch(`${p.apiUrl}/ui/`, { headers: { 'accept-encoding': 'gzip' } })
    t.is(res.status, 200, p.name)
    t.is(res.headers.get('content-type'), 'text/html; charset=utf-8')
    t.regex(res.headers.get('content-security-policy') ?? '', /connect-src 'self'/)
    t.regex(await res.text(), /<script type="module" src="app.js">/)
  }
  const redirect = await fetch(`${ui.apiUrl}/ui`, { redirect: 'manual' })
  t.is(redirect.status, 301)
  t.is(redirect.headers.get('location'), '/ui/')
  // Node's fetch decodes the body; the header says what went over the wire.
  for (const [path, type] of [['/ui/app.js', 'text/javascript'], ['/ui/style.css', 'text/css'], ['/ui/vendor/preact/preact.mjs', 'text/javascript'], ['/ui/vendor/yaml/index.js', 'text/javascript']] as const) {
    const gz = await fetch(`${ui.apiUrl}${path}`, { headers: { 'accept-encoding': 'gzip' } })
    t.is(gz.status, 200, path)
    t.true(gz.headers.get('content-type')?.startsWith(type), path)
    t.is(gz.headers.get('content-encoding'), 'gzip', path)
    const br = await fetch(`${ui.apiUrl}${path}`, { headers: { 'accept-encoding': 'br' } })
    t.is(br.headers.get('content-encoding'), 'br', path)
    t.is(await br.text(), await gz.text())
    const etag = gz.headers.get('etag')
    t.truthy(etag)
    t.is((await fetch(`${ui.apiUrl}${path}`, { headers: { 'if-none-match': etag! } })).status, 304, path)
  }
  t.is((await fetch(`${ui.apiUrl}/ui/app.js`, { headers: { 'accept-encoding': 'identity' } })).headers.get('content-encoding'), null)
  // Raw paths, as a hostile client would send them (fetch would normalize dots away).
  for (const path of ['/ui/../package.json', '/ui/%2e%2e/%2e%2e/package.json', '/ui/vendor/yaml/../../../package.json', '/ui/vendor/preact/../package.json', '/ui/..%2fserve.ts', '/ui/%00', '/ui/.hidden', '/ui/nope.js']) {
    const status = await new Promise<number>((resolve, reject) => {
      const req = request({ host: new URL(ui.apiUrl).hostname, port: Number(new URL(ui.apiUrl).port), path }, res => { res.resume(); resolve(res.statusCode ?? 0) })
      req.on('error', reject)
      req.end()
    })
    t.is(status, 404, path)
  }
  t.is((await fetch(`${ui.apiUrl}/ui/app.js`, { method: 'POST' })).status, 405)
  // The API itself still wants the token.
  t.is((await fetch(`${ui.apiUrl}/shoal/v1/members`)).status, 401)
  t.is((await fetch(`${ui.apiUrl}/api/v1/pods`)).status, 401)
})

run('signs in with the admin token and shows the three members and the leader', async t => {
  const { page, ui, leader } = w()
  await signIn(page, ui, ui.token())
  await page.getByTestId('role').filter({ hasText: 'admin' }).waitFor({ timeout: 10_000 })
  await waitFor('three alive members in the cluster bar', async () => await page.locator('[data-testid="member"][data-state="alive"]').count() === 3, 15_000)
  await waitFor('the leader in the cluster bar', async () => (await page.getByTestId('leader').textContent()) === leader.name, 15_000)
  const rows = page.getByTestId('member-row')
  t.is(await rows.count(), 3)
  t.regex(await page.locator(`[data-testid="member-row"][data-name="${leader.name}"]`).innerText(), /leader/)
  // The page is served by a follower, yet it shows every peer's match index and lag: the leader's view, fetched through it.
  await waitFor('the leader\'s view of replication', async () => /Log as seen by\s*\S+ \(leader\)/.test(await page.locator('main').innerText()), 15_000)
  const follower = (await rows.allInnerTexts()).find(r => !r.includes(leader.name)) ?? ''
  t.regex(follower, /\t\d+\t\d+\t/, `match index and lag shown: ${follower}`)
  // The peer that serves the page knows the token only from sessionStorage: a reload stays signed in.
  await page.reload()
  await page.getByTestId('leader').filter({ hasText: leader.name }).waitFor({ timeout: 10_000 })
  await page.screenshot({ path: join(ARTIFACTS, 'ui-cluster-1280x800.png') })
})

run('a wrong token gets a clear message', async t => {
  const { page } = await newPage({ width: 1280, height: 800 })
  await signIn(page, w().ui, 'not-the-cluster-token-at-all')
  const alert = page.getByRole('alert')
  await alert.filter({ hasText: 'Wrong token' }).waitFor({ timeout: 10_000 })
  t.regex(await alert.innerText(), /Wrong token: this cluster does not accept it/)
  t.is(await page.getByTestId('leader').count(), 0)
})

run('applies a Deployment from the editor, shows a refused one inline, and its pods appear', async t => {
  const { page, ui } = w()
  await page.getByRole('link', { name: 'Apply' }).click()
  const editor = page.getByLabel(/^Manifests/)
  // One good document and one the server refuses: each gets its own line.
  await editor.fill(`${MANIFEST}---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: Not_A_Name}\ndata: {a: b}\n`)
  await page.getByRole('button', { name: 'Apply', exact: true }).click()
  const results = page.getByTestId('apply-results')
  await results.getByText('deployment.apps/web created').waitFor({ timeout: 15_000 })
  await results.locator('li.error').filter({ hasText: 'Not_A_Name' }).waitFor({ timeout: 15_000 })
  t.regex(await results.locator('li.error').innerText(), /ConfigMap Not_A_Name: .+ \(4\d\d\)/)
  // A syntax error is caught in the browser, with its line.
  await editor.fill('kind: [unclosed\n')
  await page.getByRole('button', { name: 'Apply', exact: true }).click()
  await page.getByRole('alert').filter({ hasText: 'Not applied' }).waitFor({ timeout: 5000 })

  await page.getByRole('link', { name: 'Pods' }).click()
  await page.getByLabel('Label selector').fill('app=web')
  await page.getByRole('button', { name: 'Filter' }).click()
  await waitFor('the selector in the URL', () => page.url().includes('selector=app%3Dweb'), 5000)
  await waitFor('two Running web pods in the Pods view', async () =>
    await page.locator('[data-testid="pod-row"][data-phase="Running"]').count() === 2, 30_000)
  // The rows are the server's pods (the list may still be settling: compare until it has).
  const server = await api(ui, 'GET', '/api/v1/namespaces/default/pods?labelSelector=app%3Dweb')
  const names = (server.body.items as any[]).map(p => p.metadata.name).sort()
  t.is(names.length, 2)
  await waitFor('the server\'s pods in the Pods view', async () => {
    const shown = (await page.getByTestId('pod-row').evaluateAll(rows => rows.map(r => r.getAttribute('data-name')))).sort()
    return JSON.stringify(shown) === JSON.stringify(names)
  }, 10_000)
  t.pass()
})

run('scales the Deployment from the UI', async t => {
  const { page, ui } = w()
  await page.getByRole('link', { name: 'Workloads' }).click()
  const row = page.locator('[data-testid="deployment-row"][data-name="web"]')
  await row.waitFor({ timeout: 10_000 })
  await row.getByLabel('Replicas of web').fill('3')
  await row.getByRole('button', { name: 'Scale' }).click()
  await waitFor('3 desired and 3 ready in the Deployments table', async () =>
    (await row.getByTestId('desired').innerText()) === '3' && (await row.getByTestId('ready').innerText()) === '3', 30_000)
  const d = await api(ui, 'GET', '/apis/apps/v1/namespaces/default/deployments/web')
  t.is(d.body.spec.replicas, 3)
  await page.getByRole('button', { name: 'Show history' }).click()
  await page.getByRole('table', { name: 'Revisions of web' }).waitFor()
  await page.screenshot({ path: join(ARTIFACTS, 'ui-workloads-1280x800.png'), fullPage: true })
})

run('follows a pod\'s log live', async t => {
  const { page } = w()
  await page.getByRole('link', { name: 'Pods' }).click()
  const link = page.getByTestId('pod-row').first().getByRole('link')
  const name = await link.innerText()
  await link.click()
  const logs = page.getByTestId('logs')
  await logs.getByText(`hello from ${name}`).waitFor({ timeout: 15_000 })
  const ticks = async (): Promise<number> => Math.max(0, ...[...(await logs.innerText()).matchAll(/tick (\d+)/g)].map(m => Number(m[1])))
  const first = await waitFor('a tick in the log', async () => { const n = await ticks(); return n > 0 ? n : undefined }, 15_000)
  // New lines arrive on the open stream, with no reload and no new request.
  await waitFor('later ticks in the followed log', async () => await ticks() >= first + 2, 15_000)
  t.pass()
  await page.getByRole('link', { name: '← All pods' }).click()
})

run('a read-only token sees everything and every action is disabled', async t => {
  const { ui } = w()
  const { page } = await newPage({ width: 1280, height: 800 })
  await signIn(page, ui, readFileSync(join(ui.opts.dataDir, 'viewer.token'), 'utf8').trim())
  await page.getByTestId('role').filter({ hasText: 'read-only' }).waitFor({ timeout: 10_000 })
  await waitFor('three members', async () => await page.getByTestId('member').count() === 3, 10_000)

  await page.getByRole('link', { name: 'Workloads' }).click()
  const row = page.locator('[data-testid="deployment-row"][data-name="web"]')
  await row.waitFor({ timeout: 10_000 })
  t.true(await row.getByRole('button', { name: 'Scale' }).isDisabled())
  t.true(await row.getByLabel('Replicas of web').isDisabled())

  await page.getByRole('link', { name: 'Nodes' }).click()
  await page.getByTestId('node-row').first().waitFor({ timeout: 10_000 })
  t.is(await page.getByTestId('node-row').count(), 3)
  for (const b of await page.getByRole('button', { name: /^(Cordon|Uncordon) / }).all()) t.true(await b.isDisabled())

  await page.getByRole('link', { name: 'Pods' }).click()
  await page.getByTestId('pod-row').first().getByRole('link').click()
  await page.getByTestId('pod-page').waitFor({ timeout: 10_000 })
  t.true(await page.getByRole('button', { name: 'Delete pod' }).isDisabled())

  await page.getByRole('link', { name: 'Apply' }).click()
  t.true(await page.getByRole('button', { name: 'Apply', exact: true }).isDisabled())
})

run('fits a phone screen', async t => {
  const { ui } = w()
  const { page, traffic } = await newPage({ width: 390, height: 844 })
  await signIn(page, ui, ui.token())
  await page.getByTestId('leader').waitFor({ timeout: 10_000 })
  await page.getByRole('link', { name: 'Workloads' }).click()
  await page.locator('[data-testid="deployment-row"][data-name="web"]').waitFor({ timeout: 10_000 })
  // Wide tables scroll inside their own box; the page itself never scrolls sideways.
  const overflow = await page.evaluate('[document.documentElement.scrollWidth, window.innerWidth, [...document.querySelectorAll("body *")].filter(e => e.getBoundingClientRect().right > window.innerWidth + 1 && !e.parentElement?.closest(".table-wrap, nav ul")).map(e => e.tagName + "." + e.className).slice(0, 5)]') as [number, number, string[]]
  t.true(overflow[0] <= overflow[1], `the page is ${overflow[0]} px wide for ${overflow[1]}: ${overflow[2].join(', ')}`)
  await page.screenshot({ path: join(ARTIFACTS, 'ui-workloads-390x844.png'), fullPage: true })
  // The views are reachable from the keyboard alone.
  await page.getByRole('link', { name: 'Pods' }).focus()
  await page.keyboard.press('Enter')
  await page.getByTestId('pod-row').first().waitFor({ timeout: 10_000 })
  t.is(await page.getByRole('link', { name: 'Pods' }).getAttribute('aria-current'), 'page')
  assertLocal(t, traffic, ui)
})

run('weighs under 300 KB compressed and asks nothing of any other host', async t => {
  const { page, traffic, ui } = w()
  // By now this page has opened every view and applied YAML (which loads the YAML parser).
  await page.getByRole('link', { name: 'Events' }).click()
  await page.getByRole('link', { name: 'Services' }).click()
  await page.getByRole('link', { name: 'Cluster' }).click()
  const uiBytes = [...traffic.bytes].filter(([u]) => new URL(u).pathname.startsWith('/ui/')).reduce((s, [, n]) => s + n, 0)
  t.log(`the UI's files: ${uiBytes} bytes on the wire, ${traffic.urls.length} requests in all`)
  t.true(uiBytes > 10_000, 'the files were counted')
  t.true(uiBytes < MAX_UI_BYTES, `${uiBytes} bytes`)
  assertLocal(t, traffic, ui)
  // 404 and 415 are the sign-in's role probes, 422 the refused ConfigMap: answers, not errors of the page.
  t.deepEqual(traffic.errors.filter(e => !/status of (404|415|422) /.test(e)), [], 'errors in the page')
})

run('SIGKILLing the leader: the open page shows the new leader and the dead member', async t => {
  const { page, leader, peers, ui } = w()
  await page.getByRole('link', { name: 'Cluster' }).click()
  await page.evaluate('window.notReloaded = true')
  await leader.kill('SIGKILL')
  const survivors = peers.filter(p => p !== leader).map(p => p.name)
  const newLeader = await waitFor('a new leader in the cluster bar', async () => {
    const name = await page.getByTestId('leader').textContent()
    return name !== null && survivors.includes(name) ? name : undefined
  }, 30_000)
  await page.locator(`[data-testid="member"][data-name="${leader.name}"][data-state="dead"]`).waitFor({ timeout: 30_000 })
  t.true(await page.evaluate('window.notReloaded === true'), 'the page was not reloaded')
  t.is((await waitForLeader(peers.filter(p => p.running), 10_000)).name, newLeader)
  const history = await page.getByTestId('leader-history').innerText()
  t.regex(history, new RegExp(`${newLeader} leads`))
  t.regex(history, new RegExp(`${leader.name} leads`))
  t.regex(await page.locator(`[data-testid="member-row"][data-name="${leader.name}"]`).innerText(), /dead/)
  t.is(new URL(page.url()).host, new URL(ui.apiUrl).host)
  await page.screenshot({ path: join(ARTIFACTS, 'ui-cluster-after-leader-kill-1280x800.png') })
})
