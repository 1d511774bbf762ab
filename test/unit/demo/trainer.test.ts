import assert from "node:assert/strict";
import { before, test } from "node:test";
import type { FiringCounts } from "../../../src/core/snapshot.js";
import { countUnits } from "../../../src/demo/ground-truth.js";
import { runDemo } from "../../../src/demo/ranks.js";
import {
  learningRateAt,
  resolveTrainerOptions,
  TrainerOptionsError,
  trainDemo,
} from "../../../src/demo/trainer.js";
import { MemorySnapshotSink } from "../../../src/publisher/probe.js";
import { loadTf } from "../../../src/publisher/tf-backend.js";

before(async () => {
  await loadTf();
});

const small = {
  layers: 2,
  units: 32,
  steps: 200,
  lr: 0.1,
  dataset_size: 1024,
  every_steps: 50,
  probe_batch: 256,
  seed: 1,
};

function fires(sink: MemorySnapshotSink, step: number, layer: string): Uint32Array {
  const s = sink.snapshots.find((x) => x.step === step && x.layer === layer);
  assert.ok(s, `a snapshot of ${layer} at step ${step}`);
  return (s.stats as FiringCounts).fires;
}

test("the learning-rate spike kills units that were firing before it", async () => {
  const calm = await trainDemo({ ...small, lr_spike_step: null }, { sink: new MemorySnapshotSink() });
  const sink = new MemorySnapshotSink();
  const spiked = await trainDemo({ ...small, lr_spike_step: 150, lr_spike_factor: 1000 }, { sink });
  assert.equal(spiked.probes, 5, "probes at steps 0, 50, 100, 150, 200");

  let killed = 0;
  for (const [layer, dead] of spiked.truth) {
    const before = fires(sink, 100, layer);
    for (const u of dead) if (before[u]! > 0) killed++;
    // The probe after the spike saw none of the truly dead units fire.
    const after = fires(sink, 200, layer);
    for (const u of dead) assert.equal(after[u], 0, `${layer}/${u} is dead but fired at step 200`);
  }
  assert.ok(killed >= 5, `the spike killed ${killed} units that fired at step 100`);
  assert.ok(
    countUnits(spiked.truth) >= countUnits(calm.truth) + 5,
    `spike: ${countUnits(spiked.truth)} dead, no spike: ${countUnits(calm.truth)}`,
  );
});

test("a negative bias initialisation gives dead units from step 0 that stay dead", async () => {
  const sink = new MemorySnapshotSink();
  const r = await trainDemo(
    { ...small, steps: 60, lr_spike_step: null, negative_bias_init: 0.25 },
    { sink, clock: () => 42 },
  );
  for (const [layer, born] of r.bornDead) {
    assert.equal(born.size, 8, `a quarter of ${layer}'s 32 units`);
    const atZero = fires(sink, 0, layer);
    for (const u of born) {
      assert.equal(atZero[u], 0, `${layer}/${u} fired at step 0`);
      assert.ok(r.truth.get(layer)!.has(u), `${layer}/${u} is in the ground truth`);
    }
  }
  const step0 = sink.snapshots.filter((s) => s.step === 0);
  assert.deepEqual(
    step0.map((s) => [s.layer, s.rank, s.samples, s.layer_units, s.time]),
    [
      ["dense_0", 0, 256, 32, 42],
      ["dense_1", 0, 256, 32, 42],
    ],
  );
});

test("ranks train in lockstep on their own shards and publish the same layers under their own rank", async () => {
  const sink = new MemorySnapshotSink();
  const r = await runDemo(
    { ...small, steps: 20, every_steps: 10, ranks: 2, negative_bias_init: 0.25, lr_spike_step: null },
    { sink },
  );
  assert.equal(r.ranksAgree, true, "averaged gradients keep both ranks' weights identical");
  assert.equal(r.probes, 6);
  const seen = sink.snapshots.map((s) => `${s.rank}:${s.step}:${s.layer}`).sort();
  assert.deepEqual(
    seen,
    ["0", "1"]
      .flatMap((rank) =>
        [0, 10, 20].flatMap((step) => [`${rank}:${step}:dense_0`, `${rank}:${step}:dense_1`]),
      )
      .sort(),
  );
  for (const [layer, born] of r.bornDead) for (const u of born) assert.ok(r.truth.get(layer)!.has(u));
});

test("options are validated with typed errors; the spike covers its steps", () => {
  assert.throws(() => resolveTrainerOptions({ units: 0 }), TrainerOptionsError);
  assert.throws(() => resolveTrainerOptions({ rank: 2, ranks: 2 }), /rank must be < ranks/);
  assert.throws(() => resolveTrainerOptions({ negative_bias_init: 1.5 }), /share/);
  assert.throws(() => resolveTrainerOptions({ lr: -1 }), /lr must be > 0/);
  const o = resolveTrainerOptions({ lr: 0.1, lr_spike_step: 10, lr_spike_steps: 2, lr_spike_factor: 30 });
  assert.deepEqual(
    [9, 10, 11, 12].map((s) => learningRateAt(o, s)),
    [0.1, 0.1 * 30, 0.1 * 30, 0.1],
  );
  const annealed = resolveTrainerOptions({ lr: 1, steps: 300, lr_anneal_step: 100, lr_anneal_steps: 100 });
  assert.deepEqual(
    [100, 150, 200, 300].map((s) => learningRateAt(annealed, s)),
    [1, 0.505, 0.01, 0.01],
  );
  const toTheEnd = resolveTrainerOptions({ lr: 1, steps: 300, lr_anneal_step: 100 });
  assert.equal(learningRateAt(toTheEnd, 200), 0.505);
  assert.throws(() => resolveTrainerOptions({ lr_anneal_steps: 0 }), /lr_anneal_steps/);
});
