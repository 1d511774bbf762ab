import assert from "node:assert/strict";
import { test } from "node:test";
import {
  DEFAULT_DETECTOR_CONFIG,
  type DetectorConfig,
  DetectorConfigError,
  resolveDetectorConfig,
} from "../../../src/core/index.js";

test("defaults resolve unchanged and stale_after_steps follows the window", () => {
  assert.deepEqual(resolveDetectorConfig({}), { ...DEFAULT_DETECTOR_CONFIG });
  assert.equal(resolveDetectorConfig({ window_steps: 500 }).stale_after_steps, 500);
  assert.equal(resolveDetectorConfig({ window_steps: 500, stale_after_steps: 50 }).stale_after_steps, 50);
});

const bad: Array<[Partial<DetectorConfig>, keyof DetectorConfig, RegExp]> = [
  [{ window_steps: 0 }, "window_steps", /integer >= 1/],
  [{ window_steps: 10.5 }, "window_steps", /integer/],
  [{ window_buckets: 7 }, "window_buckets", /must divide window_steps \(1000\)/],
  [{ alpha: 0 }, "alpha", /\(0, 1\)/],
  [{ alpha: 1 }, "alpha", /\(0, 1\)/],
  [{ dead_rate: 0 }, "dead_rate", /\(0, 1\)/],
  [{ silent_rate: 0.001 }, "silent_rate", /> dead_rate/],
  [{ silent_rate: 1 }, "silent_rate", /< 1/],
  [{ silent_hysteresis: 1 }, "silent_hysteresis", /\[0, 1\)/],
  [{ silent_hysteresis: -0.1 }, "silent_hysteresis", /\[0, 1\)/],
  [{ revive_min_fires: 0 }, "revive_min_fires", />= 1/],
  [{ effective_sample_fraction: 0 }, "effective_sample_fraction", /\(0, 1\]/],
  [{ effective_sample_fraction: 1.5 }, "effective_sample_fraction", /\(0, 1\]/],
  [{ constant_cv: -1 }, "constant_cv", />= 0/],
  [{ closest_k: 1001 }, "closest_k", /\[0, 1000\]/],
  [{ stale_after_steps: 0 }, "stale_after_steps", />= 1/],
  [{ alpha: Number.NaN }, "alpha", /finite number/],
];

for (const [partial, field, rule] of bad) {
  test(`rejects ${JSON.stringify(partial)} naming ${field}`, () => {
    assert.throws(
      () => resolveDetectorConfig(partial),
      (e: unknown) => e instanceof DetectorConfigError && e.field === field && rule.test(e.message),
    );
  });
}

test("rejects unknown settings by name", () => {
  assert.throws(
    () => resolveDetectorConfig({ windowSteps: 10 } as unknown as Partial<DetectorConfig>),
    (e: unknown) => e instanceof DetectorConfigError && e.field === "windowSteps",
  );
});
