/**
 * Sticky assignment against the real broker. Instance a consumes a simulated
 * fleet on a 6-partition topic alone; b joins mid-run and takes exactly the
 * partitions the sticky algorithm gives it (half), restoring them from the
 * state topic while a keeps the rest in memory, restoring nothing; b then
 * leaves with SIGTERM and a restores b's partitions from the state topic.
 * At the end a's layers, per-layer deaths and born-dead counts equal the
 * offline detector's, its dead verdicts score as the offline detector's do
 * against the simulator's truth, and the events topic holds every transition
 * exactly once (each membership change happens with everything committed, and
 * a SIGTERM commits what it emitted: docs/architecture.md, delivery guarantees).
 * It runs for a group of each Kafka client and for one mixing them (a's
 * kafkajs, b's @platformatic/kafka: both speak the same sticky protocol).
 * A second test joins a sticky member and one offering only kafkajs's default
 * round-robin to one group: they agree on round-robin, as in a rolling upgrade.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { AssignerProtocol, type Kafka } from "kafkajs";
import { decodeTransition } from "../../src/codec/index.js";
import type { KafkaClient } from "../../src/config/index.js";
import { Detector } from "../../src/core/index.js";
import { scoreScenario } from "../../src/eval/score.js";
import { fleetTruth, resolveScenario } from "../../src/sim/index.js";
import { reluwatchAssigners, StickyMembership } from "../../src/source/kafka-assigner.js";
import { stickyAssignment } from "../../src/source/sticky-assignment.js";
import { decodeOwnership, type Ownership, STICKY_ASSIGNER_NAME } from "../../src/source/sticky-ownership.js";
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
  endOffsets,
  layersMatch,
  readTopic,
  waitForCommittedToEnd,
} from "../support/topics.js";

const PARTITIONS = 6;
const ALL = Array.from({ length: PARTITIONS }, (_, p) => p);

interface Member {
  memberId: string;
  /** What the member told the leader it owned at the last join. */
  ownership: Ownership;
  assigned: number[];
}

/** The protocol of a stable group of `size` members; undefined while it is not one. */
async function stableProtocol(kafka: Kafka, group: string, size: number): Promise<string | undefined> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    const [g] = (await admin.describeGroups([group])).groups;
    return g?.state === "Stable" && g.members.length === size ? g.protocol : undefined;
  } finally {
    await admin.disconnect();
  }
}

/** The members of a stable group of `size` using the sticky protocol; undefined while it is not one. */
async function stableGroup(
  kafka: Kafka,
  group: string,
  topic: string,
  size: number,
): Promise<Member[] | undefined> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    const [g] = (await admin.describeGroups([group])).groups;
    if (g?.state !== "Stable" || g.members.length !== size) return undefined;
    assert.equal(g.protocol, STICKY_ASSIGNER_NAME, "the group agreed on the sticky protocol");
    return g.members.map((m) => ({
      memberId: m.memberId,
      ownership: decodeOwnership(AssignerProtocol.MemberMetadata.decode(m.memberMetadata)!.userData),
      assigned: [
        ...(AssignerProtocol.MemberAssignment.decode(m.memberAssignment)?.assignment[topic] ?? []),
      ].sort((x, y) => x - y),
    }));
  } finally {
    await admin.disconnect();
  }
}

/** What the algorithm makes of the ownership the members reported. */
function expectedAssignment(members: Member[], topic: string): Map<string, number[]> {
  const result = stickyAssignment(
    members.map((m) => ({ id: m.memberId, ...m.ownership })),
    ALL.map((partition) => ({ topic, partition })),
  );
  return new Map([...result].map(([id, ps]) => [id, ps.map((p) => p.partition)]));
}

function logged(p: ConsumerProcess, event: string, from = 0): Array<Record<string, unknown>> {
  return p.logs.slice(from).filter((l) => l.event === event);
}

function restoredPartitions(p: ConsumerProcess, from = 0): Set<number> {
  return new Set(logged(p, "state_restored", from).map((l) => l.partition as number));
}

function okCount(p: ConsumerProcess): Promise<number> {
  return scrape(p.baseUrl).then((s) => sumOf(s.samples, "reluwatch_snapshots_total", { result: "ok" }));
}

describe("reluwatch consume: sticky assignment as an instance joins and leaves", () => {
  let broker: TestBroker;
  const children: ConsumerProcess[] = [];
  before(async () => {
    broker = await getBroker();
  });
  after(() => {
    for (const c of children)
      if (c.child.exitCode === null && c.child.signalCode === null) c.child.kill("SIGKILL");
  });

  // Either client leads a group of its own; a group mixing them (an upgrade from one to the other) agrees too.
  const pairs: Array<[KafkaClient, KafkaClient]> = [
    ["kafkajs", "kafkajs"],
    ["platformatic", "platformatic"],
    ["kafkajs", "platformatic"],
  ];
  for (const [clientA, clientB] of pairs)
    test(`b joins: half the partitions move, as the algorithm says; b leaves (SIGTERM): they return, restored, nothing lost (a ${clientA}, b ${clientB})`, async (t) => {
      const topic = uniqueTopic("join-leave");
      const group = `${topic}.group`;
      const events = `${topic}.events`;
      await createTopic(broker, topic, PARTITIONS);
      await createTopic(broker, events, 1);
      const kafka = kafkaClient(broker);
      // A 1 ms lookback rebuilds nothing from input: a moved partition knows only what the state topic holds.
      const common = [...consumerArgs(broker.brokers, topic), "--restore-lookback-ms", "1"];
      const argsA = [...common, "--kafka-client", clientA];
      const argsB = [...common, "--kafka-client", clientB];

      const overrides = { seed: 53, layers: 12, ranks: 2, born_dead: 0.02 };
      const scenario = resolveScenario("lr-spike", overrides);
      const all = scenarioSnapshots("lr-spike", overrides);
      // b joins at step 400 (born-dead verdicts, about 350 steps in, are out: state to lose), leaves at
      // 700; units killed at step 500 are called dead after that, by a alone.
      const join = 400;
      const leave = 700;
      const phases = [
        all.filter((s) => s.step < join),
        all.filter((s) => s.step >= join && s.step < leave),
        all.filter((s) => s.step >= leave),
      ] as const;
      const reference = referenceDetector(all);
      assert.ok(
        reference.events.some((e) => e.step >= leave && e.to === "DEAD"),
        "deaths are decided after b left",
      );
      assert.ok(
        reference.events.some((e) => e.step < join && e.born_dead),
        "born-dead verdicts before b joined",
      );

      const a = await startConsumerProcess(argsA);
      children.push(a);
      await produceSnapshots(kafka, topic, phases[0]);
      await waitFor("a alone to apply the first phase", async () =>
        (await okCount(a)) === phases[0].length ? true : undefined,
      );
      await waitForCommittedToEnd(kafka, group, topic);
      const withData = [...(await endOffsets(kafka, topic))].filter(([, high]) => high > 0n).map(([p]) => p);
      assert.ok(withData.length >= PARTITIONS - 1, `layers on ${withData} of ${PARTITIONS} partitions`);
      const [alone] = (await waitFor("a alone in the group", () => stableGroup(kafka, group, topic, 1)))!;
      assert.deepEqual(alone!.assigned, ALL);

      // b joins.
      const revokedBefore = logged(a, "partitions_revoked").length;
      const b = await startConsumerProcess(argsB);
      children.push(b);
      const pair = await waitFor("a stable group of a and b", async () => {
        const members = await stableGroup(kafka, group, topic, 2);
        return members?.every((m) => m.assigned.length > 0) ? members : undefined;
      });
      const aMember = pair.find((m) => m.ownership.owned.length > 0)!;
      const bMember = pair.find((m) => m !== aMember)!;
      assert.ok(aMember, "a reported what it owned");
      assert.deepEqual(
        aMember.ownership.owned.map((p) => p.partition).sort((x, y) => x - y),
        ALL,
        "a reported every partition, from its confirmed generation",
      );
      assert.ok(aMember.ownership.generation >= 1);
      assert.deepEqual(bMember.ownership, { generation: -1, owned: [] }, "b joined owning nothing");
      const expected = expectedAssignment(pair, topic);
      assert.deepEqual(aMember.assigned, expected.get(aMember.memberId));
      assert.deepEqual(bMember.assigned, expected.get(bMember.memberId));
      const moved = bMember.assigned;
      assert.equal(moved.length, PARTITIONS / 2, "half the partitions moved");
      t.diagnostic(`b took ${moved}; a kept ${aMember.assigned}`);

      const revoked = await waitFor("a to drop what it gave up", () => {
        const l = logged(a, "partitions_revoked", 0).slice(revokedBefore);
        return l.length > 0 ? l.flatMap((x) => x.partitions as number[]).sort((x, y) => x - y) : undefined;
      });
      assert.deepEqual(revoked, moved, "a gave up exactly b's partitions and kept the rest");
      const movedWithData = moved.filter((p) => withData.includes(p));
      await waitFor("b to restore what it took from the state topic", () =>
        movedWithData.every((p) => restoredPartitions(b).has(p)) ? true : undefined,
      );
      assert.deepEqual([...restoredPartitions(b)].sort(), movedWithData, "b restored only what moved");

      await produceSnapshots(kafka, topic, phases[1]);
      await waitForCommittedToEnd(kafka, group, topic);
      assert.deepEqual(
        logged(a, "state_restored"),
        [],
        "a kept its partitions in memory across both rebalances: it never restored anything",
      );
      assert.equal(logged(a, "partitions_revoked").length, revokedBefore + 1, "a gave partitions up once");

      // b leaves.
      const aLogsBeforeLeave = a.logs.length;
      b.child.kill("SIGTERM");
      assert.equal(await waitFor("b to exit", () => b.child.exitCode ?? undefined, 30_000), 0);
      const [survivor] = (await waitFor("a alone again", async () => {
        const members = await stableGroup(kafka, group, topic, 1);
        return members?.[0]?.assigned.length === PARTITIONS ? members : undefined;
      }))!;
      assert.equal(survivor!.memberId, aMember.memberId);
      assert.deepEqual(
        survivor!.ownership.owned.map((p) => p.partition).sort((x, y) => x - y),
        aMember.assigned,
        "a reported what it kept",
      );
      assert.ok(
        survivor!.ownership.generation > aMember.ownership.generation,
        "a's commits and heartbeats confirmed the newer generation",
      );
      assert.deepEqual(survivor!.assigned, expectedAssignment([survivor!], topic).get(survivor!.memberId));
      await waitFor("a to restore b's partitions from the state topic", () =>
        movedWithData.every((p) => restoredPartitions(a, aLogsBeforeLeave).has(p)) ? true : undefined,
      );
      assert.deepEqual(
        [...restoredPartitions(a, aLogsBeforeLeave)].sort(),
        movedWithData,
        "a restored only what came back",
      );

      await produceSnapshots(kafka, topic, phases[2]);
      const summaries = reference.detector.summaries();
      const { samples } = await waitFor(
        "a to reach the reference for every layer",
        async () => {
          const s = await scrape(a.baseUrl);
          return layersMatch(s.samples, summaries) ? s : undefined;
        },
        120_000,
      );
      assertLayersMatch(samples, summaries);
      assertCountersMatch(samples, summaries);
      await waitForCommittedToEnd(kafka, group, topic);

      // No state lost: a second death without a revival, or a unit called born dead after it fired, would be
      // an event the reference does not have; a missed one would be missing.
      await assertEventsExactlyOnce(kafka, events, reference.events);

      // The verdicts against the simulator's truth: as good as the offline detector's, and good.
      const emitted = (await readTopic(kafka, events)).map((m) => decodeTransition(m.value!));
      const config = new Detector().config;
      const truth = fleetTruth(scenario);
      const served = scoreScenario(truth, emitted, config);
      const offline = scoreScenario(truth, reference.events, config);
      t.diagnostic(
        `truth: ${served.truly_dead} truly dead, ${served.dead_verdicts} dead verdicts, recall ${served.recall}, precision ${served.precision}`,
      );
      assert.deepEqual(served, offline);
      assert.deepEqual(served.failures, []);
      assert.ok(served.truly_dead > 0, "units truly died");
      assert.equal(served.recall, 1);
      assert.equal(served.precision, 1);

      a.child.kill("SIGTERM");
      assert.equal(await waitFor("a to exit", () => a.child.exitCode ?? undefined, 30_000), 0);
    });

  test("rolling upgrade: a member of a release that offers only round-robin and a sticky one agree on round-robin", async () => {
    const topic = uniqueTopic("join-leave-mixed");
    const group = `${topic}.group`;
    await createTopic(broker, topic, 4);
    const kafka = kafkaClient(broker);
    const upgraded = kafka.consumer({
      groupId: group,
      partitionAssigners: reluwatchAssigners(new StickyMembership()),
    });
    // kafkajs's default assigners: what a release before the sticky assigner offered.
    const previous = kafka.consumer({ groupId: group });
    const crashes: unknown[] = [];
    try {
      for (const c of [upgraded, previous]) {
        c.on(c.events.CRASH, (e) => crashes.push(e.payload.error));
        await c.connect();
        await c.subscribe({ topic, fromBeginning: true });
        await c.run({ eachMessage: async () => {} });
      }
      assert.equal(
        await waitFor("a stable group of both releases", () => stableProtocol(kafka, group, 2)),
        "RoundRobinAssigner",
      );
      await previous.disconnect();
      assert.equal(
        await waitFor("the upgraded member alone", () => stableProtocol(kafka, group, 1)),
        STICKY_ASSIGNER_NAME,
        "once every member offers it, the group assigns with the sticky protocol",
      );
      assert.deepEqual(crashes, []);
    } finally {
      await Promise.allSettled([upgraded.disconnect(), previous.disconnect()]);
    }
  });
});
