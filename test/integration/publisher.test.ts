import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import type { Consumer } from "kafkajs";
import { decodeSnapshot } from "../../src/codec/index.js";
import { KAFKA_CLIENTS, type KafkaClient } from "../../src/config/index.js";
import type { ActivationSnapshot } from "../../src/core/snapshot.js";
import { SnapshotPublisher } from "../../src/publisher/snapshot-publisher.js";
import { createTopic, getBroker, kafkaClient, type TestBroker, uniqueTopic } from "../support/broker.js";

let broker: TestBroker;
const consumers: Consumer[] = [];

before(async () => {
  broker = await getBroker();
});
after(async () => {
  for (const c of consumers) await c.disconnect();
});

function snapshot(run: string, layer: string, rank: number, step: number): ActivationSnapshot {
  return {
    run_id: run,
    layer,
    rank,
    step,
    time: 1_764_000_000_000 + step,
    unit_offset: 0,
    unit_count: 8,
    layer_units: 8,
    samples: 64,
    stats: {
      kind: "counts",
      fires: Uint32Array.from({ length: 8 }, (_, i) => (step + rank + i) % 65),
      abs_sum: null,
      sq_sum: null,
    },
  };
}

interface Received {
  key: string;
  partition: number;
  s: ActivationSnapshot;
}

async function consumeAll(topic: string, count: number): Promise<Received[]> {
  const consumer = kafkaClient(broker).consumer({ groupId: `${topic}.check` });
  consumers.push(consumer);
  await consumer.connect();
  await consumer.subscribe({ topic, fromBeginning: true });
  const got: Received[] = [];
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`only ${got.length} of ${count} records within 60 s`)),
      60_000,
    );
    void consumer.run({
      eachMessage: async ({ partition, message }) => {
        got.push({ key: message.key!.toString(), partition, s: decodeSnapshot(message.value!) });
        if (got.length >= count) {
          clearTimeout(timer);
          resolve();
        }
      },
    });
  });
  return got;
}

/** Where each layer's key landed, per client: a layer stays on one partition whichever client wrote it. */
const partitionsByClient = new Map<KafkaClient, Map<string, number>>();

for (const client of KAFKA_CLIENTS) {
  test(`${client}: per-layer order survives ranks interleaving, and close() delivers everything accepted`, async () => {
    const topic = uniqueTopic(`publisher-order-${client}`);
    await createTopic(broker, topic, 4);
    const publisher = new SnapshotPublisher({
      brokers: broker.brokers,
      topic,
      client,
      linger_ms: 5,
      max_batch: 37,
    });
    await publisher.connect();

    const layers = ["embed", "blocks.0.mlp.fc1", "blocks.1.mlp.fc1"];
    const published: ActivationSnapshot[] = [];
    for (let step = 0; step < 40; step++) {
      for (let rank = 0; rank < 4; rank++) {
        for (const layer of layers) {
          const s = snapshot("run-order", layer, (rank * 3 + step) % 4, step);
          published.push(s);
          await publisher.publish(s);
        }
      }
    }
    const stats = await publisher.close();
    assert.equal(stats.offered, published.length);
    assert.equal(stats.sent, published.length);
    assert.equal(stats.dropped + stats.failed + stats.queued + stats.in_flight, 0);

    const got = await consumeAll(topic, published.length);
    assert.equal(got.length, published.length);
    const placed = new Map<string, number>();
    for (const layer of layers) {
      const key = `run-order/${layer}`;
      const mine = got.filter((r) => r.key === key);
      assert.equal(new Set(mine.map((r) => r.partition)).size, 1, `${key} spread over partitions`);
      placed.set(key, mine[0]!.partition);
      const order = (list: ActivationSnapshot[]) => list.map((s) => `${s.step}:${s.rank}`);
      assert.deepEqual(order(mine.map((r) => r.s)), order(published.filter((s) => s.layer === layer)));
    }
    const first = got.find((r) => r.key === `run-order/${layers[0]}`)!.s;
    assert.deepEqual(first.stats.kind === "counts" && [...first.stats.fires], [
      ...(published[0]!.stats as { fires: Uint32Array }).fires,
    ]);
    partitionsByClient.set(client, placed);
    const other = [...partitionsByClient.entries()].find(([c]) => c !== client);
    if (other) assert.deepEqual(placed, other[1], `${client} and ${other[0]} place a layer's key alike`);
  });
}

test("publish() refuses a snapshot that breaks the contract and counts it as invalid", async () => {
  const topic = uniqueTopic("publisher-invalid");
  await createTopic(broker, topic, 1);
  const publisher = new SnapshotPublisher({ brokers: broker.brokers, topic });
  await publisher.connect();
  await assert.rejects(publisher.publish({ ...snapshot("r", "l", 0, 1), samples: 0 }), /NOT_POSITIVE/);
  const stats = await publisher.close();
  assert.equal(stats.invalid, 1);
  assert.equal(stats.offered, 0);
  await assert.rejects(publisher.publish(snapshot("r", "l", 0, 2)), /closed publisher/);
});

test("a snapshot with NaN or infinite sums is sent, not thrown, and counted; nonfinite, micro_batch and incarnation reach the topic", async () => {
  const topic = uniqueTopic("publisher-nan");
  await createTopic(broker, topic, 1);
  const publisher = new SnapshotPublisher({ brokers: broker.brokers, topic });
  await publisher.connect();
  const base = snapshot("r-nan", "l", 0, 5);
  const sums = Float32Array.from({ length: 8 }, (_, i) => i);
  const diverged: ActivationSnapshot = {
    ...base,
    micro_batch: 3,
    incarnation: 1_764_000_000_000,
    stats: {
      kind: "counts",
      fires: new Uint32Array(8),
      abs_sum: Float32Array.from([Number.NaN, ...sums.subarray(1)]),
      sq_sum: Float32Array.from([Number.POSITIVE_INFINITY, ...sums.subarray(1)]),
      nonfinite: Uint32Array.from({ length: 8 }, (_, i) => (i === 0 ? 64 : 0)),
    },
  };
  await publisher.publish(diverged);
  await publisher.publish(diverged);
  await publisher.publish(base);
  const stats = await publisher.close();
  assert.deepEqual([stats.nonfinite_sums, stats.invalid, stats.sent], [2, 0, 3]);
  const got = await consumeAll(topic, 3);
  const s = got[0]!.s;
  assert.equal(s.micro_batch, 3);
  assert.equal(s.incarnation, 1_764_000_000_000);
  assert.ok(s.stats.kind === "counts");
  assert.ok(Number.isNaN(s.stats.abs_sum![0]!));
  assert.deepEqual([...s.stats.nonfinite!], [64, 0, 0, 0, 0, 0, 0, 0]);
  // A writer that sets none of the fields gets the defaults.
  const plain = got[2]!.s;
  assert.deepEqual([plain.micro_batch, plain.incarnation], [0, 0]);
});
