import assert from "node:assert/strict";
import { describe, test } from "node:test";
import type { UnitState, UnitTransition } from "../../../src/core/index.js";
import { emitsEvent, selectEvents } from "../../../src/sink/event-policy.js";

const STATES: UnitState[] = ["UNKNOWN", "ACTIVE", "MOSTLY_SILENT", "DEAD"];

function transition(unit: number, from: UnitState, to: UnitState): UnitTransition {
  return {
    run_id: "r",
    layer: "l",
    unit,
    from,
    to,
    born_dead: from === "UNKNOWN" && to === "DEAD",
    step: 100,
    time: 0,
    fires: 0,
    samples: 1000,
    firing_rate: 0,
    rate_upper_bound: 0.01,
    last_fire_step: null,
  };
}

describe("events policy", () => {
  test("deaths: exactly the moves into or out of DEAD, born dead included", () => {
    const emitted: string[] = [];
    for (const from of STATES)
      for (const to of STATES)
        if (from !== to && emitsEvent("deaths", from, to)) emitted.push(`${from}>${to}`);
    assert.deepEqual(emitted.sort(), [
      "ACTIVE>DEAD",
      "DEAD>ACTIVE",
      "DEAD>MOSTLY_SILENT",
      "DEAD>UNKNOWN",
      "MOSTLY_SILENT>DEAD",
      "UNKNOWN>DEAD",
    ]);
  });

  test("all: every transition", () => {
    for (const from of STATES) for (const to of STATES) assert.ok(emitsEvent("all", from, to));
  });

  test("selectEvents keeps the order of the selected transitions", () => {
    const list = [
      transition(0, "UNKNOWN", "ACTIVE"),
      transition(1, "UNKNOWN", "DEAD"),
      transition(2, "ACTIVE", "MOSTLY_SILENT"),
      transition(3, "MOSTLY_SILENT", "DEAD"),
      transition(1, "DEAD", "ACTIVE"),
    ];
    assert.deepEqual(
      selectEvents("deaths", list).map((t) => `${t.unit}:${t.from}>${t.to}`),
      ["1:UNKNOWN>DEAD", "3:MOSTLY_SILENT>DEAD", "1:DEAD>ACTIVE"],
    );
    assert.deepEqual(selectEvents("all", list), list);
  });
});
