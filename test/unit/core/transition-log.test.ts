import assert from "node:assert/strict";
import { describe, test } from "node:test";
import type { UnitState, UnitTransition } from "../../../src/core/index.js";
import { TransitionLog } from "../../../src/core/transition-log.js";

function t(unit: number, from: UnitState, to: UnitState, step: number): UnitTransition {
  return {
    run_id: "r",
    layer: "l",
    unit,
    from,
    to,
    born_dead: from === "UNKNOWN" && to === "DEAD",
    step,
    time: step * 1000,
    fires: 0,
    samples: 7000,
    firing_rate: 0,
    rate_upper_bound: 0.000987,
    last_fire_step: null,
  };
}

describe("TransitionLog", () => {
  test("a unit's transitions come back newest first, with what the unit page shows", () => {
    const log = new TransitionLog(4);
    log.add(t(2, "UNKNOWN", "ACTIVE", 100));
    log.add(t(1, "UNKNOWN", "DEAD", 100));
    log.add(t(2, "ACTIVE", "MOSTLY_SILENT", 600));
    log.add(t(2, "MOSTLY_SILENT", "DEAD", 900));
    log.add(t(2, "DEAD", "ACTIVE", 1400));
    const mine = log.forUnit(2);
    // A living first verdict is not logged; every later change is.
    assert.deepEqual(
      mine.map((x) => [x.from, x.to, x.step]),
      [
        ["DEAD", "ACTIVE", 1400],
        ["MOSTLY_SILENT", "DEAD", 900],
        ["ACTIVE", "MOSTLY_SILENT", 600],
      ],
    );
    const [born] = log.forUnit(1);
    assert.equal(born!.born_dead, true);
    // Kept as float32: equal to 3 significant digits.
    assert.ok(Math.abs(born!.rate_upper_bound - 0.000987) < 1e-9);
    assert.equal(log.newest(10).length, 4);
    assert.equal(log.newest(2)[0]!.step, 1400);
  });

  test("costs nothing until units change, and grows with what happens", () => {
    const log = new TransitionLog(1 << 20);
    for (let u = 0; u < 1000; u++) log.add(t(u, "UNKNOWN", "ACTIVE", 100));
    assert.equal(log.bytes(), 0, "first verdicts of living units take no space");
    for (let u = 0; u < 1000; u++) log.add(t(u, "ACTIVE", "DEAD", 900));
    assert.ok(log.bytes() >= 1000 * 21 && log.bytes() <= 2048 * 21, `${log.bytes()} bytes for 1000 deaths`);
    assert.equal(log.forUnit(999)[0]!.step, 900);
    assert.equal(log.forUnit(0)[0]!.step, 900, "growing kept the oldest entries");
  });

  test("flapping between active and mostly-silent never pushes a death out", () => {
    const units = 1024;
    const log = new TransitionLog(units);
    for (let u = 0; u < units; u++) log.add(t(u, "ACTIVE", "DEAD", 500));
    // Far more flaps than either ring holds.
    for (let k = 0; k < 10 * units; k++) {
      log.add(
        t(k % 7, k % 2 === 0 ? "ACTIVE" : "MOSTLY_SILENT", k % 2 === 0 ? "MOSTLY_SILENT" : "ACTIVE", 600 + k),
      );
    }
    for (let u = 0; u < units; u++) {
      const deaths = log.forUnit(u).filter((x) => x.to === "DEAD");
      assert.equal(deaths.length, 1, `unit ${u} keeps its death`);
      assert.equal(deaths[0]!.step, 500);
    }
    // The flaps ring is bounded: a quarter of the units, at least 256 entries.
    assert.equal(log.newest(Number.POSITIVE_INFINITY).length, units + 256);
    assert.equal(log.bytes(), (units + 256) * 21);
  });
});
