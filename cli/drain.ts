// `shoal drain NODE`, as `kubectl drain --ignore-daemonsets` does it: the
// node is cordoned, then every pod on it is evicted through the eviction
// subresource, so that PodDisruptionBudgets hold: a pod its budget does not
// let go yet (429) is tried again every 5 s, with a line naming the budget,
// until it goes or --timeout passes (5m by default; 0 waits for ever, as
// kubectl's default does). DaemonSet pods (their controller would put them
// back) and mirror pods are left alone. Evicted pods are waited for until
// they are gone. A server without the eviction subresource (discovery does
// not list pods/eviction) gets plain deletes, as kubectl falls back to.
// May import: protocol/, ./kube.ts, ./client.ts, ./errors.ts, ./io.ts, ms.
import ms from 'ms'
import { POD, POD_DISRUPTION_BUDGET } from '../protocol/kinds.ts'
import type { KObject } from '../protocol/k8s.ts'
import { isPlainObject } from '../protocol/json.ts'
import { budgetSelects } from '../protocol/policy-v1.ts'
import type { PodDisruptionBudget } from '../protocol/policy-v1.ts'
import { HttpStatusError, OutcomeUnknownError } from './client.ts'
import { CliError, EXIT_USAGE } from './errors.ts'
import type { Io } from './io.ts'
import { collectionPath, Failures, objectPath, query } from './kube.ts'
import type { Kube } from './kube.ts'

/** How long a drain waits for budgets by default; `--timeout 0` waits for ever. */
export const DEFAULT_DRAIN_TIMEOUT = '5m'
/** kubectl drain's pause between evictions a budget refused. */
export const EVICTION_RETRY_MS = 5000
/** How often an evicted pod is looked for until it is gone. */
const GONE_POLL_MS = 1000
const MIRROR_ANNOTATION = 'kubernetes.io/config.mirror'

export interface DrainOptions {
  /** 0: no limit */
  timeoutMs: number
  gracePeriodSeconds?: number
  /** between evictions a budget refused (default EVICTION_RETRY_MS) */
  retryMs?: number
}

/** `--timeout` as milliseconds: a duration (90s, 5m) or whole seconds; a usage error otherwise. */
export function parseDrainTimeout (text: string): number {
  const value = /^\d+$/.test(text) ? Number(text) * 1000 : ms(text as ms.StringValue)
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) throw new CliError(`--timeout must be a duration such as 60s or 5m (0: no limit), not "${text}"`, EXIT_USAGE)
  return value
}

/** `--grace-period`: whole seconds, or -1 (the default) for each pod's own. */
export function parseGracePeriod (text: string | undefined): number | undefined {
  if (text === undefined || text === '-1') return undefined
  if (!/^\d+$/.test(text)) throw new CliError(`--grace-period must be a whole number of seconds (-1: each pod's own), not "${text}"`, EXIT_USAGE)
  return Number(text)
}

function podName (p: KObject): string {
  return `${p.metadata.namespace ?? 'default'}/${p.metadata.name ?? ''}`
}

/** Evicts (or, without the subresource, deletes) every pod on `node` but DaemonSet and mirror pods; the node is cordoned already. */
export async function drainPods (kube: Kube, io: Io, node: string, opts: DrainOptions): Promise<void> {
  const started = Date.now()
  const deadline = opts.timeoutMs > 0 ? started + opts.timeoutMs : Infinity
  const list = await kube.list(collectionPath(POD, undefined) + query({ fieldSelector: `spec.nodeName=${node}` }))
  const daemonSetPods = list.items.filter(p => (p.metadata.ownerReferences ?? []).some(r => r.controller === true && r.kind === 'DaemonSet'))
  const pods = list.items.filter(p => !daemonSetPods.includes(p) && p.metadata.annotations?.[MIRROR_ANNOTATION] === undefined)
  if (daemonSetPods.length > 0) io.stderr.write(`Warning: ignoring DaemonSet-managed Pods: ${daemonSetPods.map(podName).join(', ')}\n`)
  const evictions = pods.length > 0 && await servesEviction(kube)
  const failures = new Failures(io)
  await Promise.all(pods.map(async p => {
    try {
      if (evictions) await evictPod(kube, io, p, { ...opts, deadline, started, node })
      else {
        await kube.send('DELETE', objectPath(POD, p.metadata.namespace ?? 'default', p.metadata.name ?? ''))
        io.stdout.write(`pod/${p.metadata.name ?? ''} deleted\n`)
      }
    } catch (err) { failures.add(err) }
  }))
  failures.finish()
}

/** Whether the server lists pods/eviction in its v1 discovery document, as kubectl's CheckEvictionSupport asks. */
async function servesEviction (kube: Kube): Promise<boolean> {
  let body: unknown
  try {
    body = (await kube.client.request('GET', '/api/v1')).body
  } catch (err) {
    if (err instanceof HttpStatusError) return false
    kube.fail(err)
  }
  const resources = isPlainObject(body) && Array.isArray(body.resources) ? body.resources : []
  return resources.some(r => isPlainObject(r) && r.name === 'pods/eviction' && r.kind === 'Eviction')
}

interface EvictContext extends DrainOptions { deadline: number, started: number, node: string }

/** Evicts one pod, trying again while its budget refuses, then waits until it is gone. */
async function evictPod (kube: Kube, io: Io, pod: KObject, c: EvictContext): Promise<void> {
  const ns = pod.metadata.namespace ?? 'default'
  const name = pod.metadata.name ?? ''
  const path = `${objectPath(POD, ns, name)}/eviction`
  const body = {
    apiVersion: 'policy/v1',
    kind: 'Eviction',
    metadata: { name, namespace: ns },
    ...(c.gracePeriodSeconds !== undefined ? { deleteOptions: { gracePeriodSeconds: c.gracePeriodSeconds } } : {})
  }
  let said = ''
  for (;;) {
    try {
      await kube.client.request('POST', path, Buffer.from(JSON.stringify(body)), 'application/json')
      io.stdout.write(`pod/${name} evicted\n`)
      break
    } catch (err) {
      if (err instanceof HttpStatusError && err.code === 404) return
      if (err instanceof OutcomeUnknownError && err.message.includes('more than one PodDisruptionBudget')) {
        throw new CliError(`cannot evict pod ${ns}/${name}: it has more than one PodDisruptionBudget, which the eviction subresource does not support`)
      }
      if (!(err instanceof HttpStatusError) || err.code !== 429) kube.fail(err)
      const why = await refusal(kube, pod)
      if (Date.now() + (c.retryMs ?? EVICTION_RETRY_MS) > c.deadline) {
        throw new CliError(`drain ${c.node}: gave up after ${ms(Date.now() - c.started)} (--timeout): pod ${ns}/${name} cannot be evicted: ${why}`)
      }
      if (why !== said) io.stderr.write(`pod ${ns}/${name} cannot be evicted yet: ${why}; trying again every ${(c.retryMs ?? EVICTION_RETRY_MS) / 1000}s\n`)
      said = why
      await pause(io, c.retryMs ?? EVICTION_RETRY_MS)
    }
  }
  await waitGone(kube, io, pod, c)
}

/** Why a 429 refused the pod: its budget, by name, with the counts it has. */
async function refusal (kube: Kube, pod: KObject): Promise<string> {
  const ns = pod.metadata.namespace ?? 'default'
  let budgets: PodDisruptionBudget[] = []
  try {
    budgets = (await kube.list(collectionPath(POD_DISRUPTION_BUDGET, ns))).items as PodDisruptionBudget[]
  } catch { /* the refusal stands; only its explanation is shorter */ }
  const pdb = budgets.find(b => budgetSelects(b, pod.metadata.labels))
  if (pdb === undefined) return "it would violate the pod's disruption budget"
  const s = pdb.status
  const counts = s === undefined ? '' : ` (it needs ${s.desiredHealthy} healthy pods and has ${s.currentHealthy}; ${s.disruptionsAllowed} disruptions allowed)`
  return `the disruption budget ${ns}/${pdb.metadata.name ?? ''} allows no disruption now${counts}`
}

/** Polls until the pod is gone (or replaced under the same name), within the deadline. */
async function waitGone (kube: Kube, io: Io, pod: KObject, c: EvictContext): Promise<void> {
  const ns = pod.metadata.namespace ?? 'default'
  const name = pod.metadata.name ?? ''
  for (;;) {
    const now = await kube.find(objectPath(POD, ns, name))
    if (now === undefined || now.metadata.uid !== pod.metadata.uid) return
    if (Date.now() + GONE_POLL_MS > c.deadline) throw new CliError(`drain ${c.node}: gave up after ${ms(Date.now() - c.started)} (--timeout): pod ${ns}/${name} was evicted but is still there`)
    await pause(io, GONE_POLL_MS)
  }
}

/** Waits `delay` ms; a run the user interrupts (io.signal) ends with an error. */
async function pause (io: Io, delay: number): Promise<void> {
  await new Promise<void>(resolve => {
    const timer = setTimeout(done, delay)
    function done (): void {
      clearTimeout(timer)
      io.signal?.removeEventListener('abort', done)
      resolve()
    }
    io.signal?.addEventListener('abort', done, { once: true })
  })
  if (io.signal?.aborted === true) throw new CliError('drain interrupted')
}
