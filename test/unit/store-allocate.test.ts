// Service addresses and NodePorts allocated in the store's apply: unique,
// in range, kept across updates, refused when taken or out of range, and
// taken from the cluster's network ConfigMap when there is one.
import { NODE } from '../../protocol/kinds.ts'
import test from 'ava'
import { ipToInt, parseCidr } from '../../protocol/cidr.ts'
import { CLUSTER_CONFIG } from '../../protocol/network.ts'
import { configMap, NOW, ref, StoreHarness } from '../../daemon/store/testing.ts'
import type { KObject } from '../../protocol/k8s.ts'

type Obj = Record<string, any>

function svc (name: string, spec: Obj = {}): KObject {
  return { apiVersion: 'v1', kind: 'Service', metadata: { name, namespace: 'default' }, spec: { selector: { app: name }, ports: [{ port: 80 }], ...spec } }
}

function inRange (ip: string, cidr: string): boolean {
  const r = parseCidr(cidr)!
  const n = ipToInt(ip)!
  return n >= r.base && n < r.base + r.size
}

test('every service gets its own address in the default range, and clusterIPs with it', t => {
  const h = new StoreHarness()
  const ips = new Set<string>()
  for (let i = 0; i < 60; i++) {
    const s = h.create(svc(`s${i}`)) as Obj
    t.true(inRange(s.spec.clusterIP, '127.96.0.0/16'), s.spec.clusterIP)
    t.deepEqual(s.spec.clusterIPs, [s.spec.clusterIP])
    ips.add(s.spec.clusterIP)
  }
  t.is(ips.size, 60)
  t.false(ips.has('127.96.0.10'), 'the DNS address is kept back')
})

test('a given address is used when free, refused when taken or out of range; a deleted service frees it', t => {
  const h = new StoreHarness()
  t.is((h.create(svc('a', { clusterIP: '127.96.5.5' })) as Obj).spec.clusterIP, '127.96.5.5')
  const taken = h.apply({ op: 'create', object: svc('b', { clusterIP: '127.96.5.5' }), uid: 'u-b', now: NOW })
  t.false(taken.ok)
  if (!taken.ok) {
    t.is(taken.status.code, 422)
    t.regex(taken.status.message, /spec\.clusterIP: Invalid value: "127\.96\.5\.5": provided IP is already allocated/)
  }
  const outside = h.apply({ op: 'create', object: svc('c', { clusterIP: '10.0.0.1' }), uid: 'u-c', now: NOW })
  t.false(outside.ok)
  if (!outside.ok) t.regex(outside.status.message, /not in the valid range\. The range of valid IPs is 127\.96\.0\.0\/16/)
  h.ok(h.apply({ op: 'delete', ref: ref('services', 'a', 'default'), now: NOW }))
  t.is((h.create(svc('b', { clusterIP: '127.96.5.5' })) as Obj).spec.clusterIP, '127.96.5.5')
})

test('the address is kept across updates and cannot be changed; headless stays None', t => {
  const h = new StoreHarness()
  const s = h.create(svc('a')) as Obj
  const { clusterIP: _ip, clusterIPs: _ips, ...rest } = s.spec
  const updated = h.ok(h.apply({ op: 'update', object: { ...s, spec: { ...rest, ports: [{ port: 81 }] } } as unknown as KObject, now: NOW })) as Obj
  t.is(updated.spec.clusterIP, s.spec.clusterIP)
  const changed = h.apply({ op: 'update', object: { ...updated, spec: { ...updated.spec, clusterIP: '127.96.9.9' } } as unknown as KObject, now: NOW })
  t.false(changed.ok)
  if (!changed.ok) t.regex(changed.status.message, /field is immutable/)
  const headless = h.create(svc('hl', { clusterIP: 'None' })) as Obj
  t.is(headless.spec.clusterIP, 'None')
})

test('NodePorts: allocated in 30000-32767, unique, kept across updates, refused when taken', t => {
  const h = new StoreHarness()
  const a = h.create(svc('a', { type: 'NodePort', ports: [{ name: 'http', port: 80 }, { name: 'https', port: 443 }] })) as Obj
  const ports = a.spec.ports.map((p: Obj) => p.nodePort as number)
  t.true(ports.every((p: number) => p >= 30000 && p <= 32767), String(ports))
  t.not(ports[0], ports[1])
  const again = h.ok(h.apply({ op: 'update', object: { ...a, spec: { ...a.spec, ports: a.spec.ports.map(({ nodePort: _n, ...p }: Obj) => p) } } as unknown as KObject, now: NOW })) as Obj
  t.deepEqual(again.spec.ports.map((p: Obj) => p.nodePort), ports)
  const clash = h.apply({ op: 'create', object: svc('b', { type: 'NodePort', ports: [{ port: 80, nodePort: ports[0] }] }), uid: 'u-b', now: NOW })
  t.false(clash.ok)
  if (!clash.ok) t.regex(clash.status.message, /provided port is already allocated/)
  t.is((h.create(svc('c', { type: 'NodePort', ports: [{ port: 80, nodePort: 31000 }] })) as Obj).spec.ports[0].nodePort, 31000)
})

test('the cluster network ConfigMap sets the service range', t => {
  const h = new StoreHarness()
  h.create(configMap(CLUSTER_CONFIG.name, { serviceCIDR: '10.96.0.0/16' }, CLUSTER_CONFIG.namespace))
  const s = h.create(svc('a')) as Obj
  t.true(inRange(s.spec.clusterIP, '10.96.0.0/16'), s.spec.clusterIP)
})

test('the same commands give the same addresses on every replica', t => {
  const one = new StoreHarness()
  const two = new StoreHarness()
  const a = [0, 1, 2, 3].map(i => (one.create(svc(`s${i}`)) as Obj).spec.clusterIP)
  const b = [0, 1, 2, 3].map(i => (two.create(svc(`s${i}`)) as Obj).spec.clusterIP)
  t.deepEqual(a, b)
})

test('each Node gets its own /24 of the cluster pod range, kept across updates', t => {
  const h = new StoreHarness()
  h.create(configMap(CLUSTER_CONFIG.name, { serviceCIDR: '127.96.0.0/16', podCIDR: '127.64.0.0/20' }, CLUSTER_CONFIG.namespace))
  const node = (name: string): KObject => ({ apiVersion: 'v1', kind: 'Node', metadata: { name } })
  const cidrs = Array.from({ length: 16 }, (_, i) => (h.create(node(`n${i}`)) as Obj).spec.podCIDR as string)
  t.is(new Set(cidrs).size, 16, 'all 16 /24s of a /20, no two alike')
  t.true(cidrs.every(c => /^127\.64\.([0-9]|1[0-5])\.0\/24$/.test(c)), cidrs.join(' '))
  const full = h.apply({ op: 'create', object: node('n16'), uid: 'u-16', now: NOW })
  t.false(full.ok)
  if (!full.ok) t.regex(full.status.message, /no free \/24 is left in 127\.64\.0\.0\/20/)
  const n0 = h.store.get(NODE, undefined, 'n0') as Obj
  const updated = h.ok(h.apply({ op: 'update', object: { ...n0, spec: { unschedulable: true } } as unknown as KObject, now: NOW })) as Obj
  t.is(updated.spec.podCIDR, cidrs[0])
  const changed = h.apply({ op: 'update', object: { ...updated, spec: { ...updated.spec, podCIDR: '127.64.99.0/24' } } as unknown as KObject, now: NOW })
  t.false(changed.ok)
})
