import assert from "node:assert/strict";
import { test } from "node:test";
import { decodeSnapshot, defaultSnapshotCodec, HEADER_BYTES, MAGIC } from "../../../src/codec/index.js";
import { snapshotToAvro } from "../../../src/codec/snapshot-codec.js";
import { countsSnapshot, plain } from "./fixtures.js";

/** A counts snapshot of `units` units whose fires differ from one call to the next. */
function snapshotOf(units: number, seed: number) {
  const fires = new Uint32Array(units);
  for (let i = 0; i < units; i++) fires[i] = (i * 7 + seed) % 64;
  return countsSnapshot({
    unit_offset: 0,
    unit_count: units,
    layer_units: units,
    samples: 64,
    step: seed,
    stats: { kind: "counts", fires, abs_sum: null, sq_sum: null },
  });
}

test("single-object encode: records larger than its scratch space, then smaller ones, each exact and independent", () => {
  const objectType = defaultSnapshotCodec.objectType;
  // 64 KB of scratch at first: 40,000 units of counts need about 160 KB, 100 units a few hundred bytes.
  const sizes = [100, 40_000, 100, 200_000, 4_096];
  const encoded = sizes.map((units, i) => ({
    s: snapshotOf(units, i),
    bytes: objectType.encode(snapshotToAvro(snapshotOf(units, i))),
  }));
  for (const { s, bytes } of encoded) {
    assert.deepEqual([...bytes.subarray(0, 2)], [...MAGIC]);
    // Exactly one record: the decoder refuses trailing bytes, so an over-long copy would fail here.
    assert.deepEqual(plain(decodeSnapshot(bytes)), plain(s));
  }
  // The body equals avsc's own encoding: the scratch path changes where bytes are written, not which.
  for (const { s, bytes } of encoded) {
    assert.ok(bytes.subarray(HEADER_BYTES).equals(objectType.type.toBuffer(snapshotToAvro(s))));
  }
});
