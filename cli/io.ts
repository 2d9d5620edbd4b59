// What a run of `shoal` reads and writes, passed in so that the tests run it
// in-process with their own streams, environment, clock and stdin.
// May import: nothing.

export interface Io {
  stdout: { write: (text: string) => unknown }
  stderr: { write: (text: string) => unknown }
  env: NodeJS.ProcessEnv
  /** the clock that ages are computed from; Date.now unless a test fixes it */
  now?: () => number
  /** where `shoal kv put KEY -` reads the value; process.stdin unless a test gives one */
  stdin?: AsyncIterable<Uint8Array | string>
  /** ends watches (`get -w`, `rollout status`) when aborted; a test's bound, where a user has Ctrl-C */
  signal?: AbortSignal
}
