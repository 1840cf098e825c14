import { join } from "node:path";
import { FIXTURE_BASES_DIR } from "./paths.js";
import { PeerUnavailable, run } from "./tools.js";

/**
 * The payload of images that must run: /bin/busybox (the host's static busybox,
 * from busybox-static) and sh, echo, cat, ls, test linked to it. With mergedUsr,
 * the binaries sit in /usr/bin and /bin, /lib, /sbin are symlinks into /usr.
 * The shell fixtures use the same script, so both agree on the layout.
 */
export async function makeBusyboxRoot(dir: string, opts: { mergedUsr?: boolean } = {}): Promise<void> {
  const args = opts.mergedUsr ? ["--merged-usr", dir] : [dir];
  const result = await run(join(FIXTURE_BASES_DIR, "busybox-root.sh"), args, { allowFailure: true });
  if (result.code === 3) throw new PeerUnavailable(result.stderr.trim());
  if (result.code !== 0) throw new Error(`busybox-root.sh ${args.join(" ")} failed: ${result.stderr}`);
}
