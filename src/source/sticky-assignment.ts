/**
 * Sticky partition assignment for a consumer group: balanced, and moving as
 * few partitions as balance allows when members come and go. Each partition
 * that changes owner costs its new owner a restore from the state topic, so
 * the fewer move, the cheaper a rolling restart or a scale event is.
 *
 * Pure and client-neutral: plain data in (every member's previous partitions
 * and the group generation it held them in, the partitions to assign), plain
 * data out (member → partitions). A Kafka client's assigner encodes and
 * decodes the member data around it (src/source/kafka-assigner.ts for kafkajs).
 * Every member is assumed to subscribe to every topic given.
 *
 * The steps:
 *
 * 1. Claims. A partition claimed by several members (a zombie that missed a
 *    rebalance still reports what it held) goes to the claim of the newest
 *    generation, ties to the smallest member id. Claims of partitions that no
 *    longer exist are ignored.
 * 2. Quotas. With P partitions and M members every member gets ⌊P/M⌋, and
 *    P mod M of them one more: those with the most surviving claims (ties by
 *    id), so the extra slots go where they keep partitions in place.
 * 3. Keep. A member keeps its claims up to its quota, the smallest partitions
 *    first; the rest are released.
 * 4. Spread. Released partitions, those of departed members and new ones go,
 *    in partition order, each to the member with the fewest so far that is
 *    below its quota (ties by id).
 *
 * Worked example, partitions t/0..t/6 (P = 7):
 *
 *     before: a owns 0 1 2 3 (generation 5), b owns 4 5 6 (generation 5)
 *     c joins (M = 3): quotas 7/3 → 2 each, one extra; a has 4 claims, b 3, c 0
 *       → a 3, b 2, c 2
 *     keep: a keeps 0 1 2 (releases 3), b keeps 4 5 (releases 6)
 *     spread: 3 → c, 6 → c
 *     after: a 0 1 2, b 4 5, c 3 6: two partitions moved, both to the newcomer
 *     (round-robin would give a 0 3 6, b 1 4, c 2 5: five moved)
 *
 *     then a leaves (M = 2): quotas 4 and 3; b and c have 2 claims each, the
 *       extra slot goes to b (smaller id)
 *     keep: b 4 5, c 3 6; spread a's 0 1 2: 0 → b, 1 → c, 2 → b
 *     after: b 0 2 4 5, c 1 3 6: only a's three partitions moved
 *
 *     a zombie z still claims 3 with generation 4 while c claims it with 5:
 *     c keeps 3; z's claim counts for nothing.
 */

export interface TopicPartition {
  topic: string;
  partition: number;
}

export interface StickyMember {
  id: string;
  /** The partitions the member held before this rebalance, as it reports them. */
  owned: readonly TopicPartition[];
  /** The group generation it held them in; -1 when it holds nothing (a new member). */
  generation: number;
}

/** Member id → its partitions, sorted by topic and partition; every member given is present. */
export type StickyAssignment = Map<string, TopicPartition[]>;

function keyOf(tp: TopicPartition): string {
  return `${tp.topic}\u0000${tp.partition}`;
}

function comparePartitions(a: TopicPartition, b: TopicPartition): number {
  if (a.topic !== b.topic) return a.topic < b.topic ? -1 : 1;
  return a.partition - b.partition;
}

function compareIds(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

export function stickyAssignment(
  members: readonly StickyMember[],
  partitions: readonly TopicPartition[],
): StickyAssignment {
  const ids = [...new Set(members.map((m) => m.id))].sort(compareIds);
  if (ids.length !== members.length) throw new Error("stickyAssignment: member ids must be distinct");
  const all = new Map<string, TopicPartition>();
  for (const tp of partitions) all.set(keyOf(tp), { topic: tp.topic, partition: tp.partition });
  const sorted = [...all.values()].sort(comparePartitions);
  const result: StickyAssignment = new Map(ids.map((id) => [id, []]));
  if (ids.length === 0) return result;

  // 1. Claims: the newest generation wins a contested partition, then the smallest id.
  const winner = new Map<string, { id: string; generation: number }>();
  for (const m of members) {
    for (const tp of m.owned) {
      const key = keyOf(tp);
      if (!all.has(key)) continue;
      const current = winner.get(key);
      if (
        current === undefined ||
        m.generation > current.generation ||
        (m.generation === current.generation && compareIds(m.id, current.id) < 0)
      ) {
        winner.set(key, { id: m.id, generation: m.generation });
      }
    }
  }
  const claims = new Map<string, TopicPartition[]>(ids.map((id) => [id, []]));
  for (const tp of sorted) {
    const w = winner.get(keyOf(tp));
    if (w) claims.get(w.id)!.push(tp);
  }

  // 2. Quotas: the extra slots go to the members that can fill them with what they already hold.
  const base = Math.floor(sorted.length / ids.length);
  const extra = sorted.length % ids.length;
  const byClaims = [...ids].sort((a, b) => claims.get(b)!.length - claims.get(a)!.length || compareIds(a, b));
  const quota = new Map<string, number>(byClaims.map((id, i) => [id, base + (i < extra ? 1 : 0)]));

  // 3. Keep what fits; 4. spread the rest over the least loaded.
  const unowned: TopicPartition[] = [];
  const kept = new Set<string>();
  for (const id of ids) {
    const mine = claims.get(id)!;
    const keep = mine.slice(0, quota.get(id)!);
    result.set(id, keep);
    for (const tp of keep) kept.add(keyOf(tp));
  }
  for (const tp of sorted) if (!kept.has(keyOf(tp))) unowned.push(tp);
  for (const tp of unowned) {
    let target: string | undefined;
    for (const id of ids) {
      const n = result.get(id)!.length;
      if (n >= quota.get(id)!) continue;
      if (target === undefined || n < result.get(target)!.length) target = id;
    }
    // Quotas sum to the partition count, so a slot is always left while partitions are.
    result.get(target!)!.push(tp);
  }
  for (const list of result.values()) list.sort(comparePartitions);
  return result;
}
