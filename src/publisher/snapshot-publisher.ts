/**
 * The trainer-side SDK: publishes ActivationSnapshots to Kafka without ever
 * blocking a training loop for long. publish() validates and encodes, then
 * enqueues into a bounded in-memory queue; one sender drains it in batches
 * through an idempotent producer of either Kafka client (batch-producer.ts;
 * @platformatic/kafka unless `client` says kafkajs). When the broker is unreachable the
 * queue fills and the overflow policy drops (and counts) snapshots instead of
 * stalling the trainer.
 */
import type { KafkaConfig, ProducerConfig } from "kafkajs";
import { encodeSnapshot } from "../codec/index.js";
import type { KafkaSettings } from "../config/load.js";
import { DEFAULT_KAFKA_CLIENT, type KafkaClient } from "../config/options.js";
import { type ActivationSnapshot, layerKey } from "../core/snapshot.js";
import { createLogger, type Logger } from "../log.js";
import { kafkaErrorOf } from "../source/kafka-errors.js";
import { zstdAvailable } from "../source/kafka-zstd.js";
import {
  type BatchProducer,
  createBatchProducer,
  type KeyedRecord,
  type PublisherCompression,
} from "./batch-producer.js";
import { BoundedQueue } from "./bounded-queue.js";

export type { PublisherCompression } from "./batch-producer.js";

export type OverflowPolicy = "drop_oldest" | "wait";
export interface SnapshotPublisherOptions {
  /** Bootstrap servers; not needed when `connection` is given. */
  brokers?: string[];
  /**
   * The connection in reluwatch's own settings (brokers, client id, TLS, SASL:
   * the `kafka` group of docs/configuration.md), turned into the client's
   * config by the same factory as the reluwatch commands. `brokers` and
   * `clientId` are ignored when it is given.
   */
  connection?: KafkaSettings;
  topic: string;
  clientId?: string;
  /**
   * The Kafka client that sends: "platformatic" (@platformatic/kafka, the
   * default, as for `reluwatch consume`) or "kafkajs". With `connection`, its
   * kafka_client decides unless this is given; `kafka` or `producer` (kafkajs's
   * own options) mean kafkajs.
   */
  client?: KafkaClient;
  /**
   * Batch compression. Default "zstd" (Node.js's built-in zlib zstd; "gzip" on a
   * Node.js without it): on snapshots it is both smaller and about 3x cheaper in
   * CPU than gzip (docs/benchmarks.md, SnapshotPublisher rows). Under kafkajs,
   * snappy and lz4 need their codec registered with its CompressionCodecs first.
   */
  compression?: PublisherCompression;
  /** Most snapshots held in memory while waiting for the broker. Default 10,000. */
  queue_capacity?: number;
  /** What publish() does when the queue is full. Default "drop_oldest": evict the oldest queued snapshot. "wait": wait up to wait_timeout_ms for room, then drop the new one. */
  overflow?: OverflowPolicy;
  /** With overflow "wait": how long publish() may wait for room. Default 1,000 ms. */
  wait_timeout_ms?: number;
  /** How long the sender waits for more snapshots before sending a partial batch. Default 20 ms. */
  linger_ms?: number;
  /** Most snapshots in one produce request. Default 500. */
  max_batch?: number;
  /** Pause between attempts when a batch cannot be sent. Default 500 ms. */
  retry_backoff_ms?: number;
  /** client kafkajs: overrides for its client (logLevel defaults to NOTHING: the publisher logs failures itself). */
  kafka?: Partial<KafkaConfig>;
  /** client kafkajs: overrides for its producer. */
  producer?: Partial<ProducerConfig>;
  logger?: Logger;
}

export interface PublisherStats {
  /** Valid snapshots handed to publish(). */
  offered: number;
  /** Snapshots that entered the queue. */
  accepted: number;
  /** Snapshots the broker acknowledged. */
  sent: number;
  /** Snapshots dropped by the overflow policy (evicted oldest, or timed out waiting for room). */
  dropped: number;
  /** Accepted snapshots still unsent when close() gave up on an unreachable broker. */
  failed: number;
  /** Snapshots publish() refused because they break the contract (it threw a CodecError). */
  invalid: number;
  /**
   * Valid snapshots (counted in offered) whose abs_sum or sq_sum held NaN or ±Inf: what a diverging model
   * produces. They are sent as they are (the consumer applies their fires and counts the
   * sums as non-finite values); the first one is logged.
   */
  nonfinite_sums: number;
  /** Produce requests that failed and were retried. */
  send_errors: number;
  queued: number;
  in_flight: number;
}

export interface CloseOptions {
  /** How long close() may spend flushing before it counts what is left as failed. Default 30,000 ms. */
  timeout_ms?: number;
}

/** A promise with its resolver, for waking the sender or a waiting publish(). */
class Signal {
  private waiters = new Set<() => void>();

  /** Resolves on the next fire(), or after `ms` if given; either way it leaves no timer or waiter behind. */
  wait(ms?: number): Promise<void> {
    return new Promise((resolve) => {
      let timer: NodeJS.Timeout | undefined;
      const done = () => {
        clearTimeout(timer);
        this.waiters.delete(done);
        resolve();
      };
      this.waiters.add(done);
      if (ms !== undefined) timer = setTimeout(done, ms);
    });
  }

  fire(): void {
    for (const done of [...this.waiters]) done();
  }
}

function hasNonfiniteSum(s: ActivationSnapshot): boolean {
  if (s.stats.kind !== "counts") return false;
  const { abs_sum, sq_sum } = s.stats;
  return Boolean(abs_sum?.some((v) => !Number.isFinite(v)) || sq_sum?.some((v) => !Number.isFinite(v)));
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Settles when `p` does or after `ms`, whichever is first, clearing the timer either way. */
async function settleWithin(p: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      p.then(
        () => true,
        () => true,
      ),
      new Promise<boolean>((resolve) => {
        timer = setTimeout(() => resolve(false), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

export class SnapshotPublisher {
  private readonly opts: Required<
    Pick<
      SnapshotPublisherOptions,
      "queue_capacity" | "overflow" | "wait_timeout_ms" | "linger_ms" | "max_batch" | "retry_backoff_ms"
    >
  >;
  private readonly topic: string;
  private readonly brokers: readonly string[];
  private readonly producer: BatchProducer;
  private readonly log: Logger;
  private readonly queue: BoundedQueue<KeyedRecord>;
  private readonly counters = {
    offered: 0,
    accepted: 0,
    sent: 0,
    dropped: 0,
    failed: 0,
    invalid: 0,
    nonfinite_sums: 0,
    send_errors: 0,
  };
  private inFlight = 0;
  private readonly work = new Signal();
  private readonly room = new Signal();
  private readonly stopping = new Signal();
  /** Set when close() gave up on the in-flight batch and already counted it as failed. */
  private batchAbandoned = false;
  private sender: Promise<void> | undefined;
  private state: "new" | "open" | "closing" | "closed" = "new";
  /** close() gave up on the broker: the sender stops retrying, whatever state follows. */
  private aborted = false;
  private closing: Promise<PublisherStats> | undefined;
  private failing = false;

  constructor(options: SnapshotPublisherOptions) {
    if (!(options.connection?.brokers ?? options.brokers)?.length) {
      throw new Error("SnapshotPublisher needs at least one broker");
    }
    if (!options.topic) throw new Error("SnapshotPublisher needs a topic");
    this.topic = options.topic;
    this.brokers = options.connection?.brokers ?? options.brokers!;
    this.opts = {
      queue_capacity: options.queue_capacity ?? 10_000,
      overflow: options.overflow ?? "drop_oldest",
      wait_timeout_ms: options.wait_timeout_ms ?? 1_000,
      linger_ms: options.linger_ms ?? 20,
      max_batch: options.max_batch ?? 500,
      retry_backoff_ms: options.retry_backoff_ms ?? 500,
    };
    if (this.opts.overflow !== "drop_oldest" && this.opts.overflow !== "wait") {
      throw new Error(`overflow must be "drop_oldest" or "wait", got ${String(this.opts.overflow)}`);
    }
    const kafkajsOverrides = options.kafka !== undefined || options.producer !== undefined;
    if (kafkajsOverrides && options.client === "platformatic") {
      throw new Error(
        'SnapshotPublisher: kafka and producer are kafkajs options; with client "platformatic" use connection',
      );
    }
    this.producer = createBatchProducer({
      // Options written for kafkajs keep it.
      client: kafkajsOverrides
        ? "kafkajs"
        : (options.client ?? options.connection?.kafka_client ?? DEFAULT_KAFKA_CLIENT),
      topic: options.topic,
      compression: options.compression ?? (zstdAvailable() ? "zstd" : "gzip"),
      connection: options.connection ?? {
        brokers: options.brokers!,
        clientId: options.clientId ?? "reluwatch-publisher",
      },
      kafkajs: {
        ...(options.kafka ? { kafka: options.kafka } : {}),
        ...(options.producer ? { producer: options.producer } : {}),
      },
    });
    this.queue = new BoundedQueue(this.opts.queue_capacity);
    this.log = options.logger ?? createLogger("publisher");
  }

  /** Connects the producer and starts the sender. Rejects if no broker answers. */
  async connect(): Promise<void> {
    if (this.state !== "new") throw new Error(`connect() on a ${this.state} publisher`);
    try {
      await this.producer.connect();
    } catch (err) {
      // The expected conditions (credentials, TLS, no broker, no topic) as one KafkaError with its code.
      throw kafkaErrorOf(err, { brokers: this.brokers, topic: this.topic }) ?? err;
    }
    this.state = "open";
    this.sender = this.run();
  }

  /**
   * Validates and encodes `s` (a contract violation throws its CodecError; a
   * NaN or infinite sum is no violation, it is counted in nonfinite_sums),
   * then queues it. Resolves once the snapshot is queued or dropped, never
   * waiting for the broker, and at most wait_timeout_ms under the "wait" policy.
   */
  async publish(s: ActivationSnapshot): Promise<void> {
    if (this.state !== "open") throw new Error(`publish() on a ${this.state} publisher`);
    let value: Buffer;
    try {
      value = encodeSnapshot(s);
    } catch (err) {
      this.counters.invalid++;
      throw err;
    }
    this.counters.offered++;
    if (hasNonfiniteSum(s) && this.counters.nonfinite_sums++ === 0) {
      this.log.warn(
        { event: "nonfinite_sums", run_id: s.run_id, layer: s.layer, step: s.step },
        "a snapshot carries NaN or infinite activation sums (the model may be diverging); sending it, further ones are only counted (stats().nonfinite_sums)",
      );
    }
    const message: KeyedRecord = { key: layerKey(s.run_id, s.layer), value };
    if (this.queue.full) {
      if (this.opts.overflow === "drop_oldest") {
        this.queue.shift();
        this.counters.dropped++;
      } else if (!(await this.waitForRoom())) {
        this.counters.dropped++;
        return;
      }
    }
    this.queue.push(message);
    this.counters.accepted++;
    this.work.fire();
  }

  private async waitForRoom(): Promise<boolean> {
    const deadline = Date.now() + this.opts.wait_timeout_ms;
    while (this.queue.full && this.state === "open") {
      const left = deadline - Date.now();
      if (left <= 0) return false;
      await this.room.wait(left);
    }
    return !this.queue.full && this.state === "open";
  }

  stats(): PublisherStats {
    return {
      ...this.counters,
      queued: this.queue.length,
      in_flight: this.batchAbandoned ? 0 : this.inFlight,
    };
  }

  private async run(): Promise<void> {
    for (;;) {
      if (this.aborted) return;
      if (this.queue.length === 0) {
        if (this.state !== "open") return;
        await this.work.wait();
        continue;
      }
      if (this.state === "open" && this.queue.length < this.opts.max_batch && this.opts.linger_ms > 0) {
        await sleep(this.opts.linger_ms);
      }
      const batch = this.queue.take(this.opts.max_batch);
      this.inFlight = batch.length;
      this.room.fire();
      await this.sendWithRetry(batch);
      this.inFlight = 0;
      this.batchAbandoned = false;
    }
  }

  private async sendWithRetry(batch: KeyedRecord[]): Promise<void> {
    for (;;) {
      try {
        await this.producer.send(batch);
        this.counters.sent += batch.length;
        // Delivered after all, past close()'s deadline: undo its count.
        if (this.batchAbandoned) this.counters.failed -= batch.length;
        if (this.failing) {
          this.failing = false;
          this.log.info({ topic: this.topic }, "snapshot publishing recovered");
        }
        return;
      } catch (err) {
        this.counters.send_errors++;
        if (!this.failing) {
          this.failing = true;
          this.log.warn(
            { topic: this.topic, err: (err as Error).message },
            "cannot publish snapshots; retrying, and dropping by the overflow policy while the queue is full",
          );
        }
        if (this.aborted) {
          if (!this.batchAbandoned) this.counters.failed += batch.length;
          return;
        }
        await this.stopping.wait(this.opts.retry_backoff_ms);
      }
    }
  }

  /**
   * Stops accepting snapshots, sends everything accepted, then disconnects.
   * If the broker stays unreachable past timeout_ms, what is left is counted
   * as failed and close() returns anyway.
   */
  close(opts: CloseOptions = {}): Promise<PublisherStats> {
    this.closing ??= this.shutdown(opts);
    return this.closing;
  }

  private async shutdown(opts: CloseOptions): Promise<PublisherStats> {
    if (this.state === "new") {
      this.state = "closed";
      return this.stats();
    }
    this.state = "closing";
    this.work.fire();
    this.stopping.fire();
    this.room.fire();
    const flushed = await settleWithin(this.sender!, opts.timeout_ms ?? 30_000);
    if (!flushed) {
      this.aborted = true;
      this.counters.failed += this.queue.clear();
      this.work.fire();
      this.stopping.fire();
      this.log.warn(
        { topic: this.topic, ...this.stats() },
        "closing with unsent snapshots counted as failed",
      );
    }
    await this.producer.disconnect().catch(() => undefined);
    if (!flushed) {
      // The in-flight batch's request ends once the connection is gone; bounded all the same.
      await settleWithin(this.sender!, 5_000);
      if (this.inFlight > 0 && !this.batchAbandoned) {
        this.counters.failed += this.inFlight;
        this.batchAbandoned = true;
      }
    }
    this.state = "closed";
    return this.stats();
  }
}
