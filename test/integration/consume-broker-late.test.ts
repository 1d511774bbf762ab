/**
 * The consumer started before its broker: it keeps retrying, and once a broker
 * answers on that address (and the topic exists) it joins and consumes with
 * no restart. The broker is a private one on a free port, started mid-test.
 */

import assert from "node:assert/strict";
import { after, describe, test } from "node:test";
import {
  createTopic,
  kafkaClient,
  type PrivateBroker,
  startPrivateBroker,
  type TestBroker,
  uniqueTopic,
} from "../support/broker.js";
import {
  type ConsumerProcess,
  consumerArgs,
  startConsumerProcess,
  waitFor,
} from "../support/consumer-process.js";
import { produceSnapshots, scenarioSnapshots } from "../support/fleet.js";
import { scrape, sumOf } from "../support/metrics.js";
import { freePort } from "../support/ports.js";

describe("reluwatch consume: the broker comes up after the consumer", () => {
  let privateBroker: PrivateBroker | undefined;
  let consumer: ConsumerProcess | undefined;
  after(async () => {
    if (consumer && consumer.child.exitCode === null) consumer.child.kill("SIGKILL");
    await privateBroker?.remove();
  });

  test("waits for the broker, then for the topic, then consumes without a restart", async () => {
    const port = await freePort();
    const address = `127.0.0.1:${port}`;
    const topic = uniqueTopic("late-broker");
    consumer = await startConsumerProcess(consumerArgs([address], topic));
    const c = consumer;
    await waitFor("a log line saying the broker does not answer", () =>
      c.logs.find((l) => l.event === "waiting_for_kafka" && l.code === "BROKER_UNREACHABLE"),
    );
    assert.equal((await fetch(`${c.baseUrl}/readyz`)).status, 503);

    privateBroker = await startPrivateBroker({ port });
    const broker: TestBroker = privateBroker;
    await waitFor("the consumer to see the broker and wait for the topic instead", () =>
      c.logs.find((l) => l.event === "waiting_for_kafka" && l.code === "TOPIC_NOT_FOUND"),
    );
    // A broker that just started may not know a new topic's leader at once; creating again is harmless.
    await waitFor(`topic ${topic}`, () => createTopic(broker, topic, 1).then(() => true));
    await waitFor(
      "/readyz 200",
      async () => ((await fetch(`${c.baseUrl}/readyz`)).status === 200 ? true : undefined),
      120_000,
    );

    const snapshots = scenarioSnapshots("healthy", { seed: 23, layers: 1, ranks: 2, steps: 200 });
    await produceSnapshots(kafkaClient(broker), topic, snapshots);
    await waitFor("every snapshot applied", async () => {
      const { samples } = await scrape(c.baseUrl);
      return sumOf(samples, "reluwatch_snapshots_total", { result: "ok" }) === snapshots.length
        ? true
        : undefined;
    });
    assert.equal(c.child.exitCode, null, "the same process, never restarted");
    c.child.kill("SIGTERM");
    assert.equal(await c.exited, 0);
  });
});
