// The cluster-wide API tokens: the admin token (every request) and the
// viewer token (reads only; writes get 403). Both are made by the first
// peer, copied to joiners with the membership sync, kept in
// <data-dir>/admin.token and <data-dir>/viewer.token (0600), and compared in
// constant time.
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto'
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { keepPrivate, writeSecret } from '../p2p/keys.ts'

export const TOKEN_FILE = 'admin.token'
export const VIEWER_TOKEN_FILE = 'viewer.token'
const TOKEN_PATTERN = /^[A-Za-z0-9._~-]{16,256}$/

export type Role = 'admin' | 'viewer'

async function readToken (path: string): Promise<string | undefined> {
  let token: string | undefined
  try {
    token = (await readFile(path, 'utf8')).trim()
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err
  }
  // 0600 even when the file was copied in, or left by an older version, with looser modes.
  await keepPrivate(path)
  if (token !== undefined && !TOKEN_PATTERN.test(token)) throw new Error(`${path} does not hold a valid token`)
  return token
}

function digest (s: string): Buffer {
  return createHash('sha256').update(s).digest()
}

export class TokenStore {
  private token: string | undefined
  private viewer: string | undefined
  private readonly dataDir: string
  private readonly adoptedListeners: Array<(token: string) => void> = []

  private constructor (dataDir: string, token: string | undefined, viewer: string | undefined) {
    this.dataDir = dataDir
    this.token = token
    this.viewer = viewer
  }

  static async load (dataDir: string): Promise<TokenStore> {
    return new TokenStore(dataDir, await readToken(join(dataDir, TOKEN_FILE)), await readToken(join(dataDir, VIEWER_TOKEN_FILE)))
  }

  get (): string | undefined { return this.token }
  getViewer (): string | undefined { return this.viewer }

  /** Makes the tokens of a new cluster (the viewer token alone, if the admin token exists already). */
  async create (): Promise<string> {
    if (this.viewer === undefined) await this.adoptViewer(randomBytes(32).toString('base64url'))
    if (this.token !== undefined) return this.token
    const token = randomBytes(32).toString('base64url')
    await this.adopt(token)
    return token
  }

  /** Keeps the cluster's admin token, as received by a joining peer. */
  async adopt (token: string): Promise<void> {
    if (!TOKEN_PATTERN.test(token)) throw new Error('received a malformed admin token')
    if (this.token === token) return
    this.token = token
    await writeSecret(join(this.dataDir, TOKEN_FILE), token + '\n')
    for (const l of this.adoptedListeners) l(token)
  }

  /** Keeps the cluster's viewer token, as received by a joining peer. */
  async adoptViewer (token: string): Promise<void> {
    if (!TOKEN_PATTERN.test(token)) throw new Error('received a malformed viewer token')
    if (this.viewer === token) return
    this.viewer = token
    await writeSecret(join(this.dataDir, VIEWER_TOKEN_FILE), token + '\n')
  }

  onAdopt (listener: (token: string) => void): void { this.adoptedListeners.push(listener) }

  /** Who an Authorization header is: admin, viewer, or nobody; constant time in the tokens' content. */
  role (authorization: string | undefined): Role | undefined {
    if (authorization === undefined) return undefined
    const match = /^Bearer\s+(\S+)\s*$/i.exec(authorization)
    if (match === null) return undefined
    const given = digest(match[1] ?? '')
    const admin = this.token !== undefined && timingSafeEqual(given, digest(this.token))
    const viewer = this.viewer !== undefined && timingSafeEqual(given, digest(this.viewer))
    return admin ? 'admin' : viewer ? 'viewer' : undefined
  }

  /** Checks an Authorization header for the admin token. */
  check (authorization: string | undefined): boolean {
    return this.role(authorization) === 'admin'
  }
}
