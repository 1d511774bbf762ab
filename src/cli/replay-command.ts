import { closeSync, openSync, statSync, writeSync } from "node:fs";
import type { AddressInfo } from "node:net";
import { SingleBar } from "cli-progress";
import type { Command } from "commander";
import { addOptionFlags, type LimitSettings, loadSettings, loadSettingsOrExit } from "../config/index.js";
import { Detector, type UnitTransition } from "../core/index.js";
import { createLogger, type Logger } from "../log.js";
import { REJECT_REASONS, SnapshotProcessor } from "../service/snapshot-processor.js";
import { StreamTask } from "../service/stream-task.js";
import { Telemetry } from "../service/telemetry.js";
import { HttpServer } from "../sink/http-server.js";
import { Exporter } from "../sink/prometheus.js";
import { ContainerFileSource, ContainerReadError } from "../source/file-source.js";

export interface ReplayResult {
  snapshots: number;
  results: Record<string, number>;
  transitions: number;
  detector: Detector;
}

/** A file that cannot be replayed: not a snapshot container, or a snapshot the detector rejects. */
export class ReplayError extends Error {
  constructor(
    readonly file: string,
    /** 0-based index of the snapshot within the file; -1 when the file itself is unreadable. */
    readonly index: number,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(
      message.includes(file)
        ? message
        : index < 0
          ? `${file}: ${message}`
          : `${file}: snapshot ${index}: ${message}`,
      options,
    );
    this.name = "ReplayError";
  }
}

/** The settings replay reads: the consumer's detector, limits and on_invalid policy. */
const REPLAY_GROUPS = ["detector", "limits", "input"] as const;

export interface ReplayOptions {
  /** The consumer's limits; their defaults when omitted. */
  limits?: LimitSettings;
  /** What a snapshot that does not decode or is over a limit does: fail the replay (default) or be skipped. */
  onInvalid?: "skip" | "fail";
  /** Counts into this exporter (the --metrics-out exposition); a private one when omitted. */
  exporter?: Exporter;
  log?: Logger;
}

/**
 * Runs the files through the stream task, as `consume` runs a topic: the
 * same decoding, limits and on_invalid policy, on the snapshots' own clock.
 */
export async function replayFiles(
  files: readonly string[],
  detector: Detector,
  onTransition: (t: UnitTransition) => void,
  onProgress?: (file: string, snapshots: number) => void,
  options: ReplayOptions = {},
): Promise<ReplayResult> {
  const defaults = loadSettings({ flags: {}, env: {}, groups: ["service", "limits"] });
  const exporter =
    options.exporter ??
    new Exporter(detector, { unitSeries: false, unitSeriesMax: 0, processMetrics: false });
  const telemetry = new Telemetry(options.log ?? createLogger("replay", "error"), exporter);
  const processor = new SnapshotProcessor(detector, {
    limits: options.limits ?? defaults.limits,
    evictIdleMs: defaults.idle_flush_ms,
    clock: "snapshot",
  });
  let snapshots = 0;
  let transitions = 0;
  const source = new ContainerFileSource(files, (file, records) => {
    snapshots = records;
    onProgress?.(file, records);
  });
  const writer = {
    async write(list: readonly UnitTransition[]) {
      for (const t of list) onTransition(t);
      transitions += list.length;
    },
  };
  const task = new StreamTask(source, processor, writer, telemetry, {
    restoreLookbackMs: 0,
    onInvalid: options.onInvalid ?? "fail",
    idleFlushMs: defaults.idle_flush_ms,
    runIdleTimeoutMs: defaults.run_idle_timeout_ms,
  });
  try {
    await task.start();
  } catch (err) {
    if (err instanceof ContainerReadError) throw new ReplayError(err.file, -1, err.message, { cause: err });
    throw err;
  }
  const rejected = task.rejection();
  if (rejected) {
    throw new ReplayError(rejected.at.topic, Number(rejected.at.offset), rejected.message, {
      cause: rejected,
    });
  }
  await task.finish();
  const counts = await exporter.snapshotCounts();
  const results = { ok: counts.ok ?? 0, duplicate: counts.duplicate ?? 0, late: counts.late ?? 0 };
  for (const k of ["invalid", "over_limit"])
    if (counts[k]) (results as Record<string, number>)[k] = counts[k];
  return { snapshots, results, transitions, detector };
}

/**
 * JSON lines to a file descriptor in 1 MiB writes: synchronous, so a replay
 * emitting millions of transitions never queues them all in memory.
 */
class LineWriter {
  private chunks: string[] = [];
  private size = 0;
  constructor(private readonly fd: number) {}

  write(line: string): void {
    this.chunks.push(line);
    this.size += line.length;
    if (this.size >= 1 << 20) this.flush();
  }

  flush(): void {
    if (this.chunks.length === 0) return;
    writeSync(this.fd, this.chunks.join(""));
    this.chunks = [];
    this.size = 0;
  }

  close(): void {
    this.flush();
    closeSync(this.fd);
  }
}

function fail(message: string, exitCode: number): never {
  process.stderr.write(`reluwatch: ${message}\n`);
  process.exit(exitCode);
}

/** Opens an output file before any work, so a bad path fails at once rather than after the replay. */
function openOutput(flag: string, path: string): number {
  try {
    return openSync(path, "w");
  } catch (err) {
    return fail(`${flag}: cannot write ${path} (${(err as NodeJS.ErrnoException).code ?? String(err)})`, 2);
  }
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
    )
    .option(
      "--serve <port>",
      "then serve the final state until interrupted: the unit explorer at /ui/, the /api and /metrics (0 picks a free port)",
    )
    .option("--serve-host <host>", "address --serve binds to", "127.0.0.1");
  addOptionFlags(command, REPLAY_GROUPS);
  command.action(async (files: string[], opts: Record<string, unknown>) => {
    const settings = loadSettingsOrExit(opts, [...REPLAY_GROUPS]);
    const servePort = opts.serve === undefined ? undefined : parsePort(String(opts.serve));
    const onInvalid = settings.on_invalid ?? "fail";
    if (onInvalid === "dead_letter") {
      fail("invalid setting on_invalid: replay has no dead-letter topic; use skip or fail", 2);
    }
    for (const file of files) {
      let isFile = false;
      try {
        isFile = statSync(file).isFile();
      } catch (err) {
        fail(`cannot read ${file} (${(err as NodeJS.ErrnoException).code ?? String(err)})`, 2);
      }
      if (!isFile) fail(`cannot read ${file} (not a file)`, 2);
    }
    const events =
      typeof opts.events === "string" ? new LineWriter(openOutput("--events", opts.events)) : undefined;
    const metricsFd =
      typeof opts.metricsOut === "string" ? openOutput("--metrics-out", opts.metricsOut) : undefined;
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
    const exporter = new Exporter(detector, {
      unitSeries: false,
      unitSeriesMax: 0,
      processMetrics: false,
      rejectReasons: REJECT_REASONS,
    });
    let result: ReplayResult;
    try {
      result = await replayFiles(
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
        { limits: settings.limits, onInvalid, exporter },
      );
    } catch (err) {
      bar?.stop();
      if (err instanceof ReplayError) fail(`replay: ${err.message}`, 1);
      throw err;
    }
    bar?.update(files.length, { snapshots: result.snapshots });
    bar?.stop();
    events?.close();
    if (metricsFd !== undefined) {
      writeSync(metricsFd, await exporter.metrics());
      closeSync(metricsFd);
    }
    process.stderr.write(
      `replayed ${result.snapshots} snapshots (${Object.entries(result.results)
        .map(([k, v]) => `${k} ${v}`)
        .join(", ")}); ${result.transitions} transitions\n`,
    );
    if (servePort !== undefined) await serve(detector, exporter, String(opts.serveHost), servePort);
  });
}

function parsePort(text: string): number {
  const port = Number(text);
  if (!/^\d+$/.test(text) || port > 65535) fail(`--serve: a port 0..65535, got ${JSON.stringify(text)}`, 2);
  return port;
}

/** Serves the replayed state, read-only, until SIGINT or SIGTERM. */
async function serve(detector: Detector, exporter: Exporter, host: string, port: number): Promise<void> {
  const http = new HttpServer({
    host,
    port,
    api: detector,
    metrics: () => exporter.metrics(),
    metricsContentType: exporter.contentType,
    notReadyReason: () => undefined,
  });
  let address: AddressInfo;
  try {
    address = await http.start();
  } catch (err) {
    fail(
      `--serve: cannot listen on ${host}:${port} (${(err as NodeJS.ErrnoException).code ?? String(err)})`,
      2,
    );
  }
  const shown = address.family === "IPv6" ? `[${address.address}]` : address.address;
  process.stderr.write(`explorer at http://${shown}:${address.port}/ui/ (Ctrl-C to stop)\n`);
  await new Promise<void>((resolve) => {
    process.once("SIGINT", resolve);
    process.once("SIGTERM", resolve);
  });
  await http.stop();
}
