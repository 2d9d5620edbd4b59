// Logs and exec for any pod, from any peer: answered by the local kubelet
// when the pod runs here, otherwise asked of the peer that runs it over
// libp2p (`/shoal/pod-access/1.0.0`, one request and one answer per
// stream), so the traffic is encrypted and only cluster members can ask.
// Followed logs (`follow`) come over `/shoal/pod-logs/1.0.0` instead: the
// same request, a header answer, then the log's bytes as the container
// writes them (rpc.ts requestStream/serveStream); closing the reader's end
// closes the stream and the runtime's log stream on the peer that runs it.
// May import: protocol/, daemon/p2p (rpc, host), daemon/store/types.ts, ./kubelet.ts.
import { POD } from '../../protocol/kinds.ts'
import type { Readable } from 'node:stream'
import { peerIdFromString } from '@libp2p/peer-id'
import { isNumber, isObject, isString, isStringArray } from '../../protocol/codec.ts'
import type { ShoalHost } from '../p2p/host.ts'
import { request, requestStream, serve, serveStream } from '../p2p/rpc.ts'
import type { Logger } from '../log/log.ts'
import type { StoreReader } from '../store/types.ts'
import type { Kubelet } from './kubelet.ts'

export const POD_ACCESS_PROTOCOL = '/shoal/pod-access/1.0.0'
export const POD_LOGS_PROTOCOL = '/shoal/pod-logs/1.0.0'
const MAX_BYTES = 16 * 1024 * 1024

export type PodAccessRequest =
  | { type: 'logs', namespace: string, name: string, container?: string, previous?: boolean, tailLines?: number, follow?: boolean }
  | { type: 'exec', namespace: string, name: string, container?: string, command: string[], timeoutMs?: number }

/** `stream` (never on the wire) is the log of a `follow` request. */
export type PodAccessResponse =
  | { ok: true, logs?: string, stream?: Readable, exitCode?: number, stdout?: string, stderr?: string }
  | { ok: false, code: number, message: string }

function isRequest (v: unknown): v is PodAccessRequest {
  if (!isObject(v) || !isString(v.namespace) || !isString(v.name) || (v.container !== undefined && !isString(v.container))) return false
  if (v.type === 'logs') return (v.tailLines === undefined || isNumber(v.tailLines)) && (v.previous === undefined || typeof v.previous === 'boolean') && (v.follow === undefined || typeof v.follow === 'boolean')
  return v.type === 'exec' && isStringArray(v.command) && (v.timeoutMs === undefined || isNumber(v.timeoutMs))
}

function isResponse (v: unknown): v is PodAccessResponse {
  return isObject(v) && (v.ok === true || (v.ok === false && isNumber(v.code) && isString(v.message)))
}

function isLogsRequest (v: unknown): v is PodAccessRequest & { type: 'logs' } {
  return isRequest(v) && v.type === 'logs'
}

/** A failure with the HTTP code the API should answer. */
export class PodAccessError extends Error {
  override name = 'PodAccessError'
  readonly code: number
  constructor (code: number, message: string) {
    super(message)
    this.code = code
  }
}

export interface PodAccessInit {
  host: ShoalHost
  kubelet: Kubelet
  store: StoreReader
  nodeName: string
  /** a member's peer id by its name, if alive */
  peerOf: (nodeName: string) => string | undefined
  /**
   * Whether the cluster has admitted a peer (a voter or a learner of the
   * Raft configuration): only such a peer is answered. Holding the cluster
   * key is not enough to read logs or exec in pods.
   */
  admitted: (peerId: string) => boolean
  log: Logger
}

const NOT_ADMITTED: PodAccessResponse = { ok: false, code: 403, message: 'this peer answers only members the cluster has admitted' }

export class PodAccess {
  private readonly init: PodAccessInit

  constructor (init: PodAccessInit) { this.init = init }

  async start (): Promise<void> {
    await serve(this.init.host, POD_ACCESS_PROTOCOL, isRequest, { maxBytes: MAX_BYTES, timeoutMs: 120_000 },
      async (req, from) => this.init.admitted(from.toString()) ? await this.local(req) : this.refuse(from.toString()),
      (err, from) => { this.init.log.debug({ event: 'pod-access.failed', from: from.toString(), err: err.message }, 'a pod access request failed') })
    await serveStream(this.init.host, POD_LOGS_PROTOCOL, isLogsRequest, { maxBytes: 64 * 1024, timeoutMs: 10_000 },
      async (req, from) => {
        if (!this.init.admitted(from.toString())) return { header: this.refuse(from.toString()) }
        const r = await this.local({ ...req, follow: true })
        if (!r.ok || r.stream === undefined) return { header: r }
        return { header: { ok: true }, body: r.stream }
      },
      (err, from) => { this.init.log.debug({ event: 'pod-logs.ended', from: from.toString(), err: err.message }, 'a followed log ended early') })
  }

  private refuse (from: string): PodAccessResponse {
    this.init.log.warn({ event: 'pod-access.refused', from }, `refused pod access to ${from}: the cluster has not admitted that peer`)
    return NOT_ADMITTED
  }

  async stop (): Promise<void> {
    await this.init.host.unhandle(POD_ACCESS_PROTOCOL).catch(() => {})
    await this.init.host.unhandle(POD_LOGS_PROTOCOL).catch(() => {})
  }

  /** Answers a request here or on the peer that runs the pod. */
  async handle (req: PodAccessRequest): Promise<PodAccessResponse> {
    const pod = this.init.store.get(POD, req.namespace, req.name)
    if (pod === undefined) return { ok: false, code: 404, message: `pods "${req.name}" not found` }
    const nodeName = pod.spec?.nodeName
    if (nodeName === undefined) return { ok: false, code: 400, message: `pod "${req.name}" is not scheduled to a node yet` }
    if (nodeName === this.init.nodeName) return await this.local(req)
    const peer = this.init.peerOf(nodeName)
    if (peer === undefined) return { ok: false, code: 503, message: `the node ${nodeName} that runs pod "${req.name}" is not reachable` }
    if (req.type === 'logs' && req.follow === true) return await this.followRemote(peer, nodeName, req)
    try {
      return await request(this.init.host, peerIdFromString(peer), POD_ACCESS_PROTOCOL, req, isResponse,
        { maxBytes: MAX_BYTES, timeoutMs: (req.type === 'exec' ? (req.timeoutMs ?? 60_000) : 10_000) + 5000, dialTimeoutMs: 5000 })
    } catch (err) {
      return { ok: false, code: 503, message: `could not reach node ${nodeName}: ${(err as Error).message}` }
    }
  }

  /** A followed log from the peer that runs the pod: its header, then its bytes as a stream. */
  private async followRemote (peer: string, nodeName: string, req: PodAccessRequest): Promise<PodAccessResponse> {
    let answer
    try {
      answer = await requestStream(this.init.host, peerIdFromString(peer), POD_LOGS_PROTOCOL, req, isResponse,
        { maxBytes: MAX_BYTES, timeoutMs: 15_000, dialTimeoutMs: 5000 })
    } catch (err) {
      return { ok: false, code: 503, message: `could not reach node ${nodeName}: ${(err as Error).message}` }
    }
    if (!answer.header.ok) {
      answer.body.destroy()
      return answer.header
    }
    return { ok: true, stream: answer.body }
  }

  private async local (req: PodAccessRequest): Promise<PodAccessResponse> {
    const pod = this.init.store.get(POD, req.namespace, req.name)
    if (pod === undefined) return { ok: false, code: 404, message: `pods "${req.name}" not found` }
    const containers = (pod.spec?.containers ?? []).map(c => c.name)
    const container = req.container ?? (containers.length === 1 ? containers[0] : undefined)
    if (container === undefined) return { ok: false, code: 400, message: `a container name must be given for pod ${req.name}: choose one of [${containers.join(' ')}]` }
    if (!containers.includes(container)) return { ok: false, code: 400, message: `container ${container} is not valid for pod ${req.name}` }
    try {
      if (req.type === 'logs' && req.follow === true) {
        const stream = await this.init.kubelet.logStream(req.namespace, req.name, container, {
          ...(req.previous !== undefined ? { previous: req.previous } : {}),
          ...(req.tailLines !== undefined ? { tailLines: req.tailLines } : {}),
          follow: true
        })
        return { ok: true, stream }
      }
      if (req.type === 'logs') {
        const logs = await this.init.kubelet.logs(req.namespace, req.name, container, {
          ...(req.previous !== undefined ? { previous: req.previous } : {}),
          ...(req.tailLines !== undefined ? { tailLines: req.tailLines } : {})
        })
        return { ok: true, logs }
      }
      const r = await this.init.kubelet.exec(req.namespace, req.name, container, req.command, req.timeoutMs)
      return { ok: true, exitCode: r.exitCode, stdout: r.stdout, stderr: r.stderr }
    } catch (err) {
      return { ok: false, code: 400, message: (err as Error).message }
    }
  }
}
