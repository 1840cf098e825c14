/**
 * The copyToRoot forms in the spec (spec-schema.ts, spec-load.ts, plan.ts): closureOf and
 * builtin entries are accepted, planned without I/O (closure paths relative to the spec),
 * refused with one sentence naming the field and what is allowed, and the helpers a
 * TypeScript spec imports from "gantry" make the same entries as the JSON forms.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { validateSpec } from "../../src/builder/spec-load.js";
import { planBuild } from "../../src/builder/plan.js";
import { GantryError } from "../../src/model/errors.js";
import * as gantry from "../../src/index.js";

function specError(input: unknown): string {
  try {
    validateSpec(input, "spec x.json");
  } catch (err) {
    assert.ok(err instanceof GantryError && err.code === "SPEC_INVALID", String(err));
    assert.ok(!err.message.includes("\n"), "one line");
    return err.message;
  }
  assert.fail("the spec was accepted");
}

test("closureOf and builtin entries are planned as written, program paths relative to the spec", () => {
  const spec = validateSpec({ name: "a", copyToRoot: [{ closureOf: ["/usr/bin/node", "bin/tool"] }, { builtin: "fakeNss" }] }, "s");
  assert.deepEqual(planBuild(spec, "/specs", {}).layers[0]!.sources, [{ closureOf: ["/usr/bin/node", "/specs/bin/tool"] }, { builtin: "fakeNss" }]);
  const single = validateSpec({ name: "a", copyToRoot: { builtin: "tmp" } }, "s");
  assert.deepEqual(planBuild(single, "/", {}).layers[0]!.sources, [{ builtin: "tmp" }]);
  const layered = validateSpec({ name: "a", layers: [{ copyToRoot: [{ closureOf: ["/bin/sh"] }] }] }, "s");
  assert.deepEqual(planBuild(layered, "/", {}).layers[0]!.sources, [{ closureOf: ["/bin/sh"] }]);
});

test("an unknown builtin is named with the builtins there are", () => {
  const msg = specError({ name: "a", copyToRoot: [{ builtin: "fakeNSS" }] });
  assert.match(msg, /the field "copyToRoot\[0\]\.builtin" is "fakeNSS", expected one of "fakeNss", "caCertificates", "binSh", "usrBinEnv", "tmp"/);
  assert.match(specError({ name: "a", copyToRoot: { builtin: "bash" } }), /"copyToRoot\.builtin" is "bash", expected one of "fakeNss"/);
});

test("closureOf must be a non-empty list of paths", () => {
  assert.match(specError({ name: "a", copyToRoot: [{ closureOf: "/usr/bin/node" }] }), /"copyToRoot\[0\]\.closureOf" is "\/usr\/bin\/node", expected a list of program paths, like \["\/usr\/bin\/node"\]/);
  assert.match(specError({ name: "a", copyToRoot: [{ closureOf: [] }] }), /"copyToRoot\[0\]\.closureOf" is \[\], expected at least one program path/);
  assert.match(specError({ name: "a", copyToRoot: [{ closureOf: [""] }] }), /"copyToRoot\[0\]\.closureOf\[0\]" is "", expected a program path/);
});

test("an entry mixing forms says so, one of no form lists the forms, a misspelt key of a form is named", () => {
  const forms = /expected a directory path, \{ "from": PATH, "to": "\/dir" \}, \{ "closureOf": \[PROGRAM, \.\.\.\] \} or \{ "builtin": NAME \}, one form per entry/;
  assert.match(specError({ name: "a", copyToRoot: [{ from: "x", closureOf: ["/bin/sh"] }] }), /the field "copyToRoot\[0\]" mixes "from" and "closureOf"; an entry is one of .*, so make them separate entries/);
  assert.match(specError({ name: "a", layers: [{ copyToRoot: { builtin: "tmp", closureOf: ["/bin/sh"] } }] }), /the field "layers\[0\]\.copyToRoot" mixes "closureOf" and "builtin"/);
  assert.match(specError({ name: "a", copyToRoot: [42] }), forms);
  assert.match(specError({ name: "a", copyToRoot: [{ closureof: ["/bin/sh"] }] }), forms);
  assert.match(specError({ name: "a", copyToRoot: 42 }), /"copyToRoot" is 42, expected .*, or a list of them/);
  assert.match(specError({ name: "a", copyToRoot: [{ from: "x", too: "/app" }] }), /unknown field copyToRoot\[0\] "too"/);
});

test("the helpers a TypeScript spec imports make the JSON forms", () => {
  assert.deepEqual(gantry.closureOf("/usr/bin/node", "./tool"), { closureOf: ["/usr/bin/node", "./tool"] });
  assert.deepEqual([gantry.fakeNss, gantry.caCertificates, gantry.binSh, gantry.usrBinEnv, gantry.tmp], [
    { builtin: "fakeNss" }, { builtin: "caCertificates" }, { builtin: "binSh" }, { builtin: "usrBinEnv" }, { builtin: "tmp" },
  ]);
  const spec = gantry.defineImage({ name: "a", copyToRoot: [gantry.closureOf("/bin/sh"), gantry.fakeNss, gantry.tmp, "./root"] });
  assert.doesNotThrow(() => validateSpec(spec, "ts spec"));
});
