import { readFile } from "node:fs/promises";
import { spawn } from "node:child_process";
import { homedir } from "node:os";
import { join } from "node:path";
import { AuthError } from "../../model/errors.js";
import { DOCKER_HUB } from "./reference.js";

/** A user name and password (or token) for one registry, and where they were found. */
export interface Credentials {
  readonly username: string;
  readonly password: string;
  /** Names the source in error messages: "--creds", a config file, a helper. */
  readonly source: string;
}

/** Where to look: an explicit `creds` wins over the environment's config files. */
export interface CredentialOptions {
  creds?: string;
  env?: NodeJS.ProcessEnv;
}

/** The names Docker Hub goes by in config files, all meaning one registry. */
const DOCKER_HUB_ALIASES = new Set([DOCKER_HUB, "index.docker.io", "registry-1.docker.io", "registry.hub.docker.com"]);
/** What docker itself passes to credential helpers for Docker Hub. */
const DOCKER_HUB_HELPER_URL = "https://index.docker.io/v1/";
const HELPER_TIMEOUT_MS = 30_000;

/** Parses `USER:PASS` (the password may contain colons). */
export function parseCredsOption(creds: string): Credentials {
  const colon = creds.indexOf(":");
  if (colon <= 0) {
    throw new AuthError(`the credentials "${creds.slice(0, 40)}" lack a user name: pass them as --creds USER:PASSWORD`);
  }
  return { username: creds.slice(0, colon), password: creds.slice(colon + 1), source: "--creds" };
}

/**
 * Credentials for `registry` (as written in references: "docker.io", "host:port"):
 * the explicit option, else the first of `$REGISTRY_AUTH_FILE`, `$DOCKER_CONFIG/config.json`,
 * `~/.docker/config.json` that knows the registry (its `credHelpers`, `credsStore`, `auths`).
 * Undefined when nothing is configured: the registry is then tried anonymously.
 */
export async function findCredentials(registry: string, opts: CredentialOptions = {}): Promise<Credentials | undefined> {
  if (opts.creds !== undefined) return parseCredsOption(opts.creds);
  for (const file of configFiles(opts.env ?? process.env)) {
    const config = await readConfigFile(file);
    if (!config) continue;
    const found = await credentialsFromConfig(config, file, registry);
    if (found) return found;
  }
  return undefined;
}

function configFiles(env: NodeJS.ProcessEnv): string[] {
  const home = env["HOME"] ?? homedir();
  const files = [
    env["REGISTRY_AUTH_FILE"],
    env["DOCKER_CONFIG"] ? join(env["DOCKER_CONFIG"], "config.json") : undefined,
    join(home, ".docker", "config.json"),
  ].filter((f): f is string => typeof f === "string" && f !== "");
  return [...new Set(files)];
}

interface AuthEntry { auth?: string; username?: string; password?: string }
interface DockerConfig {
  auths?: Record<string, AuthEntry>;
  credHelpers?: Record<string, string>;
  credsStore?: string;
}

async function readConfigFile(file: string): Promise<DockerConfig | undefined> {
  let text: string;
  try {
    text = await readFile(file, "utf8");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw new AuthError(`the registry auth file ${file} cannot be read: ${(err as Error).message}`, { cause: err });
  }
  try {
    const parsed: unknown = JSON.parse(text);
    return typeof parsed === "object" && parsed !== null ? parsed as DockerConfig : undefined;
  } catch (err) {
    throw new AuthError(`the registry auth file ${file} is not valid JSON: fix it or remove it`, { cause: err });
  }
}

/** docker's order: a per-registry helper, else the default store, else the inline `auths` entry. */
async function credentialsFromConfig(config: DockerConfig, file: string, registry: string): Promise<Credentials | undefined> {
  const helper = findByHost(config.credHelpers, registry);
  if (helper) return runCredentialHelper(helper, registry, file);
  if (config.credsStore) {
    const stored = await runCredentialHelper(config.credsStore, registry, file);
    if (stored) return stored;
  }
  const entry = findByHost(config.auths, registry);
  return entry ? decodeAuthEntry(entry, file, registry) : undefined;
}

/** Keys may be "host", "host:port", "https://host/v1/": compare the host part, Docker Hub's aliases as one. */
function findByHost<T>(map: Record<string, T> | undefined, registry: string): T | undefined {
  if (!map) return undefined;
  const want = canonicalHost(registry);
  for (const [key, value] of Object.entries(map)) {
    if (canonicalHost(key) === want) return value;
  }
  return undefined;
}

function canonicalHost(key: string): string {
  const host = key.replace(/^[a-z]+:\/\//i, "").replace(/\/.*$/, "").toLowerCase();
  return DOCKER_HUB_ALIASES.has(host) ? DOCKER_HUB : host;
}

function decodeAuthEntry(entry: AuthEntry, file: string, registry: string): Credentials | undefined {
  const source = `${file} (auths for ${registry})`;
  if (entry.auth) {
    const decoded = Buffer.from(entry.auth, "base64").toString("utf8");
    const colon = decoded.indexOf(":");
    if (colon <= 0) throw new AuthError(`the auth entry for ${registry} in ${file} is not base64 of USER:PASSWORD: log in again`);
    return { username: decoded.slice(0, colon), password: decoded.slice(colon + 1), source };
  }
  if (entry.username && entry.password !== undefined) {
    return { username: entry.username, password: entry.password, source };
  }
  return undefined;
}

/** Runs `docker-credential-NAME get` with the server on stdin; undefined when it has nothing stored. */
async function runCredentialHelper(name: string, registry: string, file: string): Promise<Credentials | undefined> {
  const program = `docker-credential-${name}`;
  const server = canonicalHost(registry) === DOCKER_HUB ? DOCKER_HUB_HELPER_URL : registry;
  const { code, stdout, stderr } = await runWithInput(program, ["get"], server, file);
  if (code !== 0) {
    const said = (stdout.trim() || stderr.trim()).split("\n")[0] ?? "";
    if (/credentials not found/i.test(said)) return undefined;
    throw new AuthError(`the credential helper ${program} (named in ${file}) failed for ${registry}: ${said || `exit status ${code}`}; check it with "${program} get"`);
  }
  let reply: { Username?: unknown; Secret?: unknown };
  try {
    reply = JSON.parse(stdout) as typeof reply;
  } catch {
    throw new AuthError(`the credential helper ${program} (named in ${file}) printed something that is not JSON for ${registry}; check it with "${program} get"`);
  }
  if (typeof reply.Username !== "string" || typeof reply.Secret !== "string") {
    throw new AuthError(`the credential helper ${program} (named in ${file}) gave no Username and Secret for ${registry}`);
  }
  return { username: reply.Username, password: reply.Secret, source: `${program} (named in ${file})` };
}

function runWithInput(program: string, args: string[], input: string, file: string): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(program, args, { stdio: ["pipe", "pipe", "pipe"] });
    // Our own timer rather than spawn's, which outlives a helper that never started.
    const timer = setTimeout(() => child.kill("SIGKILL"), HELPER_TIMEOUT_MS);
    timer.unref();
    let stdout = "";
    let stderr = "";
    child.stdout.setEncoding("utf8").on("data", (s: string) => { stdout += s; });
    child.stderr.setEncoding("utf8").on("data", (s: string) => { stderr += s; });
    child.on("error", (err: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      reject(err.code === "ENOENT"
        ? new AuthError(`the credential helper ${program} named in ${file} is not on PATH: install it or remove it from that file`, { cause: err })
        : new AuthError(`the credential helper ${program} named in ${file} cannot run: ${err.message}`, { cause: err }));
    });
    child.on("close", (code) => {
      clearTimeout(timer);
      resolve({ code: code ?? 1, stdout, stderr });
    });
    child.stdin.on("error", () => { /* a helper that exits without reading is reported by its status */ });
    child.stdin.end(input);
  });
}
