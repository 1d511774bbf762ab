/**
 * The Kafka producer behind SnapshotPublisher, with either client: the
 * publisher queues, batches and retries; a BatchProducer only sends one batch
 * of keyed records, all acknowledged by every in-sync replica, or fails.
 *
 * Both clients place a key by the Java client's murmur2 partitioner, so a
 * layer's snapshots land on the same partition whichever client wrote them.
 * @platformatic/kafka needs about a third of kafkajs's CPU per snapshot sent
 * (docs/benchmarks.md, SnapshotPublisher rows); it compresses gzip on the
 * thread pool and every other codec on the calling thread, kafkajs gzip on
 * the calling thread and zstd on the thread pool.
 */
import { Producer as PlatformaticProducer, stringSerializer } from "@platformatic/kafka";
import kafkajs, { type KafkaConfig, type ProducerConfig } from "kafkajs";
import type { KafkaSettings } from "../config/load.js";
import type { KafkaClient } from "../config/options.js";
import { kafkaConfigFrom } from "../source/kafka-client.js";
import { registerZstdCodec, zstdAvailable } from "../source/kafka-zstd.js";
import { platformaticConnectionFrom } from "../source/platformatic-client.js";

// kafkajs is CommonJS and not every export is visible to ESM named imports.
const { CompressionCodecs, CompressionTypes, Kafka, logLevel, Partitioners } = kafkajs;
type CompressionTypes = kafkajs.CompressionTypes;

export type PublisherCompression = "none" | "gzip" | "snappy" | "lz4" | "zstd";

export interface KeyedRecord {
  key: string;
  value: Buffer;
}

export interface BatchProducer {
  /** Rejects when no broker answers. */
  connect(): Promise<void>;
  /** Resolves once every record of the batch is acknowledged; rejects when the client gave up on it. */
  send(records: readonly KeyedRecord[]): Promise<void>;
  disconnect(): Promise<void>;
}

export interface BatchProducerOptions {
  client: KafkaClient;
  topic: string;
  compression: PublisherCompression;
  /** The connection: reluwatch's own kafka settings, or bootstrap servers and a client id. */
  connection: KafkaSettings | { brokers: string[]; clientId: string };
  /** kafkajs only: overrides for its client and its producer. */
  kafkajs?: { kafka?: Partial<KafkaConfig>; producer?: Partial<ProducerConfig> };
}

/**
 * A producer of `options.client`; throws when the compression cannot be written
 * by it (zstd on a Node.js without zlib zstd, snappy or lz4 under kafkajs
 * without their codec registered).
 */
export function createBatchProducer(options: BatchProducerOptions): BatchProducer {
  // The table's keys are every codec Kafka has.
  if (!Object.hasOwn(KAFKAJS_COMPRESSION, options.compression)) {
    throw new Error(`unknown compression ${options.compression}`);
  }
  // Both clients call zlib's zstd: say so here rather than at the first send.
  if (options.compression === "zstd" && !zstdAvailable()) {
    throw new Error(`compression zstd needs Node.js >= 22.15 (zlib zstd); this is ${process.version}`);
  }
  return options.client === "platformatic" ? platformaticProducer(options) : kafkajsProducer(options);
}

const KAFKAJS_COMPRESSION: Record<PublisherCompression, CompressionTypes> = {
  none: CompressionTypes.None,
  gzip: CompressionTypes.GZIP,
  snappy: CompressionTypes.Snappy,
  lz4: CompressionTypes.LZ4,
  zstd: CompressionTypes.ZSTD,
};

/** kafkajs's unregistered codecs are factories that throw "not implemented". */
function codecAvailable(type: CompressionTypes): boolean {
  try {
    const factory = (CompressionCodecs as Record<number, (() => unknown) | undefined>)[type];
    return Boolean(factory?.());
  } catch {
    return false;
  }
}

function kafkajsProducer(options: BatchProducerOptions): BatchProducer {
  const compression = KAFKAJS_COMPRESSION[options.compression];
  if (compression === CompressionTypes.ZSTD) registerZstdCodec();
  else if (compression !== CompressionTypes.None && compression !== CompressionTypes.GZIP) {
    if (!codecAvailable(compression)) {
      throw new Error(
        `compression ${options.compression} needs its codec registered in kafkajs's CompressionCodecs first`,
      );
    }
  }
  const c = options.connection;
  const kafka = new Kafka({
    ...("client_id" in c ? kafkaConfigFrom(c) : { clientId: c.clientId, brokers: c.brokers }),
    logLevel: logLevel.NOTHING,
    ...options.kafkajs?.kafka,
  });
  const producer = kafka.producer({
    idempotent: true,
    maxInFlightRequests: 1,
    createPartitioner: Partitioners.DefaultPartitioner,
    // Bounded, so a produce request fails during an outage and the publisher's
    // own loop (which close() can stop) takes over the retrying.
    retry: { retries: 5, initialRetryTime: 100, maxRetryTime: 2_000 },
    ...options.kafkajs?.producer,
  });
  return {
    connect: () => producer.connect(),
    send: async (records) => {
      await producer.send({ topic: options.topic, messages: [...records], acks: -1, compression });
    },
    disconnect: () => producer.disconnect(),
  };
}

function platformaticProducer(options: BatchProducerOptions): BatchProducer {
  const c = options.connection;
  const connection = platformaticConnectionFrom(
    "client_id" in c
      ? c
      : { brokers: c.brokers, client_id: c.clientId, ssl: false, ssl_reject_unauthorized: true },
  );
  const producer = new PlatformaticProducer<string, Buffer, Buffer, Buffer>({
    ...connection,
    idempotent: true,
    acks: -1,
    compression: options.compression,
    autocreateTopics: false,
    serializers: { key: stringSerializer },
  });
  const topic = options.topic;
  return {
    // The client connects on its first request; asking for the topic's metadata is that request.
    connect: async () => {
      await producer.metadata({ topics: [topic] });
    },
    send: async (records) => {
      await producer.send({ messages: records.map((r) => ({ topic, key: r.key, value: r.value })) });
    },
    disconnect: () => producer.close(true),
  };
}
