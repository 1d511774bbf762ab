/**
 * End-to-end benchmarks against a real broker: `npx tsx bench/e2e.ts`, with
 * BENCH_BROKERS (default 127.0.0.1:19900, a private broker so that nobody
 * else's topics share it). Prints one JSON document on stdout; progress on stderr.
 *
 *   throughput  `reluwatch simulate` fills an 8-partition topic (8 ranks, 48 layers,
 *               4096 units, counts payload); then, in each of BENCH_RUNS rounds and on
 *               the same topic: a kafkajs consumer that only fetches (the ceiling), the
 *               consumer service, and the same decode+apply loop behind kafkajs and
 *               behind @platformatic/kafka (plus that client's fetch-only ceiling).
 *   scale_out   two service instances in one group on the same topic.
 *   latency and soak
 *               the service under a steady publish rate of half its measured maximum
 *               for BENCH_SOAK_S seconds (default 600): publish → /metrics latency,
 *               RSS, heap and event-loop delay per window.
 *   publisher   SnapshotPublisher's cost per snapshot, gzip and uncompressed.
 *
 * Knobs: BENCH_RUNS (rounds, default 3), BENCH_STEPS (topic size in snapshot steps of 384
 * snapshots, default 40), BENCH_SOAK_S, BENCH_SOAK_COMPRESSION (gzip|none), and BENCH_ONLY=soak
 * with BENCH_SOAK_RATE=N to repeat only the soak at N snapshots/s.
 *
 * Every consumer runs in its own process (bench/lib/consumer-worker.ts), so its
 * CPU time and memory are its own. Rates are taken from the first to the last
 * message handled, so consumer-group join time is not counted.
 */
import { type ChildProcess, fork } from "node:child_process";
import { existsSync, mkdirSync, openSync, readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { Kafka, logLevel } from "kafkajs";
import { runSimulate } from "../src/cli/simulate-command.js";
import { encodeSnapshot } from "../src/codec/index.js";
import { loadSettings } from "../src/config/index.js";
import type { ActivationSnapshot } from "../src/core/snapshot.js";
import { type PublisherCompression, SnapshotPublisher } from "../src/publisher/snapshot-publisher.js";
import { generateFleet, resolveScenario, type Scenario } from "../src/sim/index.js";
import type { WorkerConfig, WorkerDone, WorkerMode, WorkerStats } from "./lib/consumer-worker.js";
import { type Figure, figure, load1, percentile, sleep } from "./lib/stats.js";

const brokers = (process.env.BENCH_BROKERS ?? "127.0.0.1:19900").split(",");
const RUNS = Number(process.env.BENCH_RUNS ?? 3);
const STEPS = Number(process.env.BENCH_STEPS ?? 40);
const SOAK_S = Number(process.env.BENCH_SOAK_S ?? 600);
const PARTITIONS = 8;
const LOG_DIR = join(fileURLToPath(new URL(".", import.meta.url)), "results", "logs");
mkdirSync(LOG_DIR, { recursive: true });
const stamp = Date.now().toString(36);
const log = (m: string) => process.stderr.write(`[e2e ${new Date().toISOString().slice(11, 19)}] ${m}\n`);

const kafka = new Kafka({ clientId: "bench", brokers, logLevel: logLevel.WARN });
const admin = kafka.admin();
await admin.connect();

async function createTopic(topic: string, configEntries: Array<{ name: string; value: string }> = []) {
  await admin.createTopics({
    waitForLeaders: true,
    topics: [{ topic, numPartitions: PARTITIONS, replicationFactor: 1, configEntries }],
  });
}

/** The compressions the publisher round compares; the same list renders the table. */
const PUBLISHER_COMPRESSIONS = ["none", "gzip", "zstd"] as const satisfies readonly PublisherCompression[];

/**
 * Bytes a topic's partitions hold on the private bench broker's disk: record
 * batches as the producer compressed them, which is what crosses the network
 * and fills retention. undefined when the broker is not the local one.
 */
function topicBytesOnDisk(topic: string): number | undefined {
  const port = brokers[0]?.split(":")[1];
  const dataDir = join(fileURLToPath(new URL("..", import.meta.url)), ".kafka-local", port ?? "", "data");
  if (!existsSync(dataDir)) return undefined;
  let bytes = 0;
  for (const dir of readdirSync(dataDir)) {
    if (!/^\d+$/.test(dir.slice(topic.length + 1)) || !dir.startsWith(`${topic}-`)) continue;
    for (const file of readdirSync(join(dataDir, dir))) {
      if (file.endsWith(".log")) bytes += statSync(join(dataDir, dir, file)).size;
    }
  }
  return bytes;
}

// ---- workers ----

interface Worker {
  child: ChildProcess;
  started: Promise<{ metrics_url?: string }>;
  done: Promise<WorkerDone>;
  progress: Progress[];
  stats(): Promise<WorkerStats>;
  stop(): Promise<void>;
}

interface Progress {
  at_ms: number;
  count: number;
  cpu_s: number;
}

let workerSeq = 0;
function startWorker(cfg: WorkerConfig): Worker {
  const logFile = join(LOG_DIR, `${stamp}-${++workerSeq}-${cfg.mode}.log`);
  const child = fork(fileURLToPath(new URL("./lib/consumer-worker.ts", import.meta.url)), [], {
    execArgv: ["--import", "tsx", "--expose-gc"],
    env: { ...process.env, BENCH_WORKER: JSON.stringify(cfg) },
    stdio: ["ignore", "ignore", openSync(logFile, "w"), "ipc"],
  });
  const progress: Worker["progress"] = [];
  let onStarted: (v: { metrics_url?: string }) => void = () => {};
  let onDone: (v: WorkerDone) => void = () => {};
  let onStats: ((v: WorkerStats) => void) | undefined;
  const started = new Promise<{ metrics_url?: string }>((r) => {
    onStarted = r;
  });
  const exited = new Promise<number | null>((resolve) => child.once("exit", resolve));
  const done = new Promise<WorkerDone>((resolve, reject) => {
    onDone = resolve;
    void exited.then((code) => reject(new Error(`${cfg.mode} worker exited (${code}); see ${logFile}`)));
  });
  done.catch(() => undefined);
  child.on("message", (m: { type: string } & Record<string, unknown>) => {
    if (m.type === "started") onStarted(m as { metrics_url?: string });
    else if (m.type === "done") onDone(m as unknown as WorkerDone);
    else if (m.type === "progress") progress.push(m as unknown as Progress);
    else if (m.type === "stats") onStats?.(m as unknown as WorkerStats);
  });
  return {
    child,
    started,
    done,
    progress,
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

interface RunResult {
  mode: WorkerMode;
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
}

async function consumeAll(mode: WorkerMode, topic: string, expected: number): Promise<RunResult> {
  const w = startWorker({ mode, brokers, topic, group: `bench-${mode}-${stamp}-${workerSeq}`, expected });
  try {
    const d = await withTimeout(w.done, 600_000, `${mode} on ${topic}`);
    const seconds = (d.last_ms - d.first_ms) / 1000;
    // The first progress sample at or past half the topic, and the first at or past its end.
    await sleep(250);
    const half = w.progress.find((x) => x.count >= expected / 2)!;
    const end = w.progress.find((x) => x.count >= expected) ?? w.progress.at(-1)!;
    const steadyCount = end.count - half.count;
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
    };
  } finally {
    await w.stop();
  }
}

// ---- fill ----

const UNITS = 4096;
const LAYERS = 48;
const RANKS = 8;
function benchScenario(steps: number): Scenario {
  return resolveScenario("healthy", {
    ranks: RANKS,
    layers: LAYERS,
    units: UNITS,
    steps: steps * 50,
    interval: 50,
  });
}

const sample: ActivationSnapshot = generateFleet(benchScenario(1)).next().value as ActivationSnapshot;
const BYTES_PER_SNAPSHOT = encodeSnapshot(sample).length;

function oneRound(): ActivationSnapshot[] {
  return [...generateFleet(benchScenario(1))];
}
const template = oneRound();

/** Fill, throughput rounds, scale-out and publisher cost: everything but the soak. */
async function measureThroughput() {
  const fillTopic = `bench.e2e.${stamp}`;
  await createTopic(fillTopic);
  log(`filling ${fillTopic}: ${STEPS} steps × ${RANKS} ranks × ${LAYERS} layers of ${UNITS} units`);
  const fillStart = Date.now();
  const filled = await runSimulate({
    scenario: benchScenario(STEPS),
    kafka: loadSettings({ flags: { brokers: brokers.join(",") }, env: {}, groups: ["kafka"] }).kafka,
    topic: fillTopic,
    compression: "gzip",
  });
  const N = filled.snapshots;
  const fillSeconds = (Date.now() - fillStart) / 1000;
  log(
    `filled ${N} snapshots (${((N * BYTES_PER_SNAPSHOT) / 1e6).toFixed(0)} MB of Avro) in ${fillSeconds.toFixed(1)} s`,
  );

  // ---- throughput: alternating modes, RUNS rounds ----

  const MODES: WorkerMode[] = [
    "kafkajs-fetch",
    "service",
    "kafkajs-apply",
    "platformatic-fetch",
    "platformatic-apply",
  ];
  const rounds: RunResult[][] = [];
  for (let r = 0; r < RUNS; r++) {
    const round: RunResult[] = [];
    for (const mode of MODES) {
      const res = await consumeAll(mode, fillTopic, N);
      log(`round ${r + 1} ${mode}: ${res.snapshots_per_s.toFixed(0)} snapshots/s (load ${res.load1})`);
      round.push(res);
    }
    rounds.push(round);
  }

  const byMode = (mode: WorkerMode, f: (x: RunResult) => number): Figure =>
    figure(rounds.map((round) => f(round.find((x) => x.mode === mode)!)));
  type RateKey = "snapshots_per_s" | "steady_snapshots_per_s";
  const ratio = (a: WorkerMode, b: WorkerMode, key: RateKey = "snapshots_per_s"): Figure =>
    figure(
      rounds.map((round) => round.find((x) => x.mode === a)![key] / round.find((x) => x.mode === b)![key]),
    );
  const scale = (f: Figure, k: number): Figure => ({
    ...f,
    median: f.median * k,
    min: f.min * k,
    max: f.max * k,
  });

  const throughput = Object.fromEntries(
    MODES.map((mode) => {
      const sps = byMode(mode, (x) => x.snapshots_per_s);
      return [
        mode,
        {
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
    service_over_kafkajs_fetch: ratio("service", "kafkajs-fetch"),
    // The fetch-only ceiling has no warm-up (it decodes nothing), so its whole-topic rate is its steady rate.
    steady_service_over_kafkajs_fetch: figure(
      rounds.map(
        (round) =>
          round.find((x) => x.mode === "service")!.steady_snapshots_per_s /
          round.find((x) => x.mode === "kafkajs-fetch")!.snapshots_per_s,
      ),
    ),
    kafkajs_apply_over_kafkajs_fetch: ratio("kafkajs-apply", "kafkajs-fetch"),
    platformatic_fetch_over_kafkajs_fetch: ratio("platformatic-fetch", "kafkajs-fetch"),
    platformatic_apply_over_kafkajs_apply: ratio("platformatic-apply", "kafkajs-apply"),
  };
  // The steady rate: a soak runs long past the first verdicts.
  const serviceMax = throughput.service!.steady_snapshots_per_s.median;

  // ---- scale-out: two service instances in one group ----

  /** Count at time t by linear interpolation of a worker's progress samples. */
  function countAt(progress: Worker["progress"], t: number): number {
    let prev = { at_ms: 0, count: 0 };
    for (const p of progress) {
      if (p.at_ms >= t) {
        if (p.at_ms === prev.at_ms) return p.count;
        return prev.count + ((p.count - prev.count) * (t - prev.at_ms)) / (p.at_ms - prev.at_ms);
      }
      prev = p;
    }
    return prev.count;
  }
  const firstActive = (p: Worker["progress"]) =>
    p.find((x) => x.count > 0)?.at_ms ?? Number.POSITIVE_INFINITY;
  function lastGrowth(p: Worker["progress"]): number {
    const final = p.at(-1)?.count ?? 0;
    return p.find((x) => x.count === final)?.at_ms ?? 0;
  }

  const scaleRuns: Array<{
    combined_per_s: number;
    steady_per_s: number;
    ratio_to_one: number;
    load1: number;
  }> = [];
  for (let r = 0; r < RUNS; r++) {
    const group = `bench-scale-${stamp}-${r}`;
    // Lookback 0: a partition moving to the other instance at the rebalance is not re-read.
    const cfg = {
      mode: "service" as const,
      brokers,
      topic: fillTopic,
      group,
      expected: 0,
      restoreLookbackMs: 0,
    };
    const ws = [startWorker(cfg), startWorker(cfg)];
    try {
      await withTimeout(
        (async () => {
          for (;;) {
            await sleep(200);
            const total = ws.reduce((a, w) => a + (w.progress.at(-1)?.count ?? 0), 0);
            if (total >= N) return;
          }
        })(),
        600_000,
        "scale-out run",
      );
      await sleep(500);
    } finally {
      await Promise.all(ws.map((w) => w.stop()));
    }
    const start = Math.min(...ws.map((w) => firstActive(w.progress)));
    const end = Math.max(...ws.map((w) => lastGrowth(w.progress)));
    const total = ws.reduce((a, w) => a + (w.progress.at(-1)?.count ?? 0), 0);
    // Steady part: both instances consuming, from the later one's first message to the earlier one's last.
    const s0 = Math.max(...ws.map((w) => firstActive(w.progress)));
    const s1 = Math.min(...ws.map((w) => lastGrowth(w.progress)));
    const spans = ws.map(
      (w) =>
        `${firstActive(w.progress) - start}..${lastGrowth(w.progress) - start} ms: ${w.progress.at(-1)?.count}`,
    );
    log(`scale-out ${r + 1} instances: ${spans.join("; ")}`);
    const steady =
      s1 > s0
        ? ws.reduce((a, w) => a + countAt(w.progress, s1) - countAt(w.progress, s0), 0) / ((s1 - s0) / 1000)
        : Number.NaN;
    const one = rounds[r]!.find((x) => x.mode === "service")!.snapshots_per_s;
    const res = {
      combined_per_s: total / ((end - start) / 1000),
      steady_per_s: steady,
      ratio_to_one: steady / one,
      load1: load1(),
    };
    log(
      `scale-out ${r + 1}: ${res.combined_per_s.toFixed(0)}/s overall, ${steady.toFixed(0)}/s steady (×${res.ratio_to_one.toFixed(2)})`,
    );
    scaleRuns.push(res);
  }
  const scaleOut = {
    instances: 2,
    partitions: PARTITIONS,
    combined_snapshots_per_s: figure(scaleRuns.map((x) => x.combined_per_s)),
    steady_snapshots_per_s: figure(scaleRuns.map((x) => x.steady_per_s)),
    ratio_to_one_instance: figure(scaleRuns.map((x) => x.ratio_to_one)),
    load1: scaleRuns.map((x) => x.load1),
  };
  await admin.deleteTopics({ topics: [fillTopic] }).catch(() => undefined);

  const publisherOut = await measurePublisher();

  return { N, fillSeconds, throughput, ratios, rounds, scaleOut, publisherOut, serviceMax };
}

/** SnapshotPublisher's cost per snapshot for each compression: CPU, and bytes on the broker. */
async function measurePublisher() {
  async function publisherRun(topic: string, compression: PublisherCompression, n: number) {
    const publisher = new SnapshotPublisher({
      brokers,
      topic,
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
  for (const compression of PUBLISHER_COMPRESSIONS) {
    const runs = [];
    for (let r = 0; r < RUNS; r++) {
      // A topic per run, so the bytes on disk are this run's alone.
      const topic = `bench.publisher.${stamp}.${compression}.${r}`;
      await createTopic(topic);
      runs.push(await publisherRun(topic, compression, PUBLISH_N));
      await admin.deleteTopics({ topics: [topic] }).catch(() => undefined);
    }
    const wire = runs.flatMap((x) =>
      x.wire_bytes_per_snapshot === undefined ? [] : [x.wire_bytes_per_snapshot],
    );
    publisherOut[compression] = {
      snapshots_per_s: figure(runs.map((x) => x.snapshots_per_s)),
      cpu_us_per_snapshot: figure(runs.map((x) => x.cpu_us_per_snapshot)),
      publish_call_cpu_us: figure(runs.map((x) => x.publish_call_cpu_us)),
      ...(wire.length > 0 ? { wire_bytes_per_snapshot: figure(wire) } : {}),
      load1: load1(),
    };
    log(`publisher ${compression}: ${JSON.stringify(publisherOut[compression])}`);
  }
  return publisherOut;
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
// Old segments go quickly: a 10-minute soak would otherwise keep gigabytes on disk.
await createTopic(soakTopic, [
  { name: "retention.ms", value: "120000" },
  { name: "segment.bytes", value: String(32 * 1024 * 1024) },
]);
const service = startWorker({
  mode: "service",
  brokers,
  topic: soakTopic,
  group: `bench-soak-${stamp}`,
  expected: 0,
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

// /metrics computes every layer's summary per scrape; much more often than this would load the service itself.
const SCRAPE_MS = 250;
const windows = Math.max(1, Math.min(10, Math.floor(SOAK_S / 6)));
const windowMs = (SOAK_S * 1000) / windows;
log(
  `soak: ${SOAK_S} s at ${rate} snapshots/s (half of ${serviceMax.toFixed(0)}), ${windows} windows, scrape every ${SCRAPE_MS} ms`,
);

const windowsOut: Array<Record<string, number>> = [];
/** Publish time of rank 0's snapshot of (layer, step), waiting for the step to show in /metrics. */
const pending = new Map<string, Array<{ step: number; at: number }>>();
let windowLatencies: number[] = [];
/** After the first window (warm-up: every unit's first verdict is an event). */
const steadyLatencies: number[] = [];
const layerStepLine = /^reluwatch_layer_step\{([^}]*)\} (\S+)$/gm;

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
        const ms = seen - queue.shift()!.at;
        windowLatencies.push(ms);
        if (windowsOut.length > 0) steadyLatencies.push(ms);
      }
    }
    const wait = SCRAPE_MS - (Date.now() - t0);
    if (wait > 0) await sleep(wait);
  }
})();

// gzip by default, as trainers send; BENCH_SOAK_COMPRESSION=none spares the shared CPUs the load generator's gzip.
const soakCompression = process.env.BENCH_SOAK_COMPRESSION === "none" ? "none" : "gzip";
const publisher = new SnapshotPublisher({
  brokers,
  topic: soakTopic,
  queue_capacity: 100_000,
  compression: soakCompression,
});
await publisher.connect();
const soakStart = Date.now();
let published = 0;
let nextWindow = soakStart + windowMs;
async function closeWindow(): Promise<void> {
  const st = await service.stats();
  const w = {
    at_s: (st.at_ms - soakStart) / 1000,
    consumed: st.count,
    published,
    latency_p50_ms: percentile(windowLatencies, 0.5),
    latency_p99_ms: percentile(windowLatencies, 0.99),
    latency_samples: windowLatencies.length,
    rss_mb: st.rss_bytes / 2 ** 20,
    heap_used_mb: st.heap_used_bytes / 2 ** 20,
    eld_p99_ms: st.eld_p99_ms,
    eld_max_ms: st.eld_max_ms,
    load1: load1(),
  };
  windowLatencies = [];
  windowsOut.push(w);
  log(`soak window ${windowsOut.length}: ${JSON.stringify(w)}`);
}

while (Date.now() - soakStart < SOAK_S * 1000) {
  const due = Math.floor(((Date.now() - soakStart) / 1000) * rate);
  while (published < due) {
    const t = template[published % template.length]!;
    const step = Math.floor(published / template.length) * 50 + 50;
    const at = Date.now();
    if (t.rank === 0) {
      const q = pending.get(t.layer) ?? [];
      pending.set(t.layer, q);
      q.push({ step, at });
    }
    await publisher.publish({ ...t, step, time: at });
    published++;
  }
  if (Date.now() >= nextWindow) {
    nextWindow += windowMs;
    await closeWindow();
  }
  await sleep(20);
}
const pubStats = await publisher.close({ timeout_ms: 60_000 });
await sleep(2000);
if (windowsOut.length < windows) await closeWindow();
scraping = false;
await scraper;
const finalBody = await (await fetch(metricsUrl!)).text();
await service.stop();
await admin.deleteTopics({ topics: [soakTopic] }).catch(() => undefined);
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

const steady = windowsOut.slice(1);
const warm = windowsOut[0];
const last = windowsOut.at(-1);
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
    seconds: measured.fillSeconds,
    bytes_per_snapshot: BYTES_PER_SNAPSHOT,
  },
  runs: RUNS,
  throughput: measured?.throughput,
  ratios: measured?.ratios,
  rounds: measured?.rounds,
  scale_out: measured?.scaleOut,
  publisher: measured?.publisherOut,
  soak: {
    seconds: SOAK_S,
    rate_snapshots_per_s: rate,
    publisher_compression: soakCompression,
    published,
    publisher: pubStats,
    scrape_interval_ms: SCRAPE_MS,
    scrape_ms: figure(scrapes),
    // Figures over the windows after the first (warm-up).
    latency_ms_after_warmup: {
      p50: percentile(steadyLatencies, 0.5),
      p99: percentile(steadyLatencies, 0.99),
      samples: steadyLatencies.length,
    },
    latency_p50_ms: figure(steady.map((w) => w.latency_p50_ms!)),
    latency_p99_ms: figure(steady.map((w) => w.latency_p99_ms!)),
    eld_p99_ms: figure(steady.map((w) => w.eld_p99_ms!)),
    warmup_window: warm,
    rss_mb: { warm: warm?.rss_mb, end: last?.rss_mb },
    heap_used_mb: { warm: warm?.heap_used_mb, end: last?.heap_used_mb },
    rss_growth: warm && last ? last.rss_mb! / warm.rss_mb! - 1 : null,
    heap_growth: warm && last ? last.heap_used_mb! / warm.heap_used_mb! - 1 : null,
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
// A publisher that gave up on unsent snapshots can leave a broker connection open; the results are out.
process.exit(0);
