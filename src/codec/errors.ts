/**
 * Every way a snapshot or transition can fail to decode or validate, as a
 * closed, low-cardinality set of codes: consumers use `code` (or its
 * lower-case `reason`) as a metric label and a dead-letter header, and
 * docs/errors.md documents each one.
 */
export const CODEC_ERROR_CODES = [
  "BAD_MAGIC",
  "TRUNCATED",
  "UNKNOWN_FINGERPRINT",
  "MALFORMED",
  "TOO_LARGE",
  "EMPTY_NAME",
  "NEGATIVE",
  "NOT_POSITIVE",
  "UNIT_RANGE",
  "LENGTH_MISMATCH",
  "FIRES_EXCEED_SAMPLES",
  "BAD_SUM",
  "UNKNOWN_DTYPE",
] as const;

export type CodecErrorCode = (typeof CODEC_ERROR_CODES)[number];

/** The Prometheus-style label value of a code: `FIRES_EXCEED_SAMPLES` → `fires_exceed_samples`. */
export function codecErrorReason(code: CodecErrorCode): string {
  return code.toLowerCase();
}

export class CodecError extends Error {
  override readonly name = "CodecError";
  readonly code: CodecErrorCode;
  /** The schema field at fault (dotted path, e.g. `stats.fires`), when one is. */
  readonly field?: string;

  constructor(code: CodecErrorCode, message: string, field?: string, options?: { cause?: unknown }) {
    super(`${code}${field ? ` (${field})` : ""}: ${message}`, options);
    this.code = code;
    if (field !== undefined) this.field = field;
  }

  /** `code` in lower_snake_case, for metric labels and headers. */
  get reason(): string {
    return codecErrorReason(this.code);
  }
}

export function isCodecError(err: unknown): err is CodecError {
  return err instanceof CodecError;
}
