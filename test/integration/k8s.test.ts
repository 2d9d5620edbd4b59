// The Kubernetes-layout API on three real shoald peers (127.0.7.2-4): the
// system namespaces and one Node per member appear by themselves; objects
// written through one peer are read on the others; conflicts, bad input and
// unknown kinds get Kubernetes' codes; a watch on a follower sees every
// change in order; a killed peer's Node goes NotReady.
import { NODE } from '../../protocol/kinds.ts'
import test from 'ava'
import { spawnSync } from 'node:child_process'
import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import type { KObject, WatchEvent } from '../../protocol/k8s.ts'
import { api, SHOAL, startCluster, stopAll, waitFor, waitForLeader } from '../helpers/cluster.ts'
import type { Peer } from '../helpers/cluster.ts'

const IPS = ['127.0.7.2', '127.0.7.3', '127.0.7.4']

const deployment = (image: string): KObject => ({
  apiVersion: 'apps/v1',
  kind: 'Deployment',
  metadata: { name: 'web', labels: { app: 'web' } },
  spec: {
    replicas: 3,
    selector: { matchLabels: { app: 'web' } },
    template: { metadata: { labels: { app: 'web' } }, spec: { containers: [{ name: 'web', image, ports: [{ containerPort: 80 }] }] } }
  }
})

const json = api

test('three peers serve the Kubernetes-layout API', async t => {
  t.timeout(180_000)
  const { dir, peers } = await startCluster('k8s', IPS)
  try {
    const leader = await waitForLeader(peers, 60_000)
    const follower = peers.find(p => p !== leader) as Peer
    const other = peers.find(p => p !== leader && p !== follower) as Peer

    // Bootstrap: namespaces and Nodes, readable on any peer.
    await waitFor('the default namespace', async () => (await json(follower, 'GET', '/api/v1/namespaces/default')).status === 200 || undefined, 30_000)
    const nodes = await waitFor('three Ready nodes', async () => {
      const r = await json(other, 'GET', '/api/v1/nodes')
      const items = (r.body.items ?? []) as KObject[]
      const ready = items.filter(n => ((n.status as any)?.conditions ?? []).some((c: any) => c.type === 'Ready' && c.status === 'True'))
      return ready.length === 3 ? items : undefined
    }, 60_000)
    t.deepEqual(nodes.map(n => n.metadata.name).sort(), ['p1', 'p2', 'p3'])

    // A watch on a follower, from now.
    const events: WatchEvent[] = []
    const controller = new AbortController()
    const watchRes = await fetch(`${other.apiUrl}/apis/apps/v1/namespaces/default/deployments?watch=1`, { headers: { authorization: `Bearer ${other.token()}` }, signal: controller.signal })
    t.is(watchRes.status, 200)
    const reading = (async () => {
      const decoder = new TextDecoder()
      let buffered = ''
      try {
        for await (const chunk of watchRes.body as unknown as AsyncIterable<Uint8Array>) {
          buffered += decoder.decode(chunk, { stream: true })
          const lines = buffered.split('\n')
          buffered = lines.pop() ?? ''
          for (const line of lines) if (line.trim() !== '') events.push(JSON.parse(line) as WatchEvent)
        }
      } catch { /* aborted */ }
    })()

    // Create through a follower: forwarded to the leader, answered 201.
    const created = await json(follower, 'POST', '/apis/apps/v1/namespaces/default/deployments', deployment('nginx:1.25'))
    t.is(created.status, 201, JSON.stringify(created.body))
    t.truthy(created.body.metadata.uid)
    t.is(created.body.metadata.namespace, 'default')
    const rv1 = created.body.metadata.resourceVersion as string

    // Read it on another peer, consistently.
    const got = await json(other, 'GET', '/apis/apps/v1/namespaces/default/deployments/web?consistent')
    t.is(got.status, 200)
    t.is(got.body.metadata.uid, created.body.metadata.uid)

    // Strategic merge patch: change the image of one container by name.
    const patched = await json(leader, 'PATCH', '/apis/apps/v1/namespaces/default/deployments/web',
      { spec: { template: { spec: { containers: [{ name: 'web', image: 'nginx:1.26' }] } } } }, 'application/strategic-merge-patch+json')
    t.is(patched.status, 200, JSON.stringify(patched.body))
    t.is(patched.body.spec.template.spec.containers[0].image, 'nginx:1.26')
    t.deepEqual(patched.body.spec.template.spec.containers[0].ports, [{ containerPort: 80, protocol: 'TCP' }])

    // A stale resourceVersion on PUT is a 409.
    const stale = deployment('nginx:1.27')
    stale.metadata.resourceVersion = rv1
    const conflict = await json(follower, 'PUT', '/apis/apps/v1/namespaces/default/deployments/web', stale)
    t.is(conflict.status, 409)
    t.is(conflict.body.kind, 'Status')
    t.is(conflict.body.reason, 'Conflict')

    // Scale subresource.
    const scaled = await json(other, 'PATCH', '/apis/apps/v1/namespaces/default/deployments/web/scale', { spec: { replicas: 5 } }, 'application/merge-patch+json')
    t.is(scaled.status, 200, JSON.stringify(scaled.body))
    const scale = await json(other, 'GET', '/apis/apps/v1/namespaces/default/deployments/web/scale?consistent')
    t.is(scale.body.kind, 'Scale')
    t.is(scale.body.spec.replicas, 5)

    // Bad input.
    const unknownKind = await json(leader, 'GET', '/apis/apps/v1/namespaces/default/widgets')
    t.is(unknownKind.status, 404)
    const badName = await json(leader, 'POST', '/api/v1/namespaces/default/configmaps', { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'Bad_Name' }, data: {} })
    t.is(badName.status, 422, JSON.stringify(badName.body))
    const unknownField = await json(leader, 'POST', '/api/v1/namespaces/default/pods', { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'p' }, spec: { containers: [{ name: 'c', image: 'busybox', imagePullSecretz: [] }] } })
    t.is(unknownField.status, 422)
    t.regex(String(unknownField.body.message), /imagePullSecretz/)
    const mismatch = deployment('nginx')
    mismatch.metadata.name = 'mismatch'
    ;(mismatch.spec as any).selector.matchLabels = { app: 'other' }
    t.is((await json(leader, 'POST', '/apis/apps/v1/namespaces/default/deployments', mismatch)).status, 422)
    const badJson = await json(leader, 'POST', '/api/v1/namespaces/default/configmaps', '{"apiVersion": "v1", ')
    t.is(badJson.status, 400)
    t.is((await fetch(`${leader.apiUrl}/api/v1/pods`)).status, 401)
    // The viewer token (made by the founder, copied to joiners) reads but may not write.
    const viewer = readFileSync(join(follower.opts.dataDir, 'viewer.token'), 'utf8').trim()
    const asViewer = async (method: string, path: string, body?: unknown): Promise<number> => (await fetch(`${follower.apiUrl}${path}`, {
      method, headers: { authorization: `Bearer ${viewer}`, 'content-type': 'application/json' }, ...(body !== undefined ? { body: JSON.stringify(body) } : {})
    })).status
    t.is(await asViewer('GET', '/api/v1/namespaces'), 200)
    t.is(await asViewer('POST', '/api/v1/namespaces/default/configmaps', { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'v' }, data: {} }), 403)
    t.is(await asViewer('PUT', '/shoal/v1/kv/x', 'y'), 403)

    // Delete, then the watch has seen every change in order.
    const deleted = await json(leader, 'DELETE', '/apis/apps/v1/namespaces/default/deployments/web')
    t.is(deleted.status, 200)
    await waitFor('the watch to see the deletion', () => events.some(e => e.type === 'DELETED') || undefined, 10_000)
    controller.abort()
    await reading
    // The controllers write too (status, the revision annotation): the user's
    // changes are among the events, first to last, in log order.
    const types = events.map(e => e.type)
    t.is(types[0], 'ADDED')
    t.is(types.at(-1), 'DELETED')
    t.true(types.slice(1, -1).every(x => x === 'MODIFIED'), types.join(' '))
    const objects = events.map(e => e.object as any)
    const imageAt = objects.findIndex(o => o.spec?.template?.spec?.containers?.[0]?.image === 'nginx:1.26')
    const scaledAt = objects.findIndex(o => o.spec?.replicas === 5)
    t.true(imageAt > 0 && scaledAt > imageAt, 'the patch, then the scale, were seen in that order')
    const versions = objects.map(o => Number(o.metadata.resourceVersion))
    t.true(versions.every((v, i) => i === 0 || v > (versions[i - 1] as number)), `in log order: ${versions.join(' ')}`)

    // A killed peer's Node goes NotReady.
    await other.kill('SIGKILL')
    await waitFor(`node ${other.name} NotReady`, async () => {
      const r = await json(leader, 'GET', `/api/v1/nodes/${other.name}`)
      const ready = ((r.body.status?.conditions ?? []) as any[]).find(c => c.type === 'Ready')
      return ready?.status === 'False' || undefined
    }, 30_000)
  } finally {
    await stopAll(peers, dir)
  }
})

function shoal (peer: Peer, args: string[]): { status: number | null, stdout: string, stderr: string } {
  const r = spawnSync(process.execPath, [SHOAL, '--server', peer.apiUrl, '--token', peer.token(), ...args], { encoding: 'utf8', timeout: 30_000 })
  return { status: r.status, stdout: r.stdout, stderr: r.stderr }
}

test('a Deployment runs across the nodes, rolls out through a leader SIGKILL, and a dead node\'s pods run elsewhere', async t => {
  t.timeout(240_000)
  const { dir, peers } = await startCluster('k8s-deploy', ['127.0.8.2', '127.0.8.3', '127.0.8.4'], ['--pod-eviction-grace', '1s'])
  try {
    const leader = await waitForLeader(peers, 60_000)
    await waitFor('three Ready nodes', async () => {
      const items = ((await json(leader, 'GET', '/api/v1/nodes')).body.items ?? []) as KObject[]
      return items.filter(n => ((n.status as any)?.conditions ?? []).some((c: any) => c.type === 'Ready' && c.status === 'True')).length === 3 || undefined
    }, 60_000)
    const manifest = join(dir, 'web.yaml')
    writeFileSync(manifest, `apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: 3
  selector:
    matchLabels: {app: web}
  strategy:
    rollingUpdate: {maxSurge: 1, maxUnavailable: 0}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
      - name: web
        image: nginx:1.25
        command: ['sh', '-c', 'echo started $POD_NAME; exec sleep 300']
        resources:
          requests: {cpu: 100m, memory: 64Mi}
`)
    const follower = peers.find(p => p !== leader) as Peer
    const applied = shoal(follower, ['apply', '-f', manifest])
    t.is(applied.status, 0, applied.stderr)
    t.regex(applied.stdout, /deployment\.apps\/web created/)

    const bound = await waitFor('3 pods bound across 3 nodes', async () => {
      const pods = ((await json(leader, 'GET', '/api/v1/namespaces/default/pods?labelSelector=app%3Dweb')).body.items ?? []) as KObject[]
      const nodes = pods.map(p => (p.spec as { nodeName?: string }).nodeName).filter(n => n !== undefined)
      return pods.length === 3 && new Set(nodes).size === 3 ? pods : undefined
    }, 60_000)
    t.is(bound.length, 3)
    // The kubelets run them for real (the process runtime): Running, each with its own address.
    const running = await waitFor('3 pods Running', async () => {
      const pods = ((await json(leader, 'GET', '/api/v1/namespaces/default/pods?labelSelector=app%3Dweb')).body.items ?? []) as any[]
      return pods.length === 3 && pods.every(p => p.status?.phase === 'Running' && p.status?.podIP !== undefined) ? pods : undefined
    }, 60_000)
    t.is(new Set(running.map(p => p.status.podIP)).size, 3, 'three pod addresses')

    // Logs and exec from a peer that does not run the pod (over libp2p to the one that does).
    const somePod = running[0]
    const elsewhere = peers.find(p => p.name !== somePod.spec.nodeName) as Peer
    const logs = await waitFor('the pod\'s log', async () => {
      const r = shoal(elsewhere, ['logs', somePod.metadata.name])
      return r.status === 0 && r.stdout.includes(`started ${somePod.metadata.name as string}`) ? r : undefined
    }, 20_000)
    t.regex(logs.stdout, /started web-/)
    // The scheduler and the kubelet said what they did, as Events on the pod.
    const reasons = await waitFor('Scheduled and Started events', async () => {
      const evs = ((await json(elsewhere, 'GET', '/api/v1/namespaces/default/events')).body.items ?? []) as any[]
      const mine = evs.filter(e => e.involvedObject?.name === somePod.metadata.name).map(e => e.reason as string)
      return mine.includes('Scheduled') && mine.includes('Started') ? mine : undefined
    }, 20_000)
    t.true(reasons.includes('Started'))
    const exec = shoal(elsewhere, ['exec', somePod.metadata.name, '--', 'sh', '-c', 'echo hi from $POD_NAME; exit 3'])
    t.is(exec.status, 3, exec.stderr)
    t.is(exec.stdout.trim(), `hi from ${somePod.metadata.name as string}`)

    const listed = shoal(follower, ['get', 'pods', '-o', 'wide'])
    t.is(listed.status, 0, listed.stderr)
    t.regex(listed.stdout, /^NAME\s+READY\s+STATUS\s+RESTARTS\s+AGE\s+IP\s+NODE/)
    for (const p of bound) t.true(listed.stdout.includes(p.metadata.name ?? '?'))
    const described = shoal(peers.find(p => p !== leader && p !== follower) as Peer, ['describe', 'deployment', 'web'])
    t.is(described.status, 0, described.stderr)
    t.regex(described.stdout, /Name:\s+web/)

    // Wait for the first rollout, then start another and SIGKILL the leader at once.
    await waitFor('the first rollout to finish', async () => {
      const d = (await json(leader, 'GET', '/apis/apps/v1/namespaces/default/deployments/web')).body
      return d.status?.availableReplicas === 3 || undefined
    }, 60_000)
    const patched = await json(follower, 'PATCH', '/apis/apps/v1/namespaces/default/deployments/web',
      { spec: { template: { spec: { containers: [{ name: 'web', image: 'nginx:1.26' }] } } } }, 'application/strategic-merge-patch+json')
    t.is(patched.status, 200)
    await leader.kill('SIGKILL')
    const survivors = peers.filter(p => p !== leader)
    const survivor = await waitForLeader(survivors, 60_000)
    const done = await waitFor('the rollout to finish under the new leader', async () => {
      const d = (await json(survivor, 'GET', '/apis/apps/v1/namespaces/default/deployments/web')).body
      const s = d.status ?? {}
      return s.observedGeneration >= d.metadata.generation && s.updatedReplicas === 3 && s.availableReplicas === 3 && s.replicas === 3 ? d : undefined
    }, 90_000)
    t.is(done.spec.template.spec.containers[0].image, 'nginx:1.26')

    // The dead leader's node: its pods are replaced on the survivors, and run there.
    await waitFor('no pod left on the dead node, 3 running elsewhere', async () => {
      const pods = ((await json(survivor, 'GET', '/api/v1/namespaces/default/pods?labelSelector=app%3Dweb')).body.items ?? []) as any[]
      const live = pods.filter(p => p.metadata.deletionTimestamp === undefined)
      return live.length === 3 && live.every(p => p.spec.nodeName !== undefined && p.spec.nodeName !== leader.name && p.status?.phase === 'Running') || undefined
    }, 60_000)
    const rs = shoal(survivor, ['rollout', 'history', 'deploy/web'])
    t.is(rs.status, 0, rs.stderr)
  } finally {
    await stopAll(peers, dir)
  }
})
