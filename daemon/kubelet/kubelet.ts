// The kubelet: the node agent that runs the pods bound to this peer. It
// watches Pods with spec.nodeName = this node, reconciles each pod (level-
// triggered, one key at a time) against what the runtime runs: starts
// containers in order, restarts them per restartPolicy with exponential
// back-off (CrashLoopBackOff), tears pods down when they are deleted, and
// writes pod status (a merge patch of the status subresource, only when it
// changed, at most one per pod per statusIntervalMs). stop() leaves the
// containers running: a restarted daemon adopts them (like a kubelet restart).
// At most one incarnation of a pod that holds its name (a StatefulSet's,
// STOPPED_BY_KUBELET_FINALIZER): deleted, it keeps the name until its
// containers here have stopped, then the kubelet takes the finalizer off;
// cut off from the cluster for fenceAfterMs, the kubelet stops such pods
// (fencing), and stop() stops them too rather than leave them running.
// Probes (probes.ts): a container's `ready` and `started` follow its
// readiness and startup probes; a failed liveness or startup probe kills
// the container with the pod's grace period, and it is then restarted as if
// it had crashed (restartCount + 1, lastState terminated with the exit code
// of the kill, usually 143 and reason Error, the usual back-off;
// restartPolicy Never leaves it terminated). Volumes (volumes.ts) are set up
// before a container starts and refreshed on every pass and whenever a
// ConfigMap or Secret a pod mounts changes; one that cannot be set up keeps
// the containers waiting in ContainerCreating. Init containers run one at a
// time, in order, each to exit 0 before the next (and before any app
// container, which waits in PodInitializing); a failed one is retried per
// restartPolicy, and with Never fails the pod. Completed ones are never rerun,
// and running app containers (adopted) mean init is done. A sidecar (an init
// container with restartPolicy Always, Kubernetes 1.29) starts in its turn,
// and the next init container as soon as it has started (its startup probe
// passed); it runs beside the app containers, restarted whenever it exits
// whatever the pod's restartPolicy, and is stopped once the app containers
// are done for good (then the pod is Succeeded or Failed) or the pod goes,
// after the app containers, the last sidecar first.
// Every container gets HOSTNAME, the Kubernetes service variables of its
// namespace ({NAME}_SERVICE_HOST, …; not with enableServiceLinks: false)
// and of default/kubernetes (always) and, with the process runtime's pods
// in mind, SHOAL_DNS (the cluster DNS server).
// May import: protocol/, daemon/store/types.ts, daemon/workqueue, daemon/record,
// daemon/clock, daemon/log, ./*.
import type { ConfigMap, Container, Pod, PodSpec, Secret } from '../../protocol/core-v1.ts'
import { CONFIG_MAP, NODE, POD, SECRET } from '../../protocol/kinds.ts'
import { STATEFUL_POD_FENCE_MS, STOPPED_BY_KUBELET_FINALIZER } from '../../protocol/apps-v1.ts'
import type { ResourceType } from '../../protocol/k8s.ts'
import { jsonEqual } from '../../protocol/json.ts'
import { isUid } from '../../protocol/validation.ts'
import { every } from '../clock/clock.ts'
import type { Clock, TimerHandle } from '../clock/clock.ts'
import { EventRecorder } from '../record/recorder.ts'
import { keyOf, splitKey, WorkQueue } from '../workqueue/queue.ts'
import type { Logger } from '../log/log.ts'
import type { StoreCommand, StoreReader, StoreResult, Watch } from '../store/types.ts'
import { EnvError, podEnv, resolveEnv } from './env.ts'
import { Prober } from './probes.ts'
import type { ProbeState } from './probes.ts'
import { ProcessRuntime } from './process-runtime.ts'
import { ImagePullError } from './runtime.ts'
import type { ContainerRecord, ExecResult, Mount, Runtime } from './runtime.ts'
import { VolumeError, Volumes } from './volumes.ts'
import { isSidecar, podStatus, rfc3339 } from './status.ts'
import type { ContainerView, InitView, Waiting } from './status.ts'

/** The kinds a pod's volumes project: a change to one refreshes the pods that mount it. */
const CONFIG_TYPES: ReadonlyArray<ResourceType<ConfigMap | Secret>> = [CONFIG_MAP, SECRET]

export interface KubeletOptions {
  nodeName: string
  dataDir: string
  store: StoreReader
  write: (cmd: StoreCommand) => Promise<StoreResult>
  clock: Clock
  log: Logger
  /** the node's pod range (process runtime); default a /24 in 127.64.0.0/10 from a hash of nodeName */
  podCidr?: string
  /** the node's address as pods see it (status.hostIP); default 127.0.0.1 */
  hostIP?: string
  /** default: a ProcessRuntime over dataDir */
  runtime?: Runtime
  /** first restart back-off after the second crash (default 10 s), doubling up to backoffMaxMs (default 300 s) */
  backoffBaseMs?: number
  backoffMaxMs?: number
  /** at most one status write per pod per this many ms (default 150) */
  statusIntervalMs?: number
  /** cap on terminationGracePeriodSeconds (default 30) */
  maxGraceSeconds?: number
  /** how long start() waits for this node's Node to have spec.podCIDR (given by the leader through the log); 0: take it only if it is there already */
  awaitPodCidrMs?: number
  /** the cluster DNS server pods should use ('ip:port', given to process pods as SHOAL_DNS), once known */
  dns?: () => string | undefined
  /**
   * One confirmed round with the cluster (a ReadIndex answered by a leader
   * with a quorum), rejecting if there is none within timeoutMs. Given, the
   * kubelet fences: cut off for fenceAfterMs, it stops the pods that carry
   * STOPPED_BY_KUBELET_FINALIZER (a StatefulSet's), which the leader then
   * recreates elsewhere, and starts them again once back.
   */
  confirmContact?: (timeoutMs: number) => Promise<unknown>
  /** default STATEFUL_POD_FENCE_MS: every peer must use the same */
  fenceAfterMs?: number
  /**
   * The only host directories hostPath volumes may come from (the native
   * runtime's --allow-host-path); a container mounting another waits with
   * CreateContainerConfigError. Undefined: any (the process and Docker runtimes).
   */
  allowHostPaths?: readonly string[]
}

/** Whether a pod's name must never run twice (a StatefulSet's): its kubelet fences it, and confirms it stopped. */
function holdsName (pod: Pod): boolean {
  return (pod.metadata.finalizers ?? []).includes(STOPPED_BY_KUBELET_FINALIZER)
}

interface PodState {
  uid: string
  key: string
  graceMs: number
  lastStatusWrite: number
  /** set while (or once) the pod's containers are being stopped */
  stopping?: Promise<void>
  /** set once its removal has begun */
  removing?: boolean
  /** its sidecars' names, in order: stopped after the other containers, the last first */
  sidecars?: string[]
}

/** A container whose image could not be had: it waits until nextAt, then the runtime tries again. */
interface PullBackoff {
  failures: number
  nextAt: number
  reason: ImagePullError['reason']
  message: string
}

/** What a reconcile pass knows about a pod, for starting its containers. */
interface RunContext {
  pod: Pod
  key: string
  restartPolicy: NonNullable<PodSpec['restartPolicy']>
  /** the pod is being deleted or has finished: nothing starts */
  final: boolean
  volumePaths: Map<string, string> | undefined
  volumeError: string | undefined
  ip: string
  state: PodState
  /** ids of the running containers whose probes run (the others' stop) */
  live: Set<string>
}

/** Whether every app container has exited for good under the pod's restartPolicy: then nothing runs again. */
function appsDone (spec: PodSpec, records: ContainerRecord[]): boolean {
  const policy = spec.restartPolicy ?? 'Always'
  const apps = spec.containers ?? []
  return policy !== 'Always' && apps.length > 0 && apps.every(c => {
    const latest = records.filter(r => r.containerName === c.name).sort((a, b) => a.attempt - b.attempt).at(-1)
    return latest?.state === 'exited' && (policy === 'Never' || latest.exitCode === 0)
  })
}

export class Kubelet {
  readonly runtime: Runtime
  private readonly opts: KubeletOptions & Required<Pick<KubeletOptions, 'hostIP' | 'backoffBaseMs' | 'backoffMaxMs' | 'statusIntervalMs' | 'maxGraceSeconds'>>
  private readonly queue: WorkQueue
  /** by pod uid: every pod this kubelet runs or is tearing down */
  private readonly pods = new Map<string, PodState>()
  private watch: Watch | undefined
  private configWatches: Watch[] = []
  private readonly prober: Prober
  private readonly events: EventRecorder
  private readonly volumes: Volumes
  /** ids of containers being killed for a failed probe */
  private readonly killing = new Set<string>()
  private stopped = false
  /** cut off from the cluster for longer than fenceAfterMs: the pods that hold a name are stopped */
  private fenced = false
  private lastContact = 0
  private stopFencing: (() => void) | undefined
  /** per pod key, the earliest pending wake-up (WorkQueue.addAfter keeps the first one, not the earliest) */
  private readonly wakeups = new Map<string, { at: number, timer: TimerHandle }>()
  /** per `<pod uid>/<container>`, failed image pulls: how many, and when the next try may go */
  private readonly pullBackoff = new Map<string, PullBackoff>()
  /** the reconcile under way, which stop() lets finish */
  private inflight: Promise<boolean> | undefined

  constructor (opts: KubeletOptions) {
    this.opts = { hostIP: '127.0.0.1', backoffBaseMs: 10_000, backoffMaxMs: 300_000, statusIntervalMs: 150, maxGraceSeconds: 30, ...opts }
    this.runtime = opts.runtime ?? new ProcessRuntime({ dataDir: opts.dataDir, nodeName: opts.nodeName, podCidr: opts.podCidr, clock: opts.clock, log: opts.log })
    // Pods start and stop side by side: one slow pod must not hold up the others.
    this.queue = new WorkQueue({ clock: opts.clock, log: opts.log, name: 'kubelet', reconcile: async key => await this.track(key), baseDelayMs: 200, maxDelayMs: 10_000, workers: 16 })
    this.prober = new Prober({ clock: opts.clock, log: opts.log, exec: async (id, argv, ms) => await this.runtime.exec(id, argv, ms), onChange: key => { this.queue.add(key) } })
    this.volumes = new Volumes(opts.store, opts.dataDir, opts.clock, opts.allowHostPaths)
    this.events = new EventRecorder(opts.write, opts.clock)
  }

  /** Records an Event about a pod, best-effort (a lost one is not retried). */
  private event (pod: Pod, type: 'Normal' | 'Warning', reason: string, message: string): void {
    void this.events.record({ object: pod, type, reason, message, component: `kubelet, ${this.opts.nodeName}` }).catch(() => undefined)
  }

  /**
   * Adopts what the runtime still runs, then watches this node's pods. Call
   * it once the local replica has caught up: pods missing from the store are
   * torn down.
   */
  async start (): Promise<void> {
    const cidr = await this.podCidr()
    if (cidr !== undefined) this.runtime.usePodCidr(cidr)
    await this.runtime.init()
    this.runtime.onExit(rec => { this.queue.add(`${rec.podNamespace}/${rec.podName}`) })
    const records = await this.runtime.listContainers()
    const known = new Set(records.map(r => r.podUid))
    for (const r of records) {
      if (this.pods.has(r.podUid)) continue
      this.pods.set(r.podUid, { uid: r.podUid, key: `${r.podNamespace}/${r.podName}`, graceMs: this.opts.maxGraceSeconds * 1000, lastStatusWrite: 0 })
      this.queue.add(`${r.podNamespace}/${r.podName}`)
    }
    // A sandbox without containers has nothing to stop; one whose pod is gone can go now.
    const bound = new Set(this.opts.store.list(POD, { fieldSelector: `spec.nodeName=${this.opts.nodeName}` }).items.map(p => p.metadata.uid))
    for (const uid of await this.runtime.listSandboxes()) {
      if (!known.has(uid) && !bound.has(uid)) await this.runtime.removeSandbox(uid)
    }
    this.opts.log.info({ event: 'kubelet.started', node: this.opts.nodeName, adopted: records.filter(r => r.state === 'running').length }, `kubelet started on ${this.opts.nodeName}`)
    if (this.opts.confirmContact !== undefined) this.startFencing(this.opts.confirmContact)
    this.watch = this.opts.store.watch(POD, { fieldSelector: `spec.nodeName=${this.opts.nodeName}` }, e => {
      if (e.type === 'ERROR' || e.type === 'BOOKMARK') return
      // A delete (or an eviction) may ask for a grace period of its own: the pod is stopped within it.
      const grace = e.object.metadata.deletionGracePeriodSeconds
      const s = this.pods.get(e.object.metadata.uid ?? '')
      if (typeof grace === 'number' && grace >= 0 && s !== undefined) s.graceMs = Math.min(grace, this.opts.maxGraceSeconds) * 1000
      this.queue.add(keyOf(e.object))
    })
    // A changed ConfigMap or Secret refreshes the volumes of the pods that mount it.
    this.configWatches = CONFIG_TYPES.map(type => this.opts.store.watch(type, {}, e => {
      if (e.type === 'ERROR' || e.type === 'BOOKMARK') return
      const meta = e.object.metadata
      for (const key of this.podsMounting(type.kind, meta.namespace ?? 'default', meta.name ?? '')) this.queue.add(key)
    }))
  }

  /** This node's pod range from its Node object, waiting up to awaitPodCidrMs for the leader to give one. */
  private async podCidr (): Promise<string | undefined> {
    const deadline = this.opts.clock.now() + (this.opts.awaitPodCidrMs ?? 0)
    for (;;) {
      const node = this.opts.store.get(NODE, undefined, this.opts.nodeName)
      const cidr = node?.spec?.podCIDR
      if (cidr !== undefined && cidr !== '') return cidr
      if (this.opts.clock.now() >= deadline || this.stopped) {
        if (this.opts.awaitPodCidrMs !== undefined && this.opts.awaitPodCidrMs > 0) this.opts.log.warn({ event: 'kubelet.pod-cidr.missing', node: this.opts.nodeName }, `node ${this.opts.nodeName} has no pod range yet; using a default one`)
        return undefined
      }
      await new Promise<void>(resolve => { this.opts.clock.setTimeout(resolve, 200) })
    }
  }

  private podsMounting (kind: string, namespace: string, name: string): string[] {
    const keys: string[] = []
    for (const s of this.pods.values()) {
      if (splitKey(s.key).namespace !== namespace) continue
      const pod = this.opts.store.get(POD, namespace, splitKey(s.key).name)
      const volumes = pod?.spec?.volumes ?? []
      if (volumes.some(v => kind === 'ConfigMap' ? v.configMap?.name === name : v.secret?.secretName === name)) keys.push(s.key)
    }
    return keys
  }

  /** Stops watching and reconciling; containers keep running for the next start to adopt. */
  async stop (): Promise<void> {
    this.stopped = true
    this.stopFencing?.()
    this.watch?.stop()
    for (const w of this.configWatches) w.stop()
    this.queue.stop()
    this.prober.stop()
    for (const w of this.wakeups.values()) this.opts.clock.clearTimeout(w.timer)
    this.wakeups.clear()
    await this.inflight?.catch(() => undefined)
    await this.stopHeldPods()
    this.runtime.close()
  }

  /** A container's log; `previous` for the attempt before the latest. */
  async logs (namespace: string, name: string, container: string, opts: { previous?: boolean, tailLines?: number } = {}): Promise<string> {
    const rec = await this.attemptOf(namespace, name, container, opts.previous === true)
    return await this.runtime.logs(rec.id, { tailLines: opts.tailLines })
  }

  /** A container's log as a stream (`logs -f`): the backlog, then with `follow` what it writes until it ends. */
  async logStream (namespace: string, name: string, container: string, opts: { previous?: boolean, tailLines?: number, follow: boolean }): ReturnType<Runtime['logStream']> {
    const rec = await this.attemptOf(namespace, name, container, opts.previous === true)
    return await this.runtime.logStream(rec.id, { ...(opts.tailLines !== undefined ? { tailLines: opts.tailLines } : {}), follow: opts.follow })
  }

  /** The container's latest attempt, or with `previous` the one before it. */
  private async attemptOf (namespace: string, name: string, container: string, previous: boolean): Promise<ContainerRecord> {
    const recs = await this.containersOf(namespace, name, container)
    const rec = recs[recs.length - (previous ? 2 : 1)]
    if (rec === undefined) throw new Error(`${previous ? 'previous terminated container' : 'container'} "${container}" in pod "${name}" not found`)
    return rec
  }

  async exec (namespace: string, name: string, container: string, argv: string[], timeoutMs = 60_000): Promise<ExecResult> {
    const rec = (await this.containersOf(namespace, name, container)).at(-1)
    if (rec === undefined || rec.state !== 'running') throw new Error(`container "${container}" in pod "${name}" is not running`)
    return await this.runtime.exec(rec.id, argv, timeoutMs)
  }

  private async containersOf (namespace: string, name: string, container: string): Promise<ContainerRecord[]> {
    const pod = this.opts.store.get(POD, namespace, name)
    return (await this.runtime.listContainers())
      .filter(r => r.podUid === pod?.metadata.uid && r.containerName === container)
      .sort((a, b) => a.attempt - b.attempt)
  }

  // ---- reconcile -----------------------------------------------------------

  private async track (key: string): Promise<boolean> {
    const run = this.reconcile(key)
    this.inflight = run
    try {
      return await run
    } finally {
      if (this.inflight === run) this.inflight = undefined
    }
  }

  private async reconcile (key: string): Promise<boolean> {
    if (this.stopped) return true
    const { namespace, name } = splitKey(key)
    const found = this.opts.store.get(POD, namespace, name)
    const pod = found?.spec?.nodeName === this.opts.nodeName ? found : undefined
    for (const s of [...this.pods.values()]) {
      if (s.key === key && s.uid !== pod?.metadata.uid) this.teardown(s, true)
    }
    if (pod === undefined) return true
    const uid = pod.metadata.uid ?? ''
    if (!isUid(uid)) {
      // The uid names the pod's directories: one of another shape is never run (the store takes none since issue 14).
      this.opts.log.warn({ event: 'kubelet.pod.bad-uid', pod: key, uid }, `pod ${key} has uid ${JSON.stringify(uid)}, which is not a uid; it is not run`)
      return true
    }
    const spec: PodSpec = pod.spec ?? { containers: [] }
    let s = this.pods.get(uid)
    if (s === undefined) this.pods.set(uid, s = { uid, key, graceMs: 0, lastStatusWrite: 0 })
    const asked = pod.metadata.deletionGracePeriodSeconds
    s.graceMs = Math.min(typeof asked === 'number' && asked >= 0 ? asked : spec.terminationGracePeriodSeconds ?? 30, this.opts.maxGraceSeconds) * 1000
    s.sidecars = (spec.initContainers ?? []).filter(isSidecar).map(c => c.name)

    const records = (await this.runtime.listContainers()).filter(r => r.podUid === uid)
    const { ip } = await this.sandboxOf(pod, records)
    const deleting = pod.metadata.deletionTimestamp !== undefined
    // A pod being deleted (held by finalizers) only has its containers stopped; the store removes it.
    // Fenced (see startFencing), a pod that holds a name is stopped and started again once the cluster is back.
    const fenced = this.fenced && holdsName(pod)
    if (deleting || fenced) this.teardown(s, false)
    // Its containers stopped (or never ran here): the name may be reused.
    if (deleting && holdsName(pod) && !records.some(r => r.state === 'running')) return await this.releaseName(pod)
    const phase = pod.status?.phase
    const final = deleting || fenced || phase === 'Succeeded' || phase === 'Failed' || appsDone(spec, records)
    // A finished pod keeps nothing running: its sidecars are stopped.
    if (final && records.some(r => r.state === 'running')) this.teardown(s, false)
    const restartPolicy = spec.restartPolicy ?? 'Always'
    // Set up (or refresh) the volumes on every pass while the pod runs.
    let volumePaths: Map<string, string> | undefined
    let volumeError: string | undefined
    if (!final) {
      try {
        volumePaths = await this.volumes.setUp(pod)
      } catch (err) {
        if (!(err instanceof VolumeError)) throw err
        volumeError = err.message
      }
    }
    const run: RunContext = { pod, key, restartPolicy, final, volumePaths, volumeError, ip, state: s, live: new Set() }
    const init = await this.runInitContainers(run, spec, records)
    const views: ContainerView[] = []
    for (const c of spec.containers ?? []) {
      if (!init.done) {
        views.push({ name: c.name, image: c.image ?? '', waiting: { reason: 'PodInitializing' } })
        continue
      }
      const mine = records.filter(r => r.containerName === c.name).sort((a, b) => a.attempt - b.attempt)
      const v = await this.runContainer(run, c, mine)
      const probes = this.probe(run, c, v)
      views.push({ name: c.name, image: c.image ?? '', ...v, started: probes?.started, ready: probes?.ready })
    }
    this.prober.retain(uid, run.live)
    return await this.writeStatus(pod, s, views, ip, init)
  }

  /**
   * The pod's address: a pod already Succeeded or Failed with nothing left
   * running gives its address back (Jobs leave many such pods behind) and
   * keeps the one its status shows; any other gets (or keeps) one.
   */
  private async sandboxOf (pod: Pod, records: ContainerRecord[]): Promise<{ ip: string }> {
    const phase = pod.status?.phase
    const shown = pod.status?.podIP
    if ((phase === 'Succeeded' || phase === 'Failed') && typeof shown === 'string' && shown !== '' &&
      this.runtime.releaseAddress !== undefined && !records.some(r => r.state === 'running')) {
      await this.runtime.releaseAddress(pod.metadata.uid ?? '')
      return { ip: shown }
    }
    return await this.runtime.ensureSandbox(pod)
  }

  /** The probes of a running container (started, ready); one whose liveness or startup probe failed is killed. */
  private probe (run: RunContext, c: Container, v: { latest?: ContainerRecord, waiting?: Waiting }): ProbeState | undefined {
    const { latest, waiting } = v
    if (run.final || waiting !== undefined || latest?.state !== 'running') return undefined
    run.live.add(latest.id)
    const probes = this.prober.ensure(run.key, run.ip, c, latest)
    if (probes.failed !== undefined) {
      if (!this.killing.has(latest.id)) {
        this.event(run.pod, 'Warning', 'Unhealthy', probes.failed)
        this.event(run.pod, 'Normal', 'Killing', `Container ${c.name} failed its probe, will be restarted`)
      }
      this.killForProbe(run.state, latest, probes.failed)
    }
    return probes
  }

  /**
   * Init containers run one at a time, in order, each to completion, before
   * any app container: this starts (or restarts) the first one not done and
   * says whether all are done and whether one failed for good. A sidecar
   * counts as done once started, and once started is kept running.
   */
  private async runInitContainers (run: RunContext, spec: PodSpec, records: ContainerRecord[]): Promise<InitView> {
    const appNames = new Set((spec.containers ?? []).map(c => c.name))
    const initContainers = spec.initContainers ?? []
    const views: ContainerView[] = []
    let initDone = true
    let initFailed = false
    // Adoption: app containers already ran, so init is done even if its records are gone.
    const appStarted = records.some(r => appNames.has(r.containerName))
    for (const c of initContainers) {
      const mine = records.filter(r => r.containerName === c.name).sort((a, b) => a.attempt - b.attempt)
      if (isSidecar(c) && (initDone || appStarted || mine.length > 0)) {
        const v = await this.runSidecar(run, c, mine)
        // Until the app containers run, the next init container waits for this one to have started.
        if (!appStarted && !(v.waiting === undefined && v.latest?.state === 'running' && v.started !== false)) initDone = false
        views.push(v)
        continue
      }
      const done = mine.at(-1)?.state === 'exited' && mine.at(-1)?.exitCode === 0
      if (done || appStarted || !initDone) {
        const waiting = done || appStarted || mine.length > 0 ? undefined : { reason: 'PodInitializing' }
        views.push({ name: c.name, image: c.image ?? '', latest: mine.at(-1), previous: mine.at(-2), waiting, ready: done })
        continue
      }
      initDone = false
      const v = await this.runContainer(run, c, mine)
      if (v.latest?.state === 'exited' && v.latest.exitCode === 0) {
        // It finished already: the next pass starts the next one.
        initDone = initContainers.at(-1) === c
        this.queue.add(run.key)
      } else if (v.latest?.state === 'exited' && v.waiting === undefined && run.restartPolicy === 'Never') {
        initFailed = true
      }
      views.push({ name: c.name, image: c.image ?? '', ...v, ready: v.latest?.state === 'exited' && v.latest.exitCode === 0 })
    }
    return { containers: views, done: initDone, failed: initFailed }
  }

  /**
   * A sidecar: started (or restarted, with back-off, whatever the pod's
   * restartPolicy) unless the pod is finished, and probed as an app container.
   */
  private async runSidecar (run: RunContext, c: Container, mine: ContainerRecord[]): Promise<ContainerView> {
    const v = await this.runContainer({ ...run, restartPolicy: 'Always' }, c, mine)
    const probes = this.probe(run, c, v)
    return { name: c.name, image: c.image ?? '', ...v, started: probes?.started, ready: probes?.ready }
  }

  /**
   * Starts or restarts one container as its records and the restart policy
   * call for (with back-off), and says what it is doing.
   */
  private async runContainer (run: RunContext, c: Container, mine: ContainerRecord[]): Promise<{ latest?: ContainerRecord, previous?: ContainerRecord, waiting?: Waiting }> {
    const { pod, key, restartPolicy, final, volumePaths, volumeError, ip } = run
    const { namespace, name } = splitKey(key)
    const uid = pod.metadata.uid ?? ''
    let latest = mine.at(-1)
    let previous = mine.at(-2)
    let waiting: Waiting | undefined
    const restart = latest === undefined || (latest.state === 'exited' && (restartPolicy === 'Always' || (restartPolicy === 'OnFailure' && latest.exitCode !== 0)))
    if (final || !restart) return { latest, previous }
    const delay = latest === undefined ? 0 : this.backoff(latest)
    const left = latest === undefined ? 0 : (latest.finishedAt ?? 0) + delay - this.opts.clock.now()
    if (left > 0) {
      waiting = { reason: 'CrashLoopBackOff', message: `back-off ${Math.round(delay / 1000)}s restarting failed container=${c.name} pod=${name}_${namespace ?? ''}(${uid})` }
      this.event(pod, 'Warning', 'BackOff', `Back-off restarting failed container ${c.name} in pod ${name}`)
      this.wake(key, left)
      return { latest, previous, waiting }
    }
    let env: Record<string, string> | undefined
    let mounts: Mount[] | undefined
    try {
      if (volumePaths === undefined) throw new VolumeError(volumeError ?? 'volumes not set up')
      mounts = this.volumes.mountsOf(c, volumePaths)
      await this.volumes.checkHostPaths(pod, mounts)
      // As Kubernetes: HOSTNAME and the service variables first, so that the container's own env wins.
      const dns = this.opts.dns?.()
      env = { ...podEnv(this.opts.store, pod), ...(dns !== undefined ? { SHOAL_DNS: dns } : {}), ...resolveEnv(this.opts.store, pod, c, ip, this.opts.hostIP) }
    } catch (err) {
      if (!(err instanceof EnvError) && !(err instanceof VolumeError)) throw err
      // As Kubernetes: a volume that cannot be mounted keeps the pod ContainerCreating; a bad reference in env is a config error.
      waiting = { reason: err instanceof VolumeError && volumeError !== undefined ? 'ContainerCreating' : 'CreateContainerConfigError', message: err.message }
      env = undefined
      this.wake(key, 2000)
    }
    const pullKey = `${uid}/${c.name}`
    const pull = this.pullBackoff.get(pullKey)
    if (env !== undefined && pull !== undefined && pull.nextAt > this.opts.clock.now()) {
      // The pass whose pull failed shows ErrImagePull; later ones, while it waits to try again, ImagePullBackOff.
      const backOff = pull.reason === 'ErrImagePull'
      waiting = { reason: backOff ? 'ImagePullBackOff' : pull.reason, message: backOff ? `Back-off pulling image "${c.image ?? ''}": ${pull.message}` : pull.message }
      this.wake(key, pull.nextAt - this.opts.clock.now())
      return { latest, previous, waiting }
    }
    if (env !== undefined && !this.stopped) {
      let rec: ContainerRecord
      try {
        rec = await this.runtime.startContainer(pod, c, latest === undefined ? 0 : latest.attempt + 1, { env, mounts, pullSecrets: pullSecretsOf(this.opts.store, pod) })
      } catch (err) {
        if (!(err instanceof ImagePullError)) throw err
        const failures = (pull?.failures ?? 0) + 1
        const delay = Math.min(this.opts.backoffMaxMs, this.opts.backoffBaseMs * 2 ** (failures - 1))
        this.pullBackoff.set(pullKey, { failures, nextAt: this.opts.clock.now() + delay, reason: err.reason, message: err.message })
        this.event(pod, 'Warning', 'Failed', err.message)
        this.wake(key, delay)
        return { latest, previous, waiting: { reason: err.reason, message: err.message } }
      }
      this.pullBackoff.delete(pullKey)
      // Keep the attempt before the new one (lastState, logs --previous); drop older ones.
      for (const old of mine.slice(0, -1)) await this.runtime.removeContainer(old.id)
      previous = latest
      latest = rec
      if (rec.state === 'exited') this.queue.add(key)
      else this.event(pod, 'Normal', 'Started', `Started container ${c.name}`)
    }
    return { latest, previous, waiting }
  }

  /** Kills a container whose liveness or startup probe failed, in the background; its exit brings the restart. */
  private killForProbe (s: PodState, rec: ContainerRecord, why: string): void {
    if (this.killing.has(rec.id)) return
    this.killing.add(rec.id)
    this.opts.log.info({ event: 'kubelet.container.unhealthy', pod: s.key, container: rec.containerName, id: rec.id }, `killing ${s.key}/${rec.containerName}: ${why}`)
    void this.runtime.stopContainer(rec.id, s.graceMs).catch(err => {
      this.opts.log.warn({ event: 'kubelet.container.kill-failed', pod: s.key, id: rec.id, err: (err as Error).message }, `could not kill ${s.key}/${rec.containerName}: ${(err as Error).message}`)
    }).finally(() => {
      this.killing.delete(rec.id)
      this.queue.add(s.key)
    })
  }

  /** Reconciles `key` again in `ms` (or sooner, if already due sooner). */
  private wake (key: string, ms: number): void {
    if (this.stopped) return
    const at = this.opts.clock.now() + ms
    const had = this.wakeups.get(key)
    if (had !== undefined) {
      if (had.at <= at) return
      this.opts.clock.clearTimeout(had.timer)
    }
    const timer = this.opts.clock.setTimeout(() => {
      this.wakeups.delete(key)
      this.queue.add(key)
    }, ms)
    this.wakeups.set(key, { at, timer })
  }

  /** The wait before restarting after `latest` ended: none for the first restart, then base doubling to max; reset after a long run. */
  private backoff (latest: ContainerRecord): number {
    const ran = (latest.finishedAt ?? latest.startedAt) - latest.startedAt
    if (latest.attempt === 0 || ran >= 2 * this.opts.backoffMaxMs) return 0
    return Math.min(this.opts.backoffMaxMs, this.opts.backoffBaseMs * 2 ** (latest.attempt - 1))
  }

  private async writeStatus (pod: Pod, s: PodState, views: ContainerView[], ip: string, init: InitView): Promise<boolean> {
    const status = podStatus({ pod, containers: views, init, runtimeName: this.runtime.name, podIP: ip, hostIP: this.opts.hostIP, now: rfc3339(this.opts.clock.now()) })
    // Only the fields the kubelet owns count: the others (nominatedNodeName, …) stay untouched.
    const cur = new Map(Object.entries(pod.status ?? {}))
    if (Object.entries(status).every(([field, value]) => jsonEqual(value, cur.get(field)))) return true
    const wait = s.lastStatusWrite + this.opts.statusIntervalMs - this.opts.clock.now()
    if (wait > 0) {
      this.wake(s.key, wait)
      return true
    }
    s.lastStatusWrite = this.opts.clock.now()
    const { namespace, name } = splitKey(s.key)
    const res = await this.opts.write({
      op: 'patch',
      ref: { group: '', resource: 'pods', namespace, name: name },
      patchType: 'merge',
      patch: { metadata: { uid: pod.metadata.uid }, status },
      subresource: 'status',
      now: rfc3339(this.opts.clock.now())
    })
    if (res.ok || res.status.code === 404) return true
    this.opts.log.debug({ event: 'kubelet.status.failed', pod: s.key, code: res.status.code, message: res.status.message }, `pod status write failed: ${res.status.message}`)
    return false
  }

  // ---- at most one incarnation of a name (docs/decisions/2026-12-03-statefulsets.md)

  /** Takes STOPPED_BY_KUBELET_FINALIZER off a deleted pod whose containers here have stopped; false to retry. */
  private async releaseName (pod: Pod): Promise<boolean> {
    const finalizers = (pod.metadata.finalizers ?? []).filter(f => f !== STOPPED_BY_KUBELET_FINALIZER)
    const res = await this.opts.write({
      op: 'patch',
      ref: { group: '', resource: 'pods', namespace: pod.metadata.namespace ?? 'default', name: pod.metadata.name ?? '' },
      patchType: 'merge',
      patch: { metadata: { uid: pod.metadata.uid, resourceVersion: pod.metadata.resourceVersion, finalizers: finalizers.length === 0 ? null : finalizers } },
      now: rfc3339(this.opts.clock.now())
    })
    return res.ok || res.status.code === 404
  }

  /**
   * On a graceful stop (this peer leaves, and the leader replaces its pods
   * at once), the pods that hold a name are stopped rather than left for a
   * restart to adopt: they must not run beside their replacements.
   */
  private async stopHeldPods (): Promise<void> {
    const held = [...this.pods.values()].filter(s => {
      const { namespace, name } = splitKey(s.key)
      const pod = this.opts.store.get(POD, namespace, name)
      return pod?.metadata.uid === s.uid && holdsName(pod)
    })
    await Promise.all(held.map(async s => { await (s.stopping ?? this.stopAll(s)).catch(() => undefined) }))
  }

  /**
   * Asks for a confirmed round with the cluster every second; with none for
   * fenceAfterMs (counted from the last round that was answered, from when
   * it was sent), the pods that hold a name are stopped, so that the leader
   * may make them again elsewhere once it has declared this peer dead. They
   * start again when a round is answered (if they are still bound here).
   */
  private startFencing (confirm: (timeoutMs: number) => Promise<unknown>): void {
    const fenceAfterMs = this.opts.fenceAfterMs ?? STATEFUL_POD_FENCE_MS
    this.lastContact = this.opts.clock.now()
    let asking = false
    this.stopFencing = every(this.opts.clock, 1000, () => {
      const sent = this.opts.clock.now()
      // No pod here holds a name: nothing to fence, and no round to cost the leader.
      if (!this.fenced && !this.holdsAnyName()) { this.lastContact = sent; return }
      if (!this.fenced && sent - this.lastContact > fenceAfterMs) this.setFenced(true, sent - this.lastContact)
      if (asking) return
      asking = true
      void confirm(Math.min(5000, fenceAfterMs / 2)).then(() => {
        this.lastContact = Math.max(this.lastContact, sent)
        if (this.fenced) this.setFenced(false, 0)
      }, () => undefined).finally(() => { asking = false })
    })
  }

  /** Whether a pod this kubelet runs must never run twice. */
  private holdsAnyName (): boolean {
    for (const s of this.pods.values()) {
      const { namespace, name } = splitKey(s.key)
      const pod = this.opts.store.get(POD, namespace, name)
      if (pod !== undefined && holdsName(pod)) return true
    }
    return false
  }

  private setFenced (on: boolean, silentMs: number): void {
    if (this.stopped) return
    this.fenced = on
    this.opts.log.warn({ event: on ? 'kubelet.fenced' : 'kubelet.unfenced', node: this.opts.nodeName, silentMs },
      on ? `no confirmed contact with the cluster for ${silentMs} ms: stopping the pods that must not run twice` : 'the cluster answers again: the fenced pods may start again')
    for (const s of this.pods.values()) {
      // A pod that is not being deleted may be stopped again later: forget this stop.
      if (!on && s.removing !== true && this.opts.store.get(POD, splitKey(s.key).namespace, splitKey(s.key).name)?.metadata.deletionTimestamp === undefined) s.stopping = undefined
      this.queue.add(s.key)
    }
  }

  /**
   * Stops the pod's containers (SIGTERM, SIGKILL after its grace) in the
   * background, so that one slow pod holds up no other. With `remove`, its
   * containers and sandbox go too and the kubelet forgets it.
   */
  private teardown (s: PodState, remove: boolean): void {
    if (s.stopping !== undefined && !remove) return
    const stopped = s.stopping ?? this.stopAll(s)
    s.stopping = stopped
    if (!remove || s.removing === true) return
    s.removing = true
    this.prober.forgetPod(s.uid)
    void stopped.then(async () => {
      for (const r of (await this.runtime.listContainers()).filter(r => r.podUid === s.uid)) await this.runtime.removeContainer(r.id)
      await this.runtime.removeSandbox(s.uid)
      await this.volumes.tearDown(s.uid)
      this.pods.delete(s.uid)
      for (const k of [...this.pullBackoff.keys()]) if (k.startsWith(`${s.uid}/`)) this.pullBackoff.delete(k)
      this.opts.log.info({ event: 'kubelet.pod.removed', pod: s.key, uid: s.uid }, `pod ${s.key} removed`)
    }).catch(err => {
      this.opts.log.warn({ event: 'kubelet.pod.remove-failed', pod: s.key, err: (err as Error).message }, `could not remove pod ${s.key}: ${(err as Error).message}`)
    })
  }

  /**
   * Stops the pod's containers: the others at once, then its sidecars one by
   * one, the last first, each in what is left of the grace period (at least
   * 2 s, as Kubernetes, or the whole grace period if shorter).
   */
  private async stopAll (s: PodState): Promise<void> {
    const running = (await this.runtime.listContainers()).filter(r => r.podUid === s.uid && r.state === 'running')
    const order = (r: ContainerRecord): number => s.sidecars?.indexOf(r.containerName) ?? -1
    const deadline = this.opts.clock.now() + s.graceMs
    await Promise.all(running.filter(r => order(r) < 0).map(async r => { await this.runtime.stopContainer(r.id, s.graceMs) }))
    for (const r of running.filter(r => order(r) >= 0).sort((a, b) => order(b) - order(a))) {
      await this.runtime.stopContainer(r.id, Math.max(Math.min(2000, s.graceMs), deadline - this.opts.clock.now()))
    }
    this.queue.add(s.key)
  }
}

/**
 * The `.dockerconfigjson` of each Secret the pod names in
 * spec.imagePullSecrets, from this peer's replica: only those of type
 * kubernetes.io/dockerconfigjson; a missing one is left out (as Kubernetes
 * does, the pull then goes without it).
 */
function pullSecretsOf (store: StoreReader, pod: Pod): string[] {
  const out: string[] = []
  for (const ref of pod.spec?.imagePullSecrets ?? []) {
    if (ref.name === undefined || ref.name === '') continue
    const secret = store.get(SECRET, pod.metadata.namespace ?? 'default', ref.name)
    if (secret === undefined || secret.type !== 'kubernetes.io/dockerconfigjson') continue
    const encoded = secret.data?.['.dockerconfigjson']
    const config = encoded !== undefined ? Buffer.from(encoded, 'base64').toString('utf8') : secret.stringData?.['.dockerconfigjson']
    if (config !== undefined) out.push(config)
  }
  return out
}
