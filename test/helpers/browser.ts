// A real browser for UI tests: Debian's Chromium, driven by playwright-core.
// Where /usr/bin/chromium is missing, `browserMissing()` says why, so that a
// test skips (or fails under CI=true, where it must run).
import { existsSync } from 'node:fs'
import { chromium } from 'playwright-core'
import type { Browser, CDPSession, Page } from 'playwright-core'

export const CHROMIUM = process.env.SHOAL_CHROMIUM ?? '/usr/bin/chromium'

/** Why no browser test can run here, or undefined when one can. */
export function browserMissing (): string | undefined {
  return existsSync(CHROMIUM) ? undefined : `${CHROMIUM} is missing (apt-get install -y chromium)`
}

export async function launchBrowser (): Promise<Browser> {
  return await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-dev-shm-usage']
  })
}

export interface Traffic {
  /** every URL the page requested */
  urls: string[]
  /** bytes on the wire (headers and compressed bodies) of each finished response, by URL */
  bytes: Map<string, number>
  /** uncaught errors and console errors in the page */
  errors: string[]
}

/** Records a page's requests, its transferred bytes (from the DevTools protocol) and its errors. */
export async function recordTraffic (page: Page): Promise<Traffic & { cdp: CDPSession }> {
  const traffic: Traffic = { urls: [], bytes: new Map(), errors: [] }
  const urlOf = new Map<string, string>()
  page.on('request', r => { traffic.urls.push(r.url()) })
  page.on('pageerror', e => { traffic.errors.push(e.message) })
  page.on('console', m => { if (m.type() === 'error') traffic.errors.push(m.text()) })
  const cdp = await page.context().newCDPSession(page)
  await cdp.send('Network.enable')
  cdp.on('Network.responseReceived', e => { urlOf.set(e.requestId, e.response.url) })
  cdp.on('Network.loadingFinished', e => {
    const url = urlOf.get(e.requestId)
    if (url !== undefined) traffic.bytes.set(url, (traffic.bytes.get(url) ?? 0) + e.encodedDataLength)
  })
  return { ...traffic, cdp }
}
