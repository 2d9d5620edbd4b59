// What the cluster key alone buys (issue 14): two real shoald peers on
// 127.0.114.20-21, and a libp2p host on 127.0.114.22 that holds the cluster
// key but was never admitted to the log. It gets no API token from a sync,
// no exec in a pod over pod access, and no proposal through forwarding.
import test from 'ava'
import { randomUUID } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromString } from '@libp2p/peer-id'
import { lpStream } from '@libp2p/utils'
import { multiaddr } from '@multiformats/multiaddr'
import { pino } from 'pino'
import { encode, isObject } from '../../protocol/codec.ts'
import { isSyncMessage, MAX_SYNC_BYTES, SYNC_PROTOCOL } from '../../protocol/membership.ts'
import { RAFT_FORWARD_PROTOCOL } from '../../protocol/raft.ts'
import { POD_ACCESS_PROTOCOL } from '../../daemon/kubelet/access.ts'
import { createHost } from '../../daemon/p2p/host.ts'
import type { ShoalHost } from '../../daemon/p2p/host.ts'
import { parseClusterKey } from '../../daemon/p2p/keys.ts'
import { request } from '../../daemon/p2p/rpc.ts'
import { encodeStoreCommand } from '../../daemon/store/command.ts'
import { api, startCluster, stopAll, waitFor } from '../helpers/cluster.ts'
import type { Peer } from '../helpers/cluster.ts'

let peers: Peer[] = []
let dir = ''
let outsider: ShoalHost | undefined

test.before(async () => {
  ({ peers, dir } = await startCluster('trust', ['127.0.114.20', '127.0.114.21']))
  const psk = parseClusterKey(readFileSync(join(dir, 'p1', 'cluster.key')), 'cluster.key')
  outsider = await createHost({ privateKey: await generateKeyPair('Ed25519'), psk, listen: ['/ip4/127.0.114.22/tcp/0'], log: pino({ level: 'silent' }) })
})

test.after.always(async () => {
  await outsider?.stop()
  await stopAll(peers, dir)
})

const p1 = (): Peer => peers[0]!
const peerIdOf = async (p: Peer): Promise<string> => (await p.members()).find(m => m.self)!.peerId

test.serial('an admitted joiner has the tokens; a peer with only the cluster key is handed none', async t => {
  t.is(peers[1]!.token(), p1().token(), 'the joiner was admitted and got the admin token')
  const answer = await request(outsider!, multiaddr(p1().addr), SYNC_PROTOCOL, { type: 'sync', members: [], wantToken: true }, isSyncMessage,
    { maxBytes: MAX_SYNC_BYTES, timeoutMs: 5000 })
  t.is(answer.type, 'sync-response')
  t.false('adminToken' in answer && answer.adminToken !== undefined, 'no admin token')
  t.false('viewerToken' in answer && answer.viewerToken !== undefined, 'no viewer token')
})

test.serial('pod access answers 403 to a peer the cluster has not admitted', async t => {
  const created = await api(p1(), 'POST', '/api/v1/namespaces/default/pods', {
    apiVersion: 'v1', kind: 'Pod', metadata: { name: 'target' },
    spec: { nodeName: 'p1', terminationGracePeriodSeconds: 1, containers: [{ name: 'main', image: 'busybox:1.36', command: ['sleep', '60'] }] }
  })
  t.is(created.status, 201)
  await waitFor('the pod to run', async () => (await api(p1(), 'GET', '/api/v1/namespaces/default/pods/target')).body?.status?.phase === 'Running')
  // From the API (an admitted peer's own path), exec works.
  const inside = await api(p1(), 'POST', '/api/v1/namespaces/default/pods/target/exec?command=echo&command=hi')
  t.like(inside, { status: 200, body: { exitCode: 0, stdout: 'hi\n' } })
  const answer = await request(outsider!, peerIdFromString(await peerIdOf(p1())), POD_ACCESS_PROTOCOL,
    { type: 'exec', namespace: 'default', name: 'target', command: ['echo', 'owned'] }, (v: unknown): v is Record<string, unknown> => isObject(v),
    { maxBytes: 1 << 20, timeoutMs: 10_000 })
  t.like(answer, { ok: false, code: 403 })
  await waitFor('p1 to log the refusal', () => p1().events().some(e => e.event === 'pod-access.refused'))
})

test.serial('the leader refuses a forwarding stream from a peer the cluster has not admitted, and nothing is proposed', async t => {
  // p1 founded the cluster and, with one other peer, stays its only voter and leader.
  const leaderId = await peerIdOf(p1())
  const command = encodeStoreCommand({ op: 'create', object: { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'planted', namespace: 'default' }, data: { a: 'b' } }, uid: randomUUID(), now: new Date().toISOString() })
  const stream = await outsider!.dialProtocol(peerIdFromString(leaderId), RAFT_FORWARD_PROTOCOL, { signal: AbortSignal.timeout(5000) })
  const lp = lpStream(stream)
  let answered = false
  try {
    await lp.write(encode({ id: 1, req: { type: 'propose', command } }), { signal: AbortSignal.timeout(5000) })
    await lp.read({ signal: AbortSignal.timeout(5000) })
    answered = true
  } catch {}
  t.false(answered, 'the stream is reset, not answered')
  await waitFor('p1 to log the refusal', () => p1().events().some(e => e.event === 'raft.forward.refused'))
  t.is((await api(p1(), 'GET', '/api/v1/namespaces/default/configmaps/planted')).status, 404)
})
