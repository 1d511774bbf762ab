import assert from "node:assert/strict";
import { test } from "node:test";
import { BinomialSampler, Prng } from "../../../src/sim/index.js";

test("Prng: same seed and stream give the same sequence; other seeds or streams do not", () => {
  const draw = (seed: number, stream = 0) => {
    const r = new Prng(seed, stream);
    return Array.from({ length: 8 }, () => r.nextUint32());
  };
  assert.deepEqual(draw(42), draw(42));
  assert.notDeepEqual(draw(42), draw(43));
  assert.notDeepEqual(draw(42), draw(42, 1));
  assert.notDeepEqual(draw(2 ** 40), draw(0));
  assert.throws(() => new Prng(1.5), RangeError);
});

test("Prng: uniforms have mean 1/2 and variance 1/12; sample() picks k distinct sorted indices", () => {
  const r = new Prng(7);
  const n = 100_000;
  let sum = 0;
  let sq = 0;
  for (let i = 0; i < n; i++) {
    const u = r.next();
    assert.ok(u >= 0 && u < 1);
    sum += u;
    sq += u * u;
  }
  const mean = sum / n;
  assert.ok(Math.abs(mean - 0.5) < 0.005, `mean ${mean}`);
  assert.ok(Math.abs(sq / n - mean * mean - 1 / 12) < 0.002);
  const picked = r.sample(50, 20);
  assert.equal(new Set(picked).size, 20);
  assert.deepEqual(
    picked,
    [...picked].sort((a, b) => a - b),
  );
  assert.ok(picked.every((i) => i >= 0 && i < 50));
});

test("Binomial draws match the exact distribution (chi-square), for p below and above 1/2", () => {
  for (const [n, p] of [
    [20, 0.3],
    [20, 0.85],
    [512, 0.004],
  ] as const) {
    const b = new BinomialSampler(n);
    const r = new Prng(11);
    const draws = 40_000;
    const counts = new Array(n + 1).fill(0);
    for (let i = 0; i < draws; i++) counts[b.sample(p, r)]++;
    // Pool the tails into cells with expected count >= 5.
    let chi = 0;
    let cells = 0;
    let obs = 0;
    let exp = 0;
    for (let k = 0; k <= n; k++) {
      obs += counts[k];
      exp += b.pmf(k, p) * draws;
      if (exp >= 5) {
        chi += (obs - exp) ** 2 / exp;
        cells++;
        obs = 0;
        exp = 0;
      }
    }
    // 99.9th percentile of chi-square is below 3·df + 10 for these df; a wrong sampler lands far above.
    assert.ok(chi < 3 * (cells - 1) + 10, `n=${n} p=${p}: chi-square ${chi.toFixed(1)} on ${cells} cells`);
  }
});

test("Binomial draws for large n have mean np and variance npq", () => {
  const n = 4096;
  const p = 0.37;
  const b = new BinomialSampler(n);
  const r = new Prng(3);
  let sum = 0;
  let sq = 0;
  const draws = 20_000;
  for (let i = 0; i < draws; i++) {
    const x = b.sample(p, r);
    sum += x;
    sq += x * x;
  }
  const mean = sum / draws;
  const variance = sq / draws - mean * mean;
  assert.ok(Math.abs(mean - n * p) < 1, `mean ${mean}`);
  assert.ok(Math.abs(variance / (n * p * (1 - p)) - 1) < 0.05, `variance ${variance}`);
});

test("Binomial edge cases: p = 0 never fires, p = 1 always, bad p is refused", () => {
  const b = new BinomialSampler(10);
  const r = new Prng(1);
  assert.equal(b.sample(0, r), 0);
  assert.equal(b.sample(1, r), 10);
  assert.throws(() => b.sample(1.5, r), RangeError);
  assert.throws(() => b.sample(Number.NaN, r), RangeError);
  assert.equal(new BinomialSampler(0).sample(0.5, r), 0);
});
