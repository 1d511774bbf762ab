/** The snapshot contract's codec: the one import other modules need. */

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
