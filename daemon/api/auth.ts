// The cluster-wide admin token: made by the first peer, copied to joiners,
// kept in <data-dir>/admin.token (0600), compared in constant time.
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto'
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { writeSecret } from '../p2p/keys.ts'

export const TOKEN_FILE = 'admin.token'
const TOKEN_PATTERN = /^[A-Za-z0-9._~-]{16,256}$/

export class TokenStore {
  private token: string | undefined
  private readonly path: string
  private readonly adoptedListeners: Array<(token: string) => void> = []

  private constructor (dataDir: string, token: string | undefined) {
    this.path = join(dataDir, TOKEN_FILE)
    this.token = token
  }

  static async load (dataDir: string): Promise<TokenStore> {
    let token: string | undefined
    try {
      token = (await readFile(join(dataDir, TOKEN_FILE), 'utf8')).trim()
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err
    }
    if (token !== undefined && !TOKEN_PATTERN.test(token)) throw new Error(`${join(dataDir, TOKEN_FILE)} does not hold a valid token`)
    return new TokenStore(dataDir, token)
  }

  get (): string | undefined { return this.token }

  /** Makes the token of a new cluster. */
  async create (): Promise<string> {
    const token = randomBytes(32).toString('base64url')
    await this.adopt(token)
    return token
  }

  /** Keeps the cluster's token, as received by a joining peer. */
  async adopt (token: string): Promise<void> {
    if (!TOKEN_PATTERN.test(token)) throw new Error('received a malformed admin token')
    if (this.token === token) return
    this.token = token
    await writeSecret(this.path, token + '\n')
    for (const l of this.adoptedListeners) l(token)
  }

  onAdopt (listener: (token: string) => void): void { this.adoptedListeners.push(listener) }

  /** Checks an Authorization header; constant time in the token's content. */
  check (authorization: string | undefined): boolean {
    if (this.token === undefined || authorization === undefined) return false
    const match = /^Bearer\s+(\S+)\s*$/i.exec(authorization)
    if (match === null) return false
    const digest = (s: string): Buffer => createHash('sha256').update(s).digest()
    return timingSafeEqual(digest(match[1] ?? ''), digest(this.token))
  }
}
