/**
 * The `gantry` command, bin/gantry: node starts without NODE_EXTRA_CA_CERTS (which it would
 * load at start-up, 90 ms with a system bundle, whether or not a TLS connection follows), yet
 * gantry's own TLS connections trust those certificates as node would have, and the programs
 * gantry runs get the variable back. Spoken to as 0.0.0.0:PORT, a registry that is not a
 * loopback name, so gantry insists on checked TLS (test/fixtures/tls). It also starts node with
 * glibc's malloc arenas capped, and takes the cap back from the programs gantry runs.
 */
import { test, type TestContext } from "node:test";
import assert from "node:assert/strict";
import { chmod, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { createServer, type Server } from "node:https";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { REPO_ROOT } from "../helpers/paths.js";
import { gantryEnv } from "../helpers/gantry.js";
import { run } from "../helpers/tools.js";

const BIN = join(REPO_ROOT, "bin/gantry");
const CA = join(REPO_ROOT, "test/fixtures/tls/cert.pem");

interface Registry { port: number; paths: string[] }

/** A registry over TLS that asks for Basic credentials and holds no image. */
async function startRegistry(t: TestContext): Promise<Registry> {
  const paths: string[] = [];
  const server: Server = createServer({ cert: await readFile(CA), key: await readFile(join(REPO_ROOT, "test/fixtures/tls/key.pem")) }, (req, res) => {
    paths.push(req.url ?? "");
    if (req.headers.authorization === undefined) {
      res.writeHead(401, { "www-authenticate": 'Basic realm="test"', "content-length": "0" }).end();
      return;
    }
    if (req.url === "/v2/") res.writeHead(200, { "content-length": "2" }).end("{}");
    else res.writeHead(404, { "content-type": "application/json" }).end(JSON.stringify({ errors: [{ code: "MANIFEST_UNKNOWN", message: "manifest unknown" }] }));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  t.after(() => new Promise<void>((resolve) => server.close(() => resolve())));
  return { port: (server.address() as AddressInfo).port, paths };
}

/**
 * A directory for PATH with a `node` that notes its own environment before it runs the real
 * node, and the credential helper `docker-credential-envcheck`, which notes its environment
 * and answers with fixed credentials; and a DOCKER_CONFIG naming that helper for `registry`.
 */
async function spies(t: TestContext, registry: string): Promise<{ dir: string; nodeEnv: () => Promise<string>; helperEnv: () => Promise<string> }> {
  const dir = await mkdtemp(join(tmpdir(), "gantry-bin-"));
  t.after(() => rm(dir, { recursive: true, force: true }));
  await writeFile(join(dir, "node"), `#!/bin/sh\nenv > "${dir}/node.env"\nexec "${process.execPath}" "$@"\n`);
  await writeFile(join(dir, "docker-credential-envcheck"),
    `#!/bin/sh\nenv > "${dir}/helper.env"\ncat >/dev/null\necho '{"ServerURL":"${registry}","Username":"u","Secret":"p"}'\n`);
  await chmod(join(dir, "node"), 0o755);
  await chmod(join(dir, "docker-credential-envcheck"), 0o755);
  await writeFile(join(dir, "config.json"), JSON.stringify({ credHelpers: { [registry]: "envcheck" } }));
  return { dir, nodeEnv: () => readFile(join(dir, "node.env"), "utf8"), helperEnv: () => readFile(join(dir, "helper.env"), "utf8") };
}

async function inspect(registry: string, spy: { dir: string }, extra: NodeJS.ProcessEnv): Promise<{ code: number; stderr: string }> {
  const env = gantryEnv({ PATH: `${spy.dir}:${dirname(process.execPath)}:${process.env["PATH"] ?? ""}`, DOCKER_CONFIG: spy.dir, REGISTRY_AUTH_FILE: undefined, ...extra });
  const r = await run(BIN, ["inspect", `docker://${registry}/app:1`], { allowFailure: true, env });
  return { code: r.code, stderr: r.stderr.toString() };
}

test("bin/gantry: node starts without NODE_EXTRA_CA_CERTS, yet gantry's TLS trusts its certificates and the programs it runs see it", async (t) => {
  const server = await startRegistry(t);
  const registry = `0.0.0.0:${server.port}`;
  const spy = await spies(t, registry);
  const r = await inspect(registry, spy, { NODE_EXTRA_CA_CERTS: CA, GANTRY_EXTRA_CA_CERTS: undefined });
  assert.equal(r.code, 1, r.stderr);
  assert.match(r.stderr, /^gantry: .*not found|^gantry: .*manifest unknown/im, "the registry was reached over checked TLS and said the image is not there");
  assert.doesNotMatch(r.stderr, /TLS/);
  assert.ok(server.paths.includes("/v2/app/manifests/1"), `the registry was asked for the image: ${server.paths.join(" ")}`);
  const nodeEnv = await spy.nodeEnv();
  assert.doesNotMatch(nodeEnv, /^NODE_EXTRA_CA_CERTS=/m, "node itself started without the variable");
  assert.match(nodeEnv, new RegExp(`^GANTRY_EXTRA_CA_CERTS=${CA}$`, "m"));
  assert.match(await spy.helperEnv(), new RegExp(`^NODE_EXTRA_CA_CERTS=${CA}$`, "m"), "the credential helper gantry ran has it back");
});

test("bin/gantry: node starts with glibc's malloc arenas capped, the programs gantry runs without the cap, and a cap the user set is kept for both", async (t) => {
  const server = await startRegistry(t);
  const registry = `0.0.0.0:${server.port}`;
  const spy = await spies(t, registry);
  const capped = await inspect(registry, spy, { NODE_EXTRA_CA_CERTS: CA, MALLOC_ARENA_MAX: undefined, GANTRY_SET_MALLOC_ARENA_MAX: undefined });
  assert.equal(capped.code, 1, capped.stderr);
  assert.match(await spy.nodeEnv(), /^MALLOC_ARENA_MAX=2$/m, "node itself started with the cap");
  const helperEnv = await spy.helperEnv();
  assert.doesNotMatch(helperEnv, /^MALLOC_ARENA_MAX=/m, "the credential helper gantry ran started without it");
  assert.doesNotMatch(helperEnv, /^GANTRY_SET_MALLOC_ARENA_MAX=/m);

  const own = await inspect(registry, spy, { NODE_EXTRA_CA_CERTS: CA, MALLOC_ARENA_MAX: "4", GANTRY_SET_MALLOC_ARENA_MAX: undefined });
  assert.equal(own.code, 1, own.stderr);
  assert.match(await spy.nodeEnv(), /^MALLOC_ARENA_MAX=4$/m, "the user's own cap, unchanged");
  assert.match(await spy.helperEnv(), /^MALLOC_ARENA_MAX=4$/m, "and kept for the programs gantry runs");
});

test("bin/gantry: without NODE_EXTRA_CA_CERTS the self-signed registry is refused, before any request", async (t) => {
  const server = await startRegistry(t);
  const registry = `0.0.0.0:${server.port}`;
  const spy = await spies(t, registry);
  const r = await inspect(registry, spy, { NODE_EXTRA_CA_CERTS: undefined, GANTRY_EXTRA_CA_CERTS: undefined });
  assert.equal(r.code, 1);
  assert.match(r.stderr, /^gantry: the TLS connection to 0\.0\.0\.0:\d+ failed/m);
  assert.deepEqual(server.paths, [], "no request got through");
});
