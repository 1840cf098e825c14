import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { randomBytes } from "node:crypto";
import { ioError } from "../model/errors.js";
import { runCaptured, type RunResult } from "./process.js";
import type { SandboxRequest } from "./sandbox.js";

/** The capabilities Docker grants a container's root by default: enough to chown, mknod and setuid, not to administer the host. */
const ROOT_CAPABILITIES = [
  "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD", "CAP_NET_RAW", "CAP_SETGID",
  "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE",
];

/**
 * The OCI runtime config for one script: `runc spec`'s defaults (pid, network, ipc, uts and
 * mount namespaces; /proc, /dev, /dev/pts, /dev/shm, /dev/mqueue, read-only /sys; masked
 * and read-only kernel paths; no device but the defaults) with a writable root, no
 * terminal, root's capabilities and a private tmpfs on /tmp, so scratch files stay out of
 * the layer.
 */
export function runcConfig(req: SandboxRequest): object {
  return {
    ociVersion: "1.0.2",
    process: {
      terminal: false,
      user: { uid: 0, gid: 0 },
      args: ["/bin/sh", "-c", req.script],
      env: req.env,
      cwd: "/",
      capabilities: {
        bounding: ROOT_CAPABILITIES, effective: ROOT_CAPABILITIES, permitted: ROOT_CAPABILITIES,
      },
      rlimits: [{ type: "RLIMIT_NOFILE", hard: 1024, soft: 1024 }],
      noNewPrivileges: false,
    },
    root: { path: req.rootfs, readonly: false },
    hostname: "gantry",
    mounts: [
      { destination: "/proc", type: "proc", source: "proc" },
      { destination: "/dev", type: "tmpfs", source: "tmpfs", options: ["nosuid", "strictatime", "mode=755", "size=65536k"] },
      { destination: "/dev/pts", type: "devpts", source: "devpts", options: ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"] },
      { destination: "/dev/shm", type: "tmpfs", source: "shm", options: ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"] },
      { destination: "/dev/mqueue", type: "mqueue", source: "mqueue", options: ["nosuid", "noexec", "nodev"] },
      { destination: "/sys", type: "sysfs", source: "sysfs", options: ["nosuid", "noexec", "nodev", "ro"] },
      { destination: "/tmp", type: "tmpfs", source: "tmpfs", options: ["nosuid", "nodev", "mode=1777"] },
    ],
    linux: {
      resources: { devices: [{ allow: false, access: "rwm" }] },
      namespaces: [{ type: "pid" }, { type: "network" }, { type: "ipc" }, { type: "uts" }, { type: "mount" }],
      maskedPaths: [
        "/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats", "/proc/timer_list",
        "/proc/timer_stats", "/proc/sched_debug", "/sys/firmware", "/proc/scsi",
      ],
      readonlyPaths: ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"],
    },
  };
}

/**
 * Runs the script with runc on a bundle of our own: `config.json` (above) in a temporary
 * directory whose `root.path` is the prepared root file system, and a private state
 * directory (`runc --root`), so nothing is left in the host's runc state.
 */
export async function runWithRunc(runc: string, req: SandboxRequest): Promise<RunResult> {
  let bundle: string;
  try {
    bundle = await mkdtemp(join(tmpdir(), "gantry-bundle-"));
  } catch (err) {
    throw ioError("the temporary directory for the runc bundle", err);
  }
  const state = join(bundle, "state");
  const id = `gantry-${process.pid}-${randomBytes(4).toString("hex")}`;
  const env = { PATH: process.env["PATH"] ?? "/usr/sbin:/usr/bin:/sbin:/bin" };
  const runcCmd = (...args: string[]): Promise<RunResult> => runCaptured(runc, ["--root", state, ...args], { env });
  try {
    await writeFile(join(bundle, "config.json"), JSON.stringify(runcConfig(req), null, 2));
    const opts: Parameters<typeof runCaptured>[2] = {
      env,
      cwd: bundle,
      onAbort: async () => { await runcCmd("kill", id, "KILL").catch(() => undefined); },
    };
    if (req.signal) opts.signal = req.signal;
    return await runCaptured(runc, ["--root", state, "run", "--bundle", bundle, id], opts);
  } finally {
    // `runc run` removes the container when it exits; this covers an abort or a runc failure.
    await runcCmd("delete", "--force", id).catch(() => undefined);
    await rm(bundle, { recursive: true, force: true });
  }
}
