import assert from "node:assert/strict";
import { before, test } from "node:test";
import * as tf from "@tensorflow/tfjs";
import {
  countUnits,
  type DeadUnits,
  deadUnitsToJson,
  evaluateDeadUnits,
  scoreDeadSet,
} from "../../../src/demo/ground-truth.js";
import { loadTf } from "../../../src/publisher/tf-backend.js";

before(async () => {
  await loadTf();
});

const units = (o: Record<string, number[]>): DeadUnits =>
  new Map(Object.entries(o).map(([k, v]) => [k, new Set(v)]));

test("precision and recall of a predicted dead set, over (layer, unit) pairs", () => {
  const truth = units({ a: [1, 2, 3, 4], b: [0] });
  const s = scoreDeadSet(units({ a: [1, 2, 9], b: [0], c: [] }), truth);
  assert.deepEqual(s, {
    precision: 3 / 4,
    recall: 3 / 5,
    truePositives: 3,
    falsePositives: 1,
    falseNegatives: 2,
  });
  // The same unit index in another layer is another unit.
  assert.equal(scoreDeadSet(units({ b: [1] }), units({ a: [1] })).truePositives, 0);
  assert.deepEqual(scoreDeadSet(truth, truth), {
    precision: 1,
    recall: 1,
    truePositives: 5,
    falsePositives: 0,
    falseNegatives: 0,
  });
  // Nothing predicted claims nothing false; nothing dead misses nothing.
  assert.equal(scoreDeadSet(new Map(), truth).precision, 1);
  assert.equal(scoreDeadSet(new Map(), truth).recall, 0);
  assert.equal(scoreDeadSet(truth, new Map()).recall, 1);
  assert.equal(scoreDeadSet(truth, new Map()).precision, 0);
});

test("dead units are those never > 0 on any row, found across chunks", async () => {
  const input = tf.input({ shape: [1] });
  const dense = tf.layers.dense({ name: "h", units: 4, activation: "relu" });
  const model = tf.model({ inputs: input, outputs: dense.apply(input) as tf.SymbolicTensor });
  // unit 0: x; unit 1: -x; unit 2: always 0; unit 3: x - 9, positive only on the last row.
  dense.setWeights([tf.tensor2d([[1, -1, 0, 1]]), tf.tensor1d([0, 0, 0, -9])]);
  const x = tf.tensor2d([1, 2, 3, 4, 5, 6, 7, 8, 9, 10], [10, 1]);
  const dead = await evaluateDeadUnits(model, x, 3);
  assert.deepEqual(deadUnitsToJson(dead), { h: [1, 2] });
  assert.equal(countUnits(dead), 2);
  const before = tf.memory().numTensors;
  await evaluateDeadUnits(model, x, 4);
  assert.equal(tf.memory().numTensors, before);
  x.dispose();
});
