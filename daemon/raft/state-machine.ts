// The interface between the Raft node and what it replicates. The node
// applies committed commands in log order, snapshots the state to compact
// the log, and restores a snapshot that a leader sent or that was saved.
// RoutedStateMachine puts several machines behind one log: each command's
// first byte (its tag) names the machine it is for.
// May import: protocol/.
import { decode, encode, isObject } from '../../protocol/codec.ts'

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
  /**
   * Optional: takes the state as of the last applied index at once, cheaply
   * (the machine's values must be immutable), and answers what encodes it
   * later, in slices with `pause()` between them, to the bytes snapshot()
   * would have given then. Applies may go on meanwhile.
   */
  capture?: () => SnapshotEncoder
}

export type SnapshotEncoder = (pause: () => Promise<void>) => Promise<Uint8Array>

/** `body` behind a one-byte tag. */
export function tagged (tag: number, body: Uint8Array): Uint8Array {
  const out = new Uint8Array(body.length + 1)
  out[0] = tag
  out.set(body, 1)
  return out
}

interface RoutedSnapshot { v: 1, parts: Record<string, Uint8Array> }

function isRoutedSnapshot (v: unknown): v is RoutedSnapshot {
  return isObject(v) && v.v === 1 && isObject(v.parts) && Object.values(v.parts).every(p => p instanceof Uint8Array)
}

export interface Route { tag: number, name: string, machine: StateMachine }

/** Several state machines behind one log, chosen by each command's tag byte (the machine sees the whole command). */
export class RoutedStateMachine implements StateMachine {
  private readonly routes: Map<number, Route>

  constructor (routes: Route[]) {
    this.routes = new Map(routes.map(r => [r.tag, r]))
  }

  apply (index: number, command: Uint8Array): unknown {
    const route = this.routes.get(command[0] ?? -1)
    if (route === undefined) return { ok: false, reason: 'invalid', index, message: `no state machine for command tag ${command[0] ?? '(empty)'}` }
    return route.machine.apply(index, command)
  }

  snapshot (): Uint8Array {
    const parts: Record<string, Uint8Array> = {}
    for (const r of this.routes.values()) parts[r.name] = r.machine.snapshot()
    return encode({ v: 1, parts } satisfies RoutedSnapshot)
  }

  capture (): SnapshotEncoder {
    const parts = [...this.routes.values()].map(r => {
      if (r.machine.capture !== undefined) return [r.name, r.machine.capture()] as const
      const data = r.machine.snapshot()
      return [r.name, async () => data] as const
    })
    return async pause => {
      const encoded: Record<string, Uint8Array> = {}
      for (const [name, encoder] of parts) encoded[name] = await encoder(pause)
      return encode({ v: 1, parts: encoded } satisfies RoutedSnapshot)
    }
  }

  restore (data: Uint8Array, index: number): void {
    const snap = decode(data, isRoutedSnapshot, 'state snapshot')
    for (const r of this.routes.values()) {
      const part = snap.parts[r.name]
      if (part === undefined) throw new Error(`the snapshot has no state for ${r.name}`)
      r.machine.restore(part, index)
    }
  }
}
