// The scheduler's quantity parser and its filter plugins' pure parts.
import test from 'ava'
import { bytesOf, cpuMillis, parseQuantity, QuantityError } from '../../protocol/quantity.ts'
import { unschedulableMessage } from '../../daemon/scheduler/plugins.ts'
import { tolerates } from '../../protocol/scheduling.ts'
import type { Taint } from '../../protocol/core-v1.ts'

test('quantities parse as Kubernetes reads them', t => {
  const cpu: Array<[string | number, number]> = [
    ['250m', 250], ['1', 1000], ['0.5', 500], ['2', 2000], ['.1', 100], ['100m', 100], ['1500m', 1500],
    ['0.0001', 1], [2, 2000], ['1k', 1_000_000], ['500u', 1]
  ]
  for (const [q, want] of cpu) t.is(cpuMillis(q), want, `cpu ${q}`)
  const mem: Array<[string | number, number]> = [
    ['128Mi', 128 * 2 ** 20], ['1Gi', 2 ** 30], ['500M', 500_000_000], ['1024', 1024], ['1Ki', 1024], ['64Ki', 65536],
    ['1e6', 1_000_000], ['1E', 1e18], ['1.5Gi', 1.5 * 2 ** 30], ['2G', 2e9], ['3Ti', 3 * 2 ** 40], [4096, 4096]
  ]
  for (const [q, want] of mem) t.is(bytesOf(q), want, `memory ${q}`)
  t.is(parseQuantity('+1'), 1)
  t.is(parseQuantity('-2m'), -0.002)
})

test('malformed quantities throw, and count as zero in requests', t => {
  for (const bad of ['', 'abc', '1x', '1 Gi', '1.2.3', 'Mi', '1iB', '1e3m']) {
    t.throws(() => parseQuantity(bad), { instanceOf: QuantityError }, bad)
    t.is(cpuMillis(bad), 0)
  }
  t.is(bytesOf(undefined), 0)
})

test('toleration matching follows Kubernetes', t => {
  const taint: Taint = { key: 'dedicated', value: 'gpu', effect: 'NoSchedule' }
  t.true(tolerates({ key: 'dedicated', operator: 'Equal', value: 'gpu', effect: 'NoSchedule' }, taint))
  t.true(tolerates({ key: 'dedicated', value: 'gpu' }, taint)) // default operator Equal, any effect
  t.false(tolerates({ key: 'dedicated', value: 'cpu' }, taint))
  t.true(tolerates({ key: 'dedicated', operator: 'Exists' }, taint))
  t.true(tolerates({ operator: 'Exists' }, taint)) // empty key with Exists: every taint
  t.false(tolerates({ key: 'dedicated', operator: 'Exists', effect: 'NoExecute' }, taint))
  t.false(tolerates({ key: 'other', operator: 'Exists' }, taint))
})

test('the FailedScheduling message counts reasons, sorted', t => {
  t.is(unschedulableMessage(3, new Map([['node(s) were unschedulable', 1], ['Insufficient cpu', 2]])),
    '0/3 nodes are available: 2 Insufficient cpu, 1 node(s) were unschedulable.')
})
