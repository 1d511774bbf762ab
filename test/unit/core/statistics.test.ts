/**
 * Fixed-seed statistical checks of the dead verdict at default settings
 * (alpha = dead_rate = 0.001, n_min = 6905, window 1000 steps in 10 buckets).
 * Every step carries 8 samples per unit, so a bucket holds 800 samples and a
 * verdict needs 9 silent buckets: fine-grained enough that units at exactly
 * dead_rate reach the verdict threshold often.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { Detector, samplesNeeded } from "../../../src/core/index.js";
import { binomialSampler, counts, rng } from "./helpers.js";

const SAMPLES = 8;
const WIDTH = 100;

test("units firing at dead_rate get a dead verdict on at most alpha of verdict opportunities", (t) => {
  const units = 2000;
  const steps = 20_000;
  const d = new Detector();
  const alpha = d.config.alpha;
  const draw = binomialSampler(SAMPLES, d.config.dead_rate);
  const next = rng(20240601);
  const state = new Array<string>(units).fill("UNKNOWN");
  let opportunities = 0;
  let verdicts = 0;
  const fires = new Uint32Array(units);
  for (let step = 0; step < steps; step++) {
    for (let i = 0; i < units; i++) fires[i] = draw(next());
    if (step % WIDTH === 0 && step > 0) {
      // A bucket closes with this apply: every known, living unit is one opportunity.
      opportunities += state.filter((s) => s === "ACTIVE" || s === "MOSTLY_SILENT").length;
    }
    const o = d.apply(counts({ step, samples: SAMPLES, fires }), step);
    for (const t of o.transitions) {
      if (t.to === "DEAD" && t.from !== "UNKNOWN") verdicts++;
      state[t.unit] = t.to;
    }
  }
  const share = verdicts / opportunities;
  // Stated tolerance: three binomial standard deviations of a share of alpha.
  const tolerance = 3 * Math.sqrt((alpha * (1 - alpha)) / opportunities);
  t.diagnostic(
    `${verdicts} dead verdicts in ${opportunities} opportunities: share ${share.toExponential(3)}`,
  );
  assert.ok(opportunities > 300_000, `${opportunities} opportunities`);
  assert.ok(share <= alpha + tolerance, `false-dead share ${share} > ${alpha} + ${tolerance}`);
  // The rule is not vacuous: at this granularity units at dead_rate do reach it sometimes.
  assert.ok(verdicts > 0, "some verdicts at exactly dead_rate");
});

test("units at 3 × dead_rate get no dead verdict over a long run; dead units are found within n_min samples and a bucket", (t) => {
  const living = 1000;
  const dying = 100;
  const steps = 60_000;
  const deathStep = 30_000;
  const d = new Detector();
  const draw = binomialSampler(SAMPLES, 3 * d.config.dead_rate);
  const next = rng(7);
  const fires = new Uint32Array(living + dying);
  const deadAt = new Map<number, number>();
  let falseDead = 0;
  for (let step = 0; step < steps; step++) {
    for (let i = 0; i < fires.length; i++) fires[i] = i < living || step < deathStep ? draw(next()) : 0;
    for (const t of d.apply(counts({ step, samples: SAMPLES, fires }), step).transitions) {
      if (t.to !== "DEAD") continue;
      if (t.unit < living) falseDead++;
      else if (!deadAt.has(t.unit)) deadAt.set(t.unit, t.step);
    }
  }
  assert.equal(falseDead, 0);
  assert.equal(deadAt.size, dying, "every dying unit got its verdict");
  const maxDelay = Math.max(...[...deadAt.values()].map((s) => s - deathStep));
  const bound = Math.ceil(samplesNeeded(d.config.alpha, d.config.dead_rate) / SAMPLES) + WIDTH;
  t.diagnostic(`longest detection delay ${maxDelay} steps (bound ${bound})`);
  assert.ok(maxDelay <= bound, `delay ${maxDelay} steps > ${bound}`);
  assert.equal(d.summary("run", "fc1")!.deaths_total, dying);
});
