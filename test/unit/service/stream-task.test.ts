/**
 * The stream task over a fake source adapter (the SnapshotSource interface,
 * no broker): restore, suppression below the committed offset, commits after
 * writes, the retry of a failed restore plan, revocation, the punctuator,
 * stop() and the on_invalid policy; the commit cadence, and exactly_once over
 * a fake transaction (a failed one plans its partition again).
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { pino } from "pino";
import { encodeSnapshot } from "../../../src/codec/index.js";
import type { OnInvalid } from "../../../src/config/index.js";
import { type ActivationSnapshot, Detector, type UnitTransition } from "../../../src/core/index.js";
import { SnapshotProcessor } from "../../../src/service/snapshot-processor.js";
import {
  type CommitContent,
  RejectedRecordError,
  type StateStore,
  StreamTask,
  type TransactionalCommitter,
} from "../../../src/service/stream-task.js";
import { Telemetry } from "../../../src/service/telemetry.js";
import type { DeadLetterRecord } from "../../../src/sink/kafka-sinks.js";
import { Exporter } from "../../../src/sink/prometheus.js";
import { ProducerFencedError } from "../../../src/sink/transactional-producer.js";
import type {
  OffsetControl,
  RecordBatch,
  SnapshotSource,
  SourceHandler,
  SourceRecord,
} from "../../../src/source/source.js";
import { parseExposition, sumOf } from "../../support/metrics.js";

const TOPIC = "snapshots";
const T0 = 1_700_000_000_000;

/** A source that delivers what the test hands it and records what the task asks of it. */
class FakeSource implements SnapshotSource {
  readonly topic = TOPIC;
  readonly seeks: Array<[number, bigint]> = [];
  readonly commits: Array<[number, bigint]> = [];
  readonly log: string[] = [];
  committedOffsets = new Map<number, bigint | undefined>();
  byTime = new Map<number, bigint | undefined>();
  /** End offsets endOffsets() answers with; a partition not in it has none. */
  ends = new Map<number, bigint>();
  /** Failures the next committed() calls throw, in order. */
  failCommitted: Error[] = [];
  committedCalls = 0;
  stopped = false;
  stale = false;
  handler!: SourceHandler;
  readonly failed = new Promise<Error>(() => {});
  readonly offsets: OffsetControl = {
    committed: async (partitions) => {
      this.committedCalls++;
      const err = this.failCommitted.shift();
      if (err) throw err;
      return new Map(partitions.map((p) => [p, this.committedOffsets.get(p)]));
    },
    offsetsAt: async () => new Map(this.byTime),
    endOffsets: async (ps: readonly number[]) => new Map([...this.ends].filter(([p]) => ps.includes(p))),
    seek: (p, o) => void this.seeks.push([p, o]),
    commit: async (p, o) => {
      this.log.push(`commit ${p}@${o}`);
      this.commits.push([p, o]);
    },
  };

  async start(handler: SourceHandler): Promise<void> {
    this.handler = handler;
  }
  async stop(): Promise<void> {
    this.log.push("source stopped");
    this.stopped = true;
  }
  notReadyReason(): string | undefined {
    return undefined;
  }

  deliver(partition: number, from: number, values: Array<Buffer | null>, highWatermark?: bigint) {
    const records: SourceRecord[] = values.map((value, i) => ({
      topic: TOPIC,
      partition,
      offset: String(from + i),
      key: Buffer.from("k"),
      value,
    }));
    const batch: RecordBatch = {
      topic: TOPIC,
      partition,
      encoding: { kind: "single-object" },
      records,
      ...(highWatermark !== undefined ? { highWatermark } : {}),
    };
    return this.handler.batch(batch, { isStale: () => this.stale, heartbeat: async () => {} });
  }
}

class FakeWriter {
  readonly transitions: UnitTransition[] = [];
  readonly deadLetters: DeadLetterRecord[] = [];
  gate: Promise<void> | undefined;
  constructor(private readonly log: string[]) {}
  async write(transitions: readonly UnitTransition[], deadLetters: readonly DeadLetterRecord[]) {
    await this.gate;
    this.transitions.push(...transitions);
    this.deadLetters.push(...deadLetters);
    this.log.push(`write ${transitions.length}+${deadLetters.length}`);
  }
}

/** A layer whose units fire on a quarter of the samples: its first verdicts come when step 110 opens a bucket. */
function snap(run: string, layer: string, step: number, fires = 4): ActivationSnapshot {
  return {
    run_id: run,
    layer,
    rank: 0,
    step,
    time: T0 + step,
    unit_offset: 0,
    unit_count: 4,
    layer_units: 4,
    samples: 8000,
    stats: { kind: "counts", fires: new Uint32Array(4).fill(fires * 500), abs_sum: null, sq_sum: null },
  };
}

function harness(
  opts: {
    onInvalid?: OnInvalid;
    /** A store, or one made over the source's log. */
    store?: StateStore | ((log: string[]) => StateStore);
    now?: () => number;
    startFrom?: "lookback" | "latest";
    commitIntervalMs?: number;
    maxBufferedEffects?: number;
    transactions?: TransactionalCommitter;
  } = {},
) {
  const source = new FakeSource();
  const writer = new FakeWriter(source.log);
  const detector = new Detector();
  const exporter = new Exporter(detector, { unitSeries: false, unitSeriesMax: 1, processMetrics: false });
  const telemetry = new Telemetry(pino({ level: "silent" }), exporter);
  const processor = new SnapshotProcessor(detector, {
    limits: {
      max_tracked_units: 1000,
      max_layers_per_run: 10,
      max_units_per_layer: 100,
      max_message_bytes: 1 << 20,
    },
    evictIdleMs: 60_000,
    clock: "wall",
  });
  const store = typeof opts.store === "function" ? opts.store(source.log) : opts.store;
  const task = new StreamTask(source, processor, writer, telemetry, {
    restoreLookbackMs: 60_000,
    onInvalid: opts.onInvalid ?? "dead_letter",
    idleFlushMs: 60_000,
    runIdleTimeoutMs: 600_000,
    planRetryMs: 1,
    ...(store ? { store } : {}),
    ...(opts.startFrom ? { startFrom: opts.startFrom } : {}),
    ...(opts.commitIntervalMs !== undefined ? { commitIntervalMs: opts.commitIntervalMs } : {}),
    ...(opts.maxBufferedEffects !== undefined ? { maxBufferedEffects: opts.maxBufferedEffects } : {}),
    ...(opts.transactions ? { transactions: opts.transactions } : {}),
    now: opts.now ?? (() => T0 + 1_000),
  });
  const metrics = async () => parseExposition(await exporter.metrics());
  return { source, writer, detector, task, metrics, store };
}

/** The transitions a fresh detector gives for each snapshot, one list per record. */
function reference(snaps: readonly ActivationSnapshot[]): UnitTransition[][] {
  const d = new Detector();
  return snaps.map((s) => d.apply(s, T0 + 1_000).transitions);
}

const SNAPS = [0, 1, 2, 3, 4, 5].map((i) => snap("r", "fc", 10 + 100 * i, i < 3 ? 4 : 0));
const VALUES = SNAPS.map((s) => encodeSnapshot(s));
const nextTick = () => new Promise((r) => setImmediate(r));

describe("StreamTask", () => {
  test("restore: seeks to the lookback, rebuilds with events and dead letters suppressed below the committed offset, then goes live", async () => {
    const h = harness();
    h.source.committedOffsets.set(0, 13n);
    h.source.byTime.set(0, 10n);
    await h.task.start();
    h.task.assignment([0]);
    assert.match(h.task.notReadyReason() ?? "", /rebuilding/);
    // Offsets 10..17: the six snapshots with a bad record at 11 (suppressed) and at 16 (live).
    const values = [
      VALUES[0]!,
      Buffer.from("junk"),
      VALUES[1]!,
      VALUES[2]!,
      VALUES[3]!,
      VALUES[4]!,
      Buffer.from("junk"),
      VALUES[5]!,
    ];
    const last = await h.source.deliver(0, 10, values, 20n);
    assert.equal(last, 17n);
    assert.deepEqual(h.source.seeks, [[0, 10n]]);

    const perRecord = reference(SNAPS);
    // Offsets 10, 12 are the snapshots 0 and 1 (below 13: suppressed); 13.. are 2..5 (live).
    const expected = perRecord.slice(2).flat();
    assert.ok(expected.length > 0, "the live records change verdicts");
    assert.deepEqual(h.writer.transitions, expected);
    assert.deepEqual(
      h.writer.deadLetters.map((d) => [d.source.offset, d.reason]),
      [["16", "bad_magic"]],
    );
    assert.deepEqual(h.source.commits, [[0, 18n]]);
    assert.deepEqual(h.source.log, [`write ${expected.length}+1`, "commit 0@18"], "written before committed");
    assert.equal(h.task.notReadyReason(), undefined, "live once past the committed offset");
    const m = await h.metrics();
    assert.equal(sumOf(m, "reluwatch_restoring"), 0);
    assert.equal(sumOf(m, "reluwatch_consumer_lag_messages", { partition: "0" }), 2);
    assert.equal(sumOf(m, "reluwatch_invalid_snapshots_total", { reason: "bad_magic" }), 2, "both counted");
  });

  test("a restore that ends below the committed offset writes nothing and commits nothing", async () => {
    const h = harness();
    h.source.committedOffsets.set(0, 100n);
    h.source.byTime.set(0, 0n);
    await h.task.start();
    h.task.assignment([0]);
    await h.source.deliver(0, 0, VALUES.slice(0, 3));
    assert.deepEqual(h.source.commits, []);
    assert.deepEqual(h.writer.transitions, []);
    assert.match(h.task.notReadyReason() ?? "", /rebuilding/, "still below the live offset");
    assert.equal(h.detector.layerIds().length, 1, "the window was rebuilt");
  });

  test("a partition never committed is live from the start, without a seek", async () => {
    const h = harness();
    await h.task.start();
    h.task.assignment([0]);
    await h.source.deliver(0, 0, VALUES);
    assert.deepEqual(h.source.seeks, []);
    assert.deepEqual(h.writer.transitions, reference(SNAPS).flat());
    assert.deepEqual(h.source.commits, [[0, 6n]]);
  });

  test("a failed restore plan is retried while the partition is ours; its batches wait for it", async () => {
    const h = harness();
    h.source.committedOffsets.set(0, 2n);
    h.source.byTime.set(0, 0n);
    h.source.failCommitted = [new Error("broker down")];
    await h.task.start();
    h.task.assignment([0]);
    await assert.rejects(h.source.deliver(0, 0, VALUES), /broker down/, "the batch is fetched again");
    assert.deepEqual(h.source.commits, []);
    while (h.source.committedCalls < 2) await new Promise((r) => setTimeout(r, 2));
    await nextTick();
    assert.equal(await h.source.deliver(0, 0, VALUES), 5n);
    assert.deepEqual(h.source.seeks, [[0, 0n]]);
    assert.deepEqual(h.writer.transitions, reference(SNAPS).slice(2).flat());
    assert.deepEqual(h.source.commits, [[0, 6n]]);
  });

  test("revocation drops the partition's layers and its lag series; the other partition keeps both", async () => {
    const h = harness();
    await h.task.start();
    h.task.assignment([0, 1]);
    await h.source.deliver(0, 0, [encodeSnapshot(snap("r", "a", 10))], 5n);
    await h.source.deliver(1, 0, [encodeSnapshot(snap("r", "b", 10))], 7n);
    let m = await h.metrics();
    assert.equal(sumOf(m, "reluwatch_consumer_lag_messages", { partition: "0" }), 4);
    assert.equal(sumOf(m, "reluwatch_consumer_lag_messages", { partition: "1" }), 6);
    h.task.assignment([1]);
    assert.deepEqual(h.task.partitions(), [1]);
    assert.deepEqual(
      h.detector.layerIds().map((l) => l.layer),
      ["b"],
    );
    m = await h.metrics();
    assert.equal(
      m.filter((s) => s.name === "reluwatch_consumer_lag_messages" && s.labels.partition === "0").length,
      0,
    );
    assert.equal(sumOf(m, "reluwatch_consumer_lag_messages", { partition: "1" }), 6);
    // A batch of the revoked partition still in flight does nothing.
    assert.equal(await h.source.deliver(0, 1, [encodeSnapshot(snap("r", "a", 110))]), undefined);
    assert.deepEqual(
      h.detector.layerIds().map((l) => l.layer),
      ["b"],
    );
  });

  test("a batch made stale by the restore seek is left to be fetched again", async () => {
    const h = harness();
    h.source.committedOffsets.set(0, 3n);
    h.source.byTime.set(0, 0n);
    await h.task.start();
    h.task.assignment([0]);
    h.source.stale = true;
    assert.equal(await h.source.deliver(0, 3, VALUES.slice(3)), undefined);
    assert.equal(h.detector.layerIds().length, 0);
  });

  test("the punctuator flushes idle layers' verdicts to the writer and forgets idle runs", async () => {
    const h = harness();
    await h.task.start();
    h.task.assignment([0]);
    await h.source.deliver(0, 0, [VALUES[0]!]);
    assert.equal(h.writer.transitions.length, 0);
    await h.task.punctuate(T0 + 1_000 + 10_000);
    assert.equal(h.writer.transitions.length, 0, "not idle yet");
    await h.task.punctuate(T0 + 1_000 + 60_001);
    assert.deepEqual(
      h.writer.transitions.map((t) => [t.unit, t.from, t.to]),
      [0, 1, 2, 3].map((u) => [u, "UNKNOWN", "ACTIVE"]),
    );
    assert.equal(h.detector.layerIds().length, 1);
    await h.task.punctuate(T0 + 1_000 + 600_001);
    assert.equal(h.detector.layerIds().length, 0, "the run was forgotten");
  });

  test("stop() waits for the batch in hand to be written and committed before stopping the source", async () => {
    const h = harness();
    await h.task.start();
    h.task.assignment([0]);
    let open!: () => void;
    h.writer.gate = new Promise((r) => {
      open = r;
    });
    const batch = h.source.deliver(0, 0, VALUES);
    await nextTick();
    let stopped = false;
    const stopping = h.task.stop().then(() => {
      stopped = true;
    });
    await nextTick();
    assert.equal(stopped, false);
    open();
    await stopping;
    await batch;
    assert.deepEqual(h.source.log.slice(-2), ["commit 0@6", "source stopped"]);
    assert.equal(await h.source.deliver(0, 6, VALUES), undefined, "nothing is processed after stop()");
  });

  test("on_invalid: skip drops rejected records; fail stops the task after committing what came before", async () => {
    const skip = harness({ onInvalid: "skip" });
    await skip.task.start();
    skip.task.assignment([0]);
    await skip.source.deliver(0, 0, [VALUES[0]!, Buffer.from("junk"), null]);
    assert.deepEqual(skip.writer.deadLetters, []);
    assert.deepEqual(skip.source.commits, [[0, 3n]]);
    assert.equal(sumOf(await skip.metrics(), "reluwatch_snapshots_total", { result: "invalid" }), 2);

    const fail = harness({ onInvalid: "fail" });
    await fail.task.start();
    fail.task.assignment([0]);
    assert.equal(
      await fail.source.deliver(0, 0, [VALUES[0]!, VALUES[1]!, Buffer.from("junk"), VALUES[2]!]),
      1n,
    );
    const err = await fail.task.failed;
    assert.ok(err instanceof RejectedRecordError);
    assert.equal(fail.task.rejection(), err);
    assert.equal(err.reason, "bad_magic");
    assert.deepEqual(err.at, { topic: TOPIC, partition: 0, offset: "2" });
    assert.deepEqual(fail.source.commits, [[0, 2n]]);
    assert.deepEqual(fail.writer.deadLetters, []);
  });

  test("a state store's offsets replace the lookback, and its checkpoint precedes every commit", async () => {
    const calls: string[] = [];
    const store: StateStore = {
      async restore(partitions) {
        calls.push(`restore ${partitions.join(",")}`);
        return new Map([[0, 4n]]);
      },
      prepareCheckpoint(partition, position) {
        calls.push(`checkpoint ${partition}@${position}`);
        return undefined;
      },
    };
    const h = harness({ store });
    h.source.committedOffsets.set(0, 5n);
    h.source.byTime.set(0, 0n);
    await h.task.start();
    h.task.assignment([0]);
    await h.source.deliver(0, 4, VALUES.slice(4));
    assert.deepEqual(h.source.seeks, [[0, 4n]]);
    assert.deepEqual(calls, ["restore 0", "checkpoint 0@6"]);
    assert.deepEqual(h.source.commits, [[0, 6n]]);
  });

  test("a group that never committed: lookback rebuilds up to the end offset with events suppressed; latest starts at the end", async () => {
    const lookback = harness();
    lookback.source.ends.set(0, 6n);
    lookback.source.byTime.set(0, 0n);
    await lookback.task.start();
    lookback.task.assignment([0]);
    await lookback.source.deliver(0, 0, VALUES);
    assert.ok(reference(SNAPS).flat().length > 0, "the records change verdicts");
    assert.deepEqual(lookback.writer.transitions, [], "history is not replayed live");
    assert.deepEqual(lookback.source.seeks, [[0, 0n]]);
    assert.deepEqual(
      lookback.source.commits,
      [[0, 6n]],
      "the history is done: a restart does not start over",
    );
    assert.notEqual(lookback.detector.summary("r", "fc"), undefined, "the windows were rebuilt");

    const latest = harness({ startFrom: "latest" });
    latest.source.ends.set(0, 6n);
    latest.source.byTime.set(0, 0n);
    await latest.task.start();
    latest.task.assignment([0]);
    await latest.source.deliver(0, 6, [VALUES[0]!]);
    assert.deepEqual(latest.source.seeks, [[0, 6n]]);
    assert.deepEqual(latest.source.commits, [[0, 7n]]);
  });

  test("revocation checkpoints the partition's layers before dropping them; stop checkpoints every owned partition", async () => {
    const calls: string[] = [];
    let h: ReturnType<typeof harness> | undefined;
    const store: StateStore = {
      async restore() {
        return new Map();
      },
      prepareCheckpoint(partition, position, layers, force) {
        const names = [...layers].map(
          (l) => `${l.layer}${h!.detector.checkpoint(l.run_id, l.layer) ? "" : "(gone)"}`,
        );
        calls.push(`${partition}@${position} [${names.join(",")}]${force ? " forced" : ""}`);
        return undefined;
      },
    };
    h = harness({ store });
    h.source.committedOffsets.set(0, 0n);
    await h.task.start();
    h.task.assignment([0]);
    await h.source.deliver(0, 0, VALUES.slice(0, 2));
    h.task.assignment([1]);
    assert.equal(h.detector.checkpoint("r", "fc"), undefined, "dropped after the checkpoint");
    await nextTick();
    await h.task.stop();
    assert.deepEqual(calls, ["0@2 [fc]", "0@2 [fc] forced", "1@0 [] forced"]);
  });
});

/** A state store that records its calls in the source's log; its checkpoints write there too. */
function loggingStore(log: string[], stored = new Map<number, bigint | undefined>()) {
  const store: StateStore & { restores: number } = {
    restores: 0,
    async restore(partitions) {
      store.restores++;
      return new Map(partitions.map((p) => [p, stored.get(p)]));
    },
    prepareCheckpoint(partition, position, _layers, force) {
      const tag = `checkpoint ${partition}@${position}${force ? " forced" : ""}`;
      return {
        partition,
        records: [{ key: tag, value: null }],
        write: async () => void log.push(tag),
      };
    },
  };
  return store;
}

/** A transaction that keeps what each commit held, or fails while `failures` lasts. */
class FakeTransactions implements TransactionalCommitter {
  readonly committed: CommitContent[] = [];
  readonly attempts: CommitContent[] = [];
  failures: Error[] = [];
  async commit(content: CommitContent): Promise<void> {
    this.attempts.push(content);
    const err = this.failures.shift();
    if (err) throw err;
    this.committed.push(content);
  }
}

describe("StreamTask commits", () => {
  test("cadence: several batches buffer their effects and share one write and one commit", async () => {
    let now = T0;
    const h = harness({ commitIntervalMs: 1_000, now: () => now });
    await h.task.start();
    h.task.assignment([0]);
    assert.equal(await h.source.deliver(0, 0, [VALUES[0]!]), 0n);
    assert.deepEqual(h.source.log, ["commit 0@1"], "the first batch commits at once");
    for (let i = 1; i < 3; i++) assert.equal(await h.source.deliver(0, i, [VALUES[i]!]), BigInt(i));
    assert.deepEqual(h.source.log, ["commit 0@1"], "nothing more written or committed within the interval");
    assert.deepEqual(h.writer.transitions, []);
    now += 1_000;
    assert.equal(await h.source.deliver(0, 3, VALUES.slice(3)), 5n);
    const expected = reference(SNAPS).flat();
    assert.ok(reference(SNAPS.slice(0, 1)).flat().length === 0 && expected.length > 0);
    assert.deepEqual(h.writer.transitions, expected, "every batch's events, in order");
    assert.deepEqual(h.source.log, ["commit 0@1", `write ${expected.length}+0`, "commit 0@6"]);
  });

  test("batches in hand apply one after another: a batch yields the event loop, not its turn", async () => {
    // Every read of the clock is 100 ms later: each record ends with a yield.
    let now = T0;
    const h = harness({ commitIntervalMs: 60_000, now: () => (now += 100) });
    await h.task.start();
    h.task.assignment([0, 1]);
    const beats: string[] = [];
    const deliver = (partition: number, values: Buffer[]) =>
      h.source.handler.batch(
        {
          topic: TOPIC,
          partition,
          encoding: { kind: "single-object" },
          records: values.map((value, i) => ({
            topic: TOPIC,
            partition,
            offset: String(i),
            key: null,
            value,
          })),
        },
        {
          isStale: () => false,
          heartbeat: async () => {
            beats.push(`p${partition}`);
            await nextTick();
          },
        },
      );
    const other = [0, 1, 2].map((i) => encodeSnapshot(snap("r", "fc2", 10 + 100 * i)));
    const [last0, last1] = await Promise.all([deliver(0, VALUES.slice(0, 3)), deliver(1, other)]);
    assert.equal(last0, 2n);
    assert.equal(last1, 2n);
    assert.deepEqual(beats, ["p0", "p0", "p0", "p1", "p1", "p1"], beats.join(" "));
  });

  test("buffered effects beyond the limit commit before the interval", async () => {
    const h = harness({ commitIntervalMs: 60_000, maxBufferedEffects: 1 });
    await h.task.start();
    h.task.assignment([0]);
    await h.source.deliver(0, 0, [VALUES[0]!, Buffer.from("junk")]);
    assert.deepEqual(h.source.log, ["write 0+1", "commit 0@2"]);
  });

  test("a commit is never ahead of its effects and state: write, checkpoint, then offsets, also while batches go on", async () => {
    let now = T0;
    const h = harness({ commitIntervalMs: 1_000, now: () => now, store: (log) => loggingStore(log) });
    const task = h.task;
    await task.start();
    task.assignment([0]);
    await h.source.deliver(0, 0, [VALUES[0]!]);
    assert.deepEqual(h.source.log, ["checkpoint 0@1", "commit 0@1"], "the first batch: state, then offset");
    let open!: () => void;
    h.writer.gate = new Promise((r) => {
      open = r;
    });
    await h.source.deliver(0, 1, [VALUES[1]!]);
    now += 1_000;
    const first = h.source.deliver(0, 2, VALUES.slice(2, 4));
    await nextTick();
    // The commit of 1..3 waits for its events; the batch after it is processed meanwhile.
    now += 500;
    assert.equal(await h.source.deliver(0, 4, VALUES.slice(4)), 5n);
    assert.deepEqual(h.source.commits, [[0, 1n]], "no offset before its events are acknowledged");
    open();
    await first;
    assert.deepEqual(h.source.log.slice(2), [
      `write ${reference(SNAPS).slice(0, 4).flat().length}+0`,
      "checkpoint 0@4",
      "commit 0@4",
    ]);
    await task.stop();
    assert.deepEqual(h.source.log.slice(5), [
      `write ${reference(SNAPS).slice(4).flat().length}+0`,
      "checkpoint 0@6 forced",
      "commit 0@6",
      "source stopped",
    ]);
    assert.deepEqual(h.writer.transitions, reference(SNAPS).flat());
  });

  test("revocation (at_least_once) writes the revoked partition's buffered effects, checkpoint and offset; the other partition waits for the cadence", async () => {
    let now = T0;
    const h = harness({ commitIntervalMs: 1_000, now: () => now });
    await h.task.start();
    h.task.assignment([0, 1]);
    await h.source.deliver(0, 0, VALUES);
    await h.source.deliver(1, 0, [encodeSnapshot(snap("r", "b", 10))]);
    h.task.assignment([1]);
    const expected = reference(SNAPS).flat();
    while (!h.source.log.includes("commit 0@6")) await nextTick();
    assert.deepEqual(h.source.log, [`write ${expected.length}+0`, "commit 0@6"]);
    now += 1_000;
    await h.source.deliver(1, 1, [encodeSnapshot(snap("r", "b", 110))]);
    const b = reference([snap("r", "b", 10), snap("r", "b", 110)]).flat().length;
    assert.deepEqual(h.source.log.slice(2), [`write ${b}+0`, "commit 1@2"], "partition 1 on the cadence");
  });

  test("exactly_once: one transaction holds a commit's events, dead letters, state and offsets; the source commits nothing itself", async () => {
    let now = T0;
    const tx = new FakeTransactions();
    const h = harness({
      commitIntervalMs: 1_000,
      now: () => now,
      transactions: tx,
      store: (log) => loggingStore(log),
    });
    await h.task.start();
    h.task.assignment([0]);
    await h.source.deliver(0, 0, [VALUES[0]!]);
    assert.equal(tx.committed.length, 1, "the first batch commits at once");
    await h.source.deliver(0, 1, [Buffer.from("junk"), VALUES[1]!]);
    now += 1_000;
    await h.source.deliver(0, 3, VALUES.slice(2));
    assert.equal(tx.committed.length, 2);
    const c = tx.committed[1]!;
    assert.equal(reference(SNAPS.slice(0, 1)).flat().length, 0);
    assert.deepEqual(c.transitions, reference(SNAPS).flat());
    assert.deepEqual(
      c.deadLetters.map((d) => d.source.offset),
      ["1"],
    );
    assert.deepEqual(
      c.state.map((x) => x.records[0]!.key),
      ["checkpoint 0@7"],
    );
    assert.deepEqual(c.offsets, [{ partition: 0, offset: 7n }]);
    assert.deepEqual(h.source.commits, []);
    assert.deepEqual(h.writer.transitions, [], "nothing outside the transaction");
  });

  test("exactly_once: a failed transaction drops the partition's layers and plans it again; the events come once, nothing is committed past the durable point", async () => {
    const tx = new FakeTransactions();
    tx.failures = [new Error("transaction aborted")];
    const store = loggingStore([]);
    const h = harness({ transactions: tx, store });
    const task = h.task;
    h.source.committedOffsets.set(0, 0n);
    h.source.byTime.set(0, 0n);
    await task.start();
    task.assignment([0]);
    assert.equal(
      await h.source.deliver(0, 0, VALUES.slice(0, 3)),
      undefined,
      "the batch's offsets are not resolved",
    );
    assert.equal(tx.attempts.length, 1);
    assert.deepEqual(tx.committed, []);
    assert.equal(h.detector.layerIds().length, 0, "the layers past the durable point are dropped");
    while (store.restores < 2) await nextTick();
    await nextTick();
    assert.deepEqual(h.source.seeks, [[0, 0n]], "moved back to the committed offset");
    assert.equal(
      sumOf(await h.metrics(), "reluwatch_commit_failures_total", { guarantee: "exactly_once" }),
      1,
    );
    // Fetched again from the seek: the same records give the same events, committed once.
    assert.equal(await h.source.deliver(0, 0, VALUES), 5n);
    const committed: CommitContent[] = tx.committed;
    assert.equal(committed.length, 1);
    assert.deepEqual(committed[0]!.transitions, reference(SNAPS).flat());
    assert.deepEqual(committed[0]!.offsets, [{ partition: 0, offset: 6n }]);
    assert.deepEqual(h.source.commits, []);
  });

  test("exactly_once: a revoked partition's uncommitted effects are dropped, not committed", async () => {
    let now = T0;
    const tx = new FakeTransactions();
    const h = harness({ commitIntervalMs: 1_000, now: () => now, transactions: tx });
    await h.task.start();
    h.task.assignment([0, 1]);
    await h.source.deliver(1, 0, [encodeSnapshot(snap("r", "b", 10))]);
    await h.source.deliver(0, 0, VALUES);
    assert.ok(reference(SNAPS).flat().length > 0);
    h.task.assignment([1]);
    now += 1_000;
    await h.task.stop();
    assert.equal(tx.attempts.length, 1, "nothing of partition 0 was ever sent");
    assert.deepEqual(tx.committed[0]!.transitions, []);
    assert.deepEqual(tx.committed[0]!.offsets, [{ partition: 1, offset: 1n }]);
  });

  test("exactly_once: a fenced producer stops the task", async () => {
    const tx = new FakeTransactions();
    const fenced = new ProducerFencedError("fenced");
    tx.failures = [fenced];
    const h = harness({ transactions: tx });
    await h.task.start();
    h.task.assignment([0]);
    await h.source.deliver(0, 0, VALUES);
    assert.equal(await h.task.failed, fenced);
    assert.equal(await h.source.deliver(0, 6, VALUES), undefined, "nothing is processed after it");
  });

  test("a commit refused for a reason only the operator can fix ends the task instead of planning again", async () => {
    const h = harness();
    const refused = Object.assign(
      new Error("The request attempted to perform an operation on an invalid topic"),
      {
        name: "KafkaJSProtocolError",
        type: "INVALID_TOPIC_EXCEPTION",
      },
    );
    h.writer.gate = Promise.reject(refused);
    h.writer.gate.catch(() => {});
    await h.task.start();
    h.task.assignment([0]);
    await h.source.deliver(0, 0, VALUES);
    assert.equal(await h.task.failed, refused);
    assert.deepEqual(h.source.commits, []);
    assert.equal(h.source.committedCalls, 1, "not planned again");
  });

  test("at_least_once: a failed write plans the partition again, and the events come again", async () => {
    const h = harness();
    h.writer.gate = Promise.reject(new Error("broker went away"));
    h.writer.gate.catch(() => {});
    h.source.committedOffsets.set(0, 0n);
    await h.task.start();
    h.task.assignment([0]);
    assert.equal(await h.source.deliver(0, 0, VALUES), undefined);
    assert.deepEqual(h.source.commits, []);
    while (h.source.committedCalls < 2) await nextTick();
    await nextTick();
    h.writer.gate = undefined;
    assert.equal(await h.source.deliver(0, 0, VALUES), 5n);
    assert.deepEqual(h.writer.transitions, reference(SNAPS).flat());
    assert.deepEqual(h.source.commits, [[0, 6n]]);
    assert.equal(
      sumOf(await h.metrics(), "reluwatch_commit_failures_total", { guarantee: "at_least_once" }),
      1,
    );
  });
});
