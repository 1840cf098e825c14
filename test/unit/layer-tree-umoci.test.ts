import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync, spawnSync } from "node:child_process";
import { createReadStream } from "node:fs";
import { link, mkdir, readFile, rm, symlink, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { diffLayer } from "../../src/layer/differ.js";
import { walkSources } from "../../src/layer/sources.js";
import { mergedTree } from "../../src/layer/merged-tree.js";
import type { Digest } from "../../src/model/digest.js";
import type { Layer } from "../../src/model/image.js";
import { makeLayer } from "../../src/image/layer.js";
import { tempDir } from "../fixtures/layer/helpers.js";

const haveUmoci = spawnSync("umoci", ["--version"]).status === 0;

/** The layers of image `ref` in an OCI layout, gzip blobs checked by makeLayer. */
async function layoutLayers(layout: string, ref: string): Promise<Layer[]> {
  const blob = (d: string): string => join(layout, "blobs/sha256", d.slice("sha256:".length));
  const index = JSON.parse(await readFile(join(layout, "index.json"), "utf8")) as { manifests: Array<{ digest: string; annotations?: Record<string, string> }> };
  const desc = index.manifests.find((m) => m.annotations?.["org.opencontainers.image.ref.name"] === ref);
  if (desc === undefined) throw new Error(`no ${ref} in ${layout}`);
  const manifest = JSON.parse(await readFile(blob(desc.digest), "utf8")) as { config: { digest: string }; layers: Array<{ digest: Digest; size: number }> };
  const config = JSON.parse(await readFile(blob(manifest.config.digest), "utf8")) as { rootfs: { diff_ids: Digest[] } };
  return manifest.layers.map((l, i) => makeLayer({
    digest: l.digest, diffId: config.rootfs.diff_ids[i] as Digest, size: l.size, compression: "gzip",
    openRaw: () => Promise.resolve(createReadStream(blob(l.digest))), describe: `umoci layer ${i}`,
  }));
}

test("mergedTree of umoci-made layers (with umoci's whiteouts) equals umoci's own unpacked root", { skip: !haveUmoci && "umoci is not installed" }, async () => {
  const { dir, cleanup } = await tempDir();
  const umoci = (...args: string[]): void => { execFileSync("umoci", args, { cwd: dir, stdio: "pipe" }); };
  try {
    umoci("init", "--layout", "L");
    umoci("new", "--image", "L:t");
    umoci("unpack", "--image", "L:t", "B1");
    const r1 = join(dir, "B1/rootfs");
    await mkdir(join(r1, "etc"));
    await mkdir(join(r1, "var/cache/sub"), { recursive: true });
    await mkdir(join(r1, "opt/deep"), { recursive: true });
    await mkdir(join(r1, "usr/lib"), { recursive: true });
    await writeFile(join(r1, "etc/passwd"), "root:x:0:0::/root:/bin/sh\n");
    await writeFile(join(r1, "etc/hosts"), "127.0.0.1 localhost\n");
    await writeFile(join(r1, "var/cache/sub/a"), "a");
    await writeFile(join(r1, "opt/deep/o"), "o");
    await writeFile(join(r1, "usr/lib/libc.so"), "libc");
    await link(join(r1, "usr/lib/libc.so"), join(r1, "usr/lib/libc.so.6"));
    await symlink("usr/lib", join(r1, "lib"));
    umoci("repack", "--image", "L:t", "B1");
    umoci("unpack", "--image", "L:t", "B2");
    const r2 = join(dir, "B2/rootfs");
    await rm(join(r2, "etc/passwd"));
    await rm(join(r2, "var/cache/sub"), { recursive: true });
    await writeFile(join(r2, "var/cache/new"), "new");
    await rm(join(r2, "opt"), { recursive: true });
    await writeFile(join(r2, "opt"), "opt is a file");
    await writeFile(join(r2, "etc/hosts"), "127.0.0.1 localhost box\n");
    umoci("repack", "--image", "L:t", "B2");
    umoci("unpack", "--image", "L:t", "TRUTH");

    const layers = await layoutLayers(join(dir, "L"), "t");
    assert.equal(layers.length, 2);
    const upper = execFileSync("tar", ["-tzf", "-"], { input: await readFile(join(dir, "L/blobs/sha256", (layers[1]?.digest ?? "").slice(7))) }).toString();
    assert.match(upper, /\.wh\.passwd/, "the fixture exercises umoci's whiteouts");

    const tree = await mergedTree(layers);
    assert.equal(tree.has("etc/passwd"), false);
    assert.equal(tree.get("usr/lib/libc.so.6")?.type, "hardlink");
    // Compared with the root umoci unpacked itself, nothing differs and nothing is missing.
    const truth = await walkSources([{ from: join(dir, "TRUTH/rootfs"), to: "/" }]);
    const differences = await diffLayer(tree, truth, { uid: 0, gid: 0, uname: "", gname: "", mtime: 0, perms: [], deletions: true });
    assert.deepEqual(differences.map((e) => e.path), []);
    assert.deepEqual([...tree.paths()], [...truth.paths()]);
  } finally {
    await cleanup();
  }
});
