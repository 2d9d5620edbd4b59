// Pod status from what the runtime reports: each container's state, last
// state and restart count, the pod's phase (as Kubernetes' getPhase) and
// conditions, counting sidecars (init containers with restartPolicy Always)
// as Kubernetes 1.29 does. Pure functions of their inputs, so that a
// restarted kubelet computes the same status and writes nothing.
// May import: protocol/, ./runtime.ts.
import { rfc3339 } from '../../protocol/k8s.ts'
import type { Container, ContainerState, ContainerStateTerminated, ContainerStatus, Pod, PodCondition, PodPhase, PodStatus } from '../../protocol/core-v1.ts'
import type { ContainerRecord } from './runtime.ts'

export { rfc3339 }

/** Whether an init container is a sidecar: started in its turn, then kept running beside the app containers. */
export function isSidecar (c: Container): boolean {
  return c.restartPolicy === 'Always'
}

/** Why a container is not running and not about to be started by the kubelet's next pass. */
export interface Waiting { reason: string, message?: string }

export interface ContainerView {
  name: string
  image: string
  /** the latest attempt, and the one before it */
  latest?: ContainerRecord
  previous?: ContainerRecord
  /** set when the container waits (back-off, a config error, not created yet) */
  waiting?: Waiting
  /** from the probes (probes.ts) while running; true when unset */
  started?: boolean
  ready?: boolean
}

function terminated (r: ContainerRecord, runtimeName: string): ContainerState {
  const t: ContainerStateTerminated = { exitCode: r.exitCode ?? 0, reason: r.reason ?? (r.exitCode === 0 ? 'Completed' : 'Error'), startedAt: rfc3339(r.startedAt), finishedAt: rfc3339(r.finishedAt ?? r.startedAt), containerID: `${runtimeName}://${r.id}` }
  if (r.message !== undefined) t.message = r.message
  return { terminated: t }
}

export function containerStatus (c: ContainerView, runtimeName: string): ContainerStatus {
  const l = c.latest
  let state: ContainerState
  let lastState: ContainerState = {}
  if (c.waiting !== undefined || l === undefined) {
    const w = c.waiting ?? { reason: 'ContainerCreating' }
    state = { waiting: w.message === undefined ? { reason: w.reason } : { reason: w.reason, message: w.message } }
    if (l !== undefined && l.state === 'exited') lastState = terminated(l, runtimeName)
  } else {
    state = l.state === 'running' ? { running: { startedAt: rfc3339(l.startedAt) } } : terminated(l, runtimeName)
    if (c.previous !== undefined && c.previous.state === 'exited') lastState = terminated(c.previous, runtimeName)
  }
  const running = l !== undefined && l.state === 'running' && c.waiting === undefined
  const out: ContainerStatus = {
    name: c.name,
    state,
    lastState,
    ready: running && c.ready !== false,
    restartCount: l?.attempt ?? 0,
    image: c.image,
    imageID: l?.imageID ?? '',
    started: running && c.started !== false
  }
  if (l !== undefined) out.containerID = `${runtimeName}://${l.id}`
  return out
}

/** The pod's phase from its app containers' states and how many sidecars run, as Kubernetes computes it. */
export function podPhase (statuses: ContainerStatus[], restartPolicy: string, sidecarsRunning = 0): PodPhase {
  let waiting = 0
  // A running sidecar keeps the pod Running; one that stopped counts for nothing.
  let running = sidecarsRunning
  let stopped = 0
  let succeeded = 0
  for (const s of statuses) {
    const state = s.state ?? {}
    if (state.running !== undefined) running++
    else if (state.terminated !== undefined) {
      stopped++
      if (state.terminated.exitCode === 0) succeeded++
    } else if (s.lastState?.terminated !== undefined) stopped++
    else waiting++
  }
  if (waiting > 0) return 'Pending'
  if (running > 0) return 'Running'
  if (stopped === statuses.length) {
    if (restartPolicy === 'Always') return 'Running'
    const allTerminated = statuses.every(s => s.state?.terminated !== undefined)
    if (allTerminated && succeeded === statuses.length) return 'Succeeded'
    if (allTerminated && restartPolicy === 'Never') return 'Failed'
    return 'Running'
  }
  return 'Pending'
}

/** Conditions, keeping each one's lastTransitionTime while its status stays; a reason only where given. */
export function conditions (prev: PodCondition[], now: string, values: Array<[string, boolean, string?]>): PodCondition[] {
  return values.map(([type, ok, reason]) => {
    const status = ok ? 'True' : 'False'
    const before = prev.find(c => c.type === type)
    const c: PodCondition = { type, status, lastTransitionTime: before !== undefined && before.status === status ? before.lastTransitionTime ?? now : now }
    if (reason !== undefined) c.reason = reason
    return c
  })
}

/** The pod's init containers: their views, whether all completed, whether one failed for good (restartPolicy Never). */
export interface InitView {
  containers: ContainerView[]
  done: boolean
  failed: boolean
}

/** An init container's status: as an app container's, but a regular one is ready once it completed (exit 0). */
function initContainerStatus (c: ContainerView, runtimeName: string, sidecar: boolean): ContainerStatus {
  const out = containerStatus(c, runtimeName)
  if (!sidecar) out.ready = c.waiting === undefined && c.latest?.state === 'exited' && c.latest.exitCode === 0
  return out
}

export interface PodStatusInput {
  pod: Pod
  containers: ContainerView[]
  /** absent: no init containers */
  init?: InitView
  runtimeName: string
  podIP?: string
  hostIP: string
  now: string
}

export function podStatus (i: PodStatusInput): PodStatus {
  const prev = i.pod.status ?? {}
  const statuses = i.containers.map(c => containerStatus(c, i.runtimeName))
  const sidecarNames = new Set((i.pod.spec?.initContainers ?? []).filter(isSidecar).map(c => c.name))
  const initStatuses = (i.init?.containers ?? []).map(c => initContainerStatus(c, i.runtimeName, sidecarNames.has(c.name)))
  const sidecars = initStatuses.filter(s => sidecarNames.has(s.name))
  // The pod is ready when its app containers and its sidecars are.
  const ready = statuses.length > 0 && [...statuses, ...sidecars].every(s => s.ready)
  const prevPhase = prev.phase
  const initDone = i.init?.done ?? true
  // Succeeded and Failed are final, as in Kubernetes; a pod initializes while Pending.
  const phase = prevPhase === 'Succeeded' || prevPhase === 'Failed'
    ? prevPhase
    : i.init?.failed === true ? 'Failed' : !initDone ? 'Pending' : podPhase(statuses, i.pod.spec?.restartPolicy ?? 'Always', sidecars.filter(s => s.state?.running !== undefined).length)
  const status: PodStatus = {
    phase,
    conditions: conditions(prev.conditions ?? [], i.now, [['PodScheduled', true], initDone ? ['Initialized', true] : ['Initialized', false, 'ContainersNotInitialized'], ['ContainersReady', ready], ['Ready', ready]]),
    hostIP: i.hostIP,
    hostIPs: [{ ip: i.hostIP }],
    startTime: typeof prev.startTime === 'string' ? prev.startTime : i.now,
    containerStatuses: statuses
  }
  if (initStatuses.length > 0) status.initContainerStatuses = initStatuses
  if (i.podIP !== undefined) {
    status.podIP = i.podIP
    status.podIPs = [{ ip: i.podIP }]
  }
  return status
}
