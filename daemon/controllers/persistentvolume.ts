// The PersistentVolume binder (leader only), as Kubernetes'
// pkg/controller/volume/persistentvolume for volumes that already exist:
// an unbound claim is bound to the smallest Available volume that fits it
// (the same storageClassName, every access mode it asks for, at least the
// storage it requests, its selector; a volume pre-bound to the claim by
// claimRef first; a claim's volumeName names its volume), in Kubernetes'
// order: the volume's claimRef (with the claim's uid), then the claim's
// volumeName, then both statuses. A claim without storageClassName gets
// the default StorageClass's name, when there is one (retroactive default
// assignment). A claim of a WaitForFirstConsumer class waits (Pending) for
// a pod; pods cannot mount claims yet (issue 17), so such a claim stays
// Pending. Volume phases: Available (no claimRef), Bound, Released (its
// claim is gone; Retain keeps it so), Failed (its claim is gone, its policy
// is Delete, and Shoal provisioned nothing it could delete). Every write
// carries the resourceVersion it was decided on: two binders, or a binder
// and a user, cannot both win.
// May import: protocol/, daemon/store/types.ts, daemon/workqueue, ./framework.ts.
import type { PersistentVolume, PersistentVolumeClaim } from '../../protocol/core-v1.ts'
import { PERSISTENT_VOLUME, PERSISTENT_VOLUME_CLAIM, STORAGE_CLASS } from '../../protocol/kinds.ts'
import { jsonEqual } from '../../protocol/json.ts'
import { parseQuantity } from '../../protocol/quantity.ts'
import { matchLabelSelector } from '../../protocol/selector.ts'
import { isDefaultClass } from '../../protocol/storage-v1.ts'
import type { StoreCommand, Watch } from '../store/types.ts'
import { keyOf, splitKey, WorkQueue } from '../workqueue/queue.ts'
import type { Controller, ControllerContext } from './framework.ts'

const PV_KEY = 'pv/'
const CLAIM_KEY = 'claim/'

export class PersistentVolumeController implements Controller {
  readonly name = 'persistentvolume-binder-controller'
  private queue: WorkQueue | undefined
  private watches: Watch[] = []

  start (ctx: ControllerContext): void {
    this.stop()
    const queue: WorkQueue = this.queue = new WorkQueue({ clock: ctx.clock, log: ctx.log, name: this.name, reconcile: async key => await this.reconcile(ctx, key) })
    this.watches = [
      ctx.store.watch(PERSISTENT_VOLUME, {}, e => {
        if (e.type === 'ERROR') return
        queue.add(PV_KEY + (e.object.metadata.name ?? ''))
        const claim = e.object.spec?.claimRef
        if (claim?.name !== undefined) queue.add(CLAIM_KEY + `${claim.namespace ?? 'default'}/${claim.name}`)
        // A volume that became Available may fit a claim that waits.
        if (e.type !== 'DELETED' && claim === undefined) for (const c of ctx.store.list(PERSISTENT_VOLUME_CLAIM, {}).items) if (c.spec?.volumeName === undefined || c.spec.volumeName === '') queue.add(CLAIM_KEY + keyOf(c))
      }),
      ctx.store.watch(PERSISTENT_VOLUME_CLAIM, {}, e => {
        if (e.type === 'ERROR') return
        queue.add(CLAIM_KEY + keyOf(e.object))
        const volume = e.object.spec?.volumeName
        if (volume !== undefined && volume !== '') queue.add(PV_KEY + volume)
        if (e.type === 'DELETED') for (const pv of ctx.store.list(PERSISTENT_VOLUME, {}).items) if (pv.spec?.claimRef?.uid === e.object.metadata.uid) queue.add(PV_KEY + (pv.metadata.name ?? ''))
      }),
      ctx.store.watch(STORAGE_CLASS, {}, e => {
        if (e.type === 'ERROR' || e.type === 'DELETED') return
        for (const c of ctx.store.list(PERSISTENT_VOLUME_CLAIM, {}).items) if (c.spec?.storageClassName === undefined) queue.add(CLAIM_KEY + keyOf(c))
      })
    ]
  }

  stop (): void {
    for (const w of this.watches) w.stop()
    this.watches = []
    this.queue?.stop()
    this.queue = undefined
  }

  private async reconcile (ctx: ControllerContext, key: string): Promise<boolean> {
    if (key.startsWith(PV_KEY)) return await this.syncVolume(ctx, key.slice(PV_KEY.length))
    const { namespace, name } = splitKey(key.slice(CLAIM_KEY.length))
    return await this.syncClaim(ctx, namespace ?? 'default', name)
  }

  private async syncVolume (ctx: ControllerContext, name: string): Promise<boolean> {
    const pv = ctx.store.get(PERSISTENT_VOLUME, '', name)
    if (pv === undefined || pv.metadata.deletionTimestamp !== undefined) return true
    const ref = pv.spec?.claimRef
    if (ref?.name === undefined) return await this.volumePhase(ctx, pv, 'Available')
    const claim = ctx.store.get(PERSISTENT_VOLUME_CLAIM, ref.namespace ?? 'default', ref.name)
    if (claim !== undefined && (ref.uid === undefined || ref.uid === claim.metadata.uid)) {
      // Pre-bound to a claim that exists: Bound once the claim names it; until then the claim's sync finishes the binding.
      return claim.spec?.volumeName === name ? await this.volumePhase(ctx, pv, 'Bound') : true
    }
    if (ref.uid === undefined) return await this.volumePhase(ctx, pv, 'Available')
    // Its claim is gone.
    if (pv.spec?.persistentVolumeReclaimPolicy === 'Delete') {
      return await this.volumePhase(ctx, pv, 'Failed', 'VolumeFailedDelete', 'no volume plugin can delete this volume: Shoal deletes only the volumes it provisioned')
    }
    return await this.volumePhase(ctx, pv, 'Released')
  }

  private async syncClaim (ctx: ControllerContext, namespace: string, name: string): Promise<boolean> {
    const claim = ctx.store.get(PERSISTENT_VOLUME_CLAIM, namespace, name)
    if (claim === undefined || claim.metadata.deletionTimestamp !== undefined) return true
    const spec = claim.spec ?? {}
    if (spec.storageClassName === undefined) {
      const def = ctx.store.list(STORAGE_CLASS, {}).items.filter(isDefaultClass).sort((a, b) => (b.metadata.creationTimestamp ?? '').localeCompare(a.metadata.creationTimestamp ?? ''))[0]
      if (def !== undefined) return await this.write(ctx, claimPatch(claim, { spec: { storageClassName: def.metadata.name } }, ctx.now()))
    }
    const volumeName = spec.volumeName
    if (volumeName !== undefined && volumeName !== '') {
      const pv = ctx.store.get(PERSISTENT_VOLUME, '', volumeName)
      if (pv === undefined) return await this.claimStatus(ctx, claim, claim.status?.phase === 'Bound' ? 'Lost' : 'Pending')
      const ref = pv.spec?.claimRef
      if (ref?.name === undefined) return await this.write(ctx, volumePatch(pv, { spec: { claimRef: claimRefOf(claim) } }, ctx.now()))
      if (ref.name !== name || (ref.namespace ?? 'default') !== namespace || (ref.uid !== undefined && ref.uid !== claim.metadata.uid)) {
        // The volume is someone else's.
        return await this.claimStatus(ctx, claim, 'Pending')
      }
      if (ref.uid === undefined) return await this.write(ctx, volumePatch(pv, { spec: { claimRef: claimRefOf(claim) } }, ctx.now()))
      return await this.claimStatus(ctx, claim, 'Bound', pv)
    }
    const cls = spec.storageClassName !== undefined && spec.storageClassName !== '' ? ctx.store.get(STORAGE_CLASS, '', spec.storageClassName) : undefined
    if (cls?.volumeBindingMode === 'WaitForFirstConsumer') return await this.claimStatus(ctx, claim, 'Pending')
    const pv = bestVolume(claim, ctx.store.list(PERSISTENT_VOLUME, {}).items)
    if (pv === undefined) return await this.claimStatus(ctx, claim, 'Pending')
    // Kubernetes' order: the volume's claimRef (with the claim's uid), then the claim's volumeName, then (the next passes) the statuses.
    if (pv.spec?.claimRef?.uid !== claim.metadata.uid) return await this.write(ctx, volumePatch(pv, { spec: { claimRef: claimRefOf(claim) } }, ctx.now()))
    return await this.write(ctx, claimPatch(claim, { spec: { volumeName: pv.metadata.name } }, ctx.now()))
  }

  private async volumePhase (ctx: ControllerContext, pv: PersistentVolume, phase: NonNullable<PersistentVolume['status']>['phase'], reason?: string, message?: string): Promise<boolean> {
    const cur = pv.status ?? {}
    if (cur.phase === phase && cur.reason === reason && cur.message === message) return true
    return await this.write(ctx, {
      op: 'patch',
      ref: { group: '', resource: 'persistentvolumes', namespace: '', name: pv.metadata.name ?? '' },
      patchType: 'merge',
      subresource: 'status',
      patch: { metadata: { resourceVersion: pv.metadata.resourceVersion }, status: { phase, reason: reason ?? null, message: message ?? null, lastPhaseTransitionTime: cur.phase !== phase ? ctx.now() : cur.lastPhaseTransitionTime } },
      now: ctx.now()
    })
  }

  private async claimStatus (ctx: ControllerContext, claim: PersistentVolumeClaim, phase: 'Pending' | 'Bound' | 'Lost', pv?: PersistentVolume): Promise<boolean> {
    const status = phase === 'Bound' && pv !== undefined
      ? { phase, accessModes: pv.spec?.accessModes ?? [], capacity: pv.spec?.capacity ?? {} }
      : { phase }
    const cur = claim.status ?? {}
    if (cur.phase === phase && (phase !== 'Bound' || (jsonEqual(cur.accessModes, (status as { accessModes?: unknown }).accessModes) && jsonEqual(cur.capacity, (status as { capacity?: unknown }).capacity)))) return true
    return await this.write(ctx, {
      op: 'patch',
      ref: { group: '', resource: 'persistentvolumeclaims', namespace: claim.metadata.namespace ?? 'default', name: claim.metadata.name ?? '' },
      patchType: 'merge',
      subresource: 'status',
      patch: { metadata: { resourceVersion: claim.metadata.resourceVersion }, status: { accessModes: null, capacity: null, ...status } },
      now: ctx.now()
    })
  }

  /** A write decided on what was read: a conflict (409) means it changed meanwhile, and its event brings the key back. */
  private async write (ctx: ControllerContext, cmd: StoreCommand): Promise<boolean> {
    const r = await ctx.write(cmd)
    return r.ok || r.status.code === 404 || r.status.code === 409
  }
}

function claimRefOf (claim: PersistentVolumeClaim): NonNullable<NonNullable<PersistentVolume['spec']>['claimRef']> {
  return { apiVersion: 'v1', kind: 'PersistentVolumeClaim', namespace: claim.metadata.namespace ?? 'default', name: claim.metadata.name ?? '', uid: claim.metadata.uid ?? '', resourceVersion: claim.metadata.resourceVersion ?? '' }
}

function claimPatch (claim: PersistentVolumeClaim, patch: Record<string, unknown>, now: string): StoreCommand {
  return {
    op: 'patch',
    ref: { group: '', resource: 'persistentvolumeclaims', namespace: claim.metadata.namespace ?? 'default', name: claim.metadata.name ?? '' },
    patchType: 'merge',
    patch: { ...patch, metadata: { resourceVersion: claim.metadata.resourceVersion } },
    now
  }
}

function volumePatch (pv: PersistentVolume, patch: Record<string, unknown>, now: string): StoreCommand {
  return {
    op: 'patch',
    ref: { group: '', resource: 'persistentvolumes', namespace: '', name: pv.metadata.name ?? '' },
    patchType: 'merge',
    patch: { ...patch, metadata: { resourceVersion: pv.metadata.resourceVersion } },
    now
  }
}

function storage (v: unknown): number {
  try { return v === undefined ? 0 : parseQuantity(v as string | number) } catch { return 0 }
}

/**
 * The volume for an unbound claim: one pre-bound to it, else the smallest
 * Available one of its class ("" and none match each other) that offers
 * every access mode it asks for and at least its storage, and matches its
 * selector; undefined when none does.
 */
export function bestVolume (claim: PersistentVolumeClaim, volumes: PersistentVolume[]): PersistentVolume | undefined {
  const spec = claim.spec ?? {}
  const want = storage(spec.resources?.requests?.storage)
  const cls = spec.storageClassName ?? ''
  const fits = (pv: PersistentVolume): boolean => {
    const s = pv.spec ?? {}
    if (pv.metadata.deletionTimestamp !== undefined || (s.storageClassName ?? '') !== cls) return false
    if ((s.volumeMode ?? 'Filesystem') !== (spec.volumeMode ?? 'Filesystem')) return false
    if (!(spec.accessModes ?? []).every(m => (s.accessModes ?? []).includes(m))) return false
    if (storage(s.capacity?.storage) < want) return false
    return spec.selector === undefined || matchLabelSelector(spec.selector, pv.metadata.labels ?? {})
  }
  const preBound = volumes.find(pv => pv.spec?.claimRef?.name === claim.metadata.name && (pv.spec?.claimRef?.namespace ?? 'default') === (claim.metadata.namespace ?? 'default') &&
    (pv.spec?.claimRef?.uid === undefined || pv.spec.claimRef.uid === claim.metadata.uid) && fits(pv))
  if (preBound !== undefined) return preBound
  return volumes
    .filter(pv => pv.spec?.claimRef === undefined && fits(pv))
    .sort((a, b) => storage(a.spec?.capacity?.storage) - storage(b.spec?.capacity?.storage) || (a.metadata.name ?? '').localeCompare(b.metadata.name ?? ''))[0]
}
