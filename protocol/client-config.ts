// The CLI's config file, which shoald writes at first start for the local
// user: the API URLs of peers on this host, the cluster's admin token, and
// the fingerprints of those peers' API certificates.
import { homedir } from 'node:os'
import { join } from 'node:path'

export interface ClientConfig {
  /** API base URLs, tried in order */
  servers: string[]
  token: string
  /**
   * SHA-256 fingerprints of the API certificates the CLI trusts for https://
   * servers (each peer's <data-dir>/api.crt; `openssl x509 -noout
   * -fingerprint -sha256 -in api.crt` prints one). With none, https:// is
   * checked against the system's CAs.
   */
  fingerprints?: string[]
}

/** $SHOAL_CONFIG, else $XDG_CONFIG_HOME/shoal/config.json, else ~/.config/shoal/config.json */
export function defaultClientConfigPath (env: NodeJS.ProcessEnv = process.env): string {
  if (env.SHOAL_CONFIG !== undefined && env.SHOAL_CONFIG !== '') return env.SHOAL_CONFIG
  const base = env.XDG_CONFIG_HOME !== undefined && env.XDG_CONFIG_HOME !== '' ? env.XDG_CONFIG_HOME : join(homedir(), '.config')
  return join(base, 'shoal', 'config.json')
}

export function isClientConfig (v: unknown): v is ClientConfig {
  if (typeof v !== 'object' || v === null) return false
  const c = v as Record<string, unknown>
  return Array.isArray(c.servers) && c.servers.every(s => typeof s === 'string') && typeof c.token === 'string' &&
    (c.fingerprints === undefined || (Array.isArray(c.fingerprints) && c.fingerprints.every(f => typeof f === 'string')))
}
