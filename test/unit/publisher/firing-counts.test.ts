import assert from "node:assert/strict";
import { test } from "node:test";
import fc from "fast-check";
import { encodeSnapshot } from "../../../src/codec/index.js";
import { countsFromActivations, mergeCounts } from "../../../src/publisher/firing-counts.js";
import { propertyParams } from "../../support/property.js";

test("fires count finite positive activations per unit; zero, negative, NaN and ±Inf do not fire", () => {
  // 3 samples × 4 units
  const values = Float32Array.from([0, 1, -1, Number.NaN, 2, 0, -3, 0.5, 0.001, 0, -0, 4]);
  const c = countsFromActivations(values, 3, 4, { absSum: true, sqSum: true });
  assert.deepEqual([...c.fires], [2, 1, 0, 2]);
  // The NaN is counted apart and left out of the sums, which stay finite.
  assert.deepEqual([...c.nonfinite!], [0, 0, 0, 1]);
  assert.deepEqual(
    [...c.abs_sum!],
    [Math.fround(2.001), 1, 4, 4.5].map((v) => Math.fround(v)),
  );
  assert.deepEqual(
    [...c.sq_sum!],
    [Math.fround(4 + 1e-6), 1, 10, 16.25].map((v) => Math.fround(v)),
  );
});

test("the doc example: NaN and ±Inf are nonfinite, not fires and not in the sums", () => {
  const c = countsFromActivations(Float32Array.from([Number.NaN, 1, 3, Number.POSITIVE_INFINITY]), 2, 2, {
    absSum: true,
  });
  assert.deepEqual([...c.fires], [1, 1]);
  assert.deepEqual([...c.nonfinite!], [1, 1]);
  assert.deepEqual([...c.abs_sum!], [3, 1]);
  const allBad = countsFromActivations(
    Float32Array.from([Number.NaN, Number.NEGATIVE_INFINITY, Number.NaN, Number.POSITIVE_INFINITY]),
    2,
    2,
    { absSum: true, sqSum: true },
  );
  assert.deepEqual([...allBad.fires], [0, 0]);
  assert.deepEqual([...allBad.nonfinite!], [2, 2], "a unit with no finite sample gains no evidence");
  assert.deepEqual([...allBad.sq_sum!], [0, 0]);
});

test("sums are null unless asked for; nonfinite is null when every value was finite", () => {
  const c = countsFromActivations(new Float32Array(6), 2, 3);
  assert.equal(c.abs_sum, null);
  assert.equal(c.sq_sum, null);
  assert.equal(c.nonfinite, null);
  assert.deepEqual([...c.fires], [0, 0, 0]);
});

test("a shape that does not match the buffer is a RangeError", () => {
  assert.throws(() => countsFromActivations(new Float32Array(5), 2, 3), RangeError);
  assert.throws(() => countsFromActivations(new Float32Array(0), 0, 3), RangeError);
});

test("property: counts match a per-unit recount, never exceed the finite samples, sums stay finite, and encode as a valid snapshot", () => {
  const value = fc.oneof(
    { arbitrary: fc.float({ min: -10, max: 10, noNaN: true }), weight: 8 },
    { arbitrary: fc.constantFrom(Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY), weight: 1 },
  );
  fc.assert(
    fc.property(
      fc.integer({ min: 1, max: 20 }),
      fc.integer({ min: 1, max: 12 }),
      fc.array(value, { minLength: 240, maxLength: 240 }),
      (samples, units, pool) => {
        const values = Float32Array.from({ length: samples * units }, (_, i) => pool[i % pool.length]!);
        const c = countsFromActivations(values, samples, units, { absSum: true, sqSum: true });
        for (let u = 0; u < units; u++) {
          let expected = 0;
          let bad = 0;
          for (let s = 0; s < samples; s++) {
            const v = values[s * units + u]!;
            if (!Number.isFinite(v)) bad++;
            else if (v > 0) expected++;
          }
          assert.equal(c.fires[u], expected);
          assert.equal(c.nonfinite?.[u] ?? 0, bad);
          assert.ok(expected + bad <= samples);
          assert.ok(Number.isFinite(c.abs_sum![u]!) && Number.isFinite(c.sq_sum![u]!));
        }
        const buf = encodeSnapshot({
          run_id: "r",
          layer: "l",
          rank: 0,
          step: 0,
          time: 0,
          unit_offset: 0,
          unit_count: units,
          layer_units: units,
          samples,
          stats: c,
        });
        assert.ok(buf.length > 10);
      },
    ),
    propertyParams({ numRuns: 100 }),
  );
});

test("mergeCounts adds micro-batches into the counts of their concatenation", () => {
  const a = Float32Array.from([1, 0, 2, -1]);
  const b = Float32Array.from([0, 3]);
  const merged = mergeCounts(
    countsFromActivations(a, 2, 2, { absSum: true }),
    countsFromActivations(b, 1, 2, { absSum: true }),
  );
  const whole = countsFromActivations(Float32Array.from([...a, ...b]), 3, 2, { absSum: true });
  assert.deepEqual(merged, whole);
  assert.throws(() => mergeCounts(merged, countsFromActivations(new Float32Array(3), 1, 3)), RangeError);
});

test("mergeCounts adds nonfinite counts; a missing count is zero", () => {
  const a = Float32Array.from([Number.NaN, 1]);
  const b = Float32Array.from([2, 3, 0, Number.POSITIVE_INFINITY]);
  const merged = mergeCounts(countsFromActivations(a, 1, 2), countsFromActivations(b, 2, 2));
  const whole = countsFromActivations(Float32Array.from([...a, ...b]), 3, 2);
  assert.deepEqual(merged, whole);
  assert.deepEqual([...merged.nonfinite!], [1, 1]);
  assert.deepEqual(
    [...mergeCounts(countsFromActivations(b, 2, 2), countsFromActivations(b, 2, 2)).nonfinite!],
    [0, 2],
  );
});
