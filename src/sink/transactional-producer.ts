/**
 * The producer side of `processing_guarantee: exactly_once`: records to any
 * topics and a consumer group's offsets, committed as one Kafka transaction.
 * The interface is what the stream task needs of a client; kafkajs is one
 * implementation (below), another client can be a second.
 */
import { hostname } from "node:os";
import type { Kafka, Message, Producer } from "kafkajs";

/** A record of a transaction; `partition` set: written there, not to the key's partition. */
export interface TransactionalMessage {
  topic: string;
  key: Buffer | string | null;
  value: Buffer | null;
  partition?: number;
  headers?: Record<string, Buffer | string>;
}

/** One transaction: its records, sent in order, then the group's offsets. */
export interface TransactionContent {
  /** Groups of messages, each group one produce request. */
  sends: ReadonlyArray<readonly TransactionalMessage[]>;
  offsets: { group: string; topic: string; partitions: ReadonlyArray<{ partition: number; offset: string }> };
}

export interface TransactionalProducer {
  /**
   * Connects and registers the transactional id with the coordinator, which
   * fences an older producer of the same id and aborts its open transaction.
   */
  connect(): Promise<void>;
  disconnect(): Promise<void>;
  /**
   * Sends `content` in one transaction and commits it; on any failure the
   * transaction is aborted (or abandoned to the coordinator) and the promise
   * rejects, with ProducerFencedError when a newer producer took the id.
   */
  commit(content: TransactionContent): Promise<void>;
}

/** Another producer registered the same transactional id: this one must stop writing for good. */
export class ProducerFencedError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ProducerFencedError";
  }
}

/**
 * The default transactional id: the group and the host name. A restarted
 * process on the same host (a StatefulSet pod keeps its name) gets the same
 * id and so fences the process it replaces.
 */
export function defaultTransactionalId(group: string, host: string = hostname()): string {
  return `${group}-${host}`;
}

const FENCED_TYPES = new Set(["INVALID_PRODUCER_EPOCH", "PRODUCER_FENCED"]);

/** kafkajs wraps the broker's error in retry errors; the type is on a cause. */
function fencedType(err: unknown): string | undefined {
  for (let e = err as { type?: string; cause?: unknown } | undefined; e; e = e.cause as typeof e) {
    if (e.type !== undefined && FENCED_TYPES.has(e.type)) return e.type;
    if (e.cause === e) break;
  }
  return undefined;
}

export class KafkajsTransactionalProducer implements TransactionalProducer {
  private producer: Producer;

  constructor(
    private readonly kafka: Kafka,
    private readonly transactionalId: string,
  ) {
    this.producer = this.create();
  }

  private create(): Producer {
    return this.kafka.producer({
      transactionalId: this.transactionalId,
      idempotent: true,
      maxInFlightRequests: 1,
      allowAutoTopicCreation: true,
    });
  }

  async connect(): Promise<void> {
    await this.producer.connect();
    // An empty transaction ends without a request, but first registers the id (InitProducerId):
    // the previous incarnation is fenced now, before this one restores state, not at its first commit.
    const txn = await this.producer.transaction();
    await txn.abort();
  }

  disconnect(): Promise<void> {
    return this.producer.disconnect();
  }

  async commit(content: TransactionContent): Promise<void> {
    const txn = await this.producer.transaction().catch((err: unknown) => this.rethrow(err));
    try {
      for (const group of content.sends) {
        if (group.length === 0) continue;
        const byTopic = new Map<string, Message[]>();
        for (const m of group) {
          let list = byTopic.get(m.topic);
          if (!list) {
            list = [];
            byTopic.set(m.topic, list);
          }
          list.push({
            key: m.key,
            value: m.value,
            ...(m.partition !== undefined ? { partition: m.partition } : {}),
            ...(m.headers ? { headers: m.headers } : {}),
          });
        }
        await txn.sendBatch({
          acks: -1,
          topicMessages: [...byTopic].map(([topic, messages]) => ({ topic, messages })),
        });
      }
      if (content.offsets.partitions.length > 0) {
        await txn.sendOffsets({
          consumerGroupId: content.offsets.group,
          topics: [{ topic: content.offsets.topic, partitions: [...content.offsets.partitions] }],
        });
      }
      await txn.commit();
    } catch (err) {
      if (fencedType(err) === undefined) {
        try {
          await txn.abort();
        } catch {
          // The producer's transaction state is unknown (e.g. the commit request timed out): a new
          // producer of the same id bumps the epoch, which aborts whatever is still open.
          await this.producer.disconnect().catch(() => undefined);
          this.producer = this.create();
          await this.connect().catch(() => undefined);
        }
      }
      this.rethrow(err);
    }
  }

  private rethrow(err: unknown): never {
    const type = fencedType(err);
    if (type !== undefined) {
      throw new ProducerFencedError(
        `transactional id ${this.transactionalId} is in use by a newer producer (${type}); this instance stops writing`,
      );
    }
    throw err;
  }
}
