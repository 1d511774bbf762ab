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
 * A unit fires on a sample when its activation is > 0 (NaN does not fire).
 * Sums accumulate in float64 and are rounded to float32 once, so long batches
 * do not lose small contributions.
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
  const abs = opts.absSum ? new Float64Array(units) : null;
  const sq = opts.sqSum ? new Float64Array(units) : null;
  for (let s = 0; s < samples; s++) {
    const row = s * units;
    for (let u = 0; u < units; u++) {
      const v = values[row + u]!;
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
  return {
    kind: "counts",
    fires: a.fires.map((v, i) => v + b.fires[i]!),
    abs_sum: add(a.abs_sum, b.abs_sum),
    sq_sum: add(a.sq_sum, b.sq_sum),
  };
}
