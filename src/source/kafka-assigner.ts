/**
 * The sticky assignment (sticky-assignment.ts) as a kafkajs partition
 * assigner, "reluwatch-sticky".
 *
 * kafkajs tells an assigner nothing about the member it runs in, so the
 * member side is a `StickyMembership` the consumer feeds from its own events:
 * the partitions of each GROUP_JOIN and the generation each heartbeat or
 * offset commit confirms (the coordinator accepts neither from another
 * generation). At every join the member sends both in its subscription's
 * userData; the leader decodes every member's, runs the algorithm and encodes
 * the result.
 *
 * The generation sent is the newest one so confirmed, which can be one
 * behind the assignment it comes with when a rebalance follows a join before
 * any heartbeat or commit. It is then too old, never too new: a current member
 * may tie with a zombie (ties go to the smaller member id) but a zombie never
 * beats a member that heartbeated in a newer generation.
 *
 * The claims themselves, their wire format and its versioning: sticky-ownership.ts.
 */
import {
  type Assigner,
  AssignerProtocol,
  type Consumer,
  type GroupMember,
  type GroupMemberAssignment,
  type PartitionAssigner,
  PartitionAssigners,
} from "kafkajs";
import { type StickyMember, stickyAssignment, type TopicPartition } from "./sticky-assignment.js";
import { encodeOwnership, memberClaims, type Ownership, STICKY_ASSIGNER_NAME } from "./sticky-ownership.js";

/** The consumer protocol's own schema version: kafkajs writes the version-0 layout. */
const CONSUMER_PROTOCOL_VERSION = 0;

/**
 * What this member owns and since which generation, as its consumer's events
 * report it; sent to the leader at every join.
 */
export class StickyMembership {
  private ownership: Ownership = { generation: -1, owned: [] };

  current(): Ownership {
    return this.ownership;
  }

  joined(assignment: Record<string, readonly number[]>): void {
    const owned: TopicPartition[] = [];
    for (const [topic, partitions] of Object.entries(assignment))
      for (const partition of partitions) owned.push({ topic, partition });
    this.ownership = { generation: this.ownership.generation, owned };
  }

  confirmed(generation: number): void {
    if (generation > this.ownership.generation) this.ownership = { ...this.ownership, generation };
  }

  /** Keeps the membership current from the consumer's join, heartbeat and commit events. */
  follow(consumer: Consumer): void {
    consumer.on(consumer.events.GROUP_JOIN, (e) => this.joined(e.payload.memberAssignment));
    consumer.on(consumer.events.HEARTBEAT, (e) => this.confirmed(e.payload.groupGenerationId));
    consumer.on(consumer.events.COMMIT_OFFSETS, (e) => this.confirmed(e.payload.groupGenerationId));
  }
}

/** Decodes the members' subscriptions for the algorithm; undecodable ones own nothing. */
export function stickyMembers(
  members: readonly GroupMember[],
  onUndecodable: (memberId: string, reason: string) => void = () => {},
): StickyMember[] {
  return members.map(({ memberId, memberMetadata }) => {
    let userData: Buffer | null | undefined;
    try {
      userData = AssignerProtocol.MemberMetadata.decode(memberMetadata)!.userData;
    } catch (err) {
      onUndecodable(memberId, err instanceof Error ? err.message : String(err));
      return { id: memberId, owned: [], generation: -1 };
    }
    return memberClaims(memberId, userData, onUndecodable);
  });
}

/** Encodes an assignment for the group, one entry per member (an empty one for a member given nothing). */
export function encodeGroupAssignment(
  members: readonly StickyMember[],
  assignment: ReadonlyMap<string, readonly TopicPartition[]>,
): GroupMemberAssignment[] {
  return members.map(({ id }) => {
    const byTopic: Record<string, number[]> = {};
    for (const { topic, partition } of assignment.get(id) ?? []) {
      const list = byTopic[topic] ?? [];
      list.push(partition);
      byTopic[topic] = list;
    }
    return {
      memberId: id,
      memberAssignment: AssignerProtocol.MemberAssignment.encode({
        version: CONSUMER_PROTOCOL_VERSION,
        assignment: byTopic,
        userData: Buffer.alloc(0),
      }),
    };
  });
}

export function stickyAssigner(membership: StickyMembership): PartitionAssigner {
  return ({ cluster, logger }): Assigner => ({
    name: STICKY_ASSIGNER_NAME,
    version: CONSUMER_PROTOCOL_VERSION,
    async assign({ members, topics }) {
      const decoded = stickyMembers(members, (memberId, reason) =>
        logger.warn("member's ownership data does not decode; treated as owning nothing", {
          memberId,
          reason,
        }),
      );
      const partitions = topics.flatMap((topic) =>
        cluster.findTopicPartitionMetadata(topic).map((m) => ({ topic, partition: m.partitionId })),
      );
      return encodeGroupAssignment(decoded, stickyAssignment(decoded, partitions));
    },
    protocol({ topics }) {
      return {
        name: STICKY_ASSIGNER_NAME,
        metadata: AssignerProtocol.MemberMetadata.encode({
          version: CONSUMER_PROTOCOL_VERSION,
          topics,
          userData: encodeOwnership(membership.current()),
        }),
      };
    },
  });
}

/**
 * The assigners a consumer offers, in order of preference. The coordinator
 * picks a protocol every member offers, so round-robin stays second: during a
 * rolling upgrade from (or a rollback to) a release that offers only
 * round-robin, old and new instances still agree on it and the group keeps
 * consuming; once every member offers the sticky one, the group uses it.
 * Without the fallback the first upgraded instance would be refused
 * (INCONSISTENT_GROUP_PROTOCOL) until every old one had left.
 */
export function reluwatchAssigners(membership: StickyMembership): PartitionAssigner[] {
  return [stickyAssigner(membership), PartitionAssigners.roundRobin];
}
