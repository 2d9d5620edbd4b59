// A Replicator for tests: a one-peer "log" that applies every proposal to a
// KvStore at once, with switches that make it fail the way a real Raft node
// can (no leader, timeout, not the leader), and counters of what was called.
// Also startTestApi: the real API server wired to it, on loopback.
import { mkdtemp, rm } from 'node:fs/promises'
import type { AddressInfo } from 'node:net'
import type { Server } from 'node:http'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { ExecutionContext } from 'ava'
import type { RaftStatusView } from '../../protocol/api.ts'
import { TokenStore } from '../../daemon/api/auth.ts'
import { createApiServer } from '../../daemon/api/server.ts'
import { KvStore } from '../../daemon/kv/store.ts'
import { createLogger } from '../../daemon/log/log.ts'
import type { Member } from '../../daemon/membership/table.ts'
import { NoLeaderError, NotLeaderError, ProposalTimeoutError } from '../../daemon/raft/replicator.ts'
import type { Proposed, Replicator } from '../../daemon/raft/replicator.ts'

export type FakeFailure =
  | { kind: 'none' }
  | { kind: 'no-leader', retryAfterSeconds?: number }
  | { kind: 'timeout' }
  | { kind: 'not-leader', leaderApi?: string }

export class FakeReplicator implements Replicator {
  readonly store: KvStore
  /** what propose and readBarrier do next; `none` applies and resolves */
  failure: FakeFailure = { kind: 'none' }
  term = 1
  proposals = 0
  readBarriers = 0
  /** replaces the status() answer when set */
  statusOverride: RaftStatusView | undefined
  private lastIndex: number

  constructor (store: KvStore) {
    this.store = store
    this.lastIndex = store.appliedIndex
  }

  private fail (): void {
    const f = this.failure
    if (f.kind === 'no-leader') throw new NoLeaderError(undefined, f.retryAfterSeconds)
    if (f.kind === 'timeout') throw new ProposalTimeoutError('the proposal was not committed within 5s; it may still be')
    if (f.kind === 'not-leader') throw new NotLeaderError(f.leaderApi)
  }

  propose = async (command: Uint8Array): Promise<Proposed<unknown>> => {
    this.proposals++
    await Promise.resolve()
    this.fail()
    const index = ++this.lastIndex
    return { index, result: this.store.apply(index, command) }
  }

  readBarrier = async (): Promise<number> => {
    this.readBarriers++
    await Promise.resolve()
    this.fail()
    return this.store.appliedIndex
  }

  status = (): RaftStatusView => this.statusOverride ?? {
    kind: 'RaftStatus',
    id: 'peer-a',
    name: 'a',
    role: 'leader',
    term: this.term,
    leader: { id: 'peer-a', name: 'a', api: '127.0.0.1:7070' },
    commitIndex: this.lastIndex,
    appliedIndex: this.store.appliedIndex,
    lastIndex: this.lastIndex,
    snapshotIndex: 0,
    voters: [{ id: 'peer-a', name: 'a', api: '127.0.0.1:7070', matchIndex: this.lastIndex, lag: 0 }],
    learners: []
  }

  appliedIndex = (): number => this.store.appliedIndex
}

export interface TestApi {
  url: string
  hostPort: string
  token: string
  kv: KvStore
  raft: FakeReplicator
  server: Server
}

/**
 * The real API server on 127.0.0.1 (port 0) with a KvStore, a
 * FakeReplicator, a fresh token (or the one given, so that several servers
 * share it) and the given members; closed at teardown.
 */
export async function startTestApi (t: ExecutionContext, opts: { members?: () => Member[], kvMaxValueBytes?: number, raft?: boolean, token?: string } = {}): Promise<TestApi> {
  const dir = await mkdtemp(join(tmpdir(), 'shoal-kv-api-'))
  const tokens = await TokenStore.load(dir)
  let token: string
  if (opts.token !== undefined) {
    await tokens.adopt(opts.token)
    token = opts.token
  } else {
    token = await tokens.create()
  }
  const kv = new KvStore()
  const raft = new FakeReplicator(kv)
  const server = createApiServer({
    tokens,
    members: opts.members ?? (() => []),
    selfPeerId: 'peer-a',
    log: createLogger('silent', 'test'),
    ...(opts.raft === false ? {} : { raft, kv }),
    ...(opts.kvMaxValueBytes !== undefined ? { kvMaxValueBytes: opts.kvMaxValueBytes } : {})
  })
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo
  t.teardown(async () => {
    server.closeAllConnections()
    await new Promise<void>(resolve => server.close(() => { resolve() }))
    await rm(dir, { recursive: true, force: true })
  })
  return { url: `http://127.0.0.1:${port}`, hostPort: `127.0.0.1:${port}`, token, kv, raft, server }
}
