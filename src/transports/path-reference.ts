import { isAbsolute, resolve } from "node:path";
import { InvalidReferenceError } from "../model/errors.js";

/**
 * The `PATH[:REST]` spelling the file transports share (docker-archive:, oci:, oci-archive:,
 * dir:), split at the first colon as skopeo does (so PATH cannot hold one).
 */

/** The InvalidReferenceError for `spelled`, saying `why` it is not a valid reference. */
export function invalidReference(spelled: string, why: string): InvalidReferenceError {
  return new InvalidReferenceError(`the image reference "${spelled}" is invalid: ${why}`);
}

/**
 * Splits `body` into PATH and what follows the first colon. `form` ("oci:PATH[:REF]") tells the
 * user how to write it when PATH is empty or nothing follows the colon (InvalidReferenceError).
 */
export function splitPathAndRest(body: string, spelled: string, form: string): { path: string; rest: string | undefined } {
  const colon = body.indexOf(":");
  const path = colon === -1 ? body : body.slice(0, colon);
  const rest = colon === -1 ? undefined : body.slice(colon + 1);
  if (path === "") throw invalidReference(spelled, `it names no path; write it as ${form}`);
  if (rest === "") throw invalidReference(spelled, `nothing follows the last ":"; write it as ${form}`);
  return { path, rest };
}

/** The OCI `org.opencontainers.image.ref.name` grammar. */
const OCI_REF_NAME = /^[A-Za-z0-9]+(?:(?:[-._:@+]|--)[A-Za-z0-9]+)*(?:\/[A-Za-z0-9]+(?:(?:[-._:@+]|--)[A-Za-z0-9]+)*)*$/;

/** `ref` itself when it is a valid OCI reference name; InvalidReferenceError naming `spelled` otherwise. */
export function checkOciRefName(ref: string, spelled: string): string {
  if (!OCI_REF_NAME.test(ref)) {
    throw invalidReference(spelled, `"${ref}" is not a valid OCI reference name (letters, digits and separators . _ - : @ + /)`);
  }
  return ref;
}

/** `PATH[:REST]` with PATH made absolute against `dir` (standard input and output stay `-`). */
export function pathRelativeTo(body: string, dir: string): string {
  if (body === "-" || body === "") return body;
  const colon = body.indexOf(":");
  const path = colon === -1 ? body : body.slice(0, colon);
  const rest = colon === -1 ? "" : body.slice(colon);
  return `${isAbsolute(path) ? path : resolve(dir, path)}${rest}`;
}
