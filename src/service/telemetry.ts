/**
 * The service's internal events. Each is one method that both logs and
 * counts, so the log and the metrics can never tell different stories.
 */
import type { ApplyResult, LayerNotice, UnitTransition } from "../core/index.js";
import type { Logger } from "../log.js";
import type { Exporter, SnapshotResult } from "../sink/prometheus.js";

export interface RecordPosition {
  topic: string;
  partition: number;
  offset: string;
}

/** What the processor and the stream task report; `record` turns each into its log line and metric. */
export type ServiceEvent =
  /** ageSeconds: from the snapshot's time to its arrival; absent when replaying a recording. */
  | { kind: "applied"; result: ApplyResult; ageSeconds?: number }
  | {
      kind: "rejected";
      rejection: "invalid" | "over_limit";
      reason: string;
      message: string;
      at: RecordPosition;
    }
  | { kind: "notice"; notice: LayerNotice }
  | { kind: "runs_evicted"; runs: string[]; reason: "idle" | "budget"; idleMs?: number };

export class Telemetry {
  constructor(
    readonly log: Logger,
    private readonly exporter: Exporter,
  ) {}

  record(events: readonly ServiceEvent[]): void {
    for (const e of events) {
      if (e.kind === "applied") this.snapshotApplied(e.result, e.ageSeconds);
      else if (e.kind === "rejected") this.snapshotRejected(e.rejection, e.reason, e.message, e.at);
      else if (e.kind === "notice") this.layerNotice(e.notice);
      else this.runsEvicted(e.runs, e.reason, e.idleMs);
    }
  }

  snapshotApplied(result: Exclude<SnapshotResult, "invalid" | "over_limit">, ageSeconds?: number): void {
    this.exporter.countSnapshot(result);
    if (result === "ok" && ageSeconds !== undefined) this.exporter.observeAge(ageSeconds);
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

  /**
   * Logs a batch's transitions. A unit's first verdict (from UNKNOWN) is routine
   * and comes for every unit of a new layer at once, so those are summarised in
   * one line per layer; every later change (deaths, revivals, sparsity moves)
   * gets a line of its own, whether or not the `events` setting puts it on
   * the events topic.
   */
  transitions(list: readonly UnitTransition[]): void {
    const firstVerdicts = new Map<
      string,
      { run_id: string; layer: string; step: number; to: Record<string, number> }
    >();
    for (const t of list) {
      if (t.from === "UNKNOWN") {
        const key = `${t.run_id}\u0000${t.layer}`;
        let summary = firstVerdicts.get(key);
        if (!summary) {
          summary = { run_id: t.run_id, layer: t.layer, step: t.step, to: {} };
          firstVerdicts.set(key, summary);
        }
        summary.to[t.to] = (summary.to[t.to] ?? 0) + 1;
        summary.step = Math.max(summary.step, t.step);
        continue;
      }
      // pino's own `time` (when it was logged) must not be overwritten by the snapshot's.
      const { time, ...rest } = t;
      this.log.info(
        { event: "unit_transition", ...rest, snapshot_time: time },
        `${t.run_id}/${t.layer} unit ${t.unit}: ${t.from} -> ${t.to}`,
      );
    }
    for (const s of firstVerdicts.values()) {
      this.log.info(
        { event: "first_verdicts", ...s },
        `${s.run_id}/${s.layer}: first verdicts at step ${s.step}`,
      );
    }
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

  runsEvicted(runs: string[], reason: "idle" | "budget", idleMs?: number): void {
    if (reason === "idle") {
      this.log.info({ event: "runs_evicted", reason, runs, idle_ms: idleMs }, "forgot idle runs");
    } else {
      this.log.warn(
        { event: "runs_evicted", reason, runs },
        "forgot idle runs to make room for a new layer within max_tracked_units",
      );
    }
  }

  /** A commit failed: its partitions (those still owned) are planned again. */
  commitFailed(f: {
    guarantee: "at_least_once" | "exactly_once";
    partitions: number[];
    replanned: number[];
    effects: number;
    error: string;
  }): void {
    this.exporter.commitFailed(f.guarantee);
    this.log.error(
      { event: "commit_failed", ...f },
      f.replanned.length > 0
        ? "commit failed; restoring its partitions from the state topic and the committed offset"
        : "commit failed",
    );
  }

  lag(topic: string, partition: number, messages: number): void {
    this.exporter.setLag(topic, partition, messages);
  }

  lagDropped(topic: string, partition: number): void {
    this.exporter.dropLag(topic, partition);
  }
}
