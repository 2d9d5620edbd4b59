// The wire decoder takes plain data only: msgpackr's extensions (structured
// clones and so cycles, records, RegExp, Error, Set, Date, typed arrays)
// and frames nested too deeply are DecodeErrors, found without recursion,
// and nothing a frame holds makes decode throw anything else.
import test from 'ava'
import fc from 'fast-check'
import { Packr } from 'msgpackr'
import { decode, DecodeError, encode, MAX_DECODE_DEPTH } from '../../protocol/codec.ts'

const anything = (v: unknown): v is unknown => true
const rich = new Packr({ moreTypes: true, structuredClone: true })

function refused (t: import('ava').ExecutionContext, bytes: Uint8Array, pattern: RegExp): void {
  const err = t.throws(() => decode(bytes, anything, 'frame'))
  t.true(err instanceof DecodeError, `${err?.name ?? ''}: ${err?.message ?? ''}`)
  t.regex(err?.message ?? '', pattern)
}

test('plain data goes through: maps, arrays, strings, numbers, booleans, nil, bytes, undefined', t => {
  const value = { s: 'ünï', n: [0, -1, 2 ** 40, -(2 ** 40), 0.5, Number.MAX_SAFE_INTEGER], b: true, z: null, u: undefined, bytes: new Uint8Array([1, 2, 3]), deep: { a: [{ b: {} }] } }
  const back = decode(encode(value), anything, 'frame') as typeof value
  t.deepEqual({ ...back, bytes: new Uint8Array(back.bytes) }, value)
})

test('a cyclic structure (a structured clone) is refused', t => {
  const cyclic: Record<string, unknown> = { a: 1 }
  cyclic.self = cyclic
  refused(t, rich.pack(cyclic), /extension of type 105 is not plain data/)
})

test('records (msgpackr structures) are refused', t => {
  refused(t, new Packr({ useRecords: true }).pack([{ a: 1 }, { a: 2 }]), /extension of type 114 is not plain data/)
})

test('RegExp, Error, Set, Date and typed-array extensions are refused', t => {
  refused(t, rich.pack(/a+/g), /extension of type 120/)
  refused(t, rich.pack(new Error('boom')), /extension of type 101/)
  refused(t, rich.pack(new Set([1])), /extension of type 115/)
  refused(t, rich.pack(new Date(0)), /extension of type -1/)
  refused(t, rich.pack(new Float64Array([1])), /extension of type 116/)
})

test('a 1,000-deep nesting is refused without recursion; the limit itself passes', t => {
  const deep = (levels: number): Uint8Array => new Uint8Array([...Array<number>(levels).fill(0x91), 0xc0])
  refused(t, deep(1000), /nest more than 128 levels deep/)
  refused(t, deep(1_000_000), /nest more than 128 levels deep/)
  t.notThrows(() => decode(deep(MAX_DECODE_DEPTH), anything, 'frame'))
  refused(t, deep(MAX_DECODE_DEPTH + 1), /nest more than/)
  t.notThrows(() => decode(deep(300), anything, 'frame', { maxDepth: 300 }))
})

test('64-bit integers decode as numbers, never BigInt', t => {
  const int64 = new Uint8Array([0xd3, 0, 0, 0, 1, 0, 0, 0, 0])
  t.is(decode(int64, anything, 'frame'), 2 ** 32)
  const uint64 = new Uint8Array([0xcf, 0, 0, 0, 0, 0, 0, 0, 7])
  t.is(decode(uint64, anything, 'frame'), 7)
})

test('truncated frames and trailing bytes are refused', t => {
  const bytes = encode({ a: 'hello', b: [1, 2, 3] })
  refused(t, bytes.subarray(0, bytes.length - 1), /truncated/)
  refused(t, new Uint8Array([...bytes, 0xc0]), /after the value/)
})

test('no byte string makes decode throw anything but a DecodeError', t => {
  const outcomes = { decoded: 0, refused: 0 }
  const tryDecode = (bytes: Uint8Array): boolean => {
    try {
      decode(bytes, anything, 'frame')
      outcomes.decoded++
    } catch (err) {
      outcomes.refused++
      return err instanceof DecodeError
    }
    return true
  }
  fc.assert(fc.property(fc.uint8Array({ maxLength: 64 }), tryDecode), { numRuns: 5000 })
  // Valid prefixes with garbage after them reach msgpackr's own decoder too.
  fc.assert(fc.property(fc.jsonValue(), fc.uint8Array({ maxLength: 16 }), fc.nat(), (v, tail, cut) => {
    const whole = encode(v)
    return tryDecode(new Uint8Array([...whole.subarray(0, cut % (whole.length + 1)), ...tail]))
  }), { numRuns: 5000 })
  t.true(outcomes.decoded > 0 && outcomes.refused > 0, JSON.stringify(outcomes))
})
