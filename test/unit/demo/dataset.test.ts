import assert from "node:assert/strict";
import { test } from "node:test";
import { DatasetError, makeDataset, shardIndices, twoSpirals } from "../../../src/demo/dataset.js";

test("datasets replay from their seed and stay in range", () => {
  const a = makeDataset("spirals", 200, 9);
  assert.deepEqual(a, twoSpirals(200, 9));
  assert.notDeepEqual(a.x, twoSpirals(200, 10).x);
  assert.equal(a.y.filter((c) => c === 1).length, 100);
  assert.ok(a.x.every((v) => Math.abs(v) < 1.3));
  const r = makeDataset("regression", 50, 1);
  assert.equal(r.outputDim, 1);
  assert.equal(r.x.length, 100);
  assert.throws(() => makeDataset("spirals", 1, 0), DatasetError);
  assert.throws(() => makeDataset("mnist" as "spirals", 10, 0), /unknown dataset/);
});

test("shards partition the rows: disjoint, complete, balanced", () => {
  const shards = [0, 1, 2].map((r) => shardIndices(100, r, 3, 5));
  const all = shards.flatMap((s) => Array.from(s)).sort((a, b) => a - b);
  assert.deepEqual(
    all,
    Array.from({ length: 100 }, (_, i) => i),
  );
  assert.deepEqual(
    shards.map((s) => s.length),
    [34, 33, 33],
  );
  assert.throws(() => shardIndices(100, 3, 3, 5), /rank must be in/);
});
