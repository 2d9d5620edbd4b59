// The one version string of daemon and CLI, read from package.json.
import { readFileSync } from 'node:fs'

function readVersion (): string {
  try {
    const pkg: unknown = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8'))
    const v = (pkg as { version?: unknown }).version
    if (typeof v === 'string') return v
  } catch { /* not next to its package.json */ }
  return '0.0.0-unknown'
}

export const VERSION = readVersion()
