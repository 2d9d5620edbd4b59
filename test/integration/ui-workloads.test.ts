// The Workloads page's newer kinds in a real browser (Debian's Chromium
// through playwright-core) against one real shoald on 127.0.156.2: a Job
// and a CronJob under "Jobs & CronJobs" (status, completions, the CronJob's
// schedule and its next run, the same instant protocol/cron.ts computes),
// a DaemonSet and a StatefulSet under their section, a PodDisruptionBudget
// under "Disruption budgets", each section reached by its link and by its
// URL. Screenshots go to test-artifacts/. Without /usr/bin/chromium the
// tests are skipped, or fail when CI=true.
import test from 'ava'
import { mkdirSync } from 'node:fs'
import { join } from 'node:path'
import type { Browser, Page } from 'playwright-core'
import { nextScheduledTime } from '../../protocol/cron.ts'
import { ROOT, api, startCluster, stopAll, waitFor, waitForLeader } from '../helpers/cluster.ts'
import type { Peer } from '../helpers/cluster.ts'
import { browserMissing, launchBrowser, recordTraffic } from '../helpers/browser.ts'
import type { Traffic } from '../helpers/browser.ts'

const IP = '127.0.156.2'
const ARTIFACTS = join(ROOT, 'test-artifacts')
const SCHEDULE = '0 0 1 1 *'

const missing = browserMissing()
const run = missing !== undefined && process.env.CI !== 'true' ? test.serial.skip : test.serial
if (missing !== undefined) console.warn(`ui-workloads.test.ts: ${missing}${process.env.CI === 'true' ? '' : '; skipping the browser tests'}`)

const podTemplate = (app: string, restartPolicy: string, command: string): Record<string, unknown> => ({
  metadata: { labels: { app } },
  spec: { restartPolicy, terminationGracePeriodSeconds: 1, containers: [{ name: app, image: 'busybox', command: ['sh', '-c', command] }] }
})

const OBJECTS: Array<[string, Record<string, unknown>]> = [
  ['/apis/batch/v1/namespaces/default/jobs', { apiVersion: 'batch/v1', kind: 'Job', metadata: { name: 'once' }, spec: { template: podTemplate('once', 'Never', 'exit 0') } }],
  ['/apis/batch/v1/namespaces/default/cronjobs', {
    apiVersion: 'batch/v1', kind: 'CronJob', metadata: { name: 'new-year' }, spec: { schedule: SCHEDULE, jobTemplate: { spec: { template: podTemplate('new-year', 'OnFailure', 'exit 0') } } }
  }],
  ['/apis/apps/v1/namespaces/default/daemonsets', {
    apiVersion: 'apps/v1', kind: 'DaemonSet', metadata: { name: 'agent' }, spec: { selector: { matchLabels: { app: 'agent' } }, template: podTemplate('agent', 'Always', 'sleep 600') }
  }],
  ['/apis/apps/v1/namespaces/default/statefulsets', {
    apiVersion: 'apps/v1', kind: 'StatefulSet', metadata: { name: 'db' }, spec: { replicas: 1, serviceName: 'db', selector: { matchLabels: { app: 'db' } }, template: podTemplate('db', 'Always', 'sleep 600') }
  }],
  ['/apis/policy/v1/namespaces/default/poddisruptionbudgets', {
    apiVersion: 'policy/v1', kind: 'PodDisruptionBudget', metadata: { name: 'db' }, spec: { minAvailable: 1, selector: { matchLabels: { app: 'db' } } }
  }]
]

interface World { dir: string, peer: Peer, browser?: Browser, page?: Page, traffic?: Traffic }
let world: World | undefined

test.before(async () => {
  if (missing !== undefined && process.env.CI === 'true') throw new Error(`the UI tests need a browser under CI: ${missing}`)
  mkdirSync(ARTIFACTS, { recursive: true })
  const { dir, peers } = await startCluster('ui-workloads', [IP])
  const peer = peers[0]!
  world = { dir, peer }
  await waitForLeader(peers, 60_000)
  await waitFor('the default namespace', async () => (await api(peer, 'GET', '/api/v1/namespaces/default')).status === 200, 30_000)
  for (const [path, obj] of OBJECTS) {
    const r = await api(peer, 'POST', path, obj)
    if (r.status !== 201) throw new Error(`POST ${path}: ${r.status} ${JSON.stringify(r.body)}`)
  }
  if (missing !== undefined) return
  world.browser = await launchBrowser()
  const page = await (await world.browser.newContext({ viewport: { width: 1280, height: 800 } })).newPage()
  world.traffic = await recordTraffic(page)
  world.page = page
  await page.goto(`${peer.apiUrl}/ui/`)
  await page.getByLabel('API token').fill(peer.token(), { timeout: 15_000 })
  await page.getByRole('button', { name: 'Sign in' }).click()
  await page.getByTestId('role').filter({ hasText: 'admin' }).waitFor({ timeout: 10_000 })
})

test.after.always(async () => {
  await world?.browser?.close().catch(() => {})
  if (world !== undefined) await stopAll([world.peer], world.dir)
})

function page (): Page {
  if (world?.page === undefined) throw new Error('no browser page')
  return world.page
}

run('the Workloads page shows a Job and a CronJob, with the CronJob\'s next run', async t => {
  const p = page()
  await p.getByRole('link', { name: 'Workloads' }).click()
  await p.getByRole('link', { name: 'Jobs & CronJobs' }).click()
  await waitFor('the section in the URL', () => p.url().includes('show=jobs'), 5000)
  const job = p.locator('[data-testid="job-row"][data-name="once"]')
  await job.waitFor({ timeout: 15_000 })
  t.regex(await job.getByTestId('status').innerText(), /^(Running|Complete|Suspended|SuccessCriteriaMet)$/)
  t.regex(await job.getByTestId('completions').innerText(), /^[01]\/1$/)
  t.is(await p.getByRole('table', { name: /^Jobs \(1\)/ }).count(), 1)

  const cron = p.locator('[data-testid="cronjob-row"][data-name="new-year"]')
  await cron.waitFor({ timeout: 10_000 })
  t.is(await cron.getByTestId('schedule').innerText(), SCHEDULE)
  const next = cron.getByTestId('next-run').locator('time')
  t.regex(await next.innerText(), /^in \d+[smhd] \(\d\d:\d\d:\d\d\)$/)
  const expected = nextScheduledTime(SCHEDULE, undefined, Date.now())
  t.is(await next.getAttribute('datetime'), new Date(expected ?? 0).toISOString(), 'the browser\'s next run is the server\'s')
  await p.screenshot({ path: join(ARTIFACTS, 'ui-workloads-jobs-1280x800.png'), fullPage: true })
})

run('DaemonSets, StatefulSets and PodDisruptionBudgets have their own sections, reachable by URL', async t => {
  const p = page()
  await p.getByRole('link', { name: 'DaemonSets & StatefulSets' }).click()
  await p.locator('[data-testid="daemonset-row"][data-name="agent"]').waitFor({ timeout: 10_000 })
  const sts = p.locator('[data-testid="statefulset-row"][data-name="db"]')
  await sts.waitFor({ timeout: 10_000 })
  t.regex(await sts.getByTestId('ready').innerText(), /^\d+ \/ 1$/)
  t.is(await p.getByTestId('job-row').count(), 0, 'one section at a time')
  await p.goto(`${world!.peer.apiUrl}/ui/#/workloads?show=budgets`)
  const pdb = p.locator('[data-testid="pdb-row"][data-name="db"]')
  await pdb.waitFor({ timeout: 10_000 })
  t.regex(await pdb.innerText(), /min available 1/)
  t.is(await p.getByRole('link', { name: 'Disruption budgets' }).getAttribute('aria-current'), 'page')
  await p.getByRole('link', { name: 'Deployments' }).click()
  await p.getByRole('table', { name: /^Deployments \(0\)/ }).waitFor({ timeout: 10_000 })
  t.deepEqual(world!.traffic!.errors.filter(e => !/status of (404|415) /.test(e)), [], 'errors in the page')
})
