// ControllerRevisions: the template history of DaemonSets and StatefulSets,
// as Kubernetes keeps it, so that `kubectl rollout history|undo` work. A
// revision's data is the strategic merge patch that puts its template back
// (`{"spec":{"template":{…,"$patch":"replace"}}}`); its name is
// `<owner>-<hash>`, its number grows with each new template, and a rollback
// to an older template renumbers that revision as the newest, as Kubernetes
// does. History beyond revisionHistoryLimit is pruned, keeping the revisions
// that live pods still run.
// May import: protocol/, daemon/store/types.ts, ./framework.ts, ./hash.ts, ./replicaset.ts.
import { CONTROLLER_REVISION_HASH } from '../../protocol/apps-v1.ts'
import type { ControllerRevision } from '../../protocol/apps-v1.ts'
import type { PodTemplateSpec } from '../../protocol/core-v1.ts'
import { CONTROLLER_REVISION } from '../../protocol/kinds.ts'
import type { LabelSelector, TypedObject } from '../../protocol/k8s.ts'
import type { ObjectRef } from '../store/types.ts'
import type { ControllerContext } from './framework.ts'
import { canonicalJson, podTemplateHash } from './hash.ts'
import { controllerRefOf, mustWrite, ownerRefTo } from './replicaset.ts'

/** What a revision's owner has: a name, a uid, a selector, a template and (in status) a collision count. */
export type RevisionOwner = TypedObject<'apps/v1', 'DaemonSet' | 'StatefulSet'> & {
  spec?: { template?: PodTemplateSpec, selector?: LabelSelector, revisionHistoryLimit?: number }
  status?: { collisionCount?: number }
}

export function revisionRef (namespace: string, name: string): ObjectRef {
  return { group: 'apps', resource: 'controllerrevisions', namespace, name }
}

/** The patch a revision stores: the owner's template, replacing whatever template is there. */
export function revisionData (template: PodTemplateSpec | undefined): { spec: { template: Record<string, unknown> } } {
  return { spec: { template: { ...structuredClone(template ?? {}), $patch: 'replace' } } }
}

/** The template a revision's data puts back. */
export function templateOf (rev: ControllerRevision): PodTemplateSpec | undefined {
  const data = rev.data as { spec?: { template?: Record<string, unknown> } } | undefined
  const t = data?.spec?.template
  if (t === undefined || t === null || typeof t !== 'object') return undefined
  const { $patch: _, ...template } = t
  return template as PodTemplateSpec
}

/** The hash of a template as a revision: the suffix of its name and the pods' controller-revision-hash. */
export function revisionHash (template: PodTemplateSpec | undefined, collisionCount = 0): string {
  return podTemplateHash(revisionData(template) as unknown as PodTemplateSpec, collisionCount)
}

/** The revisions `owner` controls, oldest first. */
export function ownedRevisions (ctx: ControllerContext, owner: RevisionOwner): ControllerRevision[] {
  const uid = owner.metadata.uid ?? ''
  return ctx.store.list(CONTROLLER_REVISION, { namespace: owner.metadata.namespace ?? 'default' }).items
    .filter(r => controllerRefOf(r)?.uid === uid)
    .sort((a, b) => a.revision - b.revision)
}

/**
 * Makes sure `owner`'s current template has a revision, the newest, and
 * answers it with the owner's revisions after the change (oldest first).
 * An existing revision with the same data (a rollback) is renumbered as the
 * newest instead of being copied.
 */
export async function syncRevision (ctx: ControllerContext, owner: RevisionOwner): Promise<{ update: ControllerRevision, revisions: ControllerRevision[] }> {
  const ns = owner.metadata.namespace ?? 'default'
  const template = owner.spec?.template
  const data = revisionData(template)
  const revisions = ownedRevisions(ctx, owner)
  const max = revisions.at(-1)?.revision ?? 0
  const same = revisions.filter(r => canonicalJson(r.data) === canonicalJson(data))
  const existing = same.at(-1)
  if (existing !== undefined) {
    if (existing.revision === max) return { update: existing, revisions }
    const bumped = await mustWrite<ControllerRevision>(ctx, { op: 'update', object: { ...existing, revision: max + 1 }, now: ctx.now() })
    return { update: bumped, revisions: [...revisions.filter(r => r.metadata.name !== bumped.metadata.name), bumped] }
  }
  const hash = revisionHash(template, owner.status?.collisionCount ?? 0)
  const created = await mustWrite<ControllerRevision>(ctx, {
    op: 'create',
    object: {
      apiVersion: 'apps/v1',
      kind: 'ControllerRevision',
      metadata: {
        name: `${owner.metadata.name ?? ''}-${hash}`,
        namespace: ns,
        labels: { ...(template?.metadata?.labels ?? {}), [CONTROLLER_REVISION_HASH]: hash },
        // the owner's annotations, as Kubernetes copies them (kubectl rollout history's CHANGE-CAUSE)
        ...(owner.metadata.annotations !== undefined ? { annotations: structuredClone(owner.metadata.annotations) } : {}),
        ownerReferences: [ownerRefTo(owner)]
      },
      data,
      revision: max + 1
    },
    uid: ctx.uid(),
    now: ctx.now()
  })
  return { update: created, revisions: [...revisions, created] }
}

/** Deletes the oldest revisions beyond `limit`, never one in `live` (by name) nor the newest. */
export async function pruneRevisions (ctx: ControllerContext, revisions: ControllerRevision[], live: ReadonlySet<string>, limit: number): Promise<void> {
  const newest = revisions.at(-1)?.metadata.name
  const candidates = revisions.filter(r => r.metadata.name !== newest && !live.has(r.metadata.name ?? ''))
  const excess = candidates.length - Math.max(0, limit)
  for (const r of candidates.slice(0, Math.max(0, excess))) {
    await mustWrite(ctx, { op: 'delete', ref: revisionRef(r.metadata.namespace ?? 'default', r.metadata.name ?? ''), now: ctx.now(), preconditions: { uid: r.metadata.uid ?? '' } }, true)
  }
}
