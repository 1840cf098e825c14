import { access, constants } from "node:fs/promises";
import { delimiter, join } from "node:path";

/** Where root's programs live even when PATH (a user's, or sudo's) leaves the sbin directories out. */
const SYSTEM_DIRS = ["/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin"];

/** The absolute path of an executable `name` on PATH or in the system directories, or undefined. */
export async function findProgram(name: string, env: NodeJS.ProcessEnv = process.env): Promise<string | undefined> {
  const dirs = [...(env["PATH"] ?? "").split(delimiter).filter((d) => d.startsWith("/")), ...SYSTEM_DIRS];
  for (const dir of new Set(dirs)) {
    const candidate = join(dir, name);
    try {
      await access(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not here
    }
  }
  return undefined;
}
