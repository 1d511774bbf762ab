/**
 * The detector against the truth: a small MLP whose units are killed by a
 * learning-rate spike, probed on two ranks; the snapshots go through a
 * Detector in-process and its DEAD set at the end is scored against
 * evaluateDeadUnits on the whole dataset.
 *
 * Why these settings (docs/probe-and-demo-trainer.md, "Ground truth"):
 * - a DEAD verdict needs n_min = 6905 silent samples (alpha = dead_rate = 0.001);
 *   2 ranks × 192 examples per probe every 5 steps give 384 samples per probe
 *   step, so a unit is provably dead 18 probes (90 steps) after it died;
 * - 768 rows: the rarest a living unit can fire is 1/768 > dead_rate, so no
 *   living unit falls in the band the detector rightly calls dead (rate below
 *   dead_rate) while the truth (never > 0) calls it alive;
 * - the learning rate anneals after the spike, so units stop dying and
 *   reviving well before the end, and the last n_min samples show the final model.
 */
import assert from "node:assert/strict";
import { before, test } from "node:test";
import { Detector } from "../../../src/core/index.js";
import { countUnits, type DeadUnits, scoreDeadSet } from "../../../src/demo/ground-truth.js";
import { runDemo } from "../../../src/demo/ranks.js";
import { MemorySnapshotSink } from "../../../src/publisher/probe.js";
import { loadTf } from "../../../src/publisher/tf-backend.js";

let backend = "";
before(async () => {
  backend = (await loadTf()).backend;
});

const RUN = {
  layers: 3,
  units: 64,
  steps: 600,
  lr: 0.1,
  lr_spike_step: 100,
  lr_spike_factor: 100,
  lr_anneal_step: 150,
  lr_anneal_steps: 200,
  dataset_size: 768,
  ranks: 2,
  every_steps: 5,
  probe_batch: 192,
  seed: 1,
  run_id: "truth",
};
const DETECTOR = { window_steps: 100, window_buckets: 10 };

test("the detector's DEAD set matches the ground truth: precision >= 0.99, recall >= 0.95", async () => {
  const detector = new Detector(DETECTOR);
  const perProbeStep = RUN.ranks * RUN.probe_batch;
  const settledProbes = (RUN.steps - (RUN.lr_anneal_step + RUN.lr_anneal_steps)) / RUN.every_steps;
  assert.ok(
    perProbeStep * settledProbes >= 2 * detector.samplesNeeded,
    "the settled end of the run holds twice the samples a verdict needs",
  );
  assert.ok(1 / RUN.dataset_size > detector.config.dead_rate, "no living unit fires below dead_rate");

  const sink = new MemorySnapshotSink();
  const result = await runDemo(RUN, { sink });
  assert.equal(result.ranksAgree, true);
  assert.deepEqual(new Set(sink.snapshots.map((s) => s.rank)), new Set([0, 1]));

  // Arrival order is rank-interleaved; the detector is order-independent within a bucket.
  for (const s of sink.snapshots) detector.apply(s, s.time);
  detector.flush();

  const predicted: DeadUnits = new Map();
  let deaths = 0;
  for (const summary of detector.summaries()) {
    const units = detector.units(summary.run_id, summary.layer)!;
    predicted.set(summary.layer, new Set(units.filter((u) => u.state === "DEAD").map((u) => u.unit)));
    deaths += summary.deaths_total;
  }
  const score = scoreDeadSet(predicted, result.truth);
  const line = `backend ${backend}: truth ${countUnits(result.truth)} dead, predicted ${countUnits(predicted)}, precision ${score.precision.toFixed(4)}, recall ${score.recall.toFixed(4)}`;
  process.stderr.write(`${line}\n`);
  assert.ok(countUnits(result.truth) >= 10, `the spike killed enough units to score: ${line}`);
  assert.ok(deaths >= 10, `deaths were seen happen (not only born dead): ${deaths}`);
  assert.ok(score.precision >= 0.99, line);
  assert.ok(score.recall >= 0.95, line);
});
