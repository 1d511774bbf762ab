import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import {
  CHECKPOINT_ERROR_CODES,
  CheckpointCodecError,
  CODEC_ERROR_CODES,
  codecErrorReason,
} from "../../../src/codec/index.js";
import { packageRoot } from "../../../src/paths.js";

const doc = readFileSync(join(packageRoot, "docs/errors.md"), "utf8");

/** The codes the table documents: the first cell of each row, in backquotes. */
const documented = [...doc.matchAll(/^\| `([A-Z_]+)` \| `([a-z_]+)` \|/gm)].map((m) => ({
  code: m[1]!,
  reason: m[2]!,
}));

test("docs/errors.md documents every codec and checkpoint error code, and no code that does not exist", () => {
  assert.deepEqual(
    documented.map((d) => d.code).sort(),
    [...CODEC_ERROR_CODES, ...CHECKPOINT_ERROR_CODES].sort(),
  );
});

test("docs/errors.md gives each code's reason label as the code maps it", () => {
  const checkpointCodes: readonly string[] = CHECKPOINT_ERROR_CODES;
  for (const { code, reason } of documented) {
    const expected = checkpointCodes.includes(code)
      ? new CheckpointCodecError(code as (typeof CHECKPOINT_ERROR_CODES)[number], "").reason
      : codecErrorReason(code as (typeof CODEC_ERROR_CODES)[number]);
    assert.equal(reason, expected, code);
  }
});
