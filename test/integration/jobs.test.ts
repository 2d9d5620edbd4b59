// Jobs on three real shoald peers (127.0.151.2-4, process runtime), one
// cluster for the file, the tests one after another: an Indexed Job gives
// each index exactly once (JOB_COMPLETION_INDEX and HOSTNAME read back from
// the pods' logs); kubectl applies Jobs written as in Kubernetes'
// documentation, in block and in flow style, and `kubectl get jobs` shows
// COMPLETIONS; a Job of 5 completions with parallelism 2 finishes with
// exactly 5 succeeded pods, counted once, while the leader is SIGKILLed mid-
// run and restarted a few seconds later (its pods keep running meanwhile, as
// under a real kubelet, and it reports them when it is back). The peers run
// with --pod-eviction-grace 120s: otherwise the dead node's pods, the
// succeeded ones too, would be deleted to run elsewhere, and "5 Succeeded
// pods" could not be checked. kubectl comes from the machine; without it that
// test fails under CI and is skipped elsewhere.
import test from 'ava'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import type { Job } from '../../protocol/batch-v1.ts'
import type { Pod } from '../../protocol/core-v1.ts'
import { api, restartPeer, startCluster, stopAll, waitFor, waitForLeader, waitForReadyNodes } from '../helpers/cluster.ts'
import type { Peer } from '../helpers/cluster.ts'
import { HAS_KUBECTL, kubectlAgainst } from '../helpers/kubectl.ts'
import type { Run } from '../helpers/run.ts'

const IPS = ['127.0.151.2', '127.0.151.3', '127.0.151.4']
const CI = process.env.CI === 'true'
const INDEX = 'batch.kubernetes.io/job-completion-index'
const FINALIZER = 'batch.kubernetes.io/job-tracking'

let cluster: { dir: string, peers: Peer[] } | undefined

test.before(async () => {
  cluster = await startCluster('jobs', IPS, ['--pod-eviction-grace', '120s'])
  await waitForLeader(cluster.peers, 60_000)
  await waitForReadyNodes(cluster.peers[0] as Peer, 3)
})

test.after.always(async () => {
  if (cluster !== undefined) await stopAll(cluster.peers, cluster.dir)
})

function running (): Peer {
  const p = cluster?.peers.find(x => x.running)
  if (p === undefined) throw new Error('no peer runs')
  return p
}

function jobOf (name: string, spec: Record<string, unknown>, command: string): Record<string, unknown> {
  return {
    apiVersion: 'batch/v1',
    kind: 'Job',
    metadata: { name, namespace: 'default' },
    spec: { ...spec, template: { spec: { restartPolicy: 'Never', terminationGracePeriodSeconds: 1, containers: [{ name: 'main', image: 'busybox', command: ['sh', '-c', command] }] } } }
  }
}

async function getJob (name: string): Promise<Job> {
  const r = await api(running(), 'GET', `/apis/batch/v1/namespaces/default/jobs/${name}`)
  if (r.status !== 200) throw new Error(`GET job ${name}: ${r.status}`)
  return r.body as Job
}

async function podsOf (job: Job): Promise<Pod[]> {
  const r = await api(running(), 'GET', '/api/v1/namespaces/default/pods')
  return ((r.body.items ?? []) as Pod[]).filter(p => (p.metadata.ownerReferences ?? []).some(o => o.uid === job.metadata.uid))
}

function finishedAs (job: Job): string | undefined {
  return (job.status?.conditions ?? []).find(c => (c.type === 'Complete' || c.type === 'Failed') && c.status === 'True')?.type
}

async function waitFinished (name: string, timeoutMs: number): Promise<Job> {
  return await waitFor(`job ${name} to finish`, async () => {
    const job = await getJob(name)
    return finishedAs(job) !== undefined ? job : undefined
  }, timeoutMs, 250)
}

test.serial('an Indexed Job runs each index exactly once, with JOB_COMPLETION_INDEX and its hostname', async t => {
  t.timeout(60_000)
  const peer = running()
  const created = await api(peer, 'POST', '/apis/batch/v1/namespaces/default/jobs',
    jobOf('indexed', { completions: 4, parallelism: 2, completionMode: 'Indexed' }, 'echo "index=$JOB_COMPLETION_INDEX host=$HOSTNAME"; sleep 1'))
  t.is(created.status, 201, JSON.stringify(created.body))
  const job = await waitFinished('indexed', 45_000)
  t.is(finishedAs(job), 'Complete')
  t.like(job.status, { succeeded: 4, completedIndexes: '0-3' })
  t.is(job.status?.failed, undefined)
  const pods = (await podsOf(job)).filter(p => p.status?.phase === 'Succeeded')
  t.is(pods.length, 4, 'one succeeded pod per index')
  const seen: string[] = []
  for (const p of pods) {
    const ix = p.metadata.annotations?.[INDEX] ?? ''
    t.is(p.metadata.labels?.[INDEX], ix)
    const log = await api(peer, 'GET', `/api/v1/namespaces/default/pods/${p.metadata.name ?? ''}/log`)
    t.is(log.status, 200)
    t.is(String(log.body).trim(), `index=${ix} host=indexed-${ix}`, `pod ${p.metadata.name ?? ''}`)
    seen.push(ix)
  }
  t.deepEqual(seen.sort(), ['0', '1', '2', '3'])
})

const BLOCK = `apiVersion: batch/v1
kind: Job
metadata:
  name: pi
spec:
  template:
    spec:
      containers:
      - name: pi
        image: busybox
        command: ["sh", "-c", "echo 3.14159"]
      restartPolicy: Never
  backoffLimit: 4
`

// Flow style below the top level (a document that starts with '{' kubectl reads as JSON).
const FLOW = `apiVersion: batch/v1
kind: Job
metadata: {name: flow}
spec: {completions: 3, parallelism: 3, template: {spec: {restartPolicy: Never,
  containers: [{name: c, image: busybox, command: [sh, -c, "echo flow"]}]}}}
`

const maybe = HAS_KUBECTL || CI ? test.serial : test.serial.skip

maybe('kubectl applies Jobs in block and flow style; get jobs shows COMPLETIONS', async t => {
  if (!HAS_KUBECTL) {
    t.fail('kubectl is not installed (apt-get install kubernetes-client, or any kubectl on PATH); CI must have it')
    return
  }
  t.timeout(60_000)
  const { dir } = cluster as { dir: string }
  const peer = running()
  const { kubectl: runKubectl } = await kubectlAgainst(peer, dir)
  writeFileSync(join(dir, 'pi.yaml'), BLOCK)
  writeFileSync(join(dir, 'flow.yaml'), FLOW)
  const kubectl = async (args: string[]): Promise<Run> => await runKubectl(args)
  const block = await kubectl(['apply', '-f', join(dir, 'pi.yaml')])
  t.is(block.code, 0, block.stderr)
  t.is(block.stdout, 'job.batch/pi created\n')
  const flow = await kubectl(['apply', '-f', join(dir, 'flow.yaml')])
  t.is(flow.code, 0, flow.stderr)
  t.is(flow.stdout, 'job.batch/flow created\n')
  const listed = await waitFor('both Jobs complete in kubectl get jobs', async () => {
    const r = await kubectl(['get', 'jobs'])
    return /^pi\s+Complete\s+1\/1\s/m.test(r.stdout) && /^flow\s+Complete\s+3\/3\s/m.test(r.stdout) ? r.stdout : undefined
  }, 45_000, 500)
  t.regex(listed, /^NAME\s+STATUS\s+COMPLETIONS\s+DURATION\s+AGE\n/)
  const logs = await kubectl(['logs', 'job/pi'])
  t.is(logs.stdout, '3.14159\n', logs.stderr)
})

test.serial('a Job counts exactly 5 completions with parallelism 2 while its leader is SIGKILLed mid-run', async t => {
  t.timeout(90_000)
  const peers = (cluster as { peers: Peer[] }).peers
  const leader = await waitForLeader(peers, 30_000)
  const created = await api(leader, 'POST', '/apis/batch/v1/namespaces/default/jobs', jobOf('steady', { completions: 5, parallelism: 2 }, 'sleep 2'))
  t.is(created.status, 201, JSON.stringify(created.body))
  const job0 = created.body as Job
  // Never more than parallelism active pods, in any replica the test reads.
  let maxActive = 0
  let sampling = true
  const sampler = (async () => {
    while (sampling) {
      try {
        const active = (await podsOf(job0)).filter(p => p.metadata.deletionTimestamp === undefined && p.status?.phase !== 'Succeeded' && p.status?.phase !== 'Failed')
        maxActive = Math.max(maxActive, active.length)
      } catch { /* a peer going away */ }
      await new Promise(resolve => setTimeout(resolve, 150))
    }
  })()
  try {
    // Mid-run: a pod has succeeded and others run.
    await waitFor('a first pod to succeed', async () => (await podsOf(job0)).some(p => p.status?.phase === 'Succeeded'), 30_000, 100)
    await leader.kill('SIGKILL')
    const killedAt = Date.now()
    const next = await waitForLeader(peers.filter(p => p.running), 30_000)
    t.not(next, leader)
    t.log(`a new leader ${Date.now() - killedAt} ms after the SIGKILL`)
    await new Promise(resolve => setTimeout(resolve, 3000))
    const back = await restartPeer(leader)
    peers[peers.indexOf(leader)] = back
    const job = await waitFinished('steady', 60_000)
    t.log(`finished ${Date.now() - killedAt} ms after the SIGKILL`)
    t.is(finishedAs(job), 'Complete')
    t.is(job.status?.succeeded, 5)
    t.is(job.status?.failed, undefined)
    t.deepEqual(job.status?.uncountedTerminatedPods, {})
    const pods = await podsOf(job)
    t.is(pods.filter(p => p.status?.phase === 'Succeeded').length, 5, 'exactly 5 Succeeded pods')
    t.is(pods.length, 5, 'no pod beyond them')
    t.true(pods.every(p => !(p.metadata.finalizers ?? []).includes(FINALIZER)))
    t.true(maxActive <= 2, `at most 2 active pods at once (saw ${maxActive})`)
  } finally {
    sampling = false
    await sampler
  }
})
