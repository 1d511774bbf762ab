/**
 * The test vectors shared with the Python package (test/fixtures/snapshot-vectors.json, written by
 * python/tests/make_vectors.py and checked there too): this codec decodes each vector's bytes to its
 * fields and encodes its fields to exactly its bytes, so each language reads what the other writes.
 */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import {
  decodeSnapshot,
  encodeSnapshot,
  fingerprintHex,
  fingerprintOf,
  snapshotSchema,
} from "../../../src/codec/index.js";
import type { ActivationDtype, ActivationSnapshot } from "../../../src/core/snapshot.js";
import { packageRoot } from "../../../src/paths.js";

interface JsonCounts {
  kind: "counts";
  fires: number[];
  abs_sum: number[] | null;
  sq_sum: number[] | null;
  nonfinite: number[] | null;
}
interface JsonRaw {
  kind: "raw";
  dtype: ActivationDtype;
  values_hex: string;
}
type JsonSnapshot = Omit<Required<ActivationSnapshot>, "stats"> & { stats: JsonCounts | JsonRaw };

const file = JSON.parse(readFileSync(join(packageRoot, "test/fixtures/snapshot-vectors.json"), "utf8")) as {
  fingerprint: string;
  vectors: Array<{ name: string; snapshot: JsonSnapshot; hex: string }>;
};

function fromJson(v: JsonSnapshot): ActivationSnapshot {
  const { stats, ...head } = v;
  return {
    ...head,
    stats:
      stats.kind === "counts"
        ? {
            kind: "counts",
            fires: Uint32Array.from(stats.fires),
            abs_sum: stats.abs_sum && Float32Array.from(stats.abs_sum),
            sq_sum: stats.sq_sum && Float32Array.from(stats.sq_sum),
            nonfinite: stats.nonfinite && Uint32Array.from(stats.nonfinite),
          }
        : { kind: "raw", dtype: stats.dtype, values: new Uint8Array(Buffer.from(stats.values_hex, "hex")) },
  };
}

function toJson(s: ActivationSnapshot): JsonSnapshot {
  const { stats, ...head } = s;
  return {
    ...head,
    micro_batch: s.micro_batch ?? 0,
    incarnation: s.incarnation ?? 0,
    stats:
      stats.kind === "counts"
        ? {
            kind: "counts",
            fires: [...stats.fires],
            abs_sum: stats.abs_sum ? [...stats.abs_sum] : null,
            sq_sum: stats.sq_sum ? [...stats.sq_sum] : null,
            nonfinite: stats.nonfinite ? [...stats.nonfinite] : null,
          }
        : { kind: "raw", dtype: stats.dtype, values_hex: Buffer.from(stats.values).toString("hex") },
  };
}

test("the shared vectors are written with this codec's schema", () => {
  assert.equal(file.fingerprint, fingerprintHex(fingerprintOf(snapshotSchema)));
  assert.ok(file.vectors.length >= 6);
  const fields = file.vectors.map((v) => v.snapshot);
  assert.ok(fields.some((s) => s.micro_batch > 0 && s.incarnation > 0 && s.stats.kind === "counts"));
  assert.ok(fields.some((s) => s.stats.kind === "counts" && s.stats.nonfinite !== null));
});

for (const { name, snapshot, hex } of file.vectors) {
  test(`${name}: Python's bytes decode to its fields here`, () => {
    assert.deepEqual(toJson(decodeSnapshot(Buffer.from(hex, "hex"))), snapshot);
  });
  test(`${name}: its fields encode here to Python's bytes`, () => {
    assert.equal(encodeSnapshot(fromJson(snapshot)).toString("hex"), hex);
  });
}
