import assert from "node:assert/strict";
import { test } from "node:test";
import fc from "fast-check";
import { deadBound, samplesNeeded } from "../../../src/core/index.js";
import { propertyParams } from "../../support/property.js";

test("n_min is 6905 for alpha = dead_rate = 0.001", () => {
  assert.equal(samplesNeeded(0.001, 0.001), 6905);
  assert.ok(deadBound(6905, 0.001) < 0.001);
  assert.ok(deadBound(6904, 0.001) >= 0.001);
});

test("the bound solves (1 - p)^n = alpha", () => {
  for (const [n, alpha] of [
    [100, 0.001],
    [1000, 0.05],
    [50_000, 0.001],
  ] as const) {
    const p = deadBound(n, alpha);
    assert.ok(Math.abs((1 - p) ** n - alpha) < 1e-9 * Math.max(1, alpha * 1e3));
  }
  assert.equal(deadBound(0, 0.001), 1);
});

test("samplesNeeded is the smallest n whose bound is below the rate", () => {
  fc.assert(
    fc.property(
      fc.double({ min: 1e-6, max: 0.5, noNaN: true }),
      fc.double({ min: 1e-4, max: 0.5, noNaN: true }),
      (alpha, rate) => {
        const n = samplesNeeded(alpha, rate);
        return deadBound(n, alpha) < rate && (n === 1 || deadBound(n - 1, alpha) >= rate);
      },
    ),
    propertyParams(),
  );
});
