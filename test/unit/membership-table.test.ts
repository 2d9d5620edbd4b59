// The failure detector and heartbeat state machine, driven by a fake clock.
import test from 'ava'
import type { MemberRecord } from '../../protocol/membership.ts'
import { seededRng } from '../../daemon/clock/clock.ts'
import { DEFAULT_MEMBERSHIP_CONFIG, validateMembershipConfig, ConfigError } from '../../daemon/membership/config.ts'
import { MemberTable } from '../../daemon/membership/table.ts'
import type { Effects } from '../../daemon/membership/table.ts'
import { FakeClock } from '../helpers/fake-clock.ts'

const config = { ...DEFAULT_MEMBERSHIP_CONFIG, reapAfterMs: 60_000 }

function record (name: string, incarnation = 1, seq = 0): MemberRecord {
  return {
    name,
    peerId: `peer-${name}`,
    addrs: [`/ip4/127.0.0.1/tcp/${name.charCodeAt(0)}`],
    api: '127.0.0.1:7070',
    version: '0.1.0',
    capacity: { cpu: 2, memory: 1 << 30 },
    startedAt: 0,
    incarnation,
    seq,
    heartbeatMs: 1000
  }
}

function setup (): { clock: FakeClock, table: MemberTable } {
  const clock = new FakeClock()
  return { clock, table: new MemberTable(record('self'), config, clock, seededRng(1)) }
}

/** Runs ticks every tickMs over `ms`, collecting effects. */
function run (clock: FakeClock, table: MemberTable, ms: number): Effects[] {
  const out: Effects[] = []
  for (let t = 0; t < ms; t += config.tickMs) {
    clock.advance(config.tickMs)
    out.push(table.tick())
  }
  return out
}

const stateOf = (table: MemberTable, name: string): string | undefined => table.get(`peer-${name}`)?.state

test('a first heartbeat adds an alive member and asks to connect to it', t => {
  const { table } = setup()
  const fx = table.heartbeat(record('a'))
  t.is(stateOf(table, 'a'), 'alive')
  t.deepEqual(fx.connect, ['peer-a'])
  t.is(fx.changes[0]?.to, 'alive')
  t.deepEqual(table.list().map(m => m.record.name), ['self', 'a'])
})

test('a member that keeps heartbeating is never probed', t => {
  const { clock, table } = setup()
  table.heartbeat(record('a'))
  let probes = 0
  for (let seq = 1; seq <= 20; seq++) {
    for (const fx of run(clock, table, 1000)) probes += fx.probe.length
    table.heartbeat(record('a', 1, seq))
  }
  t.is(probes, 0)
  t.is(stateOf(table, 'a'), 'alive')
})

test('silence leads to a probe, a failed probe to suspect, and the suspect timeout to dead', t => {
  const { clock, table } = setup()
  table.heartbeat(record('a'))
  const effects = run(clock, table, config.probeAfterMs)
  const probed = effects.flatMap(fx => fx.probe)
  t.deepEqual(probed, ['peer-a'], 'exactly one probe once the member has been silent for probeAfter')
  table.probeResult('peer-a', false)
  t.is(stateOf(table, 'a'), 'suspect')
  run(clock, table, config.suspectTimeoutMs - config.tickMs)
  t.is(stateOf(table, 'a'), 'suspect')
  const last = run(clock, table, config.tickMs * 2).flatMap(fx => fx.changes)
  t.is(stateOf(table, 'a'), 'dead')
  t.is(last.find(c => c.to === 'dead')?.name, 'a')
})

test('a successful probe clears suspicion', t => {
  const { clock, table } = setup()
  table.heartbeat(record('a'))
  table.disconnected('peer-a')
  table.probeResult('peer-a', false)
  t.is(stateOf(table, 'a'), 'suspect')
  const retries = run(clock, table, 500).flatMap(fx => fx.probe)
  t.true(retries.includes('peer-a'), 'a suspect is probed again')
  table.probeResult('peer-a', true)
  t.is(stateOf(table, 'a'), 'alive')
})

test('a newer heartbeat refutes suspicion, an old one does not', t => {
  const { table } = setup()
  table.heartbeat(record('a', 1, 5))
  table.probeResult('peer-a', false)
  table.heartbeat(record('a', 1, 5))
  t.is(stateOf(table, 'a'), 'suspect', 'a duplicate heartbeat is no evidence')
  table.heartbeat(record('a', 1, 6))
  t.is(stateOf(table, 'a'), 'alive')
})

test('a lost connection triggers a probe at once', t => {
  const { table } = setup()
  table.heartbeat(record('a'))
  t.deepEqual(table.disconnected('peer-a').probe, ['peer-a'])
  t.deepEqual(table.disconnected('peer-a').probe, [], 'no second probe while one is in flight')
})

test('a leave marks the member left; late heartbeats of that incarnation do not revive it', t => {
  const { table } = setup()
  table.heartbeat(record('a', 3, 10))
  t.is(table.leave('peer-a', 3).changes[0]?.to, 'left')
  table.heartbeat(record('a', 3, 11))
  t.is(stateOf(table, 'a'), 'left')
  table.heartbeat(record('a', 4, 0))
  t.is(stateOf(table, 'a'), 'alive', 'a restart (new incarnation) is a new life')
})

test('a stale leave from an older incarnation is ignored', t => {
  const { table } = setup()
  table.heartbeat(record('a', 4, 0))
  table.leave('peer-a', 3)
  t.is(stateOf(table, 'a'), 'alive')
})

test('a dead member that restarts is alive again and reconnected', t => {
  const { table } = setup()
  table.heartbeat(record('a', 1, 0))
  table.probeResult('peer-a', false)
  table.get('peer-a')!.state = 'dead'
  const fx = table.heartbeat(record('a', 2, 0))
  t.is(stateOf(table, 'a'), 'alive')
  t.deepEqual(fx.connect, ['peer-a'])
})

test('tombstones are reaped after reapAfter', t => {
  const { clock, table } = setup()
  table.heartbeat(record('a'))
  table.leave('peer-a', 1)
  run(clock, table, config.reapAfterMs - 1000)
  t.is(stateOf(table, 'a'), 'left')
  const changes = run(clock, table, 2000).flatMap(fx => fx.changes)
  t.is(table.get('peer-a'), undefined)
  t.is(changes.find(c => c.to === 'reaped')?.name, 'a')
})

test('dead members are retried now and then, so healed partitions reconnect', t => {
  const { clock, table } = setup()
  table.heartbeat(record('a'))
  table.probeResult('peer-a', false)
  run(clock, table, config.suspectTimeoutMs + 200)
  t.is(stateOf(table, 'a'), 'dead')
  const probes = run(clock, table, config.reconnectIntervalMs).flatMap(fx => fx.probe)
  t.true(probes.includes('peer-a'))
  table.probeResult('peer-a', true)
  t.is(stateOf(table, 'a'), 'alive')
})

test('sync adds unknown members with their state, and never trusts a second-hand death', t => {
  const { table } = setup()
  table.heartbeat(record('a', 1, 1))
  const fx = table.sync([
    { record: record('self', 1, 99), state: 'dead' },
    { record: record('a', 1, 7), state: 'dead' },
    { record: record('b', 1, 0), state: 'alive' },
    { record: record('c', 1, 0), state: 'left' }
  ])
  t.is(stateOf(table, 'a'), 'alive', 'another peer saying dead does not kill a member')
  t.is(stateOf(table, 'b'), 'alive')
  t.is(stateOf(table, 'c'), 'left')
  t.deepEqual(fx.connect, ['peer-b'])
  t.deepEqual(fx.learned.map(s => s.record.name), ['b', 'c'])
  t.is(table.list()[0]?.record.name, 'self')
  t.is(table.list()[0]?.state, 'alive', 'this peer is always alive to itself')
})

test('config validation names the bad field', t => {
  t.throws(() => validateMembershipConfig({ ...config, probeAfterMs: 10 }), { instanceOf: ConfigError, message: /probe delay/ })
  t.throws(() => validateMembershipConfig({ ...config, suspectTimeoutMs: -1 }), { message: /suspectTimeoutMs/ })
  t.notThrows(() => validateMembershipConfig(DEFAULT_MEMBERSHIP_CONFIG))
})

test('every default duration survives the round trip through its flag', async t => {
  const { parseDaemonArgs, formatDuration } = await import('../../daemon/config/flags.ts')
  const parsed = parseDaemonArgs(['--data-dir', '/tmp/x']).membership
  t.deepEqual(parsed, DEFAULT_MEMBERSHIP_CONFIG)
  t.is(formatDuration(2500), '2500ms')
  t.is(formatDuration(86_400_000), '1d')
})

test('--kv-max-value must fit one log entry', async t => {
  const { parseDaemonArgs, UsageError } = await import('../../daemon/config/flags.ts')
  t.is(parseDaemonArgs(['--data-dir', '/tmp/x', '--kv-max-value', '1MiB']).kvMaxValueBytes, 1024 * 1024)
  t.throws(() => parseDaemonArgs(['--data-dir', '/tmp/x', '--kv-max-value', '8MiB']), { instanceOf: UsageError, message: /--kv-max-value: at most/ })
})

test('a member known only second-hand gets a grace period before a silence probe', t => {
  const { clock, table } = setup()
  table.sync([{ record: record('b'), state: 'alive' }])
  const early = run(clock, table, config.probeAfterMs + 1000).flatMap(fx => fx.probe)
  t.deepEqual(early, [], 'not probed at the usual delay')
  const later = run(clock, table, 10_000).flatMap(fx => fx.probe)
  t.deepEqual(later, ['peer-b'], 'probed once the grace has run out')
  table.heartbeat(record('b', 1, 1))
  table.probeResult('peer-b', true)
  const heard = run(clock, table, config.probeAfterMs + 200).flatMap(fx => fx.probe)
  t.deepEqual(heard, ['peer-b'], 'once heard, the usual delay applies')
})
