/** Real training traffic: micro-batches, incarnations, non-finite values, idle runs. */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { type ActivationSnapshot, Detector, type DetectorConfig } from "../../../src/core/index.js";
import { counts } from "./helpers.js";

const SMALL: Partial<DetectorConfig> = { window_steps: 100, window_buckets: 10 };

function unit(d: Detector, j: number, run = "run", layer = "fc1") {
  return d.units(run, layer)![j]!;
}

describe("gradient accumulation: micro_batch", () => {
  test("four micro-batches of one step are additive evidence, in the same millisecond or not", () => {
    for (const sameTime of [true, false]) {
      const d = new Detector(SMALL);
      for (let mb = 0; mb < 4; mb++) {
        const time = sameTime ? 5_000 : 5_000 + mb;
        const o = d.apply(counts({ step: 3, time, micro_batch: mb, samples: 10, fires: [mb, 1] }), 1);
        assert.deepEqual([o.result, o.notices.length], ["ok", 0]);
      }
      assert.deepEqual(
        d.units("run", "fc1")!.map((u) => [u.fires, u.samples]),
        [
          [6, 40],
          [4, 40],
        ],
      );
      assert.equal(d.summary("run", "fc1")!.resumes_total, 0);
    }
  });

  test("a redelivered micro-batch is a duplicate, with or without an incarnation", () => {
    for (const incarnation of [undefined, 77]) {
      const d = new Detector(SMALL);
      const mb = (micro_batch: number) =>
        counts({ step: 3, time: 9_000, micro_batch, incarnation, samples: 10, fires: [1] });
      for (const m of [0, 1, 2]) d.apply(mb(m), 1);
      assert.equal(d.apply(mb(1), 2).result, "duplicate");
      assert.equal(unit(d, 0).samples, 30);
      assert.equal(d.summary("run", "fc1")!.duplicates_total, 1);
    }
  });

  test("with an incarnation, a redelivery stamped with another time is still a duplicate", () => {
    const d = new Detector(SMALL);
    d.apply(counts({ step: 3, time: 9_000, incarnation: 5, samples: 10, fires: [1] }), 1);
    const o = d.apply(counts({ step: 3, time: 9_500, incarnation: 5, samples: 10, fires: [1] }), 2);
    assert.deepEqual([o.result, o.notices.length], ["duplicate", 0]);
  });

  test("without an incarnation, a repeated (step, micro_batch) at a later time is still a resume", () => {
    const d = new Detector(SMALL);
    for (let step = 0; step < 25; step++)
      for (let mb = 0; mb < 2; mb++)
        d.apply(counts({ step, micro_batch: mb, samples: 10, fires: [1] }), step);
    const o = d.apply(counts({ step: 24, micro_batch: 0, time: 7_000_000, samples: 10, fires: [1] }), 30);
    assert.deepEqual([o.result, o.notices[0]?.kind], ["ok", "resume"]);
    assert.equal(unit(d, 0).fires, 41, "steps 0..19 × 2 micro-batches, plus the resumed one");
  });
});

describe("crash and resume: incarnation", () => {
  function twoRanks(d: Detector, from: number, to: number, incarnation: number, fires: number[]): void {
    for (let step = from; step < to; step++)
      for (const rank of [0, 1])
        d.apply(counts({ rank, step, incarnation, time: incarnation + step, samples: 10, fires }), step);
  }

  test("a newer incarnation at an earlier step discards the older one's evidence from there on, for every rank", () => {
    const d = new Detector(SMALL);
    twoRanks(d, 0, 55, 1_000, [1, 1]);
    assert.equal(unit(d, 0).fires, 110);
    const o = d.apply(
      counts({ rank: 1, step: 34, incarnation: 2_000, time: 2_034, samples: 10, fires: [1, 0] }),
      60,
    );
    assert.equal(o.result, "ok");
    assert.deepEqual(
      o.notices.map((n) => [n.kind, n.rank, n.step]),
      [["resume", 1, 34]],
    );
    assert.match(
      o.notices[0]!.detail,
      /incarnation 2000 .*reached step 54.*incarnation 1000 from step 30 on/,
    );
    // Steps 0..29 of both ranks remain, plus the new incarnation's snapshot.
    assert.deepEqual(
      d.units("run", "fc1")!.map((u) => u.fires),
      [61, 60],
    );
    const s = d.summary("run", "fc1")!;
    assert.equal(s.resumes_total, 1);
    assert.equal(s.step, 34);
    // Rank 0 of the new incarnation joins: no second resume.
    const o2 = d.apply(
      counts({ rank: 0, step: 34, incarnation: 2_000, time: 2_034, samples: 10, fires: [1, 0] }),
      61,
    );
    assert.deepEqual([o2.result, o2.notices.length], ["ok", 0]);
    assert.equal(d.summary("run", "fc1")!.resumes_total, 1);
  });

  test("late snapshots of the older incarnation are dropped and counted, wherever their step", () => {
    const d = new Detector(SMALL);
    twoRanks(d, 0, 55, 1_000, [1, 1]);
    d.apply(counts({ rank: 0, step: 40, incarnation: 2_000, samples: 10, fires: [1, 1] }), 60);
    const before = d.units("run", "fc1");
    for (const step of [41, 54, 70]) {
      const o = d.apply(counts({ rank: 1, step, incarnation: 1_000, samples: 10, fires: [5, 5] }), 61);
      assert.equal(o.result, "late");
    }
    assert.deepEqual(d.units("run", "fc1"), before);
    assert.equal(d.summary("run", "fc1")!.late_total, 3);
  });

  test("same incarnation: an earlier (step, micro_batch) at a later time is no resume, the time rule is for incarnation 0", () => {
    const d = new Detector(SMALL);
    twoRanks(d, 0, 25, 1_000, [1, 1]);
    const o = d.apply(
      counts({
        rank: 0,
        step: 20,
        micro_batch: 1,
        incarnation: 1_000,
        time: 99_999,
        samples: 10,
        fires: [1, 1],
      }),
      30,
    );
    assert.deepEqual([o.result, o.notices.length], ["ok", 0]);
    assert.equal(unit(d, 0).fires, 51);
  });

  test("a newer incarnation past the layer's newest step discards nothing", () => {
    const d = new Detector(SMALL);
    twoRanks(d, 0, 25, 1_000, [1, 1]);
    const o = d.apply(counts({ rank: 0, step: 30, incarnation: 2_000, samples: 10, fires: [1, 1] }), 30);
    assert.deepEqual([o.result, o.notices.length], ["ok", 0]);
    assert.equal(unit(d, 0).fires, 51);
    assert.equal(
      d.apply(counts({ rank: 1, step: 26, incarnation: 1_000, samples: 10, fires: [1, 1] }), 31).result,
      "late",
    );
  });

  test("a death on the replaced timeline does not survive the resume: the verdict is retracted, not revived", () => {
    const d = new Detector(SMALL);
    // Unit 1 fires until step 20 on both timelines; the old one then silences it for good.
    twoRanks(d, 0, 20, 1_000, [1, 1]);
    for (let step = 20; step < 100; step++)
      for (const rank of [0, 1])
        d.apply(counts({ rank, step, incarnation: 1_000, samples: 100, fires: [1, 0] }), step);
    assert.equal(unit(d, 1).state, "DEAD");
    // Resume from step 20 on a timeline where unit 1 keeps firing: the first pass after the cut
    // finds the verdict unproven by the evidence left, before any new evidence is needed.
    const first = d.apply(
      counts({ rank: 0, step: 20, incarnation: 2_000, samples: 100, fires: [1, 2] }),
      100,
    );
    assert.deepEqual(
      first.transitions.map((t) => [t.unit, t.from, t.to]),
      [[1, "DEAD", "ACTIVE"]],
    );
    for (let step = 21; step < 60; step++)
      for (const rank of [0, 1])
        d.apply(counts({ rank, step, incarnation: 2_000, samples: 100, fires: [1, 2] }), 100 + step);
    assert.equal(unit(d, 1).state, "ACTIVE");
    const s = d.summary("run", "fc1")!;
    assert.equal(s.revivals_total, 0, "a retraction is no revival");
  });

  test("a verdict the evidence before the resume still proves stands", () => {
    const d = new Detector(SMALL);
    for (let step = 0; step < 100; step++)
      d.apply(counts({ step, incarnation: 1_000, samples: 100, fires: [1, 0] }), step);
    assert.equal(unit(d, 1).state, "DEAD");
    const o = d.apply(counts({ step: 90, incarnation: 2_000, samples: 100, fires: [1, 0] }), 100);
    assert.deepEqual(o.transitions, []);
    assert.equal(unit(d, 1).state, "DEAD");
    assert.equal(unit(d, 1).born_dead, true);
  });

  test("previous-schema writers (incarnation 0) are older than any explicit incarnation", () => {
    const d = new Detector(SMALL);
    d.apply(counts({ step: 5, samples: 10, fires: [1] }), 1);
    d.apply(counts({ step: 6, incarnation: 3, samples: 10, fires: [1] }), 2);
    assert.equal(d.apply(counts({ step: 7, samples: 10, fires: [1] }), 3).result, "late");
  });
});

describe("non-finite values", () => {
  test("a unit's evidence is samples − nonfinite: rate over finite samples, NaNs are not silence", () => {
    const d = new Detector(SMALL);
    d.apply(counts({ step: 0, samples: 512, fires: [3, 0, 0], nonfinite: [0, 12, 512] }), 1);
    assert.deepEqual(
      d.units("run", "fc1")!.map((u) => [u.fires, u.samples, u.n_silent]),
      [
        [3, 512, 0],
        [0, 500, 500],
        [0, 0, 0],
      ],
    );
    assert.equal(d.summary("run", "fc1")!.nonfinite_values_total, 524);
  });

  test("a unit that is NaN on every sample is never called dead, and gains no verdict", () => {
    const d = new Detector(SMALL);
    const ts = [];
    for (let step = 0; step < 400; step++)
      ts.push(
        ...d.apply(counts({ step, samples: 100, fires: [0, 5], nonfinite: [100, 0] }), step).transitions,
      );
    ts.push(...d.flush());
    assert.equal(unit(d, 0).state, "UNKNOWN");
    assert.equal(unit(d, 1).state, "ACTIVE");
    assert.ok(!ts.some((t) => t.unit === 0));
  });

  test("a silent unit with some NaN samples needs n_min finite samples to be called dead", () => {
    // n_min is 6905 at the defaults; 100 samples a step of which 50 are NaN → 50 finite a step.
    const half = new Detector({ window_steps: 1000, window_buckets: 10 });
    const whole = new Detector({ window_steps: 1000, window_buckets: 10 });
    let halfDeadAt = -1;
    let wholeDeadAt = -1;
    for (let step = 0; step < 300 && halfDeadAt < 0; step++) {
      for (const t of half.apply(counts({ step, samples: 100, fires: [0], nonfinite: [50] }), step)
        .transitions)
        if (t.to === "DEAD") halfDeadAt = step;
      for (const t of whole.apply(counts({ step, samples: 100, fires: [0] }), step).transitions)
        if (t.to === "DEAD" && wholeDeadAt < 0) wholeDeadAt = step;
    }
    assert.ok(wholeDeadAt > 0 && halfDeadAt > 0);
    assert.ok(halfDeadAt >= 2 * wholeDeadAt - 100, `dead at ${halfDeadAt} with NaNs, ${wholeDeadAt} without`);
  });

  test("a NaN or infinite sum costs the snapshot its sums, never its fires, and is counted", () => {
    const d = new Detector(SMALL);
    const o = d.apply(
      counts({
        step: 0,
        samples: 10,
        fires: [4, 2],
        abs_sum: [Number.NaN, 1],
        sq_sum: [1, Number.POSITIVE_INFINITY],
      }),
      1,
    );
    assert.equal(o.result, "ok");
    assert.deepEqual(
      d.units("run", "fc1")!.map((u) => [u.fires, u.samples, u.dormancy]),
      [
        [4, 10, null],
        [2, 10, null],
      ],
    );
    const s = d.summary("run", "fc1")!;
    assert.equal(s.nonfinite_values_total, 2);
    assert.equal(s.dormancy_mean, null, "the only sums were dropped");
    d.apply(counts({ step: 1, samples: 10, fires: [4, 2], abs_sum: [2, 1], sq_sum: [1, 1] }), 2);
    assert.equal(d.units("run", "fc1")![0]!.fires, 8);
    assert.notEqual(d.summary("run", "fc1")!.dormancy_mean, null, "finite sums still count");
  });

  test("raw NaN activations are no silent evidence: a unit NaN on every sample is never dead", () => {
    const d = new Detector(SMALL);
    const samples = 100;
    const values = new Float32Array(samples * 2);
    for (let i = 0; i < samples; i++) {
      values[2 * i] = Number.NaN;
      values[2 * i + 1] = i % 10 === 0 ? 1 : 0;
    }
    const raw = (step: number): ActivationSnapshot => ({
      run_id: "run",
      layer: "fc1",
      rank: 0,
      step,
      time: step,
      unit_offset: 0,
      unit_count: 2,
      layer_units: 2,
      samples,
      stats: { kind: "raw", dtype: "FLOAT32", values: new Uint8Array(values.buffer) },
    });
    for (let step = 0; step < 300; step++) d.apply(raw(step), step);
    d.flush();
    assert.deepEqual(
      d.units("run", "fc1")!.map((u) => [u.state, u.samples, u.n_silent]),
      [
        ["UNKNOWN", 0, 0],
        ["ACTIVE", 10_000, 0],
      ],
    );
    assert.equal(d.summary("run", "fc1")!.nonfinite_values_total, 300 * samples);
  });

  test("non-finite counts leave the window with their bucket", () => {
    const d = new Detector(SMALL);
    d.apply(counts({ step: 0, samples: 10, fires: [0], nonfinite: [10] }), 0);
    const bytesWithNaN = d.stateBytes();
    for (let step = 1; step < 120; step++) d.apply(counts({ step, samples: 10, fires: [0] }), step);
    assert.ok(d.stateBytes() < bytesWithNaN, "the bucket's per-unit counts were released");
    const u = unit(d, 0);
    assert.equal(u.n_silent, 1190, "all finite samples since step 1, none of step 0's NaNs");
  });
});

describe("idle runs", () => {
  test("flushIdle classifies a layer's open bucket once it has been idle for idleMs, and only once", () => {
    const d = new Detector(SMALL);
    for (let step = 0; step < 70; step++)
      d.apply(counts({ step, samples: 100, fires: [0, 3] }), 1_000 + step);
    assert.equal(unit(d, 0).state, "UNKNOWN", "bucket 6 is open");
    assert.deepEqual(d.flushIdle(1_069 + 59_999, 60_000), [], "not idle long enough");
    const ts = d.flushIdle(1_069 + 60_000, 60_000);
    assert.deepEqual(
      ts.map((t) => [t.unit, t.to, t.step]),
      [
        [0, "DEAD", 69],
        [1, "ACTIVE", 69],
      ],
    );
    assert.deepEqual(d.flushIdle(1_069 + 120_000, 60_000), [], "nothing new since");
    // The run comes back: its bucket closes without counting anything twice.
    const back = d.apply(counts({ step: 70, samples: 100, fires: [0, 3] }), 200_000).transitions;
    assert.deepEqual(back, []);
    assert.equal(d.summary("run", "fc1")!.deaths_total, 0, "born dead, not a death");
  });
});

describe("sums kept per pair of buckets", () => {
  test("means cover the window at pair granularity; a straggler of a reused pair keeps its fires, not its sums", () => {
    const d = new Detector({ window_steps: 100, window_buckets: 10 });
    // h = 2 on every sample in buckets 0..9, then h = 4 from bucket 10 on.
    for (let step = 0; step < 100; step++)
      d.apply(counts({ step, samples: 10, fires: [10], abs_sum: [20], sq_sum: [40] }), step);
    assert.equal(d.summary("run", "fc1")!.dormancy_mean, 2);
    d.apply(counts({ step: 100, samples: 10, fires: [10], abs_sum: [40], sq_sum: [160] }), 100);
    // Head bucket 10 took the slot of buckets 0-1: the means read buckets 2..10.
    const mean = d.summary("run", "fc1")!.dormancy_mean!;
    assert.ok(Math.abs(mean - (80 * 20 + 40) / 810) < 1e-9, String(mean));
    // Bucket 1 is still in the window (1..10), but its pair's slot now holds bucket 10.
    const o = d.apply(
      counts({ step: 15, micro_batch: 1, samples: 10, fires: [3], abs_sum: [999], sq_sum: [999] }),
      101,
    );
    assert.equal(o.result, "ok");
    assert.equal(d.summary("run", "fc1")!.dormancy_mean, mean);
    assert.equal(d.units("run", "fc1")![0]!.fires, 913, "91 snapshots of 10 fires, plus the straggler's 3");
  });

  test("a layer with sums costs 102 bytes a unit at the default window, 62 without", () => {
    const d = new Detector();
    d.apply(counts({ step: 0, samples: 10, fires: new Array(1000).fill(1) }), 0);
    assert.equal(d.stateBytes(), 62 * 1000);
    d.apply(
      counts({
        step: 1,
        samples: 10,
        fires: new Array(1000).fill(1),
        abs_sum: new Array(1000).fill(1),
        sq_sum: new Array(1000).fill(1),
      }),
      1,
    );
    assert.equal(d.stateBytes(), 102 * 1000);
  });
});

test("the pass after a resume does not count the fires of a bucket that closed before twice", () => {
  for (const incarnation of [undefined, 1]) {
    const d = new Detector(SMALL);
    // Unit 0 is silent until its verdict, then fires twice in bucket 8: short of revive_min_fires 3.
    for (let step = 0; step < 95; step++)
      d.apply(counts({ step, incarnation, samples: 100, fires: [step === 85 ? 2 : 0, 5] }), step);
    assert.equal(unit(d, 0).state, "DEAD");
    // A resume at step 92 cuts back to bucket 8, which had closed with those two fires.
    const o = d.apply(
      counts({
        step: 92,
        incarnation: incarnation === undefined ? undefined : 2,
        time: 9_000_000,
        samples: 100,
        fires: [0, 5],
      }),
      100,
    );
    assert.equal(o.notices[0]?.kind, "resume");
    assert.equal(unit(d, 0).state, "DEAD", "2 fires, not 4");
  }
});
