/**
 * Table tests of the classification rules. Window 100 steps in 10 buckets of
 * 10 steps; every snapshot carries 100 samples, so a bucket holds 1000 samples
 * and n_min = 6905 silent samples take 7 closed buckets. A bucket is classified
 * when the first snapshot of the next bucket arrives.
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { Detector, type DetectorConfig, deadBound, type UnitTransition } from "../../../src/core/index.js";
import { counts } from "./helpers.js";

const SMALL: Partial<DetectorConfig> = { window_steps: 100, window_buckets: 10 };

function drive(
  d: Detector,
  from: number,
  to: number,
  fires: (step: number) => number[],
  extra: { abs?: (step: number) => number[]; sq?: (step: number) => number[] } = {},
): UnitTransition[] {
  const out: UnitTransition[] = [];
  for (let step = from; step < to; step++) {
    const o = d.apply(
      counts({
        step,
        samples: 100,
        fires: fires(step),
        abs_sum: extra.abs?.(step),
        sq_sum: extra.sq?.(step),
      }),
      step,
    );
    assert.equal(o.result, "ok");
    out.push(...o.transitions);
  }
  return out;
}

function states(d: Detector): string[] {
  return d.units("run", "fc1")!.map((u) => u.state);
}

describe("UNKNOWN, ACTIVE and MOSTLY_SILENT", () => {
  test("units stay UNKNOWN until n_min samples, then the windowed rate decides", () => {
    const d = new Detector(SMALL);
    // unit 0: rate 0.5; unit 1: 1 fire every other step, rate 0.005; unit 2: rate exactly silent_rate.
    const fires = (s: number) => [50, s % 2, 1];
    assert.deepEqual(drive(d, 0, 61, fires), [], "6000 samples closed: no verdict yet");
    assert.deepEqual(states(d), ["UNKNOWN", "UNKNOWN", "UNKNOWN"]);
    const ts = drive(d, 61, 71, fires);
    assert.deepEqual(
      ts.map((t) => [t.unit, t.from, t.to, t.step]),
      [
        [0, "UNKNOWN", "ACTIVE", 69],
        [1, "UNKNOWN", "MOSTLY_SILENT", 69],
        [2, "UNKNOWN", "ACTIVE", 69],
      ],
    );
    assert.equal(ts[1]!.firing_rate, 35 / 7000);
    assert.equal(ts[1]!.rate_upper_bound, 1, "a unit that fired in the newest bucket has no silence");
    const s = d.summary("run", "fc1")!;
    assert.deepEqual(s.units_by_state, { UNKNOWN: 0, ACTIVE: 2, MOSTLY_SILENT: 1, DEAD: 0 });
    assert.deepEqual(
      s.closest_to_death.map((c) => c.unit),
      [1, 2, 0],
    );
  });

  test("a unit crossing silent_rate moves between ACTIVE and MOSTLY_SILENT", () => {
    const d = new Detector(SMALL);
    drive(d, 0, 71, () => [5]);
    assert.deepEqual(states(d), ["ACTIVE"]);
    // Rate drops to 0.002 per step: once the window holds mostly the new rate it is MOSTLY_SILENT.
    const ts = drive(d, 71, 200, (s) => [s % 5 === 0 ? 1 : 0]);
    assert.deepEqual(
      ts.map((t) => [t.from, t.to]),
      [["ACTIVE", "MOSTLY_SILENT"]],
    );
    assert.ok(ts[0]!.firing_rate < 0.01);
  });
});

describe("hysteresis between ACTIVE and MOSTLY_SILENT", () => {
  // A unit whose rate alternates bucket by bucket between 0.009 and 0.011 sits on silent_rate 0.01.
  const near = (s: number) => [Math.floor(s / 10) % 2 === 0 ? (s % 10 === 0 ? 9 : 0) : s % 10 === 0 ? 11 : 0];

  test("a unit wandering around silent_rate inside the band keeps its first verdict", () => {
    const d = new Detector(SMALL);
    const ts = drive(d, 0, 600, (s) => [...near(s), ...near(s + 10)]);
    assert.deepEqual(
      ts.map((t) => [t.unit, t.from, t.to]),
      [
        [0, "UNKNOWN", "MOSTLY_SILENT"],
        [1, "UNKNOWN", "ACTIVE"],
      ],
      "first verdicts only",
    );
  });

  test("without the band the same unit flaps at every bucket", () => {
    const d = new Detector({ ...SMALL, silent_hysteresis: 0 });
    // Buckets of 10 steps: the window rate moves with each bucket that enters and leaves.
    const flapping = (s: number) => [
      Math.floor(s / 100) % 2 === 0 ? (s % 10 === 0 ? 9 : 0) : s % 10 === 0 ? 11 : 0,
    ];
    const ts = drive(d, 0, 600, flapping);
    assert.ok(ts.length > 4, `${ts.length} transitions`);
    const e = new Detector(SMALL);
    const held = drive(e, 0, 600, flapping);
    assert.equal(held.length, 1, "with the default band, only the first verdict");
  });

  test("leaving the band changes the state: below silent_rate × 0.75, or at silent_rate × 1.25 and above", () => {
    const d = new Detector(SMALL);
    drive(d, 0, 100, () => [1]); // rate 0.01: ACTIVE
    assert.deepEqual(states(d), ["ACTIVE"]);
    assert.deepEqual(
      drive(d, 100, 300, (s) => [s % 5 < 4 ? 1 : 0]),
      [],
      "rate 0.008 is inside the band",
    );
    const down = drive(d, 300, 500, (s) => [s % 2 === 0 ? 1 : 0]); // 0.005
    assert.deepEqual(
      down.map((t) => [t.from, t.to]),
      [["ACTIVE", "MOSTLY_SILENT"]],
    );
    assert.deepEqual(
      drive(d, 500, 700, (s) => [s % 10 < 6 ? 2 : 0]),
      [],
      "rate 0.012 is inside the band",
    );
    const up = drive(d, 700, 900, () => [2]); // 0.02
    assert.deepEqual(
      up.map((t) => [t.from, t.to]),
      [["MOSTLY_SILENT", "ACTIVE"]],
    );
  });
});

describe("DEAD", () => {
  test("a unit never seen firing is born dead after n_min silent samples, with its bound", () => {
    const d = new Detector(SMALL);
    assert.deepEqual(
      drive(d, 0, 61, () => [0, 3]),
      [],
    );
    const ts = drive(d, 61, 71, () => [0, 3]).filter((t) => t.unit === 0);
    assert.equal(ts.length, 1);
    const t = ts[0]!;
    assert.deepEqual(
      [t.from, t.to, t.born_dead, t.last_fire_step, t.samples],
      ["UNKNOWN", "DEAD", true, null, 7000],
    );
    assert.equal(t.rate_upper_bound, deadBound(7000, 0.001));
    assert.ok(t.rate_upper_bound < 0.001);
    const s = d.summary("run", "fc1")!;
    assert.equal(s.born_dead_units, 1);
    assert.equal(s.deaths_total, 0, "a born-dead unit did not die in this run");
    assert.equal(s.dead_ratio, 0.5);
  });

  test("a unit that stops firing is dead after n_min trailing silent samples, while its fires are still in the window", () => {
    const d = new Detector(SMALL);
    const fires = (s: number) => [s < 100 ? 50 : 0];
    drive(d, 0, 100, fires);
    assert.deepEqual(drive(d, 100, 161, fires), [], "6 silent buckets are not enough");
    const ts = drive(d, 161, 171, fires);
    assert.equal(ts.length, 1);
    const t = ts[0]!;
    assert.deepEqual(
      [t.from, t.to, t.born_dead, t.last_fire_step, t.step],
      ["ACTIVE", "DEAD", false, 99, 169],
    );
    assert.equal(t.fires, 1500, "the window still holds buckets 7..9 with fires");
    assert.ok(t.firing_rate > 0.01, "the windowed rate alone would still say ACTIVE");
    const s = d.summary("run", "fc1")!;
    assert.equal(s.deaths_total, 1);
    assert.deepEqual(s.transitions_total, [
      { from: "UNKNOWN", to: "ACTIVE", count: 1 },
      { from: "ACTIVE", to: "DEAD", count: 1 },
    ]);
  });

  test("trailing silence outlives the window", () => {
    const d = new Detector(SMALL);
    drive(d, 0, 700, () => [0]);
    const u = d.units("run", "fc1")![0]!;
    assert.equal(u.state, "DEAD");
    assert.equal(u.samples, 10_000, "the window holds 10 buckets");
    assert.equal(u.n_silent, 70_000, "silence counts every sample since the unit was first seen");
    assert.equal(u.rate_upper_bound, deadBound(70_000, 0.001));
  });

  test("effective_sample_fraction scales the evidence", () => {
    const d = new Detector({ ...SMALL, effective_sample_fraction: 0.5 });
    assert.deepEqual(
      drive(d, 0, 131, () => [0]),
      [],
      "13000 samples count as 6500",
    );
    const ts = drive(d, 131, 141, () => [0]);
    assert.deepEqual(
      ts.map((t) => t.to),
      ["DEAD"],
    );
    assert.equal(ts[0]!.rate_upper_bound, deadBound(7000, 0.001));
  });
});

describe("hysteresis", () => {
  test("a DEAD unit revives only after revive_min_fires fires since the verdict", () => {
    const d = new Detector(SMALL);
    drive(d, 0, 71, () => [0]); // born dead at the close of bucket 6
    const fireAt = new Set([75, 78]);
    assert.deepEqual(
      drive(d, 71, 81, (s) => [fireAt.has(s) ? 1 : 0]),
      [],
      "two fires do not revive",
    );
    assert.equal(d.units("run", "fc1")![0]!.state, "DEAD");
    assert.equal(d.units("run", "fc1")![0]!.last_fire_step, 78);
    // The third fire, 3 fires in the 2000 samples since the verdict: rate 0.0015 >= dead_rate.
    const ts = drive(d, 81, 91, (s) => [s === 81 ? 1 : 0]);
    assert.deepEqual(
      ts.map((t) => [t.from, t.to, t.born_dead]),
      [["DEAD", "MOSTLY_SILENT", false]],
    );
    const s = d.summary("run", "fc1")!;
    assert.equal(s.revivals_total, 1);
    assert.equal(s.born_dead_units, 0);
  });

  test("fires below dead_rate since the verdict keep a unit hovering at the floor DEAD", () => {
    const d = new Detector(SMALL);
    drive(d, 0, 71, () => [0]);
    // One fire every 4 buckets: 3 fires in 10,000 samples is a rate of 3e-4 < dead_rate.
    const fireAt = new Set([85, 125, 165]);
    const ts = drive(d, 71, 300, (s) => [fireAt.has(s) ? 1 : 0]);
    assert.deepEqual(ts, [], "no flapping");
    assert.equal(d.units("run", "fc1")![0]!.state, "DEAD");
  });

  test("the wait to revive does not grow with the time spent dead", () => {
    // Dead for 50,000 samples (or 30,000 after a stray fire), then firing at 2 × dead_rate: one
    // fire every 5 steps, 2 per 1000 samples. The silence before the renewed firing counts as
    // n_min samples at most, so 3 fires at >= dead_rate take about n_min more samples (70 steps).
    for (const stray of [false, true]) {
      const d = new Detector(SMALL);
      drive(d, 0, 71, () => [0]);
      const fire = (s: number) => (s >= 571 && (s - 571) % 5 === 0) || (stray && s === 200);
      const ts = drive(d, 71, 800, (s) => [fire(s) ? 1 : 0]);
      assert.deepEqual(
        ts.map((t) => [t.from, t.to]),
        [["DEAD", "MOSTLY_SILENT"]],
        `stray fire: ${stray}`,
      );
      assert.ok(ts[0]!.step > 571 && ts[0]!.step <= 571 + 80, `revived at step ${ts[0]!.step}`);
    }
  });

  test("a revived unit that falls silent again dies again", () => {
    const d = new Detector(SMALL);
    drive(d, 0, 71, () => [0]);
    const ts = drive(d, 71, 300, (s) => [s >= 80 && s < 120 ? 20 : 0]);
    assert.deepEqual(
      ts.map((t) => [t.from, t.to]),
      [
        ["DEAD", "ACTIVE"],
        ["ACTIVE", "DEAD"],
      ],
    );
    assert.equal(ts[1]!.born_dead, false);
    assert.equal(d.summary("run", "fc1")!.deaths_total, 1);
  });
});

describe("constant units and dormancy", () => {
  test("a living unit whose activation does not vary is flagged constant", () => {
    const d = new Detector(SMALL);
    // unit 0: h = 2 on every sample; unit 1: h alternates 0 and 4 (same mean, variance 4); unit 2: h = 1 every sample.
    drive(d, 0, 80, () => [100, 50, 100], { abs: () => [200, 200, 100], sq: () => [400, 800, 100] });
    const units = d.units("run", "fc1")!;
    assert.deepEqual(
      units.map((u) => u.constant),
      [true, false, true],
    );
    const s = d.summary("run", "fc1")!;
    assert.equal(s.constant_units, 2);
    assert.equal(s.dormancy_mean, 5 / 3);
    assert.deepEqual(
      units.map((u) => u.dormancy),
      [1.2, 1.2, 0.6],
    );
  });

  test("without abs_sum there is no constant flag and no dormancy", () => {
    const d = new Detector(SMALL);
    drive(d, 0, 80, () => [100]);
    assert.equal(d.summary("run", "fc1")!.dormancy_mean, null);
    assert.equal(d.units("run", "fc1")![0]!.dormancy, null);
    assert.equal(d.summary("run", "fc1")!.constant_units, 0);
  });
});

test("firing_rate_le counts units with an observed rate, cumulatively", () => {
  const d = new Detector(SMALL);
  drive(d, 0, 20, () => [0, 1, 5, 30, 100]);
  const s = d.summary("run", "fc1")!;
  const at = Object.fromEntries(s.firing_rate_le.map((b) => [b.le, b.units]));
  assert.deepEqual(at, {
    0: 1,
    0.0001: 1,
    0.001: 1,
    0.01: 2,
    0.05: 3,
    0.1: 3,
    0.25: 3,
    0.5: 4,
    0.75: 4,
    1: 5,
  });
});

test("closest_to_death lists the lowest-rate living units, at most closest_k", () => {
  const d = new Detector({ ...SMALL, closest_k: 2 });
  drive(d, 0, 80, () => [0, 7, 3, 50, 2]);
  const s = d.summary("run", "fc1")!;
  assert.deepEqual(
    s.closest_to_death.map((c) => [c.unit, c.firing_rate, c.samples]),
    [
      [4, 0.02, 8000],
      [2, 0.03, 8000],
    ],
  );
});
