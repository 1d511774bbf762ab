/**
 * The fetch thread against a real broker: it brings the same records as a
 * fetch on the calling thread, from gzip batches (whose inflated buffers move
 * across) and uncompressed ones (copied) alike; conditions come back as Kafka
 * errors, and a closed fetcher refuses to fetch.
 */
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { Consumer } from "@platformatic/kafka";
import kafkajs from "kafkajs";
import { loadSettings } from "../../src/config/index.js";
import { platformaticConnectionFrom } from "../../src/source/platformatic-client.js";
import {
  ConsumerFetcher,
  type FetchedPartition,
  FetchFailure,
  type FetchRequest,
} from "../../src/source/platformatic-fetch.js";
import { ThreadFetcher } from "../../src/source/platformatic-fetch-thread.js";
import { createTopic, getBroker, kafkaClient, type TestBroker, uniqueTopic } from "../support/broker.js";

const { CompressionTypes } = kafkajs;

let broker: TestBroker;
let topic: string;
let request: FetchRequest;
let metadataConsumer: Consumer;

/** Large enough that a gzip batch inflates into a buffer of its own, not a slice of Node.js's pool. */
const VALUE_BYTES = 20_000;
const value = (partition: number, i: number) => Buffer.alloc(VALUE_BYTES, `p${partition}-${i};`);

function settingsFor(brokers: string[]) {
  return loadSettings({ flags: { brokers: brokers.join(",") }, env: {}, groups: ["kafka"] }).kafka;
}

before(async () => {
  broker = await getBroker();
  topic = uniqueTopic("fetch-thread");
  await createTopic(broker, topic, 2);
  const producer = kafkaClient(broker).producer();
  await producer.connect();
  for (const partition of [0, 1]) {
    await producer.send({
      topic,
      compression: CompressionTypes.GZIP,
      messages: Array.from({ length: 20 }, (_, i) => ({
        partition,
        key: `k${i}`,
        value: value(partition, i),
        ...(i === 3 ? { headers: { trace: "t-3" } } : {}),
      })),
    });
    await producer.send({
      topic,
      messages: Array.from({ length: 5 }, (_, i) => ({
        partition,
        key: null,
        value: value(partition, 20 + i),
      })),
    });
  }
  await producer.disconnect();
  metadataConsumer = new Consumer({
    clientId: "reluwatch-test-fetch-thread",
    bootstrapBrokers: broker.brokers,
    groupId: `${topic}.metadata`,
  });
  const metadata = await metadataConsumer.metadata({ topics: [topic] });
  const t = metadata.topics.get(topic)!;
  assert.equal(t.partitions[0]!.leader, t.partitions[1]!.leader, "one broker leads both partitions");
  request = {
    node: t.partitions[0]!.leader,
    topicId: t.id,
    maxWaitTime: 100,
    partitions: [
      { partition: 0, fetchOffset: 2n },
      { partition: 1, fetchOffset: 0n },
    ],
  };
});

after(async () => {
  await metadataConsumer?.close();
});

/** Fetches until every partition asked for brought all of its 25 records (a broker may answer with fewer). */
async function fetchAll(fetch: (r: FetchRequest) => Promise<FetchedPartition[]>) {
  const got = new Map<number, FetchedPartition["records"]>();
  const ask = structuredClone(request);
  for (let round = 0; round < 20 && ask.partitions.some((p) => p.fetchOffset < 25n); round++) {
    for (const answer of await fetch(ask)) {
      got.set(answer.partition, [...(got.get(answer.partition) ?? []), ...answer.records]);
      const asked = ask.partitions.find((p) => p.partition === answer.partition)!;
      asked.fetchOffset = answer.end;
    }
  }
  return [...got.entries()]
    .sort(([a], [b]) => a - b)
    .map(([partition, records]) => ({
      partition,
      records: records.map((r) => ({
        offset: r.offset,
        key: r.key?.toString() ?? null,
        value: r.value!.equals(value(partition, Number(r.offset))) ? "intact" : "differs",
        headers: r.headers
          ? Object.fromEntries(Object.entries(r.headers).map(([k, v]) => [k, String(v)]))
          : {},
      })),
    }));
}

test("the fetch thread brings what a fetch on the calling thread brings, gzip and uncompressed batches alike", async () => {
  const settings = settingsFor(broker.brokers);
  const context = { brokers: broker.brokers, topic, group: "g" };
  const thread = new ThreadFetcher({
    connection: platformaticConnectionFrom(settings),
    topic,
    group: `${topic}.thread`,
  });
  const local = new ConsumerFetcher(() => metadataConsumer, { topic, context });
  try {
    thread.open();
    const fromThread = await fetchAll((r) => thread.fetch(r));
    const fromHere = await fetchAll((r) => local.fetch(r));
    assert.deepEqual(fromThread, fromHere);
    assert.deepEqual(
      fromThread.map((p) => p.records.length),
      [23, 25],
      "partition 0 from offset 2, partition 1 from 0",
    );
    assert.ok(fromThread.every((p) => p.records.every((r) => r.value === "intact")));
    assert.deepEqual(fromThread[1]!.records[3]!.headers, { trace: "t-3" });
    assert.equal(fromThread[1]!.records[20]!.key, null);
  } finally {
    await thread.close();
  }
  await assert.rejects(thread.fetch(request), (err: unknown) => {
    assert.ok(err instanceof FetchFailure);
    assert.equal(err.condition.code, "KAFKA_ERROR");
    assert.match(err.message, /closed/);
    return true;
  });
});

test("a broker that is not there comes back from the thread as BROKER_UNREACHABLE", async () => {
  const brokers = ["127.0.0.1:1"];
  const thread = new ThreadFetcher({
    connection: platformaticConnectionFrom(settingsFor(brokers)),
    topic,
    group: `${topic}.nowhere`,
  });
  try {
    await assert.rejects(thread.fetch(request), (err: unknown) => {
      assert.ok(err instanceof FetchFailure);
      assert.equal(err.condition.code, "BROKER_UNREACHABLE");
      assert.match(err.message, /127\.0\.0\.1:1/);
      return true;
    });
  } finally {
    await thread.close();
  }
});
