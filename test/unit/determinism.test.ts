// Determinism of the replicated state (issue #14): fast-check generates
// sequences of store and KV commands (realistic objects of every kind,
// creates, updates, status and scale writes, merge/strategic/JSON patches,
// deletes with cascades, KV puts and deletes with cas; and invalid ones:
// mutated objects, garbage bytes, truncated and bit-flipped commands, nesting
// up to 400 levels, large values, unicode, non-JSON values) and applies each
// sequence, as committed log entries, to replicas built as daemon/main.ts
// builds them (a RoutedStateMachine of the KvStore and the ResourceStore):
//   A: fresh;
//   B: fresh, applying every entry with 85% of the stack used (apply must
//      not depend on the stack: a replica replaying its log at start-up and
//      one applying from a deep call chain must decide the same);
//   C: applies a shorter prefix (a follower behind), then restores the
//      snapshot A took midway, then applies the rest.
// It asserts that apply never throws, that the three answer every entry the
// same, that their state hashes (sha256 of the snapshot, as
// /shoal/v1/debug/state-hash computes it) and their readable state agree at
// the snapshot and at the end, and that no stored object nests deeper than
// MAX_JSON_DEPTH or fails its kind's validation.
//
// SHOAL_PROPERTY_RUNS=N runs N cases (default 10,000); a failure prints the
// seed, the path and the shrunk counterexample, and SHOAL_PROPERTY_SEED=S
// SHOAL_PROPERTY_PATH=P replays it.
import test from 'ava'
import fc from 'fast-check'
import { createHash } from 'node:crypto'
import { isDeepStrictEqual } from 'node:util'
import { decode, encode, isObject } from '../../protocol/codec.ts'
import { CONFIG_MAP, KINDS } from '../../protocol/kinds.ts'
import { jsonBoundPassed, MAX_JSON_DEPTH } from '../../protocol/json.ts'
import { validateObject } from '../../protocol/validation.ts'
import { KV_TAG, KvStore, encodeKvCommand } from '../../daemon/kv/store.ts'
import { RoutedStateMachine, tagged } from '../../daemon/raft/state-machine.ts'
import { bootstrapCommands, encodeStoreCommand, ResourceStore } from '../../daemon/store/store.ts'
import { STORE_TAG } from '../../daemon/store/types.ts'
import type { StoreCommand } from '../../daemon/store/types.ts'
import {
  jsonPatchArb, KIND_NAMES, manifestArb, mergePatchArb, mutate, mutationArb, nameArb, namespaceArb, nastyString, nested, nestedMaps,
  NAMES, RESOURCES, statusArb, strategicPatchArb, UIDS
} from '../helpers/arbitraries.ts'
import type { Mutation, Obj } from '../helpers/arbitraries.ts'

const RUNS = Number(process.env.SHOAL_PROPERTY_RUNS ?? 10_000)
const SEED = process.env.SHOAL_PROPERTY_SEED === undefined ? undefined : Number(process.env.SHOAL_PROPERTY_SEED)
const PATH = process.env.SHOAL_PROPERTY_PATH

const NOW = '2025-01-01T00:00:00Z'

// ---- the replicas ----------------------------------------------------------

interface Replica { kv: KvStore, store: ResourceStore, state: RoutedStateMachine }

/** A replica's state machines, wired as daemon/main.ts wires them. */
function replica (): Replica {
  const kv = new KvStore()
  const store = new ResourceStore()
  const state = new RoutedStateMachine([{ tag: KV_TAG, name: 'kv', machine: kv }, { tag: STORE_TAG, name: 'store', machine: store }])
  return { kv, store, state }
}

const sha256 = (bytes: Uint8Array): string => createHash('sha256').update(bytes).digest('hex')

const isParts = (v: unknown): v is { parts: Record<string, Uint8Array> } => isObject(v) && isObject(v.parts)

/** What /shoal/v1/debug/state-hash answers: the digest of the encoded state. */
const stateHash = (snapshot: Uint8Array): string => sha256(snapshot)

/** Each machine's share of a snapshot, digested alone, to say which one diverged. */
function partHashes (snapshot: Uint8Array): string {
  return Object.entries(decode(snapshot, isParts, 'state snapshot').parts).map(([name, part]) => `${name} ${sha256(part).slice(0, 12)}`).join(', ')
}

/** Everything a reader can see: every object of every kind, every KV entry. */
function readable (r: Replica): unknown {
  return { objects: KINDS.map(k => r.store.list(k).items), kv: r.kv.list(), applied: [r.kv.appliedIndex, r.store.appliedIndex] }
}

type Outcome = { result: unknown } | { threw: string }

function applyAt (r: Replica, index: number, bytes: Uint8Array): Outcome {
  try {
    return { result: r.state.apply(index, bytes) }
  } catch (err) {
    return { threw: `${(err as Error).name}: ${(err as Error).message}` }
  }
}

/** How many frames of `down` fit on this stack. */
function stackFrames (): number {
  const probe = (n: number): number => { try { return probe(n + 1) } catch { return n } }
  return probe(0)
}
/** Calls `fn` `frames` frames further down the stack. */
function down<T> (frames: number, fn: () => T): T {
  return frames <= 0 ? fn() : down(frames - 1, fn)
}
/**
 * Replica B applies with 85% of the stack already used: with no depth
 * limit, an object a few hundred levels deep applies on a fresh stack and is
 * a 500 (Maximum call stack size exceeded) here, which is how replicas
 * diverged; with the limit, nothing an entry holds may need more than the
 * rest.
 */
const DEEP_STACK = Math.floor(stackFrames() * 0.85)

// ---- the commands, as printable descriptions -------------------------------

type Ref = { group: string, resource: string, name: string, namespace?: string }

type Step =
  | { t: 'create', object: Obj, uid: string, mutations: readonly Mutation[], dryRun?: boolean, now?: string }
  | { t: 'update', object: Obj, mutations: readonly Mutation[], subresource?: 'status' | 'scale', ref?: Ref, dryRun?: boolean }
  | { t: 'patch', ref: Ref, patchType: 'merge' | 'strategic' | 'json', patch: unknown, subresource?: 'status' | 'scale', dryRun?: boolean }
  | { t: 'delete', ref: Ref, propagationPolicy?: string, preconditions?: Obj, dryRun?: boolean }
  | { t: 'evict', ref: Ref, preconditions?: Obj, gracePeriodSeconds?: number, dryRun?: boolean }
  | { t: 'bind', ref: Ref, node: string, preconditions?: Obj, dryRun?: boolean }
  | { t: 'kv', op: 'put' | 'del', key: string, value?: Uint8Array, cas?: number }
  /** `body` encoded as is behind `tag` (no tag when null): commands of the wrong shape */
  | { t: 'raw', tag: number | null, body: unknown }
  | { t: 'bytes', bytes: Uint8Array }
  /** another step's bytes cut to `keep` bytes, or with byte `at` xored with `xor` */
  | { t: 'cut', of: Step, keep: number }
  | { t: 'flip', of: Step, at: number, xor: number }
  | { t: 'deep', depth: number, where: DeepWhere }
  | { t: 'large', what: 'value' | 'keys' | 'containers' | 'kv' | 'list', size: number }
  | { t: 'ext', ext: keyof typeof EXTENSIONS, where: 'object' | 'patch' | 'kv' }

type DeepWhere = 'binaryData' | 'managedFields' | 'status' | 'securityContext' | 'merge' | 'strategic' | 'json' | 'copy' | 'kv' | 'command' | 'key'

const cm = (name: string, extra: Obj): Obj => ({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name, namespace: 'default' }, ...extra })
const CM_WEB: Ref = { group: '', resource: 'configmaps', name: 'web', namespace: 'default' }
const DEPLOY_WEB: Ref = { group: 'apps', resource: 'deployments', name: 'web', namespace: 'default' }

const LABELS = { app: 'web' }
const TEMPLATE = { metadata: { labels: LABELS }, spec: { containers: [{ name: 'web', image: 'nginx:1.25' }] } }
/** The objects the prefix creates, as functions of what an update may change. */
const seeded = {
  service: (ports: unknown = [{ port: 80 }]): Obj => ({ apiVersion: 'v1', kind: 'Service', metadata: { name: 'web', namespace: 'team' }, spec: { selector: LABELS, ports } }),
  configMap: (data: unknown = { a: '1' }): Obj => cm('web', { data, binaryData: { b: 'aGk=' } }),
  deployment: (replicas = 2, image = 'nginx:1.25'): Obj => ({ apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: 'web', namespace: 'default', labels: LABELS }, spec: { replicas, selector: { matchLabels: LABELS }, template: { ...TEMPLATE, spec: { containers: [{ name: 'web', image }] } } } }),
  replicaSet: (replicas = 2): Obj => ({ apiVersion: 'apps/v1', kind: 'ReplicaSet', metadata: { name: 'web-1', namespace: 'default', labels: LABELS, ownerReferences: [{ apiVersion: 'apps/v1', kind: 'Deployment', name: 'web', uid: 'uid-1', controller: true }] }, spec: { replicas, selector: { matchLabels: LABELS }, template: TEMPLATE } }),
  pod: (image = 'nginx:1.25', nodeName?: string): Obj => ({ apiVersion: 'v1', kind: 'Pod', metadata: { name: 'web-1-a', namespace: 'default', labels: LABELS, ownerReferences: [{ apiVersion: 'apps/v1', kind: 'ReplicaSet', name: 'web-1', uid: 'uid-2', controller: true }] }, spec: { containers: [{ name: 'web', image }], ...(nodeName === undefined ? {} : { nodeName }) } })
}

const pick = <T>(xs: readonly T[]): fc.Arbitrary<T> => fc.constantFrom(...xs)

const refArb: fc.Arbitrary<Ref> = fc.oneof(
  { weight: 12, arbitrary: fc.tuple(pick(KIND_NAMES), nameArb, namespaceArb).map(([k, name, ns]) => { const r = RESOURCES[k]!; return r.namespaced ? { group: r.group, resource: r.resource, name, namespace: ns } : { group: r.group, resource: r.resource, name } }) },
  { weight: 1, arbitrary: fc.record({ group: pick(['', 'apps', 'batch']), resource: pick(['widgets', 'pods', 'deployments', 'scale']), name: nameArb, namespace: namespaceArb }) }
)
/** A ref to the objects the fixed prefix made, so that patches and scales meet something. */
const seededRef: fc.Arbitrary<Ref> = pick([
  { group: '', resource: 'configmaps', name: 'web', namespace: 'default' },
  { group: 'apps', resource: 'deployments', name: 'web', namespace: 'default' },
  { group: 'apps', resource: 'replicasets', name: 'web-1', namespace: 'default' },
  { group: '', resource: 'pods', name: 'web-1-a', namespace: 'default' },
  { group: '', resource: 'services', name: 'web', namespace: 'team' },
  { group: '', resource: 'namespaces', name: 'team' }
])
const anyRef = fc.oneof({ weight: 3, arbitrary: seededRef }, { weight: 1, arbitrary: refArb })

const maybe = <T>(arb: fc.Arbitrary<T>): fc.Arbitrary<T | undefined> => fc.option(arb, { nil: undefined, freq: 3 })

const createArb: fc.Arbitrary<Step> = fc.record({
  t: fc.constant('create' as const),
  object: manifestArb,
  uid: pick(UIDS),
  mutations: fc.oneof({ weight: 4, arbitrary: fc.constant<Mutation[]>([]) }, { weight: 1, arbitrary: fc.array(mutationArb, { minLength: 1, maxLength: 3 }) }),
  dryRun: maybe(fc.boolean()),
  now: maybe(pick([NOW, '2025-06-01T12:00:00Z', 'not a time']))
}, { requiredKeys: ['t', 'object', 'uid', 'mutations'] })

/** A whole-object update of an object the prefix made (or of one a create may have made), with or without a resourceVersion. */
const updateObjectArb: fc.Arbitrary<Obj> = fc.oneof(
  { weight: 4, arbitrary: fc.oneof(
    fc.tuple(fc.integer({ min: 0, max: 6 }), pick(['nginx:1.25', 'nginx:2', ''])).map(([r, image]) => seeded.deployment(r, image)),
    fc.integer({ min: 0, max: 6 }).map(r => seeded.replicaSet(r)),
    fc.tuple(pick(['nginx:1.25', 'nginx:2']), maybe(pick(['p1', 'p2']))).map(([image, node]) => seeded.pod(image, node)),
    fc.dictionary(pick(['a', 'b', 'c']), fc.string({ maxLength: 6 }), { maxKeys: 2, noNullPrototype: true }).map(d => seeded.configMap(d)),
    fc.array(fc.record({ name: pick(['http', 'https']), port: pick([80, 443, 8080]) }), { minLength: 1, maxLength: 2 }).map(p => seeded.service(p.length > 1 ? p : [{ port: p[0]?.port }]))
  ).chain(o => fc.tuple(fc.constant(o), maybe(pick(['7', '8', '9', '12', '']))).map(([obj, rv]) => rv === undefined ? obj : { ...obj, metadata: { ...(obj.metadata as Obj), resourceVersion: rv } })) },
  { weight: 1, arbitrary: manifestArb }
)
const statusTarget = fc.oneof(
  pick([['Deployment', 'web', 'default'], ['ReplicaSet', 'web-1', 'default'], ['Pod', 'web-1-a', 'default'], ['Service', 'web', 'team'], ['Namespace', 'team', undefined]] as const),
  fc.tuple(pick(KIND_NAMES), pick(NAMES), pick(['default', 'team']))
)

const updateArb: fc.Arbitrary<Step> = fc.oneof(
  fc.record({ t: fc.constant('update' as const), object: updateObjectArb, mutations: fc.oneof(fc.constant<Mutation[]>([]), fc.array(mutationArb, { maxLength: 2 })), dryRun: maybe(fc.boolean()) }, { requiredKeys: ['t', 'object', 'mutations'] }),
  fc.record({ t: fc.constant('update' as const), object: fc.tuple(statusTarget, statusArb).map(([[k, name, ns], status]) => ({ apiVersion: k === 'Deployment' || k === 'ReplicaSet' ? 'apps/v1' : 'v1', kind: k, metadata: ns === undefined ? { name } : { name, namespace: ns }, status })), mutations: fc.constant<Mutation[]>([]), subresource: fc.constant('status' as const) }),
  fc.record({
    t: fc.constant('update' as const),
    object: fc.record({ replicas: fc.oneof(fc.integer({ min: 0, max: 8 }), pick([-1, 2 ** 31, 2 ** 31 - 1, 0.5, 'three'])), rv: maybe(pick(['1', '9', ''])) }).map(({ replicas, rv }) => ({ apiVersion: 'autoscaling/v1', kind: 'Scale', metadata: { name: 'web', namespace: 'default', ...(rv === undefined ? {} : { resourceVersion: rv }) }, spec: { replicas } })),
    mutations: fc.constant<Mutation[]>([]),
    subresource: fc.constant('scale' as const),
    ref: fc.oneof({ weight: 4, arbitrary: pick([DEPLOY_WEB, { group: 'apps', resource: 'replicasets', name: 'web-1', namespace: 'default' }]) }, { weight: 1, arbitrary: anyRef })
  })
)

const patchArb: fc.Arbitrary<Step> = fc.oneof(
  fc.record({ t: fc.constant('patch' as const), ref: anyRef, patchType: fc.constant('merge' as const), patch: mergePatchArb, subresource: maybe(pick(['status', 'scale'] as const)), dryRun: maybe(fc.boolean()) }, { requiredKeys: ['t', 'ref', 'patchType', 'patch'] }),
  fc.record({ t: fc.constant('patch' as const), ref: anyRef, patchType: fc.constant('strategic' as const), patch: strategicPatchArb, subresource: maybe(pick(['status', 'scale'] as const)) }, { requiredKeys: ['t', 'ref', 'patchType', 'patch'] }),
  fc.record({ t: fc.constant('patch' as const), ref: anyRef, patchType: fc.constant('json' as const), patch: jsonPatchArb, subresource: maybe(pick(['status', 'scale'] as const)) }, { requiredKeys: ['t', 'ref', 'patchType', 'patch'] })
)

const deleteArb: fc.Arbitrary<Step> = fc.record({
  t: fc.constant('delete' as const),
  ref: anyRef,
  propagationPolicy: maybe(pick(['Background', 'Foreground', 'Orphan'])),
  preconditions: maybe(fc.record({ uid: pick(UIDS), resourceVersion: pick(['5', '9', '12']) }, { requiredKeys: [] })),
  dryRun: maybe(fc.boolean())
}, { requiredKeys: ['t', 'ref'] })

// The eviction subresource: mostly the seeded pod, under whatever budgets the steps made.
const evictArb: fc.Arbitrary<Step> = fc.record({
  t: fc.constant('evict' as const),
  ref: fc.oneof({ weight: 3, arbitrary: fc.constant({ group: '', resource: 'pods', name: 'web-1-a', namespace: 'default' }) }, { weight: 1, arbitrary: anyRef }),
  preconditions: maybe(fc.record({ uid: pick(UIDS), resourceVersion: pick(['5', '9', '12']) }, { requiredKeys: [] })),
  gracePeriodSeconds: maybe(pick([0, 5, -1])),
  dryRun: maybe(fc.boolean())
}, { requiredKeys: ['t', 'ref'] })

// A pod's binding: mostly the seeded pod, to a node that exists or not.
const bindArb: fc.Arbitrary<Step> = fc.record({
  t: fc.constant('bind' as const),
  ref: fc.oneof({ weight: 3, arbitrary: fc.constant({ group: '', resource: 'pods', name: 'web-1-a', namespace: 'default' }) }, { weight: 1, arbitrary: anyRef }),
  node: pick(['node-a', 'node-b', 'x'.repeat(300)]),
  preconditions: maybe(fc.record({ uid: pick(UIDS) }, { requiredKeys: [] })),
  dryRun: maybe(fc.boolean())
}, { requiredKeys: ['t', 'ref', 'node'] })

const kvKey = fc.oneof({ weight: 6, arbitrary: pick(['config/a', 'config/b', 'lock', 'ü/🐳']) }, { weight: 1, arbitrary: nastyString }, { weight: 1, arbitrary: pick(['', '.', '..', 'k'.repeat(1025), 'é'.repeat(600)]) })
const kvArb: fc.Arbitrary<Step> = fc.record({
  t: fc.constant('kv' as const),
  op: pick(['put', 'put', 'del'] as const),
  key: kvKey,
  value: fc.uint8Array({ maxLength: 24 }),
  cas: maybe(fc.oneof(fc.integer({ min: 0, max: 14 }), pick([-1, 0.5, 2 ** 53])))
}, { requiredKeys: ['t', 'op', 'key', 'value'] })

const rawArb: fc.Arbitrary<Step> = fc.record({
  t: fc.constant('raw' as const),
  tag: pick([STORE_TAG, STORE_TAG, KV_TAG, 0, 3, 255, null]),
  body: fc.oneof(
    fc.jsonValue({ maxDepth: 3 }),
    fc.record({ op: pick(['create', 'update', 'patch', 'delete', 'put', 'del', 'frob']), object: fc.oneof(manifestArb, fc.jsonValue({ maxDepth: 2 })), uid: fc.oneof(pick(UIDS), fc.constant(''), fc.integer()), now: fc.oneof(fc.constant(NOW), fc.integer()), ref: fc.oneof(anyRef, fc.jsonValue({ maxDepth: 1 })), patchType: pick(['merge', 'json', 'apply']), patch: fc.jsonValue({ maxDepth: 2 }), key: kvKey, value: fc.oneof(fc.uint8Array({ maxLength: 4 }), fc.string()), cas: fc.oneof(fc.integer(), fc.double()), subresource: pick(['status', 'scale', 'exec']), dryRun: fc.oneof(fc.boolean(), fc.constant('yes')) }, { requiredKeys: ['op'] })
  )
})

const bytesArb: fc.Arbitrary<Step> = fc.record({
  t: fc.constant('bytes' as const),
  bytes: fc.oneof(fc.uint8Array({ maxLength: 48 }), fc.tuple(pick([STORE_TAG, KV_TAG]), fc.uint8Array({ maxLength: 48 })).map(([tag, b]) => tagged(tag, b)))
})

const validStep: fc.Arbitrary<Step> = fc.oneof(createArb, updateArb, patchArb, deleteArb, evictArb, bindArb, kvArb)
const cutArb: fc.Arbitrary<Step> = fc.record({ t: fc.constant('cut' as const), of: validStep, keep: fc.nat(400) })
const flipArb: fc.Arbitrary<Step> = fc.record({ t: fc.constant('flip' as const), of: validStep, at: fc.nat(400), xor: fc.integer({ min: 1, max: 255 }) })

const depthArb = fc.oneof(fc.integer({ min: 1, max: 400 }), fc.integer({ min: 95, max: 104 }), fc.integer({ min: 40, max: 70 }))
const deepArb: fc.Arbitrary<Step> = fc.record({
  t: fc.constant('deep' as const),
  depth: depthArb,
  where: pick(['binaryData', 'managedFields', 'status', 'securityContext', 'merge', 'strategic', 'json', 'copy', 'kv', 'command', 'key'] as const)
})
const largeArb: fc.Arbitrary<Step> = fc.record({
  t: fc.constant('large' as const),
  what: pick(['value', 'keys', 'containers', 'kv', 'list'] as const),
  size: fc.oneof(fc.integer({ min: 1, max: 2000 }), pick([10_000, 60_000]))
})

/**
 * Non-plain values inside a command, as msgpackr's extensions (the codec
 * must not build them) or as bytes where JSON has none.
 */
const EXTENSIONS = {
  date: [0xd6, 0xff, 0, 0, 0, 0],
  set: [0xd4, 0x73, 0x90],
  regexp: [0xd5, 0x78, 0x92, 0xa1],
  error: [0xc7, 0x03, 0x65, 0x92, 0xa1, 0x45],
  record: [0xd4, 0x72, 0x40],
  pointer: [0xd4, 0x70, 0x00],
  bytes: [0xc4, 0x03, 1, 2, 3],
  emptyBytes: [0xc4, 0x00],
  nan: [0xcb, 0x7f, 0xf8, 0, 0, 0, 0, 0, 0],
  infinity: [0xcb, 0x7f, 0xf0, 0, 0, 0, 0, 0, 0],
  undefined: [0xd4, 0x00, 0x00]
} as const
const extArb: fc.Arbitrary<Step> = fc.record({
  t: fc.constant('ext' as const),
  ext: pick(Object.keys(EXTENSIONS) as Array<keyof typeof EXTENSIONS>),
  where: pick(['object', 'patch', 'kv'] as const)
})

const stepArb: fc.Arbitrary<Step> = fc.oneof(
  { weight: 10, arbitrary: createArb },
  { weight: 5, arbitrary: updateArb },
  { weight: 6, arbitrary: patchArb },
  { weight: 4, arbitrary: deleteArb },
  { weight: 2, arbitrary: evictArb },
  { weight: 2, arbitrary: bindArb },
  { weight: 4, arbitrary: kvArb },
  { weight: 1, arbitrary: rawArb },
  { weight: 1, arbitrary: bytesArb },
  { weight: 1, arbitrary: cutArb },
  { weight: 1, arbitrary: flipArb },
  { weight: 2, arbitrary: deepArb },
  { weight: 1, arbitrary: largeArb },
  { weight: 1, arbitrary: extArb }
)

/** A store command as the API builds it: no undefined fields. */
function storeCommand (fields: Record<string, unknown>): StoreCommand {
  const cmd: Obj = {}
  for (const [k, v] of Object.entries(fields)) if (v !== undefined) cmd[k] = v
  return cmd as unknown as StoreCommand
}

/** `cmd` encoded, with the bytes of the string placeholder `QQQQ` replaced by `raw`. */
function withRawValue (tag: number, body: unknown, raw: readonly number[]): Uint8Array {
  const bytes = tagged(tag, encode(body))
  const mark = [0xa4, 0x51, 0x51, 0x51, 0x51]
  const at = bytes.findIndex((_, i) => mark.every((b, j) => bytes[i + j] === b))
  if (at < 0) throw new Error('no placeholder')
  return Uint8Array.from([...bytes.subarray(0, at), ...raw, ...bytes.subarray(at + mark.length)])
}


/** The bytes a step stands for: what a proposer would put in the log. */
function bytesOf (s: Step): Uint8Array {
  switch (s.t) {
    case 'create': return encodeStoreCommand(storeCommand({ op: 'create', object: mutate(s.object, s.mutations), uid: s.uid, now: s.now ?? NOW, dryRun: s.dryRun }))
    case 'update': return encodeStoreCommand(storeCommand({ op: 'update', object: mutate(s.object, s.mutations), now: NOW, subresource: s.subresource, ref: s.ref, dryRun: s.dryRun }))
    case 'patch': return encodeStoreCommand(storeCommand({ op: 'patch', ref: s.ref, patchType: s.patchType, patch: s.patch, now: NOW, subresource: s.subresource, dryRun: s.dryRun }))
    case 'delete': return encodeStoreCommand(storeCommand({ op: 'delete', ref: s.ref, now: NOW, propagationPolicy: s.propagationPolicy, preconditions: s.preconditions, dryRun: s.dryRun }))
    case 'evict': return encodeStoreCommand(storeCommand({ op: 'evict', ref: s.ref, now: NOW, preconditions: s.preconditions, gracePeriodSeconds: s.gracePeriodSeconds, dryRun: s.dryRun }))
    case 'bind': return encodeStoreCommand(storeCommand({ op: 'bind', ref: s.ref, node: s.node, now: NOW, preconditions: s.preconditions, dryRun: s.dryRun }))
    case 'kv': return encodeKvCommand(s.op === 'put' ? { op: 'put', key: s.key, value: s.value ?? new Uint8Array(), ...(s.cas === undefined ? {} : { cas: s.cas }) } : { op: 'del', key: s.key, ...(s.cas === undefined ? {} : { cas: s.cas }) })
    case 'raw': {
      let body: Uint8Array
      try { body = encode(s.body) } catch { body = new Uint8Array([0xc1]) }
      return s.tag === null ? body : tagged(s.tag, body)
    }
    case 'bytes': return s.bytes
    case 'cut': return bytesOf(s.of).subarray(0, s.keep)
    case 'flip': {
      const b = Uint8Array.from(bytesOf(s.of))
      if (b.length > 0) b[s.at % b.length] = (b[s.at % b.length] as number) ^ s.xor
      return b
    }
    case 'deep': return deepBytes(s.depth, s.where)
    case 'large': return largeBytes(s.what, s.size)
    case 'ext': {
      const raw = EXTENSIONS[s.ext]
      if (s.where === 'kv') return withRawValue(KV_TAG, { op: 'put', key: 'config/a', value: 'QQQQ' }, raw)
      if (s.where === 'patch') return withRawValue(STORE_TAG, { op: 'patch', ref: CM_WEB, patchType: 'merge', patch: { data: { a: 'QQQQ' } }, now: NOW }, raw)
      return withRawValue(STORE_TAG, { op: 'create', object: cm('ext', { binaryData: { k: 'QQQQ' }, metadata: { name: 'ext', namespace: 'default', labels: { app: 'web' } } }), uid: 'uid-9', now: NOW }, raw)
    }
  }
}

function deepBytes (depth: number, where: DeepWhere): Uint8Array {
  const create = (object: Obj): Uint8Array => encodeStoreCommand(storeCommand({ op: 'create', object, uid: 'uid-8', now: NOW }))
  const patch = (ref: Ref, patchType: 'merge' | 'strategic' | 'json', p: unknown): Uint8Array => encodeStoreCommand(storeCommand({ op: 'patch', ref, patchType, patch: p, now: NOW }))
  switch (where) {
    case 'binaryData': return create(cm('deep', { binaryData: { k: nested(depth) } }))
    case 'managedFields': return create(cm('deep', { metadata: { name: 'deep', namespace: 'default', managedFields: nested(depth) } }))
    case 'status': return encodeStoreCommand(storeCommand({ op: 'update', object: { apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: 'web', namespace: 'default' }, status: { x: nested(depth) } }, subresource: 'status', now: NOW }))
    case 'securityContext': return create({ apiVersion: 'v1', kind: 'Pod', metadata: { name: 'deep', namespace: 'default' }, spec: { containers: [{ name: 'c', image: 'busybox', securityContext: nested(depth) }] } })
    case 'merge': return patch(CM_WEB, 'merge', { binaryData: { k: nested(depth) } })
    case 'strategic': return patch(DEPLOY_WEB, 'strategic', { spec: { template: { spec: { containers: [{ name: 'web', securityContext: nested(depth) }] } } } })
    case 'json': return patch(CM_WEB, 'json', [{ op: 'add', path: '/binaryData', value: { k: nested(depth) } }])
    // A shallow patch that builds a deep object out of what is there: add `depth` levels, then copy them into their own leaf.
    case 'copy': return patch(CM_WEB, 'json', [{ op: 'add', path: '/binaryData', value: { k: nestedMaps(depth) } }, { op: 'copy', from: '/binaryData/k', path: `/binaryData/k${'/a'.repeat(depth - 1)}` }])
    case 'kv': return tagged(KV_TAG, encode({ op: 'put', key: 'config/a', value: nested(depth) }))
    case 'command': return tagged(STORE_TAG, encode(nested(depth)))
    // Depth in a map's keys: msgpack lets a key be a map.
    case 'key': return withRawValue(STORE_TAG, { op: 'create', object: cm('deep', { binaryData: 'QQQQ' }), uid: 'uid-8', now: NOW }, [0x81, ...Array.from({ length: depth }, () => 0x81).flat(), 0xc0, ...Array.from({ length: depth }, () => 0xc0), 0xc0])
  }
}

/** A large command: up to 500 keys, 100 containers or 2,000 list items, a string of 120,000 characters or a KV value of 240,000 bytes (larger ones cost time, not coverage). */
function largeBytes (what: 'value' | 'keys' | 'containers' | 'kv' | 'list', size: number): Uint8Array {
  const create = (object: Obj): Uint8Array => encodeStoreCommand(storeCommand({ op: 'create', object, uid: 'uid-7', now: NOW }))
  const n = Math.min(size, 2000)
  switch (what) {
    case 'value': return create(cm('large', { data: { k: 'é'.repeat(size * 2) } }))
    case 'keys': return create(cm('large', { data: Object.fromEntries(Array.from({ length: Math.min(n, 500) }, (_, i) => [`k${i}`, String(i)])) }))
    case 'containers': return create({ apiVersion: 'v1', kind: 'Pod', metadata: { name: 'large', namespace: 'default' }, spec: { containers: Array.from({ length: Math.min(n, 100) }, (_, i) => ({ name: `c${i}`, image: 'busybox' })) } })
    case 'kv': return encodeKvCommand({ op: 'put', key: 'large', value: new Uint8Array(size * 4).fill(7) })
    case 'list': return create(cm('large', { binaryData: { k: Array.from({ length: n }, (_, i) => i) } }))
  }
}

/**
 * The fixed start of every log: namespaces as the first leader bootstraps
 * them, then objects the steps can meet (a namespace, a Service, a
 * ConfigMap, a Deployment owning a ReplicaSet owning a Pod) so that
 * updates, patches and cascading deletes have something to work on from
 * the first step.
 */
function prefix (): Uint8Array[] {
  const create = (object: Obj, uid: string): Uint8Array => encodeStoreCommand(storeCommand({ op: 'create', object, uid, now: NOW }))
  return [
    // default and kube-system (the other two are left out, for speed)
    ...bootstrapCommands(NOW, ['ns-1', 'ns-2', 'ns-3', 'ns-4']).slice(0, 2).map(encodeStoreCommand),
    create({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'team' } }, 'ns-team'),
    create(seeded.service(), 'uid-svc'),
    create(seeded.configMap(), 'uid-cm'),
    create(seeded.deployment(), 'uid-1'),
    create(seeded.replicaSet(), 'uid-2'),
    create(seeded.pod(), 'uid-3')
  ]
}
const PREFIX = prefix()

interface Case { steps: Step[], gaps: number[], split: number, behind: number }

/** Short sequences keep 10,000 cases fast; the prefix and the small pools make each step likely to meet another. */
const MAX_STEPS = 8

export const caseArb: fc.Arbitrary<Case> = fc.record({
  steps: fc.array(stepArb, { maxLength: MAX_STEPS }),
  gaps: fc.array(fc.nat(2), { minLength: MAX_STEPS + PREFIX.length, maxLength: MAX_STEPS + PREFIX.length }),
  split: fc.nat(),
  behind: fc.nat()
})

// ---- the property ------------------------------------------------------------

/** Per kind of step: how many were applied, how many succeeded, and the codes of the rest. */
const stats = { cases: 0, steps: new Map<string, { n: number, ok: number, codes: Map<string, number> }>() }

function note (step: Step, result: unknown): void {
  const kind = step.t === 'patch' ? `patch/${step.patchType}` : step.t === 'update' && step.subresource !== undefined ? `update/${step.subresource}` : step.t
  let s = stats.steps.get(kind)
  if (s === undefined) stats.steps.set(kind, s = { n: 0, ok: 0, codes: new Map() })
  s.n++
  if (isObject(result) && result.ok === true) { s.ok++; return }
  const code = isObject(result) && isObject(result.status) ? String(result.status.code) : isObject(result) ? String(result.reason ?? '?') : '?'
  s.codes.set(code, (s.codes.get(code) ?? 0) + 1)
}

function summary (): string {
  return [...stats.steps].sort(([a], [b]) => a < b ? -1 : 1).map(([kind, s]) =>
    `${kind}: ${s.n} (${s.ok} ok${[...s.codes].sort().map(([c, n]) => `, ${n}×${c}`).join('')})`).join('\n')
}

function show (v: unknown): string {
  const s = JSON.stringify(v, (_, x: unknown) => x instanceof Uint8Array ? `<${x.length} bytes>` : x)
  return s === undefined ? String(v) : s.length > 600 ? `${s.slice(0, 600)}…` : s
}

export function check (c: Case): void {
  stats.cases++
  const log = [...PREFIX, ...c.steps.map(bytesOf)]
  const indexes: number[] = []
  let index = 0
  for (let i = 0; i < log.length; i++) indexes.push(index += 1 + (c.gaps[i] ?? 0))
  const split = c.split % (log.length + 1)
  const behind = c.behind % (split + 1)
  const what = (i: number): string => i < PREFIX.length ? `prefix entry ${i}` : `step ${i - PREFIX.length} (${show(c.steps[i - PREFIX.length])})`

  const a = replica()
  const b = replica()
  const cReplica = replica()
  const outcomes: Outcome[] = []
  let snapshot = split === 0 ? a.state.snapshot() : undefined
  for (let i = 0; i < log.length; i++) {
    const bytes = log[i] as Uint8Array
    const at = indexes[i] as number
    const oa = applyAt(a, at, bytes)
    // The fixed prefix is the same in every case: only the steps go down the stack.
    const ob = i < PREFIX.length ? applyAt(b, at, bytes) : down(DEEP_STACK, () => applyAt(b, at, bytes))
    if ('threw' in oa) throw new Error(`apply threw at ${what(i)}: ${oa.threw}`)
    if (!isDeepStrictEqual(oa, ob)) throw new Error(`the replica deep in the stack answered ${what(i)} differently:\n  fresh: ${show(oa)}\n  deep:  ${show(ob)}`)
    if (i >= PREFIX.length) note(c.steps[i - PREFIX.length] as Step, oa.result)
    outcomes.push(oa)
    if (i + 1 === split) snapshot = a.state.snapshot()
  }
  // C: a follower behind by `split - behind` entries installs A's snapshot, then applies the rest.
  for (let i = 0; i < behind; i++) {
    const oc = applyAt(cReplica, indexes[i] as number, log[i] as Uint8Array)
    if (!isDeepStrictEqual(oc, outcomes[i])) throw new Error(`a second fresh replica answered ${what(i)} differently:\n  A: ${show(outcomes[i])}\n  C: ${show(oc)}`)
  }
  const taken = snapshot as Uint8Array
  cReplica.state.restore(taken, split === 0 ? 0 : indexes[split - 1] as number)
  const restored = cReplica.state.snapshot()
  if (stateHash(restored) !== stateHash(taken)) throw new Error(`the replica restored after ${split} entries hashes differently from the snapshot it restored: ${partHashes(taken)} vs ${partHashes(restored)}`)
  for (let i = split; i < log.length; i++) {
    const oc = applyAt(cReplica, indexes[i] as number, log[i] as Uint8Array)
    if (!isDeepStrictEqual(oc, outcomes[i])) throw new Error(`the replica restored from the snapshot after ${split} entries answered ${what(i)} differently:\n  A: ${show(outcomes[i])}\n  C: ${show(oc)}`)
  }

  const [sa, sb, sc] = [a.state.snapshot(), b.state.snapshot(), cReplica.state.snapshot()]
  if (stateHash(sa) !== stateHash(sb) || stateHash(sa) !== stateHash(sc)) throw new Error(`state hashes differ: A ${partHashes(sa)}; B ${partHashes(sb)}; C ${partHashes(sc)}`)
  const view = readable(a)
  if (!isDeepStrictEqual(view, readable(b))) throw new Error('A and B hash the same but read differently')
  if (!isDeepStrictEqual(view, readable(cReplica))) throw new Error('A and C hash the same but read differently')

  for (const kind of KINDS) {
    for (const obj of a.store.list(kind).items) {
      if (jsonBoundPassed(obj, MAX_JSON_DEPTH) !== undefined) throw new Error(`${kind.kind} ${obj.metadata.namespace ?? ''}/${obj.metadata.name ?? ''} is stored nested deeper than ${MAX_JSON_DEPTH} levels`)
      const bad = validateObject(structuredClone(obj), kind)
      if (bad !== undefined) throw new Error(`${kind.kind} ${obj.metadata.namespace ?? ''}/${obj.metadata.name ?? ''} is stored but invalid: ${bad.message}`)
    }
  }
}

test('replicas apply any sequence of commands identically: fresh, deep in the stack, and restored from a snapshot midway', t => {
  const started = Date.now()
  const seed = SEED ?? Math.floor(Math.random() * 2 ** 31)
  t.log(`seed ${seed} (replay: SHOAL_PROPERTY_SEED=${seed}), ${RUNS} cases, replica B applies ${DEEP_STACK} frames down`)
  const details = fc.check(fc.property(caseArb, check), { numRuns: RUNS, seed, ...(PATH === undefined ? {} : { path: PATH, endOnFailure: true }) })
  if (details.failed) {
    // fast-check's report: the seed and path that replay it, the shrunk counterexample, and the error.
    t.fail(`${fc.defaultReportMessage(details)}\n${String((details.errorInstance as Error | undefined)?.message ?? details.errorInstance)}\nreplay with SHOAL_PROPERTY_SEED=${String(details.seed)} SHOAL_PROPERTY_PATH=${details.counterexamplePath ?? ''}`)
    return
  }
  const steps = [...stats.steps.values()]
  const applied = steps.reduce((n, s) => n + s.n, 0)
  const ok = steps.reduce((n, s) => n + s.ok, 0)
  t.log(`${stats.cases} cases, ${applied} steps after the prefix (${ok} applied ok) in ${((Date.now() - started) / 1000).toFixed(1)} s:\n${summary()}`)
  t.true(details.numRuns >= RUNS)
  // The steps must reach the store: many are meant to succeed, and the rest to be refused for what they say, not only for their shape.
  for (const kind of ['create', 'update', 'update/status', 'update/scale', 'patch/merge', 'patch/strategic', 'patch/json', 'delete', 'kv']) {
    const s = stats.steps.get(kind)
    t.true(s !== undefined && s.ok >= s.n / 10, `${kind}: only ${s?.ok ?? 0} of ${s?.n ?? 0} applied ok`)
  }
})

// Two faults the property found, as plain examples.

test('a store command holding a byte array is refused on every replica, and apply never throws on it', t => {
  const r = replica()
  PREFIX.forEach((bytes, i) => { r.state.apply(i + 1, bytes) })
  // msgpack has bytes and JSON has not: the stored object could not be frozen, and apply threw (the Raft loop stops on that).
  for (const [i, bytes] of [bytesOf({ t: 'ext', ext: 'bytes', where: 'object' }), bytesOf({ t: 'ext', ext: 'bytes', where: 'patch' })].entries()) {
    const outcome = applyAt(r, 100 + i, bytes)
    t.like(outcome, { result: { ok: false, status: { code: 400 } } }, show(outcome))
  }
  t.true(isObject(r.store.get(CONFIG_MAP, 'default', 'web')), 'the ConfigMap the patch aimed at is still there')
})

test('a replica that restored a snapshot hashes and answers as one that applied every entry', t => {
  const a = replica()
  PREFIX.forEach((bytes, i) => { a.state.apply(i + 1, bytes) })
  // The last entry is the KV's; the store's own applied index (its resourceVersion) is older.
  a.state.apply(PREFIX.length + 1, encodeKvCommand({ op: 'put', key: 'k', value: new Uint8Array([1]) }))
  const c = replica()
  c.state.restore(a.state.snapshot(), PREFIX.length + 1)
  t.is(stateHash(c.state.snapshot()), stateHash(a.state.snapshot()))
  t.is(c.store.resourceVersion(), a.store.resourceVersion())
  t.is(c.kv.appliedIndex, a.kv.appliedIndex)
})
