// Nesting depth in the replicated state. A command whose object (or patch)
// nests deeper than objects may (100 levels) is refused inside apply, the
// same way whatever the depth of the caller's stack and at every replay (a
// ConfigMap nested about 1,550 levels deep once failed with "Maximum call
// stack size exceeded" when created and yet existed after a restart replayed
// the log); a patch cannot build an object deeper than that; the scan that
// checks a command's bytes before msgpackr's recursive decoder sees them;
// the KV's commands are flat maps.
import test from 'ava'
import fc from 'fast-check'
import { Packr } from 'msgpackr'
import { encode } from '../../protocol/codec.ts'
import { jsonBoundPassed, MAX_JSON_DEPTH } from '../../protocol/json.ts'
import type { KObject } from '../../protocol/k8s.ts'
import { msgpackShapeError } from '../../protocol/msgpack-scan.ts'
import { KV_TAG, KvStore } from '../../daemon/kv/store.ts'
import { tagged } from '../../daemon/raft/state-machine.ts'
import { CONFIG_MAP } from '../../protocol/kinds.ts'
import { MAX_COMMAND_BYTES } from '../../protocol/raft.ts'
import { encodeStoreCommand, ResourceStore } from '../../daemon/store/store.ts'
import { NOW, ref, StoreHarness } from '../../daemon/store/testing.ts'
import { STORE_TAG } from '../../daemon/store/types.ts'
import type { StoreCommand, StoreResult } from '../../daemon/store/types.ts'

/** `levels` maps inside each other, a string at the bottom: `levels` levels deep. */
function nested (levels: number): unknown {
  let v: unknown = 'bottom'
  for (let i = 0; i < levels; i++) v = { a: v }
  return v
}

/** A ConfigMap whose binaryData holds `levels` levels: the object nests levels + 2 deep. */
function deepConfigMap (name: string, levels: number): KObject {
  return { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name, namespace: 'default' }, binaryData: { k: nested(levels) } }
}

/** Runs `f` under `frames` more stack frames than its caller has. */
function underStack<T> (frames: number, f: () => T): T {
  const down = (n: number): T => n === 0 ? f() : down(n - 1)
  return down(frames)
}

/** What a result says, for comparing results across applies. */
function outcome (r: StoreResult): string {
  return r.ok ? `ok ${r.object.metadata.resourceVersion ?? ''}` : `${r.status.code} ${r.status.message}`
}

const STACKS = [0, 1000, 3000, 6000]

/**
 * The create of deepConfigMap(name, levels), encoded by hand around an
 * encoded placeholder: msgpackr's own encoder recurses, and so might run out
 * of stack itself at 1,550 levels, depending on the test runner's stack.
 */
function deepCreateBytes (name: string, levels: number): Uint8Array {
  const cmd: StoreCommand = { op: 'create', object: { ...deepConfigMap(name, 0), binaryData: { k: 'PLACEHOLDER' } }, uid: 'uid-deep', now: NOW }
  const bytes = encodeStoreCommand(cmd)
  const mark = encode('PLACEHOLDER')
  const at = Buffer.from(bytes).indexOf(Buffer.from(mark))
  const inner = encode({ a: 0 })
  const level = [...inner.subarray(0, inner.length - 1)] // {a: …}, as msgpackr writes a map
  return Uint8Array.from([...bytes.subarray(0, at), ...new Array<number[]>(levels).fill(level).flat(), ...encode('bottom'), ...bytes.subarray(at + mark.length)])
}

test('a command nested past the limit applies the same way at any depth of the stack, and at replay', t => {
  t.deepEqual(deepCreateBytes('deep', 3), encodeStoreCommand({ op: 'create', object: deepConfigMap('deep', 3), uid: 'uid-deep', now: NOW }), 'the bytes msgpackr would write')
  for (const levels of [1550, MAX_JSON_DEPTH - 1]) {
    const bytes = deepCreateBytes('deep', levels)
    const outcomes = STACKS.map(frames => underStack(frames, () => {
      const h = new StoreHarness()
      return { result: outcome(h.store.apply(h.index + 1, bytes)), state: Buffer.from(h.store.snapshot()).toString('base64') }
    }))
    const [first] = outcomes
    for (const [i, o] of outcomes.entries()) t.deepEqual(o, first, `${levels} levels, under ${STACKS[i]} frames: the same result and state`)
    t.regex(first?.result ?? '', /^400 store command: the object or patch nests more than 100 levels deep/, `${levels} levels: refused`)
  }
})

test('an object of exactly 100 levels is stored, read and replayed; one level more is refused and changes nothing', t => {
  const h = new StoreHarness()
  const fits = h.create(deepConfigMap('fits', MAX_JSON_DEPTH - 2))
  t.is(jsonBoundPassed(fits, MAX_JSON_DEPTH), undefined)
  t.is(jsonBoundPassed(fits, MAX_JSON_DEPTH - 1), 'depth', 'it is exactly 100 levels deep')
  const before = h.store.snapshot()
  const r = h.tryCreate(deepConfigMap('too-deep', MAX_JSON_DEPTH - 1))
  t.false(r.ok)
  t.is(h.store.get(CONFIG_MAP, 'default', 'too-deep'), undefined)
  // Only the applied index moved.
  const replay = new StoreHarness({ bootstrap: false })
  for (const c of h.log) replay.apply(c)
  t.deepEqual(replay.store.snapshot(), h.store.snapshot(), 'a replay of the same log makes the same state')
  t.notDeepEqual(before, h.store.snapshot(), 'the refused command still took its index')
  t.is(h.store.get(CONFIG_MAP, 'default', 'fits')?.metadata.name, 'fits')
})

test('a patch cannot build an object deeper than the limit, one level at a time', t => {
  const h = new StoreHarness()
  const created = h.create(deepConfigMap('cm', MAX_JSON_DEPTH - 2))
  const innermost = '/binaryData/k' + '/a'.repeat(MAX_JSON_DEPTH - 3)
  const patch = (patchType: 'json' | 'merge', body: unknown): StoreResult =>
    h.apply({ op: 'patch', ref: ref('configmaps', 'cm', 'default'), patchType, patch: body, now: NOW })
  const add = patch('json', [{ op: 'add', path: `${innermost}/b`, value: { c: 'one level more' } }])
  t.false(add.ok)
  t.like(add.ok ? {} : add.status, { code: 422, message: 'the patched object would nest more than 100 levels deep' })
  const copy = patch('json', [{ op: 'copy', from: '/binaryData/k', path: `${innermost}/b` }])
  t.false(copy.ok, 'a copy of the deep part into itself neither')
  t.is(h.store.get(CONFIG_MAP, 'default', 'cm')?.metadata.resourceVersion, created.metadata.resourceVersion, 'nothing changed')
  const sideways = patch('json', [{ op: 'add', path: `${innermost}/b`, value: 'a string adds no level' }])
  t.true(sideways.ok)
})

test('patches cannot grow an object past what one command may carry', t => {
  const h = new StoreHarness()
  const created = h.create({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'big', namespace: 'default' }, data: { a: 'x'.repeat(3 * 1024 * 1024) } })
  const grow = (key: string, size: number): StoreResult =>
    h.apply({ op: 'patch', ref: ref('configmaps', 'big', 'default'), patchType: 'merge', patch: { data: { [key]: 'y'.repeat(size) } }, now: NOW })
  t.true(grow('b', 512 * 1024).ok, '3.5 MiB in all is fine')
  const r = grow('c', 1024 * 1024)
  t.false(r.ok)
  t.like(r.ok ? {} : r.status, { code: 413, reason: 'RequestEntityTooLarge' })
  t.regex(r.ok ? '' : r.status.message, new RegExp(`^the ConfigMap would be \\d+ bytes once encoded, more than the ${MAX_COMMAND_BYTES} bytes an object may be$`))
  t.deepEqual(Object.keys(h.store.get(CONFIG_MAP, 'default', 'big')?.data ?? {}), ['a', 'b'], 'unchanged by the refused patch')
  t.not(created.metadata.resourceVersion, h.store.get(CONFIG_MAP, 'default', 'big')?.metadata.resourceVersion)
})

test('the KV takes flat commands only; a nested one is invalid, on every peer alike', t => {
  const kv = new KvStore()
  // {op: 'put', key: 'k', value: [[[…]]]}, 5,000 lists deep: too deep for msgpackr to encode, so by hand.
  const head = [Uint8Array.of(0x83), ...['op', 'put', 'key', 'k', 'value'].map(x => encode(x))]
  const deep = tagged(KV_TAG, Uint8Array.from([...head.flatMap(b => [...b]), ...new Array<number>(5000).fill(0x91), 0xc0]))
  const results = STACKS.map(frames => underStack(frames, () => new KvStore().apply(1, deep)))
  for (const r of results) t.deepEqual(r, results[0])
  t.like(results[0], { ok: false, reason: 'invalid', message: 'KV command: maps and arrays nest more than 1 levels deep' })
  t.like(kv.apply(1, tagged(KV_TAG, encode({ op: 'put', key: 'k', value: new Uint8Array([1]) }))), { ok: true })
})

// ---- the scan --------------------------------------------------------------

test('scan: plain data of every msgpack form passes, with its depth', t => {
  const value = {
    s: 'x', long: 'y'.repeat(70_000), n: 1, neg: -5, i16: 300, u32: 70_000, f: 1.5, big: 2 ** 40, yes: true, nil: null,
    bytes: new Uint8Array(300), list: Array.from({ length: 70_000 }, (_, i) => i % 7), wide: Object.fromEntries(Array.from({ length: 20 }, (_, i) => [`k${i}`, i])),
    gone: undefined, inner: [[[]]]
  }
  const bytes = encode(value)
  t.is(msgpackShapeError(bytes, 4), undefined, 'the top map, then three lists')
  t.like(msgpackShapeError(bytes, 3), { tooDeep: true, message: 'maps and arrays nest more than 3 levels deep' })
  t.is(msgpackShapeError(encode('just a string'), 0), undefined, 'a scalar has no depth')
  t.is(msgpackShapeError(encode({}), 1), undefined)
  t.like(msgpackShapeError(encode({}), 0), { tooDeep: true })
})

test('scan: what is not plain data, or not one whole value, is refused without decoding', t => {
  const more = new Packr({ moreTypes: true, useRecords: false })
  const cyclic: Record<string, unknown> = {}
  cyclic.self = cyclic
  const refused: Array<[string, Uint8Array]> = [
    ['a Set', more.pack(new Set([1]))],
    ['a RegExp', more.pack(/x/g)],
    ['an Error', more.pack(new Error('e'))],
    ['a Date', encode(new Date(0))],
    ['a record', new Packr({ useRecords: true }).pack({ a: 1 })],
    ['a cycle', new Packr({ structuredClone: true, useRecords: false }).pack(cyclic)],
    ['a typed array', more.pack(new Int16Array([1]))],
    ['the never-used byte', Uint8Array.of(0xc1)],
    ['truncated', encode({ a: 'bcdef' }).subarray(0, 5)],
    ['trailing bytes', Uint8Array.of(0x80, 0xc0)],
    ['nothing', new Uint8Array(0)],
    ['an array of 2^32-1 items in five bytes', Uint8Array.of(0xdd, 0xff, 0xff, 0xff, 0xff)],
    ['a string longer than the bytes', Uint8Array.of(0xdb, 0x7f, 0xff, 0xff, 0xff, 0x61)]
  ]
  for (const [what, bytes] of refused) {
    const e = msgpackShapeError(bytes, 100)
    t.truthy(e, what)
    t.false(e?.tooDeep, what)
  }
})

test('scan: a million levels cost no stack', t => {
  const bytes = new Uint8Array(1_000_001).fill(0x91) // [[[[…]]]]
  bytes[1_000_000] = 0xc0
  t.like(msgpackShapeError(bytes, MAX_JSON_DEPTH + 1), { tooDeep: true })
  t.is(msgpackShapeError(bytes, Infinity), undefined, 'walked to the bottom, iteratively')
})

test('scan: whatever bytes it passes, msgpackr decodes to a value no deeper (property)', t => {
  const packr = new Packr({ useRecords: false, mapsAsObjects: true })
  const depth = (v: unknown): number => {
    for (let d = 0; ; d++) if (jsonBoundPassed(v, d) === undefined) return d
  }
  // Encoded JSON-like values: the scan agrees with the value's own depth.
  t.notThrows(() => { fc.assert(fc.property(fc.jsonValue({ maxDepth: 8 }), v => {
    const d = depth(v)
    const bytes = encode(v)
    return msgpackShapeError(bytes, d) === undefined && (d === 0 || msgpackShapeError(bytes, d - 1)?.tooDeep === true)
  }), { numRuns: 2000 }) })
  // Mutated and random bytes: never a throw; what passes decodes within the bound.
  const mutated = fc.tuple(fc.jsonValue({ maxDepth: 6 }), fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 4 }))
    .map(([v, flips]) => {
      const b = Uint8Array.from(encode(v))
      for (const [at, byte] of flips) if (b.length > 0) b[at % b.length] = byte
      return b
    })
  t.notThrows(() => { fc.assert(fc.property(fc.oneof(mutated, fc.uint8Array({ maxLength: 64 })), fc.integer({ min: 0, max: 6 }), (bytes, max) => {
    const e = msgpackShapeError(bytes, max)
    if (e !== undefined) return true
    let v: unknown
    try { v = packr.unpack(bytes) } catch { return true }
    return jsonBoundPassed(v, max) !== 'depth'
  }), { numRuns: 5000 }) })
})

test('a ResourceStore refuses a deep command it gets as bytes from anywhere, never throwing', t => {
  const store = new ResourceStore()
  const deep = new Uint8Array(200_002).fill(0x91)
  deep[0] = STORE_TAG
  deep[200_001] = 0xc0
  const r = store.apply(1, deep) as StoreResult
  t.false(r.ok)
  t.is(store.appliedIndex, 1)
})
