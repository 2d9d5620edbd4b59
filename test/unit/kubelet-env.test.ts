// The Kubernetes service variables the kubelet gives every container
// (serviceEnv), over a StoreHarness.
import test from 'ava'
import { serviceEnv } from '../../daemon/kubelet/env.ts'
import { namespace, StoreHarness } from '../../daemon/store/testing.ts'
import type { KObject } from '../../protocol/k8s.ts'

function service (name: string, spec: Record<string, unknown>, namespace = 'default'): KObject {
  return { apiVersion: 'v1', kind: 'Service', metadata: { name, namespace }, spec }
}

test('serviceEnv gives the kubelet\'s variables for the services with a clusterIP in the namespace', t => {
  const h = new StoreHarness()
  h.create(service('redis-primary', { clusterIP: '127.96.0.20', ports: [{ name: 'redis', port: 6379 }, { name: 'metrics-http', port: 9121, protocol: 'TCP' }] }))
  h.create(service('dns', { clusterIP: '127.96.0.21', ports: [{ port: 53, protocol: 'UDP' }] }))
  h.create(service('headless', { clusterIP: 'None', ports: [{ port: 80 }] }))
  h.create(namespace('ns-1'))
  h.create(service('elsewhere', { clusterIP: '127.96.0.22', ports: [{ port: 80 }] }, 'ns-1'))
  t.deepEqual(serviceEnv(h.store, 'default'), {
    REDIS_PRIMARY_SERVICE_HOST: '127.96.0.20',
    REDIS_PRIMARY_SERVICE_PORT: '6379',
    REDIS_PRIMARY_SERVICE_PORT_REDIS: '6379',
    REDIS_PRIMARY_SERVICE_PORT_METRICS_HTTP: '9121',
    REDIS_PRIMARY_PORT: 'tcp://127.96.0.20:6379',
    REDIS_PRIMARY_PORT_6379_TCP: 'tcp://127.96.0.20:6379',
    REDIS_PRIMARY_PORT_6379_TCP_PROTO: 'tcp',
    REDIS_PRIMARY_PORT_6379_TCP_PORT: '6379',
    REDIS_PRIMARY_PORT_6379_TCP_ADDR: '127.96.0.20',
    REDIS_PRIMARY_PORT_9121_TCP: 'tcp://127.96.0.20:9121',
    REDIS_PRIMARY_PORT_9121_TCP_PROTO: 'tcp',
    REDIS_PRIMARY_PORT_9121_TCP_PORT: '9121',
    REDIS_PRIMARY_PORT_9121_TCP_ADDR: '127.96.0.20',
    DNS_SERVICE_HOST: '127.96.0.21',
    DNS_SERVICE_PORT: '53',
    DNS_PORT: 'udp://127.96.0.21:53',
    DNS_PORT_53_UDP: 'udp://127.96.0.21:53',
    DNS_PORT_53_UDP_PROTO: 'udp',
    DNS_PORT_53_UDP_PORT: '53',
    DNS_PORT_53_UDP_ADDR: '127.96.0.21'
  })
  t.deepEqual(serviceEnv(h.store, 'kube-system'), {})
})
