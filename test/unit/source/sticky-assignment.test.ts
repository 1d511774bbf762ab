/**
 * The sticky assignment algorithm: the worked example of its doc comment,
 * then seeded properties over random groups: balance and completeness on any
 * input, a claim given up only by a member at its quota, the newest
 * generation winning a contested partition, one member leaving moving only
 * its partitions, one member joining taking only its share, determinism.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import fc from "fast-check";
import {
  type StickyAssignment,
  type StickyMember,
  stickyAssignment,
  type TopicPartition,
} from "../../../src/source/sticky-assignment.js";
import { propertyParams } from "../../support/property.js";

const tp = (partition: number, topic = "t"): TopicPartition => ({ topic, partition });
const range = (from: number, to: number, topic = "t") =>
  Array.from({ length: to - from }, (_, i) => tp(from + i, topic));
const key = (p: TopicPartition) => `${p.topic}/${p.partition}`;

function plain(a: StickyAssignment): Record<string, string[]> {
  return Object.fromEntries([...a].map(([id, ps]) => [id, ps.map(key)]));
}

function owners(a: StickyAssignment): Map<string, string> {
  const out = new Map<string, string>();
  for (const [id, ps] of a) for (const p of ps) out.set(key(p), id);
  return out;
}

function asClaims(a: StickyAssignment, generation: number): StickyMember[] {
  return [...a].map(([id, owned]) => ({ id, owned, generation }));
}

function assertBalancedAndComplete(
  a: StickyAssignment,
  members: readonly StickyMember[],
  all: TopicPartition[],
) {
  assert.deepEqual([...a.keys()].sort(), members.map((m) => m.id).sort(), "every member has an entry");
  const assigned = [...a.values()].flat().map(key);
  assert.equal(new Set(assigned).size, assigned.length, "no partition given twice");
  assert.deepEqual(new Set(assigned), new Set(all.map(key)), "every partition given");
  const counts = [...a.values()].map((ps) => ps.length);
  if (counts.length > 0) assert.ok(Math.max(...counts) - Math.min(...counts) <= 1, `counts ${counts}`);
}

test("the worked example of the doc comment", () => {
  const all = range(0, 7);
  const before: StickyMember[] = [
    { id: "a", owned: range(0, 4), generation: 5 },
    { id: "b", owned: range(4, 7), generation: 5 },
  ];
  const joined = stickyAssignment([...before, { id: "c", owned: [], generation: -1 }], all);
  assert.deepEqual(plain(joined), { a: ["t/0", "t/1", "t/2"], b: ["t/4", "t/5"], c: ["t/3", "t/6"] });

  const left = stickyAssignment(
    asClaims(joined, 6).filter((m) => m.id !== "a"),
    all,
  );
  assert.deepEqual(plain(left), { b: ["t/0", "t/2", "t/4", "t/5"], c: ["t/1", "t/3", "t/6"] });

  const zombie = stickyAssignment(
    [...asClaims(joined, 5).filter((m) => m.id !== "a"), { id: "z", owned: [tp(3)], generation: 4 }],
    all,
  );
  assert.ok(
    zombie.get("c")!.some((p) => p.partition === 3),
    "c, of the newer generation, keeps t/3",
  );
});

test("edge cases: no members, no partitions, claims of partitions that are gone", () => {
  assert.equal(stickyAssignment([], range(0, 3)).size, 0);
  assert.deepEqual(plain(stickyAssignment([{ id: "a", owned: [tp(1)], generation: 1 }], [])), { a: [] });
  const shrunk = stickyAssignment(
    [
      { id: "a", owned: [tp(0), tp(5)], generation: 2 },
      { id: "b", owned: [tp(1)], generation: 2 },
    ],
    range(0, 2),
  );
  assert.deepEqual(plain(shrunk), { a: ["t/0"], b: ["t/1"] });
  assert.throws(() =>
    stickyAssignment(
      [
        { id: "a", owned: [], generation: 1 },
        { id: "a", owned: [], generation: 1 },
      ],
      range(0, 2),
    ),
  );
});

/** Partitions of one or two topics, and members with arbitrary (even conflicting, stale) claims. */
const groupArb = fc
  .record({
    counts: fc.array(fc.integer({ min: 0, max: 24 }), { minLength: 1, maxLength: 2 }),
    memberCount: fc.integer({ min: 1, max: 8 }),
  })
  .chain(({ counts, memberCount }) => {
    const all = counts.flatMap((n, t) => range(0, n, `topic-${t}`));
    // Claims may name partitions that no longer exist (the topic shrank in this model).
    const claimable = [...all, tp(99, "topic-0")];
    return fc.record({
      all: fc.constant(all),
      members: fc.tuple(
        ...Array.from({ length: memberCount }, (_, i) =>
          fc.record({
            id: fc.constant(`m${String.fromCharCode(97 + i)}`),
            owned: fc.subarray(claimable),
            generation: fc.integer({ min: -1, max: 4 }),
          }),
        ),
      ),
    });
  });

function wonClaims(members: readonly StickyMember[], all: TopicPartition[]): Map<string, string> {
  const exists = new Set(all.map(key));
  const won = new Map<string, { id: string; generation: number }>();
  for (const m of members)
    for (const p of m.owned) {
      if (!exists.has(key(p))) continue;
      const w = won.get(key(p));
      if (!w || m.generation > w.generation || (m.generation === w.generation && m.id < w.id))
        won.set(key(p), m);
    }
  return new Map([...won].map(([k, w]) => [k, w.id]));
}

test("any group: balanced, complete; a won claim is given up only by a member left with its claims alone, at its quota", () => {
  fc.assert(
    fc.property(groupArb, ({ all, members }) => {
      const result = stickyAssignment(members, all);
      assertBalancedAndComplete(result, members, all);
      const won = wonClaims(members, all);
      const base = Math.floor(all.length / members.length);
      for (const [partition, claimant] of won) {
        const mine = result.get(claimant)!;
        if (mine.some((p) => key(p) === partition)) continue;
        // It lost a partition it won: balance must have required it.
        assert.ok(mine.length >= base, `${claimant} gave up ${partition} holding ${mine.length} < ${base}`);
        for (const p of mine)
          assert.equal(won.get(key(p)), claimant, `${claimant} took ${key(p)} while giving up`);
      }
    }),
    propertyParams({ numRuns: 300 }),
  );
});

test("any group: the same result whatever the order of members and partitions", () => {
  fc.assert(
    fc.property(
      groupArb.chain((g) =>
        fc.record({
          g: fc.constant(g),
          members: fc.shuffledSubarray(g.members, { minLength: g.members.length }),
          all: fc.shuffledSubarray(g.all, { minLength: g.all.length }),
        }),
      ),
      ({ g, members, all }) => {
        const once = plain(stickyAssignment(g.members, g.all));
        assert.deepEqual(plain(stickyAssignment(g.members, g.all)), once);
        assert.deepEqual(plain(stickyAssignment(members, all)), once);
      },
    ),
    propertyParams({ numRuns: 200 }),
  );
});

/** A settled group: the assignment the algorithm gave, reported back as every member's claims. */
const settledArb = fc
  .record({
    partitions: fc.integer({ min: 0, max: 40 }),
    members: fc.integer({ min: 1, max: 8 }),
    leaver: fc.nat(),
    history: fc.array(fc.integer({ min: 1, max: 8 }), { maxLength: 3 }),
  })
  .map(({ partitions, members, leaver, history }) => {
    const all = range(0, partitions);
    // A few membership changes first, so the starting point is not just a fresh split.
    let ids = Array.from({ length: history[0] ?? members }, (_, i) => `m${i}`);
    let result = stickyAssignment(
      ids.map((id) => ({ id, owned: [], generation: -1 })),
      all,
    );
    let generation = 1;
    let next = ids.length;
    for (const size of [...history.slice(1), members]) {
      while (ids.length > size) ids = ids.filter((_, i) => i !== (leaver + generation) % ids.length);
      while (ids.length < size) ids = [...ids, `m${next++}`];
      const claims = ids.map((id) => ({
        id,
        owned: result.get(id) ?? [],
        generation: result.has(id) ? generation : -1,
      }));
      result = stickyAssignment(claims, all);
      generation++;
    }
    return { all, result, generation, leaver: ids[leaver % ids.length]! };
  });

test("a member leaving: only its partitions move, spread over the least loaded", () => {
  fc.assert(
    fc.property(settledArb, ({ all, result, generation, leaver }) => {
      if (result.size < 2) return;
      const claims = asClaims(result, generation).filter((m) => m.id !== leaver);
      const after = stickyAssignment(claims, all);
      assertBalancedAndComplete(after, claims, all);
      const before = owners(result);
      const now = owners(after);
      for (const [p, owner] of before) if (owner !== leaver) assert.equal(now.get(p), owner, `${p} moved`);
      // Spread: each survivor took at most one more than any other did.
      const taken = claims.map((m) => after.get(m.id)!.length - m.owned.length);
      assert.ok(Math.max(...taken) - Math.min(...taken) <= 1, `taken ${taken}`);
    }),
    propertyParams({ numRuns: 300 }),
  );
});

test("a member joining: it takes ⌊P/(M+1)⌋ partitions and nothing else moves", () => {
  fc.assert(
    fc.property(settledArb, ({ all, result, generation }) => {
      const claims = [...asClaims(result, generation), { id: "a-newcomer", owned: [], generation: -1 }];
      const after = stickyAssignment(claims, all);
      assertBalancedAndComplete(after, claims, all);
      const before = owners(result);
      const moved = [...owners(after)].filter(([p, owner]) => before.get(p) !== owner);
      assert.ok(
        moved.every(([, owner]) => owner === "a-newcomer"),
        "every partition that moved went to the newcomer (whose id sorts first)",
      );
      assert.equal(moved.length, Math.floor(all.length / claims.length));
    }),
    propertyParams({ numRuns: 300 }),
  );
});

test("a zombie's stale claims lose to the current owners: a group that agrees is not disturbed", () => {
  fc.assert(
    fc.property(settledArb, fc.nat(), ({ all, result, generation }, pick) => {
      if (all.length === 0) return;
      const stolen = all.filter((_, i) => i % 2 === pick % 2);
      const claims = [
        ...asClaims(result, generation),
        { id: "a-zombie", owned: stolen, generation: generation - 1 },
      ];
      const after = stickyAssignment(claims, all);
      assertBalancedAndComplete(after, claims, all);
      const before = owners(result);
      // The zombie joins as a member: it takes its share, but of the stolen claims only what balance hands out.
      const moved = [...owners(after)].filter(([p, owner]) => before.get(p) !== owner);
      assert.ok(moved.every(([, owner]) => owner === "a-zombie"));
      assert.equal(moved.length, Math.floor(all.length / claims.length));
    }),
    propertyParams({ numRuns: 200 }),
  );
});
