import { runCaptured, type RunResult } from "./process.js";
import type { SandboxRequest } from "./sandbox.js";

/**
 * Run by the host's /bin/sh inside fresh mount, pid, network, ipc and uts namespaces
 * (mounts are private to them, so they vanish with the script): gives the root /proc, a
 * tmpfs /dev with the usual device nodes, /dev/shm, a read-only /sys and a tmpfs /tmp,
 * then replaces itself with the image's own /bin/sh, chrooted, in a clean environment.
 * Arguments: ROOT CHROOT SCRIPT [NAME=VALUE...].
 */
const SETUP = `set -eu
root=$1 chroot=$2 script=$3
shift 3
mount -t proc -o nosuid,nodev,noexec proc "$root/proc"
printf gantry > "$root/proc/sys/kernel/hostname"
mount -t tmpfs -o nosuid,strictatime,mode=755,size=65536k tmpfs "$root/dev"
mknod -m 666 "$root/dev/null" c 1 3
mknod -m 666 "$root/dev/zero" c 1 5
mknod -m 666 "$root/dev/full" c 1 7
mknod -m 666 "$root/dev/random" c 1 8
mknod -m 666 "$root/dev/urandom" c 1 9
mknod -m 666 "$root/dev/tty" c 5 0
ln -s /proc/self/fd "$root/dev/fd"
ln -s /proc/self/fd/0 "$root/dev/stdin"
ln -s /proc/self/fd/1 "$root/dev/stdout"
ln -s /proc/self/fd/2 "$root/dev/stderr"
mkdir "$root/dev/shm" "$root/dev/pts"
mount -t tmpfs -o nosuid,nodev,noexec,mode=1777,size=65536k shm "$root/dev/shm"
mount -t sysfs -o ro,nosuid,nodev,noexec sysfs "$root/sys"
mount -t tmpfs -o nosuid,nodev,mode=1777 tmpfs "$root/tmp"
exec env -i "$@" "$chroot" "$root" /bin/sh -c "$script"
`;

/** Runs the script with util-linux `unshare` and `chroot`, for hosts without runc. */
export function runWithUnshare(tools: { unshare: string; chroot: string }, req: SandboxRequest): Promise<RunResult> {
  const args = [
    "--mount", "--pid", "--net", "--ipc", "--uts", "--fork", "--kill-child", "--propagation", "private",
    "--", "/bin/sh", "-c", SETUP, "gantry-sandbox", req.rootfs, tools.chroot, req.script, ...req.env,
  ];
  const opts: Parameters<typeof runCaptured>[2] = { env: { PATH: process.env["PATH"] ?? "/usr/sbin:/usr/bin:/sbin:/bin" } };
  if (req.signal) opts.signal = req.signal;
  return runCaptured(tools.unshare, args, opts);
}
