/**
 * A checkpoint restored into a fresh detector goes on exactly as the detector
 * that wrote it: over the simulator's scenarios (micro-batches, incarnation
 * resumes, NaNs, sums, tensor-parallel shards, raw payloads), cut at random
 * points, every apply outcome, idle flush, summary, unit detail and the final
 * state equal those of one detector that never stopped.
 *
 * A small window (400 steps in 8 buckets) and alpha = dead_rate = 0.01 (silent_rate 0.05) make
 * deaths, revivals and resumes happen within a short run.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import fc from "fast-check";
import {
  type ActivationSnapshot,
  CheckpointError,
  Detector,
  type DetectorConfig,
} from "../../../src/core/index.js";
import { BUILT_IN_SCENARIOS, generateFleet, resolveScenario } from "../../../src/sim/index.js";
import { propertyParams } from "../../support/property.js";
import { counts } from "./helpers.js";

const CONFIG: Partial<DetectorConfig> = {
  window_steps: 400,
  window_buckets: 8,
  alpha: 0.01,
  dead_rate: 0.01,
  silent_rate: 0.05,
  revive_min_fires: 2,
};
const IDLE_MS = 60_000;

/** Small versions of the built-in scenarios: 24 units, a snapshot every 25 steps up to 1500. */
function fleet(name: string, seed: number, raw: boolean): ActivationSnapshot[] {
  const sc = resolveScenario(name, { seed, units: 24, steps: 1500, interval: 25, samples: 128 });
  if (raw && !sc.sums) sc.payload = "raw";
  return [...generateFleet(sc)];
}

/** Checkpoints every layer of `d` and restores them into a fresh detector. */
function handOver(d: Detector): Detector {
  const fresh = new Detector(CONFIG);
  for (const { run_id, layer } of d.layerIds()) fresh.restore(d.checkpoint(run_id, layer)!);
  return fresh;
}

function everything(d: Detector) {
  const ids = d.layerIds();
  return {
    summaries: d.summaries(),
    units: ids.map(({ run_id, layer }) => d.units(run_id, layer)),
    checkpoints: ids.map(({ run_id, layer }) => d.checkpoint(run_id, layer)),
    // The explorer's per-unit history survives a hand-over too.
    logged: ids.map(({ run_id, layer }) =>
      d.transitionsOf(run_id, layer, undefined, Number.POSITIVE_INFINITY),
    ),
    trackedUnits: d.trackedUnits(),
    stateBytes: d.stateBytes(),
  };
}

test("a detector restored from checkpoints at random points goes on exactly as one that never stopped", () => {
  const names = Object.keys(BUILT_IN_SCENARIOS);
  fc.assert(
    fc.property(
      fc.constantFrom(...names),
      fc.integer({ min: 1, max: 1000 }),
      fc.boolean(),
      fc.uniqueArray(fc.double({ min: 0, max: 1, noNaN: true }), { minLength: 1, maxLength: 3 }),
      fc.boolean(),
      (name, seed, raw, cutFractions, idleFlushAtCut) => {
        const snapshots = fleet(name, seed, raw);
        const cuts = new Set(cutFractions.map((f) => Math.floor(f * snapshots.length)));
        const whole = new Detector(CONFIG);
        let restored = new Detector(CONFIG);
        for (const [i, s] of snapshots.entries()) {
          if (cuts.has(i)) {
            if (idleFlushAtCut) {
              const now = s.time + IDLE_MS;
              assert.deepEqual(
                restored.flushIdle(now, IDLE_MS),
                whole.flushIdle(now, IDLE_MS),
                `idle flush ${i}`,
              );
            }
            restored = handOver(restored);
          }
          assert.deepEqual(restored.apply(s, s.time), whole.apply(s, s.time), `snapshot ${i} of ${name}`);
        }
        const end = snapshots.at(-1)!.time + IDLE_MS;
        assert.deepEqual(restored.flushIdle(end, IDLE_MS), whole.flushIdle(end, IDLE_MS));
        assert.deepEqual(everything(restored), everything(whole));
        // The runs did reach verdicts: the comparison is not between two empty detectors.
        const states = whole.summaries().map((l) => l.units_by_state);
        assert.ok(states.some((u) => u.ACTIVE + u.MOSTLY_SILENT + u.DEAD > 0));
      },
    ),
    propertyParams({ numRuns: 40 }),
  );
});

test("the property's scenarios do exercise deaths, resumes, NaNs, born-dead units and sums", () => {
  const seen = { deaths: 0, resumes: 0, nonfinite: 0, bornDead: 0, dormancy: 0 };
  for (const name of Object.keys(BUILT_IN_SCENARIOS)) {
    const d = new Detector(CONFIG);
    for (const s of fleet(name, 1, false)) d.apply(s, s.time);
    for (const l of d.summaries()) {
      seen.deaths += l.deaths_total;
      seen.resumes += l.resumes_total;
      seen.nonfinite += l.nonfinite_values_total;
      seen.bornDead += l.born_dead_units;
      if (l.dormancy_mean !== null) seen.dormancy++;
    }
  }
  for (const [k, v] of Object.entries(seen)) assert.ok(v > 0, `${k}: ${v}`);
});

test("restore refuses a checkpoint of another window, and leaves the detector as it was", () => {
  const d = new Detector(CONFIG);
  d.apply(counts({ step: 5, samples: 10, fires: [1, 0, 3] }), 0);
  const cp = d.checkpoint("run", "fc1")!;
  const other = new Detector({ ...CONFIG, window_steps: 800 });
  other.apply(counts({ step: 5, samples: 10, fires: [0, 0, 0] }), 0);
  assert.throws(
    () => other.restore(cp),
    (e: unknown) => e instanceof CheckpointError && /window_steps 400 in 8 buckets.*800 in 8/.test(e.message),
  );
  assert.equal(other.units("run", "fc1")![0]!.fires, 0);
});

test("restore refuses an image whose arrays do not fit its units", () => {
  const d = new Detector(CONFIG);
  d.apply(counts({ step: 5, samples: 10, fires: [1, 0, 3] }), 0);
  const cp = d.checkpoint("run", "fc1")!;
  const bad = { ...cp, state: { ...cp.state, windowFires: new Uint32Array(2) } };
  const fresh = new Detector(CONFIG);
  assert.throws(() => fresh.restore(bad), /windowFires has 2 units, not 3/);
  assert.deepEqual(fresh.layerIds(), []);
});

test("a restored layer replaces what the detector had for it, and owns its arrays", () => {
  const d = new Detector(CONFIG);
  d.apply(counts({ step: 5, samples: 10, fires: [1, 0, 3] }), 0);
  const cp = d.checkpoint("run", "fc1")!;
  const other = new Detector(CONFIG);
  other.apply(counts({ step: 7, samples: 10, fires: [9, 9, 9, 9] }), 0);
  other.restore(cp);
  d.apply(counts({ step: 6, samples: 10, fires: [5, 5, 5] }), 0);
  assert.deepEqual(
    other.units("run", "fc1")!.map((u) => u.fires),
    [1, 0, 3],
  );
  assert.equal(other.checkpoint("missing", "fc1"), undefined);
});
