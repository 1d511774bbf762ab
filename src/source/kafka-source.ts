/**
 * The Kafka consumer-group adapter: delivers the snapshot topic's batches and
 * the group's assignments to a SourceHandler, and offers the group's offsets
 * (committed, by timestamp, seek, commit). What the records mean, and when
 * offsets are committed, is the stream task's business (src/service).
 */
import type { Admin, Consumer, EachBatchPayload, Kafka } from "kafkajs";
import type { Logger } from "../log.js";
import { reluwatchAssigners, StickyMembership } from "./kafka-assigner.js";
import type { OffsetControl, SnapshotSource, SourceHandler } from "./source.js";

export interface KafkaSourceOptions {
  topic: string;
  group: string;
  log: Logger;
}

/** Partitions whose batches may be in progress at once. */
export const PARTITIONS_IN_FLIGHT = 4;

export class KafkaSnapshotSource implements SnapshotSource {
  readonly topic: string;
  readonly offsets: OffsetControl;
  private readonly consumer: Consumer;
  private readonly admin: Admin;
  private joined = false;
  private stopping = false;
  private fatal: Error | undefined;
  private fail: (err: Error) => void = () => {};
  readonly failed: Promise<Error> = new Promise((resolve) => {
    this.fail = (err) => {
      this.fatal ??= err;
      resolve(err);
    };
  });

  constructor(
    kafka: Kafka,
    private readonly options: KafkaSourceOptions,
  ) {
    this.topic = options.topic;
    this.admin = kafka.admin();
    const membership = new StickyMembership();
    this.consumer = kafka.consumer({
      groupId: options.group,
      // Partitions stay with their owner across membership changes: a moved one costs a restore.
      partitionAssigners: reluwatchAssigners(membership),
      // Large enough for the biggest snapshot we accept, so one never stalls a partition.
      maxBytesPerPartition: 16 * 1024 * 1024,
      maxBytes: 64 * 1024 * 1024,
      sessionTimeout: 30_000,
      heartbeatInterval: 3_000,
      allowAutoTopicCreation: false,
      // kafkajs's default, stated: records of aborted or open transactions are never processed.
      readUncommitted: false,
    });
    membership.follow(this.consumer);
    this.consumer.on(this.consumer.events.CRASH, (e) => {
      this.joined = false;
      options.log.error({
        event: "consumer_crash",
        error: String(e.payload.error),
        restart: e.payload.restart,
      });
      // kafkajs gives up on errors it deems non-retriable and never fetches again; the process
      // would linger alive (healthz 200) consuming nothing. Report it so the service can exit.
      if (!e.payload.restart && !this.stopping) this.fail(e.payload.error);
    });
    this.consumer.on(this.consumer.events.REBALANCING, () => {
      this.joined = false;
    });
    const { topic, group } = options;
    const consumer = this.consumer;
    const admin = this.admin;
    this.offsets = {
      async committed(partitions) {
        const [offsets] = await admin.fetchOffsets({ groupId: group, topics: [topic] });
        const out = new Map<number, bigint | undefined>();
        for (const p of partitions) {
          const o = BigInt(offsets?.partitions.find((x) => x.partition === p)?.offset ?? "-1");
          out.set(p, o >= 0n ? o : undefined);
        }
        return out;
      },
      async offsetsAt(timeMs) {
        const out = new Map<number, bigint | undefined>();
        for (const { partition, offset } of await admin.fetchTopicOffsetsByTimestamp(topic, timeMs)) {
          const o = BigInt(offset);
          out.set(partition, o >= 0n ? o : undefined);
        }
        return out;
      },
      async endOffsets(partitions) {
        const out = new Map<number, bigint>();
        for (const { partition, high } of await admin.fetchTopicOffsets(topic)) {
          if (partitions.includes(partition)) out.set(partition, BigInt(high));
        }
        return out;
      },
      seek(partition, offset) {
        consumer.seek({ topic, partition, offset: offset.toString() });
      },
      async commit(partition, offset) {
        await consumer.commitOffsets([{ topic, partition, offset: offset.toString() }]);
      },
    };
  }

  notReadyReason(): string | undefined {
    if (this.fatal) return `consumer stopped: ${this.fatal.message}`;
    if (this.stopping) return "shutting down";
    if (!this.joined) return `joining consumer group ${this.options.group} on topic ${this.options.topic}`;
    return undefined;
  }

  async start(handler: SourceHandler): Promise<void> {
    this.consumer.on(this.consumer.events.GROUP_JOIN, (e) => {
      this.joined = true;
      handler.assignment(e.payload.memberAssignment[this.options.topic] ?? []);
    });
    await this.admin.connect();
    await this.consumer.connect();
    await this.consumer.subscribe({ topic: this.options.topic, fromBeginning: true });
    await this.consumer.run({
      autoCommit: false,
      eachBatchAutoResolve: false,
      // Partitions hold disjoint layers, so their batches may interleave; while one
      // waits for its events to be acknowledged and its offsets committed, another runs.
      partitionsConsumedConcurrently: PARTITIONS_IN_FLIGHT,
      eachBatch: (payload) => this.onBatch(handler, payload),
    });
  }

  async stop(): Promise<void> {
    this.stopping = true;
    await this.consumer.disconnect();
    await this.admin.disconnect();
  }

  private async onBatch(
    handler: SourceHandler,
    { batch, resolveOffset, heartbeat, isRunning, isStale }: EachBatchPayload,
  ): Promise<void> {
    const last = await handler.batch(
      {
        topic: batch.topic,
        partition: batch.partition,
        encoding: { kind: "single-object" },
        highWatermark: BigInt(batch.highWatermark),
        records: batch.messages.map((m) => ({
          topic: batch.topic,
          partition: batch.partition,
          offset: m.offset,
          key: m.key,
          value: m.value,
          headers: m.headers as Record<string, Buffer | string | undefined>,
        })),
      },
      { isStale: () => !isRunning() || isStale(), heartbeat },
    );
    if (last === undefined) return;
    resolveOffset(last.toString());
    await heartbeat();
  }
}
