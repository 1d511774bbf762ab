/**
 * Two `reluwatch consume` processes in one group on a 4-partition topic: the
 * layers split between them and their sums equal one detector's; after one is
 * killed (SIGKILL, no goodbye), the survivor takes its partitions over,
 * restores their layers from the state topic and reaches the same numbers for every layer without
 * emitting again any event the killed process had emitted and committed.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import type { Kafka } from "kafkajs";
import type { LayerSummary } from "../../src/core/index.js";
import { createTopic, getBroker, kafkaClient, type TestBroker, uniqueTopic } from "../support/broker.js";
import {
  type ConsumerProcess,
  consumerArgs,
  startConsumerProcess,
  waitFor,
} from "../support/consumer-process.js";
import { produceSnapshots, referenceDetector, scenarioSnapshots } from "../support/fleet.js";
import { type Sample, scrape, sumOf } from "../support/metrics.js";
import {
  assertEventsExactlyOnce,
  assertLayersMatch,
  layersMatch,
  waitForCommittedToEnd,
} from "../support/topics.js";

const PARTITIONS = 4;

async function groupMembers(kafka: Kafka, group: string): Promise<number | undefined> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    const { groups } = await admin.describeGroups([group]);
    const g = groups[0];
    return g?.state === "Stable" ? g.members.length : undefined;
  } finally {
    await admin.disconnect();
  }
}

async function apiLayers(p: ConsumerProcess, run: string): Promise<string[]> {
  const res = await fetch(`${p.baseUrl}/api/runs/${encodeURIComponent(run)}/layers`);
  if (res.status === 404) return [];
  assert.equal(res.status, 200);
  const body = (await res.json()) as { layers: LayerSummary[] };
  return body.layers.map((l) => l.layer);
}

function okCount(samples: Sample[]): number {
  return sumOf(samples, "reluwatch_snapshots_total", { result: "ok" });
}

describe("reluwatch consume: two instances in one group", () => {
  let broker: TestBroker;
  const children: ConsumerProcess[] = [];
  before(async () => {
    broker = await getBroker();
  });
  after(() => {
    for (const c of children)
      if (c.child.exitCode === null && c.child.signalCode === null) c.child.kill("SIGKILL");
  });

  test("layers split, sums equal the truth; after a SIGKILL the survivor restores and re-emits nothing", async () => {
    const topic = uniqueTopic("scale");
    const group = `${topic}.group`;
    const events = `${topic}.events`;
    await createTopic(broker, topic, PARTITIONS);
    await createTopic(broker, events, 1);
    const kafka = kafkaClient(broker);
    const args = consumerArgs(broker.brokers, topic);

    const all = scenarioSnapshots("lr-spike", { seed: 43, layers: 8, ranks: 2 });
    // b joins at step 300, when a already holds every layer; units killed at step 500 are
    // called dead around step 650, after b is killed at step 600.
    const join = 300;
    const split = 600;
    const early = all.filter((s) => s.step < join);
    const first = all.filter((s) => s.step < split);
    const rest = all.filter((s) => s.step >= split);
    const run = all[0]!.run_id;

    const a = await startConsumerProcess(args);
    children.push(a);
    await produceSnapshots(kafka, topic, early);
    await waitFor("a alone to apply the first steps", async () =>
      okCount((await scrape(a.baseUrl)).samples) === early.length ? true : undefined,
    );
    await waitForCommittedToEnd(kafka, group, topic);

    // b's arrival revokes half of a's partitions: a must drop those layers and b rebuild them.
    const b = await startConsumerProcess(args);
    children.push(b);
    await waitFor("a stable group of two", () =>
      groupMembers(kafka, group).then((n) => (n === 2 ? true : undefined)),
    );
    await produceSnapshots(
      kafka,
      topic,
      first.filter((s) => s.step >= join),
    );
    await waitForCommittedToEnd(kafka, group, topic);
    for (const p of [a, b]) {
      await waitFor("both instances ready", async () =>
        (await fetch(`${p.baseUrl}/readyz`)).status === 200 ? true : undefined,
      );
    }
    assert.ok(
      b.logs.some((l) => l.event === "state_restored"),
      "b restored the layers it took from a from the state topic (a wrote them on revocation)",
    );
    assert.ok(a.logs.some((l) => l.event === "partitions_revoked"));
    const [sa, sb] = await Promise.all([scrape(a.baseUrl), scrape(b.baseUrl)]);
    const firstRef = referenceDetector(first);
    const layersA = await apiLayers(a, run);
    const layersB = await apiLayers(b, run);
    assert.ok(layersA.length > 0 && layersB.length > 0, "both instances own layers");
    assert.deepEqual(
      [...layersA, ...layersB].sort(),
      firstRef.detector
        .summaries()
        .map((s) => s.layer)
        .sort(),
      "every layer lives in exactly one instance",
    );
    assertLayersMatch([...sa.samples, ...sb.samples], firstRef.detector.summaries());

    // Everything b emitted is committed: any event seen again later was re-emitted, not redelivered.
    await waitForCommittedToEnd(kafka, group, topic);
    const restoresBefore = a.logs.filter((l) => l.event === "state_restored").length;
    b.child.kill("SIGKILL");
    assert.equal(await b.exited, "SIGKILL");

    await produceSnapshots(kafka, topic, rest);
    const reference = referenceDetector(all);
    const { samples } = await waitFor(
      "the survivor to take over and reach the reference for every layer",
      async () => {
        if ((await fetch(`${a.baseUrl}/readyz`)).status !== 200) return undefined;
        const s = await scrape(a.baseUrl);
        return layersMatch(s.samples, reference.detector.summaries()) ? s : undefined;
      },
      120_000,
    );
    assertLayersMatch(samples, reference.detector.summaries());
    assert.deepEqual((await apiLayers(a, run)).sort(), [...new Set(all.map((s) => s.layer))].sort());
    assert.ok(
      a.logs.filter((l) => l.event === "state_restored").length > restoresBefore,
      "the survivor restored the partitions it took over from the state topic",
    );
    assert.ok(
      reference.transitions.some((t) => t.to === "DEAD" && t.step >= split),
      "deaths happen after the kill",
    );

    await waitForCommittedToEnd(kafka, group, topic);
    await assertEventsExactlyOnce(kafka, events, reference.events);
  });
});
