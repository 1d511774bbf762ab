/**
 * Why a checkpoint read back from the changelog cannot be restored, as a
 * closed set of codes next to the snapshot codes (docs/errors.md documents
 * both). A consumer that meets one starts the layer afresh from the input
 * instead of restoring half a state.
 */
export const CHECKPOINT_ERROR_CODES = [
  "CHECKPOINT_BAD_MAGIC",
  "CHECKPOINT_VERSION",
  "CHECKPOINT_INCOMPLETE",
  "CHECKPOINT_CORRUPT",
] as const;

export type CheckpointErrorCode = (typeof CHECKPOINT_ERROR_CODES)[number];

export class CheckpointCodecError extends Error {
  override readonly name = "CheckpointCodecError";
  readonly code: CheckpointErrorCode;

  constructor(code: CheckpointErrorCode, message: string, options?: { cause?: unknown }) {
    super(`${code}: ${message}`, options);
    this.code = code;
  }

  /** `code` in lower_snake_case, for metric labels and log fields. */
  get reason(): string {
    return this.code.toLowerCase();
  }
}
