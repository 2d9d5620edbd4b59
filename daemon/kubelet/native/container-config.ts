// Owns turning a pod's container and its image's config into what a native
// sandbox runs, as Kubernetes and the CRI do: the argv (`command` replaces
// the image's Entrypoint and drops its Cmd; `args` replaces Cmd), the
// environment (the image's Env, overridden by the kubelet's), the working
// directory (the container's, else the image's, else /), the hostname (the
// pod's spec.hostname, else its name), the cgroup limits, and the uid and
// gid. The user is the container's, else the pod's, securityContext
// runAsUser/runAsGroup, else the image's User (`uid[:gid]`, or names looked
// up in the root's /etc/passwd and /etc/group). Unlike Docker, an image that
// would run as root (no User, or one that resolves to uid 0) runs as
// nobody, 65534:65534: uid 0 only when the pod asks for it (runAsUser: 0 or
// privileged: true), since the sandbox has no user namespace and its root
// would hold the host's capabilities over whatever it can see.
// May import: protocol/, ./cgroups.ts.
import { lstat, readFile } from 'node:fs/promises'
import { join } from 'node:path'
import type { Container, Pod } from '../../../protocol/core-v1.ts'
import { bytesOf, cpuMillis } from '../../../protocol/quantity.ts'
import type { CgroupLimits } from './cgroups.ts'

export const NOBODY = 65534
/** the pids limit when the runtime is given none */
export const DEFAULT_PIDS_LIMIT = 1024

/** The run settings of an image config, as daemon/image/puller.ts's ImageConfig names them. */
export interface ImageRunConfig { entrypoint: string[], cmd: string[], env: string[], user: string, workingDir: string }

export class UserError extends Error {
  override name = 'UserError'
}

/** The argv Kubernetes runs; empty when neither the container nor the image names a command. */
export function resolveArgv (c: Pick<Container, 'command' | 'args'>, image: ImageRunConfig): string[] {
  const command = c.command ?? []
  const args = c.args ?? []
  if (command.length > 0) return [...command, ...args]
  return [...image.entrypoint, ...(args.length > 0 ? args : image.cmd)]
}

/** The image's Env (`K=V` lines) overridden by the kubelet's, with HOME / when neither sets it. */
export function resolveEnv (imageEnv: readonly string[], kubelet: Record<string, string>): Record<string, string> {
  const env: Record<string, string> = {}
  for (const line of imageEnv) {
    const eq = line.indexOf('=')
    if (eq > 0) env[line.slice(0, eq)] = line.slice(eq + 1)
  }
  Object.assign(env, kubelet)
  env.HOME ??= '/'
  return env
}

/** spec.hostname, else the pod's name, cut to a label's 63 bytes with no '-' or '.' left at its end (as the kubelet does). */
export function hostnameOf (pod: Pod): string {
  const name = pod.spec?.hostname ?? pod.metadata.name ?? 'pod'
  return name.slice(0, 63).replace(/[-.]+$/, '')
}

/** limits.memory, limits.cpu, requests.cpu, and `pids` tasks. */
export function limitsOf (c: Pick<Container, 'resources'>, pids = DEFAULT_PIDS_LIMIT): CgroupLimits {
  const limits: CgroupLimits = { pids }
  const memory = bytesOf(c.resources?.limits?.memory)
  const cpuLimit = cpuMillis(c.resources?.limits?.cpu)
  // As Kubernetes: a limit without a request makes the request equal to it.
  const cpuRequest = cpuMillis(c.resources?.requests?.cpu) || cpuLimit
  if (memory > 0) limits.memoryBytes = memory
  if (cpuLimit > 0) limits.cpuLimitMillis = cpuLimit
  if (cpuRequest > 0) limits.cpuRequestMillis = cpuRequest
  return limits
}

interface SecurityContext { runAsUser?: unknown, runAsGroup?: unknown, privileged?: unknown }

function id (v: unknown): number | undefined {
  return typeof v === 'number' && Number.isInteger(v) && v >= 0 && v <= 0xfffffffe ? v : undefined
}

/** The container of `pod` named `name` (init containers included). */
export function containerOf (pod: Pod, name: string): Container | undefined {
  return [...(pod.spec?.containers ?? []), ...(pod.spec?.initContainers ?? [])].find(c => c.name === name)
}

/** A file of the image's /etc, read from the host side: never through a symbolic link, which could point at the host's own. */
async function etcFile (root: string, name: string): Promise<string> {
  const file = join(root, 'etc', name)
  try {
    const etc = await lstat(join(root, 'etc'))
    const st = await lstat(file)
    if (!etc.isDirectory() || !st.isFile() || st.size > 4 * 1024 * 1024) return ''
    return await readFile(file, 'utf8')
  } catch {
    return ''
  }
}

/** `name` (or a number) in a passwd- or group-style file: [id, primary gid]. */
function lookup (text: string, name: string): { id: number, gid?: number } | undefined {
  for (const line of text.split('\n')) {
    const f = line.split(':')
    if (f[0] !== name && f[2] !== name) continue
    const n = id(Number(f[2]))
    if (n === undefined || f[2] === '') continue
    const gid = id(Number(f[3]))
    return gid !== undefined && f[3] !== '' && f[3] !== undefined ? { id: n, gid } : { id: n }
  }
  return undefined
}

/**
 * The uid and gid to run as. Throws UserError when the image names a user
 * or group its root does not have (the container cannot run, as with runc).
 */
export async function resolveUser (pod: Pod, c: Container | undefined, imageUser: string, root: string): Promise<{ uid: number, gid: number }> {
  const podCtx = (pod.spec?.securityContext ?? {}) as SecurityContext
  const ctx = (c?.securityContext ?? {}) as SecurityContext
  const runAsUser = id(ctx.runAsUser) ?? id(podCtx.runAsUser)
  const runAsGroup = id(ctx.runAsGroup) ?? id(podCtx.runAsGroup)
  const privileged = ctx.privileged === true
  const passwd = await etcFile(root, 'passwd')
  if (runAsUser !== undefined) {
    const gid = runAsGroup ?? lookup(passwd, String(runAsUser))?.gid ?? (runAsUser === 0 ? 0 : NOBODY)
    return { uid: runAsUser, gid }
  }
  let uid = 0
  let gid: number | undefined
  if (imageUser !== '') {
    const [user = '', group] = imageUser.split(':')
    const u = /^\d+$/.test(user) ? { id: Number(user), gid: lookup(passwd, user)?.gid } : lookup(passwd, user)
    if (u === undefined || id(u.id) === undefined) throw new UserError(`the image's user ${JSON.stringify(user)} is not in its /etc/passwd`)
    uid = u.id
    gid = u.gid
    if (group !== undefined && group !== '') {
      const g = /^\d+$/.test(group) ? { id: Number(group) } : lookup(await etcFile(root, 'group'), group)
      if (g === undefined || id(g.id) === undefined) throw new UserError(`the image's group ${JSON.stringify(group)} is not in its /etc/group`)
      gid = g.id
    }
  }
  if (uid === 0 && !privileged) return { uid: NOBODY, gid: runAsGroup ?? NOBODY }
  return { uid, gid: runAsGroup ?? gid ?? (uid === 0 ? 0 : NOBODY) }
}

/** The pod's resolver, as the kubelet writes /etc/resolv.conf: the cluster DNS (ClusterFirst, the default) when there is one, else the host's file. */
export function resolvConfOf (pod: Pod, clusterDns: { servers: string[], search: string[] } | undefined, hostResolvConf: string): string {
  const policy = pod.spec?.dnsPolicy ?? 'ClusterFirst'
  if (policy === 'Default' || clusterDns === undefined) return hostResolvConf
  return `search ${clusterDns.search.join(' ')}\n${clusterDns.servers.map(s => `nameserver ${s}\n`).join('')}options ndots:5\n`
}

/** /etc/hosts as the kubelet writes it: localhost, and the pod's own name (and its FQDN under a subdomain) at its address. */
export function hostsOf (pod: Pod, podIP: string | undefined, domain = 'cluster.local'): string {
  const lines = ['# Kubernetes-managed hosts file.', '127.0.0.1\tlocalhost', '::1\tlocalhost ip6-localhost ip6-loopback']
  if (podIP !== undefined && podIP !== '') {
    const host = hostnameOf(pod)
    const sub = pod.spec?.subdomain
    lines.push(sub !== undefined && sub !== '' ? `${podIP}\t${host}.${sub}.${pod.metadata.namespace ?? 'default'}.svc.${domain}\t${host}` : `${podIP}\t${host}`)
  }
  return lines.join('\n') + '\n'
}
