/**
 * The trainer-side activation probe: every `every_steps` steps it runs a small
 * seeded sub-batch through the model's ReLU layers, reduces the activations to
 * per-unit firing counts on the tfjs backend, and publishes one snapshot per
 * layer. Only the per-unit vectors leave the backend, never samples × units.
 *
 * A diverging model is what this exists to watch, so bad numbers never stop
 * training: NaN and ±Inf activations are counted per unit (`nonfinite`) and
 * left out of fires and sums, and a snapshot the sink refuses as breaking the
 * contract is counted and logged once instead of thrown into model.fit.
 */
import * as tf from "@tensorflow/tfjs";
import { CodecError } from "../codec/errors.js";
import type { ActivationSnapshot } from "../core/snapshot.js";
import { createLogger, type Logger } from "../log.js";
import type { SnapshotSink } from "./probe.js";
import { mixSeed, sampleIndices, seededRandom } from "./seeded-random.js";

export class ActivationProbeError extends Error {
  override name = "ActivationProbeError";
}

/** Layers that apply their own activation and whose output is therefore the post-ReLU value. */
const LAYERS_WITH_ACTIVATION = new Set([
  "Dense",
  "Conv1D",
  "Conv2D",
  "Conv3D",
  "Conv2DTranspose",
  "Conv3DTranspose",
  "SeparableConv2D",
  "DepthwiseConv2D",
]);
/** relu6 is clipped above but dies exactly like relu below zero, so it is watched too. */
const RELU_NAMES = new Set(["relu", "relu6"]);

export interface ReluLayer {
  /** The tfjs layer name: the snapshot's `layer`. */
  name: string;
  className: string;
  /** Channels (units) of the layer's output: the snapshot's `layer_units`. */
  units: number;
  /** Positions per example along which a unit repeats (1 for Dense; height × width for Conv2D). */
  positionsPerExample: number;
  /** Where the unit axis is in the output; the batch axis is 0. */
  unitAxis: number;
}

function activationOf(layer: tf.layers.Layer): string | undefined {
  const config = layer.getConfig() as { activation?: unknown };
  return typeof config.activation === "string" ? config.activation : undefined;
}

function isRelu(layer: tf.layers.Layer): boolean {
  const cls = layer.getClassName();
  if (cls === "ReLU") return true;
  if (cls === "Activation" || LAYERS_WITH_ACTIVATION.has(cls))
    return RELU_NAMES.has(activationOf(layer) ?? "");
  return false;
}

/** The ReLU layers of a model, in layer order: Dense/Conv with relu activation, ReLU and Activation('relu'). */
export function findReluLayers(model: tf.LayersModel): ReluLayer[] {
  const found: ReluLayer[] = [];
  for (const layer of model.layers) {
    if (!isRelu(layer)) continue;
    let shape: tf.Shape;
    try {
      shape = layer.outputShape as tf.Shape;
    } catch (err) {
      throw new ActivationProbeError(
        `layer ${layer.name} has several output shapes (a shared layer); the probe needs one: ${String(err)}`,
      );
    }
    if (!Array.isArray(shape) || Array.isArray(shape[0]) || shape.length < 2)
      throw new ActivationProbeError(
        `layer ${layer.name} has an unsupported output shape ${JSON.stringify(shape)}`,
      );
    const config = layer.getConfig() as { dataFormat?: string };
    const unitAxis = config.dataFormat === "channelsFirst" ? 1 : shape.length - 1;
    const dims = shape.slice(1) as (number | null)[];
    if (dims.some((d) => d === null))
      throw new ActivationProbeError(
        `layer ${layer.name} has an unknown output dimension ${JSON.stringify(shape)}`,
      );
    const units = shape[unitAxis] as number;
    const positionsPerExample = (dims as number[]).reduce((a, b) => a * b, 1) / units;
    found.push({ name: layer.name, className: layer.getClassName(), units, positionsPerExample, unitAxis });
  }
  return found;
}

/**
 * This process's start time in ms since the epoch: the default `incarnation`,
 * which grows with every restart of a single-process trainer. The ranks of a
 * multi-process job start at different times, so they must be given one
 * shared value instead (e.g. the launcher's start time).
 */
export const PROCESS_START_MS = Math.floor(performance.timeOrigin);

export interface ActivationProbeStats {
  /** probe() calls that reduced a sub-batch and handed its snapshots to the sink. */
  probes: number;
  /** Snapshots the sink accepted. */
  published: number;
  /** NaN or ±Inf activation values seen (each counted in its snapshot's `nonfinite`). */
  nonfinite_values: number;
  /** Snapshots the sink refused with a CodecError (counted and logged once, never thrown). */
  rejected: number;
}

export interface ActivationProbeOptions {
  sink: SnapshotSink;
  run_id: string;
  rank?: number;
  /** Probe when step % every_steps === 0. Default 50. */
  every_steps?: number;
  /** Examples per probe, drawn without replacement from the given inputs. Default 256. */
  probe_batch?: number;
  /** Seeds the sub-batch sampling, mixed with rank and step. Default 0. */
  seed?: number;
  /** Wall clock in ms since the epoch, for the snapshot's `time`. Default Date.now. */
  clock?: () => number;
  /** Also send per-unit sum |a| and sum a². Default true. */
  sums?: boolean;
  /** Inputs to sample from when a probe is not handed any (the callback uses these). */
  pool?: tf.Tensor | tf.Tensor[];
  /**
   * The snapshots' `incarnation`: strictly greater each time the job (re)starts, so the
   * consumer discards the timeline a resume from an older checkpoint replaces. Default
   * PROCESS_START_MS; every rank of one job must send the same value.
   */
  incarnation?: number;
  /** Where the first refused snapshot is logged. Default a "probe" logger on stderr. */
  logger?: Logger;
}

function positiveInt(name: string, value: number): number {
  if (!Number.isInteger(value) || value < 1)
    throw new ActivationProbeError(`${name} must be a positive integer, got ${value}`);
  return value;
}

export class ActivationProbe {
  readonly layers: readonly ReluLayer[];
  readonly everySteps: number;
  readonly probeBatch: number;
  readonly rank: number;
  readonly runId: string;
  private readonly probeModel: tf.LayersModel;
  private readonly sink: SnapshotSink;
  private readonly seed: number;
  private readonly clock: () => number;
  private readonly sums: boolean;
  readonly pool: tf.Tensor | tf.Tensor[] | undefined;
  readonly incarnation: number;
  private readonly log: Logger | undefined;
  private readonly counters: ActivationProbeStats = {
    probes: 0,
    published: 0,
    nonfinite_values: 0,
    rejected: 0,
  };
  /** The step of the latest probe and how many probes it had: repeated probes of a step are its micro-batches. */
  private lastStep = -1;
  private microBatches = 0;

  constructor(model: tf.LayersModel, options: ActivationProbeOptions) {
    this.layers = findReluLayers(model);
    if (this.layers.length === 0)
      throw new ActivationProbeError(`model ${model.name} has no ReLU layers to probe`);
    if (!options.run_id) throw new ActivationProbeError("run_id must be a non-empty string");
    this.runId = options.run_id;
    this.rank = options.rank ?? 0;
    if (!Number.isInteger(this.rank) || this.rank < 0)
      throw new ActivationProbeError(`rank must be a non-negative integer, got ${this.rank}`);
    this.everySteps = positiveInt("every_steps", options.every_steps ?? 50);
    this.probeBatch = positiveInt("probe_batch", options.probe_batch ?? 256);
    this.seed = options.seed ?? 0;
    this.clock = options.clock ?? Date.now;
    this.sums = options.sums ?? true;
    this.sink = options.sink;
    this.pool = options.pool;
    this.incarnation = options.incarnation ?? PROCESS_START_MS;
    if (!Number.isSafeInteger(this.incarnation) || this.incarnation < 0)
      throw new ActivationProbeError(`incarnation must be a non-negative integer, got ${this.incarnation}`);
    this.log = options.logger;
    const byName = new Map(model.layers.map((l) => [l.name, l]));
    this.probeModel = tf.model({
      inputs: model.inputs,
      outputs: this.layers.map((l) => byName.get(l.name)!.output as tf.SymbolicTensor),
      name: `${model.name}_relu_probe`,
    });
  }

  stats(): ActivationProbeStats {
    return { ...this.counters };
  }

  shouldProbe(step: number): boolean {
    return step % this.everySteps === 0;
  }

  /** Probes and publishes when `step` is a probe step; returns whether it did. For custom training loops. */
  async maybeProbe(step: number, inputs?: tf.Tensor | tf.Tensor[]): Promise<boolean> {
    if (!this.shouldProbe(step)) return false;
    await this.probe(step, inputs);
    return true;
  }

  /**
   * Probes now, publishes one snapshot per ReLU layer, and returns them. Each
   * further probe of the same step (gradient accumulation, an eval pass) is the
   * step's next micro_batch: 0, 1, 2, ...; its evidence adds to the others'.
   */
  async probe(step: number, inputs?: tf.Tensor | tf.Tensor[]): Promise<ActivationSnapshot[]> {
    if (!Number.isInteger(step) || step < 0)
      throw new ActivationProbeError(`step must be a non-negative integer, got ${step}`);
    const source = inputs ?? this.pool;
    if (source === undefined) throw new ActivationProbeError("no inputs given and the probe has no pool");
    const xs = Array.isArray(source) ? source : [source];
    const n = xs[0]!.shape[0]!;
    if (xs.some((x) => x.shape[0] !== n))
      throw new ActivationProbeError("the model inputs disagree on the batch size");
    const take = Math.min(n, this.probeBatch);
    const indices =
      n <= this.probeBatch ? null : sampleIndices(n, take, seededRandom(mixSeed(this.seed, this.rank, step)));

    const rows = tf.tidy((): tf.Tensor[] => {
      const batch = indices ? xs.map((x) => tf.gather(x, tf.tensor1d(indices, "int32"))) : xs;
      const out = this.probeModel.predictOnBatch(batch.length === 1 ? batch[0]! : batch);
      return (Array.isArray(out) ? out : [out]).map((a, i) => {
        const layer = this.layers[i]!;
        // Units on the last axis, every example × position one row: a conv channel is one unit.
        const last = layer.unitAxis === a.rank - 1 ? a : moveAxisLast(a, layer.unitAxis);
        return last.reshape([-1, layer.units]);
      });
    });
    let reduced: Reduced;
    try {
      reduced = await this.reduce(rows, false);
      // A NaN or ±Inf activation makes its unit's |a| sum non-finite: only then is the
      // masked reduction needed (it adds work on every value).
      if (!reduced.sums.every(Number.isFinite)) reduced = await this.reduce(rows, true);
    } finally {
      tf.dispose(rows);
    }
    const { fires: firesAll, nonfinite: nonfiniteAll } = reduced;
    const sumsAll = this.sums ? reduced.sums : null;
    if (step === this.lastStep) this.microBatches++;
    else {
      this.lastStep = step;
      this.microBatches = 0;
    }

    const time = this.clock();
    const snapshots: ActivationSnapshot[] = [];
    let offset = 0;
    for (const layer of this.layers) {
      const u = layer.units;
      const bad = nonfiniteAll ? Uint32Array.from(nonfiniteAll.subarray(offset, offset + u)) : null;
      const badValues = bad ? bad.reduce((a, b) => a + b, 0) : 0;
      this.counters.nonfinite_values += badValues;
      snapshots.push({
        run_id: this.runId,
        layer: layer.name,
        rank: this.rank,
        step,
        time,
        unit_offset: 0,
        unit_count: u,
        layer_units: u,
        samples: take * layer.positionsPerExample,
        stats: {
          kind: "counts",
          fires: Uint32Array.from(firesAll.subarray(offset, offset + u)),
          abs_sum: sumsAll ? sumsAll.slice(2 * offset, 2 * offset + u) : null,
          sq_sum: sumsAll ? sumsAll.slice(2 * offset + u, 2 * offset + 2 * u) : null,
          nonfinite: badValues > 0 ? bad : null,
        },
        micro_batch: this.microBatches,
        incarnation: this.incarnation,
      });
      offset += u;
    }
    this.counters.probes++;
    for (const s of snapshots) await this.publish(s);
    return snapshots;
  }

  /**
   * Per-unit fires and sums of every layer's rows. With `sums` on, `sums` holds
   * [abs, sq] per layer; with it off, the plain reduction still sums each unit's
   * values (only to reveal non-finite ones) and the careful one sums nothing.
   * `careful` counts only finite values > 0 as fires, leaves NaN and ±Inf out of
   * the sums and counts them in `nonfinite`.
   */
  private async reduce(rows: tf.Tensor[], careful: boolean): Promise<Reduced> {
    const [firesT, sumsT, nonfiniteT] = tf.tidy((): tf.Tensor[] => {
      const fires: tf.Tensor[] = [];
      const sums: tf.Tensor[] = [];
      const nonfinite: tf.Tensor[] = [];
      for (const r of rows) {
        if (!careful) {
          fires.push(r.greater(0).sum(0));
          // Without sums to send, a plain sum is enough to reveal a NaN or ±Inf.
          if (this.sums) sums.push(r.abs().sum(0), r.square().sum(0));
          else sums.push(r.sum(0));
          continue;
        }
        // +Inf > 0 would fire and one NaN would poison a sum: only finite values are evidence.
        const finite = r.isFinite();
        const clean = tf.where(finite, r, tf.zerosLike(r));
        fires.push(clean.greater(0).sum(0));
        if (this.sums) sums.push(clean.abs().sum(0), clean.square().sum(0));
        nonfinite.push(finite.logicalNot().sum(0));
      }
      const summed = sums.length > 0 ? tf.concat(sums) : tf.zeros([0]);
      return careful ? [tf.concat(fires), summed, tf.concat(nonfinite)] : [tf.concat(fires), summed];
    });
    try {
      return {
        fires: (await firesT!.data()) as Int32Array,
        sums: (await sumsT!.data()) as Float32Array,
        nonfinite: nonfiniteT ? ((await nonfiniteT.data()) as Int32Array) : null,
      };
    } finally {
      tf.dispose([firesT!, sumsT!, ...(nonfiniteT ? [nonfiniteT] : [])]);
    }
  }

  /** Hands one snapshot to the sink; a contract violation is counted and logged once, never thrown. */
  private async publish(s: ActivationSnapshot): Promise<void> {
    try {
      await this.sink.publish(s);
      this.counters.published++;
    } catch (err) {
      if (!(err instanceof CodecError)) throw err;
      if (this.counters.rejected++ === 0) {
        (this.log ?? createLogger("probe")).warn(
          { event: "snapshot_refused", layer: s.layer, step: s.step, reason: err.reason, err: err.message },
          "a probe snapshot was refused by its sink; training continues, further refusals are only counted (ActivationProbe.stats().rejected)",
        );
      }
    }
  }
}

interface Reduced {
  fires: Int32Array;
  /** Per layer: unit-many sums of |a|, then of a² (or, without sums, of a, or nothing). */
  sums: Float32Array;
  /** Per unit, NaN and ±Inf values; null from the plain reduction, which does not count them. */
  nonfinite: Int32Array | null;
}

function moveAxisLast(a: tf.Tensor, axis: number): tf.Tensor {
  const perm = [...Array(a.rank).keys()].filter((d) => d !== axis);
  perm.push(axis);
  return a.transpose(perm);
}

/** A model.fit callback that counts batches as steps and probes from the probe's pool (step 0 before training). */
export class ProbeCallback extends tf.Callback {
  step = 0;
  private started = false;

  constructor(
    private readonly probe: ActivationProbe,
    startStep = 0,
  ) {
    super();
    if (!probe.pool)
      throw new ActivationProbeError("probeCallback needs a probe created with a pool of inputs");
    this.step = startStep;
  }

  override async onTrainBegin(): Promise<void> {
    if (this.started) return;
    this.started = true;
    await this.probe.maybeProbe(this.step);
  }

  override async onBatchEnd(): Promise<void> {
    this.step += 1;
    await this.probe.maybeProbe(this.step);
  }
}

export function probeCallback(probe: ActivationProbe, startStep = 0): ProbeCallback {
  return new ProbeCallback(probe, startStep);
}
