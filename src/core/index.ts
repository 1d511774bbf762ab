/** The pure detector core: no I/O, steps and time passed in. */
export { deadBound, samplesNeeded } from "./bound.js";
export type { LayerCheckpoint } from "./checkpoint.js";
export {
  DEFAULT_DETECTOR_CONFIG,
  type DetectorConfig,
  DetectorConfigError,
  MAX_CLOSEST_K,
  resolveDetectorConfig,
} from "./config.js";
export { type ApplyOutcome, type ApplyResult, Detector, type LayerNotice } from "./detector.js";
export { decodeBfloat16, decodeFloat16 } from "./half-float.js";
export type { ShardStream } from "./layer-record.js";
export { CheckpointError, type LayerStateImage, type SegmentImage } from "./layer-state.js";
export { reduceRaw, SnapshotShapeError, type UnitSums } from "./reduce.js";
export * from "./snapshot.js";
export {
  FIRING_RATE_BOUNDS,
  type LayerSummary,
  UNIT_FLAG_BORN_DEAD,
  UNIT_FLAG_CONSTANT,
  type UnitColumns,
  type UnitDetail,
} from "./summary.js";
export type { LoggedTransition, RingImage, TransitionLogImage } from "./transition-log.js";
