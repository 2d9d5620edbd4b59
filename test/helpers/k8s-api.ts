// The real API server over an in-process ResourceStore, for tests of
// Kubernetes clients: a one-peer "log" applies every proposal at once, the
// system namespaces exist, and the API answers HTTPS and HTTP on one
// loopback port (daemon/api/tls.ts) with a fresh self-signed certificate.
// No controllers, scheduler or kubelet run: objects stay as written.
import { randomUUID } from 'node:crypto'
import { mkdtemp, rm } from 'node:fs/promises'
import type { Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { ExecutionContext } from 'ava'
import type { RaftStatusView } from '../../protocol/api.ts'
import { rfc3339 } from '../../protocol/k8s.ts'
import { TokenStore } from '../../daemon/api/auth.ts'
import { createApiServer } from '../../daemon/api/server.ts'
import { acceptTls, createApiCert } from '../../daemon/api/tls.ts'
import { createLogger } from '../../daemon/log/log.ts'
import type { Proposed, Replicator } from '../../daemon/raft/replicator.ts'
import { bootstrapCommands, encodeStoreCommand, ResourceStore } from '../../daemon/store/store.ts'

/** Applies each proposal to the store at the next index, at once. */
export class StoreReplicator implements Replicator {
  readonly store: ResourceStore
  private index = 0
  constructor (store: ResourceStore) { this.store = store }

  propose = async (command: Uint8Array): Promise<Proposed<unknown>> => {
    await Promise.resolve()
    const index = ++this.index
    return { index, result: this.store.apply(index, command) }
  }

  readBarrier = async (): Promise<number> => this.index
  appliedIndex = (): number => this.index
  status = (): RaftStatusView => ({
    kind: 'RaftStatus',
    id: 'peer-a',
    name: 'a',
    role: 'leader',
    term: 1,
    leader: { id: 'peer-a', name: 'a', api: '127.0.0.1:0' },
    commitIndex: this.index,
    appliedIndex: this.index,
    lastIndex: this.index,
    snapshotIndex: 0,
    voters: [],
    learners: []
  })
}

export interface K8sTestApi {
  /** https://127.0.0.1:port */
  url: string
  /** http://127.0.0.1:port (same server) */
  plainUrl: string
  token: string
  /** the server's certificate (PEM), to pin as the CA */
  ca: string
  store: ResourceStore
  raft: StoreReplicator
  server: Server
}

export async function startK8sTestApi (t: ExecutionContext): Promise<K8sTestApi> {
  const dir = await mkdtemp(join(tmpdir(), 'shoal-k8s-api-'))
  const tokens = await TokenStore.load(dir)
  const token = await tokens.create()
  const store = new ResourceStore()
  const raft = new StoreReplicator(store)
  for (const c of bootstrapCommands(rfc3339(Date.now()), [randomUUID(), randomUUID(), randomUUID(), randomUUID()])) await raft.propose(encodeStoreCommand(c))
  const server = createApiServer({ tokens, members: () => [], selfPeerId: 'peer-a', log: createLogger('silent', 'test'), raft, store })
  const creds = await createApiCert(['127.0.0.1', 'localhost'])
  acceptTls(server, creds)
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo
  t.teardown(async () => {
    server.closeAllConnections()
    await new Promise<void>(resolve => server.close(() => { resolve() }))
    await rm(dir, { recursive: true, force: true })
  })
  return { url: `https://127.0.0.1:${port}`, plainUrl: `http://127.0.0.1:${port}`, token, ca: creds.cert, store, raft, server }
}
