// Owns the two shell scripts that start a sandboxed container, and the
// argument list that carries everything they need (never interpolated into
// the script text, so no value is ever parsed as shell).
// Both run under a statically linked busybox: after pivot_root the host's
// files, and so its dynamic loader and libraries, are gone, and busybox's
// applets still run (they re-exec /proc/self/exe, whose file stays alive).
//
// 1. GATE runs on the host, in the container's cgroup-to-be. It blocks on
//    fd 3 until the runtime has written its pid to every cgroup.procs and
//    then `go`: whatever it starts (unshare, the setup, the workload)
//    inherits the cgroup, so no instruction of the workload runs outside it.
//    EOF instead of `go` (the runtime died or gave up) ends it with 125.
//    It binds each volume the runtime opened and checked (an O_PATH
//    descriptor, so no link swapped in since the check is followed:
//    Kubernetes' CVE-2021-25741) onto a staging path, in the host's mount
//    namespace, and closes the descriptor.
//    It then waits for unshare (which exits as the workload did) and writes
//    that exit status to fd 5, the exit file (opened by the runtime, closed
//    for unshare and all below it), before it exits with it: a restarted
//    shoald, whose child the gate is not, learns the workload's exit code
//    there. TERM, INT and HUP are caught (not ignored, which its children
//    would inherit) so that a stray signal cannot keep it from writing; only
//    SIGKILL can, and a missing file then means "killed".
// 2. SETUP is the first process (pid 1) of new mount, PID, UTS and IPC
//    namespaces (util-linux `unshare --fork`; mount propagation private). It
//    bind-mounts the root onto itself, mounts a fresh /proc (for a root
//    workload its sys and sysrq-trigger read-only), sets the hostname, a
//    tmpfs /tmp, /dev (the runtime's template bound read-only, or a small
//    tmpfs with null, zero, full, random, urandom and tty bound from the
//    host), /dev/shm, each
//    volume (a volume the runtime passed as a descriptor from the staging
//    mount the gate made of it; read-only by a second `remount,bind,ro`; a
//    mount point under
//    /tmp or /dev/shm is made here, in the fresh tmpfs, where no link can
//    be; any other was made by the runtime, rootfs.ts),
//    then `pivot_root . .` and detaches the old root: the host's files are
//    not in the container's mount namespace at all (a chroot would leave
//    them there, one chroot escape away for a root workload). It finds the
//    command in the container's PATH itself (busybox would prefer its own
//    applets), and writes `ready` to fd 4 (the status channel) just before
//    exec'ing `nsenter -S uid -G gid -F` (busybox: setgroups(0), setgid,
//    setuid) -> `env -i` (the container's environment only) -> the command,
//    so the command is pid 1. A failure before that writes its reason to fd
//    4 and exits 125.
// Each busybox applet it runs is a process (about 3.5 ms of CPU here), the
// better part of a container's start: the script runs as few as it can.
// May import: nothing outside this folder.

/**
 * Positional parameters: unshare, busybox, SETUP, setpriv, the staging
 * directory and how many volume descriptors there are (from fd 6 on; each
 * is bound onto `<staging>/<i>`), then SETUP's own (setupArgv). The exit file is a descriptor, never a path in the
 * arguments, so that no mix-up of arguments can make it write elsewhere.
 */
export const GATE = [
  'trap : TERM INT HUP',
  'read -r go <&3 || exit 125',
  '[ "$go" = go ] || exit 125',
  'exec 3<&-',
  'U=$1 B=$2 S=$3 N=$4 V=$5 F=$6; shift 6',
  // Each volume passed as a descriptor (fds 6 on) bound to its staging path, here in the host's mount namespace (a bind
  // from a descriptor of another namespace is refused); then the descriptor is closed: it never reaches the container.
  'i=0',
  'while [ "$i" -lt "$F" ]; do',
  '  "$B" mount -o bind "/proc/self/fd/$((6 + i))" "$V/$i" 2>&4 || { echo "cannot stage volume $i" >&4; exit 125; }',
  '  eval "exec $((6 + i))<&-"',
  '  i=$((i + 1))',
  'done',
  // no_new_privs before anything of the container runs: a setuid binary in its image gains nothing
  '"$U" --mount --uts --ipc --pid --fork --kill-child --propagation private -- "$N" --no-new-privs -- "$B" sh -c "$S" shoal-setup "$@" 5>&-',
  'c=$?',
  'echo "$c" >&5',
  'exit "$c"'
].join('\n')

export const SETUP = `
set -f
fail () { echo "$*" >&4; exit 125; }
R=$1 H=$2 U=$3 G=$4 WD=$5 P=$6 DEV=$7 N=$8; shift 8
mount -o bind "$R" "$R" 2>&4 || fail "cannot bind-mount the root filesystem $R"
mount -t proc -o nosuid,nodev,noexec proc "$R/proc" 2>&4 || fail "cannot mount /proc"
# the new UTS namespace's name, written as the hostname applet would (one process less)
echo "$H" > "$R/proc/sys/kernel/hostname" 2>&4 || fail "cannot set the hostname to $H"
# Only root can write them: for any other user read-only adds nothing (no_new_privs: no setuid way to root).
if [ "$U" = 0 ]; then
  for p in sys sysrq-trigger; do
    [ -e "$R/proc/$p" ] || continue
    mount -o bind "$R/proc/$p" "$R/proc/$p" 2>&4 && mount -o remount,bind,ro "$R/proc/$p" 2>&4 || fail "cannot make /proc/$p read-only"
  done
fi
mount -t tmpfs -o nosuid,nodev,mode=1777 tmpfs "$R/tmp" 2>&4 || fail "cannot mount /tmp"
if [ -n "$DEV" ]; then
  # the runtime's /dev template (its nodes and links made once), read-only: two mounts, not eight
  mount -o bind "$DEV" "$R/dev" 2>&4 && mount -o remount,bind,ro,nosuid,noexec "$R/dev" 2>&4 || fail "cannot mount /dev"
else
  mount -t tmpfs -o nosuid,noexec,mode=755,size=256k tmpfs "$R/dev" 2>&4 || fail "cannot mount /dev"
  for d in null zero full random urandom tty; do
    : > "$R/dev/$d" && mount -o bind "/dev/$d" "$R/dev/$d" 2>&4 || fail "cannot bind /dev/$d"
  done
  mkdir -m 1777 "$R/dev/shm" && ln -s /proc/self/fd "$R/dev/fd" && ln -s /proc/self/fd/0 "$R/dev/stdin" && ln -s /proc/self/fd/1 "$R/dev/stdout" && ln -s /proc/self/fd/2 "$R/dev/stderr" || fail "cannot make /dev/shm and /dev/fd"
fi
# 64 MiB, as Docker gives a container; its pages count against the memory limit
mount -t tmpfs -o nosuid,nodev,noexec,mode=1777,size=64m shm "$R/dev/shm" 2>&4 || fail "cannot mount /dev/shm"
while [ "$N" -gt 0 ]; do
  if [ ! -e "$R$2" ]; then
    if [ "$4" = file ]; then mkdir -p "$R\${2%/*}" && : > "$R$2"; else mkdir -p "$R$2"; fi 2>&4 || fail "cannot make the mount point $2"
  fi
  mount -o bind "$1" "$R$2" 2>&4 || fail "cannot mount volume $1 at $2"
  if [ "$3" = ro ]; then mount -o remount,bind,ro "$R$2" 2>&4 || fail "cannot make volume $2 read-only"; fi
  shift 4; N=$((N - 1))
done
cd "$R" && pivot_root . . 2>&4 && umount -l . 2>&4 && cd / || fail "cannot pivot into the root filesystem $R"
cd "$WD" 2>/dev/null || { mkdir -p "$WD" && cd "$WD"; } 2>&4 || fail "cannot enter the working directory $WD"
A=$1 NE=$2; shift 2
case $A in
  */*) prog=$A ;;
  *)
    prog=
    IFS=:
    for d in $P; do
      [ -n "$d" ] || d=.
      if [ -f "$d/$A" ] && [ -x "$d/$A" ]; then prog=$d/$A; break; fi
    done
    unset IFS
    [ -n "$prog" ] || fail "$A: executable file not found in \\$PATH" ;;
esac
case $prog in *=*) fail "$prog: a command path may not contain '='" ;; esac
n=$# i=0
while [ "$i" -lt "$n" ]; do
  [ "$i" -eq "$NE" ] && set -- "$@" "$prog"
  set -- "$@" "$1"; shift; i=$((i + 1))
done
[ "$NE" -eq "$n" ] && set -- "$@" "$prog"
echo ready >&4
exec 4>&-
# Nothing else open reaches the workload: a descriptor shoald inherited from whatever started it would otherwise pass through.
set +f
for f in /proc/self/fd/*; do n=\${f##*/}; if [ "$n" -gt 2 ] && [ -e "$f" ]; then eval "exec $n>&-"; fi; done
set -f
exec nsenter -S "$U" -G "$G" -F -- env -i -- "$@"
`

/** What SETUP is told, validated by the caller. */
export interface SetupArgs {
  /** the root filesystem's real host path */
  root: string
  hostname: string
  uid: number
  gid: number
  workingDir: string
  /** searched for a command without a slash */
  path: string
  /** the runtime's /dev template (makeDevTemplate), bound read-only; without one, /dev is a tmpfs with the host's devices bound one by one */
  dev?: string
  /** host path, path in the container, read-only, and whether the host path is a directory or a file */
  mounts: Array<{ hostPath: string, containerPath: string, readOnly: boolean, kind: 'dir' | 'file' }>
  env: Record<string, string>
  argv: string[]
}

/** SETUP's positional parameters, in the order it shifts them off. */
export function setupArgv (a: SetupArgs): string[] {
  const out = [a.root, a.hostname, String(a.uid), String(a.gid), a.workingDir, a.path, a.dev ?? '', String(a.mounts.length)]
  for (const m of a.mounts) out.push(m.hostPath, m.containerPath, m.readOnly ? 'ro' : 'rw', m.kind)
  const [command, ...args] = a.argv
  if (command === undefined) throw new Error('a container needs a command')
  const pairs = Object.entries(a.env).map(([k, v]) => `${k}=${v}`)
  out.push(command, String(pairs.length), ...pairs, ...args)
  return out
}
