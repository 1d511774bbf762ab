/**
 * The Kafka consumer-group adapter over @platformatic/kafka: the same contract
 * as KafkaSnapshotSource (kafka-source.ts), picked by `kafka_client`.
 *
 * The client's consumer keeps the group membership (join, heartbeats, rejoin
 * after a rebalance, the assignment); the fetch loop is this module's own,
 * over Consumer.fetch. The client's MessagesStream does not fit the contract:
 * it hands over one message at a time across all partitions, cannot hold back
 * one partition while its batch is in the handler, and a position moved
 * while a fetch is in flight is overwritten when that fetch lands.
 *
 * What this loop guarantees: a partition has at most one batch in flight,
 * fetched or in the handler, and its next fetch starts where the handler said
 * it stopped (the offset after the one it resolved with; the same batch again
 * when it resolved with undefined). A seek, a lost partition or stop() makes
 * the batch in hand stale, and a fetch that was in flight meanwhile is
 * dropped. At most PARTITIONS_IN_FLIGHT partitions are fetched or handled at
 * once, as with kafkajs (`partitionsInFlight` sets another cap). A partition
 * newly assigned starts at the group's committed offset, or at the log start
 * when the group never committed there.
 *
 * What fetches is a `Fetcher` (platformatic-fetch.ts): the consumer itself, on
 * `fetchPool` when given, or a worker thread (platformatic-fetch-thread.ts) as
 * the `backlogFetcher` below. Either way, the next fetch
 * goes out before the handler gets the batches of the last one, so the broker
 * and the thread work while the handler does.
 *
 * Given a `backlogFetcher` (the thread), the source fetches with it while
 * some partition is catching up: from its assignment, a seek or a restart
 * until an answer first reaches the partition's high watermark. That is where
 * a second thread pays, parsing the next answer while the handler counts this
 * one: a restore replaying input, a restart at run age, a filled topic. Caught
 * up, an answer holds what arrived during the last one; handing it over from
 * another thread costs more CPU a snapshot than parsing it here, and a backlog
 * that forms later (a slow spell) is drained on the calling thread: where the
 * cores are shared, the thread's extra CPU slowed such catching up rather
 * than sped it (docs/profile.md).
 */
import type { ConnectionPool, Consumer, GroupAssignment } from "@platformatic/kafka";
import type { Logger } from "../log.js";
import { type KafkaError, kafkaConditionOf } from "./kafka-errors.js";
import { PARTITIONS_IN_FLIGHT } from "./kafka-source.js";
import { FETCH_LIMITS } from "./platformatic-client.js";
import {
  ConsumerFetcher,
  type FetchedPartition,
  type Fetcher,
  fetchFailureOf,
} from "./platformatic-fetch.js";
import type { OffsetControl, SnapshotSource, SourceHandler, SourceRecord } from "./source.js";

/** The part of @platformatic/kafka's Consumer this source uses (a fake stands in for it in unit tests). */
export type PlatformaticConsumer = Pick<
  Consumer,
  | "on"
  | "topics"
  | "assignments"
  | "isActive"
  | "joinGroup"
  | "metadata"
  | "fetch"
  | "commit"
  | "listOffsets"
  | "listCommittedOffsets"
  | "close"
>;

export interface PlatformaticSourceOptions {
  topic: string;
  group: string;
  brokers: readonly string[];
  log: Logger;
  /** What fetches instead while a partition catches up (a fetch thread); opened by start(), closed by stop(). */
  backlogFetcher?: Fetcher;
  /**
   * partitionsInFlight while the backlog fetcher fetches; default the same. A thread fetches ahead for
   * partitions the handler has not reached; on the calling thread the same cap let fetches shrink to
   * one partition each, queued behind one another on the node (the soak fell behind at half a core).
   */
  backlogPartitionsInFlight?: number;
  /** Partitions fetched or in the handler at once; default PARTITIONS_IN_FLIGHT. */
  partitionsInFlight?: number;
  /** Connections for the consumer's fetches only (createFetchPool); without it fetches share the consumer's. */
  fetchPool?: ConnectionPool;
  /** First pause after a failed fetch or join; it doubles up to maxBackoffMs. */
  initialBackoffMs?: number;
  maxBackoffMs?: number;
}

/** How long a poll may wait for data while other partitions' batches are in the handler. */
const BUSY_POLL_MS = 20;
/** ListOffsets timestamps that mean "the log start" and "the end". */
const EARLIEST = -2n;
const LATEST = -1n;
/** Errors no wait fixes: the source stops and reports them. */
const FATAL_CODES = new Set([
  "KAFKA_AUTH_FAILED",
  "KAFKA_NOT_AUTHORIZED",
  "KAFKA_TLS_FAILED",
  "TOPIC_INVALID",
]);

interface PartitionState {
  readonly partition: number;
  /** Next offset to fetch; undefined while where it starts is being looked up. */
  position: bigint | undefined;
  /** Bumped by every move of the position from outside the loop (seek, restart); older batches are stale. */
  epoch: number;
  /** Catching up: assigned, sought or restarted, and no answer has reached the high watermark since. */
  catchingUp: boolean;
  /** A fetch or a batch of this partition is in flight. */
  busy: boolean;
  /** Leader epoch of the newest batch, passed on with commits. */
  leaderEpoch: number;
  /** The high watermark the newest answer for this partition reported, and when; undefined before one. */
  highWatermark: bigint | undefined;
  answeredAt: number;
}

/**
 * Nothing left to read as of the partition's recent answer: a fetch of it alone would be held for
 * maxWaitTime. An answer older than that says nothing of records written since, so a partition
 * under a steady backlog elsewhere is not passed over for long.
 */
function caughtUp(state: PartitionState, now: number): boolean {
  return (
    state.highWatermark !== undefined &&
    state.position !== undefined &&
    state.position >= state.highWatermark &&
    now - state.answeredAt < FETCH_LIMITS.maxWaitTime
  );
}

export class PlatformaticSnapshotSource implements SnapshotSource {
  readonly topic: string;
  readonly offsets: OffsetControl;
  /** Owned partitions, by number; a partition's state object is replaced when it is lost and assigned again. */
  private readonly partitions = new Map<number, PartitionState>();
  /** Broker nodes with a fetch in flight: one at a time each, like the client's own stream. */
  private readonly fetchingFrom = new Set<number>();
  private handler: SourceHandler | undefined;
  private joined = false;
  private stopping = false;
  private fatal: Error | undefined;
  private rotation = 0;
  private backoffMs: number;
  private retryTimer: NodeJS.Timeout | undefined;
  private readonly retries: Array<() => void> = [];
  private loopScheduled = false;
  private fail: (err: Error) => void = () => {};
  readonly failed: Promise<Error> = new Promise((resolve) => {
    this.fail = (err) => {
      if (this.fatal || this.stopping) return;
      this.fatal = err;
      this.options.log.error({ event: "consumer_crash", error: err.message, restart: false });
      resolve(err);
    };
  });

  private client: PlatformaticConsumer | undefined;
  private readonly fetcher: Fetcher;
  private readonly partitionsInFlight: number;

  /**
   * `consumer` may be a factory, called at the first use (start, or an
   * offset lookup): the client validates its options as it is built, and
   * built late, a name it refuses fails the running source like any other
   * Kafka condition instead of the process before it could say why.
   */
  constructor(
    private readonly consumerOrFactory: PlatformaticConsumer | (() => PlatformaticConsumer),
    private readonly options: PlatformaticSourceOptions,
  ) {
    this.topic = options.topic;
    this.backoffMs = options.initialBackoffMs ?? 500;
    const { topic } = options;
    this.partitionsInFlight = options.partitionsInFlight ?? PARTITIONS_IN_FLIGHT;
    this.fetcher = new ConsumerFetcher(() => this.consumer, {
      topic,
      context: this.context,
      ...(options.fetchPool ? { pool: options.fetchPool } : {}),
    });
    const self = this;
    this.offsets = {
      async committed(partitions) {
        const out = new Map<number, bigint | undefined>();
        if (partitions.length === 0) return out;
        const committed = await self.consumer.listCommittedOffsets({
          topics: [{ topic, partitions: [...partitions] }],
        });
        const byPartition = committed.get(topic) ?? [];
        for (const p of partitions) {
          const o = byPartition[p];
          out.set(p, o !== undefined && o >= 0n ? o : undefined);
        }
        return out;
      },
      async offsetsAt(timeMs) {
        const found = await self.consumer.listOffsets({ topics: [topic], timestamp: BigInt(timeMs) });
        const out = new Map<number, bigint | undefined>();
        for (const [p, o] of (found.get(topic) ?? []).entries()) out.set(p, o >= 0n ? o : undefined);
        return out;
      },
      async endOffsets(partitions) {
        const out = new Map<number, bigint>();
        if (partitions.length === 0) return out;
        const ends = await self.consumer.listOffsets({
          topics: [topic],
          partitions: { [topic]: [...partitions] },
          timestamp: LATEST,
        });
        const byPartition = ends.get(topic) ?? [];
        for (const p of partitions) {
          const o = byPartition[p];
          if (o !== undefined) out.set(p, o);
        }
        return out;
      },
      seek(partition, offset) {
        const state = self.partitions.get(partition);
        if (!state) return; // not ours (any more): whoever owns it plans its own start
        state.position = offset;
        state.epoch++;
        state.catchingUp = true;
        self.scheduleLoop();
      },
      async commit(partition, offset) {
        const state = self.partitions.get(partition);
        if (!state)
          throw new Error(`partition ${partition} of ${topic} is no longer assigned to this instance`);
        await self.consumer.commit({
          offsets: [{ topic, partition, offset, leaderEpoch: state.leaderEpoch }],
        });
      },
    };
  }

  private get consumer(): PlatformaticConsumer {
    if (this.client) return this.client;
    const consumer =
      typeof this.consumerOrFactory === "function" ? this.consumerOrFactory() : this.consumerOrFactory;
    consumer.on("consumer:group:join", ({ assignments }) => this.onJoin(assignments ?? []));
    // The client emits "error" when a rejoin after a rebalance failed; it then has no membership left.
    consumer.on("error", (err: Error) => this.onMembershipLost(err));
    this.client = consumer;
    return consumer;
  }

  notReadyReason(): string | undefined {
    if (this.fatal) return `consumer stopped: ${this.fatal.message}`;
    if (this.stopping) return "shutting down";
    if (!this.joined || !this.client?.isActive())
      return `joining consumer group ${this.options.group} on topic ${this.options.topic}`;
    return undefined;
  }

  async start(handler: SourceHandler): Promise<void> {
    this.handler = handler;
    // A fetch thread boots while the group is joined.
    this.fetcher.open();
    this.options.backlogFetcher?.open();
    this.consumer.topics.track(this.topic);
    await this.consumer.joinGroup({});
  }

  async stop(): Promise<void> {
    this.stopping = true;
    clearTimeout(this.retryTimer);
    // Leaving the group hands the partitions over now rather than after the session timeout.
    await this.client?.close(true);
    await this.fetcher.close();
    await this.options.backlogFetcher?.close();
  }

  private onJoin(assignments: GroupAssignment[]): void {
    if (this.stopping) return;
    const mine = [...(assignments.find((a) => a.topic === this.topic)?.partitions ?? [])].sort(
      (a, b) => a - b,
    );
    for (const p of [...this.partitions.keys()]) if (!mine.includes(p)) this.partitions.delete(p);
    const added = mine.filter((p) => !this.partitions.has(p));
    for (const partition of added)
      this.partitions.set(partition, {
        partition,
        position: undefined,
        epoch: 0,
        busy: false,
        leaderEpoch: -1,
        highWatermark: undefined,
        answeredAt: 0,
        // A partition taken over mid-run starts with a backlog, as far as anyone knows.
        catchingUp: true,
      });
    this.joined = true;
    this.handler?.assignment(mine);
    if (added.length > 0) void this.startPositions(added);
  }

  private onMembershipLost(err: Error): void {
    if (this.stopping || this.fatal) return;
    this.joined = false;
    const condition = this.condition(err);
    if (FATAL_CODES.has(condition.code)) {
      this.fail(condition);
      return;
    }
    this.options.log.warn(
      { event: "consumer_rejoin_failed", code: condition.code, error: condition.message },
      "could not rejoin the consumer group; trying again",
    );
    this.retryLater(() => {
      this.consumer.joinGroup({}).catch((e: unknown) => this.onMembershipLost(e as Error));
    });
  }

  /** Where newly assigned partitions start unless the task seeks them first: the committed offset, else the log start. */
  private async startPositions(partitions: number[]): Promise<void> {
    const asked = partitions.flatMap((p) => this.partitions.get(p) ?? []);
    try {
      const committed = await this.offsets.committed(partitions);
      const fresh = partitions.filter((p) => committed.get(p) === undefined);
      const earliest =
        fresh.length > 0
          ? ((
              await this.consumer.listOffsets({
                topics: [this.topic],
                partitions: { [this.topic]: fresh },
                timestamp: EARLIEST,
              })
            ).get(this.topic) ?? [])
          : [];
      for (const state of asked) {
        // Seeked meanwhile (the task's restore plan), or lost: that position stands.
        if (this.partitions.get(state.partition) !== state || state.position !== undefined) continue;
        state.position = committed.get(state.partition) ?? earliest[state.partition] ?? 0n;
      }
      this.scheduleLoop();
    } catch (err) {
      if (this.stopping) return;
      const condition = this.condition(err);
      if (FATAL_CODES.has(condition.code)) {
        this.fail(condition);
        return;
      }
      this.options.log.warn(
        { event: "start_offsets_failed", code: condition.code, error: condition.message },
        "could not read where newly assigned partitions start; trying again",
      );
      const still = asked.filter((s) => this.partitions.get(s.partition) === s && s.position === undefined);
      this.retryLater(() => void this.startPositions(still.map((s) => s.partition)));
    }
  }

  private scheduleLoop(): void {
    if (this.loopScheduled) return;
    this.loopScheduled = true;
    // Coalesces the wake-ups of one tick (several batches resolving) into one round of fetches.
    queueMicrotask(() => {
      this.loopScheduled = false;
      void this.fetchRound();
    });
  }

  private async fetchRound(): Promise<void> {
    if (this.stopping || this.fatal || this.retryTimer || !this.handler) return;
    let inFlight = 0;
    let anyCatchingUp = false;
    const ready: PartitionState[] = [];
    for (const state of this.partitions.values()) {
      if (state.busy) inFlight++;
      else if (state.position !== undefined) ready.push(state);
      anyCatchingUp ||= state.catchingUp;
    }
    // A node serves one fetch at a time, so a partition whose batch finishes waits for the poll in flight:
    // while batches are in the handler, polls are short.
    const maxWaitTime = inFlight > 0 ? BUSY_POLL_MS : FETCH_LIMITS.maxWaitTime;
    const backlog = this.options.backlogFetcher;
    const catchingUp = backlog !== undefined && anyCatchingUp;
    const fetcher = catchingUp ? backlog : this.fetcher;
    const cap = catchingUp
      ? (this.options.backlogPartitionsInFlight ?? this.partitionsInFlight)
      : this.partitionsInFlight;
    if (ready.length === 0 || inFlight >= cap) return;
    let metadata: Awaited<ReturnType<PlatformaticConsumer["metadata"]>>;
    try {
      metadata = await this.consumer.metadata({ topics: [this.topic] });
    } catch (err) {
      this.fetchFailed(err);
      return;
    }
    const topicMetadata = metadata.topics.get(this.topic);
    if (!topicMetadata) {
      this.fetchFailed(new Error(`no metadata for topic ${this.topic}`));
      return;
    }
    // Rotates the starting partition so a cap below the partition count serves every partition in turn,
    // those with records left first: a fetch of caught-up partitions alone is held for maxWaitTime while
    // the backlog of the others waits behind it.
    const start = this.rotation++ % ready.length;
    const rotated = ready.map((_, i) => ready[(start + i) % ready.length]!);
    const now = Date.now();
    const order = [...rotated.filter((s) => !caughtUp(s, now)), ...rotated.filter((s) => caughtUp(s, now))];
    const byNode = new Map<number, Array<{ state: PartitionState; epoch: number; offset: bigint }>>();
    for (let i = 0; i < order.length && inFlight < cap; i++) {
      const state = order[i]!;
      // Another await may have taken it meanwhile.
      if (state.busy || state.position === undefined || this.partitions.get(state.partition) !== state)
        continue;
      const node = topicMetadata.partitions[state.partition]?.leader ?? -1;
      if (node < 0 || this.fetchingFrom.has(node)) continue;
      const list = byNode.get(node) ?? [];
      list.push({ state, epoch: state.epoch, offset: state.position });
      byNode.set(node, list);
      state.busy = true;
      inFlight++;
    }
    for (const [node, asked] of byNode) {
      this.fetchingFrom.add(node);
      fetcher
        .fetch({
          node,
          topicId: topicMetadata.id,
          partitions: asked.map(({ state, offset }) => ({ partition: state.partition, fetchOffset: offset })),
          maxWaitTime,
        })
        .then(
          (fetched) => {
            this.fetchingFrom.delete(node);
            this.fetched(fetched, asked);
          },
          (err: unknown) => {
            this.fetchingFrom.delete(node);
            this.fetchedError(err, asked);
          },
        )
        .finally(() => this.scheduleLoop());
    }
  }

  private fetched(
    fetched: FetchedPartition[],
    asked: Array<{ state: PartitionState; epoch: number; offset: bigint }>,
  ): void {
    this.backoffMs = this.options.initialBackoffMs ?? 500;
    const answers = new Map(fetched.map((p) => [p.partition, p]));
    for (const { state, epoch, offset } of asked) {
      const answer = answers.get(state.partition);
      const current = this.partitions.get(state.partition) === state && state.epoch === epoch;
      if (!answer || !current || this.stopping) {
        state.busy = false;
        continue;
      }
      if (answer.highWatermark >= 0n) {
        state.highWatermark = answer.highWatermark;
        state.answeredAt = Date.now();
        if (answer.end >= answer.highWatermark) state.catchingUp = false;
      }
      if (answer.leaderEpoch !== undefined) state.leaderEpoch = answer.leaderEpoch;
      const { records, end } = answer;
      if (records.length === 0) {
        // Only transaction markers or compacted-away offsets: step over them, or the same fetch repeats for ever.
        if (end > offset) state.position = end;
        state.busy = false;
        continue;
      }
      void this.deliver(state, epoch, records, answer.highWatermark >= 0n ? answer.highWatermark : undefined);
    }
  }

  private async deliver(
    state: PartitionState,
    epoch: number,
    records: SourceRecord[],
    highWatermark: bigint | undefined,
  ): Promise<void> {
    const stale = () =>
      this.stopping || this.partitions.get(state.partition) !== state || state.epoch !== epoch;
    // The next fetch goes out first (scheduled by the fetch that brought this batch): the broker, or
    // the fetch thread, works on it while the handler works on this batch.
    try {
      await new Promise((resolve) => setImmediate(resolve));
      if (stale()) return;
      const last = await this.handler!.batch(
        {
          topic: this.topic,
          partition: state.partition,
          encoding: { kind: "single-object" },
          records,
          ...(highWatermark !== undefined ? { highWatermark } : {}),
        },
        // The client heartbeats on a timer of its own; a long batch only has to let the event loop run it.
        { isStale: stale, heartbeat: () => new Promise((resolve) => setImmediate(resolve)) },
      );
      if (last !== undefined && !stale()) state.position = last + 1n;
    } catch (err) {
      if (!stale()) {
        // As a restarted kafkajs consumer would: the partition resumes from the group's committed offset.
        this.options.log.error(
          { event: "batch_failed", partition: state.partition, error: String(err) },
          "a batch failed; the partition resumes from its committed offset",
        );
        state.position = undefined;
        state.epoch++;
        state.catchingUp = true;
        void this.startPositions([state.partition]);
      }
    } finally {
      state.busy = false;
      this.scheduleLoop();
    }
  }

  private fetchedError(
    err: unknown,
    asked: Array<{ state: PartitionState; epoch: number; offset: bigint }>,
  ): void {
    for (const { state } of asked) state.busy = false;
    if (this.stopping) return;
    const failure = fetchFailureOf(err, this.context);
    const { outOfRange } = failure;
    if (outOfRange.size > 0) {
      for (const { state, epoch, offset } of asked) {
        const range = outOfRange.get(state.partition);
        if (!range || this.partitions.get(state.partition) !== state || state.epoch !== epoch) continue;
        // Retention deleted the position (or it lies past the end): go to the nearest end that exists, as kafkajs does.
        const moved = offset < range.logStart ? range.logStart : range.high;
        this.options.log.warn(
          {
            event: "offset_out_of_range",
            partition: state.partition,
            from: String(offset),
            to: String(moved),
          },
          "fetch position no longer in the log; moved to the nearest offset that is",
        );
        state.position = moved;
      }
      return;
    }
    this.fetchFailed(failure.condition);
  }

  private fetchFailed(err: unknown): void {
    if (this.stopping) return;
    const condition = this.condition(err);
    if (FATAL_CODES.has(condition.code)) {
      this.fail(condition);
      return;
    }
    this.options.log.warn(
      { event: "fetch_failed", code: condition.code, error: condition.message, retry_in_ms: this.backoffMs },
      "fetch failed; trying again",
    );
    this.retryLater(() => this.scheduleLoop());
  }

  /** Runs `action` after the current backoff; fetching pauses until then (the broker is likely away). */
  private retryLater(action: () => void): void {
    this.retries.push(action);
    if (this.retryTimer) return;
    const pause = this.backoffMs;
    this.backoffMs = Math.min(this.options.maxBackoffMs ?? 10_000, this.backoffMs * 2);
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      const due = this.retries.splice(0);
      if (!this.stopping) for (const retry of due) retry();
      this.scheduleLoop();
    }, pause);
    this.retryTimer.unref();
  }

  private get context() {
    return { brokers: this.options.brokers, topic: this.topic, group: this.options.group };
  }

  private condition(err: unknown): KafkaError {
    return kafkaConditionOf(err, this.context);
  }
}
