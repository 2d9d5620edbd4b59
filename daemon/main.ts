// shoald's composition root: it builds each component, wires them together
// and lists them in start-up order (daemon/lifecycle stops them in the
// reverse). No component logic lives here.
import { availableParallelism, totalmem } from 'node:os'
import { mkdir, readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import type { Server } from 'node:http'
import { VERSION } from '../protocol/version.ts'
import { TokenStore } from './api/auth.ts'
import { createApiServer } from './api/server.ts'
import { serveUi } from './ui/serve.ts'
import { systemClock, systemRng } from './clock/clock.ts'
import { writeClientConfig } from './config/client-config.ts'
import type { DaemonConfig } from './config/flags.ts'
import { createLogger } from './log/log.ts'
import type { Logger } from './log/log.ts'
import { Membership } from './membership/membership.ts'
import { opened, startAll, startWhenReady, stopAll } from './lifecycle/startable.ts'
import type { Startable } from './lifecycle/startable.ts'
import { createHost } from './p2p/host.ts'
import type { HostOptions, ShoalHost } from './p2p/host.ts'
import { keepPrivate, loadClusterKey, loadOrCreatePeerKey } from './p2p/keys.ts'
import { KV_TAG, KvStore } from './kv/store.ts'
import { RoutedStateMachine } from './raft/state-machine.ts'
import { ResourceStore } from './store/store.ts'
import { STORE_TAG } from './store/types.ts'
import { replicatedWriter } from './store/writer.ts'
import { NodeKeeper } from './controllers/nodes.ts'
import { ControllerManager } from './controllers/framework.ts'
import { EndpointsController } from './controllers/endpoints.ts'
import { GarbageCollector } from './controllers/gc.ts'
import { JobController } from './controllers/job.ts'
import { TtlAfterFinishedController } from './controllers/ttl.ts'
import { NodeLifecycleController } from './controllers/nodelifecycle.ts'
import { Scheduler } from './scheduler/scheduler.ts'
import { DeploymentController } from './controllers/deployment.ts'
import { ReplicaSetController } from './controllers/replicaset.ts'
import { StatefulSetController } from './controllers/statefulset.ts'
import { DisruptionController } from './controllers/disruption.ts'
import { PersistentVolumeController } from './controllers/persistentvolume.ts'
import { DaemonSetController } from './controllers/daemonset.ts'
import { CronJobController } from './controllers/cronjob.ts'
import { REPLICATION_CONTROLLER } from '../protocol/kinds.ts'
import { Kubelet } from './kubelet/kubelet.ts'
import { DockerRuntime } from './kubelet/docker-runtime.ts'
import { NativeRuntime } from './kubelet/native-runtime.ts'
import { describeCgroups, detectCgroups } from './kubelet/native/cgroups.ts'
import { checkSandboxHost } from './kubelet/native/sandbox.ts'
import { ClusterNetwork } from './network/network.ts'
import { leaderRaftStatus, RaftStatusService } from './raft/status-service.ts'
import { acceptTls, API_CERT_FILE, loadOrCreateApiCert } from './api/tls.ts'
import { certificateFingerprint } from '../protocol/tls.ts'
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
  const secrets = await openSecrets(config, log)
  const { tokens, saveClientConfig, apiUrl } = secrets

  // Opened before the components are built, since they read them: the host
  // listens at once (membership advertises its addresses), and the log is
  // loaded (the Raft node restores the state machine from it).
  const host = await listenHost(config, secrets.peerKey.key, secrets.clusterKey.psk, log)
  const incarnation = await nextIncarnation(config.dataDir)
  // Loaded before membership: every heartbeat carries its fingerprint, which `shoal kubeconfig` pins.
  const apiCert = await loadOrCreateApiCert(config.dataDir, config.apiHost)
  // Membership hands the API tokens only to peers the log has admitted (the Raft node is built next).
  let admitted: (peerId: string) => boolean = () => false
  const membership = buildMembership(config, host, incarnation, tokens, log, certificateFingerprint(apiCert.cert), id => admitted(id))
  const replicated = await buildReplicatedLog(config, secrets, host, membership, log)
  admitted = admittedBy(replicated.raft)
  const { raft, storage, store } = replicated
  const agent = await buildNodeAgent(config, host, membership, replicated, log)
  const control = buildControlPlane(config, membership, replicated, agent.runtime instanceof DockerRuntime, log)

  const api = createApiServer({
    leaderRaftStatus: async () => await leaderRaftStatus(host, raft),
    tokens,
    members: () => membership.list(),
    selfPeerId: host.peerId.toString(),
    log,
    raft,
    kv: replicated.kv,
    kvMaxValueBytes: config.kvMaxValueBytes,
    watchLimits: config.watchLimits,
    store,
    podAccess: async req => await agent.podAccess.handle(req),
    backup: replicated.takeBackup,
    ui: serveUi
  })
  // kubectl (client-go) sends a bearer token only over https: the API port speaks it, and plain HTTP unless --api-tls required.
  acceptTls(api, apiCert, { mode: config.apiTls })

  // Started in this order; stopped in the reverse, after every beforeStop
  // (a leader hands over while everything still runs). A failed start
  // stops what had started.
  const components: Startable[] = [
    // closed last: the log is written until the Raft node stops
    opened(async () => { await storage.close() }),
    host,
    replicated.transport,
    replicated.forwarder,
    opened(async () => { await agent.tunnel.stop() }),
    agent.podAccess,
    replicated.raftStatus,
    raft,
    apiServer(api, config.apiHost, config.apiPort),
    // stopping publishes this peer's leave
    membership,
    replicated.autopilot,
    ...(replicated.backups !== undefined ? [replicated.backups] : []),
    control.nodes,
    control.controllers,
    agent.network,
    agent.proxy,
    // The kubelet starts once this replica has caught up with the log (a
    // ReadIndex round): at start it removes what belongs to no pod it knows.
    // Pods keep running across a daemon restart; the next start adopts them.
    startWhenReady(agent.kubelet, {
      ready: async () => await raft.readBarrier(5000),
      pause: async () => { await new Promise(resolve => setTimeout(resolve, 500)) }
    })
  ]
  await startAll(components)
  const token = tokens.get()
  if (token !== undefined) await saveClientConfig(token)
  log.info({
    event: 'started',
    peerId: host.peerId.toString(),
    listen: host.getMultiaddrs().map(a => a.toString()),
    api: apiUrl,
    incarnation,
    newPeer: secrets.peerKey.created
  }, `shoald ${VERSION} is up as ${config.name} (${host.peerId.toString()}), API on ${apiUrl}`)

  let stopping: Promise<void> | undefined
  const stop = async (): Promise<void> => {
    stopping ??= (async () => {
      log.info({ event: 'stopping' }, 'leaving the cluster')
      await stopAll(components)
      log.info({ event: 'stopped' }, 'stopped')
    })()
    return await stopping
  }
  return { host, membership, raft, api, log, stop }
}

interface Secrets {
  /** a checked backup to install, with --restore */
  restoring: Awaited<ReturnType<typeof prepareRestore>> | undefined
  joining: boolean
  peerKey: Awaited<ReturnType<typeof loadOrCreatePeerKey>>
  clusterKey: Awaited<ReturnType<typeof loadClusterKey>>
  tokens: TokenStore
  apiUrl: string
  /** writes the CLI's config file (--client-config) with this token */
  saveClientConfig: (token: string) => Promise<void>
}

/** The data directory, the peer and cluster keys, the API tokens (made by the founder, adopted by joiners). */
async function openSecrets (config: DaemonConfig, log: Logger): Promise<Secrets> {
  // A backup to restore is checked in full before the data directory is touched.
  const restoring = config.restore !== undefined ? await prepareRestore(config.restore, config.dataDir) : undefined
  await mkdir(config.dataDir, { recursive: true, mode: 0o700 })
  // mkdir's mode applies only to a directory it makes: one that existed is made private too.
  await keepPrivate(config.dataDir, 'dir')
  const joining = config.join.length > 0
  const peerKey = await loadOrCreatePeerKey(config.dataDir)
  const clusterKey = await loadClusterKey(config.dataDir, { ...(config.clusterKeyFile !== undefined ? { file: config.clusterKeyFile } : {}), joining })
  if (clusterKey.created) log.info({ event: 'cluster.created', keyFile: join(config.dataDir, 'cluster.key') }, `founded a new cluster; its key is in ${join(config.dataDir, 'cluster.key')}`)
  const tokens = await TokenStore.load(config.dataDir)
  if ((tokens.get() === undefined || tokens.getViewer() === undefined) && !joining) await tokens.create()

  const apiUrl = `${config.apiTls === 'required' ? 'https' : 'http'}://${config.apiHost.includes(':') ? `[${config.apiHost}]` : config.apiHost}:${config.apiPort}`
  const clientConfig = config.clientConfig
  const saveClientConfig = async (token: string): Promise<void> => {
    if (clientConfig === undefined) return
    await writeClientConfig(clientConfig, apiUrl, token, join(config.dataDir, API_CERT_FILE)).catch((err: Error) => {
      log.warn({ event: 'client-config.failed', path: clientConfig, err: err.message }, `cannot write the CLI config ${clientConfig}: ${err.message}`)
    })
  }
  tokens.onAdopt(token => { void saveClientConfig(token) })
  return { restoring, joining, peerKey, clusterKey, tokens, apiUrl, saveClientConfig }
}

/**
 * Whether the cluster has admitted a peer: it is a voter or a learner of
 * the Raft configuration this peer knows (docs/decisions/2026-12-03-trust-model.md).
 */
function admittedBy (raft: Pick<RaftNode, 'clusterConfig'>): (peerId: string) => boolean {
  return peerId => {
    const c = raft.clusterConfig()
    return c.voters.includes(peerId) || c.learners.includes(peerId)
  }
}

function buildMembership (config: DaemonConfig, host: ShoalHost, incarnation: number, tokens: TokenStore, log: Logger, apiFingerprint: string, admitted: (peerId: string) => boolean): Membership {
  return new Membership({
    host,
    self: {
      name: config.name,
      peerId: host.peerId.toString(),
      api: `${config.apiHost}:${config.apiPort}`,
      version: VERSION,
      capacity: { cpu: availableParallelism(), memory: totalmem() },
      startedAt: systemClock.now(),
      incarnation,
      apiFingerprint
    },
    config: config.membership,
    clock: systemClock,
    rng: systemRng,
    log,
    join: config.join,
    tokens,
    admitted
  })
}

/** A member's name and API address, when membership knows the peer. */
function describer (membership: Membership): (id: string) => { name?: string, api?: string } {
  return id => {
    const m = membership.list().find(x => x.record.peerId === id)
    return m === undefined ? {} : { name: m.record.name, api: m.record.api }
  }
}

type ReplicatedLog = Awaited<ReturnType<typeof buildReplicatedLog>>

/**
 * The replicated log and its state machines (the KV and the resource store),
 * the Raft transport, forwarding, status, autopilot and backups. A peer that
 * starts on an empty log and joins no one founds the cluster: its log begins
 * with a config naming it sole voter.
 */
async function buildReplicatedLog (config: DaemonConfig, secrets: Secrets, host: ShoalHost, membership: Membership, log: Logger) {
  const selfId = host.peerId.toString()
  const describe = describer(membership)
  const storage = await LevelStorage.open(join(config.dataDir, 'raft'))
  if (secrets.restoring !== undefined) await installRestore(storage, secrets.restoring, selfId, log)
  if (config.recover) await forceSingleVoter(storage, selfId, config.dataDir, log)
  if (!secrets.joining && await storage.found(selfId)) log.info({ event: 'raft.bootstrap' }, 'started a new replicated log with this peer as its only voter')
  const kv = new KvStore()
  const store = new ResourceStore()
  const state = new RoutedStateMachine([{ tag: KV_TAG, name: 'kv', machine: kv }, { tag: STORE_TAG, name: 'store', machine: store }])
  // The transport, the forwarder and the node call one another, none of them before it starts.
  const transport = new RaftTransport({
    host,
    log,
    onMessage: m => { raft.step(m) },
    onSnapshotSent: (to, ok) => { raft.snapshotSent(to, ok) },
    onPeerDisconnected: peer => { raft.peerDisconnected(peer) }
  })
  const forwarder = new Forwarder({ host, log, clock: systemClock, handle: async req => await raft.handleForward(req), admitted: id => admittedBy(raft)(id) })
  const raft = new RaftNode({
    id: selfId,
    name: config.name,
    api: `${config.apiHost}:${config.apiPort}`,
    storage,
    stateMachine: state,
    send: m => { transport.send(m) },
    forward: async (to, req, timeoutMs) => await forwarder.request(to, req, timeoutMs),
    describe,
    clock: systemClock,
    rng: systemRng,
    log,
    tickMs: config.raft.tickMs,
    electionTicks: config.raft.electionTicks,
    snapshotEntries: config.raft.snapshotEntries
  })
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
  const takeBackup = backupSource({ raft, termAt: i => storage.term(i), state, clusterId: clusterIdOf(secrets.clusterKey.psk), peer: config.name, clock: systemClock })
  const backups = config.snapshotIntervalMs !== undefined
    ? new BackupScheduler({ dataDir: config.dataDir, intervalMs: config.snapshotIntervalMs, retain: config.snapshotRetain, take: takeBackup, clock: systemClock, log })
    : undefined
  return {
    storage,
    kv,
    store,
    transport,
    forwarder,
    raft,
    writer: replicatedWriter(raft),
    raftStatus: new RaftStatusService(host, raft, log),
    autopilot,
    takeBackup,
    backups
  }
}

/** The leader-only loops: Nodes and system objects, the controllers and the scheduler. */
function buildControlPlane (config: DaemonConfig, membership: Membership, replicated: ReplicatedLog, docker: boolean, log: Logger): { nodes: NodeKeeper, controllers: ControllerManager } {
  const { store, writer, raft } = replicated
  const ranges = DEFAULT_RANGES[docker ? 'docker' : 'process']
  const nodes = new NodeKeeper({
    network: { serviceCidr: config.serviceCidr ?? ranges.serviceCidr, podCidr: config.podCidr ?? ranges.podCidr, clusterDomain: config.clusterDomain },
    store,
    writer,
    isLeader: () => raft.isLeader(),
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
    writer,
    isLeader: () => raft.isLeader(),
    members: () => membership.list().map(m => ({ name: m.record.name, peerId: m.record.peerId, state: m.state, since: m.stateSince })),
    clock: systemClock,
    log,
    controllers: [
      new Scheduler(),
      new DeploymentController(),
      new ReplicaSetController(),
      new ReplicaSetController({ kind: REPLICATION_CONTROLLER }),
      new DisruptionController(),
      new PersistentVolumeController(),
      new DaemonSetController(),
      new EndpointsController(),
      new NodeLifecycleController({ evictionGraceMs: config.podEvictionGraceMs }),
      new StatefulSetController(),
      new CronJobController(),
      new JobController(),
      new TtlAfterFinishedController(),
      new GarbageCollector()
    ],
    // controllers start once this replica has applied what was committed before this leader's term
    ready: async () => await raft.readBarrier(5000)
  })
  return { nodes, controllers }
}

/** What every peer runs for its own node: service addressing (DNS, proxy, tunnel), the kubelet and pod access. */
async function buildNodeAgent (config: DaemonConfig, host: ShoalHost, membership: Membership, replicated: ReplicatedLog, log: Logger) {
  const { store, writer } = replicated
  const network = new ClusterNetwork({ store, ownAddress: config.apiHost, dnsPort: config.dnsPort, upstream: config.dnsUpstream, log, onRoute: () => { proxy.retryFailed() } })
  const runtime = await chooseRuntime(config, log, network)
  const peerOfNode = (name: string): string | undefined => membership.list().find(m => m.record.name === name && m.state === 'alive')?.record.peerId
  const proxy = new ServiceProxy({ store, nodeName: config.name, nodeAddress: config.apiHost, dialRemote: tunnelDialer(host, peerOfNode), log })
  const tunnel = await registerTunnel(host, { store, nodeName: config.name, log })
  const kubelet = new Kubelet({
    ...(runtime !== undefined ? { runtime } : {}),
    dns: () => network.dnsAddress(),
    // fencing: a peer cut off from the cluster stops its StatefulSet pods (docs/decisions/2026-12-03-statefulsets.md)
    confirmContact: async (timeoutMs: number) => await replicated.raft.readBarrier(timeoutMs),
    awaitPodCidrMs: 15_000,
    nodeName: config.name,
    dataDir: config.dataDir,
    store,
    write: writer.write,
    clock: systemClock,
    log,
    hostIP: config.apiHost === '0.0.0.0' || config.apiHost === '::' ? '127.0.0.1' : config.apiHost,
    // The native runtime isolates pods, so which host paths they may mount is checked; the host runtime isolates nothing to check against.
    ...(runtime instanceof NativeRuntime ? { allowHostPaths: config.allowHostPath } : {})
  })
  const podAccess = new PodAccess({ host, kubelet, store, nodeName: config.name, peerOf: peerOfNode, admitted: admittedBy(replicated.raft), log })
  return { runtime, network, proxy, tunnel, kubelet, podAccess }
}

/** The libp2p host, listening; a failure said in one line. */
async function listenHost (config: DaemonConfig, privateKey: HostOptions['privateKey'], psk: HostOptions['psk'], log: Logger): Promise<ShoalHost> {
  try {
    return await createHost({ privateKey, psk, listen: config.listen, log })
  } catch (err) {
    // libp2p's message spans lines with a stack per address; say it in one.
    const message = (err as Error).message
    const code = /\b(EADDRINUSE|EADDRNOTAVAIL|EACCES)\b/.exec(message)?.[1]
    const why = code === 'EADDRINUSE' ? 'the address is in use' : code === 'EADDRNOTAVAIL' ? 'no such local address' : code === 'EACCES' ? 'permission denied' : message.split('\n')[0]
    throw new Error(`cannot listen on ${config.listen.join(', ')}: ${why}`)
  }
}

/** The HTTP API as a component: start listens; stop closes its connections, then the server. */
function apiServer (api: Server, host: string, port: number): Startable {
  return {
    start: async () => {
      try {
        await listen(api, host, port)
      } catch (err) {
        throw new Error(`cannot serve the API on ${host}:${port}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`)
      }
    },
    stop: async () => {
      api.closeAllConnections()
      await new Promise<void>(resolve => api.close(() => { resolve() }))
    }
  }
}

/**
 * The pod runtime: Docker when asked for (an engine must answer) or, with
 * auto, when one answers at DOCKER_HOST (else /var/run/docker.sock); else,
 * with auto, native when this host can run sandboxes; undefined for host
 * processes (the kubelet's default, the process runtime).
 */
async function chooseRuntime (config: DaemonConfig, log: Logger, network: ClusterNetwork): Promise<DockerRuntime | NativeRuntime | undefined> {
  if (config.runtime === 'process') return undefined
  if (config.runtime === 'native') return nativeRuntime(config, log, network)
  const where = process.env.DOCKER_HOST ?? 'unix:///var/run/docker.sock'
  const docker = new DockerRuntime({ nodeName: config.name, dataDir: config.dataDir, clock: systemClock, log, dns: ns => network.podDns(ns), ...(config.pauseImage !== undefined ? { pauseImage: config.pauseImage } : {}) })
  if (!(await docker.available())) {
    if (config.runtime === 'docker') throw new Error(`--runtime docker: no Docker engine answers at ${where}`)
    // auto: the native runtime when this host can run sandboxes, else host processes (trusted workloads only)
    const host = checkSandboxHost()
    if (host === true) {
      try {
        return nativeRuntime(config, log, network)
      } catch (err) {
        log.warn({ event: 'kubelet.runtime', runtime: 'process', docker: where, err: (err as Error).message }, `no Docker engine at ${where}, and ${(err as Error).message}: pods run as host processes`)
        return undefined
      }
    }
    log.warn({ event: 'kubelet.runtime', runtime: 'process', docker: where, native: host }, `no Docker engine at ${where}, and no native sandboxes (${host}): pods run as host processes, which suits trusted workloads only`)
    return undefined
  }
  log.info({ event: 'kubelet.runtime', runtime: 'docker', docker: where }, `pods run in the Docker engine at ${where}`)
  return docker
}

/** The native runtime, or one line saying why this host cannot run it. */
function nativeRuntime (config: DaemonConfig, log: Logger, network: ClusterNetwork): NativeRuntime {
  const host = checkSandboxHost()
  if (host !== true) throw new Error(`--runtime native: ${host}`)
  let layout
  try {
    layout = detectCgroups()
  } catch (err) {
    throw new Error(`--runtime native: no usable cgroups: ${(err as Error).message}`)
  }
  log.info({ event: 'kubelet.runtime', runtime: 'native', cgroups: describeCgroups(layout) }, `pods run from their images in native sandboxes (${describeCgroups(layout)})`)
  return new NativeRuntime({ nodeName: config.name, dataDir: config.dataDir, clock: systemClock, log, layout, allowRoot: config.allowPrivileged, imageGcDelayMs: config.imageGcDelayMs, allowHostPaths: config.allowHostPath, dns: ns => network.podDns(ns) })
}
