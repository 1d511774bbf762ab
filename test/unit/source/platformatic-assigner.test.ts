/**
 * The @platformatic/kafka side of the sticky assignment: the claims a member
 * sends (what the Consumer holds, in the generation it received it), and a
 * leader's assignment over member subscriptions as the Consumer decodes them,
 * including claims a kafkajs member wrote.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import type { ClusterMetadata, ExtendedGroupProtocolSubscription } from "@platformatic/kafka";
import {
  ownershipOf,
  PLATFORMATIC_PROTOCOLS,
  stickyPartitionAssigner,
} from "../../../src/source/platformatic-assigner.js";
import { stickyAssignment } from "../../../src/source/sticky-assignment.js";
import {
  decodeOwnership,
  encodeOwnership,
  STICKY_ASSIGNER_NAME,
} from "../../../src/source/sticky-ownership.js";

function metadataOf(partitions: Record<string, number>): ClusterMetadata {
  return {
    topics: new Map(
      Object.entries(partitions).map(([topic, partitionsCount]) => [topic, { partitionsCount }]),
    ),
  } as unknown as ClusterMetadata;
}

function members(claims: Record<string, Buffer | undefined>): Map<string, ExtendedGroupProtocolSubscription> {
  return new Map(
    Object.entries(claims).map(([memberId, metadata]) => [
      memberId,
      { memberId, version: 0, topics: ["t"], ...(metadata ? { metadata } : {}) },
    ]),
  );
}

function plain(result: ReturnType<ReturnType<typeof stickyPartitionAssigner>>): Record<string, number[]> {
  return Object.fromEntries(
    result.map(({ memberId, assignments }) => [memberId, assignments.get("t")?.partitions ?? []]),
  );
}

test("claims: what the consumer holds, in the generation it received it; nothing before a join or after leaving", () => {
  const held = { memberId: "m-1", generationId: 7, assignments: [{ topic: "t", partitions: [2, 5] }] };
  assert.deepEqual(ownershipOf(held), {
    generation: 7,
    owned: [
      { topic: "t", partition: 2 },
      { topic: "t", partition: 5 },
    ],
  });
  // The round trip through the wire format the kafkajs assigner reads.
  assert.deepEqual(decodeOwnership(encodeOwnership(ownershipOf(held))), ownershipOf(held));
  assert.deepEqual(ownershipOf({ memberId: null, generationId: 0, assignments: null }), {
    generation: -1,
    owned: [],
  });
  assert.deepEqual(ownershipOf({ memberId: "m-1", generationId: 3, assignments: [] }), {
    generation: -1,
    owned: [],
  });
});

test("the member offers the sticky protocol first and round-robin as the fallback", () => {
  assert.deepEqual(
    PLATFORMATIC_PROTOCOLS.map((p) => p.name),
    [STICKY_ASSIGNER_NAME, "roundrobin"],
  );
});

test("assign: the leader keeps partitions with their owners, as the algorithm says", () => {
  const warnings: string[] = [];
  const assign = stickyPartitionAssigner((id, reason) => warnings.push(`${id}: ${reason}`));
  const aClaims = encodeOwnership({
    generation: 9,
    owned: [0, 1, 2, 3, 4, 5].map((partition) => ({ topic: "t", partition })),
  });
  // b joins owning nothing; its id sorts first, so round-robin would have moved every other partition.
  const result = assign(
    "b-member",
    members({ "b-member": undefined, "a-member": aClaims }),
    new Set(["t"]),
    metadataOf({ t: 6 }),
  );
  assert.deepEqual(plain(result), { "b-member": [3, 4, 5], "a-member": [0, 1, 2] });
  const expected = stickyAssignment(
    [
      { id: "a-member", ...decodeOwnership(aClaims) },
      { id: "b-member", owned: [], generation: -1 },
    ],
    Array.from({ length: 6 }, (_, partition) => ({ topic: "t", partition })),
  );
  assert.deepEqual(
    plain(result)["b-member"],
    expected.get("b-member")!.map((p) => p.partition),
  );
  assert.deepEqual(warnings, []);

  // Claims that do not decode: reported once, the member owns nothing, every partition is still assigned.
  const garbled = assign(
    "b-member",
    members({ "b-member": undefined, "a-member": aClaims, "c-member": Buffer.from([0, 1]) }),
    new Set(["t"]),
    metadataOf({ t: 6 }),
  );
  const all = Object.values(plain(garbled))
    .flat()
    .sort((x, y) => x - y);
  assert.deepEqual(all, [0, 1, 2, 3, 4, 5]);
  assert.deepEqual(plain(garbled)["a-member"], [0, 1]);
  assert.equal(warnings.length, 1);
  assert.match(warnings[0]!, /^c-member: .*truncated/);
});
