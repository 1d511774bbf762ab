import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { UnitBudget } from "../../../src/service/unit-budget.js";

const IDLE = 60_000;

function budget(max_tracked_units = 1000) {
  return new UnitBudget({ max_tracked_units, max_layers_per_run: 3, max_units_per_layer: 800 });
}

describe("UnitBudget", () => {
  test("a sweep of many small runs fits where a run count would have refused most", () => {
    const b = budget(1000);
    for (let i = 0; i < 300; i++) {
      const a = b.admit(`sweep-${i}`, "fc", 3, 0, IDLE);
      assert.deepEqual(a, { admitted: true, evict: [] }, `run ${i}`);
      b.track(`sweep-${i}`, "fc", 3, 0);
    }
    assert.equal(b.trackedUnits, 900);
  });

  test("a new layer evicts the longest-idle runs first, and only as many as it needs", () => {
    const b = budget(1000);
    b.track("old", "fc", 300, 0);
    b.track("older", "fc", 300, -10_000);
    b.track("active", "fc", 300, 100_000);
    const a = b.admit("new", "fc", 400, 100_000, IDLE);
    assert.deepEqual(a, { admitted: true, evict: ["older"] });
  });

  test("active runs are never evicted: the new layer is refused with limit_tracked_units", () => {
    const b = budget(1000);
    b.track("a", "fc", 600, 100_000);
    b.track("b", "fc", 300, 50_000);
    const a = b.admit("c", "fc", 400, 100_000, IDLE);
    assert.equal(a.admitted, false);
    assert.equal(a.admitted === false && a.reason, "limit_tracked_units");
    assert.match(a.admitted === false ? a.message : "", /max_tracked_units \(1000\)/);
  });

  test("a run's own idle layers do not make room for its new layer; known layers always pass", () => {
    const b = budget(1000);
    b.track("r", "a", 700, 0);
    assert.equal(b.admit("r", "b", 400, 100_000, IDLE).admitted, false);
    assert.deepEqual(b.admit("r", "a", 700, 100_000, IDLE), { admitted: true, evict: [] });
  });

  test("layers per run and units per layer are still limited", () => {
    const b = budget(10_000);
    for (const l of ["a", "b", "c"]) b.track("r", l, 10, 0);
    const perRun = b.admit("r", "d", 10, 0, IDLE);
    assert.equal(perRun.admitted === false && perRun.reason, "limit_layers_per_run");
    const wide = b.admit("s", "x", 801, 0, IDLE);
    assert.equal(wide.admitted === false && wide.reason, "limit_units_per_layer");
  });

  test("forgetting layers and runs gives their units back", () => {
    const b = budget(1000);
    b.track("r", "a", 100, 0);
    b.track("r", "b", 200, 0);
    b.track("s", "a", 50, 0);
    b.track("s", "a", 50, 0);
    assert.equal(b.trackedUnits, 350, "a layer counts once");
    b.forgetLayer("r", "a");
    assert.equal(b.trackedUnits, 250);
    b.forgetRun("s");
    assert.equal(b.trackedUnits, 200);
    b.forgetRun("r");
    assert.equal(b.trackedUnits, 0);
  });
});
