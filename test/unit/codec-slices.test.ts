// encodeInSlices gives encode()'s bytes, whatever the slice and item count,
// and the store's captured snapshot equals the one taken at once, even when
// writes are applied between the capture and the encoding.
import test from 'ava'
import { decode, encode, encodeInSlices, isObject } from '../../protocol/codec.ts'
import { configMap, pod, StoreHarness } from '../../daemon/store/testing.ts'

const bytes = (b: Uint8Array): Uint8Array => new Uint8Array(b.buffer, b.byteOffset, b.byteLength)
const pause = async (): Promise<void> => { await new Promise(resolve => setImmediate(resolve)) }

test('the bytes of one encode, for every size of array header and slice', async t => {
  for (const n of [0, 1, 15, 16, 300, 70_000]) {
    const items = Array.from({ length: n }, (_, i) => i % 3 === 0 ? ['g', 'p', { metadata: { name: `o-${i}` }, ü: 'é'.repeat(i % 40) }] : i % 3 === 1 ? `s${i}` : i)
    for (const slice of [1, 7, 256]) {
      if (n === 70_000 && slice !== 256) continue
      const sliced = await encodeInSlices({ v: 1, appliedIndex: 2 ** 40 }, 'objects', items, pause, slice)
      t.deepEqual(bytes(sliced), bytes(encode({ v: 1, appliedIndex: 2 ** 40, objects: items })), `${n} items, slices of ${slice}`)
    }
  }
})

test('a captured store snapshot is the state at the capture, encoded as snapshot() encodes it', async t => {
  const h = new StoreHarness()
  for (let i = 0; i < 600; i++) h.create(i % 2 === 0 ? pod(`p-${i}`, { labels: { i: String(i) } }) : configMap(`c-${i}`, { k: 'v'.repeat(i) }))
  const atCapture = h.store.snapshot()
  const encoder = h.store.capture()
  // writes after the capture are not in it
  for (let i = 0; i < 50; i++) h.create(pod(`later-${i}`))
  const data = await encoder(pause)
  t.deepEqual(bytes(data), bytes(atCapture))
  t.true(isObject(decode(data, isObject, 'snapshot')))
})
