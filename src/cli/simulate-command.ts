/**
 * `reluwatch simulate`: a synthetic fleet of trainers, to a Kafka topic (at a
 * target rate) or to a container file, plus its ground truth as JSON. The
 * records depend only on the scenario, never on the destination.
 */
import { writeFile } from "node:fs/promises";
import { type Command, InvalidArgumentError, Option } from "commander";
import { writeSnapshotContainer } from "../codec/index.js";
import { addOptionFlags, type KafkaSettings, loadSettingsOrExit } from "../config/index.js";
import type { ActivationSnapshot } from "../core/snapshot.js";
import {
  type PublisherCompression,
  type PublisherStats,
  SnapshotPublisher,
} from "../publisher/snapshot-publisher.js";
import {
  BUILT_IN_SCENARIOS,
  type DeathEvent,
  fleetSize,
  fleetTruth,
  generateFleet,
  resolveScenario,
  type Scenario,
  ScenarioError,
  type StaleRank,
} from "../sim/index.js";
import { CommandError, exitOnFatal } from "./fatal.js";
import { type Progress, progressBar } from "./progress.js";

export interface SimulateOptions {
  scenario: Scenario;
  out?: string;
  truth?: string;
  /** Publish to Kafka with this connection (brokers, TLS, SASL). */
  kafka?: KafkaSettings;
  topic?: string;
  /** Snapshots per second to Kafka; 0 or undefined = as fast as the broker takes them. */
  rate?: number;
  compression?: PublisherCompression;
  progress?: Progress;
}

export interface SimulateSummary {
  scenario: string;
  seed: number;
  snapshots: number;
  out?: string;
  truth?: string;
  kafka?: PublisherStats;
}

async function* paced(source: Iterable<ActivationSnapshot>, rate: number | undefined, progress?: Progress) {
  const start = Date.now();
  let i = 0;
  for (const s of source) {
    if (rate && rate > 0) {
      const due = start + (i * 1000) / rate;
      const wait = due - Date.now();
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    }
    i++;
    progress?.tick();
    yield s;
  }
}

/** Generates the scenario's fleet into every destination given. */
export async function runSimulate(opts: SimulateOptions): Promise<SimulateSummary> {
  const sc = opts.scenario;
  const toKafka = opts.kafka !== undefined && opts.kafka.brokers.length > 0;
  if (!opts.out && !toKafka && !opts.truth)
    throw new CommandError("give --out FILE, --brokers with --topic, or --truth FILE", 2);
  if (toKafka && !opts.topic) throw new CommandError("--brokers needs --topic", 2);
  if (opts.out && toKafka)
    throw new CommandError(
      "give either --out or --brokers, not both (run twice with the same seed instead)",
      2,
    );
  const summary: SimulateSummary = { scenario: sc.name, seed: sc.seed, snapshots: 0 };
  if (opts.truth) {
    await writeFile(opts.truth, `${JSON.stringify(fleetTruth(sc))}\n`);
    summary.truth = opts.truth;
  }
  if (opts.out) {
    await writeSnapshotContainer(
      opts.out,
      (async function* () {
        for await (const s of paced(generateFleet(sc), undefined, opts.progress)) {
          summary.snapshots++;
          yield s;
        }
      })(),
      { metadata: { "reluwatch.scenario": JSON.stringify(sc) } },
    );
    summary.out = opts.out;
  }
  if (toKafka) {
    // A load generator must not lose records: wait for room rather than drop.
    const publisher = new SnapshotPublisher({
      connection: opts.kafka!,
      topic: opts.topic!,
      overflow: "wait",
      wait_timeout_ms: 120_000,
      ...(opts.compression ? { compression: opts.compression } : {}),
    });
    await publisher.connect();
    try {
      for await (const s of paced(generateFleet(sc), opts.rate, opts.progress)) {
        await publisher.publish(s);
        summary.snapshots++;
      }
    } finally {
      summary.kafka = await publisher.close({ timeout_ms: 120_000 });
    }
    if (summary.kafka.dropped + summary.kafka.failed > 0) {
      throw new CommandError(
        `only ${summary.kafka.sent} of ${summary.snapshots} snapshots reached Kafka at ${opts.kafka!.brokers.join(",")} (topic ${opts.topic}): ${JSON.stringify(summary.kafka)}`,
      );
    }
  }
  opts.progress?.stop();
  return summary;
}

// ---- flag parsing ----

function intArg(name: string, min = 0) {
  return (v: string): number => {
    const n = Number(v);
    if (!Number.isSafeInteger(n) || n < min)
      throw new InvalidArgumentError(`${name} must be an integer >= ${min}`);
    return n;
  };
}

function fractionArg(v: string): number {
  const n = Number(v);
  if (!(n >= 0 && n <= 1)) throw new InvalidArgumentError("must be a fraction in [0, 1]");
  return n;
}

function rangeArg(v: string): [number, number] {
  const parts = v.split(",").map(Number);
  if (parts.length !== 2 || parts.some((x) => !Number.isFinite(x)))
    throw new InvalidArgumentError("must be LO,HI");
  return [parts[0]!, parts[1]!];
}

/** `LAYER:FRACTION@STEP` or `LAYER:FRACTION@STEP#RUN`, repeatable. */
export function parseEvent(v: string, previous: DeathEvent[] = []): DeathEvent[] {
  const m = /^(\d+):([0-9.eE+-]+)@(\d+)(?:#(\d+))?$/.exec(v.trim());
  if (!m) throw new InvalidArgumentError(`"${v}" is not LAYER:FRACTION@STEP[#RUN]`);
  const e: DeathEvent = { layer: Number(m[1]), fraction: fractionArg(m[2]!), step: Number(m[3]) };
  if (m[4] !== undefined) e.run = Number(m[4]);
  return [...previous, e];
}

/** `RANK@STEP`, repeatable. */
export function parseStaleRank(v: string, previous: StaleRank[] = []): StaleRank[] {
  const m = /^(\d+)@(\d+)$/.exec(v.trim());
  if (!m) throw new InvalidArgumentError(`"${v}" is not RANK@STEP`);
  return [...previous, { rank: Number(m[1]), after_step: Number(m[2]) }];
}

interface SimulateFlags {
  scenario: string;
  seed?: number;
  runs?: number;
  ranks?: number;
  shards?: number;
  layers?: number;
  units?: number;
  steps?: number;
  interval?: number;
  samples?: number;
  payload?: "counts" | "raw";
  sums?: boolean;
  activeRates?: [number, number];
  silentRates?: [number, number];
  silentFraction?: number;
  bornDead?: number;
  death?: DeathEvent[];
  revive?: DeathEvent[];
  staleRank?: StaleRank[];
  out?: string;
  truth?: string;
  brokers?: string;
  topic?: string;
  rate?: number;
  compression?: PublisherCompression;
}

/** The scenario the flags describe: the named built-in, each given flag overriding its field. */
export function scenarioFromFlags(f: SimulateFlags): Scenario {
  const base = resolveScenario(f.scenario);
  const o: Partial<Scenario> = {};
  const copy = <K extends keyof Scenario>(key: K, value: Scenario[K] | undefined) => {
    if (value !== undefined) o[key] = value;
  };
  copy("seed", f.seed);
  copy("runs", f.runs);
  copy("ranks", f.ranks);
  copy("shards", f.shards);
  copy("layers", f.layers);
  copy("units", f.units);
  copy("steps", f.steps);
  copy("interval", f.interval);
  copy("samples", f.samples);
  copy("payload", f.payload);
  copy("sums", f.sums);
  copy("born_dead", f.bornDead);
  copy("deaths", f.death);
  copy("revivals", f.revive);
  copy("stale_ranks", f.staleRank);
  if (f.activeRates || f.silentRates || f.silentFraction !== undefined) {
    o.rates = {
      active: f.activeRates ?? base.rates.active,
      silent: f.silentRates ?? base.rates.silent,
      silent_fraction: f.silentFraction ?? base.rates.silent_fraction,
    };
  }
  return resolveScenario(f.scenario, o);
}

export function registerSimulateCommand(program: Command): void {
  const command = program
    .command("simulate")
    .description(
      "generate a synthetic fleet of trainers' snapshots, to Kafka or to a container file, with ground truth",
    )
    .addOption(
      new Option("--scenario <name>", "built-in scenario the other flags modify")
        .choices(Object.keys(BUILT_IN_SCENARIOS))
        .default("healthy"),
    )
    .option("--seed <n>", "PRNG seed: same seed and flags, same records", intArg("--seed"))
    .option("--runs <n>", "training runs", intArg("--runs", 1))
    .option("--ranks <n>", "data-parallel ranks per run", intArg("--ranks", 1))
    .option("--shards <n>", "tensor-parallel shards per layer", intArg("--shards", 1))
    .option("--layers <n>", "layers per run", intArg("--layers", 1))
    .option("--units <n>", "units per layer", intArg("--units", 1))
    .option("--steps <n>", "training steps", intArg("--steps", 1))
    .option("--interval <n>", "steps between snapshots", intArg("--interval", 1))
    .option("--samples <n>", "samples per snapshot (per rank and shard)", intArg("--samples", 1))
    .addOption(new Option("--payload <kind>", "snapshot payload").choices(["counts", "raw"]))
    .option("--sums", "send abs_sum and sq_sum with counts")
    .option("--active-rates <lo,hi>", "healthy units' firing rates, uniform", rangeArg)
    .option("--silent-rates <lo,hi>", "mostly-silent units' firing rates, log-uniform", rangeArg)
    .option("--silent-fraction <f>", "fraction of living units that are mostly silent", fractionArg)
    .option("--born-dead <f>", "fraction of each layer's units dead from step 0", fractionArg)
    .option(
      "--death <L:F@S[#R]>",
      "fraction F of layer L dies at step S (in run R only); repeatable, replaces the scenario's",
      parseEvent,
    )
    .option(
      "--revive <L:F@S[#R]>",
      "fraction F of layer L's dead units revive at step S; repeatable",
      parseEvent,
    )
    .option("--stale-rank <R@S>", "rank R stops publishing at step S; repeatable", parseStaleRank)
    .option("--out <file>", "write an Avro container file (deflate)")
    .option("--truth <file>", "write the ground truth as JSON")
    .option("--brokers <list>", "publish to Kafka: comma-separated host:port")
    .option("--topic <topic>", "Kafka topic")
    .option("--rate <n>", "target snapshots per second to Kafka (0: unthrottled)", intArg("--rate"))
    .addOption(
      new Option("--compression <codec>", "Kafka batch compression (default: the publisher's, zstd)").choices(
        ["none", "gzip", "zstd"],
      ),
    );
  // The connection settings but brokers: --brokers above is what sends the fleet to Kafka at all.
  addOptionFlags(command, ["kafka"], ["brokers"]);
  command.action(async (flags: SimulateFlags & Record<string, unknown>) => {
    let scenario: Scenario;
    try {
      scenario = scenarioFromFlags(flags);
    } catch (err) {
      if (err instanceof ScenarioError) command.error(`error: ${err.message}`, { exitCode: 2 });
      throw err;
    }
    const progress = progressBar("simulate", fleetSize(scenario));
    const brokers = flags.brokers
      ?.split(",")
      .map((b) => b.trim())
      .filter(Boolean);
    const connection = loadSettingsOrExit(flags, ["kafka"]).kafka;
    const summary = await runSimulate({
      scenario,
      out: flags.out,
      truth: flags.truth,
      ...(brokers ? { kafka: { ...connection, brokers } } : {}),
      topic: flags.topic,
      rate: flags.rate,
      compression: flags.compression,
      progress,
    }).catch((err: unknown) => exitOnFatal("simulate", err, { brokers: brokers ?? [], topic: flags.topic }));
    process.stderr.write(`${JSON.stringify(summary)}\n`);
  });
}
