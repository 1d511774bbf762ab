/**
 * Size limits a decoder enforces before trusting a message. The defaults fit
 * every layer of today's large models while keeping a hostile or buggy message
 * from allocating gigabytes; raise them per consumer if a layer needs more.
 */
export interface SnapshotLimits {
  /** Largest encoded message, header included. Default 16 MiB (Kafka's own default cap is 1 MiB). */
  maxMessageBytes: number;
  /** Most units one message may cover. Default 1,048,576 (2^20). */
  maxUnitCount: number;
  /** Largest layer. Default 16,777,216 (2^24). */
  maxLayerUnits: number;
  /** Most samples one snapshot may cover. Default 16,777,216 (2^24). */
  maxSamples: number;
  /** Most elements (samples × unit_count) in a RawActivations payload. Default 4,194,304 (2^22, 16 MiB of float32). */
  maxRawValues: number;
  /** Longest run_id or layer, in UTF-8 bytes. Default 512. */
  maxNameBytes: number;
}

export const DEFAULT_LIMITS: Readonly<SnapshotLimits> = Object.freeze({
  maxMessageBytes: 16 * 1024 * 1024,
  maxUnitCount: 1 << 20,
  maxLayerUnits: 1 << 24,
  maxSamples: 1 << 24,
  maxRawValues: 1 << 22,
  maxNameBytes: 512,
});

export function resolveLimits(limits?: Partial<SnapshotLimits>): SnapshotLimits {
  return limits ? { ...DEFAULT_LIMITS, ...limits } : DEFAULT_LIMITS;
}
