/**
 * The service's internal events. Each is one method that both logs and
 * counts, so the log and the metrics can never tell different stories.
 */
import type { LayerNotice, UnitTransition } from "../core/index.js";
import type { Logger } from "../log.js";
import type { Exporter, SnapshotResult } from "../sink/prometheus.js";

export interface RecordPosition {
  topic: string;
  partition: number;
  offset: string;
}

export class Telemetry {
  constructor(
    readonly log: Logger,
    private readonly exporter: Exporter,
  ) {}

  snapshotApplied(result: Exclude<SnapshotResult, "invalid" | "over_limit">, ageSeconds: number): void {
    this.exporter.countSnapshot(result);
    if (result === "ok") this.exporter.observeAge(ageSeconds);
  }

  snapshotRejected(
    kind: "invalid" | "over_limit",
    reason: string,
    message: string,
    at: RecordPosition,
  ): void {
    this.exporter.countRejected(kind, reason);
    this.log.warn({ event: "snapshot_rejected", result: kind, reason, ...at }, message);
  }

  layerNotice(notice: LayerNotice): void {
    this.log.warn({ event: `layer_${notice.kind}`, ...notice }, notice.detail);
  }

  transition(t: UnitTransition): void {
    // pino's own `time` (when it was logged) must not be overwritten by the snapshot's.
    const { time, ...rest } = t;
    this.log.info(
      { event: "unit_transition", ...rest, snapshot_time: time },
      `${t.run_id}/${t.layer} unit ${t.unit}: ${t.from} -> ${t.to}`,
    );
  }

  restoreStarted(partitions: Array<{ topic: string; partition: number; from: string; until: string }>): void {
    this.exporter.setRestoring(true);
    this.log.info({ event: "restore_started", partitions }, "rebuilding windows of assigned partitions");
  }

  restoreFinished(): void {
    this.exporter.setRestoring(false);
    this.log.info({ event: "restore_finished" }, "windows rebuilt; live");
  }

  partitionsRevoked(partitions: number[], layers: number): void {
    this.log.info({ event: "partitions_revoked", partitions, layers }, "dropped state of revoked partitions");
  }

  runsEvicted(runs: string[], idleMs: number): void {
    this.log.info({ event: "runs_evicted", runs, idle_ms: idleMs }, "forgot idle runs");
  }

  lag(topic: string, partition: number, messages: number): void {
    this.exporter.setLag(topic, partition, messages);
  }

  lagDropped(topic: string, partition: number): void {
    this.exporter.dropLag(topic, partition);
  }
}
