/**
 * Restarts that forget nothing: a consumer whose restore lookback is far
 * shorter than the run's history is stopped mid-run (SIGTERM, then SIGKILL)
 * and restarted; the layers come back from the state topic, not from input.
 * Afterwards units by state and the cumulative death and born-dead figures
 * equal the offline reference's, and the events topic holds every death the
 * reference has and no other: exactly once after SIGTERM, at least once after
 * SIGKILL (the batches processed after the last commit are processed again).
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { decodeTransition } from "../../src/codec/index.js";
import { KAFKA_CLIENTS } from "../../src/config/index.js";
import { createTopic, getBroker, kafkaClient, type TestBroker, uniqueTopic } from "../support/broker.js";
import {
  type ConsumerProcess,
  consumerArgs,
  startConsumerProcess,
  waitFor,
} from "../support/consumer-process.js";
import { produceSnapshots, referenceDetector, scenarioSnapshots } from "../support/fleet.js";
import { scrape, sumOf } from "../support/metrics.js";
import {
  assertCountersMatch,
  assertEventsExactlyOnce,
  assertLayersMatch,
  committedOffsets,
  endOffsets,
  layersMatch,
  readTopic,
  transitionKey,
  waitForCommittedToEnd,
} from "../support/topics.js";

function exitWithin(p: ConsumerProcess, ms: number): Promise<number | string> {
  return Promise.race([
    p.exited,
    new Promise<never>((_, reject) =>
      setTimeout(() => reject(new Error(`no exit within ${ms} ms`)), ms).unref(),
    ),
  ]);
}

describe("reluwatch consume: state restored from the state topic across restarts", () => {
  let broker: TestBroker;
  const children: ConsumerProcess[] = [];
  before(async () => {
    broker = await getBroker();
  });
  after(() => {
    for (const c of children) if (c.child.exitCode === null) c.child.kill("SIGKILL");
  });

  const cases = KAFKA_CLIENTS.flatMap((client) =>
    (["SIGTERM", "SIGKILL"] as const).map((signal) => ({ client, signal })),
  );
  for (const { client, signal } of cases) {
    test(`${signal} mid-run, restart with a lookback shorter than the run: no state lost (${client})`, async (t) => {
      const topic = uniqueTopic(`state-${signal.toLowerCase()}-${client}`);
      const group = `${topic}.group`;
      const events = `${topic}.events`;
      await createTopic(broker, topic, 3);
      await createTopic(broker, events, 1);
      const kafka = kafkaClient(broker);
      // A 1 ms lookback rebuilds nothing: whatever the restart knows comes from the state topic.
      const args = [
        ...consumerArgs(broker.brokers, topic),
        "--restore-lookback-ms",
        "1",
        "--checkpoint-interval-ms",
        "300",
        "--kafka-client",
        client,
      ];
      const all = scenarioSnapshots("lr-spike", { seed: 47 });
      // Units killed at step 500 are called dead at 650; born-dead verdicts come early: both halves matter.
      const split = 600;
      const first = all.filter((s) => s.step < split);
      const rest = all.filter((s) => s.step >= split);
      const reference = referenceDetector(all);
      const summaries = reference.detector.summaries();
      assert.ok(
        reference.events.some((e) => e.step >= split && e.to === "DEAD"),
        "the second half has deaths",
      );

      const a = await startConsumerProcess(args);
      children.push(a);
      await produceSnapshots(kafka, topic, first);
      await waitFor("the first process to apply the first half", async () => {
        const { samples } = await scrape(a.baseUrl);
        return sumOf(samples, "reluwatch_snapshots_total", { result: "ok" }) === first.length
          ? true
          : undefined;
      });
      // Processed is not yet durable: commits come on a cadence (commit_interval_ms). A kill before
      // any commit would leave nothing to restore, which tests nothing here; a kill after some
      // commit still loses the batches processed since, and those must come back.
      const ends = await endOffsets(kafka, topic);
      await waitFor("the first process to commit every partition it consumed", async () => {
        const committed = await committedOffsets(kafka, group, topic);
        for (const [p, end] of ends) if (end > 0n && (committed.get(p) ?? -1n) <= 0n) return undefined;
        return true;
      });
      a.child.kill(signal);
      const code = await exitWithin(a, 30_000);
      assert.equal(code, signal === "SIGTERM" ? 0 : "SIGKILL");

      const b = await startConsumerProcess(args);
      children.push(b);
      // After SIGKILL the group first waits for the dead member's session (30 s) to expire.
      await waitFor(
        "the restarted process to restore and be ready",
        async () =>
          b.logs.some((l) => l.event === "state_restored") &&
          (await fetch(`${b.baseUrl}/readyz`)).status === 200
            ? true
            : undefined,
        120_000,
      ).catch((err: Error) => {
        throw new Error(`${err.message}\n${b.logs.map((l) => JSON.stringify(l)).join("\n")}`);
      });
      await produceSnapshots(kafka, topic, rest);
      const { samples } = await waitFor("the restarted process to match the reference", async () => {
        const s = await scrape(b.baseUrl);
        return layersMatch(s.samples, summaries) ? s : undefined;
      });
      assertLayersMatch(samples, summaries);
      assertCountersMatch(samples, summaries);
      await waitForCommittedToEnd(kafka, group, topic);

      const emitted = (await readTopic(kafka, events)).map((m) => decodeTransition(m.value!));
      const expected = new Set(reference.events.map(transitionKey));
      const seen = new Set(emitted.map(transitionKey));
      t.diagnostic(
        `${signal}: reference ${reference.events.length} events (${summaries.reduce((n, s) => n + s.deaths_total, 0)} deaths, ${summaries.reduce((n, s) => n + s.born_dead_units, 0)} born dead); ` +
          `events topic ${emitted.length} records, ${seen.size} distinct; restored after ${first.length} snapshots, ${rest.length} after`,
      );
      if (signal === "SIGTERM") {
        await assertEventsExactlyOnce(kafka, events, reference.events);
      } else {
        for (const k of expected) assert.ok(seen.has(k), `event ${k} emitted at least once`);
        for (const k of seen) assert.ok(expected.has(k), `event ${k} is one the reference has`);
      }
      b.child.kill("SIGTERM");
      assert.equal(await exitWithin(b, 30_000), 0);
    });
  }
});
