/**
 * One place that turns reluwatch's Kafka settings into a kafkajs client, so
 * consume, record, simulate and the publisher SDK connect the same way (TLS,
 * SASL, logging).
 */
import { readFileSync } from "node:fs";
import { Kafka, type KafkaConfig, type LogEntry, logLevel, type SASLOptions } from "kafkajs";
import type { KafkaSettings } from "../config/load.js";
import type { Logger } from "../log.js";
import { registerZstdCodec } from "./kafka-zstd.js";

// Every client this module makes can read zstd batches, whoever wrote them.
registerZstdCodec();

export function kafkaConfigFrom(settings: KafkaSettings, log?: Logger): KafkaConfig {
  const config: KafkaConfig = {
    clientId: settings.client_id,
    brokers: settings.brokers,
    logLevel: logLevel.WARN,
    retry: { retries: 10, initialRetryTime: 300, maxRetryTime: 10_000 },
  };
  if (log) config.logCreator = () => (entry: LogEntry) => forward(log, entry);
  if (settings.ssl) {
    config.ssl = {
      rejectUnauthorized: settings.ssl_reject_unauthorized,
      ...(settings.ssl_ca_file ? { ca: [readFileSync(settings.ssl_ca_file, "utf8")] } : {}),
      ...(settings.ssl_cert_file ? { cert: readFileSync(settings.ssl_cert_file, "utf8") } : {}),
      ...(settings.ssl_key_file ? { key: readFileSync(settings.ssl_key_file, "utf8") } : {}),
    };
  }
  if (settings.sasl_mechanism) {
    config.sasl = {
      mechanism: settings.sasl_mechanism,
      username: settings.sasl_username!,
      password: settings.sasl_password!,
    } as SASLOptions;
  }
  return config;
}

/** `overrides` for what a command does differently, e.g. a one-shot command's quieter logging. */
export function createKafka(
  settings: KafkaSettings,
  log?: Logger,
  overrides: Partial<KafkaConfig> = {},
): Kafka {
  return new Kafka({ ...kafkaConfigFrom(settings, log), ...overrides });
}

function forward(log: Logger, { level, namespace, log: entry }: LogEntry): void {
  const { message, ...rest } = entry;
  const fields = { kafkajs: namespace, ...rest };
  if (level === logLevel.ERROR) log.error(fields, message);
  else if (level === logLevel.WARN) log.warn(fields, message);
  else if (level === logLevel.INFO) log.info(fields, message);
  else log.debug(fields, message);
}
