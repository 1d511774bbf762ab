/**
 * When kafkajs gives up for good (an error it does not retry), the consumer
 * fetches nothing more: the process must exit non-zero so that whatever runs
 * it restarts it, rather than linger with /healthz answering 200.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { createTopic, getBroker, kafkaClient, type TestBroker, uniqueTopic } from "../support/broker.js";
import {
  type ConsumerProcess,
  consumerArgs,
  startConsumerProcess,
  waitFor,
} from "../support/consumer-process.js";
import { produceSnapshots, scenarioSnapshots } from "../support/fleet.js";

describe("reluwatch consume: an error kafkajs does not retry", () => {
  let broker: TestBroker;
  let consumer: ConsumerProcess | undefined;
  before(async () => {
    broker = await getBroker();
  });
  after(() => {
    if (consumer && consumer.child.exitCode === null) consumer.child.kill("SIGKILL");
  });

  test("the process says why and exits 1", async () => {
    const topic = uniqueTopic("fatal");
    await createTopic(broker, topic, 1);
    // Kafka refuses this name (a space) with INVALID_TOPIC_EXCEPTION, which kafkajs does not retry.
    const events = `${topic}.events bad`;
    // A healthy run has no deaths: with every transition an event, its first verdicts hit the bad topic.
    consumer = await startConsumerProcess([
      ...consumerArgs(broker.brokers, topic, events),
      "--events",
      "all",
    ]);
    const c = consumer;
    await produceSnapshots(kafkaClient(broker), topic, scenarioSnapshots("healthy", { layers: 1, ranks: 1 }));
    const code = await waitFor(
      "the process to exit",
      () => (c.child.exitCode ?? undefined) as number | undefined,
    );
    assert.equal(code, 1);
    const failed = c.logs.find((l) => l.event === "consumer_failed");
    assert.ok(failed, "the log says consuming stopped");
    assert.match(String(failed.error), /topic/i);
  });
});
