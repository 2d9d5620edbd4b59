// The Docker runtime: pods as containers in a Docker engine, through
// dockerode. Each pod has a sandbox container (the pause image, pause-
// image.ts) that owns the pod's network namespace on Shoal's bridge network
// for this node (`shoal-<node>`, subnet = the node's pod range); the pod's
// containers join it with NetworkMode `container:<sandbox id>`, so they
// share one address and reach each other on localhost. Everything is
// labelled (shoal.node, shoal.role, shoal.pod.uid, shoal.container.name,
// shoal.attempt): after a daemon restart the containers are found again by
// those labels and adopted, and several peers can share one engine without
// touching each other's containers. Limits: resources.limits.memory is
// HostConfig.Memory, limits.cpu NanoCpus, requests.cpu CpuShares. Volumes
// are bind mounts of the kubelet's host directories, read-only (`:ro`) for
// a readOnly mount and always for configMap and secret volumes (Mount's
// readOnly, set by volumes.ts): a container cannot plant links there for
// the kubelet's next refresh to follow. Exits come from the
// engine's event stream, with a periodic list as a safety net.
// Images: present ones are used; missing ones are pulled (imagePullPolicy as
// in Kubernetes; Always falls back to a present image when the pull fails,
// so that a cluster without a registry keeps working, with a warning).
// May import: protocol/, daemon/clock, daemon/log,
// ./runtime.ts, ./pause-image.ts, ./ipam.ts.
import Docker from 'dockerode'
import { join } from 'node:path'
import { PassThrough } from 'node:stream'
import type { Readable } from 'node:stream'
import type { Pod } from '../../protocol/core-v1.ts'
import { every } from '../clock/clock.ts'
import type { Clock } from '../clock/clock.ts'
import type { Logger } from '../log/log.ts'
import { bytesOf, cpuMillis } from '../../protocol/quantity.ts'
import { cidrRange, defaultPodCidr, Ipam } from './ipam.ts'
import { PAUSE_IMAGE, pauseTar } from './pause-image.ts'
import { ExecOutput, ImagePullError } from './runtime.ts'
import type { ContainerRecord, ContainerSpec, ExecResult, Runtime, StartOptions } from './runtime.ts'

export interface DockerRuntimeOptions {
  nodeName: string
  /** where pod addresses are recorded (ipam.ts); without it the engine picks them */
  dataDir?: string
  /** the node's pod range, the subnet of its Docker network; default a /24 in 10.128.0.0/10 by a hash of the node's name, another if that one is taken */
  podCidr?: string
  clock: Clock
  log: Logger
  /** default: DOCKER_HOST, else /var/run/docker.sock */
  docker?: Docker
  /** the sandbox image (default shoal/pause:1, made on first use) */
  pauseImage?: string
  /** how often the engine's containers are listed, besides its events (default 5000 ms) */
  pollMs?: number
  /** the resolver and search path of a new pod in `namespace` (the cluster DNS), once known */
  dns?: (namespace: string) => { servers: string[], search: string[] } | undefined
}

const L = {
  node: 'shoal.node',
  role: 'shoal.role',
  uid: 'shoal.pod.uid',
  namespace: 'shoal.pod.namespace',
  pod: 'shoal.pod.name',
  container: 'shoal.container.name',
  attempt: 'shoal.attempt'
} as const

interface Sandbox { id: string, ip: string }

/** Whether an error from the engine is its 404 (or 304: already so). */
function status (err: unknown): number | undefined {
  return (err as { statusCode?: number }).statusCode
}

function message (err: unknown): string {
  const e = err as { json?: { message?: string }, message?: string }
  return String(e.json?.message ?? e.message ?? err).trim()
}

/** Kubernetes' default pull policy: Always for :latest or no tag, else IfNotPresent. */
export function pullPolicy (image: string, given: string | undefined): string {
  if (given !== undefined && given !== '') return given
  if (image.includes('@')) return 'IfNotPresent'
  const last = image.slice(image.lastIndexOf('/') + 1)
  return !last.includes(':') || last.endsWith(':latest') ? 'Always' : 'IfNotPresent'
}

/** A docker name part: [a-zA-Z0-9_.-]. */
function part (s: string): string { return s.replace(/[^a-zA-Z0-9_.-]/g, '-') }

export class DockerRuntime implements Runtime {
  readonly name = 'docker'
  readonly docker: Docker
  private readonly opts: Required<Omit<DockerRuntimeOptions, 'docker' | 'dns' | 'podCidr' | 'dataDir'>> & Pick<DockerRuntimeOptions, 'dns' | 'podCidr' | 'dataDir'>
  private ipam: Ipam | undefined
  readonly network: string
  private podCidrInUse: string
  private readonly records = new Map<string, ContainerRecord>()
  private readonly sandboxes = new Map<string, Sandbox>()
  /** sandboxes being made, by pod uid, so that two passes make one */
  private readonly making = new Map<string, Promise<Sandbox>>()
  private readonly listeners: Array<(rec: ContainerRecord) => void> = []
  private readonly pulls = new Map<string, Promise<void>>()
  private events: Readable | undefined
  private stopPoll: (() => void) | undefined
  private closed = false

  constructor (opts: DockerRuntimeOptions) {
    this.docker = opts.docker ?? new Docker()
    this.opts = { pauseImage: PAUSE_IMAGE, pollMs: 5000, ...opts }
    this.network = `shoal-${part(opts.nodeName)}`
    this.podCidrInUse = opts.podCidr ?? defaultPodCidr(opts.nodeName, 'docker')
  }

  usePodCidr (cidr: string): void {
    this.opts.podCidr = cidr
    this.podCidrInUse = cidr
  }

  /** The pod range the node's network really has (it may predate a changed flag). */
  get podCidr (): string { return this.podCidrInUse }

  /** Whether an engine answers at all (for --runtime auto). */
  async available (timeoutMs = 2000): Promise<boolean> {
    let timer: ReturnType<typeof setTimeout> | undefined
    try {
      return await Promise.race([
        this.docker.ping().then(() => true),
        new Promise<boolean>(resolve => { timer = setTimeout(() => { resolve(false) }, timeoutMs) })
      ])
    } catch {
      return false
    } finally {
      clearTimeout(timer)
    }
  }

  async init (): Promise<void> {
    await this.ensureNetwork()
    if (this.opts.dataDir !== undefined) {
      this.ipam = new Ipam(join(this.opts.dataDir, 'pods', 'ipam.json'), this.podCidrInUse)
      await this.ipam.load()
    }
    await this.ensurePauseImage()
    const found = await this.docker.listContainers({ all: true, filters: { label: [`${L.node}=${this.opts.nodeName}`] } })
    for (const c of found) {
      const labels = c.Labels ?? {}
      if (labels[L.role] === 'sandbox') {
        const uid = labels[L.uid] ?? ''
        if (c.State !== 'running') {
          await this.forceRemove(c.Id)
          continue
        }
        const ip = c.NetworkSettings?.Networks?.[this.network]?.IPAddress ?? ''
        this.sandboxes.set(uid, { id: c.Id, ip })
        continue
      }
      const rec = await this.inspectRecord(c.Id)
      // Made but never started (the daemon died in between): nothing ran, so it can go.
      if (rec === undefined || (c.State === 'created' && rec.message === undefined)) {
        await this.forceRemove(c.Id)
        continue
      }
      this.records.set(rec.id, rec)
    }
    this.watchEvents()
    this.stopPoll = every(this.opts.clock, this.opts.pollMs, () => { void this.poll() })
  }

  close (): void {
    this.closed = true
    this.stopPoll?.()
    this.stopPoll = undefined
    this.events?.destroy()
    this.events = undefined
  }

  onExit (listener: (rec: ContainerRecord) => void): void {
    this.listeners.push(listener)
  }

  async ensureSandbox (pod: Pod): Promise<{ ip: string }> {
    const uid = pod.metadata.uid ?? ''
    const had = this.sandboxes.get(uid)
    if (had !== undefined) return { ip: had.ip }
    let making = this.making.get(uid)
    if (making === undefined) {
      making = this.makeSandbox(pod).finally(() => this.making.delete(uid))
      this.making.set(uid, making)
    }
    return { ip: (await making).ip }
  }

  private async makeSandbox (pod: Pod): Promise<Sandbox> {
    const uid = pod.metadata.uid ?? ''
    const ns = pod.metadata.namespace ?? 'default'
    const name = pod.metadata.name ?? ''
    const spec = pod.spec
    const dns = spec?.dnsPolicy === 'Default' ? undefined : this.opts.dns?.(ns)
    // Our address, in turn, so that a re-created pod gets a new one (the engine would reuse the lowest free).
    const ip = await this.ipam?.allocate(uid)
    const c = await this.docker.createContainer({
      name: `shoal_${part(this.opts.nodeName)}_${part(ns)}_${part(name)}_POD_${uid.slice(0, 8)}`,
      Image: this.opts.pauseImage,
      Cmd: ['/pause'],
      Hostname: (spec?.hostname ?? name).slice(0, 63),
      Labels: { [L.node]: this.opts.nodeName, [L.role]: 'sandbox', [L.uid]: uid, [L.namespace]: ns, [L.pod]: name },
      HostConfig: {
        NetworkMode: this.network,
        IpcMode: 'shareable',
        ...(dns !== undefined ? { Dns: dns.servers, DnsSearch: dns.search, DnsOptions: ['ndots:5'] } : {})
      },
      ...(ip !== undefined ? { NetworkingConfig: { EndpointsConfig: { [this.network]: { IPAMConfig: { IPv4Address: ip } } } } } : {})
    }).catch(async err => {
      await this.ipam?.free(uid)
      // A leftover of ours under that name (made, then the daemon died): replace it.
      if (status(err) !== 409) throw err
      await this.forceRemove(`shoal_${part(this.opts.nodeName)}_${part(ns)}_${part(name)}_POD_${uid.slice(0, 8)}`)
      throw new Error(`a stale sandbox of pod ${ns}/${name} was in the way and has been removed; retrying`)
    })
    try {
      await c.start()
    } catch (err) {
      await this.forceRemove(c.id)
      await this.ipam?.free(uid)
      throw new Error(`cannot start the sandbox of pod ${ns}/${name}: ${message(err)}`)
    }
    const info = await c.inspect()
    const sandbox = { id: c.id, ip: info.NetworkSettings.Networks[this.network]?.IPAddress ?? '' }
    this.sandboxes.set(uid, sandbox)
    this.opts.log.debug({ event: 'kubelet.sandbox.started', pod: `${ns}/${name}`, id: c.id, ip: sandbox.ip }, `sandbox of ${ns}/${name} at ${sandbox.ip}`)
    return sandbox
  }

  async removeSandbox (podUid: string): Promise<void> {
    const s = this.sandboxes.get(podUid)
    await this.ipam?.free(podUid)
    if (s === undefined) return
    await this.forceRemove(s.id)
    this.sandboxes.delete(podUid)
  }

  async listSandboxes (): Promise<string[]> {
    return [...this.sandboxes.keys()]
  }

  async startContainer (pod: Pod, spec: ContainerSpec, attempt: number, start: StartOptions): Promise<ContainerRecord> {
    const uid = pod.metadata.uid ?? ''
    const ns = pod.metadata.namespace ?? 'default'
    const podName = pod.metadata.name ?? ''
    const image = spec.image ?? ''
    if (image === '') throw new ImagePullError('ErrImagePull', 'the container has no image')
    const sandbox = this.sandboxes.get(uid)
    if (sandbox === undefined) throw new Error(`pod ${ns}/${podName} has no sandbox`)
    await this.ensureImage(image, pullPolicy(image, spec.imagePullPolicy))
    const limits = spec.resources?.limits ?? {}
    const requests = spec.resources?.requests ?? {}
    const name = `shoal_${part(this.opts.nodeName)}_${part(ns)}_${part(podName)}_${part(spec.name)}_${attempt}_${uid.slice(0, 8)}`
    await this.forceRemove(name)
    const c = await this.docker.createContainer({
      name,
      Image: image,
      ...(spec.command !== undefined && spec.command.length > 0 ? { Entrypoint: spec.command } : {}),
      ...(spec.args !== undefined && spec.args.length > 0 ? { Cmd: spec.args } : {}),
      ...(spec.workingDir !== undefined ? { WorkingDir: spec.workingDir } : {}),
      Env: Object.entries(start.env).map(([k, v]) => `${k}=${v}`),
      Labels: {
        [L.node]: this.opts.nodeName,
        [L.role]: 'container',
        [L.uid]: uid,
        [L.namespace]: ns,
        [L.pod]: podName,
        [L.container]: spec.name,
        [L.attempt]: String(attempt)
      },
      HostConfig: {
        NetworkMode: `container:${sandbox.id}`,
        IpcMode: `container:${sandbox.id}`,
        Binds: (start.mounts ?? []).map(m => `${m.hostPath}:${m.mountPath}${m.readOnly ? ':ro' : ''}`),
        ...(limits.memory !== undefined ? { Memory: bytesOf(limits.memory) } : {}),
        ...(limits.cpu !== undefined ? { NanoCpus: cpuMillis(limits.cpu) * 1_000_000 } : {}),
        ...(requests.cpu !== undefined ? { CpuShares: Math.max(2, Math.round(cpuMillis(requests.cpu) * 1024 / 1000)) } : {}),
        LogConfig: { Type: 'json-file', Config: { 'max-size': '10m', 'max-file': '2' } }
      }
    })
    try {
      await c.start()
    } catch (err) {
      // The engine made it but cannot run it (no such executable, …): a crash, as the process runtime's ContainerCannotRun.
      const rec: ContainerRecord = {
        id: c.id, podUid: uid, podNamespace: ns, podName, containerName: spec.name, attempt,
        state: 'exited', startedAt: this.opts.clock.now(), finishedAt: this.opts.clock.now(), exitCode: 128, reason: 'ContainerCannotRun', message: message(err)
      }
      this.records.set(c.id, rec)
      return { ...rec }
    }
    const rec = await this.inspectRecord(c.id)
    if (rec === undefined) throw new Error(`container ${c.id} vanished after it started`)
    this.records.set(rec.id, rec)
    if (rec.state === 'exited') this.emit(rec)
    this.opts.log.debug({ event: 'kubelet.container.started', id: rec.id, pod: `${ns}/${podName}`, container: spec.name, attempt }, `started ${ns}/${podName}/${spec.name} (${rec.id.slice(0, 12)})`)
    return { ...rec }
  }

  async stopContainer (id: string, graceMs: number): Promise<void> {
    const rec = this.records.get(id)
    if (rec === undefined || rec.state !== 'running') return
    try {
      await this.docker.getContainer(id).stop({ t: Math.ceil(graceMs / 1000) })
    } catch (err) {
      if (status(err) !== 304 && status(err) !== 404) throw err
    }
    await this.refresh(id)
  }

  async removeContainer (id: string): Promise<void> {
    await this.forceRemove(id)
    this.records.delete(id)
  }

  async listContainers (): Promise<ContainerRecord[]> {
    return [...this.records.values()].map(r => ({ ...r }))
  }

  async logs (id: string, opts: { tailLines?: number } = {}): Promise<string> {
    const buf = await this.docker.getContainer(id).logs({ stdout: true, stderr: true, follow: false, ...(opts.tailLines !== undefined ? { tail: Math.max(0, opts.tailLines) } : {}) })
    return demuxInOrder(buf).toString()
  }

  async logStream (id: string, opts: { tailLines?: number, follow: boolean }): Promise<Readable> {
    const out = new PassThrough()
    if (!opts.follow) {
      out.end(await this.logs(id, opts))
      return out
    }
    const tail = opts.tailLines !== undefined ? { tail: Math.max(0, opts.tailLines) } : {}
    const src = await this.docker.getContainer(id).logs({ stdout: true, stderr: true, follow: true, ...tail }) as unknown as Readable
    this.docker.modem.demuxStream(src, out, out)
    src.once('end', () => out.end())
    src.once('error', err => out.destroy(err))
    out.once('close', () => { src.destroy() })
    return out
  }

  async exec (id: string, argv: string[], timeoutMs: number): Promise<ExecResult> {
    if (argv.length === 0) throw new Error('exec needs a command')
    const rec = this.records.get(id)
    if (rec === undefined || rec.state !== 'running') throw new Error(`container ${id} is not running`)
    const exec = await this.docker.getContainer(id).exec({ Cmd: argv, AttachStdout: true, AttachStderr: true })
    const stream = await exec.start({})
    const stdout = new PassThrough()
    const stderr = new PassThrough()
    // Each capped (ExecOutput): the rest is read and dropped, so the command runs to its end.
    const outText = new ExecOutput()
    const errText = new ExecOutput()
    stdout.on('data', (b: Buffer) => { outText.add(b) })
    stderr.on('data', (b: Buffer) => { errText.add(b) })
    this.docker.modem.demuxStream(stream, stdout, stderr)
    const finished = await new Promise<boolean>(resolve => {
      const timer = this.opts.clock.setTimeout(() => { stream.destroy(); resolve(false) }, timeoutMs)
      const done = (): void => { this.opts.clock.clearTimeout(timer); resolve(true) }
      stream.once('end', done)
      stream.once('close', done)
      stream.once('error', done)
    })
    if (!finished) return { exitCode: 137, stdout: outText.text(), stderr: `${errText.text()}command timed out after ${timeoutMs} ms` }
    // The engine records the exit code a moment after the stream ends.
    let code: number | null = null
    for (let i = 0; i < 20 && code === null; i++) {
      const info = await exec.inspect()
      code = info.Running ? null : info.ExitCode
      if (code === null) await new Promise<void>(resolve => { this.opts.clock.setTimeout(resolve, 25) })
    }
    return { exitCode: code ?? 1, stdout: outText.text(), stderr: errText.text() }
  }

  // ---- internals -----------------------------------------------------------

  private async ensureNetwork (): Promise<void> {
    const nets = await this.docker.listNetworks({ filters: { name: [this.network] } })
    const had = nets.find(n => n.Name === this.network)
    if (had !== undefined) {
      const subnet = had.IPAM?.Config?.[0]?.Subnet
      if (subnet !== undefined && subnet !== this.podCidrInUse) {
        if (this.opts.podCidr !== undefined) this.opts.log.warn({ event: 'kubelet.network.cidr', network: this.network, has: subnet, wanted: this.opts.podCidr }, `network ${this.network} keeps its range ${subnet} (wanted ${this.opts.podCidr}) while pods use it`)
        this.podCidrInUse = subnet
      }
      return
    }
    // A default range that another network (another peer on this engine) holds gives way to the next pick.
    for (let attempt = 0; ; attempt++) {
      const cidr = this.opts.podCidr ?? defaultPodCidr(this.opts.nodeName, 'docker', attempt)
      const gw = cidrRange(cidr).first - 1
      try {
        await this.docker.createNetwork({
          Name: this.network,
          Driver: 'bridge',
          CheckDuplicate: true,
          Labels: { [L.node]: this.opts.nodeName },
          IPAM: { Driver: 'default', Config: [{ Subnet: cidr, Gateway: [gw >>> 24, (gw >>> 16) & 255, (gw >>> 8) & 255, gw & 255].join('.') }] }
        })
      } catch (err) {
        if (this.opts.podCidr !== undefined || attempt >= 15 || !/overlap/i.test(message(err))) throw new Error(`cannot create the pod network ${this.network} (${cidr}): ${message(err)}`)
        continue
      }
      this.podCidrInUse = cidr
      this.opts.log.info({ event: 'kubelet.network.created', network: this.network, subnet: cidr }, `created pod network ${this.network} (${cidr})`)
      return
    }
  }

  private async ensurePauseImage (): Promise<void> {
    try {
      await this.docker.getImage(this.opts.pauseImage).inspect()
      return
    } catch (err) {
      if (status(err) !== 404) throw err
    }
    if (this.opts.pauseImage !== PAUSE_IMAGE) {
      await this.ensureImage(this.opts.pauseImage, 'IfNotPresent')
      return
    }
    const [repo, tag] = PAUSE_IMAGE.split(':')
    const stream = await this.docker.importImage(pauseTar() as unknown as string, { repo, tag })
    await new Promise<void>((resolve, reject) => {
      this.docker.modem.followProgress(stream, err => { if (err !== null) reject(err); else resolve() })
    })
    this.opts.log.info({ event: 'kubelet.image.pause', image: PAUSE_IMAGE }, `made the sandbox image ${PAUSE_IMAGE}`)
  }

  /** Makes sure `image` is present, pulling per `policy`; one pull per image at a time. */
  private async ensureImage (image: string, policy: string): Promise<void> {
    const present = await this.docker.getImage(image).inspect().then(() => true, err => {
      if (status(err) === 404) return false
      throw err
    })
    if (policy === 'Never') {
      if (present) return
      throw new ImagePullError('ErrImageNeverPull', `container image "${image}" is not present with pull policy of Never`)
    }
    if (present && policy !== 'Always') return
    let pull = this.pulls.get(image)
    if (pull === undefined) {
      pull = this.pull(image).finally(() => this.pulls.delete(image))
      this.pulls.set(image, pull)
    }
    try {
      await pull
    } catch (err) {
      if (present) {
        this.opts.log.warn({ event: 'kubelet.image.pull-failed', image, err: message(err) }, `could not pull ${image}; using the image already present`)
        return
      }
      throw new ImagePullError('ErrImagePull', `failed to pull image "${image}": ${message(err)}`)
    }
  }

  private async pull (image: string): Promise<void> {
    const stream = await this.docker.pull(image)
    await new Promise<void>((resolve, reject) => {
      this.docker.modem.followProgress(stream, err => { if (err !== null) reject(err); else resolve() })
    })
  }

  private async forceRemove (idOrName: string): Promise<void> {
    try {
      await this.docker.getContainer(idOrName).remove({ force: true, v: true })
    } catch (err) {
      if (status(err) !== 404 && status(err) !== 409) throw err
    }
  }

  /** The record of one of our containers, from the engine; undefined if gone or not a pod container. */
  private async inspectRecord (id: string): Promise<ContainerRecord | undefined> {
    let info: Docker.ContainerInspectInfo
    try {
      info = await this.docker.getContainer(id).inspect()
    } catch (err) {
      if (status(err) === 404) return undefined
      throw err
    }
    const labels = info.Config.Labels ?? {}
    if (labels[L.role] !== 'container') return undefined
    const st = info.State
    const running = st.Running || st.Restarting || st.Paused
    const startedAt = Date.parse(st.StartedAt)
    const rec: ContainerRecord = {
      id: info.Id,
      podUid: labels[L.uid] ?? '',
      podNamespace: labels[L.namespace] ?? 'default',
      podName: labels[L.pod] ?? '',
      containerName: labels[L.container] ?? '',
      attempt: Number(labels[L.attempt] ?? 0),
      state: running ? 'running' : 'exited',
      imageID: info.Image,
      startedAt: Number.isFinite(startedAt) && startedAt > 0 ? startedAt : Date.parse(info.Created)
    }
    if (!running) {
      const finishedAt = Date.parse(st.FinishedAt)
      rec.finishedAt = Number.isFinite(finishedAt) && finishedAt > 0 ? finishedAt : rec.startedAt
      rec.exitCode = st.ExitCode
      rec.reason = st.OOMKilled ? 'OOMKilled' : st.ExitCode === 0 ? 'Completed' : 'Error'
      if (st.Error !== '') {
        rec.reason = 'ContainerCannotRun'
        rec.message = st.Error
        if (rec.exitCode === 0) rec.exitCode = 128
      }
    }
    return rec
  }

  /** Re-reads a container; tells the listeners if it has just ended. */
  private async refresh (id: string): Promise<void> {
    const before = this.records.get(id)
    if (before === undefined) return
    let rec = await this.inspectRecord(id)
    if (this.records.get(id) === undefined) return
    // Removed behind our back (docker rm -f): it ended, with no exit code to tell.
    rec ??= { ...before, state: 'exited', finishedAt: this.opts.clock.now(), exitCode: 137, reason: 'Error', message: 'the container is gone from the engine' }
    this.records.set(id, rec)
    if (before.state === 'running' && rec.state === 'exited') this.emit(rec)
  }

  private emit (rec: ContainerRecord): void {
    for (const l of this.listeners) l({ ...rec })
  }

  /** Follows the engine's `die` events for this node's containers; reconnects if the stream ends. */
  private watchEvents (): void {
    if (this.closed) return
    void this.docker.getEvents({ filters: { type: ['container'], event: ['die'], label: [`${L.node}=${this.opts.nodeName}`] } }).then(s => {
      const stream = s as unknown as Readable
      if (this.closed) {
        stream.destroy()
        return
      }
      this.events = stream
      let partial = ''
      stream.on('data', (chunk: Buffer) => {
        partial += chunk.toString()
        const lines = partial.split('\n')
        partial = lines.pop() ?? ''
        for (const line of lines) {
          if (line.trim() === '') continue
          try {
            const e = JSON.parse(line) as { id?: string, Actor?: { ID?: string } }
            const id = e.Actor?.ID ?? e.id
            if (id !== undefined) void this.refresh(id).catch(() => undefined)
          } catch {}
        }
      })
      stream.once('close', () => { this.reconnect() })
      stream.once('error', () => { this.reconnect() })
    }, () => { this.reconnect() })
  }

  private reconnect (): void {
    if (this.closed) return
    this.events = undefined
    this.opts.clock.setTimeout(() => { this.watchEvents() }, 1000)
  }

  /** The safety net for missed events: every running record the engine no longer runs is refreshed. */
  private async poll (): Promise<void> {
    if (this.closed) return
    let running: Set<string>
    try {
      const list = await this.docker.listContainers({ filters: { label: [`${L.node}=${this.opts.nodeName}`] } })
      running = new Set(list.map(c => c.Id))
    } catch (err) {
      this.opts.log.debug({ event: 'kubelet.docker.poll-failed', err: message(err) }, `cannot list containers: ${message(err)}`)
      return
    }
    for (const rec of [...this.records.values()]) {
      if (rec.state === 'running' && !running.has(rec.id)) await this.refresh(rec.id).catch(() => undefined)
    }
    // A sandbox that died took the pod's network with it: as Kubernetes does,
    // its containers are stopped, and the next pass makes a new sandbox and restarts them.
    for (const [uid, sb] of [...this.sandboxes]) {
      if (running.has(sb.id) || this.making.has(uid)) continue
      this.opts.log.warn({ event: 'kubelet.sandbox.died', uid, id: sb.id }, `the sandbox of pod ${uid} died; restarting the pod's containers`)
      this.sandboxes.delete(uid)
      await this.forceRemove(sb.id).catch(() => undefined)
      for (const rec of [...this.records.values()]) {
        if (rec.podUid === uid && rec.state === 'running') await this.stopContainer(rec.id, 0).catch(() => undefined)
      }
    }
  }
}

/** A non-follow log's frames (8-byte headers: stream, 0, 0, 0, length), stdout and stderr in the order written. */
function demuxInOrder (buf: Buffer): Buffer {
  const parts: Buffer[] = []
  let at = 0
  while (at + 8 <= buf.length) {
    const len = buf.readUInt32BE(at + 4)
    parts.push(buf.subarray(at + 8, at + 8 + len))
    at += 8 + len
  }
  return Buffer.concat(parts)
}
