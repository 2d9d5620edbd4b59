// A look at msgpack bytes before anything decodes them. msgpackr's decoder
// recurses once per level of nesting, and some of its extensions (records,
// structured clones, Set, Error, RegExp) read further values of their own;
// a message nested deeply enough would fail or not depending on how much
// stack was left. This scan walks the bytes with an explicit stack instead:
// it checks that they are one complete value of plain data (nil, booleans,
// numbers, strings, bytes, maps, arrays, and msgpackr's `undefined`) nested
// at most so deep, in time linear in their length, whatever they hold.
// May import: nothing.

/** msgpackr writes `undefined` as the extension of type 0 (fixext 1, d4 00 00). */
const UNDEFINED_EXT = 0

/** Why bytes failed the scan; `tooDeep` when they are plain data nested too deeply. */
export interface MsgpackShapeError { tooDeep: boolean, message: string }

/**
 * Why `bytes` are not one plain msgpack value nested at most `maxDepth` maps
 * and arrays deep (a map is one level, so `{}` is 1), or undefined when they
 * are. Never throws and never recurses.
 */
export function msgpackShapeError (bytes: Uint8Array, maxDepth: number): MsgpackShapeError | undefined {
  const message = scan(bytes, maxDepth)
  if (message === undefined) return undefined
  return { tooDeep: message === TOO_DEEP, message: message === TOO_DEEP ? `maps and arrays nest more than ${maxDepth} levels deep` : message }
}

const TOO_DEEP = 'too deep'

function scan (bytes: Uint8Array, maxDepth: number): string | undefined {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  const end = bytes.byteLength
  // Values still to read in each open map or array; the first entry is the one top-level value.
  const left: number[] = [1]
  let pos = 0
  const need = (n: number): boolean => pos + n <= end
  while (left.length > 0) {
    const top = left.length - 1
    if ((left[top] as number) === 0) {
      left.pop()
      continue
    }
    left[top] = (left[top] as number) - 1
    if (!need(1)) return 'truncated'
    const b = bytes[pos++] as number
    let skip = 0
    let items = -1
    if (b <= 0x7f || b >= 0xe0 || b === 0xc0 || b === 0xc2 || b === 0xc3) {
      skip = 0
    } else if (b <= 0x8f) {
      items = 2 * (b & 0x0f)
    } else if (b <= 0x9f) {
      items = b & 0x0f
    } else if (b <= 0xbf) {
      skip = b & 0x1f
    } else {
      switch (b) {
        case 0xc4: case 0xd9: if (!need(1)) return 'truncated'; skip = view.getUint8(pos); pos += 1; break
        case 0xc5: case 0xda: if (!need(2)) return 'truncated'; skip = view.getUint16(pos); pos += 2; break
        case 0xc6: case 0xdb: if (!need(4)) return 'truncated'; skip = view.getUint32(pos); pos += 4; break
        case 0xca: skip = 4; break
        case 0xcb: skip = 8; break
        case 0xcc: case 0xd0: skip = 1; break
        case 0xcd: case 0xd1: skip = 2; break
        case 0xce: case 0xd2: skip = 4; break
        case 0xcf: case 0xd3: skip = 8; break
        case 0xdc: if (!need(2)) return 'truncated'; items = view.getUint16(pos); pos += 2; break
        case 0xdd: if (!need(4)) return 'truncated'; items = view.getUint32(pos); pos += 4; break
        case 0xde: if (!need(2)) return 'truncated'; items = 2 * view.getUint16(pos); pos += 2; break
        case 0xdf: if (!need(4)) return 'truncated'; items = 2 * view.getUint32(pos); pos += 4; break
        case 0xd4: case 0xd5: case 0xd6: case 0xd7: case 0xd8:
        case 0xc7: case 0xc8: case 0xc9: {
          let length: number
          if (b >= 0xd4) {
            length = 1 << (b - 0xd4)
          } else {
            const size = b === 0xc7 ? 1 : b === 0xc8 ? 2 : 4
            if (!need(size)) return 'truncated'
            length = size === 1 ? view.getUint8(pos) : size === 2 ? view.getUint16(pos) : view.getUint32(pos)
            pos += size
          }
          if (!need(1)) return 'truncated'
          const type = view.getUint8(pos)
          if (type !== UNDEFINED_EXT) return `an extension of type ${view.getInt8(pos)} is not plain data`
          skip = 1 + length
          break
        }
        default: return `byte 0x${b.toString(16)} at ${pos - 1} is not msgpack`
      }
    }
    if (items >= 0) {
      if (top + 1 > maxDepth) return TOO_DEEP
      left.push(items)
    } else {
      if (!need(skip)) return 'truncated'
      pos += skip
    }
  }
  return pos === end ? undefined : `${end - pos} bytes after the value`
}
