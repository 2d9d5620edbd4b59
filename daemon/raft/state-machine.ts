// The interface between the Raft node and what it replicates. The node
// applies committed commands in log order, snapshots the state to compact
// the log, and restores a snapshot that a leader sent or that was saved.
// May import: nothing.

export interface StateMachine {
  /**
   * Applies the command committed at `index`. It must be deterministic (same
   * state, same command, same result on every peer) and must not throw on a
   * bad command: it returns an error result instead. The result goes back to
   * the proposer.
   */
  apply: (index: number, command: Uint8Array) => unknown
  /** The whole state as of the last applied index, encoded. */
  snapshot: () => Uint8Array
  /** Replaces the whole state with one made by snapshot(), applied up to `index`. */
  restore: (data: Uint8Array, index: number) => void
}
