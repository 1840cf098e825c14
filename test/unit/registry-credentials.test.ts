import { test } from "node:test";
import assert from "node:assert/strict";
import { chmod, mkdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { AuthError } from "../../src/model/errors.js";
import { findCredentials, parseCredsOption } from "../../src/transports/docker/credentials.js";
import { tmpDir } from "../helpers/tmp.js";

const b64 = (s: string): string => Buffer.from(s).toString("base64");

async function configIn(dir: string, name: string, config: unknown): Promise<string> {
  await mkdir(join(dir, name), { recursive: true });
  const file = join(dir, name, "config.json");
  await writeFile(file, JSON.stringify(config));
  return file;
}

/**
 * A stand-in for docker-credential-NAME: prints credentials for one server, records what it
 * was asked on stdin, and says "credentials not found" otherwise, as real helpers do.
 */
async function fakeHelper(bin: string, name: string, server: string, user: string, secret: string): Promise<string> {
  await mkdir(bin, { recursive: true });
  const asked = join(bin, `${name}.asked`);
  const script = [
    "#!/bin/sh",
    `[ "$1" = get ] || exit 2`,
    `read -r server`,
    `printf '%s' "$server" > '${asked}'`,
    `if [ "$server" = '${server}' ]; then printf '{"ServerURL":"%s","Username":"${user}","Secret":"${secret}"}' "$server"; exit 0; fi`,
    `echo "credentials not found in native keychain"; exit 1`,
  ].join("\n");
  await writeFile(join(bin, `docker-credential-${name}`), script);
  await chmod(join(bin, `docker-credential-${name}`), 0o755);
  return asked;
}

test("--creds USER:PASS splits at the first colon and wins over every file", async (t) => {
  const dir = await tmpDir(t);
  await configIn(dir, "d", { auths: { "r.io": { auth: b64("file:user") } } });
  assert.deepEqual(parseCredsOption("u:p:a:ss"), { username: "u", password: "p:a:ss", source: "--creds" });
  const found = await findCredentials("r.io", { creds: "me:pw", env: { HOME: dir, DOCKER_CONFIG: join(dir, "d") } });
  assert.equal(found?.username, "me");
  assert.throws(() => parseCredsOption(":pw"), (e: unknown) => e instanceof AuthError && /--creds USER:PASSWORD/.test(e.message));
  assert.throws(() => parseCredsOption("nocolon"), AuthError);
});

test("auths: base64 auth or username/password, keys with scheme and path, Docker Hub aliases", async (t) => {
  const dir = await tmpDir(t);
  const cfg = join(dir, "d");
  await configIn(dir, "d", {
    auths: {
      "https://index.docker.io/v1/": { auth: b64("hub:hubpw") },
      "http://127.0.0.1:5000/v2/": { auth: b64("local:pw:with:colons") },
      "ghcr.io": { username: "gh", password: "tok" },
      "empty.io": {},
    },
  });
  const env = { HOME: dir, DOCKER_CONFIG: cfg };
  assert.deepEqual(
    { ...(await findCredentials("docker.io", { env }))! },
    { username: "hub", password: "hubpw", source: `${join(cfg, "config.json")} (auths for docker.io)` },
  );
  assert.equal((await findCredentials("127.0.0.1:5000", { env }))?.password, "pw:with:colons");
  assert.equal((await findCredentials("ghcr.io", { env }))?.password, "tok");
  assert.equal(await findCredentials("127.0.0.1:5001", { env }), undefined, "another port is another registry");
  assert.equal(await findCredentials("empty.io", { env }), undefined);
  assert.equal(await findCredentials("quay.io", { env }), undefined);
});

test("file order: REGISTRY_AUTH_FILE, then $DOCKER_CONFIG/config.json, then ~/.docker/config.json", async (t) => {
  const dir = await tmpDir(t);
  const authFile = join(dir, "auth.json");
  await writeFile(authFile, JSON.stringify({ auths: { "a.io": { auth: b64("from-auth-file:1") } } }));
  await configIn(dir, "d", { auths: { "a.io": { auth: b64("from-docker-config:1") }, "b.io": { auth: b64("from-docker-config:2") } } });
  await configIn(dir, ".docker", { auths: { "c.io": { auth: b64("from-home:3") } } });
  const env = { HOME: dir, DOCKER_CONFIG: join(dir, "d"), REGISTRY_AUTH_FILE: authFile };
  assert.equal((await findCredentials("a.io", { env }))?.username, "from-auth-file");
  assert.equal((await findCredentials("b.io", { env }))?.username, "from-docker-config", "a file without the host is skipped");
  assert.equal((await findCredentials("c.io", { env }))?.username, "from-home");
  assert.equal((await findCredentials("c.io", { env: { HOME: dir } }))?.username, "from-home");
});

test("credHelpers[host] and credsStore run docker-credential-NAME get with the server on stdin", async (t) => {
  const dir = await tmpDir(t);
  const bin = join(dir, "bin");
  const askedPerHost = await fakeHelper(bin, "perhost", "127.0.0.1:5000", "helped", "s3");
  const askedStore = await fakeHelper(bin, "store", "https://index.docker.io/v1/", "hubhelped", "s4");
  await configIn(dir, "d", {
    credHelpers: { "127.0.0.1:5000": "perhost" },
    credsStore: "store",
    auths: { "inline.io": { auth: b64("inline:pw") } },
  });
  const env = { HOME: dir, DOCKER_CONFIG: join(dir, "d"), PATH: `${bin}:${process.env["PATH"] ?? ""}` };
  const saved = process.env["PATH"];
  process.env["PATH"] = env.PATH; // spawn looks programs up in this process's PATH
  t.after(() => { process.env["PATH"] = saved; });

  const perHost = await findCredentials("127.0.0.1:5000", { env });
  assert.deepEqual({ username: perHost?.username, password: perHost?.password }, { username: "helped", password: "s3" });
  assert.equal(await readFile(askedPerHost, "utf8"), "127.0.0.1:5000");
  assert.match(perHost!.source, /docker-credential-perhost/);

  const hub = await findCredentials("docker.io", { env });
  assert.equal(hub?.username, "hubhelped");
  assert.equal(await readFile(askedStore, "utf8"), "https://index.docker.io/v1/", "Docker Hub is asked for by its v1 URL, as docker does");

  // The store has nothing for inline.io: the inline auths entry answers.
  assert.equal((await findCredentials("inline.io", { env }))?.username, "inline");
  assert.equal(await findCredentials("nowhere.io", { env }), undefined);
});

test("a helper that is missing or fails, and a config that is not JSON, are AuthErrors naming the file", async (t) => {
  const dir = await tmpDir(t);
  const file = await configIn(dir, "d", { credHelpers: { "r.io": "gantry-test-absent" } });
  await assert.rejects(findCredentials("r.io", { env: { HOME: dir, DOCKER_CONFIG: join(dir, "d") } }),
    (e: unknown) => e instanceof AuthError && e.message.includes("docker-credential-gantry-test-absent") && e.message.includes(file) && /not on PATH/.test(e.message));

  const bin = join(dir, "bin");
  await mkdir(bin);
  await writeFile(join(bin, "docker-credential-broken"), "#!/bin/sh\necho 'keychain locked' >&2\nexit 3\n");
  await chmod(join(bin, "docker-credential-broken"), 0o755);
  await configIn(dir, "e", { credsStore: "broken" });
  const saved = process.env["PATH"];
  process.env["PATH"] = `${bin}:${saved ?? ""}`;
  t.after(() => { process.env["PATH"] = saved; });
  await assert.rejects(findCredentials("r.io", { env: { HOME: dir, DOCKER_CONFIG: join(dir, "e") } }),
    (e: unknown) => e instanceof AuthError && /keychain locked/.test(e.message) && e.message.includes("r.io"));

  await mkdir(join(dir, "f"));
  await writeFile(join(dir, "f", "config.json"), "{ not json");
  await assert.rejects(findCredentials("r.io", { env: { HOME: dir, DOCKER_CONFIG: join(dir, "f") } }),
    (e: unknown) => e instanceof AuthError && e.message.includes(join(dir, "f", "config.json")) && /not valid JSON/.test(e.message));
});
