/**
 * The state topic's writer over a fake kafkajs client (no broker): explicit
 * partitions, acks from all replicas, record batches that max.message.bytes
 * admits, in order; and the topic created compacted and co-partitioned.
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import type { Kafka } from "kafkajs";
import { pino } from "pino";
import { DEFAULT_CHUNK_BYTES } from "../../../src/codec/checkpoint-codec.js";
import { KafkaChangelogWriter, STATE_TOPIC_CONFIG } from "../../../src/sink/changelog-writer.js";

interface Sent {
  topic: string;
  acks: number;
  messages: Array<{ key: string; value: Buffer | null; partition: number }>;
}

function fakeKafka(topics: Record<string, number>) {
  const sends: Sent[] = [];
  const created: unknown[] = [];
  const admin = {
    connect: async () => {},
    disconnect: async () => {},
    listTopics: async () => Object.keys(topics),
    fetchTopicMetadata: async ({ topics: [t] }: { topics: string[] }) => ({
      topics: [
        { name: t, partitions: Array.from({ length: topics[t!] ?? 0 }, (_, i) => ({ partitionId: i })) },
      ],
    }),
    createTopics: async (req: unknown) => {
      created.push(req);
      return true;
    },
  };
  const producer = {
    send: async (req: Sent) => {
      sends.push(req);
      return [];
    },
  };
  const kafka = { admin: () => admin, producer: () => producer } as unknown as Kafka;
  return { kafka, sends, created };
}

const log = pino({ level: "silent" });

describe("KafkaChangelogWriter", () => {
  test("writes to the explicit partition with acks all, in order, no record batch above one chunk", async () => {
    const k = fakeKafka({});
    const writer = new KafkaChangelogWriter(k.kafka, "s");
    const big = (n: number) => new Uint8Array(DEFAULT_CHUNK_BYTES - n);
    const records = [
      { key: "r/l/0", value: big(0) },
      { key: "r/l/1", value: big(10) },
      { key: "r/l/2", value: new Uint8Array(100) },
      { key: "r/l/m", value: new Uint8Array(200) },
      { key: "r/l/3", value: null },
    ];
    await writer.write(5, records);
    assert.deepEqual(
      k.sends.map((s) => s.messages.map((m) => m.key)),
      [["r/l/0"], ["r/l/1"], ["r/l/2", "r/l/m", "r/l/3"]],
    );
    for (const s of k.sends) {
      assert.equal(s.topic, "s");
      assert.equal(s.acks, -1);
      assert.ok(s.messages.every((m) => m.partition === 5));
      assert.ok(s.messages.reduce((n, m) => n + (m.value?.byteLength ?? 0), 0) <= DEFAULT_CHUNK_BYTES);
    }
    assert.equal(k.sends[2]!.messages[2]!.value, null, "a tombstone stays null");
  });

  test("creates the state topic compacted, with the input topic's partitions; refuses one with fewer", async () => {
    const absent = fakeKafka({ in: 6 });
    await new KafkaChangelogWriter(absent.kafka, "s").ensureTopic("in", log);
    assert.deepEqual(absent.created, [
      {
        waitForLeaders: true,
        topics: [{ topic: "s", numPartitions: 6, configEntries: [...STATE_TOPIC_CONFIG] }],
      },
    ]);
    assert.ok(STATE_TOPIC_CONFIG.some((c) => c.name === "cleanup.policy" && c.value === "compact"));
    const max = Number(STATE_TOPIC_CONFIG.find((c) => c.name === "max.message.bytes")!.value);
    assert.ok(max > DEFAULT_CHUNK_BYTES + 48 + 1024, "a chunk record with its header and key fits");

    const small = fakeKafka({ in: 6, s: 3 });
    await assert.rejects(
      new KafkaChangelogWriter(small.kafka, "s").ensureTopic("in", log),
      /state topic s has 3 partitions, the snapshot topic in has 6/,
    );
    assert.deepEqual(small.created, []);
    const enough = fakeKafka({ in: 6, s: 6 });
    await new KafkaChangelogWriter(enough.kafka, "s").ensureTopic("in", log);
    assert.deepEqual(enough.created, []);
  });
});
