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
 * userData format, version 1 (big-endian, as the rest of the Kafka protocol):
 *
 *     u16 format version, i32 generation (-1: none),
 *     u16 topic count, per topic: u16 length + UTF-8 name, i32 count, i32 partitions
 *
 * Later versions may only append fields, so a leader of an older release
 * reads the version-1 prefix of anything a newer member sends, and a rolling
 * upgrade never loses the claims. Data that does not decode counts as a member
 * that owns nothing: it costs stickiness, never correctness.
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

export const STICKY_ASSIGNER_NAME = "reluwatch-sticky";
export const OWNERSHIP_FORMAT_VERSION = 1;
/** The consumer protocol's own schema version: kafkajs writes the version-0 layout. */
const CONSUMER_PROTOCOL_VERSION = 0;

export interface Ownership {
  generation: number;
  owned: TopicPartition[];
}

export function encodeOwnership({ generation, owned }: Ownership): Buffer {
  const byTopic = new Map<string, number[]>();
  for (const { topic, partition } of owned) {
    const list = byTopic.get(topic) ?? [];
    list.push(partition);
    byTopic.set(topic, list);
  }
  const parts: Buffer[] = [];
  const head = Buffer.alloc(8);
  head.writeUInt16BE(OWNERSHIP_FORMAT_VERSION, 0);
  head.writeInt32BE(generation, 2);
  head.writeUInt16BE(byTopic.size, 6);
  parts.push(head);
  for (const [topic, partitions] of byTopic) {
    const name = Buffer.from(topic, "utf8");
    const b = Buffer.alloc(2 + name.length + 4 + 4 * partitions.length);
    b.writeUInt16BE(name.length, 0);
    name.copy(b, 2);
    let at = 2 + name.length;
    b.writeInt32BE(partitions.length, at);
    at += 4;
    for (const p of partitions) {
      b.writeInt32BE(p, at);
      at += 4;
    }
    parts.push(b);
  }
  return Buffer.concat(parts);
}

export class OwnershipFormatError extends Error {}

/** Reads version 1 and the version-1 prefix of any later version; throws OwnershipFormatError otherwise. */
export function decodeOwnership(data: Buffer): Ownership {
  let at = 0;
  const need = (n: number) => {
    if (at + n > data.length)
      throw new OwnershipFormatError(`ownership data truncated at byte ${at} of ${data.length}`);
  };
  need(8);
  const version = data.readUInt16BE(0);
  if (version < 1) throw new OwnershipFormatError(`unknown ownership format version ${version}`);
  const generation = data.readInt32BE(2);
  const topics = data.readUInt16BE(6);
  at = 8;
  const owned: TopicPartition[] = [];
  for (let t = 0; t < topics; t++) {
    need(2);
    const length = data.readUInt16BE(at);
    at += 2;
    need(length + 4);
    const topic = data.toString("utf8", at, at + length);
    at += length;
    const count = data.readInt32BE(at);
    at += 4;
    if (count < 0) throw new OwnershipFormatError(`negative partition count for topic ${topic}`);
    need(4 * count);
    for (let i = 0; i < count; i++) {
      owned.push({ topic, partition: data.readInt32BE(at) });
      at += 4;
    }
  }
  return { generation, owned };
}

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
    try {
      const { userData } = AssignerProtocol.MemberMetadata.decode(memberMetadata)!;
      if (userData === null || userData === undefined || userData.length === 0)
        return { id: memberId, owned: [], generation: -1 };
      return { id: memberId, ...decodeOwnership(userData) };
    } catch (err) {
      onUndecodable(memberId, err instanceof Error ? err.message : String(err));
      return { id: memberId, owned: [], generation: -1 };
    }
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
