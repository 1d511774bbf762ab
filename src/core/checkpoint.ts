/**
 * A checkpoint of one (run, layer): everything the detector keeps for it, so
 * that a consumer which restores it after a restart or a rebalance goes on
 * exactly as the one that wrote it would have. Applying snapshots A,
 * checkpointing, restoring into a fresh Detector and applying B gives the same
 * transitions, summaries, unit details and counters as applying A then B in
 * one detector.
 *
 *     const cp = detector.checkpoint("run-7", "blocks.3.mlp.fc1")   // after offsets up to X
 *     // ... the process dies; a new one is assigned the partition ...
 *     fresh.restore(cp)                                             // then consume from X + 1
 *
 * A checkpoint says nothing about input positions: the caller stores which
 * offsets it covers next to it (src/codec/checkpoint-codec.ts does).
 */
import type { LayerRecord, ShardStream } from "./layer-record.js";
import { CheckpointError, LayerState, type LayerStateImage } from "./layer-state.js";
import { type RingImage, TransitionLog, type TransitionLogImage } from "./transition-log.js";

export interface LayerCheckpoint {
  run_id: string;
  layer: string;
  state: LayerStateImage;
  /** The newest snapshot of every (rank, unit_offset) shard. */
  streams: ShardStream[];
  /** The layer's logged transitions (the unit explorer's history), so a restore keeps them. */
  log: TransitionLogImage;
  /** Cumulative transition counts, [from * 4 + to]. */
  transitions: number[];
  deaths: number;
  revivals: number;
  duplicates: number;
  late: number;
  resumes: number;
  resets: number;
  nonfinite: number;
  incarnation: number;
  unclassified: boolean;
  lastSnapshotMs: number;
  lastTime: number;
}

/** The checkpoint of a layer record; its typed arrays are views of the live state (see LayerState.image). */
export function checkpointRecord(rec: LayerRecord): LayerCheckpoint {
  return {
    run_id: rec.run_id,
    layer: rec.layer,
    state: rec.state.image(),
    streams: [...rec.streams.values()].map((s) => ({ ...s })),
    log: rec.log.image(),
    transitions: Array.from(rec.transitions),
    deaths: rec.deaths,
    revivals: rec.revivals,
    duplicates: rec.duplicates,
    late: rec.late,
    resumes: rec.resumes,
    resets: rec.resets,
    nonfinite: rec.nonfinite,
    incarnation: rec.incarnation,
    unclassified: rec.unclassified,
    lastSnapshotMs: rec.lastSnapshotMs,
    lastTime: rec.lastTime,
  };
}

/**
 * The layer record a checkpoint describes, for a detector whose window is
 * `windowSteps` steps in `buckets` buckets. Throws CheckpointError when the
 * checkpoint was written under another window (its buckets would not line up)
 * or does not hold together.
 */
export function restoreRecord(cp: LayerCheckpoint, windowSteps: number, buckets: number): LayerRecord {
  const where = `checkpoint of ${cp.run_id}/${cp.layer}`;
  if (cp.state.windowSteps !== windowSteps || cp.state.buckets !== buckets) {
    throw new CheckpointError(
      `${where} was written with window_steps ${cp.state.windowSteps} in ${cp.state.buckets} buckets; this detector uses ${windowSteps} in ${buckets}`,
    );
  }
  if (cp.transitions.length !== 16) {
    throw new CheckpointError(`${where}: ${cp.transitions.length} transition counts, not 16`);
  }
  const streams = new Map<string, ShardStream>();
  for (const s of cp.streams) streams.set(`${s.rank}/${s.unit_offset}`, { ...s });
  return {
    run_id: cp.run_id,
    layer: cp.layer,
    state: LayerState.fromImage(cp.state),
    streams,
    log: restoreLog(cp, where),
    version: 0,
    transitions: Float64Array.from(cp.transitions),
    deaths: cp.deaths,
    revivals: cp.revivals,
    duplicates: cp.duplicates,
    late: cp.late,
    resumes: cp.resumes,
    resets: cp.resets,
    nonfinite: cp.nonfinite,
    incarnation: cp.incarnation,
    unclassified: cp.unclassified,
    lastSnapshotMs: cp.lastSnapshotMs,
    lastTime: cp.lastTime,
  };
}

function restoreLog(cp: LayerCheckpoint, where: string): TransitionLog {
  const copy = (r: RingImage): RingImage => ({
    written: r.written,
    unit: r.unit.slice(),
    code: r.code.slice(),
    step: r.step.slice(),
    rate: r.rate.slice(),
    bound: r.bound.slice(),
  });
  try {
    return TransitionLog.fromImage(cp.state.units, {
      deaths: copy(cp.log.deaths),
      others: copy(cp.log.others),
    });
  } catch (err) {
    throw new CheckpointError(`${where}: ${(err as Error).message}`);
  }
}
