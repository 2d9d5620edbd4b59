// A DaemonSet on real shoald peers (127.0.153.2-6, the process runtime):
// kubectl applies a manifest in the style of Kubernetes' documentation
// (fluentd-elasticsearch, with busybox sleeping), a pod runs on each of the
// three peers and `kubectl rollout status` waits for them; a fourth peer
// joins and gets one; a cordoned peer keeps (and gets back) its pod, a peer
// tainted dedicated=infra:NoSchedule gets none; an image change makes a
// second revision, which `kubectl rollout history` lists and `kubectl
// rollout undo` (the revision's data as a strategic merge patch) reverts,
// as `shoal rollout` does too; and the DaemonSet outlives a leader SIGKILL
// with one pod per surviving eligible peer. kubectl comes from the machine:
// without it the test fails under CI and, elsewhere, does those steps
// through the API instead.
import test from 'ava'
import type { ExecutionContext } from 'ava'
import { spawnSync } from 'node:child_process'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { parse } from 'yaml'
import { api, SHOAL, startCluster, startPeer, stopAll, waitAdmitted, waitFor, waitForLeader, waitForReadyNodes } from '../helpers/cluster.ts'
import type { Peer } from '../helpers/cluster.ts'
import { HAS_KUBECTL, kubectlAgainst, kubectlWarnings } from '../helpers/kubectl.ts'
import type { Run } from '../helpers/run.ts'

const IPS = ['127.0.153.2', '127.0.153.3', '127.0.153.4']
const FOURTH = '127.0.153.5'
const CI = process.env.CI === 'true'
const NS = 'kube-system'
const DS_PATH = `/apis/apps/v1/namespaces/${NS}/daemonsets/fluentd-elasticsearch`

const MANIFEST = `apiVersion: apps/v1
kind: DaemonSet
metadata:
  name: fluentd-elasticsearch
  namespace: kube-system
  labels:
    k8s-app: fluentd-logging
spec:
  selector:
    matchLabels:
      name: fluentd-elasticsearch
  updateStrategy:
    type: RollingUpdate
    rollingUpdate:
      maxUnavailable: 1
  template:
    metadata:
      labels:
        name: fluentd-elasticsearch
    spec:
      tolerations:
      # these tolerations are to have the daemonset runnable on control plane nodes
      # remove them if your control plane nodes should not run pods
      - key: node-role.kubernetes.io/control-plane
        operator: Exists
        effect: NoSchedule
      - key: node-role.kubernetes.io/master
        operator: Exists
        effect: NoSchedule
      containers:
      - name: fluentd-elasticsearch
        image: busybox:1.36
        command: ["sleep", "3600"]
        resources:
          limits:
            memory: 200Mi
          requests:
            cpu: 100m
            memory: 200Mi
      terminationGracePeriodSeconds: 30
`

interface PodView { name: string, node: string | undefined, target: string, phase: string | undefined, image: string, deleting: boolean }

/** The DaemonSet's pods as `peer` sees them. */
async function dsPods (peer: Peer): Promise<PodView[]> {
  const items = ((await api(peer, 'GET', `/api/v1/namespaces/${NS}/pods?labelSelector=name%3Dfluentd-elasticsearch`)).body.items ?? []) as any[]
  return items.map(p => ({
    name: p.metadata.name,
    node: p.spec.nodeName,
    target: p.spec.affinity?.nodeAffinity?.requiredDuringSchedulingIgnoredDuringExecution?.nodeSelectorTerms?.[0]?.matchFields?.[0]?.values?.[0] ?? '',
    phase: p.status?.phase,
    image: p.spec.containers[0].image,
    deleting: p.metadata.deletionTimestamp !== undefined
  }))
}

/** Waits until exactly `nodes` each run one Running pod of `image` (and no other pod exists). */
async function waitForPodsOn (peer: Peer, nodes: string[], image: string, timeoutMs = 45_000): Promise<PodView[]> {
  const want = [...nodes].sort().join(',')
  return await waitFor(`one running ${image} pod on each of ${want}`, async () => {
    const pods = await dsPods(peer)
    const ok = pods.length === nodes.length && pods.every(p => p.phase === 'Running' && p.image === image && !p.deleting && p.node === p.target) &&
      pods.map(p => p.node).sort().join(',') === want
    return ok ? pods : undefined
  }, timeoutMs, 250)
}

async function dsStatus (peer: Peer): Promise<Record<string, number>> {
  return (await api(peer, 'GET', DS_PATH)).body.status ?? {}
}

function shoal (peer: Peer, args: string[]): Run {
  const r = spawnSync(process.execPath, [SHOAL, '--server', peer.apiUrl, '--token', peer.token(), ...args], { encoding: 'utf8', timeout: 30_000 })
  return { code: r.status, stdout: r.stdout, stderr: r.stderr }
}

/** kubectl against the cluster (the CLI's kubeconfig), or undefined without kubectl outside CI. */
async function kubectlFor (t: ExecutionContext, first: Peer, dir: string): Promise<((args: string[], timeoutMs?: number) => Promise<Run>) | undefined> {
  if (!HAS_KUBECTL) {
    if (CI) t.fail('kubectl is not installed (apt-get install kubernetes-client, or any kubectl on PATH); CI must have it')
    else t.log('kubectl is not installed: its steps go through the API instead')
    return undefined
  }
  const { kubectl } = await kubectlAgainst(first, dir)
  return async (args, timeoutMs) => {
    const r = await kubectl(['-n', NS, ...args], timeoutMs)
    t.deepEqual(kubectlWarnings(r.stderr), [], `kubectl ${args.join(' ')} printed warnings`)
    return r
  }
}

test('a DaemonSet runs one pod per eligible peer: joins, cordon, taints, rollout history and undo with kubectl, a leader SIGKILL', async t => {
  t.timeout(170_000)
  const { dir, peers, key } = await startCluster('daemonset', IPS, ['--pod-eviction-grace', '1s'])
  const all = [...peers]
  try {
    const first = peers[0] as Peer
    await waitForLeader(peers, 30_000)
    await waitForReadyNodes(first, 3, 30_000)
    const kubectl = await kubectlFor(t, first, dir)
    const manifest = join(dir, 'fluentd.yaml')
    writeFileSync(manifest, MANIFEST)

    // Applied (by kubectl, as the documentation does): a pod on each peer, and rollout status waits for them.
    if (kubectl !== undefined) {
      const applied = await kubectl(['apply', '-f', manifest])
      t.is(applied.stdout, 'daemonset.apps/fluentd-elasticsearch created\n', applied.stderr)
    } else {
      t.is((await api(first, 'POST', `/apis/apps/v1/namespaces/${NS}/daemonsets`, parse(MANIFEST))).status, 201)
    }
    await waitForPodsOn(first, ['p1', 'p2', 'p3'], 'busybox:1.36')
    if (kubectl !== undefined) {
      const status = await kubectl(['rollout', 'status', 'daemonset/fluentd-elasticsearch', '--timeout=45s'], 60_000)
      t.is(status.code, 0, status.stderr)
      t.regex(status.stdout, /daemon set "fluentd-elasticsearch" successfully rolled out\n$/)
    }
    t.like(await dsStatus(first), { desiredNumberScheduled: 3, currentNumberScheduled: 3, numberReady: 3, updatedNumberScheduled: 3, numberAvailable: 3, numberMisscheduled: 0 })

    // A fourth peer joins: its Node appears, and its pod with it.
    const p4 = await startPeer({ ip: FOURTH, name: 'p4', dataDir: join(dir, 'p4'), join: [first.addr], clusterKey: key, args: ['--pod-eviction-grace', '1s'] })
    all.push(p4)
    await waitAdmitted(p4)
    await waitForPodsOn(first, ['p1', 'p2', 'p3', 'p4'], 'busybox:1.36')

    // p2 cordoned keeps its pod, and gets a new one (the daemon pods tolerate cordon);
    // p3 tainted dedicated=infra:NoSchedule keeps the pod it has but gets no other.
    t.is((await api(first, 'PATCH', '/api/v1/nodes/p2', { spec: { unschedulable: true } }, 'application/merge-patch+json')).status, 200)
    t.is((await api(first, 'PATCH', '/api/v1/nodes/p3', { spec: { taints: [{ key: 'dedicated', value: 'infra', effect: 'NoSchedule' }] } }, 'application/merge-patch+json')).status, 200)
    await waitFor('p3 counted as misscheduled', async () => (await dsStatus(first)).numberMisscheduled === 1 || undefined, 15_000, 200)
    for (const p of (await dsPods(first)).filter(p => p.node === 'p2' || p.node === 'p3')) {
      t.is((await api(first, 'DELETE', `/api/v1/namespaces/${NS}/pods/${p.name}`)).status, 200)
    }
    await waitForPodsOn(first, ['p1', 'p2', 'p4'], 'busybox:1.36')
    t.like(await dsStatus(first), { desiredNumberScheduled: 3, currentNumberScheduled: 3, numberMisscheduled: 0 })

    // A new image: revision 2, rolled out one node at a time; history lists both; undo goes back.
    if (kubectl !== undefined) {
      const set = await kubectl(['set', 'image', 'daemonset/fluentd-elasticsearch', 'fluentd-elasticsearch=busybox:1.37'])
      t.is(set.code, 0, set.stderr)
      const status = await kubectl(['rollout', 'status', 'daemonset/fluentd-elasticsearch', '--timeout=45s'], 60_000)
      t.is(status.code, 0, status.stderr)
      t.regex(status.stdout, /successfully rolled out\n$/)
      await waitForPodsOn(first, ['p1', 'p2', 'p4'], 'busybox:1.37')
      const history = await kubectl(['rollout', 'history', 'daemonset/fluentd-elasticsearch'])
      t.is(history.code, 0, history.stderr)
      t.regex(history.stdout, /^daemonset\.apps\/fluentd-elasticsearch\s*\nREVISION\s+CHANGE-CAUSE\n1\s+<none>\n2\s+<none>\n/)
      const undo = await kubectl(['rollout', 'undo', 'daemonset/fluentd-elasticsearch'])
      t.is(undo.stdout, 'daemonset.apps/fluentd-elasticsearch rolled back\n', undo.stderr)
      const image = await kubectl(['get', 'daemonset', 'fluentd-elasticsearch', '-o', 'jsonpath={.spec.template.spec.containers[0].image}'])
      t.is(image.stdout, 'busybox:1.36')
      const settled = await kubectl(['rollout', 'status', 'daemonset/fluentd-elasticsearch', '--timeout=45s'], 60_000)
      t.is(settled.code, 0, settled.stderr)
      const after = await kubectl(['rollout', 'history', 'daemonset/fluentd-elasticsearch'])
      t.regex(after.stdout, /REVISION\s+CHANGE-CAUSE\n2\s+<none>\n3\s+<none>\n/, 'revision 1 renumbered as 3')
      // One revision's template, which kubectl rebuilds from the revision's data.
      const second = await kubectl(['rollout', 'history', 'daemonset/fluentd-elasticsearch', '--revision=2'])
      t.is(second.code, 0, second.stderr)
      t.regex(second.stdout, /Image:\s+busybox:1\.37/)
    } else {
      const patched = await api(first, 'PATCH', DS_PATH, { spec: { template: { spec: { containers: [{ name: 'fluentd-elasticsearch', image: 'busybox:1.37' }] } } } }, 'application/strategic-merge-patch+json')
      t.is(patched.status, 200)
      await waitForPodsOn(first, ['p1', 'p2', 'p4'], 'busybox:1.37')
      const undo = shoal(first, ['rollout', 'undo', 'ds/fluentd-elasticsearch', '-n', NS])
      t.is(undo.stdout, 'daemonset.apps/fluentd-elasticsearch rolled back\n', undo.stderr)
    }
    await waitForPodsOn(first, ['p1', 'p2', 'p4'], 'busybox:1.36')
    const history = shoal(first, ['rollout', 'history', 'ds/fluentd-elasticsearch', '-n', NS])
    t.is(history.code, 0, history.stderr)
    t.regex(history.stdout, /REVISION\s+CHANGE-CAUSE\n2\s+<none>\n3\s+<none>\n$/)
    const status = shoal(first, ['rollout', 'status', 'ds/fluentd-elasticsearch', '-n', NS, '--timeout', '30s'])
    t.is(status.code, 0, status.stderr)
    t.regex(status.stdout, /daemon set "fluentd-elasticsearch" successfully rolled out\n$/)

    // The leader dies: a new one takes over, the dead peer's pod is evicted and not recreated, the others stay.
    const leader = await waitForLeader(all, 15_000)
    const before = await dsPods(first)
    await leader.kill('SIGKILL')
    const survivors = all.filter(p => p !== leader)
    const survivor = await waitForLeader(survivors, 30_000)
    const eligible = ['p1', 'p2', 'p4'].filter(n => n !== leader.name)
    const after = await waitForPodsOn(survivor, eligible, 'busybox:1.36', 45_000)
    t.deepEqual(after.map(p => p.name).sort(), before.filter(p => p.node !== leader.name).map(p => p.name).sort(), 'the surviving pods are the same pods')
    await waitFor('the status under the new leader', async () => {
      const s = await dsStatus(survivor)
      return s.desiredNumberScheduled === eligible.length && s.numberAvailable === eligible.length && s.numberMisscheduled === 0 || undefined
    }, 30_000, 250)
  } finally {
    await stopAll(all, dir)
  }
})
