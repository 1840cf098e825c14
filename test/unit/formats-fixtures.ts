import assert from "node:assert/strict";
import { join } from "node:path";
import type { Readable } from "node:stream";
import { newHasher, type Digest } from "../../src/model/digest.js";
import { GantryError } from "../../src/model/errors.js";
import { REPO_ROOT } from "../helpers/paths.js";
import { run } from "../helpers/tools.js";

/** Shared by the formats-* tests: where the fixtures are, and python3 tarfile for hand-made archives. */

export const FORMATS_FIXTURES = join(REPO_ROOT, "test", "fixtures", "formats");

export function fixture(name: string): string {
  return join(FORMATS_FIXTURES, name);
}

/** sha256 and length of everything a stream yields (it fails if the stream fails). */
export async function drain(stream: Readable): Promise<{ digest: Digest; size: number }> {
  const hash = newHasher();
  let size = 0;
  for await (const chunk of stream) {
    hash.update(chunk as Buffer);
    size += (chunk as Buffer).length;
  }
  return { digest: `sha256:${hash.digest("hex")}`, size };
}

/** An entry for `pythonTar`: a file with text, a symlink, a hard link or a directory. */
export type PyMember =
  | { name: string; data: string }
  | { name: string; symlink: string }
  | { name: string; hardlink: string }
  | { name: string; dir: true };

/** Writes a tar with python3's tarfile (an implementation independent of gantry's). */
export async function pythonTar(dest: string, members: readonly PyMember[], format: "GNU" | "PAX" | "USTAR" = "GNU"): Promise<void> {
  const script = `
import io, json, sys, tarfile
members = json.loads(sys.argv[2])
with tarfile.open(sys.argv[1], "w", format=getattr(tarfile, sys.argv[3] + "_FORMAT")) as t:
    for m in members:
        info = tarfile.TarInfo(m["name"])
        if "data" in m:
            data = m["data"].encode()
            info.size = len(data)
            t.addfile(info, io.BytesIO(data))
            continue
        if "symlink" in m:
            info.type, info.linkname = tarfile.SYMTYPE, m["symlink"]
        elif "hardlink" in m:
            info.type, info.linkname = tarfile.LNKTYPE, m["hardlink"]
        else:
            info.type, info.mode = tarfile.DIRTYPE, 0o755
        t.addfile(info)
`;
  await run("python3", ["-c", script, dest, JSON.stringify(members), format]);
}

/** An `assert.rejects` check: a GantryError with `code` whose message mentions each of `mentions`. */
export function isCode(code: string, ...mentions: string[]): (err: unknown) => boolean {
  return (err: unknown) => {
    assert.ok(err instanceof GantryError, `not a GantryError: ${String(err)}`);
    assert.equal(err.code, code, err.message);
    for (const m of mentions) assert.ok(err.message.includes(m), `"${err.message}" does not mention ${m}`);
    return true;
  };
}
