// What every container's environment holds (process runtime, in-process
// store): HOSTNAME, and the kubernetes Service's variables even with
// enableServiceLinks false; the container's own env wins over both.
import test from 'ava'
import { pod } from '../../daemon/store/testing.ts'
import { getPod, kubeletEnv, main, waitFor } from '../helpers/kubelet.ts'

const NODE = 'node-a'

test('HOSTNAME and KUBERNETES_SERVICE_* in every container; its own env overrides them', async t => {
  const e = await kubeletEnv(t, NODE)
  const k = await e.kubelet()
  e.h.create({ apiVersion: 'v1', kind: 'Service', metadata: { name: 'kubernetes', namespace: 'default' }, spec: { clusterIP: '127.96.0.1', ports: [{ name: 'https', port: 443, targetPort: 7070 }] } })
  e.h.create({ apiVersion: 'v1', kind: 'Service', metadata: { name: 'web', namespace: 'default' }, spec: { clusterIP: '127.96.0.44', ports: [{ port: 80 }] } })
  const script = 'echo "$HOSTNAME $KUBERNETES_SERVICE_HOST $KUBERNETES_SERVICE_PORT_HTTPS $KUBERNETES_PORT_443_TCP_ADDR ${WEB_SERVICE_HOST:-none}"; sleep 30'
  const p = pod('envy', { nodeName: NODE })
  e.h.create({ ...p, spec: { nodeName: NODE, hostname: 'box', enableServiceLinks: false, containers: [{ name: 'main', image: 'busybox:1.36', command: ['sh', '-c', script] }] } })
  const q = pod('mine', { nodeName: NODE })
  e.h.create({ ...q, spec: { nodeName: NODE, containers: [{ name: 'main', image: 'busybox:1.36', command: ['sh', '-c', script], env: [{ name: 'HOSTNAME', value: 'own' }, { name: 'KUBERNETES_SERVICE_HOST', value: '10.0.0.1' }] }] } })
  for (const name of ['envy', 'mine']) await waitFor(`${name} running`, () => main(getPod(e.h, name))?.state?.running !== undefined)
  t.is(await waitFor('envy log', async () => { const s = await k.logs('default', 'envy', 'main'); return s !== '' && s }), 'box 127.96.0.1 443 127.96.0.1 none\n')
  t.is(await waitFor('mine log', async () => { const s = await k.logs('default', 'mine', 'main'); return s !== '' && s }), 'own 10.0.0.1 443 127.96.0.1 127.96.0.44\n')
})
