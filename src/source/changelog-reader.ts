/**
 * Reads changelog partitions (the state topic) from their beginning to the
 * end offset they had when the read started, and returns their raw records
 * in order: the restore of the stream task's state store. What the records
 * mean is src/codec's business and what is done with them src/service's.
 *
 * kafkajs offers no group-less assign, so each read joins a throwaway group
 * of its own (no offsets committed, deleted afterwards) and pauses the
 * partitions it was not asked for.
 *
 * It reads committed records only (isolation read_committed): under
 * exactly_once the state topic is written in transactions, and a checkpoint
 * of an aborted one describes state that was never committed. The end is
 * reached by offset, not by the last record seen: a transaction's commit
 * marker or an aborted transaction's records hold the last offsets without
 * being delivered, so progress is taken from kafkajs's end-of-batch event,
 * which reports filtered batches too. A transaction still open waits for its
 * end (a fenced producer's is aborted by the coordinator).
 */
import { randomUUID } from "node:crypto";
import type { Kafka } from "kafkajs";
import type { Logger } from "../log.js";

/** A changelog record: its key and value, null for a tombstone. */
export interface ChangelogRecord {
  key: string;
  value: Uint8Array | null;
}

export interface KafkaChangelogReaderOptions {
  topic: string;
  /** The consumer group of the service: the throwaway groups are named after it. */
  group: string;
  log: Logger;
  /** Give up a read after this long (a broker that never serves the partitions). */
  timeoutMs?: number;
}

export class KafkaChangelogReader {
  constructor(
    private readonly kafka: Kafka,
    private readonly options: KafkaChangelogReaderOptions,
  ) {}

  async read(partitions: readonly number[]): Promise<Map<number, ChangelogRecord[]>> {
    const { topic } = this.options;
    const out = new Map<number, ChangelogRecord[]>(partitions.map((p) => [p, []]));
    const admin = this.kafka.admin();
    await admin.connect();
    try {
      const ends = new Map<number, bigint>();
      for (const { partition, high, low } of await admin.fetchTopicOffsets(topic)) {
        if (partitions.includes(partition) && BigInt(high) > BigInt(low)) ends.set(partition, BigInt(high));
      }
      if (ends.size === 0) return out;
      const groupId = `${this.options.group}.state-restore.${randomUUID()}`;
      await this.consume(groupId, ends, out);
      await admin.deleteGroups([groupId]).catch(() => undefined);
      return out;
    } finally {
      await admin.disconnect();
    }
  }

  private async consume(
    groupId: string,
    ends: Map<number, bigint>,
    out: Map<number, ChangelogRecord[]>,
  ): Promise<void> {
    const { topic } = this.options;
    const consumer = this.kafka.consumer({
      groupId,
      maxBytesPerPartition: 16 * 1024 * 1024,
      allowAutoTopicCreation: false,
      readUncommitted: false,
    });
    const pending = new Set(ends.keys());
    let done: () => void = () => {};
    let failed: (err: Error) => void = () => {};
    const finished = new Promise<void>((resolve, reject) => {
      done = resolve;
      failed = reject;
    });
    consumer.on(consumer.events.CRASH, (e) => {
      if (!e.payload.restart) failed(e.payload.error);
    });
    consumer.on(consumer.events.END_BATCH_PROCESS, (e) => {
      const { partition, lastOffset } = e.payload;
      const end = ends.get(partition);
      if (end === undefined || !pending.has(partition) || BigInt(lastOffset) + 1n < end) return;
      pending.delete(partition);
      consumer.pause([{ topic, partitions: [partition] }]);
      if (pending.size === 0) done();
    });
    const timer = setTimeout(
      () => failed(new Error(`reading ${topic} took longer than ${this.options.timeoutMs ?? 120_000} ms`)),
      this.options.timeoutMs ?? 120_000,
    );
    try {
      await consumer.connect();
      await consumer.subscribe({ topic, fromBeginning: true });
      await consumer.run({
        autoCommit: false,
        eachBatch: async ({ batch }) => {
          const end = ends.get(batch.partition);
          if (end === undefined || !pending.has(batch.partition)) {
            consumer.pause([{ topic, partitions: [batch.partition] }]);
            return;
          }
          const records = out.get(batch.partition)!;
          for (const m of batch.messages) {
            if (BigInt(m.offset) >= end) break;
            if (m.key === null) continue;
            records.push({ key: m.key.toString("utf8"), value: m.value });
          }
          // The end of the partition is noticed in END_BATCH_PROCESS, which follows this.
        },
      });
      await finished;
    } finally {
      clearTimeout(timer);
      await consumer.disconnect();
    }
  }
}
