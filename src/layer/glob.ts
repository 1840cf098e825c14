import { SpecError } from "../model/errors.js";

// Path globs for `perms` rules, matched against canonical image paths (no leading slash;
// a leading "/" in the pattern is ignored):
//   `*`   any characters within one path component,
//   `?`   one character other than "/",
//   `**`  as a whole component: any number of components. `a/**` is everything below `a`
//         (not `a` itself), `**` alone is every path, and `a/**/b` is `a/b`, `a/x/b`, ...
// Everything else matches itself.
/**
 * A matcher of canonical image paths for one `perms` glob, in the syntax above (`*`, `?`, and `**` as a
 * whole component). Throws a SpecError for an empty pattern or one holding a NUL byte.
 */
export function compileGlob(pattern: string): (path: string) => boolean {
  const body = pattern.replace(/^\/+/, "");
  if (body === "" || body.includes("\0")) {
    throw new SpecError(`the perms path ${JSON.stringify(pattern)} is empty or holds a NUL byte; give a path glob such as "/app/**"`);
  }
  const parts = body.split("/");
  let re = "";
  for (const [i, part] of parts.entries()) {
    const last = i === parts.length - 1;
    if (part === "**") {
      // "x/**" (last) must match at least one component; "**/" elsewhere may match none.
      re += last ? (i === 0 ? ".*" : ".+") : "(?:.*/)?";
      continue;
    }
    re += part.split("").map((c) => c === "*" ? "[^/]*" : c === "?" ? "[^/]" : escapeRegExp(c)).join("");
    if (!last) re += "/";
  }
  const matcher = new RegExp(`^${re}$`, "s");
  return (path) => matcher.test(path);
}

function escapeRegExp(c: string): string {
  return /[\\^$.|+(){}[\]]/.test(c) ? `\\${c}` : c;
}
