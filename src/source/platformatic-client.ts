/**
 * reluwatch's Kafka settings as @platformatic/kafka options: the counterpart
 * of kafka-client.ts for the consumer that `kafka_client: platformatic`
 * selects, so both clients reach the same brokers the same way (TLS with a CA,
 * a client certificate and key, SASL PLAIN or SCRAM).
 */
import { readFileSync } from "node:fs";
import type { ConnectionOptions as TlsOptions } from "node:tls";
import { ConnectionPool, Consumer, type ConsumerOptions, type SASLOptions } from "@platformatic/kafka";
import type { KafkaSettings, SaslMechanism } from "../config/load.js";
import { ownershipOf, PLATFORMATIC_PROTOCOLS, stickyPartitionAssigner } from "./platformatic-assigner.js";
import { encodeOwnership } from "./sticky-ownership.js";

const SASL_MECHANISMS: Record<SaslMechanism, SASLOptions["mechanism"]> = {
  plain: "PLAIN",
  "scram-sha-256": "SCRAM-SHA-256",
  "scram-sha-512": "SCRAM-SHA-512",
};

/** What every @platformatic/kafka client needs to reach the brokers. */
export interface PlatformaticConnection {
  clientId: string;
  bootstrapBrokers: string[];
  tls?: TlsOptions;
  sasl?: SASLOptions;
  retries: number;
  retryDelay: number;
}

export function platformaticConnectionFrom(settings: KafkaSettings): PlatformaticConnection {
  const connection: PlatformaticConnection = {
    clientId: settings.client_id,
    bootstrapBrokers: settings.brokers,
    // Each request is retried a few times only: the source's own loop waits out longer outages with a log line.
    retries: 3,
    retryDelay: 500,
  };
  if (settings.ssl) {
    connection.tls = {
      rejectUnauthorized: settings.ssl_reject_unauthorized,
      ...(settings.ssl_ca_file ? { ca: [readFileSync(settings.ssl_ca_file, "utf8")] } : {}),
      ...(settings.ssl_cert_file ? { cert: readFileSync(settings.ssl_cert_file, "utf8") } : {}),
      ...(settings.ssl_key_file ? { key: readFileSync(settings.ssl_key_file, "utf8") } : {}),
    };
  }
  if (settings.sasl_mechanism) {
    connection.sasl = {
      mechanism: SASL_MECHANISMS[settings.sasl_mechanism],
      username: settings.sasl_username!,
      password: settings.sasl_password!,
    };
  }
  return connection;
}

/** Fetch limits shared with the kafkajs source, so the two clients differ only in how they fetch. */
export const FETCH_LIMITS = {
  /** Large enough for the biggest snapshot we accept, so one never stalls a partition. */
  maxBytesPerPartition: 16 * 1024 * 1024,
  /**
   * The whole answer is handed over at once, so its size is the grain of the overlap between
   * fetching and counting: 16 MB of gzip snapshots is about a quarter of a second of counting.
   * With 64 MB the service on one thread was about 15% slower and used about 20% more CPU a
   * snapshot (docs/profile.md, "The fetch thread").
   */
  maxBytes: 16 * 1024 * 1024,
  /** How long the broker holds a fetch that finds nothing new: the idle poll interval. */
  maxWaitTime: 500,
};

/**
 * The snapshot source's fetch connections. A broker answers the requests of
 * one connection in order, so on the consumer's own connections a commit
 * would queue behind a long poll; the client's MessagesStream keeps a pool of
 * its own for the same reason.
 */
export function createFetchPool(settings: KafkaSettings): ConnectionPool {
  const { clientId, tls, sasl } = platformaticConnectionFrom(settings);
  return new ConnectionPool(clientId, { ...(tls ? { tls } : {}), ...(sasl ? { sasl } : {}) });
}

/**
 * The consumer-group member of the snapshot source; its fetches are the
 * source's own (platformatic-source.ts). It joins with the sticky assignment
 * (platformatic-assigner.ts), round-robin as the fallback.
 */
export function createPlatformaticConsumer(
  settings: KafkaSettings,
  group: string,
  onUndecodableClaims: (memberId: string, reason: string) => void = () => {},
): Consumer {
  // The claims callback reads the consumer it is an option of.
  let consumer: Consumer | undefined;
  const options: ConsumerOptions<Buffer, Buffer, Buffer, Buffer> = {
    ...platformaticConnectionFrom(settings),
    groupId: group,
    sessionTimeout: 30_000,
    heartbeatInterval: 3_000,
    rebalanceTimeout: 60_000,
    autocommit: false,
    autocreateTopics: false,
    protocols: PLATFORMATIC_PROTOCOLS,
    protocolsMetadata: () =>
      encodeOwnership(consumer ? ownershipOf(consumer) : { generation: -1, owned: [] }),
    partitionAssigner: stickyPartitionAssigner(onUndecodableClaims),
    ...FETCH_LIMITS,
  };
  consumer = new Consumer(options);
  return consumer;
}
