/**
 * A broker outage, on a private broker this test stops and restarts: publish()
 * keeps returning while the queue overflows, drops are counted, close() gives
 * up on a dead broker within its timeout, and once the broker is back close()
 * delivers everything still queued.
 */
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { decodeSnapshot } from "../../src/codec/index.js";
import { KAFKA_CLIENTS } from "../../src/config/index.js";
import type { ActivationSnapshot } from "../../src/core/snapshot.js";
import { SnapshotPublisher } from "../../src/publisher/snapshot-publisher.js";
import {
  createTopic,
  kafkaClient,
  type PrivateBroker,
  startPrivateBroker,
  uniqueTopic,
} from "../support/broker.js";
import { waitFor } from "../support/consumer-process.js";

let broker: PrivateBroker;

before(async () => {
  broker = await startPrivateBroker();
});
after(async () => {
  // before() may have failed before the broker existed.
  await (broker as PrivateBroker | undefined)?.remove();
});

function snapshot(step: number): ActivationSnapshot {
  return {
    run_id: "run-outage",
    layer: "fc1",
    rank: 0,
    step,
    time: 1_764_000_000_000 + step,
    unit_offset: 0,
    unit_count: 4,
    layer_units: 4,
    samples: 10,
    stats: { kind: "counts", fires: Uint32Array.from([1, 2, 3, step % 11]), abs_sum: null, sq_sum: null },
  };
}

function balanced(s: ReturnType<SnapshotPublisher["stats"]>): void {
  assert.equal(s.offered, s.sent + s.dropped + s.failed + s.queued + s.in_flight, JSON.stringify(s));
}

for (const client of KAFKA_CLIENTS) {
  test(`${client}: an outage with a full queue drops and counts instead of blocking; close() loses nothing accepted`, async () => {
    const topic = uniqueTopic(`publisher-outage-${client}`);
    await createTopic(broker, topic, 1);
    const common = {
      brokers: broker.brokers,
      topic,
      client,
      linger_ms: 0,
      max_batch: 5,
      retry_backoff_ms: 200,
    };
    const dropper = new SnapshotPublisher({ ...common, queue_capacity: 20, overflow: "drop_oldest" });
    const waiter = new SnapshotPublisher({
      ...common,
      queue_capacity: 3,
      overflow: "wait",
      wait_timeout_ms: 100,
    });
    await dropper.connect();
    await waiter.connect();

    for (let step = 0; step < 10; step++) await dropper.publish(snapshot(step));
    await waitFor("the first 10 snapshots to be sent", () =>
      dropper.stats().sent === 10 ? true : undefined,
    );

    await broker.stop();

    // Every publish() returns although nothing can be sent: the queue overflows.
    for (let step = 10; step < 210; step++) await dropper.publish(snapshot(step));
    const during = dropper.stats();
    balanced(during);
    assert.equal(during.offered, 210);
    assert.equal(during.queued, 20);
    assert.ok(during.dropped >= 200 - 20 - 5, `dropped ${during.dropped}`);
    assert.equal(during.sent, 10);

    for (let step = 0; step < 10; step++) await waiter.publish(snapshot(step));
    const waited = waiter.stats();
    balanced(waited);
    assert.ok(waited.dropped >= 10 - 3 - 5, `wait policy dropped ${waited.dropped}`);

    // close() on a dead broker returns at its deadline, counting what it could not send.
    const closedDead = await waiter.close({ timeout_ms: 1_000 });
    balanced(closedDead);
    assert.equal(closedDead.sent, 0);
    assert.equal(closedDead.failed, 10 - closedDead.dropped);
    const waiterErrorsAtClose = waiter.stats().send_errors;
    await assert.rejects(dropper.publish({ ...snapshot(1), layer: "" }), /EMPTY_NAME/);

    await broker.start();
    const final = await dropper.close({ timeout_ms: 120_000 });
    balanced(final);
    assert.equal(final.failed, 0);
    assert.equal(final.queued + final.in_flight, 0);
    assert.equal(final.sent, 210 - final.dropped);

    // The broker holds exactly what was sent: the first 10, then the newest survivors of the outage.
    const consumer = kafkaClient(broker).consumer({ groupId: `${topic}.check` });
    await consumer.connect();
    await consumer.subscribe({ topic, fromBeginning: true });
    const steps: number[] = [];
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`only ${steps.length} records`)), 60_000);
      void consumer.run({
        eachMessage: async ({ message }) => {
          steps.push(decodeSnapshot(message.value!).step);
          if (new Set(steps).size >= final.sent) {
            clearTimeout(timer);
            resolve();
          }
        },
      });
    });
    await consumer.disconnect();
    const unique = [...new Set(steps)];
    assert.equal(unique.length, final.sent);
    assert.deepEqual(unique.slice(0, 10), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    // drop_oldest keeps the newest: the last 20 published are all there, in order.
    assert.deepEqual(
      unique.slice(-20),
      Array.from({ length: 20 }, (_, i) => 190 + i),
    );
    // A closed publisher stays quiet: the batch it abandoned may fail once more
    // when its request finally ends, but no sender goes on retrying.
    assert.ok(waiter.stats().send_errors <= waiterErrorsAtClose + 1, JSON.stringify(waiter.stats()));
    balanced(waiter.stats());
  });
}
