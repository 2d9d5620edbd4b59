// The container runtime interface the kubelet drives: pod sandboxes (a pod's
// IP and directories) and containers (start, stop, remove, list, logs, exec).
// process-runtime.ts implements it with plain processes, docker-runtime.ts
// with containers in a Docker engine, native-runtime.ts with OCI images run
// in sandboxes of its own (native/). Records are plain data so that a runtime can
// persist them and the kubelet can adopt containers after a restart.
// May import: protocol/.
import type { Readable } from 'node:stream'
import type { Container, Pod } from '../../protocol/core-v1.ts'

/**
 * A container of a pod spec, as far as a runtime needs it. imagePullPolicy
 * is defaulted by the store (Kubernetes' rule), and by the Docker runtime if unset.
 */
export type ContainerSpec = Pick<Container, 'name' | 'image' | 'command' | 'args' | 'workingDir' | 'imagePullPolicy' | 'resources'>

/**
 * startContainer could not get the container's image: the container waits
 * (reason ErrImagePull, then ImagePullBackOff; or ErrImageNeverPull) rather
 * than counting as a crash.
 */
export class ImagePullError extends Error {
  override name = 'ImagePullError'
  readonly reason: 'ErrImagePull' | 'ErrImageNeverPull'
  constructor (reason: 'ErrImagePull' | 'ErrImageNeverPull', message: string) {
    super(message)
    this.reason = reason
  }
}

export type ContainerState = 'running' | 'exited'

/** One attempt of one container of one pod, as the runtime knows it. */
export interface ContainerRecord {
  id: string
  podUid: string
  podNamespace: string
  podName: string
  containerName: string
  /** 0 for the first start, +1 for every restart */
  attempt: number
  state: ContainerState
  /** ms since the epoch */
  startedAt: number
  finishedAt?: number
  exitCode?: number
  /** why it ended or could not run: 'Completed', 'Error', 'ContainerCannotRun' */
  reason?: string
  message?: string
  /** the image's id (docker-pullable://… or sha256:…), where the runtime knows it */
  imageID?: string
  /** the process runtime's process (group) id */
  pid?: number
}

/** A volume as the container should see it: `hostPath` (set up by the kubelet) at `mountPath`. */
export interface Mount {
  /** the volume's name */
  name: string
  mountPath: string
  hostPath: string
  readOnly: boolean
}

export interface StartOptions {
  /** the environment, resolved by the kubelet (valueFrom, POD_IP, …) */
  env: Record<string, string>
  /** the container's volumeMounts, resolved to host paths (volumes.ts) */
  mounts?: Mount[]
  /**
   * The `.dockerconfigjson` text of each Secret of type
   * kubernetes.io/dockerconfigjson that the pod names in
   * spec.imagePullSecrets (missing ones left out), in the pod's order:
   * a runtime that pulls images takes its credentials from the first that
   * names the image's registry.
   */
  pullSecrets?: string[]
}

/**
 * What an exec answers. stdout and stderr each hold at most
 * EXEC_OUTPUT_LIMIT bytes of what the command wrote, then, if it wrote
 * more, a line that says how much was dropped (ExecOutput).
 */
export interface ExecResult { exitCode: number, stdout: string, stderr: string }

/**
 * The most of each of stdout and stderr that an exec keeps (1 MiB): the
 * answer is one message, not a stream, so a command that writes without end
 * must not be buffered without end. The command still runs to its end (its
 * output is read and dropped), so its exit code is its own.
 */
export const EXEC_OUTPUT_LIMIT = 1024 * 1024

/** One of an exec's output streams: its first `limit` bytes kept, the rest counted and dropped. */
export class ExecOutput {
  private readonly limit: number
  private readonly chunks: Buffer[] = []
  private kept = 0
  private dropped = 0

  constructor (limit = EXEC_OUTPUT_LIMIT) { this.limit = limit }

  add (chunk: Buffer): void {
    const room = Math.max(0, this.limit - this.kept)
    if (room > 0) {
      const part = chunk.length <= room ? chunk : Buffer.from(chunk.subarray(0, room))
      this.chunks.push(part)
      this.kept += part.length
    }
    this.dropped += chunk.length - Math.min(chunk.length, room)
  }

  /** What was kept, as UTF-8, and the truncation marker when something was dropped. */
  text (): string {
    const text = Buffer.concat(this.chunks, this.kept).toString('utf8')
    if (this.dropped === 0) return text
    return `${text}\n[shoal: output truncated: the command wrote ${this.kept + this.dropped} bytes; the first ${this.kept} are kept]\n`
  }
}

export interface Runtime {
  /** the scheme of container ids in pod status: `<name>://<id>` */
  readonly name: string
  /** sets the node's pod range (its Node's spec.podCIDR); before init only */
  usePodCidr: (cidr: string) => void
  /** loads persisted state and starts watching processes; call once before anything else */
  init: () => Promise<void>
  /** stops watching; containers keep running (a kubelet restart does not kill pods) */
  close: () => void
  /** called whenever a container is seen to end */
  onExit: (listener: (rec: ContainerRecord) => void) => void
  /** the pod's IP (the same one on every call until removeSandbox) */
  ensureSandbox: (pod: Pod) => Promise<{ ip: string }>
  /** frees the pod's IP and removes its directories; its containers must be removed first */
  removeSandbox: (podUid: string) => Promise<void>
  /**
   * The pod finished for good (Succeeded or Failed, nothing running): its
   * address goes back to the pool, as a kubelet tears down a finished pod's
   * sandbox, while its containers' records and logs stay until
   * removeSandbox. Optional: without it the address stays until the pod goes.
   */
  releaseAddress?: (podUid: string) => Promise<void>
  /** uids of pods that have a sandbox */
  listSandboxes: () => Promise<string[]>
  /**
   * Starts one attempt. A container that cannot run at all (no command for
   * the process runtime) gives an exited record with reason ContainerCannotRun
   * rather than an error, so that restarts and back-off treat it as a crash.
   */
  startContainer: (pod: Pod, spec: ContainerSpec, attempt: number, opts: StartOptions) => Promise<ContainerRecord>
  /** SIGTERM (to the whole process group), then SIGKILL after graceMs; resolves once it is gone */
  stopContainer: (id: string, graceMs: number) => Promise<void>
  /** forgets a stopped container and deletes its log */
  removeContainer: (id: string) => Promise<void>
  /** every container this runtime manages, running or exited */
  listContainers: () => Promise<ContainerRecord[]>
  logs: (id: string, opts?: { tailLines?: number }) => Promise<string>
  /**
   * The log as a byte stream: the last `tailLines` lines (all without it),
   * then, with `follow`, what the container writes next, until it ends or the
   * caller destroys the stream.
   */
  logStream: (id: string, opts: { tailLines?: number, follow: boolean }) => Promise<Readable>
  exec: (id: string, argv: string[], timeoutMs: number) => Promise<ExecResult>
}
