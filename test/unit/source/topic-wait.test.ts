/**
 * waitForTopic against an address where nothing listens (no broker needed):
 * it reports what it waits for, logs once per condition rather than once per
 * attempt, gives up at its deadline with the condition's code, and stops at
 * once when aborted. The broker-backed paths (topic missing, then created)
 * are in test/integration/kafka-conditions.test.ts.
 */
import assert from "node:assert/strict";
import { Writable } from "node:stream";
import { test } from "node:test";
import { pino } from "pino";
import type { KafkaSettings } from "../../../src/config/load.js";
import { KafkaError } from "../../../src/source/kafka-errors.js";
import { waitForTopic } from "../../../src/source/topic-wait.js";
import { freePort } from "../../support/ports.js";

function capture() {
  const lines: Array<Record<string, unknown>> = [];
  const stream = new Writable({
    write(chunk, _enc, done) {
      lines.push(JSON.parse(String(chunk)) as Record<string, unknown>);
      done();
    },
  });
  return { lines, log: pino({ level: "info" }, stream) };
}

async function settingsOfClosedPort(): Promise<KafkaSettings> {
  return {
    brokers: [`127.0.0.1:${await freePort()}`],
    client_id: "reluwatch-test",
    ssl: false,
    ssl_reject_unauthorized: true,
  };
}

test("gives up at the deadline with BROKER_UNREACHABLE, after saying what it waited for", async () => {
  const settings = await settingsOfClosedPort();
  const { lines, log } = capture();
  const reasons: Array<string | undefined> = [];
  const err = await waitForTopic(settings, {
    topic: "t",
    timeoutMs: 1_500,
    initialBackoffMs: 100,
    maxBackoffMs: 200,
    log,
    onWaiting: (r) => reasons.push(r),
  }).then(
    () => assert.fail("resolved without a broker"),
    (e: unknown) => e,
  );
  assert.ok(err instanceof KafkaError);
  assert.equal(err.code, "BROKER_UNREACHABLE");
  assert.match(err.message, new RegExp(`cannot reach Kafka at ${settings.brokers[0]} .*\\(gave up after`));
  assert.ok(reasons.length >= 2, "retried with backoff");
  for (const r of reasons) assert.match(String(r), /^waiting for Kafka: cannot reach Kafka at /);
  const waiting = lines.filter((l) => l.event === "waiting_for_kafka");
  assert.equal(waiting.length, 1, "one log line for an unchanged condition, not one per attempt");
  assert.equal(waiting[0]!.code, "BROKER_UNREACHABLE");
  assert.deepEqual(waiting[0]!.brokers, settings.brokers);
});

test("an abort ends the wait at once", async () => {
  const settings = await settingsOfClosedPort();
  const { log } = capture();
  const abort = new AbortController();
  const waiting = waitForTopic(settings, {
    topic: "t",
    log,
    signal: abort.signal,
    onWaiting: () => abort.abort(),
  });
  await assert.rejects(waiting, { name: "AbortError" });
});
