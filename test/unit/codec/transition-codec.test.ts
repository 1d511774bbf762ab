import assert from "node:assert/strict";
import { test } from "node:test";
import {
  CodecError,
  decodeTransition,
  encodeTransition,
  fingerprintOf,
  transitionFingerprint,
  transitionSchema,
} from "../../../src/codec/index.js";
import type { UnitTransition } from "../../../src/core/snapshot.js";

const death: UnitTransition = {
  run_id: "run-1",
  layer: "fc2",
  unit: 77,
  from: "MOSTLY_SILENT",
  to: "DEAD",
  born_dead: false,
  step: 5000,
  time: 1_764_000_123_456,
  fires: 0,
  samples: 65536,
  firing_rate: 0,
  rate_upper_bound: 4.57e-5,
  last_fire_step: 4100,
};

test("a UnitTransition round-trips, with and without last_fire_step", () => {
  const buf = encodeTransition(death);
  assert.equal(buf.readBigUInt64LE(2), fingerprintOf(transitionSchema));
  assert.equal(transitionFingerprint, fingerprintOf(transitionSchema));
  assert.deepEqual(decodeTransition(buf), death);
  const born = { ...death, from: "UNKNOWN", born_dead: true, last_fire_step: null } as UnitTransition;
  assert.deepEqual(decodeTransition(encodeTransition(born)), born);
});

test("transition decode and encode errors are CodecErrors with codes", () => {
  const buf = encodeTransition(death);
  assert.throws(
    () => decodeTransition(buf.subarray(0, buf.length - 3)),
    (e: unknown) => e instanceof CodecError && e.code === "TRUNCATED",
  );
  assert.throws(
    () => encodeTransition({ ...death, fires: 10, samples: 5 }),
    (e: unknown) => e instanceof CodecError && e.code === "FIRES_EXCEED_SAMPLES" && e.field === "fires",
  );
  assert.throws(
    () => encodeTransition({ ...death, to: "ZOMBIE" as "DEAD" }),
    (e: unknown) => e instanceof CodecError && e.code === "MALFORMED" && e.field === "to",
  );
  assert.throws(
    () => encodeTransition({ ...death, unit: -1 }),
    (e: unknown) => e instanceof CodecError && e.code === "NEGATIVE" && e.field === "unit",
  );
});
