// `logs -f` on three real shoald peers (127.0.12.2-4, process runtime): a
// pod that prints a line every 200 ms is followed over HTTP from the peer
// that runs it and from one that does not (over libp2p); lines arrive as
// they are written, aborting the request tears the remote side down, a
// follow ends by itself when the container ends, and `shoal logs -f` prints
// the whole log through a peer that does not run the pod.
import { spawn } from 'node:child_process'
import test from 'ava'
import type { ExecutionContext } from 'ava'
import type { KObject } from '../../protocol/k8s.ts'
import { SHOAL, startCluster, stopAll, waitFor, waitForLeader } from '../helpers/cluster.ts'
import type { Peer } from '../helpers/cluster.ts'

const IPS = ['127.0.12.2', '127.0.12.3', '127.0.12.4']
const TICKER = 'i=0; while [ $i -lt 30 ]; do echo line $i; i=$((i+1)); sleep 0.2; done'

function podManifest (name: string, nodeName: string, script: string): KObject {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name },
    spec: { nodeName, restartPolicy: 'Never', containers: [{ name: 'main', image: 'busybox', command: ['sh', '-c', script] }] }
  }
}

/** An open follow: the text so far, a wait for a condition on it, and the end. */
interface Follow {
  status: number
  text: () => string
  /** resolves once the server ended the body */
  done: Promise<void>
  until: (what: string, check: (text: string) => boolean, ms?: number) => Promise<string>
  abort: () => void
}

async function follow (peer: Peer, pod: string, query = ''): Promise<Follow> {
  const controller = new AbortController()
  const res = await fetch(`${peer.apiUrl}/api/v1/namespaces/default/pods/${pod}/log?follow=true${query}`, {
    headers: { authorization: `Bearer ${peer.token()}` },
    signal: controller.signal
  })
  let text = ''
  const decoder = new TextDecoder()
  const done = (async () => {
    if (res.body === null) return
    try {
      for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) text += decoder.decode(chunk, { stream: true })
    } catch { /* aborted */ }
  })()
  return {
    status: res.status,
    text: () => text,
    done,
    until: async (what, check, ms = 15_000) => await waitFor(what, () => check(text) ? text : undefined, ms, 20),
    abort: () => { controller.abort() }
  }
}

/** The numbers of the complete `line N` lines, in order. */
function numbers (text: string): number[] {
  return text.split('\n').slice(0, -1).map(l => Number(/^line (\d+)$/.exec(l)?.[1] ?? NaN))
}

function consecutive (ns: number[]): boolean {
  return ns.every((n, i) => i === 0 || n === (ns[i - 1] as number) + 1)
}

/** Follows `pod` on `peer`, sees lines written after the answer began, then hangs up. */
async function followWhileRunning (t: ExecutionContext, peer: Peer, pod: string): Promise<void> {
  const f = await follow(peer, pod, '&tailLines=2')
  t.is(f.status, 200)
  const first = await f.until('a first line', text => numbers(text).length >= 1)
  const seen = Math.max(...numbers(first))
  // Later lines arrive as the container writes them, none lost or repeated.
  const later = await f.until(`a line after line ${seen}`, text => Math.max(...numbers(text)) >= seen + 2)
  t.true(consecutive(numbers(later)), later)
  t.true(numbers(later).length > numbers(first).length, 'the log grew while followed')
  f.abort()
  await f.done
}

test('logs follow streams a running pod\'s output from any peer and ends with the container', async t => {
  t.timeout(180_000)
  const { dir, peers } = await startCluster('logs-follow', IPS, ['--log-level', 'debug'])
  try {
    const leader = await waitForLeader(peers, 60_000)
    await waitFor('three Ready nodes', async () => {
      const r = await leader.call('GET', '/api/v1/nodes')
      const items = ((r.json as { items?: KObject[] }).items ?? [])
      return items.filter(n => ((n.status as any)?.conditions ?? []).some((c: any) => c.type === 'Ready' && c.status === 'True')).length === 3 || undefined
    }, 60_000)
    const runner = peers[1] as Peer
    const [elsewhere, third] = peers.filter(p => p !== runner) as [Peer, Peer]

    // Before anything streams, errors keep their codes.
    const missing = await elsewhere.call('GET', '/api/v1/namespaces/default/pods/nope/log?follow=1')
    t.is(missing.status, 404)

    const created = await leader.call('POST', '/api/v1/namespaces/default/pods', JSON.stringify(podManifest('ticker', runner.name, TICKER)))
    t.is(created.status, 201, JSON.stringify(created.json))
    await waitFor('the ticker running', async () => {
      const p = (await leader.call('GET', '/api/v1/namespaces/default/pods/ticker')).json as any
      return p.status?.phase === 'Running' || undefined
    }, 30_000)
    const badContainer = await elsewhere.call('GET', '/api/v1/namespaces/default/pods/ticker/log?follow=true&container=other')
    t.is(badContainer.status, 400)

    // From the peer that runs it, then from one that does not.
    await followWhileRunning(t, runner, 'ticker')
    await followWhileRunning(t, elsewhere, 'ticker')
    // Hanging up reached the peer that runs the pod: its end of the libp2p stream closed.
    await waitFor('the runner to see the follower go', () => runner.events().some(e => e.event === 'pod-logs.ended'), 10_000)

    // Followed to the end, over HTTP and with the CLI, through peers that do not run it.
    const cli = spawn(process.execPath, [SHOAL, '--server', third.apiUrl, '--token', third.token(), 'logs', '-f', 'ticker'], { stdio: ['ignore', 'pipe', 'pipe'] })
    let cliOut = ''
    let cliErr = ''
    cli.stdout.setEncoding('utf8').on('data', (s: string) => { cliOut += s })
    cli.stderr.setEncoding('utf8').on('data', (s: string) => { cliErr += s })
    const cliExit = new Promise<number | null>(resolve => cli.once('exit', code => { resolve(code) }))
    const whole = await follow(elsewhere, 'ticker')
    await Promise.race([whole.done, new Promise((_resolve, reject) => setTimeout(() => { reject(new Error('the follow did not end with the container')) }, 30_000))])
    const all = Array.from({ length: 30 }, (_, i) => `line ${i}\n`).join('')
    t.is(whole.text(), all)
    const code = await Promise.race([cliExit, new Promise<never>((_resolve, reject) => setTimeout(() => { reject(new Error('shoal logs -f did not end')) }, 30_000))])
    t.is(code, 0, cliErr)
    t.is(cliOut, all)

    // A pod that ends soon: its follow ends by itself, from the peer that runs it too.
    const quick = await leader.call('POST', '/api/v1/namespaces/default/pods', JSON.stringify(podManifest('quick', runner.name, 'echo one; sleep 1; echo two')))
    t.is(quick.status, 201)
    const local = await waitFor('a follow of the quick pod', async () => {
      const f = await follow(runner, 'quick')
      if (f.status === 200) return f
      f.abort()
      return undefined
    }, 30_000)
    await Promise.race([local.done, new Promise((_resolve, reject) => setTimeout(() => { reject(new Error('the local follow did not end')) }, 30_000))])
    t.is(local.text(), 'one\ntwo\n')
  } finally {
    await stopAll(peers, dir)
  }
})
