/**
 * runAsRoot on the busybox base (umoci + skopeo docker-archive, test/fixtures/bases):
 * the script deletes a base file, empties and refills a directory, writes and chowns a
 * new file, sees the copyToRoot payload and the image's Env. The built image must show
 * the change under runc (skopeo copy + umoci unpack) and under dockerd; the layer must
 * hold a whiteout for the deleted file, the opaque marker for the refilled directory,
 * the script's owner for the new file, and nothing of the sandbox's own mount points. runc and unshare + chroot must give the very same layer.
 */
import assert from "node:assert/strict";
import { mkdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { fixtureBases } from "../helpers/bases.js";
import { sharedDockerd } from "../helpers/dockerd.js";
import { runGantry } from "../helpers/gantry.js";
import { newLayerEntries } from "../helpers/image-checks.js";
import { archiveManifest } from "../helpers/archive.js";
import { fileTmpDir, tmpDir } from "../helpers/tmp.js";
import { peerTest, requireRoot, requireTools, runcRun, unpackWithPeers } from "../helpers/tools.js";

const bases = fixtureBases();
const dockerd = sharedDockerd();
const shared = fileTmpDir("gantry-runasroot-");

const SCRIPT = [
  "set -e",
  "rm /etc/base.txt",
  "test -f /app/hello.txt",
  "echo \"made by runAsRoot, FOO=$FOO\" > /etc/new.txt",
  "chown 1000:1000 /etc/new.txt",
  "rm /opt/keep/data && echo refilled > /opt/keep/new",
  "env | grep -v -e '^PWD=' -e '^SHLVL=' | sort > /etc/script-env",
  "test -d /proc/self && test -c /dev/null && echo scratch > /tmp/scratch",
].join("\n");

const CMD = "cat /etc/new.txt; test -e /etc/base.txt || echo base.txt is gone; cat /app/hello.txt; ls /opt/keep";
const EXPECTED_OUTPUT = "made by runAsRoot, FOO=spec\nbase.txt is gone\nhello\nnew\n";

async function buildWith(runtime: "runc" | "unshare", dir: string): Promise<string> {
  requireRoot();
  requireTools(runtime === "runc" ? "runc" : "unshare");
  const base = await bases.busyboxArchive();
  await mkdir(join(dir, "root", "app"), { recursive: true });
  await writeFile(join(dir, "root", "app", "hello.txt"), "hello\n");
  await writeFile(join(dir, "spec.json"), JSON.stringify({
    name: "gantry-test/runasroot", tag: runtime, fromImage: base.ref, copyToRoot: "root",
    created: "2024-01-02T03:04:05Z", mtime: "2023-06-07T08:09:10Z",
    runAsRoot: SCRIPT,
    config: { Cmd: ["/bin/sh", "-c", CMD], Env: ["FOO=spec"] },
  }));
  const out = join(dir, "out.tar");
  const r = await runGantry(["build", join(dir, "spec.json"), "-o", out], { env: { GANTRY_RUNTIME: runtime } });
  assert.equal(r.code, 0, `gantry build with ${runtime}: ${r.stderr}`);
  return out;
}

let runcBuild: Promise<string> | undefined;
function theRuncBuild(): Promise<string> {
  runcBuild ??= (async () => {
    const dir = join(await shared(), "runc");
    await mkdir(dir);
    return buildWith("runc", dir);
  })();
  return runcBuild;
}

peerTest("the runAsRoot layer holds the deletion as a whiteout, the script's owners, and no sandbox mount point", async (t) => {
  const out = await theRuncBuild();
  const entries = await newLayerEntries(out, await tmpDir(t));
  const byPath = new Map(entries.map((e) => [e.path, e]));
  assert.ok(byPath.has("etc/.wh.base.txt"), `a whiteout for /etc/base.txt: ${[...byPath.keys()].join(" ")}`);
  assert.equal(byPath.get("etc/new.txt")?.uid, 1000, "the owner the script gave");
  assert.equal(byPath.get("etc/new.txt")?.gid, 1000);
  assert.equal(byPath.get("app/hello.txt")?.uid, 0, "copyToRoot files get the spec's owner");
  assert.ok(byPath.has("opt/keep/.wh..wh..opq"), "a directory emptied and refilled gets the opaque marker");
  assert.ok(byPath.has("opt/keep/new"));
  for (const mountPoint of ["proc", "dev", "sys", "tmp", "tmp/scratch"]) {
    assert.equal(byPath.has(mountPoint), false, `${mountPoint} is not in the layer`);
  }
  assert.equal(byPath.has("etc"), false, "/etc is unchanged in mode and owner, so not restated");
});

peerTest("the script ran with the image's Env (spec over base), PATH kept, nothing of the host's", async (t) => {
  const out = await theRuncBuild();
  const { rootfs } = await unpackWithPeers(`docker-archive:${out}`, await tmpDir(t));
  assert.equal(await readFile(join(rootfs, "etc/script-env"), "utf8"),
    "BASEONLY=yes\nFOO=spec\nHOME=/root\nPATH=/usr/sbin:/usr/bin:/sbin:/bin\n");
});

peerTest("runc runs the built image (skopeo copy + umoci unpack) and shows the script's changes", async (t) => {
  const out = await theRuncBuild();
  const { bundle } = await unpackWithPeers(`docker-archive:${out}`, await tmpDir(t));
  assert.equal(await runcRun(bundle), EXPECTED_OUTPUT);
});

peerTest("docker runs the built image (docker load, docker run --network none) and shows the script's changes", async () => {
  const out = await theRuncBuild();
  const daemon = await dockerd.get();
  await daemon.docker(["load", "-i", out]);
  assert.equal(await daemon.runImage("gantry-test/runasroot:runc"), EXPECTED_OUTPUT);
});

peerTest("unshare + chroot gives the same layer as runc", async () => {
  const out = await theRuncBuild();
  const dir = join(await shared(), "unshare");
  await mkdir(dir);
  const other = await buildWith("unshare", dir);
  const [a] = await archiveManifest(out);
  const [b] = await archiveManifest(other);
  assert.deepEqual(b?.Layers, a?.Layers, "the same layer blobs, byte for byte");
});
