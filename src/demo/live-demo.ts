/**
 * `reluwatch demo`: the whole pipeline on one machine. It creates the topics,
 * starts the consumer service in-process (Kafka source → detector → metrics,
 * events, API), trains the demo MLP on N ranks publishing through
 * SnapshotPublisher, and reads the consumer's transition events back from
 * Kafka to print them in plain words as they happen. Then it keeps /metrics
 * and the API up until asked to stop (or stops at once with `ci`), stops what
 * it started, and prints a per-layer summary.
 */
import { type Admin, type Consumer, type Kafka, logLevel } from "kafkajs";
import { decodeTransition } from "../codec/index.js";
import type { Settings } from "../config/load.js";
import type { LayerSummary } from "../core/index.js";
import type { Logger } from "../log.js";
import { SnapshotPublisher } from "../publisher/snapshot-publisher.js";
import { loadTf } from "../publisher/tf-backend.js";
import { type ConsumerService, startConsumerService } from "../service/consumer-service.js";
import { emitsEvent } from "../sink/event-policy.js";
import { createKafka, kafkaConfigFrom } from "../source/kafka-client.js";
import { waitForTopic } from "../source/topic-wait.js";
import { type DemoRunResult, runDemo } from "./ranks.js";
import { FanOutSink } from "./sinks.js";
import { type DemoTrainerOptions, resolveTrainerOptions } from "./trainer.js";
import { formatPercent, formatSummaryTable, TransitionReport } from "./transition-report.js";

export class LiveDemoError extends Error {
  override name = "LiveDemoError";
}

export interface LiveDemoOptions {
  /** Broker, topics, group, HTTP and detector settings of the consumer (and the trainer's broker and topic). */
  settings: Settings;
  trainer: Partial<DemoTrainerOptions>;
  /** Finish after the run instead of serving until `untilStopped` resolves. */
  ci: boolean;
  /** Delete the three topics at the end (they were made for this run alone). */
  deleteTopics: boolean;
  /** Where the printout goes, one line at a time. */
  print: (line: string) => void;
  log: Logger;
  /** Resolves when the user asks to stop (Ctrl-C). Also ends training early when it resolves first. */
  untilStopped: Promise<void>;
  /** How long to wait for the consumer to catch up with the trainer. Default 120 s. */
  catchUpTimeoutMs?: number;
}

export interface LiveDemoResult {
  /** 0 when the run ended and, in ci mode, at least one death was detected. */
  exitCode: number;
  deaths: number;
  deathLines: number;
  summaries: LayerSummary[];
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

async function waitUntil(what: string, check: () => boolean, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline)
      throw new LiveDemoError(`timed out after ${timeoutMs / 1000} s waiting for ${what}`);
    await sleep(200);
  }
}

/** Creates the demo's topics; existing ones are kept. */
export async function createDemoTopics(admin: Admin, s: Settings): Promise<void> {
  const existing = new Set(await admin.listTopics());
  const wanted = [
    { topic: s.topic, numPartitions: 3 },
    { topic: s.events_topic, numPartitions: 3 },
    { topic: s.dead_letter_topic, numPartitions: 1 },
  ].filter((t) => !existing.has(t.topic));
  if (wanted.length === 0) return;
  await admin.createTopics({
    topics: wanted.map((t) => ({ ...t, replicationFactor: 1 })),
    waitForLeaders: true,
  });
}

/** Connects a publisher to the settings' broker and snapshot topic; it waits for room rather than dropping. */
export async function connectDemoPublisher(s: Settings, log: Logger): Promise<SnapshotPublisher> {
  const publisher = new SnapshotPublisher({
    brokers: s.kafka.brokers,
    topic: s.topic,
    clientId: `${s.kafka.client_id}-demo-trainer`,
    overflow: "wait",
    wait_timeout_ms: 30_000,
    // The publisher reports its own failures; kafkajs's warnings about its retry settings are noise here.
    kafka: { ...kafkaConfigFrom(s.kafka, log), logLevel: logLevel.ERROR },
    logger: log,
  });
  await publisher.connect();
  return publisher;
}

/** Reads the events topic from the start and hands this run's transitions to the report, printing as they come. */
class EventPrinter {
  private readonly consumer: Consumer;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    kafka: Kafka,
    private readonly topic: string,
    group: string,
    private readonly runId: string,
    private readonly report: TransitionReport,
    private readonly print: (line: string) => void,
  ) {
    this.consumer = kafka.consumer({ groupId: group });
  }

  async start(): Promise<void> {
    await this.consumer.connect();
    await this.consumer.subscribe({ topic: this.topic, fromBeginning: true });
    await this.consumer.run({
      eachMessage: async ({ message }) => {
        if (!message.value) return;
        const t = decodeTransition(message.value);
        if (t.run_id !== this.runId) return;
        this.report.add(t);
        // One classification pass arrives as a burst: print once the burst is over.
        clearTimeout(this.timer);
        this.timer = setTimeout(() => this.flush(), 300);
      },
    });
  }

  flush(all = false): void {
    clearTimeout(this.timer);
    for (const line of this.report.drain(all)) this.print(line);
  }

  async stop(): Promise<void> {
    await this.consumer.disconnect();
    this.flush(true);
  }
}

function runSummaries(service: ConsumerService, runId: string): LayerSummary[] {
  return service.detector.summaries().filter((s) => s.run_id === runId);
}

/** True when the consumer has applied every rank's last snapshot of every layer. */
function caughtUp(service: ConsumerService, o: DemoTrainerOptions, layers: number): boolean {
  const lastProbe = o.steps - (o.steps % o.every_steps);
  const sums = runSummaries(service, o.run_id);
  return (
    sums.length === layers &&
    sums.every((s) => s.ranks.length === o.ranks && s.ranks.every((r) => r.newest_step === lastProbe))
  );
}

export async function runLiveDemo(opts: LiveDemoOptions): Promise<LiveDemoResult> {
  const { settings: s, print, log } = opts;
  const o = resolveTrainerOptions({ ...opts.trainer, rank: 0 });
  const kafka = createKafka(s.kafka, log);
  const admin = await connectAdmin(kafka, s, log, print);
  let service: ConsumerService | undefined;
  let printer: EventPrinter | undefined;
  let publisher: SnapshotPublisher | undefined;
  let stopped = false;
  void opts.untilStopped.then(() => {
    stopped = true;
  });
  const confidence = 1 - s.detector.alpha;
  try {
    await createDemoTopics(admin, s);
    // One rank trains in this process, which needs its tfjs backend picked; ranks in child processes pick their own.
    if (o.ranks === 1) await loadTf((m) => print(`  ${m}`));
    service = await startConsumerService(s, log);
    await service.started;
    const svc = service;
    await waitUntil(
      "the consumer to join its group",
      () => svc.notReadyReason() === undefined,
      opts.catchUpTimeoutMs ?? 120_000,
    );
    const report = new TransitionReport({
      confidence,
      layerUnits: (layer) => svc.detector.summary(o.run_id, layer)?.layer_units,
    });
    printer = new EventPrinter(kafka, s.events_topic, `${s.group}.printer`, o.run_id, report, print);
    await printer.start();

    const host = s.metrics_host === "0.0.0.0" ? "127.0.0.1" : s.metrics_host;
    const base = `http://${host}:${service.address.port}`;
    print(
      `reluwatch demo: run ${o.run_id}, ${o.ranks} rank(s), ${o.layers} × ${o.units} ReLU units, ${o.steps} steps`,
    );
    print(`  Kafka ${s.kafka.brokers.join(",")}: snapshots → ${s.topic}, transitions → ${s.events_topic}`);
    print(`  unit explorer ${base}/ui/run?run=${encodeURIComponent(o.run_id)}`);
    print(`  metrics ${base}/metrics   API ${base}/api/runs/${encodeURIComponent(o.run_id)}/layers`);
    print(
      `  a unit is called dead after ${service.detector.samplesNeeded} silent samples: firing rate < ${formatPercent(s.detector.dead_rate)} with confidence ${formatPercent(confidence)}`,
    );
    if (o.lr_spike_step !== null)
      print(`  learning-rate spike ×${o.lr_spike_factor} at step ${o.lr_spike_step}`);
    print("");

    publisher = await connectDemoPublisher(s, log);
    const sink = new FanOutSink([publisher]);
    const training: Promise<DemoRunResult> = runDemo(o, {
      sink,
      log: (m) => print(`  ${m}`),
      onStep: (rank, step) => {
        if (rank === 0 && step === o.lr_spike_step)
          report.note(step, `learning-rate spike ×${o.lr_spike_factor}`);
      },
    });
    const result = await Promise.race([training, opts.untilStopped.then(() => undefined)]);
    const sent = await publisher.close();
    publisher = undefined;
    if (result === undefined) {
      print("stopping before the end of training");
      training.catch(() => undefined);
    } else {
      print(
        `training done: final loss ${result.finalLoss.toFixed(4)}, ${sink.count} snapshots published (${sent.sent} acknowledged)`,
      );
      await waitUntil(
        "the consumer to apply the last snapshots",
        () => caughtUp(svc, o, o.layers),
        opts.catchUpTimeoutMs ?? 120_000,
      );
      // Events trail the snapshots they came from: wait until every transition the detector made
      // that the events setting puts on the topic was read back.
      const made = () =>
        runSummaries(svc, o.run_id).reduce(
          (a, x) =>
            a +
            x.transitions_total.reduce((b, t) => b + (emitsEvent(s.events, t.from, t.to) ? t.count : 0), 0),
          0,
        );
      await waitUntil("the transition events", () => report.received >= made(), 60_000);
      printer.flush(true);
    }

    if (!opts.ci && !stopped && result !== undefined) {
      print("");
      print(`training is over; the explorer (${base}/ui/), /metrics and the API stay up until Ctrl-C`);
      await opts.untilStopped;
    }

    const summaries = runSummaries(service, o.run_id);
    const deaths = summaries.reduce((a, x) => a + x.deaths_total, 0);
    print("");
    print(
      `summary of run ${o.run_id} at step ${Math.max(0, ...summaries.map((x) => x.step))} (verdicts as of each layer's last closed bucket):`,
    );
    print(formatSummaryTable(summaries, result?.truth));
    if (result)
      print('"truly dead": never > 0 on any row of the whole dataset after training (evaluateDeadUnits)');
    const ok = result !== undefined && (!opts.ci || deaths > 0);
    if (opts.ci && deaths === 0) print("no unit death was detected");
    return { exitCode: ok ? 0 : 1, deaths, deathLines: report.deathLines, summaries };
  } finally {
    await publisher?.close({ timeout_ms: 5_000 });
    await printer?.stop().catch(() => undefined);
    await service?.stop();
    if (opts.deleteTopics) {
      await admin
        .deleteTopics({ topics: [s.topic, s.events_topic, s.dead_letter_topic] })
        .catch(() => undefined);
    }
    await admin.disconnect();
  }
}

/** How long the demo waits for a broker that does not answer (one still starting) before it gives up. */
const DEMO_CONNECT_WAIT_MS = 30_000;

/**
 * The admin client, once the brokers answer. A broker that is down fails
 * the demo after DEMO_CONNECT_WAIT_MS with a KafkaError, not after kafkajs's
 * own retries, which take over a minute and log each attempt.
 */
async function connectAdmin(
  kafka: Kafka,
  s: Settings,
  log: Logger,
  print: (line: string) => void,
): Promise<Admin> {
  let told = false;
  await waitForTopic(s.kafka, {
    timeoutMs: DEMO_CONNECT_WAIT_MS,
    log,
    // The demo's log shows errors only; say once why nothing happens yet.
    onWaiting: (reason) => {
      if (reason && !told) print(`${reason} (for up to ${DEMO_CONNECT_WAIT_MS / 1000} s)`);
      told ||= reason !== undefined;
    },
  });
  const admin = kafka.admin();
  await admin.connect();
  return admin;
}

/** `demo --trainer-only`: the trainer alone, publishing to the configured broker and topic. */
export async function runTrainerOnly(
  settings: Settings,
  trainer: Partial<DemoTrainerOptions>,
  print: (line: string) => void,
  log: Logger,
): Promise<void> {
  const kafka = createKafka(settings.kafka, log);
  const admin = await connectAdmin(kafka, settings, log, print);
  try {
    await createDemoTopics(admin, settings);
    if (resolveTrainerOptions(trainer).ranks === 1) await loadTf(print);
  } finally {
    await admin.disconnect();
  }
  const publisher = await connectDemoPublisher(settings, log);
  const sink = new FanOutSink([publisher]);
  try {
    const r = await runDemo(trainer, { sink, log: print });
    const stats = await publisher.close();
    print(
      `demo trainer: ${r.options.steps} steps on ${r.options.ranks} rank(s); ${stats.sent} snapshots sent to ${settings.topic}, ${stats.dropped} dropped`,
    );
  } finally {
    await publisher.close({ timeout_ms: 5_000 });
  }
}
