/**
 * The stream task: the one loop from a source to the sinks, for every
 * command that processes snapshots (consume over Kafka, replay over files).
 *
 * It owns the partitions: which ones are ours, each one's restore plan and
 * position, and which layers arrived through it (dropped when it is revoked).
 * On assignment a partition is planned: state restored by a state store when
 * one is plugged in, otherwise rewound to `restoreLookbackMs` ago; records
 * below the group's committed offset rebuild windows with their events and
 * dead letters suppressed, because whoever owned the partition then already
 * emitted them. From the committed offset on it is live.
 *
 * Commits follow a cadence (`commitIntervalMs`, Kafka Streams'
 * commit.interval.ms): a batch only advances its partition's position and
 * buffers its effects; a commit takes every buffer and position at one instant,
 * writes the effects (events, dead letters), then the state store's
 * checkpoints, then the offsets, so a committed offset is never ahead of what
 * is durable. A commit happens on the cadence, when the buffers grow large,
 * on revocation (at_least_once), on stop and before an `on_invalid: fail` stop.
 * Under exactly_once (`transactions`) the same content is one Kafka
 * transaction: all of it or none. A commit that fails leaves the partitions'
 * detector state past what is durable, so their layers are dropped and the
 * partitions planned again as on a fresh assignment (restore, then replay
 * with events suppressed up to the committed offset). A fenced producer, or
 * a condition only the operator can fix (a refused topic name, credentials,
 * ACLs), ends the task instead.
 *
 * What a record the processor rejects becomes is the `on_invalid` policy:
 * dead-lettered, skipped (counted and logged only), or the end of the task
 * (`failed` resolves; the records before it are written and committed).
 */
import type { CheckpointRecord } from "../codec/checkpoint-codec.js";
import type { OnInvalid } from "../config/load.js";
import type { UnitTransition } from "../core/snapshot.js";
import type { DeadLetterRecord } from "../sink/kafka-sinks.js";
import { ProducerFencedError } from "../sink/transactional-producer.js";
import { kafkaErrorOf } from "../source/kafka-errors.js";
import type { BatchControl, RecordBatch, SnapshotSource, SourceHandler } from "../source/source.js";
import type { SnapshotProcessor } from "./snapshot-processor.js";
import type { Telemetry } from "./telemetry.js";

/** Where a batch's effects go; resolves once they are durable (acknowledged). */
export interface EffectWriter {
  write(transitions: readonly UnitTransition[], deadLetters: readonly DeadLetterRecord[]): Promise<void>;
}

/** A (run, layer) the task saw arrive through a partition. */
export interface LayerId {
  run_id: string;
  layer: string;
}

/**
 * Durable per-partition detector state, plugged into the task. On assignment
 * `restore` loads the partitions' state and says up to which input offset it
 * covers (input resumes there; undefined: nothing stored, the lookback
 * rebuilds it). `prepareCheckpoint` takes the state of the partition's
 * `layers` up to `position` now (encoded before it returns, so the caller may
 * drop the layers right after) and returns the records to write, which the
 * commit makes durable before the offsets. Without `force` it may skip
 * (undefined: its own cadence); revocation and shutdown force one.
 */
export interface StateStore {
  restore(partitions: readonly number[]): Promise<Map<number, bigint | undefined>>;
  prepareCheckpoint(
    partition: number,
    position: bigint,
    layers: Iterable<LayerId>,
    force?: boolean,
  ): PendingCheckpoint | undefined;
}

/** A checkpoint taken and not yet written: its records for the state topic's `partition`. */
export interface PendingCheckpoint {
  partition: number;
  records: readonly CheckpointRecord[];
  /** Writes the records outside a transaction (at_least_once). */
  write(): Promise<void>;
}

/** What one commit makes durable. */
export interface CommitContent {
  transitions: readonly UnitTransition[];
  deadLetters: readonly DeadLetterRecord[];
  state: readonly PendingCheckpoint[];
  offsets: ReadonlyArray<{ partition: number; offset: bigint }>;
}

/** exactly_once: makes a commit's content durable as one transaction, all of it or nothing. */
export interface TransactionalCommitter {
  commit(content: CommitContent): Promise<void>;
}

export interface TaskOptions {
  restoreLookbackMs: number;
  onInvalid: OnInvalid;
  idleFlushMs: number;
  runIdleTimeoutMs: number;
  /** Wait before planning a restore again after the source's offset requests failed. */
  planRetryMs?: number;
  store?: StateStore;
  /**
   * Where a group that never committed starts: `lookback` (default) rebuilds
   * from restoreLookbackMs ago with events suppressed up to the end offset at
   * assignment, `latest` goes live at the end offset.
   */
  startFrom?: "lookback" | "latest" | "earliest";
  /**
   * Commit at most this often (0: after every batch). Between commits batches
   * only advance positions and buffer their effects.
   */
  commitIntervalMs?: number;
  /** Commit before the cadence once this many events and dead letters are buffered. */
  maxBufferedEffects?: number;
  /** exactly_once: every commit is one transaction through this; absent: at_least_once. */
  transactions?: TransactionalCommitter;
  /** Wall clock, injectable for tests. */
  now?: () => number;
}

/** A record rejected under `on_invalid: fail`. */
export class RejectedRecordError extends Error {
  constructor(
    readonly reason: string,
    readonly at: { topic: string; partition: number; offset: string },
    message: string,
  ) {
    super(message);
    this.name = "RejectedRecordError";
  }
}

interface PartitionPlan {
  /** Offsets below this were processed (and their events emitted) before this instance owned the partition. */
  liveFrom: bigint;
  /** Next offset this instance will process. */
  position: bigint;
}

/** Effects processed and not yet committed. */
interface Buffered {
  transitions: UnitTransition[];
  deadLetters: DeadLetterRecord[];
}

/** One owned partition. */
interface Owned {
  plan: Promise<PartitionPlan>;
  /** The plan once computed. */
  settled?: PartitionPlan;
  /** Layers that arrived through this partition, by run\0layer. */
  layers: Map<string, { run_id: string; layer: string }>;
  pending: Buffered;
  /** The offset this instance last committed for the partition. */
  committed?: bigint;
  /** Whether a batch moved the position since the plan: only then is there an offset to commit. */
  processed?: boolean;
}

/** A partition's share of a commit, taken at one instant. */
interface CommitPart extends Buffered {
  partition: number;
  /** The partition as it was owned when taken; a re-plan or (exactly_once) a revocation replaces it. */
  owned: Owned;
  offset?: bigint;
  state?: PendingCheckpoint;
  /** Taken on revocation (at_least_once): written although the partition is no longer ours. */
  revoked: boolean;
}

interface TakenCommit {
  parts: CommitPart[];
  /** Idle-flush transitions of layers no owned partition lists. */
  loose: UnitTransition[];
}

const PLAN_RETRY_MS = 5_000;
const MAX_BUFFERED_EFFECTS = 10_000;
/**
 * The longest a batch holds the event loop: a fetch brings thousands of snapshots, and while they are
 * applied nothing else runs (a /metrics scrape, the API, the other partitions' batches, the client's
 * own heartbeat timer).
 */
const YIELD_EVERY_MS = 50;
const emptyBuffer = (): Buffered => ({ transitions: [], deadLetters: [] });

export class StreamTask implements SourceHandler {
  private readonly owned = new Map<number, Owned>();
  /** Batch handlers still running, and state writes of revoked partitions, awaited by stop(). */
  private readonly inFlight = new Set<Promise<unknown>>();
  private readonly now: () => number;
  private restoring = false;
  /** Settles when the batch applying its records now is done: batches take turns, in arrival order. */
  private applying: Promise<void> = Promise.resolve();
  private stopping = false;
  private punctuator: NodeJS.Timeout | undefined;
  private commitTimer: NodeJS.Timeout | undefined;
  /** Commits run one after another, in the order they were taken. */
  private commitChain: Promise<void> = Promise.resolve();
  /** The first batch with records commits at once, so a partition's first state is durable early. */
  private lastCommitAt = Number.NEGATIVE_INFINITY;
  private loose: UnitTransition[] = [];
  private fail: (err: Error) => void = () => {};
  /** The record that stopped the task under `on_invalid: fail`, once one did. */
  private rejected: RejectedRecordError | undefined;
  /** Resolves when the task stopped for good: the source failed, or a record under `on_invalid: fail`. */
  readonly failed: Promise<Error>;

  constructor(
    private readonly source: SnapshotSource,
    private readonly processor: SnapshotProcessor,
    private readonly writer: EffectWriter,
    private readonly telemetry: Telemetry,
    private readonly options: TaskOptions,
  ) {
    this.now = options.now ?? Date.now;
    const own = new Promise<Error>((resolve) => {
      this.fail = resolve;
    });
    this.failed = Promise.race([own, source.failed]);
  }

  /** Starts the source; resolves once it started (a finite source: once it delivered everything). */
  start(): Promise<void> {
    return this.source.start(this);
  }

  /** Why the task is not live on every partition it owns, or undefined when it is. */
  notReadyReason(): string | undefined {
    return (
      this.source.notReadyReason() ??
      (this.restoring ? "rebuilding windows of newly assigned partitions" : undefined)
    );
  }

  /** The rejected record that stopped the task under `on_invalid: fail`, if one did. */
  rejection(): RejectedRecordError | undefined {
    return this.rejected;
  }

  /** Partitions owned now (for tests and the API). */
  partitions(): number[] {
    return [...this.owned.keys()].sort((a, b) => a - b);
  }

  /**
   * Stops processing, lets the batches in hand finish writing and commit, then
   * stops the source. The batches are awaited here rather than left to the
   * client, which may leave the group while a batch still waits for its events
   * to be acknowledged: its commit would then be lost and a restart would emit
   * those events again.
   */
  async stop(): Promise<void> {
    this.stopping = true;
    clearInterval(this.punctuator);
    clearInterval(this.commitTimer);
    while (this.inFlight.size > 0) await Promise.allSettled([...this.inFlight]);
    // Every batch in hand is processed; the last commit carries every partition's state at its position.
    await this.commit([...this.owned.keys()], true);
    await this.source.stop();
  }

  /** Commits on the cadence also while no batch arrives (the last batch before a quiet spell). */
  startCommitTimer(): void {
    const interval = this.options.commitIntervalMs ?? 0;
    if (interval <= 0) return;
    this.commitTimer = setInterval(() => {
      if (!this.stopping && this.hasUncommitted() && this.now() - this.lastCommitAt >= interval)
        void this.commit([...this.owned.keys()], false);
    }, interval);
    this.commitTimer.unref();
  }

  /** Runs `punctuate` every `intervalMs` until stop(). */
  startPunctuator(intervalMs: number): void {
    this.punctuator = setInterval(() => {
      this.punctuate(this.now()).catch((err: unknown) => {
        this.telemetry.log.warn(
          { event: "idle_flush_write_failed", err: String(err) },
          "could not publish idle-flush transitions",
        );
      });
    }, intervalMs);
    this.punctuator.unref();
  }

  /**
   * Housekeeping on wall time: the verdicts of layers gone idle are emitted,
   * runs quiet for longer than run_idle_timeout_ms are forgotten.
   */
  async punctuate(nowMs: number): Promise<void> {
    const idle = this.processor.flushIdle(nowMs, this.options.idleFlushMs);
    this.telemetry.record(this.processor.punctuate(nowMs, this.options.runIdleTimeoutMs));
    if (idle.length === 0) return;
    this.telemetry.transitions(idle);
    // Buffered with their partition, so they are committed (or dropped by a re-plan) with its state.
    const byLayer = new Map<string, Owned>();
    for (const owned of this.owned.values()) for (const key of owned.layers.keys()) byLayer.set(key, owned);
    for (const t of idle) {
      const owned = byLayer.get(`${t.run_id}\u0000${t.layer}`);
      if (owned) owned.pending.transitions.push(t);
      else this.loose.push(t);
    }
    if (this.commitDue()) await this.commit([...this.owned.keys()], false);
  }

  /** The end of a finite source: the open buckets' verdicts, written. */
  async finish(): Promise<UnitTransition[]> {
    while (this.inFlight.size > 0) await Promise.allSettled([...this.inFlight]);
    await this.commit([...this.owned.keys()], false);
    const last = this.processor.flushAll();
    this.telemetry.transitions(last);
    await this.writer.write(last, []);
    return last;
  }

  assignment(partitions: readonly number[]): void {
    const assigned = new Set(partitions);
    const revoked = [...this.owned.keys()].filter((p) => !assigned.has(p));
    if (revoked.length > 0) {
      // at_least_once: the revoked partitions' effects, state and offsets are committed, the state
      // taken before the layers are dropped; the next owner restores it. kafkajs reports a revocation
      // only after the rebalance, so the next owner may already have started from the previous
      // commit and emit some of these events again. exactly_once drops them instead: nothing past
      // the last transaction is durable, and the next owner processes it again, emitting it once.
      if (!this.options.transactions) {
        const write = this.commit(revoked, true, true);
        this.inFlight.add(write);
        write.then(() => this.inFlight.delete(write));
      }
      let layers = 0;
      for (const p of revoked) {
        const owned = this.owned.get(p)!;
        layers += this.processor.dropLayers(owned.layers.values());
        this.owned.delete(p);
        this.telemetry.lagDropped(this.source.topic, p);
      }
      this.telemetry.partitionsRevoked(revoked, layers);
    }
    const added = partitions.filter((p) => !this.owned.has(p));
    if (added.length === 0) {
      this.updateRestoring();
      return;
    }
    this.restoring = true;
    this.plan(added);
  }

  batch(batch: RecordBatch, control: BatchControl): Promise<bigint | undefined> {
    const work = this.onBatch(batch, control);
    this.inFlight.add(work);
    const done = () => this.inFlight.delete(work);
    work.then(done, done);
    return work;
  }

  /**
   * Plans the restore of newly assigned partitions. A failed plan (the offset
   * requests ran out of retries, e.g. during a long broker outage) is tried
   * again while the partitions are still ours; batches of those partitions
   * wait for it, or fail and are fetched again.
   */
  private plan(partitions: number[], reseek = false): void {
    const planning = this.planRestore(partitions, reseek);
    const mine = new Map<number, Owned>();
    for (const p of partitions) {
      const plan = planning.then((plans) => plans.get(p)!);
      // Handled here so a failure is never an unhandled rejection; onBatch still sees it.
      plan.catch(() => {});
      const owned: Owned = {
        plan,
        layers: this.owned.get(p)?.layers ?? new Map(),
        pending: emptyBuffer(),
      };
      mine.set(p, owned);
      this.owned.set(p, owned);
    }
    planning.then(
      (plans) => {
        for (const [p, plan] of plans) {
          const owned = mine.get(p)!;
          if (this.owned.get(p) === owned) owned.settled = plan;
        }
        this.updateRestoring();
      },
      (err: unknown) => {
        this.telemetry.log.error(
          { event: "restore_plan_failed", error: String(err) },
          "restore plan failed; retrying",
        );
        const retry = setTimeout(() => {
          const still = partitions.filter((p) => this.owned.get(p) === mine.get(p));
          if (!this.stopping && still.length > 0) this.plan(still, reseek);
        }, this.options.planRetryMs ?? PLAN_RETRY_MS);
        retry.unref();
      },
    );
  }

  /**
   * For each newly assigned partition: where to rewind to and where live
   * processing starts. `reseek`: the consumer's position is past the plan
   * (a re-plan after a failed commit), so it is moved even to the committed offset.
   */
  private async planRestore(partitions: number[], reseek: boolean): Promise<Map<number, PartitionPlan>> {
    const plans = new Map<number, PartitionPlan>();
    const offsets = this.source.offsets;
    if (!offsets) {
      // Nothing was emitted for a source that keeps no positions: all of it is live.
      for (const p of partitions) plans.set(p, { liveFrom: 0n, position: 0n });
      return plans;
    }
    const committed = await offsets.committed(partitions);
    const stored = this.options.store ? await this.options.store.restore(partitions) : new Map();
    // The lookback is the fallback of every partition the store knows nothing of.
    const since = partitions.some((p) => stored.get(p) === undefined)
      ? await offsets.offsetsAt(this.now() - this.options.restoreLookbackMs)
      : new Map<number, bigint | undefined>();
    const fresh =
      this.options.startFrom === "earliest" ? [] : partitions.filter((p) => committed.get(p) === undefined);
    const ends = fresh.length > 0 ? await offsets.endOffsets(fresh) : new Map<number, bigint>();
    const latest = this.options.startFrom === "latest";
    const report = [];
    const topic = this.source.topic;
    for (const partition of partitions) {
      // Never committed: nothing before the end offset is live; it only rebuilds windows (or is skipped under `latest`).
      const end = ends.get(partition);
      const liveFrom = committed.get(partition) ?? end ?? 0n;
      const rewind = end !== undefined && latest ? end : (stored.get(partition) ?? since.get(partition));
      const from = rewind !== undefined && rewind < liveFrom ? rewind : liveFrom;
      if (from === liveFrom && committed.get(partition) === undefined) {
        // A group that never committed starts at the beginning unless moved.
        if (from > 0n || reseek) offsets.seek(partition, from);
        plans.set(partition, { liveFrom, position: from });
        continue;
      }
      if (from < liveFrom) {
        offsets.seek(partition, from);
        report.push({ topic, partition, from: from.toString(), until: liveFrom.toString() });
      } else if (reseek) {
        offsets.seek(partition, from);
      }
      plans.set(partition, { liveFrom, position: from });
    }
    if (report.length > 0) this.telemetry.restoreStarted(report);
    return plans;
  }

  /** Whether a commit is due: the cadence elapsed or the buffers grew large. */
  private commitDue(): boolean {
    const interval = this.options.commitIntervalMs ?? 0;
    if (interval <= 0 || this.now() - this.lastCommitAt >= interval) return true;
    let buffered = this.loose.length;
    for (const o of this.owned.values())
      buffered += o.pending.transitions.length + o.pending.deadLetters.length;
    return buffered >= (this.options.maxBufferedEffects ?? MAX_BUFFERED_EFFECTS);
  }

  private hasUncommitted(): boolean {
    if (this.loose.length > 0) return true;
    for (const o of this.owned.values()) {
      if (o.pending.transitions.length > 0 || o.pending.deadLetters.length > 0) return true;
      const plan = o.settled;
      if (
        o.processed &&
        plan &&
        this.source.offsets &&
        plan.position >= plan.liveFrom &&
        plan.position !== o.committed
      )
        return true;
    }
    return false;
  }

  /**
   * Takes the partitions' buffers, positions and (when due, or `force`d)
   * checkpoints now, and queues their write behind the commits taken before.
   * Resolves when written; never rejects: a failure is handled (re-plan) here.
   */
  private commit(partitions: readonly number[], force: boolean, revoked = false): Promise<void> {
    const taken = this.take(partitions, force, revoked);
    const run = this.commitChain.then(() => this.writeCommit(taken));
    this.commitChain = run;
    return run;
  }

  private take(partitions: readonly number[], force: boolean, revoked: boolean): TakenCommit {
    const parts: CommitPart[] = [];
    const offsets = this.source.offsets;
    const store = this.options.store;
    for (const partition of partitions) {
      const owned = this.owned.get(partition);
      if (!owned) continue;
      const part: CommitPart = { partition, owned, revoked, ...owned.pending };
      owned.pending = emptyBuffer();
      const plan = owned.settled;
      if (plan && offsets) {
        // At liveFrom too: a group that never committed records that its history is done.
        const due =
          owned.processed === true && plan.position >= plan.liveFrom && plan.position !== owned.committed;
        if (due || force) {
          const state = store?.prepareCheckpoint(partition, plan.position, owned.layers.values(), force);
          if (state) part.state = state;
        }
        if (due) part.offset = plan.position;
      }
      parts.push(part);
    }
    const loose = this.loose;
    this.loose = [];
    this.lastCommitAt = this.now();
    return { parts, loose };
  }

  private async writeCommit({ parts: taken, loose }: TakenCommit): Promise<void> {
    // A part whose partition was planned again since rests on state that is gone: its successor redoes it.
    const parts = taken.filter((x) => x.revoked || this.owned.get(x.partition) === x.owned);
    const transitions = [...loose, ...parts.flatMap((x) => x.transitions)];
    const deadLetters = parts.flatMap((x) => x.deadLetters);
    const state = parts.flatMap((x) => (x.state ? [x.state] : []));
    const offsets = parts.flatMap((x) =>
      x.offset !== undefined ? [{ partition: x.partition, offset: x.offset }] : [],
    );
    if (transitions.length + deadLetters.length + state.length + offsets.length === 0) return;
    try {
      const transactions = this.options.transactions;
      if (transactions) {
        await transactions.commit({ transitions, deadLetters, state, offsets });
      } else {
        if (transitions.length + deadLetters.length > 0) await this.writer.write(transitions, deadLetters);
        for (const s of state) await s.write();
        for (const o of offsets) await this.source.offsets!.commit(o.partition, o.offset);
      }
    } catch (err) {
      this.commitFailed(parts, transitions.length + deadLetters.length, err);
      return;
    }
    for (const x of parts) if (x.offset !== undefined) x.owned.committed = x.offset;
  }

  /**
   * The partitions' detector state is past what is durable: their layers are
   * dropped and they are planned again from the state topic and the committed
   * offset, which emits the lost effects again (exactly once under
   * transactions). A fenced producer means another instance took over: stop.
   */
  private commitFailed(parts: readonly CommitPart[], effects: number, err: unknown): void {
    const guarantee = this.options.transactions ? "exactly_once" : "at_least_once";
    // A partition that put nothing into this commit lost nothing: its state is what is durable.
    const contributed = (x: CommitPart) =>
      x.transitions.length + x.deadLetters.length > 0 || x.offset !== undefined || x.state !== undefined;
    const replan = parts
      .filter((x) => !x.revoked && contributed(x) && this.owned.get(x.partition) === x.owned)
      .map((x) => x.partition);
    // Fenced, or a condition only the operator can change (a refused topic name, credentials, ACLs):
    // planning again would fail the same way forever, so the task stops and the process exits.
    const condition = kafkaErrorOf(err, { brokers: [] });
    const fatal =
      err instanceof ProducerFencedError ||
      (condition !== undefined && !condition.waitable && condition.code !== "KAFKA_ERROR");
    this.telemetry.commitFailed({
      guarantee,
      partitions: parts.map((x) => x.partition),
      replanned: fatal || this.stopping ? [] : replan,
      effects,
      error: err instanceof Error ? err.message : String(err),
    });
    if (fatal) {
      this.stopping = true;
      this.fail(err instanceof Error ? err : new Error(String(err)));
      return;
    }
    if (this.stopping || replan.length === 0) return;
    for (const p of replan) this.processor.dropLayers(this.owned.get(p)!.layers.values());
    this.restoring = true;
    this.plan(replan, true);
  }

  private updateRestoring(): void {
    const wasRestoring = this.restoring;
    this.restoring = [...this.owned.values()].some(
      (o) => !o.settled || o.settled.position < o.settled.liveFrom,
    );
    if (wasRestoring && !this.restoring) this.telemetry.restoreFinished();
  }

  /**
   * Waits for this batch's turn to apply its records; resolves with the call that ends it. A batch
   * yields the event loop as it goes (I/O, timers), not to the other batches: interleaved, the
   * batches in hand would all finish at once and the thread would then wait for the next fetch;
   * one after the other, the first is done (and its partition fetched again) while the rest apply.
   */
  private async applyTurn(): Promise<() => void> {
    let release!: () => void;
    const mine = new Promise<void>((resolve) => {
      release = resolve;
    });
    const before = this.applying;
    this.applying = before.then(() => mine);
    await before;
    return release;
  }

  private async onBatch(batch: RecordBatch, control: BatchControl): Promise<bigint | undefined> {
    if (this.stopping) return undefined; // left for whoever owns the partition next, from the committed offset
    const owned = this.owned.get(batch.partition);
    if (!owned) return undefined; // revoked while the batch was in flight
    const plan = await owned.plan;
    // Fetched before the restore seek (fetched again from the seek offset), or planned again since.
    const gone = () => control.isStale() || this.owned.get(batch.partition) !== owned;
    if (gone()) return undefined;

    const transitions: UnitTransition[] = [];
    let last: bigint | undefined;
    let failure: RejectedRecordError | undefined;
    const release = await this.applyTurn();
    let lastBeat = this.now();
    try {
      for (const record of batch.records) {
        if (gone() || this.stopping) break;
        const offset = BigInt(record.offset);
        const effects = this.processor.process(record, batch.encoding, this.now());
        this.telemetry.record(effects.events);
        const live = offset >= plan.liveFrom;
        if (effects.layer) {
          const { run_id, layer } = effects.layer;
          owned.layers.set(`${run_id}\u0000${layer}`, effects.layer);
        }
        if (effects.deadLetter && live) {
          if (this.options.onInvalid === "fail") {
            const d = effects.deadLetter;
            failure = new RejectedRecordError(d.reason, d.source, d.message);
            break;
          }
          if (this.options.onInvalid === "dead_letter") owned.pending.deadLetters.push(effects.deadLetter);
        }
        if (live) {
          transitions.push(...effects.transitions);
          owned.pending.transitions.push(...effects.transitions);
        }
        last = offset;
        plan.position = offset + 1n;
        if (this.now() - lastBeat > YIELD_EVERY_MS) {
          await control.heartbeat();
          lastBeat = this.now();
        }
      }
    } finally {
      release();
    }
    if (this.owned.get(batch.partition) !== owned) return undefined;
    if (last !== undefined) {
      owned.processed = true;
      this.telemetry.transitions(transitions);
      if (batch.highWatermark !== undefined) {
        const high = batch.highWatermark;
        this.telemetry.lag(
          batch.topic,
          batch.partition,
          Number(high > plan.position ? high - plan.position : 0n),
        );
      }
      if (this.restoring) this.updateRestoring();
    }
    if (failure) {
      // No other batch goes on; what came before the rejected record is committed, then the task ends.
      this.stopping = true;
      await this.commit([...this.owned.keys()], false);
      this.rejected ??= failure;
      this.fail(failure);
      return last;
    }
    if (last !== undefined && this.commitDue()) await this.commit([...this.owned.keys()], false);
    // A commit that failed planned the partition again: its consumer position moves with the new plan.
    if (this.owned.get(batch.partition) !== owned) return undefined;
    return last;
  }
}
