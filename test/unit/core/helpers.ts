import type { ActivationSnapshot, UnitState, UnitTransition } from "../../../src/core/index.js";
import { seededRandom } from "../../../src/publisher/seeded-random.js";

export interface CountsInput {
  run_id?: string;
  layer?: string;
  rank?: number;
  step: number;
  time?: number;
  unit_offset?: number;
  layer_units?: number;
  samples: number;
  fires: ArrayLike<number>;
  abs_sum?: ArrayLike<number>;
  sq_sum?: ArrayLike<number>;
  nonfinite?: ArrayLike<number>;
  micro_batch?: number;
  incarnation?: number;
}

/** A FiringCounts snapshot; time defaults to the step so redeliveries repeat it. */
export function counts(input: CountsInput): ActivationSnapshot {
  const fires = Uint32Array.from(input.fires);
  return {
    run_id: input.run_id ?? "run",
    layer: input.layer ?? "fc1",
    rank: input.rank ?? 0,
    step: input.step,
    time: input.time ?? 1_000_000 + input.step,
    unit_offset: input.unit_offset ?? 0,
    unit_count: fires.length,
    layer_units: input.layer_units ?? fires.length,
    samples: input.samples,
    stats: {
      kind: "counts",
      fires,
      abs_sum: input.abs_sum ? Float32Array.from(input.abs_sum) : null,
      sq_sum: input.sq_sum ? Float32Array.from(input.sq_sum) : null,
      nonfinite: input.nonfinite ? Uint32Array.from(input.nonfinite) : null,
    },
    ...(input.micro_batch === undefined ? {} : { micro_batch: input.micro_batch }),
    ...(input.incarnation === undefined ? {} : { incarnation: input.incarnation }),
  };
}

/** Deterministic 32-bit PRNG (the project's mulberry32), so statistical tests are reproducible. */
export const rng: (seed: number) => () => number = seededRandom;

/** Binomial(n, p) by counting n Bernoulli draws (n is small in these tests). */
export function binomial(next: () => number, n: number, p: number): number {
  let k = 0;
  for (let i = 0; i < n; i++) if (next() < p) k++;
  return k;
}

export function statesOf(ts: UnitTransition[]): Map<number, UnitState> {
  const m = new Map<number, UnitState>();
  for (const t of ts) m.set(t.unit, t.to);
  return m;
}

/** Binomial(n, p) by inversion: one uniform per draw, exact for any n. */
export function binomialSampler(n: number, p: number): (u: number) => number {
  const cdf: number[] = [];
  let pk = (1 - p) ** n;
  let acc = 0;
  for (let k = 0; k <= n; k++) {
    acc += pk;
    cdf.push(acc);
    pk = (pk * (n - k) * p) / ((k + 1) * (1 - p));
  }
  return (u) => {
    let k = 0;
    while (k < n && u >= cdf[k]!) k++;
    return k;
  };
}
