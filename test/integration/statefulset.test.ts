// StatefulSets on three real shoald peers (127.0.154.2-4, process runtime,
// service range 127.97.154.0/24, DNS on port 10053), driven by kubectl:
// Kubernetes' `web`/`nginx` example (a headless Service and a StatefulSet of
// 3, busybox commands instead of nginx, an exec readiness probe) is applied;
// the pods start in order (a pod watch sees web-1 made only after web-0 was
// Ready, web-2 after web-1); each pod's stable name resolves through every
// peer's DNS server to its own IP; `kubectl rollout status` succeeds; a
// rolling update with partition 2 changes only web-2, and a leader SIGKILLed
// in the middle of it does not break it. The dead leader's pod is made again
// elsewhere only once its peer would have fenced itself (10 s + grace +
// margin after it was declared dead); the crashed daemon's old process runs
// on meanwhile (the window docs/decisions/2026-12-03-statefulsets.md
// describes) until the peer starts again, and then no pod name runs twice.
// kubectl comes from the machine: without it the test fails under CI and is
// skipped elsewhere (as kubectl.test.ts).
import test from 'ava'
import type { ExecutionContext } from 'ava'
import { spawnSync } from 'node:child_process'
import { Resolver } from 'node:dns/promises'
import { mkdirSync, readdirSync, readFileSync, readlinkSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { api, restartPeer, SHOAL, startCluster, stopAll, waitFor, waitForLeader, waitForReadyNodes } from '../helpers/cluster.ts'
import type { Peer } from '../helpers/cluster.ts'
import { run } from '../helpers/run.ts'
import type { Run } from '../helpers/run.ts'

const IPS = ['127.0.154.2', '127.0.154.3', '127.0.154.4']
const DNS_PORT = 10053
const HAS_KUBECTL = spawnSync('kubectl', ['version', '--client'], { encoding: 'utf8' }).status === 0
const CI = process.env.CI === 'true'

function manifest (version: number, partition?: number): string {
  return `apiVersion: v1
kind: Service
metadata:
  name: nginx
  labels: {app: nginx}
spec:
  ports:
  - port: 80
    name: web
  clusterIP: None
  selector:
    app: nginx
---
apiVersion: apps/v1
kind: StatefulSet
metadata:
  name: web
spec:
  selector:
    matchLabels:
      app: nginx
  serviceName: "nginx"
  replicas: 3
${partition === undefined ? '' : `  updateStrategy:\n    type: RollingUpdate\n    rollingUpdate:\n      partition: ${partition}\n`}  template:
    metadata:
      labels:
        app: nginx
    spec:
      terminationGracePeriodSeconds: 1
      containers:
      - name: nginx
        image: busybox
        command: ["sh", "-c", "echo $POD_NAME serving version ${version}; exec sleep 600"]
        env:
        - name: POD_NAME
          valueFrom: {fieldRef: {fieldPath: metadata.name}}
        ports:
        - containerPort: 80
          name: web
        readinessProbe:
          exec: {command: ["true"]}
          periodSeconds: 1
`
}

interface Pod {
  metadata: { name: string, uid: string, creationTimestamp?: string, deletionTimestamp?: string, labels?: Record<string, string> }
  spec: { nodeName?: string, hostname?: string, subdomain?: string }
  status?: { podIP?: string, conditions?: Array<{ type: string, status: string, lastTransitionTime?: string }> }
}

const isReady = (p: Pod): boolean => (p.status?.conditions ?? []).some(c => c.type === 'Ready' && c.status === 'True')

/** The set's live pods by name, from `peer`. */
async function pods (peer: Peer): Promise<Map<string, Pod>> {
  const r = await api(peer, 'GET', '/api/v1/namespaces/default/pods?labelSelector=app%3Dnginx')
  return new Map(((r.body.items ?? []) as Pod[]).filter(p => p.metadata.deletionTimestamp === undefined).map(p => [p.metadata.name, p]))
}

/** Records every pod event of the set (a watch through `peer`) until stopped. */
function watchPods (peer: Peer): { events: Array<{ type: string, pod: Pod }>, stop: () => void } {
  const events: Array<{ type: string, pod: Pod }> = []
  const abort = new AbortController()
  void (async () => {
    const res = await fetch(`${peer.apiUrl}/api/v1/namespaces/default/pods?watch=true&labelSelector=app%3Dnginx`, { headers: { authorization: `Bearer ${peer.token()}` }, signal: abort.signal })
    if (res.body === null) return
    let buf = ''
    for await (const chunk of res.body.pipeThrough(new TextDecoderStream())) {
      buf += chunk
      const lines = buf.split('\n')
      buf = lines.pop() ?? ''
      for (const l of lines) if (l.trim() !== '') events.push(((e: { type: string, object: Pod }) => ({ type: e.type, pod: e.object }))(JSON.parse(l)))
    }
  })().catch(() => undefined)
  return { events, stop: () => { abort.abort() } }
}

/** Each pod's A record through `ip`'s DNS server. */
async function resolveAll (ip: string, names: string[]): Promise<string[]> {
  const r = new Resolver({ timeout: 2000, tries: 2 })
  r.setServers([`${ip}:${DNS_PORT}`])
  return await Promise.all(names.map(async n => (await r.resolve4(`${n}.nginx.default.svc.cluster.local`)).join(',')))
}

/** Process groups under `dir` (the peers' pods) per POD_NAME in their environment. */
function podProcessGroups (dir: string): Map<string, Set<number>> {
  const out = new Map<string, Set<number>>()
  for (const pid of readdirSync('/proc').filter(x => /^\d+$/.test(x))) {
    try {
      if (!readlinkSync(`/proc/${pid}/cwd`).startsWith(dir)) continue
      const name = readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0').find(v => v.startsWith('POD_NAME='))?.slice('POD_NAME='.length)
      if (name === undefined) continue
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
      const pgrp = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[2])
      const groups = out.get(name) ?? new Set<number>()
      groups.add(pgrp)
      out.set(name, groups)
    } catch { /* gone meanwhile */ }
  }
  return out
}

function checkOrder (t: ExecutionContext, events: Array<{ type: string, pod: Pod }>): void {
  // web-i appears only after web-(i-1) was seen Running and Ready.
  for (const [prev, next] of [['web-0', 'web-1'], ['web-1', 'web-2']] as const) {
    const added = events.findIndex(e => e.type === 'ADDED' && e.pod.metadata.name === next)
    const ready = events.findIndex(e => e.pod.metadata.name === prev && isReady(e.pod))
    t.true(added > 0 && ready >= 0 && ready < added, `${next} made (event ${added}) after ${prev} was Ready (event ${ready})`)
  }
}

const maybe = HAS_KUBECTL || CI ? test : test.skip

maybe('a StatefulSet: ordered start, stable DNS names, kubectl rollout status, a partitioned update through a leader crash', async t => {
  if (!HAS_KUBECTL) {
    t.fail('kubectl is not installed (apt-get install kubernetes-client, or any kubectl on PATH); CI must have it')
    return
  }
  t.timeout(170_000)
  const { dir, peers } = await startCluster('statefulset', IPS, ['--service-cidr', '127.97.154.0/24', '--dns-port', String(DNS_PORT)])
  t.teardown(async () => { await stopAll(peers, dir) })
  const leader = await waitForLeader(peers, 60_000)
  await waitForReadyNodes(leader, 3)

  const home = join(dir, 'home')
  mkdirSync(home, { recursive: true })
  const first = peers[0] as Peer
  const made = await run(process.execPath, [SHOAL, '--server', first.apiUrl, '--token', first.token(), 'kubeconfig'], { ...process.env, HOME: home })
  t.is(made.code, 0, made.stderr)
  const kubeconfig = join(dir, 'kubeconfig')
  writeFileSync(kubeconfig, made.stdout)
  const env = { ...process.env, HOME: home, KUBECONFIG: kubeconfig }
  const kubectl = async (args: string[], timeoutMs?: number): Promise<Run> => await run('kubectl', ['--cache-dir', join(home, 'cache'), ...args], env, timeoutMs)
  const file = join(dir, 'web.yaml')

  // Ordered creation, seen through a watch.
  const watch = watchPods(leader)
  writeFileSync(file, manifest(1))
  const applied = await kubectl(['apply', '-f', file])
  t.is(applied.code, 0, applied.stderr)
  t.is(applied.stdout, 'service/nginx created\nstatefulset.apps/web created\n')
  const rollout = await kubectl(['rollout', 'status', 'statefulset/web', '--timeout=90s'], 100_000)
  t.is(rollout.code, 0, rollout.stderr)
  t.regex(rollout.stdout, /roll out complete: 3 new pods have been updated/)
  const before = await waitFor('3 Ready pods', async () => { const p = await pods(leader); return [...p.values()].filter(isReady).length === 3 && p }, 30_000)
  watch.stop()
  checkOrder(t, watch.events)
  for (const [name, p] of before) {
    t.is(p.spec.hostname, name)
    t.is(p.spec.subdomain, 'nginx')
    t.is(p.metadata.labels?.['statefulset.kubernetes.io/pod-name'], name)
  }
  const names = ['web-0', 'web-1', 'web-2']
  const ips = names.map(n => before.get(n)?.status?.podIP ?? '')
  t.true(ips.every(ip => ip !== ''))
  t.true((before.get('web-0')?.metadata.creationTimestamp ?? '') <= (before.get('web-1')?.metadata.creationTimestamp ?? ''))
  t.true((before.get('web-1')?.metadata.creationTimestamp ?? '') <= (before.get('web-2')?.metadata.creationTimestamp ?? ''))

  // Stable names in every peer's DNS (the Endpoints carry each pod's hostname).
  for (const ip of IPS) {
    t.deepEqual(await waitFor(`${ip}'s DNS`, async () => { const got = await resolveAll(ip, names); return got.join() === ips.join() && got }, 20_000), ips)
  }
  const headless = new Resolver({ timeout: 2000, tries: 2 })
  headless.setServers([`${IPS[1] as string}:${DNS_PORT}`])
  t.deepEqual((await headless.resolve4('nginx.default.svc.cluster.local')).sort(), [...ips].sort())

  // A partitioned rolling update: only web-2 changes. The leader dies in the middle of it (SIGKILL: its pods'
  // processes live on, as a crashed kubelet's containers do) and comes back only once the rollout is done.
  const old = (await api(leader, 'GET', '/apis/apps/v1/namespaces/default/statefulsets/web')).body.status.currentRevision as string
  writeFileSync(file, manifest(2, 2))
  const updated = await kubectl(['apply', '-f', file])
  t.is(updated.code, 0, updated.stderr)
  t.is(updated.stdout, 'service/nginx unchanged\nstatefulset.apps/web configured\n')
  await waitFor('the new revision observed', async () => {
    const s = (await api(leader, 'GET', '/apis/apps/v1/namespaces/default/statefulsets/web')).body.status
    return s.updateRevision !== old && s.observedGeneration === 2
  }, 10_000, 50)
  const victims = [...before.values()].filter(p => p.spec.nodeName === leader.name).map(p => p.metadata.name)
  t.log(`killing the leader ${leader.name}, which runs ${victims.join(', ') || 'no pod of the set'}`)
  const killedAt = Date.now()
  await leader.kill('SIGKILL')
  const rest = peers.filter(p => p !== leader)
  const next = await waitForLeader(rest, 30_000)
  t.not(next, leader)
  // While the rollout goes on: when does each of the dead peer's pods come back under its name?
  const remade = new Map<string, number>()
  let polling = true
  const poll = (async () => {
    while (polling && remade.size < victims.length) {
      try {
        const now = await pods(next)
        for (const n of victims) if (!remade.has(n) && now.get(n) !== undefined && now.get(n)?.metadata.uid !== before.get(n)?.metadata.uid) remade.set(n, Date.now() - killedAt)
      } catch { /* a peer answering slowly */ }
      await new Promise(resolve => setTimeout(resolve, 200))
    }
  })()
  const done = await kubectl(['--context', `shoal-${next.name}`, 'rollout', 'status', 'statefulset/web', '--timeout=100s'], 110_000)
  t.is(done.code, 0, `${done.stdout}\n${done.stderr}`)
  t.regex(done.stdout, /partitioned roll out complete: 1 new pods have been updated/)
  // The dead peer's pods are deleted by node lifecycle, and made again elsewhere once their names are free.
  await waitFor('the dead peer\'s pods made again', () => remade.size === victims.length, 60_000, 200).finally(() => { polling = false })
  await poll
  for (const n of victims) {
    // Not before the dead peer would have fenced itself: STATEFUL_POD_FENCE_MS (10 s) + grace + margin after it was declared dead.
    t.true((remade.get(n) ?? Infinity) >= 10_000, `${n} made again ${remade.get(n) ?? '(never)'} ms after the kill`)
  }
  t.log(`made again after the kill (ms): ${JSON.stringify(Object.fromEntries(remade))}; the dead peer's old processes meanwhile: ${JSON.stringify(victims.map(n => podProcessGroups(dir).get(n)?.size ?? 0))}`)
  peers[peers.indexOf(leader)] = await restartPeer(leader)

  const after = await waitFor('3 Ready pods after the update', async () => { const p = await pods(next); return [...p.values()].filter(isReady).length === 3 && p }, 30_000)
  const set = (await api(next, 'GET', '/apis/apps/v1/namespaces/default/statefulsets/web')).body
  t.like(set.status, { replicas: 3, readyReplicas: 3, updatedReplicas: 1, currentRevision: old })
  t.not(set.status.updateRevision, old)
  const rev = (n: string): string | undefined => after.get(n)?.metadata.labels?.['controller-revision-hash']
  t.deepEqual(names.map(rev), [old, old, set.status.updateRevision])
  t.not(after.get('web-2')?.metadata.uid, before.get('web-2')?.metadata.uid)
  for (const n of ['web-0', 'web-1']) {
    // Untouched, unless it ran on the peer that died (then made again, still at the old revision).
    if (before.get(n)?.spec.nodeName !== leader.name) t.is(after.get(n)?.metadata.uid, before.get(n)?.metadata.uid, n)
  }
  // The names follow the pods to their new addresses.
  const newIps = names.map(n => after.get(n)?.status?.podIP ?? '')
  t.deepEqual(await waitFor('DNS after the update', async () => { const got = await resolveAll(next.opts.ip, names); return got.join() === newIps.join() && got }, 20_000), newIps)

  // At most one incarnation of each name runs: the crashed peer's kubelet, back, stopped its old pods.
  const groups = await waitFor('one process group per pod name', () => {
    const g = podProcessGroups(dir)
    return names.every(n => g.get(n)?.size === 1) && g
  }, 20_000, 200)
  t.deepEqual([...groups.keys()].sort(), names)
})
