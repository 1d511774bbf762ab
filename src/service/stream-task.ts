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
 * emitted them. From the committed offset on it is live. A batch's effects are
 * written (events, dead letters; then the state store's checkpoint) before
 * its offsets are committed, and never below the restore point, so neither a
 * crash nor a rebalance loses or repeats what was committed.
 *
 * What a record the processor rejects becomes is the `on_invalid` policy:
 * dead-lettered, skipped (counted and logged only), or the end of the task
 * (`failed` resolves; the records before it are written and committed).
 */
import type { OnInvalid } from "../config/load.js";
import type { UnitTransition } from "../core/snapshot.js";
import type { DeadLetterRecord } from "../sink/kafka-sinks.js";
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
 * rebuilds it). `checkpoint` makes the state of the partition's `layers` up
 * to `position` durable and runs before offsets are committed; it takes the
 * state before it returns (the promise is only the write), so the caller may
 * drop the layers right after the call. Without `force` it may skip a write
 * (a cadence); revocation and shutdown force one.
 */
export interface StateStore {
  restore(partitions: readonly number[]): Promise<Map<number, bigint | undefined>>;
  checkpoint(partition: number, position: bigint, layers: Iterable<LayerId>, force?: boolean): Promise<void>;
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

/** One owned partition. */
interface Owned {
  plan: Promise<PartitionPlan>;
  /** The plan once computed. */
  settled?: PartitionPlan;
  /** Layers that arrived through this partition, by run\0layer. */
  layers: Map<string, { run_id: string; layer: string }>;
}

const PLAN_RETRY_MS = 5_000;

export class StreamTask implements SourceHandler {
  private readonly owned = new Map<number, Owned>();
  /** Batch handlers still running, and state writes of revoked partitions, awaited by stop(). */
  private readonly inFlight = new Set<Promise<unknown>>();
  private readonly now: () => number;
  private restoring = false;
  private stopping = false;
  private punctuator: NodeJS.Timeout | undefined;
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
    while (this.inFlight.size > 0) await Promise.allSettled([...this.inFlight]);
    // Every batch in hand committed; the state written now covers exactly what was committed.
    const store = this.options.store;
    if (store) {
      const writes = [];
      for (const [p, owned] of this.owned) {
        if (owned.settled)
          writes.push(store.checkpoint(p, owned.settled.position, owned.layers.values(), true));
      }
      for (const r of await Promise.allSettled(writes)) {
        if (r.status === "rejected") this.checkpointFailed(r.reason);
      }
    }
    await this.source.stop();
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
    await this.writer.write(idle, []);
  }

  /** The end of a finite source: the open buckets' verdicts, written. */
  async finish(): Promise<UnitTransition[]> {
    while (this.inFlight.size > 0) await Promise.allSettled([...this.inFlight]);
    const last = this.processor.flushAll();
    this.telemetry.transitions(last);
    await this.writer.write(last, []);
    return last;
  }

  assignment(partitions: readonly number[]): void {
    const assigned = new Set(partitions);
    const revoked = [...this.owned.keys()].filter((p) => !assigned.has(p));
    if (revoked.length > 0) {
      let layers = 0;
      for (const p of revoked) {
        const owned = this.owned.get(p)!;
        // The state is taken before the layers are dropped; the next owner restores it.
        if (this.options.store && owned.settled) {
          const write = this.options.store
            .checkpoint(p, owned.settled.position, owned.layers.values(), true)
            .catch((err: unknown) => this.checkpointFailed(err));
          this.inFlight.add(write);
          write.then(() => this.inFlight.delete(write));
        }
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
  private plan(partitions: number[]): void {
    const planning = this.planRestore(partitions);
    const mine = new Map<number, Owned>();
    for (const p of partitions) {
      const plan = planning.then((plans) => plans.get(p)!);
      // Handled here so a failure is never an unhandled rejection; onBatch still sees it.
      plan.catch(() => {});
      const owned: Owned = { plan, layers: this.owned.get(p)?.layers ?? new Map() };
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
          if (!this.stopping && still.length > 0) this.plan(still);
        }, this.options.planRetryMs ?? PLAN_RETRY_MS);
        retry.unref();
      },
    );
  }

  /** For each newly assigned partition: where to rewind to and where live processing starts. */
  private async planRestore(partitions: number[]): Promise<Map<number, PartitionPlan>> {
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
        if (from > 0n) offsets.seek(partition, from);
        plans.set(partition, { liveFrom, position: from });
        continue;
      }
      if (from < liveFrom) {
        offsets.seek(partition, from);
        report.push({ topic, partition, from: from.toString(), until: liveFrom.toString() });
      }
      plans.set(partition, { liveFrom, position: from });
    }
    if (report.length > 0) this.telemetry.restoreStarted(report);
    return plans;
  }

  private checkpointFailed(err: unknown): void {
    this.telemetry.log.error(
      { event: "checkpoint_failed", error: String(err) },
      "could not write the state of a partition; its next owner rebuilds it from the lookback",
    );
  }

  private updateRestoring(): void {
    const wasRestoring = this.restoring;
    this.restoring = [...this.owned.values()].some(
      (o) => !o.settled || o.settled.position < o.settled.liveFrom,
    );
    if (wasRestoring && !this.restoring) this.telemetry.restoreFinished();
  }

  private async onBatch(batch: RecordBatch, control: BatchControl): Promise<bigint | undefined> {
    if (this.stopping) return undefined; // left for whoever owns the partition next, from the committed offset
    const owned = this.owned.get(batch.partition);
    if (!owned) return undefined; // revoked while the batch was in flight
    const plan = await owned.plan;
    if (control.isStale()) return undefined; // fetched before the restore seek; fetched again from the seek offset

    const transitions: UnitTransition[] = [];
    const deadLetters: DeadLetterRecord[] = [];
    let last: bigint | undefined;
    let failure: RejectedRecordError | undefined;
    let lastBeat = this.now();
    for (const record of batch.records) {
      if (control.isStale() || this.stopping) break;
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
        if (this.options.onInvalid === "dead_letter") deadLetters.push(effects.deadLetter);
      }
      if (live) transitions.push(...effects.transitions);
      last = offset;
      plan.position = offset + 1n;
      if (this.now() - lastBeat > 1000) {
        await control.heartbeat();
        lastBeat = this.now();
      }
    }
    if (last !== undefined) {
      this.telemetry.transitions(transitions);
      await this.writer.write(transitions, deadLetters);
      const offsets = this.source.offsets;
      // At liveFrom too: a group that never committed records that its history is done.
      if (offsets && plan.position >= plan.liveFrom) {
        await this.options.store?.checkpoint(batch.partition, plan.position, owned.layers.values());
        await offsets.commit(batch.partition, plan.position);
      }
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
      this.stopping = true;
      this.rejected ??= failure;
      this.fail(failure);
    }
    return last;
  }
}
