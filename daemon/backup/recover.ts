// `shoald --recover`: after losing quorum for good, make this survivor a
// one-voter cluster from its own log. Every entry it holds is kept, the
// uncommitted tail included (as etcd's --force-new-cluster does): it may
// hold writes that were acknowledged, and nothing here can tell which. A
// config entry naming this peer sole voter is appended in a new term (above
// every term in its log and its hard state, so that no other survivor's log
// can hold a different entry with the same index and term) and marked
// committed. Other peers then join it and autopilot grows the voter set.
// May import: protocol/, daemon/raft (storage), daemon/log.
import { encode } from '../../protocol/codec.ts'
import type { Logger } from '../log/log.ts'
import type { LevelStorage } from '../raft/level-storage.ts'

export class RecoverError extends Error {
  override name = 'RecoverError'
}

export async function forceSingleVoter (storage: LevelStorage, selfId: string, dataDir: string, log: Logger): Promise<{ index: number, term: number }> {
  const last = storage.lastIndex()
  if (last === 0 && storage.snapshotMeta().index === 0) throw new RecoverError(`--recover: ${dataDir} holds no Raft log to recover from`)
  const hs = storage.hardState()
  const term = Math.max(hs.term, storage.term(last)) + 1
  const index = last + 1
  await storage.save({
    entries: [{ term, index, kind: 'config', data: encode({ voters: [selfId], learners: [] }) }],
    hardState: { term, commit: index },
    sync: true
  })
  log.warn({ event: 'raft.recovered', index, term, previousCommit: hs.commit }, `recovered: this peer is now the only voter (log kept through index ${last}, previously committed through ${hs.commit}); other peers may join it`)
  return { index, term }
}
