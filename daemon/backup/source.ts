// Taking a backup of this peer's replica: the whole state machine encoded at
// its applied index, with the header that names it. A consistent backup
// first runs a ReadIndex round through the leader, so the state includes
// every write acknowledged before it was asked for; a local one (scheduled
// snapshots) does not, so that it still works when the cluster has no
// leader. The state is built in memory once (StateMachine.snapshot()) and
// streamed from that buffer with no other copy.
// May import: protocol/, daemon/raft/replicator.ts, daemon/raft/state-machine.ts, daemon/clock, this folder.
import { VERSION } from '../../protocol/version.ts'
import type { Clock } from '../clock/clock.ts'
import type { Replicator } from '../raft/replicator.ts'
import type { StateMachine } from '../raft/state-machine.ts'
import { BACKUP_FORMAT } from '../../protocol/backup.ts'
import type { BackupHeader } from '../../protocol/backup.ts'

export interface Backup {
  header: BackupHeader
  body: Uint8Array
}

export interface BackupSourceInit {
  raft: Pick<Replicator, 'readBarrier' | 'appliedIndex'>
  /** the term of the log entry at an applied index */
  termAt: (index: number) => number
  state: StateMachine
  clusterId: string
  peer: string
  clock: Clock
}

export type TakeBackup = (opts: { consistent: boolean }) => Promise<Backup>

export function backupSource (init: BackupSourceInit): TakeBackup {
  return async ({ consistent }) => {
    if (consistent) await init.raft.readBarrier()
    // No await from here on: the index, term and state belong together.
    const index = init.raft.appliedIndex()
    const term = init.termAt(index)
    const body = init.state.snapshot()
    const header: BackupHeader = {
      format: BACKUP_FORMAT,
      clusterId: init.clusterId,
      index,
      term,
      createdAt: new Date(init.clock.now()).toISOString(),
      version: VERSION,
      peer: init.peer,
      bodyBytes: body.length
    }
    return { header, body }
  }
}
