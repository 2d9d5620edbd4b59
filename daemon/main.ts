// shoald's composition root: it builds each component, wires them together
// and owns start-up and shutdown. No component logic lives here.
import { availableParallelism, totalmem } from 'node:os'
import { mkdir, readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import type { Server } from 'node:http'
import { VERSION } from '../protocol/version.ts'
import { TokenStore } from './api/auth.ts'
import { createApiServer } from './api/server.ts'
import { systemClock, systemRng } from './clock/clock.ts'
import { writeClientConfig } from './config/client-config.ts'
import type { DaemonConfig } from './config/flags.ts'
import { createLogger } from './log/log.ts'
import type { Logger } from './log/log.ts'
import { Membership } from './membership/membership.ts'
import { createHost } from './p2p/host.ts'
import type { ShoalHost } from './p2p/host.ts'
import { loadClusterKey, loadOrCreatePeerKey } from './p2p/keys.ts'

export { VERSION }

export interface Daemon {
  host: ShoalHost
  membership: Membership
  api: Server
  log: Logger
  /** leaves the cluster gracefully and stops every component */
  stop: () => Promise<void>
}

/** Each start of a data directory is a new incarnation of the same member. */
async function nextIncarnation (dataDir: string): Promise<number> {
  const path = join(dataDir, 'incarnation')
  let previous = 0
  try {
    previous = Number.parseInt(await readFile(path, 'utf8'), 10) || 0
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err
  }
  await writeFile(path, String(previous + 1) + '\n', { flush: true })
  return previous + 1
}

async function listen (server: Server, host: string, port: number): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen({ host, port }, () => { server.off('error', reject); resolve() })
  })
}

export async function startDaemon (config: DaemonConfig): Promise<Daemon> {
  const log = createLogger(config.logLevel, config.name)
  await mkdir(config.dataDir, { recursive: true, mode: 0o700 })
  const joining = config.join.length > 0
  const peerKey = await loadOrCreatePeerKey(config.dataDir)
  const clusterKey = await loadClusterKey(config.dataDir, { ...(config.clusterKeyFile !== undefined ? { file: config.clusterKeyFile } : {}), joining })
  if (clusterKey.created) log.info({ event: 'cluster.created', keyFile: join(config.dataDir, 'cluster.key') }, `founded a new cluster; its key is in ${join(config.dataDir, 'cluster.key')}`)
  const tokens = await TokenStore.load(config.dataDir)
  if (tokens.get() === undefined && !joining) await tokens.create()

  const apiUrl = `http://${config.apiHost.includes(':') ? `[${config.apiHost}]` : config.apiHost}:${config.apiPort}`
  const clientConfig = config.clientConfig
  const saveClientConfig = async (token: string): Promise<void> => {
    if (clientConfig === undefined) return
    await writeClientConfig(clientConfig, apiUrl, token).catch((err: Error) => {
      log.warn({ event: 'client-config.failed', path: clientConfig, err: err.message }, `cannot write the CLI config ${clientConfig}: ${err.message}`)
    })
  }
  tokens.onAdopt(token => { void saveClientConfig(token) })

  let started: ShoalHost
  try {
    started = await createHost({ privateKey: peerKey.key, psk: clusterKey.psk, listen: config.listen, log })
  } catch (err) {
    // libp2p's message spans lines with a stack per address; say it in one.
    const message = (err as Error).message
    const code = /\b(EADDRINUSE|EADDRNOTAVAIL|EACCES)\b/.exec(message)?.[1]
    const why = code === 'EADDRINUSE' ? 'the address is in use' : code === 'EADDRNOTAVAIL' ? 'no such local address' : code === 'EACCES' ? 'permission denied' : message.split('\n')[0]
    throw new Error(`cannot listen on ${config.listen.join(', ')}: ${why}`)
  }
  const incarnation = await nextIncarnation(config.dataDir)
  const membership = new Membership({
    host: started,
    self: {
      name: config.name,
      peerId: started.peerId.toString(),
      api: `${config.apiHost}:${config.apiPort}`,
      version: VERSION,
      capacity: { cpu: availableParallelism(), memory: totalmem() },
      startedAt: systemClock.now(),
      incarnation
    },
    config: config.membership,
    clock: systemClock,
    rng: systemRng,
    log,
    join: config.join,
    tokens
  })
  const api = createApiServer({ tokens, members: () => membership.list(), selfPeerId: started.peerId.toString(), log })
  try {
    await listen(api, config.apiHost, config.apiPort)
  } catch (err) {
    await started.stop()
    throw new Error(`cannot serve the API on ${config.apiHost}:${config.apiPort}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`)
  }
  await membership.start()
  const token = tokens.get()
  if (token !== undefined) await saveClientConfig(token)
  log.info({
    event: 'started',
    peerId: started.peerId.toString(),
    listen: started.getMultiaddrs().map(a => a.toString()),
    api: apiUrl,
    incarnation,
    newPeer: peerKey.created
  }, `shoald ${VERSION} is up as ${config.name} (${started.peerId.toString()}), API on ${apiUrl}`)

  let stopping: Promise<void> | undefined
  const stop = async (): Promise<void> => {
    stopping ??= (async () => {
      log.info({ event: 'stopping' }, 'leaving the cluster')
      await membership.stop()
      api.closeAllConnections()
      await new Promise<void>(resolve => api.close(() => { resolve() }))
      await started.stop()
      log.info({ event: 'stopped' }, 'stopped')
    })()
    return await stopping
  }
  return { host: started, membership, api, log, stop }
}
