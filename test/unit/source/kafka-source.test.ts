/**
 * The Kafka adapter over a fake kafkajs client (the calls it makes, the events
 * it listens to): assignments from GROUP_JOIN, batches handed over with the
 * fetch position resolved to what the handler dealt with, the group's offsets,
 * and a crash kafkajs does not restart after. The real client is covered by
 * the integration tests.
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import type { EachBatchPayload, Kafka } from "kafkajs";
import { pino } from "pino";
import { KafkaSnapshotSource, PARTITIONS_IN_FLIGHT } from "../../../src/source/kafka-source.js";
import type { RecordBatch, SourceHandler } from "../../../src/source/source.js";

type Listener = (e: { payload: Record<string, unknown> }) => void;

function fakeKafka() {
  const calls: string[] = [];
  const listeners = new Map<string, Listener[]>();
  let runConfig: {
    eachBatch: (p: EachBatchPayload) => Promise<void>;
    partitionsConsumedConcurrently: number;
  };
  const consumer = {
    events: { CRASH: "crash", REBALANCING: "rebalancing", GROUP_JOIN: "group_join" },
    on(event: string, l: Listener) {
      listeners.set(event, [...(listeners.get(event) ?? []), l]);
    },
    connect: async () => void calls.push("consumer.connect"),
    disconnect: async () => void calls.push("consumer.disconnect"),
    subscribe: async (s: { topic: string }) => void calls.push(`subscribe ${s.topic}`),
    run: async (c: typeof runConfig) => {
      runConfig = c;
    },
    seek: (s: { partition: number; offset: string }) => void calls.push(`seek ${s.partition}@${s.offset}`),
    commitOffsets: async (list: Array<{ partition: number; offset: string }>) =>
      void calls.push(...list.map((o) => `commit ${o.partition}@${o.offset}`)),
  };
  const admin = {
    connect: async () => void calls.push("admin.connect"),
    disconnect: async () => void calls.push("admin.disconnect"),
    fetchOffsets: async () => [
      {
        topic: "t",
        partitions: [
          { partition: 0, offset: "42" },
          { partition: 1, offset: "-1" },
        ],
      },
    ],
    fetchTopicOffsetsByTimestamp: async () => [
      { partition: 0, offset: "7" },
      { partition: 1, offset: "-1" },
    ],
    fetchTopicOffsets: async () => [
      { partition: 0, offset: "50", high: "50", low: "3" },
      { partition: 1, offset: "9", high: "9", low: "0" },
    ],
  };
  const kafka = { consumer: () => consumer, admin: () => admin } as unknown as Kafka;
  const emit = (event: string, payload: Record<string, unknown>) => {
    for (const l of listeners.get(event) ?? []) l({ payload });
  };
  return { kafka, calls, emit, run: () => runConfig };
}

function handlerReturning(last: bigint | undefined) {
  const assignments: number[][] = [];
  const batches: RecordBatch[] = [];
  const handler: SourceHandler = {
    assignment: (p) => void assignments.push([...p]),
    batch: async (b) => {
      batches.push(b);
      return last;
    },
  };
  return { handler, assignments, batches };
}

const log = pino({ level: "silent" });

describe("KafkaSnapshotSource", () => {
  test("assignments come from GROUP_JOIN; batches are handed over and resolved up to what the handler dealt with", async () => {
    const k = fakeKafka();
    const source = new KafkaSnapshotSource(k.kafka, { topic: "t", group: "g", log });
    const h = handlerReturning(11n);
    assert.match(source.notReadyReason() ?? "", /joining consumer group g/);
    await source.start(h.handler);
    assert.equal(k.run().partitionsConsumedConcurrently, PARTITIONS_IN_FLIGHT);
    k.emit("group_join", { memberAssignment: { t: [0, 2] } });
    assert.deepEqual(h.assignments, [[0, 2]]);
    assert.equal(source.notReadyReason(), undefined);

    const resolved: string[] = [];
    let beats = 0;
    await k.run().eachBatch({
      batch: {
        topic: "t",
        partition: 2,
        highWatermark: "20",
        messages: [
          { offset: "10", key: Buffer.from("k"), value: Buffer.from("a"), headers: {} },
          { offset: "11", key: null, value: null, headers: { h: "v" } },
        ],
      },
      resolveOffset: (o: string) => void resolved.push(o),
      heartbeat: async () => {
        beats++;
      },
      isRunning: () => true,
      isStale: () => false,
    } as unknown as EachBatchPayload);
    const [b] = h.batches;
    assert.equal(b!.partition, 2);
    assert.equal(b!.highWatermark, 20n);
    assert.deepEqual(b!.encoding, { kind: "single-object" });
    assert.deepEqual(
      b!.records.map((r) => [r.offset, r.value?.toString() ?? null, r.headers]),
      [
        ["10", "a", {}],
        ["11", null, { h: "v" }],
      ],
    );
    assert.deepEqual(resolved, ["11"]);
    assert.equal(beats, 1);
    k.emit("rebalancing", {});
    assert.match(source.notReadyReason() ?? "", /joining/);
  });

  test("a batch the handler dealt with none of is not resolved, so it is fetched again", async () => {
    const k = fakeKafka();
    const source = new KafkaSnapshotSource(k.kafka, { topic: "t", group: "g", log });
    await source.start(handlerReturning(undefined).handler);
    const resolved: string[] = [];
    await k.run().eachBatch({
      batch: {
        topic: "t",
        partition: 0,
        highWatermark: "1",
        messages: [{ offset: "0", key: null, value: null }],
      },
      resolveOffset: (o: string) => void resolved.push(o),
      heartbeat: async () => {},
      isRunning: () => false,
      isStale: () => false,
    } as unknown as EachBatchPayload);
    assert.deepEqual(resolved, []);
  });

  test("offsets: end offsets are the high watermarks; committed and by time map Kafka's -1 to none; seek and commit reach the consumer", async () => {
    const k = fakeKafka();
    const source = new KafkaSnapshotSource(k.kafka, { topic: "t", group: "g", log });
    const offsets = source.offsets;
    assert.deepEqual(
      await offsets.committed([0, 1, 5]),
      new Map([
        [0, 42n],
        [1, undefined],
        [5, undefined],
      ]),
    );
    assert.deepEqual(
      await offsets.offsetsAt(1),
      new Map([
        [0, 7n],
        [1, undefined],
      ]),
    );
    assert.deepEqual(await offsets.endOffsets([1]), new Map([[1, 9n]]));
    offsets.seek(0, 7n);
    await offsets.commit(0, 43n);
    assert.deepEqual(k.calls.slice(-2), ["seek 0@7", "commit 0@43"]);
  });

  test("a crash kafkajs does not restart after resolves failed; one it restarts after does not", async () => {
    const k = fakeKafka();
    const source = new KafkaSnapshotSource(k.kafka, { topic: "t", group: "g", log });
    const seen: Error[] = [];
    void source.failed.then((e) => void seen.push(e));
    k.emit("crash", { error: new Error("retrying"), restart: true });
    await new Promise((r) => setImmediate(r));
    assert.equal(seen.length, 0);
    k.emit("crash", { error: new Error("not authorized"), restart: false });
    await new Promise((r) => setImmediate(r));
    assert.deepEqual(
      seen.map((e) => e.message),
      ["not authorized"],
    );
    assert.match(source.notReadyReason() ?? "", /consumer stopped: not authorized/);
    await source.stop();
    assert.deepEqual(k.calls.slice(-2), ["consumer.disconnect", "admin.disconnect"]);
  });
});
