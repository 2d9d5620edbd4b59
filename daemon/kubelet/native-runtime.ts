// The native runtime (`--runtime native`): each container runs from its OCI
// image, isolated, without Docker. The image is pulled with the container's
// imagePullPolicy (and the pod's pull secrets) into one cache per peer,
// <dataDir>/images, and laid out there once per image (ImagePuller.rootOf);
// each container attempt gets its own root at
// <dataDir>/native/roots/<id>/rootfs, an overlay mount of that layout with a
// fresh upper layer (a copy of it where no overlay mounts: native/rootfs.ts),
// and runs in a sandbox (native/sandbox.ts: its own mount, PID, UTS and IPC
// namespaces, pivoted into that root, in a cgroup with the container's
// limits). Images no container record has named for imageGcDelayMs are
// removed from the cache (collectImages, every minute). How the
// argv, env, user and limits follow from the pod and the image is in
// native/container-config.ts; in short, never uid 0 unless the pod asks.
// The network namespace is the host's: the pod's address and directories
// come from a ProcessRuntime used for its sandboxes only (ipam.ts,
// <dataDir>/pods/<uid>/), and the pod binds to its POD_IP. Logs are files,
// <dataDir>/pods/<uid>/<container>/<attempt>.log, as the process runtime's
// (rotated to .log.1 past maxLogBytes), written by the container itself (its stdout and stderr
// are the file), so output goes on while shoald is down. Records are
// persisted in <dataDir>/native/containers/<id>.json, with the pid and start
// time of the sandbox's gate; the gate writes the exit code to <id>.exit
// there. A restarted shoald adopts a container still running
// (sandbox.ts adoptSandbox: same id, log and cgroup; stop, exec and usage
// work on it), polls for its gate's end, and then reports the exit code from
// that file and the OOM kills from the cgroup, as for a child of its own. A
// record of an older shoald without the gate's pid is not adopted: what is
// left of it is killed, and the kubelet starts it again. exec enters the
// container's namespaces and root with the static busybox's nsenter, as the
// container's uid and gid, in its cgroup.
// May import: protocol/, daemon/clock, daemon/log, daemon/image, ./runtime.ts,
// ./process-runtime.ts, ./native/.
import { spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { closeSync, openSync, readlinkSync } from 'node:fs'
import { chmod, lstat, mkdir, readdir, readFile, realpath, rm, rmdir } from 'node:fs/promises'
import { constants } from 'node:os'
import { join, sep } from 'node:path'
import { Readable } from 'node:stream'
import type { Pod } from '../../protocol/core-v1.ts'
import { isUid } from '../../protocol/validation.ts'
import type { Clock, TimerHandle } from '../clock/clock.ts'
import { ImagePuller } from '../image/puller.ts'
import type { PulledImage, PullPolicy } from '../image/puller.ts'
import { InvalidReferenceError } from '../image/reference.ts'
import { credentialsFor, PullError } from '../image/registry.ts'
import type { Credentials } from '../image/registry.ts'
import type { Logger } from '../log/log.ts'
import { LogFollower, MAX_LOG_BYTES, readLog, rotateIfLarge, tailBytes } from './log-follower.ts'
import { loadRecords, saveRecord } from './records.ts'
import type { CgroupLayout } from './native/cgroups.ts'
import { containerOf, DEFAULT_PIDS_LIMIT, hostnameOf, hostsOf, limitsOf, resolvConfOf, resolveArgv, resolveEnv, resolveUser, UserError } from './native/container-config.ts'
import { HostShell } from './native/host-shell.ts'
import { makeRoot, removeRoot, rootIn, writeInRoot } from './native/rootfs.ts'
import type { RootMode } from './native/rootfs.ts'
import { adoptSandbox, DEFAULT_PATH, makeDevTemplate, startSandbox } from './native/sandbox.ts'
import type { BindMount, RunningSandbox, SandboxExit, SandboxTools } from './native/sandbox.ts'
import { ProcessRuntime } from './process-runtime.ts'
import { ExecOutput, ImagePullError } from './runtime.ts'
import type { ContainerRecord, ContainerSpec, ExecResult, Mount, Runtime, StartOptions } from './runtime.ts'

export interface NativeRuntimeOptions {
  dataDir: string
  nodeName: string
  /** the node's pod range; default as the process runtime's */
  podCidr?: string
  clock: Clock
  log: Logger
  /** the host's cgroups (detectCgroups) */
  layout: CgroupLayout
  tools?: SandboxTools
  /** the most tasks a container may have at once (default 1024) */
  pidsLimit?: number
  /** default: one over <dataDir>/images */
  puller?: ImagePuller
  /** how often an adopted container (not our child) is checked for its end (default 250 ms) */
  adoptPollMs?: number
  /** how containers' roots are made; default: an overlay mount, or a copy where the first mount fails */
  rootMode?: RootMode
  /** an image no container of this peer has started from for this long is removed from the cache (Nomad's image_delay; default 3 minutes) */
  imageGcDelayMs?: number
  /** how often unused images are looked for (default 1 minute) */
  imageGcIntervalMs?: number
  /** a running container's log bigger than this is moved to <attempt>.log.1 and started afresh (default 10 MiB, checked every second) */
  maxLogBytes?: number
  /** the pod's resolver (the cluster DNS on port 53) and search path, by namespace; undefined: the host's resolv.conf */
  dns?: (namespace: string) => { servers: string[], search: string[] } | undefined
  /** the only directories hostPath volumes may come from (--allow-host-path), checked again on the descriptor the sandbox mounts; undefined: not checked here */
  allowHostPaths?: readonly string[]
  /** run a container that asks for uid 0 (the host's root: no user namespace yet); default false: it cannot run */
  allowRoot?: boolean
}

interface NativeRecord extends ContainerRecord {
  env: Record<string, string>
  uid: number
  gid: number
  root: string
  logFile: string
  /** where the sandbox's gate writes the exit code */
  exitFile?: string
  /** the gate's pid and start time (processStartTicks): how a restarted shoald finds the sandbox again */
  gatePid?: number
  gateStartTicks?: number
}

function publicRecord (r: NativeRecord): ContainerRecord {
  const { env: _e, uid: _u, gid: _g, root: _r, logFile: _l, exitFile: _x, gatePid: _p, gateStartTicks: _t, ...rec } = r
  return { ...rec }
}

/** Runs the command once the runtime has put this process in the container's cgroup and written `go` on fd 3. */
const EXEC_GATE = 'read -r go <&3 || exit 125; [ "$go" = go ] || exit 125; exec 3<&-; exec "$@"'
const HOST_PATH = '/usr/sbin:/usr/bin:/sbin:/bin'
/** Linux's O_PATH (the same on x86-64 and arm64), which node:fs does not name */
const O_PATH = 0o10000000

export class NativeRuntime implements Runtime {
  readonly name = 'native'
  /** the pods' addresses and directories; it runs no container of ours */
  private readonly pods: ProcessRuntime
  private readonly puller: ImagePuller
  private readonly opts: NativeRuntimeOptions
  private readonly records = new Map<string, NativeRecord>()
  private readonly sandboxes = new Map<string, RunningSandbox>()
  /** settles once the container's exit is recorded */
  private readonly finished = new Map<string, Promise<void>>()
  private readonly listeners: Array<(rec: ContainerRecord) => void> = []
  /** pulls under way, by reference and policy: two containers of one image pull it once */
  private readonly pulls = new Map<string, Promise<PulledImage>>()
  private closed = false
  /** how containers' roots are made: found out at the first start unless the options say */
  private rootMode: RootMode | undefined
  /** the /dev bound read-only into every container (makeDevTemplate), when the host allows one */
  private devTemplate: string | undefined
  /** when each image was last in use (a container recorded from it, or starting), by manifest digest */
  private readonly lastUsed = new Map<string, number>()
  /** container starts under way: an image may be pulled but not yet recorded */
  private starting = 0
  private gcTimer: TimerHandle | undefined
  private logTimer: TimerHandle | undefined
  private hostResolv: string | undefined
  /** mount, umount, cp and mknod, without a process started from shoald for each */
  private readonly shell: HostShell

  constructor (opts: NativeRuntimeOptions) {
    this.opts = opts
    this.pods = new ProcessRuntime({ dataDir: opts.dataDir, nodeName: opts.nodeName, clock: opts.clock, log: opts.log, ...(opts.podCidr !== undefined ? { podCidr: opts.podCidr } : {}) })
    this.puller = opts.puller ?? new ImagePuller({ cacheDir: join(opts.dataDir, 'images') })
    this.rootMode = opts.rootMode
    this.shell = new HostShell(opts.tools?.busybox)
  }

  usePodCidr (cidr: string): void { this.pods.usePodCidr(cidr) }

  async init (): Promise<void> {
    await this.pods.init()
    await mkdir(this.containersDir(), { recursive: true })
    await mkdir(this.rootsDir(), { recursive: true })
    const dev = await makeDevTemplate(join(this.opts.dataDir, 'native', 'dev'), this.shell.run)
    this.devTemplate = dev.dir
    if (dev.problem !== undefined) this.opts.log.warn({ event: 'kubelet.runtime.dev', err: dev.problem }, `no /dev template for native containers (${dev.problem}); each container makes its own /dev`)
    for (const rec of await loadRecords<NativeRecord>(this.containersDir(), this.opts.log)) {
      this.records.set(rec.id, rec)
      if (rec.state !== 'running') continue
      if (rec.gatePid === undefined || rec.gateStartTicks === undefined || rec.exitFile === undefined) {
        // An older shoald's, with no way to learn its exit: what is left of it is killed, and the kubelet starts the container again.
        const killed = await killStale(this.opts.layout, rec.id, this.opts.clock)
        this.markExited(rec, 137, 'Error', `shoald restarted; this container's record cannot be adopted${killed > 0 ? ` (killed ${killed} processes)` : ''}`)
        await this.persist(rec)
        continue
      }
      // Adopted, running or not: one that ended while shoald was down is found gone at once and reported as it ended.
      const sandbox = adoptSandbox(this.opts.layout, { id: rec.id, pid: rec.gatePid, startTicks: rec.gateStartTicks, exitFile: rec.exitFile }, this.opts.clock, {
        pollMs: this.opts.adoptPollMs ?? 250,
        watching: () => !this.closed
      })
      this.watch(rec, sandbox)
      this.opts.log.info({ event: 'kubelet.container.adopted', id: rec.id, pod: `${rec.podNamespace}/${rec.podName}`, container: rec.containerName, pid: rec.gatePid },
        `adopted ${rec.podNamespace}/${rec.podName}/${rec.containerName} (sandbox ${rec.id}, pid ${rec.gatePid})`)
    }
    // A root no record names was being made when an earlier shoald stopped: its mount and files go.
    for (const name of await readdir(this.rootsDir())) {
      if (!this.records.has(name)) await removeRoot(join(this.rootsDir(), name), this.shell.run)
    }
    this.scheduleImageGc()
    this.scheduleLogCheck()
  }

  /**
   * Removes the cached images (their blobs and unpacked roots) that no
   * container record has named for imageGcDelayMs (records stay until the
   * kubelet removes a container, exited ones included); never while a
   * container is starting. Returns the references removed.
   */
  async collectImages (): Promise<string[]> {
    if (this.starting > 0) return []
    const now = this.opts.clock.now()
    const delay = this.opts.imageGcDelayMs ?? 3 * 60_000
    const inUse = new Set<string>()
    for (const rec of this.records.values()) {
      const digest = digestOf(rec)
      if (digest === undefined) continue
      inUse.add(digest)
      this.lastUsed.set(digest, now)
    }
    // An image found in the cache at start counts as used then: its last use before is unknown.
    for (const image of await this.puller.content.images()) {
      if (!this.lastUsed.has(image.manifestDigest)) this.lastUsed.set(image.manifestDigest, now)
      if (now - (this.lastUsed.get(image.manifestDigest) as number) < delay) inUse.add(image.manifestDigest)
    }
    if (this.starting > 0) return []
    const { removedImages } = await this.puller.gc(inUse)
    for (const digest of [...this.lastUsed.keys()]) if (!inUse.has(digest)) this.lastUsed.delete(digest)
    if (removedImages.length > 0) {
      this.opts.log.info({ event: 'kubelet.image.gc', removed: removedImages }, `removed ${removedImages.length} unused image${removedImages.length === 1 ? '' : 's'}: ${removedImages.join(', ')}`)
    }
    return removedImages
  }

  /** Every second, each running container's log past maxLogBytes is rotated (the container writes it itself, through its own descriptor). */
  private scheduleLogCheck (): void {
    if (this.closed) return
    this.logTimer = this.opts.clock.setTimeout(() => {
      void (async () => {
        for (const rec of [...this.records.values()]) {
          if (rec.state === 'running') await rotateIfLarge(rec.logFile, this.opts.maxLogBytes ?? MAX_LOG_BYTES).catch(() => false)
        }
      })().finally(() => { this.scheduleLogCheck() })
    }, 1000)
  }

  private scheduleImageGc (): void {
    if (this.closed) return
    this.gcTimer = this.opts.clock.setTimeout(() => {
      void this.collectImages().catch(err => {
        this.opts.log.warn({ event: 'kubelet.image.gc', err: (err as Error).message }, `image garbage collection failed: ${(err as Error).message}`)
      }).finally(() => { this.scheduleImageGc() })
    }, this.opts.imageGcIntervalMs ?? 60_000)
  }

  close (): void {
    this.closed = true
    if (this.gcTimer !== undefined) this.opts.clock.clearTimeout(this.gcTimer)
    if (this.logTimer !== undefined) this.opts.clock.clearTimeout(this.logTimer)
    this.shell.close()
    this.pods.close()
  }

  onExit (listener: (rec: ContainerRecord) => void): void { this.listeners.push(listener) }

  async ensureSandbox (pod: Pod): Promise<{ ip: string }> { return await this.pods.ensureSandbox(pod) }
  async removeSandbox (podUid: string): Promise<void> { await this.pods.removeSandbox(podUid) }
  async releaseAddress (podUid: string): Promise<void> { await this.pods.releaseAddress(podUid) }
  async listSandboxes (): Promise<string[]> { return await this.pods.listSandboxes() }

  async startContainer (pod: Pod, spec: ContainerSpec, attempt: number, start: StartOptions): Promise<ContainerRecord> {
    const podUid = pod.metadata.uid ?? ''
    if (!isUid(podUid)) throw new Error(`${JSON.stringify(podUid)} is not a pod uid`)
    const dir = join(this.opts.dataDir, 'pods', podUid, spec.name)
    await mkdir(dir, { recursive: true })
    this.starting++
    try {
      return await this.start(pod, podUid, dir, spec, attempt, start)
    } finally {
      this.starting--
    }
  }

  private async start (pod: Pod, podUid: string, dir: string, spec: ContainerSpec, attempt: number, start: StartOptions): Promise<ContainerRecord> {
    const began = this.opts.clock.now()
    const image = await this.pull(spec.image ?? '', spec.imagePullPolicy, start.pullSecrets ?? [])
    this.lastUsed.set(image.manifestDigest, began)
    const id = randomBytes(8).toString('hex')
    const rec: NativeRecord = {
      id, podUid, podNamespace: pod.metadata.namespace ?? 'default', podName: pod.metadata.name ?? '',
      containerName: spec.name, attempt, state: 'running', startedAt: this.opts.clock.now(),
      imageID: `${image.reference.replace(/[:@][^/]*$/, '')}@${image.manifestDigest}`,
      env: {}, uid: 0, gid: 0, root: rootIn(join(this.rootsDir(), id)), logFile: join(dir, `${attempt}.log`), exitFile: this.exitFile(id)
    }
    let sandbox: RunningSandbox
    let pulledAt = 0
    let rootAt = 0
    try {
      pulledAt = this.opts.clock.now()
      const root = await this.makeRoot(await this.puller.rootOf(image), join(this.rootsDir(), id))
      rootAt = this.opts.clock.now()
      const c = containerOf(pod, spec.name)
      const { uid, gid } = await resolveUser(pod, c, image.config.user, root)
      if (uid === 0 && this.opts.allowRoot !== true) {
        return await this.cannotRun(rec, 'the container asks for uid 0, which in a native sandbox is the host\'s root (no user namespace yet): this peer runs it only with --allow-privileged')
      }
      const argv = resolveArgv(spec, image.config)
      if (argv.length === 0) return await this.cannotRun(rec, 'no command specified: the container has no command and its image no Entrypoint or Cmd')
      Object.assign(rec, { uid, gid, env: resolveEnv(image.config.env, start.env) })
      // The files the kubelet manages in every container: the resolver (the cluster DNS), hosts and hostname.
      await writeInRoot(root, '/etc/resolv.conf', resolvConfOf(pod, this.opts.dns?.(rec.podNamespace), await this.hostResolvConf()))
      await writeInRoot(root, '/etc/hosts', hostsOf(pod, start.env.POD_IP))
      await writeInRoot(root, '/etc/hostname', `${hostnameOf(pod)}\n`)
      await openEmptyDirs(pod, this.opts.dataDir, podUid)
      const mounts = await openMounts(pod, start.mounts ?? [], join(this.opts.dataDir, 'pods', podUid, 'volumes'), this.opts.allowHostPaths)
      const fd = openSync(rec.logFile, 'a')
      try {
        sandbox = await startSandbox(this.opts.layout, {
          id,
          rootfs: root,
          hostname: hostnameOf(pod),
          uid,
          gid,
          workingDir: spec.workingDir !== undefined && spec.workingDir !== '' ? spec.workingDir : image.config.workingDir !== '' ? image.config.workingDir : '/',
          argv,
          env: rec.env,
          mounts,
          limits: limitsOf(spec, this.opts.pidsLimit ?? DEFAULT_PIDS_LIMIT),
          stdout: fd,
          stderr: fd,
          exitFile: this.exitFile(id),
          ...(mounts.length > 0 ? { volumeStaging: await this.stagingDir(id) } : {}),
          ...(this.devTemplate !== undefined ? { devTemplate: this.devTemplate } : {})
        }, this.opts.clock, { ...this.opts.tools, run: this.shell.run })
      } finally {
        closeSync(fd)
        for (const m of mounts) closeSync(m.fd)
      }
    } catch (err) {
      if (err instanceof UserError) return await this.cannotRun(rec, err.message)
      return await this.cannotRun(rec, `${(err as Error).name}: ${(err as Error).message}`)
    }
    Object.assign(rec, { gatePid: sandbox.pid, gateStartTicks: sandbox.startTicks })
    this.records.set(id, rec)
    this.watch(rec, sandbox)
    await this.persist(rec)
    const ms = (a: number, b: number): number => Math.round(b - a)
    const now = this.opts.clock.now()
    this.opts.log.debug({ event: 'kubelet.container.started', id, pod: `${rec.podNamespace}/${rec.podName}`, container: spec.name, attempt, pid: sandbox.pid, uid: rec.uid,
      pullMs: ms(began, pulledAt), rootMs: ms(pulledAt, rootAt), sandboxMs: ms(rootAt, now), root: this.rootMode },
      `started ${rec.podNamespace}/${rec.podName}/${spec.name} in a sandbox (pid ${sandbox.pid}, uid ${rec.uid})`)
    return publicRecord(rec)
  }

  async stopContainer (id: string, graceMs: number): Promise<void> {
    const rec = this.records.get(id)
    if (rec === undefined || rec.state !== 'running') return
    const sandbox = this.sandboxes.get(id)
    if (sandbox !== undefined) await sandbox.stop(graceMs)
    await this.finished.get(id)
  }

  async removeContainer (id: string): Promise<void> {
    const rec = this.records.get(id)
    if (rec === undefined) return
    if (rec.state === 'running') await this.stopContainer(id, 0)
    this.records.delete(id)
    this.finished.delete(id)
    const digest = digestOf(rec)
    if (digest !== undefined) this.lastUsed.set(digest, this.opts.clock.now())
    await rm(this.recordFile(id), { force: true })
    await rm(this.exitFile(id), { force: true })
    await rm(rec.logFile, { force: true })
    await rm(`${rec.logFile}.1`, { force: true })
    // Its overlay unmounted; the sandbox's other mounts lived in its own namespace, and rm does not follow links.
    await removeRoot(join(this.rootsDir(), rec.id), this.shell.run)
  }

  async listContainers (): Promise<ContainerRecord[]> {
    return [...this.records.values()].map(publicRecord)
  }

  async logs (id: string, opts: { tailLines?: number } = {}): Promise<string> {
    const rec = this.records.get(id)
    if (rec === undefined) throw new Error(`no container ${id}`)
    return tailBytes(await readLog(rec.logFile), opts.tailLines).toString('utf8')
  }

  async logStream (id: string, opts: { tailLines?: number, follow: boolean }): Promise<Readable> {
    const rec = this.records.get(id)
    if (rec === undefined) throw new Error(`no container ${id}`)
    return new LogFollower(rec.logFile, opts, this.opts.clock, () => this.records.get(id) !== rec || rec.state === 'exited')
  }

  async exec (id: string, argv: string[], timeoutMs: number): Promise<ExecResult> {
    const rec = this.records.get(id)
    const sandbox = this.sandboxes.get(id)
    if (rec === undefined || rec.state !== 'running' || sandbox === undefined) throw new Error(`container ${id} is not running`)
    if (argv.length === 0) throw new Error('exec needs a command')
    // Right after the start, the sandbox may still be setting up (no pid 1 yet, or volumes not yet mounted): wait for its workload.
    if (!await sandbox.started) throw new Error(`container ${id} is not running`)
    const init = await sandbox.initPid()
    if (init === undefined) throw new Error(`container ${id} is not running`)
    const prog = await findInRoot(rec.root, argv[0] as string, rec.env.PATH ?? DEFAULT_PATH)
    if (prog === undefined) return { exitCode: 127, stdout: '', stderr: `${argv[0]}: executable file not found in $PATH\n` }
    const busybox = this.opts.tools?.busybox ?? '/usr/bin/busybox'
    // The static busybox, because its applets (env) still run inside the root; env -i so that only the container's environment reaches the command.
    const pairs = Object.entries(rec.env).map(([k, v]) => `${k}=${v}`)
    // no_new_privs, as for the container itself: a setuid binary in its image gains nothing
    const args = ['sh', '-c', EXEC_GATE, 'shoal-exec', this.opts.tools?.setpriv ?? '/usr/bin/setpriv', '--no-new-privs', '--', busybox, 'nsenter', '-t', String(init), '-m', '-u', '-i', '-p', '-r', '-w',
      '-S', String(rec.uid), '-G', String(rec.gid), '--', 'env', '-i', '--', ...pairs, prog, ...argv.slice(1)]
    const child = spawn(busybox, args, { cwd: '/', env: { PATH: HOST_PATH }, detached: true, stdio: ['ignore', 'pipe', 'pipe', 'pipe'] })
    const stdout = new ExecOutput()
    const stderr = new ExecOutput()
    child.stdout?.on('data', (b: Buffer) => { stdout.add(b) })
    child.stderr?.on('data', (b: Buffer) => { stderr.add(b) })
    const result = new Promise<ExecResult>(resolve => {
      const timer = this.opts.clock.setTimeout(() => { if (child.pid !== undefined) signalGroup(child.pid, 'SIGKILL') }, timeoutMs)
      child.once('error', err => {
        this.opts.clock.clearTimeout(timer)
        resolve({ exitCode: 126, stdout: stdout.text(), stderr: stderr.text() + err.message })
      })
      child.once('close', (code, signal) => {
        this.opts.clock.clearTimeout(timer)
        resolve({ exitCode: code ?? 128 + (signal === null ? 9 : constants.signals[signal]), stdout: stdout.text(), stderr: stderr.text() })
      })
    })
    const gate = child.stdio[3]
    if (child.pid !== undefined && gate !== null && gate !== undefined && 'write' in gate) {
      gate.on('error', () => {})
      try {
        await sandbox.cgroup.addProcess(child.pid)
        gate.end('go\n')
      } catch (err) {
        // The container is going away: the gate sees EOF and gives up.
        gate.end()
        stderr.add(Buffer.from(`cannot join the container's cgroup: ${(err as Error).message}\n`))
      }
    }
    return await result
  }

  // ---- internals -----------------------------------------------------------

  /** A root for one container attempt in `dir`: an overlay of the image, or a copy where no overlay could be mounted (found out once). */
  private async makeRoot (image: string, dir: string): Promise<string> {
    if (this.rootMode !== 'copy') {
      try {
        const root = await makeRoot(image, dir, 'overlay', this.shell.run)
        if (this.rootMode === undefined) {
          this.rootMode = 'overlay'
          this.opts.log.info({ event: 'kubelet.runtime.rootfs', mode: 'overlay' }, 'native containers start from overlay mounts of their images')
        }
        return root
      } catch (err) {
        // It worked before: this failure is this container's own.
        if (this.rootMode === 'overlay') throw err
        await removeRoot(dir, this.shell.run)
        if (this.rootMode === undefined) {
          this.rootMode = 'copy'
          this.opts.log.warn({ event: 'kubelet.runtime.rootfs', mode: 'copy', err: (err as Error).message }, `no overlay mount here (${(err as Error).message.split('\n')[0]}); each native container starts from a copy of its image`)
        }
      }
    }
    return await makeRoot(image, dir, 'copy', this.shell.run)
  }

  /** An empty directory beside the container's root (never inside it) for its volumes' staging mounts. */
  private async stagingDir (id: string): Promise<string> {
    const dir = join(this.rootsDir(), id, 'volumes')
    await mkdir(dir, { mode: 0o700 })
    return dir
  }

  /** The host's /etc/resolv.conf, for pods with dnsPolicy Default or when there is no cluster DNS on port 53. */
  private async hostResolvConf (): Promise<string> {
    this.hostResolv ??= await readFile('/etc/resolv.conf', 'utf8').catch(() => '')
    return this.hostResolv
  }

  private containersDir (): string { return join(this.opts.dataDir, 'native', 'containers') }
  private rootsDir (): string { return join(this.opts.dataDir, 'native', 'roots') }
  private recordFile (id: string): string { return join(this.containersDir(), `${id}.json`) }
  private exitFile (id: string): string { return join(this.containersDir(), `${id}.exit`) }

  /** Tracks a started or adopted sandbox until its exit is recorded. */
  private watch (rec: NativeRecord, sandbox: RunningSandbox): void {
    this.sandboxes.set(rec.id, sandbox)
    this.finished.set(rec.id, sandbox.exited.then(async exit => { await this.finish(rec, exit) }, async (err: Error) => {
      await this.finish(rec, { exitCode: 128, oomKilled: false, reason: 'Error', message: err.message, usage: { memoryBytes: 0, cpuNanos: 0 } })
    }))
  }

  /** The image as the policy says, pulled at most once at a time; a failure is an ImagePullError with the registry's message. */
  private async pull (reference: string, policy: PullPolicy | undefined, pullSecrets: readonly string[]): Promise<PulledImage> {
    const key = `${reference}\0${policy ?? ''}\0${pullSecrets.join('\0')}`
    let pulling = this.pulls.get(key)
    if (pulling === undefined) {
      const credentials = (registry: string): Credentials | undefined => {
        for (const config of pullSecrets) {
          try {
            const found = credentialsFor(config, registry)
            if (found !== undefined) return found
          } catch {}
        }
        return undefined
      }
      pulling = this.puller.pull(reference, { credentials, ...(policy !== undefined ? { policy } : {}) })
      this.pulls.set(key, pulling)
      void pulling.then(() => { this.pulls.delete(key) }, () => { this.pulls.delete(key) })
    }
    try {
      return await pulling
    } catch (err) {
      if (err instanceof PullError) throw new ImagePullError(err.reason, err.message)
      if (err instanceof InvalidReferenceError) throw new ImagePullError('ErrImagePull', err.message)
      throw new ImagePullError('ErrImagePull', `${reference}: ${(err as Error).message}`)
    }
  }

  private async persist (rec: NativeRecord): Promise<void> {
    await saveRecord(this.recordFile(rec.id), rec)
  }

  private markExited (rec: NativeRecord, exitCode: number, reason: string, message?: string): void {
    Object.assign(rec, { state: 'exited', finishedAt: this.opts.clock.now(), exitCode, reason })
    if (message !== undefined) rec.message = message
  }

  private async cannotRun (rec: NativeRecord, message: string): Promise<ContainerRecord> {
    Object.assign(rec, { state: 'exited', finishedAt: rec.startedAt, exitCode: 128, reason: 'ContainerCannotRun', message })
    this.records.set(rec.id, rec)
    await this.persist(rec)
    return publicRecord(rec)
  }

  private async finish (rec: NativeRecord, exit: SandboxExit): Promise<void> {
    this.sandboxes.delete(rec.id)
    if (rec.state === 'exited') return
    this.markExited(rec, exit.exitCode, exit.reason, exit.message)
    if (exit.cleanupError !== undefined) this.opts.log.warn({ event: 'kubelet.runtime.cgroup', id: rec.id, err: exit.cleanupError }, `container ${rec.id}: ${exit.cleanupError}`)
    await this.persist(rec).catch(err => {
      this.opts.log.warn({ event: 'kubelet.runtime.persist', id: rec.id, err: (err as Error).message }, `could not persist container ${rec.id}`)
    })
    if (this.records.get(rec.id) !== rec) return
    for (const l of this.listeners) l(publicRecord(rec))
  }
}

/**
 * Makes the pod's emptyDir volumes world-writable (0777, as Kubernetes makes
 * them): the kubelet creates them root-owned 0755, and a native container
 * runs as nobody unless the pod asks for root, so it could not write there.
 * Only a real directory the kubelet made (<dataDir>/pods/<uid>/volumes/<name>) is changed; a link is left alone.
 */
async function openEmptyDirs (pod: Pod, dataDir: string, podUid: string): Promise<void> {
  for (const v of pod.spec?.volumes ?? []) {
    if (v.emptyDir === undefined || v.name === '' || v.name.includes('/') || v.name === '.' || v.name === '..') continue
    const dir = join(dataDir, 'pods', podUid, 'volumes', v.name)
    const st = await lstat(dir).catch(() => undefined)
    if (st?.isDirectory() === true && (st.mode & 0o777) !== 0o777) await chmod(dir, 0o777)
  }
}

/**
 * The mounts, each opened (O_PATH, links followed) and then checked by
 * where its descriptor really leads: a volume other than hostPath must stay
 * inside the pod's own volumes directory (a container that can write a
 * volume could plant a symbolic link there for a subPath to follow to the
 * host's /, Kubernetes' CVE-2017-1002101), and a hostPath inside an
 * --allow-host-path directory when there is a list. The sandbox mounts the
 * descriptor, not the path, so a link swapped in after this check is never
 * followed (CVE-2021-25741). On failure every descriptor opened is closed;
 * otherwise the caller closes them.
 */
async function openMounts (pod: Pod, mounts: Mount[], volumesDir: string, allowHostPaths: readonly string[] | undefined): Promise<Array<BindMount & { fd: number }>> {
  const base = await realpath(volumesDir).catch(() => volumesDir)
  const allowed = allowHostPaths === undefined ? undefined : await Promise.all(allowHostPaths.map(async d => await realpath(d).catch(() => undefined)))
  const out: Array<BindMount & { fd: number }> = []
  try {
    for (const m of mounts) {
      const fd = openSync(m.hostPath, O_PATH)
      out.push({ hostPath: m.hostPath, containerPath: m.mountPath, readOnly: m.readOnly, fd })
      // What the descriptor refers to now, whatever the path has become since.
      const real = readlinkSync(`/proc/self/fd/${fd}`)
      if (real.endsWith(' (deleted)')) throw new Error(`the volume mount ${m.mountPath} (volume ${m.name}): ${m.hostPath} was removed while it was opened`)
      const volume = (pod.spec?.volumes ?? []).find(v => v.name === m.name)
      if (volume?.hostPath === undefined) {
        if (!real.startsWith(base + sep)) throw new Error(`the volume mount ${m.mountPath} (volume ${m.name}) resolves to ${real}, outside the pod's volumes: a symbolic link in the volume is not followed out of it`)
      } else if (allowed !== undefined && !allowed.some(d => d !== undefined && (real === d || real.startsWith(d === '/' ? '/' : d + sep)))) {
        throw new Error(`the volume mount ${m.mountPath} (volume ${m.name}): hostPath ${m.hostPath} resolves to ${real}, which is not under a directory given with --allow-host-path`)
      }
      out[out.length - 1] = { ...out[out.length - 1] as BindMount & { fd: number }, hostPath: real }
    }
    return out
  } catch (err) {
    for (const m of out) closeSync(m.fd)
    throw err
  }
}

/** The manifest digest of a container's image (its imageID is `name@sha256:…`). */
function digestOf (rec: ContainerRecord): string | undefined {
  const at = rec.imageID?.lastIndexOf('@') ?? -1
  return at >= 0 ? rec.imageID?.slice(at + 1) : undefined
}

function signalGroup (pid: number, signal: NodeJS.Signals): void {
  try { process.kill(-pid, signal) } catch {}
}

/** The container path of `name` in `root` along `path`, as the sandbox's setup finds a command; links are not followed on the host. */
async function findInRoot (root: string, name: string, path: string): Promise<string | undefined> {
  if (name.includes('=') || name === '') return undefined
  if (name.includes('/')) return name
  for (const dir of path.split(':')) {
    if (!dir.startsWith('/') || dir.split('/').includes('..')) continue
    try {
      await lstat(join(root, dir, name))
      return `${dir.replace(/\/+$/, '')}/${name}`
    } catch {}
  }
  return undefined
}

/** SIGKILLs what is left in the cgroup shoal/<name> (a container of an earlier shoald), and removes it; how many processes it killed. */
export async function killStale (layout: CgroupLayout, name: string, clock: Clock): Promise<number> {
  const dirs = layout.version === 2
    ? [join(layout.root, 'shoal', name)]
    : [...new Set(Object.values(layout.mounts).map(m => join(m, 'shoal', name)))]
  let killed = 0
  for (let round = 0; round < 50; round++) {
    const pids = new Set<number>()
    for (const dir of dirs) {
      const text = await readFile(join(dir, 'cgroup.procs'), 'utf8').catch(() => '')
      for (const l of text.split('\n')) if (l !== '') pids.add(Number(l))
    }
    if (pids.size === 0) break
    for (const pid of pids) {
      try { process.kill(pid, 'SIGKILL'); killed++ } catch {}
    }
    await new Promise<void>(resolve => { clock.setTimeout(resolve, 20) })
  }
  for (const dir of dirs) await rmdir(dir).catch(() => {})
  return killed
}

