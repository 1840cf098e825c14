/**
 * `gantry build` on every kind of base other tools make (see test/fixtures/bases/):
 * an OCI layout (umoci), a two-image archive (picked by fromImageName/Tag), a
 * merged-/usr root, a base whose upper layer deletes files, a legacy docker save,
 * a 2017-nixpkgs archive and dockerd's own `docker save`. For each: skopeo and
 * gantry agree on the output, the base's layers come first unchanged, umoci
 * unpacks the base's files (deletions kept) and ours, and runc runs it.
 */
import assert from "node:assert/strict";
import { lstat, readlink } from "node:fs/promises";
import { join } from "node:path";
import { dockerSavedBase, fixtureBases, type BaseFixture } from "../helpers/bases.js";
import { buildCase, CMD_OUTPUT, standardSpec, type Spec } from "../helpers/build-case.js";
import { sharedDockerd } from "../helpers/dockerd.js";
import {
  assertBaseUnpacked, assertLayersOnBase, assertPayloadUnpacked, assertPeersAgree, newLayerEntries,
} from "../helpers/image-checks.js";
import { tmpDir } from "../helpers/tmp.js";
import { peerTest, runcRun, unpackWithPeers } from "../helpers/tools.js";

const bases = fixtureBases();
const dockerd = sharedDockerd();

interface BaseCase {
  title: string;
  base: () => Promise<BaseFixture>;
  /** How the spec names the base (the fixture's ref by default). */
  fromImage?: (base: BaseFixture) => string;
  spec?: Spec;
  mergedUsr?: boolean;
}

const cases: BaseCase[] = [
  {
    title: "(d) umoci's OCI layout, as oci:DIR:1",
    base: () => bases.busyboxLayout(),
  },
  {
    title: "(a') a two-image archive, fromImageName multi + fromImageTag two",
    base: async () => (await bases.twoImages()).two,
    fromImage: (b) => `docker-archive:${b.ref}`,
    spec: { fromImageName: "multi", fromImageTag: "two" },
  },
  {
    title: "(a') a two-image archive, no fromImageTag: the first image",
    base: async () => (await bases.twoImages()).one,
  },
  {
    title: "(b) a merged-/usr base, as a bare path",
    base: () => bases.mergedUsr(),
    mergedUsr: true,
  },
  {
    title: "(c) a base whose upper layer deletes files (whiteouts)",
    base: () => bases.whiteout(),
  },
  {
    title: "(e) a legacy docker save (repositories + ID/json parent chain)",
    base: () => bases.legacy(),
    fromImage: (b) => `docker-archive:${b.ref}`,
  },
  {
    title: "(f) a 2017-nixpkgs archive (./sha256:HEX gzip layers)",
    base: () => bases.nix2017(),
    fromImage: (b) => `docker-archive:${b.ref}`,
  },
  {
    title: "(h) buildah's docker-archive",
    base: () => bases.buildahArchive(),
  },
  {
    title: "(h') buildah's oci-archive, as oci-archive:PATH:1",
    base: () => bases.buildahOciArchive(),
  },
  {
    title: "(g) dockerd's own docker save of an image loaded from (a)",
    base: async () => {
      const daemon = await dockerd.get();
      const busybox = await bases.busyboxArchive();
      return dockerSavedBase(daemon, busybox, "gantry-test/busybox:1", join(busybox.ref, "..", "docker-save"));
    },
    fromImage: (b) => `docker-archive:${b.ref}`,
  },
];

for (const c of cases) {
  peerTest(`build on ${c.title}`, async (t) => {
    const base = await c.base();
    const spec = standardSpec(c.fromImage ? c.fromImage(base) : base.ref, c.spec);
    const { out } = await buildCase(t, spec, c.mergedUsr ? { mergedUsr: true } : {});

    const config = await assertPeersAgree(out);
    await assertLayersOnBase(config, base);

    const { rootfs, bundle } = await unpackWithPeers(`docker-archive:${out}`, await tmpDir(t));
    await assertBaseUnpacked(rootfs, base, ["/etc/changed.txt"]);
    await assertPayloadUnpacked(rootfs, base, c.mergedUsr ? { mergedUsr: true } : {});
    assert.equal(await runcRun(bundle), CMD_OUTPUT);
  });
}

peerTest("merged-/usr: a file under lib/ is stored as usr/lib/x and /lib stays a symlink", async (t) => {
  const base = await bases.mergedUsr();
  const { out } = await buildCase(t, standardSpec(base.ref), { mergedUsr: true });
  const paths = (await newLayerEntries(out, await tmpDir(t))).map((e) => e.path);
  assert.ok(paths.includes("usr/lib/x"), `usr/lib/x in the new layer: ${paths.join(" ")}`);
  assert.ok(!paths.includes("lib"), `no lib entry that would replace the symlink: ${paths.join(" ")}`);
  assert.ok(!paths.some((p) => p.startsWith("lib/")), `nothing stored under lib/: ${paths.join(" ")}`);

  const { rootfs } = await unpackWithPeers(`docker-archive:${out}`, await tmpDir(t));
  assert.ok((await lstat(join(rootfs, "lib"))).isSymbolicLink(), "/lib is still a symlink");
  assert.equal(await readlink(join(rootfs, "lib")), "usr/lib");
  assert.equal(await readlink(join(rootfs, "bin")), "usr/bin");
});
