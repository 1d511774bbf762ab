/**
 * Exact Binomial(n, p) draws by inversion searched outward from the mode: a
 * simulated unit's fires are Binomial(samples, rate), and this costs
 * O(sqrt(n·p·q)) uniforms' worth of arithmetic instead of n Bernoulli trials.
 */
import type { Prng } from "./prng.js";

export class BinomialSampler {
  private readonly logFact: Float64Array;
  private readonly modeCache = new Map<number, { mode: number; pmf: number }>();

  constructor(readonly n: number) {
    if (!Number.isSafeInteger(n) || n < 0) throw new RangeError(`n must be a non-negative integer, got ${n}`);
    this.logFact = new Float64Array(n + 1);
    for (let i = 2; i <= n; i++) this.logFact[i] = this.logFact[i - 1]! + Math.log(i);
  }

  /** P(X = k) for X ~ Binomial(n, p). */
  pmf(k: number, p: number): number {
    const n = this.n;
    if (k < 0 || k > n) return 0;
    if (p <= 0) return k === 0 ? 1 : 0;
    if (p >= 1) return k === n ? 1 : 0;
    const lf = this.logFact;
    return Math.exp(lf[n]! - lf[k]! - lf[n - k]! + k * Math.log(p) + (n - k) * Math.log1p(-p));
  }

  sample(p: number, rng: Prng): number {
    if (!(p >= 0 && p <= 1)) throw new RangeError(`p must be in [0, 1], got ${p}`);
    if (p === 0 || this.n === 0) return 0;
    if (p === 1) return this.n;
    if (p > 0.5) return this.n - this.sample(1 - p, rng);
    const n = this.n;
    let cached = this.modeCache.get(p);
    if (!cached) {
      const mode = Math.min(n, Math.floor((n + 1) * p));
      cached = { mode, pmf: this.pmf(mode, p) };
      if (this.modeCache.size >= 1 << 16) this.modeCache.clear();
      this.modeCache.set(p, cached);
    }
    const { mode, pmf } = cached;
    const ratio = p / (1 - p);
    let u = rng.next() - pmf;
    if (u < 0) return mode;
    let lo = mode;
    let hi = mode;
    let pLo = pmf;
    let pHi = pmf;
    for (;;) {
      const canUp = hi < n;
      const canDown = lo > 0;
      if (!canUp && !canDown) return mode; // only rounding error is left
      if (canUp) {
        pHi *= ((n - hi) / (hi + 1)) * ratio;
        hi++;
        u -= pHi;
        if (u < 0) return hi;
      }
      if (canDown) {
        pLo *= lo / (n - lo + 1) / ratio;
        lo--;
        u -= pLo;
        if (u < 0) return lo;
      }
    }
  }
}
