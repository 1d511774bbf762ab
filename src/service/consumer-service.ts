/**
 * `reluwatch consume` assembled: Kafka source → codec → detector → Prometheus,
 * transition events, dead letters and the HTTP API. Started and stopped as one
 * unit, in-process (tests) or from the CLI (signals).
 */
import type { AddressInfo } from "node:net";
import type { Settings } from "../config/load.js";
import { Detector } from "../core/index.js";
import { createLogger, type Logger } from "../log.js";
import { HttpServer } from "../sink/http-server.js";
import { KafkaSinks } from "../sink/kafka-sinks.js";
import { Exporter } from "../sink/prometheus.js";
import { createKafka } from "../source/kafka-client.js";
import { KafkaSnapshotSource } from "../source/kafka-source.js";
import { REJECT_REASONS, SnapshotProcessor } from "./snapshot-processor.js";
import { Telemetry } from "./telemetry.js";

export interface ConsumerService {
  address: AddressInfo;
  detector: Detector;
  exporter: Exporter;
  notReadyReason(): string | undefined;
  /** Resolves when consuming stopped for good (an error kafkajs does not retry); exit non-zero then. */
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
  });
  const telemetry = new Telemetry(log, exporter);
  const processor = new SnapshotProcessor(detector, settings.limits, telemetry);
  const kafka = createKafka(settings.kafka, log);
  const sinks = new KafkaSinks(kafka, settings.events_topic, settings.dead_letter_topic);
  const source = new KafkaSnapshotSource(
    kafka,
    { topic: settings.topic, group: settings.group, restoreLookbackMs: settings.restore_lookback_ms },
    processor,
    sinks,
    telemetry,
  );
  const http = new HttpServer({
    host: settings.metrics_host,
    port: settings.metrics_port,
    api: detector,
    metrics: () => exporter.metrics(),
    metricsContentType: exporter.contentType,
    notReadyReason: () => source.notReadyReason(),
  });

  const address = await http.start();
  log.info(
    { event: "http_listening", host: address.address, port: address.port },
    "serving /metrics, /healthz, /readyz, /api",
  );
  await sinks.connect();
  await source.start();
  const punctuator = setInterval(() => {
    const now = Date.now();
    const idle = processor.flushIdle(now, settings.idle_flush_ms);
    if (idle.length > 0) {
      telemetry.transitions(idle);
      sinks.write(idle, []).catch((err: unknown) => {
        log.warn(
          { event: "idle_flush_write_failed", err: String(err) },
          "could not publish idle-flush transitions",
        );
      });
    }
    processor.punctuate(now, settings.run_idle_timeout_ms);
  }, PUNCTUATE_INTERVAL_MS);
  punctuator.unref();
  log.info(
    { event: "consuming", topic: settings.topic, group: settings.group, brokers: settings.kafka.brokers },
    "consuming snapshots",
  );

  let stopping: Promise<void> | undefined;
  return {
    address,
    detector,
    exporter,
    notReadyReason: () => source.notReadyReason(),
    failed: source.failed,
    stop() {
      stopping ??= (async () => {
        clearInterval(punctuator);
        await source.stop();
        await sinks.disconnect();
        await http.stop();
        log.info({ event: "stopped" }, "stopped cleanly");
      })();
      return stopping;
    },
  };
}
