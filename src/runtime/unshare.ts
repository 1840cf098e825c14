import { runCaptured, type RunResult } from "./process.js";
import type { SandboxRequest } from "./sandbox.js";

/**
 * Run by the host's /bin/sh inside fresh mount, pid, network, ipc and uts namespaces
 * (mounts are private to them, so they vanish with the script): gives the root /proc, a
 * tmpfs /dev with the usual device nodes, /dev/shm, a read-only /sys and a tmpfs /tmp,
 * then replaces itself with the image's own /bin/sh, chrooted, in a clean environment.
 * Arguments: ROOT CHROOT SCRIPT [NAME=VALUE...].
 *
 * Inside a user namespace (runAsRoot as an ordinary user) root may mount but not mknod,
 * and /proc/sys belongs to the host's root: each device is then the host's own, bind
 * mounted over an empty file (as rootless runc does), the hostname is set by hostname(1),
 * and /sys, should a fresh sysfs be refused, is the host's bound read-only.
 */
const SETUP = `set -eu
root=$1 chroot=$2 script=$3
shift 3
device() {
  mknod -m 666 "$root/dev/$1" c "$2" "$3" 2>/dev/null && return
  : > "$root/dev/$1"
  mount --bind "/dev/$1" "$root/dev/$1"
}
mount -t proc -o nosuid,nodev,noexec proc "$root/proc"
{ printf gantry > "$root/proc/sys/kernel/hostname"; } 2>/dev/null || hostname gantry
mount -t tmpfs -o nosuid,strictatime,mode=755,size=65536k tmpfs "$root/dev"
device null 1 3
device zero 1 5
device full 1 7
device random 1 8
device urandom 1 9
device tty 5 0
ln -s /proc/self/fd "$root/dev/fd"
ln -s /proc/self/fd/0 "$root/dev/stdin"
ln -s /proc/self/fd/1 "$root/dev/stdout"
ln -s /proc/self/fd/2 "$root/dev/stderr"
mkdir "$root/dev/shm" "$root/dev/pts"
mount -t tmpfs -o nosuid,nodev,noexec,mode=1777,size=65536k shm "$root/dev/shm"
mount -t sysfs -o ro,nosuid,nodev,noexec sysfs "$root/sys" 2>/dev/null \
  || { mount --rbind /sys "$root/sys" && mount -o remount,bind,ro "$root/sys"; }
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
