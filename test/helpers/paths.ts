import { fileURLToPath } from "node:url";
import { join } from "node:path";

/**
 * Where things are, seen from the compiled helpers (dist/test/helpers/*.js) or,
 * should they ever run uncompiled, from test/helpers/*.ts: both sit three levels
 * below the repository root once "dist/" is accounted for.
 */
function findRepoRoot(): string {
  const here = fileURLToPath(new URL(".", import.meta.url));
  // dist/test/helpers/ -> repo; test/helpers/ -> repo
  return here.includes("/dist/test/helpers") ? join(here, "..", "..", "..") : join(here, "..", "..");
}

export const REPO_ROOT = findRepoRoot();
/** The gantry command line users run (the package's bin), as `npm run build` writes it. */
export const CLI_PATH = join(REPO_ROOT, "dist", "src", "cli", "gantry.mjs");
/** Shell scripts that make base images with other tools (see their headers). */
export const FIXTURE_BASES_DIR = join(REPO_ROOT, "test", "fixtures", "bases");
