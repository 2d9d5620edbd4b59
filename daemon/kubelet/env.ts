// A container's environment as the kubelet hands it to the runtime: envFrom,
// then env (value, or valueFrom a ConfigMap key, a Secret key or a field of
// the pod), then POD_IP, POD_NAME and POD_NAMESPACE. A missing ConfigMap or
// Secret that is not optional is an error (CreateContainerConfigError).
// Also what every container starts with (podEnv): HOSTNAME, and the
// Kubernetes service variables of the pod's namespace and of the API's
// Service, default/kubernetes (serviceEnv).
// May import: protocol/, daemon/store/types.ts.
import { isIPv6 } from 'node:net'
import { CONFIG_MAP, SECRET, SERVICE } from '../../protocol/kinds.ts'
import type { Container, Pod, Service } from '../../protocol/core-v1.ts'
import type { StoreReader } from '../store/types.ts'

export class EnvError extends Error {
  override name = 'EnvError'
}

function dataOf (store: StoreReader, kind: 'configmaps' | 'secrets', namespace: string, name: string): Record<string, string> | undefined {
  const out: Record<string, string> = {}
  if (kind === 'secrets') {
    const secret = store.get(SECRET, namespace, name)
    if (secret === undefined) return undefined
    for (const [k, v] of Object.entries(secret.data ?? {})) out[k] = Buffer.from(v, 'base64').toString('utf8')
    Object.assign(out, secret.stringData ?? {})
  } else {
    const cm = store.get(CONFIG_MAP, namespace, name)
    if (cm === undefined) return undefined
    Object.assign(out, cm.data ?? {})
  }
  return out
}

function fieldOf (pod: Pod, path: string, podIP: string, hostIP: string): string {
  const meta = pod.metadata
  const label = /^metadata\.(labels|annotations)\['(.*)'\]$/.exec(path)
  if (label !== null) return (label[1] === 'labels' ? meta.labels : meta.annotations)?.[label[2] as string] ?? ''
  switch (path) {
    case 'metadata.name': return meta.name ?? ''
    case 'metadata.namespace': return meta.namespace ?? ''
    case 'metadata.uid': return meta.uid ?? ''
    case 'spec.nodeName': return pod.spec?.nodeName ?? ''
    case 'spec.serviceAccountName': return pod.spec?.serviceAccountName ?? ''
    case 'status.podIP': return podIP
    case 'status.hostIP': return hostIP
    default: throw new EnvError(`unsupported fieldRef ${path}`)
  }
}

/** The environment of `container` in `pod`; throws EnvError when a reference cannot be resolved. */
export function resolveEnv (store: StoreReader, pod: Pod, container: Container, podIP: string, hostIP: string): Record<string, string> {
  const namespace = pod.metadata.namespace ?? 'default'
  const env: Record<string, string> = {}
  for (const from of container.envFrom ?? []) {
    const src = from.configMapRef !== undefined ? { kind: 'configmaps' as const, ref: from.configMapRef } : from.secretRef !== undefined ? { kind: 'secrets' as const, ref: from.secretRef } : undefined
    if (src === undefined) continue
    const data = dataOf(store, src.kind, namespace, src.ref.name ?? '')
    if (data === undefined) {
      if (src.ref.optional === true) continue
      throw new EnvError(`${src.kind === 'configmaps' ? 'configmap' : 'secret'} "${src.ref.name ?? ''}" not found`)
    }
    for (const [k, v] of Object.entries(data)) env[(from.prefix ?? '') + k] = v
  }
  for (const v of container.env ?? []) {
    if (v.valueFrom === undefined) {
      env[v.name] = v.value ?? ''
      continue
    }
    const { configMapKeyRef, secretKeyRef, fieldRef } = v.valueFrom
    if (fieldRef !== undefined) {
      env[v.name] = fieldOf(pod, fieldRef.fieldPath ?? '', podIP, hostIP)
      continue
    }
    const src = configMapKeyRef !== undefined ? { kind: 'configmaps' as const, ref: configMapKeyRef } : secretKeyRef !== undefined ? { kind: 'secrets' as const, ref: secretKeyRef } : undefined
    if (src === undefined) continue
    const what = src.kind === 'configmaps' ? 'configmap' : 'secret'
    const data = dataOf(store, src.kind, namespace, src.ref.name ?? '')
    const value = data?.[src.ref.key ?? '']
    if (value === undefined) {
      if (src.ref.optional === true) continue
      throw new EnvError(data === undefined ? `${what} "${src.ref.name ?? ''}" not found` : `couldn't find key ${src.ref.key ?? ''} in ${what} ${namespace}/${src.ref.name ?? ''}`)
    }
    env[v.name] = value
  }
  env.POD_IP = podIP
  env.POD_NAME = pod.metadata.name ?? ''
  env.POD_NAMESPACE = namespace
  return env
}

/** The pod's hostname, as the runtime sets it: spec.hostname, else its name cut to a DNS label (Kubernetes' rule). */
export function podHostname (pod: Pod): string {
  const given = pod.spec?.hostname
  return given !== undefined && given !== '' ? given : (pod.metadata.name ?? '').slice(0, 63).replace(/[-.]+$/, '')
}

/** What every container of `pod` starts with, below its own env: HOSTNAME and the service variables. */
export function podEnv (store: StoreReader, pod: Pod): Record<string, string> {
  const links = pod.spec?.enableServiceLinks !== false
  return { HOSTNAME: podHostname(pod), ...serviceEnv(store, pod.metadata.namespace ?? 'default', links) }
}

/** Whether a Service has an address to give variables for: headless ones ('None') and those without one yet have none. */
function hasClusterIP (svc: Service): boolean {
  const host = svc.spec?.clusterIP
  return host !== undefined && host !== '' && host !== 'None'
}

/**
 * The variables the kubelet gives a container for every Service with a
 * clusterIP in its namespace (with `links`, as enableServiceLinks):
 * {NAME}_SERVICE_HOST, {NAME}_SERVICE_PORT (the first port),
 * {NAME}_SERVICE_PORT_{PORT} per named port, and the Docker link ones
 * ({NAME}_PORT, {NAME}_PORT_{port}_{PROTO}[_PROTO|_PORT|_ADDR]). As
 * Kubernetes, the API's Service (default/kubernetes) always, even without
 * links, unless the namespace has a `kubernetes` Service of its own.
 */
export function serviceEnv (store: StoreReader, namespace: string, links = true): Record<string, string> {
  const env: Record<string, string> = {}
  const envName = (s: string): string => s.toUpperCase().replaceAll('-', '_')
  const local = links ? store.list(SERVICE, { namespace }).items.filter(hasClusterIP) : []
  const master = store.get(SERVICE, 'default', 'kubernetes')
  const services = master !== undefined && hasClusterIP(master) && !local.some(s => s.metadata.name === 'kubernetes') ? [...local, master] : local
  for (const svc of [...services].sort((a, b) => (a.metadata.name ?? '').localeCompare(b.metadata.name ?? ''))) {
    const spec = svc.spec ?? {}
    const first = spec.ports?.[0]
    const host = spec.clusterIP ?? ''
    if (first === undefined) continue
    const name = envName(svc.metadata.name ?? '')
    const hostPort = (port: number): string => isIPv6(host) ? `[${host}]:${port}` : `${host}:${port}`
    env[`${name}_SERVICE_HOST`] = host
    env[`${name}_SERVICE_PORT`] = String(first.port)
    for (const p of spec.ports ?? []) if (p.name !== undefined && p.name !== '') env[`${name}_SERVICE_PORT_${envName(p.name)}`] = String(p.port)
    env[`${name}_PORT`] = `${(first.protocol ?? 'TCP').toLowerCase()}://${hostPort(first.port)}`
    for (const p of spec.ports ?? []) {
      const proto = (p.protocol ?? 'TCP').toLowerCase()
      const prefix = `${name}_PORT_${p.port}_${proto.toUpperCase()}`
      env[prefix] = `${proto}://${hostPort(p.port)}`
      env[`${prefix}_PROTO`] = proto
      env[`${prefix}_PORT`] = String(p.port)
      env[`${prefix}_ADDR`] = host
    }
  }
  return env
}
