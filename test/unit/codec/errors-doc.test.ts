import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { CODEC_ERROR_CODES, codecErrorReason } from "../../../src/codec/index.js";
import { packageRoot } from "../../../src/paths.js";

const doc = readFileSync(join(packageRoot, "docs/errors.md"), "utf8");

/** The codes the table documents: the first cell of each row, in backquotes. */
const documented = [...doc.matchAll(/^\| `([A-Z_]+)` \| `([a-z_]+)` \|/gm)].map((m) => ({
  code: m[1]!,
  reason: m[2]!,
}));

test("docs/errors.md documents every codec error code, and no code that does not exist", () => {
  assert.deepEqual(documented.map((d) => d.code).sort(), [...CODEC_ERROR_CODES].sort());
});

test("docs/errors.md gives each code's reason label as the code maps it", () => {
  for (const { code, reason } of documented) {
    assert.equal(reason, codecErrorReason(code as (typeof CODEC_ERROR_CODES)[number]), code);
  }
});
