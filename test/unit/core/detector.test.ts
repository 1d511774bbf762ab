/** Merging, deduplication, resumes, late snapshots, resets, stale ranks and shards. */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import {
  type ActivationSnapshot,
  Detector,
  type DetectorConfig,
  SnapshotShapeError,
} from "../../../src/core/index.js";
import { counts } from "./helpers.js";

const SMALL: Partial<DetectorConfig> = { window_steps: 100, window_buckets: 10 };

function fireTotals(d: Detector, run = "run", layer = "fc1"): number[] {
  return d.units(run, layer)!.map((u) => u.fires);
}

describe("at-least-once delivery", () => {
  test("a snapshot applied twice is a counted duplicate and changes nothing", () => {
    const d = new Detector(SMALL);
    const s = counts({ step: 3, samples: 10, fires: [4, 0] });
    assert.equal(d.apply(s, 1).result, "ok");
    const before = d.units("run", "fc1");
    const again = d.apply(counts({ step: 3, samples: 10, fires: [4, 0] }), 2);
    assert.equal(again.result, "duplicate");
    assert.deepEqual(d.units("run", "fc1"), before);
    assert.equal(d.summary("run", "fc1")!.duplicates_total, 1);
  });

  test("a redelivered stretch of older snapshots is recognised anywhere in the window", () => {
    const d = new Detector(SMALL);
    const stream = Array.from({ length: 60 }, (_, step) =>
      counts({ step, samples: 10, fires: [step % 3, 1] }),
    );
    for (const s of stream) d.apply(s, s.step);
    const before = d.units("run", "fc1");
    const results = stream.slice(20, 40).map((s) => d.apply(s, 100).result);
    assert.ok(results.every((r) => r === "duplicate"));
    assert.deepEqual(d.units("run", "fc1"), before);
    assert.equal(d.summary("run", "fc1")!.duplicates_total, 20);
    assert.equal(d.summary("run", "fc1")!.resumes_total, 0, "same time: a redelivery, not a resume");
  });

  test("a redelivery older than the window is late, not counted", () => {
    const d = new Detector(SMALL);
    for (let step = 0; step < 150; step++) d.apply(counts({ step, samples: 10, fires: [1] }), step);
    const before = d.units("run", "fc1");
    assert.equal(d.apply(counts({ step: 20, samples: 10, fires: [1] }), 200).result, "late");
    assert.deepEqual(d.units("run", "fc1"), before);
    assert.equal(d.summary("run", "fc1")!.late_total, 1);
  });
});

describe("checkpoint resume", () => {
  test("the same or an earlier step with a later time cuts the window back to that step's bucket", () => {
    const d = new Detector(SMALL);
    for (let step = 0; step < 55; step++) {
      for (const rank of [0, 1]) d.apply(counts({ rank, step, samples: 10, fires: [1, rank] }), step);
    }
    assert.deepEqual(fireTotals(d), [110, 55]);
    const o = d.apply(counts({ rank: 1, step: 34, time: 5_000_000, samples: 10, fires: [1, 1] }), 60);
    assert.equal(o.result, "ok");
    assert.equal(o.notices.length, 1);
    assert.deepEqual(
      { kind: o.notices[0]!.kind, rank: o.notices[0]!.rank, step: o.notices[0]!.step },
      { kind: "resume", rank: 1, step: 34 },
    );
    assert.match(o.notices[0]!.detail, /cut back to step 30/);
    // Steps 0..29 of both ranks remain, plus the resumed snapshot.
    assert.deepEqual(fireTotals(d), [61, 31]);
    const s = d.summary("run", "fc1")!;
    assert.equal(s.resumes_total, 1);
    assert.equal(s.step, 34);
    // Rank 0 restarts from the same checkpoint: a normal snapshot now, not a second resume.
    const o2 = d.apply(counts({ rank: 0, step: 34, time: 5_000_001, samples: 10, fires: [1, 0] }), 61);
    assert.deepEqual([o2.result, o2.notices.length], ["ok", 0]);
    assert.deepEqual(fireTotals(d), [62, 31]);
  });

  test("the same step again with a later time is a resume; with the same time a duplicate", () => {
    const d = new Detector(SMALL);
    for (let step = 0; step < 25; step++) d.apply(counts({ step, samples: 10, fires: [1] }), step);
    assert.equal(d.apply(counts({ step: 24, samples: 10, fires: [1] }), 30).result, "duplicate");
    const o = d.apply(counts({ step: 24, time: 7_000_000, samples: 10, fires: [1] }), 31);
    assert.deepEqual([o.result, o.notices[0]?.kind], ["ok", "resume"]);
    // Cut back to step 20: steps 0..19 and the resumed step 24 remain.
    assert.equal(d.units("run", "fc1")![0]!.fires, 21);
  });

  test("a resume before the window start drops the whole window", () => {
    const d = new Detector(SMALL);
    for (let step = 0; step < 300; step++) d.apply(counts({ step, samples: 10, fires: [1] }), step);
    const o = d.apply(counts({ step: 50, time: 9_000_000, samples: 10, fires: [1] }), 400);
    assert.equal(o.notices[0]?.kind, "resume");
    assert.equal(d.units("run", "fc1")![0]!.samples, 10);
    assert.equal(d.summary("run", "fc1")!.step, 50);
  });
});

test("a change of layer_units resets the layer, counted and reported", () => {
  const d = new Detector(SMALL);
  for (let step = 0; step < 80; step++) d.apply(counts({ step, samples: 100, fires: [0, 5] }), step);
  assert.equal(d.summary("run", "fc1")!.units_by_state.DEAD, 1);
  const o = d.apply(counts({ step: 80, samples: 100, fires: [5, 5, 5] }), 80);
  assert.deepEqual(
    o.notices.map((n) => n.kind),
    ["reset"],
  );
  assert.match(o.notices[0]!.detail, /from 2 to 3/);
  const s = d.summary("run", "fc1")!;
  assert.equal(s.layer_units, 3);
  assert.equal(s.resets_total, 1);
  assert.deepEqual(s.units_by_state, { UNKNOWN: 3, ACTIVE: 0, MOSTLY_SILENT: 0, DEAD: 0 });
  assert.deepEqual(fireTotals(d), [5, 5, 5]);
  assert.equal(d.trackedUnits(), 3);
});

test("a rank that stops reporting while others advance is stale", () => {
  const d = new Detector(SMALL);
  for (let step = 0; step < 50; step++)
    for (const rank of [0, 1, 2]) d.apply(counts({ rank, step, samples: 10, fires: [1] }), step);
  for (let step = 50; step < 160; step++)
    for (const rank of [0, 2]) d.apply(counts({ rank, step, samples: 10, fires: [1] }), step);
  const s = d.summary("run", "fc1")!;
  assert.deepEqual(s.ranks, [
    { rank: 0, newest_step: 159, stale: false },
    { rank: 1, newest_step: 49, stale: true },
    { rank: 2, newest_step: 159, stale: false },
  ]);
  assert.equal(s.stale_ranks, 1);
});

test("data-parallel ranks add up and tensor-parallel shards map onto global units", () => {
  const d = new Detector(SMALL);
  for (let step = 0; step < 5; step++) {
    for (const rank of [0, 1]) {
      d.apply(counts({ rank, step, unit_offset: 0, layer_units: 4, samples: 10, fires: [1, 2] }), step);
      d.apply(counts({ rank, step, unit_offset: 2, layer_units: 4, samples: 6, fires: [3, 0] }), step);
    }
  }
  const units = d.units("run", "fc1")!;
  assert.deepEqual(
    units.map((u) => [u.fires, u.samples]),
    [
      [10, 100],
      [20, 100],
      [30, 60],
      [0, 60],
    ],
  );
  assert.equal(d.summary("run", "fc1")!.window_samples, 60, "the minimum over units");
});

test("non-finite raw activations are counted per layer and never fire", () => {
  const d = new Detector(SMALL);
  const values = Float32Array.from([Number.NaN, 1, Number.POSITIVE_INFINITY, 0, 2, Number.NEGATIVE_INFINITY]);
  const raw: ActivationSnapshot = {
    run_id: "run",
    layer: "fc1",
    rank: 0,
    step: 0,
    time: 1,
    unit_offset: 0,
    unit_count: 2,
    layer_units: 2,
    samples: 3,
    stats: { kind: "raw", dtype: "FLOAT32", values: new Uint8Array(values.buffer) },
  };
  assert.equal(d.apply(raw, 0).result, "ok");
  assert.equal(d.summary("run", "fc1")!.nonfinite_values_total, 3);
  assert.deepEqual(fireTotals(d), [1, 1]);
  assert.notEqual(d.summary("run", "fc1")!.dormancy_mean, null, "raw activations carry |h| sums");
});

test("layers and runs are listed, dropped and expired by idleness", () => {
  const d = new Detector(SMALL);
  d.apply(counts({ run_id: "a", layer: "l1", step: 0, samples: 1, fires: [1, 1] }), 1000);
  d.apply(counts({ run_id: "a", layer: "l2", step: 0, samples: 1, fires: [1] }), 5000);
  d.apply(counts({ run_id: "b", layer: "l1", step: 0, samples: 1, fires: [1, 1, 1] }), 2000);
  assert.deepEqual(d.layerIds(), [
    { run_id: "a", layer: "l1" },
    { run_id: "a", layer: "l2" },
    { run_id: "b", layer: "l1" },
  ]);
  assert.equal(d.trackedUnits(), 6);
  assert.equal(d.summaries().length, 3);
  assert.equal(d.summary("a", "l1")!.last_snapshot_ms, 1000);
  assert.deepEqual(d.dropIdleRuns(6000, 3500), ["b"], "run a was active 1000 ms ago through l2");
  assert.equal(d.dropLayer("a", "l2"), true);
  assert.equal(d.dropLayer("a", "l2"), false);
  assert.equal(d.summary("a", "l2"), undefined);
  assert.equal(d.units("b", "l1"), undefined);
  assert.equal(d.trackedUnits(), 2);
});

test("a snapshot whose unit range or sums do not fit is a typed error", () => {
  const d = new Detector(SMALL);
  assert.throws(
    () => d.apply(counts({ step: 0, unit_offset: 1, layer_units: 2, samples: 1, fires: [1, 1] }), 0),
    SnapshotShapeError,
  );
  assert.throws(
    () => d.apply(counts({ step: 0, samples: 1, fires: [1, 1], abs_sum: [1], sq_sum: [1, 1] }), 0),
    /abs_sum has 1 entries, unit_count is 2/,
  );
  assert.equal(d.trackedUnits(), 0, "a rejected snapshot creates no layer");
});

test("flush classifies the open bucket without closing it", () => {
  const d = new Detector(SMALL);
  for (let step = 0; step < 75; step++) d.apply(counts({ step, samples: 100, fires: [0] }), step);
  assert.equal(d.summary("run", "fc1")!.units_by_state.DEAD, 1);
  const e = new Detector(SMALL);
  for (let step = 0; step < 70; step++) e.apply(counts({ step, samples: 100, fires: [0] }), step);
  assert.equal(e.summary("run", "fc1")!.units_by_state.DEAD, 0, "bucket 6 is still open");
  const ts = e.flush();
  assert.deepEqual(
    ts.map((t) => [t.to, t.step, t.samples]),
    [["DEAD", 69, 7000]],
  );
  assert.deepEqual(e.flush(), [], "a second flush finds nothing new");
});
