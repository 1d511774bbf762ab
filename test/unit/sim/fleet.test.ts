import assert from "node:assert/strict";
import { test } from "node:test";
import { encodeSnapshot } from "../../../src/codec/index.js";
import type { ActivationSnapshot } from "../../../src/core/snapshot.js";
import { countsFromActivations } from "../../../src/publisher/firing-counts.js";
import {
  BUILT_IN_SCENARIOS,
  fleetSize,
  fleetTruth,
  generateFleet,
  rateAt,
  resolveScenario,
  type Scenario,
  ScenarioError,
} from "../../../src/sim/index.js";

const small = (base: string, o: Partial<Scenario> = {}) =>
  resolveScenario(base, { units: 64, steps: 1000, interval: 50, ...o });

function fires(s: ActivationSnapshot): Uint32Array {
  if (s.stats.kind === "counts") return s.stats.fires;
  return countsFromActivations(new Float32Array(s.stats.values.slice().buffer), s.samples, s.unit_count)
    .fires;
}

test("the same scenario yields byte-identical snapshots; another seed does not", () => {
  const enc = (sc: Scenario) => [...generateFleet(sc)].map((s) => encodeSnapshot(s).toString("base64"));
  const a = enc(small("lr-spike"));
  assert.deepEqual(a, enc(small("lr-spike")));
  assert.notDeepEqual(a, enc(small("lr-spike", { seed: 2 })));
  assert.equal(a.length, fleetSize(small("lr-spike")));
});

test("every built-in scenario generates valid snapshots, as many as fleetSize says", () => {
  for (const name of Object.keys(BUILT_IN_SCENARIOS)) {
    const sc = small(name);
    let n = 0;
    for (const s of generateFleet(sc)) {
      encodeSnapshot(s);
      n++;
    }
    assert.equal(n, fleetSize(sc), name);
    assert.ok(n > 0, name);
  }
});

test("after its death step a dead unit fires 0 times; alive units fire at their true rate", () => {
  const sc = small("lr-spike", { ranks: 2 });
  const truth = fleetTruth(sc);
  const layer2 = truth.units.filter((u) => u.layer === "blocks.2.mlp.fc1");
  const dead = layer2.filter((u) => u.death_step === 500);
  assert.equal(dead.length, Math.round(0.3 * 64));
  assert.ok(truth.units.filter((u) => u.layer !== "blocks.2.mlp.fc1").every((u) => u.death_step === null));

  const firesBefore = new Map<number, number>();
  const samplesBy = new Map<string, { fires: number; samples: number }>();
  for (const s of generateFleet(sc)) {
    const f = fires(s);
    for (let i = 0; i < s.unit_count; i++) {
      const unit = s.unit_offset + i;
      const t = truth.units.find((u) => u.layer === s.layer && u.unit === unit)!;
      if (t.death_step !== null && s.step >= t.death_step)
        assert.equal(f[i], 0, `dead unit ${unit} fired at ${s.step}`);
      if (t.death_step !== null && s.step < t.death_step)
        firesBefore.set(unit, (firesBefore.get(unit) ?? 0) + f[i]!);
      if (t.class === "active" && t.death_step === null) {
        const key = `${s.layer}/${unit}`;
        const acc = samplesBy.get(key) ?? { fires: 0, samples: 0 };
        acc.fires += f[i]!;
        acc.samples += s.samples;
        samplesBy.set(key, acc);
      }
    }
  }
  // Units that died were alive before: each fired before its death step (rates >= 0.05 over 10 × 2 × 512 samples).
  for (const t of dead) if (t.class === "active") assert.ok(firesBefore.get(t.unit)! > 0, `unit ${t.unit}`);
  for (const t of truth.units.filter((u) => u.class === "active" && u.death_step === null)) {
    const { fires: k, samples: n } = samplesBy.get(`${t.layer}/${t.unit}`)!;
    const sd = Math.sqrt(n * t.base_rate * (1 - t.base_rate));
    assert.ok(
      Math.abs(k - n * t.base_rate) < 5 * sd,
      `unit ${t.unit}: ${k} fires in ${n} at rate ${t.base_rate}`,
    );
  }
});

test("mostly-silent units have true rates in [1e-3, 1e-2] and still fire; born-dead units never do", () => {
  const sc = small("born-dead", { units: 200, steps: 2000 });
  const truth = fleetTruth(sc);
  const silent = truth.units.filter((u) => u.class === "mostly_silent");
  const bornDead = truth.units.filter((u) => u.class === "born_dead");
  assert.equal(bornDead.length, 3 * Math.round(0.05 * 200));
  assert.ok(silent.length > 0);
  for (const u of silent) assert.ok(u.base_rate >= 1e-3 && u.base_rate <= 1e-2, `${u.base_rate}`);
  for (const u of bornDead) assert.equal(u.death_step, 0);
  const total = new Map<string, number>();
  for (const s of generateFleet(sc)) {
    const f = fires(s);
    for (let i = 0; i < s.unit_count; i++) {
      const key = `${s.layer}/${s.unit_offset + i}`;
      total.set(key, (total.get(key) ?? 0) + f[i]!);
    }
  }
  for (const u of bornDead) assert.equal(total.get(`${u.layer}/${u.unit}`), 0);
  // 40 snapshots × 4 ranks × 512 samples at rate >= 1e-3: expect >= 82 fires; none silent throughout.
  for (const u of silent)
    assert.ok(total.get(`${u.layer}/${u.unit}`)! > 0, `silent unit ${u.unit} never fired`);
});

test("revived units fire again from their revive step; their truth has three segments", () => {
  const sc = small("revival", { units: 100, steps: 2000 });
  const truth = fleetTruth(sc);
  const revived = truth.units.filter((u) => u.revive_step !== null);
  assert.equal(revived.length, Math.round(0.5 * Math.round(0.2 * 100)));
  for (const u of revived) {
    assert.deepEqual(
      u.segments.map((s) => s.from_step),
      [0, 500, 1200],
    );
    assert.equal(rateAt(u, 499), u.base_rate);
    assert.equal(rateAt(u, 500), 0);
    assert.equal(rateAt(u, 1200), u.base_rate);
  }
  const after = new Map<number, number>();
  for (const s of generateFleet(sc)) {
    if (s.layer !== "blocks.1.mlp.fc1") continue;
    const f = fires(s);
    for (const u of revived) {
      if (s.step >= 500 && s.step < 1200) assert.equal(f[u.unit], 0);
      if (s.step >= 1200) after.set(u.unit, (after.get(u.unit) ?? 0) + f[u.unit]!);
    }
  }
  for (const u of revived) if (u.class === "active") assert.ok(after.get(u.unit)! > 0);
});

test("a stale rank stops publishing at its step; shards tile the layer; raw payloads carry Bernoulli samples", () => {
  const stale = small("stale-rank");
  const ranksAt = new Map<number, Set<number>>();
  for (const s of generateFleet(stale)) {
    if (!ranksAt.has(s.step)) ranksAt.set(s.step, new Set());
    ranksAt.get(s.step)!.add(s.rank);
  }
  assert.deepEqual([...ranksAt.get(750)!].sort(), [0, 1, 2, 3]);
  assert.deepEqual([...ranksAt.get(800)!].sort(), [0, 1, 2]);

  const tp = small("tensor-parallel", { units: 65, shards: 3 });
  const first = [...generateFleet(tp)].filter(
    (s) => s.step === 0 && s.rank === 0 && s.layer === "blocks.0.mlp.fc1",
  );
  assert.equal(first.length, 3 * 2);
  const slices = first.filter((s) => s.run_id.endsWith("r0")).map((s) => [s.unit_offset, s.unit_count]);
  assert.deepEqual(slices, [
    [0, 22],
    [22, 22],
    [44, 21],
  ]);
  assert.ok(
    first.every((s) => s.stats.kind === "counts" && s.stats.abs_sum !== null && s.stats.sq_sum !== null),
  );

  const raw = small("healthy", { payload: "raw", units: 16, samples: 64, steps: 100 });
  const snaps = [...generateFleet(raw)];
  assert.ok(snaps.every((s) => s.stats.kind === "raw" && s.stats.values.length === 64 * 16 * 4));
  assert.ok(snaps.some((s) => fires(s).some((f) => f > 0)));
});

test("bad scenarios are refused with ScenarioError naming the field", () => {
  assert.throws(() => resolveScenario("nope"), ScenarioError);
  assert.throws(() => resolveScenario("healthy", { ranks: 0 }), /ranks must be an integer >= 1/);
  assert.throws(
    () => resolveScenario("healthy", { deaths: [{ layer: 9, fraction: 0.1, step: 1 }] }),
    /layer 9/,
  );
  assert.throws(() => resolveScenario("healthy", { born_dead: 1.5 }), /born_dead/);
  assert.throws(
    () => resolveScenario("healthy", { stale_ranks: [{ rank: 4, after_step: 1 }] }),
    /stale rank 4/,
  );
  assert.throws(
    () =>
      resolveScenario("healthy", { rates: { active: [0, 0.5], silent: [1e-3, 1e-2], silent_fraction: 0 } }),
    /rates.active/,
  );
});

test("gradient accumulation: micro_batches snapshots per rank and step, indexed, one millisecond", () => {
  const sc = small("grad-accum", { ranks: 2 });
  const at = [...generateFleet(sc)].filter(
    (s) => s.step === 100 && s.rank === 1 && s.layer === "blocks.0.mlp.fc1",
  );
  assert.deepEqual(
    at.map((s) => s.micro_batch),
    [0, 1, 2, 3],
  );
  assert.equal(new Set(at.map((s) => s.time)).size, 1);
  assert.ok(at.every((s) => s.incarnation === sc.start_time && s.samples === 128));
});

test("a crash replays the steps from the resume under a newer incarnation; the old one's last rank arrives late", () => {
  const sc = small("crash-resume", { ranks: 2, units: 32 });
  const all = [...generateFleet(sc)];
  const incarnations = [...new Set(all.map((s) => s.incarnation))];
  assert.equal(incarnations.length, 2);
  const [oldInc, newInc] = incarnations as [number, number];
  assert.ok(newInc > oldInc);
  const firstNew = all.findIndex((s) => s.incarnation === newInc);
  assert.equal(all[firstNew]!.step, 500);
  assert.ok(all.slice(0, firstNew).every((s) => s.step < 900));
  // The old timeline's last step (850) of rank 1 comes after the new incarnation's step 500.
  const late = all.slice(firstNew).filter((s) => s.incarnation === oldInc);
  assert.deepEqual(
    late.map((s) => [s.layer, s.step, s.rank]),
    [0, 1, 2].map((l) => [`blocks.${l}.mlp.fc1`, 850, 1]),
  );
  assert.ok(all.slice(firstNew).some((s) => s.incarnation === newInc && s.step === 500));
  // Replaced deaths fire 0 times on the old timeline only.
  const truth = fleetTruth(sc);
  const replaced = truth.units.filter((u) => u.replaced_death_step === 510);
  assert.ok(replaced.length > 0);
  const u = replaced[0]!.unit;
  const firesAt = (inc: number) =>
    all
      .filter((s) => s.layer === "blocks.1.mlp.fc1" && s.incarnation === inc && s.step >= 600 && s.step < 900)
      .reduce((n, s) => n + fires(s)[u - s.unit_offset]!, 0);
  assert.equal(firesAt(oldInc), 0);
  assert.ok(firesAt(newInc) > 0);
});

test("NaN units report every sample non-finite and never fire; NaN sums leave fires intact", () => {
  const nanSc = small("nan-units", {
    ranks: 1,
    nan_units: [{ layer: 1, fraction: 0.25, step: 600 }],
  });
  const nanUnits = fleetTruth(nanSc).units.filter((u) => u.nan_step === 600);
  assert.equal(nanUnits.length, 16);
  for (const s of generateFleet(nanSc)) {
    const stats = s.stats;
    if (s.layer !== nanUnits[0]!.layer || stats.kind !== "counts") continue;
    for (const u of nanUnits) {
      const nf: number = stats.nonfinite?.[u.unit] ?? 0;
      assert.equal(nf, s.step >= 600 ? s.samples : 0);
      if (s.step >= 600) assert.equal(stats.fires[u.unit], 0);
    }
  }
  const sumSc = small("nan-sums");
  let withNaN = 0;
  let total = 0;
  for (const s of generateFleet(sumSc)) {
    if (s.stats.kind !== "counts" || s.stats.abs_sum === null) continue;
    total++;
    if (s.stats.abs_sum.some((v) => Number.isNaN(v))) withNaN++;
  }
  assert.ok(withNaN > 0.1 * total && withNaN < 0.3 * total, `${withNaN} of ${total}`);
});
