/**
 * The broker goes away mid-stream and comes back (same port, same data): the
 * consumer must recover by itself, and no snapshot may be lost or counted
 * twice. Runs its own broker, since the shared one must never be restarted.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { KAFKA_CLIENTS } from "../../src/config/index.js";
import {
  createTopic,
  kafkaClient,
  type PrivateBroker,
  startPrivateBroker,
  uniqueTopic,
} from "../support/broker.js";
import {
  type ConsumerProcess,
  consumerArgs,
  startConsumerProcess,
  waitFor,
} from "../support/consumer-process.js";
import { produceSnapshots, referenceDetector, scenarioSnapshots } from "../support/fleet.js";
import { scrape, sumOf } from "../support/metrics.js";
import { assertLayersMatch, waitForCommittedToEnd } from "../support/topics.js";

describe("reluwatch consume: broker restart mid-stream", () => {
  let broker: PrivateBroker;
  let consumer: ConsumerProcess | undefined;
  before(async () => {
    broker = await startPrivateBroker();
  });
  after(async () => {
    if (consumer && consumer.child.exitCode === null) consumer.child.kill("SIGKILL");
    // before() may have failed before the broker existed.
    await (broker as PrivateBroker | undefined)?.remove();
  });

  for (const client of KAFKA_CLIENTS)
    test(`the consumer (${client}) recovers by itself; no snapshot is lost or counted twice`, async () => {
      const topic = uniqueTopic("restart");
      // A broker that just started may not know a new topic's leader at once; creating again is harmless.
      for (const [name, partitions] of [
        [topic, 2],
        [`${topic}.events`, 1],
      ] as const) {
        await waitFor(`topic ${name}`, () => createTopic(broker, name, partitions).then(() => true));
      }
      consumer = await startConsumerProcess([
        ...consumerArgs(broker.brokers, topic),
        "--kafka-client",
        client,
      ]);
      const base = consumer.baseUrl;

      const all = scenarioSnapshots("lr-spike", { seed: 59 });
      const half = Math.floor(all.length / 2);
      await produceSnapshots(kafkaClient(broker), topic, all.slice(0, half));
      // Pull the broker while the consumer is at work, so batches in hand may fail to commit.
      await waitFor("the consumer to start applying", async () => {
        const { samples } = await scrape(base);
        return sumOf(samples, "reluwatch_snapshots_total", { result: "ok" }) > 0 ? true : undefined;
      });

      const logsBefore = consumer.logs.length;
      await broker.stop();
      await waitFor("the consumer to notice the broker is gone", () =>
        // A warning or an error from either client's side: pino's level 40 and above.
        consumer!.logs.slice(logsBefore).some((l) => Number(l.level) >= 40) ? true : undefined,
      );
      await broker.start();
      await produceSnapshots(kafkaClient(broker), topic, all.slice(half));

      // Offsets are committed after a batch is applied: committed to the end means everything was.
      await waitForCommittedToEnd(kafkaClient(broker), `${topic}.group`, topic, 120_000);
      await waitFor("the consumer to be ready again", async () =>
        (await fetch(`${base}/readyz`)).status === 200 ? true : undefined,
      );
      const { samples } = await scrape(base);
      assert.equal(consumer.child.exitCode, null, "the consumer kept running");
      assert.equal(sumOf(samples, "reluwatch_snapshots_total", { result: "ok" }), all.length);
      for (const result of ["invalid", "over_limit", "late"]) {
        assert.equal(sumOf(samples, "reluwatch_snapshots_total", { result }), 0, result);
      }
      assertLayersMatch(samples, referenceDetector(all).detector.summaries());
      consumer.child.kill("SIGTERM");
      assert.equal(await consumer.exited, 0);
    });
});
