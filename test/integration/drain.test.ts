// Draining a node within a PodDisruptionBudget, on three real shoald peers
// (127.0.155.2-4, process runtime): a Deployment of 3 ready pods under a
// budget of minAvailable 3; `shoal drain` cordons a node with a pod on it
// and waits, saying which budget holds it, with the pods still there; once
// the budget is relaxed to 2 the drain completes and the pods run on the
// other nodes. Then the installed kubectl: `kubectl get pdb` shows ALLOWED
// DISRUPTIONS, and `kubectl drain --ignore-daemonsets
// --delete-emptydir-data --timeout=5s` fails on the budget's 429, and
// succeeds once the budget allows it. kubectl comes from the machine;
// without it that part fails under CI and is skipped elsewhere, as in
// kubectl.test.ts.
import test from 'ava'
import { spawnSync } from 'node:child_process'
import { mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import type { KObject } from '../../protocol/k8s.ts'
import { api, deploymentOf, SHOAL, startCluster, stopAll, waitFor, waitForLeader, waitForReadyNodes } from '../helpers/cluster.ts'
import type { Peer } from '../helpers/cluster.ts'
import { start } from '../helpers/run.ts'
import type { Run } from '../helpers/run.ts'

const IPS = ['127.0.155.2', '127.0.155.3', '127.0.155.4']
const HAS_KUBECTL = spawnSync('kubectl', ['version', '--client'], { encoding: 'utf8' }).status === 0
const CI = process.env.CI === 'true'
const PDB_PATH = '/apis/policy/v1/namespaces/default/poddisruptionbudgets'

type Pod = KObject & { spec: { nodeName?: string }, status?: { conditions?: Array<{ type: string, status: string }> } }

async function readyPods (peer: Peer): Promise<Pod[]> {
  const r = await api(peer, 'GET', '/api/v1/namespaces/default/pods?labelSelector=app%3Dweb')
  return ((r.body.items ?? []) as Pod[]).filter(p => p.metadata.deletionTimestamp === undefined && (p.status?.conditions ?? []).some(c => c.type === 'Ready' && c.status === 'True'))
}

/** Waits until 3 pods are ready and the budget's status says so, with `allowed` disruptions, for its current generation. */
async function settled (peer: Peer, allowed: number): Promise<Pod[]> {
  return await waitFor(`3 ready pods and the budget at ${allowed} allowed`, async () => {
    const pods = await readyPods(peer)
    const pdb = (await api(peer, 'GET', `${PDB_PATH}/web`)).body
    const s = pdb.status ?? {}
    return pods.length === 3 && s.currentHealthy === 3 && s.disruptionsAllowed === allowed && s.observedGeneration === pdb.metadata.generation && pods
  }, 60_000, 250)
}

async function setMinAvailable (peer: Peer, n: number): Promise<void> {
  const r = await api(peer, 'PATCH', `${PDB_PATH}/web`, { spec: { minAvailable: n } }, 'application/merge-patch+json')
  if (r.status !== 200) throw new Error(`patching the budget: ${r.status} ${JSON.stringify(r.body)}`)
}

test('drain waits for the disruption budget, then completes; kubectl drain meets the same budget', async t => {
  t.timeout(170_000)
  const { dir, peers } = await startCluster('drain', IPS)
  t.teardown(async () => { await stopAll(peers, dir) })
  const leader = await waitForLeader(peers, 60_000)
  await waitForReadyNodes(leader, 3)

  const deployment = deploymentOf('web', 3, {
    name: 'main',
    image: 'busybox',
    command: ['sh', '-c', 'exec sleep 600'],
    readinessProbe: { exec: { command: ['true'] }, periodSeconds: 1 }
  })
  t.is((await api(leader, 'POST', '/apis/apps/v1/namespaces/default/deployments', deployment)).status, 201)
  const budget = { apiVersion: 'policy/v1', kind: 'PodDisruptionBudget', metadata: { name: 'web' }, spec: { minAvailable: 3, selector: { matchLabels: { app: 'web' } } } }
  t.is((await api(leader, 'POST', PDB_PATH, budget)).status, 201)
  const pods = await settled(leader, 0)
  const status = (await api(leader, 'GET', `${PDB_PATH}/web`)).body.status
  t.like(status, { expectedPods: 3, desiredHealthy: 3, currentHealthy: 3, disruptionsAllowed: 0 })
  t.like(status.conditions?.[0], { type: 'DisruptionAllowed', status: 'False', reason: 'InsufficientPods' })

  // shoal drain, through a follower, on a node with a pod (p2 when it has one).
  const nodes = [...new Set(pods.map(p => p.spec.nodeName ?? ''))].sort((a, b) => Number(b === 'p2') - Number(a === 'p2'))
  const node = nodes[0] as string
  const onNode = pods.filter(p => p.spec.nodeName === node).map(p => p.metadata.name).sort()
  const follower = peers.find(p => p !== leader) as Peer
  const drain = start(process.execPath, [SHOAL, '--server', follower.apiUrl, '--token', follower.token(), 'drain', node, '--timeout', '90s'], process.env, 100_000)
  await new Promise(resolve => setTimeout(resolve, 8000))
  const waiting = drain.live()
  t.is(waiting.code, null, `the drain is still waiting: ${waiting.stdout}${waiting.stderr}`)
  t.regex(waiting.stdout, new RegExp(`^node/${node} cordoned\\n$`))
  t.regex(waiting.stderr, /cannot be evicted yet: the disruption budget default\/web allows no disruption now \(it needs 3 healthy pods and has 3; 0 disruptions allowed\); trying again every 5s/)
  t.deepEqual((await readyPods(leader)).filter(p => p.spec.nodeName === node).map(p => p.metadata.name).sort(), onNode, 'the pods are still there')

  await setMinAvailable(leader, 2)
  const drained = await drain.done
  t.is(drained.code, 0, drained.stderr)
  for (const name of onNode) t.true(drained.stdout.includes(`pod/${name ?? ''} evicted\n`), drained.stdout)
  t.true(drained.stdout.endsWith(`node/${node} drained\n`), drained.stdout)
  const moved = await settled(leader, 1)
  t.false(moved.some(p => p.spec.nodeName === node), 'no pod runs on the drained node')
  const node2 = moved[0]?.spec.nodeName ?? ''

  if (!HAS_KUBECTL) {
    if (CI) t.fail('kubectl is not installed (apt-get install kubernetes-client, or any kubectl on PATH); CI must have it')
    else t.log('kubectl is not installed: its part is skipped outside CI')
    return
  }
  const home = join(dir, 'home')
  mkdirSync(home, { recursive: true })
  const made = spawnSync(process.execPath, [SHOAL, '--server', leader.apiUrl, '--token', leader.token(), 'kubeconfig'], { encoding: 'utf8', env: { ...process.env, HOME: home }, timeout: 30_000 })
  t.is(made.status, 0, made.stderr)
  const kubeconfig = join(dir, 'kubeconfig')
  writeFileSync(kubeconfig, made.stdout)
  const env = { ...process.env, HOME: home, KUBECONFIG: kubeconfig }
  const kubectl = async (args: string[], timeoutMs = 60_000): Promise<Run> => await start('kubectl', ['--cache-dir', join(home, 'cache'), ...args], env, timeoutMs).done

  await setMinAvailable(leader, 3)
  await settled(leader, 0)
  const pdb = await kubectl(['get', 'pdb'])
  t.is(pdb.code, 0, pdb.stderr)
  t.regex(pdb.stdout, /^NAME\s+MIN AVAILABLE\s+MAX UNAVAILABLE\s+ALLOWED DISRUPTIONS\s+AGE\nweb\s+3\s+N\/A\s+0\s+\S+\n$/)

  const refused = await kubectl(['drain', node2, '--ignore-daemonsets', '--delete-emptydir-data', '--timeout=5s'])
  t.not(refused.code, 0, refused.stdout)
  t.regex(refused.stderr, /Cannot evict pod as it would violate the pod's disruption budget/)
  t.is((await readyPods(leader)).length, 3, 'no pod was evicted')

  await setMinAvailable(leader, 2)
  const allowed = await kubectl(['drain', node2, '--ignore-daemonsets', '--delete-emptydir-data', '--timeout=60s'], 90_000)
  t.is(allowed.code, 0, allowed.stderr)
  t.regex(allowed.stdout, new RegExp(`node/${node2} drained\\n$`))
  const last = await settled(leader, 1)
  t.false(last.some(p => p.spec.nodeName === node || p.spec.nodeName === node2))
})
