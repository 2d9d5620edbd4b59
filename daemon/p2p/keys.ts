// The peer's identity key and the cluster's pre-shared key, both kept in
// the data directory with mode 0600 (set again at every start, in case the
// files were copied in or left by an older version with looser modes).
import { chmod, readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { generateKeyPair, privateKeyFromProtobuf, privateKeyToProtobuf } from '@libp2p/crypto/keys'
import type { PrivateKey } from '@libp2p/interface'
import { generateKey } from '@libp2p/pnet'

export const PEER_KEY_FILE = 'peer.key'
export const CLUSTER_KEY_FILE = 'cluster.key'

const PSK_PATTERN = /^\/key\/swarm\/psk\/1\.0\.0\/\n\/base16\/\n[0-9a-f]{64}\s*$/

export class KeyError extends Error {
  override name = 'KeyError'
}

export async function writeSecret (path: string, bytes: Uint8Array | string): Promise<void> {
  await writeFile(path, bytes, { mode: 0o600 })
  await chmod(path, 0o600)
}

/** Makes an existing file (0600) or directory (0700) private to this user; a missing one is left missing. */
export async function keepPrivate (path: string, kind: 'file' | 'dir' = 'file'): Promise<void> {
  try {
    await chmod(path, kind === 'dir' ? 0o700 : 0o600)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err
  }
}

async function readIfExists (path: string): Promise<Buffer | undefined> {
  let bytes: Buffer
  try {
    bytes = await readFile(path)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined
    throw err
  }
  await keepPrivate(path)
  return bytes
}

/** Loads the peer's libp2p key, making one at first start. Same key, same peer id. */
export async function loadOrCreatePeerKey (dataDir: string): Promise<{ key: PrivateKey, created: boolean }> {
  const path = join(dataDir, PEER_KEY_FILE)
  const bytes = await readIfExists(path)
  if (bytes !== undefined) {
    try {
      return { key: privateKeyFromProtobuf(bytes), created: false }
    } catch (err) {
      throw new KeyError(`${path} is not a libp2p private key (${(err as Error).message})`)
    }
  }
  const key = await generateKeyPair('Ed25519')
  await writeSecret(path, privateKeyToProtobuf(key))
  return { key, created: true }
}

export function parseClusterKey (bytes: Uint8Array, source: string): Uint8Array {
  const text = Buffer.from(bytes).toString('utf8')
  if (!PSK_PATTERN.test(text)) {
    throw new KeyError(`${source} is not a cluster key (expected the libp2p pnet format: /key/swarm/psk/1.0.0/, /base16/, 64 hex digits)`)
  }
  return new TextEncoder().encode(text.trimEnd())
}

export interface ClusterKeyChoice {
  /** the key file given with --cluster-key, if any */
  file?: string
  /** true when this peer joins an existing cluster */
  joining: boolean
}

/**
 * Finds this peer's cluster key. A key given with --cluster-key is copied
 * into the data directory; without one, the data directory's key is used;
 * a peer with neither that joins nobody founds a new cluster and makes one.
 */
export async function loadClusterKey (dataDir: string, choice: ClusterKeyChoice): Promise<{ psk: Uint8Array, created: boolean }> {
  const path = join(dataDir, CLUSTER_KEY_FILE)
  const stored = await readIfExists(path)
  const storedKey = stored === undefined ? undefined : parseClusterKey(stored, path)
  if (choice.file !== undefined) {
    let given: Buffer
    try {
      given = await readFile(choice.file)
    } catch (err) {
      throw new KeyError(`cannot read the cluster key ${choice.file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`)
    }
    const psk = parseClusterKey(given, choice.file)
    if (storedKey !== undefined && Buffer.compare(Buffer.from(storedKey), Buffer.from(psk)) !== 0) {
      throw new KeyError(`${choice.file} differs from the cluster key already in ${path}; this data directory belongs to another cluster`)
    }
    if (storedKey === undefined) await writeSecret(path, psk)
    return { psk, created: false }
  }
  if (storedKey !== undefined) return { psk: storedKey, created: false }
  if (choice.joining) {
    throw new KeyError(`--join needs the cluster's key: copy <data-dir>/${CLUSTER_KEY_FILE} from any peer and pass it with --cluster-key FILE`)
  }
  const psk = new Uint8Array(95)
  generateKey(psk)
  await writeSecret(path, psk)
  return { psk, created: true }
}
