import assert from "node:assert/strict";
import { before, test } from "node:test";
import * as tf from "@tensorflow/tfjs";
import { pino } from "pino";
import { CodecError, decodeSnapshot, encodeSnapshot } from "../../../src/codec/index.js";
import type { ActivationSnapshot, FiringCounts } from "../../../src/core/snapshot.js";
import {
  ActivationProbe,
  ActivationProbeError,
  findReluLayers,
  PROCESS_START_MS,
  probeCallback,
} from "../../../src/publisher/activation-probe.js";
import { MemorySnapshotSink, type SnapshotSink } from "../../../src/publisher/probe.js";
import { seededRandom } from "../../../src/publisher/seeded-random.js";
import { loadTf } from "../../../src/publisher/tf-backend.js";

before(async () => {
  await loadTf();
});

/** conv relu → dense relu → tanh → linear + ReLU layer → linear + Activation('relu') → LeakyReLU → sigmoid. */
function mixedModel(seed = 1): tf.LayersModel {
  const init = (s: number) => tf.initializers.randomNormal({ mean: 0, stddev: 0.5, seed: seed * 100 + s });
  const input = tf.input({ shape: [6, 6, 2], name: "x" });
  let h = tf.layers
    .conv2d({ name: "c1", filters: 4, kernelSize: 3, activation: "relu", kernelInitializer: init(1) })
    .apply(input) as tf.SymbolicTensor;
  h = tf.layers.flatten({ name: "flat" }).apply(h) as tf.SymbolicTensor;
  h = tf.layers
    .dense({ name: "d1", units: 5, activation: "relu", kernelInitializer: init(2) })
    .apply(h) as tf.SymbolicTensor;
  h = tf.layers
    .dense({ name: "d2", units: 3, activation: "tanh", kernelInitializer: init(3) })
    .apply(h) as tf.SymbolicTensor;
  h = tf.layers.dense({ name: "lin", units: 4, kernelInitializer: init(4) }).apply(h) as tf.SymbolicTensor;
  h = tf.layers.reLU({ name: "r1" }).apply(h) as tf.SymbolicTensor;
  // Born dead: a bias of -100 keeps every pre-activation negative.
  h = tf.layers
    .dense({
      name: "lin2",
      units: 3,
      kernelInitializer: init(5),
      biasInitializer: tf.initializers.constant({ value: -100 }),
    })
    .apply(h) as tf.SymbolicTensor;
  h = tf.layers.activation({ name: "a1", activation: "relu" }).apply(h) as tf.SymbolicTensor;
  h = tf.layers.leakyReLU({ name: "leaky" }).apply(h) as tf.SymbolicTensor;
  const out = tf.layers.dense({ name: "out", units: 2, activation: "sigmoid" }).apply(h) as tf.SymbolicTensor;
  return tf.model({ inputs: input, outputs: out });
}

function inputs(n: number, seed: number): tf.Tensor {
  const rnd = seededRandom(seed);
  return tf.tensor4d(
    Float32Array.from({ length: n * 72 }, () => rnd() * 2 - 1),
    [n, 6, 6, 2],
  );
}

function counts(s: { stats: unknown }): FiringCounts {
  const stats = s.stats as FiringCounts;
  assert.equal(stats.kind, "counts");
  return stats;
}

test("finds Dense/Conv relu layers, ReLU and Activation('relu'); ignores tanh, linear, LeakyReLU, sigmoid", () => {
  const model = mixedModel();
  const layers = findReluLayers(model);
  assert.deepEqual(
    layers.map((l) => [l.name, l.className, l.units, l.positionsPerExample]),
    [
      ["c1", "Conv2D", 4, 16],
      ["d1", "Dense", 5, 1],
      ["r1", "ReLU", 4, 1],
      ["a1", "Activation", 3, 1],
    ],
  );
});

test("a Sequential MLP's relu layers are found", () => {
  const model = tf.sequential({
    layers: [
      tf.layers.dense({ inputShape: [3], units: 8, activation: "relu", name: "h0" }),
      tf.layers.dense({ units: 8, activation: "relu", name: "h1" }),
      tf.layers.dense({ units: 2, activation: "softmax", name: "o" }),
    ],
  });
  assert.deepEqual(
    findReluLayers(model).map((l) => l.name),
    ["h0", "h1"],
  );
});

test("counts equal a direct JS computation on the same inputs; conv channels are units, positions are samples", async () => {
  const model = mixedModel();
  const x = inputs(20, 7);
  const sink = new MemorySnapshotSink();
  const probe = new ActivationProbe(model, {
    sink,
    run_id: "run-a",
    rank: 3,
    probe_batch: 64,
    clock: () => 1_700_000_000_123,
  });
  const snaps = await probe.probe(100, x);
  assert.deepEqual(sink.snapshots, snaps);

  const reference = tf.model({
    inputs: model.inputs,
    outputs: ["c1", "d1", "r1", "a1"].map((n) => model.getLayer(n).output as tf.SymbolicTensor),
  });
  const outs = reference.predict(x) as tf.Tensor[];
  for (const [i, out] of outs.entries()) {
    const units = out.shape.at(-1)!;
    const values = out.dataSync();
    const rows = values.length / units;
    const fires = new Uint32Array(units);
    const abs = new Float64Array(units);
    const sq = new Float64Array(units);
    for (let r = 0; r < rows; r++)
      for (let u = 0; u < units; u++) {
        const v = values[r * units + u]!;
        if (v > 0) fires[u]! += 1;
        abs[u]! += Math.abs(v);
        sq[u]! += v * v;
      }
    const s = snaps[i]!;
    assert.equal(s.run_id, "run-a");
    assert.equal(s.rank, 3);
    assert.equal(s.step, 100);
    assert.equal(s.time, 1_700_000_000_123);
    assert.equal(s.unit_offset, 0);
    assert.equal(s.unit_count, units);
    assert.equal(s.layer_units, units);
    assert.equal(s.samples, rows, `${s.layer}: samples = examples × positions`);
    const st = counts(s);
    assert.deepEqual(Array.from(st.fires), Array.from(fires), `${s.layer} fires`);
    for (let u = 0; u < units; u++) {
      assert.ok(Math.abs(st.abs_sum![u]! - abs[u]!) <= 1e-4 * (1 + abs[u]!), `${s.layer} abs_sum[${u}]`);
      assert.ok(Math.abs(st.sq_sum![u]! - sq[u]!) <= 1e-4 * (1 + sq[u]!), `${s.layer} sq_sum[${u}]`);
    }
  }
  tf.dispose([...outs, x]);

  const [c1, d1, , a1] = snaps;
  assert.equal(c1!.samples, 20 * 16);
  assert.ok(
    counts(c1!).fires.some((f) => f > 0 && f < 320),
    "some conv channel fires on part of the positions",
  );
  assert.ok(counts(d1!).fires.some((f) => f > 0));
  assert.deepEqual(Array.from(counts(a1!).fires), [0, 0, 0], "the -100 bias units never fire");
});

test("a channelsFirst conv layer keeps its channels as units", async () => {
  const input = tf.input({ shape: [3, 5, 5] });
  const conv = tf.layers.conv2d({
    name: "cf",
    filters: 6,
    kernelSize: 2,
    dataFormat: "channelsFirst",
    activation: "relu",
  });
  const model = tf.model({ inputs: input, outputs: conv.apply(input) as tf.SymbolicTensor });
  // A zero kernel leaves the bias as the activation: odd channels fire everywhere, even ones never.
  conv.setWeights([tf.zeros([2, 2, 3, 6]), tf.tensor1d([-1, 1, -1, 1, -1, 1])]);
  const [layer] = findReluLayers(model);
  assert.deepEqual([layer!.units, layer!.positionsPerExample, layer!.unitAxis], [6, 16, 1]);
  const x = tf.ones([4, 3, 5, 5]);
  const [snap] = await new ActivationProbe(model, { sink: new MemorySnapshotSink(), run_id: "cf" }).probe(
    0,
    x,
  );
  assert.equal(snap!.samples, 4 * 16);
  assert.deepEqual(Array.from(counts(snap!).fires), [0, 64, 0, 64, 0, 64]);
  assert.deepEqual(Array.from(counts(snap!).abs_sum!), [0, 64, 0, 64, 0, 64]);
  x.dispose();
});

test("sub-batches are seeded: same seed, rank and step give the same snapshot; samples count the sub-batch", async () => {
  const x = inputs(200, 11);
  const run = async (seed: number, step: number) => {
    const probe = new ActivationProbe(mixedModel(), {
      sink: new MemorySnapshotSink(),
      run_id: "r",
      probe_batch: 16,
      seed,
      sums: false,
      clock: () => 0,
    });
    return probe.probe(step, x);
  };
  const a = await run(5, 50);
  const b = await run(5, 50);
  const c = await run(5, 100);
  assert.deepEqual(a, b);
  assert.equal(a[0]!.samples, 16 * 16);
  assert.equal(a[1]!.samples, 16);
  assert.equal(counts(a[0]!).abs_sum, null);
  assert.notDeepEqual(
    a.map((s) => Array.from(counts(s).fires)),
    c.map((s) => Array.from(counts(s).fires)),
    "another step draws another sub-batch",
  );
  x.dispose();
});

test("no tensor is left behind over many probes", async () => {
  const model = mixedModel();
  const x = inputs(100, 3);
  const sink = new MemorySnapshotSink();
  const probe = new ActivationProbe(model, { sink, run_id: "m", probe_batch: 32, every_steps: 1 });
  await probe.probe(0, x);
  const baseline = tf.memory().numTensors;
  for (let step = 1; step <= 60; step++) await probe.maybeProbe(step, x);
  assert.equal(tf.memory().numTensors, baseline);
  assert.equal(sink.snapshots.length, 61 * 4);
  x.dispose();
});

test("maybeProbe probes only on multiples of every_steps", async () => {
  const sink = new MemorySnapshotSink();
  const x = inputs(8, 1);
  const probe = new ActivationProbe(mixedModel(), { sink, run_id: "e", every_steps: 50 });
  const did: number[] = [];
  for (let step = 0; step <= 120; step++) if (await probe.maybeProbe(step, x)) did.push(step);
  assert.deepEqual(did, [0, 50, 100]);
  assert.deepEqual([...new Set(sink.snapshots.map((s) => s.step))], [0, 50, 100]);
  x.dispose();
});

test("bad options and bad input are typed errors", async () => {
  const noRelu = tf.sequential({
    layers: [tf.layers.dense({ inputShape: [2], units: 2, activation: "tanh" })],
  });
  const sink = new MemorySnapshotSink();
  assert.throws(() => new ActivationProbe(noRelu, { sink, run_id: "r" }), ActivationProbeError);
  assert.throws(
    () => new ActivationProbe(mixedModel(), { sink, run_id: "r", every_steps: 0 }),
    /every_steps/,
  );
  assert.throws(() => new ActivationProbe(mixedModel(), { sink, run_id: "" }), /run_id/);
  const probe = new ActivationProbe(mixedModel(), { sink, run_id: "r" });
  await assert.rejects(() => probe.probe(0), /no inputs/);
  await assert.rejects(() => probe.probe(-1, inputs(2, 1)), /step/);
  assert.throws(() => probeCallback(probe), /pool/);
});

test("the callback counts batches as steps in model.fit and probes from its pool", async () => {
  const model = tf.sequential({
    layers: [
      tf.layers.dense({ inputShape: [2], units: 6, activation: "relu", name: "h0" }),
      tf.layers.dense({ units: 6, activation: "relu", name: "h1" }),
      tf.layers.dense({ units: 1, name: "o" }),
    ],
  });
  model.compile({ optimizer: tf.train.sgd(0.01), loss: "meanSquaredError" });
  const rnd = seededRandom(4);
  const x = tf.tensor2d(
    Float32Array.from({ length: 128 }, () => rnd() - 0.5),
    [64, 2],
  );
  const y = x.sum(1, true);
  const sink = new MemorySnapshotSink();
  const probe = new ActivationProbe(model, { sink, run_id: "fit", every_steps: 5, probe_batch: 16, pool: x });
  const cb = probeCallback(probe);
  // 64 examples / batch 8 = 8 batches per epoch, 2 epochs = 16 steps: probes at 0, 5, 10, 15.
  await model.fit(x, y, { batchSize: 8, epochs: 2, shuffle: false, verbose: 0, callbacks: [cb] });
  assert.equal(cb.step, 16);
  assert.deepEqual(
    sink.snapshots.map((s) => `${s.step}:${s.layer}`),
    ["0:h0", "0:h1", "5:h0", "5:h1", "10:h0", "10:h1", "15:h0", "15:h1"],
  );
  assert.ok(sink.snapshots.every((s) => s.samples === 16 && s.layer_units === 6));
  tf.dispose([x, y]);
});

test("repeated probes of one step are its micro-batches 0, 1, 2; a new step starts again at 0", async () => {
  const x = inputs(8, 2);
  const sink = new MemorySnapshotSink();
  const probe = new ActivationProbe(mixedModel(), { sink, run_id: "mb", every_steps: 1 });
  for (const step of [10, 10, 10, 11, 12, 12]) await probe.probe(step, x);
  const layers = probe.layers.length;
  assert.deepEqual(
    sink.snapshots.filter((_, i) => i % layers === 0).map((s) => `${s.step}/${s.micro_batch}`),
    ["10/0", "10/1", "10/2", "11/0", "12/0", "12/1"],
  );
  assert.ok(sink.snapshots.every((s, i) => s.micro_batch === sink.snapshots[i - (i % layers)]!.micro_batch));
  x.dispose();
});

test("incarnation: the process start time unless given, the same for every probe of the process", async () => {
  const x = inputs(4, 2);
  const sink = new MemorySnapshotSink();
  const a = new ActivationProbe(mixedModel(), { sink, run_id: "inc" });
  const b = new ActivationProbe(mixedModel(), { sink, run_id: "inc", incarnation: 1_800_000_000_000 });
  assert.equal(a.incarnation, PROCESS_START_MS);
  assert.ok(PROCESS_START_MS <= Date.now() && PROCESS_START_MS > Date.UTC(2020, 0, 1));
  const [sa] = await a.probe(0, x);
  const [sb] = await b.probe(0, x);
  assert.equal(sa!.incarnation, PROCESS_START_MS);
  assert.equal(sb!.incarnation, 1_800_000_000_000);
  assert.throws(
    () => new ActivationProbe(mixedModel(), { sink, run_id: "inc", incarnation: -1 }),
    ActivationProbeError,
  );
  assert.throws(
    () => new ActivationProbe(mixedModel(), { sink, run_id: "inc", incarnation: 1.5 }),
    /incarnation/,
  );
  x.dispose();
});

/**
 * A ReLU layer of 4 units over a linear one: unit 0 outputs NaN, unit 1 +Inf, units 2 and 3
 * the bias 1 and -1. (A separate ReLU: wasm's fused Dense+relu kernel turns NaN into 0.)
 */
function nanModel(): tf.Sequential {
  const model = tf.sequential({
    layers: [
      tf.layers.dense({ inputShape: [2], units: 4, name: "lin" }),
      tf.layers.reLU({ name: "h0" }),
      tf.layers.dense({ units: 1, name: "o" }),
    ],
  });
  model
    .getLayer("lin")
    .setWeights([tf.zeros([2, 4]), tf.tensor1d([Number.NaN, Number.POSITIVE_INFINITY, 1, -1])]);
  return model;
}

test("NaN and ±Inf activations are counted as nonfinite per unit, never as fires, and kept out of the sums", async () => {
  const x = tf.ones([6, 2]);
  const probe = new ActivationProbe(nanModel(), { sink: new MemorySnapshotSink(), run_id: "nan" });
  const [snap] = await probe.probe(0, x);
  const st = counts(snap!);
  assert.equal(snap!.samples, 6);
  assert.deepEqual(Array.from(st.fires), [0, 0, 6, 0]);
  assert.deepEqual(Array.from(st.nonfinite!), [6, 6, 0, 0]);
  assert.deepEqual(Array.from(st.abs_sum!), [0, 0, 6, 0]);
  assert.deepEqual(Array.from(st.sq_sum!), [0, 0, 6, 0]);
  assert.deepEqual(probe.stats(), { probes: 1, published: 1, nonfinite_values: 12, rejected: 0 });
  // The wire carries it: a valid snapshot, not a contract violation.
  assert.ok(encodeSnapshot(snap!).length > 0);

  // Without sums the non-finite values are found and counted all the same.
  const [bare] = await new ActivationProbe(nanModel(), {
    sink: new MemorySnapshotSink(),
    run_id: "nan",
    sums: false,
  }).probe(0, x);
  assert.deepEqual(Array.from(counts(bare!).fires), [0, 0, 6, 0]);
  assert.deepEqual(Array.from(counts(bare!).nonfinite!), [6, 6, 0, 0]);
  assert.equal(counts(bare!).abs_sum, null);

  // Finite activations whose squares overflow float32: no value was non-finite, the sum is.
  const huge = nanModel();
  huge.getLayer("lin").setWeights([tf.zeros([2, 4]), tf.tensor1d([1e30, 1, 1, 1])]);
  const [big] = await new ActivationProbe(huge, { sink: new MemorySnapshotSink(), run_id: "big" }).probe(
    0,
    x,
  );
  assert.equal(counts(big!).nonfinite, null);
  assert.deepEqual(Array.from(counts(big!).fires), [6, 6, 6, 6]);
  assert.equal(counts(big!).sq_sum![0], Number.POSITIVE_INFINITY);

  const finite = new ActivationProbe(mixedModel(), { sink: new MemorySnapshotSink(), run_id: "ok" });
  const snaps = await finite.probe(0, inputs(4, 1));
  assert.ok(
    snaps.every((s) => counts(s).nonfinite === null),
    "all finite: nonfinite is null",
  );
  x.dispose();
});

/** A sink that validates like the Kafka publisher and keeps the encoded messages. */
class EncodingSink implements SnapshotSink {
  readonly messages: Buffer[] = [];
  async publish(snapshot: ActivationSnapshot): Promise<void> {
    this.messages.push(encodeSnapshot(snapshot));
  }
}

test("a model that produces NaN activations inside model.fit trains on: every probe is published with its nonfinite counts", async () => {
  const model = nanModel();
  model.compile({ optimizer: tf.train.sgd(0.01), loss: "meanSquaredError" });
  const rnd = seededRandom(9);
  const x = tf.tensor2d(
    Float32Array.from({ length: 64 }, () => rnd() - 0.5),
    [32, 2],
  );
  const y = x.sum(1, true);
  const sink = new EncodingSink();
  const probe = new ActivationProbe(model, {
    sink,
    run_id: "diverged",
    every_steps: 2,
    probe_batch: 8,
    pool: x,
  });
  const cb = probeCallback(probe);
  // 32 / 8 = 4 batches per epoch, 3 epochs: 12 steps, probes at 0, 2, ..., 12. The NaN unit makes
  // the loss NaN, so after the first update every weight and every activation is NaN.
  const history = await model.fit(x, y, {
    batchSize: 8,
    epochs: 3,
    shuffle: false,
    verbose: 0,
    callbacks: [cb],
  });
  assert.equal(cb.step, 12, "training ran every batch");
  assert.equal(history.epoch.length, 3);
  assert.ok(Number.isNaN(history.history.loss!.at(-1) as number), "the model did diverge");
  assert.equal(sink.messages.length, 7);
  const decoded = sink.messages.map((m) => decodeSnapshot(m));
  assert.deepEqual(
    decoded.map((s) => s.step),
    [0, 2, 4, 6, 8, 10, 12],
  );
  const last = counts(decoded.at(-1)!);
  assert.deepEqual(Array.from(last.fires), [0, 0, 0, 0], "NaN is no fire");
  assert.deepEqual(Array.from(last.nonfinite!), [8, 8, 8, 8], "every sample of every unit was NaN");
  assert.deepEqual(
    Array.from(counts(decoded[0]!).nonfinite!.subarray(0, 2)),
    [8, 8],
    "NaN and +Inf from the start",
  );
  assert.ok(decoded.every((s) => s.micro_batch === 0 && s.incarnation === PROCESS_START_MS));
  const stats = probe.stats();
  assert.equal(stats.rejected, 0);
  assert.equal(stats.published, 7);
  assert.ok(stats.nonfinite_values >= 6 * 8 * 4, `${stats.nonfinite_values} non-finite values counted`);
  tf.dispose([x, y]);
});

test("a snapshot the sink refuses as a contract violation is counted and logged once; model.fit goes on", async () => {
  const model = nanModel();
  model.compile({ optimizer: tf.train.sgd(0.01), loss: "meanSquaredError" });
  const x = tf.ones([16, 2]);
  const y = tf.ones([16, 1]);
  const refusing: SnapshotSink = {
    publish: async () => {
      throw new CodecError("BAD_SUM", "unit 0: NaN (sums must be finite and >= 0)", "stats.abs_sum");
    },
  };
  const lines: string[] = [];
  const logger = pino({ level: "warn" }, { write: (line: string) => void lines.push(line) });
  const probe = new ActivationProbe(model, {
    sink: refusing,
    run_id: "refused",
    every_steps: 1,
    pool: x,
    logger,
  });
  const cb = probeCallback(probe);
  await model.fit(x, y, { batchSize: 4, epochs: 2, shuffle: false, verbose: 0, callbacks: [cb] });
  assert.equal(cb.step, 8);
  assert.deepEqual(
    { ...probe.stats(), nonfinite_values: 0 },
    { probes: 9, published: 0, nonfinite_values: 0, rejected: 9 },
  );
  assert.equal(lines.length, 1, "logged once");
  assert.match(lines[0]!, /"reason":"bad_sum"/);

  // Anything else a sink throws is not about numbers and still surfaces.
  const broken = new ActivationProbe(model, {
    sink: { publish: async () => Promise.reject(new Error("publish() on a closed publisher")) },
    run_id: "closed",
    pool: x,
  });
  await assert.rejects(broken.probe(0), /closed publisher/);
  tf.dispose([x, y]);
});
