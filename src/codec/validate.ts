/**
 * Semantic validation of the snapshot contract: what the Avro schema cannot
 * say (lengths agree with unit_count, fires and non-finite counts never exceed samples, the shard
 * lies inside its layer, sizes stay within limits). The first violation found
 * is thrown as a CodecError naming the field.
 */
import type { ActivationDtype, ActivationSnapshot } from "../core/snapshot.js";
import { CodecError } from "./errors.js";
import { resolveLimits, type SnapshotLimits } from "./limits.js";

export const DTYPE_BYTES: Readonly<Record<ActivationDtype, number>> = Object.freeze({
  FLOAT32: 4,
  FLOAT16: 2,
  BFLOAT16: 2,
});

const INT_MAX = 2 ** 31 - 1;

function checkName(value: unknown, field: string, limits: SnapshotLimits): void {
  if (typeof value !== "string")
    throw new CodecError("MALFORMED", `must be a string, got ${typeof value}`, field);
  if (value.length === 0) throw new CodecError("EMPTY_NAME", "must not be empty", field);
  // A UTF-16 code unit takes at most 3 UTF-8 bytes, so a short name needs no counting.
  if (value.length * 3 <= limits.maxNameBytes) return;
  const bytes = Buffer.byteLength(value, "utf8");
  if (bytes > limits.maxNameBytes) {
    throw new CodecError(
      "TOO_LARGE",
      `${bytes} UTF-8 bytes, more than the limit of ${limits.maxNameBytes}`,
      field,
    );
  }
}

function checkInteger(value: unknown, field: string, max: number): number {
  if (typeof value !== "number" || !Number.isInteger(value) || value > max || value < -max - 1) {
    throw new CodecError("MALFORMED", `must be an integer within Avro's range, got ${String(value)}`, field);
  }
  return value;
}

function nonNegative(value: unknown, field: string, max: number): number {
  const n = checkInteger(value, field, max);
  if (n < 0) throw new CodecError("NEGATIVE", `must be >= 0, got ${n}`, field);
  return n;
}

function positive(value: unknown, field: string, limit: number, limitName: string): number {
  const n = checkInteger(value, field, INT_MAX);
  if (n <= 0) throw new CodecError("NOT_POSITIVE", `must be > 0, got ${n}`, field);
  if (n > limit)
    throw new CodecError("TOO_LARGE", `${n} is more than the ${limitName} limit of ${limit}`, field);
  return n;
}

/**
 * A NaN or infinite sum is what a diverging model produces, not a broken
 * message: the snapshot stays valid (its fires are evidence) and the detector
 * leaves that snapshot's sums out. A negative finite sum cannot come from any
 * activation, so it rejects the message.
 */
function checkSums(sums: Float32Array | null, field: string, unitCount: number): void {
  if (sums === null) return;
  if (!(sums instanceof Float32Array))
    throw new CodecError("MALFORMED", "must be a Float32Array or null", field);
  if (sums.length !== unitCount) {
    throw new CodecError("LENGTH_MISMATCH", `${sums.length} values for unit_count ${unitCount}`, field);
  }
  for (let i = 0; i < sums.length; i++) {
    const v = sums[i]!;
    if (v < 0 && v > Number.NEGATIVE_INFINITY) {
      throw new CodecError("BAD_SUM", `unit ${i}: ${v} (a sum of |h| or h² is never negative)`, field);
    }
  }
}

/**
 * The common case in one branch-free pass per array: every count fits. Only a
 * snapshot that fails it is walked again to name its first offending unit.
 */
function withinSamples(
  fires: Uint32Array,
  nonfinite: Uint32Array | null,
  samples: number,
  unitCount: number,
): boolean {
  if (nonfinite === null) {
    let most = 0;
    for (let i = 0; i < unitCount; i++) most = Math.max(most, fires[i]!);
    return most <= samples;
  }
  let most = 0;
  for (let i = 0; i < unitCount; i++) most = Math.max(most, fires[i]! + nonfinite[i]!);
  return most <= samples;
}

/** Sums over the snapshot's per-unit counts must fit its samples. */
function checkCounts(
  fires: Uint32Array,
  nonfinite: Uint32Array | null,
  samples: number,
  offset: number,
  unitCount: number,
): void {
  if (nonfinite !== null) {
    if (!(nonfinite instanceof Uint32Array)) {
      throw new CodecError("MALFORMED", "must be a Uint32Array or null", "stats.nonfinite");
    }
    if (nonfinite.length !== unitCount) {
      throw new CodecError(
        "LENGTH_MISMATCH",
        `${nonfinite.length} counts for unit_count ${unitCount}`,
        "stats.nonfinite",
      );
    }
  }
  if (withinSamples(fires, nonfinite, samples, unitCount)) return;
  for (let i = 0; i < unitCount; i++) {
    const bad = nonfinite === null ? 0 : nonfinite[i]!;
    if (bad > samples) {
      throw new CodecError(
        "FIRES_EXCEED_SAMPLES",
        `unit ${offset + i} had ${bad} non-finite values in ${samples} samples`,
        "stats.nonfinite",
      );
    }
    if (fires[i]! > samples - bad) {
      throw new CodecError(
        "FIRES_EXCEED_SAMPLES",
        bad === 0
          ? `unit ${offset + i} fired ${fires[i]} times in ${samples} samples`
          : `unit ${offset + i} fired ${fires[i]} times in ${samples - bad} finite samples (${samples} samples, ${bad} non-finite)`,
        "stats.fires",
      );
    }
  }
}

/** Throws the first contract violation of `s` as a CodecError; returns `s` when it is valid. */
export function validateSnapshot(
  s: ActivationSnapshot,
  limits?: Partial<SnapshotLimits>,
): ActivationSnapshot {
  return validateResolved(s, resolveLimits(limits));
}

/** validateSnapshot with every limit already given (no defaults to merge on each call). */
export function validateResolved(s: ActivationSnapshot, lim: SnapshotLimits): ActivationSnapshot {
  checkName(s.run_id, "run_id", lim);
  checkName(s.layer, "layer", lim);
  nonNegative(s.rank, "rank", INT_MAX);
  nonNegative(s.step, "step", Number.MAX_SAFE_INTEGER);
  nonNegative(s.time, "time", Number.MAX_SAFE_INTEGER);
  if (s.micro_batch !== undefined) nonNegative(s.micro_batch, "micro_batch", INT_MAX);
  if (s.incarnation !== undefined) nonNegative(s.incarnation, "incarnation", Number.MAX_SAFE_INTEGER);
  const offset = nonNegative(s.unit_offset, "unit_offset", INT_MAX);
  const unitCount = positive(s.unit_count, "unit_count", lim.maxUnitCount, "maxUnitCount");
  const layerUnits = positive(s.layer_units, "layer_units", lim.maxLayerUnits, "maxLayerUnits");
  const samples = positive(s.samples, "samples", lim.maxSamples, "maxSamples");
  if (offset + unitCount > layerUnits) {
    throw new CodecError(
      "UNIT_RANGE",
      `units [${offset}, ${offset + unitCount}) do not fit in a layer of ${layerUnits} units`,
      "unit_offset",
    );
  }
  const stats = s.stats;
  if (stats?.kind === "counts") {
    if (!(stats.fires instanceof Uint32Array)) {
      throw new CodecError("MALFORMED", "must be a Uint32Array", "stats.fires");
    }
    if (stats.fires.length !== unitCount) {
      throw new CodecError(
        "LENGTH_MISMATCH",
        `${stats.fires.length} counts for unit_count ${unitCount}`,
        "stats.fires",
      );
    }
    checkCounts(stats.fires, stats.nonfinite ?? null, samples, offset, unitCount);
    checkSums(stats.abs_sum, "stats.abs_sum", unitCount);
    checkSums(stats.sq_sum, "stats.sq_sum", unitCount);
  } else if (stats?.kind === "raw") {
    const size = Object.hasOwn(DTYPE_BYTES, stats.dtype) ? DTYPE_BYTES[stats.dtype] : undefined;
    if (size === undefined) {
      throw new CodecError(
        "UNKNOWN_DTYPE",
        `${String(stats.dtype)} is not one of ${Object.keys(DTYPE_BYTES).join(", ")}`,
        "stats.dtype",
      );
    }
    const elements = samples * unitCount;
    if (elements > lim.maxRawValues) {
      throw new CodecError(
        "TOO_LARGE",
        `samples × unit_count = ${elements}, more than the maxRawValues limit of ${lim.maxRawValues}`,
        "stats.values",
      );
    }
    if (!(stats.values instanceof Uint8Array)) {
      throw new CodecError("MALFORMED", "must be a Uint8Array", "stats.values");
    }
    if (stats.values.byteLength !== elements * size) {
      throw new CodecError(
        "LENGTH_MISMATCH",
        `${stats.values.byteLength} bytes, expected samples × unit_count × ${size} = ${elements * size}`,
        "stats.values",
      );
    }
  } else {
    throw new CodecError(
      "MALFORMED",
      "must be FiringCounts (kind counts) or RawActivations (kind raw)",
      "stats",
    );
  }
  return s;
}
