/**
 * Digests (model/digest.ts): the written-out digest of no bytes is the sha256 of no bytes,
 * and ContentDigester gives the digest of all the pieces it was fed, however they were cut.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { ContentDigester, EMPTY_DIGEST, sha256 } from "../../src/model/digest.js";

const reference = (bytes: Buffer): string => `sha256:${createHash("sha256").update(bytes).digest("hex")}`;

test("EMPTY_DIGEST is the sha256 of no bytes", () => {
  assert.equal(EMPTY_DIGEST, reference(Buffer.alloc(0)));
  assert.equal(sha256(""), EMPTY_DIGEST);
});

test("ContentDigester gives the digest of its pieces: none, one last piece, or several", () => {
  const none = new ContentDigester();
  assert.equal(none.digest(), EMPTY_DIGEST);

  const bytes = Buffer.from("a file's bytes, cut in three pieces");
  const whole = new ContentDigester();
  whole.last(bytes);
  assert.equal(whole.digest(), reference(bytes));

  const cut = new ContentDigester();
  cut.update(bytes.subarray(0, 5));
  cut.update(bytes.subarray(5, 20));
  cut.last(bytes.subarray(20));
  assert.equal(cut.digest(), reference(bytes));

  const emptyLast = new ContentDigester();
  emptyLast.update(bytes);
  emptyLast.last(Buffer.alloc(0));
  assert.equal(emptyLast.digest(), reference(bytes));
});
