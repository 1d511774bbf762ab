import assert from "node:assert/strict";
import { test } from "node:test";
import { BoundedQueue } from "../../../src/publisher/bounded-queue.js";
import { SnapshotPublisher } from "../../../src/publisher/snapshot-publisher.js";

test("BoundedQueue keeps FIFO order across wrap-around and refuses to overfill", () => {
  const q = new BoundedQueue<number>(3);
  q.push(1);
  q.push(2);
  q.push(3);
  assert.equal(q.full, true);
  assert.throws(() => q.push(4), RangeError);
  assert.equal(q.shift(), 1);
  q.push(4);
  assert.deepEqual(q.take(2), [2, 3]);
  q.push(5);
  q.push(6);
  assert.equal(q.length, 3);
  assert.deepEqual(q.take(10), [4, 5, 6]);
  assert.equal(q.shift(), undefined);
  q.push(7);
  assert.equal(q.clear(), 1);
  assert.equal(q.length, 0);
  assert.throws(() => new BoundedQueue(0), RangeError);
});

test("SnapshotPublisher refuses bad options up front and publish() before connect()", async () => {
  assert.throws(() => new SnapshotPublisher({ brokers: [], topic: "t" }), /at least one broker/);
  assert.throws(() => new SnapshotPublisher({ brokers: ["h:1"], topic: "" }), /needs a topic/);
  assert.throws(
    () => new SnapshotPublisher({ brokers: ["h:1"], topic: "t", overflow: "block" as "wait" }),
    /overflow must be/,
  );
  assert.throws(
    () => new SnapshotPublisher({ brokers: ["h:1"], topic: "t", client: "kafkajs", compression: "lz4" }),
    /codec registered/,
  );
  assert.throws(
    () =>
      new SnapshotPublisher({ brokers: ["h:1"], topic: "t", client: "platformatic", kafka: { ssl: true } }),
    /kafkajs options/,
  );
  // @platformatic/kafka writes every codec Kafka has by itself.
  new SnapshotPublisher({ brokers: ["h:1"], topic: "t", client: "platformatic", compression: "lz4" });
  for (const client of ["kafkajs", "platformatic"] as const) {
    assert.throws(
      () => new SnapshotPublisher({ brokers: ["h:1"], topic: "t", client, compression: "brotli" as "lz4" }),
      /unknown compression brotli/,
    );
  }
  assert.throws(
    () => new SnapshotPublisher({ brokers: ["h:1"], topic: "t", queue_capacity: -1 }),
    RangeError,
  );
  const p = new SnapshotPublisher({ brokers: ["h:1"], topic: "t" });
  await assert.rejects(
    p.publish({} as Parameters<SnapshotPublisher["publish"]>[0]),
    /publish\(\) on a new publisher/,
  );
  assert.deepEqual(await p.close(), {
    offered: 0,
    accepted: 0,
    sent: 0,
    dropped: 0,
    failed: 0,
    invalid: 0,
    nonfinite_sums: 0,
    send_errors: 0,
    queued: 0,
    in_flight: 0,
  });
});

test("close() is idempotent: every call gets the one shutdown's result", async () => {
  const p = new SnapshotPublisher({ brokers: ["h:1"], topic: "t" });
  const first = p.close();
  assert.equal(p.close(), first);
  assert.equal((await first).sent, 0);
});
