/**
 * End-to-end benchmarks against a real broker: `npx tsx bench/e2e.ts`, with
 * BENCH_BROKERS (default 127.0.0.1:19900, a private broker so that nobody
 * else's topics share it). Prints one JSON document on stdout; progress on stderr.
 *
 *   throughput  `reluwatch simulate` fills an 8-partition topic (8 ranks, 48 layers,
 *               4096 units, counts payload, gzip); then, in each of BENCH_RUNS rounds and on
 *               that topic, one after the other: kafkajs fetch-only (its ceiling), the
 *               consumer service with kafka_client=kafkajs, kafkajs + decode+apply, the same
 *               three with @platformatic/kafka. Each service run reports the client its own
 *               "consuming" log line names, so a build that ignores kafka_client shows.
 *   scale_out   a second topic (zstd; one simulated step re-published at every step, as the soak's
 *               generator does, because simulating is slower than publishing), sized from this
 *               run's single-instance rate so that two instances consume together for
 *               BENCH_SCALE_S seconds (default 36; at least 30 are required to count): one
 *               instance over its first half, then two in one group over all of it; rates, the
 *               time both consumed, CPU seconds of each instance and of the broker.
 *   latency and soak
 *               the service under a steady publish rate of half its measured maximum for
 *               BENCH_SOAK_S seconds (default 600), the load coming from a generator process
 *               (bench/lib/load-generator.ts) that reports what it achieved per window:
 *               publish → /metrics latency, RSS, heap and event-loop delay per window; after
 *               the warm-up (BENCH_SOAK_WARMUP_S, default 60 s or a fifth of a shorter soak),
 *               memory growth from a least-squares line through the window samples.
 *   publisher   SnapshotPublisher's cost per snapshot, per compression.
 *
 * Knobs: BENCH_RUNS (rounds, default 3), BENCH_STEPS (topic size in snapshot steps of 384
 * snapshots, default 120: 46,080 snapshots, so that the second half over which the steady rate is taken lasts seconds), BENCH_SOAK_S, BENCH_SOAK_WARMUP_S, BENCH_SOAK_COMPRESSION (the
 * generator's: none by default, zstd | gzip), BENCH_SCALE_S, BENCH_SCALE_RUNS
 * (default 1), BENCH_SERVICE_CLIENT (the client of the soak and scale-out service, default
 * the `kafka_client` setting's default), BENCH_SOAK_FETCH_THREAD=false (the soak's service with
 * fetch_thread off), and BENCH_ONLY=soak with BENCH_SOAK_RATE=N to repeat only the soak at N snapshots/s.
 *
 * Every consumer runs in its own process (bench/lib/consumer-worker.ts), so its
 * CPU time and memory are its own. Rates are taken from the first to the last
 * message handled, so consumer-group join time is not counted.
 */
import { type ChildProcess, fork } from "node:child_process";
import { existsSync, mkdirSync, openSync, readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { Kafka, logLevel } from "kafkajs";
import { runSimulate } from "../src/cli/simulate-command.js";
import { encodeSnapshot } from "../src/codec/index.js";
import { DEFAULT_KAFKA_CLIENT, KAFKA_CLIENTS, type KafkaClient, loadSettings } from "../src/config/index.js";
import type { ActivationSnapshot } from "../src/core/snapshot.js";
import {
  type PublisherCompression,
  type PublisherStats,
  SnapshotPublisher,
} from "../src/publisher/snapshot-publisher.js";
import { generateFleet } from "../src/sim/index.js";
import type {
  WorkerClient,
  WorkerConfig,
  WorkerDone,
  WorkerMode,
  WorkerStats,
} from "./lib/consumer-worker.js";
import type { GeneratorConfig, GeneratorWindow } from "./lib/load-generator.js";
import { benchScenario, INTERVAL, LAYERS, RANKS, UNITS } from "./lib/scenario.js";
import { type Figure, figure, linearFit, load1, percentile, sleep } from "./lib/stats.js";

const brokers = (process.env.BENCH_BROKERS ?? "127.0.0.1:19900").split(",");
/**
 * The soak's broker, and where it keeps its log. make bench gives the soak a broker of its own whose log
 * is in memory (tmpfs): at 150 MB/s a broker writing to this machine's disk stalled for seconds at a
 * time while the service waited on it (docs/profile.md, "The broker's disk"), and a deployed broker
 * has disks and cores of its own.
 */
const soakBrokers = (process.env.BENCH_SOAK_BROKERS ?? brokers.join(",")).split(",");
const SOAK_BROKER_LOG = process.env.BENCH_SOAK_BROKER_LOG ?? "disk";
const RUNS = Number(process.env.BENCH_RUNS ?? 3);
const STEPS = Number(process.env.BENCH_STEPS ?? 120);
/** SnapshotPublishers that fill the scale-out topic together. */
const FILL_PUBLISHERS = 4;
const SOAK_S = Number(process.env.BENCH_SOAK_S ?? 600);
const SOAK_WARMUP_S = Number(process.env.BENCH_SOAK_WARMUP_S ?? Math.min(60, SOAK_S / 5));
// 30 s required, and a few more for the second instance's join and the rebalance.
const SCALE_S = Number(process.env.BENCH_SCALE_S ?? 36);
const SCALE_RUNS = Number(process.env.BENCH_SCALE_RUNS ?? 1);
/** Two instances must consume together at least this long for the scale-out ratio to count. */
const MIN_OVERLAP_S = 30;
/** Seconds one instance may consume alone before the second has joined and the group rebalanced. */
const JOIN_ALLOWANCE_S = 15;
/** Headroom over the fastest single-instance rate measured when sizing the scale-out topic. */
const SCALE_SIZING_MARGIN = 1.25;
/** The soak and the scale-out measure the service as deployed: with the default client unless told otherwise. */
const SERVICE_CLIENT: string = process.env.BENCH_SERVICE_CLIENT ?? DEFAULT_KAFKA_CLIENT;
/**
 * Every service group is new: with start_from's default (lookback) it would rebuild the topic with
 * its events suppressed, not process it; earliest processes it live, events, commits and all, as a
 * service in the steady state does.
 */
const SERVICE_START = "earliest";
const PARTITIONS = 8;
const ROOT = fileURLToPath(new URL("..", import.meta.url));
const LOG_DIR = join(ROOT, "bench", "results", "logs");
mkdirSync(LOG_DIR, { recursive: true });
const stamp = Date.now().toString(36);
const log = (m: string) => process.stderr.write(`[e2e ${new Date().toISOString().slice(11, 19)}] ${m}\n`);

const kafka = new Kafka({ clientId: "bench", brokers, logLevel: logLevel.WARN });
const admin = kafka.admin();
await admin.connect();

async function createTopic(
  topic: string,
  configEntries: Array<{ name: string; value: string }> = [],
  on: typeof admin = admin,
) {
  await on.createTopics({
    waitForLeaders: true,
    topics: [{ topic, numPartitions: PARTITIONS, replicationFactor: 1, configEntries }],
  });
}

/** The compressions the publisher round compares; the same list renders the table. */
const PUBLISHER_COMPRESSIONS = ["none", "gzip", "zstd"] as const satisfies readonly PublisherCompression[];

/** The private bench broker's folder (deploy/kafka-local); undefined when the broker is not the local one. */
function localBrokerDir(): string | undefined {
  const port = brokers[0]?.split(":")[1];
  const dir = join(ROOT, ".kafka-local", port ?? "");
  return port && existsSync(dir) ? dir : undefined;
}

/**
 * Bytes a topic's partitions hold on the private bench broker's disk: record
 * batches as the producer compressed them, which is what crosses the network
 * and fills retention. undefined when the broker is not the local one.
 */
function topicBytesOnDisk(topic: string): number | undefined {
  const brokerDir = localBrokerDir();
  const dataDir = brokerDir && join(brokerDir, "data");
  if (!dataDir || !existsSync(dataDir)) return undefined;
  let bytes = 0;
  for (const dir of readdirSync(dataDir)) {
    if (!/^\d+$/.test(dir.slice(topic.length + 1)) || !dir.startsWith(`${topic}-`)) continue;
    for (const file of readdirSync(join(dataDir, dir))) {
      if (file.endsWith(".log")) bytes += statSync(join(dataDir, dir, file)).size;
    }
  }
  return bytes;
}

/** CPU seconds (user + system) the local broker's JVM has used so far; undefined when it cannot be read. */
function brokerCpuSeconds(): number | undefined {
  try {
    const dir = localBrokerDir();
    if (!dir) return undefined;
    const pid = readFileSync(join(dir, "broker.pid"), "utf8").trim();
    // Fields after the command name (which may hold spaces): utime and stime are the 12th and 13th.
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    // Clock ticks of 1/100 s: USER_HZ on Linux.
    return (Number(fields[11]) + Number(fields[12])) / 100;
  } catch {
    return undefined;
  }
}

// ---- workers ----

interface Progress {
  at_ms: number;
  count: number;
  cpu_s: number;
}

interface Worker {
  child: ChildProcess;
  logFile: string;
  started: Promise<{ metrics_url?: string }>;
  done: Promise<WorkerDone>;
  progress: Progress[];
  /** service: the client it reported consuming with, once its "consuming" line was logged. */
  client(): WorkerClient | undefined;
  stats(): Promise<WorkerStats>;
  stop(): Promise<void>;
}

let workerSeq = 0;
function startWorker(cfg: WorkerConfig): Worker {
  const name = cfg.kafkaClient ? `${cfg.mode}-${cfg.kafkaClient}` : cfg.mode;
  const logFile = join(LOG_DIR, `${stamp}-${++workerSeq}-${name}.log`);
  const out = openSync(logFile, "w");
  const child = fork(fileURLToPath(new URL("./lib/consumer-worker.ts", import.meta.url)), [], {
    execArgv: ["--import", "tsx", "--expose-gc"],
    env: { ...process.env, BENCH_WORKER: JSON.stringify(cfg) },
    stdio: ["ignore", out, out, "ipc"],
  });
  const progress: Worker["progress"] = [];
  let client: WorkerClient | undefined;
  let onStarted: (v: { metrics_url?: string }) => void = () => {};
  let onDone: (v: WorkerDone) => void = () => {};
  let onStats: ((v: WorkerStats) => void) | undefined;
  const started = new Promise<{ metrics_url?: string }>((r) => {
    onStarted = r;
  });
  const exited = new Promise<number | null>((resolve) => child.once("exit", resolve));
  const done = new Promise<WorkerDone>((resolve, reject) => {
    onDone = resolve;
    void exited.then((code) => reject(new Error(`${name} worker exited (${code}); see ${logFile}`)));
  });
  done.catch(() => undefined);
  child.on("message", (m: { type: string } & Record<string, unknown>) => {
    if (m.type === "started") onStarted(m as { metrics_url?: string });
    else if (m.type === "done") onDone(m as unknown as WorkerDone);
    else if (m.type === "progress") progress.push(m as unknown as Progress);
    else if (m.type === "stats") onStats?.(m as unknown as WorkerStats);
    else if (m.type === "client") client = m as unknown as WorkerClient;
  });
  return {
    child,
    logFile,
    started,
    done,
    progress,
    client: () => client,
    stats: () =>
      new Promise<WorkerStats>((resolve) => {
        onStats = resolve;
        child.send({ type: "stats" });
      }),
    stop: async () => {
      if (child.exitCode === null) child.send({ type: "stop" });
      const killer = setTimeout(() => child.kill("SIGKILL"), 15_000);
      await exited;
      clearTimeout(killer);
    },
  };
}

async function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      p,
      new Promise<T>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`${what} did not finish in ${ms / 1000} s`)), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/** Linear interpolation of a sampled, growing quantity at time t (clamped to the samples). */
function valueAt<T extends { at_ms: number }>(samples: readonly T[], t: number, key: keyof T): number {
  let prev: T | undefined;
  for (const p of samples) {
    if (p.at_ms >= t) {
      if (!prev || p.at_ms === prev.at_ms) return p[key] as number;
      const a = prev[key] as number;
      return a + (((p[key] as number) - a) * (t - prev.at_ms)) / (p.at_ms - prev.at_ms);
    }
    prev = p;
  }
  return prev ? (prev[key] as number) : 0;
}
const firstActive = (p: readonly Progress[]) => p.find((x) => x.count > 0)?.at_ms ?? Number.POSITIVE_INFINITY;
function lastGrowth(p: readonly Progress[]): number {
  const final = p.at(-1)?.count ?? 0;
  return p.find((x) => x.count === final)?.at_ms ?? 0;
}

/** Which client a service run fetched with, and how we know. */
interface ClientReport {
  requested: string;
  /** The client the run is compared against: what the process said it used, else what it was asked for. */
  used: string;
  evidence: string;
}

function clientReport(requested: string, w: Worker): ClientReport {
  const c = w.client();
  if (c?.logged) return { requested, used: c.logged, evidence: "its consuming log line" };
  if (c && c.requested === null) {
    return {
      requested,
      used: "kafkajs",
      evidence:
        "this build has no kafka_client setting and its consuming line names no client: kafkajs, its only one",
    };
  }
  return {
    requested,
    used: c?.requested ?? requested,
    evidence: c
      ? "not logged: the setting as loaded"
      : `no consuming log line seen: assumed from the request (see ${w.logFile})`,
  };
}

/** One consumer run over a whole topic: a fetch-only or decode+apply loop, or the service with a client. */
type RoundMode =
  | "kafkajs-fetch"
  | "service-kafkajs"
  | "kafkajs-apply"
  | "platformatic-fetch"
  | "service-platformatic"
  | "service-platformatic-one-thread"
  | "platformatic-apply";
const ROUND_MODES: ReadonlyArray<{
  mode: RoundMode;
  worker: WorkerMode;
  client?: KafkaClient;
  /** The fetch_thread setting, when not its default. */
  fetchThread?: boolean;
}> = [
  { mode: "kafkajs-fetch", worker: "kafkajs-fetch" },
  { mode: "service-kafkajs", worker: "service", client: "kafkajs" },
  { mode: "kafkajs-apply", worker: "kafkajs-apply" },
  { mode: "platformatic-fetch", worker: "platformatic-fetch" },
  { mode: "service-platformatic", worker: "service", client: "platformatic" },
  // The same service with fetching on its main thread: what the fetch thread adds, and a one-core figure.
  { mode: "service-platformatic-one-thread", worker: "service", client: "platformatic", fetchThread: false },
  { mode: "platformatic-apply", worker: "platformatic-apply" },
];

interface RunResult {
  mode: string;
  snapshots_per_s: number;
  snapshots_per_cpu_s: number;
  /**
   * Over the second half of the topic: past every unit's first verdict, the steady state.
   * NaN when the consumer took the whole second half between two progress samples (100 ms).
   */
  steady_snapshots_per_s: number;
  steady_snapshots_per_cpu_s: number;
  seconds: number;
  cpu_s: number;
  rss_mb: number;
  load1: number;
  client?: ClientReport;
  /** Broker CPU seconds from the first to the last message, when the broker is the local one. */
  broker_cpu_s?: number;
}

async function consumeAll(
  mode: string,
  worker: WorkerMode,
  topic: string,
  expected: number,
  kafkaClient?: string,
  fetchThread?: boolean,
): Promise<RunResult> {
  const w = startWorker({
    mode: worker,
    brokers,
    topic,
    group: `bench-${mode}-${stamp}-${workerSeq}`,
    expected,
    ...(kafkaClient ? { kafkaClient, startFrom: SERVICE_START } : {}),
    ...(fetchThread === undefined ? {} : { fetchThread }),
  });
  const broker = new BrokerSampler();
  try {
    const d = await withTimeout(w.done, 900_000, `${mode} on ${topic}`);
    const seconds = (d.last_ms - d.first_ms) / 1000;
    // The first progress sample at or past half the topic, and the first at or past its end.
    await sleep(250);
    const half = w.progress.find((x) => x.count >= expected / 2)!;
    const end = w.progress.find((x) => x.count >= expected) ?? w.progress.at(-1)!;
    const steadyCount = end.count - half.count;
    const brokerCpu = broker.between(d.first_ms, d.last_ms);
    return {
      mode,
      snapshots_per_s: d.count / seconds,
      snapshots_per_cpu_s: d.count / d.cpu_s,
      steady_snapshots_per_s: steadyCount / ((end.at_ms - half.at_ms) / 1000),
      steady_snapshots_per_cpu_s: steadyCount / (end.cpu_s - half.cpu_s),
      seconds,
      cpu_s: d.cpu_s,
      rss_mb: d.rss_bytes / 2 ** 20,
      load1: load1(),
      ...(kafkaClient ? { client: clientReport(kafkaClient, w) } : {}),
      ...(brokerCpu === undefined ? {} : { broker_cpu_s: brokerCpu }),
    };
  } finally {
    broker.stop();
    await w.stop();
  }
}

/** The local broker's CPU time, sampled every 500 ms while a measurement runs. */
class BrokerSampler {
  private readonly samples: Array<{ at_ms: number; cpu_s: number }> = [];
  private readonly timer: NodeJS.Timeout;
  constructor() {
    const sample = () => {
      const cpu = brokerCpuSeconds();
      if (cpu !== undefined) this.samples.push({ at_ms: Date.now(), cpu_s: cpu });
    };
    sample();
    this.timer = setInterval(sample, 500);
  }
  stop(): void {
    clearInterval(this.timer);
  }
  between(t0: number, t1: number): number | undefined {
    if (this.samples.length < 2) return undefined;
    return valueAt(this.samples, t1, "cpu_s") - valueAt(this.samples, t0, "cpu_s");
  }
}

// ---- fill ----

const sample: ActivationSnapshot = generateFleet(benchScenario(1)).next().value as ActivationSnapshot;
const BYTES_PER_SNAPSHOT = encodeSnapshot(sample).length;

function oneRound(): ActivationSnapshot[] {
  return [...generateFleet(benchScenario(1))];
}
const template = oneRound();

async function fill(topic: string, steps: number, compression: PublisherCompression) {
  await createTopic(topic);
  log(
    `filling ${topic}: ${steps} steps × ${RANKS} ranks × ${LAYERS} layers of ${UNITS} units, ${compression}`,
  );
  const t0 = Date.now();
  const filled = await runSimulate({
    scenario: benchScenario(steps),
    kafka: loadSettings({ flags: { brokers: brokers.join(",") }, env: {}, groups: ["kafka"] }).kafka,
    topic,
    compression,
  });
  const seconds = (Date.now() - t0) / 1000;
  log(
    `filled ${filled.snapshots} snapshots (${((filled.snapshots * BYTES_PER_SNAPSHOT) / 1e6).toFixed(0)} MB of Avro) in ${seconds.toFixed(1)} s`,
  );
  return { snapshots: filled.snapshots, seconds, compression, source: "reluwatch simulate (runSimulate)" };
}

/**
 * A topic of `steps` steps of the workload, fast: one simulated step (the template) re-published at
 * every step, as the soak's load generator does. Simulating every step costs ~3 ms of CPU a snapshot,
 * several times what publishing it costs, and the scale-out topic is tens of times the size of the
 * throughput one. The consumers' work per snapshot is the same: decode and apply 4096 counts.
 */
async function fillFromTemplate(topic: string, steps: number, compression: PublisherCompression) {
  await createTopic(topic);
  return publishTemplate(topic, 0, steps * template.length, compression);
}

/** Snapshots `from` .. `from + n - 1` of the template repeated step after step, appended to `topic`. */
async function publishTemplate(topic: string, from: number, n: number, compression: PublisherCompression) {
  log(
    `filling ${topic}: ${n} snapshots from #${from} (one simulated step, re-published per step), ${compression}, ${FILL_PUBLISHERS} publishers`,
  );
  const t0 = Date.now();
  // One request in flight per publisher: several, each owning a share of the layers, keep the broker
  // busy while every layer's steps still leave in order (as in the load generator).
  const publishers = Array.from(
    { length: FILL_PUBLISHERS },
    () =>
      new SnapshotPublisher({
        brokers,
        topic,
        overflow: "wait",
        wait_timeout_ms: 120_000,
        compression,
      }),
  );
  await Promise.all(publishers.map((p) => p.connect()));
  const layers = [...new Set(template.map((t) => t.layer))];
  const publisherOf = new Map(layers.map((layer, i) => [layer, publishers[i % FILL_PUBLISHERS]!]));
  for (let i = from; i < from + n; i++) {
    const t = template[i % template.length]!;
    await publisherOf.get(t.layer)!.publish({
      ...t,
      step: (Math.floor(i / template.length) + 1) * INTERVAL,
      time: Date.now(),
    });
  }
  const stats = await Promise.all(publishers.map((p) => p.close({ timeout_ms: 120_000 })));
  const sent = stats.reduce((a, st) => a + st.sent, 0);
  if (sent !== n) throw new Error(`filling ${topic}: sent ${sent} of ${n}`);
  const seconds = (Date.now() - t0) / 1000;
  log(`filled ${n} snapshots in ${seconds.toFixed(1)} s`);
  return {
    snapshots: n,
    seconds,
    compression,
    source: `one simulated step, re-published per step by ${FILL_PUBLISHERS} SnapshotPublishers`,
  };
}

/** A pass/fail line of docs/benchmarks.md; ok is null when the figure could not be measured. */
export interface Target {
  area: string;
  measure: string;
  value: number;
  figure?: Figure;
  target: string;
  ok: boolean | null;
  note?: string;
}
const check = (value: number, pass: (v: number) => boolean): boolean | null =>
  Number.isFinite(value) ? pass(value) : null;

/** Fill, throughput rounds, scale-out and publisher cost: everything but the soak. */
async function measureThroughput() {
  const fillTopic = `bench.e2e.${stamp}`;
  const filled = await fill(fillTopic, STEPS, "gzip");
  const N = filled.snapshots;

  // ---- throughput: alternating modes, RUNS rounds, all on the same topic ----

  const rounds: RunResult[][] = [];
  for (let r = 0; r < RUNS; r++) {
    const round: RunResult[] = [];
    for (const { mode, worker, client, fetchThread } of ROUND_MODES) {
      const res = await consumeAll(mode, worker, fillTopic, N, client, fetchThread);
      const used = res.client ? ` (client used: ${res.client.used}, from ${res.client.evidence})` : "";
      log(`round ${r + 1} ${mode}: ${res.snapshots_per_s.toFixed(0)} snapshots/s${used} (load ${res.load1})`);
      round.push(res);
    }
    rounds.push(round);
  }
  await admin.deleteTopics({ topics: [fillTopic] }).catch(() => undefined);

  const inRound = (round: RunResult[], mode: string) => round.find((x) => x.mode === mode)!;
  const byMode = (mode: RoundMode, f: (x: RunResult) => number): Figure =>
    figure(rounds.map((round) => f(inRound(round, mode))));
  type RateKey = "snapshots_per_s" | "steady_snapshots_per_s";
  /** a / b per round; b always at its whole-topic rate (a fetch-only ceiling has no warm-up to leave out). */
  const ratio = (
    a: RoundMode,
    b: (round: RunResult[]) => RunResult,
    key: RateKey = "snapshots_per_s",
  ): Figure => figure(rounds.map((round) => inRound(round, a)[key] / b(round).snapshots_per_s));
  const of = (mode: RoundMode) => (round: RunResult[]) => inRound(round, mode);
  /** The fetch-only ceiling of the client a service run actually used. */
  const ownCeiling = (service: RoundMode) => (round: RunResult[]) =>
    inRound(
      round,
      `${inRound(round, service).client?.used === "platformatic" ? "platformatic" : "kafkajs"}-fetch`,
    );
  const scale = (f: Figure, k: number): Figure => ({
    ...f,
    median: f.median * k,
    min: f.min * k,
    max: f.max * k,
  });

  const throughput = Object.fromEntries(
    ROUND_MODES.map(({ mode, client }) => {
      const sps = byMode(mode, (x) => x.snapshots_per_s);
      const clients = client ? rounds.map((round) => inRound(round, mode).client!) : undefined;
      return [
        mode,
        {
          ...(clients
            ? {
                client_requested: client,
                // Every round's own account: a build that fell back in one round and not another shows both.
                client_used: [...new Set(clients.map((c) => c.used))].join(","),
                client_evidence: [...new Set(clients.map((c) => c.evidence))].join("; "),
              }
            : {}),
          snapshots_per_s: sps,
          unit_updates_per_s: scale(sps, UNITS),
          mb_per_s: scale(sps, BYTES_PER_SNAPSHOT / 1e6),
          snapshots_per_cpu_s: byMode(mode, (x) => x.snapshots_per_cpu_s),
          steady_snapshots_per_s: byMode(mode, (x) => x.steady_snapshots_per_s),
          steady_unit_updates_per_s: scale(
            byMode(mode, (x) => x.steady_snapshots_per_s),
            UNITS,
          ),
          steady_snapshots_per_cpu_s: byMode(mode, (x) => x.steady_snapshots_per_cpu_s),
          rss_mb: byMode(mode, (x) => x.rss_mb),
        },
      ];
    }),
  );
  const ratios = {
    service_kafkajs_over_own_fetch: ratio("service-kafkajs", ownCeiling("service-kafkajs")),
    service_platformatic_over_own_fetch: ratio("service-platformatic", ownCeiling("service-platformatic")),
    service_kafkajs_over_kafkajs_fetch: ratio("service-kafkajs", of("kafkajs-fetch")),
    service_platformatic_over_kafkajs_fetch: ratio("service-platformatic", of("kafkajs-fetch")),
    steady_service_kafkajs_over_own_fetch: ratio(
      "service-kafkajs",
      ownCeiling("service-kafkajs"),
      "steady_snapshots_per_s",
    ),
    steady_service_platformatic_over_own_fetch: ratio(
      "service-platformatic",
      ownCeiling("service-platformatic"),
      "steady_snapshots_per_s",
    ),
    steady_service_kafkajs_over_kafkajs_fetch: ratio(
      "service-kafkajs",
      of("kafkajs-fetch"),
      "steady_snapshots_per_s",
    ),
    steady_service_platformatic_over_kafkajs_fetch: ratio(
      "service-platformatic",
      of("kafkajs-fetch"),
      "steady_snapshots_per_s",
    ),
    steady_service_platformatic_one_thread_over_own_fetch: ratio(
      "service-platformatic-one-thread",
      of("platformatic-fetch"),
      "steady_snapshots_per_s",
    ),
    kafkajs_apply_over_kafkajs_fetch: ratio("kafkajs-apply", of("kafkajs-fetch")),
    platformatic_apply_over_platformatic_fetch: ratio("platformatic-apply", of("platformatic-fetch")),
    platformatic_fetch_over_kafkajs_fetch: ratio("platformatic-fetch", of("kafkajs-fetch")),
    platformatic_apply_over_kafkajs_apply: ratio("platformatic-apply", of("kafkajs-apply")),
  };
  const targets: Target[] = [];
  for (const client of KAFKA_CLIENTS) {
    const t = throughput[`service-${client}`] as { client_used: string; client_evidence: string };
    // The service in the steady state: the first verdict of every unit (an event each) is a one-off
    // that a live service is long past, and a small topic would be mostly that.
    const own = ratios[`steady_service_${client}_over_own_fetch`];
    const twice = ratios[`steady_service_${client}_over_kafkajs_fetch`];
    const note =
      t.client_used === client
        ? undefined
        : `asked for ${client}, used ${t.client_used} (${t.client_evidence})`;
    targets.push({
      area: "throughput",
      measure: `service (kafka_client=${client}, used ${t.client_used}), steady state / fetch-only ceiling of ${t.client_used}, same round`,
      value: own.median,
      figure: own,
      target: ">= 0.8",
      ok: check(own.median, (v) => v >= 0.8),
      ...(note ? { note } : {}),
    });
    targets.push({
      area: "throughput",
      measure: `service (kafka_client=${client}, used ${t.client_used}), steady state / kafkajs fetch-only ceiling, same round`,
      value: twice.median,
      figure: twice,
      target: ">= 2",
      ok: check(twice.median, (v) => v >= 2),
      ...(note ? { note } : {}),
    });
  }
  // The steady rate of the client the soak and the scale-out run: a soak runs long past the first verdicts.
  const serviceRound = `service-${SERVICE_CLIENT}` as RoundMode;
  const serviceMax = (throughput[serviceRound] as { steady_snapshots_per_s: Figure }).steady_snapshots_per_s
    .median;

  // Sized from the fastest single-instance rate any round saw, with a margin: the scale-out topic (zstd,
  // one step repeated) runs faster than the throughput topic's steady median, and a topic sized from that
  // median ran out before the two instances had consumed together for MIN_OVERLAP_S.
  const fastest = Math.max(
    ...rounds.flatMap((round) => {
      const r = inRound(round, serviceRound);
      return [r.snapshots_per_s, r.steady_snapshots_per_s].filter(Number.isFinite);
    }),
  );
  const scaleOut = await measureScaleOut(SCALE_SIZING_MARGIN * fastest);
  const publisherOut = await measurePublisher();

  return { N, fill: filled, throughput, ratios, targets, rounds, scaleOut, publisherOut, serviceMax };
}

// ---- scale-out: one instance, then two in one group, on a topic big enough for both to be busy ----

async function measureScaleOut(sizingRate: number) {
  // Two instances at most double one: a topic that lasts SCALE_S at twice the rate keeps both busy that
  // long, once both are in. Until the second has joined (it took ~9 s on 2 busy cores) the first consumes alone.
  const steps = Math.max(STEPS, Math.ceil((sizingRate * (2 * SCALE_S + JOIN_ALLOWANCE_S)) / template.length));
  const topic = `bench.scale.${stamp}`;
  // zstd, the publishers' default: the fill is several times cheaper than gzip's, and it is the same for 1 and 2.
  const filled = await fillFromTemplate(topic, steps, "zstd");
  let N = filled.snapshots;
  /** The single-instance rate the topic was last sized from. */
  let sizedFor = sizingRate;
  const runs = [];
  for (let r = 0; r < SCALE_RUNS; r++) {
    // One instance over the first half of the topic is enough: its steady rate is taken over the second
    // quarter, past the warm-up, and the topic is the same step after step.
    const one = await consumeAll("scale-one", "service", topic, Math.floor(N / 2), SERVICE_CLIENT);
    log(
      `scale-out ${r + 1}, 1 instance: ${one.snapshots_per_s.toFixed(0)}/s, ${one.steady_snapshots_per_s.toFixed(0)}/s steady, ${one.cpu_s.toFixed(1)} CPU s`,
    );
    // This topic (zstd) reads faster than the throughput topic that sized it: sized again from what one
    // instance did on it, and topped up, so that two can consume together for SCALE_S.
    const oneRate = Math.max(
      one.snapshots_per_s,
      Number.isFinite(one.steady_snapshots_per_s) ? one.steady_snapshots_per_s : 0,
    );
    const needed =
      Math.ceil((oneRate * (2 * SCALE_S + JOIN_ALLOWANCE_S)) / template.length) * template.length;
    if (needed > N) {
      const more = await publishTemplate(topic, N, needed - N, "zstd");
      filled.snapshots += more.snapshots;
      filled.seconds += more.seconds;
      N = needed;
      sizedFor = oneRate;
    }

    const group = `bench-scale-${stamp}-${r}`;
    // A partition that moves at the rebalance resumes where its checkpoint in the state topic left it.
    const cfg: WorkerConfig = {
      mode: "service",
      brokers,
      topic,
      group,
      expected: 0,
      startFrom: SERVICE_START,
      kafkaClient: SERVICE_CLIENT,
    };
    const ws = [startWorker(cfg), startWorker(cfg)];
    const broker = new BrokerSampler();
    try {
      await withTimeout(
        (async () => {
          // Done when the topic is through and neither count moved for 2 s (records re-read after a rebalance count twice).
          let total = -1;
          let still = 0;
          for (;;) {
            await sleep(250);
            const now = ws.reduce((a, w) => a + (w.progress.at(-1)?.count ?? 0), 0);
            still = now === total ? still + 250 : 0;
            total = now;
            if (total >= N && still >= 2000) return;
          }
        })(),
        900_000,
        "scale-out run",
      );
    } finally {
      broker.stop();
      await Promise.all(ws.map((w) => w.stop()));
    }
    const starts = ws.map((w) => firstActive(w.progress));
    const ends = ws.map((w) => lastGrowth(w.progress));
    const start = Math.min(...starts);
    const end = Math.max(...ends);
    // Both consuming: from the later instance's first message to the earlier one's last.
    const s0 = Math.max(...starts);
    const s1 = Math.min(...ends);
    const overlapS = Math.max(0, (s1 - s0) / 1000);
    const inOverlap = ws.map((w) =>
      s1 > s0 ? valueAt(w.progress, s1, "count") - valueAt(w.progress, s0, "count") : Number.NaN,
    );
    const instances = ws.map((w, i) => ({
      snapshots: w.progress.at(-1)?.count ?? 0,
      first_ms: starts[i]! - start,
      last_ms: ends[i]! - start,
      cpu_s: valueAt(w.progress, ends[i]!, "cpu_s") - valueAt(w.progress, starts[i]!, "cpu_s"),
      cpu_s_in_overlap:
        s1 > s0 ? valueAt(w.progress, s1, "cpu_s") - valueAt(w.progress, s0, "cpu_s") : Number.NaN,
      snapshots_in_overlap: inOverlap[i]!,
      process_cpu_s: w.progress.at(-1)?.cpu_s ?? Number.NaN,
      client: clientReport(SERVICE_CLIENT, w),
    }));
    const overlapRate = inOverlap.reduce((a, b) => a + b, 0) / overlapS;
    const brokerOverlap = s1 > s0 ? broker.between(s0, s1) : undefined;
    const res = {
      snapshots: N,
      one_instance: {
        snapshots_per_s: one.snapshots_per_s,
        steady_snapshots_per_s: one.steady_snapshots_per_s,
        seconds: one.seconds,
        cpu_s: one.cpu_s,
        snapshots_per_cpu_s: one.snapshots_per_cpu_s,
        broker_cpu_s: one.broker_cpu_s,
        client: one.client,
      },
      two_instances: {
        combined_snapshots_per_s: instances.reduce((a, x) => a + x.snapshots, 0) / ((end - start) / 1000),
        overlap_s: overlapS,
        overlap_snapshots_per_s: overlapRate,
        overlap_snapshots_per_cpu_s:
          inOverlap.reduce((a, b) => a + b, 0) / instances.reduce((a, x) => a + x.cpu_s_in_overlap, 0),
        broker_cpu_s_in_overlap: brokerOverlap,
        instances,
      },
      // Against one instance past its warm-up: the overlap, too, comes after both instances' first verdicts.
      ratio_to_one: overlapS >= MIN_OVERLAP_S ? overlapRate / one.steady_snapshots_per_s : Number.NaN,
      load1: load1(),
    };
    log(
      `scale-out ${r + 1}, 2 instances: ${instances.map((x) => `${x.first_ms}..${x.last_ms} ms, ${x.snapshots} snapshots, ${x.cpu_s.toFixed(1)} CPU s`).join("; ")}; both for ${overlapS.toFixed(1)} s at ${overlapRate.toFixed(0)}/s (×${(overlapRate / one.steady_snapshots_per_s).toFixed(2)})`,
    );
    runs.push(res);
  }
  await admin.deleteTopics({ topics: [topic] }).catch(() => undefined);
  const overlap = figure(runs.map((x) => x.two_instances.overlap_s));
  return {
    instances: 2,
    partitions: PARTITIONS,
    client: SERVICE_CLIENT,
    fill: filled,
    sized_for: { one_instance_rate: sizedFor, overlap_s: SCALE_S, join_allowance_s: JOIN_ALLOWANCE_S },
    min_overlap_s: MIN_OVERLAP_S,
    overlap_s: overlap,
    one_instance_snapshots_per_s: figure(runs.map((x) => x.one_instance.steady_snapshots_per_s)),
    overlap_snapshots_per_s: figure(runs.map((x) => x.two_instances.overlap_snapshots_per_s)),
    combined_snapshots_per_s: figure(runs.map((x) => x.two_instances.combined_snapshots_per_s)),
    ratio_to_one_instance: figure(runs.map((x) => x.ratio_to_one)),
    one_instance_snapshots_per_cpu_s: figure(runs.map((x) => x.one_instance.snapshots_per_cpu_s)),
    overlap_snapshots_per_cpu_s: figure(runs.map((x) => x.two_instances.overlap_snapshots_per_cpu_s)),
    runs,
  };
}

/** SnapshotPublisher's cost per snapshot for each compression: CPU, and bytes on the broker. */
async function measurePublisher() {
  async function publisherRun(
    topic: string,
    client: KafkaClient,
    compression: PublisherCompression,
    n: number,
  ) {
    const publisher = new SnapshotPublisher({
      brokers,
      topic,
      client,
      overflow: "wait",
      wait_timeout_ms: 60_000,
      compression,
    });
    await publisher.connect();
    const cpu0 = process.cpuUsage();
    const t0 = performance.now();
    let inPublish = 0;
    for (let i = 0; i < n; i++) {
      const t = template[i % template.length]!;
      const s = { ...t, step: Math.floor(i / template.length) * 50, time: Date.now() };
      const c = process.cpuUsage();
      await publisher.publish(s);
      const d = process.cpuUsage(c);
      inPublish += d.user + d.system;
    }
    const stats = await publisher.close({ timeout_ms: 120_000 });
    const seconds = (performance.now() - t0) / 1000;
    const cpu = process.cpuUsage(cpu0);
    if (stats.sent !== n) throw new Error(`publisher sent ${stats.sent} of ${n}`);
    const onDisk = topicBytesOnDisk(topic);
    return {
      snapshots_per_s: n / seconds,
      cpu_us_per_snapshot: (cpu.user + cpu.system) / n,
      publish_call_cpu_us: inPublish / n,
      ...(onDisk === undefined ? {} : { wire_bytes_per_snapshot: onDisk / n }),
    };
  }

  const PUBLISH_N = 4 * template.length;
  const publisherOut: Record<string, unknown> = {
    snapshot_bytes: BYTES_PER_SNAPSHOT,
    snapshots_per_run: PUBLISH_N,
  };
  const byClient: Record<string, Record<string, unknown>> = {};
  for (const client of KAFKA_CLIENTS) {
    byClient[client] = {};
    for (const compression of PUBLISHER_COMPRESSIONS) {
      const runs = [];
      for (let r = 0; r < RUNS; r++) {
        // A topic per run, so the bytes on disk are this run's alone.
        const topic = `bench.publisher.${stamp}.${client}.${compression}.${r}`;
        await createTopic(topic);
        runs.push(await publisherRun(topic, client, compression, PUBLISH_N));
        await admin.deleteTopics({ topics: [topic] }).catch(() => undefined);
      }
      const wire = runs.flatMap((x) =>
        x.wire_bytes_per_snapshot === undefined ? [] : [x.wire_bytes_per_snapshot],
      );
      byClient[client][compression] = {
        snapshots_per_s: figure(runs.map((x) => x.snapshots_per_s)),
        cpu_us_per_snapshot: figure(runs.map((x) => x.cpu_us_per_snapshot)),
        publish_call_cpu_us: figure(runs.map((x) => x.publish_call_cpu_us)),
        ...(wire.length > 0 ? { wire_bytes_per_snapshot: figure(wire) } : {}),
        load1: load1(),
      };
      log(`publisher ${client} ${compression}: ${JSON.stringify(byClient[client][compression])}`);
    }
  }
  return { ...publisherOut, clients: byClient };
}

// BENCH_ONLY=publisher: only the publisher round, printed as JSON (to repeat it without the rest).
if (process.env.BENCH_ONLY === "publisher") {
  process.stdout.write(`${JSON.stringify({ brokers, publisher: await measurePublisher() }, null, 2)}\n`);
  await admin.disconnect();
  process.exit(0);
}

// BENCH_ONLY=soak with BENCH_SOAK_RATE: only the soak, at a given rate (to repeat it without the rest).
const soakOnly = process.env.BENCH_ONLY === "soak";
const measured = soakOnly ? undefined : await measureThroughput();
const serviceMax = measured?.serviceMax ?? 2 * Number(process.env.BENCH_SOAK_RATE ?? Number.NaN);
if (!Number.isFinite(serviceMax)) throw new Error("BENCH_ONLY=soak needs BENCH_SOAK_RATE");

// ---- latency and soak at half the service's maximum rate ----

const rate = Math.max(1, Math.round(serviceMax / 2));
const soakTopic = `bench.soak.${stamp}`;
const soakAdmin =
  soakBrokers.join(",") === brokers.join(",")
    ? admin
    : new Kafka({ clientId: "bench-soak", brokers: soakBrokers, logLevel: logLevel.WARN }).admin();
if (soakAdmin !== admin) await soakAdmin.connect();
// Old segments go quickly: uncompressed at 9,000 snapshots/s a soak writes 150 MB/s, and a 10-minute
// one would otherwise fill the disk, or the memory of make bench's soak broker (bench/soak-broker.properties
// has it check retention every 5 s and delete at once: about a minute and a half of the soak, 9 GB, is kept).
await createTopic(
  soakTopic,
  [
    { name: "retention.ms", value: "60000" },
    { name: "segment.bytes", value: String(32 * 1024 * 1024) },
  ],
  soakAdmin,
);
const service = startWorker({
  mode: "service",
  brokers: soakBrokers,
  topic: soakTopic,
  group: `bench-soak-${stamp}`,
  expected: 0,
  startFrom: SERVICE_START,
  kafkaClient: SERVICE_CLIENT,
  ...(process.env.BENCH_SOAK_FETCH_THREAD
    ? { fetchThread: process.env.BENCH_SOAK_FETCH_THREAD !== "false" }
    : {}),
});
const { metrics_url: metricsUrl } = await withTimeout(service.started, 60_000, "service start");
const readyUrl = metricsUrl!.replace(/\/metrics$/, "/readyz");
await withTimeout(
  (async () => {
    while ((await fetch(readyUrl).catch(() => undefined))?.status !== 200) await sleep(200);
  })(),
  60_000,
  "service readiness",
);

// Uncompressed by default: on 2 shared cores the generator's zstd (~0.5 ms of CPU a snapshot) would take
// from the service the CPU whose latency is measured. The service's own cost hardly changes: unpacking a
// zstd batch is a small part of decoding and applying it. BENCH_SOAK_COMPRESSION=zstd sends as trainers do.
const soakCompression = (process.env.BENCH_SOAK_COMPRESSION ?? "none") as PublisherCompression;
/**
 * The generator kept up in a window when it published at least this share of its target and its
 * publishers' queue (accepted, not yet acknowledged) held at most MAX_BACKLOG_S seconds of the rate.
 */
const KEPT_UP = 0.98;
const MAX_BACKLOG_S = 1;
// /metrics computes every layer's summary per scrape; much more often than this would load the service itself.
const SCRAPE_MS = 250;
// Windows of 10 s (5 s in a soak under 5 minutes): each one a memory sample (after a full GC) and a latency figure.
const windowMs = SOAK_S >= 300 ? 10_000 : 5_000;
const windows = Math.max(2, Math.round((SOAK_S * 1000) / windowMs));
log(
  `soak: ${SOAK_S} s at ${rate} snapshots/s (half of ${serviceMax.toFixed(0)}), generator ${soakCompression}, ${windows} windows of ${windowMs / 1000} s, warm-up ${SOAK_WARMUP_S} s, scrape every ${SCRAPE_MS} ms`,
);

/** Publish times of rank 0's snapshots per layer, in step order, until the step shows in /metrics. */
const pending = new Map<string, Array<{ step: number; at: number }>>();
const generator = (() => {
  const cfg: GeneratorConfig = { brokers: soakBrokers, topic: soakTopic, rate, compression: soakCompression };
  const logFile = join(LOG_DIR, `${stamp}-generator.log`);
  const out = openSync(logFile, "w");
  const child = fork(fileURLToPath(new URL("./lib/load-generator.ts", import.meta.url)), [], {
    execArgv: ["--import", "tsx"],
    env: { ...process.env, BENCH_GENERATOR: JSON.stringify(cfg) },
    stdio: ["ignore", out, out, "ipc"],
  });
  let onStarted: () => void = () => {};
  let onWindow: ((w: GeneratorWindow) => void) | undefined;
  let onDone: (s: PublisherStats) => void = () => {};
  const exited = new Promise<number | null>((resolve) => child.once("exit", resolve));
  const started = new Promise<void>((resolve, reject) => {
    onStarted = resolve;
    void exited.then((code) => reject(new Error(`load generator exited (${code}); see ${logFile}`)));
  });
  const done = new Promise<PublisherStats>((resolve, reject) => {
    onDone = resolve;
    void exited.then((code) => reject(new Error(`load generator exited (${code}); see ${logFile}`)));
  });
  started.catch(() => undefined);
  done.catch(() => undefined);
  child.on("message", (m: { type: string } & Record<string, unknown>) => {
    if (m.type === "started") onStarted();
    else if (m.type === "window") onWindow?.(m as unknown as GeneratorWindow);
    else if (m.type === "done") onDone(m.stats as PublisherStats);
    else if (m.type === "marks") {
      for (const [layer, step, at] of m.marks as Array<[string, number, number]>) {
        const q = pending.get(layer) ?? [];
        pending.set(layer, q);
        q.push({ step, at });
      }
    }
  });
  return {
    started,
    window: () =>
      new Promise<GeneratorWindow>((resolve) => {
        onWindow = resolve;
        child.send({ type: "window" });
      }),
    stop: async (): Promise<PublisherStats> => {
      child.send({ type: "stop" });
      const stats = await withTimeout(done, 90_000, "load generator stop");
      await exited;
      return stats;
    },
  };
})();

interface SoakWindow {
  at_s: number;
  warmup: boolean;
  consumed: number;
  latency_p50_ms: number;
  latency_p99_ms: number;
  latency_samples: number;
  rss_mb: number;
  heap_used_mb: number;
  eld_p99_ms: number;
  eld_max_ms: number;
  service_cpu_s: number;
  generator: Omit<GeneratorWindow, "type" | "at_ms">;
  /** The generator delivered at least KEPT_UP of its target in this window. */
  generator_kept_up: boolean;
  load1: number;
}
const windowsOut: SoakWindow[] = [];
let windowLatencies: number[] = [];
/** Samples of steps published after the warm-up. */
const steadyLatencies: number[] = [];
const layerStepLine = /^reluwatch_layer_step\{([^}]*)\} (\S+)$/gm;

await withTimeout(generator.started, 60_000, "load generator start");
const soakStart = Date.now();
const warmupEnd = soakStart + SOAK_WARMUP_S * 1000;
let scraping = true;
const scrapes: number[] = [];
const scraper = (async () => {
  while (scraping) {
    const t0 = Date.now();
    const body = await (await fetch(metricsUrl!)).text();
    const seen = Date.now();
    scrapes.push(seen - t0);
    for (const m of body.matchAll(layerStepLine)) {
      const layer = /layer="([^"]*)"/.exec(m[1]!)?.[1] ?? "";
      const step = Number(m[2]);
      const queue = pending.get(layer);
      while (queue?.length && queue[0]!.step <= step) {
        const at = queue.shift()!.at;
        windowLatencies.push(seen - at);
        if (at >= warmupEnd) steadyLatencies.push(seen - at);
      }
    }
    const wait = SCRAPE_MS - (Date.now() - t0);
    if (wait > 0) await sleep(wait);
  }
})();

let lastServiceCpu = (await service.stats()).cpu_s;
async function closeWindow(): Promise<void> {
  const [st, gen] = await Promise.all([service.stats(), generator.window()]);
  const { type: _t, at_ms: _a, ...g } = gen;
  const w: SoakWindow = {
    at_s: (st.at_ms - soakStart) / 1000,
    warmup: st.at_ms <= warmupEnd,
    consumed: st.count,
    latency_p50_ms: percentile(windowLatencies, 0.5),
    latency_p99_ms: percentile(windowLatencies, 0.99),
    latency_samples: windowLatencies.length,
    rss_mb: st.rss_bytes / 2 ** 20,
    heap_used_mb: st.heap_used_bytes / 2 ** 20,
    eld_p99_ms: st.eld_p99_ms,
    eld_max_ms: st.eld_max_ms,
    service_cpu_s: st.cpu_s - lastServiceCpu,
    generator: g,
    // Acknowledgements come a batch at a time, so a window's count of them swings by a batch or two either
    // way; what the generator published, and a queue that did not build up, say whether it kept pace.
    generator_kept_up: g.offered >= KEPT_UP * g.target && g.backlog <= rate * MAX_BACKLOG_S,
    load1: load1(),
  };
  lastServiceCpu = st.cpu_s;
  windowLatencies = [];
  windowsOut.push(w);
  log(`soak window ${windowsOut.length}: ${JSON.stringify(w)}`);
}

for (let i = 1; i <= windows; i++) {
  const due = soakStart + i * windowMs;
  if (due > Date.now()) await sleep(due - Date.now());
  await closeWindow();
}
const pubStats = await generator.stop();
// The last steps published: give them time to reach /metrics, so that they are measured rather than dropped.
await withTimeout(
  (async () => {
    while ([...pending.values()].some((q) => q.length > 0)) await sleep(200);
  })(),
  15_000,
  "last published steps to show in /metrics",
).catch((err: Error) => log(err.message));
/** Steps of rank 0 published but never seen in /metrics before the soak ended: samples not measured. */
const unmeasured = [...pending.values()].reduce((a, q) => a + q.length, 0);
scraping = false;
await scraper;
const finalBody = await (await fetch(metricsUrl!)).text();
const serviceClient = clientReport(SERVICE_CLIENT, service);
await service.stop();
await soakAdmin.deleteTopics({ topics: [soakTopic] }).catch(() => undefined);
if (soakAdmin !== admin) await soakAdmin.disconnect();
await admin.disconnect();

// Series per layer, counted on a live scrape: every sample line that carries a layer label.
const sampleLines = finalBody.split("\n").filter((l) => l && !l.startsWith("#"));
const layerLines = sampleLines.filter((l) => /[{,]layer="/.test(l));
const layersSeen = new Set(layerLines.map((l) => /layer="([^"]*)"/.exec(l)![1]));
const perMetric: Record<string, number> = {};
for (const l of layerLines) {
  const name = l.slice(0, l.indexOf("{"));
  perMetric[name] = (perMetric[name] ?? 0) + 1;
}
for (const k of Object.keys(perMetric)) perMetric[k] = perMetric[k]! / layersSeen.size;

const steady = windowsOut.filter((w) => !w.warmup);
const warm = windowsOut.filter((w) => w.warmup);
/**
 * Growth after the warm-up from a least-squares line through every window's sample (after a full GC):
 * the line's rise from the first steady window to the last, over its value at the first. One high or
 * low sample moves a line much less than it moves a first/last comparison.
 */
function growth(key: "rss_mb" | "heap_used_mb") {
  const fit = linearFit(
    steady.map((w) => w.at_s),
    steady.map((w) => w[key]),
  );
  const t0 = steady[0]?.at_s ?? Number.NaN;
  const t1 = steady.at(-1)?.at_s ?? Number.NaN;
  const from = fit.intercept + fit.slope * t0;
  const to = fit.intercept + fit.slope * t1;
  // Medians of the first and last three steady windows, for comparison.
  const med = (ws: SoakWindow[]) =>
    percentile(
      ws.map((w) => w[key]),
      0.5,
    );
  return {
    fit_from: from,
    fit_to: to,
    growth: to / from - 1,
    first_median: med(steady.slice(0, 3)),
    last_median: med(steady.slice(-3)),
  };
}
const rssGrowth = growth("rss_mb");
const heapGrowth = growth("heap_used_mb");
const keptUp = steady.length > 0 && steady.every((w) => w.generator_kept_up);
const achieved = figure(steady.map((w) => w.generator.offered / w.generator.target));
const delivered = figure(steady.map((w) => w.generator.sent / w.generator.target));
const latencyP99 = percentile(steadyLatencies, 0.99);
const soakTargets: Target[] = [
  {
    area: "latency",
    measure: `publish → /metrics p99 after warm-up at ${rate} snapshots/s (half the service's maximum)`,
    value: latencyP99,
    target: "<= 1000 ms, generator kept up",
    // A generator that fell behind offered less than the rate: a latency within the target under it
    // proves nothing (n/a), one beyond it fails all the same.
    ok: !Number.isFinite(latencyP99) ? null : latencyP99 > 1000 ? false : keptUp ? true : null,
    note: `generator kept up: ${keptUp ? "yes" : "no"} (published ≥ ${KEPT_UP * 100}% of its target, with at most ${MAX_BACKLOG_S} s of it unacknowledged, in every window after warm-up; lowest ${(achieved.min * 100).toFixed(1)}%, largest backlog ${Math.max(...steady.map((w) => w.generator.backlog))} snapshots)`,
  },
  {
    area: "soak",
    measure: `RSS growth after warm-up, ${SOAK_S} s (least-squares line)`,
    value: rssGrowth.growth,
    target: "< 5%",
    ok: check(rssGrowth.growth, (v) => v < 0.05),
  },
  {
    area: "soak",
    measure: `heap used after GC, growth after warm-up, ${SOAK_S} s (least-squares line)`,
    value: heapGrowth.growth,
    target: "< 5%",
    ok: check(heapGrowth.growth, (v) => v < 0.05),
  },
];
const scaleTargets: Target[] = measured
  ? [
      {
        area: "scale-out",
        measure: `both instances consuming together, s (topic sized for ${SCALE_S} s)`,
        value: measured.scaleOut.overlap_s.min,
        target: `>= ${MIN_OVERLAP_S} s`,
        ok: check(measured.scaleOut.overlap_s.min, (v) => v >= MIN_OVERLAP_S),
      },
    ]
  : [];

const result = {
  brokers,
  scenario: {
    ranks: RANKS,
    layers: LAYERS,
    units: UNITS,
    payload: "counts",
    partitions: PARTITIONS,
    compression: "gzip",
  },
  fill: measured && {
    snapshots: measured.N,
    seconds: measured.fill.seconds,
    bytes_per_snapshot: BYTES_PER_SNAPSHOT,
  },
  runs: RUNS,
  service_client: SERVICE_CLIENT,
  targets: [...(measured?.targets ?? []), ...soakTargets, ...scaleTargets],
  throughput: measured?.throughput,
  ratios: measured?.ratios,
  rounds: measured?.rounds,
  scale_out: measured?.scaleOut,
  publisher: measured?.publisherOut,
  soak: {
    seconds: SOAK_S,
    warmup_s: SOAK_WARMUP_S,
    window_s: windowMs / 1000,
    rate_snapshots_per_s: rate,
    brokers: soakBrokers,
    broker_log: SOAK_BROKER_LOG,
    service_client: serviceClient,
    publisher_compression: soakCompression,
    publisher: pubStats,
    generator_kept_up: keptUp,
    generator_kept_up_threshold: KEPT_UP,
    generator_max_backlog_s: MAX_BACKLOG_S,
    generator_achieved_share: achieved,
    generator_delivered_share: delivered,
    generator_cpu_s_per_s: figure(steady.map((w) => w.generator.cpu_s / w.generator.seconds)),
    service_cpu_s_per_s: figure(steady.map((w) => w.service_cpu_s / w.generator.seconds)),
    scrape_interval_ms: SCRAPE_MS,
    scrape_ms: figure(scrapes),
    latency_ms_after_warmup: {
      p50: percentile(steadyLatencies, 0.5),
      p99: latencyP99,
      samples: steadyLatencies.length,
      unmeasured,
    },
    latency_p50_ms: figure(steady.map((w) => w.latency_p50_ms)),
    latency_p99_ms: figure(steady.map((w) => w.latency_p99_ms)),
    latency_ms_in_warmup: {
      p50: percentile(
        warm.map((w) => w.latency_p50_ms),
        0.5,
      ),
      p99_max: Math.max(...warm.map((w) => w.latency_p99_ms)),
    },
    eld_p99_ms: figure(steady.map((w) => w.eld_p99_ms)),
    growth_method: "least-squares line through the windows after warm-up, from the first to the last",
    rss_mb: { warm: rssGrowth.fit_from, end: rssGrowth.fit_to, ...rssGrowth },
    heap_used_mb: { warm: heapGrowth.fit_from, end: heapGrowth.fit_to, ...heapGrowth },
    rss_growth: rssGrowth.growth,
    heap_growth: heapGrowth.growth,
    steady_windows: steady.length,
    windows: windowsOut,
  },
  series: {
    layers: layersSeen.size,
    per_layer: layerLines.length / Math.max(1, layersSeen.size),
    per_layer_by_metric: perMetric,
    other: sampleLines.length - layerLines.length,
  },
};
process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
process.exit(0);
