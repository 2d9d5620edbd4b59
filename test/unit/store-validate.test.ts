// Validation (422 messages naming the fields) and defaulting of stored objects.
import { kindOf } from '../../protocol/kinds.ts'
import type { Kind } from '../../protocol/kinds.ts'
import test from 'ava'
import type { KObject, ResourceType } from '../../protocol/k8s.ts'
import { defaultObject, validateObject } from '../../protocol/validation.ts'
import { deployment, pod, StoreHarness } from '../../daemon/store/testing.ts'

const typeOf = (o: KObject): Kind => kindOf(o.apiVersion, o.kind) as Kind
const check = (o: KObject): string | undefined => {
  const copy = structuredClone(o)
  return validateObject(defaultObject(copy, typeOf(copy)), typeOf(copy))?.message
}

test('unknown fields are rejected with their path', t => {
  const p = pod('x')
  ;(p.spec as { containers: Array<Record<string, unknown>> }).containers[0]!.imagePullSecretz = []
  t.is(check(p), 'Pod "x" is invalid: spec.containers[0].imagePullSecretz: unknown field')
  t.is(check({ ...pod('x'), metadata: { name: 'x', namespace: 'default', lables: {} } as KObject['metadata'] }), 'Pod "x" is invalid: metadata.lables: unknown field')
  t.is(check({ ...pod('x'), bogus: 1 }), 'Pod "x" is invalid: bogus: unknown field')
})

test('names must be DNS-1123 (subdomain, or label for namespaces, DNS-1035 for services)', t => {
  t.regex(check(pod('Bad_Name')) ?? '', /^Pod "Bad_Name" is invalid: metadata\.name: Invalid value: "Bad_Name": a lowercase RFC 1123 subdomain/)
  t.is(check(pod('a.b-c')), undefined)
  t.regex(check({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'a.b' } }) ?? '', /metadata\.name: Invalid value: "a\.b": a lowercase RFC 1123 label/)
  t.regex(check({ apiVersion: 'v1', kind: 'Service', metadata: { name: '1svc', namespace: 'default' }, spec: { ports: [{ port: 80 }] } }) ?? '', /DNS-1035/)
  t.regex(check({ ...pod('x'), metadata: { name: 'x', namespace: 'default', labels: { 'bad key!': 'v' } } }) ?? '', /metadata\.labels: Invalid value: "bad key!"/)
  t.regex(check({ ...pod('x'), metadata: { name: 'x', namespace: 'default', labels: { ok: 'bad value!' } } }) ?? '', /metadata\.labels\[ok\]: Invalid value: "bad value!"/)
})

test('a deployment selector must match its template labels', t => {
  const d = deployment('web')
  ;(d.spec as { template: { metadata: { labels: Record<string, string> } } }).template.metadata.labels = { app: 'other' }
  t.is(check(d), 'Deployment.apps "web" is invalid: spec.selector: Invalid value: {"matchLabels":{"app":"web"}}: selector does not match template labels')
  const noSel = deployment('web')
  delete (noSel.spec as Record<string, unknown>).selector
  t.is(check(noSel), 'Deployment.apps "web" is invalid: spec.selector: Required value')
})

test('containers need a name and an image; several errors are listed in brackets', t => {
  const p = pod('x')
  ;(p.spec as { containers: Array<Record<string, unknown>> }).containers = [{ name: 'a' }, { image: 'b' }]
  t.is(check(p), 'Pod "x" is invalid: [spec.containers[0].image: Required value, spec.containers[1].name: Required value]')
  t.is(check({ ...pod('x'), spec: { containers: [] } }), 'Pod "x" is invalid: spec.containers: Required value')
})

test('types, ranges and enums are checked', t => {
  const p = pod('x')
  ;(p.spec as { containers: Array<Record<string, unknown>> }).containers[0]!.ports = [{ containerPort: 70000 }]
  t.regex(check(p) ?? '', /spec\.containers\[0\]\.ports\[0\]\.containerPort: Invalid value: 70000: must be between 1 and 65535/)
  t.regex(check({ ...pod('x'), spec: { containers: [{ name: 'a', image: 'b' }], restartPolicy: 'Sometimes' } }) ?? '', /spec\.restartPolicy: Unsupported value: "Sometimes"/)
  const d = deployment('web', { replicas: -1 })
  t.regex(check(d) ?? '', /spec\.replicas: Invalid value: -1: must be greater than or equal to 0/)
  t.regex(check({ ...deployment('web'), spec: { ...(deployment('web').spec as object), replicas: 'three' } }) ?? '', /spec\.replicas: Invalid value: "three": must be of type integer/)
  t.regex(check({ apiVersion: 'v1', kind: 'Service', metadata: { name: 'svc', namespace: 'default' }, spec: { ports: [{ port: 0 }] } }) ?? '', /spec\.ports\[0\]\.port: Invalid value: 0/)
  t.regex(check({ apiVersion: 'v1', kind: 'Pod', metadata: { name: 'x', namespace: 'default' }, spec: { containers: [{ name: 'a', image: 'b' }] }, status: 'Running' }) ?? '', /status: Invalid value: "Running": must be of type object/)
  t.regex(check({ apiVersion: 'v1', kind: 'Event', metadata: { name: 'e', namespace: 'default' }, reason: 'X', type: 'Odd', involvedObject: { kind: 'Pod', name: 'p' } }) ?? '', /type: Unsupported value: "Odd"/)
})

test('realistic objects with common fields pass', t => {
  t.is(check({
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: 'full', namespace: 'default', labels: { 'app.kubernetes.io/name': 'full' }, annotations: { note: 'anything goes: here' } },
    spec: {
      containers: [{
        name: 'app',
        image: 'registry.example.com/team/app:2.1',
        command: ['/bin/app'],
        args: ['--port', '8080'],
        env: [{ name: 'A', value: '1' }, { name: 'B', valueFrom: { secretKeyRef: { name: 's', key: 'k' } } }, { name: 'C', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } }],
        envFrom: [{ configMapRef: { name: 'cm' } }],
        ports: [{ name: 'http', containerPort: 8080, protocol: 'TCP' }],
        resources: { requests: { cpu: '100m', memory: '128Mi' }, limits: { cpu: 1, memory: '1Gi' } },
        volumeMounts: [{ name: 'data', mountPath: '/data' }],
        livenessProbe: { httpGet: { path: '/healthz', port: 'http' }, initialDelaySeconds: 5 },
        readinessProbe: { tcpSocket: { port: 8080 } },
        securityContext: { runAsNonRoot: true, capabilities: { drop: ['ALL'] } },
        lifecycle: { preStop: { exec: { command: ['sleep', '5'] } } }
      }],
      volumes: [{ name: 'data', emptyDir: {} }],
      nodeSelector: { disk: 'ssd' },
      affinity: { nodeAffinity: { requiredDuringSchedulingIgnoredDuringExecution: { nodeSelectorTerms: [{ matchExpressions: [{ key: 'zone', operator: 'In', values: ['a'] }] }] } } },
      tolerations: [{ key: 'dedicated', operator: 'Equal', value: 'x', effect: 'NoSchedule' }],
      serviceAccountName: 'default',
      priority: 0
    }
  }), undefined)
  t.is(check({ apiVersion: 'v1', kind: 'Service', metadata: { name: 'web', namespace: 'default' }, spec: { type: 'NodePort', selector: { app: 'web' }, ports: [{ name: 'http', port: 80, targetPort: 'http', nodePort: 30080 }], externalTrafficPolicy: 'Local' } }), undefined)
  t.is(check({ apiVersion: 'v1', kind: 'Node', metadata: { name: 'node-1' }, spec: { unschedulable: true, taints: [{ key: 'k', effect: 'NoSchedule' }] }, status: { capacity: { cpu: '4' } } }), undefined)
})

test('defaulting fills what Kubernetes fills', t => {
  const h = new StoreHarness()
  const d = h.create(deployment('web'))
  const spec = d.spec as Record<string, any>
  t.is(spec.replicas, 1)
  t.is(spec.revisionHistoryLimit, 10)
  t.deepEqual(spec.strategy, { type: 'RollingUpdate', rollingUpdate: { maxSurge: '25%', maxUnavailable: '25%' } })
  const podSpec = spec.template.spec
  t.is(podSpec.restartPolicy, 'Always')
  t.is(podSpec.terminationGracePeriodSeconds, 30)
  t.is(podSpec.dnsPolicy, 'ClusterFirst')
  t.is(podSpec.containers[0].imagePullPolicy, 'IfNotPresent')
  t.is(podSpec.containers[0].ports[0].protocol, 'TCP')

  const latest = h.create({ ...pod('l'), spec: { containers: [{ name: 'a', image: 'nginx' }, { name: 'b', image: 'nginx:latest' }, { name: 'c', image: 'localhost:5000/x' }] } })
  t.deepEqual((latest.spec as any).containers.map((c: any) => c.imagePullPolicy), ['Always', 'Always', 'Always'])
  t.deepEqual(latest.status, { phase: 'Pending' })

  const svc = h.create({ apiVersion: 'v1', kind: 'Service', metadata: { name: 'web', namespace: 'default' }, spec: { selector: { app: 'web' }, ports: [{ port: 80 }] } })
  t.is((svc.spec as any).type, 'ClusterIP')
  t.deepEqual((svc.spec as any).ports, [{ port: 80, protocol: 'TCP', targetPort: 80 }])

  const secret = h.create({ apiVersion: 'v1', kind: 'Secret', metadata: { name: 's', namespace: 'default' }, stringData: { password: 'hunter2' } })
  t.is(secret.type, 'Opaque')
  t.deepEqual(secret.data, { password: Buffer.from('hunter2').toString('base64') })
  t.is(secret.stringData, undefined)
})
