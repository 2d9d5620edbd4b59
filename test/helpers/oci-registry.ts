// A real registry for the image tests: Debian's docker-registry (the CNCF
// distribution registry) on a loopback address and a free port, storing in a
// temporary directory, optionally behind htpasswd (bcrypt lines written with
// bcryptjs). Outside CI a missing docker-registry skips the tests; in CI
// (CI=true) it fails them, saying why. `.ci/run` installs it.
import { spawn } from 'node:child_process'
import type { ChildProcess } from 'node:child_process'
import { existsSync } from 'node:fs'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import bcrypt from 'bcryptjs'
import type { TestFn } from 'ava'

export const REGISTRY_BIN = '/usr/bin/docker-registry'

export interface Registry {
  /** `http://IP:PORT` */
  url: string
  /** `IP:PORT`, the registry part of an image reference. */
  host: string
  stop: () => Promise<void>
}

export interface RegistryOptions {
  /** A loopback address: 127.0.160.2 or 127.0.160.3 for these tests. */
  ip: string
  /** Require these credentials (htpasswd, realm shoal-test). */
  htpasswd?: { username: string, password: string }
}

/** Why the registry tests cannot run, or undefined when they can. */
export function registryMissing (): string | undefined {
  return existsSync(REGISTRY_BIN) ? undefined : `${REGISTRY_BIN} is missing (apt-get install docker-registry)`
}

/**
 * The test function for registry tests: test.serial when docker-registry is
 * installed; without it, test.serial.skip outside CI, and in CI one failing
 * test that says why.
 */
export function registryTests (test: TestFn): TestFn['serial'] {
  const why = registryMissing()
  if (why === undefined) return test.serial
  if (process.env.CI === 'true') test('docker-registry is installed', t => { t.fail(why) })
  return test.serial.skip as unknown as TestFn['serial']
}

async function freePort (ip: string): Promise<number> {
  return await new Promise((resolve, reject) => {
    const server = createServer()
    server.once('error', reject)
    server.listen(0, ip, () => {
      const address = server.address()
      server.close(() => { if (typeof address === 'object' && address !== null) resolve(address.port); else reject(new Error('no port')) })
    })
  })
}

/** Starts a registry and waits (at most 15 s) until GET /v2/ answers 200 or 401. */
export async function startRegistry (opts: RegistryOptions): Promise<Registry> {
  const why = registryMissing()
  if (why !== undefined) throw new Error(why)
  const dir = await mkdtemp(join(tmpdir(), 'shoal-registry-'))
  const port = await freePort(opts.ip)
  const host = `${opts.ip}:${port}`
  const lines = [
    'version: 0.1',
    'log:',
    '  level: warn',
    '  accesslog:',
    '    disabled: true',
    'storage:',
    '  filesystem:',
    `    rootdirectory: ${join(dir, 'data')}`,
    'http:',
    `  addr: ${host}`
  ]
  if (opts.htpasswd !== undefined) {
    const hash = bcrypt.hashSync(opts.htpasswd.password, 5).replace(/^\$2b\$/, '$2y$')
    await writeFile(join(dir, 'htpasswd'), `${opts.htpasswd.username}:${hash}\n`, { mode: 0o600 })
    lines.push('auth:', '  htpasswd:', '    realm: shoal-test', `    path: ${join(dir, 'htpasswd')}`)
  }
  await writeFile(join(dir, 'config.yml'), lines.join('\n') + '\n')

  const child: ChildProcess = spawn(REGISTRY_BIN, ['serve', join(dir, 'config.yml')], { stdio: ['ignore', 'pipe', 'pipe'] })
  let output = ''
  const keep = (c: Buffer): void => { output = (output + c.toString()).slice(-4000) }
  child.stdout?.on('data', keep)
  child.stderr?.on('data', keep)
  let exited: number | null | undefined
  const exit = new Promise<void>(resolve => { child.once('exit', code => { exited = code; resolve() }) })

  const stop = async (): Promise<void> => {
    if (exited === undefined) {
      child.kill('SIGTERM')
      const timer = setTimeout(() => { child.kill('SIGKILL') }, 3000)
      await exit
      clearTimeout(timer)
    }
    await rm(dir, { recursive: true, force: true })
  }

  const deadline = Date.now() + 15_000
  for (let i = 0; i < 150 && Date.now() < deadline; i++) {
    if (exited !== undefined) break
    try {
      const res = await fetch(`http://${host}/v2/`, { signal: AbortSignal.timeout(1000) })
      await res.arrayBuffer()
      if (res.status === 200 || res.status === 401) return { url: `http://${host}`, host, stop }
    } catch { /* not listening yet */ }
    await new Promise(resolve => setTimeout(resolve, 100))
  }
  await stop()
  throw new Error(`docker-registry on ${host} did not answer GET /v2/${exited !== undefined ? ` (it exited with ${exited})` : ' within 15 s'}: ${output.trim()}`)
}
