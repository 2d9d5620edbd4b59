// Simulated clients of the replicated key-value store, and the history they
// record for the linearizability checker (./linearizability.ts). Each
// client runs one op at a time: put and cas are proposed on a node that
// believes it leads and complete when that node applies its entry; get goes
// through ReadIndex and is served once the node has applied the read's
// index. An op whose outcome the client cannot learn (the node crashed, a
// snapshot skipped its index, the client gave up) is recorded with an
// unknown outcome, and the client carries on under a new id, as a crashed
// client process would. Times are ticks.
// May import: daemon/clock, this folder.
import type { Rng } from '../../daemon/clock/clock.ts'
import { pick } from '../../daemon/clock/clock.ts'
import type { SimHost, ProposalOutcome } from './host.ts'
import type { KvCommand } from './kv-model.ts'
import { encodeCommand } from './kv-model.ts'
import type { KvInput, KvOutput, Operation } from './linearizability.ts'

export type KvOperation = Operation<KvInput, KvOutput>

/** What the clients need from the simulation. */
export interface ClientWorld {
  now: () => number
  /** a node that believes it leads, if any */
  leader: () => SimHost | undefined
  /** proposes on `node`; undefined if it refused */
  propose: (node: SimHost, data: Uint8Array, done: (outcome: ProposalOutcome) => void) => { index: number, term: number } | undefined
  /** asks `node` for a read index; false if it refused */
  readIndex: (node: SimHost, ctx: number, key: string, done: (value: string | null | undefined) => void) => boolean
}

interface ActiveOp {
  input: KvInput
  call: number
  /** set once a node took it */
  submitted: boolean
  /** the tick it was submitted, for the client's timeout */
  since: number
  settled: boolean
}

interface Client {
  id: number
  op: ActiveOp | undefined
}

export interface ClientOptions {
  clients: number
  keys: number
  /** chance per tick that an idle client starts an op */
  rate: number
  /** ticks a client waits for a submitted op before it gives up (outcome unknown) */
  timeout: number
  /** ticks a client keeps looking for a leader before it drops an op never submitted */
  submitWait: number
}

export class Clients {
  readonly history: KvOperation[] = []
  reads = 0
  unknown = 0
  private readonly rng: Rng
  private readonly options: ClientOptions
  private readonly clients: Client[]
  private nextClientId: number
  private opCounter = 0
  private readCtx = 0

  constructor (rng: Rng, options: ClientOptions) {
    this.rng = rng
    this.options = options
    this.clients = Array.from({ length: options.clients }, (_, i) => ({ id: i + 1, op: undefined }))
    this.nextClientId = options.clients + 1
  }

  /** One tick: time out, retry submissions, and (when `issue`) start new ops. */
  tick (world: ClientWorld, issue: boolean): void {
    for (const c of this.clients) {
      const op = c.op
      if (op !== undefined) {
        if (op.submitted && world.now() - op.since > this.options.timeout) this.giveUp(c)
        else if (!op.submitted && world.now() - op.call > this.options.submitWait) c.op = undefined
        else if (!op.submitted) this.submit(c, world)
        continue
      }
      if (!issue || this.rng.next() >= this.options.rate) continue
      this.start(c, world)
    }
  }

  /** At the end of a run: whatever is still out ends unknown (hosts settle theirs first). */
  finish (): void {
    for (const c of this.clients) {
      if (c.op?.submitted === true) this.giveUp(c)
      c.op = undefined
    }
  }

  private start (c: Client, world: ClientWorld): void {
    const key = `k${1 + Math.floor(this.rng.next() * this.options.keys)}`
    const r = this.rng.next()
    const value = `v${++this.opCounter}`
    let input: KvInput
    if (r < 0.35) {
      input = { op: 'get', key }
    } else if (r < 0.7) {
      input = { op: 'put', key, value }
    } else {
      // Expect the value last seen for the key, or a recent one, or absence.
      const seen = this.history.filter(o => o.input.key === key && o.output !== undefined).slice(-3)
      const last = pick(this.rng, seen)
      let expected: string | null = null
      if (last !== undefined) {
        if (last.input.op === 'get' && last.output !== undefined && 'value' in last.output) expected = last.output.value
        else if (last.input.op !== 'get' && last.input.op !== 'del') expected = last.input.value
      }
      input = { op: 'cas', key, expected, value }
    }
    c.op = { input, call: world.now(), submitted: false, since: world.now(), settled: false }
    this.submit(c, world)
  }

  private submit (c: Client, world: ClientWorld): void {
    const op = c.op as ActiveOp
    const node = world.leader()
    if (node === undefined) return
    const input = op.input
    if (input.op === 'get') {
      const ctx = ++this.readCtx
      const ok = world.readIndex(node, ctx, input.key, value => {
        if (op.settled) return
        op.settled = true
        c.op = undefined
        // A dropped read had no effect; it is simply not in the history.
        if (value === undefined) return
        this.reads++
        this.history.push({ client: c.id, input, call: op.call, output: { value }, return: world.now() })
      })
      if (ok) {
        op.submitted = true
        op.since = world.now()
      }
      return
    }
    if (input.op === 'del') return
    const command: KvCommand = input.op === 'put'
      ? { op: 'put', key: input.key, value: input.value }
      : { op: 'cas', key: input.key, expected: input.expected, value: input.value }
    const at = world.propose(node, encodeCommand(command), outcome => {
      if (op.settled) return
      if (outcome === undefined) {
        this.giveUp(c)
        return
      }
      op.settled = true
      c.op = undefined
      if (outcome.applied) {
        this.history.push({ client: c.id, input, call: op.call, output: outcome.output ?? { ok: true }, return: world.now() })
      } else if (input.op === 'put') {
        // Overwritten in the log: it never took effect.
        this.history.push({ client: c.id, input, call: op.call, output: { ok: false }, return: world.now() })
      }
      // An overwritten cas had no effect either; the model's cas failure
      // means "the value differed", so it is left out instead.
    })
    if (at !== undefined) {
      op.submitted = true
      op.since = world.now()
    }
  }

  /** The client stops waiting: a write's outcome is unknown, a read is dropped; it goes on as a new client. */
  private giveUp (c: Client): void {
    const op = c.op
    c.op = undefined
    if (op === undefined || op.settled) return
    op.settled = true
    if (op.input.op !== 'get') {
      this.unknown++
      this.history.push({ client: c.id, input: op.input, call: op.call, output: undefined, return: Infinity })
    }
    c.id = this.nextClientId++
  }
}
