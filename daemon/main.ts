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
import { encode } from '../protocol/codec.ts'
import { KV_TAG, KvStore } from './kv/store.ts'
import { RoutedStateMachine } from './raft/state-machine.ts'
import { ResourceStore } from './store/store.ts'
import { STORE_TAG } from './store/types.ts'
import type { StoreResult } from './store/types.ts'
import { encodeStoreCommand } from './store/command.ts'
import { NodeKeeper } from './controllers/nodes.ts'
import { ControllerManager } from './controllers/framework.ts'
import { EndpointsController } from './controllers/endpoints.ts'
import { GarbageCollector } from './controllers/gc.ts'
import { NodeLifecycleController } from './controllers/nodelifecycle.ts'
import { Scheduler } from './scheduler/scheduler.ts'
import { DeploymentController } from './controllers/deployment.ts'
import { ReplicaSetController } from './controllers/replicaset.ts'
import { Kubelet } from './kubelet/kubelet.ts'
import { DockerRuntime } from './kubelet/docker-runtime.ts'
import { ClusterNetwork } from './network/network.ts'
import { leaderRaftStatus, serveRaftStatus } from './raft/status-service.ts'
import { acceptTls, loadOrCreateApiCert } from './api/tls.ts'
import { ServiceProxy } from './network/proxy.ts'
import { registerTunnel, tunnelDialer } from './network/tunnel.ts'
import { DEFAULT_RANGES } from './store/allocate.ts'
import { PodAccess } from './kubelet/access.ts'
import { Autopilot } from './raft/autopilot.ts'
import type { MemberHealth } from './raft/autopilot.ts'
import { LevelStorage } from './raft/level-storage.ts'
import { Forwarder } from './raft/forward.ts'
import { RaftNode } from './raft/node.ts'
import { RaftTransport } from './raft/transport.ts'
import { clusterIdOf } from '../protocol/backup.ts'
import { forceSingleVoter } from './backup/recover.ts'
import { installRestore, prepareRestore } from './backup/restore.ts'
import { BackupScheduler } from './backup/scheduler.ts'
import { backupSource } from './backup/source.ts'

export { VERSION }

export interface Daemon {
  host: ShoalHost
  membership: Membership
  raft: RaftNode
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
  // A backup to restore is checked in full before the data directory is touched.
  const restoring = config.restore !== undefined ? await prepareRestore(config.restore, config.dataDir) : undefined
  await mkdir(config.dataDir, { recursive: true, mode: 0o700 })
  const joining = config.join.length > 0
  const peerKey = await loadOrCreatePeerKey(config.dataDir)
  const clusterKey = await loadClusterKey(config.dataDir, { ...(config.clusterKeyFile !== undefined ? { file: config.clusterKeyFile } : {}), joining })
  if (clusterKey.created) log.info({ event: 'cluster.created', keyFile: join(config.dataDir, 'cluster.key') }, `founded a new cluster; its key is in ${join(config.dataDir, 'cluster.key')}`)
  const tokens = await TokenStore.load(config.dataDir)
  if ((tokens.get() === undefined || tokens.getViewer() === undefined) && !joining) await tokens.create()

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
  const selfId = started.peerId.toString()
  const describe = (id: string): { name?: string, api?: string } => {
    const m = membership.list().find(x => x.record.peerId === id)
    return m === undefined ? {} : { name: m.record.name, api: m.record.api }
  }

  // The replicated log. A peer that starts on an empty log and joins no one
  // founds the cluster: its log begins with a config naming it sole voter.
  const storage = await LevelStorage.open(join(config.dataDir, 'raft'))
  if (restoring !== undefined) await installRestore(storage, restoring, selfId, log)
  if (config.recover) await forceSingleVoter(storage, selfId, config.dataDir, log)
  if (storage.lastIndex() === 0 && storage.snapshotMeta().index === 0 && !joining) {
    await storage.save({
      entries: [{ term: 1, index: 1, kind: 'config', data: encode({ voters: [selfId], learners: [] }) }],
      hardState: { term: 1, commit: 1 },
      sync: true
    })
    log.info({ event: 'raft.bootstrap' }, 'started a new replicated log with this peer as its only voter')
  }
  const kv = new KvStore()
  const store = new ResourceStore()
  const state = new RoutedStateMachine([{ tag: KV_TAG, name: 'kv', machine: kv }, { tag: STORE_TAG, name: 'store', machine: store }])
  let transport: RaftTransport | undefined
  let forwarder: Forwarder | undefined
  const raft = new RaftNode({
    id: selfId,
    name: config.name,
    api: `${config.apiHost}:${config.apiPort}`,
    storage,
    stateMachine: state,
    send: m => { transport?.send(m) },
    forward: async (to, req, timeoutMs) => await (forwarder as Forwarder).request(to, req, timeoutMs),
    describe,
    clock: systemClock,
    rng: systemRng,
    log,
    tickMs: config.raft.tickMs,
    electionTicks: config.raft.electionTicks,
    snapshotEntries: config.raft.snapshotEntries
  })
  transport = new RaftTransport({
    host: started,
    log,
    onMessage: m => { raft.step(m) },
    onSnapshotSent: (to, ok) => { raft.snapshotSent(to, ok) },
    onPeerDisconnected: peer => { raft.peerDisconnected(peer) }
  })
  await transport.start()
  forwarder = new Forwarder({ host: started, log, clock: systemClock, handle: async req => await raft.handleForward(req) })
  await forwarder.start()
  const autopilot = new Autopilot({
    node: raft,
    members: () => {
      const out = new Map<string, MemberHealth>()
      for (const m of membership.list()) out.set(m.record.peerId, { state: m.state, since: m.stateSince })
      return out
    },
    clock: systemClock,
    log,
    describe: id => describe(id).name ?? id,
    ...(config.raft.voters !== undefined ? { targetVoters: config.raft.voters } : {}),
    deadGraceMs: config.raft.deadVoterGraceMs
  })

  const takeBackup = backupSource({ raft, termAt: i => storage.term(i), state, clusterId: clusterIdOf(clusterKey.psk), peer: config.name, clock: systemClock })
  const backups = config.snapshotIntervalMs !== undefined
    ? new BackupScheduler({ dataDir: config.dataDir, intervalMs: config.snapshotIntervalMs, retain: config.snapshotRetain, take: takeBackup, clock: systemClock, log })
    : undefined

  const network = new ClusterNetwork({ store, ownAddress: config.apiHost, dnsPort: config.dnsPort, upstream: config.dnsUpstream, log, onRoute: () => { proxy.retryFailed() } })
  const runtime = await chooseRuntime(config, log, network)
  const ranges = DEFAULT_RANGES[runtime !== undefined ? 'docker' : 'process']
  const nodes = new NodeKeeper({
    network: { serviceCidr: config.serviceCidr ?? ranges.serviceCidr, podCidr: config.podCidr ?? ranges.podCidr, clusterDomain: config.clusterDomain },
    store,
    raft,
    isLeader: () => raft.core.role === 'leader',
    members: () => membership.list().map(m => ({
      name: m.record.name,
      peerId: m.record.peerId,
      api: m.record.api,
      state: m.state,
      cpu: m.record.capacity.cpu,
      memoryBytes: m.record.capacity.memory,
      version: m.record.version
    })),
    clock: systemClock,
    log
  })

  const controllers = new ControllerManager({
    store,
    raft,
    isLeader: () => raft.core.role === 'leader',
    members: () => membership.list().map(m => ({ name: m.record.name, peerId: m.record.peerId, state: m.state, since: m.stateSince })),
    clock: systemClock,
    log,
    controllers: [
      new Scheduler(),
      new DeploymentController(),
      new ReplicaSetController(),
      new EndpointsController(),
      new NodeLifecycleController({ evictionGraceMs: config.podEvictionGraceMs }),
      new GarbageCollector()
    ]
  })

  const peerOfNode = (name: string): string | undefined => membership.list().find(m => m.record.name === name && m.state === 'alive')?.record.peerId
  const proxy = new ServiceProxy({ store, nodeName: config.name, nodeAddress: config.apiHost, dialRemote: tunnelDialer(started, peerOfNode), log })
  const tunnel = await registerTunnel(started, { store, nodeName: config.name, log })
  const kubelet = new Kubelet({
    ...(runtime !== undefined ? { runtime } : {}),
    dns: () => network.dnsAddress(),
    awaitPodCidrMs: 15_000,
    nodeName: config.name,
    dataDir: config.dataDir,
    store,
    write: async cmd => (await raft.propose(encodeStoreCommand(cmd))).result as StoreResult,
    clock: systemClock,
    log,
    hostIP: config.apiHost === '0.0.0.0' || config.apiHost === '::' ? '127.0.0.1' : config.apiHost
  })
  // The kubelet starts once this replica has caught up with the log (a
  // ReadIndex round): at start it removes what belongs to no pod it knows.
  let kubeletStarted = false
  const startKubelet = async (): Promise<void> => {
    while (!stoppingFlag) {
      try {
        await raft.readBarrier(5000)
        await kubelet.start()
        kubeletStarted = true
        return
      } catch {
        await new Promise(resolve => setTimeout(resolve, 500))
      }
    }
  }
  let stoppingFlag = false
  const podAccess = new PodAccess({
    host: started,
    kubelet,
    store,
    nodeName: config.name,
    peerOf: peerOfNode,
    log
  })
  await podAccess.start()

  await serveRaftStatus(started, raft, log)
  const api = createApiServer({ leaderRaftStatus: async () => await leaderRaftStatus(started, raft), tokens, members: () => membership.list(), selfPeerId: selfId, log, raft, kv, kvMaxValueBytes: config.kvMaxValueBytes, store, podAccess: async req => await podAccess.handle(req), backup: takeBackup })
  // kubectl (client-go) sends a bearer token only over https: the API port speaks both.
  acceptTls(api, await loadOrCreateApiCert(config.dataDir, config.apiHost))
  try {
    await listen(api, config.apiHost, config.apiPort)
  } catch (err) {
    await started.stop()
    throw new Error(`cannot serve the API on ${config.apiHost}:${config.apiPort}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`)
  }
  await membership.start()
  raft.start()
  autopilot.start()
  backups?.start()
  nodes.start()
  controllers.start()
  network.start()
  void proxy.start()
  void startKubelet()
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
      autopilot.stop()
      await backups?.stop()
      stoppingFlag = true
      nodes.stop()
      controllers.stop()
      // Pods keep running across a daemon restart; the next start adopts them.
      if (kubeletStarted) await kubelet.stop()
      await network.stop()
      await proxy.stop()
      await tunnel.stop()
      await podAccess.stop()
      // A leader hands over before it goes, so that writes barely pause.
      if (raft.core.role === 'leader' && raft.core.clusterConfig.voters.length > 1) {
        const handed = await raft.transferLeadership(2000)
        if (!handed) log.warn({ event: 'raft.transfer.failed' }, 'could not hand leadership over before stopping')
      }
      await membership.stop()
      api.closeAllConnections()
      await new Promise<void>(resolve => api.close(() => { resolve() }))
      await raft.stop()
      await forwarder.stop()
      await transport.stop()
      await started.stop()
      await storage.close()
      log.info({ event: 'stopped' }, 'stopped')
    })()
    return await stopping
  }
  return { host: started, membership, raft, api, log, stop }
}

/**
 * The pod runtime: Docker when asked for (an engine must answer) or, with
 * auto, when one answers at DOCKER_HOST (else /var/run/docker.sock);
 * undefined for the kubelet's default, the process runtime.
 */
async function chooseRuntime (config: DaemonConfig, log: Logger, network: ClusterNetwork): Promise<DockerRuntime | undefined> {
  if (config.runtime === 'process') return undefined
  const where = process.env.DOCKER_HOST ?? 'unix:///var/run/docker.sock'
  const docker = new DockerRuntime({ nodeName: config.name, dataDir: config.dataDir, clock: systemClock, log, dns: ns => network.podDns(ns), ...(config.pauseImage !== undefined ? { pauseImage: config.pauseImage } : {}) })
  if (!(await docker.available())) {
    if (config.runtime === 'docker') throw new Error(`--runtime docker: no Docker engine answers at ${where}`)
    log.info({ event: 'kubelet.runtime', runtime: 'process', docker: where }, `no Docker engine at ${where}: pods run as processes`)
    return undefined
  }
  log.info({ event: 'kubelet.runtime', runtime: 'docker', docker: where }, `pods run in the Docker engine at ${where}`)
  return docker
}
