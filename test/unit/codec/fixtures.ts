import type { ActivationSnapshot } from "../../../src/core/snapshot.js";

/** A valid FiringCounts snapshot with distinct values in every field, so a swapped field shows. */
export function countsSnapshot(overrides: Partial<ActivationSnapshot> = {}): ActivationSnapshot {
  return {
    run_id: "run-42",
    layer: "blocks.3.mlp.fc1",
    rank: 3,
    step: 123_456_789_012,
    time: 1_764_000_000_123,
    unit_offset: 8,
    unit_count: 4,
    layer_units: 16,
    samples: 512,
    stats: {
      kind: "counts",
      fires: Uint32Array.from([0, 1, 511, 512]),
      abs_sum: Float32Array.from([0, 0.25, 100.5, 3e6]),
      sq_sum: Float32Array.from([0, 0.0625, 40.125, 1.5e9]),
      nonfinite: Uint32Array.from([0, 7, 1, 0]),
    },
    micro_batch: 3,
    incarnation: 1_763_999_000_456,
    ...overrides,
  };
}

/** A valid RawActivations snapshot: 3 samples × 2 units of float32. */
export function rawSnapshot(overrides: Partial<ActivationSnapshot> = {}): ActivationSnapshot {
  const values = Float32Array.from([0, 1.5, -2, 0, 3.25, 0]);
  return {
    run_id: "run-raw",
    layer: "conv2",
    rank: 0,
    step: 7,
    time: 1_764_000_000_000,
    unit_offset: 0,
    unit_count: 2,
    layer_units: 2,
    samples: 3,
    stats: { kind: "raw", dtype: "FLOAT32", values: new Uint8Array(values.buffer) },
    micro_batch: 0,
    incarnation: 0,
    ...overrides,
  };
}

/**
 * Plain arrays instead of typed arrays, so deepEqual compares contents, not
 * views; the optional fields a decoder always fills are filled with their defaults.
 */
export function plain(s: ActivationSnapshot): unknown {
  const stats =
    s.stats.kind === "counts"
      ? {
          kind: s.stats.kind,
          fires: [...s.stats.fires],
          abs_sum: s.stats.abs_sum ? [...s.stats.abs_sum] : null,
          sq_sum: s.stats.sq_sum ? [...s.stats.sq_sum] : null,
          nonfinite: s.stats.nonfinite ? [...s.stats.nonfinite] : null,
        }
      : { kind: s.stats.kind, dtype: s.stats.dtype, values: [...s.stats.values] };
  return { ...s, micro_batch: s.micro_batch ?? 0, incarnation: s.incarnation ?? 0, stats };
}
