// A linearizability checker for histories that tests and the simulator
// record, after Porcupine: the Wing–Gong search with Lowe's memoisation of
// (linearized set, state) pairs, run once per partition of the history
// (P-compositionality). Also the model of the replicated key-value store.
// Written here rather than taken as a dependency so that models stay plain
// TypeScript objects.
// May import: nothing but the language (no project code).

export interface Operation<I, O> {
  /** client id (a client has at most one op outstanding) */
  client: number
  input: I
  /** time the call started (any monotonic number) */
  call: number
  /** undefined: outcome unknown (timeout, crash); the op may or may not have taken effect */
  output: O | undefined
  /** time it returned; Infinity when the outcome is unknown */
  return: number
}

export interface Model<S, I, O> {
  init: () => S
  /**
   * The states that applying input to state can lead to while producing
   * output; empty when output is impossible. For an unknown output (undefined)
   * return every state the op can lead to if it took effect: the checker
   * covers "it never took effect" itself. Must not mutate state.
   */
  step: (state: S, input: I, output: O | undefined) => S[]
  /** states with equal hashes are the same state unless this says otherwise */
  equal?: (a: S, b: S) => boolean
  /** a key for memoisation */
  hash: (state: S) => string
  /** split into independent histories, each checked alone (e.g. per key) */
  partition?: (history: Array<Operation<I, O>>) => Array<Array<Operation<I, O>>>
  describe?: (op: Operation<I, O>) => string
  describeState?: (state: S) => string
}

export interface CheckResult {
  /** true only when every partition was shown linearizable */
  ok: boolean
  /** the search ran out of time before it found a violation: undecided, not a proof */
  timedOut?: boolean
  /** index (in the model's partition order) of the partition explained */
  partition?: number
  /** on failure: the smallest failing partition, the longest linearization found and the ops that could not follow it */
  explanation?: string
}

export interface CheckOptions {
  /** give up after this long, over all partitions; no limit when absent */
  timeoutMs?: number
}

/** Is there a sequential order of the history, consistent with real time, that the model accepts? */
export function checkLinearizable<S, I, O> (model: Model<S, I, O>, history: Array<Operation<I, O>>, opts: CheckOptions = {}): CheckResult {
  for (const op of history) {
    if (Number.isNaN(op.call) || Number.isNaN(op.return) || (op.output !== undefined && op.return < op.call)) {
      throw new RangeError(`operation of client ${op.client} returns (${op.return}) before its call (${op.call})`)
    }
  }
  const partitions = model.partition !== undefined ? model.partition(history) : [history]
  const deadline = opts.timeoutMs === undefined ? Infinity : performance.now() + opts.timeoutMs
  let failed: { index: number, ops: Array<Operation<I, O>>, best: Linearization<S> } | undefined
  let timedOut: number | undefined
  for (const [index, ops] of partitions.entries()) {
    const result = checkPartition(model, ops, deadline)
    if (result.kind === 'ok') continue
    if (result.kind === 'timeout') {
      timedOut ??= index
      // once out of time, the remaining partitions cannot be decided either
      if (performance.now() >= deadline) break
      continue
    }
    if (failed === undefined || ops.length < failed.ops.length) failed = { index, ops, best: result.best }
  }
  if (failed !== undefined) {
    return {
      ok: false,
      partition: failed.index,
      explanation: explain(model, failed.ops, failed.index, partitions.length, failed.best)
    }
  }
  if (timedOut !== undefined) {
    return {
      ok: false,
      timedOut: true,
      partition: timedOut,
      explanation: `timed out after ${opts.timeoutMs ?? 0} ms checking partition ${timedOut} of ${partitions.length}; no violation found so far`
    }
  }
  return { ok: true }
}

/** The deepest point the search reached: op indexes in linearization order and the state after them. */
interface Linearization<S> {
  order: number[]
  state: S
}

type PartitionResult<S> = { kind: 'ok' } | { kind: 'timeout' } | { kind: 'illegal', best: Linearization<S> }

/** A call or return event in the doubly linked list the search lifts ops out of. */
interface Entry {
  call: boolean
  id: number
  time: number
  /** a call's return entry; null for a return, and for a call whose outcome is unknown */
  match: Entry | null
  prev: Entry | null
  next: Entry | null
}

/** One linearized op on the search stack, with the alternatives not yet tried. */
interface Frame<S> {
  entry: Entry
  before: S
  after: S[]
  tried: number
}

function checkPartition<S, I, O> (model: Model<S, I, O>, ops: Array<Operation<I, O>>, deadline: number): PartitionResult<S> {
  const head = buildEntries(ops)
  const bits = new Bitset(ops.length)
  const cache = new Map<string, Array<{ words: Uint32Array, state: S }>>()
  const stack: Array<Frame<S>> = []
  // Ops with unknown outcome need not be linearized: leaving one out is the
  // same as putting it last, which nothing observes.
  let unresolved = ops.reduce((n, op) => op.output === undefined ? n : n + 1, 0)
  let state = model.init()
  let best: Linearization<S> = { order: [], state }
  let steps = 0

  /** Linearize entry next, in the first of after[from..] not already explored; false if none. */
  const tryLinearize = (entry: Entry, after: S[], from: number): boolean => {
    bits.set(entry.id)
    for (let i = from; i < after.length; i++) {
      const next = after[i] as S
      if (!remember(cache, bits, next, model)) continue
      stack.push({ entry, before: state, after, tried: i })
      state = next
      lift(entry)
      if (entry.match !== null) unresolved--
      if (stack.length > best.order.length) best = { order: stack.map(f => f.entry.id), state }
      return true
    }
    bits.clear(entry.id)
    return false
  }

  let entry = head.next
  while (unresolved > 0) {
    if ((++steps & 0x3ff) === 0 && performance.now() >= deadline) return { kind: 'timeout' }
    if (entry !== null && entry.call) {
      const op = ops[entry.id] as Operation<I, O>
      entry = tryLinearize(entry, model.step(state, op.input, op.output), 0) ? head.next : entry.next
      continue
    }
    // A completed op returns before anything left could be linearized: undo the last choice.
    const frame = stack.pop()
    if (frame === undefined) return { kind: 'illegal', best }
    unlift(frame.entry)
    bits.clear(frame.entry.id)
    if (frame.entry.match !== null) unresolved++
    state = frame.before
    entry = tryLinearize(frame.entry, frame.after, frame.tried + 1) ? head.next : frame.entry.next
  }
  return { kind: 'ok' }
}

/** The events sorted by time, calls before returns at equal times (so such ops count as concurrent). */
function buildEntries<I, O> (ops: Array<Operation<I, O>>): Entry {
  const events: Entry[] = []
  for (const [id, op] of ops.entries()) {
    const call: Entry = { call: true, id, time: op.call, match: null, prev: null, next: null }
    events.push(call)
    if (op.output !== undefined) {
      call.match = { call: false, id, time: op.return, match: null, prev: null, next: null }
      events.push(call.match)
    }
  }
  events.sort((a, b) => a.time - b.time || (a.call === b.call ? 0 : a.call ? -1 : 1))
  const head: Entry = { call: false, id: -1, time: -Infinity, match: null, prev: null, next: null }
  let last = head
  for (const e of events) {
    last.next = e
    e.prev = last
    last = e
  }
  return head
}

function lift (entry: Entry): void {
  unlink(entry)
  if (entry.match !== null) unlink(entry.match)
}

/** Undo lift; works because lifts are undone in reverse order (dancing links). */
function unlift (entry: Entry): void {
  if (entry.match !== null) relink(entry.match)
  relink(entry)
}

function unlink (e: Entry): void {
  if (e.prev !== null) e.prev.next = e.next
  if (e.next !== null) e.next.prev = e.prev
}

function relink (e: Entry): void {
  if (e.prev !== null) e.prev.next = e
  if (e.next !== null) e.next.prev = e
}

/** Add (bits, state) to the cache; false if it was there already. */
function remember<S, I, O> (cache: Map<string, Array<{ words: Uint32Array, state: S }>>, bits: Bitset, state: S, model: Model<S, I, O>): boolean {
  const key = `${bits.hash}:${model.hash(state)}`
  let bucket = cache.get(key)
  if (bucket === undefined) {
    bucket = []
    cache.set(key, bucket)
  }
  for (const seen of bucket) {
    if (bits.equals(seen.words) && (model.equal === undefined || model.equal(seen.state, state))) return false
  }
  bucket.push({ words: bits.words.slice(), state })
  return true
}

/** The set of linearized ops, with a hash kept up to date as bits flip. */
class Bitset {
  readonly words: Uint32Array
  hash = 0

  constructor (size: number) {
    this.words = new Uint32Array((size + 31) >>> 5)
  }

  /** i must not be set */
  set (i: number): void {
    this.words[i >>> 5] = (this.words[i >>> 5] ?? 0) | (1 << (i & 31))
    this.hash = (this.hash ^ mix(i)) >>> 0
  }

  /** i must be set */
  clear (i: number): void {
    this.words[i >>> 5] = (this.words[i >>> 5] ?? 0) & ~(1 << (i & 31))
    this.hash = (this.hash ^ mix(i)) >>> 0
  }

  equals (words: Uint32Array): boolean {
    for (let i = 0; i < words.length; i++) if (words[i] !== this.words[i]) return false
    return true
  }
}

/** A well-spread 32-bit value per bit index, XORed into the set's hash. */
function mix (i: number): number {
  let h = Math.imul(i + 1, 0x9E3779B1)
  h = Math.imul(h ^ (h >>> 16), 0x85EBCA6B)
  return (h ^ (h >>> 13)) >>> 0
}

const fullListingMax = 40
const prefixShown = 8

function explain<S, I, O> (model: Model<S, I, O>, ops: Array<Operation<I, O>>, index: number, count: number, best: Linearization<S>): string {
  const describe = model.describe ?? ((op: Operation<I, O>) =>
    `${JSON.stringify(op.input)} → ${op.output === undefined ? '? (unknown)' : JSON.stringify(op.output)}`)
  const line = (id: number): string => {
    const op = ops[id] as Operation<I, O>
    const returned = op.output === undefined ? 'never' : String(op.return)
    return `  #${id} client ${op.client}: ${describe(op)}   [call ${op.call}, return ${returned}]`
  }
  const showState = model.describeState ?? model.hash
  const lines = [`partition ${index} of ${count} is not linearizable (${ops.length} ops)`]

  const linearized = new Set(best.order)
  const shown = best.order.slice(-prefixShown)
  lines.push(`longest linearization found: ${best.order.length} ops${shown.length < best.order.length ? `, the last ${shown.length}` : ''}:`)
  lines.push(...shown.map(line))
  lines.push(`state after it: ${showState(best.state)}`)

  // What could come next: every op left that was called before the first
  // completed op left returned; that one had to be among them.
  let firstReturn: number | undefined
  for (const [id, op] of ops.entries()) {
    if (linearized.has(id) || op.output === undefined) continue
    if (firstReturn === undefined || op.return < (ops[firstReturn] as Operation<I, O>).return) firstReturn = id
  }
  if (firstReturn !== undefined) {
    const deadline = (ops[firstReturn] as Operation<I, O>).return
    const next = [...ops.keys()].filter(id => !linearized.has(id) && (ops[id] as Operation<I, O>).call <= deadline)
    lines.push(`none of these can follow it (#${firstReturn} returned at ${deadline}, so one of them must):`)
    lines.push(...next.map(line))
  }
  if (ops.length <= fullListingMax) {
    lines.push('whole partition, by call time:')
    lines.push(...[...ops.keys()].sort((a, b) => (ops[a] as Operation<I, O>).call - (ops[b] as Operation<I, O>).call).map(line))
  }
  return lines.join('\n')
}

// The key-value store. Values written in tests are unique, so CAS on the
// expected value is equivalent to the server's CAS on the key's index.

export type KvInput =
  | { op: 'get', key: string }
  | { op: 'put', key: string, value: string }
  | { op: 'cas', key: string, expected: string | null, value: string }
  | { op: 'del', key: string }

export type KvOutput = { value: string | null } | { ok: boolean }

/** One key's value; null when absent. */
export type KvState = string | null

export const kvModel: Model<KvState, KvInput, KvOutput> = {
  init: () => null,

  step (state, input, output) {
    switch (input.op) {
      case 'get':
        if (output === undefined) return [state]
        return 'value' in output && output.value === state ? [state] : []
      case 'put':
      case 'del': {
        const after = input.op === 'put' ? input.value : null
        if (output === undefined) return [after]
        if (!('ok' in output)) return []
        // a definite failure means it had no effect
        return output.ok ? [after] : [state]
      }
      case 'cas': {
        const matches = state === input.expected
        if (output === undefined) return [matches ? input.value : state]
        if (!('ok' in output) || output.ok !== matches) return []
        return [matches ? input.value : state]
      }
    }
  },

  hash: state => JSON.stringify(state),

  partition (history) {
    const byKey = new Map<string, Array<Operation<KvInput, KvOutput>>>()
    for (const op of history) {
      let ops = byKey.get(op.input.key)
      if (ops === undefined) {
        ops = []
        byKey.set(op.input.key, ops)
      }
      ops.push(op)
    }
    return [...byKey.values()]
  },

  describe (op) {
    const { input, output } = op
    const key = JSON.stringify(input.key)
    let result: string
    if (output === undefined) result = '? (outcome unknown)'
    else if ('value' in output) result = JSON.stringify(output.value)
    else result = output.ok ? 'ok' : 'failed'
    switch (input.op) {
      case 'get': return `get ${key} → ${result}`
      case 'put': return `put ${key} = ${JSON.stringify(input.value)} → ${result}`
      case 'cas': return `cas ${key} ${JSON.stringify(input.expected)} ⇒ ${JSON.stringify(input.value)} → ${result}`
      case 'del': return `del ${key} → ${result}`
    }
  },

  describeState: state => state === null ? 'absent' : JSON.stringify(state)
}
