/**
 * The activation probe's overhead on a trainer: time per training step of the
 * demo MLP with and without the probe at every_steps = 50, median of several
 * alternating runs. Target: at most 5% more per step.
 *
 *   npx tsx bench/probe.ts [--backend tensorflow|wasm|cpu] [--steps 500] [--runs 5]
 *                          [--every-steps 50] [--probe-batch 256] [--layers 4] [--units 128] [--batch 64]
 *
 * Prints one JSON object on stdout and a line naming the backend on stderr.
 */
import { parseArgs } from "node:util";
import * as tf from "@tensorflow/tfjs";
import { makeDataset } from "../src/demo/dataset.js";
import { buildMlp, resolveTrainerOptions } from "../src/demo/trainer.js";
import { ActivationProbe } from "../src/publisher/activation-probe.js";
import { MemorySnapshotSink } from "../src/publisher/probe.js";
import { sampleIndices, seededRandom } from "../src/publisher/seeded-random.js";
import { loadTf } from "../src/publisher/tf-backend.js";

const { values } = parseArgs({
  options: {
    backend: { type: "string" },
    steps: { type: "string", default: "500" },
    runs: { type: "string", default: "5" },
    "every-steps": { type: "string", default: "50" },
    "probe-batch": { type: "string", default: "256" },
    layers: { type: "string", default: "4" },
    units: { type: "string", default: "128" },
    batch: { type: "string", default: "64" },
  },
});
if (values.backend) process.env.RELUWATCH_TF_BACKEND = values.backend;
const steps = Number(values.steps);
const runs = Number(values.runs);
const everySteps = Number(values["every-steps"]);
const probeBatch = Number(values["probe-batch"]);
const batch = Number(values.batch);

let backendLine = "";
const { backend } = await loadTf((m) => {
  backendLine = m;
});
process.stderr.write(`${backendLine}\n`);

const options = resolveTrainerOptions({ layers: Number(values.layers), units: Number(values.units), batch });
const data = makeDataset("spirals", 4096, 7);
const model = buildMlp(options, data.inputDim, data.outputDim);
model.compile({ optimizer: tf.train.sgd(0.01), loss: "categoricalCrossentropy" });
const pool = tf.tensor2d(data.x, [data.size, data.inputDim]);
const labels = tf.oneHot(tf.tensor1d(data.y, "int32"), 2);
const sink = new MemorySnapshotSink();
const probe = new ActivationProbe(model, {
  sink,
  run_id: "bench",
  every_steps: everySteps,
  probe_batch: probeBatch,
  pool,
});

// Batches are prepared up front so both variants time the same work: the step and, if on, the probe.
const random = seededRandom(3);
const batches = Array.from({ length: 16 }, () => {
  const rows = tf.tensor1d(sampleIndices(data.size, batch, random), "int32");
  const b = { x: tf.gather(pool, rows), y: tf.gather(labels, rows) };
  rows.dispose();
  return b;
});

async function run(withProbe: boolean): Promise<number> {
  const start = performance.now();
  for (let step = 1; step <= steps; step++) {
    const b = batches[step % batches.length]!;
    await model.trainOnBatch(b.x, b.y);
    if (withProbe) await probe.maybeProbe(step);
  }
  return (performance.now() - start) / steps;
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};

await run(true); // warm-up: kernels, the probe model, the sink's arrays
sink.snapshots.length = 0;
const without: number[] = [];
const withP: number[] = [];
for (let r = 0; r < runs; r++) {
  without.push(await run(false));
  withP.push(await run(true));
}
const msWithout = median(without);
const msWith = median(withP);
const t0 = performance.now();
for (let i = 0; i < 20; i++) await probe.probe(0);
const msPerProbe = (performance.now() - t0) / 20;

const result = {
  backend,
  model: `${options.layers}x${options.units} relu MLP, batch ${batch}`,
  steps_per_run: steps,
  runs,
  every_steps: everySteps,
  probe_batch: probeBatch,
  ms_per_step_without_probe: Number(msWithout.toFixed(3)),
  ms_per_step_with_probe: Number(msWith.toFixed(3)),
  ms_per_probe: Number(msPerProbe.toFixed(3)),
  overhead_ratio: Number((msWith / msWithout - 1).toFixed(4)),
  target_ratio: 0.05,
  probe_only_estimate_ratio: Number((msPerProbe / everySteps / msWithout).toFixed(4)),
};
process.stdout.write(`${JSON.stringify(result)}\n`);
process.stderr.write(
  `backend ${backend}: ${result.ms_per_step_without_probe} ms/step without the probe, ${result.ms_per_step_with_probe} with it ` +
    `(every ${everySteps} steps, ${probeBatch} examples): overhead ${(result.overhead_ratio * 100).toFixed(2)}%\n`,
);
tf.dispose([pool, labels, ...batches.flatMap((b) => [b.x, b.y])]);
