/**
 * The decoded form of an ActivationSnapshot (schemas/ActivationSnapshot.avsc),
 * shared by the codec, which produces it, and the detector core, which
 * consumes it. Field names follow the schema so JSON, Avro and TypeScript
 * agree letter for letter.
 */

export type ActivationDtype = "FLOAT32" | "FLOAT16" | "BFLOAT16";

/** Per-unit statistics reduced on the trainer: 4 bytes a unit instead of samples × units values. */
export interface FiringCounts {
  kind: "counts";
  /** fires[i]: on how many of the snapshot's samples unit i's activation was finite and > 0. */
  fires: Uint32Array;
  /** Sum of |activation| over the finite samples, per unit; null when the trainer does not send it. */
  abs_sum: Float32Array | null;
  /** Sum of activation² over the finite samples, per unit; null when the trainer does not send it. */
  sq_sum: Float32Array | null;
  /**
   * nonfinite[i]: on how many samples unit i's activation was NaN or ±Inf; such
   * samples are no evidence either way. Absent or null: every value was finite.
   */
  nonfinite?: Uint32Array | null;
}

/** Unreduced activations, row-major [samples × unit_count], little-endian. */
export interface RawActivations {
  kind: "raw";
  dtype: ActivationDtype;
  values: Uint8Array;
}

export interface ActivationSnapshot {
  run_id: string;
  layer: string;
  rank: number;
  step: number;
  /** Milliseconds since the Unix epoch (Avro timestamp-millis). */
  time: number;
  unit_offset: number;
  unit_count: number;
  layer_units: number;
  samples: number;
  stats: FiringCounts | RawActivations;
  /** Index of the sampled pass within (rank, step), e.g. a gradient-accumulation micro-batch; absent means 0. */
  micro_batch?: number;
  /** The trainer's restart generation (e.g. its start time in ms); absent means 0, resumes inferred from time. */
  incarnation?: number;
}

export type UnitState = "UNKNOWN" | "ACTIVE" | "MOSTLY_SILENT" | "DEAD";

/** Emitted when a unit changes state (schemas/UnitTransition.avsc). */
export interface UnitTransition {
  run_id: string;
  layer: string;
  /** Global unit index within the layer. */
  unit: number;
  from: UnitState;
  to: UnitState;
  born_dead: boolean;
  step: number;
  time: number;
  /** Fires and samples in the rolling window at the time of the transition. */
  fires: number;
  samples: number;
  firing_rate: number;
  /** One-sided upper confidence bound of the firing rate given the trailing silence. */
  rate_upper_bound: number;
  last_fire_step: number | null;
}

/** The Kafka key of a snapshot or transition: every rank and shard of a layer lands in one partition. */
export function layerKey(run_id: string, layer: string): string {
  return `${run_id}/${layer}`;
}
