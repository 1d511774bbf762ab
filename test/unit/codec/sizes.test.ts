import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import {
  encodeSnapshot,
  fingerprintHex,
  fingerprintOf,
  snapshotSchema,
  transitionSchema,
} from "../../../src/codec/index.js";
import type { ActivationSnapshot } from "../../../src/core/snapshot.js";
import { packageRoot } from "../../../src/paths.js";

const doc = readFileSync(join(packageRoot, "docs/contract.md"), "utf8");
const units = 1024;
const samples = 512;
const head = {
  run_id: "run-0001",
  layer: "blocks.3.mlp.fc1",
  rank: 3,
  step: 120_000,
  time: 1_764_000_000_000,
  unit_offset: 0,
  unit_count: units,
  layer_units: units,
  samples,
};

function size(stats: ActivationSnapshot["stats"]): string {
  return encodeSnapshot({ ...head, stats }).length.toLocaleString("en-US");
}

const counts = (abs: boolean, sq: boolean): ActivationSnapshot["stats"] => ({
  kind: "counts",
  fires: new Uint32Array(units),
  abs_sum: abs ? new Float32Array(units) : null,
  sq_sum: sq ? new Float32Array(units) : null,
});

test("docs/contract.md quotes the encoded sizes the codec produces", () => {
  const rows: [string, string][] = [
    ["FiringCounts, fires only", size(counts(false, false))],
    ["FiringCounts + abs_sum", size(counts(true, false))],
    ["FiringCounts + abs_sum + sq_sum", size(counts(true, true))],
    [
      "RawActivations FLOAT32",
      size({ kind: "raw", dtype: "FLOAT32", values: new Uint8Array(units * samples * 4) }),
    ],
    [
      "RawActivations FLOAT16 or BFLOAT16",
      size({ kind: "raw", dtype: "BFLOAT16", values: new Uint8Array(units * samples * 2) }),
    ],
  ];
  for (const [label, bytes] of rows) {
    const row = doc.split("\n").find((l) => l.startsWith(`| ${label} |`));
    assert.ok(row, `no row for ${label}`);
    assert.ok(row.trim().endsWith(`| ${bytes} |`), `${label}: doc says ${row}, codec makes ${bytes}`);
  }
});

test("docs/contract.md quotes the shipped schemas' single-object headers", () => {
  for (const schema of [snapshotSchema, transitionSchema]) {
    const hex = fingerprintHex(fingerprintOf(schema)).match(/../g)!.join(" ");
    assert.ok(doc.includes(`c3 01 ${hex}`), `header c3 01 ${hex} not in the doc`);
  }
});
