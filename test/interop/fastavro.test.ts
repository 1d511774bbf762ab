/**
 * The snapshot contract across languages: fastavro (Python) writes
 * single-object-encoded snapshots that this codec decodes field for field,
 * and decodes what this codec writes. Needs the virtualenv `make .venv` makes.
 */
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { promisify } from "node:util";
import {
  decodeSnapshot,
  encodeSnapshot,
  fingerprintHex,
  fingerprintOf,
  snapshotSchema,
} from "../../src/codec/index.js";
import type { ActivationSnapshot } from "../../src/core/snapshot.js";
import { packageRoot } from "../../src/paths.js";

const run = promisify(execFile);
const python = join(packageRoot, ".venv/bin/python");
const script = join(packageRoot, "test/interop/snapshot_interop.py");
const dir = mkdtempSync(join(tmpdir(), "reluwatch-interop-"));

before(() => {
  assert.ok(existsSync(python), `${python} is missing: run \`make .venv\` (the test target does)`);
});
after(() => rmSync(dir, { recursive: true, force: true }));

/** A snapshot as plain JSON values, the way the Python side reports one. */
function asJson(s: ActivationSnapshot): unknown {
  const { stats, ...head } = s;
  return {
    micro_batch: 0,
    incarnation: 0,
    ...head,
    stats:
      stats.kind === "counts"
        ? {
            kind: "counts",
            fires: [...stats.fires],
            abs_sum: stats.abs_sum ? [...stats.abs_sum] : null,
            sq_sum: stats.sq_sum ? [...stats.sq_sum] : null,
            nonfinite: stats.nonfinite ? [...stats.nonfinite] : null,
          }
        : { kind: "raw", dtype: stats.dtype, values: [...stats.values] },
  };
}

test("snapshots written by fastavro decode here, every field equal, with the same fingerprint", async () => {
  const out = join(dir, "from-python");
  await run(python, [script, "write", out]);
  const expected = JSON.parse(readFileSync(join(out, "expected.json"), "utf8")) as {
    fingerprint: string;
    cases: Record<string, unknown>;
  };
  assert.equal(expected.fingerprint, fingerprintHex(fingerprintOf(snapshotSchema)));
  const names = Object.keys(expected.cases);
  assert.deepEqual(names.sort(), [
    "counts_with_nonfinite",
    "counts_with_sums",
    "counts_without_sums",
    "previous_schema",
    "raw_bfloat16",
    "raw_float16",
  ]);
  for (const name of names) {
    const decoded = decodeSnapshot(readFileSync(join(out, `${name}.bin`)));
    assert.deepEqual(asJson(decoded), expected.cases[name], name);
  }
});

test("snapshots written here decode in fastavro, every field equal", async () => {
  const floats = Float32Array.from([0, 1.5, -2.25, 1e-3]);
  const snapshots: ActivationSnapshot[] = [
    {
      run_id: "ts-run-ünï",
      layer: "blocks.11.mlp.fc2",
      rank: 7,
      step: 2 ** 45 + 3,
      time: 1_764_000_000_999,
      unit_offset: 4096,
      unit_count: 4,
      layer_units: 8192,
      samples: 2 ** 20,
      stats: {
        kind: "counts",
        fires: Uint32Array.from([0, 2 ** 20, 12345, 1]),
        abs_sum: Float32Array.from([0, 0.125, 1e8, 3.5]),
        sq_sum: null,
        nonfinite: Uint32Array.from([0, 0, 7, 2 ** 20 - 1]),
      },
      micro_batch: 4,
      incarnation: 1_764_000_000_000,
    },
    {
      run_id: "ts-run",
      layer: "conv",
      rank: 0,
      step: 1,
      time: 0,
      unit_offset: 0,
      unit_count: 2,
      layer_units: 2,
      samples: 2,
      stats: { kind: "raw", dtype: "FLOAT32", values: new Uint8Array(floats.buffer) },
    },
  ];
  const files = snapshots.map((s, i) => {
    const path = join(dir, `from-ts-${i}.bin`);
    writeFileSync(path, encodeSnapshot(s));
    return path;
  });
  const { stdout } = await run(python, [script, "read", ...files]);
  const read = JSON.parse(stdout) as { fingerprint: string; records: unknown[] };
  assert.equal(read.fingerprint, fingerprintHex(fingerprintOf(snapshotSchema)));
  assert.deepEqual(read.records, snapshots.map(asJson));
});

test("fastavro refuses a message whose fingerprint it does not know, as this codec does", async () => {
  const buf = encodeSnapshot({
    run_id: "r",
    layer: "l",
    rank: 0,
    step: 0,
    time: 0,
    unit_offset: 0,
    unit_count: 1,
    layer_units: 1,
    samples: 1,
    stats: { kind: "counts", fires: Uint32Array.from([1]), abs_sum: null, sq_sum: null },
  });
  buf[9]! ^= 0x01;
  const path = join(dir, "bad-fp.bin");
  writeFileSync(path, buf);
  await assert.rejects(run(python, [script, "read", path]), /unknown writer fingerprint/);
  assert.throws(() => decodeSnapshot(buf), /UNKNOWN_FINGERPRINT/);
});
