/**
 * Archives that hold one entry twice. docker load extracts an archive and reads the last
 * copy of a name, skopeo reads the first: such an archive is two images at once, so every
 * command refuses it (inspect, copy, export, diff, build on it as base), in one line naming
 * the entry, and writes nothing. The archives are made by skopeo (docker-archive,
 * oci-archive) or by hand (the legacy format), then given a second copy of one entry by
 * python3 tarfile (test/fixtures/hostile/duplicate.py).
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { REPO_ROOT } from "../helpers/paths.js";
import { assertRefusedByEveryCommand, sentinelDir } from "../helpers/refusal.js";
import { tmpDir } from "../helpers/tmp.js";
import { peerTest, requireTools, run, skopeo } from "../helpers/tools.js";
import { fixture } from "../unit/formats-fixtures.js";

const DUPLICATE_PY = join(REPO_ROOT, "test", "fixtures", "hostile", "duplicate.py");

interface Kind {
  transport: "docker-archive" | "oci-archive";
  /** The sound archive the duplicates are made from. */
  archive: string;
  /** What duplicate.py is told to write twice: a member name or a role. */
  entries: string[];
}

/** The archive `src` with `which` written twice; returns its path and the entry's name. */
async function withDuplicate(src: string, which: string, dest: string): Promise<string> {
  return (await run("python3", [DUPLICATE_PY, src, dest, which])).stdout.toString("utf8").trim();
}

peerTest("an archive holding an entry twice is refused by every command, in one line naming the entry", async (t) => {
  requireTools("python3", "skopeo");
  const dir = await tmpDir(t);
  const ociArchive = join(dir, "oci.tar");
  await skopeo("copy", "--quiet", `oci:${fixture("oci-umoci")}:app`, `oci-archive:${ociArchive}`);
  const kinds: Kind[] = [
    {
      transport: "docker-archive",
      archive: fixture("skopeo-app.tar"),
      // The layer symlink (ID/layer.tar -> ../HEX.tar) and repositories are names gantry does not read; docker load may.
      entries: ["manifest.json", "repositories", "docker:config", "docker:layer", "abf3fbbd74fc9400271a8a8084318ff0ed67d03c2b1bb9fb764c2f9100700890/layer.tar"],
    },
    { transport: "docker-archive", archive: fixture("legacy.tar"), entries: ["repositories", "bcdc45fb8eaefb326f709e021c68673533ca4722950e9133233b4528280670c1/json"] },
    { transport: "oci-archive", archive: ociArchive, entries: ["index.json", "oci-layout", "oci:manifest", "oci:config", "oci:layer"] },
  ];
  const out = await sentinelDir(join(dir, "out"));
  let cases = 0;
  for (const kind of kinds) {
    for (const which of kind.entries) {
      const damaged = join(dir, `dup-${++cases}.tar`);
      const entry = await withDuplicate(kind.archive, which, damaged);
      const lines = await assertRefusedByEveryCommand(`${kind.transport}:${damaged}`, `${kind.transport}:${kind.archive}`, out, entry, `${entry} twice in a ${kind.transport}`);
      for (const line of lines) assert.match(line, /occurs 2 times/);
    }
  }
  assert.equal(cases, 12);
});
