/**
 * exactly_once below the stream task, without a broker: the committer turns
 * one commit into one transaction (events, dead letters, state chunks to
 * their explicit partitions, then the group's offsets), and the kafkajs
 * producer over a fake client sends them in one transaction, aborts a failed
 * one, and reports a fenced producer as ProducerFencedError.
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import type { Kafka } from "kafkajs";
import { decodeTransition } from "../../../src/codec/index.js";
import type { UnitTransition } from "../../../src/core/index.js";
import { ExactlyOnceCommitter } from "../../../src/service/exactly-once.js";
import { KafkaSinks } from "../../../src/sink/kafka-sinks.js";
import {
  defaultTransactionalId,
  KafkajsTransactionalProducer,
  ProducerFencedError,
  type TransactionalProducer,
  type TransactionContent,
} from "../../../src/sink/transactional-producer.js";

const transition = (unit: number): UnitTransition => ({
  run_id: "r",
  layer: "fc",
  unit,
  from: "UNKNOWN",
  to: "DEAD",
  born_dead: true,
  step: 100,
  time: 1_700_000_000_000,
  fires: 0,
  samples: 8000,
  firing_rate: 0,
  rate_upper_bound: 0.001,
  last_fire_step: null,
});

/** A kafkajs client whose transactional producer records every call, and fails where told. */
function fakeKafka(opts: { failSendOffsets?: Error; failAbort?: boolean } = {}) {
  const calls: string[] = [];
  const batches: Array<{
    topic: string;
    messages: Array<{ key: unknown; value: Buffer | null; partition?: number }>;
  }> = [];
  let producers = 0;
  const producer = () => {
    const id = ++producers;
    return {
      connect: async () => void calls.push(`connect ${id}`),
      disconnect: async () => void calls.push(`disconnect ${id}`),
      transaction: async () => {
        calls.push("begin");
        return {
          sendBatch: async ({ topicMessages }: { topicMessages: typeof batches }) => {
            calls.push(`send ${topicMessages.map((t) => `${t.topic}:${t.messages.length}`).join(",")}`);
            batches.push(...topicMessages);
          },
          sendOffsets: async (o: { consumerGroupId: string; topics: Array<{ partitions: unknown[] }> }) => {
            if (opts.failSendOffsets) throw opts.failSendOffsets;
            calls.push(`offsets ${o.consumerGroupId} ${JSON.stringify(o.topics[0]!.partitions)}`);
          },
          commit: async () => void calls.push("commit"),
          abort: async () => {
            calls.push("abort");
            if (opts.failAbort) throw new Error("abort refused");
          },
        };
      },
    };
  };
  const kafka = { producer, admin: () => ({}) } as unknown as Kafka;
  return { kafka, calls, batches };
}

describe("exactly_once", () => {
  test("the committer puts events, dead letters, state chunks and offsets into one transaction", async () => {
    const seen: TransactionContent[] = [];
    const producer: TransactionalProducer = {
      connect: async () => {},
      disconnect: async () => {},
      commit: async (c) => void seen.push(c),
    };
    const sinks = new KafkaSinks(fakeKafka().kafka, "events", "dlq", "all");
    const committer = new ExactlyOnceCommitter(producer, sinks, {
      group: "g",
      topic: "in",
      stateTopic: "g.state",
    });
    await committer.commit({
      transitions: [transition(1), transition(2)],
      deadLetters: [
        {
          reason: "bad_magic",
          message: "not an Avro single-object record",
          source: { topic: "in", partition: 2, offset: "7" },
          key: null,
          value: Buffer.alloc(10),
        },
        {
          reason: "message_too_large",
          message: "too big",
          source: { topic: "in", partition: 2, offset: "8" },
          key: null,
          value: Buffer.alloc(600 * 1024),
        },
      ],
      state: [
        {
          partition: 2,
          records: [
            { key: "r/fc/0", value: new Uint8Array(5) },
            { key: "r/fc/m", value: new Uint8Array(3) },
          ],
          write: async () => assert.fail("written outside the transaction"),
        },
      ],
      offsets: [{ partition: 2, offset: 9n }],
    });
    assert.equal(seen.length, 1);
    const [c] = seen;
    const all = c!.sends.flat();
    assert.deepEqual(
      all.filter((m) => m.topic === "events").map((m) => decodeTransition(m.value!).unit),
      [1, 2],
    );
    const letters = all.filter((m) => m.topic === "dlq");
    assert.equal(letters.length, 2);
    assert.equal(letters[0]!.value!.length, 10);
    assert.equal(letters[1]!.value, null, "a dead letter larger than a request goes without its value");
    assert.equal(letters[1]!.headers!["reluwatch-value-dropped-bytes"], String(600 * 1024));
    assert.deepEqual(
      all.filter((m) => m.topic === "g.state").map((m) => [m.key, m.partition]),
      [
        ["r/fc/0", 2],
        ["r/fc/m", 2],
      ],
      "state chunks in order, to the input partition's state partition",
    );
    assert.deepEqual(c!.offsets, { group: "g", topic: "in", partitions: [{ partition: 2, offset: "9" }] });
  });

  test("kafkajs: connect registers the id at once; a commit is one transaction, offsets last", async () => {
    const k = fakeKafka();
    const p = new KafkajsTransactionalProducer(k.kafka, "g-host");
    await p.connect();
    assert.deepEqual(k.calls, ["connect 1", "begin", "abort"], "an empty transaction registers the id");
    await p.commit({
      sends: [
        [{ topic: "events", key: "k", value: Buffer.from("v") }],
        [{ topic: "s", key: "c", value: null, partition: 3 }],
      ],
      offsets: { group: "g", topic: "in", partitions: [{ partition: 3, offset: "10" }] },
    });
    assert.deepEqual(k.calls.slice(3), [
      "begin",
      "send events:1",
      "send s:1",
      'offsets g [{"partition":3,"offset":"10"}]',
      "commit",
    ]);
    assert.equal(k.batches[1]!.messages[0]!.partition, 3);
  });

  test("kafkajs: a failed transaction is aborted and rejects; a failed abort replaces the producer", async () => {
    const k = fakeKafka({ failSendOffsets: new Error("coordinator moved") });
    const p = new KafkajsTransactionalProducer(k.kafka, "g-host");
    const content = {
      sends: [],
      offsets: { group: "g", topic: "in", partitions: [{ partition: 0, offset: "1" }] },
    };
    await assert.rejects(p.commit(content), /coordinator moved/);
    assert.deepEqual(k.calls, ["begin", "abort"]);

    const broken = fakeKafka({ failSendOffsets: new Error("timeout"), failAbort: true });
    const q = new KafkajsTransactionalProducer(broken.kafka, "g-host");
    await assert.rejects(q.commit(content), /timeout/);
    assert.deepEqual(broken.calls, ["begin", "abort", "disconnect 1", "connect 2", "begin", "abort"]);
  });

  test("kafkajs: a fenced producer rejects with ProducerFencedError and is not aborted", async () => {
    const fenced = Object.assign(new Error("retries exhausted"), {
      cause: Object.assign(new Error("epoch"), { type: "PRODUCER_FENCED" }),
    });
    const k = fakeKafka({ failSendOffsets: fenced });
    const p = new KafkajsTransactionalProducer(k.kafka, "g-host");
    await assert.rejects(
      p.commit({
        sends: [],
        offsets: { group: "g", topic: "in", partitions: [{ partition: 0, offset: "1" }] },
      }),
      (err: unknown) => err instanceof ProducerFencedError && /g-host/.test(err.message),
    );
    assert.deepEqual(k.calls, ["begin"]);
  });

  test("the default transactional id is the group and the host name", () => {
    assert.equal(defaultTransactionalId("reluwatch", "reluwatch-0"), "reluwatch-reluwatch-0");
  });
});
