/**
 * One consumer under test, in its own process so that its CPU time, memory and
 * event-loop delay are its own. Forked by bench/e2e.ts with the configuration
 * in BENCH_WORKER (JSON). Modes:
 *   kafkajs-fetch       kafkajs group consumer that only counts messages: the ceiling
 *   kafkajs-apply       the same, plus decode + limits + detector (SnapshotProcessor) per message
 *   platformatic-fetch  @platformatic/kafka consumer that only counts messages
 *   platformatic-apply  the same, plus SnapshotProcessor per message
 *   service             startConsumerService: what `reluwatch consume` runs (commits, events, HTTP),
 *                       with kafka_client set to `kafkaClient` (flag and RELUWATCH_KAFKA_CLIENT)
 * It reports over IPC: "started", "progress" samples, "client" (service: the client
 * the service's own "consuming" log line names), and "done" once `expected`
 * messages were handled; on {type:"stats"} it answers with memory and
 * event-loop delay (and resets the delay histogram); on {type:"stop"} it exits.
 */
import { monitorEventLoopDelay } from "node:perf_hooks";
import { Consumer as PlatformaticConsumer } from "@platformatic/kafka";
import { Kafka, logLevel } from "kafkajs";
import { pino } from "pino";
import { CONSUME_GROUPS, loadSettings } from "../../src/config/index.js";
import { Detector } from "../../src/core/index.js";
import { createLogger } from "../../src/log.js";
import { startConsumerService } from "../../src/service/consumer-service.js";
import { SnapshotProcessor } from "../../src/service/snapshot-processor.js";
import { Telemetry } from "../../src/service/telemetry.js";
import { Exporter } from "../../src/sink/prometheus.js";
import type { SourceRecord } from "../../src/source/source.js";

export type WorkerMode =
  | "kafkajs-fetch"
  | "kafkajs-apply"
  | "platformatic-fetch"
  | "platformatic-apply"
  | "service";

export interface WorkerConfig {
  mode: WorkerMode;
  brokers: string[];
  topic: string;
  group: string;
  /** Messages after which "done" is sent; 0: run until stopped. */
  expected: number;
  restoreLookbackMs?: number;
  /** service: start_from for the new group (the setting's default when absent). */
  startFrom?: string;
  /** service: the kafka_client setting to ask for. */
  kafkaClient?: string;
  /** service: the fetch_thread setting, when not its default. */
  fetchThread?: boolean;
}

/** Which client a service process fetched with, by its own account. */
export interface WorkerClient {
  type: "client";
  /** kafka_client as the settings were loaded; null when this build has no such setting. */
  requested: string | null;
  /** The `client` field of the service's "consuming" log line; null when the line has none. */
  logged: string | null;
}

export interface WorkerDone {
  type: "done";
  count: number;
  /** Date.now() when the group was joined and when the expected-th message was handled. */
  first_ms: number;
  last_ms: number;
  /** CPU seconds (user + system, all threads) between the two. */
  cpu_s: number;
  rss_bytes: number;
}

export interface WorkerStats {
  type: "stats";
  at_ms: number;
  count: number;
  rss_bytes: number;
  heap_used_bytes: number;
  eld_p99_ms: number;
  eld_max_ms: number;
  cpu_s: number;
}

const config = JSON.parse(process.env.BENCH_WORKER ?? "{}") as WorkerConfig;
const send = (m: object) => process.send?.(m);
const eld = monitorEventLoopDelay({ resolution: 10 });
eld.enable();

let count = 0;
let firstMs = 0;
let cpuAtFirst: NodeJS.CpuUsage | undefined;
let finished = false;
const cpuSeconds = (u: NodeJS.CpuUsage) => (u.user + u.system) / 1e6;

/**
 * Starts the clock once the consumer has joined its group, so join time is not
 * in the rate but the first fetch (which may bring the whole topic) is.
 */
function joined(): void {
  if (firstMs !== 0) return;
  firstMs = Date.now();
  cpuAtFirst = process.cpuUsage();
}

function handled(n: number): void {
  if (n <= 0) return;
  joined();
  count += n;
  if (!finished && config.expected > 0 && count >= config.expected) {
    finished = true;
    const done: WorkerDone = {
      type: "done",
      count,
      first_ms: firstMs,
      last_ms: Date.now(),
      cpu_s: cpuSeconds(process.cpuUsage(cpuAtFirst)),
      rss_bytes: process.memoryUsage.rss(),
    };
    send(done);
    // Standalone (no parent), e.g. under --cpu-prof: exit so the profile is written.
    if (!process.send) {
      process.stderr.write(`${JSON.stringify(done)}\n`);
      void Promise.all(stoppers.map((stop) => stop())).finally(() => process.exit(0));
    }
  }
}

/** The service's per-record work: decode, limits, detector, and telemetry of the effects. */
function silentProcessor(): (record: SourceRecord, now: number) => void {
  const detector = new Detector();
  const exporter = new Exporter(detector, { unitSeries: false, unitSeriesMax: 0, processMetrics: false });
  const limits = {
    max_tracked_units: 1 << 30,
    max_layers_per_run: 100_000,
    max_units_per_layer: 1 << 24,
    max_message_bytes: 16 << 20,
  };
  const processor = new SnapshotProcessor(detector, { limits, evictIdleMs: 60_000, clock: "wall" });
  const telemetry = new Telemetry(createLogger("bench", "warn"), exporter);
  const encoding = { kind: "single-object" } as const;
  return (record, now) => telemetry.record(processor.process(record, encoding, now).events);
}

const stoppers: Array<() => Promise<void>> = [];

async function runKafkajs(apply: boolean): Promise<void> {
  const processor = apply ? silentProcessor() : undefined;
  const kafka = new Kafka({ clientId: "bench", brokers: config.brokers, logLevel: logLevel.WARN });
  // Same fetch sizes as the service's source, so the two differ only in what they do per message.
  const consumer = kafka.consumer({
    groupId: config.group,
    maxBytesPerPartition: 16 * 1024 * 1024,
    maxBytes: 64 * 1024 * 1024,
    sessionTimeout: 30_000,
    heartbeatInterval: 3_000,
  });
  consumer.on(consumer.events.GROUP_JOIN, joined);
  await consumer.connect();
  await consumer.subscribe({ topic: config.topic, fromBeginning: true });
  await consumer.run({
    autoCommit: false,
    eachBatch: async ({ batch, heartbeat }) => {
      if (processor) {
        const now = Date.now();
        for (const m of batch.messages) {
          processor(
            { topic: batch.topic, partition: batch.partition, offset: m.offset, key: m.key, value: m.value },
            now,
          );
        }
      }
      handled(batch.messages.length);
      await heartbeat();
    },
  });
  stoppers.push(() => consumer.disconnect());
}

async function runPlatformatic(apply: boolean): Promise<void> {
  const processor = apply ? silentProcessor() : undefined;
  const consumer = new PlatformaticConsumer({
    groupId: config.group,
    clientId: "bench",
    bootstrapBrokers: config.brokers,
    maxBytes: 64 * 1024 * 1024,
    sessionTimeout: 30_000,
    heartbeatInterval: 3_000,
  });
  const stream = await consumer.consume({
    topics: [config.topic],
    mode: "earliest",
    autocommit: false,
    maxBytes: 64 * 1024 * 1024,
    maxWaitTime: 500,
  });
  joined();
  stream.on("data", (m) => {
    if (processor) {
      processor(
        { topic: m.topic, partition: m.partition, offset: String(m.offset), key: null, value: m.value },
        Date.now(),
      );
    }
    handled(1);
  });
  stream.on("error", (err: unknown) => process.stderr.write(`platformatic stream error: ${String(err)}\n`));
  stoppers.push(async () => {
    await stream.close();
    await consumer.close(true);
  });
}

async function runService(): Promise<void> {
  const settings = loadSettings({
    flags: {
      brokers: config.brokers.join(","),
      topic: config.topic,
      group: config.group,
      ...(config.kafkaClient ? { kafkaClient: config.kafkaClient } : {}),
      ...(config.fetchThread === undefined ? {} : { fetchThread: String(config.fetchThread) }),
      ...(config.startFrom ? { startFrom: config.startFrom } : {}),
      metricsPort: "0",
      metricsHost: "127.0.0.1",
      eventsTopic: `${config.topic}.events`,
      deadLetterTopic: `${config.topic}.dead-letter`,
      ...(config.restoreLookbackMs !== undefined
        ? { restoreLookbackMs: String(config.restoreLookbackMs) }
        : {}),
    },
    // Both ways in, flag and environment, as an operator would; a build without the setting ignores them.
    env: config.kafkaClient ? { RELUWATCH_KAFKA_CLIENT: config.kafkaClient } : {},
    groups: CONSUME_GROUPS,
  });
  const requested = (settings.kafka as unknown as Record<string, unknown>).kafka_client;
  // The service's log, on stderr as usual, read on the way for the line that says what it consumes with.
  const log = pino(
    { name: "consume", level: settings.log_level, base: { svc: "reluwatch" } },
    {
      write(line: string) {
        process.stderr.write(line);
        if (!line.includes('"event":"consuming"')) return;
        const logged = (JSON.parse(line) as { client?: unknown }).client;
        const client: WorkerClient = {
          type: "client",
          requested: typeof requested === "string" ? requested : null,
          logged: typeof logged === "string" ? logged : null,
        };
        send(client);
      },
    },
  );
  const service = await startConsumerService(settings, log);
  const counter = service.exporter.registry.getSingleMetric("reluwatch_snapshots_total");
  if (!counter) throw new Error("reluwatch_snapshots_total not registered");
  send({ type: "started", metrics_url: `http://127.0.0.1:${service.address.port}/metrics` });
  // The service counts every snapshot it handled by result; polling that counter is how we see progress.
  let seen = 0;
  const poll = setInterval(async () => {
    if (service.notReadyReason() === undefined) joined();
    const { values } = await counter.get();
    const total = values.reduce((a, v) => a + v.value, 0);
    if (total > seen) {
      handled(total - seen);
      seen = total;
    }
  }, 10);
  stoppers.push(async () => {
    clearInterval(poll);
    await service.stop();
  });
}

const progress = setInterval(
  () => send({ type: "progress", at_ms: Date.now(), count, cpu_s: cpuSeconds(process.cpuUsage()) }),
  100,
);

process.on("message", async (m: { type: string }) => {
  if (m.type === "stats") {
    // Retained memory, not garbage waiting for the next collection: that is what a leak shows in.
    (globalThis as { gc?: () => void }).gc?.();
    const mem = process.memoryUsage();
    const stats: WorkerStats = {
      type: "stats",
      at_ms: Date.now(),
      count,
      rss_bytes: mem.rss,
      heap_used_bytes: mem.heapUsed,
      eld_p99_ms: eld.percentile(99) / 1e6,
      eld_max_ms: eld.max / 1e6,
      cpu_s: cpuSeconds(process.cpuUsage()),
    };
    eld.reset();
    send(stats);
  } else if (m.type === "stop") {
    clearInterval(progress);
    for (const stop of stoppers) await stop().catch(() => undefined);
    process.exit(0);
  }
});

if (config.mode === "kafkajs-fetch" || config.mode === "kafkajs-apply")
  await runKafkajs(config.mode === "kafkajs-apply");
else if (config.mode === "platformatic-fetch" || config.mode === "platformatic-apply")
  await runPlatformatic(config.mode === "platformatic-apply");
else if (config.mode === "service") await runService();
else throw new Error(`unknown mode ${String(config.mode)}`);
if (config.mode !== "service") send({ type: "started" });
