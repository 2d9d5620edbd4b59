// The web UI's static files at /ui: daemon/ui/static/ and the browser
// builds of preact, htm, yaml and croner (a CronJob's next run, computed as
// the controller does) from node_modules under /ui/vendor/. The
// files are listed once, when this module loads; a path that is not in the
// list is a 404 and leaves nothing behind (a file added later is served
// after a restart). Each listed file is read on first use, then kept in
// memory with its gzip and brotli forms and an ETag, so what is kept is
// bounded by the list. No request needs a token (the page signs in itself),
// and nothing outside these folders can be named.
// May import: node: built-ins only.
import { createHash } from 'node:crypto'
import { readdirSync, readFileSync } from 'node:fs'
import type { IncomingMessage, ServerResponse } from 'node:http'
import { createRequire } from 'node:module'
import { basename, dirname, extname, join, sep } from 'node:path'
import { brotliCompressSync, constants, gzipSync } from 'node:zlib'

export const UI_PREFIX = '/ui'

const STATIC_DIR = join(import.meta.dirname, 'static')

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.ico': 'image/x-icon',
  '.json': 'application/json'
}

/** A package's root folder, wherever npm put it. */
function packageRoot (name: string): string {
  let dir = dirname(createRequire(import.meta.url).resolve(name))
  while (basename(dir) !== name && dirname(dir) !== dir) dir = dirname(dir)
  return dir
}

/** URL folder under /ui/vendor/ → folder on disk; resolved when the files are listed. */
const VENDOR: Record<string, () => string> = {
  preact: () => join(packageRoot('preact'), 'dist'),
  'preact-hooks': () => join(packageRoot('preact'), 'hooks', 'dist'),
  htm: () => join(packageRoot('htm'), 'dist'),
  yaml: () => join(packageRoot('yaml'), 'browser', 'dist'),
  croner: () => join(packageRoot('croner'), 'dist')
}

interface Asset {
  type: string
  etag: string
  identity: Buffer
  gzip: Buffer
  br: Buffer
  headers: Record<string, string>
}

/** Every file the UI serves: its path under /ui/ → its path on disk. */
const FILES = listFiles()
/** The files read so far; only listed ones, so it never holds more than FILES. */
const assets = new Map<string, Asset>()

/** How many files are held in memory (for tests: unknown paths must not add any). */
export function uiCacheSize (): number { return assets.size }

function listFiles (): Map<string, string> {
  const files = new Map<string, string>()
  listFolder(STATIC_DIR, '', files)
  for (const [name, dir] of Object.entries(VENDOR)) {
    try {
      listFolder(dir(), `vendor/${name}/`, files)
    } catch { /* a package without its browser build: its paths are 404s */ }
  }
  return files
}

/** Adds the regular files under `dir` (not hidden ones, not symbolic links) as `prefix` + their relative path. */
function listFolder (dir: string, prefix: string, files: Map<string, string>): void {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    if (entry.name.startsWith('.')) continue
    const path = join(dir, entry.name)
    if (entry.isDirectory()) listFolder(path, `${prefix}${entry.name}/`, files)
    else if (entry.isFile()) files.set(`${prefix}${entry.name}`, path)
  }
}

/** The inline import map's hash, so that the Content-Security-Policy can allow it and no other inline script. */
function scriptHashes (html: string): string {
  const hashes = [...html.matchAll(/<script type="importmap">([\s\S]*?)<\/script>/g)]
    .map(m => `'sha256-${createHash('sha256').update(m[1] ?? '').digest('base64')}'`)
  return hashes.join(' ')
}

function load (file: string): Asset | undefined {
  let bytes: Buffer
  try {
    bytes = readFileSync(file)
  } catch {
    return undefined
  }
  const ext = extname(file)
  const headers: Record<string, string> = {
    'x-content-type-options': 'nosniff',
    'referrer-policy': 'no-referrer',
    // Vendored libraries change only with an upgrade; our own files are revalidated (cheap: a 304 on the ETag).
    'cache-control': file.includes(`${sep}node_modules${sep}`) ? 'public, max-age=3600' : 'no-cache'
  }
  if (ext === '.html') {
    headers['content-security-policy'] = `default-src 'self'; script-src 'self' ${scriptHashes(bytes.toString('utf8'))}; ` +
      "style-src 'self'; img-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    headers['x-frame-options'] = 'DENY'
  }
  return {
    type: TYPES[ext] ?? 'application/octet-stream',
    etag: `"${createHash('sha1').update(bytes).digest('base64url')}"`,
    identity: bytes,
    gzip: gzipSync(bytes, { level: 9 }),
    br: brotliCompressSync(bytes, { params: { [constants.BROTLI_PARAM_QUALITY]: 11, [constants.BROTLI_PARAM_SIZE_HINT]: bytes.length } }),
    headers
  }
}

/** The listed file a /ui path names, or undefined. */
function fileOf (path: string): string | undefined {
  let rel: string
  try {
    rel = decodeURIComponent(path.slice(UI_PREFIX.length + 1))
  } catch {
    return undefined
  }
  return FILES.get(rel === '' ? 'index.html' : rel)
}

/** The asset of a listed file, read on first use. */
function assetOf (file: string): Asset | undefined {
  let asset = assets.get(file)
  if (asset === undefined) {
    asset = load(file)
    if (asset !== undefined) assets.set(file, asset)
  }
  return asset
}

function accepts (req: IncomingMessage, coding: string): boolean {
  const header = String(req.headers['accept-encoding'] ?? '')
  return header.split(',').some(part => {
    const [name, ...params] = part.trim().split(';')
    const q = params.map(p => p.trim()).find(p => p.startsWith('q='))
    return name?.trim().toLowerCase() === coding && (q === undefined || Number(q.slice(2)) > 0)
  })
}

function plain (res: ServerResponse, code: number, text: string, headers: Record<string, string> = {}): void {
  res.writeHead(code, { 'content-type': 'text/plain; charset=utf-8', 'content-length': Buffer.byteLength(text), 'x-content-type-options': 'nosniff', ...headers })
  res.end(text)
}

/**
 * Answers GET and HEAD under /ui and returns true; returns false for any
 * other path, which the caller routes as usual.
 */
export function serveUi (req: IncomingMessage, res: ServerResponse): boolean {
  const target = req.url ?? '/'
  const q = target.indexOf('?')
  const path = q < 0 ? target : target.slice(0, q)
  if (path !== UI_PREFIX && !path.startsWith(UI_PREFIX + '/')) return false
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    plain(res, 405, 'the UI is read with GET\n', { allow: 'GET, HEAD' })
    return true
  }
  if (path === UI_PREFIX) {
    res.writeHead(301, { location: `${UI_PREFIX}/`, 'content-length': 0 })
    res.end()
    return true
  }
  const file = fileOf(path)
  const asset = file === undefined ? undefined : assetOf(file)
  if (asset === undefined) {
    plain(res, 404, `no such file in the UI: ${path.length > 200 ? path.slice(0, 200) + '…' : path}\n`)
    return true
  }
  const headers: Record<string, string | number> = { ...asset.headers, 'content-type': asset.type, etag: asset.etag, vary: 'accept-encoding' }
  if (req.headers['if-none-match'] === asset.etag) {
    res.writeHead(304, headers)
    res.end()
    return true
  }
  let body = asset.identity
  if (accepts(req, 'br')) {
    body = asset.br
    headers['content-encoding'] = 'br'
  } else if (accepts(req, 'gzip')) {
    body = asset.gzip
    headers['content-encoding'] = 'gzip'
  }
  headers['content-length'] = body.length
  res.writeHead(200, headers)
  res.end(req.method === 'HEAD' ? undefined : body)
  return true
}
