/**
 * Configs, manifests and indexes that skopeo and containerd would not decode, or would
 * decode otherwise than gantry (test/fixtures/hostile/bad-documents.py: hand-written JSON
 * in OCI layouts, every digest true): a `history` entry that is a list, a `created` that is
 * no RFC 3339 time, a `Cmd` or `config` that is a string, a number where a string goes, a
 * key given twice, a document over 4 MiB. gantry used to copy several of them on (skopeo
 * then refused the copy) and to build on them. Every command now refuses each, in one line
 * naming the document and the field, and writes nothing; skopeo refuses the same layouts
 * wherever Go's decoder does.
 */
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { REPO_ROOT } from "../helpers/paths.js";
import { assertRefusedByEveryCommand, sentinelDir } from "../helpers/refusal.js";
import { tmpDir } from "../helpers/tmp.js";
import { peerTest, requireTools, run } from "../helpers/tools.js";
import { fixture } from "../unit/formats-fixtures.js";

const BAD_DOCUMENTS_PY = join(REPO_ROOT, "test", "fixtures", "hostile", "bad-documents.py");

interface BadDocument { name: string; layout: string; culprit: string; skopeo_refuses: boolean }

peerTest("a mistyped, oversized or ambiguous config, manifest or index is refused by every command", async (t) => {
  requireTools("python3", "gzip", "skopeo");
  const dir = await tmpDir(t);
  await run("python3", [BAD_DOCUMENTS_PY, join(dir, "cases")]);
  const cases = JSON.parse(await readFile(join(dir, "cases", "cases.json"), "utf8")) as BadDocument[];
  assert.equal(cases.length, 16);
  const out = await sentinelDir(join(dir, "out"));
  for (const c of cases) {
    const src = `oci:${c.layout}:bad`;
    await assertRefusedByEveryCommand(src, `docker-archive:${fixture("skopeo-app.tar")}`, out, c.culprit, c.name);
    const skopeo = await run("skopeo", ["inspect", "--config", src], { allowFailure: true });
    assert.equal(skopeo.code !== 0, c.skopeo_refuses, `${c.name}: skopeo ${c.skopeo_refuses ? "refuses" : "takes"} it (${skopeo.stderr})`);
  }
  t.diagnostic(`${cases.length} documents, ${cases.length * 5} commands refused; skopeo refuses ${cases.filter((c) => c.skopeo_refuses).length}`);
});
