/**
 * Writes checkpoint records to the changelog (state) topic, each to the
 * explicit partition of the input partition its layers arrive on, through an
 * idempotent producer acknowledged by every in-sync replica; and creates the
 * topic when absent: compacted, co-partitioned with the input topic, with
 * records large enough for the codec's chunks.
 */
import type { Kafka, Producer } from "kafkajs";
import { DEFAULT_CHUNK_BYTES } from "../codec/checkpoint-codec.js";
import type { Logger } from "../log.js";
import type { TransactionalMessage } from "./transactional-producer.js";

/** A changelog record: its key and value, null for a tombstone. */
export interface ChangelogEntry {
  key: string;
  value: Uint8Array | null;
}

/** The topic settings the service creates the state topic with (docs/deploy.md). */
export const STATE_TOPIC_CONFIG: ReadonlyArray<{ name: string; value: string }> = [
  { name: "cleanup.policy", value: "compact" },
  // A chunk (DEFAULT_CHUNK_BYTES of payload, its header and key) with room for the record batch framing.
  { name: "max.message.bytes", value: String(DEFAULT_CHUNK_BYTES + 1024 * 1024) },
  // Small segments, so superseded checkpoints are compacted away within the hour rather than the week.
  { name: "segment.ms", value: String(60 * 60 * 1000) },
  { name: "segment.bytes", value: String(256 * 1024 * 1024) },
  { name: "min.cleanable.dirty.ratio", value: "0.1" },
  // Tombstones live long enough for a restore that started before them to see them.
  { name: "delete.retention.ms", value: String(24 * 60 * 60 * 1000) },
  { name: "compression.type", value: "producer" },
];

/** A send is one record batch per partition, which max.message.bytes bounds: one chunk a send, small records together. */
const SEND_BYTES = DEFAULT_CHUNK_BYTES;

export class KafkaChangelogWriter {
  private readonly producer: Producer;

  constructor(
    private readonly kafka: Kafka,
    private readonly topic: string,
  ) {
    this.producer = kafka.producer({
      idempotent: true,
      maxInFlightRequests: 1,
      allowAutoTopicCreation: false,
    });
  }

  /**
   * Creates the state topic with as many partitions as `inputTopic` when it
   * does not exist. An existing one with fewer partitions cannot hold every
   * input partition's state: that is an error, not a silent remap.
   */
  async ensureTopic(inputTopic: string, log: Logger): Promise<void> {
    const admin = this.kafka.admin();
    await admin.connect();
    try {
      const input = await admin.fetchTopicMetadata({ topics: [inputTopic] });
      const partitions = input.topics[0]?.partitions.length ?? 1;
      const existing = await admin.listTopics();
      if (!existing.includes(this.topic)) {
        await admin.createTopics({
          waitForLeaders: true,
          topics: [{ topic: this.topic, numPartitions: partitions, configEntries: [...STATE_TOPIC_CONFIG] }],
        });
        log.info({ event: "state_topic_created", topic: this.topic, partitions }, "created the state topic");
        return;
      }
      const have =
        (await admin.fetchTopicMetadata({ topics: [this.topic] })).topics[0]?.partitions.length ?? 0;
      if (have < partitions) {
        throw new Error(
          `state topic ${this.topic} has ${have} partitions, the snapshot topic ${inputTopic} has ${partitions}: give the state topic at least as many (kafka-topics.sh --alter --partitions ${partitions})`,
        );
      }
    } finally {
      await admin.disconnect();
    }
  }

  connect(): Promise<void> {
    return this.producer.connect();
  }

  disconnect(): Promise<void> {
    return this.producer.disconnect();
  }

  /** Resolves once every record is acknowledged (acks all). */
  async write(partition: number, records: readonly ChangelogEntry[]): Promise<void> {
    for (const batch of changelogSends(this.topic, partition, records)) {
      await this.producer.send({ topic: this.topic, acks: -1, messages: batch });
    }
  }
}

/**
 * A partition's checkpoint records as produce requests, in order, one chunk a
 * request: a layer of 1M units is ~70-110 chunks, more than one record batch
 * may carry. Used by `write` and by the exactly_once transaction.
 */
export function changelogSends(
  topic: string,
  partition: number,
  records: readonly ChangelogEntry[],
): TransactionalMessage[][] {
  const sends: TransactionalMessage[][] = [];
  let batch: TransactionalMessage[] = [];
  let bytes = 0;
  for (const r of records) {
    const value =
      r.value === null ? null : Buffer.from(r.value.buffer, r.value.byteOffset, r.value.byteLength);
    if (bytes > 0 && bytes + (value?.byteLength ?? 0) > SEND_BYTES) {
      sends.push(batch);
      batch = [];
      bytes = 0;
    }
    batch.push({ topic, key: r.key, value, partition });
    bytes += value?.byteLength ?? 0;
  }
  if (batch.length > 0) sends.push(batch);
  return sends;
}
