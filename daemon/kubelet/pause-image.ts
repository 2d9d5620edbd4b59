// The pod sandbox's image, made here rather than pulled (a cluster may have
// no registry): a tar holding one static x86-64 ELF, /pause, whose whole
// program is `for (;;) pause()`. As PID 1 of its container it ignores
// SIGTERM, so a sandbox is removed with SIGKILL (docker rm -f). Other
// architectures name an image of their own with --pause-image.
// May import: node built-ins, tar-stream.
import { pack } from 'tar-stream'
import type { Readable } from 'node:stream'

export const PAUSE_IMAGE = 'shoal/pause:1'

const BASE = 0x400000n
const EHDR = 64
const PHDR = 56
/** mov eax, 34 (pause); syscall; jmp back to the mov */
const CODE = Buffer.from([0xb8, 0x22, 0x00, 0x00, 0x00, 0x0f, 0x05, 0xeb, 0xf7])

/** The ELF: one header, one loadable segment (the whole file, read + execute), then the code. */
export function pauseElf (): Buffer {
  const size = EHDR + PHDR + CODE.length
  const b = Buffer.alloc(size)
  b.set([0x7f, 0x45, 0x4c, 0x46, 2, 1, 1, 0], 0) // magic, 64-bit, little-endian, version 1, System V
  b.writeUInt16LE(2, 16) // ET_EXEC
  b.writeUInt16LE(0x3e, 18) // x86-64
  b.writeUInt32LE(1, 20)
  b.writeBigUInt64LE(BASE + BigInt(EHDR + PHDR), 24) // entry point
  b.writeBigUInt64LE(BigInt(EHDR), 32) // program headers
  b.writeUInt16LE(EHDR, 52)
  b.writeUInt16LE(PHDR, 54)
  b.writeUInt16LE(1, 56)
  b.writeUInt32LE(1, EHDR) // PT_LOAD
  b.writeUInt32LE(5, EHDR + 4) // PF_R | PF_X
  b.writeBigUInt64LE(BASE, EHDR + 16)
  b.writeBigUInt64LE(BASE, EHDR + 24)
  b.writeBigUInt64LE(BigInt(size), EHDR + 32)
  b.writeBigUInt64LE(BigInt(size), EHDR + 40)
  b.writeBigUInt64LE(0x1000n, EHDR + 48)
  CODE.copy(b, EHDR + PHDR)
  return b
}

/** The image's root filesystem as a tar stream, for `docker import`. */
export function pauseTar (): Readable {
  const p = pack()
  p.entry({ name: 'pause', mode: 0o755 }, pauseElf())
  p.finalize()
  // A streamx Readable; the engine's client only pipes it.
  return p as unknown as Readable
}
