/**
 * The kafkajs side of the sticky assignment: the ownership userData format
 * (round trip, a later version's appended fields, refusals), the membership
 * a consumer's events keep current, and a leader's assign() over fake member
 * subscriptions and a fake cluster, decoded as kafkajs decodes them.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import fc from "fast-check";
import { AssignerProtocol, type Cluster, type Consumer, type GroupMember, type Logger } from "kafkajs";
import { reluwatchAssigners, StickyMembership, stickyAssigner } from "../../../src/source/kafka-assigner.js";
import { stickyAssignment } from "../../../src/source/sticky-assignment.js";
import {
  decodeOwnership,
  encodeOwnership,
  OWNERSHIP_FORMAT_VERSION,
  OwnershipFormatError,
  STICKY_ASSIGNER_NAME,
} from "../../../src/source/sticky-ownership.js";
import { propertyParams } from "../../support/property.js";

test("ownership data round-trips: generation and partitions by topic", () => {
  fc.assert(
    fc.property(
      fc.integer({ min: -1, max: 2 ** 31 - 1 }),
      fc.array(fc.record({ topic: fc.string({ minLength: 1, maxLength: 12 }), partition: fc.nat(1 << 20) }), {
        maxLength: 30,
      }),
      (generation, owned) => {
        const decoded = decodeOwnership(encodeOwnership({ generation, owned }));
        assert.equal(decoded.generation, generation);
        const byTopic = (l: typeof owned) =>
          [...l].sort((a, b) => (a.topic < b.topic ? -1 : a.topic > b.topic ? 1 : a.partition - b.partition));
        assert.deepEqual(
          byTopic(decoded.owned),
          byTopic(owned.map((p) => ({ topic: p.topic, partition: p.partition }))),
        );
      },
    ),
    propertyParams({ numRuns: 200 }),
  );
});

test("the format: version 1 big-endian, a later version's appended fields ignored, bad data refused", () => {
  const data = encodeOwnership({ generation: 7, owned: [{ topic: "t", partition: 3 }] });
  assert.equal(data.readUInt16BE(0), OWNERSHIP_FORMAT_VERSION);
  assert.equal(data.readInt32BE(2), 7);
  assert.deepEqual(
    [...data],
    [0, 1, 0, 0, 0, 7, 0, 1, 0, 1, 0x74, 0, 0, 0, 1, 0, 0, 0, 3],
    "u16 version, i32 generation, u16 topics, u16 + 't', i32 count, i32 partition",
  );
  // A version 2 that appends a field after the version-1 layout: an older leader reads what it knows.
  const later = Buffer.concat([data, Buffer.from([0xde, 0xad, 0xbe, 0xef])]);
  later.writeUInt16BE(2, 0);
  assert.deepEqual(decodeOwnership(later), { generation: 7, owned: [{ topic: "t", partition: 3 }] });

  assert.throws(() => decodeOwnership(data.subarray(0, data.length - 1)), OwnershipFormatError);
  assert.throws(() => decodeOwnership(Buffer.alloc(3)), OwnershipFormatError);
  const zero = Buffer.from(data);
  zero.writeUInt16BE(0, 0);
  assert.throws(() => decodeOwnership(zero), /unknown ownership format version 0/);
});

type Listener = (e: { payload: Record<string, unknown> }) => void;

function fakeConsumer() {
  const listeners = new Map<string, Listener[]>();
  const consumer = {
    events: { GROUP_JOIN: "group_join", HEARTBEAT: "heartbeat", COMMIT_OFFSETS: "commit_offsets" },
    on(event: string, l: Listener) {
      listeners.set(event, [...(listeners.get(event) ?? []), l]);
    },
  };
  const emit = (event: string, payload: Record<string, unknown>) => {
    for (const l of listeners.get(event) ?? []) l({ payload });
  };
  return { consumer: consumer as unknown as Consumer, emit };
}

test("the membership follows the consumer: partitions from each join, the newest generation confirmed", () => {
  const membership = new StickyMembership();
  const { consumer, emit } = fakeConsumer();
  membership.follow(consumer);
  assert.deepEqual(membership.current(), { generation: -1, owned: [] });
  emit("group_join", { memberAssignment: { t: [0, 2] } });
  emit("heartbeat", { groupGenerationId: 4 });
  assert.deepEqual(membership.current(), {
    generation: 4,
    owned: [
      { topic: "t", partition: 0 },
      { topic: "t", partition: 2 },
    ],
  });
  // A late heartbeat of an older generation never lowers it; a commit confirms a newer one.
  emit("heartbeat", { groupGenerationId: 3 });
  emit("group_join", { memberAssignment: { t: [1] } });
  assert.equal(membership.current().generation, 4, "a join alone confirms nothing");
  emit("commit_offsets", { groupGenerationId: 5 });
  assert.deepEqual(membership.current(), { generation: 5, owned: [{ topic: "t", partition: 1 }] });
});

function fakeCluster(partitions: Record<string, number>): Cluster {
  return {
    findTopicPartitionMetadata: (topic: string) =>
      Array.from({ length: partitions[topic] ?? 0 }, (_, partitionId) => ({ partitionId })),
  } as unknown as Cluster;
}

function recordingLogger() {
  const warnings: Array<{ message: string; extra: unknown }> = [];
  const logger = {
    warn: (message: string, extra: unknown) => warnings.push({ message, extra }),
    info: () => {},
    debug: () => {},
    error: () => {},
    namespace: () => logger,
    setLogLevel: () => {},
  } as unknown as Logger;
  return { logger, warnings };
}

function decodeAssignments(result: Array<{ memberId: string; memberAssignment: Buffer }>) {
  return Object.fromEntries(
    result.map(({ memberId, memberAssignment }) => [
      memberId,
      AssignerProtocol.MemberAssignment.decode(memberAssignment)!.assignment,
    ]),
  );
}

test("assign: each member's subscription carries its ownership; the leader keeps partitions with their owners", async () => {
  const { logger, warnings } = recordingLogger();
  const cluster = fakeCluster({ t: 6 });
  const config = { cluster, groupId: "g", logger };

  const a = new StickyMembership();
  a.joined({ t: [0, 1, 2, 3, 4, 5] });
  a.confirmed(9);
  const b = new StickyMembership();
  const subscription = (m: StickyMembership) => stickyAssigner(m)(config).protocol({ topics: ["t"] });
  assert.equal(subscription(a).name, STICKY_ASSIGNER_NAME);
  const metadata = AssignerProtocol.MemberMetadata.decode(subscription(a).metadata)!;
  assert.deepEqual(metadata.topics, ["t"]);
  assert.equal(decodeOwnership(metadata.userData).generation, 9);

  const members: GroupMember[] = [
    { memberId: "b-member", memberMetadata: subscription(b).metadata },
    { memberId: "a-member", memberMetadata: subscription(a).metadata },
  ];
  const leader = stickyAssigner(b)(config);
  const result = await leader.assign({ members, topics: ["t"] });
  // a keeps half, b takes the other half, though b's id would come first in round-robin order.
  assert.deepEqual(decodeAssignments(result), { "a-member": { t: [0, 1, 2] }, "b-member": { t: [3, 4, 5] } });
  const expected = stickyAssignment(
    [
      { id: "a-member", owned: a.current().owned, generation: 9 },
      { id: "b-member", owned: [], generation: -1 },
    ],
    Array.from({ length: 6 }, (_, partition) => ({ topic: "t", partition })),
  );
  assert.deepEqual(
    decodeAssignments(result)["b-member"]!.t,
    expected.get("b-member")!.map((p) => p.partition),
  );
  assert.deepEqual(warnings, []);

  // A member whose userData does not decode owns nothing: logged, and the group still gets every partition.
  const garbled = AssignerProtocol.MemberMetadata.encode({
    version: 0,
    topics: ["t"],
    userData: Buffer.from([0, 1]),
  });
  const withGarbage = await leader.assign({
    members: [...members, { memberId: "c-member", memberMetadata: garbled }],
    topics: ["t"],
  });
  assert.deepEqual(decodeAssignments(withGarbage), {
    "a-member": { t: [0, 1] },
    "b-member": { t: [2, 4] },
    "c-member": { t: [3, 5] },
  });
  assert.equal(warnings.length, 1);
  assert.match(JSON.stringify(warnings[0]), /c-member.*truncated/);
});

test("the consumer offers the sticky protocol first and round-robin as the fallback", () => {
  const config = { cluster: fakeCluster({ t: 2 }), groupId: "g", logger: recordingLogger().logger };
  const names = reluwatchAssigners(new StickyMembership()).map((f) => f(config).name);
  assert.deepEqual(names, [STICKY_ASSIGNER_NAME, "RoundRobinAssigner"]);
});
