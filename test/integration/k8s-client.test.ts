// @kubernetes/client-node against the real API server (over an in-process
// store, HTTPS with the server's certificate pinned): list, create, patch
// (merge, strategic, JSON patch, server-side apply through
// KubernetesObjectApi), watch and delete of pods and deployments, and the
// Status errors the client turns into ApiExceptions.
import test from 'ava'
import {
  AppsV1Api, CoreV1Api, KubeConfig, KubernetesObjectApi, PatchStrategy, setHeaderOptions, Watch
} from '@kubernetes/client-node'
import type { V1Deployment, V1Pod } from '@kubernetes/client-node'
import { startK8sTestApi } from '../helpers/k8s-api.ts'
import type { K8sTestApi } from '../helpers/k8s-api.ts'

function kubeConfig (api: K8sTestApi): KubeConfig {
  const kc = new KubeConfig()
  kc.loadFromOptions({
    clusters: [{ name: 'shoal', server: api.url, caData: Buffer.from(api.ca).toString('base64'), skipTLSVerify: false }],
    users: [{ name: 'admin', token: api.token }],
    contexts: [{ name: 'shoal', cluster: 'shoal', user: 'admin' }],
    currentContext: 'shoal'
  })
  return kc
}

const pod = (name: string): V1Pod => ({
  apiVersion: 'v1',
  kind: 'Pod',
  metadata: { name, labels: { app: 'client' } },
  spec: { containers: [{ name: 'main', image: 'busybox', command: ['sh', '-c', 'sleep 600'] }] }
})

const deployment = (name: string, replicas: number): V1Deployment => ({
  apiVersion: 'apps/v1',
  kind: 'Deployment',
  metadata: { name },
  spec: {
    replicas,
    selector: { matchLabels: { app: name } },
    template: { metadata: { labels: { app: name } }, spec: { containers: [{ name: 'web', image: 'busybox' }] } }
  }
})

test('client-node lists, creates, patches and deletes pods and deployments', async t => {
  const api = await startK8sTestApi(t)
  const kc = kubeConfig(api)
  const core = kc.makeApiClient(CoreV1Api)
  const apps = kc.makeApiClient(AppsV1Api)

  const namespaces = await core.listNamespace()
  t.true(namespaces.items.some(n => n.metadata?.name === 'default'))

  const created = await core.createNamespacedPod({ namespace: 'default', body: pod('one') })
  t.is(created.metadata?.name, 'one')
  t.truthy(created.metadata?.uid)
  const pods = await core.listNamespacedPod({ namespace: 'default', labelSelector: 'app=client' })
  t.deepEqual(pods.items.map(p => p.metadata?.name), ['one'])

  const merged = await core.patchNamespacedPod({ namespace: 'default', name: 'one', body: { metadata: { labels: { tier: 'x' } } } },
    setHeaderOptions('Content-Type', PatchStrategy.MergePatch))
  t.deepEqual(merged.metadata?.labels, { app: 'client', tier: 'x' })
  const patched = await core.patchNamespacedPod({ namespace: 'default', name: 'one', body: [{ op: 'replace', path: '/metadata/labels/tier', value: 'y' }] })
  t.is(patched.metadata?.labels?.tier, 'y', 'JSON patch is the default patch type')

  const d = await apps.createNamespacedDeployment({ namespace: 'default', body: deployment('web', 2) })
  t.is(d.spec?.replicas, 2)
  const strategic = await apps.patchNamespacedDeployment({
    namespace: 'default',
    name: 'web',
    body: { spec: { template: { spec: { containers: [{ name: 'web', image: 'busybox:2' }] } } } }
  }, setHeaderOptions('Content-Type', PatchStrategy.StrategicMergePatch))
  t.is(strategic.spec?.template.spec?.containers[0]?.image, 'busybox:2')
  t.is(strategic.spec?.template.spec?.containers.length, 1)
  const scale = await apps.replaceNamespacedDeploymentScale({ namespace: 'default', name: 'web', body: { apiVersion: 'autoscaling/v1', kind: 'Scale', metadata: { name: 'web', namespace: 'default' }, spec: { replicas: 4 } } })
  t.is(scale.spec?.replicas, 4)
  t.is((await apps.readNamespacedDeployment({ namespace: 'default', name: 'web' })).spec?.replicas, 4)

  // Server-side apply through the generic object API.
  const objects = KubernetesObjectApi.makeApiClient(kc)
  const applied = await objects.patch(deployment('applied', 1), undefined, undefined, 'client-node', true, PatchStrategy.ServerSideApply)
  t.is(applied.metadata?.name, 'applied')
  t.is(applied.metadata?.managedFields?.[0]?.manager, 'client-node')
  const read = await objects.read({ apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: 'applied', namespace: 'default' } })
  t.is((read as V1Deployment).spec?.replicas, 1)

  // Errors are Status objects: the client reports the code and the message.
  const missing = await t.throwsAsync(core.readNamespacedPod({ namespace: 'default', name: 'nope' }))
  t.is((missing as unknown as { code: number }).code, 404)
  t.regex(String((missing as unknown as { body: unknown }).body), /pods \\?"nope\\?" not found/)
  const exists = await t.throwsAsync(core.createNamespacedPod({ namespace: 'default', body: pod('one') }))
  t.is((exists as unknown as { code: number }).code, 409)
  // A served kind with a bad spec is a 422 naming the field; a kind Shoal does not serve is a clear 404, not a crash.
  const invalid = await t.throwsAsync(objects.create({ apiVersion: 'apps/v1', kind: 'StatefulSet', metadata: { name: 'db', namespace: 'default' }, spec: {} } as never))
  t.is((invalid as unknown as { code: number }).code, 422)
  t.regex(String((invalid as unknown as { body: unknown }).body), /spec\.selector/)
  const ingress = await t.throwsAsync(objects.create({ apiVersion: 'networking.k8s.io/v1', kind: 'Ingress', metadata: { name: 'web', namespace: 'default' }, spec: {} } as never))
  t.regex(String((ingress as Error).message), /Ingress|ingresses|404|not found/i)
  t.is((await core.listNamespacedPod({ namespace: 'default' })).items.length, 1, 'the API still answers')

  await core.deleteNamespacedPod({ namespace: 'default', name: 'one' })
  await apps.deleteNamespacedDeployment({ namespace: 'default', name: 'web', propagationPolicy: 'Foreground' })
  await apps.deleteNamespacedDeployment({ namespace: 'default', name: 'applied' })
  t.deepEqual((await core.listNamespacedPod({ namespace: 'default' })).items, [])
  // Foreground deletion only marks the deployment; the garbage collector (not running here) finishes it.
  const remaining = (await apps.listNamespacedDeployment({ namespace: 'default' })).items
  t.deepEqual(remaining.map(x => [x.metadata?.name, x.metadata?.deletionTimestamp !== undefined, x.metadata?.finalizers]), [['web', true, ['foregroundDeletion']]])
})

test('client-node watches pods: ADDED, MODIFIED and DELETED in order', async t => {
  const api = await startK8sTestApi(t)
  const kc = kubeConfig(api)
  const core = kc.makeApiClient(CoreV1Api)
  await core.createNamespacedPod({ namespace: 'default', body: pod('before') })
  const list = await core.listNamespacedPod({ namespace: 'default' })

  const seen: Array<[string, string | undefined]> = []
  let done: () => void = () => {}
  const finished = new Promise<void>(resolve => { done = resolve })
  const watcher = await new Watch(kc).watch('/api/v1/namespaces/default/pods', { resourceVersion: list.metadata?.resourceVersion },
    (type: string, obj: V1Pod) => {
      seen.push([type, obj.metadata?.name])
      if (type === 'DELETED') done()
    },
    () => { done() })
  try {
    await core.createNamespacedPod({ namespace: 'default', body: pod('during') })
    await core.patchNamespacedPod({ namespace: 'default', name: 'during', body: { metadata: { labels: { step: '2' } } } }, setHeaderOptions('Content-Type', PatchStrategy.MergePatch))
    await core.deleteNamespacedPod({ namespace: 'default', name: 'during' })
    await Promise.race([finished, new Promise(resolve => setTimeout(resolve, 20_000))])
  } finally {
    watcher.abort()
  }
  t.deepEqual(seen, [['ADDED', 'during'], ['MODIFIED', 'during'], ['DELETED', 'during']])
})
