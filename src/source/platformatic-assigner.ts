/**
 * The sticky assignment (sticky-assignment.ts) for @platformatic/kafka's
 * Consumer, under the same protocol name and claims format
 * (sticky-ownership.ts) as the kafkajs assigner, so either client may lead a
 * group that mixes both.
 *
 * Unlike kafkajs, this client keeps the member's own state in view: at every
 * join the claims are the assignment it holds and the generation it received
 * it in (`Consumer.assignments`, `Consumer.generationId`), exact rather than
 * the newest generation a heartbeat confirmed.
 */
import type {
  ClusterMetadata,
  Consumer,
  ExtendedGroupProtocolSubscription,
  GroupAssignment,
  GroupPartitionsAssignments,
  GroupProtocolSubscription,
} from "@platformatic/kafka";
import { stickyAssignment, type TopicPartition } from "./sticky-assignment.js";
import { memberClaims, type Ownership, STICKY_ASSIGNER_NAME } from "./sticky-ownership.js";

/**
 * The protocols a member offers, in order of preference: round-robin second,
 * so that a group with members of a release that offers only round-robin still
 * forms (the coordinator picks a protocol every member offers).
 */
export const PLATFORMATIC_PROTOCOLS: GroupProtocolSubscription[] = [
  { name: STICKY_ASSIGNER_NAME, version: 0 },
  { name: "roundrobin", version: 0 },
];

/**
 * What a member holds, as its claims for the next join (sent through the
 * Consumer's `protocolsMetadata` option); a member that left or never joined
 * holds nothing.
 */
export function ownershipOf(
  consumer: Pick<Consumer, "assignments" | "generationId" | "memberId">,
): Ownership {
  const held: GroupAssignment[] = consumer.memberId ? (consumer.assignments ?? []) : [];
  const owned = held.flatMap(({ topic, partitions }) =>
    partitions.map((partition) => ({ topic, partition })),
  );
  return { generation: owned.length > 0 ? consumer.generationId : -1, owned };
}

/**
 * The leader's side (the Consumer's `partitionAssigner` option): every
 * member's claims in, the sticky assignment out. Members whose claims do not
 * decode are reported and own nothing.
 */
export function stickyPartitionAssigner(
  onUndecodable: (memberId: string, reason: string) => void,
): (
  leader: string,
  members: Map<string, ExtendedGroupProtocolSubscription>,
  topics: Set<string>,
  metadata: ClusterMetadata,
) => GroupPartitionsAssignments[] {
  return (_leader, members, topics, metadata) => {
    const claims = [...members.values()].map(({ memberId, metadata: userData }) =>
      memberClaims(memberId, typeof userData === "string" ? Buffer.from(userData) : userData, onUndecodable),
    );
    const partitions: TopicPartition[] = [];
    for (const topic of topics) {
      const count = metadata.topics.get(topic)?.partitionsCount ?? 0;
      for (let partition = 0; partition < count; partition++) partitions.push({ topic, partition });
    }
    const assignment = stickyAssignment(claims, partitions);
    return claims.map(({ id }) => {
      const byTopic = new Map<string, GroupAssignment>();
      for (const { topic, partition } of assignment.get(id) ?? []) {
        const entry = byTopic.get(topic) ?? { topic, partitions: [] };
        entry.partitions.push(partition);
        byTopic.set(topic, entry);
      }
      return { memberId: id, assignments: byTopic };
    });
  };
}
