import { test } from "node:test";
import assert from "node:assert/strict";
import { parseImageConfig, parseJson, parseManifestDocument } from "../../src/image/parse.js";
import { rfc3339 } from "../../src/image/json-fields.js";
import { GantryError } from "../../src/model/errors.js";

/**
 * Image documents are checked once, where they are parsed, for every reader: field types
 * as Go's image structs decode them, keys given once, 4 MiB at most.
 */

const DIFF_ID = `sha256:${"a".repeat(64)}`;

function config(extra: Record<string, unknown> = {}): Buffer {
  return Buffer.from(JSON.stringify({ architecture: "amd64", os: "linux", rootfs: { type: "layers", diff_ids: [DIFF_ID] }, ...extra }));
}

function refusedWith(pattern: RegExp): (err: unknown) => boolean {
  return (err) => {
    assert.ok(err instanceof GantryError, String(err));
    assert.equal(err.code, "FORMAT_INVALID");
    assert.match(err.message, pattern);
    return true;
  };
}

test("a key given twice in one object is refused, however it is spelled; once per object is fine", () => {
  const twice = [
    '{"a":1,"a":2}',
    '{"a":1,"\\u0061":2}',
    '{"x":{"Cmd":[],"b":"\\"Cmd\\":","Cmd":null}}',
    '[{"k":1},{"k":1,"k":1}]',
  ];
  for (const text of twice) assert.throws(() => parseJson(Buffer.from(text), "the doc"), refusedWith(/the doc gives the key "\w+" twice/), text);
  const once = [
    '{"a":{"a":{"a":1}},"b":[{"a":1},{"a":2}]}',
    '{"a\\"":1,"a":2,"a\\\\":3}',
    '{"s":"{\\"a\\":1,\\"a\\":2}","t":"\\\\"}',
    '[]',
    '"just a string"',
  ];
  for (const text of once) assert.doesNotThrow(() => parseJson(Buffer.from(text), "the doc"), text);
});

test("a document over 4 MiB is refused", () => {
  const big = config({ comment: "x".repeat(4 * 1024 * 1024) });
  assert.throws(() => parseImageConfig(big, "the config"), refusedWith(/the config is \d+ bytes, more than the 4194304/));
});

test("config fields of the wrong type are refused, naming the field", () => {
  const cases: [Record<string, unknown>, RegExp][] = [
    [{ history: [[null]] }, /history\[0\] is a list, not an object/],
    [{ history: [{ created: "yesterday" }] }, /history\[0\]\.created is "yesterday", not an RFC 3339 time/],
    [{ created: "2000-01-01 00:00:00Z" }, /created is .* not an RFC 3339 time/],
    [{ config: "x" }, /config is a string, not an object/],
    [{ config: { Cmd: "x" } }, /config\.Cmd is a string, not a list of strings/],
    [{ config: { Entrypoint: [null] } }, /config\.Entrypoint\[0\] is null, not a string/],
    [{ config: { Healthcheck: { Retries: "3" } } }, /config\.Healthcheck\.Retries is a string, not an integer/],
    [{ config: { Volumes: { "/data": "x" } } }, /config\.Volumes\["\/data"\] is a string, not an object/],
    [{ container_config: { Tty: "yes" } }, /container_config\.Tty is a string, not a boolean/],
    [{ architecture: 64 }, /architecture is a number, not a string/],
    [{ rootfs: { type: "zfs", diff_ids: [DIFF_ID] } }, /rootfs\.type is "zfs", not "layers"/],
  ];
  for (const [extra, why] of cases) {
    assert.throws(() => parseImageConfig(config(extra), "the config"), refusedWith(new RegExp(`^the config is not a valid image config: ${why.source}`)), JSON.stringify(extra));
  }
});

test("null fields are as if absent, and unknown fields are kept", () => {
  const parsed = parseImageConfig(config({ config: { Cmd: null, Env: null, Labels: null }, history: null, created: null, moby: { x: 1 } }), "the config");
  assert.deepEqual(parsed["moby"], { x: 1 });
});

test("RFC 3339 times as Go reads them", () => {
  for (const ok of ["2000-01-01T00:00:00Z", "2024-02-29T23:59:59.999999999+01:00", "1970-01-01T00:00:01-07:30"]) {
    assert.equal(rfc3339(ok), undefined, ok);
  }
  for (const bad of ["2023-02-29T00:00:00Z", "2000-01-01t00:00:00Z", "2000-01-01T24:00:00Z", "2000-01-01T00:00:60Z", "2000-01-01T00:00:00", "2000-1-01T00:00:00Z", "2000-01-01T00:00:00+0100", ""]) {
    assert.notEqual(rfc3339(bad), undefined, bad);
  }
});

test("manifest and index fields of the wrong type are refused, naming the field", () => {
  const layer = { mediaType: "application/vnd.oci.image.layer.v1.tar+gzip", digest: DIFF_ID, size: 1 };
  const manifest = (extra: Record<string, unknown>, layerExtra: Record<string, unknown> = {}): Buffer => Buffer.from(JSON.stringify({
    schemaVersion: 2, config: { ...layer, mediaType: "application/vnd.oci.image.config.v1+json" }, layers: [{ ...layer, ...layerExtra }], ...extra,
  }));
  assert.throws(() => parseManifestDocument(manifest({ annotations: { a: 1 } }), undefined, "the manifest"), refusedWith(/annotations\["a"\] is a number, not a string/));
  assert.throws(() => parseManifestDocument(manifest({}, { urls: "x" }), undefined, "the manifest"), refusedWith(/layer 1 of the manifest is not a valid descriptor: urls is a string/));
  assert.throws(() => parseManifestDocument(manifest({ subject: { digest: DIFF_ID } }), undefined, "the manifest"), refusedWith(/the subject of the manifest has no valid size/));
  const index = Buffer.from(JSON.stringify({ schemaVersion: 2, manifests: [{ ...layer, platform: { architecture: "amd64", os: "linux", "os.features": "x" } }] }));
  assert.throws(() => parseManifestDocument(index, undefined, "the index"), refusedWith(/entry 1 of the index is not a valid descriptor: platform\.os\.features is a string/));
});
