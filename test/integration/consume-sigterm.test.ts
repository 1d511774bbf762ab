/**
 * Graceful shutdown of `reluwatch consume` as deployed (a child process):
 * SIGTERM commits what was processed and exits 0, and a new process in the
 * same group restores the layers from the state topic without emitting any
 * event a second time.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import type { UnitTransition } from "../../src/core/index.js";
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
  assertEventsExactlyOnce,
  assertLayersMatch,
  committedOffsets,
  endOffsets,
  transitionKey,
  waitForCommittedToEnd,
} from "../support/topics.js";

/** Resolves with the exit code, or fails when the process outlives the bound. */
function exitWithin(p: ConsumerProcess, ms: number): Promise<number | string> {
  return Promise.race([
    p.exited,
    new Promise<never>((_, reject) =>
      setTimeout(() => reject(new Error(`no exit within ${ms} ms`)), ms).unref(),
    ),
  ]);
}

describe("reluwatch consume: SIGTERM and restart", () => {
  let broker: TestBroker;
  const children: ConsumerProcess[] = [];
  before(async () => {
    broker = await getBroker();
  });
  after(() => {
    for (const c of children) if (c.child.exitCode === null) c.child.kill("SIGKILL");
  });

  test("SIGTERM commits and exits 0; a restart in the same group restores and emits no event twice", async () => {
    const topic = uniqueTopic("sigterm");
    const group = `${topic}.group`;
    const events = `${topic}.events`;
    await createTopic(broker, topic, 3);
    await createTopic(broker, events, 1);
    const kafka = kafkaClient(broker);
    const args = consumerArgs(broker.brokers, topic);

    const startedAt = Date.now();
    const all = scenarioSnapshots("lr-spike", { seed: 31 });
    // The units killed at step 500 are called dead at step 650: the restarted process must report them.
    const split = 600;
    const first = all.filter((s) => s.step < split);
    const rest = all.filter((s) => s.step >= split);

    const a = await startConsumerProcess(args);
    children.push(a);
    await produceSnapshots(kafka, topic, first);
    await waitFor("the first process to apply the first half", async () => {
      const { samples } = await scrape(a.baseUrl);
      return sumOf(samples, "reluwatch_snapshots_total", { result: "ok" }) === first.length
        ? true
        : undefined;
    });
    a.child.kill("SIGTERM");
    assert.equal(await exitWithin(a, 30_000), 0, "graceful exit code");
    assert.ok(
      a.logs.some((l) => l.event === "stopped"),
      "the process logged its clean stop",
    );

    const end = await endOffsets(kafka, topic);
    const committed = await committedOffsets(kafka, group, topic);
    for (const [partition, high] of end) {
      if (high === 0n) continue;
      assert.equal(committed.get(partition), high, `partition ${partition} committed to its end`);
    }

    const b = await startConsumerProcess(args);
    children.push(b);
    // A member can be ready for a moment with no partitions at all (its first assignment may come
    // before the topic's metadata); what matters is that it rebuilt the windows and then went live.
    await waitFor("the restarted process to rebuild its windows and be ready", async () =>
      b.logs.some((l) => l.event === "restore_finished") &&
      (await fetch(`${b.baseUrl}/readyz`)).status === 200
        ? true
        : undefined,
    );
    assert.ok(
      b.logs.some((l) => l.event === "state_restored"),
      "the restarted process restored the layers from the state topic",
    );
    assert.ok(b.logs.some((l) => l.event === "restore_finished"));
    assert.equal(sumOf((await scrape(b.baseUrl)).samples, "reluwatch_restoring"), 0);

    await produceSnapshots(kafka, topic, rest);
    // The first half came back from the state topic, not from input: the restarted process applies only the rest.
    const { samples } = await waitFor("the restarted process to apply the rest", async () => {
      const s = await scrape(b.baseUrl);
      return sumOf(s.samples, "reluwatch_snapshots_total", { result: "ok" }) === rest.length ? s : undefined;
    });
    const reference = referenceDetector(all);
    assertLayersMatch(samples, reference.detector.summaries());
    assert.ok(
      reference.transitions.some((t) => t.to === "DEAD" && t.step >= split),
      "the second half has deaths to report",
    );

    // The restarted process commits after writing its events; once it has, every event is on the topic.
    await waitForCommittedToEnd(kafka, group, topic);
    await assertEventsExactlyOnce(kafka, events, reference.events);

    // The log carries each later change too, once over both processes, stamped with when it was
    // logged; first verdicts (from UNKNOWN) are summarised per layer.
    const logs = [...a.logs, ...b.logs];
    const logged = logs.filter((l) => l.event === "unit_transition");
    const loggedKeys = new Set(logged.map((l) => transitionKey(l as unknown as UnitTransition)));
    const firstVerdicts = reference.transitions.filter((t) => t.from === "UNKNOWN").length;
    assert.equal(logged.length, reference.transitions.length - firstVerdicts);
    const summarised = logs
      .filter((l) => l.event === "first_verdicts")
      .reduce((n, l) => n + Object.values(l.to as Record<string, number>).reduce((x, y) => x + y, 0), 0);
    assert.equal(summarised, firstVerdicts);
    assert.equal(loggedKeys.size, logged.length, "no transition was logged twice");
    for (const l of logged) {
      assert.ok((l.time as number) >= startedAt, "log time is wall time");
      assert.ok((l.snapshot_time as number) < startedAt, "the snapshot's time has its own field");
    }

    b.child.kill("SIGTERM");
    assert.equal(await exitWithin(b, 30_000), 0);
  });
});
