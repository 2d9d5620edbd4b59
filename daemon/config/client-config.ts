// Writes the CLI's config (~/.config/shoal/config.json, 0600) so that `shoal`
// works on this host with no flags. Peers of the same cluster on one host
// add their URL to the list; a peer of another cluster replaces the file.
import { mkdir, readFile } from 'node:fs/promises'
import { dirname } from 'node:path'
import { isClientConfig } from '../../protocol/client-config.ts'
import type { ClientConfig } from '../../protocol/client-config.ts'
import { writeSecret } from '../p2p/keys.ts'

export { defaultClientConfigPath } from '../../protocol/client-config.ts'

export async function writeClientConfig (path: string, server: string, token: string): Promise<void> {
  let existing: ClientConfig | undefined
  try {
    const parsed: unknown = JSON.parse(await readFile(path, 'utf8'))
    if (isClientConfig(parsed)) existing = parsed
  } catch { /* absent or unreadable: write a new one */ }
  const servers = existing !== undefined && existing.token === token
    ? [...new Set([...existing.servers, server])]
    : [server]
  await mkdir(dirname(path), { recursive: true, mode: 0o700 })
  await writeSecret(path, JSON.stringify({ servers, token }, null, 2) + '\n')
}
