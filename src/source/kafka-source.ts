/**
 * The kafkajs consumer-group source of snapshots.
 *
 * Rebalance-safe state: a layer's window lives only in the instance that owns
 * its partition. When a partition is newly assigned, the instance rewinds it to
 * `restore_lookback_ms` ago (timestamps → offsets with the admin client) and
 * replays up to the group's committed offset with transition events
 * suppressed, because those were emitted before the commit by whoever owned the
 * partition then. Past the committed offset it is live. Offsets are committed
 * only after a batch's events and dead letters were acknowledged, and never
 * below the restore point, so a crash mid-restore cannot re-emit old events.
 */
import type { Admin, Consumer, EachBatchPayload, Kafka } from "kafkajs";
import type { UnitTransition } from "../core/snapshot.js";
import type { ProcessResult, SnapshotProcessor } from "../service/snapshot-processor.js";
import type { Telemetry } from "../service/telemetry.js";
import type { DeadLetterRecord } from "../sink/kafka-sinks.js";

export interface SourceOptions {
  topic: string;
  group: string;
  restoreLookbackMs: number;
  /** Wall clock, injectable for tests. */
  now?: () => number;
}

export interface BatchWriter {
  write(transitions: readonly UnitTransition[], deadLetters: readonly DeadLetterRecord[]): Promise<void>;
}

interface PartitionPlan {
  /** Offsets below this were processed (and their events emitted) before this instance owned the partition. */
  liveFrom: bigint;
  /** Next offset this instance will process. */
  position: bigint;
}

/** Partitions whose batches may be in progress at once. */
const PARTITIONS_IN_FLIGHT = 4;

/** Wait before planning a restore again after the admin requests failed. */
const PLAN_RETRY_MS = 5_000;

export class KafkaSnapshotSource {
  private readonly consumer: Consumer;
  private readonly admin: Admin;
  private readonly now: () => number;
  /** Partitions owned now, with their restore plan once computed. */
  private readonly plans = new Map<number, Promise<PartitionPlan>>();
  private readonly settled = new Map<number, PartitionPlan>();
  /** Batch handlers still running, awaited by stop(). */
  private readonly inFlight = new Set<Promise<void>>();
  private joined = false;
  private restoring = false;
  private stopping = false;
  private fatal: Error | undefined;
  private fail: (err: Error) => void = () => {};
  /** Resolves when consuming stopped for good: an error kafkajs does not restart after. */
  readonly failed: Promise<Error> = new Promise((resolve) => {
    this.fail = (err) => {
      this.fatal ??= err;
      resolve(err);
    };
  });

  constructor(
    kafka: Kafka,
    private readonly options: SourceOptions,
    private readonly processor: SnapshotProcessor,
    private readonly writer: BatchWriter,
    private readonly telemetry: Telemetry,
  ) {
    this.now = options.now ?? Date.now;
    this.admin = kafka.admin();
    this.consumer = kafka.consumer({
      groupId: options.group,
      // Large enough for the biggest snapshot we accept, so one never stalls a partition.
      maxBytesPerPartition: 16 * 1024 * 1024,
      maxBytes: 64 * 1024 * 1024,
      sessionTimeout: 30_000,
      heartbeatInterval: 3_000,
      allowAutoTopicCreation: false,
    });
    this.consumer.on(this.consumer.events.GROUP_JOIN, (e) => {
      this.onAssignment(e.payload.memberAssignment[this.options.topic] ?? []);
    });
    this.consumer.on(this.consumer.events.CRASH, (e) => {
      this.joined = false;
      this.telemetry.log.error({
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
  }

  /** Why the source is not ready, or undefined when it is live on every partition it owns. */
  notReadyReason(): string | undefined {
    if (this.fatal) return `consumer stopped: ${this.fatal.message}`;
    if (this.stopping) return "shutting down";
    if (!this.joined) return `joining consumer group ${this.options.group} on topic ${this.options.topic}`;
    if (this.restoring) return "rebuilding windows of newly assigned partitions";
    return undefined;
  }

  async start(): Promise<void> {
    await this.admin.connect();
    await this.consumer.connect();
    await this.consumer.subscribe({ topic: this.options.topic, fromBeginning: true });
    await this.consumer.run({
      autoCommit: false,
      eachBatchAutoResolve: false,
      // Partitions hold disjoint layers, so their batches may interleave; while one
      // waits for its events to be acknowledged and its offsets committed, another runs.
      partitionsConsumedConcurrently: PARTITIONS_IN_FLIGHT,
      eachBatch: (payload) => this.track(this.onBatch(payload)),
    });
  }

  /**
   * Stops processing, lets the batches in hand finish writing and commit, then
   * leaves the group. The batches are awaited here rather than left to kafkajs,
   * whose stop may leave the group while a batch with several partitions in
   * flight still waits for its events to be acknowledged: its commit would
   * then be lost and a restart would emit those events again.
   */
  async stop(): Promise<void> {
    this.stopping = true;
    while (this.inFlight.size > 0) await Promise.allSettled([...this.inFlight]);
    await this.consumer.disconnect();
    await this.admin.disconnect();
  }

  private track(batch: Promise<void>): Promise<void> {
    this.inFlight.add(batch);
    const done = () => this.inFlight.delete(batch);
    batch.then(done, done);
    return batch;
  }

  private onAssignment(partitions: number[]): void {
    this.joined = true;
    const assigned = new Set(partitions);
    const revoked = new Set([...this.plans.keys()].filter((p) => !assigned.has(p)));
    if (revoked.size > 0) {
      for (const p of revoked) {
        this.plans.delete(p);
        this.settled.delete(p);
        this.telemetry.lagDropped(this.options.topic, p);
      }
      const layers = this.processor.dropPartitions(revoked);
      this.telemetry.partitionsRevoked([...revoked], layers);
    }
    const added = partitions.filter((p) => !this.plans.has(p));
    if (added.length === 0) return;
    this.restoring = true;
    this.plan(added);
  }

  /**
   * Plans the restore of newly assigned partitions. A failed plan (the admin
   * requests ran out of retries, e.g. during a long broker outage) is tried
   * again while the partitions are still ours; batches of those partitions wait
   * for it, or fail and are refetched by kafkajs.
   */
  private plan(partitions: number[]): void {
    const planning = this.planRestore(partitions);
    const mine = new Map<number, Promise<PartitionPlan>>();
    for (const p of partitions) {
      const plan = planning.then((plans) => plans.get(p)!);
      // Handled here so a failure is never an unhandled rejection; onBatch still sees it.
      plan.catch(() => {});
      mine.set(p, plan);
      this.plans.set(p, plan);
    }
    planning.then(
      (plans) => {
        for (const [p, plan] of plans) if (this.plans.get(p) === mine.get(p)) this.settled.set(p, plan);
        this.updateRestoring();
      },
      (err: unknown) => {
        this.telemetry.log.error(
          { event: "restore_plan_failed", error: String(err) },
          "restore plan failed; retrying",
        );
        const retry = setTimeout(() => {
          const still = partitions.filter((p) => this.plans.get(p) === mine.get(p));
          if (!this.stopping && still.length > 0) this.plan(still);
        }, PLAN_RETRY_MS);
        retry.unref();
      },
    );
  }

  /** For each newly assigned partition: where to rewind to and where live processing starts. */
  private async planRestore(partitions: number[]): Promise<Map<number, PartitionPlan>> {
    const { topic, group, restoreLookbackMs } = this.options;
    const [committed] = await this.admin.fetchOffsets({ groupId: group, topics: [topic] });
    const since = await this.admin.fetchTopicOffsetsByTimestamp(topic, this.now() - restoreLookbackMs);
    const plans = new Map<number, PartitionPlan>();
    const report = [];
    for (const partition of partitions) {
      const c = committed?.partitions.find((x) => x.partition === partition)?.offset ?? "-1";
      const l = since.find((x) => x.partition === partition)?.offset ?? "-1";
      if (BigInt(c) < 0n) {
        // Never committed: nothing was emitted for this partition yet; start from the beginning, live.
        plans.set(partition, { liveFrom: 0n, position: 0n });
        continue;
      }
      const liveFrom = BigInt(c);
      const from = BigInt(l) >= 0n && BigInt(l) < liveFrom ? BigInt(l) : liveFrom;
      if (from < liveFrom) {
        this.consumer.seek({ topic, partition, offset: from.toString() });
        report.push({ topic, partition, from: from.toString(), until: liveFrom.toString() });
      }
      plans.set(partition, { liveFrom, position: from });
    }
    if (report.length > 0) this.telemetry.restoreStarted(report);
    return plans;
  }

  private updateRestoring(): void {
    const wasRestoring = this.restoring;
    this.restoring =
      this.settled.size < this.plans.size || [...this.settled.values()].some((p) => p.position < p.liveFrom);
    if (wasRestoring && !this.restoring) this.telemetry.restoreFinished();
  }

  private async onBatch({
    batch,
    resolveOffset,
    heartbeat,
    isRunning,
    isStale,
  }: EachBatchPayload): Promise<void> {
    if (this.stopping) return; // left for whoever owns the partition next, from the committed offset
    const planned = this.plans.get(batch.partition);
    if (!planned) return; // revoked while the batch was in flight
    const plan = await planned;
    if (isStale()) return; // fetched before the restore seek; kafkajs refetches from the seek offset

    const transitions: UnitTransition[] = [];
    const deadLetters: DeadLetterRecord[] = [];
    let last: bigint | undefined;
    let lastBeat = this.now();
    for (const message of batch.messages) {
      if (!isRunning() || isStale() || this.stopping) break;
      const offset = BigInt(message.offset);
      const result: ProcessResult = this.processor.process(
        { topic: batch.topic, partition: batch.partition, offset: message.offset, value: message.value },
        this.now(),
      );
      if (offset >= plan.liveFrom) transitions.push(...result.transitions);
      if (result.deadLetter && offset >= plan.liveFrom) {
        deadLetters.push({
          ...result.deadLetter,
          source: { topic: batch.topic, partition: batch.partition, offset: message.offset },
          key: message.key,
          value: message.value,
          headers: message.headers as Record<string, Buffer | string | undefined>,
        });
      }
      last = offset;
      plan.position = offset + 1n;
      if (this.now() - lastBeat > 1000) {
        await heartbeat();
        lastBeat = this.now();
      }
    }
    if (last === undefined) return;

    this.telemetry.transitions(transitions);
    await this.writer.write(transitions, deadLetters);
    resolveOffset(last.toString());
    if (plan.position > plan.liveFrom) {
      await this.consumer.commitOffsets([
        { topic: batch.topic, partition: batch.partition, offset: plan.position.toString() },
      ]);
    }
    const high = BigInt(batch.highWatermark);
    this.telemetry.lag(
      batch.topic,
      batch.partition,
      Number(high > plan.position ? high - plan.position : 0n),
    );
    if (this.restoring) this.updateRestoring();
    await heartbeat();
  }
}
