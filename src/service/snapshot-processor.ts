/**
 * The processor between source and sinks, in the shape of a Kafka Streams
 * processor: `process(record)` for each message and `punctuate(time)` for
 * housekeeping. It knows nothing of Kafka clients: the source hands it bytes
 * and positions, and it returns what the sinks must write. Bad input never
 * throws out of here: it becomes a dead-letter instruction with a reason.
 */
import {
  CODEC_ERROR_CODES,
  CodecError,
  codecErrorReason,
  decodeSnapshot,
  type SnapshotLimits,
} from "../codec/index.js";
import type { LimitSettings } from "../config/load.js";
import type { Detector, UnitTransition } from "../core/index.js";
import { type ActivationSnapshot, layerKey } from "../core/snapshot.js";
import type { RecordPosition, Telemetry } from "./telemetry.js";

export interface InputRecord extends RecordPosition {
  value: Buffer | null;
}

export interface DeadLetter {
  /** Stable reason: a codec error code or a limit name. */
  reason: string;
  message: string;
}

export interface ProcessResult {
  transitions: UnitTransition[];
  deadLetter?: DeadLetter;
}

export const LIMIT_REASONS = ["limit_runs", "limit_layers_per_run", "limit_units_per_layer"] as const;

/** Every dead-letter reason this processor can give: the codec's error reasons and the limits. */
export const REJECT_REASONS: readonly string[] = [
  ...CODEC_ERROR_CODES.map(codecErrorReason),
  ...LIMIT_REASONS,
];

export class SnapshotProcessor {
  /** run → layer → partition, to enforce limits and drop a revoked partition's layers. */
  private readonly layers = new Map<string, Map<string, number>>();
  private readonly codecLimits: Partial<SnapshotLimits>;

  constructor(
    private readonly detector: Detector,
    private readonly limits: LimitSettings,
    private readonly telemetry: Telemetry,
  ) {
    this.codecLimits = { maxMessageBytes: limits.max_message_bytes };
  }

  process(record: InputRecord, nowMs: number): ProcessResult {
    const value = record.value ?? Buffer.alloc(0);
    let snapshot: ActivationSnapshot;
    try {
      snapshot = decodeSnapshot(value, this.codecLimits);
    } catch (err) {
      if (!(err instanceof CodecError)) throw err;
      this.telemetry.snapshotRejected("invalid", err.reason, err.message, record);
      return { transitions: [], deadLetter: { reason: err.reason, message: err.message } };
    }

    const overLimit = this.checkLimits(snapshot.run_id, snapshot.layer, snapshot.layer_units);
    if (overLimit) {
      this.telemetry.snapshotRejected("over_limit", overLimit.reason, overLimit.message, record);
      return { transitions: [], deadLetter: overLimit };
    }

    const outcome = this.detector.apply(snapshot, nowMs);
    this.remember(snapshot.run_id, snapshot.layer, record.partition);
    this.telemetry.snapshotApplied(outcome.result, (nowMs - snapshot.time) / 1000);
    for (const notice of outcome.notices) this.telemetry.layerNotice(notice);
    return { transitions: outcome.transitions };
  }

  /** The verdicts of layers idle for idleFlushMs, on the evidence of their still-open bucket. */
  flushIdle(nowMs: number, idleFlushMs: number): UnitTransition[] {
    return this.detector.flushIdle(nowMs, idleFlushMs);
  }

  /** Housekeeping on wall time: forget runs that went quiet. */
  punctuate(nowMs: number, runIdleTimeoutMs: number): string[] {
    const evicted = this.detector.dropIdleRuns(nowMs, runIdleTimeoutMs);
    for (const run of evicted) this.layers.delete(run);
    if (evicted.length > 0) this.telemetry.runsEvicted(evicted, runIdleTimeoutMs);
    return evicted;
  }

  /** Drops the state of every layer that arrived through the given partitions. */
  dropPartitions(partitions: ReadonlySet<number>): number {
    let dropped = 0;
    for (const [run, layers] of this.layers) {
      for (const [layer, partition] of layers) {
        if (!partitions.has(partition)) continue;
        this.detector.dropLayer(run, layer);
        layers.delete(layer);
        dropped++;
      }
      if (layers.size === 0) this.layers.delete(run);
    }
    return dropped;
  }

  private checkLimits(run: string, layer: string, layerUnits: number): DeadLetter | undefined {
    const { max_runs, max_layers_per_run, max_units_per_layer } = this.limits;
    if (layerUnits > max_units_per_layer) {
      return {
        reason: "limit_units_per_layer",
        message: `layer ${layerKey(run, layer)} has ${layerUnits} units; max_units_per_layer is ${max_units_per_layer}`,
      };
    }
    const layers = this.layers.get(run);
    if (!layers) {
      if (this.layers.size >= max_runs) {
        return {
          reason: "limit_runs",
          message: `run ${JSON.stringify(run)} would exceed max_runs (${max_runs})`,
        };
      }
      return undefined;
    }
    if (!layers.has(layer) && layers.size >= max_layers_per_run) {
      return {
        reason: "limit_layers_per_run",
        message: `layer ${layerKey(run, layer)} would exceed max_layers_per_run (${max_layers_per_run})`,
      };
    }
    return undefined;
  }

  private remember(run: string, layer: string, partition: number): void {
    let layers = this.layers.get(run);
    if (!layers) {
      layers = new Map();
      this.layers.set(run, layers);
    }
    layers.set(layer, partition);
  }
}
