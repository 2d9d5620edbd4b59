// Membership between real libp2p hosts in this process, on 127.0.114.x:
// what a peer holding only the cluster key can no longer do. A gossip leave
// counts only from the member it names, and the API tokens go only to a
// peer the cluster has admitted.
import test from 'ava'
import type { ExecutionContext } from 'ava'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { generateKey } from '@libp2p/pnet'
import { pino } from 'pino'
import { encode } from '../../protocol/codec.ts'
import { MEMBERSHIP_TOPIC } from '../../protocol/membership.ts'
import { systemClock, systemRng } from '../../daemon/clock/clock.ts'
import { DEFAULT_MEMBERSHIP_CONFIG } from '../../daemon/membership/config.ts'
import { Membership } from '../../daemon/membership/membership.ts'
import type { TokenKeeper } from '../../daemon/membership/membership.ts'
import { createHost } from '../../daemon/p2p/host.ts'
import type { ShoalHost } from '../../daemon/p2p/host.ts'
import { waitFor } from '../helpers/cluster.ts'

interface LogLine { level: number, event?: string, [k: string]: unknown }

interface Node {
  id: string
  host: ShoalHost
  membership: Membership
  tokens: TokenKeeper & { admin?: string, viewer?: string }
  logs: LogLine[]
}

const ADMIN = 'admin-token-0123456789abcdef'
const VIEWER = 'viewer-token-0123456789abcdef'

function memoryTokens (admin?: string, viewer?: string): Node['tokens'] {
  const keeper: Node['tokens'] = {
    ...(admin !== undefined ? { admin } : {}),
    ...(viewer !== undefined ? { viewer } : {}),
    get: () => keeper.admin,
    getViewer: () => keeper.viewer,
    adopt: async t => { keeper.admin = t },
    adoptViewer: async t => { keeper.viewer = t }
  }
  return keeper
}

async function startNode (t: ExecutionContext, ip: string, psk: Uint8Array, opts: { join?: string[], tokens: Node['tokens'], admitted: (id: string) => boolean, name: string }): Promise<Node> {
  const logs: LogLine[] = []
  const log = pino({ level: 'debug' }, { write: (line: string) => { logs.push(JSON.parse(line) as LogLine) } })
  const host = await createHost({ privateKey: await generateKeyPair('Ed25519'), psk, listen: [`/ip4/${ip}/tcp/0`], log })
  const membership = new Membership({
    host,
    self: { name: opts.name, peerId: host.peerId.toString(), api: `${ip}:7070`, version: 'test', capacity: { cpu: 1, memory: 1 }, startedAt: 0, incarnation: 1 },
    config: DEFAULT_MEMBERSHIP_CONFIG,
    clock: systemClock,
    rng: systemRng,
    log,
    join: opts.join ?? [],
    tokens: opts.tokens,
    admitted: opts.admitted
  })
  await membership.start()
  const node = { id: host.peerId.toString(), host, membership, tokens: opts.tokens, logs }
  t.teardown(async () => {
    await membership.stop()
    await host.stop()
  })
  return node
}

function newPsk (): Uint8Array {
  const psk = new Uint8Array(95)
  generateKey(psk)
  return psk
}

const stateOf = (viewer: Node, of: Node): string | undefined => viewer.membership.list().find(m => m.record.peerId === of.id)?.state
const addrOf = (n: Node): string => n.host.getMultiaddrs()[0]!.toString()
/** The peers in `n`'s gossipsub mesh for the membership topic (not in the package's exported type). */
const meshOf = (n: Node): string[] => (n.host.services.pubsub as unknown as { getMeshPeers: (topic: string) => string[] }).getMeshPeers(MEMBERSHIP_TOPIC)

test('a gossip leave counts only when it comes from the member it names', async t => {
  const psk = newPsk()
  const a = await startNode(t, '127.0.114.2', psk, { name: 'a', tokens: memoryTokens(ADMIN, VIEWER), admitted: () => true })
  const b = await startNode(t, '127.0.114.3', psk, { name: 'b', join: [addrOf(a)], tokens: memoryTokens(), admitted: () => true })
  const c = await startNode(t, '127.0.114.4', psk, { name: 'c', join: [addrOf(a)], tokens: memoryTokens(), admitted: () => true })
  await waitFor('everyone alive everywhere', () => [a, b, c].every(x => [a, b, c].every(y => stateOf(x, y) === 'alive')), 20_000)
  // b's leave must reach a straight from b, so a must be in b's mesh (gossipsub grafts on its heartbeat).
  await waitFor('b to have a in its gossip mesh', () => meshOf(b).includes(a.id), 20_000)

  // c says that b left: a hears it straight from c, and ignores it.
  const incarnation = b.membership.table.selfRecord.incarnation
  await c.host.services.pubsub.publish(MEMBERSHIP_TOPIC, encode({ type: 'leave', peerId: b.id, incarnation }))
  await waitFor('a to ignore the forged leave', () => a.logs.some(l => l.event === 'gossip.leave-ignored' && l.peerId === b.id), 10_000)
  t.is(stateOf(a, b), 'alive')

  // b's own leave, straight from b, counts. (Its fields in another order:
  // gossip drops a message whose bytes it has seen, and it saw c's.)
  await b.host.services.pubsub.publish(MEMBERSHIP_TOPIC, encode({ peerId: b.id, type: 'leave', incarnation }))
  await waitFor('a to see b leave', () => stateOf(a, b) === 'left', 10_000)
  t.is(stateOf(a, c), 'alive')
})

test('the API tokens go to a joiner only once the cluster has admitted it', async t => {
  const psk = newPsk()
  const admittedIds = new Set<string>()
  const a = await startNode(t, '127.0.114.5', psk, { name: 'a', tokens: memoryTokens(ADMIN, VIEWER), admitted: id => admittedIds.has(id) })
  const joiner = await startNode(t, '127.0.114.6', psk, { name: 'j', join: [addrOf(a)], tokens: memoryTokens(), admitted: () => false })
  // It joins the member list at once, but has no tokens: it asked, and was refused.
  await waitFor('the joiner to be alive on a', () => stateOf(a, joiner) === 'alive', 20_000)
  await waitFor('a to withhold the tokens', () => a.logs.some(l => l.event === 'sync.token-withheld' && l.peer === joiner.id), 10_000)
  await waitFor('the joiner to say it waits', () => joiner.logs.some(l => l.event === 'join.awaiting-admission'), 10_000)
  t.is(joiner.tokens.get(), undefined)
  t.is(joiner.tokens.getViewer?.(), undefined)
  // Once the cluster admits it (in shoald: it is a learner or voter of the Raft configuration), it gets them.
  admittedIds.add(joiner.id)
  await waitFor('the joiner to get the tokens', () => joiner.tokens.get() !== undefined, 10_000)
  t.is(joiner.tokens.get(), ADMIN)
  t.is(joiner.tokens.getViewer?.(), VIEWER)
})
