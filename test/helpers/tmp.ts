import { after, type TestContext } from "node:test";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { unmountUnder } from "./mounts.js";

/**
 * Temporary directories that clean up after themselves: one per test
 * (`tmpDir(t)`), or one per test file (`fileTmpDir()`, called at module level).
 */

async function makeDir(prefix: string): Promise<string> {
  return mkdtemp(join(tmpdir(), prefix));
}

/** Removes `dir`, first lazily unmounting anything a peer left mounted below it. */
export async function removeDir(dir: string): Promise<void> {
  await unmountUnder(dir);
  await rm(dir, { recursive: true, force: true, maxRetries: 3 });
}

/** A fresh directory for this test, removed when the test ends (pass or fail). */
export async function tmpDir(t: TestContext, prefix = "gantry-test-"): Promise<string> {
  const dir = await makeDir(prefix);
  t.after(() => removeDir(dir));
  return dir;
}

/**
 * A directory shared by the tests of one file, made on first use and removed after
 * the file's last test. Must be called at module level: node:test attaches the
 * cleanup to whatever is running when `after` is called.
 */
export function fileTmpDir(prefix = "gantry-file-"): () => Promise<string> {
  let made: Promise<string> | undefined;
  after(async () => {
    if (made) await removeDir(await made);
  });
  return () => (made ??= makeDir(prefix));
}
