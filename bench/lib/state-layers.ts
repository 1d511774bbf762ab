/**
 * Layers of 1M units whose whole window is full, for the state benchmarks:
 * 12 bucket-closing snapshots from two tensor-parallel shards (or as many as
 * `steps` asks, for an older run of the same state size), with abs/sq sums on
 * request and a few NaN counts in the newest bucket, so every array a
 * checkpoint holds is populated.
 */
import { type ActivationSnapshot, Detector } from "../../src/core/index.js";

export const UNITS = 1 << 20;

export function lcg(seed: number): () => number {
  let x = seed >>> 0;
  return () => {
    x = (Math.imul(x, 1664525) + 1013904223) >>> 0;
    return x / 4294967296;
  };
}

/** Snapshots one step apart close one bucket each (window_steps 1000 over 10 buckets). */
export const STEP = 100;

export function snapshot(
  layer: string,
  step: number,
  offset: number,
  count: number,
  sums: boolean,
  rand: () => number,
  nanStep = 1100,
): ActivationSnapshot {
  const samples = 512;
  const fires = new Uint32Array(count);
  for (let i = 0; i < count; i++) {
    // A quarter of the units never fire (they die), the rest at rates up to 50%.
    const j = offset + i;
    fires[i] = j % 4 === 0 ? 0 : Math.floor(rand() * samples * 0.5);
  }
  const nonfinite = new Uint32Array(count);
  if (step === nanStep) for (let i = 0; i < count; i += 997) nonfinite[i] = 1;
  return {
    run_id: "bench",
    layer,
    rank: 0,
    step,
    time: 1_700_000_000_000 + step,
    unit_offset: offset,
    unit_count: count,
    layer_units: UNITS,
    samples,
    stats: {
      kind: "counts",
      fires,
      abs_sum: sums ? Float32Array.from(fires, (f) => f * 0.7) : null,
      sq_sum: sums ? Float32Array.from(fires, (f) => f * 0.9) : null,
      nonfinite,
    },
  };
}

export const layerName = (l: number) => `blocks.${l}.mlp.fc1`;

/** `steps` bucket-closing steps per layer: 12 fill the window; more only age the run. */
export function build(layers: number, sums: boolean, steps = 12): Detector {
  const d = new Detector();
  const rand = lcg(7);
  const half = UNITS / 2;
  const last = (steps - 1) * STEP;
  for (let l = 0; l < layers; l++) {
    for (let step = 0; step <= last; step += STEP) {
      for (const [offset, count] of [
        [0, half],
        [half, half],
      ] as const) {
        const s = snapshot(layerName(l), step, offset, count, sums, rand, last);
        d.apply(s, s.time);
      }
    }
  }
  return d;
}
