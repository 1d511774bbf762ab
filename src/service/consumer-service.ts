/**
 * `reluwatch consume` assembled: the stream task over the Kafka source, with
 * Prometheus, transition events, dead letters and the HTTP API. Started and stopped as one
 * unit, in-process (tests) or from the CLI (signals).
 *
 * The HTTP side comes up first and the Kafka side follows in the background:
 * the service is usually started before the trainer has created its topic, or
 * while the brokers are still starting, and waits for both (with /readyz
 * saying what it waits for) rather than failing.
 */
import type { AddressInfo } from "node:net";
import type { Settings } from "../config/load.js";
import { DEFAULT_KAFKA_CLIENT } from "../config/options.js";
import { Detector } from "../core/index.js";
import { createLogger, type Logger } from "../log.js";
import { KafkaChangelogWriter } from "../sink/changelog-writer.js";
import { HttpServer } from "../sink/http-server.js";
import { KafkaSinks } from "../sink/kafka-sinks.js";
import { Exporter } from "../sink/prometheus.js";
import { defaultTransactionalId, KafkajsTransactionalProducer } from "../sink/transactional-producer.js";
import { KafkaChangelogReader } from "../source/changelog-reader.js";
import { createKafka } from "../source/kafka-client.js";
import { kafkaErrorOf } from "../source/kafka-errors.js";
import { KafkaSnapshotSource, PARTITIONS_IN_FLIGHT } from "../source/kafka-source.js";
import {
  createFetchPool,
  createPlatformaticConsumer,
  platformaticConnectionFrom,
} from "../source/platformatic-client.js";
import { ThreadFetcher } from "../source/platformatic-fetch-thread.js";
import { PlatformaticSnapshotSource } from "../source/platformatic-source.js";
import { waitForTopic } from "../source/topic-wait.js";
import { ChangelogStore } from "./changelog-store.js";
import { ExactlyOnceCommitter } from "./exactly-once.js";
import { REJECT_REASONS, SnapshotProcessor } from "./snapshot-processor.js";
import { StreamTask } from "./stream-task.js";
import { Telemetry } from "./telemetry.js";

export interface ConsumerService {
  address: AddressInfo;
  detector: Detector;
  exporter: Exporter;
  notReadyReason(): string | undefined;
  /**
   * Resolves once the topic exists and the consumer is subscribed (group
   * membership and restores follow: see notReadyReason); rejects, like
   * `failed` resolves, when starting failed for good.
   */
  started: Promise<void>;
  /**
   * Resolves when consuming stopped for good: a Kafka condition waiting does
   * not fix (refused credentials, no ACL) or an error kafkajs does not retry.
   * Exit non-zero then. Expected broker conditions arrive as a KafkaError.
   */
  failed: Promise<Error>;
  /** Graceful: stop fetching, finish and commit the batch in hand, flush producers, close HTTP. */
  stop(): Promise<void>;
}

const PUNCTUATE_INTERVAL_MS = 10_000;

export async function startConsumerService(
  settings: Settings,
  log: Logger = createLogger("consume", settings.log_level),
): Promise<ConsumerService> {
  const detector = new Detector(settings.detector);
  const exporter = new Exporter(detector, {
    unitSeries: settings.unit_series,
    unitSeriesMax: settings.unit_series_max,
    rejectReasons: REJECT_REASONS,
    externalUrl: settings.external_url,
  });
  const telemetry = new Telemetry(log, exporter);
  const processor = new SnapshotProcessor(detector, {
    limits: settings.limits,
    evictIdleMs: settings.idle_flush_ms,
    clock: "wall",
  });
  const kafka = createKafka(settings.kafka, log);
  const sinks = new KafkaSinks(kafka, settings.events_topic, settings.dead_letter_topic, settings.events);
  const client = settings.kafka.kafka_client ?? DEFAULT_KAFKA_CLIENT;
  const source =
    client === "platformatic"
      ? new PlatformaticSnapshotSource(
          () =>
            createPlatformaticConsumer(settings.kafka, settings.group, (memberId, reason) =>
              log.warn(
                { event: "assignment_claims_undecodable", member_id: memberId, reason },
                "a member's partition claims do not decode; it is treated as owning nothing",
              ),
            ),
          {
            topic: settings.topic,
            group: settings.group,
            brokers: settings.kafka.brokers,
            fetchPool: createFetchPool(settings.kafka),
            ...(settings.fetch_thread
              ? {
                  // While the handler counts one fetch's batches, as many partitions again are fetched ahead.
                  backlogPartitionsInFlight: 2 * PARTITIONS_IN_FLIGHT,
                  backlogFetcher: new ThreadFetcher({
                    connection: platformaticConnectionFrom(settings.kafka),
                    topic: settings.topic,
                    group: settings.group,
                  }),
                }
              : {}),
            log,
          },
        )
      : new KafkaSnapshotSource(kafka, { topic: settings.topic, group: settings.group, log });
  const changelog = new KafkaChangelogWriter(kafka, settings.state_topic);
  const exactlyOnce = settings.processing_guarantee === "exactly_once";
  const transactionalProducer = exactlyOnce
    ? new KafkajsTransactionalProducer(
        kafka,
        settings.transactional_id ?? defaultTransactionalId(settings.group),
      )
    : undefined;
  const store = new ChangelogStore(
    detector,
    new KafkaChangelogReader(kafka, { topic: settings.state_topic, group: settings.group, log }),
    changelog,
    { intervalMs: settings.checkpoint_interval_ms, log },
  );
  const task = new StreamTask(source, processor, sinks, telemetry, {
    restoreLookbackMs: settings.restore_lookback_ms,
    store,
    startFrom: settings.start_from,
    onInvalid: settings.on_invalid ?? "dead_letter",
    idleFlushMs: settings.idle_flush_ms,
    runIdleTimeoutMs: settings.run_idle_timeout_ms,
    commitIntervalMs: settings.commit_interval_ms,
    ...(transactionalProducer
      ? {
          transactions: new ExactlyOnceCommitter(transactionalProducer, sinks, {
            group: settings.group,
            topic: settings.topic,
            stateTopic: settings.state_topic,
          }),
        }
      : {}),
  });
  const brokers = settings.kafka.brokers;
  /** What the Kafka side still waits for before it can join the group; undefined once subscribed. */
  let waiting: string | undefined = `connecting to Kafka at ${brokers.join(",")}`;
  const http = new HttpServer({
    host: settings.metrics_host,
    port: settings.metrics_port,
    api: detector,
    metrics: () => exporter.metrics(),
    metricsContentType: exporter.contentType,
    notReadyReason: () => waiting ?? task.notReadyReason(),
    token: settings.http_token,
  });

  const address = await http.start();
  log.info(
    { event: "http_listening", host: address.address, port: address.port },
    "serving /metrics, /healthz, /readyz, /api",
  );
  const abort = new AbortController();
  const started = (async () => {
    await waitForTopic(settings.kafka, {
      topic: settings.topic,
      signal: abort.signal,
      log,
      onWaiting: (reason) => {
        waiting = reason;
      },
    });
    waiting = undefined;
    await changelog.ensureTopic(settings.topic, log);
    if (transactionalProducer) {
      // Before the first restore: fencing the previous incarnation aborts its open transaction,
      // which a read_committed restore would otherwise wait for.
      await transactionalProducer.connect();
    } else {
      await sinks.connect();
      await changelog.connect();
    }
    await task.start();
    task.startPunctuator(PUNCTUATE_INTERVAL_MS);
    task.startCommitTimer();
    log.info(
      {
        event: "consuming",
        topic: settings.topic,
        group: settings.group,
        brokers,
        processing_guarantee: settings.processing_guarantee,
        client,
      },
      "consuming snapshots",
    );
  })().catch((err: unknown) => {
    // No topic in context: the wait covered the snapshot topic; what fails after it may be another one.
    throw kafkaErrorOf(err, { brokers, group: settings.group }) ?? err;
  });
  started.catch(() => undefined); // reported through `failed`; a caller need not await `started`
  const startFailed = started.then(
    () => new Promise<Error>(() => {}),
    (err: unknown) => (abort.signal.aborted ? new Promise<Error>(() => {}) : (err as Error)),
  );

  let stopping: Promise<void> | undefined;
  return {
    address,
    detector,
    exporter,
    notReadyReason: () => waiting ?? task.notReadyReason(),
    started,
    failed: Promise.race([task.failed, startFailed]),
    stop() {
      stopping ??= (async () => {
        abort.abort();
        await started.catch(() => undefined);
        await task.stop();
        if (transactionalProducer) {
          await transactionalProducer.disconnect();
        } else {
          await sinks.disconnect();
          await changelog.disconnect();
        }
        await http.stop();
        log.info({ event: "stopped" }, "stopped cleanly");
      })();
      return stopping;
    },
  };
}
