// The store's write side over the Raft log: a StoreWriter that encodes a
// command, proposes it through the leader and answers with what applying it
// returned. Every component that writes objects (the API, the controllers,
// the kubelet) gets one from main.ts instead of proposing bytes itself.
// May import: protocol/, daemon/raft/replicator.ts, ./command.ts, ./types.ts.
import type { KObject } from '../../protocol/k8s.ts'
import type { Replicator } from '../raft/replicator.ts'
import { encodeStoreCommand } from './command.ts'
import type { StoreCommand, StoreResult, StoreWriter } from './types.ts'

export function replicatedWriter (raft: Pick<Replicator, 'propose'>): StoreWriter {
  return {
    async write<T extends KObject = KObject> (cmd: StoreCommand): Promise<StoreResult<T>> {
      // The store's apply answers every store command with a StoreResult.
      return (await raft.propose(encodeStoreCommand(cmd))).result as StoreResult<T>
    }
  }
}
