/**
 * Reduces a batch of activations to the FiringCounts payload on the trainer,
 * so the wire carries 4 bytes a unit (12 with both sums) instead of
 * samples × units values.
 */
import type { FiringCounts } from "../core/snapshot.js";

export interface CountsOptions {
  /** Also sum |activation| per unit. Default false. */
  absSum?: boolean;
  /** Also sum activation² per unit. Default false. */
  sqSum?: boolean;
}

/**
 * `values` is row-major [samples × units]: sample 0's units, then sample 1's.
 * A unit fires on a sample when its activation is finite and > 0. NaN and ±Inf
 * are counted per unit in `nonfinite` (null when every value was finite) and
 * left out of fires and of both sums: they are no evidence either way, and one
 * NaN must not turn a unit's sums into NaN. Sums accumulate in float64 and are
 * rounded to float32 once, so long batches do not lose small contributions.
 *
 * Example: 2 samples × 2 units [NaN, 1, 3, Infinity] gives fires [1, 1],
 * nonfinite [1, 1], abs_sum [3, 1].
 */
export function countsFromActivations(
  values: Float32Array,
  samples: number,
  units: number,
  opts: CountsOptions = {},
): FiringCounts {
  if (!Number.isSafeInteger(samples) || samples <= 0)
    throw new RangeError(`samples must be a positive integer, got ${samples}`);
  if (!Number.isSafeInteger(units) || units <= 0)
    throw new RangeError(`units must be a positive integer, got ${units}`);
  if (values.length !== samples * units) {
    throw new RangeError(`${values.length} activations is not samples × units = ${samples} × ${units}`);
  }
  const fires = new Uint32Array(units);
  const nonfinite = new Uint32Array(units);
  let anyNonfinite = false;
  const abs = opts.absSum ? new Float64Array(units) : null;
  const sq = opts.sqSum ? new Float64Array(units) : null;
  for (let s = 0; s < samples; s++) {
    const row = s * units;
    for (let u = 0; u < units; u++) {
      const v = values[row + u]!;
      // v - v is 0 for finite v and NaN for NaN and ±Inf: one comparison on the hot path.
      if (v - v !== 0) {
        nonfinite[u]!++;
        anyNonfinite = true;
        continue;
      }
      if (v > 0) fires[u]!++;
      if (abs) abs[u]! += Math.abs(v);
      if (sq) sq[u]! += v * v;
    }
  }
  return {
    kind: "counts",
    fires,
    abs_sum: abs ? Float32Array.from(abs) : null,
    sq_sum: sq ? Float32Array.from(sq) : null,
    nonfinite: anyNonfinite ? nonfinite : null,
  };
}

/** Adds `b` into `a` (same units): for trainers that reduce several micro-batches into one snapshot. */
export function mergeCounts(a: FiringCounts, b: FiringCounts): FiringCounts {
  if (a.fires.length !== b.fires.length) {
    throw new RangeError(`cannot merge counts of ${a.fires.length} and ${b.fires.length} units`);
  }
  const add = (x: Float32Array | null, y: Float32Array | null): Float32Array | null => {
    if (!x || !y) return null;
    return x.map((v, i) => v + y[i]!);
  };
  const an = a.nonfinite ?? null;
  const bn = b.nonfinite ?? null;
  return {
    kind: "counts",
    fires: a.fires.map((v, i) => v + b.fires[i]!),
    abs_sum: add(a.abs_sum, b.abs_sum),
    sq_sum: add(a.sq_sum, b.sq_sum),
    // A missing count means every value was finite: zero, not unknown.
    nonfinite: an || bn ? a.fires.map((_, i) => (an?.[i] ?? 0) + (bn?.[i] ?? 0)) : null,
  };
}
