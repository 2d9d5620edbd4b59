// Which component may import what: ARCHITECTURE.md's "May import" lines as
// data, checked by test/unit/import-rules.test.ts over every file of
// protocol/, cli/ and daemon/ (tests are not checked). Change a rule here and
// in ARCHITECTURE.md together.
//
// A key is a folder (a component) or a file in one. A file may import:
// anything in the folders whose keys contain it (its own component), plus
// the targets of every key that contains it or names it; so a file key adds
// to its folder's rule (`daemon/kubelet/access.ts` may also use daemon/p2p).
// A target is a folder or a file; `{ path, typeOnly: true }` allows only
// `import type` (the views of other components that main.ts hands in).
// Only relative imports are checked: libraries and node: built-ins are not.

export interface TypeOnlyTarget { path: string, typeOnly: true }
export type ImportTarget = string | TypeOnlyTarget

export const IMPORT_RULES: Readonly<Record<string, readonly ImportTarget[]>> = {
  protocol: [],
  cli: ['protocol'],

  'daemon/clock': [],
  'daemon/lifecycle': [],
  'daemon/log': [],
  'daemon/ui': [],
  'daemon/workqueue': ['daemon/clock', 'daemon/log'],
  'daemon/record': ['protocol', 'daemon/store/types.ts', 'daemon/clock'],
  'daemon/config': ['protocol', 'daemon/log', 'daemon/membership/config.ts', 'daemon/p2p/keys.ts'],
  'daemon/p2p': ['protocol', 'daemon/log'],
  'daemon/membership': ['protocol', 'daemon/p2p', 'daemon/clock', 'daemon/log'],

  // "Four layers, each importing only the ones below it" is not checked here.
  'daemon/raft': ['protocol', 'daemon/clock', 'daemon/log'],
  'daemon/raft/transport.ts': ['daemon/p2p'],
  'daemon/raft/forward.ts': ['daemon/p2p'],
  'daemon/raft/status-service.ts': ['daemon/p2p'],

  'daemon/kv': ['protocol', 'daemon/raft/state-machine.ts'],
  'daemon/store': ['protocol', 'daemon/raft/state-machine.ts'],
  // the replicated StoreWriter wraps the Replicator
  'daemon/store/writer.ts': ['daemon/raft/replicator.ts'],

  // never the scheduler: the placement rules the DaemonSet controller shares with it are protocol/scheduling.ts
  'daemon/controllers': [
    'protocol', 'daemon/store/types.ts', 'daemon/workqueue', 'daemon/record', 'daemon/clock', 'daemon/log'
  ],
  // one section with the controllers in ARCHITECTURE.md: run by their ControllerManager
  'daemon/scheduler': [
    'protocol', 'daemon/store/types.ts', 'daemon/workqueue', 'daemon/record', 'daemon/clock', 'daemon/log',
    'daemon/controllers/framework.ts'
  ],

  'daemon/kubelet': ['protocol', 'daemon/store/types.ts', 'daemon/workqueue', 'daemon/record', 'daemon/clock', 'daemon/log'],
  'daemon/kubelet/access.ts': ['daemon/p2p'],
  // the native runtime pulls and unpacks its containers' images
  'daemon/kubelet/native-runtime.ts': ['daemon/image'],
  // images from OCI registries (issue 16): a leaf the native runtime will use
  'daemon/image': [],

  'daemon/network': ['protocol', 'daemon/store/types.ts', 'daemon/p2p/host.ts', 'daemon/p2p/rpc.ts', 'daemon/clock', 'daemon/log'],

  'daemon/backup': [
    'protocol', 'daemon/raft/storage.ts', 'daemon/raft/level-storage.ts', 'daemon/raft/replicator.ts', 'daemon/raft/state-machine.ts',
    'daemon/clock', 'daemon/log'
  ],

  'daemon/api': [
    'protocol', 'daemon/log', 'daemon/p2p/keys.ts', 'daemon/raft/replicator.ts', 'daemon/kv',
    'daemon/store/types.ts', 'daemon/store/writer.ts',
    // server-side apply merges with the store's strategic merge patch
    'daemon/store/patch.ts',
    // read-only views that main.ts hands in
    { path: 'daemon/membership/table.ts', typeOnly: true },
    { path: 'daemon/backup/source.ts', typeOnly: true }
  ],

  // the composition root and the entry point
  'daemon/main.ts': ['daemon', 'protocol'],
  'daemon/bin.ts': ['daemon', 'protocol']
}

/**
 * Files that only the named files may import (tests aside): a composition
 * root imported from below it would be an import cycle.
 */
export const IMPORTED_ONLY_BY: Readonly<Record<string, readonly string[]>> = {
  'cli/main.ts': ['cli/bin.ts'],
  'daemon/main.ts': ['daemon/bin.ts']
}
