// kubectl against three real shoald peers (127.0.17.2-4), with the
// kubeconfig `shoal kubeconfig` prints (one context per peer, HTTPS pinned
// to each peer's certificate): apply of a Deployment and a Service (and a
// re-apply with a change), get with kubectl's columns, a bounded get -w,
// scale and rollout status, logs, server-side apply with a conflict, errors
// as kubectl prints them, delete -f. No command may print a warning.
// kubectl comes from the machine (Debian's kubernetes-client, or another
// kubectl on PATH); without it the test fails under CI and is skipped
// elsewhere.
import { NODE } from '../../protocol/kinds.ts'
import test from 'ava'
import { mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { SHOAL, startCluster, stopAll, waitFor, waitForLeader } from '../helpers/cluster.ts'
import type { Peer } from '../helpers/cluster.ts'
import { HAS_KUBECTL, kubectlWarnings } from '../helpers/kubectl.ts'
import { run } from '../helpers/run.ts'
import type { Run } from '../helpers/run.ts'

const IPS = ['127.0.17.2', '127.0.17.3', '127.0.17.4']
const CI = process.env.CI === 'true'

const MANIFEST = `apiVersion: apps/v1
kind: Deployment
metadata:
  name: hello
spec:
  replicas: 2
  selector:
    matchLabels: {app: hello}
  template:
    metadata:
      labels: {app: hello}
    spec:
      containers:
      - name: main
        image: busybox
        command: ["sh", "-c", "echo hello; sleep 600"]
---
apiVersion: v1
kind: Service
metadata:
  name: hello
spec:
  selector: {app: hello}
  ports:
  - port: 80
    targetPort: 8080
`

const maybe = HAS_KUBECTL || CI ? test : test.skip

maybe('kubectl works against every peer: apply, get, watch, scale, rollout, logs, server-side apply, delete', async t => {
  if (!HAS_KUBECTL) {
    t.fail('kubectl is not installed (apt-get install kubernetes-client, or any kubectl on PATH); CI must have it')
    return
  }
  t.timeout(300_000)
  const { dir, peers } = await startCluster('kubectl', IPS)
  try {
    await waitForLeader(peers, 60_000)
    const first = peers[0] as Peer
    const home = join(dir, 'home')
    mkdirSync(home, { recursive: true })

    // The kubeconfig from the CLI: a context per peer, the current one the peer it asked.
    const made = await run(process.execPath, [SHOAL, '--server', first.apiUrl, '--token', first.token(), 'kubeconfig'], { ...process.env, HOME: home })
    t.is(made.code, 0, made.stderr)
    for (const p of peers) t.true(made.stdout.includes(`server: https://${p.opts.ip}:7070`), `a cluster for ${p.name}`)
    t.regex(made.stdout, /current-context: shoal-p1/)
    const kubeconfig = join(dir, 'kubeconfig')
    writeFileSync(kubeconfig, made.stdout)
    const manifest = join(dir, 'hello.yaml')
    writeFileSync(manifest, MANIFEST)
    const env = { ...process.env, HOME: home, KUBECONFIG: kubeconfig }
    const kubectl = async (args: string[], opts: { timeoutMs?: number, warningsAllowed?: boolean } = {}): Promise<Run> => {
      const r = await run('kubectl', ['--cache-dir', join(home, 'cache'), ...args], env, opts.timeoutMs)
      if (opts.warningsAllowed !== true) t.deepEqual(kubectlWarnings(r.stderr), [], `kubectl ${args.join(' ')} printed warnings`)
      return r
    }

    const nodes = await waitFor('three Ready nodes', async () => {
      const r = await kubectl(['get', 'nodes'])
      return (r.stdout.match(/ Ready /g) ?? []).length === 3 ? r.stdout : undefined
    }, 60_000, 500)
    t.regex(nodes, /^NAME\s+STATUS\s+ROLES\s+AGE\s+VERSION\n/)

    // Client-side apply: created, then configured by a re-apply with a change, through another peer.
    const applied = await kubectl(['apply', '-f', manifest])
    t.is(applied.code, 0, applied.stderr)
    t.is(applied.stdout, 'deployment.apps/hello created\nservice/hello created\n')
    writeFileSync(manifest, MANIFEST.replace('port: 80', 'port: 81'))
    const reapplied = await kubectl(['--context', 'shoal-p2', 'apply', '-f', manifest])
    t.is(reapplied.stdout, 'deployment.apps/hello unchanged\nservice/hello configured\n', reapplied.stderr)
    const svc = await kubectl(['--context', 'shoal-p3', 'get', 'svc', 'hello'])
    t.regex(svc.stdout, /^NAME\s+TYPE\s+CLUSTER-IP\s+EXTERNAL-IP\s+PORT\(S\)\s+AGE\nhello\s+ClusterIP\s+\S+\s+<none>\s+81\/TCP\s+/)

    // A kind Shoal does not serve: one clear error, and the cluster carries on.
    const unserved = join(dir, 'ingress.yaml')
    writeFileSync(unserved, 'apiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata: {name: web}\nspec: {defaultBackend: {service: {name: hello, port: {number: 80}}}}\n')
    const refused = await kubectl(['apply', '-f', unserved])
    t.is(refused.code, 1)
    t.regex(refused.stderr, /no matches for kind "Ingress" in version "networking.k8s.io\/v1"/)
    const ingress = await kubectl(['get', 'ingresses'])
    t.is(ingress.code, 1)
    t.regex(ingress.stderr, /the server doesn't have a resource type "ingresses"/)

    // get -o wide: kubectl's columns, the pods by name, on any peer.
    const wide = await waitFor('two running pods', async () => {
      const r = await kubectl(['--context', 'shoal-p2', 'get', 'pods', '-o', 'wide'])
      return (r.stdout.match(/^hello-\S+\s+1\/1\s+Running\s/gm) ?? []).length === 2 ? r.stdout : undefined
    }, 60_000, 500)
    t.regex(wide, /^NAME\s+READY\s+STATUS\s+RESTARTS\s+AGE\s+IP\s+NODE\s+NOMINATED NODE\s+READINESS GATES\n/)
    const podNames = [...wide.matchAll(/^(hello-\S+)/gm)].map(m => m[1] as string)
    t.is(podNames.length, 2)
    const byName = await kubectl(['get', 'pods', '-o', 'name'])
    t.deepEqual(byName.stdout.trim().split('\n').sort(), podNames.map(n => `pod/${n}`).sort())

    // A bounded watch prints the deployment with its columns.
    const watched = await kubectl(['get', 'deploy', '-w', '--request-timeout=5s'], { timeoutMs: 30_000 })
    t.regex(watched.stdout, /^NAME\s+READY\s+UP-TO-DATE\s+AVAILABLE\s+AGE\nhello\s+2\/2\s+2\s+2\s+/)

    // Scale, then rollout status waits for it.
    const scaled = await kubectl(['scale', 'deploy/hello', '--replicas=3'])
    t.is(scaled.stdout, 'deployment.apps/hello scaled\n', scaled.stderr)
    const rollout = await kubectl(['--context', 'shoal-p3', 'rollout', 'status', 'deploy/hello', '--timeout=90s'], { timeoutMs: 120_000 })
    t.is(rollout.code, 0, rollout.stderr)
    t.regex(rollout.stdout, /deployment "hello" successfully rolled out\n$/)
    const deploy = await kubectl(['get', 'deploy', 'hello'])
    t.regex(deploy.stdout, /\nhello\s+3\/3\s+3\s+3\s+/)

    // Logs of a pod, wherever it runs, from any peer.
    const logs = await waitFor('the pod\'s log', async () => {
      const r = await kubectl(['--context', 'shoal-p3', 'logs', podNames[0] as string])
      return r.stdout.includes('hello') ? r.stdout : undefined
    }, 30_000, 500)
    t.is(logs, 'hello\n')

    // logs -f follows until the bound; what is there already comes first.
    const followed = await kubectl(['logs', '-f', podNames[1] as string, '--request-timeout=3s'], { timeoutMs: 10_000 })
    t.true(followed.stdout.startsWith('hello\n'), followed.stdout)

    // A new template makes revision 2; rollout undo (client-side: it reads the ReplicaSets) goes back to the first.
    const setImage = await kubectl(['set', 'image', 'deploy/hello', 'main=busybox:2'])
    t.is(setImage.code, 0, setImage.stderr)
    const history = await waitFor('two revisions', async () => {
      const r = await kubectl(['rollout', 'history', 'deploy/hello'])
      return /^2\s/m.test(r.stdout) ? r.stdout : undefined
    }, 30_000, 500)
    t.regex(history, /REVISION\s+CHANGE-CAUSE\n1\s+<none>\n2\s+<none>/)
    const undo = await kubectl(['rollout', 'undo', 'deploy/hello'])
    t.is(undo.stdout, 'deployment.apps/hello rolled back\n', undo.stderr)
    const image = await kubectl(['get', 'deploy', 'hello', '-o', 'jsonpath={.spec.template.spec.containers[0].image}'])
    t.is(image.stdout, 'busybox')
    const settled = await kubectl(['rollout', 'status', 'deploy/hello', '--timeout=90s'], { timeoutMs: 120_000 })
    t.is(settled.code, 0, settled.stderr)

    // Errors as kubectl prints them.
    const missing = await kubectl(['get', 'pod', 'nope'])
    t.is(missing.code, 1)
    t.is(missing.stderr, 'Error from server (NotFound): pods "nope" not found\n')

    // Server-side apply: created, a conflict with another manager, then forced.
    const cm = join(dir, 'cm.yaml')
    writeFileSync(cm, 'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\ndata:\n  level: "1"\n')
    const ssa = await kubectl(['apply', '--server-side', '-f', cm])
    t.is(ssa.stdout, 'configmap/settings serverside-applied\n', ssa.stderr)
    writeFileSync(cm, 'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\ndata:\n  level: "2"\n')
    const conflict = await kubectl(['--context', 'shoal-p2', 'apply', '--server-side', '--field-manager=ops', '-f', cm], { warningsAllowed: true })
    t.is(conflict.code, 1)
    t.regex(conflict.stderr, /^error: Apply failed with 1 conflict: conflict with "kubectl": \.data\.level\n/)
    const forced = await kubectl(['apply', '--server-side', '--field-manager=ops', '--force-conflicts', '-f', cm])
    t.is(forced.code, 0, forced.stderr)
    const level = await kubectl(['get', 'configmap', 'settings', '-o', 'jsonpath={.data.level}'])
    t.is(level.stdout, '2')

    // --cascade=orphan leaves the ReplicaSet (without its owner); apply adopts nothing, delete --cascade=foreground takes it.
    const orphaned = await kubectl(['delete', 'deploy', 'hello', '--cascade=orphan'])
    t.is(orphaned.stdout, 'deployment.apps "hello" deleted\n', orphaned.stderr)
    const rs = await kubectl(['get', 'rs', '-l', 'app=hello', '-o', 'jsonpath={range .items[*]}{.metadata.name} {.spec.replicas} {.metadata.ownerReferences}{"\\n"}{end}'])
    t.regex(rs.stdout, /^hello-\S+ 3 \n/m, 'the current ReplicaSet stays, with no owner')
    const gone = await kubectl(['delete', 'rs', '-l', 'app=hello', '--cascade=foreground', '--timeout=60s'], { timeoutMs: 90_000 })
    t.is(gone.code, 0, gone.stderr)
    t.regex(gone.stdout, /replicaset.apps "hello-\S+" deleted\n/)
    await kubectl(['apply', '-f', manifest])

    // delete -f removes both; the deployment's pods go with it.
    const deleted = await kubectl(['delete', '-f', manifest, '--timeout=60s'], { timeoutMs: 90_000 })
    t.is(deleted.stdout, 'deployment.apps "hello" deleted\nservice "hello" deleted\n', deleted.stderr)
    await kubectl(['delete', 'configmap', 'settings'])
    await waitFor('the pods to go', async () => {
      const r = await kubectl(['get', 'deploy,svc,pods,cm', '-l', 'app=hello'])
      return r.stderr.includes('No resources found') ? true : undefined
    }, 60_000, 500)
    t.pass()
  } finally {
    await stopAll(peers, dir)
  }
})
