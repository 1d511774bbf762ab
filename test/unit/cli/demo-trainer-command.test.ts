import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { cliSync as cli } from "../../support/child.js";

test("reluwatch demo-trainer writes JSON-lines snapshots and the ground truth", () => {
  const dir = mkdtempSync(join(tmpdir(), "reluwatch-demo-"));
  try {
    const out = join(dir, "snaps.jsonl");
    const truthOut = join(dir, "truth.json");
    const r = cli([
      "demo-trainer",
      ...["--layers", "2", "--units", "16", "--steps", "40", "--every-steps", "20", "--probe-batch", "64"],
      ...["--negative-bias-init", "0.25", "--dataset-size", "512", "--run-id", "cli-run", "--seed", "3"],
      ...["--lr-spike-step", "none"],
      ...["--out", out, "--truth-out", truthOut],
    ]);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stderr, /^tfjs backend: /m);
    assert.match(r.stderr, /demo-trainer: 40 steps on 1 rank\(s\), 6 snapshots/);
    const snaps = readFileSync(out, "utf8")
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l));
    assert.deepEqual(
      snaps.map((s) => `${s.step}:${s.layer}`),
      ["0:dense_0", "0:dense_1", "20:dense_0", "20:dense_1", "40:dense_0", "40:dense_1"],
    );
    assert.ok(snaps.every((s) => s.run_id === "cli-run" && s.samples === 64 && s.stats.fires.length === 16));
    // A healthy run: every value finite, the one probe per step is micro-batch 0, one incarnation.
    assert.ok(snaps.every((s) => s.stats.nonfinite === null && s.micro_batch === 0));
    assert.equal(new Set(snaps.map((s) => s.incarnation)).size, 1);
    const truth = JSON.parse(readFileSync(truthOut, "utf8"));
    assert.deepEqual(Object.keys(truth.dead), ["dense_0", "dense_1"]);
    for (const layer of ["dense_0", "dense_1"]) {
      assert.equal(truth.born_dead[layer].length, 4);
      for (const u of truth.born_dead[layer]) assert.ok(truth.dead[layer].includes(u));
      // A truly dead unit cannot have fired on the last probe's sample of the same data.
      const last = snaps.find((s) => s.step === 40 && s.layer === layer);
      for (const u of truth.dead[layer]) assert.equal(last.stats.fires[u], 0);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("the ranks of one demo-trainer run, each its own process, send one incarnation", () => {
  const dir = mkdtempSync(join(tmpdir(), "reluwatch-demo-"));
  try {
    const out = join(dir, "snaps.jsonl");
    const r = cli([
      "demo-trainer",
      ...["--layers", "1", "--units", "8", "--steps", "10", "--every-steps", "5", "--probe-batch", "16"],
      ...["--ranks", "2", "--dataset-size", "128", "--lr-spike-step", "none", "--out", out],
    ]);
    assert.equal(r.status, 0, r.stderr);
    const snaps = readFileSync(out, "utf8")
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l));
    assert.deepEqual([...new Set(snaps.map((s) => s.rank))].sort(), [0, 1]);
    const incarnations = new Set(snaps.map((s) => s.incarnation));
    assert.equal(incarnations.size, 1, `one job, one incarnation: ${[...incarnations]}`);
    const [incarnation] = incarnations;
    assert.ok(incarnation > Date.UTC(2020, 0, 1) && incarnation <= Date.now(), "a start time in ms");
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("bad demo-trainer flags exit non-zero with a clear message", () => {
  const r = cli(["demo-trainer", "--units", "many"]);
  assert.notEqual(r.status, 0);
  assert.match(r.stderr, /expected an integer, got "many"/);
  const s = cli(["demo-trainer", "--negative-bias-init", "2"]);
  assert.notEqual(s.status, 0);
  assert.match(s.stderr, /share in \[0, 1\]/);
  const t = cli(["demo-trainer", "--ranks", "0"]);
  assert.equal(t.status, 1);
  assert.match(t.stderr, /error: TrainerOptionsError: ranks must be an integer >= 1, got 0/);
});
