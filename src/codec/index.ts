/** The snapshot contract's codec: the one import other modules need. */

export {
  CHECKPOINT_FORMAT_VERSION,
  type CheckpointMigration,
  type CheckpointPosition,
  type CheckpointRecord,
  checkpointKeys,
  DEFAULT_CHUNK_BYTES,
  type DecodeCheckpointOptions,
  type DecodedCheckpoint,
  decodeCheckpoint,
  type EncodeCheckpointOptions,
  encodeCheckpoint,
  parseCheckpointKey,
} from "./checkpoint-codec.js";
export {
  CHECKPOINT_ERROR_CODES,
  CheckpointCodecError,
  type CheckpointErrorCode,
} from "./checkpoint-errors.js";
export { type ContainerWriteOptions, readSnapshotContainer, writeSnapshotContainer } from "./container.js";
export { crc64Avro, fingerprintBytes, fingerprintHex } from "./crc64.js";
export {
  CODEC_ERROR_CODES,
  CodecError,
  type CodecErrorCode,
  codecErrorReason,
  isCodecError,
} from "./errors.js";
export { DEFAULT_LIMITS, resolveLimits, type SnapshotLimits } from "./limits.js";
export {
  type AvroSchema,
  canonicalForm,
  fingerprintOf,
  snapshotSchema,
  transitionSchema,
} from "./schemas.js";
export { HEADER_BYTES, MAGIC, SingleObjectType } from "./single-object.js";
export {
  type DecodeOptions,
  decodeSnapshot,
  decodeSnapshotBody,
  defaultSnapshotCodec,
  encodeSnapshot,
  registerSnapshotWriterSchema,
  SnapshotCodec,
} from "./snapshot-codec.js";
export {
  decodeTransition,
  encodeTransition,
  registerTransitionWriterSchema,
  transitionFingerprint,
  validateTransition,
} from "./transition-codec.js";
export { DTYPE_BYTES, validateSnapshot } from "./validate.js";
