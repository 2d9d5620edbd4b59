// Layers applied to a root (daemon/image/unpack.ts), from tars built here:
// whiteouts and opaque directories, the three compressions, and the escapes
// a hostile layer tries (.., absolute names, a symlink planted then written
// through, hard links out of the root), each refused with nothing written
// outside the root.
import test from 'ava'
import { existsSync, lstatSync, readdirSync, readFileSync, readlinkSync, statSync } from 'node:fs'
import { mkdir, mkdtemp, rm, statfs, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { applyLayerFile, detectCompression, LayerFormatError, unpackLayers, UnsafeLayerError, zstdSupported } from '../../daemon/image/unpack.ts'
import { canZstd, layerBlob, tarOf } from '../helpers/oci-build.ts'
import type { LayerCompression, LayerEntry } from '../helpers/oci-build.ts'

interface Sandbox { dir: string, root: string, outside: string, layer: (entries: LayerEntry[], compression?: LayerCompression) => Promise<string> }

async function sandbox (): Promise<Sandbox> {
  const dir = await mkdtemp(join(tmpdir(), 'shoal-unpack-'))
  const root = join(dir, 'root')
  const outside = join(dir, 'outside')
  await mkdir(outside)
  await writeFile(join(outside, 'secret'), 'host file\n')
  let n = 0
  return {
    dir,
    root,
    outside,
    layer: async (entries, compression = 'gzip') => {
      const file = join(dir, `layer-${n++}`)
      await writeFile(file, layerBlob(await tarOf(entries), compression).bytes)
      return file
    }
  }
}

function tree (root: string, rel = ''): string[] {
  const out: string[] = []
  for (const name of readdirSync(join(root, rel)).sort()) {
    const r = rel === '' ? name : `${rel}/${name}`
    const st = lstatSync(join(root, r))
    out.push(st.isSymbolicLink() ? `${r} -> ${readlinkSync(join(root, r))}` : st.isDirectory() ? `${r}/` : r)
    if (st.isDirectory()) out.push(...tree(root, r))
  }
  return out
}

/** The outside directory holds only its secret, unchanged. */
function outsideUntouched (t: { deepEqual: (a: unknown, b: unknown, m?: string) => void }, s: Sandbox): void {
  t.deepEqual(readdirSync(s.outside), ['secret'], 'nothing was written outside the root')
  t.deepEqual(readFileSync(join(s.outside, 'secret'), 'utf8'), 'host file\n')
}

test('whiteouts remove a lower file or directory; an opaque directory keeps only this layer\'s entries', async t => {
  const s = await sandbox()
  t.teardown(async () => { await rm(s.dir, { recursive: true, force: true }) })
  const l1 = await s.layer([
    { name: 'etc/', type: 'directory', mode: 0o755 },
    { name: 'etc/keep', body: 'keep\n' },
    { name: 'etc/gone', body: 'gone\n' },
    { name: 'var/lib/', type: 'directory' },
    { name: 'var/lib/tree/a', body: 'a' },
    { name: 'cache/old', body: 'old' },
    { name: 'cache/sub/old', body: 'old' },
    { name: 'cache/sub/also-old', body: 'old' }
  ])
  const l2 = await s.layer([
    // this layer's own entry comes before the opaque marker and must survive it
    { name: 'cache/sub/', type: 'directory', mode: 0o755 },
    { name: 'cache/sub/new', body: 'new' },
    { name: 'cache/.wh..wh..opq', body: '' },
    { name: 'cache/fresh', body: 'fresh' },
    { name: 'etc/.wh.gone', body: '' },
    { name: 'var/.wh.lib', body: '' },
    // a whiteout of something this layer wrote does not undo it
    { name: 'etc/mine', body: 'mine' },
    { name: 'etc/.wh.mine', body: '' }
  ], 'none')
  await unpackLayers(s.root, [l1, l2])
  t.deepEqual(tree(s.root), [
    'cache/', 'cache/fresh', 'cache/sub/', 'cache/sub/new',
    'etc/', 'etc/keep', 'etc/mine',
    'var/'
  ])
  t.false(existsSync(join(s.root, 'etc/.wh.gone')), 'whiteout markers are not written')
})

test('gzip, zstd and plain layers are told apart by their magic bytes', async t => {
  const s = await sandbox()
  t.teardown(async () => { await rm(s.dir, { recursive: true, force: true }) })
  const kinds: LayerCompression[] = canZstd() ? ['gzip', 'zstd', 'none'] : ['gzip', 'none']
  t.is(zstdSupported(), canZstd())
  const layers: string[] = []
  for (const c of kinds) {
    const file = await s.layer([{ name: `from-${c}`, body: `${c}\n` }], c)
    t.is(detectCompression(readFileSync(file).subarray(0, 4)), c)
    layers.push(file)
  }
  await unpackLayers(s.root, layers)
  for (const c of kinds) t.is(readFileSync(join(s.root, `from-${c}`), 'utf8'), `${c}\n`)
})

test('modes, symlinks, hard links and owners are laid out; a read-only directory still gets its files', async t => {
  const s = await sandbox()
  t.teardown(async () => { await rm(s.dir, { recursive: true, force: true }) })
  const l1 = await s.layer([
    { name: 'bin/tool', body: '#!/bin/sh\n', mode: 0o755 },
    { name: 'bin/suid', body: 'x', mode: 0o4755 },
    { name: 'bin/sh', type: 'symlink', linkname: '/bin/tool' },
    { name: 'bin/up', type: 'symlink', linkname: '../../../etc/passwd' },
    { name: 'bin/tool-hard', type: 'link', linkname: 'bin/tool' },
    { name: 'ro/', type: 'directory', mode: 0o555 },
    { name: 'ro/file', body: 'in a read-only dir', mode: 0o444 },
    { name: 'home/user/', type: 'directory', mode: 0o700, uid: 1000, gid: 1001 },
    { name: 'home/user/profile', body: 'x', uid: 1000, gid: 1001 },
    { name: 'dev/null', type: 'character-device', devmajor: 1, devminor: 3 }
  ])
  const report = await unpackLayers(s.root, [l1])
  t.is(statSync(join(s.root, 'bin/tool')).mode & 0o7777, 0o755)
  t.is(statSync(join(s.root, 'ro')).mode & 0o7777, 0o555)
  t.is(readFileSync(join(s.root, 'ro/file'), 'utf8'), 'in a read-only dir')
  t.is(readlinkSync(join(s.root, 'bin/sh')), '/bin/tool', 'a symlink keeps its target as written: it means something in the container')
  t.is(readlinkSync(join(s.root, 'bin/up')), '../../../etc/passwd')
  t.is(statSync(join(s.root, 'bin/tool-hard')).ino, statSync(join(s.root, 'bin/tool')).ino)
  t.deepEqual(report.owners.get('home/user'), { uid: 1000, gid: 1001 })
  t.deepEqual(report.owners.get('home/user/profile'), { uid: 1000, gid: 1001 })
  t.deepEqual(report.skipped, ['dev/null (character-device)'])
  if (process.getuid?.() === 0) {
    const st = statSync(join(s.root, 'home/user/profile'))
    t.deepEqual([st.uid, st.gid], [1000, 1001], 'chowned when running as root')
    t.is(statSync(join(s.root, 'bin/suid')).mode & 0o7777, 0o4755)
  }
})

test('a later entry replaces a symlink by a file instead of writing through it', async t => {
  const s = await sandbox()
  t.teardown(async () => { await rm(s.dir, { recursive: true, force: true }) })
  const l1 = await s.layer([{ name: 'link', type: 'symlink', linkname: join(s.outside, 'secret') }])
  const l2 = await s.layer([{ name: 'link', body: 'replaced\n' }])
  await unpackLayers(s.root, [l1, l2])
  t.false(lstatSync(join(s.root, 'link')).isSymbolicLink())
  t.is(readFileSync(join(s.root, 'link'), 'utf8'), 'replaced\n')
  outsideUntouched(t, s)
})

test('an opaque marker or a directory mode under a directory the same layer later turns into a symlink touches nothing outside', async t => {
  const s = await sandbox()
  t.teardown(async () => { await rm(s.dir, { recursive: true, force: true }) })
  // a/outside is opaque and 0777; then a becomes a symlink to the directory that holds the outside one:
  // applied late through the symlink, the marker would empty the outside directory and the mode would open it
  const l1 = await s.layer([
    { name: 'a/', type: 'directory' },
    { name: 'a/outside/', type: 'directory', mode: 0o777 },
    { name: 'a/outside/.wh..wh..opq', body: '' },
    { name: 'a', type: 'symlink', linkname: s.dir }
  ])
  const before = statSync(s.outside).mode
  await unpackLayers(s.root, [l1]).catch(() => undefined)
  outsideUntouched(t, s)
  t.is(statSync(s.outside).mode, before, 'no mode was set outside the root')
})

const hostile: Array<[string, (s: Sandbox) => LayerEntry[][], RegExp]> = [
  ['a ../ path', () => [[{ name: '../outside/pwned', body: 'x' }]], /climbs/],
  ['a ../ path inside the name', () => [[{ name: 'a/b/../../../outside/pwned', body: 'x' }]], /climbs/],
  ['an absolute path', s => [[{ name: join(s.outside, 'pwned'), body: 'x' }]], /absolute/],
  ['a file through a symlink planted earlier in the layer', s => [[
    { name: 'evil', type: 'symlink', linkname: s.outside },
    { name: 'evil/pwned', body: 'x' }
  ]], /symlink evil/],
  ['a file through a relative symlink planted by an earlier layer', () => [
    [{ name: 'sub/evil', type: 'symlink', linkname: '../../outside' }],
    [{ name: 'sub/evil/pwned', body: 'x' }]
  ], /symlink sub\/evil/],
  ['a directory through a symlink', s => [[
    { name: 'evil', type: 'symlink', linkname: s.outside },
    { name: 'evil/dir/', type: 'directory' }
  ]], /symlink evil/],
  ['a whiteout through a symlink', s => [
    [{ name: 'evil', type: 'symlink', linkname: s.outside }],
    [{ name: 'evil/.wh.secret', body: '' }]
  ], /symlink evil/],
  ['an opaque marker through a symlink', s => [
    [{ name: 'evil', type: 'symlink', linkname: s.outside }],
    [{ name: 'evil/.wh..wh..opq', body: '' }]
  ], /symlink evil/],
  ['a whiteout of ..', () => [[{ name: 'sub/.wh...', body: '' }]], /parent/],
  ['a whiteout of the root itself', () => [[{ name: '.wh..', body: '' }]], /itself/],
  ['a hard link to ../', () => [[{ name: 'stolen', type: 'link', linkname: '../outside/secret' }]], /climbs/],
  ['a hard link to an absolute path', s => [[{ name: 'stolen', type: 'link', linkname: join(s.outside, 'secret') }]], /absolute/],
  ['a hard link through a planted symlink', s => [[
    { name: 'evil', type: 'symlink', linkname: s.outside },
    { name: 'stolen', type: 'link', linkname: 'evil/secret' }
  ]], /symlink evil/]
]

for (const [what, layers, why] of hostile) {
  test(`refused: ${what}`, async t => {
    const s = await sandbox()
    t.teardown(async () => { await rm(s.dir, { recursive: true, force: true }) })
    const files: string[] = []
    for (const entries of layers(s)) files.push(await s.layer(entries))
    const err = await t.throwsAsync(unpackLayers(s.root, files), { instanceOf: UnsafeLayerError })
    t.regex(err?.message ?? '', why)
    outsideUntouched(t, s)
    t.false(existsSync(join(s.root, 'stolen')))
  })
}

test('a hard link to a symlink links the symlink, not what it points at', async t => {
  const s = await sandbox()
  t.teardown(async () => { await rm(s.dir, { recursive: true, force: true }) })
  const l1 = await s.layer([
    { name: 'sym', type: 'symlink', linkname: join(s.outside, 'secret') },
    { name: 'hard', type: 'link', linkname: 'sym' }
  ])
  await unpackLayers(s.root, [l1])
  t.true(lstatSync(join(s.root, 'hard')).isSymbolicLink())
  t.not(lstatSync(join(s.root, 'hard')).ino, statSync(join(s.outside, 'secret')).ino)
  outsideUntouched(t, s)
})

test('a corrupt or truncated layer is a LayerFormatError', async t => {
  const s = await sandbox()
  t.teardown(async () => { await rm(s.dir, { recursive: true, force: true }) })
  const good = readFileSync(await s.layer([{ name: 'big', body: Buffer.alloc(100_000, 7) }]))
  const truncated = join(s.dir, 'truncated')
  await writeFile(truncated, good.subarray(0, good.length / 2))
  await t.throwsAsync(applyLayerFile(s.root, truncated), { instanceOf: LayerFormatError })
  const hardToNothing = await s.layer([{ name: 'h', type: 'link', linkname: 'missing' }])
  await t.throwsAsync(applyLayerFile(s.root, hardToNothing), { instanceOf: LayerFormatError, message: /does not have/ })
})

test('a file that would take the disk below the free space kept is refused before it is written (a gzip bomb stops short of filling the disk)', async t => {
  const s = await sandbox()
  t.teardown(async () => { await rm(s.dir, { recursive: true, force: true }) })
  // 1 MiB of zeros: a few KiB compressed, a whole MiB unpacked.
  const bomb = await s.layer([{ name: 'small', body: 'fits\n' }, { name: 'big', body: Buffer.alloc(2 ** 20) }])
  const fs = await statfs(s.dir)
  const free = fs.bavail * fs.bsize
  // Keep all but 512 KiB of what is free now: the small file fits, the big one does not.
  const err = await t.throwsAsync(unpackLayers(s.root, [bomb], { minFreeBytes: free - 512 * 1024 }), { instanceOf: LayerFormatError })
  t.regex(err?.message ?? '', /^big \(1048576 bytes\) would leave less than \d+ MiB free on the disk/)
  t.true(existsSync(join(s.root, 'small')))
  t.false(existsSync(join(s.root, 'big')), 'nothing of it was written')
  await unpackLayers(join(s.dir, 'root2'), [bomb], { minFreeBytes: free - 64 * 2 ** 20 })
  t.is(statSync(join(s.dir, 'root2', 'big')).size, 2 ** 20, 'with room to spare it is unpacked')
})
