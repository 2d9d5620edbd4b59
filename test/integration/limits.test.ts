// The size of a write, on three real shoald peers (127.0.47.2-4). The
// largest object a write may carry (its encoded command one byte short of
// MAX_COMMAND_BYTES, through YAML aliases from a 1.3 MiB body) replicates to
// every peer and the log goes on; one character more, a 201 KB YAML body
// whose aliases expand to 20 MB (which once became a stored object that no
// follower could receive, so that writes stopped), and a body past 3 MiB
// each get a 413, through a follower and through the leader, and change
// nothing: every peer holds the same state at the same applied index before
// and after.
import test from 'ava'
import { randomUUID } from 'node:crypto'
import type { StateHashView } from '../../daemon/api/debug.ts'
import { MAX_COMMAND_BYTES } from '../../daemon/raft/replicator.ts'
import { encodeStoreCommand } from '../../daemon/store/command.ts'
import { rfc3339 } from '../../protocol/k8s.ts'
import type { KObject } from '../../protocol/k8s.ts'
import { api, startCluster, stopAll, waitFor, waitForLeader, waitForReadyNodes } from '../helpers/cluster.ts'
import type { Peer } from '../helpers/cluster.ts'

const IPS = ['127.0.47.2', '127.0.47.3', '127.0.47.4']
const CONFIGMAPS = '/api/v1/namespaces/default/configmaps'

/** A ConfigMap with three keys holding the same string, as the API hands it to the store. */
function threeCopies (name: string, value: string): KObject {
  return { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name, namespace: 'default' }, data: { a: value, b: value, c: value } }
}

/** The same ConfigMap as YAML that writes the string once: an anchor and two aliases. */
function threeCopiesYaml (name: string, value: string): string {
  return `apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: ${name}\ndata:\n  a: &v "${value}"\n  b: *v\n  c: *v\n`
}

/** The encoded size of the create command the API proposes for threeCopies(name, value). */
function commandBytes (name: string, value: string): number {
  return encodeStoreCommand({ op: 'create', object: threeCopies(name, value), uid: randomUUID(), now: rfc3339(Date.now()) }).byteLength
}

async function stateHash (peer: Peer): Promise<StateHashView | undefined> {
  const r = await peer.call('GET', '/shoal/v1/debug/state-hash', undefined, 10_000)
  if (r.status === 429) await new Promise(resolve => setTimeout(resolve, 1000 * Number(r.headers.get('retry-after') ?? 1)))
  return r.status === 200 ? r.json as StateHashView : undefined
}

/**
 * The state all peers agree on: asked together until all answer at one
 * applied index, twice in a row a second apart (so that the cluster is
 * quiet); the hashes must then be one.
 */
async function agreedState (peers: Peer[]): Promise<StateHashView> {
  let previous: StateHashView | undefined
  return await waitFor('every peer at one applied index, quiet for a second', async () => {
    const views = await Promise.all(peers.map(async p => await stateHash(p)))
    const first = views[0]
    if (first === undefined || !views.every(v => v?.appliedIndex === first.appliedIndex)) {
      previous = undefined
      return undefined
    }
    const hashes = new Set(views.map(v => v?.hash))
    if (hashes.size !== 1) throw new Error(`the peers diverged at applied index ${first.appliedIndex}: ${[...hashes].join(', ')}`)
    if (previous?.appliedIndex === first.appliedIndex && previous.hash === first.hash) return first
    previous = first
    await new Promise(resolve => setTimeout(resolve, 1000))
    return undefined
  }, 60_000, 200)
}

test('a maximal object replicates to every peer; larger ones get 413 and change nothing', async t => {
  t.timeout(300_000)
  const { dir, peers } = await startCluster('limits', IPS)
  try {
    const leader = await waitForLeader(peers, 60_000)
    const follower = peers.find(p => p !== leader) as Peer
    await waitForReadyNodes(leader, 3)
    await waitFor('three voters', async () => (await leader.raft()).voters.length === 3 || undefined, 60_000)

    // The longest string of which three copies still fit: one character more and the command is too large.
    const base = commandBytes('max', 'x'.repeat(70_000)) - 3 * 70_000
    const length = Math.floor((MAX_COMMAND_BYTES - base) / 3)
    const maximal = 'x'.repeat(length)
    const oneMore = 'x'.repeat(length + 1)
    t.true(commandBytes('max', maximal) <= MAX_COMMAND_BYTES)
    t.true(commandBytes('max', oneMore) > MAX_COMMAND_BYTES)

    const before = await agreedState(peers)
    // One character too many, through a follower (which refuses it before forwarding) and through the leader.
    for (const peer of [follower, leader]) {
      const r = await api(peer, 'POST', CONFIGMAPS, threeCopiesYaml('max', oneMore), 'application/yaml')
      t.is(r.status, 413, `${peer.name}: one character too many`)
      t.like(r.body, { kind: 'Status', code: 413, reason: 'RequestEntityTooLarge' })
      t.regex(r.body.message, new RegExp(`^the write is ${commandBytes('max', oneMore)} bytes once encoded, more than the ${MAX_COMMAND_BYTES} bytes one write may be$`))
    }
    // The report's case: 201 KB of YAML that 99 aliases make some 20 MB.
    const big = 'y'.repeat(200 * 1024)
    const bomb = ['apiVersion: v1', 'kind: ConfigMap', 'metadata: {name: bomb}', 'data:', `  k0: &big "${big}"`,
      ...Array.from({ length: 99 }, (_, i) => `  k${i + 1}: *big`)].join('\n') + '\n'
    const bombed = await api(follower, 'POST', CONFIGMAPS, bomb, 'application/yaml')
    t.is(bombed.status, 413, 'the alias bomb')
    t.regex(bombed.body.message, /expands to more than \d+ bytes once parsed/)
    // A body past the 3 MiB limit.
    const huge = await api(leader, 'POST', CONFIGMAPS, JSON.stringify(threeCopies('huge', 'z'.repeat(1024 * 1024 + 1))))
    t.is(huge.status, 413, 'a body past 3 MiB')
    const after = await agreedState(peers)
    // The same state everywhere: none of the refused objects, nothing else changed. (The applied index may
    // have moved: a peer's periodic write that changes nothing, as a Node status rewritten unchanged, is an entry.)
    t.is(after.hash, before.hash, 'nothing reached the store: the same state everywhere')
    for (const name of ['max', 'bomb', 'huge']) t.is((await api(leader, 'GET', `${CONFIGMAPS}/${name}`)).status, 404, name)

    // The maximal object, through a follower: it replicates, and the log goes on. A write this large
    // can outlast the 5 s proposal timeout on a loaded machine: a 504 leaves the outcome open, so look.
    let created = await api(follower, 'POST', CONFIGMAPS, threeCopiesYaml('max', maximal), 'application/yaml')
    for (let attempt = 1; created.status === 504 && attempt < 3; attempt++) {
      if ((await api(leader, 'GET', `${CONFIGMAPS}/max?consistent=1`)).status === 200) break
      created = await api(follower, 'POST', CONFIGMAPS, threeCopiesYaml('max', maximal), 'application/yaml')
    }
    t.true([201, 504, 409].includes(created.status), JSON.stringify(created.body).slice(0, 300))
    for (const peer of peers) {
      const copy = await waitFor(`${peer.name} holds the maximal ConfigMap`, async () => {
        const r = await api(peer, 'GET', `${CONFIGMAPS}/max`)
        return r.status === 200 ? r.body as KObject & { data: Record<string, string> } : undefined
      }, 30_000)
      t.deepEqual(Object.values(copy.data).map(v => v.length), [length, length, length], `${peer.name}: the whole object`)
    }
    const small = await api(leader, 'POST', CONFIGMAPS, JSON.stringify(threeCopies('after', 'small')))
    t.is(small.status, 201, 'a write after it commits')
    for (const peer of peers) await waitFor(`${peer.name} holds the write after`, async () => (await api(peer, 'GET', `${CONFIGMAPS}/after`)).status === 200 || undefined, 30_000)
    const end = await agreedState(peers)
    t.true(end.appliedIndex >= before.appliedIndex + 2, 'both writes are in the log')
  } finally {
    await stopAll(peers, dir)
  }
})
