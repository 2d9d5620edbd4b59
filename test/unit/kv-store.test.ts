// The KV state machine: put/del with compare-and-set, indexes, prefix
// listing, snapshot and restore, and bad commands that must not throw.
import test from 'ava'
import { encode } from '../../protocol/codec.ts'
import { KV_MAX_KEY_BYTES } from '../../protocol/kv.ts'
import { encodeKvCommand, KvStore } from '../../daemon/kv/store.ts'

const bytes = (s: string): Uint8Array => new TextEncoder().encode(s)
const text = (b: Uint8Array | undefined): string | undefined => b === undefined ? undefined : new TextDecoder().decode(b)

test('put sets createIndex once and modifyIndex on every write', t => {
  const kv = new KvStore()
  t.deepEqual(kv.apply(3, encodeKvCommand({ op: 'put', key: 'a', value: bytes('1') })), { ok: true, index: 3 })
  t.deepEqual(kv.apply(5, encodeKvCommand({ op: 'put', key: 'a', value: bytes('2') })), { ok: true, index: 5 })
  const a = kv.get('a')
  t.is(text(a?.value), '2')
  t.is(a?.createIndex, 3)
  t.is(a?.modifyIndex, 5)
  t.is(kv.appliedIndex, 5)
})

test('cas 0 writes only an absent key; cas N only at modifyIndex N', t => {
  const kv = new KvStore()
  t.deepEqual(kv.apply(1, encodeKvCommand({ op: 'put', key: 'k', value: bytes('x'), cas: 0 })), { ok: true, index: 1 })
  t.deepEqual(kv.apply(2, encodeKvCommand({ op: 'put', key: 'k', value: bytes('y'), cas: 0 })), { ok: false, reason: 'cas', index: 2, modifyIndex: 1 })
  t.deepEqual(kv.apply(3, encodeKvCommand({ op: 'put', key: 'k', value: bytes('y'), cas: 7 })), { ok: false, reason: 'cas', index: 3, modifyIndex: 1 })
  t.is(text(kv.get('k')?.value), 'x', 'failed CAS writes change nothing')
  t.deepEqual(kv.apply(4, encodeKvCommand({ op: 'put', key: 'k', value: bytes('y'), cas: 1 })), { ok: true, index: 4 })
  t.is(text(kv.get('k')?.value), 'y')
  t.is(kv.get('k')?.createIndex, 1)
  t.is(kv.appliedIndex, 4, 'a failed CAS still advances the applied index')
  // A put with cas on a missing key compares against modifyIndex 0.
  t.deepEqual(kv.apply(5, encodeKvCommand({ op: 'put', key: 'other', value: bytes('z'), cas: 4 })), { ok: false, reason: 'cas', index: 5, modifyIndex: 0 })
  t.is(kv.get('other'), undefined)
})

test('del is idempotent without cas, and checked with it', t => {
  const kv = new KvStore()
  t.deepEqual(kv.apply(1, encodeKvCommand({ op: 'del', key: 'missing' })), { ok: true, index: 1 })
  kv.apply(2, encodeKvCommand({ op: 'put', key: 'k', value: bytes('v') }))
  t.deepEqual(kv.apply(3, encodeKvCommand({ op: 'del', key: 'k', cas: 1 })), { ok: false, reason: 'cas', index: 3, modifyIndex: 2 })
  t.truthy(kv.get('k'))
  t.deepEqual(kv.apply(4, encodeKvCommand({ op: 'del', key: 'k', cas: 2 })), { ok: true, index: 4 })
  t.is(kv.get('k'), undefined)
  t.deepEqual(kv.apply(5, encodeKvCommand({ op: 'del', key: 'k', cas: 2 })), { ok: false, reason: 'cas', index: 5, modifyIndex: 0 })
  // Re-created: a new createIndex.
  kv.apply(6, encodeKvCommand({ op: 'put', key: 'k', value: bytes('again') }))
  t.is(kv.get('k')?.createIndex, 6)
})

test('list returns a prefix sorted by key', t => {
  const kv = new KvStore()
  let i = 0
  for (const key of ['b/2', 'a', 'b/1', 'c', 'b/10', 'b']) kv.apply(++i, encodeKvCommand({ op: 'put', key, value: bytes(key) }))
  t.deepEqual(kv.list('b/').map(e => e.key), ['b/1', 'b/10', 'b/2'])
  t.deepEqual(kv.list().map(e => e.key), ['a', 'b', 'b/1', 'b/10', 'b/2', 'c'])
  t.deepEqual(kv.list('zz'), [])
})

test('a bad command is an invalid result that changes nothing, never a throw', t => {
  const kv = new KvStore()
  kv.apply(1, encodeKvCommand({ op: 'put', key: 'k', value: bytes('v') }))
  const cases: Uint8Array[] = [
    new Uint8Array([0xc1]), // never valid msgpack
    new Uint8Array(0),
    encode({ op: 'put', key: 'k' }), // no value
    encode({ op: 'rename', key: 'k' }),
    encode({ op: 'put', key: 'k', value: 'not bytes' }),
    encode({ op: 'put', key: '', value: bytes('v') }),
    encode({ op: 'put', key: 'x'.repeat(KV_MAX_KEY_BYTES + 1), value: bytes('v') }),
    encode({ op: 'put', key: 'k', value: bytes('v'), cas: -1 }),
    encode({ op: 'del', key: 'k', cas: 1.5 })
    // (A lone surrogate cannot reach apply: msgpackr encodes it as U+FFFD.)
  ]
  let index = 1
  for (const command of cases) {
    index++
    const r = kv.apply(index, command)
    t.false(r.ok)
    t.is((r as { reason: string }).reason, 'invalid')
    t.is(r.index, index)
  }
  t.is(text(kv.get('k')?.value), 'v')
  t.is(kv.size, 1)
  t.is(kv.appliedIndex, index)
})

test('apply refuses an index that does not move forward', t => {
  const kv = new KvStore()
  kv.apply(5, encodeKvCommand({ op: 'del', key: 'a' }))
  t.throws(() => kv.apply(5, encodeKvCommand({ op: 'del', key: 'a' })), { message: /index 5 after 5/ })
})

test('snapshot and restore round-trip keys, values (binary too) and indexes', t => {
  const kv = new KvStore()
  kv.apply(1, encodeKvCommand({ op: 'put', key: 'text', value: bytes('hello') }))
  kv.apply(2, encodeKvCommand({ op: 'put', key: 'bin', value: new Uint8Array([0, 255, 128, 10]) }))
  kv.apply(3, encodeKvCommand({ op: 'put', key: 'text', value: bytes('world') }))
  kv.apply(4, encodeKvCommand({ op: 'put', key: 'gone', value: bytes('x') }))
  kv.apply(5, encodeKvCommand({ op: 'del', key: 'gone' }))
  const snap = kv.snapshot()

  const other = new KvStore()
  other.apply(1, encodeKvCommand({ op: 'put', key: 'stale', value: bytes('old') }))
  other.restore(snap, 5)
  t.is(other.appliedIndex, 5)
  t.is(other.get('stale'), undefined, 'restore replaces the whole state')
  t.deepEqual(other.list(), kv.list())
  t.deepEqual([...(other.get('bin')?.value ?? [])], [0, 255, 128, 10])
  t.is(other.get('text')?.createIndex, 1)
  t.is(other.get('text')?.modifyIndex, 3)
  // And it goes on applying from there.
  t.deepEqual(other.apply(6, encodeKvCommand({ op: 'put', key: 'text', value: bytes('!'), cas: 3 })), { ok: true, index: 6 })
  t.throws(() => { other.restore(new Uint8Array([1, 2, 3]), 9) }, { name: 'DecodeError' })
  t.is(other.appliedIndex, 6, 'a bad snapshot leaves the state alone')
})

test('validateKey: empty, too long, lone surrogates and dot segments', t => {
  t.is(KvStore.validateKey('a/b c'), undefined)
  t.is(KvStore.validateKey('é'.repeat(KV_MAX_KEY_BYTES / 2)), undefined)
  t.regex(KvStore.validateKey('') ?? '', /empty/)
  t.regex(KvStore.validateKey('é'.repeat(KV_MAX_KEY_BYTES / 2 + 1)) ?? '', /1026 bytes/)
  t.regex(KvStore.validateKey('a\udc00b') ?? '', /UTF-8/)
  t.truthy(KvStore.validateKey('..'))
  t.truthy(KvStore.validateKey('.'))
  t.is(KvStore.validateKey('...'), undefined)
})

test('a stored value does not alias the command buffer', t => {
  const kv = new KvStore()
  const command = encodeKvCommand({ op: 'put', key: 'k', value: bytes('abc') })
  kv.apply(1, command)
  command.fill(0)
  t.is(text(kv.get('k')?.value), 'abc')
})
