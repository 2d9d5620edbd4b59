// Writes the CLI's config (~/.config/shoal/config.json, 0600) so that `shoal`
// works on this host with no flags: this peer's API URL, the admin token, and
// the fingerprint of this peer's API certificate, which the CLI pins for
// https:// servers. Peers of the same cluster on one host add their URL and
// fingerprint to the lists; a peer of another cluster replaces the file.
import { mkdir, readFile } from 'node:fs/promises'
import { dirname } from 'node:path'
import { isClientConfig } from '../../protocol/client-config.ts'
import type { ClientConfig } from '../../protocol/client-config.ts'
import { certificateFingerprint, normalizeFingerprint } from '../../protocol/tls.ts'
import { writeSecret } from '../p2p/keys.ts'

export { defaultClientConfigPath } from '../../protocol/client-config.ts'

/** `apiCertFile`: this peer's API certificate (<data-dir>/api.crt), read now, so that a certificate made again since start-up is the one trusted. */
export async function writeClientConfig (path: string, server: string, token: string, apiCertFile?: string): Promise<void> {
  let existing: ClientConfig | undefined
  try {
    const parsed: unknown = JSON.parse(await readFile(path, 'utf8'))
    if (isClientConfig(parsed)) existing = parsed
  } catch { /* absent or unreadable: write a new one */ }
  const fingerprint = apiCertFile !== undefined ? await readFile(apiCertFile, 'utf8').then(certificateFingerprint, () => undefined) : undefined
  const same = existing?.token === token ? existing : undefined
  const servers = [...new Set([...(same?.servers ?? []), server])]
  const kept = (same?.fingerprints ?? []).map(normalizeFingerprint).filter(f => f !== undefined)
  const fingerprints = [...new Set([...kept, ...(fingerprint !== undefined ? [fingerprint] : [])])]
  await mkdir(dirname(path), { recursive: true, mode: 0o700 })
  const config: ClientConfig = { servers, token, ...(fingerprints.length > 0 ? { fingerprints } : {}) }
  await writeSecret(path, JSON.stringify(config, null, 2) + '\n')
}
