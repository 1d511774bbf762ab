import assert from "node:assert/strict";
import { before, test } from "node:test";
import { Consumer as PlatformaticConsumer } from "@platformatic/kafka";
import kafkajs from "kafkajs";
import { decodeSnapshot, encodeSnapshot } from "../../src/codec/index.js";
import type { ActivationSnapshot } from "../../src/core/snapshot.js";
import { SnapshotPublisher } from "../../src/publisher/snapshot-publisher.js";
import { createKafka } from "../../src/source/kafka-client.js";
import { createTopic, getBroker, type TestBroker, uniqueTopic } from "../support/broker.js";

const { CompressionCodecs, CompressionTypes } = kafkajs;

let broker: TestBroker;
before(async () => {
  broker = await getBroker();
});

const UNITS = 256;
const COUNT = 60;

function snapshot(step: number): ActivationSnapshot {
  return {
    run_id: "run-zstd",
    layer: "blocks.0.fc1",
    rank: step % 3,
    step,
    time: 1_764_000_000_000 + step,
    unit_offset: 0,
    unit_count: UNITS,
    layer_units: UNITS,
    samples: 128,
    stats: {
      kind: "counts",
      fires: Uint32Array.from({ length: UNITS }, (_, i) => (i * 7 + step) % 129),
      abs_sum: null,
      sq_sum: null,
    },
  };
}

/** Counts the zstd batches kafkajs decompresses, so the test proves the wire held zstd. */
function countZstdDecompressions(): { count: () => number; restore: () => void } {
  const table = CompressionCodecs as Record<number, () => { decompress(b: Buffer): Promise<Buffer> }>;
  const original = table[CompressionTypes.ZSTD]!;
  let calls = 0;
  table[CompressionTypes.ZSTD] = () => {
    const codec = original();
    return {
      ...codec,
      decompress: (b: Buffer) => {
        calls++;
        return codec.decompress(b);
      },
    };
  };
  return { count: () => calls, restore: () => (table[CompressionTypes.ZSTD] = original) };
}

async function readWithKafkajs(topic: string): Promise<ActivationSnapshot[]> {
  const settings = {
    brokers: broker.brokers,
    client_id: "reluwatch-test-zstd",
    ssl: false,
    ssl_reject_unauthorized: true,
  };
  const consumer = createKafka(settings).consumer({ groupId: `${topic}.kafkajs` });
  await consumer.connect();
  await consumer.subscribe({ topic, fromBeginning: true });
  const got: ActivationSnapshot[] = [];
  try {
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`kafkajs read ${got.length} of ${COUNT} within 60 s`)),
        60_000,
      );
      void consumer.run({
        eachMessage: async ({ message }) => {
          got.push(decodeSnapshot(message.value!));
          if (got.length === COUNT) {
            clearTimeout(timer);
            resolve();
          }
        },
      });
    });
  } finally {
    await consumer.disconnect();
  }
  return got;
}

async function readWithPlatformatic(topic: string): Promise<ActivationSnapshot[]> {
  const consumer = new PlatformaticConsumer({
    groupId: `${topic}.platformatic`,
    clientId: "reluwatch-test-zstd",
    bootstrapBrokers: broker.brokers,
  });
  const got: ActivationSnapshot[] = [];
  const stream = await consumer.consume({ topics: [topic], mode: "earliest", autocommit: false });
  try {
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`@platformatic/kafka read ${got.length} of ${COUNT} within 60 s`)),
        60_000,
      );
      stream.on("error", reject);
      stream.on("data", (m: { value: Buffer }) => {
        got.push(decodeSnapshot(m.value));
        if (got.length === COUNT) {
          clearTimeout(timer);
          resolve();
        }
      });
    });
  } finally {
    await stream.close();
    await consumer.close(true);
  }
  return got;
}

test("a zstd publisher's snapshots are read back intact by kafkajs and by @platformatic/kafka", async () => {
  const topic = uniqueTopic("zstd");
  await createTopic(broker, topic, 2);
  const publisher = new SnapshotPublisher({
    brokers: broker.brokers,
    topic,
    compression: "zstd",
    linger_ms: 5,
  });
  await publisher.connect();
  const published = Array.from({ length: COUNT }, (_, step) => snapshot(step));
  // What a reader gets: the published snapshots with the contract's defaults filled in.
  const expected = published.map((s) => decodeSnapshot(encodeSnapshot(s)));
  for (const s of published) await publisher.publish(s);
  const stats = await publisher.close();
  assert.equal(stats.sent, COUNT);

  const byStep = (list: ActivationSnapshot[]) => [...list].sort((a, b) => a.step - b.step);
  const zstd = countZstdDecompressions();
  try {
    const viaKafkajs = await readWithKafkajs(topic);
    assert.ok(zstd.count() > 0, "kafkajs decompressed no zstd batch: the publisher did not write zstd");
    assert.deepEqual(byStep(viaKafkajs), expected);
  } finally {
    zstd.restore();
  }
  assert.deepEqual(byStep(await readWithPlatformatic(topic)), expected);
});
