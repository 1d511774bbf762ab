import { once } from "node:events";
import { createWriteStream, statSync, writeFileSync } from "node:fs";
import { SingleBar } from "cli-progress";
import type { Command } from "commander";
import { readSnapshotContainer } from "../codec/index.js";
import { addOptionFlags, loadSettingsOrExit } from "../config/index.js";
import { Detector, type UnitTransition } from "../core/index.js";
import { Exporter } from "../sink/prometheus.js";

export interface ReplayResult {
  snapshots: number;
  results: Record<string, number>;
  transitions: number;
  detector: Detector;
}

/**
 * Runs container files through the detector with no Kafka. The snapshot's own
 * time is the clock, so a replay is deterministic: the same files give the
 * same events and the same final metrics.
 */
export async function replayFiles(
  files: readonly string[],
  detector: Detector,
  onTransition: (t: UnitTransition) => void,
  onProgress?: (file: string, snapshots: number) => void,
): Promise<ReplayResult> {
  const results: Record<string, number> = { ok: 0, duplicate: 0, late: 0 };
  let snapshots = 0;
  let transitions = 0;
  for (const file of files) {
    for await (const snapshot of readSnapshotContainer(file)) {
      const outcome = detector.apply(snapshot, snapshot.time);
      results[outcome.result] = (results[outcome.result] ?? 0) + 1;
      for (const t of outcome.transitions) onTransition(t);
      transitions += outcome.transitions.length;
      snapshots++;
      if (snapshots % 1000 === 0) onProgress?.(file, snapshots);
    }
    onProgress?.(file, snapshots);
  }
  // The newest bucket is classified when the next one opens; a recording has no next one.
  const flushed = detector.flush();
  for (const t of flushed) onTransition(t);
  transitions += flushed.length;
  return { snapshots, results, transitions, detector };
}

export function registerReplayCommand(program: Command): void {
  const command = program
    .command("replay")
    .description(
      "run Avro container files of snapshots through the detector offline; write transition events and metrics",
    )
    .argument("<files...>", "ActivationSnapshot container files (as written by `simulate --out` or `record`)")
    .option("--events <file>", "write every UnitTransition as one JSON line (field names as in the schema)")
    .option(
      "--metrics-out <file>",
      "write the Prometheus exposition the consumer would serve for the final state",
    );
  addOptionFlags(command, ["detector"]);
  command.action(async (files: string[], opts: Record<string, unknown>) => {
    const settings = loadSettingsOrExit(opts, ["detector"]);
    for (const file of files) {
      try {
        statSync(file);
      } catch {
        process.stderr.write(`reluwatch: cannot read ${file}\n`);
        process.exit(2);
      }
    }
    const events = typeof opts.events === "string" ? createWriteStream(opts.events) : undefined;
    const bar = process.stderr.isTTY
      ? new SingleBar({
          format: "replay [{bar}] {value}/{total} files | {snapshots} snapshots",
          stream: process.stderr,
        })
      : undefined;
    bar?.start(files.length, 0, { snapshots: 0 });
    let filesDone = 0;
    let lastFile = files[0];
    const detector = new Detector(settings.detector);
    const exporter = new Exporter(detector, { unitSeries: false, unitSeriesMax: 0, processMetrics: false });
    const result = await replayFiles(
      files,
      detector,
      (t) => events?.write(`${JSON.stringify(t)}\n`),
      (file, snapshots) => {
        if (file !== lastFile) {
          filesDone++;
          lastFile = file;
        }
        bar?.update(filesDone, { snapshots });
      },
    );
    bar?.update(files.length, { snapshots: result.snapshots });
    bar?.stop();
    if (events) {
      events.end();
      await once(events, "finish");
    }
    if (typeof opts.metricsOut === "string") {
      for (const [name, count] of Object.entries(result.results)) {
        exporter.countSnapshot(name as "ok" | "duplicate" | "late", count);
      }
      writeFileSync(opts.metricsOut, await exporter.metrics());
    }
    process.stderr.write(
      `replayed ${result.snapshots} snapshots (${Object.entries(result.results)
        .map(([k, v]) => `${k} ${v}`)
        .join(", ")}); ${result.transitions} transitions\n`,
    );
  });
}
