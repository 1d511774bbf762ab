/**
 * The fast part of `make eval`: two small seeded fleets through a container
 * file and replayFiles (what `reluwatch replay` runs), scored against their
 * truth and held to the same targets, so a regression in detection quality
 * fails `make test`. The full table is docs/evaluation.md.
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { replayFiles } from "../../../src/cli/replay-command.js";
import { writeSnapshotContainer } from "../../../src/codec/index.js";
import { Detector, type UnitTransition } from "../../../src/core/index.js";
import { scoreScenario } from "../../../src/eval/score.js";
import { fleetTruth, generateFleet, resolveScenario, type Scenario } from "../../../src/sim/index.js";

let dir: string;
before(() => {
  dir = mkdtempSync(join(tmpdir(), "reluwatch-quality-"));
});
after(() => rmSync(dir, { recursive: true, force: true }));

async function score(scenario: Scenario) {
  const file = join(dir, `${scenario.name}-${scenario.seed}.avro`);
  await writeSnapshotContainer(file, generateFleet(scenario));
  const detector = new Detector();
  const events: UnitTransition[] = [];
  await replayFiles([file], detector, (t) => events.push(t));
  return scoreScenario(fleetTruth(scenario), events, detector.config);
}

test("deaths mid-bucket, born-dead and sparse units, a revival and a stale rank meet every target", async (t) => {
  const s = await score(
    resolveScenario("revival", {
      seed: 11,
      units: 256,
      steps: 3000,
      born_dead: 0.03,
      // Half the living units fire on 0.2-0.5 % of inputs: alive, sparse, and many of those
      // that revive sit at 3-5 × dead_rate, where a slow revival shows as a false positive.
      rates: { active: [0.05, 0.6], silent_fraction: 0.5, silent: [2e-3, 5e-3] },
      deaths: [
        { layer: 1, fraction: 0.25, step: 530 },
        { layer: 2, fraction: 0.1, step: 1260 },
      ],
      // Dead for 1870 steps, then 550 steps to come back: time enough only if the wait to
      // revive does not grow with the time spent dead.
      revivals: [{ layer: 1, fraction: 0.5, step: 2400 }],
      stale_ranks: [{ rank: 3, after_step: 2000 }],
    }),
  );
  t.diagnostic(JSON.stringify(s));
  assert.deepEqual(s.failures, []);
  // Not vacuous: there were deaths to find, revived units to let go, and lively units to spare.
  assert.ok(s.truly_dead > 60 && s.deaths > 100, `${s.truly_dead} truly dead, ${s.deaths} deaths`);
  assert.ok(s.lively_units > 500, `${s.lively_units} lively units`);
  assert.equal(s.recall, 1);
});

test("tensor-parallel shards with raw activations meet every target", async (t) => {
  const s = await score(
    resolveScenario("tensor-parallel", {
      seed: 3,
      runs: 1,
      layers: 2,
      units: 96,
      samples: 256,
      payload: "raw",
      born_dead: 0.05,
      deaths: [{ layer: 0, fraction: 0.25, step: 1000 }],
    }),
  );
  t.diagnostic(JSON.stringify(s));
  assert.deepEqual(s.failures, []);
  assert.ok(s.truly_dead > 25 && s.deaths > 25, `${s.truly_dead} truly dead, ${s.deaths} deaths`);
  assert.equal(s.recall, 1);
});

test("real traffic: micro-batches, a crash and resume, NaN units and NaN sums meet every target", async (t) => {
  const s = await score(
    resolveScenario("crash-resume", {
      seed: 5,
      units: 128,
      samples: 256,
      micro_batches: 2,
      sums: true,
      nan_sum_rate: 0.3,
      nan_units: [{ layer: 2, fraction: 0.1, step: 700 }],
    }),
  );
  t.diagnostic(JSON.stringify(s));
  assert.deepEqual(s.failures, []);
  // Not vacuous: the replaced timeline had deaths to undo, the new one deaths to find, and NaN units.
  assert.ok(s.deaths > 15 && s.truly_dead > 15, `${s.truly_dead} truly dead, ${s.deaths} deaths`);
  assert.ok(s.nan_units >= 12, `${s.nan_units} NaN units`);
  assert.equal(s.replaced_dead_at_end, 0);
  assert.equal(s.nan_dead, 0);
  assert.equal(s.recall, 1);
});
