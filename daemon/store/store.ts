// The resource store: the Kubernetes-shaped objects (namespaces, nodes, pods,
// services, deployments, …) that every peer applies from the Raft log, with
// Kubernetes' write semantics (create, update, patch, delete with
// finalizers, cascades and dry runs), and the read side (get, list, watch)
// that the API server and the controllers use on the local replica.
// Synchronous and deterministic: uids and times come in the commands, and a
// written object's resourceVersion is its Raft index. Apply is total: a
// command nested deeper than MAX_JSON_DEPTH is refused before it is decoded,
// and a write that would leave an object deeper than that, or larger than
// MAX_COMMAND_BYTES encoded, is refused; so no recursion over a stored
// object can depend on how much stack the caller left. Stored objects are
// frozen: readers get them as they are and must copy before changing them.
// May import: protocol/, daemon/raft/state-machine.ts, ./*.
import { CONFIG_MAP, KINDS, NAMESPACE, NODE, POD, POD_DISRUPTION_BUDGET, SERVICE, kindOf, kindOfResource } from '../../protocol/kinds.ts'
import type { Kind } from '../../protocol/kinds.ts'
import { createHash } from 'node:crypto'
import { decode, encode, encodeInSlices, isNumber, isObject, isString } from '../../protocol/codec.ts'
import type { StatusBody } from '../../protocol/api.ts'
import { isOfType, SYSTEM_NAMESPACES } from '../../protocol/k8s.ts'
import { isScalable, scaleOf } from '../../protocol/apps-v1.ts'
import type { KObject, ResourceType, WatchEvent } from '../../protocol/k8s.ts'
import type { SnapshotEncoder, StateMachine } from '../raft/state-machine.ts'
import { decodeStoreCommand } from './command.ts'
import { evict } from './evict.ts'
import { jsonBoundPassed, jsonEqual, MAX_JSON_DEPTH } from '../../protocol/json.ts'
import { applyJsonPatch, applyMergePatch, applyStrategicPatch, PatchError } from './patch.ts'
import { parseFieldSelector, parseLabelSelector } from '../../protocol/selector.ts'
import type { FieldMatcher, LabelMatcher } from '../../protocol/selector.ts'
import {
  alreadyExists, badRequest, conflict, fieldError, forbidden, invalid, MODIFIED_CONFLICT, notFound,
  qualifiedResource, statusOf
} from '../../protocol/status.ts'
import { objectKey, OwnerIndex, Tx, typeKey } from './tx.ts'
import type { Change, ObjectMaps } from './tx.ts'
import { GoneError } from './types.ts'
import { BadSelectorError } from '../../protocol/selector.ts'
import type { ListOptions, ObjectRef, StoreCommand, StoreReader, StoreResult, Watch, WatchOptions } from './types.ts'
import { checkReplicas, defaultObject, validateObject } from '../../protocol/validation.ts'
import { CLUSTER_CONFIG } from '../../protocol/network.ts'
import { MAX_COMMAND_BYTES } from '../../protocol/raft.ts'
import { allocateNodeCidr, allocateService, podRange, serviceRange } from './allocate.ts'

export { bootstrapCommands, encodeStoreCommand, decodeStoreCommand, isStoreCommand } from './command.ts'

export interface ResourceStoreOptions {
  /** watch events kept for resuming watches; default 10,000 */
  historySize?: number
}

const SNAPSHOT_VERSION = 1
/** Namespaces that may not be deleted, as in Kubernetes. */
const UNDELETABLE_NAMESPACES = new Set(['default', 'kube-system', 'kube-public'])
/** The alphabet of generated name suffixes (Kubernetes' own: no vowels, no look-alikes). */
const SUFFIX_ALPHABET = 'bcdfghjklmnpqrstvwxz2456789'

interface StoreSnapshot { v: number, appliedIndex: number, objects: Array<[string, string, KObject]> }

function isStoreSnapshot (v: unknown): v is StoreSnapshot {
  return isObject(v) && v.v === SNAPSHOT_VERSION && isNumber(v.appliedIndex) && Array.isArray(v.objects) &&
    v.objects.every(e => Array.isArray(e) && e.length === 3 && isString(e[0]) && isString(e[1]) && isObject(e[2]) && isObject(e[2].metadata))
}

interface HistoryEvent { rv: number, change: Change }

interface Watcher {
  typeKey: string
  namespace: string | undefined
  labels: LabelMatcher
  fields: FieldMatcher
  onEvent: (e: WatchEvent) => void
}

type Obj = Record<string, unknown>

function deepFreeze<T> (v: T): T {
  if (typeof v === 'object' && v !== null && !Object.isFrozen(v)) {
    Object.freeze(v)
    for (const x of Object.values(v)) deepFreeze(x)
  }
  return v
}

function copy<T> (v: T): T {
  return structuredClone(v)
}

/** Sets `key`, or deletes it for undefined, so that no undefined reaches msgpack. */
function setOpt (o: Obj, key: string, v: unknown): void {
  if (v === undefined || v === null) delete o[key]
  else o[key] = v
}

/** Everything but metadata and status: what bumps generation when it changes. */
function specOf (o: KObject): Obj {
  const { metadata: _m, status: _s, apiVersion: _a, kind: _k, ...rest } = o
  return rest
}

/** Five characters of generated name, derived from the new object's uid. */
export function nameSuffix (uid: string): string {
  const digest = createHash('sha256').update(uid).digest()
  let out = ''
  for (let i = 0; i < 5; i++) out += SUFFIX_ALPHABET[(digest[i] as number) % SUFFIX_ALPHABET.length]
  return out
}

const fail = (status: StatusBody): StoreResult => ({ ok: false, status })
const done = (object: KObject): StoreResult => ({ ok: true, object })

export class ResourceStore implements StateMachine, StoreReader {
  private objects: ObjectMaps = new Map()
  private owners = new OwnerIndex()
  private applied = 0
  private readonly historySize: number
  private history: HistoryEvent[] = []
  private historyStart = 0
  /** every event with a resourceVersion above this is in the history */
  private compactedThrough = 0
  private readonly watchers = new Set<Watcher>()

  constructor (opts: ResourceStoreOptions = {}) {
    this.historySize = Math.max(1, opts.historySize ?? 10_000)
  }

  /** The log index of the last store command applied (or the one the restored snapshot had applied). */
  get appliedIndex (): number { return this.applied }

  resourceVersion (): string { return String(this.applied) }

  // ---- StateMachine --------------------------------------------------------

  /** Applies the command at `index`; never throws on a bad command (a 400 Status instead). */
  apply (index: number, command: Uint8Array): StoreResult {
    // A Raft node applies each index once, in order; anything else is a bug upstream.
    if (!Number.isSafeInteger(index) || index <= this.applied) throw new Error(`ResourceStore.apply: index ${index} after ${this.applied}`)
    this.applied = index
    let cmd: StoreCommand
    try {
      cmd = decodeStoreCommand(command)
    } catch (err) {
      return fail(badRequest((err as Error).message))
    }
    const tx = new Tx(this.objects, this.owners)
    let result: StoreResult
    try {
      result = this.run(tx, cmd, index)
    } catch (err) {
      // A bug, but the same on every peer: nothing was committed.
      return fail(statusOf(500, 'InternalError', `store: ${(err as Error).message}`))
    }
    if (result.ok && cmd.dryRun !== true) this.commit(tx, index)
    return result
  }

  snapshot (): Uint8Array {
    const snap: StoreSnapshot = { v: SNAPSHOT_VERSION, appliedIndex: this.applied, objects: this.sortedObjects() }
    return encode(snap)
  }

  /** The same bytes as snapshot() now, encoded later in slices: the objects are frozen, so a list of them is the state. */
  capture (): SnapshotEncoder {
    const objects = this.sortedObjects()
    const appliedIndex = this.applied
    return async pause => await encodeInSlices({ v: SNAPSHOT_VERSION, appliedIndex }, 'objects', objects, pause)
  }

  private sortedObjects (): Array<[string, string, KObject]> {
    const objects: Array<[string, string, KObject]> = []
    for (const type of KINDS) {
      const m = this.objects.get(typeKey(type))
      if (m === undefined) continue
      for (const key of [...m.keys()].sort()) objects.push([type.group, type.plural, m.get(key) as KObject])
    }
    return objects
  }

  /**
   * Replaces the state with a snapshot's (a follower far behind installs
   * its leader's). Open watches stay open and receive the difference, as if
   * the entries in between had been applied one by one: DELETED for objects
   * that are gone (or re-created: then ADDED for the new one), ADDED for new
   * ones, MODIFIED for changed ones. Watchers inside the daemon (the kubelet,
   * the proxy, controllers) so never miss a change. The history is gone:
   * a watch resuming from an older resourceVersion gets 410.
   */
  restore (data: Uint8Array, index: number): void {
    const snap = decode(data, isStoreSnapshot, 'resource store snapshot')
    const objects: ObjectMaps = new Map()
    for (const [group, plural, object] of snap.objects) {
      const type = kindOfResource(group, plural)
      if (type === undefined) continue
      let m = objects.get(typeKey(type))
      if (m === undefined) objects.set(typeKey(type), m = new Map())
      m.set(objectKey(object.metadata.namespace, object.metadata.name ?? ''), deepFreeze(object))
    }
    const changes: Change[] = []
    for (const type of KINDS) {
      const before = this.objects.get(typeKey(type)) ?? new Map<string, KObject>()
      const after = objects.get(typeKey(type)) ?? new Map<string, KObject>()
      for (const [key, old] of before) {
        const now = after.get(key)
        if (now === undefined || now.metadata.uid !== old.metadata.uid) changes.push({ type, event: 'DELETED', object: old })
      }
      for (const [key, obj] of after) {
        const old = before.get(key)
        if (old === undefined || old.metadata.uid !== obj.metadata.uid) changes.push({ type, event: 'ADDED', object: obj })
        else if (old.metadata.resourceVersion !== obj.metadata.resourceVersion) changes.push({ type, event: 'MODIFIED', object: obj, old })
      }
    }
    this.objects = objects
    this.owners = OwnerIndex.of(objects)
    // The snapshot's own applied index (its last store command), not the log's: a
    // replica that restored and one that applied every entry must encode the same
    // state and answer the same resourceVersions.
    this.applied = Math.min(snap.appliedIndex, index)
    this.history = []
    this.historyStart = 0
    this.compactedThrough = this.applied
    this.broadcast(changes)
  }

  // ---- StoreReader ---------------------------------------------------------

  get<T extends KObject> (type: ResourceType<T>, namespace: string | undefined, name: string): T | undefined {
    return this.objects.get(typeKey(type))?.get(objectKey(type.namespaced ? namespace : undefined, name)) as T | undefined
  }

  /** The objects of `type` that match, sorted by namespace and name; throws BadSelectorError. */
  list<T extends KObject> (type: ResourceType<T>, opts: ListOptions = {}): { items: T[], resourceVersion: string } {
    const labels = parseLabelSelector(opts.labelSelector)
    const fields = parseFieldSelector(opts.fieldSelector, type.kind)
    const m = this.objects.get(typeKey(type))
    const items: T[] = []
    for (const key of [...(m?.keys() ?? [])].sort()) {
      const obj = m?.get(key) as T
      if (opts.namespace !== undefined && type.namespaced && obj.metadata.namespace !== opts.namespace) continue
      if (labels(obj.metadata.labels) && fields(obj)) items.push(obj)
    }
    return { items, resourceVersion: this.resourceVersion() }
  }

  watch<T extends KObject> (type: ResourceType<T>, opts: WatchOptions, onEvent: (e: WatchEvent<T>) => void): Watch {
    const w: Watcher = {
      typeKey: typeKey(type),
      namespace: type.namespaced ? opts.namespace : undefined,
      labels: parseLabelSelector(opts.labelSelector),
      fields: parseFieldSelector(opts.fieldSelector, type.kind),
      // the store delivers only objects of `type`, so of T
      onEvent: onEvent as (e: WatchEvent) => void
    }
    const rv = opts.resourceVersion
    if (rv === undefined || rv === '' || rv === '0') {
      for (const obj of this.list(type, opts).items) onEvent({ type: 'ADDED', object: obj })
    } else {
      if (!/^[0-9]+$/.test(rv)) throw new BadSelectorError(`invalid resourceVersion "${rv}": must be a decimal number`)
      const from = Number(rv)
      if (from < this.compactedThrough) throw new GoneError(`too old resource version: ${from} (${this.compactedThrough})`)
      for (let i = this.historyStart; i < this.history.length; i++) {
        const ev = this.history[i] as HistoryEvent
        if (ev.rv > from) this.deliver(w, ev.change)
      }
    }
    this.watchers.add(w)
    return { stop: () => { this.watchers.delete(w) } }
  }

  private matches (w: Watcher, obj: KObject): boolean {
    return (w.namespace === undefined || obj.metadata.namespace === w.namespace) && w.labels(obj.metadata.labels) && w.fields(obj)
  }

  /** Sends one change to a watcher, as Kubernetes' watch cache does: leaving the selection is a DELETED, entering it an ADDED. */
  private deliver (w: Watcher, c: Change): void {
    if (typeKey(c.type) !== w.typeKey) return
    const now = this.matches(w, c.object)
    let type: 'ADDED' | 'MODIFIED' | 'DELETED' | undefined
    if (c.event === 'MODIFIED') {
      const before = c.old === undefined || this.matches(w, c.old)
      type = before && now ? 'MODIFIED' : before ? 'DELETED' : now ? 'ADDED' : undefined
    } else if (now) {
      type = c.event
    }
    if (type !== undefined) w.onEvent({ type, object: c.object })
  }

  private commit (tx: Tx, index: number): void {
    for (const c of tx.changes) deepFreeze(c.object)
    tx.commit()
    for (const change of tx.changes) {
      this.history.push({ rv: index, change })
      if (this.history.length - this.historyStart > this.historySize) {
        this.compactedThrough = Math.max(this.compactedThrough, (this.history[this.historyStart] as HistoryEvent).rv)
        this.historyStart++
      }
    }
    if (this.historyStart > this.historySize) {
      this.history = this.history.slice(this.historyStart)
      this.historyStart = 0
    }
    this.broadcast(tx.changes)
  }

  /** Sends changes to every open watch; a watcher that throws is dropped, and the others go on. */
  private broadcast (changes: readonly Change[]): void {
    for (const change of changes) {
      for (const w of [...this.watchers]) {
        if (!this.watchers.has(w)) continue
        try { this.deliver(w, change) } catch { this.watchers.delete(w) }
      }
    }
  }

  // ---- commands ------------------------------------------------------------

  private run (tx: Tx, cmd: StoreCommand, index: number): StoreResult {
    switch (cmd.op) {
      case 'create': return this.create(tx, cmd.object, cmd.uid, cmd.now, index)
      case 'update': {
        if (cmd.subresource === 'scale') {
          if (cmd.ref === undefined || cmd.ref === null) return fail(badRequest('an update of the scale subresource needs ref'))
          return this.writeScale(tx, cmd.ref, cmd.object, index, cmd.now)
        }
        const type = kindOf(cmd.object.apiVersion, cmd.object.kind)
        if (type === undefined) return fail(noKind(cmd.object))
        const name = cmd.object.metadata.name
        if (!isString(name) || name === '') return fail(invalid(type, '', [fieldError('metadata.name', 'Required')]))
        const key = objectKey(type.namespaced ? (cmd.object.metadata.namespace ?? 'default') : undefined, name)
        const cur = tx.get(type, key)
        if (cur === undefined) return fail(notFound(type, name))
        return this.replace(tx, type, key, cur, cmd.object, cmd.subresource ?? undefined, index, cmd.now)
      }
      case 'patch': return this.patch(tx, cmd.ref, cmd.patchType, cmd.patch, cmd.subresource ?? undefined, index, cmd.now)
      case 'delete': {
        const found = this.find(tx, cmd.ref)
        if (!found.ok) return found
        const { type, key, object: cur } = found
        const pre = cmd.preconditions ?? {}
        if (isString(pre.uid) && pre.uid !== cur.metadata.uid) {
          return fail(conflict(type, cur.metadata.name ?? '', `Precondition failed: UID in precondition: ${pre.uid}, UID in object meta: ${cur.metadata.uid ?? ''}`))
        }
        if (isString(pre.resourceVersion) && pre.resourceVersion !== cur.metadata.resourceVersion) {
          return fail(conflict(type, cur.metadata.name ?? '', `Precondition failed: ResourceVersion in precondition: ${pre.resourceVersion}, ResourceVersion in object meta: ${cur.metadata.resourceVersion ?? ''}`))
        }
        if (type.kind === 'Namespace' && UNDELETABLE_NAMESPACES.has(cur.metadata.name ?? '')) {
          return fail(forbidden(`namespaces "${cur.metadata.name ?? ''}" is forbidden: this namespace may not be deleted`))
        }
        return done(this.remove(tx, type, key, cur, cmd.propagationPolicy ?? 'Background', index, cmd.now))
      }
      case 'bind': return this.bind(tx, cmd.ref, cmd.node, cmd.preconditions?.uid, index, cmd.now)
      case 'evict': return evict(tx, cmd, {
        deletePod: (key, pod) => this.remove(tx, POD, key, pod, 'Background', index, cmd.now),
        writeStatus: (key, cur, next) => this.replace(tx, POD_DISRUPTION_BUDGET, key, cur, next, 'status', index, cmd.now)
      })
    }
  }

  private find (tx: Tx, ref: ObjectRef): { ok: true, type: Kind, key: string, object: KObject } | { ok: false, status: StatusBody } {
    const type = kindOfResource(ref.group, ref.resource)
    if (type === undefined) return { ok: false, status: statusOf(404, 'NotFound', `the server could not find the requested resource (${ref.resource}${ref.group === '' ? '' : '.' + ref.group})`) }
    const key = objectKey(type.namespaced ? (ref.namespace ?? 'default') : undefined, ref.name)
    const object = tx.get(type, key)
    if (object === undefined) return { ok: false, status: notFound(type, ref.name) }
    return { ok: true, type, key, object }
  }

  private create (tx: Tx, input: KObject, uid: string, now: string, index: number): StoreResult {
    const type = kindOf(input.apiVersion, input.kind)
    if (type === undefined) return fail(noKind(input))
    const obj = copy(input)
    const meta = obj.metadata as Obj
    for (const f of ['uid', 'resourceVersion', 'generation', 'creationTimestamp', 'deletionTimestamp', 'deletionGracePeriodSeconds']) delete meta[f]
    if (type.namespaced) meta.namespace = isString(meta.namespace) && meta.namespace !== '' ? meta.namespace : 'default'
    else delete meta.namespace
    if ((!isString(meta.name) || meta.name === '') && isString(meta.generateName) && meta.generateName !== '') {
      meta.name = meta.generateName.slice(0, 58) + nameSuffix(uid)
    }
    // Controllers and kubelets write status; a create starts without one (a Node's kubelet registers with it).
    if (type.kind !== 'Node') delete obj.status
    // The uid first: a Job's defaults make its selector from it.
    meta.uid = uid
    defaultObject(obj, type)
    const bad = validateObject(obj, type)
    if (bad !== undefined) return fail(bad)
    // validated: the name is set, and so is the namespace of a namespaced kind
    const { name = '', namespace } = obj.metadata
    if (namespace !== undefined) {
      const ns = tx.get(NAMESPACE, objectKey(undefined, namespace))
      if (ns === undefined) return fail(notFound(NAMESPACE, namespace))
      if (ns.metadata.deletionTimestamp !== undefined) {
        return fail(forbidden(`${qualifiedResource(type)} "${name}" is forbidden: unable to create new content in namespace ${namespace} because it is being terminated`))
      }
    }
    const key = objectKey(namespace, name)
    if (tx.get(type, key) !== undefined) return fail(alreadyExists(type, name))
    if (type.kind === 'Service' || type.kind === 'Node') {
      const errors = this.allocate(tx, obj, undefined, key, uid)
      if (errors.length > 0) return fail(invalid(type, name, errors))
    }
    meta.uid = uid
    meta.creationTimestamp = now
    meta.resourceVersion = String(index)
    meta.generation = 1
    tx.put(type, key, obj, 'ADDED')
    return done(obj)
  }

  /** Sets a pod's node and its PodScheduled condition True, as kube-apiserver's BindingREST does. */
  private bind (tx: Tx, ref: ObjectRef, node: string, uid: string | undefined, index: number, now: string): StoreResult {
    const found = this.find(tx, ref)
    if (!found.ok) return found
    const { type, key, object: cur } = found
    const name = cur.metadata.name ?? ''
    if (type.kind !== 'Pod') return fail(statusOf(404, 'NotFound', `the server could not find the requested resource (${qualifiedResource(type)}/binding)`))
    if (uid !== undefined && uid !== cur.metadata.uid) {
      return fail(conflict(type, name, `Precondition failed: UID in precondition: ${uid}, UID in object meta: ${cur.metadata.uid ?? ''}`))
    }
    if (cur.metadata.deletionTimestamp !== undefined) return fail(conflict(type, name, `pod ${name} is being deleted, cannot be assigned to a host`))
    const spec = (isObject(cur.spec) ? cur.spec : {}) as Obj
    if (isString(spec.nodeName) && spec.nodeName !== '') return fail(conflict(type, name, `pod ${name} is already assigned to node "${spec.nodeName}"`))
    const next = copy(cur)
    next.spec = { ...spec, nodeName: node }
    const status = (isObject(cur.status) ? cur.status : {}) as Obj
    const conditions = (Array.isArray(status.conditions) ? status.conditions : []).filter(c => !(isObject(c) && c.type === 'PodScheduled'))
    next.status = { ...status, conditions: [...conditions, { type: 'PodScheduled', status: 'True', lastProbeTime: null, lastTransitionTime: now }] }
    return this.replace(tx, type, key, cur, next, 'binding', index, now)
  }

  /** An update of `cur` to `input` (the whole object, or only its status; a binding changes both). */
  private replace (tx: Tx, type: Kind, key: string, cur: KObject, input: KObject, subresource: 'status' | 'binding' | undefined, index: number, now: string): StoreResult {
    const name = cur.metadata.name ?? ''
    const inMeta = (isObject(input.metadata) ? input.metadata : {}) as KObject['metadata']
    if (isString(inMeta.resourceVersion) && inMeta.resourceVersion !== '' && inMeta.resourceVersion !== cur.metadata.resourceVersion) {
      return fail(conflict(type, name, MODIFIED_CONFLICT))
    }
    if (isString(inMeta.uid) && inMeta.uid !== '' && inMeta.uid !== cur.metadata.uid) {
      return fail(conflict(type, name, `Precondition failed: UID in precondition: ${inMeta.uid}, UID in object meta: ${cur.metadata.uid ?? ''}`))
    }
    let next: KObject
    if (subresource === 'status') {
      next = copy(cur)
      setOpt(next, 'status', copy(input.status))
    } else {
      next = copy(input)
      next.apiVersion = cur.apiVersion
      next.kind = cur.kind
      const meta = copy(inMeta) as Obj
      meta.name = cur.metadata.name
      for (const f of ['namespace', 'uid', 'creationTimestamp', 'generation', 'generateName', 'deletionTimestamp', 'deletionGracePeriodSeconds'] as const) {
        setOpt(meta, f, cur.metadata[f])
      }
      next.metadata = meta
      setOpt(next, 'status', copy(subresource === 'binding' ? input.status : cur.status))
      defaultObject(next, type)
    }
    const bad = validateObject(next, type) ?? this.immutable(type, cur, next)
    if (bad !== undefined) return fail(bad)
    if ((type.kind === 'Service' || type.kind === 'Node') && subresource !== 'status') {
      const errors = this.allocate(tx, next, cur, key, cur.metadata.uid ?? '')
      if (errors.length > 0) return fail(invalid(type, name, errors))
    }
    if (!jsonEqual(specOf(cur), specOf(next))) next.metadata.generation = (cur.metadata.generation ?? 1) + 1
    next.metadata.resourceVersion = cur.metadata.resourceVersion
    if (jsonEqual(next, cur)) return done(cur)
    next.metadata.resourceVersion = String(index)
    // Patches, and status beside a large spec, could grow an object past
    // what any one command may carry; then no answer or watch event could.
    const bytes = encode(next).byteLength
    if (bytes > MAX_COMMAND_BYTES) {
      return fail(statusOf(413, 'RequestEntityTooLarge', `the ${type.kind} would be ${bytes} bytes once encoded, more than the ${MAX_COMMAND_BYTES} bytes an object may be`))
    }
    if (next.metadata.deletionTimestamp !== undefined && (next.metadata.finalizers ?? []).length === 0) {
      if (type.kind === 'Namespace') {
        tx.put(type, key, next, 'MODIFIED', cur)
        this.finishNamespace(tx, name, index, now)
      } else {
        this.erase(tx, type, key, next, index, now)
      }
      return done(next)
    }
    tx.put(type, key, next, 'MODIFIED', cur)
    return done(next)
  }

  /** A Service's address and NodePorts, or a Node's pod range (allocate.ts), against every other one. */
  private allocate (tx: Tx, obj: KObject, cur: KObject | undefined, key: string, uid: string): string[] {
    const config = tx.get(CONFIG_MAP, objectKey(CLUSTER_CONFIG.namespace, CLUSTER_CONFIG.name))
    const others = <T extends KObject>(type: ResourceType<T>): T[] => tx.all([type]).filter(s => s.key !== key).map(s => s.object as T)
    const old = <T extends KObject>(type: ResourceType<T>): T | undefined => cur !== undefined && isOfType(type, cur) ? cur : undefined
    if (isOfType(NODE, obj)) return allocateNodeCidr(obj, old(NODE), others(NODE), podRange(config), config?.metadata.uid)
    if (isOfType(SERVICE, obj)) return allocateService(obj, old(SERVICE), others(SERVICE), serviceRange(config), uid)
    return []
  }

  /** The 422 for a change Kubernetes forbids on update, or undefined. */
  private immutable (type: Kind, cur: KObject, next: KObject): StatusBody | undefined {
    const name = cur.metadata.name ?? ''
    const errors: string[] = []
    const added = (next.metadata.finalizers ?? []).filter(f => !(cur.metadata.finalizers ?? []).includes(f))
    if (cur.metadata.deletionTimestamp !== undefined && added.length > 0) {
      errors.push(fieldError('metadata.finalizers', 'Forbidden', undefined, `no new finalizers can be added if the object is being deleted, found new finalizers ${JSON.stringify(added)}`))
    }
    type.validateUpdate?.(cur, next, errors)
    return errors.length === 0 ? undefined : invalid(type, name, errors)
  }

  private patch (tx: Tx, ref: ObjectRef, patchType: string, patch: unknown, subresource: 'status' | 'scale' | undefined, index: number, now: string): StoreResult {
    const found = this.find(tx, ref)
    if (!found.ok) return found
    const { type, key, object: cur } = found
    if (subresource !== undefined && !type.subresources.includes(subresource)) {
      return fail(statusOf(404, 'NotFound', `the server could not find the requested resource (${qualifiedResource(type)}/${subresource})`))
    }
    const base = subresource === 'scale' && isScalable(cur) ? scaleOf(cur) : cur
    let patched: unknown
    try {
      if (patchType === 'json') patched = applyJsonPatch(base, patch)
      else if (!isObject(patch)) return fail(badRequest(`a ${patchType} patch must be a JSON object`))
      else patched = patchType === 'merge' ? applyMergePatch(base, patch) : applyStrategicPatch(base, patch)
    } catch (err) {
      if (!(err instanceof PatchError)) throw err
      return fail(err.code === 400 ? badRequest(err.message) : statusOf(422, 'Invalid', err.message))
    }
    if (!isObject(patched) || !isObject(patched.metadata)) return fail(statusOf(422, 'Invalid', 'the patched object has no metadata'))
    // A patch may build on what is there: checked here, no stored object nests deeper than a command may.
    if (jsonBoundPassed(patched, MAX_JSON_DEPTH) !== undefined) return fail(statusOf(422, 'Invalid', `the patched object would nest more than ${MAX_JSON_DEPTH} levels deep`))
    const meta = patched.metadata
    if (meta.name !== base.metadata.name || (meta.namespace ?? undefined) !== base.metadata.namespace) {
      return fail(badRequest(`the patch may not change metadata.name or metadata.namespace of ${qualifiedResource(type)} "${ref.name}"`))
    }
    if (subresource === 'scale') return this.writeScale(tx, ref, patched as KObject, index, now)
    return this.replace(tx, type, key, cur, patched as KObject, subresource, index, now)
  }

  /** Sets spec.replicas from a Scale; answers the Scale of the result. */
  private writeScale (tx: Tx, ref: ObjectRef, scale: KObject, index: number, now: string): StoreResult {
    const found = this.find(tx, ref)
    if (!found.ok) return found
    const { type, key, object: cur } = found
    if (!type.subresources.includes('scale')) return fail(statusOf(404, 'NotFound', `the server could not find the requested resource (${qualifiedResource(type)}/scale)`))
    const replicas = isObject(scale.spec) ? scale.spec.replicas : undefined
    const scaleKind = { kind: 'Scale', group: 'autoscaling' }
    if (!Number.isSafeInteger(replicas)) {
      return fail(invalid(scaleKind, ref.name, [fieldError('spec.replicas', 'Invalid', replicas ?? null, 'must be of type int32')]))
    }
    const replicaErrors: string[] = []
    checkReplicas(replicas, 'spec.replicas', replicaErrors)
    if (replicaErrors.length > 0) return fail(invalid(scaleKind, ref.name, replicaErrors))
    const rv = scale.metadata.resourceVersion
    if (isString(rv) && rv !== '' && rv !== cur.metadata.resourceVersion) return fail(conflict(type, ref.name, MODIFIED_CONFLICT))
    const next = copy(cur)
    next.spec = { ...(next.spec as Obj), replicas }
    const result = this.replace(tx, type, key, cur, next, undefined, index, now)
    return result.ok && isScalable(result.object) ? done(scaleOf(result.object)) : result
  }

  /**
   * Deletes `cur`: with finalizers (or Foreground) it only gets a
   * deletionTimestamp; otherwise it goes, and its dependents with it
   * (Background), or they lose their owner reference (Orphan). A namespace
   * takes everything in it. Answers the object as the delete left it.
   */
  private remove (tx: Tx, type: ResourceType, key: string, cur: KObject, policy: 'Background' | 'Foreground' | 'Orphan', index: number, now: string): KObject {
    if (policy === 'Orphan') this.orphan(tx, cur.metadata.uid, index)
    const finalizers = [...(cur.metadata.finalizers ?? [])]
    if (policy === 'Foreground' && !finalizers.includes('foregroundDeletion')) finalizers.push('foregroundDeletion')
    const terminating = cur.metadata.deletionTimestamp !== undefined
    if (terminating && finalizers.length === (cur.metadata.finalizers ?? []).length) return cur
    if (finalizers.length > 0 || type.kind === 'Namespace') {
      const next = copy(cur)
      next.metadata.deletionTimestamp ??= now
      // A pod's grace is its own (as Kubernetes records it); other kinds have none.
      const podGrace = type.kind === 'Pod' ? (next.spec as { terminationGracePeriodSeconds?: unknown } | undefined)?.terminationGracePeriodSeconds : undefined
      next.metadata.deletionGracePeriodSeconds ??= typeof podGrace === 'number' ? podGrace : type.kind === 'Pod' ? 30 : 0
      if (finalizers.length > 0) next.metadata.finalizers = finalizers
      if (type.kind === 'Namespace') next.status = { ...(next.status as Obj | undefined), phase: 'Terminating' }
      next.metadata.resourceVersion = String(index)
      tx.put(type, key, next, 'MODIFIED', cur)
      if (type.kind !== 'Namespace') return next
      const name = cur.metadata.name ?? ''
      for (const s of tx.all(KINDS.filter(t => t.namespaced))) {
        if (s.object.metadata.namespace !== name || tx.get(s.type, s.key) === undefined) continue
        this.remove(tx, s.type, s.key, tx.get(s.type, s.key) as KObject, 'Background', index, now)
      }
      this.finishNamespace(tx, name, index, now)
      return tx.get(type, key) ?? next
    }
    return this.erase(tx, type, key, cur, index, now)
  }

  /** Takes the object out of the store and garbage-collects its dependents (Background). */
  private erase (tx: Tx, type: ResourceType, key: string, obj: KObject, index: number, now: string): KObject {
    const gone = copy(obj)
    gone.metadata.resourceVersion = String(index)
    tx.remove(type, key, gone)
    const uid = obj.metadata.uid
    if (uid !== undefined) {
      for (const s of tx.dependents(uid, KINDS)) {
        const refs = s.object.metadata.ownerReferences ?? []
        const dep = tx.get(s.type, s.key)
        if (dep === undefined) continue
        // Owners left: only the dangling reference goes, as Kubernetes' garbage collector does.
        if (refs.some(r => r.uid !== uid)) this.dropOwner(tx, s.type, s.key, dep, uid, index)
        else this.remove(tx, s.type, s.key, dep, 'Background', index, now)
      }
    }
    if (type.namespaced && obj.metadata.namespace !== undefined) this.finishNamespace(tx, obj.metadata.namespace, index, now)
    return gone
  }

  private dropOwner (tx: Tx, type: ResourceType, key: string, dep: KObject, uid: string, index: number): void {
    const next = copy(dep)
    const refs = (next.metadata.ownerReferences ?? []).filter(r => r.uid !== uid)
    setOpt(next.metadata as Obj, 'ownerReferences', refs.length === 0 ? undefined : refs)
    next.metadata.resourceVersion = String(index)
    tx.put(type, key, next, 'MODIFIED', dep)
  }

  private orphan (tx: Tx, uid: string | undefined, index: number): void {
    if (uid === undefined) return
    for (const s of tx.dependents(uid, KINDS)) this.dropOwner(tx, s.type, s.key, s.object, uid, index)
  }

  /** Removes a terminating namespace once it is empty and has no finalizers. */
  private finishNamespace (tx: Tx, name: string, index: number, now: string): void {
    const key = objectKey(undefined, name)
    const ns = tx.get(NAMESPACE, key)
    if (ns === undefined || ns.metadata.deletionTimestamp === undefined || (ns.metadata.finalizers ?? []).length > 0) return
    if (tx.all(KINDS.filter(t => t.namespaced)).some(s => s.object.metadata.namespace === name)) return
    this.erase(tx, NAMESPACE, key, ns, index, now)
  }
}

function noKind (obj: KObject): StatusBody {
  return badRequest(`no kind "${String(obj.kind)}" is registered for version "${String(obj.apiVersion)}"`)
}

/** The names of the namespaces bootstrap creates; re-exported for the daemon. */
export { SYSTEM_NAMESPACES }
