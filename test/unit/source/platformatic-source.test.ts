/**
 * The @platformatic/kafka adapter over a fake of the client's Consumer (the
 * calls it makes, the events it listens to): assignments from every group
 * join, where newly assigned partitions start, batches handed over one per
 * partition at a time with the next fetch starting where the handler said,
 * staleness after a seek or a lost partition, the group's offsets, and which
 * errors end the source. The real client is covered by the integration tests
 * (consume, poison, state restart), which run with both clients.
 */
import assert from "node:assert/strict";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, test } from "node:test";
import { pino } from "pino";
import type { KafkaSettings } from "../../../src/config/index.js";
import { PARTITIONS_IN_FLIGHT } from "../../../src/source/kafka-source.js";
import { platformaticConnectionFrom } from "../../../src/source/platformatic-client.js";
import type { FetchedPartition, Fetcher, FetchRequest } from "../../../src/source/platformatic-fetch.js";
import {
  type PlatformaticConsumer,
  PlatformaticSnapshotSource,
} from "../../../src/source/platformatic-source.js";
import type { BatchControl, RecordBatch, SourceHandler } from "../../../src/source/source.js";

const TOPIC = "t";
const TOPIC_ID = "topic-uuid";

interface FetchCall {
  /** Partition → offset asked for. */
  asked: Map<number, bigint>;
  maxWaitTime: number;
  respond(partitions: Array<Record<string, unknown>>): void;
  fail(err: Error): void;
}

interface RecordSpec {
  offset: number;
  value?: Buffer | null;
  key?: Buffer | null;
  headers?: Array<[Buffer, Buffer]>;
}

/** One record batch as the client parses it off the wire. */
function wireBatch(records: RecordSpec[], attributes = 0) {
  const first = records[0]!.offset;
  return {
    firstOffset: BigInt(first),
    lastOffsetDelta: records.at(-1)!.offset - first,
    partitionLeaderEpoch: 7,
    attributes,
    records: records.map((r) => ({
      offsetDelta: r.offset - first,
      key: r.key ?? null,
      value: r.value === undefined ? Buffer.from(`v${r.offset}`) : r.value,
      headers: r.headers ?? [],
    })),
  };
}

function partitionAnswer(partition: number, batches: unknown[], highWatermark = 100n) {
  return {
    partitionIndex: partition,
    errorCode: 0,
    highWatermark,
    lastStableOffset: highWatermark,
    logStartOffset: 0n,
    records: batches,
  };
}

function fakeConsumer(
  opts: { committed?: bigint[]; logStart?: bigint[]; partitions?: number; active?: () => boolean } = {},
) {
  const listeners = new Map<string, Array<(payload: unknown) => void>>();
  const calls: string[] = [];
  const fetches: FetchCall[] = [];
  const waiting: Array<(c: FetchCall) => void> = [];
  const partitionCount = opts.partitions ?? 4;
  const committed = opts.committed ?? [];
  const logStart = opts.logStart ?? [];
  let joinError: Error | undefined;
  const consumer = {
    on(event: string, l: (payload: unknown) => void) {
      listeners.set(event, [...(listeners.get(event) ?? []), l]);
      return consumer;
    },
    topics: { track: (t: string) => void calls.push(`track ${t}`) },
    assignments: null,
    isActive: () => opts.active?.() ?? true,
    joinGroup: async () => {
      calls.push("joinGroup");
      if (joinError) throw joinError;
      return "member";
    },
    metadata: async () => ({
      topics: new Map([
        [
          TOPIC,
          {
            id: TOPIC_ID,
            partitionsCount: partitionCount,
            partitions: Array.from({ length: partitionCount }, () => ({ leader: 1 })),
          },
        ],
      ]),
    }),
    fetch: (o: {
      maxWaitTime: number;
      topics: Array<{ topicId: string; partitions: Array<{ partition: number; fetchOffset: bigint }> }>;
    }) =>
      new Promise((resolve, reject) => {
        assert.equal(o.topics[0]!.topicId, TOPIC_ID);
        const call: FetchCall = {
          asked: new Map(o.topics[0]!.partitions.map((p) => [p.partition, p.fetchOffset])),
          maxWaitTime: o.maxWaitTime,
          respond: (partitions) => resolve({ responses: [{ topicId: TOPIC_ID, partitions }] }),
          fail: reject,
        };
        const w = waiting.shift();
        if (w) w(call);
        else fetches.push(call);
      }),
    commit: async (o: { offsets: Array<{ partition: number; offset: bigint; leaderEpoch: number }> }) =>
      void calls.push(...o.offsets.map((x) => `commit ${x.partition}@${x.offset} epoch ${x.leaderEpoch}`)),
    listOffsets: async (o: { partitions?: Record<string, number[]>; timestamp?: bigint }) => {
      calls.push(`listOffsets ${o.timestamp} ${JSON.stringify(o.partitions?.[TOPIC] ?? "all")}`);
      const at = Array.from({ length: partitionCount }, (_, p) =>
        o.timestamp === -2n
          ? (logStart[p] ?? 0n)
          : o.timestamp === -1n
            ? 50n + BigInt(p)
            : p === 0
              ? 7n
              : -1n,
      );
      return new Map([[TOPIC, at]]);
    },
    listCommittedOffsets: async (o: { topics: Array<{ partitions: number[] }> }) => {
      const out: bigint[] = [];
      for (const p of o.topics[0]!.partitions) out[p] = committed[p] ?? -1n;
      return new Map([[TOPIC, out]]);
    },
    close: async () => void calls.push("close"),
  };
  return {
    consumer: consumer as unknown as PlatformaticConsumer,
    calls,
    emit(event: string, payload: unknown) {
      for (const l of listeners.get(event) ?? []) l(payload);
    },
    join(partitions: number[]) {
      this.emit("consumer:group:join", { assignments: [{ topic: TOPIC, partitions }] });
    },
    failJoins(err: Error | undefined) {
      joinError = err;
    },
    /** The next fetch the source makes. */
    nextFetch(): Promise<FetchCall> {
      const ready = fetches.shift();
      if (ready) return Promise.resolve(ready);
      return new Promise((resolve) => waiting.push(resolve));
    },
    pendingFetches: () => fetches.length,
  };
}

/** A handler whose batches wait until the test settles them. */
function controlledHandler() {
  const assignments: number[][] = [];
  const batches: Array<{
    batch: RecordBatch;
    control: BatchControl;
    resolve: (last: bigint | undefined) => void;
    reject: (err: Error) => void;
  }> = [];
  const arrivals: Array<() => void> = [];
  const handler: SourceHandler = {
    assignment: (p) => void assignments.push([...p]),
    batch: (batch, control) =>
      new Promise((resolve, reject) => {
        batches.push({ batch, control, resolve, reject });
        arrivals.shift()?.();
      }),
  };
  return {
    handler,
    assignments,
    batches,
    /** Resolves once `n` batches in all have arrived. */
    async arrived(n: number) {
      while (batches.length < n) await new Promise<void>((r) => arrivals.push(r));
      return batches[n - 1]!;
    },
  };
}

const log = pino({ level: "silent" });
const settle = async () => {
  for (let i = 0; i < 5; i++) await new Promise((r) => setImmediate(r));
};

/** The next fetch that asks for `partition`, answering the polls before it with nothing. */
async function fetchOf(k: ReturnType<typeof fakeConsumer>, partition: number): Promise<FetchCall> {
  for (;;) {
    const call = await k.nextFetch();
    if (call.asked.has(partition)) return call;
    call.respond([]);
  }
}

function source(k: ReturnType<typeof fakeConsumer>) {
  return new PlatformaticSnapshotSource(k.consumer, {
    topic: TOPIC,
    group: "g",
    brokers: ["b:9092"],
    log,
    initialBackoffMs: 1,
    maxBackoffMs: 1,
  });
}

describe("PlatformaticSnapshotSource", () => {
  test("every join reports the full assignment; new partitions start at the committed offset, else at the log start", async () => {
    const k = fakeConsumer({ committed: [42n], logStart: [0n, 0n, 3n] });
    const s = source(k);
    const h = controlledHandler();
    assert.match(s.notReadyReason() ?? "", /joining consumer group g on topic t/);
    await s.start(h.handler);
    assert.deepEqual(k.calls.slice(0, 2), ["track t", "joinGroup"]);
    k.join([2, 0]);
    assert.deepEqual(h.assignments, [[0, 2]]);
    assert.equal(s.notReadyReason(), undefined);
    const call = await k.nextFetch();
    assert.deepEqual(
      call.asked,
      new Map([
        [0, 42n],
        [2, 3n],
      ]),
    );
    assert.ok(
      k.calls.includes("listOffsets -2 [2]"),
      "the log start is asked for the never-committed partition only",
    );
    k.join([0, 1, 2]);
    assert.deepEqual(h.assignments.at(-1), [0, 1, 2]);
    await settle();
    await s.stop();
    assert.equal(k.calls.at(-1), "close");
  });

  test("a batch holds the records from the offset asked for, values as the client parsed them, and the high watermark", async () => {
    const k = fakeConsumer({ committed: [11n] });
    const s = source(k);
    const h = controlledHandler();
    await s.start(h.handler);
    k.join([0]);
    const call = await k.nextFetch();
    const value = Buffer.from("the snapshot");
    // Kafka answers with the whole wire batch holding offset 11: 10 is below what was asked.
    call.respond([
      partitionAnswer(
        0,
        [
          wireBatch([
            { offset: 10 },
            { offset: 11, value, key: Buffer.from("k"), headers: [[Buffer.from("h"), Buffer.from("v")]] },
          ]),
          wireBatch([{ offset: 12, value: null }]),
        ],
        20n,
      ),
    ]);
    const { batch } = await h.arrived(1);
    assert.equal(batch.partition, 0);
    assert.equal(batch.highWatermark, 20n);
    assert.deepEqual(batch.encoding, { kind: "single-object" });
    assert.deepEqual(
      batch.records.map((r) => [r.offset, r.key?.toString() ?? null, r.headers?.h?.toString()]),
      [
        ["11", "k", "v"],
        ["12", null, undefined],
      ],
    );
    assert.equal(batch.records[0]!.value, value, "the client's buffer, not a copy");
    assert.equal(batch.records[1]!.value, null);
    await s.stop();
  });

  test("a partition's next batch is fetched only after the handler resolved, from the offset after the one it resolved with", async () => {
    const k = fakeConsumer({ committed: [0n, 0n] });
    const s = source(k);
    const h = controlledHandler();
    await s.start(h.handler);
    k.join([0, 1]);
    (await k.nextFetch()).respond([
      partitionAnswer(0, [wireBatch([{ offset: 0 }, { offset: 1 }, { offset: 2 }])]),
    ]);
    const first = await h.arrived(1);
    // Partition 1 had nothing; it is polled again, partition 0 is not while its batch is in the handler.
    const poll = await k.nextFetch();
    assert.deepEqual([...poll.asked.keys()], [1]);
    assert.ok(poll.maxWaitTime < 100, "short polls while a batch is in the handler");
    poll.respond([]);
    const poll2 = await k.nextFetch();
    assert.deepEqual([...poll2.asked.keys()], [1]);
    // The handler dealt with offsets 0 and 1 only: 2 comes again.
    first.resolve(1n);
    poll2.respond([]);
    const next = await fetchOf(k, 0);
    assert.equal(next.asked.get(0), 2n);
    next.respond([partitionAnswer(0, [wireBatch([{ offset: 2 }])])]);
    const second = await h.arrived(2);
    assert.deepEqual(
      second.batch.records.map((r) => r.offset),
      ["2"],
    );
    // Resolved with undefined: the same batch again.
    second.resolve(undefined);
    const again = await fetchOf(k, 0);
    assert.equal(again.asked.get(0), 2n);
    await s.stop();
  });

  test(`at most ${PARTITIONS_IN_FLIGHT} partitions are fetched or in the handler at once`, async () => {
    const k = fakeConsumer({ partitions: 6, committed: [0n, 0n, 0n, 0n, 0n, 0n] });
    const s = source(k);
    const h = controlledHandler();
    await s.start(h.handler);
    k.join([0, 1, 2, 3, 4, 5]);
    const call = await k.nextFetch();
    assert.equal(call.asked.size, PARTITIONS_IN_FLIGHT);
    call.respond([...call.asked.keys()].map((p) => partitionAnswer(p, [wireBatch([{ offset: 0 }])])));
    await h.arrived(PARTITIONS_IN_FLIGHT);
    await settle();
    assert.equal(k.pendingFetches(), 0, "no fetch while the cap is reached");
    h.batches[0]!.resolve(0n);
    const more = await k.nextFetch();
    assert.equal(more.asked.size, 1);
    await s.stop();
  });

  test("partitions with records left are fetched before caught-up ones, whose fetch alone would be held for maxWaitTime", async () => {
    const k = fakeConsumer({ partitions: 6, committed: [0n, 0n, 0n, 0n, 0n, 0n] });
    const s = source(k);
    const h = controlledHandler();
    await s.start(h.handler);
    k.join([0, 1, 2, 3, 4, 5]);
    const first = await k.nextFetch();
    assert.equal(first.asked.size, PARTITIONS_IN_FLIGHT);
    // Everything it asked for is at the end of its log.
    first.respond([...first.asked.keys()].map((p) => partitionAnswer(p, [], 0n)));
    const unasked = [0, 1, 2, 3, 4, 5].filter((p) => !first.asked.has(p));
    const next = await k.nextFetch();
    for (const p of unasked)
      assert.ok(next.asked.has(p), `partition ${p}, never fetched, is in the next fetch`);
    await s.stop();
  });

  test("with a backlog fetcher: it fetches from an assignment or a seek until the answers reach the high watermark, the consumer after", async () => {
    const k = fakeConsumer({ committed: [0n, 0n] });
    const requests: Array<{ request: FetchRequest; respond: (answer: FetchedPartition[]) => void }> = [];
    const arrivals: Array<() => void> = [];
    const backlog: Fetcher & { opened: number; closed: number } = {
      opened: 0,
      closed: 0,
      open() {
        this.opened++;
      },
      fetch: (request) =>
        new Promise((respond) => {
          requests.push({ request, respond });
          arrivals.shift()?.();
        }),
      async close() {
        this.closed++;
      },
    };
    const nextBacklogFetch = async () => {
      while (requests.length === 0) await new Promise<void>((r) => arrivals.push(r));
      return requests.shift()!;
    };
    const answer = (
      partition: number,
      from: number,
      to: number,
      highWatermark: number,
    ): FetchedPartition => ({
      partition,
      highWatermark: BigInt(highWatermark),
      leaderEpoch: 7,
      end: BigInt(to),
      records: Array.from({ length: to - from }, (_, i) => ({
        topic: TOPIC,
        partition,
        offset: String(from + i),
        key: null,
        value: Buffer.from(`v${from + i}`),
      })),
    });
    const s = new PlatformaticSnapshotSource(k.consumer, {
      topic: TOPIC,
      group: "g",
      brokers: ["b:9092"],
      log,
      backlogFetcher: backlog,
      initialBackoffMs: 1,
      maxBackoffMs: 1,
    });
    const h = controlledHandler();
    await s.start(h.handler);
    assert.equal(backlog.opened, 1, "opened with the source, so a thread boots while the group is joined");
    k.join([0, 1]);
    /** Partition → offset a request of the backlog fetcher asks for. */
    const askedOf = (request: FetchRequest) =>
      new Map(request.partitions.map((p) => [p.partition, p.fetchOffset]));
    // Nothing answered yet: a partition taken over may hold a backlog, so the backlog fetcher goes first.
    const first = await nextBacklogFetch();
    assert.deepEqual(
      askedOf(first.request),
      new Map([
        [0, 0n],
        [1, 0n],
      ]),
    );
    // Partition 0 got 3 of the 10 records its log holds; partition 1 all of its 2.
    first.respond([answer(0, 0, 3, 10), answer(1, 0, 2, 2)]);
    await h.arrived(2);
    h.batches[0]!.resolve(2n);
    h.batches[1]!.resolve(1n);
    const second = await nextBacklogFetch();
    assert.equal(k.pendingFetches(), 0, "the consumer did not fetch while partition 0 was behind");
    assert.deepEqual(
      askedOf(second.request),
      new Map([
        [0, 3n],
        [1, 2n],
      ]),
    );
    second.respond([answer(0, 3, 10, 10), answer(1, 2, 2, 2)]);
    await h.arrived(3);
    h.batches[2]!.resolve(9n);
    // Caught up everywhere: the consumer fetches, from where the backlog fetcher's batches ended.
    const third = await fetchOf(k, 0);
    assert.equal(third.asked.get(0), 10n);
    assert.equal(requests.length, 0);
    // A backlog that forms later stays with the consumer: the broker holds 50 now, and sent up to 12.
    third.respond([partitionAnswer(0, [wireBatch([{ offset: 10 }, { offset: 11 }])], 50n)]);
    const batch = await h.arrived(4);
    assert.deepEqual(
      batch.batch.records.map((r) => r.offset),
      ["10", "11"],
    );
    batch.resolve(11n);
    const fourth = await fetchOf(k, 0);
    assert.equal(fourth.asked.get(0), 12n);
    assert.equal(requests.length, 0);
    // A seek (a restore's replay) makes the partition catch up again: the backlog fetcher takes over.
    s.offsets.seek(0, 5n);
    fourth.respond([]);
    let fifth = await nextBacklogFetch();
    while (!fifth.request.partitions.some((p) => p.partition === 0)) {
      fifth.respond([]);
      fifth = await nextBacklogFetch();
    }
    assert.equal(askedOf(fifth.request).get(0), 5n);
    await s.stop();
    assert.equal(backlog.closed, 1);
  });

  test("backlogPartitionsInFlight caps partitions while the backlog fetcher fetches, partitionsInFlight after", async () => {
    const k = fakeConsumer({ partitions: 6, committed: [0n, 0n, 0n, 0n, 0n, 0n] });
    const asked: number[][] = [];
    const backlog: Fetcher = {
      open() {},
      // Every partition asked for is at the end of its log.
      fetch: async (request) => {
        asked.push(request.partitions.map((p) => p.partition));
        return request.partitions.map((p) => ({
          partition: p.partition,
          highWatermark: p.fetchOffset,
          leaderEpoch: undefined,
          end: p.fetchOffset,
          records: [],
        }));
      },
      async close() {},
    };
    const s = new PlatformaticSnapshotSource(k.consumer, {
      topic: TOPIC,
      group: "g",
      brokers: ["b:9092"],
      log,
      backlogFetcher: backlog,
      backlogPartitionsInFlight: 6,
      initialBackoffMs: 1,
      maxBackoffMs: 1,
    });
    await s.start(controlledHandler().handler);
    k.join([0, 1, 2, 3, 4, 5]);
    const live = await k.nextFetch();
    assert.deepEqual(asked, [[0, 1, 2, 3, 4, 5]], "one fetch of every partition while catching up");
    assert.equal(live.asked.size, PARTITIONS_IN_FLIGHT);
    await s.stop();
  });

  test("a seek makes the batch in hand stale and the next fetch starts at the sought offset; a fetch in flight is dropped", async () => {
    const k = fakeConsumer({ committed: [5n] });
    const s = source(k);
    const h = controlledHandler();
    await s.start(h.handler);
    k.join([0]);
    (await k.nextFetch()).respond([partitionAnswer(0, [wireBatch([{ offset: 5 }, { offset: 6 }])])]);
    const b = await h.arrived(1);
    assert.equal(b.control.isStale(), false);
    s.offsets.seek(0, 2n);
    assert.equal(b.control.isStale(), true);
    b.resolve(6n); // a stale batch's result does not move the position
    const call = await k.nextFetch();
    assert.equal(call.asked.get(0), 2n);
    s.offsets.seek(0, 1n);
    call.respond([partitionAnswer(0, [wireBatch([{ offset: 2 }])])]);
    const refetch = await k.nextFetch();
    assert.equal(refetch.asked.get(0), 1n, "the answer for offset 2 was dropped");
    assert.equal(h.batches.length, 1);
    await s.stop();
  });

  test("a partition lost in a rebalance makes its batch stale; assigned again, it starts over from the committed offset", async () => {
    const k = fakeConsumer({ committed: [3n, 0n] });
    const s = source(k);
    const h = controlledHandler();
    await s.start(h.handler);
    k.join([0, 1]);
    (await k.nextFetch()).respond([partitionAnswer(0, [wireBatch([{ offset: 3 }])])]);
    const b = await h.arrived(1);
    k.join([1]);
    assert.deepEqual(h.assignments, [[0, 1], [1]]);
    assert.equal(b.control.isStale(), true);
    await assert.rejects(s.offsets.commit(0, 4n), /no longer assigned/);
    b.resolve(3n);
    k.join([0, 1]);
    const call = await fetchOf(k, 0);
    assert.equal(call.asked.get(0), 3n);
    await s.stop();
  });

  test("a batch the handler failed on resumes from the group's committed offset; stop() makes the batch in hand stale", async () => {
    const k = fakeConsumer({ committed: [8n] });
    const s = source(k);
    const h = controlledHandler();
    await s.start(h.handler);
    k.join([0]);
    (await k.nextFetch()).respond([partitionAnswer(0, [wireBatch([{ offset: 8 }])])]);
    (await h.arrived(1)).resolve(8n);
    (await fetchOf(k, 0)).respond([partitionAnswer(0, [wireBatch([{ offset: 9 }, { offset: 10 }])])]);
    (await h.arrived(2)).reject(new Error("commit failed"));
    assert.equal((await fetchOf(k, 0)).asked.get(0), 8n);
    const stopping = s.stop();
    assert.equal(h.batches[1]!.control.isStale(), true);
    await stopping;
  });

  test("a batch of transaction markers only is stepped over; a position retention deleted moves to the log start", async () => {
    const k = fakeConsumer({ committed: [4n] });
    const s = source(k);
    const h = controlledHandler();
    await s.start(h.handler);
    k.join([0]);
    (await k.nextFetch()).respond([
      partitionAnswer(0, [wireBatch([{ offset: 4 }, { offset: 5 }], 0b10_0000)]),
    ]);
    const next = await k.nextFetch();
    assert.equal(next.asked.get(0), 6n);
    const outOfRange = Object.assign(new Error("out of range"), {
      response: {
        responses: [
          {
            topicId: TOPIC_ID,
            partitions: [
              { ...partitionAnswer(0, []), errorCode: 1, logStartOffset: 40n, highWatermark: 90n },
            ],
          },
        ],
      },
    });
    next.fail(outOfRange);
    const moved = await k.nextFetch();
    assert.equal(moved.asked.get(0), 40n);
    assert.equal(h.batches.length, 0);
    await s.stop();
  });

  test("offsets: committed and by time map Kafka's -1 to none; end offsets per partition; commits carry the leader epoch", async () => {
    const k = fakeConsumer({ committed: [42n] });
    const s = source(k);
    const h = controlledHandler();
    assert.deepEqual(
      await s.offsets.committed([0, 1]),
      new Map([
        [0, 42n],
        [1, undefined],
      ]),
    );
    const at = await s.offsets.offsetsAt(1_000);
    assert.equal(at.get(0), 7n);
    assert.equal(at.get(1), undefined);
    assert.deepEqual(
      await s.offsets.endOffsets([1, 3]),
      new Map([
        [1, 51n],
        [3, 53n],
      ]),
    );
    await s.start(h.handler);
    k.join([0]);
    (await k.nextFetch()).respond([partitionAnswer(0, [wireBatch([{ offset: 42 }])])]);
    (await h.arrived(1)).resolve(42n);
    await s.offsets.commit(0, 43n);
    assert.ok(k.calls.includes("commit 0@43 epoch 7"));
    await s.stop();
  });

  test("refused credentials end the source with KAFKA_AUTH_FAILED; an unreachable broker is waited out", async () => {
    const k = fakeConsumer({ committed: [0n] });
    const s = source(k);
    const h = controlledHandler();
    const seen: Error[] = [];
    void s.failed.then((e) => void seen.push(e));
    await s.start(h.handler);
    k.join([0]);
    const network = Object.assign(new Error("Connection to b:9092 failed."), {
      code: "PLT_KFK_NETWORK",
      cause: Object.assign(new Error("connect ECONNREFUSED"), { code: "ECONNREFUSED" }),
    });
    (await k.nextFetch()).fail(network);
    const retried = await k.nextFetch();
    await settle();
    assert.equal(seen.length, 0);
    assert.equal(retried.asked.get(0), 0n);
    const auth = Object.assign(new Error("SASL authentication failed."), { code: "PLT_KFK_AUTHENTICATION" });
    retried.fail(auth);
    await settle();
    assert.equal(seen.length, 1);
    assert.equal((seen[0] as { code?: string }).code, "KAFKA_AUTH_FAILED");
    assert.match(seen[0]!.message, /refused the credentials/);
    assert.match(s.notReadyReason() ?? "", /consumer stopped: Kafka at b:9092 refused the credentials/);
    await s.stop();
  });

  test("a rejoin the client gave up on is tried again; one refused for authorization ends the source", async () => {
    const k = fakeConsumer();
    const s = source(k);
    const seen: Error[] = [];
    void s.failed.then((e) => void seen.push(e));
    await s.start(controlledHandler().handler);
    k.join([]);
    const joins = () => k.calls.filter((c) => c === "joinGroup").length;
    k.emit("error", Object.assign(new Error("timed out"), { code: "PLT_KFK_TIMEOUT" }));
    assert.match(s.notReadyReason() ?? "", /joining/);
    while (joins() < 2) await settle();
    assert.equal(seen.length, 0);
    k.emit(
      "error",
      Object.assign(new Error("denied"), { code: "PLT_KFK_PROTOCOL", apiId: "GROUP_AUTHORIZATION_FAILED" }),
    );
    await settle();
    assert.equal((seen[0] as { code?: string }).code, "KAFKA_NOT_AUTHORIZED");
    await s.stop();
  });
});

describe("platformaticConnectionFrom", () => {
  const base: KafkaSettings = {
    brokers: ["k1:9093", "k2:9093"],
    client_id: "rw",
    ssl: false,
    ssl_reject_unauthorized: true,
  };

  test("brokers and client id pass through; no TLS or SASL unless set", () => {
    const c = platformaticConnectionFrom(base);
    assert.deepEqual(c.bootstrapBrokers, ["k1:9093", "k2:9093"]);
    assert.equal(c.clientId, "rw");
    assert.equal(c.tls, undefined);
    assert.equal(c.sasl, undefined);
  });

  test("TLS reads the CA, certificate and key files; SASL mechanisms take the client's spelling", () => {
    const dir = mkdtempSync(join(tmpdir(), "rw-tls-"));
    for (const f of ["ca", "cert", "key"]) writeFileSync(join(dir, `${f}.pem`), `${f} pem`);
    const c = platformaticConnectionFrom({
      ...base,
      ssl: true,
      ssl_ca_file: join(dir, "ca.pem"),
      ssl_cert_file: join(dir, "cert.pem"),
      ssl_key_file: join(dir, "key.pem"),
      ssl_reject_unauthorized: false,
      sasl_mechanism: "scram-sha-512",
      sasl_username: "u",
      sasl_password: "p",
    });
    assert.deepEqual(c.tls, { rejectUnauthorized: false, ca: ["ca pem"], cert: "cert pem", key: "key pem" });
    assert.deepEqual(c.sasl, { mechanism: "SCRAM-SHA-512", username: "u", password: "p" });
    for (const [ours, theirs] of [
      ["plain", "PLAIN"],
      ["scram-sha-256", "SCRAM-SHA-256"],
    ] as const) {
      const s = platformaticConnectionFrom({
        ...base,
        sasl_mechanism: ours,
        sasl_username: "u",
        sasl_password: "p",
      });
      assert.equal(s.sasl?.mechanism, theirs);
    }
  });
});
