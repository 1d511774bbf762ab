/**
 * The claims a member of the "reluwatch-sticky" protocol sends the leader at
 * every join: the partitions it holds and the group generation it held them
 * in. Both Kafka clients' assigners (kafka-assigner.ts, platformatic-assigner.ts)
 * read and write this one format, so a group may mix instances running either
 * client and still keep partitions where they are.
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
import type { StickyMember, TopicPartition } from "./sticky-assignment.js";

export const STICKY_ASSIGNER_NAME = "reluwatch-sticky";
export const OWNERSHIP_FORMAT_VERSION = 1;

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
 * A member's claims for the algorithm from the userData of its subscription:
 * none for a member that sent nothing (a new one, or a release without the
 * sticky protocol) and none, reported, for data that does not decode.
 */
export function memberClaims(
  id: string,
  userData: Buffer | null | undefined,
  onUndecodable: (memberId: string, reason: string) => void,
): StickyMember {
  if (userData === null || userData === undefined || userData.length === 0)
    return { id, owned: [], generation: -1 };
  try {
    return { id, ...decodeOwnership(userData) };
  } catch (err) {
    onUndecodable(id, err instanceof Error ? err.message : String(err));
    return { id, owned: [], generation: -1 };
  }
}
