/**
 * The processor between source and sinks, in the shape of a Kafka Streams
 * processor: `process(record)` for each record and `punctuate(time)` for
 * housekeeping. It knows nothing of clients, sinks, logs or metrics: it
 * decodes, enforces the limits, applies to the detector and returns the
 * record's effects (transitions, the dead letter of a rejected record, the
 * layer it touched, and the internal events telemetry turns into log lines
 * and metrics). Bad input never throws out of here: it becomes a rejection
 * with a stable reason.
 */
import {
  CODEC_ERROR_CODES,
  CodecError,
  codecErrorReason,
  decodeSnapshot,
  decodeSnapshotBody,
  type SnapshotLimits,
} from "../codec/index.js";
import type { LimitSettings } from "../config/load.js";
import type { Detector, UnitTransition } from "../core/index.js";
import type { ActivationSnapshot } from "../core/snapshot.js";
import type { DeadLetterRecord } from "../sink/kafka-sinks.js";
import type { RecordEncoding, SourceRecord } from "../source/source.js";
import type { ServiceEvent } from "./telemetry.js";
import { LIMIT_REASONS, UnitBudget } from "./unit-budget.js";

export { LIMIT_REASONS } from "./unit-budget.js";

/** What one record did. */
export interface Effects {
  transitions: UnitTransition[];
  /** Set when the record was rejected: the record unchanged, with the reason. */
  deadLetter?: DeadLetterRecord;
  /** The layer the record was applied to. */
  layer?: { run_id: string; layer: string };
  events: ServiceEvent[];
}

/** Every dead-letter reason this processor can give: the codec's error reasons and the limits. */
export const REJECT_REASONS: readonly string[] = [
  ...CODEC_ERROR_CODES.map(codecErrorReason),
  ...LIMIT_REASONS,
];

export interface ProcessorOptions {
  limits: LimitSettings;
  /** A run that sent nothing for this long may be evicted to make room for a new layer. */
  evictIdleMs: number;
  /**
   * Which time a record arrives at: the wall clock passed to `process` (a live
   * service), or the snapshot's own time (replaying a recording, where the wall
   * clock says nothing about the run).
   */
  clock: "wall" | "snapshot";
}

const TRANSIENT = { transient: true } as const;

export class SnapshotProcessor {
  private readonly budget: UnitBudget;
  private readonly codecLimits: Partial<SnapshotLimits>;

  constructor(
    private readonly detector: Detector,
    private readonly options: ProcessorOptions,
  ) {
    this.budget = new UnitBudget(options.limits);
    this.codecLimits = { maxMessageBytes: options.limits.max_message_bytes };
  }

  process(record: SourceRecord, encoding: RecordEncoding, wallMs: number): Effects {
    const value = record.value ?? Buffer.alloc(0);
    let snapshot: ActivationSnapshot;
    try {
      snapshot =
        encoding.kind === "single-object"
          ? // Transient: the snapshot is applied below and dropped before the next record is decoded.
            decodeSnapshot(value, this.codecLimits, TRANSIENT)
          : decodeSnapshotBody(value, encoding.writerSchema, this.codecLimits);
    } catch (err) {
      if (!(err instanceof CodecError)) throw err;
      return reject(record, "invalid", err.reason, err.message);
    }
    const nowMs = this.options.clock === "snapshot" ? snapshot.time : wallMs;
    const { run_id, layer, layer_units } = snapshot;
    const events: ServiceEvent[] = [];
    const admission = this.budget.admit(run_id, layer, layer_units, nowMs, this.options.evictIdleMs);
    if (!admission.admitted) return reject(record, "over_limit", admission.reason, admission.message);
    if (admission.evict.length > 0) {
      for (const run of admission.evict) this.forgetRun(run);
      events.push({ kind: "runs_evicted", runs: admission.evict, reason: "budget" });
    }

    const outcome = this.detector.apply(snapshot, nowMs);
    this.budget.track(run_id, layer, layer_units, nowMs);
    events.push(
      this.options.clock === "wall"
        ? { kind: "applied", result: outcome.result, ageSeconds: (wallMs - snapshot.time) / 1000 }
        : { kind: "applied", result: outcome.result },
    );
    for (const notice of outcome.notices) events.push({ kind: "notice", notice });
    return { transitions: outcome.transitions, layer: { run_id, layer }, events };
  }

  /** The verdicts of layers idle for idleFlushMs, on the evidence of their still-open bucket. */
  flushIdle(nowMs: number, idleFlushMs: number): UnitTransition[] {
    return this.detector.flushIdle(nowMs, idleFlushMs);
  }

  /** The verdicts of every layer's open bucket: the end of a finite stream. */
  flushAll(): UnitTransition[] {
    return this.detector.flush();
  }

  /** Housekeeping on wall time: forget runs that went quiet. */
  punctuate(nowMs: number, runIdleTimeoutMs: number): ServiceEvent[] {
    const evicted = this.detector.dropIdleRuns(nowMs, runIdleTimeoutMs);
    for (const run of evicted) this.budget.forgetRun(run);
    return evicted.length > 0
      ? [{ kind: "runs_evicted", runs: evicted, reason: "idle", idleMs: runIdleTimeoutMs }]
      : [];
  }

  /** Drops the state of the given layers (those of a revoked partition). */
  dropLayers(layers: Iterable<{ run_id: string; layer: string }>): number {
    let dropped = 0;
    for (const { run_id, layer } of layers) {
      if (this.detector.dropLayer(run_id, layer)) dropped++;
      this.budget.forgetLayer(run_id, layer);
    }
    return dropped;
  }

  private forgetRun(run: string): void {
    for (const id of this.detector.layerIds()) if (id.run_id === run) this.detector.dropLayer(run, id.layer);
    this.budget.forgetRun(run);
  }
}

function reject(
  record: SourceRecord,
  kind: "invalid" | "over_limit",
  reason: string,
  message: string,
): Effects {
  const source = { topic: record.topic, partition: record.partition, offset: record.offset };
  return {
    transitions: [],
    deadLetter: {
      reason,
      message,
      source,
      key: record.key,
      value: record.value,
      ...(record.headers ? { headers: record.headers } : {}),
    },
    events: [{ kind: "rejected", rejection: kind, reason, message, at: source }],
  };
}
