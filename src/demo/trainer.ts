/**
 * The demo trainer: an MLP of ReLU layers trained with plain SGD on a dataset
 * made in code, with two ways to make units die on purpose:
 *
 * - a learning-rate spike: for `lr_spike_steps` steps from `lr_spike_step` the
 *   rate is multiplied by `lr_spike_factor`; the oversized update throws many
 *   biases far negative, and a unit whose pre-activation is negative on every
 *   input gets no gradient again, so it stays dead;
 * - born-dead units: `negative_bias_init` of each hidden layer's units start
 *   with a bias of `born_dead_bias`, dead from step 0.
 *
 * Every rank of a run builds the same initial weights from the shared seed and
 * trains on its own shard; gradients go through `allReduce` (an average over
 * ranks when there are several, see ranks.ts), so the ranks stay identical, as
 * in synchronous data-parallel training, and the ground truth is one set.
 */
import * as tf from "@tensorflow/tfjs";
import { ActivationProbe } from "../publisher/activation-probe.js";
import type { SnapshotSink } from "../publisher/probe.js";
import { mixSeed, sampleIndices, seededRandom } from "../publisher/seeded-random.js";
import { type Dataset, type DatasetKind, makeDataset, shardIndices, subset } from "./dataset.js";
import { type DeadUnits, evaluateDeadUnits } from "./ground-truth.js";

export interface DemoTrainerOptions {
  layers: number;
  units: number;
  steps: number;
  lr: number;
  /** First step of the spike; null for no spike. */
  lr_spike_step: number | null;
  lr_spike_factor: number;
  lr_spike_steps: number;
  /**
   * From this step the learning rate falls linearly to 1% of lr over
   * lr_anneal_steps steps, then stays there (null: constant). A settled model
   * stops killing and reviving units, so the end-of-run ground truth is what
   * the last probes saw.
   */
  lr_anneal_step: number | null;
  /** Length of the fall; null: until the last step. */
  lr_anneal_steps: number | null;
  /** Share of each hidden layer's units born dead (0 = none). */
  negative_bias_init: number;
  born_dead_bias: number;
  batch: number;
  dataset: DatasetKind;
  dataset_size: number;
  seed: number;
  rank: number;
  ranks: number;
  every_steps: number;
  probe_batch: number;
  run_id: string;
  /** The snapshots' incarnation; null: this process's start time. Ranks in child processes get their parent's. */
  incarnation: number | null;
}

export const DEFAULT_TRAINER_OPTIONS: DemoTrainerOptions = {
  layers: 4,
  units: 128,
  steps: 2000,
  lr: 0.1,
  // Early enough that gradients are still large: late in training the same factor kills far fewer units.
  lr_spike_step: 500,
  lr_spike_factor: 100,
  lr_spike_steps: 1,
  lr_anneal_step: null,
  lr_anneal_steps: null,
  negative_bias_init: 0,
  born_dead_bias: -50,
  batch: 64,
  dataset: "spirals",
  dataset_size: 4096,
  seed: 42,
  rank: 0,
  ranks: 1,
  every_steps: 50,
  probe_batch: 256,
  run_id: "demo",
  incarnation: null,
};

export class TrainerOptionsError extends Error {
  override name = "TrainerOptionsError";
}

/** The loss went non-finite: every activation would read as NaN and every unit as dead, so the run stops. */
export class TrainingDivergedError extends Error {
  override name = "TrainingDivergedError";
}

function check(ok: boolean, message: string): void {
  if (!ok) throw new TrainerOptionsError(message);
}

export function resolveTrainerOptions(partial: Partial<DemoTrainerOptions> = {}): DemoTrainerOptions {
  const o: DemoTrainerOptions = { ...DEFAULT_TRAINER_OPTIONS, ...partial };
  const int = (name: keyof DemoTrainerOptions, min: number) => {
    const v = o[name] as number;
    check(Number.isInteger(v) && v >= min, `${name} must be an integer >= ${min}, got ${String(v)}`);
  };
  int("layers", 1);
  int("units", 1);
  int("steps", 0);
  int("lr_spike_steps", 1);
  int("batch", 1);
  int("dataset_size", 2);
  int("seed", 0);
  int("ranks", 1);
  int("rank", 0);
  int("every_steps", 1);
  int("probe_batch", 1);
  check(o.rank < o.ranks, `rank must be < ranks (${o.ranks}), got ${o.rank}`);
  check(o.dataset_size >= o.ranks, `dataset_size ${o.dataset_size} is smaller than ranks ${o.ranks}`);
  check(Number.isFinite(o.lr) && o.lr > 0, `lr must be > 0, got ${o.lr}`);
  check(Number.isFinite(o.lr_spike_factor) && o.lr_spike_factor > 0, "lr_spike_factor must be > 0");
  check(
    o.lr_spike_step === null || (Number.isInteger(o.lr_spike_step) && o.lr_spike_step >= 1),
    `lr_spike_step must be an integer >= 1 or null, got ${String(o.lr_spike_step)}`,
  );
  check(
    o.lr_anneal_step === null || (Number.isInteger(o.lr_anneal_step) && o.lr_anneal_step >= 1),
    `lr_anneal_step must be an integer >= 1 or null, got ${String(o.lr_anneal_step)}`,
  );
  check(
    o.lr_anneal_steps === null || (Number.isInteger(o.lr_anneal_steps) && o.lr_anneal_steps >= 1),
    `lr_anneal_steps must be an integer >= 1 or null, got ${String(o.lr_anneal_steps)}`,
  );
  check(
    o.negative_bias_init >= 0 && o.negative_bias_init <= 1,
    `negative_bias_init must be a share in [0, 1], got ${o.negative_bias_init}`,
  );
  check(Number.isFinite(o.born_dead_bias) && o.born_dead_bias < 0, "born_dead_bias must be negative");
  check(o.run_id.length > 0, "run_id must be non-empty");
  return o;
}

/** Share of lr left at the last step of an annealed run. */
const ANNEAL_FLOOR = 0.01;

/** The learning rate at a step: the spike multiplies it for lr_spike_steps steps; annealing scales it down. */
export function learningRateAt(o: DemoTrainerOptions, step: number): number {
  const spiking =
    o.lr_spike_step !== null && step >= o.lr_spike_step && step < o.lr_spike_step + o.lr_spike_steps;
  let lr = spiking ? o.lr * o.lr_spike_factor : o.lr;
  const length = o.lr_anneal_steps ?? o.steps - (o.lr_anneal_step ?? 0);
  if (o.lr_anneal_step !== null && step > o.lr_anneal_step && length > 0) {
    const done = Math.min(1, (step - o.lr_anneal_step) / length);
    lr *= 1 - done + done * ANNEAL_FLOOR;
  }
  return lr;
}

export function hiddenLayerName(i: number): string {
  return `dense_${i}`;
}

/** The MLP: `layers` hidden Dense ReLU layers named dense_0…, then a linear output. Seeded, so every rank agrees. */
export function buildMlp(o: DemoTrainerOptions, inputDim: number, outputDim: number): tf.Sequential {
  const model = tf.sequential({ name: "reluwatch_demo" });
  for (let i = 0; i < o.layers; i++) {
    model.add(
      tf.layers.dense({
        name: hiddenLayerName(i),
        units: o.units,
        activation: "relu",
        kernelInitializer: tf.initializers.heNormal({ seed: mixSeed(o.seed, 1, i) }),
        biasInitializer: tf.initializers.constant({ value: 0.01 }),
        ...(i === 0 ? { inputShape: [inputDim] } : {}),
      }),
    );
  }
  model.add(
    tf.layers.dense({
      name: "output",
      units: outputDim,
      kernelInitializer: tf.initializers.glorotUniform({ seed: mixSeed(o.seed, 2) }),
    }),
  );
  return model;
}

/** Gives the chosen share of each hidden layer's units a large negative bias; returns who was chosen. */
function killAtBirth(model: tf.Sequential, o: DemoTrainerOptions): DeadUnits {
  const chosen: DeadUnits = new Map();
  const perLayer = Math.round(o.negative_bias_init * o.units);
  for (let i = 0; i < o.layers; i++) {
    const name = hiddenLayerName(i);
    const units = sampleIndices(o.units, perLayer, seededRandom(mixSeed(o.seed, 3, i)));
    chosen.set(name, new Set(units));
    if (perLayer === 0) continue;
    // weights[1] is the bias variable; read() is the live variable, so it is written, never disposed.
    const bias = model.getLayer(name).weights[1]!;
    const b = bias.read().dataSync().slice();
    for (const u of units) b[u] = o.born_dead_bias;
    const newBias = tf.tensor1d(b);
    bias.write(newBias);
    newBias.dispose();
  }
  return chosen;
}

/** Averages a flat gradient vector over ranks; the identity for one rank. */
export type AllReduce = (grads: Float32Array, step: number) => Promise<Float32Array>;

export interface TrainerDeps {
  sink: SnapshotSink;
  allReduce?: AllReduce;
  clock?: () => number;
  /** Called after each step with the loss on this rank's batch. */
  onStep?: (step: number, loss: number) => void;
}

export interface TrainResult {
  options: DemoTrainerOptions;
  /** Per layer, the units with activation never > 0 on the whole dataset after training. */
  truth: DeadUnits;
  /** Per layer, the units given a negative bias at initialisation. */
  bornDead: DeadUnits;
  finalLoss: number;
  probes: number;
}

function batchTensors(data: Dataset, rows: Int32Array): { x: tf.Tensor2D; y: tf.Tensor } {
  const part = subset(data, rows);
  const x = tf.tensor2d(part.x, [part.size, data.inputDim]);
  const y =
    data.kind === "spirals"
      ? tf.oneHot(tf.tensor1d(part.y, "int32"), data.outputDim)
      : tf.tensor2d(part.y, [part.size, 1]);
  return { x, y };
}

function lossOf(kind: DatasetKind, y: tf.Tensor, out: tf.Tensor): tf.Scalar {
  return kind === "spirals" ? tf.losses.softmaxCrossEntropy(y, out) : tf.losses.meanSquaredError(y, out);
}

/** Trains one rank of the demo and returns the ground truth at the end; the model is disposed. */
export async function trainDemo(
  partial: Partial<DemoTrainerOptions>,
  deps: TrainerDeps,
): Promise<TrainResult> {
  const o = resolveTrainerOptions(partial);
  const data = makeDataset(o.dataset, o.dataset_size, o.seed);
  const shard = subset(data, shardIndices(data.size, o.rank, o.ranks, mixSeed(o.seed, 4)));
  const model = buildMlp(o, data.inputDim, data.outputDim);
  const bornDead = killAtBirth(model, o);
  const optimizer = tf.train.sgd(o.lr);
  const vars = model.trainableWeights.map((w) => w.read() as tf.Variable);
  const pool = tf.tensor2d(shard.x, [shard.size, data.inputDim]);
  const probe = new ActivationProbe(model, {
    sink: deps.sink,
    run_id: o.run_id,
    rank: o.rank,
    every_steps: o.every_steps,
    probe_batch: o.probe_batch,
    seed: mixSeed(o.seed, 5),
    clock: deps.clock,
    pool,
    ...(o.incarnation === null ? {} : { incarnation: o.incarnation }),
  });
  let probes = 0;
  let finalLoss = Number.NaN;
  try {
    if (await probe.maybeProbe(0)) probes++;
    for (let step = 1; step <= o.steps; step++) {
      const rows = sampleIndices(shard.size, o.batch, seededRandom(mixSeed(o.seed, 6, o.rank, step)));
      const { x, y } = batchTensors(shard, rows);
      const { value, grads } = tf.variableGrads(
        () => lossOf(o.dataset, y, model.apply(x, { training: true }) as tf.Tensor),
        vars,
      );
      let applied: tf.NamedTensorMap = grads;
      if (deps.allReduce) {
        const flat = tf.tidy(() => tf.concat(vars.map((v) => grads[v.name]!.reshape([-1]))));
        const averaged = await deps.allReduce((await flat.data()) as Float32Array, step);
        flat.dispose();
        applied = {};
        let offset = 0;
        for (const v of vars) {
          applied[v.name] = tf.tensor(averaged.subarray(offset, offset + v.size), v.shape);
          offset += v.size;
        }
        tf.dispose(grads);
      }
      optimizer.setLearningRate(learningRateAt(o, step));
      optimizer.applyGradients(applied);
      finalLoss = (await value.data())[0]!;
      tf.dispose([x, y, value, applied]);
      if (!Number.isFinite(finalLoss))
        throw new TrainingDivergedError(
          `loss is ${finalLoss} at step ${step} (learning rate ${learningRateAt(o, step)}); lower --lr or --lr-spike-factor`,
        );
      deps.onStep?.(step, finalLoss);
      if (await probe.maybeProbe(step)) probes++;
    }
    const everything = tf.tensor2d(data.x, [data.size, data.inputDim]);
    const truth = await evaluateDeadUnits(model, everything);
    everything.dispose();
    return { options: o, truth, bornDead, finalLoss, probes };
  } finally {
    pool.dispose();
    optimizer.dispose();
    model.dispose();
  }
}
