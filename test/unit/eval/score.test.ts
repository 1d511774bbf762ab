import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { resolveDetectorConfig, type UnitState, type UnitTransition } from "../../../src/core/index.js";
import { delayBound, percentile, scoreScenario } from "../../../src/eval/score.js";
import { type FleetTruth, resolveScenario, type UnitTruth } from "../../../src/sim/index.js";

const CONFIG = resolveDetectorConfig();
// 1 rank × 512 samples every 50 steps: 10.24 samples a step, n_min = 6905 takes 675 steps.
const SCENARIO = resolveScenario("healthy", { ranks: 1, layers: 1, units: 5, steps: 2000 });

function unit(u: number, base: number, death: number | null, cls: UnitTruth["class"] = "active"): UnitTruth {
  return {
    run_id: "r",
    layer: "l",
    unit: u,
    class: cls,
    base_rate: base,
    death_step: death,
    revive_step: null,
    segments:
      death === null
        ? [{ from_step: 0, rate: base }]
        : [
            { from_step: 0, rate: base },
            { from_step: death, rate: 0 },
          ],
  };
}

function tr(u: number, from: UnitState, to: UnitState, step: number): UnitTransition {
  return {
    run_id: "r",
    layer: "l",
    unit: u,
    from,
    to,
    born_dead: false,
    step,
    time: step,
    fires: 0,
    samples: 0,
    firing_rate: 0,
    rate_upper_bound: 1,
    last_fire_step: null,
  };
}

describe("delayBound", () => {
  test("n_min steps at the samples per step of the fewest publishing ranks, plus one bucket", () => {
    assert.deepEqual(delayBound(SCENARIO, CONFIG), {
      samples_per_step: 10.24,
      n_min: 6905,
      n_min_steps: 675,
      bucket_steps: 100,
      steps: 775,
    });
    const stale = resolveScenario("stale-rank"); // 4 ranks, then 3 from step 800
    assert.equal(delayBound(stale, CONFIG).samples_per_step, (3 * 512) / 50);
    // Shards split units, not samples; effective_sample_fraction stretches n_min.
    const tp = resolveScenario("tensor-parallel");
    const half = resolveDetectorConfig({
      effective_sample_fraction: 0.5,
      window_steps: 600,
      window_buckets: 3,
    });
    assert.deepEqual(delayBound(tp, half), {
      samples_per_step: (4 * 512) / 50,
      n_min: 13810,
      n_min_steps: Math.ceil(13810 / 40.96),
      bucket_steps: 200,
      steps: Math.ceil(13810 / 40.96) + 200,
    });
  });
});

test("percentile is nearest-rank", () => {
  assert.equal(percentile([], 0.5), null);
  assert.equal(percentile([7], 0.95), 7);
  const xs = Array.from({ length: 20 }, (_, i) => i + 1);
  assert.equal(percentile(xs, 0.5), 10);
  assert.equal(percentile(xs, 0.95), 19);
  assert.equal(percentile(xs, 1), 20);
});

describe("scoreScenario", () => {
  const truth: FleetTruth = {
    scenario: SCENARIO,
    stale_ranks: [],
    units: [
      unit(0, 0.3, null), // lively, wrongly called dead at 800
      unit(1, 0.3, 200), // dies at 200, found at 850
      unit(2, 0.0015, null, "mostly_silent"), // gray zone, called dead at 900
      unit(3, 0, 0, "born_dead"), // found at 650
      unit(4, 0.3, 1900), // dies too late to be found: missed at the end, not a delay
    ],
  };
  const events = [
    tr(0, "UNKNOWN", "ACTIVE", 650),
    tr(1, "UNKNOWN", "ACTIVE", 150),
    tr(2, "UNKNOWN", "MOSTLY_SILENT", 650),
    tr(3, "UNKNOWN", "DEAD", 650),
    tr(4, "UNKNOWN", "ACTIVE", 650),
    tr(0, "ACTIVE", "DEAD", 800),
    tr(1, "ACTIVE", "DEAD", 850),
    tr(2, "MOSTLY_SILENT", "DEAD", 900),
  ];

  test("counts every verdict against the truth at the end and at the time it was given", () => {
    const s = scoreScenario(truth, events, CONFIG);
    assert.equal(s.end_step, 1950);
    assert.equal(s.units, 5);
    assert.equal(s.truly_dead, 3);
    assert.equal(s.dead_verdicts, 4);
    assert.equal(s.true_positives, 2);
    assert.equal(s.false_positives, 1);
    assert.equal(s.dead_in_gray_zone, 1);
    assert.equal(s.revived_still_dead, 0);
    assert.equal(s.precision, 2 / 3);
    assert.equal(s.precision_strict, 2 / 4);
    assert.equal(s.recall, 2 / 3);
    assert.equal(s.lively_units, 3);
    assert.equal(s.false_dead, 1);
    assert.equal(s.false_dead_sparse, 1);
    assert.equal(s.deaths, 2);
    assert.equal(s.undetected, 0);
    assert.deepEqual([s.delay_median, s.delay_p95, s.delay_max], [650, 650, 650]);
    assert.deepEqual(s.failures, [
      "precision 0.6667 < 0.999 (1 false)",
      "recall 0.6667 < 0.99 (1 missed)",
      "1 dead verdicts for units at >= 0.003",
    ]);
  });

  test("a death never found is an infinite delay; a late verdict breaks the bound", () => {
    const slow = events.filter((e) => !(e.unit === 1 && e.to === "DEAD"));
    const s = scoreScenario(truth, slow, CONFIG);
    assert.equal(s.undetected, 1);
    assert.equal(s.delay_p95, Number.POSITIVE_INFINITY);
    assert.ok(s.failures.includes("p95 delay Infinity steps > bound 775"), s.failures.join("; "));
    const late = scoreScenario(
      truth,
      events.map((e) => (e.unit === 1 && e.to === "DEAD" ? { ...e, step: 1000 } : e)),
      CONFIG,
    );
    assert.equal(late.delay_p95, 800);
    assert.ok(late.failures.includes("p95 delay 800 steps > bound 775"), late.failures.join("; "));
  });

  test("a clean run passes every target", () => {
    const clean = events.filter((e) => e.unit !== 4 && (e.to !== "DEAD" || e.unit === 1 || e.unit === 3));
    const s = scoreScenario({ ...truth, units: truth.units.slice(0, 4) }, clean, CONFIG);
    assert.deepEqual(s.failures, []);
    assert.equal(s.precision, 1);
    assert.equal(s.recall, 1);
  });

  test("a transition for a unit the truth does not hold is an error", () => {
    assert.throws(() => scoreScenario(truth, [tr(9, "UNKNOWN", "DEAD", 650)], CONFIG), /unit 9/);
  });
});
