/** Everything the detector keeps for one (run, layer): the unit state plus per-layer bookkeeping. */
import { LayerState } from "./layer-state.js";
import { TransitionLog } from "./transition-log.js";

/** The newest snapshot seen from one rank's shard (rank, unit_offset). */
export interface ShardStream {
  rank: number;
  unit_offset: number;
  step: number;
  micro_batch: number;
  time: number;
}

export interface LayerRecord {
  run_id: string;
  layer: string;
  state: LayerState;
  /** Keyed `${rank}/${unit_offset}`. */
  streams: Map<string, ShardStream>;
  /** Cumulative transition counts, [from * 4 + to], since the layer was first seen. */
  transitions: Float64Array;
  deaths: number;
  revivals: number;
  duplicates: number;
  late: number;
  resumes: number;
  resets: number;
  nonfinite: number;
  /** Newest trainer incarnation seen; snapshots of older ones are dropped as late. */
  incarnation: number;
  /** Snapshots applied since the layer was last classified (an idle flush classifies it once). */
  unclassified: boolean;
  /** nowMs of the newest apply. */
  lastSnapshotMs: number;
  /** Snapshot time of the newest snapshot applied (stamps transitions of a flush). */
  lastTime: number;
  /** The newest transitions of the layer's units. */
  log: TransitionLog;
  /** Bumped by every change a reader could see, so HTTP clients can revalidate cheaply. */
  version: number;
}

export function newLayerRecord(
  run_id: string,
  layer: string,
  units: number,
  windowSteps: number,
  buckets: number,
): LayerRecord {
  return {
    run_id,
    layer,
    state: new LayerState(units, windowSteps, buckets),
    streams: new Map(),
    transitions: new Float64Array(16),
    deaths: 0,
    revivals: 0,
    duplicates: 0,
    late: 0,
    resumes: 0,
    resets: 0,
    nonfinite: 0,
    incarnation: 0,
    unclassified: false,
    lastSnapshotMs: 0,
    lastTime: 0,
    log: new TransitionLog(units),
    version: 0,
  };
}
